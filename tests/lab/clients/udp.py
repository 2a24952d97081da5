#!/usr/bin/python3
"""udp.py MODE HOST PORT [ARG]: a UDP client against an echo server, run
under socksify by tests/bats/lab_udp.bats and tests/bats/udp_hostile.bats.
HOST is a name or an address (resolved with getaddrinfo, the first
answer).  Every mode prints "key=value" lines, measures its own time
(elapsed_ms=) and exits 0 only if every reply matched; an error prints
"error: OP: ENAME (text)" and exits 1.

  unconnected   sendto + recvfrom, one datagram; prints reply= and from=
  connected     connect + send + recv; prints reply=, peer= (getpeername)
  big           one 8 KiB datagram with sendto, the echo compared byte
                by byte; prints big=ok len= from=
  rounds N      N sequential round trips (sendto/recvfrom), each payload
                unique; prints rounds=N from= (the last source)
  hostile DELAY for a relay that sends bad datagrams before each good one
                (the good one DELAY ms later): a blocking recvfrom must
                get only the echo; MSG_DONTWAIT right after the bad ones
                must say EAGAIN; a level-triggered poll loop started while
                the bad ones wait unread must get only the echo, its
                wakeups and CPU time counted (a loop that spins on a
                datagram nobody consumes wakes up thousands of times).
                Prints
                blocking=LABELS dontwait=EAGAIN|LABELS poll=LABELS
                wakeups= eagain= cpu_ms=, LABELS being what arrived
                ("first 12 bytes:length", comma-separated).
"""

import errno
import os
import select
import socket
import struct
import sys
import time

TIMEOUT = 5.0


def ename(exc):
    if exc.errno == errno.EOPNOTSUPP:   # == ENOTSUP on Linux: the C name
        return "EOPNOTSUPP"
    return errno.errorcode.get(exc.errno or 0, "EUNKNOWN")


def fail(op, exc):
    print("error: %s: %s (%s)" % (op, ename(exc), exc.strerror), flush=True)
    sys.exit(1)


def fmt(addr):
    return ("[%s]:%d" if ":" in addr[0] else "%s:%d") % (addr[0], addr[1])


def label(data):
    return "%s:%d" % (data[:12].decode("ascii", "replace"), len(data))


def open_socket(host, port):
    try:
        ai = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    except socket.gaierror as exc:
        print("error: getaddrinfo: %s" % exc, flush=True)
        sys.exit(1)
    sock = socket.socket(ai[0], socket.SOCK_DGRAM)
    # A really blocking fd (python's settimeout() would make it
    # non-blocking and poll), bounded by the kernel's SO_RCVTIMEO.
    sock.settimeout(None)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                    struct.pack("ll", int(TIMEOUT), 0))
    return sock, ai[4]


def roundtrip(sock, dst, payload, op="sendto"):
    try:
        sock.sendto(payload, dst)
    except OSError as exc:
        fail(op, exc)
    try:
        return sock.recvfrom(65535)
    except OSError as exc:
        fail("recvfrom", exc)


def mode_unconnected(sock, dst, _arg):
    data, src = roundtrip(sock, dst, b"udp-unconnected-%d" % os.getpid())
    print("reply=%s" % data.decode("ascii", "replace"))
    print("from=%s" % fmt(src))
    return data == b"udp-unconnected-%d" % os.getpid()


def mode_connected(sock, dst, _arg):
    payload = b"udp-connected-%d" % os.getpid()
    try:
        sock.connect(dst)
        sock.send(payload)
        data = sock.recv(65535)
    except OSError as exc:
        fail("connected", exc)
    print("reply=%s" % data.decode("ascii", "replace"))
    print("peer=%s" % fmt(sock.getpeername()))
    return data == payload


def mode_big(sock, dst, _arg):
    payload = bytes((i * 7 + 13) % 251 for i in range(8192))
    data, src = roundtrip(sock, dst, payload)
    print("big=%s len=%d" % ("ok" if data == payload else "MISMATCH", len(data)))
    print("from=%s" % fmt(src))
    return data == payload


