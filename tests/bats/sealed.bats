#!/usr/bin/env bats
# What the sealed-mode supervisor does with a program (issue 17), on
# loopback with the project's SOCKS test server, which records every
# request: names reach it as names (ATYP 3), DNS the program sends itself
# is answered from the session pool (the sentinel on 127.0.0.53 stays
# silent), UDP it cannot relay is refused, signals during a notification,
# exit statuses, a proxy that is down, and refusal where the kernel lacks
# what sealed mode needs.  Programs run without the preload here (env -u
# LD_PRELOAD, or static ones), so only the supervisor can see them; the
# firewall-lab cases are tests/bats/lab_sealed.bats, the wrapper's are
# tests/bats/sealed_wrapper.bats.

load helpers
bats_require_minimum_version 1.5.0

CLIENTS=$BUILD/tests/sealed

setup_file() {
	common_setup_file
	"$ROOT/tests/sealed/build.sh" "$CLIENTS" >"$BATS_FILE_TMPDIR/build.log" 2>&1 ||
		fail "building the sealed-mode clients failed:" "$(tail -n 20 "$BATS_FILE_TMPDIR/build.log")" || return 1
	start_sentinel
	start_http web 127.0.0.3
	export WEB_PORT=$HTTP_PORT WEB_LOG=$HTTP_LOG
}

setup() {
	common_setup
	start_testserver
	# Loopback is not direct here: DNS to the sentinel (127.0.0.53) is the
	# supervisor's to answer all the same, as any resolver's but a
	# direct_dns one; everything else goes through the proxy.
	proxy_conf "$CONF" "$TS_PORT" "log_level = warn"
	reset_sentinel
}

# sealed CMD...: CMD under socksify --sealed with this test's config.
sealed() {
	run_isolated "$SOCKSIFY" --sealed -c "$CONF" -- "$@"
}

# A python without the preload: only the supervisor sees its calls.
NOPRELOAD=(env -u LD_PRELOAD /usr/bin/python3)

@test "a static client by name: CONNECT by name (ATYP 3) from the supervisor; its DNS answered locally" {
	run sealed "$CLIENTS/static_get" web.test "$WEB_PORT" /static
	expect_status 0
	expect_line "hello from web path=/static peer=127.0.0.2"
	wait_records 1
	expect_record host web.test
	expect_record atyp 3
	assert_no_dns_leak
}

@test "DNS a program sends itself, over connected UDP, unconnected UDP and TCP, is answered from the session pool" {
	# Three ways of asking for web.test's A record; then the preloaded
	# library in the same session must hand out the very same address.
	run sealed sh -c '"$@"; python3 -c "import socket; print(\"lib\", socket.getaddrinfo(\"web.test\", 80, socket.AF_INET)[0][4][0])"' sh \
		"${NOPRELOAD[@]}" - <<'PY'
import socket, struct
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x03web\x04test\x00" + struct.pack(">HH", 1, 1)
def addr(reply):
    assert reply[:2] == b"\x12\x34" and reply[3] & 0x0f == 0, reply
    return socket.inet_ntoa(reply[-4:])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
u.connect(("127.0.0.53", 53)); u.send(q); print("connected", addr(u.recv(512)))
v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); v.settimeout(5)
v.sendto(q, ("127.0.0.53", 53)); print("sendto", addr(v.recvfrom(512)[0]))
t = socket.create_connection(("127.0.0.53", 53), timeout=5)
t.sendall(struct.pack(">H", len(q)) + q)
n = struct.unpack(">H", t.recv(2))[0]; print("tcp", addr(t.recv(n)))
PY
	expect_status 0
	local a
	a=$(awk '$1 == "connected" { print $2 }' <<<"$output")
	[[ $a =~ ^(24[0-9]|25[0-5])\. ]] || fail "no fake address:" "$output"
	expect_line "sendto $a"
	expect_line "tcp $a"
	expect_line "lib $a"
	assert_no_dns_leak
}

@test "UDP from a program the preload does not see is refused (EPERM), and nothing is sent" {
	start_udp_sink sink 127.0.0.4
	run sealed "${NOPRELOAD[@]}" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for what, f in (("sendto", lambda: s.sendto(b"leak", ("127.0.0.4", int(sys.argv[1])))),
                ("connect", lambda: s.connect(("127.0.0.4", int(sys.argv[1]))))):
    try:
        f(); print(what, "sent")
    except OSError as e:
        print(what, e.errno == 1 and "EPERM" or e)' "$UDP_PORT"
	expect_status 0
	expect_line "sendto EPERM"
	expect_line "connect EPERM"
	sleep 0.2
	[[ ! -s $UDP_LOG ]] || fail "the datagram went out:" "$(cat "$UDP_LOG")"
}

