#!/usr/bin/env python3
"""bench/bench.py — socksify against its peers and a native SOCKS5 client.

Run through bench/run.sh (a private network namespace) by `make bench`.
Every comparison is measured side by side in one run: each round runs every
variant once, in turn, and the table reports medians of per-round values and
of per-round ratios, so slow phases of a noisy machine hit all variants alike.

Environment: BENCH_QUICK=1 for the short mode; BENCH_OUT=FILE for the
markdown result (default build/bench/results.md); BENCH_ONLY=a,b to run only
some sections (latency, curl, syscalls, startup, bulk, memory, callgrind).
"""
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
B = os.path.join(ROOT, "build", "bench")
WORK = os.path.join(B, "run")
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
OUT = os.environ.get("BENCH_OUT", os.path.join(B, "results.md"))
ONLY = {x for x in os.environ.get("BENCH_ONLY", "").split(",") if x}


def want(section):
    return not ONLY or section in ONLY

LIB = os.path.join(ROOT, "build", "libsocksify.so")
WRAPPER = os.path.join(ROOT, "scripts", "socksify")
MA = "/usr/lib/x86_64-linux-gnu"
PEERLIB = {
    "proxychains4": MA + "/libproxychains.so.4",
    "tsocks": MA + "/libtsocks.so",
    "torsocks": MA + "/torsocks/libtorsocks.so",
    "dante": MA + "/libdsocksd.so.0",
}
PROXY_PORT = 1080
WEB_IP, WEB_NAME, WEB_PORT = "10.77.0.1", "web.bench", 8000
DANTED_EXTERNAL = "127.0.0.2"  # what the origin sees for a proxied connection

CONNBENCH = os.path.join(B, "connbench")
SPAWN = os.path.join(B, "spawn")
SRV = os.path.join(B, "srv")
EMPTY = os.path.join(B, "libempty.so")  # a preload that does nothing

# sizes: (full, quick)
def pick(full, quick):
    return quick if QUICK else full

LAT_ROUNDS, LAT_N = pick(25, 5), pick(300, 40)
CURL_ROUNDS = pick(100, 12)
START_ROUNDS, WRAP_ROUNDS = pick(3000, 150), pick(400, 30)
HYPERFINE_RUNS = pick(1000, 100)
BULK_ROUNDS, BULK_BYTES = pick(21, 5), 64 << 20
MEM_ROUNDS = pick(5, 3)

out_lines = []


def emit(s=""):
    print(s, flush=True)
    out_lines.append(s)


def log(s):
    print("# " + s, file=sys.stderr, flush=True)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


# ------------------------------------------------------------------ setup
def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def setup_files():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    f = {}
    f["hosts"] = write(f"{WORK}/danted-hosts",
                       f"127.0.0.1 localhost\n{WEB_IP} {WEB_NAME}\n")
    rules = "".join(
        f"socks pass {{\n from: 127.0.0.0/8 to: {to}\n command: connect\n}}\n"
        for to in (f"{WEB_IP}/32", WEB_NAME))
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


def wait_port(host, port, t=10):
    end = time.time() + t
    while time.time() < end:
        try:
            socket.create_connection((host, port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench: nothing listens on {host}:{port}")


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


def run_env(extra):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("SOCKSIFY", "LD_PRELOAD", "PROXYCHAINS", "TSOCKS",
                              "TORSOCKS", "SOCKS_", "http_proxy", "https_proxy",
                              "all_proxy", "ALL_PROXY"))}
    e.update(extra)
    return e


def connbench_argv(tool, target, extra=()):
    argv = [CONNBENCH, *extra]
    if tool == "native":
        argv += ["-x", f"127.0.0.1:{PROXY_PORT}"]
    return argv + [target, str(WEB_PORT)]


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


# -------------------------------------------------------------- sections
def sec_latency(variants, envs):
    emit("## 1a. Per-connection latency, one process (connbench)")
    emit()
    emit(f"{LAT_ROUNDS} rounds x {LAT_N} sequential connections per variant, "
         "interleaved. Each connection: getaddrinfo, socket, connect (+SOCKS), "
         "GET, read to EOF, close. Value: median over rounds of each run's median.")
    emit()
    res = {k: [] for k, _, _ in variants}
    for r in range(LAT_ROUNDS):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for key, tool, target in order:
            p = subprocess.run(connbench_argv(tool, target, ["-n", str(LAT_N)]),
                               env=run_env(envs[tool]), capture_output=True,
                               text=True, timeout=300)
            if p.returncode:
                raise SystemExit(f"bench: {key} failed: {p.stderr}")
            res[key].append(float(p.stdout.split()[0]))
    ratio_table(res, "native (name)", "direct (IP)", "us/conn")
    return res