def mode_rounds(sock, dst, arg):
    n, ok, src = int(arg or 200), 0, ("?", 0)
    for i in range(n):
        payload = b"round-%d-%d" % (os.getpid(), i)
        data, src = roundtrip(sock, dst, payload)
        if data != payload:
            print("mismatch at %d: %r" % (i, data[:40]))
            break
        ok += 1
    print("rounds=%d" % ok)
    print("from=%s" % fmt(src))
    return ok == n


def recv_labels(sock, flags):
    """Every datagram readable now (MSG_DONTWAIT), as labels."""
    got = []
    while True:
        try:
            got.append(label(sock.recv(65535, flags | socket.MSG_DONTWAIT)))
        except BlockingIOError:
            return got, True
        except OSError as exc:
            fail("recv", exc)


def mode_hostile(sock, dst, arg):
    delay = int(arg or 500) / 1000.0
    # 1. Blocking: the bad datagrams come first, the echo after them; a
    # datagram that got through is shown, and the wait goes on (at most 3).
    try:
        sock.sendto(b"probe-block", dst)
    except OSError as exc:
        fail("sendto", exc)
    blocked = []
    while len(blocked) < 3 and not blocked[-1:] == ["probe-block:11"]:
        try:
            blocked.append(label(sock.recv(65535)))
        except OSError as exc:
            fail("recv", exc)
    print("blocking=%s" % ",".join(blocked))
    ok = blocked == ["probe-block:11"]
    # 2. MSG_DONTWAIT while only bad datagrams have arrived.
    try:
        sock.sendto(b"probe-dontwait", dst)
    except OSError as exc:
        fail("sendto", exc)
    time.sleep(min(delay / 3, 0.2))
    got, eagain = recv_labels(sock, 0)
    print("dontwait=%s" % (",".join(got) + (",EAGAIN" if got else "EAGAIN")))
    ok = ok and not got and eagain
    waited = []
    while "probe-dontwa:14" not in waited and len(waited) < 3:
        try:
            waited.append(label(sock.recv(65535)))
        except OSError as exc:
            fail("recv", exc)
    ok = ok and waited == ["probe-dontwa:14"]
    # 3. A level-triggered poll loop until the echo comes, started while
    # the bad datagrams wait unread: each wakeup must consume them.
    try:
        sock.sendto(b"probe-poll", dst)
    except OSError as exc:
        fail("sendto", exc)
    time.sleep(min(delay / 3, 0.2))
    sock.setblocking(False)
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    wakeups = eagains = 0
    polled = []
    cpu0 = time.process_time()
    end = time.monotonic() + delay + TIMEOUT
    while "probe-poll:10" not in polled:
        left = end - time.monotonic()
        if left <= 0:
            break
        if not poller.poll(int(left * 1000) + 1):
            continue
        wakeups += 1
        try:
            polled.append(label(sock.recv(65535)))
        except BlockingIOError:
            eagains += 1
        except OSError as exc:
            fail("recv", exc)
    cpu_ms = (time.process_time() - cpu0) * 1000
    print("poll=%s" % ",".join(polled))
    print("wakeups=%d eagain=%d cpu_ms=%.0f" % (wakeups, eagains, cpu_ms))
    return ok and polled == ["probe-poll:10"]


MODES = {"unconnected": mode_unconnected, "connected": mode_connected,
         "big": mode_big, "rounds": mode_rounds, "hostile": mode_hostile}


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in MODES:
        sys.exit(__doc__)
    t0 = time.monotonic()
    sock, dst = open_socket(sys.argv[2], int(sys.argv[3]))
    ok = MODES[sys.argv[1]](sock, dst, sys.argv[4] if len(sys.argv) > 4 else None)
    sock.close()
    print("elapsed_ms=%d" % ((time.monotonic() - t0) * 1000))
    print("result=%s" % ("ok" if ok else "FAILED"), flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
