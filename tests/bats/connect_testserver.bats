#!/usr/bin/env bats
# CONNECT against the project's own SOCKS5 server, which records exactly
# what the client sent (ATYP, host, port, auth) and can answer with any REP
# code or misbehave in scripted ways.  Each test starts its own server.

load helpers

setup_file() {
	common_setup_file
	start_sentinel
	start_http web 127.0.0.3
	export WEB_PORT=$HTTP_PORT WEB_LOG=$HTTP_LOG
	start_http web6 ::1
	export WEB6_PORT=$HTTP_PORT WEB6_LOG=$HTTP_LOG
}

# ts_conf [SERVER ARGS...]: start a test server and point $CONF at it with
# a 1 s handshake timeout.
ts_conf() {
	start_testserver "$@" || return 1
	proxy_conf "$CONF" "$TS_PORT" "handshake_timeout = 1"
}

# The exact request bytes for CONNECT to a domain name.
domain_request_hex() {
	local name=$1 port=$2
	printf '05010003%02x%s%04x' "${#name}" \
		"$(printf '%s' "$name" | od -An -tx1 | tr -d ' \n')" "$port"
}

@test "by name: ATYP 3 carries the name, exact request bytes" {
	ts_conf
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /atyp3
	expect_status 0
	expect_contains "hello from web path=/atyp3 peer=127.0.0.2"
	wait_records 1
	expect_record atyp 3
	expect_record host web.test
	expect_record port "$WEB_PORT"
	expect_record cmd 1
	expect_record method 0
	expect_record raw_request "$(domain_request_hex web.test "$WEB_PORT")"
	assert_no_dns_leak
}

@test "IPv4 literal: ATYP 1" {
	ts_conf
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /atyp1
	expect_status 0
	expect_contains "hello from web path=/atyp1 peer=127.0.0.2"
	wait_records 1
	expect_record atyp 1
	expect_record host 127.0.0.3
	expect_record raw_request "$(printf '050100017f000003%04x' "$WEB_PORT")"
}

@test "IPv6 literal: ATYP 4" {
	ts_conf
	run sfy "$TESTBIN/tcp_get" ::1 "$WEB6_PORT" /atyp4
	expect_status 0
	expect_contains "hello from web6 path=/atyp4 peer=::1"
	wait_records 1
	expect_record atyp 4
	expect_record host ::1
	expect_record port "$WEB6_PORT"
}

@test "AF_INET6 socket to a v4-mapped IPv4 destination: sent as ATYP 1" {
	ts_conf
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /mapped --v6sock
	expect_status 0
	expect_contains "peer=[::ffff:127.0.0.3]:$WEB_PORT"
	expect_contains "hello from web path=/mapped peer=127.0.0.2"
	wait_records 1
	expect_record atyp 1
	expect_record host 127.0.0.3
}

@test "getpeername reports the destination, not the proxy" {
	ts_conf
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /gp
	expect_status 0
	expect_contains "peer=127.0.0.3:$WEB_PORT"
	expect_contains "path=/gp peer=127.0.0.2"      # it did go via the proxy
	expect_not_contains "peer=127.0.0.1:$TS_PORT"
}

@test "socks5:// (local DNS): /etc/hosts name sent as ATYP 1" {
	start_testserver
	write_conf "$CONF" "proxy = socks5://127.0.0.1:$TS_PORT" \
		"direct_loopback = no"
	run sfy "$TESTBIN/tcp_get" hostsonly.test "$WEB_PORT" /local
	expect_status 0
	expect_contains "hello from web path=/local peer=127.0.0.2"
	wait_records 1
	expect_record atyp 1
	expect_record host 127.0.0.3
}