def ratio_table(res, base, base2, unit):
    emit(f"| variant | {unit} (median) | x {base} | x {base2} |")
    emit("|---|---:|---:|---:|")
    for k, xs in res.items():
        r1 = med([a / b for a, b in zip(xs, res[base])]) if base in res else float("nan")
        r2 = med([a / b for a, b in zip(xs, res[base2])]) if base2 in res else float("nan")
        emit(f"| {k} | {med(xs):.1f} | {r1:.2f} | {r2:.2f} |")
    emit()


def sec_curl(envs):
    emit("## 1b. Per-connection latency, one curl process per connection")
    emit()
    url_n = f"http://{WEB_NAME}:{WEB_PORT}/"
    url_i = f"http://{WEB_IP}:{WEB_PORT}/"
    base = ["curl", "-s", "-o", "/dev/null", "--max-time", "10"]
    cv = [("direct (IP)", {}, base + [url_i]),
          ("native curl --socks5-hostname (name)", {},
           base + ["--socks5-hostname", f"127.0.0.1:{PROXY_PORT}", url_n]),
          ("socksify LD_PRELOAD (name)", envs["socksify"], base + [url_n]),
          ("socksify wrapper script (name)", {"SOCKSIFY_CONF": envs["socksify"]["SOCKSIFY_CONF"]},
           ["sh", WRAPPER, "-q"] + base + [url_n]),
          ("proxychains4 LD_PRELOAD (name)", envs["proxychains4"], base + [url_n]),
          ("proxychains4 launcher (name)", {},
           ["proxychains4", "-q", "-f", envs["proxychains4"]["PROXYCHAINS_CONF_FILE"]]
           + base + [url_n]),
          ("tsocks LD_PRELOAD (IP)", envs["tsocks"], base + [url_i]),
          ("torsocks LD_PRELOAD (IP)", envs["torsocks"], base + [url_i]),
          ("dante LD_PRELOAD (IP)", envs["dante"], base + [url_i])]
    good = []
    for k, e, argv in cv:
        p = subprocess.run(argv[:-1] + ["-w", "%{http_code}", argv[-1]],
                           env=run_env(e), capture_output=True, text=True, timeout=30)
        if p.returncode == 0 and p.stdout.endswith("200"):
            good.append((k, e, argv))
        else:
            log(f"curl variant {k} n/a: rc={p.returncode} {p.stderr.strip()[:200]}")
    emit(f"{CURL_ROUNDS} rounds, one `curl` per variant per round, interleaved "
         "(order rotates); "
         "wall time of the whole process (fork to exit), ms.")
    emit()
    res = {k: [] for k, _, _ in good}
    for r in range(CURL_ROUNDS):
        for k, e, argv in good[r % len(good):] + good[:r % len(good)]:
            env = run_env(e)
            t0 = time.perf_counter()
            p = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            t1 = time.perf_counter()
            if p.returncode:
                raise SystemExit(f"bench: curl {k} failed")
            res[k].append((t1 - t0) * 1e3)
    ratio_table(res, "native curl --socks5-hostname (name)", "direct (IP)", "ms/process")
    for k, _, _ in cv:
        if k not in res:
            emit(f"- {k}: n/a (see stderr of the run)")
    emit()


STRACE_SKIP = re.compile(r"resumed>|^\d+\s+(\+\+\+|---)")


def strace_phases(tool, target, envs):
    """strace -f one connbench run of 2 connections; return, per
    connection, the syscall lines of the phases [gai, connect, rest]."""
    tf = f"{WORK}/strace.{tool}.{target}"
    argv = ["strace", "-f", "-qq", "-o", tf] + connbench_argv(tool, target, ["-m", "-n", "2"])
    p = subprocess.run(argv, env=run_env(envs[tool]), capture_output=True, timeout=60)
    if p.returncode:
        return None
    conns, cur, phase = [], None, None
    with open(tf) as fh:
        for line in fh:
            line = line.rstrip("\n")
            m = re.search(r"close\(-(90[1-4])", line)
            if m:
                n = int(m.group(1))
                if n == 901:
                    cur = [[], [], []]
                    phase = 0
                elif n in (902, 903):
                    phase = n - 901
                else:
                    if cur is not None:
                        conns.append(cur)
                    cur = None
                continue
            if cur is not None and not STRACE_SKIP.search(line):
                cur[phase].append(re.sub(r"^\d+\s+", "", line))
    return conns


