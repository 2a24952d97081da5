#!/usr/bin/python3
"""SOCKS5 server with GSS-API authentication (RFC 1961) for socksify's tests.

Written from the RFC text (framing: rfc1961.py), over Debian's
python3-gssapi and MIT Kerberos, with the service key from the keytab in
KRB5_KTNAME.  Run it with /usr/bin/python3.

  greeting     METHOD X'01' when the client offers it, else X'FF'
  context      client mtyp 1 tokens -> gss_accept_sec_context (acceptor
               --service SERVICE@HOST, default: any key in the keytab);
               each output token goes back as mtyp 1, including the last
               one (the Kerberos AP-REP when the client asked for mutual
               authentication).  A GSS failure is answered with the abort
               message X'01' X'FF'.
  level        client mtyp 2: gss_wrap(conf_req=FALSE) of one octet; the
               reply is the server's choice wrapped the same way (default:
               the client's level; --level N forces one)
  request      the SOCKS request and every reply are one mtyp 3 frame each,
               gss_wrap with conf_req TRUE iff the level is 2 (or 3)
  data         all data both ways is mtyp 3 frames: client frames are
               unwrapped to the destination, destination bytes are wrapped
               in chunks whose token fits in 65535 octets
               (gss_wrap_size_limit) or of --chunk octets.

CONNECT and BIND are socks5_testserver.py's (outbound from --bind-out, the
same BIND listener choice, --bind-self-connect, --map), only their bytes
travel wrapped.  Names only resolve through --map; destinations are
loopback only.

--record FILE: one JSON line per connection, written when it ends:
  methods, method, principal, target, ctx_flags, ctx_tokens; level_asked,
  level_granted, level_msg_conf (the client encrypted the level octet: it
  must not); conf (the distinct "encrypted" flags of the client's mtyp 3
  tokens), conf_violations (tokens not protected as the level says); cmd,
  host, port, atyp, rep, connected_to and socks5_bind.py's BIND fields;
  request_tokens, client_frames, server_frames, up_bytes (client ->
  destination, plain), down_bytes; hs_sent (octets sent up to the end of
  the last SOCKS reply: the "first messages"); violations (the client's
  framing errors), gss_error, error, stopped, client_close_ms (after a
  hostile message: how long the client took to close), truncate.

--mode (NAME or NAME=VALUE): see MODES below; "--frame KIND" picks the
server frame a framing mode damages: context (default), level, reply, data.
"""

import argparse
import os
import select
import socket
import socketserver
import sys
import threading
import time

import gssapi
from gssapi.raw.misc import GSSError

import rfc1961 as R
from socks5_bind import add_bind_args
from socks5_common import IO_TIMEOUT, ClientGone, is_loopback
from socks5_testserver import Behaviour, Recorder
from srvcommon import parse_hostport, serve

HOSTILE_WAIT = 10.0   # bound on waiting for the client to give up

# python-gssapi's step() by default returns the error token of a failed
# step and raises only at the next call; RFC 1961 section 3.7 answers any
# failure with the abort message instead, so fail at once.
gssapi.SecurityContext.__DEFER_STEP_ERRORS__ = False


class Stop(Exception):
    """End this connection quietly (a mode did its damage)."""


