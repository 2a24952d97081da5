"""Hostile-proxy modes for socks5_testserver.py (tests/bats/hostile.bats).

Each class is a mixin over Behaviour, registered as a --mode of its own
(see HOSTILE_MODES).  The scripted ones send the bytes of --raw HEX in
place of one protocol message, then do what --then says:

    wait   keep the connection open until the client closes (default)
    close  close it normally (FIN)
    rst    close it with SO_LINGER 0, so the client gets an RST

--drip MS (any mode here) sends every protocol byte in a segment of its
own, MS milliseconds apart: a slowloris proxy.  Bytes a scripted mode
sends go out in one sendall() unless --drip is given, so a reply followed
by application data in --raw arrives in the same segment.
"""

import select
import socket
import struct
import time

from socks5_common import IO_TIMEOUT, ClientGone, delay_ms, wait_for_eof


def hex_bytes(text):
    return bytes.fromhex(text.replace(" ", "").replace(":", ""))


def rst_close(sock):
    """Close with an RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def wait_hangup(sock):
    """Without reading a byte, wait (bounded) until the client hangs up."""
    poller = select.poll()
    poller.register(sock, select.POLLRDHUP)
    deadline = time.monotonic() + IO_TIMEOUT
    while time.monotonic() < deadline:
        if poller.poll(200):
            return


class Hostile:
    """Shared by the hostile modes: --drip, and finishing per --then."""

    def send(self, data):
        drip = getattr(self, "drip_ms", self.opts.drip)
        if not drip:
            self.conn.sendall(data)
            return
        for i in range(len(data)):
            self.conn.sendall(data[i:i + 1])
            delay_ms(drip)

    def finish(self, what):
        """After the scripted bytes: wait, close or reset per --then."""
        self.flush_record()
        then = self.opts.then
        if then == "rst":
            rst_close(self.conn)
        elif then == "wait":
            wait_for_eof(self.conn)
        raise ClientGone("%s sent, then %s" % (what, then))

    def send_raw(self, what):
        self.record["raw"] = self.opts.raw
        self.send(hex_bytes(self.opts.raw or ""))
        self.finish(what)


class MethodRaw(Hostile):
    """--raw replaces the method selection reply."""

    def send_method(self, method):
        self.send_raw("method reply")


class AuthRaw(Hostile):
    """Selects username/password, reads the RFC 1929 request, and --raw
    replaces the status reply."""

    def choose_method(self, methods):
        return 2

    def send_auth_status(self, status):
        self.send_raw("auth reply")


class ReplyRaw(Hostile):
    """--raw replaces the reply to the request (CONNECT, or BIND reply 1);
    no outbound connection is made."""

    def handle_request(self, cmd, host, port):
        self.send_raw("reply")


class Reply2Raw(Hostile):
    """BIND: a real reply 1 and incoming connection (use with
    --bind-self-connect), then --raw replaces reply 2."""

    def send_reply2(self, rep, bnd_ip, bnd_port):
        self.send_raw("reply 2")


class CloseBeforeGreeting(Hostile):
    """Accept, then close (--then close) or reset (--then rst) at once."""

    def run(self):
        try:
            self.finish("nothing")
        except ClientGone as exc:
            self.record["error"] = str(exc)
        self.flush_record()


class AfterGreeting(Hostile):
    """Read the greeting, then close or reset per --then."""

    def send_method(self, method):
        self.finish("no method reply")


class NeverRead(Hostile):
    """Accept the TCP connection, never read a byte, never reply; a small
    receive buffer so that a client that kept writing would fill it."""

    def run(self):
        try:
            self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        except OSError:
            pass
        self.flush_record()
        wait_hangup(self.conn)


class SilentAfterMethod(Hostile):
    """A good method reply, then read the request and never answer it."""

    def handle_request(self, cmd, host, port):
        self.flush_record()
        wait_for_eof(self.conn)
        raise ClientGone("no reply: client closed")


class Slowloris(Hostile):
    """The well-behaved server with --drip on every protocol byte; relayed
    data goes at normal speed."""

    def after_reply(self, out):
        self.drip_ms = 0
        self.relay(out)


HOSTILE_MODES = {
    "method-raw": MethodRaw,
    "auth-raw": AuthRaw,
    "reply-raw": ReplyRaw,
    "reply2-raw": Reply2Raw,
    "close-before-greeting": CloseBeforeGreeting,
    "after-greeting": AfterGreeting,
    "never-read": NeverRead,
    "silent-after-method": SilentAfterMethod,
    "slowloris": Slowloris,
}


def add_hostile_args(p):
    p.add_argument("--raw", metavar="HEX",
                   help="bytes the *-raw modes send instead of a message")
    p.add_argument("--then", choices=("wait", "close", "rst"),
                   default="wait", help="after the scripted bytes")
    p.add_argument("--drip", type=int, default=0, metavar="MS",
                   help="send every byte separately, MS ms apart")
