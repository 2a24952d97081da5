"""RFC 1961 (GSS-API authentication for SOCKS5) message framing, shared by
the test server (socks5_gssapi.py) and its self-test client
(socks5_gssapi_client.py).  Stdlib only; the GSS calls stay in the callers.

Every GSS-API message after METHOD X'01' is framed the same way (RFC 1961
sections 3.4, 3.6, 4.3 and 5):

    +------+------+------+.......................+
    | ver  | mtyp | len  |       token           |
    +------+------+------+.......................+
    | 0x01 | 0x01 | 0x02 | up to 2^16 - 1 octets |      (len: 2 octets,
    +------+------+------+.......................+       network order)

    mtyp 0x01  context establishment token (both directions)
    mtyp 0x02  protection-level sub-negotiation: the token is one octet
               (1 integrity, 2 confidentiality, 3 selective), protected with
               gss_wrap with conf_req set to FALSE (section 4.4)
    mtyp 0x03  encapsulated user data: gss_wrap of the SOCKS request, the
               reply(s) and then every byte of the relayed stream; conf_req
               FALSE at level 1, TRUE at level 2 (section 5)

The abort message (section 3.7) is the only one with no len and no token:

    +------+------+
    | 0x01 | 0xff |
    +------+------+
"""

import struct

VERSION = 0x01
MTYP_CONTEXT, MTYP_LEVEL, MTYP_DATA, MTYP_ABORT = 0x01, 0x02, 0x03, 0xFF
MAX_TOKEN = 0xFFFF
ABORT = bytes([VERSION, MTYP_ABORT])
LEVEL_INTEGRITY, LEVEL_CONF, LEVEL_SELECTIVE = 1, 2, 3
METHOD_GSSAPI = 0x01


class FramingError(Exception):
    """The peer broke the framing: bad ver, unexpected mtyp, bad length."""


class Aborted(Exception):
    """The peer sent the abort message (X'01' X'FF')."""


def frame(mtyp, token, ver=VERSION):
    """One framed message.  Callers that misbehave on purpose pass their
    own ver or build the bytes themselves."""
    if len(token) > MAX_TOKEN:
        raise ValueError("token of %d octets does not fit" % len(token))
    return bytes([ver, mtyp]) + struct.pack("!H", len(token)) + token


def recv_exact(sock, n):
    """n bytes or FramingError (EOF); the socket's timeout bounds the wait."""
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise FramingError("eof after %d of %d octets" % (len(buf), n))
        buf += chunk
    return buf


def read_frame(sock, want_mtyp, violations=None):
    """Read one framed message of type want_mtyp from a blocking socket and
    return its token.  Every deviation is appended to violations (when
    given) before FramingError is raised; an abort raises Aborted."""
    ver, mtyp = recv_exact(sock, 2)
    if ver != VERSION:
        _violate(violations, "ver=%d (expected 1)" % ver)
    if mtyp == MTYP_ABORT:
        raise Aborted("peer sent abort")
    if mtyp != want_mtyp:
        _violate(violations, "mtyp=%d (expected %d)" % (mtyp, want_mtyp))
    (length,) = struct.unpack("!H", recv_exact(sock, 2))
    if length == 0:
        _violate(violations, "len=0 in mtyp %d" % mtyp)
    return recv_exact(sock, length)


def _violate(violations, text):
    if violations is not None:
        violations.append(text)
    raise FramingError(text)


class FrameBuffer:
    """Incremental parser for a stream of mtyp 3 frames (the relay phase):
    feed() what recv() returned, then take complete tokens with pop().
    A token split across reads waits in the buffer; several tokens in one
    read all come out."""

    def __init__(self, want_mtyp=MTYP_DATA):
        self.buf = bytearray()
        self.want = want_mtyp

    def feed(self, data):
        self.buf += data

    def pending(self):
        return len(self.buf)

    def pop(self):
        """The next complete token, None if incomplete; FramingError or
        Aborted on a bad header."""
        if len(self.buf) < 2:
            return None
        ver, mtyp = self.buf[0], self.buf[1]
        if ver != VERSION:
            raise FramingError("ver=%d (expected 1)" % ver)
        if mtyp == MTYP_ABORT:
            raise Aborted("peer sent abort")
        if mtyp != self.want:
            raise FramingError("mtyp=%d (expected %d)" % (mtyp, self.want))
        if len(self.buf) < 4:
            return None
        (length,) = struct.unpack("!H", bytes(self.buf[2:4]))
        if length == 0:
            raise FramingError("len=0 in mtyp %d" % mtyp)
        if len(self.buf) < 4 + length:
            return None
        token = bytes(self.buf[4:4 + length])
        del self.buf[:4 + length]
        return token
