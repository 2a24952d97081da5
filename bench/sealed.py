#!/usr/bin/env python3
"""bench/sealed.py — what `socksify --sealed` costs (issue 17).

    make bench-sealed                   # or: python3 bench/sealed.py
    make bench-sealed BENCH_QUICK=1     # quick run

Runs itself in a private network and mount namespace (like bench/run.sh) with
the origin server and danted of bench/bench.py, and measures, side by side in
one run (each round runs every variant once, the order rotating):

  1. conn/s and per-connection latency of three clients, each without a proxy
     ("direct"), under the preload ("socksify") and sealed ("sealed"):
     connbench (dynamic, libc: the preload proxies it, sealed mode adds the
     filter's checks), static_get (static glibc) and goget (Go,
     CGO_ENABLED=0); the last two from tests/sealed/build.sh;
  2. start-up: /bin/true, `socksify /bin/true`, `socksify --sealed /bin/true`;
  3. syscalls per connection: `strace -f -c` (every process of the tree: with
     --sealed the supervisor too) over N1 and N2 connections, the difference
     divided by N2 - N1 (start-up cancels out).

Before timing, every variant is probed with one connection: the origin must
see danted's address (127.0.0.2) for a proxied variant, and a DNS sentinel
(the namespace's resolv.conf points at it) must stay silent.  A variant that
goes direct or fails is listed as n/a with what happened: under the preload
alone, the static and Go clients are not proxied (the bug sealed mode fixes).
Until `socksify --sealed` works, the sealed columns say
"sealed: not available (<reason>)".

Target (issue 17): the libc client sealed at least 0.9x the conn/s of the same
client unsealed.  Exit status 1 when it is measured and not met; results also
go to build/bench/sealed.md.
"""
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402
from common import (B, CONNBENCH, DANTED_EXTERNAL, QUICK, ROOT, SPAWN, WEB_IP, WEB_NAME,  # noqa: E402
                    WEB_PORT, WRAPPER, emit, enter_namespace, log, med, out_lines, pick, run_env, stop, write)

SWORK = os.path.join(B, "sealed-run")
OUT = os.environ.get("BENCH_SEALED_OUT", os.path.join(B, "sealed.md"))
CLIENTS_DIR = os.path.join(ROOT, "build", "tests", "sealed")
DNS_IP = "10.77.0.53"  # the namespace's only nameserver: a DNS sentinel
TARGET = 0.9

ROUNDS, N = pick(25, 5), pick(300, 40)
GO_N = pick(150, 20)  # Go's per-connection cost is several times libc's
START_ROUNDS = pick(300, 30)
SYS_N1, SYS_N2 = pick(20, 5), pick(220, 45)

CLIENTS = ("connbench", "static_get", "goget")
MODES = ("direct", "socksify", "sealed")


# ------------------------------------------------------------ namespace
def start_dns_sentinel():
    """resolv.conf -> a DNS sentinel on DNS_IP: any query a client sends
    itself is logged (and refused)."""
    rc = write(f"{SWORK}/resolv.conf", f"nameserver {DNS_IP}\noptions attempts:1 timeout:1\n")
    subprocess.run(["mount", "--bind", rc, "/etc/resolv.conf"], check=True)
    logf = f"{SWORK}/dns.log"
    write(logf, "")
    p = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "tests", "servers", "dns_sentinel.py"),
                          "--listen", f"{DNS_IP}:53", "--log", logf, "--port-file", f"{SWORK}/dns.port"])
    for _ in range(100):
        if os.path.exists(f"{SWORK}/dns.port"):
            break
        time.sleep(0.05)
    return p, logf


# ------------------------------------------------------------- variants
def client_argv(client, target, n, probe=False):
    if client == "connbench":
        return [CONNBENCH, "-n", str(n)] + (["-v"] if probe else []) + [target, str(WEB_PORT)]
    if client == "static_get":
        return [os.path.join(CLIENTS_DIR, "static_get"), "-n", str(n), "-t", target, str(WEB_PORT), "/"]
    return [os.path.join(CLIENTS_DIR, "goget"), "-n", str(n), "-t", f"http://{target}:{WEB_PORT}/"]


def mode_argv(mode, conf):
    return {"direct": [], "socksify": ["sh", WRAPPER, "-c", conf, "--"],
            "sealed": ["sh", WRAPPER, "-c", conf, "--sealed", "--"]}[mode]


def parse_run(client, p):
    """(median us per connection, body of the last connection)."""
    if client == "connbench":
        lines = p.stderr.strip().splitlines()
        return float(p.stdout.split()[0]), (lines[-1] if lines else "")
    m = re.search(r"^lat n=\d+ median_us=([0-9.]+)", p.stderr, re.M)
    return float(m.group(1)), p.stdout.strip()


