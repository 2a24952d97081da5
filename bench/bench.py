#!/usr/bin/env python3
"""bench/bench.py — socksify against its peers and a native SOCKS5 client.

Run through bench/run.sh (a private network namespace) by `make bench`.
Every comparison is measured side by side in one run: each round runs every
variant once, in turn, and the table reports medians of per-round values and
of per-round ratios, so slow phases of a noisy machine hit all variants alike.

Environment: BENCH_QUICK=1 for the short mode; BENCH_OUT=FILE for the
markdown result (default build/bench/results.md); BENCH_ONLY=a,b to run only
some sections (latency, curl, syscalls, startup, bulk, memory, callgrind,
silent, evloop, session, udp).

Exit status: 1 when a target of the table is not met (marked NO, or not
measured) or a socksify variant does not work through danted, else 0.
"""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DANTED_EXTERNAL, ONLY, OUT, PROXY_PORT, QUICK, SRV, WEB_IP, WEB_NAME,  # noqa: E402
                    WEB_PORT, WORK, LIB, PEERLIB, connbench_argv, emit, log, out_lines, run_env, stop, wait_port,
                    want, write)
from counts import sec_callgrind, sec_syscalls, sec_targets  # noqa: E402
from evloop import sec_evloop, TARGET as EVLOOP_TARGET  # noqa: E402
from timing import sec_bulk, sec_curl, sec_latency, sec_memory, sec_silent, sec_startup  # noqa: E402
from session import sec_session  # noqa: E402
from udp import sec_udp  # noqa: E402


def setup_files():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    f = {}
    f["hosts"] = write(f"{WORK}/danted-hosts",
                       f"127.0.0.1 localhost\n{WEB_IP} {WEB_NAME}\n")
    rules = "".join(
        f"socks pass {{\n from: 127.0.0.0/8 to: {to}\n command: connect udpassociate\n}}\n"
        for to in (f"{WEB_IP}/32", WEB_NAME))
    # The echo server's datagrams back to a UDP association (section udp).
    rules += f"socks pass {{\n from: {WEB_IP}/32 to: 127.0.0.0/8\n command: udpreply\n}}\n"
    f["danted"] = write(f"{WORK}/danted.conf", (
        f"logoutput: {WORK}/danted.log\n"
        f"internal: 127.0.0.1 port = {PROXY_PORT}\n"
        f"external: {DANTED_EXTERNAL}\n"
        "socksmethod: none\nclientmethod: none\n"
        "user.privileged: root\nuser.unprivileged: nobody\n"
        "client pass {\n from: 127.0.0.0/8 to: 0.0.0.0/0\n}\n" + rules +
        "socks block {\n from: 0.0.0.0/0 to: 0.0.0.0/0\n log: error\n}\n"))
    f["socksify"] = write(f"{WORK}/socksify.conf",
                          f"proxy = socks5h://127.0.0.1:{PROXY_PORT}\nlog_level = error\n")
    nolimit = "connect_timeout = 0\nhandshake_timeout = 0\n"
    f["socksify[timeouts=0]"] = write(f"{WORK}/socksify-t0.conf", open(f["socksify"]).read() + nolimit)
    f["socksify[timeouts=0,pipeline]"] = write(f"{WORK}/socksify-t0p.conf", open(f["socksify"]).read() + nolimit
                                               + "pipeline = yes\n")
    f["proxychains4"] = write(f"{WORK}/proxychains.conf", (
        "strict_chain\nproxy_dns\nremote_dns_subnet 224\n"
        "tcp_read_time_out 15000\ntcp_connect_time_out 8000\n"
        f"[ProxyList]\nsocks5 127.0.0.1 {PROXY_PORT}\n"))
    f["tsocks"] = write(f"{WORK}/tsocks.conf", (
        "local = 127.0.0.0/255.0.0.0\n"
        f"server = 127.0.0.1\nserver_type = 5\nserver_port = {PROXY_PORT}\n"))
    f["torsocks"] = write(f"{WORK}/torsocks.conf", (
        f"TorAddress 127.0.0.1\nTorPort {PROXY_PORT}\n"
        "OnionAddrRange 127.42.42.0/24\n"))
    f["dante"] = write(f"{WORK}/dante.conf", (
        "route {\n from: 0.0.0.0/0 to: 0.0.0.0/0 "
        f"via: 127.0.0.1 port = {PROXY_PORT}\n"
        " proxyprotocol: socks_v5\n method: none\n}\n"))
    return f


def start_servers(f):
    procs = []
    srv = subprocess.Popen([SRV, WEB_IP, str(WEB_PORT)], stdout=subprocess.PIPE)
    srv.stdout.readline()
    procs.append(srv)
    sh = (f"mount --bind {f['hosts']} /etc/hosts && "
          f"exec danted -f {f['danted']} -N 1 -p {WORK}/danted.pid")
    procs.append(subprocess.Popen(["unshare", "-m", "sh", "-c", sh]))
    wait_port("127.0.0.1", PROXY_PORT)
    return procs


