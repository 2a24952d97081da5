"""bench/udp.py — UDP through danted (UDP ASSOCIATE): datagram round-trip
latency and throughput of bench/udpbench.c, run natively (straight to the
echo server, no proxy), under socksify and under Dante's client library
(libdsocksd, what Dante's socksify script preloads).  Each round runs every
variant once, in turn, the order rotating; ratios are medians of per-round
ratios to the native client."""
import os
import subprocess

from common import (B, DANTED_EXTERNAL, QUICK, WEB_IP, emit, log, med, run_env)

UDPBENCH = os.path.join(B, "udpbench")
UDP_PORT = 7
ROUNDS = 5 if QUICK else 15
LAT_N = 500 if QUICK else 2000
TPUT_N, TPUT_LEN, TPUT_WIN = (5000, 1024, 32) if QUICK else (20000, 1024, 32)


def udp_argv(extra, mode):
    return [UDPBENCH, *extra, WEB_IP, str(UDP_PORT), mode]


def probe(envs, variants):
    """The variants that work, each checked to go through danted (the echo
    server names the source it saw) or, for native, not to."""
    ok = []
    for name in variants:
        p = subprocess.run(udp_argv([], "who"), env=run_env(envs[name]),
                           capture_output=True, text=True, timeout=30)
        who = p.stdout.strip()
        via = who == DANTED_EXTERNAL
        if p.returncode == 0 and via == (name != "native"):
            ok.append(name)
        else:
            log(f"udp: {name} n/a: rc={p.returncode} saw={who!r} {p.stderr.strip()[:200]}")
            emit(f"- {name}: n/a (rc={p.returncode}, the echo server saw {who!r})")
    return ok


def sec_udp(envs):
    emit("## UDP through danted (UDP ASSOCIATE)")
    emit()
    srv = subprocess.Popen([UDPBENCH, "-s", WEB_IP, str(UDP_PORT)], stdout=subprocess.PIPE)
    try:
        srv.stdout.readline()
        uenvs = {"native": {}, "socksify": envs["socksify"], "dante": envs["dante"]}
        names = probe(uenvs, ["native", "socksify", "dante"])
        if "socksify" not in names:
            emit("socksify could not relay UDP through danted: no figures.")
            emit()
            return None
        lat = {k: [] for k in names}
        tput = {k: [] for k in names}
        mbs = {k: [] for k in names}
        recv = {k: [] for k in names}
        for r in range(ROUNDS):
            for k in names[r % len(names):] + names[:r % len(names)]:
                e = run_env(uenvs[k])
                p = subprocess.run(udp_argv(["-n", str(LAT_N), "-l", "64"], "lat"), env=e,
                                   capture_output=True, text=True, timeout=120)
                if p.returncode == 0:
                    lat[k].append(float(p.stdout.split()[0]))
                p = subprocess.run(udp_argv(["-n", str(TPUT_N), "-l", str(TPUT_LEN), "-w", str(TPUT_WIN)],
                                            "tput"), env=e, capture_output=True, text=True, timeout=120)
                if p.returncode == 0:
                    d, m, got = p.stdout.split()
                    tput[k].append(float(d))
                    mbs[k].append(float(m))
                    recv[k].append(int(got))
        emit(f"{ROUNDS} interleaved rounds (order rotates). Latency: median of {LAT_N} sequential "
             f"round trips of 64-byte datagrams on one socket (the association is made before the clock "
             f"starts). Throughput: {TPUT_N} datagrams of {TPUT_LEN} bytes, at most {TPUT_WIN} "
             "unanswered; a window silent for 200 ms counts as lost. Ratios: medians of per-round "
             "ratios to native (the client straight to the echo server, no proxy).")
        emit()
        emit("| variant | RTT us (median) | x native | datagrams/s (median) | MB/s | x native | "
             "received (min of rounds) |")
        emit("|---|---:|---:|---:|---:|---:|---:|")

        def ratio(xs, base):
            return med([a / b for a, b in zip(xs, base)]) if xs and base else float("nan")
        for k in names:
            emit(f"| {k} | {med(lat[k]):.1f} | {ratio(lat[k], lat['native']):.2f} | "
                 f"{med(tput[k]):,.0f} | {med(mbs[k]):.1f} | {ratio(tput[k], tput['native']):.2f} | "
                 f"{min(recv[k]) if recv[k] else 0} / {TPUT_N} |")
        emit()
        return lat, tput
    finally:
        srv.terminate()
        srv.wait(5)