def sec_syscalls(variants, envs):
    emit("## 2. Syscalls per connection (strace -f, connbench with phase markers)")
    emit()
    emit("Counts of syscall lines between the markers (a call split by another "
         "thread counts once). `connect` = socket()+connect() and everything the "
         "tool adds in between; `all` = getaddrinfo..close. Extra = minus the "
         "same count for the direct connection.")
    emit()
    emit("| variant | conn 1 all | conn 2 all | conn 2 gai | conn 2 connect | extra (conn 2 all) | extra (conn 2 connect) |")
    emit("|---|---:|---:|---:|---:|---:|---:|")
    data = {}
    for key, tool, target in variants:
        c = strace_phases(tool, target, envs)
        if not c or len(c) != 2:
            emit(f"| {key} | n/a (strace run failed) | | | | | |")
            continue
        data[key] = c
    base = data.get("direct (IP)")
    for key, c in data.items():
        a1 = sum(map(len, c[0]))
        a2 = sum(map(len, c[1]))
        ba = sum(map(len, base[1])) if base else 0
        bc = len(base[1][1]) if base else 0
        emit(f"| {key} | {a1} | {a2} | {len(c[1][0])} | {len(c[1][1])} | "
             f"{a2 - ba:+d} | {len(c[1][1]) - bc:+d} |")
    emit()
    # The connect phase is the same for both targets and both connections
    # (the table has the counts); the name target's second connection shows
    # the getaddrinfo hook too.
    for key in ("socksify (name)",):
        if key in data:
            for i in (1,):
                emit(f"socksify's syscalls, {key}, connection {i + 1}, "
                     "getaddrinfo phase then connect phase (the strace of every "
                     f"variant is kept in {os.path.relpath(WORK, ROOT)}/strace.*):")
                emit()
                emit("```")
                for ph, lines in zip(("gai", "connect"), data[key][i][:2]):
                    for ln in lines:
                        emit(f"[{ph}] {ln[:150]}")
                emit("```")
                emit()
    return data


def startup_syscalls(envs):
    rows = []
    for tool in ("none", "empty preload", "socksify", "proxychains4", "tsocks",
                 "torsocks", "dante"):
        env = ({} if tool == "none" else {"LD_PRELOAD": EMPTY} if tool == "empty preload"
               else {"LD_PRELOAD": envs[tool]["LD_PRELOAD"]})
        tf = f"{WORK}/strace.start.{tool.replace(' ', '_')}"
        subprocess.run(["strace", "-f", "-qq", "-o", tf, "/bin/true"], env=env,
                       capture_output=True, timeout=60)
        with open(tf) as fh:
            lines = [ln for ln in fh if not STRACE_SKIP.search(ln)]
        pids = {ln.split()[0] for ln in lines}
        spawns = [ln for ln in lines if re.search(r"\b(clone3?|fork|vfork)\(", ln)]
        rows.append((tool, len(lines), len(pids), len(spawns)))
    return rows