class GssServer(Behaviour):
    """The well-behaved RFC 1961 server; modes override single steps."""

    mode_name = "normal"

    def __init__(self, server, conn, peer):
        super().__init__(server, conn, peer)
        self.ctx = None
        self.gss_on = False          # after the level sub-negotiation
        self.level = None
        self.conf_out = False
        self.max_plain = 0
        self.plain_in = bytearray()  # unwrapped, not yet consumed
        self.in_handshake = True
        self.sent_kinds = {}
        self.conf_seen = set()
        self.violations = []
        self.budget = None
        self.rec = self.record
        self.rec.update(hs_sent=0, client_frames=0, server_frames=0,
                        up_bytes=0, down_bytes=0, conf_violations=0,
                        request_tokens=0, violations=self.violations)

    # ---- records -------------------------------------------------------
    def flush_record(self):
        """Behaviour writes before its replies; here the record is written
        once, when the connection ends (it holds the byte counts)."""

    def write_record(self):
        self.rec["conf"] = sorted(self.conf_seen)
        self.server.recorder.write(self.rec)

    # ---- raw output: every server byte goes through send_raw -----------
    def send_raw(self, data):
        if self.budget is not None and self.in_handshake:
            # Cut only where handshake octets were still due: a budget
            # that covers the whole handshake leaves the connection whole.
            part = data[:self.budget]
            if part:
                self.conn.sendall(part)
            self.budget -= len(part)
            self.rec["hs_sent"] += len(part)
            if len(part) < len(data):
                raise Stop("truncated after %d octets" % self.rec["truncate"])
            return
        self.conn.sendall(data)
        if self.in_handshake:
            self.rec["hs_sent"] += len(data)

    def send_frame(self, mtyp, token, kind):
        """kind: context, level, reply, reply2, data (see --frame)."""
        n = self.sent_kinds.get(kind, 0)
        self.sent_kinds[kind] = n + 1
        data = R.frame(mtyp, token)
        self.rec["server_frames"] += 1
        self.emit(data, kind, n)

    def emit(self, data, kind, index):
        """Send one server frame; hostile modes replace this."""
        self.send_raw(data)

    def wait_client_close(self, what):
        """After a hostile message: record how long the client took to
        close (a client that notices closes at once), then stop."""
        t0 = time.monotonic()
        self.conn.settimeout(HOSTILE_WAIT)
        try:
            while self.conn.recv(65536):
                pass
            self.rec["client_close_ms"] = int((time.monotonic() - t0) * 1000)
        except OSError as exc:
            self.rec["client_close_error"] = str(exc)
        raise Stop(what)

    # ---- the SOCKS byte stream, wrapped once GSS is on ------------------
    def send(self, data):
        if not self.gss_on:
            self.send_raw(data)
            return
        kind = "reply" if "reply" not in self.sent_kinds else "reply2"
        self.send_frame(R.MTYP_DATA, self.wrap(data), kind)

    def recv_exact(self, n):
        if not self.gss_on:
            return super().recv_exact(n)
        while len(self.plain_in) < n:
            token = self.read_frame(R.MTYP_DATA)
            self.rec["request_tokens"] += 1
            self.plain_in += self.unwrap(token)
        out = bytes(self.plain_in[:n])
        del self.plain_in[:n]
        return out

    def read_frame(self, mtyp):
        token = R.read_frame(self.conn, mtyp, self.violations)
        self.rec["client_frames"] += 1
        return token

    def wrap(self, data):
        return self.ctx.wrap(data, self.conf_out).message

    def unwrap(self, token):
        """Unwrap a client mtyp 3 token and check its protection against
        the level (RFC 1961 section 5)."""
        res = self.ctx.unwrap(token)
        self.conf_seen.add(bool(res.encrypted))
        if (self.level == R.LEVEL_INTEGRITY and res.encrypted) or \
                (self.level == R.LEVEL_CONF and not res.encrypted):
            self.rec["conf_violations"] += 1
        return res.message

    # ---- protocol ------------------------------------------------------
    def run(self):
        try:
            methods = self.greeting()
            method = self.choose_method(methods)
            self.rec["method"] = method
            self.send_raw(bytes([5, method]))
            if method == 0:
                self.serve_request()
            elif method == R.METHOD_GSSAPI:
                self.establish_context()
                self.negotiate_level()
                self.gss_on = True
                self.serve_request()
        except Stop as exc:
            self.rec["stopped"] = str(exc)
        except R.Aborted as exc:
            self.rec["error"] = "client sent abort: %s" % exc
        except GSSError as exc:
            self.rec["gss_error"] = str(exc)
        except (ClientGone, OSError, R.FramingError, ValueError) as exc:
            self.rec.setdefault("error", str(exc))
        finally:
            self.write_record()

    def serve_request(self):
        cmd, host, port = self.read_request()
        self.handle_request(cmd, host, port)

    def choose_method(self, methods):
        return R.METHOD_GSSAPI if R.METHOD_GSSAPI in methods else 0xFF

    def establish_context(self):
        """RFC 1961 sections 3.4-3.7: loop until the context is complete."""
        self.ctx = gssapi.SecurityContext(usage="accept",
                                          creds=self.server.creds)
        self.rec["ctx_tokens"] = 0
        while not self.ctx.complete:
            token = self.read_frame(R.MTYP_CONTEXT)
            self.rec["ctx_tokens"] += 1
            self.on_context_token()
            try:
                out = self.ctx.step(token)
            except GSSError as exc:
                self.rec["gss_error"] = str(exc)
                self.send_raw(R.ABORT)
                self.wait_client_close("context failed; abort sent")
            if out:
                self.send_frame(R.MTYP_CONTEXT, out, "context")
        self.rec["principal"] = str(self.ctx.initiator_name)
        self.rec["target"] = str(self.ctx.target_name)
        self.rec["ctx_flags"] = sorted(f.name for f in self.ctx.actual_flags)

    def on_context_token(self):
        """Runs for each client context token, before accepting it."""

    def negotiate_level(self):
        """RFC 1961 section 4: one wrapped octet each way, conf_req FALSE."""
        res = self.ctx.unwrap(self.read_frame(R.MTYP_LEVEL))
        self.rec["level_msg_conf"] = bool(res.encrypted)
        if len(res.message) != 1 or res.message[0] not in (1, 2, 3):
            self.violations.append("level message %r" % res.message.hex())
            raise R.FramingError("bad level message")
        asked = res.message[0]
        self.rec["level_asked"] = asked
        granted = self.opts.level or asked
        self.rec["level_granted"] = granted
        self.send_frame(R.MTYP_LEVEL,
                        self.ctx.wrap(bytes([granted]), False).message, "level")
        self.level = granted
        self.conf_out = granted in (R.LEVEL_CONF, R.LEVEL_SELECTIVE)
        limit = self.ctx.get_wrap_size_limit(R.MAX_TOKEN, self.conf_out)
        self.max_plain = min(limit, self.opts.chunk or limit)

    def after_reply(self, out):
        self.in_handshake = False
        self.relay(out)

    # ---- relay ---------------------------------------------------------
    def relay(self, out):
        """Unwrap client frames to out, wrap out's bytes into frames; a
        half-close is passed on as a half-close."""
        if not self.gss_on:
            super().relay(out)
            return
        if self.plain_in:
            out.sendall(self.plain_in)
            self.rec["up_bytes"] += len(self.plain_in)
            self.plain_in.clear()
        frames = R.FrameBuffer()
        open_in = [self.conn, out]
        while open_in:
            ready, _, _ = select.select(open_in, [], [], IO_TIMEOUT)
            if not ready:
                self.rec["error"] = "relay idle for %ds" % IO_TIMEOUT
                return
            if self.conn in ready:
                if not self.relay_up(frames, out):
                    open_in.remove(self.conn)
                    shut(out)
            if out in ready:
                data = recv_some(out, max(self.max_plain, 1) * 4)
                if data:
                    self.send_data(data)
                else:
                    open_in.remove(out)
                    shut(self.conn)

    def relay_up(self, frames, out):
        """Client -> destination; False at the client's EOF."""
        data = recv_some(self.conn, 65536 + 4)
        if not data:
            if frames.pending():
                self.violations.append("eof inside a frame (%d octets)"
                                       % frames.pending())
            return False
        frames.feed(data)
        while True:
            try:
                token = frames.pop()
            except R.FramingError as exc:
                self.violations.append(str(exc))
                raise
            if token is None:
                return True
            self.rec["client_frames"] += 1
            plain = self.unwrap(token)
            out.sendall(plain)
            self.rec["up_bytes"] += len(plain)

    def send_data(self, data):
        for i in range(0, len(data), self.max_plain):
            piece = data[i:i + self.max_plain]
            self.send_frame(R.MTYP_DATA, self.wrap(piece), "data")
            self.rec["down_bytes"] += len(piece)


