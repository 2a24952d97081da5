#!/usr/bin/env bats
# What a proxied connect() costs in system calls, pinned call by call, and
# the two things that cut it: facts the hooks keep about each socket (so
# connect() need not ask the kernel), and the options that trade socksify's
# own time limits (timeouts of 0) or the proxy's patience (pipeline = yes)
# for fewer calls.  Also: stale socket facts fail closed, and pipelining
# against a proxy that cannot take it (microsocks) times out rather than
# hangs, while the default works with it.

load helpers

setup_file() {
	common_setup_file
	start_http web 127.0.0.3
	export WEB_PORT=$HTTP_PORT WEB_LOG=$HTTP_LOG
}

setup() {
	common_setup
	TRACE=$BATS_TEST_TMPDIR/trace
}

# The exact sequences need the release build: ASan adds calls of its own.
release_only() {
	[[ -z $ASAN_RT ]] || skip "exact system calls: release build only"
}

# traced CMD...: run CMD under socksify ($CONF) and strace, into $TRACE.
traced() {
	run run_isolated env SOCKSIFY_CONF="$CONF" LD_PRELOAD="$PRELOAD" \
		strace -f -qq -o "$TRACE" "$@"
}

# connect_calls: names of the system calls from the program's TCP socket()
# up to its first output after connect(); the program's own socket(),
# connect() and getpeername() are left out, and so is the mmap() of the fd
# table's first chunk (once per process), so what remains is what socksify
# adds to every connection.
connect_calls() {
	awk '/socket\(AF_INET6?, SOCK_STREAM/ { on = 1; next }
	     on && (/^[0-9]+ +write\(/ || /"GET /) { exit }
	     on && /^[0-9]+ +mmap\(/ { next }
	     on { sub(/^[0-9]+ +/, ""); name = $0; sub(/\(.*/, "", name)
	          if (name != "getpeername" && !(name == "connect" && !seen++)) print name }' "$TRACE" |
		tr '\n' ' '
}

expect_calls() {
	local got
	got=$(connect_calls)
	[[ $got == "$1" ]] || fail "socksify's calls: '$got'" "expected:        '$1'" "$(cat "$TRACE")"
}

expect_web_via_proxy() {
	expect_status 0 || return 1
	expect_contains "peer=127.0.0.2"
}

@test "blocking CONNECT, default limits: 8 calls (4 of them keep the timeouts)" {
	release_only
	start_testserver
	proxy_conf "$CONF" "$TS_PORT" "connect_timeout = 3"
	traced "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /budget
	expect_web_via_proxy
	expect_calls "setsockopt setsockopt sendto poll recvfrom sendto poll recvfrom "
	# SO_SNDTIMEO (a struct timeval) to 3 s around connect(), then back to 0
	[[ $(grep -c 'SO_SNDTIMEO.*"\\3\\0\\0\\0\\0\\0\\0\\0\\0\\0' "$TRACE") -eq 1 &&
		$(grep -c 'SO_SNDTIMEO.*"\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0' "$TRACE") -eq 1 ]] ||
		fail "connect() was not bounded by a 3 s SO_SNDTIMEO, put back to 0:" "$(grep SNDTIMEO "$TRACE")"
}

@test "blocking CONNECT with connect_timeout = 0 and handshake_timeout = 0: the native client's 4 calls" {
	release_only
	start_testserver
	proxy_conf "$CONF" "$TS_PORT" "connect_timeout = 0" "handshake_timeout = 0"
	traced "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /budget0
	expect_web_via_proxy
	expect_calls "sendto recvfrom sendto recvfrom "
}

@test "pipeline = yes with no limits: 3 calls, one write for greeting and request" {
	release_only
	start_testserver
	proxy_conf "$CONF" "$TS_PORT" "connect_timeout = 0" "handshake_timeout = 0" "pipeline = yes"
	traced "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /pipe0
	expect_web_via_proxy
	expect_calls "sendto recvfrom recvfrom "
	expect_record methods "[0]"
}

# connect() returns EINPROGRESS at once; the handshake runs inside the
# program's own poll() (the first poll is the program's, the others the
# hook's waits for the proxy's answers), and SO_ERROR is the program's
# check.  getpid() is once per process, at its first asynchronous handshake.
@test "non-blocking CONNECT (event loop): the handshake runs in the program's poll, the fd never changes mode" {
	release_only
	start_testserver
	proxy_conf "$CONF" "$TS_PORT"
	traced "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /nb --nonblock
	expect_web_via_proxy
	expect_calls "fcntl fcntl getpid poll sendto poll recvfrom sendto poll recvfrom getsockopt "
	! grep -E 'fcntl\(3, F_SETFL, O_RDWR\)|SO_SNDTIMEO' "$TRACE" ||
		fail "the fd's mode or timeout was touched:" "$(grep -E 'F_SETFL|SNDTIMEO' "$TRACE")"
}

@test "a socket socksify did not see created asks the kernel once for its protocol and mode" {
	release_only
	start_testserver
	proxy_conf "$CONF" "$TS_PORT"
	traced "$PY" -c '
import ctypes, socket, sys
# syscall() of libc itself, looked up in libc: the library hooks the
# one the global scope finds (tests/bats/sealed_wrapper.bats).
libc = ctypes.CDLL("libc.so.6", use_errno=True)
fd = libc.syscall(41, socket.AF_INET, socket.SOCK_STREAM, 0)  # SYS_socket, behind the hooks
s = socket.socket(fileno=fd)
s.connect(("127.0.0.3", int(sys.argv[1])))
print("peer=%s:%d" % s.getpeername(), file=sys.stderr)
s.sendall(b"GET /unseen HTTP/1.0\r\n\r\n")
print(s.makefile("rb").read().decode(errors="replace"))' "$WEB_PORT"
	expect_web_via_proxy
	grep -q 'SO_PROTOCOL' "$TRACE" || fail "the protocol was not asked for"
	grep -q 'F_GETFL' "$TRACE" || fail "the mode was not asked for"
}

@test "stale facts fail closed: a UDP socket behind a number socket() gave TCP is never sent direct" {
	start_testserver
	proxy_conf "$CONF" "$TS_PORT" "udp = allow" "handshake_timeout = 1" "connect_timeout = 1"
	run sfy "$PY" -c '
import ctypes, socket, sys
libc = ctypes.CDLL("libc.so.6", use_errno=True)  # the syscall() of libc itself, not the hooked one
t = socket.socket()                      # the hooks note: TCP
fd = t.detach()
libc.__close_nocancel(fd)                # a libc-internal close, behind the hooks (closefrom, close, syscall() are seen)
u = libc.syscall(41, socket.AF_INET, socket.SOCK_DGRAM, 0)
assert u == fd, (u, fd)
s = socket.socket(fileno=u)
try:
    s.connect(("127.0.0.3", int(sys.argv[1])))
    s.send(b"GET /stale HTTP/1.0\r\n\r\n")
    print("connected")
except OSError as e:
    print("refused", e.errno)' "$WEB_PORT"
	expect_status 0
	expect_contains "refused"
	! grep -q /stale "$WEB_LOG" || fail "the datagram socket reached the destination"
}

@test "ioctl(FIONBIO) back to blocking is seen: connect_timeout still bounds connect()" {
	start_testserver --blackhole
	proxy_conf "$CONF" "$TS_PORT" "connect_timeout = 1"
	run sfy "$PY" -c '
import errno, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
s.setblocking(True)                      # ioctl(FIONBIO, 0)
t0 = time.monotonic()
try:
    s.connect(("127.0.0.3", int(sys.argv[1])))
except OSError as e:
    print("connect:", errno.errorcode[e.errno])
print("connect_ms=%d" % ((time.monotonic() - t0) * 1000))' "$WEB_PORT"
	expect_contains "connect: ETIMEDOUT"
	expect_connect_ms 900 1000 1000
}

@test "a program's own SO_SNDTIMEO survives the bounded connect()" {
	start_testserver
	proxy_conf "$CONF" "$TS_PORT"
	run sfy "$PY" -c '
import socket, struct, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 7, 500000))
s.connect(("127.0.0.3", int(sys.argv[1])))
print("sndtimeo", struct.unpack("ll", s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16)))
u = socket.socket()
u.connect(("127.0.0.3", int(sys.argv[1])))
print("fresh", struct.unpack("ll", u.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16)))' "$WEB_PORT"
	expect_status 0
	expect_contains "sndtimeo (7, 500000)"
	expect_contains "fresh (0, 0)"
}

