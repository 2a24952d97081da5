#!/usr/bin/env bats
# Happy eyeballs through a slow proxy.  A name resolves to two fake
# addresses (IPv4 and IPv6) for AF_UNSPEC; a happy-eyeballs client starts
# the second when the first has not connected in 200-300 ms, and through a
# slow proxy the SOCKS handshake is part of that time.  socksify holds the
# second attempt back (no proxy connection) while the first is under way:
# it goes if the first fails, and a client that won with the first closes
# it.  The proxy's record counts the connections it got.

load helpers

setup_file() {
	common_setup_file
	start_http web 127.0.0.3
	export WEB_PORT=$HTTP_PORT
}

# A client that does what node's and curl's happy eyeballs do, with both
# sockets non-blocking: connect to the IPv4 fake address, then to the IPv6
# one, then wait in poll() for either.  Prints the addresses' families, what
# each socket reported, and SO_ERROR.
EYEBALLS='
import errno, select, socket, sys, time
infos = socket.getaddrinfo(sys.argv[1], int(sys.argv[4]), socket.AF_UNSPEC, socket.SOCK_STREAM)
fams = [i[0] for i in infos]
print("families", " ".join("v4" if f == socket.AF_INET else "v6" for f in fams))
socks = []
for fam, _, _, _, addr in infos[:2]:
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setblocking(False)
    rc = s.connect_ex(addr)
    print("connect", "v4" if fam == socket.AF_INET else "v6", errno.errorcode.get(rc, rc))
    socks.append(s)
    time.sleep(0.3)  # the happy-eyeballs head start
p = select.poll()
for s in socks:
    p.register(s, select.POLLOUT)
end = time.monotonic() + float(sys.argv[2])
seen = {}
while time.monotonic() < end and len(seen) < int(sys.argv[3]):
    for fd, ev in p.poll(100):
        if fd not in seen:
            seen[fd] = ev
            p.unregister(fd)
            s = socks[0] if fd == socks[0].fileno() else socks[1]
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            name = "v4" if s is socks[0] else "v6"
            print("ready", name, "err" if ev & select.POLLERR else "ok", errno.errorcode.get(err, err),
                  "after", int((time.monotonic() - end + float(sys.argv[2])) * 1000), "ms")
    if socks[0].fileno() in seen and sys.argv[3] == "1":
        break
for s in socks:
    s.close()
'

@test "happy eyeballs: the second family waits while the first handshake runs; one proxy connection" {
	start_testserver --mode late-reply
	proxy_conf "$CONF" "$TS_PORT"
	run sfy "$PY" -c "$EYEBALLS" web.test 5 1 "$WEB_PORT"
	expect_status 0
	expect_contains "families v4 v6"
	expect_contains "connect v4 EINPROGRESS"
	expect_contains "connect v6 EINPROGRESS"
	expect_match "ready v4 ok 0 after"
	expect_not_contains "ready v6"
	sleep 1.5 # the grace second: a closed held-back attempt never connects
	[[ $(wc -l <"$TS_RECORD") -eq 1 ]] || fail "proxy connections:" "$(cat "$TS_RECORD")"
	assert_no_dns_leak
}

@test "happy eyeballs: when the first attempt fails, the held-back one goes" {
	start_testserver --reply 4
	proxy_conf "$CONF" "$TS_PORT"
	run sfy "$PY" -c "$EYEBALLS" web.test 5 2 "$WEB_PORT"
	expect_status 0
	expect_contains "ready v4 err EHOSTUNREACH"
	expect_contains "ready v6 err EHOSTUNREACH"
	wait_records 2
	[[ $(wc -l <"$TS_RECORD") -eq 2 ]] || fail "proxy connections:" "$(cat "$TS_RECORD")"
}

@test "parallel connections to one address are not held back" {
	start_testserver --mode late-reply
	proxy_conf "$CONF" "$TS_PORT"
	run sfy "$PY" -c '
import socket, select, time
import sys
addr = socket.getaddrinfo("web.test", int(sys.argv[1]), socket.AF_INET, socket.SOCK_STREAM)[0][4]
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.setblocking(False)
    s.connect_ex(addr)
time.sleep(0.5)
p = select.poll()
for s in socks:
    p.register(s, select.POLLOUT)
ready, end = set(), time.monotonic() + 8
while len(ready) < 5 and time.monotonic() < end:
    for fd, ev in p.poll(100):
        ready.add(fd)
        p.unregister(fd)
print("ready", len(ready))' "$WEB_PORT"
	expect_status 0
	expect_contains "ready 5"
	[[ $(wc -l <"$TS_RECORD") -eq 5 ]] || fail "proxy connections:" "$(cat "$TS_RECORD")"
}

# node's way: it closes the first attempt after 250 ms (through libuv's
# syscall(SYS_close)), then connects to the other address.  The closed
# attempt's handshake is parked and the new socket takes it over: one proxy
# connection, and the answer the proxy sent to the first arrives on the
# second.
NODEWAY='
import ctypes, errno, select, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
infos = socket.getaddrinfo("web.test", int(sys.argv[1]), socket.AF_UNSPEC, socket.SOCK_STREAM)
(f4, _, _, _, a4), (f6, _, _, _, a6) = infos[:2]
s4 = socket.socket(f4, socket.SOCK_STREAM)
s4.setblocking(False)
print("connect v4", errno.errorcode.get(s4.connect_ex(a4)))
time.sleep(0.3)
fd = s4.detach()
print("close v4", libc.syscall(3, fd))  # SYS_close, as libuv does
s6 = socket.socket(f6, socket.SOCK_STREAM)
s6.setblocking(False)
print("connect v6", errno.errorcode.get(s6.connect_ex(a6)))
p = select.poll()
p.register(s6, select.POLLOUT)
ev = p.poll(5000)
print("ready", ev and ev[0][1] & select.POLLOUT and "POLLOUT", "so_error", s6.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
s6.setblocking(True)
s6.sendall(b"GET /nodeway HTTP/1.0\r\n\r\n")
print(s6.makefile("rb").read().decode().splitlines()[-1])
'

@test "node's way: a first attempt closed mid-handshake is taken over by the next connect to the name" {
	start_testserver --mode late-reply
	proxy_conf "$CONF" "$TS_PORT"
	run sfy "$PY" -c "$NODEWAY" "$WEB_PORT"
	expect_status 0
	expect_contains "connect v6 EINPROGRESS"
	expect_contains "ready POLLOUT so_error 0"
	expect_contains "hello from web path=/nodeway peer=127.0.0.2"
	[[ $(wc -l <"$TS_RECORD") -eq 1 ]] || fail "proxy connections:" "$(cat "$TS_RECORD")"
}
