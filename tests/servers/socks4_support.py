"""SOCKS4 and SOCKS4a for socks5_testserver.py (--socks4; issue 14's chains).

With --socks4, a client whose first byte is 4 is served as SOCKS4:
    VN=4 CD=1 DSTPORT(2) DSTIP(4) USERID NUL
and SOCKS4a when DSTIP is 0.0.0.x (x != 0): a NUL-terminated host name
follows the user id.  The reply is VN=0 CD=90 (granted) or 91 (rejected),
then the port and address.  Names resolve only through --map, outbound
connections only to loopback, as for SOCKS5.  The record has "socks": 4,
"host", "port", "atyp" (1 for an address, 3 for a 4a name) and "user".
"""

import socket
import struct

REP4_OK, REP4_FAIL = 90, 91


def recv_cstring(conn_recv, limit=255):
    out = b""
    while True:
        c = conn_recv(1)
        if c == b"\0":
            return out.decode("utf-8", "replace")
        out += c
        if len(out) > limit:
            raise ValueError("SOCKS4 string too long")


class Socks4Support:
    """Mixin over Behaviour: serve_socks4() after the first byte was 4."""

    def socks4_reply(self, cd, port=0, ip="0.0.0.0"):
        self.record["rep"] = cd
        self.flush_record()
        self.send(bytes([0, cd]) + struct.pack("!H", port) + socket.inet_aton(ip))

    def serve_socks4(self):
        cmd, port = struct.unpack("!BH", self.recv_exact(3))
        ip = socket.inet_ntoa(self.recv_exact(4))
        user = recv_cstring(lambda n: self.recv_exact(n))
        host, atyp = ip, 1
        if ip.startswith("0.0.0.") and ip != "0.0.0.0":
            host, atyp = recv_cstring(lambda n: self.recv_exact(n)), 3
        self.record.update(socks=4, cmd=cmd, host=host, port=port, atyp=atyp, user=user)
        if cmd != 1:
            self.socks4_reply(REP4_FAIL)
            return
        target = self.resolve(host)
        out, _ = self.connect_out(target, port) if target else (None, None)
        if out is None:
            self.socks4_reply(REP4_FAIL)
            return
        with out:
            self.record["connected_to"] = [target, port]
            bnd = out.getsockname()
            self.socks4_reply(REP4_OK, bnd[1], bnd[0])
            self.relay(out)


def add_socks4_args(p):
    p.add_argument("--socks4", action="store_true",
                   help="also serve SOCKS4/4a clients (first byte 4)")
