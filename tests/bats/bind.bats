#!/usr/bin/env bats
# SOCKS5 BIND (active-mode FTP's listening socket) against the project's own
# SOCKS5 server, which records the BIND request and plays the remote peer
# itself (--bind-self-connect: it connects to its own BIND listener, sends
# HELLO-FROM-REMOTE and records what it reads back).  tests/c/bind_test
# first makes a control connection (so there is a "last CONNECT"), then
# binds, listens and accepts; its output lines are asserted exactly.
# The suite is all loopback, so most tests use "bind = always": "auto"
# keeps loopback binds local (tested at the end).

load helpers

setup_file() {
	common_setup_file
	[[ -x $TESTBIN/bind_test ]] || fail "missing $TESTBIN/bind_test (run make)"
	start_sentinel
	start_http web 127.0.0.3
	export WEB_PORT=$HTTP_PORT
	start_http web6 ::1
	export WEB6_PORT=$HTTP_PORT
}

# bt ARGS...: bind_test under socksify with $CONF.
bt() {
	run sfy "$TESTBIN/bind_test" "$@"
}

# The lines every successful BIND prints, checked against the records:
# getsockname = reply 1's BND, accept's addr and getpeername = reply 2's.
expect_bind_ok() {
	local bnd peer
	expect_status 0 || return 1
	wait_record_where cmd 2 || return 1
	bnd=$(record_where cmd 2 bnd)
	peer=$(record_where cmd 2 accepted_from)
	expect_line "bnd=$bnd" && expect_line "accepted peer=$peer" &&
		expect_line "getpeername=$peer" && expect_line "newfd_differs=1" &&
		expect_line "data=HELLO-FROM-REMOTE" && expect_line "eof" &&
		expect_line "done" && expect_remote_read "HELLO-FROM-CLIENT"
}

# --------------------------------------------------------------- basics
@test "blocking accept: BIND sent with the last CONNECT's name, BND from reply 1, peer from reply 2, data both ways" {
	bind_ts --bind-connect-delay 300
	bt accept web.test "$WEB_PORT"
	expect_bind_ok
	expect_match "control peer=(24[0-9]|25[0-5])\.[0-9.]+:$WEB_PORT" # web.test's fake address (240.0.0.0/4)
	# The control connection was a CONNECT by name; the BIND repeats it.
	[[ $(count_records cmd 1) -eq 1 ]] || fail "expected one CONNECT:" "$(cat "$TS_RECORD")"
	[[ $(record_where cmd 1 host) == web.test ]] || fail "CONNECT host"
	expect_bind_record atyp 3
	expect_bind_record host web.test
	expect_bind_record port "$WEB_PORT"
	expect_bind_record raw_request "$(printf '05020003%02x%s%04x' 8 \
		"$(printf web.test | od -An -tx1 | tr -d ' \n')" "$WEB_PORT")"
	expect_bind_record rep 0
	expect_bind_record rep2 0
	# The BND is the server's listener on 127.0.0.2; the peer came from 127.0.0.5.
	expect_match "bnd=127\.0\.0\.2:[1-9][0-9]*"
	expect_match "accepted peer=127\.0\.0\.5:[1-9][0-9]*"
	assert_no_dns_leak
}

@test "IPv4 literal control connection: BIND DST is ATYP 1 with that address" {
	bind_ts
	bt accept 127.0.0.3 "$WEB_PORT"
	expect_bind_ok
	expect_bind_record atyp 1
	expect_bind_record host 127.0.0.3
	expect_bind_record port "$WEB_PORT"
}

@test "bind_dst = zero: BIND DST is 0.0.0.0:0" {
	bind_ts
	echo "bind_dst = zero" >>"$CONF"
	bt accept web.test "$WEB_PORT"
	expect_bind_ok
	expect_bind_record atyp 1
	expect_bind_record host 0.0.0.0
	expect_bind_record port 0
	expect_bind_record raw_request 05020001000000000000
}

@test "no CONNECT before the BIND: DST is 0.0.0.0:0" {
	bind_ts
	bt accept
	expect_bind_ok
	expect_bind_record atyp 1
	expect_bind_record host 0.0.0.0
	expect_bind_record port 0
	[[ $(count_records cmd 1) -eq 0 ]] || fail "unexpected CONNECT:" "$(cat "$TS_RECORD")"
}

@test "IPv6: AF_INET6 control to web6.test, AF_INET6 data socket, BND [::1]" {
	bind_ts
	bt accept web6.test "$WEB6_PORT" --family 6
	expect_bind_ok
	expect_bind_record atyp 3
	expect_bind_record host web6.test
	expect_bind_record port "$WEB6_PORT"
	expect_match "bnd=\[::1\]:[1-9][0-9]*"
	expect_match "accepted peer=\[::1\]:[1-9][0-9]*"
	assert_no_dns_leak
}