@test "username/password: accepted, recorded, password never logged" {
	ts_conf --auth alice:pw-Alice-4711
	echo "username = alice" >>"$CONF"
	echo "password = pw-Alice-4711" >>"$CONF"
	SOCKSIFY_LOG_LEVEL=debug SOCKSIFY_LOG_FILE=$SFY_LOG \
		run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /auth
	expect_status 0
	expect_contains "hello from web path=/auth peer=127.0.0.2"
	wait_records 1
	expect_record method 2
	expect_record user alice
	expect_record password_len 13
	expect_record auth_ok True
	[[ -s $SFY_LOG ]] || fail "debug log is empty"
	! grep -qF pw-Alice-4711 "$SFY_LOG" || fail "password in the log"
	expect_not_contains pw-Alice-4711
}

@test "username/password from SOCKSIFY_PROXY URL, never logged" {
	start_testserver --auth bob:UrlSecret99
	write_conf "$CONF" "direct_loopback = no"
	SOCKSIFY_PROXY="socks5h://bob:UrlSecret99@127.0.0.1:$TS_PORT" \
		SOCKSIFY_LOG_LEVEL=debug SOCKSIFY_LOG_FILE=$SFY_LOG \
		run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /urlauth
	expect_status 0
	expect_contains "path=/urlauth peer=127.0.0.2"
	wait_records 1
	expect_record user bob
	expect_record password_len 11
	! grep -qF UrlSecret99 "$SFY_LOG" || fail "password in the log"
}

@test "username/password: wrong password gives EACCES" {
	ts_conf --auth alice:right-one
	echo "username = alice" >>"$CONF"
	echo "password = wrong-one" >>"$CONF"
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /badauth
	expect_errno EACCES
	wait_records 1
	expect_record auth_ok False
	! grep -q "path=/badauth" "$WEB_LOG" || fail "request reached the server"
}

# REP code -> errno (the table in the interface).
expect_rep() {
	ts_conf --reply "$1" || return 1
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" "/rep$1"
	expect_errno "$2" || return 1
	wait_records 1 || return 1
	expect_record rep "$1"
}

@test "REP 1 general failure -> ECONNABORTED" { expect_rep 1 ECONNABORTED; }
@test "REP 2 not allowed -> EACCES" { expect_rep 2 EACCES; }
@test "REP 3 network unreachable -> ENETUNREACH" { expect_rep 3 ENETUNREACH; }
@test "REP 4 host unreachable -> EHOSTUNREACH" { expect_rep 4 EHOSTUNREACH; }
@test "REP 5 connection refused -> ECONNREFUSED" { expect_rep 5 ECONNREFUSED; }
@test "REP 6 TTL expired -> ETIMEDOUT" { expect_rep 6 ETIMEDOUT; }
@test "REP 7 command not supported -> EOPNOTSUPP" { expect_rep 7 EOPNOTSUPP; }
@test "REP 8 address type not supported -> EAFNOSUPPORT" { expect_rep 8 EAFNOSUPPORT; }
@test "REP 9 (unassigned) -> EPROTO" { expect_rep 9 EPROTO; }
@test "REP 255 (unassigned) -> EPROTO" { expect_rep 255 EPROTO; }

@test "unknown name at the proxy (REP 4) -> EHOSTUNREACH" {
	ts_conf
	run sfy "$TESTBIN/tcp_get" nowhere.test "$WEB_PORT" /
	expect_errno EHOSTUNREACH
	wait_records 1
	expect_record host nowhere.test
	assert_no_dns_leak
}

# expect_mode MODE ERRNO [LOW]: misbehaving proxy -> ERRNO, and connect()
# (timed inside tcp_get) took LOW (default 0) to the 1 s handshake timeout
# plus a margin.
expect_mode() {
	ts_conf --mode "$1" || return 1
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" "/mode-$1"
	expect_errno "$2" || return 1
	expect_connect_ms "${3:-0}" 1000 1000 || return 1
	! grep -q "path=/mode-$1" "$WEB_LOG" || fail "request reached the server"
}

@test "silent proxy -> ETIMEDOUT after handshake_timeout" {
	expect_mode silent ETIMEDOUT 900
}

@test "proxy closes after greeting -> ECONNRESET" {
	expect_mode close-after-greeting ECONNRESET
}

