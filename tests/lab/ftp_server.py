#!/usr/bin/python3
"""FTP server for the firewall lab (Debian's python3-pyftpdlib).

One user with a password and a writable home, active and passive mode, on
every --listen address (IPv4 and IPv6 listeners share one I/O loop).

Active mode through a SOCKS proxy: the client's PORT/EPRT carries the
proxy's BIND address, not the client's own, so foreign addresses are
permitted.  Passive ports come from a fixed range (--passive-ports).
Every command, with the peer's address, is logged to stderr.
"""

import argparse
import logging
import os
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer


def parse_range(text):
    low, sep, high = text.partition("-")
    if not sep or not low.isdigit() or not high.isdigit():
        raise argparse.ArgumentTypeError("expected LOW-HIGH")
    return list(range(int(low), int(high) + 1))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", action="append", required=True,
                   metavar="ADDR", help="IPv4 or IPv6 address (repeatable)")
    p.add_argument("--port", type=int, default=21)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--home", required=True, help="the user's writable home")
    p.add_argument("--passive-ports", type=parse_range, default="30000-30009")
    p.add_argument("--port-file", help="written once every listener is up")
    return p.parse_args(argv)


def main(argv):
    opts = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                        format="%(asctime)s %(message)s")
    authorizer = DummyAuthorizer()
    # e l r a d f m w M T: every read and write permission.
    authorizer.add_user(opts.user, opts.password, opts.home, perm="elradfmwMT")

    class Handler(FTPHandler):
        pass

    Handler.authorizer = authorizer
    Handler.permit_foreign_addresses = True
    Handler.passive_ports = opts.passive_ports
    Handler.timeout = 60
    Handler.banner = "socksify lab ftp ready"

    ioloop = IOLoop()
    servers = [FTPServer((addr, opts.port), Handler, ioloop=ioloop)
               for addr in opts.listen]
    if opts.port_file:      # the lab polls for it: never a partial write
        with open(opts.port_file + ".tmp", "w", encoding="utf-8") as f:
            f.write("%d\n" % opts.port)
        os.replace(opts.port_file + ".tmp", opts.port_file)
    # All listeners are on one I/O loop: serving one serves them all.
    servers[0].serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
