#!/usr/bin/python3
"""Bulk data both ways, checked end to end (stdlib only).

  bulk.py serve --listen HOST:PORT --port-file F --log F
  bulk.py client HOST PORT --up N --down N [--nonblock]
                  [--server-delay MS] [--exit-after-send]

Protocol: the client sends the line "BULK UP DOWN\\n" and then UP octets;
the server, at the same time, sends DOWN octets, and once it has read the
UP octets it sends the trailer line "up_sha256=HEX up_bytes=N\\n" and
closes.  "BULK UP DOWN MS\\n" asks the server to wait MS milliseconds
before it reads the UP octets (so they are still on their way when a
client that exits after sending ends).  Both directions carry pattern():
32-octet blocks sha256("sfy-I") for I = 0, 1, ..., so any octet received
can be checked against the octet that was sent at that offset (a
corrupted or a shifted octet shows).

The server appends one JSON line per connection to --log: peer (where the
connection came from: the proxy's outbound address), up_bytes, up_sha256,
down_sent, error.

The client prints, one per line: peer=ADDR:PORT, down_bytes=N (pattern
octets received, the trailer excluded), down_ok=1|0 (every one of them
equal to the pattern), up_sha256=HEX (what it sent),
server_up_sha256=HEX (what the server read), up_ok=1|0, and with
--nonblock spurious_reads=N (poll said readable, recv said EAGAIN).
With --exit-after-send it sends, prints sent=N and exits (status 0)
without reading or closing: the process's exit ends the connection.  On a
failure it prints "error: STEP: ENAME (strerror)" after those lines and
exits 1.
"""

import argparse
import errno
import hashlib
import json
import os
import select
import socket
import socketserver
import sys
import threading
import time

from srvcommon import parse_hostport, serve

IO_TIMEOUT = 30.0
BLOCK = 32
_keep = []  # --exit-after-send: the socket stays open until the process ends


def pattern(n, _cache={}):
    """The first n octets of the pattern (cached: 1 MiB is 32768 hashes)."""
    have = _cache.get("p", b"")
    if len(have) < n:
        blocks = [have]
        for i in range(len(have) // BLOCK, n // BLOCK + 1):
            blocks.append(hashlib.sha256(b"sfy-%d" % i).digest())
        have = b"".join(blocks)
        _cache["p"] = have
    return have[:n]


# ----------------------------------------------------------------- server
class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.settimeout(IO_TIMEOUT)
        rec = {"peer": self.client_address[0], "up_bytes": 0, "down_sent": 0}
        try:
            self.serve_one(sock, rec)
        except (OSError, ValueError) as exc:
            rec["error"] = str(exc)
        self.server.log(rec)

    def serve_one(self, sock, rec):
        line = b""
        while not line.endswith(b"\n"):
            c = sock.recv(1)
            if not c or len(line) > 64:
                raise ValueError("no BULK line: %r" % line)
            line += c
        fields = line.split()
        if len(fields) not in (3, 4) or fields[0] != b"BULK":
            raise ValueError("no BULK line: %r" % line)
        up, down = int(fields[1]), int(fields[2])
        delay_ms = int(fields[3]) if len(fields) == 4 else 0
        sender = threading.Thread(target=self.send_down, args=(sock, down, rec),
                                  daemon=True)
        sender.start()
        time.sleep(min(delay_ms, 10000) / 1000.0)
        digest = hashlib.sha256()
        while rec["up_bytes"] < up:
            data = sock.recv(min(65536, up - rec["up_bytes"]))
            if not data:
                break
            digest.update(data)
            rec["up_bytes"] += len(data)
        rec["up_sha256"] = digest.hexdigest()
        sender.join(IO_TIMEOUT)
        sock.sendall(b"up_sha256=%s up_bytes=%d\n"
                     % (rec["up_sha256"].encode(), rec["up_bytes"]))

    @staticmethod
    def send_down(sock, n, rec):
        data = pattern(n)
        try:
            for i in range(0, n, 65536):
                sock.sendall(data[i:i + 65536])
                rec["down_sent"] = min(n, i + 65536)
        except OSError as exc:
            rec["down_error"] = str(exc)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, opts):
        self.log_path = opts.log
        self.lock = threading.Lock()
        self.address_family = socket.AF_INET6 if ":" in opts.listen[0] else socket.AF_INET
        super().__init__(opts.listen, Handler)

    def log(self, rec):
        if self.log_path:
            with self.lock, open(self.log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec, sort_keys=True) + "\n")


