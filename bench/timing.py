"""bench/timing.py — the timed sections: latency (one process, one curl per
connection), start-up, bulk throughput, memory, and a proxy that never
answers.  Each round runs every variant once, interleaved."""
import json
import shutil
import socket
import subprocess
import threading
import time

from common import (BULK_BYTES, BULK_ROUNDS, CURL_ROUNDS, DANTED_EXTERNAL, EMPTY, HYPERFINE_RUNS, LAT_N,
                    LAT_ROUNDS, LIB, MEM_ROUNDS, PROXY_PORT, SPAWN, START_ROUNDS, WEB_IP, WEB_NAME, WEB_PORT,
                    WORK, WRAP_ROUNDS, WRAPPER, connbench_argv, emit, log, med, run_env, write)
from counts import startup_syscalls



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
    emit("| variant | us/conn (median) | conn/s | x native, same target | x native (name) | x direct (IP) |")
    emit("|---|---:|---:|---:|---:|---:|")
    for k, xs in res.items():
        same = "native (IP)" if k.endswith("(IP)") else "native (name)"

        def ratio(base):
            return med([a / b for a, b in zip(xs, res[base])]) if base in res else float("nan")
        emit(f"| {k} | {med(xs):.1f} | {1e6 / med(xs):,.0f} | {ratio(same):.2f} | {ratio('native (name)'):.2f} "
             f"| {ratio('direct (IP)'):.2f} |")
    emit()
    return res


def ratio_table(res, base, base2, unit):
    emit(f"| variant | {unit} (median) | x {base} | x {base2} |")
    emit("|---|---:|---:|---:|")
    for k, xs in res.items():
        r1 = med([a / b for a, b in zip(xs, res[base])]) if base in res else float("nan")
        r2 = med([a / b for a, b in zip(xs, res[base2])]) if base2 in res else float("nan")
        emit(f"| {k} | {med(xs):.1f} | {r1:.2f} | {r2:.2f} |")
    emit()


def curl_body_ok(variant, body, code):
    """(ok, why) for the probe of one curl variant: status 200 and the body
    naming the address the origin saw (bench/srv.c), danted's external
    address for a proxied variant, any other for "direct"."""
    if code != "200":
        return False, f"status {code!r}"
    via = body == DANTED_EXTERNAL
    if variant.startswith("direct"):
        return (not via), ("went through danted" if via else "")
    return via, ("" if via else f"the origin saw {body!r}, not danted ({DANTED_EXTERNAL})")


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
        # The body (argv without "-o /dev/null") is the address the origin
        # saw: danted's external one for every variant but "direct".  A 200
        # alone would not tell a proxied request from one that went direct.
        probe = [a for i, a in enumerate(argv[:-1])
                 if a != "-o" and (i == 0 or argv[i - 1] != "-o")]
        p = subprocess.run(probe + ["-w", "\n%{http_code}", argv[-1]],
                           env=run_env(e), capture_output=True, text=True, timeout=30)
        body, _, code = p.stdout.rpartition("\n")
        ok, why = curl_body_ok(k, body, code)
        if p.returncode == 0 and ok:
            good.append((k, e, argv))
        elif k.startswith("socksify"):
            raise SystemExit(f"bench: curl variant {k} does not work: rc={p.returncode} {why} "
                             f"{p.stderr.strip()[:200]}")
        else:
            log(f"curl variant {k} n/a: rc={p.returncode} {why} {p.stderr.strip()[:200]}")
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


SILENT_PORT, SILENT_WAIT = 1081, 6


def silent_proxy():
    """A proxy that accepts and then never says a word (held in a thread)."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", SILENT_PORT))
    ls.listen(64)
    held = []

    def loop():
        while True:
            held.append(ls.accept()[0])

    threading.Thread(target=loop, daemon=True).start()


def sec_silent(envs):
    """What the time limits buy: each tool against a proxy that accepts and
    never answers, one connection, killed after SILENT_WAIT seconds."""
    emit("## 7. A proxy that accepts and never answers")
    emit()
    emit(f"One connection (IP target) through a listener on 127.0.0.1:{SILENT_PORT} that accepts "
         f"and never sends a byte; the client is killed after {SILENT_WAIT} s. socksify runs with "
         "`handshake_timeout = 2`; the peers with their configuration above, port changed.")
    emit()
    silent_proxy()
    emit("| variant | outcome |")
    emit("|---|---|")
    for tool in ("socksify", "socksify[timeouts=0]", "proxychains4", "tsocks", "torsocks", "dante"):
        env = dict(envs[tool])
        for k in ("SOCKSIFY_CONF", "PROXYCHAINS_CONF_FILE", "TSOCKS_CONF_FILE", "TORSOCKS_CONF_FILE", "SOCKS_CONF"):
            if k in env:
                text = open(env[k]).read().replace(str(PROXY_PORT), str(SILENT_PORT))
                if tool == "socksify":
                    text += "handshake_timeout = 2\n"
                env[k] = write(f"{env[k]}.silent", text)
        t0 = time.time()
        try:
            p = subprocess.run(connbench_argv(tool, WEB_IP, ["-n", "1"]), env=run_env(env),
                               capture_output=True, text=True, timeout=SILENT_WAIT)
            err = (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1][:90]
            what = f"fails after {time.time() - t0:.1f} s: `{err}`"
        except subprocess.TimeoutExpired:
            what = f"still blocked in connect() after {SILENT_WAIT} s (killed)"
        emit(f"| {tool} | {what} |")
    emit()
