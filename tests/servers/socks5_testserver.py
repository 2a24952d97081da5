#!/usr/bin/python3
"""SOCKS5 server (RFC 1928 / RFC 1929) used by socksify's integration tests.

It is deliberately small and scriptable rather than fast:
  * --record writes one JSON line per client describing exactly what the
    client sent, so tests can assert ATYP, host, port and auth details;
  * --reply N answers every CONNECT with a fixed REP code;
  * --mode M selects a misbehaviour.  Each mode is a subclass of Behaviour
    that overrides one protocol step, registered with @mode("name"), so new
    misbehaviours are a few lines each;
  * --blackhole never accepts (its accept queue is kept full), so a
    client's connect() to it hangs: for connect timeouts.
  * --socks4 also serves SOCKS4/4a clients (socks4_support.py).
  * UDP ASSOCIATE (CMD 3) opens a UDP relay and relays datagrams to
    loopback destinations while the control connection lasts; the udp-*
    modes send bad datagrams before each answer (socks5_udp.py).
  * BIND (CMD 2) listens on a loopback address, sends reply 1 with that
    address, accepts one connection and sends reply 2 with its peer, then
    relays.  --bind-self-connect makes the server play the remote peer
    too: it connects to its own listener, sends HELLO-FROM-REMOTE and
    records (one JSON line with "remote": true) what came back.
    --bind-reply1/--bind-reply2 answer with a given REP, the bind-* modes
    misbehave between or inside the two replies.
  * the hostile-proxy matrix's modes (socks5_hostile.py) send scripted
    bytes (--raw HEX) in place of one message, then wait, close or reset
    (--then), or drip every byte (--drip MS), close or reset before the
    greeting, never read, or fall silent after the method reply.

Safety: outbound connections are only ever made to loopback addresses
(127.0.0.0/8, ::1); anything else is answered with REP 2 (not allowed).
BIND listeners are bound to loopback addresses only.
"""

import argparse
import errno
import ipaddress
import json
import select
import socket
import socketserver
import struct
import sys
import threading
import time

from socks5_bind import BIND_MODES, BindSupport, add_bind_args
from socks5_common import (ATYP_DOMAIN, ATYP_IPV4, ATYP_IPV6, CMD_BIND,
                           CMD_CONNECT, CMD_UDP, IO_TIMEOUT, RELAY_CHUNK,
                           REP_CMD_UNSUPPORTED, REP_FAIL, REP_HOST_UNREACH,
                           REP_NOT_ALLOWED, REP_OK, ClientGone, encode_addr,
                           is_loopback, wait_for_eof)
from socks5_hostile import HOSTILE_MODES, add_hostile_args
from socks5_udp import UDP_MODES, UdpSupport, add_udp_args
from socks4_support import Socks4Support, add_socks4_args
from srvcommon import announce, exit_on_sigterm, parse_hostport, serve


MODES = {}


def mode(name):
    """Register a Behaviour subclass under a --mode name."""
    def register(cls):
        MODES[name] = cls
        cls.mode_name = name
        return cls
    return register


def errno_to_rep(err):
    """Map an outbound connect() failure to the closest REP code."""
    table = {errno.ECONNREFUSED: 5, errno.ENETUNREACH: 3,
             errno.EHOSTUNREACH: 4, errno.ETIMEDOUT: 6, errno.EACCES: 2,
             errno.EPERM: 2, errno.EAFNOSUPPORT: 8}
    return table.get(err, REP_FAIL)


