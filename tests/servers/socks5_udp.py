"""UDP ASSOCIATE (CMD 3) for socks5_testserver.py.

RFC 1928 section 7: the server opens a UDP relay socket, replies with its
address, and relays until the control connection closes.  Each datagram
from the client carries RSV(2) FRAG(1) ATYP DST.ADDR DST.PORT before the
data; the server strips it and sends the data on to DST from its own
outbound socket (--bind-out for IPv4, ::1 for IPv6), and wraps each answer
in a header naming its source.  Only loopback destinations are relayed
(names only through --map); datagrams from any address but the client's
IP, with FRAG != 0 or with a header it cannot read, are dropped.  Each
datagram relayed or dropped from the client is a record of its own:
{"udp": "in", "frag": F, "atyp": A, "host": H, "port": P, "len": N,
 "action": "relayed" | "dropped: WHY"}.

UdpSupport is mixed into Behaviour; each class in UDP_MODES is a mixin that
misbehaves on the way back and is registered as a --mode of its own: before
each good answer it sends the client bad datagrams (bad_datagrams()), then
waits --udp-delay ms (so a client that is woken by the bad ones and spins
shows it) before the good one.
"""

import ipaddress
import select
import socket
import struct
import time

from socks5_common import (ATYP_DOMAIN, ATYP_IPV4, ATYP_IPV6, IO_TIMEOUT,
                           REP_CMD_UNSUPPORTED, REP_OK, encode_addr,
                           is_loopback)

MAX_UDP4 = 65507             # the largest IPv4 UDP payload


def parse_udp_header(data):
    """(frag, atyp, host, port, payload) or raise ValueError."""
    if len(data) < 4:
        raise ValueError("short header")
    rsv, frag, atyp = struct.unpack("!HBB", data[:4])
    if rsv != 0:
        raise ValueError("rsv %d" % rsv)
    pos = 4
    if atyp == ATYP_IPV4:
        host = socket.inet_ntop(socket.AF_INET, data[pos:pos + 4])
        pos += 4
    elif atyp == ATYP_IPV6:
        host = socket.inet_ntop(socket.AF_INET6, data[pos:pos + 16])
        pos += 16
    elif atyp == ATYP_DOMAIN:
        n = data[pos]
        host = data[pos + 1:pos + 1 + n].decode("utf-8", "replace")
        pos += 1 + n
    else:
        raise ValueError("atyp %d" % atyp)
    if len(data) < pos + 2:
        raise ValueError("truncated address")
    (port,) = struct.unpack("!H", data[pos:pos + 2])
    return frag, atyp, host, port, data[pos + 2:]


def udp_header(ip, port):
    return b"\x00\x00\x00" + encode_addr(ip, port)


class UdpSupport:
    """The well-behaved UDP relay; bad_datagrams() is the hook."""

    def handle_udp(self, host, port):
        local_ip = self.conn.getsockname()[0]
        family = socket.AF_INET6 if ":" in local_ip else socket.AF_INET
        relay = socket.socket(family, socket.SOCK_DGRAM)
        relay.bind((local_ip, 0))
        outs = {}
        try:
            bnd = relay.getsockname()
            self.record["udp_relay"] = [bnd[0], bnd[1]]
            self.send_reply(REP_OK, self.udp_bnd_ip(bnd[0]), bnd[1])
            self.udp_loop(relay, outs)
        finally:
            relay.close()
            for s in outs.values():
                s.close()

    def udp_bnd_ip(self, ip):
        return ip

    def out_socket(self, outs, ip):
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        if family not in outs:
            s = socket.socket(family, socket.SOCK_DGRAM)
            src = self.opts.bind_out if family == socket.AF_INET else "::1"
            s.bind((src or ("127.0.0.1" if family == socket.AF_INET else "::1"), 0))
            outs[family] = s
        return outs[family]

    def udp_loop(self, relay, outs):
        client = None
        while True:
            watch = [self.conn, relay] + list(outs.values())
            ready, _, _ = select.select(watch, [], [], IO_TIMEOUT)
            if not ready:
                return
            for s in ready:
                if s is self.conn:
                    try:
                        if not self.conn.recv(4096):
                            return
                    except OSError:
                        return
                elif s is relay:
                    data, src = relay.recvfrom(65535)
                    if ipaddress.ip_address(src[0]) != ipaddress.ip_address(self.peer[0]):
                        continue              # not our client: RFC 1928 s. 7
                    client = src
                    self.udp_from_client(data, outs)
                else:
                    data, src = s.recvfrom(65535)
                    if client is not None:
                        self.udp_to_client(relay, client, src, data)

    def udp_from_client(self, data, outs):
        rec = {"udp": "in", "len": len(data)}
        try:
            frag, atyp, host, port, payload = parse_udp_header(data)
            rec.update(frag=frag, atyp=atyp, host=host, port=port, len=len(payload))
            ip = self.resolve(host)
            if frag != 0:
                rec["action"] = "dropped: frag"
            elif ip is None or not is_loopback(ip):
                rec["action"] = "dropped: not allowed"
            else:
                self.out_socket(outs, ip).sendto(payload, (ip, port))
                rec["action"] = "relayed"
        except (ValueError, IndexError, OSError) as exc:
            rec["action"] = "dropped: %s" % exc
        self.server.recorder.write(rec)

    def udp_to_client(self, relay, client, src, data):
        bad = self.bad_datagrams(src, data)
        for sock, dgram in bad:
            (sock or relay).sendto(dgram, client)
        if bad:
            time.sleep(self.opts.udp_delay / 1000.0)
        relay.sendto(udp_header(src[0], src[1]) + data, client)

    def bad_datagrams(self, src, data):
        """[(socket or None for the relay, bytes)] sent before each answer."""
        return []


