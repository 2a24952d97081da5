#!/usr/bin/python3
"""TCP relay that slows down a SOCKS proxy's handshake answers.

    delay_relay.py --listen 127.0.0.1:0 --port-file F --upstream HOST:PORT
                   [--delay-ms 50] [--delayed-chunks 3] [--log F]

Sits between socksify and a SOCKS proxy (danted or socks5_testserver.py)
and forwards bytes both ways.  The first --delayed-chunks chunks that come
FROM the upstream on each connection (the method reply, the CONNECT reply,
...) are each held back for --delay-ms before they are passed on; the rest
is relayed at once.  So every proxied connection costs at least
delayed-chunks x delay-ms of handshake latency: a client that runs its
handshakes one after the other pays that N times over, one that runs them
concurrently pays it about once (tests/bats/async.bats measures it).

--log gets one line per accepted connection
("accept peer=ADDR:PORT t_ms=MONOTONIC"), so a test can count exactly how
many proxy connections a client opened, and see how far apart in time they
were opened (a client whose handshakes run one after the other opens its
N connections N handshakes apart; measured here, so the client's start-up
never counts).

Threads, two per connection (one each way), so hundreds of concurrent
connections are fine; the listen backlog is large enough that a burst of
connects is never dropped.  Exits cleanly on SIGTERM.  Loopback only: the
upstream must be a loopback address.
"""

import argparse
import ipaddress
import socket
import sys
import threading
import time

from srvcommon import announce, exit_on_sigterm, parse_hostport

IO_TIMEOUT = 30.0
CHUNK = 65536
BACKLOG = 1024


class Relay:
    def __init__(self, opts):
        self.opts = opts
        self.log_lock = threading.Lock()
        self.count = 0

    def log(self, text):
        with self.log_lock:
            self.count += 1
            if self.opts.log:
                with open(self.opts.log, "a", encoding="utf-8") as f:
                    f.write(text + "\n")

    def handle(self, client, peer):
        host, port = self.opts.upstream
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        up = socket.socket(family, socket.SOCK_STREAM)
        up.settimeout(IO_TIMEOUT)
        client.settimeout(IO_TIMEOUT)
        try:
            up.connect((host, port))
        except OSError:
            up.close()
            client.close()
            return
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        back = threading.Thread(target=self.pump,
                                args=(up, client, self.opts.delayed_chunks),
                                daemon=True)
        back.start()
        self.pump(client, up, 0)
        back.join()
        client.close()
        up.close()

    def pump(self, src, dst, delayed):
        """Copy src -> dst until EOF; hold the first `delayed` chunks back."""
        delay = self.opts.delay_ms / 1000.0
        try:
            while True:
                data = src.recv(CHUNK)
                if not data:
                    break
                if delayed > 0:
                    delayed -= 1
                    time.sleep(delay)
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def serve(self):
        host, port = self.opts.listen
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        lsock = socket.socket(family, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((host, port))
        lsock.listen(BACKLOG)
        exit_on_sigterm()
        announce(lsock.getsockname()[1], self.opts.port_file,
                 self.opts.pid_file)
        try:
            while True:
                try:
                    client, peer = lsock.accept()
                except OSError as exc:      # EMFILE, ECONNABORTED, ...
                    print("accept: %s" % exc, file=sys.stderr, flush=True)
                    time.sleep(0.05)
                    continue
                self.log("accept peer=%s:%d t_ms=%.1f"
                         % (peer[0], peer[1], time.monotonic() * 1000))
                threading.Thread(target=self.handle, args=(client, peer),
                                 daemon=True).start()
        finally:
            lsock.close()


def loopback_hostport(text):
    host, port = parse_hostport(text)
    if not ipaddress.ip_address(host).is_loopback:
        raise argparse.ArgumentTypeError("upstream must be loopback")
    return host, port


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", type=parse_hostport, default=("127.0.0.1", 0))
    p.add_argument("--upstream", type=loopback_hostport, required=True)
    p.add_argument("--port-file")
    p.add_argument("--pid-file")
    p.add_argument("--delay-ms", type=int, default=50)
    p.add_argument("--delayed-chunks", type=int, default=3)
    p.add_argument("--log")
    opts = p.parse_args(argv)
    Relay(opts).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
