#!/usr/bin/python3
"""UDP echo and a small authoritative DNS server, for socksify's tests.

  --echo HOST:PORT   echo every datagram back to its sender (repeatable)
  --dns HOST:PORT    answer DNS queries over UDP (repeatable)
  --log FILE         one line per datagram, flushed at once:
                       echo from=ADDR:PORT to=HOST:PORT len=N data=TEXT
                       dns from=ADDR:PORT name=NAME type=TYPE rcode=R
                     (TEXT: the first 60 bytes, "." for any byte but
                     printable ASCII), so a
                     test sees who sent what: through socksify and a proxy,
                     the proxy's external address.
  --zone NAME=ADDR   an A (IPv4) or AAAA (IPv6) record (repeatable); any
                     other name gets NXDOMAIN, any other type an empty
                     answer (NOERROR).
  --port-file FILE   written once every socket is bound (the first port).

One thread, select() over every socket.  Stdlib only.
"""

import argparse
import ipaddress
import select
import socket
import struct
import sys

from srvcommon import announce, exit_on_sigterm, parse_hostport

QTYPES = {1: "A", 28: "AAAA"}


def bind_udp(hostport):
    host, port = hostport
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    # Room for bursts (the stress test sends thousands at once).
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((host, port))
    return sock


def fmt(addr):
    host = addr[0]
    mapped = ipaddress.ip_address(host.split("%")[0])
    if getattr(mapped, "ipv4_mapped", None):
        host = str(mapped.ipv4_mapped)
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, addr[1])


def parse_question(msg):
    """(name, qtype, end offset) of the first question, or None."""
    if len(msg) < 12:
        return None
    labels, pos = [], 12
    while pos < len(msg):
        n = msg[pos]
        if n == 0:
            if pos + 5 > len(msg):
                return None
            (qtype,) = struct.unpack("!H", msg[pos + 1:pos + 3])
            return ".".join(labels).lower(), qtype, pos + 5
        if n & 0xC0:
            return None
        labels.append(msg[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    return None


def dns_answer(msg, zone):
    """(reply bytes, name, type name, rcode) for a query, or None."""
    q = parse_question(msg)
    if q is None:
        return None
    name, qtype, end = q
    qid, flags = struct.unpack("!HH", msg[:4])
    answers = []
    rcode = 0
    if name not in zone:
        rcode = 3
    else:
        for addr in zone[name]:
            want = 1 if addr.version == 4 else 28
            if want == qtype:
                answers.append(addr)
    # QR, AA, RD copied, RA off; one question echoed.
    out_flags = 0x8400 | (flags & 0x0100) | rcode
    reply = struct.pack("!HHHHHH", qid, out_flags, 1, len(answers), 0, 0)
    reply += msg[12:end]
    for addr in answers:
        rtype = 1 if addr.version == 4 else 28
        reply += struct.pack("!HHHIH", 0xC00C, rtype, 1, 60, len(addr.packed))
        reply += addr.packed
    return reply, name, QTYPES.get(qtype, str(qtype)), rcode


def main(argv):
    p = argparse.ArgumentParser(description="UDP echo and DNS for tests")
    p.add_argument("--echo", type=parse_hostport, action="append", default=[])
    p.add_argument("--dns", type=parse_hostport, action="append", default=[])
    p.add_argument("--zone", action="append", default=[], metavar="NAME=ADDR")
    p.add_argument("--log", required=True)
    p.add_argument("--port-file")
    p.add_argument("--pid-file")
    opts = p.parse_args(argv)
    zone = {}
    for item in opts.zone:
        name, _, addr = item.partition("=")
        zone.setdefault(name.lower().rstrip("."), []).append(ipaddress.ip_address(addr))
    socks = {}
    for hp in opts.echo:
        socks[bind_udp(hp)] = "echo"
    for hp in opts.dns:
        socks[bind_udp(hp)] = "dns"
    if not socks:
        p.error("nothing to serve: give --echo or --dns")
    log = open(opts.log, "a", encoding="utf-8", buffering=1)
    exit_on_sigterm()
    announce(next(iter(socks)).getsockname()[1], opts.port_file, opts.pid_file)
    while True:
        ready, _, _ = select.select(list(socks), [], [])
        for sock in ready:
            try:
                data, peer = sock.recvfrom(65535)
            except OSError:
                continue
            if socks[sock] == "echo":
                # Printable ASCII only: the log stays text for grep.
                text = "".join(chr(b) if 32 <= b < 127 else "." for b in data[:60])
                log.write("echo from=%s to=%s len=%d data=%s\n"
                          % (fmt(peer), fmt(sock.getsockname()), len(data), text))
                reply = data
            else:
                ans = dns_answer(data, zone)
                if ans is None:
                    log.write("dns from=%s malformed len=%d\n" % (fmt(peer), len(data)))
                    continue
                reply, name, qtype, rcode = ans
                log.write("dns from=%s name=%s type=%s rcode=%d\n"
                          % (fmt(peer), name, qtype, rcode))
            try:
                sock.sendto(reply, peer)
            except OSError as exc:
                log.write("send to %s failed: %s\n" % (fmt(peer), exc))


if __name__ == "__main__":
    main(sys.argv[1:])
