#!/usr/bin/python3
"""A minimal RFC 1961 client (python3-gssapi), used ONLY to test the test
server socks5_gssapi.py (tests/bats/gssapi_server.bats).  Run it with
/usr/bin/python3, with KRB5_CONFIG and KRB5CCNAME set.

  socks5_gssapi_client.py --proxy HOST:PORT --service rcmd@localhost
      --level 1|2 --connect HOST:PORT (--http PATH | --bulk UP DOWN)
  socks5_gssapi_client.py ... --bind HOST:PORT     (BIND, then plays the
      remote peer itself from 127.0.0.5: each side sends a line, each
      side prints what it read)

Output lines: method=N, ctx_tokens_in=N (mtyp 1 tokens from the server),
level=N, rep=N, bnd=ADDR:PORT, then body=TEXT (--http) or the bulk lines
down_bytes=, down_ok=, up_ok= (see bulk.py).  Failures: "error: KIND:
TEXT" and exit status 1, KIND one of method, abort, framing, gss, eof,
reply, timeout, so a test can tell which check caught the server.

--client-mode M misbehaves, to test the server's record: bad-ver (ver 2 in
the first context frame), level-conf (the level octet wrapped with
confidentiality), conf-mismatch (data wrapped against the level),
len0-data (a zero-length data frame after the request).
--no-mutual does not ask for mutual authentication (the server then has
no final context token to send).
"""

import argparse
import contextlib
import hashlib
import io
import ipaddress
import socket
import struct
import sys
import threading

import gssapi
from gssapi.raw.misc import GSSError

import rfc1961 as R
from bulk import pattern
from srvcommon import parse_hostport

TIMEOUT = 10.0
gssapi.SecurityContext.__DEFER_STEP_ERRORS__ = False   # fail where it fails
Flags = gssapi.RequirementFlag


class Fail(Exception):
    def __init__(self, kind, text):
        super().__init__("%s: %s" % (kind, text))
        self.kind = kind


class Client:
    def __init__(self, opts):
        self.opts = opts
        self.sock = socket.create_connection(opts.proxy, timeout=TIMEOUT)
        self.ctx = None
        self.conf = False
        self.frames = R.FrameBuffer()

    # ---- framing -------------------------------------------------------
    def read_token(self, mtyp):
        try:
            return R.read_frame(self.sock, mtyp)
        except R.Aborted as exc:
            raise Fail("abort", str(exc))
        except R.FramingError as exc:
            raise Fail("eof" if "eof" in str(exc) else "framing", str(exc))
        except socket.timeout:
            raise Fail("timeout", "no answer in %ds" % TIMEOUT)

    def send_token(self, mtyp, token, ver=R.VERSION):
        self.sock.sendall(R.frame(mtyp, token, ver))

    def unwrap(self, token):
        try:
            return self.ctx.unwrap(token)
        except GSSError as exc:
            raise Fail("gss", "unwrap: %s" % exc)

    # ---- handshake -----------------------------------------------------
    def handshake(self):
        self.sock.sendall(b"\x05\x01\x01")
        reply = R.recv_exact(self.sock, 2)
        print("method=%d" % reply[1])
        if reply != b"\x05\x01":
            raise Fail("method", "server chose %s" % reply.hex())
        self.establish()
        self.negotiate_level()

    def establish(self):
        flags = Flags.replay_detection | Flags.out_of_sequence_detection
        if not self.opts.no_mutual:
            flags |= Flags.mutual_authentication
        name = gssapi.Name(self.opts.service, gssapi.NameType.hostbased_service)
        self.ctx = gssapi.SecurityContext(name=name, usage="initiate", flags=flags)
        token, n_in = self.ctx.step(), 0
        ver = 2 if self.opts.client_mode == "bad-ver" else R.VERSION
        while True:
            if token:
                self.send_token(R.MTYP_CONTEXT, token, ver)
                ver = R.VERSION
            if self.ctx.complete:
                break
            reply = self.read_token(R.MTYP_CONTEXT)
            n_in += 1
            try:
                token = self.ctx.step(reply)
            except GSSError as exc:
                raise Fail("gss", "init_sec_context: %s" % exc)
        print("ctx_tokens_in=%d" % n_in)

    def negotiate_level(self):
        conf = self.opts.client_mode == "level-conf"
        self.send_token(R.MTYP_LEVEL,
                        self.ctx.wrap(bytes([self.opts.level]), conf).message)
        res = self.unwrap(self.read_token(R.MTYP_LEVEL))
        if len(res.message) != 1 or res.encrypted:
            raise Fail("framing", "level reply %r" % res.message)
        level = res.message[0]
        print("level=%d" % level)
        if level != self.opts.level:
            raise Fail("reply", "server granted level %d" % level)
        self.conf = level == R.LEVEL_CONF
        if self.opts.client_mode == "conf-mismatch":
            self.conf = not self.conf

    # ---- wrapped SOCKS -------------------------------------------------
    def request(self, cmd, host, port):
        try:
            addr = bytes([1]) + ipaddress.IPv4Address(host).packed
        except ValueError:
            addr = bytes([3, len(host)]) + host.encode()
        msg = bytes([5, cmd, 0]) + addr + struct.pack("!H", port)
        self.send_token(R.MTYP_DATA, self.ctx.wrap(msg, self.conf).message)
        if self.opts.client_mode == "len0-data":
            self.sock.sendall(bytes([1, 3, 0, 0]))

    def read_reply(self):
        res = self.unwrap(self.read_token(R.MTYP_DATA))
        if res.encrypted != (self.conf if self.opts.client_mode != "conf-mismatch"
                             else not self.conf):
            raise Fail("reply", "reply protection does not match the level")
        msg = res.message
        if len(msg) < 10 or msg[0] != 5 or msg[3] != 1:
            raise Fail("reply", "reply %s" % msg.hex())
        print("rep=%d" % msg[1])
        if msg[1] != 0:
            raise Fail("reply", "REP %d" % msg[1])
        ip = str(ipaddress.IPv4Address(msg[4:8]))
        port = struct.unpack("!H", msg[8:10])[0]
        print("bnd=%s:%d" % (ip, port))
        return ip, port

    def send_plain(self, data):
        limit = self.ctx.get_wrap_size_limit(R.MAX_TOKEN, self.conf)
        out = b""
        for i in range(0, len(data), limit):
            out += R.frame(R.MTYP_DATA, self.ctx.wrap(data[i:i + limit], self.conf).message)
        return out

    def read_all(self):
        """Unwrap frames until EOF; every token is checked."""
        got = bytearray()
        while True:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise Fail("timeout", "no data in %ds" % TIMEOUT)
            if not data:
                if self.frames.pending():
                    raise Fail("eof", "inside a frame")
                return bytes(got)
            self.frames.feed(data)
            while True:
                try:
                    token = self.frames.pop()
                except (R.FramingError, R.Aborted) as exc:
                    self.partial = bytes(got)
                    raise Fail("framing", str(exc))
                if token is None:
                    break
                try:
                    got += self.unwrap(token).message
                except Fail:
                    self.partial = bytes(got)
                    raise

    def read_line(self):
        got = bytearray()
        while not got.endswith(b"\n"):
            token = self.frames.pop()
            if token is not None:
                got += self.unwrap(token).message
                continue
            data = self.sock.recv(65536)
            if not data:
                raise Fail("eof", "before a line")
            self.frames.feed(data)
        return bytes(got)