def recv_some(sock, n):
    try:
        return sock.recv(n)
    except OSError:
        return b""


def shut(sock):
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


# ------------------------------------------------------------------ modes
MODES = {}


def mode(name):
    def register(cls):
        MODES[name] = cls
        cls.mode_name = name
        return cls
    return register


@mode("normal")
class Normal(GssServer):
    pass


@mode("abort")
class Abort(GssServer):
    """The abort message X'01' X'FF' right after the client's first
    context token (before accepting it)."""

    def on_context_token(self):
        self.send_raw(R.ABORT)
        self.wait_client_close("abort sent")


@mode("no-gss")
class NoGss(GssServer):
    """X'FF' (no acceptable method) even when GSSAPI is offered."""

    def choose_method(self, methods):
        return 0xFF


@mode("prefer-none")
class PreferNone(GssServer):
    """X'00' when the client offers it (a downgrade), else X'FF'."""

    def choose_method(self, methods):
        return 0 if 0 in methods else 0xFF


class Hostile(GssServer):
    """Damage the first server frame of kind --frame, send it, then wait
    for the client to close (recording how long it took)."""

    def emit(self, data, kind, index):
        if kind != self.opts.frame or index != 0:
            self.send_raw(data)
            return
        self.send_raw(self.damage(bytearray(data)))
        self.wait_client_close("%s sent in the %s frame" % (self.mode_name, kind))

    def damage(self, data):
        raise NotImplementedError