def sec_startup(envs):
    emit("## 3. Start-up cost (/bin/true)")
    emit()
    spec = [("true", "-", "/bin/true"),
            ("empty preload (floor)", "LD_PRELOAD=" + EMPTY, "/bin/true")]
    for t in ("socksify", "proxychains4", "tsocks", "torsocks", "dante"):
        spec.append((t, "LD_PRELOAD=" + envs[t]["LD_PRELOAD"], "/bin/true"))
    cf = write(f"{WORK}/spawn.preload", "".join(f"{a}\t{b}\t{c}\n" for a, b, c in spec))
    path = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
    wspec = [("sh -c true", path, "/bin/sh -c /bin/true"),
             ("socksify wrapper", path + " SOCKSIFY_PROXY=socks5h://127.0.0.1:1080",
              f"/bin/sh {WRAPPER} /bin/true"),
             ("proxychains4 launcher", path, "/usr/bin/proxychains4 -q /bin/true"),
             ("tsocks script", path, "/bin/sh /usr/bin/tsocks /bin/true"),
             ("torsocks script", path, "/bin/sh /usr/bin/torsocks /bin/true"),
             ("dante socksify script", path, "/bin/sh /usr/bin/socksify /bin/true")]
    wf = write(f"{WORK}/spawn.wrap", "".join(f"{a}\t{b}\t{c}\n" for a, b, c in wspec))

    def run(cfile, rounds):
        p = subprocess.run([SPAWN, str(rounds), cfile], capture_output=True,
                           text=True, timeout=900)
        if p.returncode:
            log(f"spawn: {p.stderr.strip()}")
        d = {}
        for ln in p.stdout.splitlines():
            n, r, us = ln.rsplit(" ", 2)
            d.setdefault(n, []).append(float(us))
        return d

    d = run(cf, START_ROUNDS)
    emit(f"fork+execve+wait of `/bin/true`, {START_ROUNDS} interleaved rounds, "
         "environment = nothing but LD_PRELOAD (no config variables: each tool "
         "reads its default config, if any). Delta and ratio are medians of "
         "per-round differences/ratios against the plain /bin/true of the same round.")
    emit()
    emit("| variant | median us | delta us vs true | x true |")
    emit("|---|---:|---:|---:|")
    for n, xs in d.items():
        emit(f"| {n} | {med(xs):.0f} | {med([a - b for a, b in zip(xs, d['true'])]):+.0f} "
             f"| {med([a / b for a, b in zip(xs, d['true'])]):.3f} |")
    emit()
    w = run(wf, WRAP_ROUNDS)
    emit(f"Launchers (the command a user types), {WRAP_ROUNDS} interleaved rounds; "
         "ratio against `sh -c /bin/true`:")
    emit()
    emit("| launcher | median us | x sh -c true |")
    emit("|---|---:|---:|")
    for n, xs in w.items():
        emit(f"| {n} | {med(xs):.0f} | {med([a / b for a, b in zip(xs, w['sh -c true'])]):.2f} |")
    emit()
    hyperfine_check()
    emit("Syscalls of `/bin/true` under `strace -f` with only LD_PRELOAD set:")
    emit()
    emit("| preload | syscalls | extra | clone/fork calls (threads or children made at init) |")
    emit("|---|---:|---:|---:|")
    rows = startup_syscalls(envs)
    base = rows[0][1]
    for tool, n, _, spawns in rows:
        emit(f"| {tool} | {n} | {n - base:+d} | {spawns} |")
    emit()
    return d, rows


def hyperfine_check():
    """Cross-check of the socksify start-up ratio with hyperfine (not
    interleaved: hyperfine runs one command's runs, then the next's)."""
    if not shutil.which("hyperfine"):
        emit("(hyperfine not installed: no cross-check.)")
        emit()
        return
    jf = f"{WORK}/hyperfine.json"
    cmds = ["env -i /bin/true", f"env -i LD_PRELOAD={LIB} /bin/true"]
    p = subprocess.run(["hyperfine", "-N", "-w", "50", "-r", str(HYPERFINE_RUNS),
                        "--export-json", jf, *cmds], capture_output=True, text=True)
    if p.returncode:
        emit("(hyperfine failed: no cross-check.)")
        emit()
        return
    with open(jf) as fh:
        r = json.load(fh)["results"]
    a, b = r[0]["median"] * 1e6, r[1]["median"] * 1e6
    emit(f"hyperfine cross-check ({HYPERFINE_RUNS} runs each, not interleaved, "
         f"`env -i` in front of both): /bin/true {a:.0f} us, with libsocksify.so "
         f"{b:.0f} us, {b - a:+.0f} us, {b / a:.2f}x.")
    emit()


def sec_bulk(envs):
    emit(f"## 4. Bulk throughput: {BULK_BYTES >> 20} MiB through danted with curl")
    emit()
    url_n = f"http://{WEB_NAME}:{WEB_PORT}/bulk/{BULK_BYTES}"
    url_i = f"http://{WEB_IP}:{WEB_PORT}/bulk/{BULK_BYTES}"
    base = ["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", "--max-time", "60"]
    cv = [("direct (IP)", {}, base + [url_i]),
          ("native curl --socks5-hostname (name)", {},
           base + ["--socks5-hostname", f"127.0.0.1:{PROXY_PORT}", url_n]),
          ("socksify (name)", envs["socksify"], base + [url_n]),
          ("proxychains4 (name)", envs["proxychains4"], base + [url_n]),
          ("tsocks (IP)", envs["tsocks"], base + [url_i]),
          ("torsocks (IP)", envs["torsocks"], base + [url_i]),
          ("dante (IP)", envs["dante"], base + [url_i])]
    res = {k: [] for k, _, _ in cv}
    for r in range(BULK_ROUNDS):
        for k, e, argv in cv[r % len(cv):] + cv[:r % len(cv)]:
            if res.get(k) is None:
                continue
            t0 = time.perf_counter()
            p = subprocess.run(argv, env=run_env(e), capture_output=True, text=True)
            t1 = time.perf_counter()
            if p.returncode or p.stdout.strip() != str(BULK_BYTES):
                log(f"bulk {k} failed: {p.returncode} {p.stdout} {p.stderr[:200]}")
                res[k] = None
                continue
            res[k].append(BULK_BYTES / (t1 - t0) / 1e6)
    good = {k: v for k, v in res.items() if v}
    emit(f"{BULK_ROUNDS} interleaved rounds (order rotates); MB/s of the whole curl process; "
         "ratio = median of per-round throughput ratios.")
    emit()
    ratio_table(good, "native curl --socks5-hostname (name)", "direct (IP)", "MB/s")
    return good


