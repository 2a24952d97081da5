#!/usr/bin/python3
"""Tiny HTTP/1.0-1.1 server for socksify's integration tests.

GET /bytes/N  -> N bytes of deterministic content (see pattern_bytes)
GET /anything -> "hello from NAME path=/anything peer=<client ip>\\n"

The peer address in the body lets a test prove where a connection came
from: the proxies used in tests connect out from 127.0.0.2.  --log records
every accepted connection (even ones that never send a request), so a test
can also prove that *no* connection arrived.
"""

import argparse
import http.server
import socket
import sys
import threading

from srvcommon import parse_hostport, serve

IO_TIMEOUT = 30.0
PATTERN = b"0123456789abcdefghijklmnopqrstuvwxyz\n"


def pattern_bytes(n):
    """The first n bytes of PATTERN repeated; tests regenerate it."""
    reps = n // len(PATTERN) + 1
    return (PATTERN * reps)[:n]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"     # one request per connection, then close
    timeout = IO_TIMEOUT
    server_version = "socksify-test-http"

    def setup(self):
        super().setup()
        self.server.log_line("connect peer=%s" % self.client_address[0])

    def do_GET(self):
        peer = self.client_address[0]
        self.server.log_line("GET %s peer=%s" % (self.path, peer))
        if self.path.startswith("/bytes/"):
            try:
                body = pattern_bytes(int(self.path[len("/bytes/"):]))
            except ValueError:
                self.send_error(400, "bad byte count")
                return
            ctype = "application/octet-stream"
        else:
            body = ("hello from %s path=%s peer=%s\n"
                    % (self.server.name, self.path, peer)).encode()
            ctype = "text/plain"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass                          # our own --log is enough


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # event-loop tests open 100 connections at once

    def __init__(self, opts):
        self.name = opts.name
        self.log_path = opts.log
        self.log_lock = threading.Lock()
        host = opts.listen[0]
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__(opts.listen, Handler)

    def server_bind(self):
        # HTTPServer.server_bind would call getfqdn(), i.e. a DNS lookup.
        socket.socket.bind(self.socket, self.server_address)
        self.server_address = self.socket.getsockname()

    def log_line(self, text):
        if not self.log_path:
            return
        with self.log_lock, open(self.log_path, "a", encoding="utf-8") as f:
            f.write(text + "\n")


def main(argv):
    p = argparse.ArgumentParser(description="test HTTP server")
    p.add_argument("--listen", type=parse_hostport, default=("127.0.0.1", 0))
    p.add_argument("--port-file")
    p.add_argument("--pid-file")
    p.add_argument("--name", default="http")
    p.add_argument("--log", help="append one line per connection/request")
    opts = p.parse_args(argv)
    serve(Server(opts), opts)


if __name__ == "__main__":
    main(sys.argv[1:])