class Recorder:
    """Appends JSON lines; one lock so concurrent clients never interleave."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    def write(self, record):
        if not self.path:
            return
        line = json.dumps(record, sort_keys=True) + "\n"
        with self.lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()


class Behaviour(UdpSupport, BindSupport, Socks4Support):
    """Well-behaved SOCKS5 server; misbehaviours override single steps.

    Steps, in order: greeting -> choose_method -> send_method ->
    authenticate -> read_request -> handle_request (-> connect, send_reply,
    after_reply/relay).  Every byte sent goes through send(), so a mode can
    change *how* bytes leave (slowly, split, truncated) independently of
    *what* is sent.
    """

    mode_name = "normal"

    def __init__(self, server, conn, peer):
        self.server = server
        self.opts = server.opts
        self.conn = conn
        self.peer = peer
        self.record = {"peer": peer[0], "mode": self.mode_name}
        self.recorded = False

    # ---- low-level I/O -------------------------------------------------
    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.conn.recv(n - len(buf))
            if not chunk:
                raise ClientGone("eof after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return buf

    def send(self, data):
        self.conn.sendall(data)

    def flush_record(self):
        """Write the record once, before the final reply is sent, so a test
        that saw the reply can read the record without racing us."""
        if not self.recorded:
            self.recorded = True
            self.server.recorder.write(self.record)

    # ---- protocol steps ------------------------------------------------
    def run(self):
        try:
            if self.opts.socks4 and self.conn.recv(1, socket.MSG_PEEK) == b"\x04":
                self.recv_exact(1)
                self.serve_socks4()
                return
            methods = self.greeting()
            method = self.choose_method(methods)
            self.record["method"] = method
            self.send_method(method)
            if method == 0xFF:
                return
            if method == 2 and not self.authenticate():
                return
            cmd, host, port = self.read_request()
            self.handle_request(cmd, host, port)
        except (ClientGone, OSError) as exc:
            self.record.setdefault("error", str(exc))
        finally:
            self.flush_record()

    def greeting(self):
        ver, nmethods = self.recv_exact(2)
        methods = list(self.recv_exact(nmethods))
        self.record["greeting_version"] = ver
        self.record["methods"] = methods
        if ver != 5:
            raise ClientGone("greeting version %d" % ver)
        return methods

    def choose_method(self, methods):
        if self.opts.auth is not None:
            return 2 if 2 in methods else 0xFF
        # Without --auth, accept username/password too (any credentials) so
        # a client that only offers method 2 still gets through.
        for m in (0, 2):
            if m in methods:
                return m
        return 0xFF

    def send_method(self, method):
        self.send(bytes([5, method]))

    def authenticate(self):
        ver, ulen = self.recv_exact(2)
        user = self.recv_exact(ulen).decode("utf-8", "replace")
        (plen,) = self.recv_exact(1)
        password = self.recv_exact(plen).decode("utf-8", "replace")
        self.record.update(auth_version=ver, user=user, password_len=plen)
        ok = True
        if self.opts.auth is not None:
            want_user, want_pass = self.opts.auth
            ok = (user, password) == (want_user, want_pass)
        self.record["auth_ok"] = ok
        self.send_auth_status(0 if ok else 1)
        return ok

    def send_auth_status(self, status):
        if status != 0:
            self.flush_record()
        self.send(bytes([1, status]))

    def read_request(self):
        head = self.recv_exact(4)
        ver, cmd, rsv, atyp = head
        raw = head
        if atyp == ATYP_IPV4:
            body = self.recv_exact(4)
            host = socket.inet_ntop(socket.AF_INET, body)
        elif atyp == ATYP_IPV6:
            body = self.recv_exact(16)
            host = socket.inet_ntop(socket.AF_INET6, body)
        elif atyp == ATYP_DOMAIN:
            (n,) = self.recv_exact(1)
            body = bytes([n]) + self.recv_exact(n)
            host = body[1:].decode("utf-8", "replace")
        else:
            self.record.update(ver=ver, cmd=cmd, atyp=atyp, raw_request=raw.hex())
            raise ClientGone("request with unknown atyp %d" % atyp)
        pbytes = self.recv_exact(2)
        raw += body + pbytes
        (port,) = struct.unpack("!H", pbytes)
        self.record.update(ver=ver, cmd=cmd, rsv=rsv, atyp=atyp, host=host,
                           port=port, raw_request=raw.hex())
        return cmd, host, port

    def handle_request(self, cmd, host, port):
        if self.opts.reply is not None and self.opts.reply != REP_OK:
            self.send_reply(self.opts.reply, "0.0.0.0", 0)
            return
        if cmd == CMD_CONNECT:
            self.handle_connect(host, port)
        elif cmd == CMD_BIND:
            self.handle_bind(host, port)
        elif cmd == CMD_UDP:
            self.handle_udp(host, port)
        else:
            self.send_reply(REP_CMD_UNSUPPORTED, "0.0.0.0", 0)

    def resolve(self, host):
        """Return an IP for host, or None; names only via --map."""
        try:
            ipaddress.ip_address(host)
            return host
        except ValueError:
            return self.opts.map.get(host.lower())

    def connect_out(self, ip, port):
        """Open the outbound connection; return (sock, None) or (None, rep)."""
        if not is_loopback(ip):
            return None, REP_NOT_ALLOWED
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        out = socket.socket(family, socket.SOCK_STREAM)
        out.settimeout(IO_TIMEOUT)
        try:
            if family == socket.AF_INET and self.opts.bind_out:
                out.bind((self.opts.bind_out, 0))
            out.connect((ip, port))
        except OSError as exc:
            out.close()
            self.record["connect_error"] = exc.strerror
            return None, errno_to_rep(exc.errno or 0)
        return out, None

    def handle_connect(self, host, port):
        ip = self.resolve(host)
        if ip is None:
            self.send_reply(REP_HOST_UNREACH, "0.0.0.0", 0)
            return
        out, rep = self.connect_out(ip, port)
        if out is None:
            self.send_reply(rep, "0.0.0.0", 0)
            return
        with out:
            bnd = out.getsockname()
            self.record["connected_to"] = [ip, port]
            self.send_reply(REP_OK, bnd[0], bnd[1])
            self.after_reply(out)

    def build_reply(self, rep, bnd_ip, bnd_port):
        return bytes([5, rep, 0]) + encode_addr(bnd_ip, bnd_port)

    def send_reply(self, rep, bnd_ip, bnd_port):
        self.record["rep"] = rep
        self.flush_record()
        self.send(self.build_reply(rep, bnd_ip, bnd_port))

    def after_reply(self, out):
        self.relay(out)

    def relay(self, out):
        """Copy both ways; propagate half-closes; stop when both ends EOF."""
        pairs = {self.conn: out, out: self.conn}
        open_in = [self.conn, out]
        while open_in:
            ready, _, _ = select.select(open_in, [], [], IO_TIMEOUT)
            if not ready:
                return
            for src in ready:
                try:
                    data = src.recv(RELAY_CHUNK)
                except OSError:
                    data = b""
                dst = pairs[src]
                if data:
                    dst.sendall(data)
                    continue
                open_in.remove(src)
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass


@mode("normal")
class Normal(Behaviour):
    pass


@mode("silent")
class Silent(Behaviour):
    """Read the greeting, then say nothing until the client gives up."""

    def send_method(self, method):
        self.flush_record()
        wait_for_eof(self.conn)
        raise ClientGone("silent: client closed")


@mode("close-after-greeting")
class CloseAfterGreeting(Behaviour):
    def send_method(self, method):
        raise ClientGone("closing after greeting")


@mode("bad-version")
class BadVersion(Behaviour):
    def send_method(self, method):
        self.flush_record()
        self.send(bytes([4, method]))
        wait_for_eof(self.conn)
        raise ClientGone("bad-version sent")


@mode("no-method")
class NoMethod(Behaviour):
    def choose_method(self, methods):
        return 0xFF


@mode("slow")
class Slow(Behaviour):
    """Every protocol byte is sent separately with 50 ms gaps, to test that
    the client reassembles short reads."""

    def send(self, data):
        for i in range(len(data)):
            self.conn.sendall(data[i:i + 1])
            time.sleep(0.05)

    def after_reply(self, out):
        self.send = super().send      # relayed data at normal speed
        self.relay(out)


@mode("late-reply")
class LateReply(Behaviour):
    """The CONNECT reply comes 1.5 s late: longer than a short
    handshake_timeout, well within none at all."""

    def send_reply(self, rep, bnd_ip, bnd_port):
        time.sleep(1.5)
        super().send_reply(rep, bnd_ip, bnd_port)


@mode("reply-plus-data")
class ReplyPlusData(Behaviour):
    """Success reply and the first payload bytes arrive in one segment, so a
    client that over-reads the reply would lose them."""

    def send_reply(self, rep, bnd_ip, bnd_port):
        self.record["rep"] = rep
        self.flush_record()
        data = self.build_reply(rep, bnd_ip, bnd_port)
        if rep == REP_OK:
            data += b"EARLYDATA\n"
        self.send(data)


@mode("truncated-reply")
class TruncatedReply(Behaviour):
    def send_reply(self, rep, bnd_ip, bnd_port):
        self.record["rep"] = rep
        self.flush_record()
        self.send(self.build_reply(rep, bnd_ip, bnd_port)[:6])
        raise ClientGone("truncated reply sent")

    def handle_connect(self, host, port):
        # No outbound connection: the reply never completes anyway.
        self.send_reply(REP_OK, "127.0.0.1", 1)


@mode("bad-atyp")
class BadAtyp(Behaviour):
    def build_reply(self, rep, bnd_ip, bnd_port):
        return bytes([5, rep, 0, 9]) + b"\x00" * 6

    def handle_connect(self, host, port):
        self.send_reply(REP_OK, "127.0.0.1", 1)
        wait_for_eof(self.conn)


# BIND misbehaviours (socks5_bind.py), the hostile-proxy matrix's modes
# (socks5_hostile.py) and the UDP relay's (socks5_udp.py) as modes of their
# own.
for _name, _mixin in (list(BIND_MODES.items()) + list(HOSTILE_MODES.items())
                      + list(UDP_MODES.items())):
    mode(_name)(type(_mixin.__name__, (_mixin, Behaviour), {}))


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # event-loop tests open 100 connections at once

    def __init__(self, opts):
        self.opts = opts
        self.recorder = Recorder(opts.record)
        host, _ = opts.listen
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__(opts.listen, Handler)


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(IO_TIMEOUT)
        behaviour = MODES[self.server.opts.mode]
        behaviour(self.server, self.request, self.client_address).run()


def parse_auth(text):
    user, sep, password = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError("expected USER:PASS")
    return user, password


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", type=parse_hostport, default=("127.0.0.1", 0))
    p.add_argument("--port-file")
    p.add_argument("--pid-file")
    p.add_argument("--record")
    p.add_argument("--auth", type=parse_auth)
    p.add_argument("--map", action="append", default=[], metavar="NAME=IP")
    p.add_argument("--reply", type=int)
    p.add_argument("--mode", default="normal", choices=sorted(MODES))
    p.add_argument("--bind-out", metavar="IPV4",
                   help="source address for IPv4 outbound connections "
                   "and address of IPv4 BIND listeners")
    p.add_argument("--blackhole", action="store_true",
                   help="never accept: connects to this port hang")
    add_bind_args(p)
    add_hostile_args(p)
    add_udp_args(p)
    add_socks4_args(p)
    opts = p.parse_args(argv)
    mapping = {}
    for item in opts.map:
        name, sep, ip = item.partition("=")
        if not sep or not is_loopback(ip):
            p.error("--map needs NAME=LOOPBACK_IP, got %r" % item)
        mapping[name.lower()] = ip
    opts.map = mapping
    return opts


def blackhole(opts):
    """Listen but never accept, with the accept queue already full, so a
    client's connect() gets no answer at all: tests connect_timeout."""
    family = socket.AF_INET6 if ":" in opts.listen[0] else socket.AF_INET
    lsock = socket.socket(family, socket.SOCK_STREAM)
    lsock.bind(opts.listen)
    lsock.listen(0)
    fillers = []
    while len(fillers) < 8:              # the kernel queues backlog + 1
        filler = socket.socket(family, socket.SOCK_STREAM)
        filler.settimeout(0.3)
        try:
            filler.connect(lsock.getsockname()[:2])
        except OSError:
            filler.close()
            break
        fillers.append(filler)
    exit_on_sigterm()
    announce(lsock.getsockname()[1], opts.port_file, opts.pid_file)
    while True:
        time.sleep(3600)


def main(argv):
    opts = parse_args(argv)
    if opts.blackhole:
        blackhole(opts)
        return
    serve(Server(opts), opts)


if __name__ == "__main__":
    main(sys.argv[1:])