@test "handshake_timeout = 0: a proxy slower than the default limit is waited for" {
	start_testserver --mode late-reply
	proxy_conf "$CONF" "$TS_PORT" "handshake_timeout = 0"
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /slow
	expect_web_via_proxy
	# The reply comes 1.5 s late; connect() waited for it.
	expect_connect_ms 1400 1500 1000
	start_testserver --mode late-reply
	proxy_conf "$CONF" "$TS_PORT" "handshake_timeout = 0.5"
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /slow
	expect_errno ETIMEDOUT
}

@test "pipeline = yes with RFC 1929: one write, the server sees only method 2 and the right credentials" {
	start_testserver --auth "u1:p1"
	proxy_conf "$CONF" "$TS_PORT" "pipeline = yes" "username = u1" "password = p1"
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /pipeauth
	expect_web_via_proxy
	expect_record methods "[2]"
	expect_record auth_ok True
}

@test "pipeline = yes through danted (one read per message is not required by it)" {
	start_danted
	proxy_conf "$CONF" "$DANTED_PORT" "pipeline = yes"
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /pipedanted
	expect_web_via_proxy
	grep -q /pipedanted "$WEB_LOG" || fail "the request did not arrive"
}

# microsocks reads one message per recv() and so never answers a pipelined
# request: the reason pipelining is off by default.
start_microsocks() {
	local port
	port=$(free_port) || return 1
	spawn microsocks microsocks -i 127.0.0.1 -p "$port" -b 127.0.0.2
	wait_listen "$port" "$SPAWNED_PID" || return 1
	MS_PORT=$port
}