def sealed_probe(conf):
    """None when `socksify --sealed` runs a program sealed, else why not."""
    p = subprocess.run(mode_argv("sealed", conf) + ["sh", "-c", 'test -n "$SOCKSIFY_SEALED_ACTIVE"'],
                       env=run_env({}), capture_output=True, text=True, timeout=30)
    if p.returncode == 0:
        return None
    why = (p.stderr.strip().splitlines() or ["no message"])[0]
    return f"`socksify --sealed` exits {p.returncode}: {why}"


def probe(conf, dnslog, sealed_na):
    """[(key, client, mode, target)] that work and go where they should, and
    {key: why} for the rest."""
    ok, na = [], {}
    for client in CLIENTS:
        for mode in MODES:
            for tname, target in (("name", WEB_NAME), ("IP", WEB_IP)):
                key = f"{client} {mode} ({tname})"
                if mode == "direct" and tname == "name":
                    continue  # the client's /etc/hosts lacks web.bench
                if mode == "sealed" and sealed_na:
                    na[key] = "sealed: not available (above)"
                    continue
                before = len(open(dnslog).read().splitlines())
                p = subprocess.run(mode_argv(mode, conf) + client_argv(client, target, 1, probe=True),
                                   env=run_env({}), capture_output=True, text=True, timeout=60)
                dns = len(open(dnslog).read().splitlines()) - before
                body = parse_run(client, p)[1] if p.returncode == 0 else ""
                via = body == DANTED_EXTERNAL
                if p.returncode == 0 and via == (mode != "direct") and dns == 0:
                    ok.append((key, client, mode, target))
                    continue
                err = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1][:140]
                what = (f"not proxied: the origin saw {body}" if p.returncode == 0 and not via
                        else f"fails: {err}")
                na[key] = what + (f"; {dns} DNS quer{'y' if dns == 1 else 'ies'} sent by the client itself"
                                  if dns else "")
    return ok, na


# --------------------------------------------------------------- timing
def fmt(x):
    return "n/a" if x != x else f"{x:.2f}"  # NaN: no base to compare with


def sec_latency(variants, conf):
    res = {k: [] for k, _, _, _ in variants}
    for r in range(ROUNDS):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for key, client, mode, target in order:
            n = GO_N if client == "goget" else N
            p = subprocess.run(mode_argv(mode, conf) + client_argv(client, target, n),
                               env=run_env({}), capture_output=True, text=True, timeout=600)
            if p.returncode:
                raise SystemExit(f"bench: {key} failed in round {r}: {p.stderr.strip()[-300:]}")
            res[key].append(parse_run(client, p)[0])
    emit("### 1. Per-connection latency and conn/s")
    emit()
    emit(f"{ROUNDS} rounds; per variant and round one process making {N} sequential connections "
         f"({GO_N} for goget), each with its own name look-up, connect, GET, read to EOF, close. "
         "Value: median over rounds of each run's median; conn/s = 1e6 / that. Ratios: medians of "
         "per-round ratios of conn/s, against the same client and target unsealed, and against "
         "the client going direct (IP, no proxy).")
    emit()
    emit("| variant | us/conn | conn/s | x socksify (unsealed) | x direct |")
    emit("|---|---:|---:|---:|---:|")
    ratios = {}
    for k, xs in res.items():
        client, mode, tgt = k.split(" ", 2)
        unsealed, direct = f"{client} socksify {tgt}", f"{client} direct (IP)"

        def ratio(base):
            if base not in res:
                return float("nan")
            return med([b / a for a, b in zip(xs, res[base])])  # conn/s ratio
        ratios[k] = ratio(unsealed)
        emit(f"| {k} | {med(xs):.1f} | {1e6 / med(xs):,.0f} | {fmt(ratios[k])} | {fmt(ratio(direct))} |")
    emit()
    return ratios


def sec_startup(conf, sealed_na):
    env = f"PATH=/usr/bin:/bin SOCKSIFY_CONF={conf}"
    lines = [f"true\t{env}\t/bin/true", f"socksify\t{env}\t/bin/sh {WRAPPER} /bin/true"]
    if not sealed_na:
        lines.append(f"socksify --sealed\t{env}\t/bin/sh {WRAPPER} --sealed /bin/true")
    cmdf = write(f"{SWORK}/spawn.cmds", "\n".join(lines) + "\n")
    p = subprocess.run([SPAWN, str(START_ROUNDS), cmdf], capture_output=True, text=True, timeout=900)
    if p.returncode:
        raise SystemExit(f"bench: start-up timing failed: {p.stderr.strip()}")
    t = {}
    for ln in p.stdout.splitlines():
        name, rnd, us = ln.rsplit(" ", 2)
        t.setdefault(name, {})[int(rnd)] = float(us)
    emit("### 2. Start-up")
    emit()
    emit(f"fork+execve+wait, {START_ROUNDS} interleaved rounds (bench/spawn), environment: PATH and "
         "SOCKSIFY_CONF only. Ratios: medians of per-round ratios.")
    emit()
    emit("| command | median us | x /bin/true | x socksify /bin/true |")
    emit("|---|---:|---:|---:|")
    for name in ("true", "socksify", "socksify --sealed"):
        if name not in t:
            emit(f"| {name} /bin/true | sealed: not available | | |")
            continue
        xs = t[name]

        def ratio(base):
            return med([xs[r] / t[base][r] for r in xs])
        label = "/bin/true" if name == "true" else f"{name} /bin/true"
        emit(f"| {label} | {med(list(xs.values())):.0f} | {ratio('true'):.2f} | {ratio('socksify'):.2f} |")
    emit()


