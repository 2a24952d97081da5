#!/usr/bin/env bats
# UDP through the proxy (udp = proxy, the default): RFC 1928 UDP ASSOCIATE
# on the program's own socket, through a real danted on loopback.  danted
# relays from 127.0.0.2 (and ::1), so an echo server that logs
# "from=127.0.0.2:..." proves a datagram went through the proxy; the
# program (tests/c/udp_echo) checks every echo's content and source.
# Loopback is not direct here (proxy_conf), so 127.0.0.3 is a proxied
# destination.  The lab (tests/bats/lab_udp*.bats) covers the firewall.

load helpers

# start_echo NAME HOST: a UDP echo server logging "from=ADDR:PORT len=N";
# sets ECHO_PORT and ECHO_LOG.
start_echo() {
	local name=$1 host=$2 dir
	dir=$(scope_dir)
	ECHO_LOG="$dir/echo-$name.log"
	: >"$ECHO_LOG"
	spawn "echo-$name" "$PY" -c '
import socket, sys
host, log, portfile = sys.argv[1:4]
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind((host, 0))
with open(portfile + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
import os
os.rename(portfile + ".tmp", portfile)
while True:
    data, peer = s.recvfrom(65535)
    addr = "[%s]" % peer[0] if ":" in peer[0] else peer[0]
    with open(log, "a") as f:
        f.write("from=%s:%d len=%d\n" % (addr, peer[1], len(data)))
    s.sendto(data, peer)
' "$host" "$ECHO_LOG" "$dir/echo-$name.port"
	wait_file "$dir/echo-$name.port" "$SPAWNED_PID" || return 1
	ECHO_PORT=$(<"$dir/echo-$name.port")
	export ECHO_PORT ECHO_LOG
}

setup_file() {
	common_setup_file
	start_sentinel
	# Replies to the relay need their own rule (udpreply), before the
	# helper's rules (first match).
	# "0/0" matches both families: a reply from ::1 goes to an IPv4 client.
	start_danted 'socks pass {
 from: 0/0 to: 0/0
 command: udpreply
 log: connect disconnect error
}'
}

setup() {
	common_setup
	[[ -x $TESTBIN/udp_echo ]] || fail "missing $TESTBIN/udp_echo (run make)"
	proxy_conf "$CONF" "$DANTED_PORT" "log_file = $SFY_LOG" "log_level = info"
}

# Every datagram the echo server got came from danted's external address.
expect_echo_from() {
	local want=$1
	[[ -s $ECHO_LOG ]] || fail "the echo server got nothing" || return 1
	if grep -v "^from=$want:" "$ECHO_LOG" | grep -q .; then
		fail "datagrams that did not come from $want (the proxy):" "$(cat "$ECHO_LOG")"
	fi
}

udp_out() {
	grep -v '^socksify' <<<"$output"
}

@test "unconnected sendto/recvfrom: the echo goes through danted, the source is the echo server" {
	start_echo e 127.0.0.3
	run sfy "$TESTBIN/udp_echo" 127.0.0.3 "$ECHO_PORT"
	expect_status 0
	expect_contains "ok: 1 rounds of 32 bytes from 127.0.0.3:$ECHO_PORT"
	expect_echo_from 127.0.0.2
	grep -q "udp associate" "$SFY_LOG" || fail "no association logged:" "$(cat "$SFY_LOG")"
	assert_no_dns_leak
}

@test "connected send/recv: getpeername is the program's peer; 200 round trips" {
	start_echo e 127.0.0.3
	run sfy "$TESTBIN/udp_echo" --connect --rounds 200 127.0.0.3 "$ECHO_PORT"
	expect_status 0
	expect_contains "peer: 127.0.0.3:$ECHO_PORT"
	expect_contains "ok: 200 rounds of 32 bytes"
	expect_echo_from 127.0.0.2
	[[ $(wc -l <"$ECHO_LOG") -eq 200 ]] || fail "want 200 datagrams:" "$(wc -l <"$ECHO_LOG")"
	[[ $(grep -c "udp associate .* ok" "$SFY_LOG") -eq 1 ]] || fail "want one association:" "$(cat "$SFY_LOG")"
}