def sec_memory(envs):
    emit("## 5. Peak RSS (/usr/bin/time -f %M), KiB")
    emit()
    rows = []
    for tool in ("direct", "native", "socksify", "proxychains4", "tsocks", "torsocks", "dante"):
        target = WEB_IP if tool in ("direct", "tsocks", "torsocks", "dante") else WEB_NAME
        env = envs[tool]
        t, c = [], []
        for _ in range(MEM_ROUNDS):
            for argv, acc, e in (
                    (["/bin/true"], t, {"LD_PRELOAD": env["LD_PRELOAD"]} if "LD_PRELOAD" in env else {}),
                    (connbench_argv(tool, target, ["-n", "1"]), c, run_env(env))):
                p = subprocess.run(["/usr/bin/time", "-f", "%M"] + argv, env=e,
                                   capture_output=True, text=True)
                acc.append(int(p.stderr.strip().splitlines()[-1]) if p.returncode == 0 else None)
        if tool == "native":
            t = [None]
        f = lambda xs: "n/a" if None in xs else f"{med(xs):.0f}"
        rows.append((tool, f(t), f(c)))
    emit(f"Median of {MEM_ROUNDS} runs. `/bin/true` with only LD_PRELOAD; "
         "connbench = one connection through danted (name target where the "
         "tool does remote DNS, else IP).")
    emit()
    emit("| tool | /bin/true | connbench -n 1 |")
    emit("|---|---:|---:|")
    for r in rows:
        emit(f"| {r[0]} | {r[1]} | {r[2]} |")
    emit()


def callgrind(tool, target, n, envs):
    of = f"{WORK}/cg.{tool}.{target}.{n}"
    argv = ["valgrind", "--tool=callgrind", "--toggle-collect=one_conn",
            f"--callgrind-out-file={of}"] + connbench_argv(tool, target, ["-n", str(n)])
    p = subprocess.run(argv, env=run_env(envs[tool]), capture_output=True,
                       text=True, timeout=300)
    if p.returncode:
        return None
    with open(of) as fh:
        for ln in fh:
            if ln.startswith(("summary:", "totals:")):
                return int(ln.split()[1])
    return None


def sec_callgrind(variants, envs):
    emit("## 6. Instructions per connection (callgrind, inclusive in connbench's one_conn)")
    emit()
    emit("User-space instructions executed inside one connection "
         "(getaddrinfo..close, with every hook and library call it makes). "
         "First = the first connection of the process (includes lazy "
         "initialisation); steady = (I(21 conns) - I(1 conn)) / 20.")
    emit()
    emit("| variant | first conn | steady conn | steady x native (name) |")
    emit("|---|---:|---:|---:|")
    rows = {}
    for key, tool, target in variants:
        i1 = callgrind(tool, target, 1, envs)
        i21 = callgrind(tool, target, 21, envs)
        rows[key] = (i1, (i21 - i1) / 20 if i1 and i21 else None)
    nat = rows.get("native (name)", (None, None))[1]
    for key, (i1, st) in rows.items():
        if i1 is None or st is None:
            emit(f"| {key} | n/a (failed under valgrind) | | |")
        else:
            emit(f"| {key} | {i1:,} | {st:,.0f} | {st / nat:.2f} |" if nat else
                 f"| {key} | {i1:,} | {st:,.0f} | |")
    emit()
    return rows