@test "AF_INET6 data socket, IPv4 BND: getsockname and the peer are v4-mapped" {
	bind_ts
	bt accept web.test "$WEB_PORT" --data-family 6
	expect_status 0
	wait_record_where cmd 2
	local bnd peer
	bnd=$(record_where cmd 2 bnd)
	peer=$(record_where cmd 2 accepted_from)
	expect_line "bnd=[::ffff:${bnd%:*}]:${bnd##*:}"
	expect_line "accepted peer=[::ffff:${peer%:*}]:${peer##*:}"
	expect_line "getpeername=[::ffff:${peer%:*}]:${peer##*:}"
	expect_line "data=HELLO-FROM-REMOTE"
	expect_remote_read "HELLO-FROM-CLIENT"
}

@test "reply 1 with BND 0.0.0.0: getsockname reports the proxy's address" {
	bind_ts --mode bind-zero-bnd
	bt accept web.test "$WEB_PORT"
	expect_status 0
	wait_record_where cmd 2
	local bnd
	bnd=$(record_where cmd 2 bnd)
	[[ $bnd == 0.0.0.0:* ]] || fail "the server did not send 0.0.0.0: $bnd"
	expect_line "bnd=127.0.0.1:${bnd##*:}"
	expect_line "data=HELLO-FROM-REMOTE"
	expect_remote_read "HELLO-FROM-CLIENT"
}

@test "bind on the control connection's local address, several BINDs in one process" {
	bind_ts
	bt accept web.test "$WEB_PORT" --bind-addr ctrl --rounds 3
	expect_status 0
	expect_line round=3
	[[ $(count_records cmd 2) -eq 3 ]] || fail "expected 3 BINDs:" "$(cat "$TS_RECORD")"
	[[ $(grep -c '^data=HELLO-FROM-REMOTE$' <<<"$output") -eq 3 ]] ||
		fail "expected 3 data lines:" "$output"
	[[ $(count_records remote_read $'HELLO-FROM-CLIENT\n') -eq 3 ]] ||
		fail "the remote peers did not all read HELLO-FROM-CLIENT:" "$(cat "$TS_RECORD")"
}

@test "getsockname between bind and listen (classic FTP clients, curl): already the BND" {
	# inetutils-ftp and curl -P take the PORT/EPRT port from getsockname()
	# right after bind(), before listen(): the BIND must be made by then.
	bind_ts
	bt accept web.test "$WEB_PORT" --early-getsockname
	expect_bind_ok
	expect_line "early bnd=$(record_where cmd 2 bnd)"
}

# ------------------------------------------------ non-blocking, accept4
@test "non-blocking accept: EAGAIN first, not readable before reply 2, then readable (poll, select, epoll)" {
	bind_ts --bind-connect-delay 500
	local how
	for how in poll select epoll; do
		: >"$TS_RECORD"
		bt accept web.test "$WEB_PORT" --nonblock --wait "$how"
		expect_bind_ok || return 1
		expect_line "first accept: EAGAIN"
		expect_line "ready before=0"
		expect_line "ready via $how"
		expect_line "flags nonblock=0 cloexec=0"  # accept() does not inherit
		expect_line "listen flags after nonblock=1 cloexec=0"
	done
}

@test "accept4 SOCK_NONBLOCK|SOCK_CLOEXEC: the new fd has both, the listening fd keeps its flags" {
	bind_ts
	bt accept web.test "$WEB_PORT" --accept4 nonblock,cloexec
	expect_bind_ok
	expect_line "flags nonblock=1 cloexec=1"
	expect_line "listen flags before nonblock=0 cloexec=0"
	expect_line "listen flags after nonblock=0 cloexec=0"
}

@test "plain accept on a non-blocking close-on-exec listener: a blocking fd without FD_CLOEXEC" {
	bind_ts --bind-connect-delay 200
	bt accept web.test "$WEB_PORT" --nonblock --cloexec
	expect_bind_ok
	expect_line "flags nonblock=0 cloexec=0"
	expect_line "listen flags before nonblock=1 cloexec=1"
	expect_line "listen flags after nonblock=1 cloexec=1"
}

@test "accept4 with flags 0 and NULL addr/addrlen" {
	bind_ts
	bt accept web.test "$WEB_PORT" --accept4 0 --null-addr
	expect_status 0
	expect_line "accepted peer=(null)"
	expect_line "getpeername=$(record_where cmd 2 accepted_from)"
	expect_line "flags nonblock=0 cloexec=0"
	expect_line "data=HELLO-FROM-REMOTE"
}

