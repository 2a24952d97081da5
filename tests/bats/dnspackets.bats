#!/usr/bin/env bats
# DNS packets a program sends itself (dig, host, nslookup, tests/c/dnsudp):
# under remote DNS, UDP or TCP to port 53 of a destination that would go
# direct (here the sentinel's 127.0.0.53, the client's only nameserver) is
# answered inside the process with fake addresses, on the program's own
# socket, from the nameserver's address; the sentinel sees nothing.
# direct_dns and remote_dns = no let the query go out (the sentinel sees it).

load helpers

FAKE4='(24[0-9]|25[0-5])\.[0-9]+\.[0-9]+\.[0-9]+'
FAKE6='100::[0-9a-f:]+'
DIG_OPTS=(+tries=1 +time=2)

setup_file() {
	common_setup_file
	start_sentinel
	start_http web 127.0.0.3
	export WEB_PORT=$HTTP_PORT
}

setup() {
	common_setup
	start_testserver
	# Loopback stays direct (the default), so 127.0.0.53 is a direct
	# destination and its port 53 is answered here.
	write_conf "$CONF" "proxy = socks5h://127.0.0.1:$TS_PORT" "handshake_timeout = 5" \
		"log_file = $SFY_LOG" "log_level = debug"
}

# The proxy saw no request (answering DNS needs no proxy).
expect_no_proxy_request() {
	[[ ! -s $TS_RECORD ]] || fail "the proxy saw a request:" "$(cat "$TS_RECORD")"
}

@test "control: dig without socksify reaches the sentinel" {
	run run_isolated dig "${DIG_OPTS[@]}" @127.0.0.53 control.test
	grep -q 'control.test' "$SENTINEL_LOG" ||
		fail "the sentinel saw nothing; the leak checks below could not fail" "$output"
}

@test "dig: fake A and AAAA, NODATA for MX, TXT and HTTPS, no query sent" {
	run sfy dig "${DIG_OPTS[@]}" +short @127.0.0.53 web.test A
	expect_status 0
	expect_match "^$FAKE4\$"
	run sfy dig "${DIG_OPTS[@]}" +short @127.0.0.53 web.test AAAA
	expect_status 0
	expect_match "^$FAKE6\$"
	local t
	for t in MX TXT HTTPS; do
		run sfy dig "${DIG_OPTS[@]}" @127.0.0.53 web.test "$t"
		expect_status 0
		expect_contains "status: NOERROR"
		expect_contains "ANSWER: 0,"
		expect_contains "SERVER: 127.0.0.53#53(127.0.0.53) (UDP)"
	done
	assert_no_dns_leak
	expect_no_proxy_request
}

@test "dig: PTR of a fake address gives the name, in another process of the session" {
	# Two dig processes of one session: the second asks for the PTR of the
	# address the first was given (the session pool outlives the first).
	# shellcheck disable=SC2016 # expanded by the inner sh
	run sfy sh -c 'ip=$(dig "$@" +short @127.0.0.53 web.test A) && echo "A $ip" &&
		dig "$@" +short @127.0.0.53 -x "$ip"' sh "${DIG_OPTS[@]}"
	expect_status 0
	[[ ${lines[0]} =~ ^A\ $FAKE4$ ]] || fail "no fake address:" "$output"
	[[ ${lines[1]} == web.test. ]] || fail "PTR did not give the name:" "$output"
	assert_no_dns_leak
}

@test "dig +tcp: answered over TCP" {
	run sfy dig "${DIG_OPTS[@]}" +tcp @127.0.0.53 web.test A
	expect_status 0
	expect_match "web\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+$FAKE4"
	expect_contains "(TCP)"
	assert_no_dns_leak
}

@test "host and nslookup (resolv.conf's nameserver) get fake answers" {
	run sfy host -W 2 web.test
	expect_status 0
	expect_match "web\.test has address $FAKE4"
	expect_match "web\.test has IPv6 address $FAKE6"
	expect_not_contains "mail is handled" # NODATA for MX
	run sfy host -T -W 2 web.test
	expect_status 0
	expect_match "web\.test has address $FAKE4"
	run sfy nslookup -timeout=2 web.test
	expect_status 0
	expect_match "Address: $FAKE4"
	assert_no_dns_leak
}

@test "own DNS client: connected and unconnected UDP, TCP; source is the nameserver; follow-up goes through the proxy by name" {
	run sfy "$TESTBIN/dnsudp" 127.0.0.53 web.test --tcp --get "$WEB_PORT" /dnsudp
	expect_status 0
	expect_match "connected: peer=127\.0\.0\.53:53 from=127\.0\.0\.53:53 rcode=0 addr=$FAKE4"
	expect_match "unconnected: from=127\.0\.0\.53:53 rcode=0 addr=$FAKE4"
	expect_match "tcp: rcode=0 addr=$FAKE4"
	[[ $(grep -c '^source_ok=1$' <<<"$output") -eq 2 ]] || fail "an answer's source was not the nameserver:" "$output"
	expect_match "peer=$FAKE4:$WEB_PORT" # connected to the fake address it was given
	expect_contains "response: HTTP/1."
	wait_records 1
	expect_record host web.test
	expect_record port "$WEB_PORT"
	assert_no_dns_leak
}

