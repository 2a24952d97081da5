#!/usr/bin/env python3
"""bench/chain.py — what each extra hop of a proxy chain costs (issue 14).

    make bench-chain                    # or: python3 bench/chain.py
    make bench-chain BENCH_QUICK=1      # quick run

Runs itself in a private network and mount namespace (like bench/run.sh):
the origin server of bench/bench.py on 10.77.0.1:8000 and three danted
instances on loopback, hop i on 127.0.0.1:108i with external address
127.0.0.1i (so the origin sees which hop was last: a 2-hop chain must
arrive from 127.0.0.12).  Each danted resolves web.bench itself (its own
/etc/hosts in a mount namespace), and may connect only to the next hop and
the origin.  Variants, side by side in one run (each round runs every
variant once, the order rotating):

  - direct: connbench to 10.77.0.1, no proxy (the base of "extra" columns);
  - native: connbench's own SOCKS5 client through hop 1 (1 hop only);
  - socksify, 1/2/3 hops: LD_PRELOAD + SOCKSIFY_CONF with
    `proxy = socks5h://127.0.0.1:1081[, socks5h://127.0.0.1:1082[, ...]]`;
  - proxychains4, 1/2/3 hops: LD_PRELOAD + PROXYCHAINS_CONF_FILE with
    strict_chain, proxy_dns and the same hops as "socks5 127.0.0.1 108i".

Every variant is first probed with one connection to web.bench (IP for
direct): the origin must see the last hop's external address.  A variant
that fails or arrives from elsewhere is listed as n/a with what happened;
until socksify reads a chain, its 2- and 3-hop columns say so.

Measured:
  1. latency per connection (connbench -n N in one process: look-up,
     connect through every hop, GET, read to EOF, close), median over rounds
     of each run's median; ratios are medians of per-round ratios: socksify
     against proxychains4 with the same hops, and each chain against the
     same tool's 1 hop;
  2. syscalls per connection: `strace -f -c` over N1 and N2 connections,
     (calls(N2) - calls(N1)) / (N2 - N1), so start-up cancels out; and the
     cost per extra hop, (k hops - 1 hop) / (k - 1).
Results also go to build/bench/chain.md.
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import (B, CONNBENCH, LIB, PEERLIB, QUICK, SRV, WEB_IP, WEB_NAME,  # noqa: E402
                    WEB_PORT, emit, enter_namespace, log, med, out_lines, pick, run_env, stop, wait_port, write)

CWORK = os.path.join(B, "chain-run")
OUT = os.environ.get("BENCH_CHAIN_OUT", os.path.join(B, "chain.md"))
HOPS = (1, 2, 3)
ROUNDS, N = pick(25, 5), pick(300, 40)
SYS_N1, SYS_N2 = pick(20, 5), pick(220, 45)


def hop_port(i):
    return 1080 + i


def hop_ext(i):
    return f"127.0.0.1{i}"


# ------------------------------------------------------------ namespace
def danted_conf(i):
    """Hop i: clients from loopback; destinations the next hop and the origin."""
    dests = [f"{WEB_IP}/32", WEB_NAME] + [f"127.0.0.1/32 port = {hop_port(j)}" for j in HOPS if j > i]
    rules = "".join(f"socks pass {{\n from: 127.0.0.0/8 to: {d}\n command: connect\n}}\n" for d in dests)
    return write(f"{CWORK}/danted{i}.conf", (
        f"logoutput: {CWORK}/danted{i}.log\n"
        f"internal: 127.0.0.1 port = {hop_port(i)}\n"
        f"external: {hop_ext(i)}\n"
        "socksmethod: none\nclientmethod: none\n"
        "user.privileged: root\nuser.unprivileged: nobody\n"
        "client pass {\n from: 127.0.0.0/8 to: 0.0.0.0/0\n}\n" + rules +
        "socks block {\n from: 0.0.0.0/0 to: 0.0.0.0/0\n log: error\n}\n"))


def setup_files():
    subprocess.run(["rm", "-rf", CWORK], check=True)
    os.makedirs(CWORK)
    f = {"hosts": write(f"{CWORK}/danted-hosts", f"127.0.0.1 localhost\n{WEB_IP} {WEB_NAME}\n")}
    for k in HOPS:
        f[f"danted{k}"] = danted_conf(k)
        hops = [f"socks5h://127.0.0.1:{hop_port(i)}" for i in range(1, k + 1)]
        f[f"socksify{k}"] = write(f"{CWORK}/socksify{k}.conf",
                                  f"proxy = {', '.join(hops)}\nlog_level = error\n")
        f[f"proxychains{k}"] = write(f"{CWORK}/proxychains{k}.conf", (
            "strict_chain\nproxy_dns\nremote_dns_subnet 224\n"
            "tcp_read_time_out 15000\ntcp_connect_time_out 8000\n[ProxyList]\n" +
            "".join(f"socks5 127.0.0.1 {hop_port(i)}\n" for i in range(1, k + 1))))
    return f


def start_servers(f):
    for i in HOPS:  # each hop's external address, on lo
        subprocess.run(["ip", "addr", "add", f"{hop_ext(i)}/32", "dev", "lo"], check=True)
    procs = []
    srv = subprocess.Popen([SRV, WEB_IP, str(WEB_PORT)], stdout=subprocess.PIPE)
    srv.stdout.readline()
    procs.append(srv)
    for i in HOPS:
        sh = (f"mount --bind {f['hosts']} /etc/hosts && "
              f"exec danted -f {f[f'danted{i}']} -N 1 -p {CWORK}/danted{i}.pid")
        procs.append(subprocess.Popen(["unshare", "-m", "sh", "-c", sh]))
    for i in HOPS:
        wait_port("127.0.0.1", hop_port(i))
    return procs


# ------------------------------------------------------------- variants
def variants(f):
    """[(key, tool, hops, env, argv_prefix, target, expected origin peer)];
    direct (None) must not arrive from a hop's address."""
    v = [("direct", "direct", 0, {}, [], WEB_IP, None),
         ("native 1 hop", "native", 1, {}, ["-x", f"127.0.0.1:{hop_port(1)}"], WEB_NAME, hop_ext(1))]
    for k in HOPS:
        v.append((f"socksify {k} hop{'s' if k > 1 else ''}", "socksify", k,
                  {"LD_PRELOAD": LIB, "SOCKSIFY_CONF": f[f"socksify{k}"]}, [], WEB_NAME, hop_ext(k)))
        v.append((f"proxychains4 {k} hop{'s' if k > 1 else ''}", "proxychains4", k,
                  {"LD_PRELOAD": PEERLIB["proxychains4"], "PROXYCHAINS_CONF_FILE": f[f"proxychains{k}"],
                   "PROXYCHAINS_QUIET_MODE": "1"}, [], WEB_NAME, hop_ext(k)))
    return v