# ------------------------------------------------------------- variants
def tool_env(f):
    """tool name -> environment additions that preload it (LD_PRELOAD only
    plus the tool's own config file variable)."""
    return {
        "direct": {},
        "native": {},
        "socksify": {"LD_PRELOAD": LIB, "SOCKSIFY_CONF": f["socksify"]},
        # the same with socksify's own time limits off (as the peers and the
        # native client have none), and with pipelining on top
        "socksify[timeouts=0]": {"LD_PRELOAD": LIB, "SOCKSIFY_CONF": f["socksify[timeouts=0]"]},
        "socksify[timeouts=0,pipeline]": {"LD_PRELOAD": LIB,
                                          "SOCKSIFY_CONF": f["socksify[timeouts=0,pipeline]"]},
        "proxychains4": {"LD_PRELOAD": PEERLIB["proxychains4"],
                         "PROXYCHAINS_CONF_FILE": f["proxychains4"],
                         "PROXYCHAINS_QUIET_MODE": "1"},
        "tsocks": {"LD_PRELOAD": PEERLIB["tsocks"], "TSOCKS_CONF_FILE": f["tsocks"]},
        "torsocks": {"LD_PRELOAD": PEERLIB["torsocks"],
                     "TORSOCKS_CONF_FILE": f["torsocks"]},
        "dante": {"LD_PRELOAD": PEERLIB["dante"], "SOCKS_CONF": f["dante"]},
    }


# Why a pair fails (checked by hand with strace; the probe still runs them,
# and only a failing pair gets this text).
KNOWN_NA = {
    "tsocks (name)": "tsocks has no remote DNS: it resolves web.bench with the "
                     "local resolver (DNS query, unreachable in the namespace)",
    "torsocks (name)": "torsocks resolves names with Tor's RESOLVE extension "
                       "(SOCKS command 0xF0); danted closes the connection",
}


def probe(envs):
    """Which (tool, target) pairs work, and go through danted.  Returns the
    list of working variants and a dict of n/a reasons."""
    ok, na = [], {}
    for tool in envs:
        for tname, target in (("name", WEB_NAME), ("IP", WEB_IP)):
            key = f"{tool} ({tname})"
            if tool == "direct" and tname == "name":
                continue  # no local resolution of web.bench in the netns
            p = subprocess.run(connbench_argv(tool, target, ["-n", "1", "-v"]),
                               env=run_env(envs[tool]), capture_output=True,
                               text=True, timeout=30)
            body = p.stderr.strip().splitlines()[-1:] if p.stderr else []
            via = body == [DANTED_EXTERNAL]
            if p.returncode == 0 and via == (tool != "direct"):
                ok.append((key, tool, target))
            elif key in KNOWN_NA:
                na[key] = KNOWN_NA[key]
            elif p.returncode == 0:
                na[key] = f"connected without the proxy (origin saw {body})"
                if tool == "direct":
                    raise SystemExit("bench: the direct connection went through danted?")
            else:
                err = p.stderr.strip().replace("\n", " | ")[:160]
                na[key] = f"fails: {err or 'exit %d' % p.returncode}"
    return ok, na


def versions():
    v = []
    for pkg in ("proxychains4", "tsocks", "torsocks", "dante-client", "dante-server", "curl"):
        p = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg],
                           capture_output=True, text=True)
        v.append(f"{pkg} {p.stdout or '?'}")
    return ", ".join(v)


def main():
    t_start = time.time()
    f = setup_files()
    procs = start_servers(f)
    envs = tool_env(f)
    try:
        emit(f"# socksify benchmark results ({'quick' if QUICK else 'full'} mode)")
        emit()
        emit(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
             f"{os.cpu_count()} CPUs; {versions()}.")
        emit()
        variants, na = probe(envs)
        if "socksify (name)" in na:
            raise SystemExit(f"bench: socksify does not work: {na['socksify (name)']}")
        if na:
            emit("Variants that cannot run against danted (n/a):")
            emit()
            for k, why in na.items():
                emit(f"- {k}: {why}")
            emit()
        lat = sec_latency(variants, envs) if want("latency") else None
        if want("curl"):
            sec_curl(envs)
        sys_data = sec_syscalls(variants, envs) if want("syscalls") else None
        start, start_sys = sec_startup(envs) if want("startup") else (None, None)
        bulk = sec_bulk(envs) if want("bulk") else None
        if want("memory"):
            sec_memory(envs)
        if want("callgrind"):
            sec_callgrind(variants, envs)
        if want("silent"):
            sec_silent(envs)
        if want("session"):
            sec_session(envs)
        udp_failed = want("udp") and sec_udp(envs) is None
        unmet = []
        if want("evloop"):
            for name, ratio, conns_ok in sec_evloop():
                ok = ratio <= EVLOOP_TARGET and conns_ok
                emit(f"- target: {name} at most {EVLOOP_TARGET}x the native client with exactly one proxy "
                     f"connection per request: {ratio:.2f}x, {'yes' if ok else 'NO'}")
                if not ok:
                    unmet.append(f"event loop: {name}")
            emit()
        if udp_failed:
            unmet.append("udp: socksify does not relay UDP through danted")
        if not ONLY:
            unmet += sec_targets(lat, sys_data, start, start_sys, bulk)
        emit(f"Run time: {time.time() - t_start:.0f} s.")
    finally:
        stop(procs, [f"{WORK}/danted.pid"])
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    write(OUT, "\n".join(out_lines) + "\n")
    log(f"results written to {OUT}")
    if unmet:
        # A target the table marks NO fails `make bench` (after the results
        # are written, so the table can be read).
        log(f"{len(unmet)} target(s) not met:")
        for what in unmet:
            log(f"  NO: {what}")
        sys.exit(1)


if __name__ == "__main__":
    main()
