"""bench/counts.py — the counted sections, stable on a noisy machine:
system calls per connection and at start-up (strace), instructions per
connection (callgrind), and the table of the issue's targets."""
import os
import re
import subprocess

from common import EMPTY, ROOT, WORK, connbench_argv, emit, med, run_env

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
    for key, phases in (("socksify (name)", ("gai", "connect")), ("socksify[timeouts=0] (IP)", ("", "connect")),
                        ("socksify[timeouts=0,pipeline] (IP)", ("", "connect"))):
        if key in data:
            for i in (1,):
                emit(f"socksify's syscalls, {key}, connection {i + 1}, "
                     f"{'getaddrinfo phase then ' if phases[0] else ''}connect phase (the strace of "
                     f"every variant is kept in {os.path.relpath(WORK, ROOT)}/strace.*):")
                emit()
                emit("```")
                for ph, lines in zip(phases, data[key][i][:2]):
                    for ln in lines if ph else ():
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
    """The targets table; returns the targets not met (marked NO), which
    make the run exit non-zero.  A target whose measurement is missing (a
    variant failed) is not met either."""
    emit("## Targets of issue 6 (socksify)")
    emit()
    emit("| target | measured | met |")
    emit("|---|---|---|")
    unmet = []

    def row(what, got, ok):
        emit(f"| {what} | {got} | {'yes' if ok else 'NO'} |")
        if not ok:
            unmet.append(what)

    b = sys_data.get("direct (IP)")

    def conn_extra(key):
        d = sys_data.get(key)
        return len(d[1][1]) - len(b[1][1]) if d and b else None

    peers = {k: conn_extra(k) for k in ("proxychains4 (IP)", "tsocks (IP)", "torsocks (IP)", "dante (IP)")}
    peers = {k: v for k, v in peers.items() if v is not None}
    native, t0 = conn_extra("native (IP)"), conn_extra("socksify[timeouts=0] (IP)")
    what = ("CONNECT (IP target), same guarantees as the peers and the native client (no time limits: "
            "timeouts = 0): at most the native client's, and the fewest of all socksifiers")
    if t0 is not None and native is not None and peers:
        fewest = min(peers.values())
        row(what, f"{t0:+d} (native {native:+d}, fewest peer {fewest:+d})", t0 <= native and t0 < fewest)
    else:
        row(what, "not measured", False)
    for key, what in (("socksify[timeouts=0,pipeline] (IP)", "pipeline = yes on top"),
                      ("socksify (IP)", "default: connect_timeout and handshake_timeout kept (2 setsockopt "
                                        "bound connect(), 2 poll bound the replies)")):
        if conn_extra(key) is not None:
            emit(f"| CONNECT (IP target), {what}, for information | {conn_extra(key):+d} | |")
    d = sys_data.get("socksify (IP)")
    what = "reply read with one read (ATYP 1 reply fits the 10-byte minimum)"
    if d:
        reads = [ln for ln in d[1][1] if re.match(r"(recvfrom|read|recvmsg)\(", ln)]
        row(what, f"{len(reads) - 1} read(s) for the reply", len(reads) - 1 <= 1)
    else:
        row(what, "not measured", False)
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
    else:
        row("start-up: the smallest of all socksifiers", "not measured (no peer)", False)
    nat = "native curl --socks5-hostname (name)"
    what = "bulk 64 MiB: throughput ratio to curl --socks5-hostname ~1.00 (met: at least 0.95; above 1 is noise)"
    if "socksify (name)" in bulk and nat in bulk:
        r = med([a / c for a, c in zip(bulk["socksify (name)"], bulk[nat])])
        row(what, f"{r:.2f}", r >= 0.95)
    else:
        row(what, "not measured", False)
    for t in ("name", "IP"):
        k, nk = f"socksify ({t})", f"native ({t})"
        what = f"latency per connection within 5% of the native client ({t} target)"
        if k in lat and nk in lat:
            r = med([a / c for a, c in zip(lat[k], lat[nk])])
            row(what, f"{r:.2f}x", r <= 1.05)
        else:
            row(what, "not measured", False)
    emit()
    return unmet
