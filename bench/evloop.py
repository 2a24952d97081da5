"""bench/evloop.py — event loops through a slow proxy (issue 11).

N connections at once from one thread, through danted behind a relay that
holds each of the proxy's answers (the method choice, the CONNECT reply) for
DELAY_MS, as a proxy a few countries away would.  A client that waits in
connect() for the handshake handles one connection per two round trips; one
whose handshake runs inside its event loop handles them all at once.

Every variant fetches GET / from the origin N times and checks each body is
danted's external address (so each went through the proxy); the relay
counts the proxy connections, which must be exactly N.  Times are wall time
of the whole client process, median of the rounds, and the ratio is to a
native asynchronous SOCKS5 client (python asyncio speaking SOCKS itself).
"""
import asyncio
import os
import subprocess
import threading
import time

from common import (DANTED_EXTERNAL, LIB, PEERLIB, PROXY_PORT, WEB_IP, WEB_NAME, WEB_PORT, WORK, emit, log, med,
                    pick, run_env, write)

N = 100
DELAY_MS = 50
ROUNDS = pick(5, 2)
TARGET = 1.2
PY = "/usr/bin/python3"


class Relay:
    """TCP relay in front of danted that delays the proxy's first two answers
    on each connection, in a thread of its own."""

    def __init__(self):
        self.count = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._conn, "127.0.0.1", 0, backlog=1024))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _pipe(self, r, w, delayed):
        try:
            while True:
                data = await r.read(65536)
                if not data:
                    break
                if delayed > 0:
                    delayed -= 1
                    await asyncio.sleep(DELAY_MS / 1000)
                w.write(data)
                await w.drain()
        except OSError:
            pass
        finally:
            w.close()

    async def _conn(self, cr, cw):
        self.count += 1
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", PROXY_PORT)
        except OSError:
            cw.close()
            return
        await asyncio.gather(self._pipe(cr, uw, 0), self._pipe(ur, cw, 2))

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)


NATIVE = r'''
import asyncio, socket, struct, sys, time
port, n, host, wport = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
async def one():
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"\x05\x01\x00"); await w.drain()
    assert await r.readexactly(2) == b"\x05\x00"
    name = host.encode()
    w.write(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack(">H", wport)); await w.drain()
    head = await r.readexactly(4)
    assert head[1] == 0, head
    await r.readexactly({1: 6, 4: 18}[head[3]])
    w.write(b"GET / HTTP/1.0\r\n\r\n"); await w.drain()
    body = await r.read(); w.close()
    return body
'''
ASYNCIO = r'''
import asyncio, sys, time
n, host, wport = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
async def one():
    r, w = await asyncio.open_connection(host, wport)
    w.write(b"GET / HTTP/1.0\r\n\r\n"); await w.drain()
    body = await r.read(); w.close()
    return body
'''
GATHER = r'''
async def main():
    return await asyncio.gather(*(one() for _ in range(n)))
t = time.monotonic()
bodies = asyncio.run(main())
print(int((time.monotonic() - t) * 1e6), sum(sys.argv[-1].encode() in b for b in bodies))
'''
NODE = r'''
const http = require("http");
const [n, host, port, want] = [+process.argv[2], process.argv[3], +process.argv[4], process.argv[5]];
const t = process.hrtime.bigint();
let done = 0, good = 0;
for (let i = 0; i < n; i++) {
  http.get({host, port, path: "/", agent: false}, res => {
    let b = ""; res.on("data", c => b += c);
    res.on("end", () => { good += b.includes(want); if (++done == n) finish(); });
  }).on("error", e => { console.error(e.message); if (++done == n) finish(); });
}
function finish() { console.log(`${(process.hrtime.bigint() - t) / 1000n} ${good}`); }
'''


def script(name, text):
    return write(os.path.join(WORK, name), text)


