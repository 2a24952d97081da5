#!/usr/bin/python3
"""UDP sink for socksify's integration tests.

Binds a UDP socket (--listen HOST:PORT, port 0 picks one, reported in
--port-file) and appends one line per datagram to --log:
"from=ADDR:PORT data=TEXT" (the payload decoded, newlines escaped), so a
test can prove which datagrams arrived, and from where.
"""

import argparse
import socket
import sys

from srvcommon import announce, exit_on_sigterm, parse_hostport


def main(argv):
    p = argparse.ArgumentParser(description="test UDP sink")
    p.add_argument("--listen", type=parse_hostport, default=("127.0.0.1", 0))
    p.add_argument("--port-file")
    p.add_argument("--pid-file")
    p.add_argument("--log", required=True)
    opts = p.parse_args(argv)
    host, port = opts.listen
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, port))
    exit_on_sigterm()
    announce(sock.getsockname()[1], opts.port_file, opts.pid_file)
    while True:
        data, peer = sock.recvfrom(65535)
        addr = "[%s]" % peer[0] if ":" in peer[0] else peer[0]
        text = data.decode("utf-8", "replace").replace("\n", "\\n")
        with open(opts.log, "a", encoding="utf-8") as f:
            f.write("from=%s:%d data=%s\n" % (addr, peer[1], text))


if __name__ == "__main__":
    main(sys.argv[1:])
