#!/usr/bin/env bats
# Which connections go direct and which through the proxy, UDP policy,
# timeouts and broken configuration.  A per-test SOCKS5 test server records
# every request, so "nothing reached the proxy" is checkable; connections
# via the proxy arrive from 127.0.0.2, direct ones from 127.0.0.1.

load helpers

setup_file() {
	common_setup_file
	start_sentinel
	start_http web 127.0.0.3
	export WEB_PORT=$HTTP_PORT WEB_LOG=$HTTP_LOG
	start_http other 127.0.0.3
	export OTHER_PORT=$HTTP_PORT
	start_http web6 ::1
	export WEB6_PORT=$HTTP_PORT
}

setup() {
	common_setup
	start_testserver
}

expect_direct() {
	expect_status 0 || return 1
	expect_contains "peer=127.0.0.1" || return 1
	[[ ! -s $TS_RECORD ]] ||
		fail "the proxy saw a request:" "$(cat "$TS_RECORD")"
}

expect_proxied() {
	expect_status 0 || return 1
	expect_contains "peer=127.0.0.2" || return 1
	wait_records 1
}

@test "loopback is direct by default" {
	write_conf "$CONF" "proxy = socks5h://127.0.0.1:$TS_PORT"
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /lo
	expect_direct
}

@test "::1 is direct by default" {
	write_conf "$CONF" "proxy = socks5h://127.0.0.1:$TS_PORT"
	run sfy "$TESTBIN/tcp_get" ::1 "$WEB6_PORT" /lo6
	expect_status 0
	[[ ! -s $TS_RECORD ]] || fail "proxied: $(cat "$TS_RECORD")"
}

@test "direct_loopback = no sends loopback through the proxy" {
	proxy_conf "$CONF" "$TS_PORT"
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /nolo
	expect_proxied
}

@test "direct = CIDR" {
	proxy_conf "$CONF" "$TS_PORT" "direct = 127.0.0.0/30"
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /cidr
	expect_direct
}

@test "direct = CIDR that does not match is proxied" {
	proxy_conf "$CONF" "$TS_PORT" "direct = 127.0.0.4/30"
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /cidr-miss
	expect_proxied
}

@test "direct = CIDR:PORT only matches that port" {
	proxy_conf "$CONF" "$TS_PORT" "direct = 127.0.0.3/32:$WEB_PORT"
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /port-hit
	expect_direct
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$OTHER_PORT" /port-miss
	expect_proxied
	expect_record port "$OTHER_PORT"
}

@test "direct = [IPv6]/len:PORT" {
	proxy_conf "$CONF" "$TS_PORT" "direct = [::1]/128:$WEB6_PORT"
	run sfy "$TESTBIN/tcp_get" ::1 "$WEB6_PORT" /v6-direct
	expect_status 0
	[[ ! -s $TS_RECORD ]] || fail "proxied: $(cat "$TS_RECORD")"
}

@test "direct = IPv6 CIDR that does not match is proxied" {
	proxy_conf "$CONF" "$TS_PORT" "direct = 2001:db8::/32"
	run sfy "$TESTBIN/tcp_get" ::1 "$WEB6_PORT" /v6-proxied
	expect_status 0
	wait_records 1
	expect_record atyp 4
}

@test "several direct lines all apply" {
	proxy_conf "$CONF" "$TS_PORT" "direct = 10.0.0.0/8" \
		"direct = 127.0.0.3/32"
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /multi
	expect_direct
}

# The udp_send result lines, without socksify's own log lines.
udp_results() {
	grep -v '^socksify\[' <<<"$output" || true
}

# expect_datagrams: both of udp_send's datagrams reached the UDP sink (a
# sendto() that returned is not proof: the datagram must arrive).
expect_datagrams() {
	local i
	for ((i = 0; i < WAIT_SECS * 20; i++)); do
		grep -qx 'from=.* data=socksify-udp-test sendto\\n' "$UDP_LOG" &&
			grep -qx 'from=.* data=socksify-udp-test connect+send\\n' "$UDP_LOG" &&
			return 0
		sleep 0.05
	done
	fail "the UDP sink did not get both datagrams; it logged:" "$(cat "$UDP_LOG")"
}