# -------------------------------------------------------- after accept
@test "after accept: data on the new fd never makes the old fd readable; second accept EAGAIN (poll, select, epoll)" {
	bind_ts
	local how
	for how in poll select epoll; do
		: >"$TS_RECORD"
		bt after web.test "$WEB_PORT" --wait "$how"
		expect_bind_ok || return 1
		expect_line "accepted readable=1"
		expect_line "listen readable=0 via $how"
		expect_line "second accept: EAGAIN"
		expect_line "listen readable after eof=0 via $how"
		if [[ $how == epoll ]]; then
			# Registered before accept (socksify carries it over), and fresh.
			expect_line "listen readable=0 via epoll-new"
			expect_line "listen readable after eof=0 via epoll-new"
		fi
	done
}

@test "after accept: closing the listening fd leaves the data stream working both ways" {
	bind_ts
	bt close-listen web.test "$WEB_PORT"
	expect_bind_ok
	expect_line "close listen=0"
}

@test "after accept: closing the new fd leaves the old fd a quiet listener" {
	bind_ts
	bt close-accepted web.test "$WEB_PORT"
	expect_status 0
	expect_line "close accepted=0"
	expect_line "listen readable=0 via poll"
	expect_line "second accept: EAGAIN"
	expect_line "getsockname after=0"
	expect_line "close listen=0"
	expect_remote_read ""
}