def run_one(argv, env, inner):
    """(seconds, good bodies) of one run; inner: the client prints
    'MICROSECONDS GOOD' itself, else wall time around it and curl's bodies."""
    t = time.monotonic()
    p = subprocess.run(argv, env=run_env(env), capture_output=True, text=True, timeout=120)
    wall = time.monotonic() - t
    if inner:
        try:
            us, good = p.stdout.split()[-2:]
            return int(us) / 1e6, int(good)
        except ValueError:
            log(f"evloop: {argv[0]} said {p.stdout[-200:]!r} {p.stderr[-300:]!r}")
            return wall, 0
    return wall, p.stdout.count(DANTED_EXTERNAL)


def variants(conf, relay_port):
    sfy = {"LD_PRELOAD": LIB, "SOCKSIFY_CONF": conf}
    pc = {"LD_PRELOAD": PEERLIB["proxychains4"], "PROXYCHAINS_CONF_FILE": conf + ".pc",
          "PROXYCHAINS_QUIET_MODE": "1"}
    native = script("ev_native.py", NATIVE + GATHER.replace("sys.argv[-1]", "sys.argv[5]"))
    asy = script("ev_asyncio.py", ASYNCIO + GATHER.replace("sys.argv[-1]", "sys.argv[4]"))
    node = script("ev_node.js", NODE)
    urls = [f"http://{WEB_NAME}:{WEB_PORT}/" for _ in range(N)]
    curl = ["curl", "-s", "--parallel", "--parallel-max", str(N), "--parallel-immediate",
            "-w", "\\n", *urls]
    return [
        ("native asyncio SOCKS5 client", [PY, native, str(relay_port), str(N), WEB_NAME, str(WEB_PORT),
                                          DANTED_EXTERNAL], {}, True),
        ("socksify + python asyncio", [PY, asy, str(N), WEB_NAME, str(WEB_PORT), DANTED_EXTERNAL], sfy, True),
        ("socksify + node http", ["node", node, str(N), WEB_NAME, str(WEB_PORT), DANTED_EXTERNAL], sfy, True),
        ("socksify + curl --parallel", curl, sfy, False),
        ("proxychains4 + python asyncio", [PY, asy, str(N), WEB_IP, str(WEB_PORT), DANTED_EXTERNAL], pc, True),
    ]


def sec_evloop():
    """Returns [(name, ratio, connections ok)] for the targets table."""
    relay = Relay()
    conf = write(os.path.join(WORK, "socksify-evloop.conf"),
                 f"proxy = socks5h://127.0.0.1:{relay.port}\nlog_level = error\n")
    write(conf + ".pc", f"strict_chain\nproxy_dns\nremote_dns_subnet 224\n[ProxyList]\nsocks5 127.0.0.1 {relay.port}\n")
    rows = variants(conf, relay.port)
    times = {name: [] for name, *_ in rows}
    conns = {name: set() for name, *_ in rows}
    goods = {name: set() for name, *_ in rows}
    for rnd in range(ROUNDS):
        for name, argv, env, inner in rows:
            if name.startswith("proxychains4") and rnd > 0:
                continue  # about N x 2 x DELAY_MS a run: once is enough
            before = relay.count
            secs, good = run_one(argv, env, inner)
            times[name].append(secs)
            conns[name].add(relay.count - before)
            goods[name].add(good)
    relay.stop()
    base = med(times[rows[0][0]])
    emit(f"## Event loops through a slow proxy ({N} connections from one thread)")
    emit()
    emit(f"danted behind a relay that holds each answer of the proxy for {DELAY_MS} ms; "
         f"median of {ROUNDS} rounds (proxychains4: 1); ratio to the native asynchronous SOCKS5 client. "
         f"A client that waits in connect() needs about {N} x 2 x {DELAY_MS} ms.")
    emit()
    emit("| client | wall time | ratio | proxy connections | bodies via the proxy |")
    emit("|---|---|---|---|---|")
    result = []
    for name, *_ in rows:
        t = med(times[name])
        c = "/".join(str(x) for x in sorted(conns[name]))
        g = "/".join(str(x) for x in sorted(goods[name]))
        emit(f"| {name} | {t * 1000:.0f} ms | {t / base:.2f}x | {c} | {g} |")
        if name.startswith("socksify"):
            result.append((name, t / base, conns[name] == {N} and goods[name] == {N}))
    emit()
    return result