@test "write/read on a connected socket; sendmsg/recvmsg; sendmmsg/recvmmsg" {
	start_echo e 127.0.0.3
	run sfy "$TESTBIN/udp_echo" --rw --rounds 5 127.0.0.3 "$ECHO_PORT"
	expect_status 0
	expect_contains "ok: 5 rounds"
	run sfy "$TESTBIN/udp_echo" --msg --rounds 5 127.0.0.3 "$ECHO_PORT"
	expect_status 0
	expect_contains "ok: 5 rounds of 32 bytes from 127.0.0.3:$ECHO_PORT"
	run sfy "$TESTBIN/udp_echo" --mmsg --rounds 5 127.0.0.3 "$ECHO_PORT"
	expect_status 0
	expect_contains "ok: 5 rounds of 32 bytes from 127.0.0.3:$ECHO_PORT"
	expect_echo_from 127.0.0.2
}

@test "8 KiB datagrams; MSG_PEEK and MSG_TRUNC report the payload's size" {
	start_echo e 127.0.0.3
	run sfy "$TESTBIN/udp_echo" --size 8192 --rounds 3 127.0.0.3 "$ECHO_PORT"
	expect_status 0
	expect_contains "ok: 3 rounds of 8192 bytes"
	grep -q "len=8192" "$ECHO_LOG" || fail "$(cat "$ECHO_LOG")"
	run sfy "$TESTBIN/udp_echo" --peek --size 100 127.0.0.3 "$ECHO_PORT"
	expect_status 0
	run sfy "$TESTBIN/udp_echo" --trunc --size 100 127.0.0.3 "$ECHO_PORT"
	expect_status 0
	expect_echo_from 127.0.0.2
}

@test "IPv6 literal [::1] through an IPv4 proxy" {
	start_echo e6 ::1
	run sfy "$TESTBIN/udp_echo" ::1 "$ECHO_PORT"
	expect_status 0
	expect_contains "ok: 1 rounds of 32 bytes from [::1]:$ECHO_PORT"
	run sfy "$TESTBIN/udp_echo" --connect ::1 "$ECHO_PORT"
	expect_status 0
	expect_echo_from '\[::1\]'
}

@test "a name only the proxy knows: sent as ATYP 3, no DNS leak" {
	start_echo e 127.0.0.3
	run sfy "$TESTBIN/udp_echo" --connect web.test "$ECHO_PORT"
	expect_status 0
	expect_match "peer: 2[45][0-9]\.[0-9.]+:$ECHO_PORT"
	expect_echo_from 127.0.0.2
	run sfy "$TESTBIN/udp_echo" web.test "$ECHO_PORT"
	expect_status 0
	expect_contains "from 127.0.0.3:$ECHO_PORT"
	assert_no_dns_leak
}

@test "fork: parent and child share the association" {
	start_echo e 127.0.0.3
	run sfy "$TESTBIN/udp_echo" --fork --rounds 4 127.0.0.3 "$ECHO_PORT"
	expect_status 0
	expect_contains "child: ok"
	expect_contains "ok: 4 rounds"
	[[ $(grep -c "udp associate .* ok" "$SFY_LOG") -eq 1 ]] || fail "want one association:" "$(cat "$SFY_LOG")"
	[[ $(wc -l <"$ECHO_LOG") -eq 8 ]] || fail "want 8 datagrams (1, 4 in the child, 3):" "$(cat "$ECHO_LOG")"
}

@test "close() ends the association: the control connection goes, no fd is left" {
	start_echo e 127.0.0.3
	proxy_conf "$CONF" "$DANTED_PORT" # no log file: its fd would count
	run sfy "$TESTBIN/udp_echo" --rounds 2 127.0.0.3 "$ECHO_PORT"
	expect_status 0
	expect_contains "fds: same"
}

@test "the control connection survives closefrom, close_range and dup2 over its number" {
	start_echo e 127.0.0.3
	run sfy "$TESTBIN/udp_echo" --closefrom --rounds 3 127.0.0.3 "$ECHO_PORT"
	expect_status 0
	expect_contains "closes: survived"
	expect_contains "ok: 3 rounds"
	[[ $(grep -c "udp associate .* ok" "$SFY_LOG") -eq 1 ]] || fail "want one association:" "$(cat "$SFY_LOG")"
}

