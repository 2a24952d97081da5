#!/usr/bin/env bats
# UDP ASSOCIATE against the project's SOCKS5 test server: its real relay
# (normal mode), and relays that misbehave on the way back
# (tests/servers/socks5_udp.py): before each echo they send the client bad
# datagrams (RSV != 0, an unknown ATYP, truncated headers, FRAG != 0,
# well-formed ones from a wrong source, the largest datagram IPv4 can
# carry), then wait 500 ms before the good one.  The client
# (tests/lab/clients/udp.py hostile) must get only the echoes: a blocking
# recv waits through the bad ones, MSG_DONTWAIT says EAGAIN, and a
# level-triggered poll loop wakes up a few times at most, not spinning (its
# wakeups and CPU time are measured inside it).  A relay that refuses UDP
# ASSOCIATE (REP 7, or microsocks) makes the send fail with EOPNOTSUPP and
# nothing goes direct.  The echo server (tests/servers/udp_lab_server.py
# on 127.0.0.3) logs every datagram's source: through the test server it is
# 127.0.0.2 (its --bind-out), a direct datagram would come from 127.0.0.1.

load helpers

UDPC=$ROOT/tests/lab/clients/udp.py
DELAY_MS=500
# A spinning level-triggered loop wakes up thousands of times in DELAY_MS;
# a correct one once per bad datagram that reaches the socket, plus the echo.
MAX_WAKEUPS=8
MAX_CPU_MS=$((150 * TIME_SCALE))
MAX_ELAPSED_MS=$(((3 * DELAY_MS + 1500) * TIME_SCALE))

setup_file() {
	common_setup_file || return 1
	[[ -f $UDPC ]] || fail "missing $UDPC" || return 1
	ECHO_PORT=$(free_port) || return 1
	export ECHO_PORT ECHO_LOG=$BATS_FILE_TMPDIR/udp-echo.log
	spawn udp-echo "$PY" "$SERVERS/udp_lab_server.py" --echo "127.0.0.3:$ECHO_PORT" \
		--log "$ECHO_LOG" --port-file "$BATS_FILE_TMPDIR/udp-echo.port"
	wait_file "$BATS_FILE_TMPDIR/udp-echo.port" "$SPAWNED_PID" || return 1
	start_sentinel
}

setup() {
	common_setup
	: >"$ECHO_LOG"
}

teardown() {
	[[ -n ${BATS_TEST_COMPLETED-} ]] || { echo "--- $ECHO_LOG"; tail -n 10 "$ECHO_LOG"; }
	common_teardown
}

# udp_client MODE [ARG] [HOST]: the python client under the shim, $CONF.
udp_client() {
	run sfy "$PY" "$UDPC" "$1" "${3:-127.0.0.3}" "$ECHO_PORT" ${2:+"$2"}
}

# expect_via_relay N: the echo server saw at least N datagrams, all from
# the test server's outbound address; nothing direct; no DNS query.
expect_via_relay() {
	local n direct
	n=$(grep -c '^echo from=127\.0\.0\.2:' "$ECHO_LOG" || true)
	direct=$(grep -vc '^echo from=127\.0\.0\.2:' "$ECHO_LOG" || true)
	((n >= $1)) || fail "the echo server saw $n datagrams via the relay (want >= $1):" "$(cat "$ECHO_LOG")" || return 1
	((direct == 0)) || fail "datagrams reached the echo server not via the relay:" "$(cat "$ECHO_LOG")" || return 1
	assert_no_dns_leak
}

# expect_bounded [any]: the hostile client's wakeups, CPU time and elapsed
# time; without "any", at least one wakeup found only bad datagrams.
expect_bounded() {
	local w c e
	[[ $output =~ wakeups=([0-9]+)\ eagain=([0-9]+)\ cpu_ms=([0-9]+) ]] ||
		fail "no wakeups line; status $status; output:" "$output" || return 1
	w=${BASH_REMATCH[1]} c=${BASH_REMATCH[3]}
	# The bad datagrams were waiting when the loop began: at least one
	# wakeup found only them (EAGAIN), so the case was exercised.
	[[ ${1-} == any ]] || ((BASH_REMATCH[2] >= 1)) || fail "no wakeup met only bad datagrams (eagain=0)" "$output" || return 1
	((w <= MAX_WAKEUPS)) || fail "the poll loop woke up $w times (max $MAX_WAKEUPS): spinning" "$output" || return 1
	((c <= MAX_CPU_MS)) || fail "the poll loop used $c ms of CPU (max $MAX_CPU_MS)" "$output" || return 1
	e=$(output_value elapsed_ms) || fail "no elapsed_ms; output:" "$output" || return 1
	((e <= MAX_ELAPSED_MS)) || fail "took $e ms (max $MAX_ELAPSED_MS)" "$output"
}

# hostile MODE: the hostile client through a test server in MODE; only the
# echoes arrive, bounded, via the relay.
hostile() {
	start_testserver --mode "$1" --udp-delay "$DELAY_MS" || return 1
	proxy_conf "$CONF" "$TS_PORT"
	udp_client hostile "$DELAY_MS"
	expect_status 0 || return 1
	expect_line "blocking=probe-block:11" || return 1
	expect_line "dontwait=EAGAIN" || return 1
	expect_line "poll=probe-poll:10" || return 1
	expect_bounded || return 1
	expect_via_relay 3
}