@mode("bad-version")
class BadVersion(Hostile):
    def damage(self, data):
        data[0] = 0x02
        return bytes(data)


@mode("bad-mtyp")
class BadMtyp(Hostile):
    """Another defined mtyp than the one due (1 -> 2, 2 -> 3, 3 -> 1)."""

    def damage(self, data):
        data[1] = data[1] % 3 + 1
        return bytes(data)


@mode("len0")
class Len0(Hostile):
    """A header with length 0 and no token."""

    def damage(self, data):
        return bytes(data[:2]) + b"\x00\x00"


@mode("len65535")
class Len65535(Hostile):
    """A header saying 65535 followed by 65535 random octets: a full-size
    token that is not a GSS token.  (A header promising more than is sent
    is what truncate=N covers.)"""

    def damage(self, data):
        return bytes(data[:2]) + b"\xff\xff" + os.urandom(R.MAX_TOKEN)


@mode("corrupt-reply")
class CorruptReply(GssServer):
    """One bit flipped in the middle of the wrapped SOCKS reply's token
    (the outbound connection is made; its bytes never go anywhere)."""

    def emit(self, data, kind, index):
        if kind == "reply":
            data = flip(data, 4 + (len(data) - 4) // 2)
            self.send_raw(data)
            self.wait_client_close("corrupted reply sent")
        else:
            self.send_raw(data)


@mode("corrupt-data")
class CorruptData(GssServer):
    """--corrupt-after K (or corrupt-data=K): exactly K good octets in
    data frames, then a frame with one bit flipped in its token, then no
    more data (the server waits for the client to close)."""

    def send_data(self, data):
        good = self.opts.corrupt_after - self.rec["down_bytes"]
        if good >= len(data):
            super().send_data(data)
            return
        if good > 0:
            super().send_data(data[:good])
            data = data[good:]
        piece = data[:self.max_plain]
        token = self.wrap(piece)
        self.rec["server_frames"] += 1
        self.send_raw(flip(R.frame(R.MTYP_DATA, token), 4 + len(token) // 2))
        self.rec["corrupted_at"] = self.rec["down_bytes"]
        self.wait_client_close("corrupted data frame sent")


@mode("truncate")
class Truncate(GssServer):
    """truncate=N: only the first N octets of everything the server sends
    up to the end of the last SOCKS reply, then close.  With --each, the
    k-th connection (from 0) gets N + k octets, so one server serves a
    whole loop over N."""

    def __init__(self, server, conn, peer):
        super().__init__(server, conn, peer)
        n = self.opts.truncate
        if self.opts.each:
            n += server.next_index()
        self.budget = self.rec["truncate"] = n


@mode("split")
class Split(GssServer):
    """Every server frame in pieces: the header octet by octet, then the
    token in two halves, 5 ms apart (tokens split across reads)."""

    def emit(self, data, kind, index):
        cut = 4 + (len(data) - 4) // 2
        for piece in (data[0:1], data[1:2], data[2:3], data[3:4],
                      data[4:cut], data[cut:]):
            if piece:
                self.send_raw(piece)
                time.sleep(0.005)


@mode("coalesce")
class Coalesce(GssServer):
    """Data frames of at most --chunk octets (default 1000), all frames
    made from one read of the destination sent in one send (several
    tokens in one read)."""

    def send_data(self, data):
        step = min(self.max_plain, self.opts.chunk or 1000)
        out = b""
        for i in range(0, len(data), step):
            piece = data[i:i + step]
            out += R.frame(R.MTYP_DATA, self.wrap(piece))
            self.rec["server_frames"] += 1
            self.rec["down_bytes"] += len(piece)
        self.send_raw(out)


def flip(data, pos):
    data = bytearray(data)
    data[pos] ^= 0x01
    return bytes(data)


# ----------------------------------------------------------------- server
class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, opts):
        self.opts = opts
        self.recorder = Recorder(opts.record)
        self.creds = None
        if opts.service:
            name = gssapi.Name(opts.service, gssapi.NameType.hostbased_service)
            self.creds = gssapi.Credentials(name=name, usage="accept")
        self.counter = 0
        self.counter_lock = threading.Lock()
        super().__init__(opts.listen, Handler)

    def next_index(self):
        with self.counter_lock:
            n = self.counter
            self.counter += 1
            return n


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(IO_TIMEOUT)
        cls = MODES[self.server.opts.mode]
        cls(self.server, self.request, self.client_address).run()


def parse_mode(p, opts):
    """--mode NAME or NAME=VALUE (truncate=N, level=N, corrupt-data=K)."""
    name, sep, value = opts.mode.partition("=")
    if name == "level" and sep:
        name, opts.level = "normal", int(value)
    elif name == "truncate" and sep:
        opts.truncate = int(value)
    elif name == "corrupt-data" and sep:
        opts.corrupt_after = int(value)
    elif sep:
        p.error("mode %s takes no value" % name)
    if name not in MODES:
        p.error("unknown mode %r (modes: %s)" % (name, ", ".join(sorted(MODES))))
    opts.mode = name


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", type=parse_hostport, default=("127.0.0.1", 0))
    p.add_argument("--port-file")
    p.add_argument("--pid-file")
    p.add_argument("--record")
    p.add_argument("--service", help="acceptor name SERVICE@HOST "
                   "(default: any principal in the keytab)")
    p.add_argument("--level", type=int, choices=(1, 2, 3),
                   help="grant this level whatever the client asks")
    p.add_argument("--mode", default="normal")
    p.add_argument("--frame", default="context",
                   choices=("context", "level", "reply", "data"),
                   help="the frame the framing modes damage")
    p.add_argument("--truncate", type=int, default=0)
    p.add_argument("--each", action="store_true",
                   help="truncate: the k-th connection gets N + k octets")
    p.add_argument("--corrupt-after", type=int, default=0, metavar="K")
    p.add_argument("--chunk", type=int, default=0,
                   help="at most this many plain octets per data frame")
    p.add_argument("--map", action="append", default=[], metavar="NAME=IP")
    p.add_argument("--bind-out", metavar="IPV4",
                   help="source of IPv4 outbound connections, address of "
                   "IPv4 BIND listeners")
    add_bind_args(p)
    opts = p.parse_args(argv)
    parse_mode(p, opts)
    mapping = {}
    for item in opts.map:
        name, sep, ip = item.partition("=")
        if not sep or not is_loopback(ip):
            p.error("--map needs NAME=LOOPBACK_IP, got %r" % item)
        mapping[name.lower()] = ip
    opts.map = mapping
    # What socks5_testserver's Behaviour reads and this server never sets.
    opts.auth = opts.reply = None
    opts.socks4 = False
    return opts


def main(argv):
    opts = parse_args(argv)
    serve(Server(opts), opts)


if __name__ == "__main__":
    main(sys.argv[1:])