@test "control connection killed: a clear ECONNRESET, then the next send associates again" {
	start_echo e 127.0.0.3
	local flag=$BATS_TEST_TMPDIR/killed
	sfy "$TESTBIN/udp_echo" --wait-file "$flag" 127.0.0.3 "$ECHO_PORT" >"$BATS_TEST_TMPDIR/client.out" 2>&1 &
	local pid=$! i
	for ((i = 0; i < 100; i++)); do
		grep -q "udp associate .* ok" "$SFY_LOG" 2>/dev/null && break
		sleep 0.1
	done
	sleep 0.3
	ss -K dst 127.0.0.1 dport = "$DANTED_PORT" >/dev/null 2>&1 || true
	touch "$flag"
	wait "$pid" || fail "client failed:" "$(cat "$BATS_TEST_TMPDIR/client.out")"
	output=$(cat "$BATS_TEST_TMPDIR/client.out")
	expect_contains "after kill: send failed: ECONNRESET"
	expect_contains "ok: 1 rounds"
	[[ $(grep -c "udp associate .* ok" "$SFY_LOG") -eq 2 ]] || fail "want two associations:" "$(cat "$SFY_LOG")"
}

@test "dig @SERVER where SERVER is proxied: DNS through the association, not a leak" {
	run sfy dig +tries=1 +time=3 @127.0.0.53 through-proxy.test A
	expect_contains "status: REFUSED"
	expect_contains "SERVER: 127.0.0.53#53(127.0.0.53) (UDP)"
	grep -q "through-proxy.test" "$SENTINEL_LOG" || fail "the server did not get the query"
	grep -q "udp associate" "$SFY_LOG" || fail "not through the proxy:" "$(cat "$SFY_LOG")"
	reset_sentinel
}

@test "a proxy that refuses UDP ASSOCIATE (REP 07): EOPNOTSUPP, one log line, nothing direct" {
	start_testserver --mode udp-refuse
	start_echo e 127.0.0.3
	proxy_conf "$CONF" "$TS_PORT" "log_file = $SFY_LOG"
	run sfy "$TESTBIN/udp_echo" --rounds 3 127.0.0.3 "$ECHO_PORT"
	expect_status 1
	expect_contains "error: send: EOPNOTSUPP"
	run sfy "$TESTBIN/udp_echo" --connect 127.0.0.3 "$ECHO_PORT"
	expect_contains "error: send: EOPNOTSUPP"
	sleep 0.2
	[[ ! -s $ECHO_LOG ]] || fail "a datagram went direct:" "$(cat "$ECHO_LOG")"
	[[ $(grep -c "udp associate .*replied 7" "$SFY_LOG") -eq 2 ]] || fail "want one line per program:" "$(cat "$SFY_LOG")"
}

@test "microsocks (no UDP support): the send fails, nothing goes direct" {
	local port
	port=$(free_port)
	spawn microsocks microsocks -i 127.0.0.1 -p "$port" -b 127.0.0.2
	wait_listen "$port" "$SPAWNED_PID"
	start_echo e 127.0.0.3
	proxy_conf "$CONF" "$port" "log_file = $SFY_LOG"
	run sfy "$TESTBIN/udp_echo" 127.0.0.3 "$ECHO_PORT"
	expect_status 1
	expect_match "error: send: E[A-Z]+"
	sleep 0.2
	[[ ! -s $ECHO_LOG ]] || fail "a datagram went direct:" "$(cat "$ECHO_LOG")"
	grep -q "udp associate .*failed" "$SFY_LOG" || fail "no log line:" "$(cat "$SFY_LOG")"
}

@test "udp = block still refuses with EPERM; udp = allow still goes direct" {
	start_echo e 127.0.0.3
	proxy_conf "$CONF" "$DANTED_PORT" "udp = block"
	run sfy "$TESTBIN/udp_echo" 127.0.0.3 "$ECHO_PORT"
	expect_errno EPERM
	[[ ! -s $ECHO_LOG ]] || fail "$(cat "$ECHO_LOG")"
	proxy_conf "$CONF" "$DANTED_PORT" "udp = allow"
	run sfy "$TESTBIN/udp_echo" 127.0.0.3 "$ECHO_PORT"
	expect_status 0
	expect_echo_from 127.0.0.1
}

@test "socksify --check probes UDP ASSOCIATE" {
	run run_isolated "$SOCKSIFY" -c "$CONF" --check
	expect_contains "udp       ok"
	expect_contains "udp associate ok, relay 127.0.0.1:"
	start_testserver --mode udp-refuse
	proxy_conf "$CONF" "$TS_PORT"
	run run_isolated "$SOCKSIFY" -c "$CONF" --check
	expect_status 0
	expect_contains "udp       NOT available"
	expect_contains "proxy replied 7"
}