# ----------------------------------------------------- the real relay
@test "test server relay: unconnected, connected and 8 KiB datagrams, via the relay" {
	start_testserver
	proxy_conf "$CONF" "$TS_PORT"
	udp_client unconnected
	expect_status 0 || return 1
	expect_line "from=127.0.0.3:$ECHO_PORT" || return 1
	udp_client connected
	expect_status 0 || return 1
	expect_line "peer=127.0.0.3:$ECHO_PORT" || return 1
	udp_client big
	expect_status 0 || return 1
	expect_line "big=ok len=8192" || return 1
	expect_via_relay 3 || return 1
	# UDP ASSOCIATE (CMD 3), each datagram with a header the relay read.
	grep -q '"cmd": 3' "$TS_RECORD" || fail "no UDP ASSOCIATE recorded:" "$(cat "$TS_RECORD")" || return 1
	[[ $(grep -c '"action": "relayed"' "$TS_RECORD") -ge 3 ]] ||
		fail "fewer than 3 datagrams relayed:" "$(cat "$TS_RECORD")"
}

@test "test server relay: a name goes as ATYP 3, resolved by the proxy" {
	start_testserver
	proxy_conf "$CONF" "$TS_PORT"
	udp_client unconnected "" web.test
	expect_status 0 || return 1
	expect_via_relay 1 || return 1
	grep '"udp": "in"' "$TS_RECORD" | grep -q '"atyp": 3.*"host": "web.test"' ||
		fail "no datagram with ATYP 3 web.test:" "$(cat "$TS_RECORD")"
}

@test "BND 0.0.0.0 in the reply: datagrams go to the proxy's own address" {
	start_testserver --mode udp-bnd-zero
	proxy_conf "$CONF" "$TS_PORT"
	udp_client rounds 5
	expect_status 0 || return 1
	expect_line "rounds=5" || return 1
	expect_via_relay 5
}

# ----------------------------------------------------- hostile relays
@test "hostile relay: RSV != 0 dropped, no spin" {
	hostile udp-bad-rsv
}

@test "hostile relay: unknown ATYP (9 and 0) dropped, no spin" {
	hostile udp-bad-atyp
}

@test "hostile relay: truncated headers (empty, 2 bytes, cut address, short name) dropped, no spin" {
	hostile udp-truncated
}

@test "hostile relay: FRAG != 0 dropped, no spin" {
	hostile udp-frag
}

@test "hostile relay: datagrams from a wrong source (other port, other address) dropped, no spin" {
	hostile udp-wrong-source
}

@test "hostile relay: a 65507-byte datagram: no crash; if delivered, whole, and the echoes still come" {
	start_testserver --mode udp-oversize --udp-delay "$DELAY_MS" || return 1
	proxy_conf "$CONF" "$TS_PORT"
	udp_client hostile "$DELAY_MS"
	[[ $status -le 1 ]] || fail "status $status (crash?); output:" "$output" || return 1
	local big="OVERSIZExxxx:65497"
	[[ $(output_value blocking) =~ ^($big,)?probe-block:11$ ]] || fail "blocking:" "$output" || return 1
	[[ $(output_value dontwait) =~ ^($big,)?EAGAIN$ ]] || fail "dontwait:" "$output" || return 1
	[[ $(output_value poll) =~ ^($big,)?probe-poll:10$ ]] || fail "poll:" "$output" || return 1
	expect_bounded any || return 1
	expect_via_relay 3
}

# ------------------------------------------------------------ refusals
@test "a relay that refuses UDP ASSOCIATE (REP 7): EOPNOTSUPP, nothing direct" {
	start_testserver --mode udp-refuse
	proxy_conf "$CONF" "$TS_PORT"
	udp_client unconnected
	expect_status 1 || return 1
	expect_match "error: sendto: EOPNOTSUPP " || return 1
	[[ ! -s $ECHO_LOG ]] || fail "a datagram reached the echo server:" "$(cat "$ECHO_LOG")" || return 1
	grep -q '"cmd": 3' "$TS_RECORD" || fail "no UDP ASSOCIATE asked:" "$(cat "$TS_RECORD")" || return 1
	assert_no_dns_leak
}

@test "microsocks (no UDP ASSOCIATE): the send fails, nothing direct" {
	local port
	port=$(free_port) || return 1
	spawn microsocks microsocks -i 127.0.0.1 -p "$port" -b 127.0.0.2
	wait_listen "$port" "$SPAWNED_PID" || return 1
	proxy_conf "$CONF" "$port"
	udp_client unconnected
	expect_status 1 || return 1
	expect_match "error: sendto: EOPNOTSUPP " || return 1
	[[ ! -s $ECHO_LOG ]] || fail "a datagram reached the echo server:" "$(cat "$ECHO_LOG")" || return 1
	assert_no_dns_leak
}
