#!/usr/bin/python3
"""DNS leak detector for socksify's integration tests.

Listens on UDP and TCP (default 127.0.0.53:53), appends the query name of
every DNS message it receives to --log (one line each, flushed at once) and
answers REFUSED so the resolver gives up quickly.  Clients under test run
with /etc/resolv.conf pointing here (see run_isolated in helpers.bash): an
empty log means no DNS lookup escaped the shim.
"""

import argparse
import socket
import socketserver
import struct
import sys
import threading

from srvcommon import announce, exit_on_sigterm, parse_hostport

IO_TIMEOUT = 10.0
RCODE_REFUSED = 5


def parse_qname(msg):
    """Name of the first question, or a marker if the message is mangled."""
    labels, pos = [], 12
    try:
        while True:
            n = msg[pos]
            if n == 0:
                return ".".join(labels) or "."
            if n & 0xC0:                   # compression in a query: odd
                return "<compressed>"
            labels.append(msg[pos + 1:pos + 1 + n].decode("ascii", "replace"))
            pos += 1 + n
    except IndexError:
        return "<malformed>"


def question_end(msg):
    """Offset just past the first question (name + type + class)."""
    pos = 12
    while pos < len(msg) and msg[pos] != 0:
        pos += 1 + msg[pos]
    return min(pos + 5, len(msg))


def refused(msg):
    """A REFUSED response echoing the id and the first question."""
    if len(msg) < 12:
        return b""
    qid, flags = struct.unpack("!HH", msg[:4])
    opcode_rd = flags & 0x7900              # keep opcode and RD
    header = struct.pack("!HHHHHH", qid, 0x8000 | opcode_rd | RCODE_REFUSED,
                         1, 0, 0, 0)
    return header + msg[12:question_end(msg)]


class Log:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    def query(self, msg, proto):
        line = parse_qname(msg) if len(msg) >= 12 else "<short>"
        with self.lock, open(self.path, "a", encoding="utf-8") as f:
            f.write("%s %s\n" % (line, proto))


class UDPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        msg, sock = self.request
        self.server.log.query(msg, "udp")
        reply = refused(msg)
        if reply:
            sock.sendto(reply, self.client_address)


class TCPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        conn.settimeout(IO_TIMEOUT)
        try:
            while True:
                head = recv_exact(conn, 2)
                if head is None:
                    return
                msg = recv_exact(conn, struct.unpack("!H", head)[0])
                if msg is None:
                    return
                self.server.log.query(msg, "tcp")
                reply = refused(msg)
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            return


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def make_servers(host, port, log):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class UDP(socketserver.ThreadingUDPServer):
        address_family = family
        allow_reuse_address = True
        daemon_threads = True

    class TCP(socketserver.ThreadingTCPServer):
        address_family = family
        allow_reuse_address = True
        daemon_threads = True

    udp = UDP((host, port), UDPHandler)
    # Same port for TCP, which matters when port 0 was requested.
    tcp = TCP((host, udp.server_address[1]), TCPHandler)
    udp.log = tcp.log = log
    return udp, tcp


def main(argv):
    p = argparse.ArgumentParser(description="DNS query logger")
    p.add_argument("--listen", type=parse_hostport,
                   default=("127.0.0.53", 53))
    p.add_argument("--log", required=True)
    p.add_argument("--port-file")
    p.add_argument("--pid-file")
    opts = p.parse_args(argv)
    open(opts.log, "a").close()           # exists (empty) from the start
    udp, tcp = make_servers(*opts.listen, Log(opts.log))
    exit_on_sigterm()
    threading.Thread(target=tcp.serve_forever, args=(0.2,),
                     daemon=True).start()
    announce(udp.server_address[1], opts.port_file, opts.pid_file)
    try:
        udp.serve_forever(poll_interval=0.2)
    finally:
        udp.server_close()
        tcp.server_close()


if __name__ == "__main__":
    main(sys.argv[1:])