@test "method reply with version 4 -> EPROTO" { expect_mode bad-version EPROTO; }
@test "no acceptable method (X'FF') -> EACCES" { expect_mode no-method EACCES; }
@test "truncated reply then EOF -> EPROTO" { expect_mode truncated-reply EPROTO; }
@test "reply with ATYP 9 -> EPROTO" { expect_mode bad-atyp EPROTO; }

@test "silent proxy, non-blocking connect -> ETIMEDOUT" {
	ts_conf --mode silent
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" / --nonblock
	expect_errno ETIMEDOUT
	expect_connect_ms 900 1000 1000
}

@test "slow proxy (one byte per 50 ms) still works" {
	start_testserver --mode slow
	proxy_conf "$CONF" "$TS_PORT" "handshake_timeout = 4"
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /slow
	expect_status 0
	expect_contains "hello from web path=/slow peer=127.0.0.2"
}

@test "slow proxy with non-blocking connect" {
	start_testserver --mode slow
	proxy_conf "$CONF" "$TS_PORT" "handshake_timeout = 4"
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /slownb --nonblock
	expect_status 0
	expect_contains "hello from web path=/slownb peer=127.0.0.2"
}

@test "data sent together with the reply reaches the app" {
	ts_conf --mode reply-plus-data
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /early --raw
	expect_status 0
	expect_contains $'EARLYDATA\nHTTP/1.0 200'
	expect_contains "hello from web path=/early peer=127.0.0.2"
}

@test "data sent together with the reply, non-blocking connect" {
	ts_conf --mode reply-plus-data
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /earlynb --raw --nonblock
	expect_status 0
	expect_contains $'EARLYDATA\nHTTP/1.0 200'
	expect_contains "hello from web path=/earlynb peer=127.0.0.2"
}

@test "non-blocking connect, REP 5 -> ECONNREFUSED" {
	ts_conf --reply 5
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" / --nonblock
	expect_errno ECONNREFUSED
}

@test "non-blocking connect by IPv4 literal" {
	ts_conf
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /nb1 --nonblock
	expect_status 0
	expect_contains "hello from web path=/nb1 peer=127.0.0.2"
	wait_records 1
	expect_record atyp 1
}

@test "proxy down: ECONNREFUSED fast, nothing goes direct" {
	local port before
	port=$(free_port)
	proxy_conf "$CONF" "$port"
	before=$(wc -l <"$WEB_LOG")
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /down
	expect_errno ECONNREFUSED
	expect_connect_ms 0 0 1000
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /down
	expect_errno ECONNREFUSED
	expect_connect_ms 0 0 1000
	[[ $(wc -l <"$WEB_LOG") -eq $before ]] ||
		fail "the HTTP server saw a connection:" "$(tail -n 3 "$WEB_LOG")"
	assert_no_dns_leak
}

@test "proxy down, curl by name fails without going direct" {
	skip_curl_under_asan
	local port before
	port=$(free_port)
	proxy_conf "$CONF" "$port"
	before=$(wc -l <"$WEB_LOG")
	run sfy curl -sS --max-time 10 "http://web.test:$WEB_PORT/curl-down"
	expect_status 7         # curl: "Failed to connect"
	[[ $(wc -l <"$WEB_LOG") -eq $before ]] || fail "went direct"
	assert_no_dns_leak
}

@test "curl by name through the test server" {
	skip_curl_under_asan
	ts_conf
	run sfy curl -sS --max-time 10 "http://web.test:$WEB_PORT/c"
	expect_status 0
	[[ $output == "hello from web path=/c peer=127.0.0.2" ]] || fail "$output"
	wait_records 1
	expect_record atyp 3
	expect_record host web.test
	assert_no_dns_leak
}

@test "getsockname on a proxied connection reports the proxy's side (CONNECT reply BND)" {
	ts_conf
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /local
	expect_status 0
	# The test server connects out from 127.0.0.2 and reports that address;
	# the client's own end is on 127.0.0.1.
	expect_match "local=127\.0\.0\.2:[1-9][0-9]*"
	expect_not_contains "local=127.0.0.1:"
}