# ------------------------------------------------------------- failures
@test "reply 1 failure: listen() fails with the mapped errno" {
	local rep name
	for rep in 1:ECONNABORTED 2:EACCES 4:EHOSTUNREACH 7:EOPNOTSUPP 9:EPROTO; do
		name=${rep#*:} rep=${rep%%:*}
		start_testserver --bind-reply1 "$rep"
		bind_conf "$CONF" "$TS_PORT"
		bt accept web.test "$WEB_PORT"
		expect_errno "$name" || return 1
		expect_contains "error: listen: $name "
		expect_bind_record rep "$rep"
	done
}

@test "proxy down: listen() fails with ECONNREFUSED" {
	bind_conf "$CONF" "$(free_port)"
	bt accept
	expect_errno ECONNREFUSED
	expect_contains "error: listen: ECONNREFUSED "
}

@test "reply 2 failure: accept() fails with the mapped errno (blocking and non-blocking)" {
	local rep name
	for rep in 1:ECONNABORTED 5:ECONNREFUSED 2:EACCES; do
		name=${rep#*:} rep=${rep%%:*}
		start_testserver --bind-self-connect --bind-reply2 "$rep" --bind-connect-delay 200
		bind_conf "$CONF" "$TS_PORT"
		bt accept web.test "$WEB_PORT"
		expect_errno "$name" || return 1
		expect_contains "error: accept: $name "
		expect_line "listen=0"
		expect_bind_record rep2 "$rep"
		bt accept web.test "$WEB_PORT" --nonblock
		expect_errno "$name" || return 1
		expect_line "first accept: EAGAIN"
		expect_contains "error: accept: $name "
	done
}

@test "proxy closes between reply 1 and reply 2: accept() fails with ECONNRESET" {
	start_testserver --mode bind-close-between --bind-reply2-delay 300
	bind_conf "$CONF" "$TS_PORT"
	bt accept web.test "$WEB_PORT"
	expect_errno ECONNRESET
	expect_contains "error: accept: ECONNRESET "
	bt accept web.test "$WEB_PORT" --nonblock
	expect_errno ECONNRESET
	expect_line "first accept: EAGAIN"
	expect_contains "error: accept: ECONNRESET "
}

@test "truncated reply 2 then EOF: accept() fails with EPROTO" {
	bind_ts --mode bind-truncated-reply2
	bt accept web.test "$WEB_PORT"
	expect_errno EPROTO
	expect_contains "error: accept: EPROTO "
}

@test "reply 2 never comes: blocking accept() fails with ETIMEDOUT after bind_timeout (1.5 s)" {
	start_testserver --mode bind-no-reply2
	bind_conf "$CONF" "$TS_PORT" "bind_timeout = 1.5"
	bt accept web.test "$WEB_PORT"
	expect_errno ETIMEDOUT
	expect_contains "error: accept: ETIMEDOUT "
	# elapsed_ms: bind_test's own measure of accept().
	expect_ms "$(output_value elapsed_ms)" 1400 1500 1000 "accept()"
}

@test "reply 2 never comes: non-blocking accept() keeps saying EAGAIN and the fd never becomes readable" {
	start_testserver --mode bind-no-reply2
	bind_conf "$CONF" "$TS_PORT" "bind_timeout = 1"
	bt accept web.test "$WEB_PORT" --nonblock --timeout-ms 1500
	expect_line "first accept: EAGAIN"
	expect_line "ready before=0"
	expect_contains "error: wait: ETIMEDOUT "
}

# ----------------------------------------- slow, split and early data
@test "reply 2 delayed by 1 s: blocking accept() waits for it" {
	bind_ts --bind-reply2-delay 1000
	bt accept web.test "$WEB_PORT"
	expect_bind_ok
	# elapsed_ms: bind_test's own measure of accept(); reply 2 is 1 s late.
	expect_ms "$(output_value elapsed_ms)" 900 1000 2000 "accept()"
}

@test "reply 2 in 1-byte pieces: accept() waits for all of it, nothing is lost (blocking, non-blocking)" {
	bind_ts --mode bind-split-reply2 --split-delay 60
	bt accept web.test "$WEB_PORT"
	expect_bind_ok || return 1
	: >"$TS_RECORD"
	bt accept web.test "$WEB_PORT" --nonblock --wait poll
	expect_bind_ok
	expect_line "first accept: EAGAIN"
}

@test "every protocol byte sent separately (slow mode): BIND still works" {
	bind_ts --mode slow
	bt accept web.test "$WEB_PORT" --nonblock --wait epoll
	expect_bind_ok
}

@test "reply 2 and data in one segment: the data reaches the new fd first (blocking, non-blocking)" {
	bind_ts --mode bind-reply2-plus-data --bind-connect-delay 300
	local extra
	for extra in "" --nonblock; do
		: >"$TS_RECORD"
		# shellcheck disable=SC2086 # extra is empty or one word
		bt accept web.test "$WEB_PORT" $extra
		expect_bind_ok || return 1
		[[ $output == *$'data=EARLYDATA\ndata=HELLO-FROM-REMOTE'* ]] ||
			fail "EARLYDATA lost or out of order:" "$output"
	done
}

# ------------------------------------------------- which binds are BINDs
@test "bind then connect(): an ordinary CONNECT, no BIND" {
	bind_ts
	bt connect web.test "$WEB_PORT"
	expect_status 0
	expect_line "line=hello from web path=/bind-then-connect peer=127.0.0.2"
	wait_records 1
	expect_record cmd 1
	expect_record host web.test
	[[ $(count_records cmd 2) -eq 0 ]] || fail "unexpected BIND:" "$(cat "$TS_RECORD")"
}

@test "bind = auto: a wildcard bind to port 0 becomes a BIND" {
	start_testserver --bind-self-connect
	proxy_conf "$CONF" "$TS_PORT"
	bt accept web.test "$WEB_PORT"
	expect_bind_ok
	expect_bind_record host web.test
}

@test "bind = auto: loopback binds (also the control's reported address) stay local" {
	start_testserver --bind-self-connect
	proxy_conf "$CONF" "$TS_PORT"
	bt accept web.test "$WEB_PORT" --bind-addr loopback --local-peer
	local_listen_ok "$(output_value bnd)" || return 1
	expect_match "bnd=127\.0\.0\.1:[1-9][0-9]*"
	# The control connection reports the proxy's side (CONNECT's BND,
	# 127.0.0.2 from the test server): still loopback, still local.
	bt accept web.test "$WEB_PORT" --bind-addr ctrl --local-peer
	local_listen_ok "$(output_value bnd)"
	expect_match "bnd=127\.0\.0\.2:[1-9][0-9]*"
	bt accept web6.test "$WEB6_PORT" --family 6 --bind-addr loopback --local-peer
	local_listen_ok "$(output_value bnd)"
	expect_match "bnd=\[::1\]:[1-9][0-9]*"
}

@test "bind = auto: an explicit port stays local" {
	start_testserver --bind-self-connect
	proxy_conf "$CONF" "$TS_PORT"
	local port
	port=$(free_port) || return 1
	bt accept web.test "$WEB_PORT" --bind-port "$port" --local-peer
	local_listen_ok "0.0.0.0:$port"
}

@test "bind = never: a wildcard bind to port 0 stays local" {
	start_testserver --bind-self-connect
	proxy_conf "$CONF" "$TS_PORT" "bind = never"
	bt accept web.test "$WEB_PORT" --local-peer
	local_listen_ok "$(output_value bnd)"
	expect_match "bnd=0\.0\.0\.0:[1-9][0-9]*"
}

@test "bind = always: an explicit port and a loopback address become BINDs" {
	bind_ts
	bt accept web.test "$WEB_PORT" --bind-port "$(free_port)"
	expect_bind_ok || return 1
	: >"$TS_RECORD"
	bt accept web.test "$WEB_PORT" --bind-addr loopback
	expect_bind_ok
}

@test "the accept is logged at info level" {
	bind_ts
	echo "log_level = info" >>"$CONF"
	echo "log_file = $SFY_LOG" >>"$CONF"
	bt accept web.test "$WEB_PORT"
	expect_bind_ok
	local peer
	peer=$(record_where cmd 2 accepted_from)
	grep -q "bind on fd [0-9]*: accepted $peer as fd [0-9]*" "$SFY_LOG" ||
		fail "no accept line in the log:" "$(cat "$SFY_LOG")"
}