def strace_calls(argv, tag):
    of = f"{SWORK}/strace-c.{tag}"
    p = subprocess.run(["strace", "-f", "-c", "-o", of, "--"] + argv, env=run_env({}),
                       capture_output=True, text=True, timeout=600)
    if p.returncode:
        return None
    with open(of) as fh:
        for ln in fh:
            f = ln.split()
            if f and f[-1] == "total":
                return int(f[3])
    return None


def sec_syscalls(variants, conf):
    emit("### 3. Syscalls per connection")
    emit()
    emit(f"`strace -f -c` of the whole tree (with --sealed, the supervisor too), {SYS_N1} and {SYS_N2} "
         f"connections: (calls({SYS_N2}) - calls({SYS_N1})) / {SYS_N2 - SYS_N1}.")
    emit()
    emit("| variant | syscalls/conn | extra vs direct (IP) | extra vs socksify (unsealed) |")
    emit("|---|---:|---:|---:|")
    per = {}
    for key, client, mode, target in variants:
        argv = mode_argv(mode, conf)
        tag = key.replace(" ", "_").replace("(", "").replace(")", "")
        a = strace_calls(argv + client_argv(client, target, SYS_N1), tag + ".1")
        b = strace_calls(argv + client_argv(client, target, SYS_N2), tag + ".2")
        per[key] = (b - a) / (SYS_N2 - SYS_N1) if a is not None and b is not None else None
    def extra(v, base):
        return f"{v - base:+.1f}" if v is not None and base is not None else ""
    for key, v in per.items():
        client, mode, tgt = key.split(" ", 2)
        unsealed = per.get(f"{client} socksify {tgt}") if mode == "sealed" else None
        emit(f"| {key} | {'failed' if v is None else f'{v:.1f}'} | "
             f"{extra(v, per.get(f'{client} direct (IP)'))} | {extra(v, unsealed)} |")
    emit()


# ----------------------------------------------------------------- main
def build_clients():
    p = subprocess.run(["sh", os.path.join(ROOT, "tests", "sealed", "build.sh"), CLIENTS_DIR],
                       capture_output=True, text=True, timeout=900)
    sys.stderr.write(p.stdout + p.stderr)
    if p.returncode:
        raise SystemExit("bench: the sealed-mode test clients do not build")
    return [ln.split(": ", 1)[1] for ln in p.stdout.splitlines() if ": " in ln]


def report_na(na):
    if na:
        emit("Variants that are not timed (n/a):")
        emit()
        for k, why in na.items():
            emit(f"- {k}: {why}")
        emit()


def main():
    enter_namespace(__file__)
    t0 = time.time()
    built = build_clients()
    bench.WORK = SWORK  # bench.py's set-up, in a directory of our own
    f = bench.setup_files()
    procs = bench.start_servers(f)
    dns, dnslog = start_dns_sentinel()
    procs.append(dns)
    conf = f["socksify"]
    unmet = []
    try:
        emit(f"## Sealed mode ({'quick' if QUICK else 'full'} run)")
        emit()
        emit(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} CPUs; "
             f"test clients: {'; '.join(built)}.")
        emit()
        sealed_na = sealed_probe(conf)
        if sealed_na:
            emit(f"**sealed: not available ({sealed_na})**")
            emit()
        variants, na = probe(conf, dnslog, sealed_na)
        if "connbench socksify (name)" in na:
            raise SystemExit(f"bench: socksify does not work: {na['connbench socksify (name)']}")
        report_na(na)
        ratios = sec_latency(variants, conf)
        sec_startup(conf, sealed_na)
        sec_syscalls(variants, conf)
        for tgt in ("name", "IP"):
            key = f"connbench sealed ({tgt})"
            if key not in ratios:
                emit(f"- target: libc client sealed at least {TARGET}x unsealed conn/s ({tgt}): "
                     f"not measured ({'sealed: not available' if sealed_na else na.get(key, 'n/a')})")
                continue
            met = ratios[key] >= TARGET
            emit(f"- target: libc client sealed at least {TARGET}x unsealed conn/s ({tgt}): "
                 f"{ratios[key]:.2f}x, {'yes' if met else 'NO'}")
            if not met:
                unmet.append(key)
        emit()
        emit(f"Run time: {time.time() - t0:.0f} s.")
    finally:
        stop(procs, [f"{SWORK}/danted.pid"])
    write(OUT, "\n".join(out_lines) + "\n")
    log(f"results written to {OUT}")
    if unmet:
        log(f"target not met: {', '.join(unmet)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