def argv(var, n, extra=()):
    _, _, _, _, pre, target, _ = var
    return [CONNBENCH, "-n", str(n), *extra, *pre, target, str(WEB_PORT)]


def probe(vs):
    ok, na = [], {}
    for var in vs:
        key, env, want = var[0], var[3], var[6]
        p = subprocess.run(argv(var, 1, ["-v"]), env=run_env(env), capture_output=True, text=True, timeout=60)
        lines = p.stderr.strip().splitlines()
        body = lines[-1].strip() if lines else ""
        if p.returncode == 0 and (body == want or (want is None and body and body not in map(hop_ext, HOPS))):
            ok.append(var)
        elif p.returncode == 0:
            na[key] = f"arrived from {body or '?'}, not from hop {var[2]}'s {want}"
        else:
            na[key] = "not available: " + (body or f"exit {p.returncode}")[:160]
    return ok, na


# --------------------------------------------------------------- timing
def fmt(x, spec=".2f"):
    return "n/a" if x is None or x != x else format(x, spec)


def sec_latency(vs):
    res = {v[0]: [] for v in vs}
    for r in range(ROUNDS):
        order = vs[r % len(vs):] + vs[:r % len(vs)]
        for var in order:
            p = subprocess.run(argv(var, N), env=run_env(var[3]), capture_output=True, text=True, timeout=600)
            if p.returncode:
                raise SystemExit(f"bench: {var[0]} failed in round {r}: {p.stderr.strip()[-300:]}")
            res[var[0]].append(float(p.stdout.split()[0]))

    def ratio(a, b):  # median of per-round ratios of a's time to b's
        if a not in res or b not in res:
            return None
        return med([x / y for x, y in zip(res[a], res[b])])

    emit("### 1. Latency per connection")
    emit()
    emit(f"{ROUNDS} rounds; per variant and round one connbench process making {N} sequential "
         "connections (look-up, connect through every hop, GET, read to EOF, close). Value: median "
         "over rounds of each run's median. Ratios of times (lower is faster), medians of per-round "
         "ratios: against proxychains4 with the same hops, and against the same tool's 1 hop.")
    emit()
    emit("| variant | us/conn | extra vs direct (us) | x proxychains4, same hops | x own 1 hop |")
    emit("|---|---:|---:|---:|---:|")
    base = med(res["direct"]) if "direct" in res else None
    for var in vs:
        key, tool, k = var[0], var[1], var[2]
        m = med(res[key])
        pc = ratio(key, key.replace(tool, "proxychains4")) if tool == "socksify" else None
        own = ratio(key, f"{tool} 1 hop") if tool in ("socksify", "proxychains4") and k > 1 else None
        emit(f"| {key} | {m:.1f} | {fmt(m - base if base else None, '+.1f')} | {fmt(pc)} | {fmt(own)} |")
    emit()
    return res