# ----------------------------------------------------------------- client
def ename(err):
    return errno.errorcode.get(err, "E%d" % err)


def report(step, exc):
    err = exc.errno or 0
    print("error: %s: %s (%s)" % (step, ename(err), os.strerror(err)))


def check_down(got, down):
    body = got[:down]
    print("down_bytes=%d" % len(body))
    print("down_ok=%d" % (body == pattern(len(body))))
    return got[down:]


def run_client(opts):
    delay = b" %d" % opts.server_delay if opts.server_delay else b""
    up_data = b"BULK %d %d%s\n" % (opts.up, opts.down, delay) + pattern(opts.up)
    print("up_sha256=%s" % hashlib.sha256(pattern(opts.up)).hexdigest())
    ai = socket.getaddrinfo(opts.host, opts.port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(ai[0], socket.SOCK_STREAM)
    try:
        sock.settimeout(IO_TIMEOUT)
        sock.connect(ai[4])
    except OSError as exc:
        report("connect", exc)
        return 1
    print("peer=%s:%d" % sock.getpeername()[:2])
    if opts.exit_after_send:
        try:
            sock.sendall(up_data)
        except OSError as exc:
            report("send", exc)
            return 1
        print("sent=%d" % opts.up, flush=True)
        _keep.append(sock)  # never closed by us: exit() ends it
        return 0
    got = bytearray()
    try:
        if opts.nonblock:
            spurious = transfer_nonblock(sock, up_data, got)
            print("spurious_reads=%d" % spurious)
        else:
            transfer_threads(sock, up_data, got)
    except OSError as exc:
        check_down(bytes(got), opts.down)
        report(getattr(exc, "step", "recv"), exc)
        return 1
    trailer = check_down(bytes(got), opts.down).decode("ascii", "replace")
    fields = dict(f.split("=", 1) for f in trailer.split() if "=" in f)
    print("server_up_sha256=%s" % fields.get("up_sha256", ""))
    ok = fields.get("up_sha256") == hashlib.sha256(pattern(opts.up)).hexdigest()
    print("up_ok=%d" % ok)
    return 0


def transfer_threads(sock, up_data, got):
    failure = []

    def writer():
        try:
            sock.sendall(up_data)
        except OSError as exc:
            exc.step = "send"
            failure.append(exc)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    while True:
        data = sock.recv(65536)
        if not data:
            break
        got += data
    t.join(IO_TIMEOUT)
    if failure:
        raise failure[0]


def transfer_nonblock(sock, up_data, got):
    """One thread, O_NONBLOCK, poll(): an event-loop client.  Counts the
    times poll reported POLLIN and recv found nothing."""
    sock.setblocking(False)
    poller = select.poll()
    sent, spurious = 0, 0
    while True:
        events = select.POLLIN | (select.POLLOUT if sent < len(up_data) else 0)
        poller.register(sock, events)
        ready = poller.poll(int(IO_TIMEOUT * 1000))
        if not ready:
            raise OSError(errno.ETIMEDOUT, "poll timed out")
        rev = ready[0][1]
        if rev & select.POLLOUT and sent < len(up_data):
            try:
                sent += sock.send(up_data[sent:sent + 65536])
            except BlockingIOError:
                pass
            except OSError as exc:
                exc.step = "send"
                raise
        if rev & (select.POLLIN | select.POLLHUP | select.POLLERR):
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                spurious += 1
                continue
            if not data:
                return spurious
            got += data


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--listen", type=parse_hostport, default=("127.0.0.1", 0))
    s.add_argument("--port-file")
    s.add_argument("--pid-file")
    s.add_argument("--log")
    c = sub.add_parser("client")
    c.add_argument("host")
    c.add_argument("port", type=int)
    c.add_argument("--up", type=int, default=0)
    c.add_argument("--down", type=int, default=0)
    c.add_argument("--nonblock", action="store_true")
    c.add_argument("--server-delay", type=int, default=0)
    c.add_argument("--exit-after-send", action="store_true")
    opts = p.parse_args(argv)
    if opts.cmd == "serve":
        serve(Server(opts), opts)
        return 0
    return run_client(opts)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
