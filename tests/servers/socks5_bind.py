"""BIND (CMD 2) for socks5_testserver.py.

RFC 1928 section 4: the server listens, sends reply 1 with the listening
address, accepts ONE connection and sends reply 2 with the peer's address;
then the client's connection carries the data stream.  Here the listener
is on a loopback address (--bind-out, or ::1 when the DST is IPv6), the
connection is awaited for at most IO_TIMEOUT, and the record gets:

    bind_listen  [ip, port] the real listener
    bnd          [ip, port] what reply 1 said
    accepted_from [ip, port] the incoming peer (what reply 2 says)
    rep, rep2    the REP codes of reply 1 and reply 2

--bind-self-connect plays the remote host: after reply 1 (and
--bind-connect-delay ms) it connects to the listener from 127.0.0.5 (::1
for IPv6), sends HELLO-FROM-REMOTE, reads until EOF and writes a record of
its own: {"remote": true, "remote_local": [ip, port], "remote_read": ...}.

BindSupport is mixed into Behaviour; each class in BIND_MODES is a mixin
that overrides one step and is registered as a --mode of its own.
"""

import select
import socket
import threading
import time

from socks5_common import (IO_TIMEOUT, RELAY_CHUNK, REP_FAIL, REP_OK,
                           ClientGone, delay_ms, family_of, is_loopback,
                           wait_for_eof)

REMOTE_SRC4 = "127.0.0.5"  # source of the simulated BIND peer (IPv4)
REMOTE_HELLO = b"HELLO-FROM-REMOTE\n"
REMOTE_TIMEOUT = 10.0


class BindSupport:
    """The well-behaved BIND; the steps are overridable."""

    def handle_bind(self, host, port):
        if self.opts.bind_reply1 is not None:
            self.send_reply(self.opts.bind_reply1, "0.0.0.0", 0)
            return
        lsock = self.bind_listener(host)
        with lsock:
            laddr = lsock.getsockname()[:2]
            bnd = self.bind_bnd(laddr)
            self.record.update(bind_listen=list(laddr), bnd=list(bnd))
            self.record["rep"] = REP_OK
            self.send(self.build_reply(REP_OK, bnd[0], bnd[1]))
            if self.opts.bind_self_connect:
                threading.Thread(target=self.remote_peer, args=(laddr,),
                                 daemon=True).start()
            self.between_replies()
            peer_sock = self.bind_accept(lsock)
        with peer_sock:
            peer = peer_sock.getpeername()[:2]
            self.record["accepted_from"] = list(peer)
            delay_ms(self.opts.bind_reply2_delay)
            rep2 = self.opts.bind_reply2 or REP_OK
            if rep2 != REP_OK:
                self.send_reply2(rep2, "0.0.0.0", 0)
                return
            self.send_reply2(REP_OK, peer[0], peer[1])
            self.after_reply(peer_sock)

    def bind_listen_ip(self, host):
        """Where the BIND listener goes: ::1 for an IPv6 DST (by address
        or by a --map name), else --bind-out (default 127.0.0.1).  Always
        a loopback address: bind_listener refuses anything else."""
        ip = self.resolve(host) or "0.0.0.0"
        if ":" in ip:
            return "::1"
        return self.opts.bind_out or "127.0.0.1"

    def bind_listener(self, host):
        ip = self.bind_listen_ip(host)
        if not is_loopback(ip):
            raise ClientGone("refusing a non-loopback BIND listener %s" % ip)
        lsock = socket.socket(family_of(ip), socket.SOCK_STREAM)
        lsock.bind((ip, 0))
        lsock.listen(1)
        return lsock

    def bind_bnd(self, laddr):
        """BND.ADDR:BND.PORT of reply 1."""
        return laddr

    def between_replies(self):
        """Runs after reply 1, before waiting for the incoming connection."""

    def bind_accept(self, lsock):
        """One incoming connection, or ClientGone if the client leaves
        first; after IO_TIMEOUT reply 2 is REP 1 (general failure)."""
        deadline = time.monotonic() + IO_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.send_reply2(REP_FAIL, "0.0.0.0", 0)
                raise ClientGone("no incoming connection for BIND")
            ready, _, _ = select.select([lsock, self.conn], [], [], left)
            if self.conn in ready:
                raise ClientGone("client left while waiting for BIND peer")
            if lsock in ready:
                peer_sock, _ = lsock.accept()
                peer_sock.settimeout(IO_TIMEOUT)
                return peer_sock

    def send_reply2(self, rep, bnd_ip, bnd_port):
        self.record["rep2"] = rep
        self.flush_record()
        self.send(self.build_reply(rep, bnd_ip, bnd_port))

    def remote_peer(self, target):
        """The simulated remote host: connects to the BIND listener after
        --bind-connect-delay, sends HELLO-FROM-REMOTE, reads until EOF and
        records what it read."""
        rec = {"remote": True, "target": list(target)}
        delay_ms(self.opts.bind_connect_delay)
        family = family_of(target[0])
        src = "::1" if family == socket.AF_INET6 else REMOTE_SRC4
        data = b""
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(REMOTE_TIMEOUT)
                s.bind((src, 0))
                s.connect(target)
                rec["remote_local"] = list(s.getsockname()[:2])
                s.sendall(REMOTE_HELLO)
                while len(data) < RELAY_CHUNK:
                    chunk = s.recv(RELAY_CHUNK)
                    if not chunk:
                        break
                    data += chunk
        except OSError as exc:
            rec["remote_error"] = str(exc)
        rec["remote_read"] = data.decode("utf-8", "replace")
        self.server.recorder.write(rec)