class UdpBndZero:
    """BND 0.0.0.0 (or ::): the client must use the proxy's own address."""

    def udp_bnd_ip(self, ip):
        return "::" if ":" in ip else "0.0.0.0"


class UdpRefuse:
    """REP 7 (command not supported) to UDP ASSOCIATE only."""

    def handle_udp(self, host, port):
        self.send_reply(REP_CMD_UNSUPPORTED, "0.0.0.0", 0)


class UdpBadRsv:
    def bad_datagrams(self, src, data):
        return [(None, b"\x01\x01\x00" + encode_addr(src[0], src[1]) + b"BAD-RSV")]


class UdpBadAtyp:
    def bad_datagrams(self, src, data):
        return [(None, b"\x00\x00\x00\x09" + b"\x7f\x00\x00\x03\x00\x07" + b"BAD-ATYP"),
                (None, b"\x00\x00\x00\x00" + b"\x7f\x00\x00\x03\x00\x07" + b"ZERO-ATYP")]


class UdpTruncated:
    def bad_datagrams(self, src, data):
        return [(None, b""), (None, b"\x00\x00"), (None, b"\x00\x00\x00\x01\x7f\x00"),
                (None, b"\x00\x00\x00\x04" + b"\x00" * 10),
                (None, b"\x00\x00\x00\x03\x40short-name")]


class UdpFrag:
    def bad_datagrams(self, src, data):
        return [(None, b"\x00\x00\x01" + encode_addr(src[0], src[1]) + b"FRAGMENT-1"),
                (None, b"\x00\x00\x81" + encode_addr(src[0], src[1]) + b"FRAGMENT-END")]


class UdpWrongSource:
    """Well-formed datagrams from another port of the relay's address and
    from another loopback address: not from the relay, so dropped."""

    def bad_datagrams(self, src, data):
        out = []
        relay_ip = self.conn.getsockname()[0]
        others = [relay_ip] if ":" in relay_ip else [relay_ip, "127.0.0.4"]
        for ip in others:
            s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((ip, 0))
            self.wrong_sockets = getattr(self, "wrong_sockets", []) + [s]
            out.append((s, udp_header(src[0], src[1]) + b"WRONG-SOURCE"))
        return out


class UdpOversize:
    """The largest datagram IPv4 can carry (header + 65497 bytes) before
    the answer: more than any fixed buffer the client may use."""

    def bad_datagrams(self, src, data):
        head = udp_header(src[0], src[1]) + b"OVERSIZE"
        return [(None, head + b"x" * (MAX_UDP4 - len(head)))]


UDP_MODES = {"udp-bnd-zero": UdpBndZero, "udp-refuse": UdpRefuse,
             "udp-bad-rsv": UdpBadRsv, "udp-bad-atyp": UdpBadAtyp,
             "udp-truncated": UdpTruncated, "udp-frag": UdpFrag,
             "udp-wrong-source": UdpWrongSource, "udp-oversize": UdpOversize}


def add_udp_args(p):
    p.add_argument("--udp-delay", type=int, default=500, metavar="MS",
                   help="udp-* modes: wait between the bad datagrams and the answer")
