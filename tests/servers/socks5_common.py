"""Protocol constants and small helpers shared by socks5_testserver.py and
its BIND support (socks5_bind.py).  Stdlib only."""

import ipaddress
import socket
import struct
import time

IO_TIMEOUT = 30.0          # bounded per-connection socket timeout
RELAY_CHUNK = 65536

ATYP_IPV4, ATYP_DOMAIN, ATYP_IPV6 = 1, 3, 4
CMD_CONNECT, CMD_BIND, CMD_UDP = 1, 2, 3
REP_OK, REP_FAIL, REP_NOT_ALLOWED = 0, 1, 2
REP_HOST_UNREACH, REP_CMD_UNSUPPORTED = 4, 7


class ClientGone(Exception):
    """The client closed the connection or sent something unparsable."""


def is_loopback(ip):
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def encode_addr(ip, port):
    """ATYP + address + port, as used in replies."""
    addr = ipaddress.ip_address(ip)
    if addr.version == 4:
        return bytes([ATYP_IPV4]) + addr.packed + struct.pack("!H", port)
    return bytes([ATYP_IPV6]) + addr.packed + struct.pack("!H", port)


def delay_ms(ms):
    if ms:
        time.sleep(ms / 1000.0)


def wait_for_eof(sock):
    """Block (bounded by the socket timeout) until the peer closes."""
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass


def family_of(ip):
    return socket.AF_INET6 if ":" in ip else socket.AF_INET