def do_http(cli, path):
    cli.sock.sendall(cli.send_plain(b"GET %s HTTP/1.0\r\n\r\n" % path.encode()))
    body = cli.read_all().split(b"\r\n\r\n", 1)[-1]
    print("body=%s" % body.decode("utf-8", "replace").strip())


def do_bulk(cli, up, down):
    payload = cli.send_plain(b"BULK %d %d\n" % (up, down) + pattern(up))
    t = threading.Thread(target=cli.sock.sendall, args=(payload,), daemon=True)
    t.start()
    cli.partial = b""
    try:
        got = cli.read_all()
    except Fail:
        body = cli.partial[:down]
        print("down_bytes=%d" % len(body))
        print("down_ok=%d" % (body == pattern(len(body))))
        raise
    t.join(TIMEOUT)
    body, trailer = got[:down], got[down:].decode("ascii", "replace")
    print("down_bytes=%d" % len(body))
    print("down_ok=%d" % (body == pattern(down)))
    want = hashlib.sha256(pattern(up)).hexdigest()
    print("up_ok=%d" % ("up_sha256=%s" % want in trailer))


def do_bind(cli, host, port):
    cli.request(2, host, port)
    bnd = cli.read_reply()
    peer = socket.socket()
    peer.settimeout(TIMEOUT)
    peer.bind(("127.0.0.5", 0))
    peer.connect(bnd)
    peer.sendall(b"HELLO-FROM-PEER\n")
    cli.read_reply()                           # reply 2: the peer's address
    print("client_read=%s" % cli.read_line().decode().strip())
    cli.sock.sendall(cli.send_plain(b"HELLO-FROM-CLIENT\n"))
    print("peer_read=%s" % peer.recv(100).decode().strip())
    peer.close()


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--proxy", type=parse_hostport, required=True)
    p.add_argument("--service", default="rcmd@localhost")
    p.add_argument("--level", type=int, default=2)
    p.add_argument("--connect", type=parse_hostport)
    p.add_argument("--bind", type=parse_hostport)
    p.add_argument("--http")
    p.add_argument("--bulk", type=int, nargs=2, metavar=("UP", "DOWN"))
    p.add_argument("--no-mutual", action="store_true")
    p.add_argument("--client-mode", default="")
    p.add_argument("--repeat", type=int, default=1,
                   help="connect this many times, one after the other, "
                   "printing one line each: attempt=I ok|error: ... "
                   "(for the server's truncate=N --each)")
    opts = p.parse_args(argv)
    if opts.repeat == 1:
        return attempt(opts)
    for i in range(opts.repeat):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            attempt(opts)
        errors = [l for l in out.getvalue().splitlines() if l.startswith("error: ")]
        print("attempt=%d %s" % (i, errors[0] if errors else "ok"))
    return 0


def attempt(opts):
    cli = None
    try:
        cli = Client(opts)
        cli.handshake()
        if opts.bind:
            do_bind(cli, *opts.bind)
            return 0
        cli.request(1, *opts.connect)
        cli.read_reply()
        if opts.http:
            do_http(cli, opts.http)
        elif opts.bulk:
            do_bulk(cli, *opts.bulk)
    except Fail as exc:
        print("error: %s" % exc)
        return 1
    except R.FramingError as exc:
        print("error: eof: %s" % exc)
        return 1
    except GSSError as exc:
        print("error: gss: %s" % exc)
        return 1
    except OSError as exc:
        print("error: eof: %s" % exc)
        return 1
    finally:
        if cli:
            cli.sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