@test "dig's fake address, connected to by another program of the session, goes through the proxy by name" {
	# shellcheck disable=SC2016 # expanded by the inner sh
	run sfy sh -c 'ip=$(dig +tries=1 +time=2 +short @127.0.0.53 web.test A) && echo "A $ip" &&
		"$1" "$ip" "$2" /dig-exec' sh "$TESTBIN/tcp_get" "$WEB_PORT"
	expect_status 0
	expect_match "^A $FAKE4"
	expect_contains "/dig-exec"
	wait_records 1
	expect_record host web.test
	expect_record port "$WEB_PORT"
	assert_no_dns_leak
}

@test "IPv6 nameserver ::1: UDP and TCP answered, source [::1]:53" {
	run sfy "$TESTBIN/dnsudp" ::1 web.test --type AAAA --tcp
	expect_status 0
	expect_match "connected: peer=\[::1\]:53 from=\[::1\]:53 rcode=0 addr=$FAKE6"
	expect_match "unconnected: from=\[::1\]:53 rcode=0 addr=$FAKE6"
	expect_match "tcp: rcode=0 addr=$FAKE6"
	assert_no_dns_leak
}

@test "the program's close_range(3, ~0) and dup2 over every fd do not break answering" {
	run sfy "$TESTBIN/dnsudp" 127.0.0.53 web.test --tcp --close-range
	expect_status 0
	expect_line "close_range: 0"
	expect_match "unconnected: from=127\.0\.0\.53:53 rcode=0 addr=$FAKE4"
	expect_match "tcp: rcode=0 addr=$FAKE4"
	run sfy "$TESTBIN/dnsudp" 127.0.0.53 web.test --tcp --dup2-all
	expect_status 0
	expect_match "dup2-all: [1-9][0-9]* fds, 0 refused"
	expect_match "unconnected: from=127\.0\.0\.53:53 rcode=0 addr=$FAKE4"
	expect_match "tcp: rcode=0 addr=$FAKE4"
	assert_no_dns_leak
}

@test "bad input to port 53: dropped, FORMERR or closed; no crash, no hang, no leak" {
	run sfy "$TESTBIN/dnsudp" 127.0.0.53 web.test --garbage
	expect_status 0
	expect_line "short: no reply"
	expect_line "response: no reply"
	expect_line "truncated: rcode=1"
	expect_match "big: (rcode=[14]|no reply)"
	expect_line "toobig: send EMSGSIZE"
	expect_line "tcp-zero: eof"
	expect_match "tcp-huge: (rcode=[14].*|eof)"
	expect_line "after: ok"
	assert_no_dns_leak
}

@test "direct_dns = 127.0.0.53: the query really goes to that resolver" {
	write_conf "$CONF" "proxy = socks5h://127.0.0.1:$TS_PORT" "direct_dns = 127.0.0.53"
	run sfy dig "${DIG_OPTS[@]}" @127.0.0.53 allowed.test A
	grep -q 'allowed.test' "$SENTINEL_LOG" || fail "the sentinel did not get the query:" "$output"
	# Another loopback nameserver is still answered here.
	reset_sentinel
	run sfy dig "${DIG_OPTS[@]}" +short @127.0.0.1 web.test A
	expect_status 0
	expect_match "^$FAKE4\$"
	assert_no_dns_leak
}

@test "direct_dns = [::1]:53 parses and lets ::1 through" {
	write_conf "$CONF" "proxy = socks5h://127.0.0.1:$TS_PORT" "direct_dns = [::1]:53" \
		"log_file = $SFY_LOG" "log_level = debug"
	run sfy dig "${DIG_OPTS[@]}" @::1 v6.test A
	# Nothing listens on [::1]:53: a real attempt times out or is refused.
	expect_not_contains "status: NOERROR"
	! grep -q "answered in the process" "$SFY_LOG" || fail "answered although direct_dns:" "$(cat "$SFY_LOG")"
}

@test "remote_dns = no: DNS goes out as the program sends it" {
	write_conf "$CONF" "proxy = socks5://127.0.0.1:$TS_PORT" "remote_dns = no"
	run sfy dig "${DIG_OPTS[@]}" @127.0.0.53 remote-off.test A
	grep -q 'remote-off.test' "$SENTINEL_LOG" || fail "the sentinel did not get the query:" "$output"
}

@test "DNS to a proxied destination stays ordinary UDP: with udp = block, refused, nothing sent" {
	# Loopback not direct: 127.0.0.53 is a proxied destination now.  (With
	# udp = proxy, the default, it goes through UDP ASSOCIATE: udp.bats.)
	proxy_conf "$CONF" "$TS_PORT" "log_file = $SFY_LOG" "udp = block"
	run sfy dig "${DIG_OPTS[@]}" @127.0.0.53 proxied.test A
	expect_not_contains "status: NOERROR"
	grep -q "refused: non-TCP traffic" "$SFY_LOG" || fail "no refusal logged:" "$(cat "$SFY_LOG")"
	run sfy "$TESTBIN/dnsudp" 127.0.0.53 proxied.test
	expect_status 1
	expect_contains "error: connect: EPERM"
	assert_no_dns_leak
	expect_no_proxy_request
}