@test "signals during a notification: a handled signal, stop and continue mid-handshake; one CONNECT, no EINTR" {
	start_testserver --mode late-reply
	proxy_conf "$CONF" "$TS_PORT" "log_level = warn"
	run sealed sh -c '"$@" & p=$!; sleep 0.4; kill -USR1 $p; sleep 0.2; kill -STOP $p; sleep 0.2; kill -CONT $p; wait $p' sh \
		"${NOPRELOAD[@]}" -c '
import signal, socket, sys, time
got = []
signal.signal(signal.SIGUSR1, lambda *a: got.append(1))
t = time.monotonic()
s = socket.create_connection(("web.test", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /late HTTP/1.0\r\n\r\n")
body = b"".join(iter(lambda: s.recv(4096), b"")).split(b"\r\n\r\n", 1)[1].decode()
print(body.strip()); print("signals", len(got)); print("ms", int((time.monotonic() - t) * 1000))' "$WEB_PORT"
	expect_status 0
	expect_line "hello from web path=/late peer=127.0.0.2"
	expect_line "signals 1"
	expect_ms "$(awk '$1 == "ms" { print $2 }' <<<"$output")" 1400 3000 1000 "the connect"
	wait_records 1
	[[ $(count_records host web.test) -eq 1 ]] || fail "expected one CONNECT:" "$(cat "$TS_RECORD")"
	assert_no_dns_leak
}

@test "exit status, death by signal and signals sent to socksify reach the program" {
	run sealed sh -c 'exit 7'
	expect_status 7
	run sealed sh -c 'kill -TERM $$'
	expect_status 143
	# socksify is the front process: a TERM sent to it goes to the program.
	run sealed sh -c 'trap "echo got-term; exit 5" TERM; kill -TERM "$(cut -d" " -f4 /proc/$PPID/stat)"; sleep 5 & wait'
	expect_status 5
	expect_line got-term
}

@test "a daemon that outlives the command stays supervised: proxied after socksify has exited" {
	local out=$BATS_TEST_TMPDIR/daemon.out
	run sealed sh -c '(sleep 0.5; "$1" web.test "$2" /daemon >"$3" 2>&1) & exit 0' sh "$CLIENTS/static_get" "$WEB_PORT" "$out"
	expect_status 0
	local i
	for ((i = 0; i < 100; i++)); do [[ -s $out ]] && break; sleep 0.05; done
	[[ $(<"$out") == "hello from web path=/daemon peer=127.0.0.2" ]] || fail "daemon:" "$(cat "$out")"
	assert_no_dns_leak
}

@test "a proxy that is down: the connect fails with ECONNREFUSED, nothing goes direct" {
	proxy_conf "$CONF" 1 "log_level = warn"
	run sealed "$CLIENTS/static_get" 127.0.0.3 "$WEB_PORT" /down
	expect_status 2
	expect_contains "ERR ECONNREFUSED"
	! grep -q /down "$WEB_LOG" || fail "the request went direct"
}

@test "an invalid config: proxied connects fail closed (EACCES)" {
	write_conf "$CONF" "proxy = socks5h://127.0.0.1:$TS_PORT" "bogus_key = 1" "direct_loopback = no"
	run sealed "$CLIENTS/static_get" 127.0.0.3 "$WEB_PORT" /invalid
	expect_status 2
	expect_contains "ERR EACCES"
	! grep -q /invalid "$WEB_LOG" || fail "the request went direct"
}

@test "no seccomp, no pidfd_getfd, or a listener already above: --sealed refuses, says why, never runs the program" {
	local marker=$BATS_TEST_TMPDIR/ran v
	for v in seccomp pidfd_getfd; do
		run run_isolated "$TESTBIN/deny_sys" "$v" "$SOCKSIFY" --sealed -c "$CONF" -- touch "$marker"
		expect_status 126
		expect_contains "not available"
		[[ ! -e $marker ]] || fail "the program ran unsealed ($v denied)"
	done
	expect_contains "pidfd_getfd"
	run run_isolated "$TESTBIN/notif_wrap" "$SOCKSIFY" --sealed -c "$CONF" -- touch "$marker"
	expect_status 126
	[[ ! -e $marker ]] || fail "the program ran unsealed under another listener"
}