def sec_targets(lat, sys_data, start, start_sys, bulk):
    emit("## Targets of issue 6 (socksify)")
    emit()
    emit("| target | measured | met |")
    emit("|---|---|---|")

    def row(what, got, ok):
        emit(f"| {what} | {got} | {'yes' if ok else 'NO'} |")

    b = sys_data.get("direct (IP)")

    def conn_extra(key):
        d = sys_data.get(key)
        return len(d[1][1]) - len(b[1][1]) if d and b else None

    peers = {k: conn_extra(k) for k in ("proxychains4 (IP)", "tsocks (IP)", "torsocks (IP)", "dante (IP)")}
    peers = {k: v for k, v in peers.items() if v is not None}
    native, t0 = conn_extra("native (IP)"), conn_extra("socksify[timeouts=0] (IP)")
    if t0 is not None and native is not None and peers:
        fewest = min(peers.values())
        row("CONNECT (IP target), same guarantees as the peers and the native client (no time limits: "
            "timeouts = 0): at most the native client's, and the fewest of all socksifiers",
            f"{t0:+d} (native {native:+d}, fewest peer {fewest:+d})", t0 <= native and t0 < fewest)
    for key, what in (("socksify[timeouts=0,pipeline] (IP)", "pipeline = yes on top"),
                      ("socksify (IP)", "default: connect_timeout and handshake_timeout kept (2 setsockopt "
                                        "bound connect(), 2 poll bound the replies)")):
        if conn_extra(key) is not None:
            emit(f"| CONNECT (IP target), {what}, for information | {conn_extra(key):+d} | |")
    d = sys_data.get("socksify (IP)")
    if d:
        reads = [ln for ln in d[1][1] if re.match(r"(recvfrom|read|recvmsg)\(", ln)]
        row("reply read with one read (ATYP 1 reply fits the 10-byte minimum)",
            f"{len(reads) - 1} read(s) for the reply", len(reads) - 1 <= 1)
    n = sys_data.get("socksify (name)")
    if n and b:
        extra = sum(map(len, n[1])) - sum(map(len, b[1]))
        emit(f"| (name target, getaddrinfo..close, for information) | {extra:+d} | |")
    dt = med([a - c for a, c in zip(start["socksify"], start["true"])])
    rt = med([a / c for a, c in zip(start["socksify"], start["true"])])
    row("start-up: at most +0.3 ms over /bin/true", f"{dt / 1000:+.3f} ms", dt <= 300)
    row("start-up: wall at most 1.3x /bin/true (only LD_PRELOAD)", f"{rt:.3f}x", rt <= 1.3)
    srow = {r[0]: r for r in start_sys}
    ex = srow["socksify"][1] - srow["none"][1]
    row("start-up: at most 30 extra syscalls", f"{ex:+d}", ex <= 30)
    row("start-up: no thread or child process at init",
        f"{srow['socksify'][3]} clone/fork calls", srow["socksify"][3] == 0)
    deltas = {t: med([a - c for a, c in zip(start[t], start["true"])])
              for t in ("socksify", "proxychains4", "tsocks", "torsocks", "dante") if t in start}
    others = {t: v for t, v in deltas.items() if t != "socksify"}
    if others:
        best = min(others, key=others.get)
        row("start-up: the smallest of all socksifiers", f"{dt:+.0f} us (next: {best} {others[best]:+.0f} us)",
            dt < others[best])
    nat = "native curl --socks5-hostname (name)"
    if "socksify (name)" in bulk and nat in bulk:
        r = med([a / c for a, c in zip(bulk["socksify (name)"], bulk[nat])])
        row("bulk 64 MiB: throughput ratio to curl --socks5-hostname ~1.00 "
            "(met: at least 0.95; above 1 is noise)", f"{r:.2f}", r >= 0.95)
    for t in ("name", "IP"):
        k, nk = f"socksify ({t})", f"native ({t})"
        if k in lat and nk in lat:
            r = med([a / c for a, c in zip(lat[k], lat[nk])])
            row(f"latency per connection within 5% of the native client ({t} target)", f"{r:.2f}x", r <= 1.05)
    emit()


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
        if not ONLY:
            sec_targets(lat, sys_data, start, start_sys, bulk)
        emit(f"Run time: {time.time() - t_start:.0f} s.")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        # danted forks children of its own that outlive the unshare process
        try:
            with open(f"{WORK}/danted.pid") as fh:
                os.kill(int(fh.read().strip()), 15)
        except (OSError, ValueError):
            pass
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    write(OUT, "\n".join(out_lines) + "\n")
    log(f"results written to {OUT}")


if __name__ == "__main__":
    main()