@test "udp = block: UDP to a non-direct destination is blocked with EPERM" {
	start_udp_sink sink 127.0.0.3
	proxy_conf "$CONF" "$TS_PORT" "udp = block"
	run sfy "$TESTBIN/udp_send" 127.0.0.3 "$UDP_PORT"
	expect_status 1
	local res
	mapfile -t res < <(udp_results)
	[[ ${res[0]} == "error: sendto: EPERM "* ]] || fail "$output"
	[[ ${res[1]} == "error: connect: EPERM "* ||
		${res[1]} == "error: send: EPERM "* ]] || fail "$output"
	sleep 0.2 # a datagram that got out would be logged by now
	[[ ! -s $UDP_LOG ]] || fail "a blocked datagram arrived:" "$(cat "$UDP_LOG")"
}

@test "udp = allow lets UDP through" {
	start_udp_sink sink 127.0.0.3
	proxy_conf "$CONF" "$TS_PORT" "udp = allow"
	run sfy "$TESTBIN/udp_send" 127.0.0.3 "$UDP_PORT"
	expect_status 0
	[[ $(udp_results) == $'sendto: ok\nconnect+send: ok' ]] || fail "$output"
	expect_datagrams
}

@test "UDP to a direct destination is allowed" {
	start_udp_sink sink 127.0.0.3
	write_conf "$CONF" "proxy = socks5h://127.0.0.1:$TS_PORT"
	run sfy "$TESTBIN/udp_send" 127.0.0.3 "$UDP_PORT"
	expect_status 0
	[[ $(udp_results) == $'sendto: ok\nconnect+send: ok' ]] || fail "$output"
	expect_datagrams
}

# Times: tcp_get's own measure of connect() (connect_ms=), so start-up of
# the namespace, the wrapper and the program never counts.
@test "handshake_timeout accepts decimals" {
	start_testserver --mode silent
	proxy_conf "$CONF" "$TS_PORT" "handshake_timeout = 0.5"
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /
	expect_errno ETIMEDOUT
	expect_connect_ms 400 500 1000
}

@test "connect_timeout: a proxy that never answers the SYN -> ETIMEDOUT" {
	start_testserver --blackhole
	proxy_conf "$CONF" "$TS_PORT" "connect_timeout = 1"
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /bh
	expect_errno ETIMEDOUT
	expect_connect_ms 900 1000 1000
}

@test "connect_timeout with a non-blocking connect" {
	start_testserver --blackhole
	proxy_conf "$CONF" "$TS_PORT" "connect_timeout = 1"
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /bh --nonblock
	expect_errno ETIMEDOUT
	expect_connect_ms 900 1000 1000
}

# A broken config fails closed for connections that would be proxied.
# (By name: the library keeps default direct rules, e.g. loopback, then.)
@test "broken config: one FILE:LINE message, no crash, EACCES" {
	write_conf "$CONF" "proxy = socks5h://127.0.0.1:$TS_PORT" \
		"# a comment" "no_such_key = 1" "direct_loopback = no"
	run sfy "$TESTBIN/threads" web.test "$WEB_PORT" 2 2
	expect_status 1          # not killed by a signal
	[[ $(grep -c "^socksify\[[0-9]*\]: $CONF:3: " <<<"$output") -eq 1 ]] ||
		fail "expected exactly one '$CONF:3:' message:" "$output"
	[[ $(grep -c "connect: EACCES" <<<"$output") -eq 4 ]] ||
		fail "expected 4 x EACCES:" "$output"
	[[ ! -s $TS_RECORD ]] || fail "a broken config must not connect"
	assert_no_dns_leak
}