@test "microsocks: the default exchange works" {
	start_microsocks
	write_conf "$CONF" "proxy = socks5://127.0.0.1:$MS_PORT" "direct_loopback = no"
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /micro
	expect_web_via_proxy
	grep -q /micro "$WEB_LOG" || fail "the request did not arrive"
}

@test "microsocks with pipeline = yes: ETIMEDOUT within handshake_timeout, not a hang" {
	start_microsocks
	write_conf "$CONF" "proxy = socks5://127.0.0.1:$MS_PORT" "direct_loopback = no" \
		"pipeline = yes" "handshake_timeout = 1"
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /micropipe
	expect_errno ETIMEDOUT
	expect_connect_ms 0 1000 1000
	! grep -q /micropipe "$WEB_LOG" || fail "the request arrived after all"
}

@test "pipeline = yes against a misbehaving proxy: the same errors as the stepwise exchange" {
	local mode want
	for pair in no-method:EACCES truncated-reply:EPROTO bad-atyp:EPROTO close-after-greeting:ECONNRESET; do
		mode=${pair%%:*} want=${pair#*:}
		start_testserver --mode "$mode"
		proxy_conf "$CONF" "$TS_PORT" "pipeline = yes" "handshake_timeout = 2"
		run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" "/pipe-$mode"
		expect_errno "$want" || return 1
	done
	start_testserver --auth "u1:p1"
	proxy_conf "$CONF" "$TS_PORT" "pipeline = yes" "username = u1" "password = wrong"
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /pipe-badpass
	expect_errno EACCES
	! grep -q /pipe- "$WEB_LOG" || fail "a request reached the web server"
}

@test "timeouts = 0 on a socket made non-blocking behind the hooks: the exchange falls back to polling" {
	start_testserver
	proxy_conf "$CONF" "$TS_PORT" "connect_timeout = 0" "handshake_timeout = 0"
	run sfy "$PY" -c '
import ctypes, fcntl, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
s = socket.socket()                                  # the hooks note: blocking
libc.syscall(72, s.fileno(), fcntl.F_SETFL, os.O_RDWR | os.O_NONBLOCK)  # SYS_fcntl, behind them
s.connect(("127.0.0.3", int(sys.argv[1])))
print("peer=%s:%d" % s.getpeername(), file=sys.stderr)
libc.syscall(72, s.fileno(), fcntl.F_SETFL, os.O_RDWR)
s.sendall(b"GET /behind HTTP/1.0\r\n\r\n")
print(s.makefile("rb").read().decode(errors="replace"))' "$WEB_PORT"
	expect_web_via_proxy
	expect_contains "path=/behind"
}