class BindZeroBnd:
    """Reply 1 says 0.0.0.0 (or ::): the client must substitute the
    proxy's address.  So that the substituted address works, the listener
    sits on the address the client reached the proxy at."""

    def bind_listen_ip(self, host):
        ip = self.conn.getsockname()[0]
        if ip.startswith("::ffff:"):
            ip = ip[len("::ffff:"):]
        return ip

    def bind_bnd(self, laddr):
        return ("::" if ":" in laddr[0] else "0.0.0.0"), laddr[1]


class BindSplitReply2:
    """Reply 2 arrives one byte at a time, --split-delay ms apart."""

    def send_reply2(self, rep, bnd_ip, bnd_port):
        self.record["rep2"] = rep
        self.flush_record()
        data = self.build_reply(rep, bnd_ip, bnd_port)
        for i in range(len(data)):
            self.conn.sendall(data[i:i + 1])
            delay_ms(self.opts.split_delay)


class BindCloseBetween:
    """Reply 1, then (after --bind-reply2-delay) close: no reply 2."""

    def between_replies(self):
        delay_ms(self.opts.bind_reply2_delay)
        self.flush_record()
        raise ClientGone("closing between the BIND replies")


class BindTruncatedReply2:
    """The first 5 bytes of reply 2, then close."""

    def send_reply2(self, rep, bnd_ip, bnd_port):
        self.record["rep2"] = rep
        self.flush_record()
        self.send(self.build_reply(rep, bnd_ip, bnd_port)[:5])
        raise ClientGone("truncated reply 2 sent")


class BindNoReply2:
    """Reply 1, then silence until the client gives up."""

    def between_replies(self):
        self.flush_record()
        wait_for_eof(self.conn)
        raise ClientGone("no reply 2: client closed")


class BindReply2PlusData:
    """Reply 2 and EARLYDATA in one send, before the relayed bytes."""

    def send_reply2(self, rep, bnd_ip, bnd_port):
        self.record["rep2"] = rep
        self.flush_record()
        data = self.build_reply(rep, bnd_ip, bnd_port)
        if rep == REP_OK:
            data += b"EARLYDATA\n"
        self.send(data)


BIND_MODES = {
    "bind-zero-bnd": BindZeroBnd,
    "bind-split-reply2": BindSplitReply2,
    "bind-close-between": BindCloseBetween,
    "bind-truncated-reply2": BindTruncatedReply2,
    "bind-no-reply2": BindNoReply2,
    "bind-reply2-plus-data": BindReply2PlusData,
}


def add_bind_args(p):
    p.add_argument("--bind-reply1", type=int, metavar="REP",
                   help="answer BIND with this REP in reply 1")
    p.add_argument("--bind-reply2", type=int, metavar="REP",
                   help="reply 1 succeeds, reply 2 carries this REP")
    p.add_argument("--bind-reply2-delay", type=int, default=0, metavar="MS",
                   help="wait this long between accepting and reply 2")
    p.add_argument("--bind-self-connect", action="store_true",
                   help="play the remote peer: connect to the BIND listener")
    p.add_argument("--bind-connect-delay", type=int, default=0, metavar="MS",
                   help="how long after reply 1 the remote peer connects")
    p.add_argument("--split-delay", type=int, default=100, metavar="MS",
                   help="gap between the bytes of a split reply")
