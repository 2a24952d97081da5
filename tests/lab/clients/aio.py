#!/usr/bin/python3
"""aio.py HOST HTTP_PORT ECHO_PORT N PEER: N concurrent asyncio HTTP
requests to HOST:HTTP_PORT and N concurrent echo round trips to
HOST:ECHO_PORT, all with asyncio.open_connection (HOST: a name or an
address).  Prints
"http ok=N echo ok=N" and exits 0 only if every one succeeded."""

import asyncio
import sys

host, http_port, echo_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n, peer = int(sys.argv[4]), sys.argv[5]


async def http(i):
    reader, writer = await asyncio.open_connection(host, http_port)
    path = "/aio-%d" % i
    writer.write(("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (path, host)).encode())
    await writer.drain()
    body = (await reader.read()).decode("ascii", "replace")
    writer.close()
    await writer.wait_closed()
    return ("path=%s peer=%s\n" % (path, peer)) in body


async def echo(i):
    reader, writer = await asyncio.open_connection(host, echo_port)
    line = ("aio-echo-%d\n" % i).encode()
    writer.write(line)
    await writer.drain()
    got = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return got == line


async def main():
    jobs = [http(i) for i in range(n)] + [echo(i) for i in range(n)]
    res = await asyncio.wait_for(asyncio.gather(*jobs, return_exceptions=True), 20)
    for r in res:
        if isinstance(r, BaseException):
            print("error:", repr(r))
    h = sum(1 for r in res[:n] if r is True)
    e = sum(1 for r in res[n:] if r is True)
    print("http ok=%d echo ok=%d" % (h, e))
    return h == n and e == n


sys.exit(0 if asyncio.run(main()) else 1)