def strace_calls(var, n, tag):
    of = f"{CWORK}/strace-c.{tag}"
    p = subprocess.run(["strace", "-f", "-c", "-o", of, "--"] + argv(var, n), env=run_env(var[3]),
                       capture_output=True, text=True, timeout=600)
    if p.returncode:
        return None
    with open(of) as fh:
        for ln in fh:
            f = ln.split()
            if f and f[-1] == "total":
                return int(f[3])
    return None


def sec_syscalls(vs):
    emit("### 2. Syscalls per connection")
    emit()
    emit(f"`strace -f -c`, {SYS_N1} and {SYS_N2} connections: (calls({SYS_N2}) - calls({SYS_N1})) / "
         f"{SYS_N2 - SYS_N1}. Per extra hop: (k hops - 1 hop) / (k - 1), the same tool.")
    emit()
    emit("| variant | syscalls/conn | extra vs direct | per extra hop | x proxychains4, same hops |")
    emit("|---|---:|---:|---:|---:|")
    per = {}
    for var in vs:
        tag = var[0].replace(" ", "_")
        a, b = strace_calls(var, SYS_N1, tag + ".1"), strace_calls(var, SYS_N2, tag + ".2")
        per[var[0]] = (b - a) / (SYS_N2 - SYS_N1) if a is not None and b is not None else None
    for var in vs:
        key, tool, k = var[0], var[1], var[2]
        v, d = per[key], per.get("direct")
        one = per.get(f"{tool} 1 hop")
        hop = (v - one) / (k - 1) if k > 1 and v is not None and one is not None else None
        pc = per.get(key.replace(tool, "proxychains4")) if tool == "socksify" else None
        emit(f"| {key} | {fmt(v, '.1f')} | {fmt(v - d if v is not None and d else None, '+.1f')} | "
             f"{fmt(hop, '+.1f')} | {fmt(v / pc if v is not None and pc else None)} |")
    emit()


# ----------------------------------------------------------------- main
def main():
    enter_namespace(__file__)
    t0 = time.time()
    f = setup_files()
    procs = start_servers(f)
    try:
        emit(f"## Proxy chains: cost per hop ({'quick' if QUICK else 'full'} run)")
        emit()
        emit(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} CPUs; "
             "hops: danted on 127.0.0.1:1081, :1082, :1083 (externals 127.0.0.11, .12, .13).")
        emit()
        vs, na = probe(variants(f))
        if "socksify 1 hop" in na:
            raise SystemExit(f"bench: socksify does not work: {na['socksify 1 hop']}")
        if na:
            emit("Variants that are not timed (n/a):")
            emit()
            for k, why in na.items():
                emit(f"- {k}: {why}")
            emit()
        sec_latency(vs)
        sec_syscalls(vs)
        emit(f"Run time: {time.time() - t0:.0f} s.")
    finally:
        stop(procs, [f"{CWORK}/danted{i}.pid" for i in HOPS])
    write(OUT, "\n".join(out_lines) + "\n")
    log(f"results written to {OUT}")


if __name__ == "__main__":
    main()