@test "broken config: bad value is reported with its line" {
	write_conf "$CONF" "proxy = ftp://nowhere" "handshake_timeout = 5"
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /
	expect_errno EACCES
	expect_contains "$CONF:1: "
}

@test "broken config: non-socket programs still run" {
	write_conf "$CONF" "this line is not key = value ="
	run sfy sh -c 'echo still-alive'
	expect_status 0
	expect_contains still-alive
}

# When the configuration is read: the environment is noted at load, the
# configuration itself at the first call that needs it (or before a fork).

@test "the environment counts as it was at load: a program changing it later still uses its proxy" {
	proxy_conf "$CONF" "$TS_PORT"
	run sfy "$PY" -c '
import os, socket, sys
os.environ["SOCKSIFY_CONF"] = "/nonexistent.conf"
os.environ["SOCKSIFY_PROXY"] = "socks5h://127.0.0.1:9"
os.environ["HOME"] = "/nonexistent"
s = socket.create_connection(("web.test", int(sys.argv[1])))
s.sendall(b"GET /envlate HTTP/1.0\r\nHost: web.test\r\n\r\n")
print(s.makefile("rb").read().decode(errors="replace"))' "$WEB_PORT"
	expect_proxied
	expect_record host web.test
}

@test "a program that never uses the network never reads the configuration" {
	proxy_conf "$CONF" "$TS_PORT"
	run run_isolated env SOCKSIFY_CONF="$CONF" LD_PRELOAD="$PRELOAD" \
		strace -f -e trace=%file,%desc -o "$BATS_TEST_TMPDIR/trace" \
		sh -c 'cat /etc/hostname /dev/null >/dev/null; exec 3</dev/null; exec 3<&-'
	expect_status 0
	! grep -F "$CONF" "$BATS_TEST_TMPDIR/trace" ||
		fail "the configuration was read:" "$(grep -F "$CONF" "$BATS_TEST_TMPDIR/trace")"
	run run_isolated env SOCKSIFY_CONF="$CONF" LD_PRELOAD="$PRELOAD" \
		strace -f -e trace=%file -o "$BATS_TEST_TMPDIR/trace" "$TESTBIN/resolve" web.test
	expect_status 0
	grep -qF "$CONF" "$BATS_TEST_TMPDIR/trace" || fail "a resolving program did not read $CONF"
}

@test "a relative SOCKSIFY_CONF is read at load, before the program changes directory" {
	proxy_conf "$BATS_TEST_TMPDIR/rel.conf" "$TS_PORT"
	cd "$BATS_TEST_TMPDIR"
	run run_isolated env SOCKSIFY_CONF=rel.conf LD_PRELOAD="$PRELOAD" "$PY" -c '
import os, socket, sys
os.chdir("/")
s = socket.create_connection(("web.test", int(sys.argv[1])))
s.sendall(b"GET /relconf HTTP/1.0\r\nHost: web.test\r\n\r\n")
print(s.makefile("rb").read().decode(errors="replace"))' "$WEB_PORT"
	expect_proxied
}

@test "fork before any name was resolved: the child's name works in the parent (shared fake pool)" {
	proxy_conf "$CONF" "$TS_PORT"
	run sfy "$PY" -c '
import os, socket, sys
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    addr = socket.getaddrinfo("web.test", None, socket.AF_INET)[0][4][0]
    os.write(w, addr.encode())
    os._exit(0)
os.waitpid(pid, 0)
addr = os.read(r, 64).decode()
print("child got", addr)
s = socket.create_connection((addr, int(sys.argv[1])))
s.sendall(b"GET /forkpool HTTP/1.0\r\nHost: web.test\r\n\r\n")
print(s.makefile("rb").read().decode(errors="replace"))' "$WEB_PORT"
	expect_match "child got (24[0-9]|25[0-5])\\."
	expect_proxied
	expect_record host web.test
}
