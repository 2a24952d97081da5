#!/usr/bin/python3
"""bench/gssapi.py — what GSSAPI protection (RFC 1961) costs in throughput (issue 15).

    make bench-gssapi                   # or: python3 bench/gssapi.py
    make bench-gssapi BENCH_QUICK=1     # quick run

Runs itself in a private network and mount namespace (only lo), with a
private Kerberos realm (a KDC on 127.0.0.1:KDC_PORT, alice's ticket from
kinit, rcmd/localhost in a keytab: the commands of tests/bats/gssapi.bash),
the RFC 1961 test server (tests/servers/socks5_gssapi.py), the plain SOCKS5
test server (tests/servers/socks5_testserver.py: the same kind of python
relay, without GSSAPI), danted, and the bulk destination
(tests/servers/bulk.py serve) on 127.0.0.3.  Variants, side by side (each
round runs every variant once, up then down, the order rotating):

  - native: the client straight to the destination, no proxy;
  - danted: socksify through danted (plain SOCKS5, a C relay);
  - py plain: socksify through socks5_testserver.py (no GSSAPI);
  - py gss integrity / py gss confidentiality: socksify with gssapi = yes
    through socks5_gssapi.py, every octet in mtyp 3 tokens both ways.

Each transfer is 64 MiB one way ("up": client to destination, "down": the
other way) by this file's own client (`gssapi.py client`, preloaded by
socksify): the pattern of bulk.py is read from a file before the clock
starts; the clock runs from before connect() (the SOCKS and GSSAPI
handshakes are in it) to the destination's EOF.  A transfer counts only if
every octet that came down equals the pattern and the destination's sha256
of what went up equals the pattern's; the destination's record must name
the proxy's outbound address and the GSS server's record the level asked
(its tokens really encrypted, or really not).  Else the run stops.

CPU: utime+stime of the client process (with socksify's relay thread), of
the proxy (summed over its process tree: danted forks) and of the
destination, from /proc/PID/stat before and after each transfer, as a
share of one CPU over the transfer's wall time.  A proxy near 100% is the
bottleneck, and then the ratios measure the python server, not socksify.
Results also go to build/bench/gssapi.md.
"""
import hashlib
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import (B, LIB, ROOT, emit, enter_namespace, log, med, out_lines, pick, stop,  # noqa: E402
                    wait_port, write)

SERVERS = os.path.join(ROOT, "tests", "servers")
PY = "/usr/bin/python3"          # python3-gssapi is Debian's
GWORK = os.path.join(B, "gss-run")
OUT = os.environ.get("BENCH_GSSAPI_OUT", os.path.join(B, "gssapi.md"))
NBYTES = 64 << 20
ROUNDS = pick(7, 3)
REALM, USER, PASS, MASTER = "SOCKSIFY.TEST", "alice", "alice-s3cret", "socksify-master-key"
KDC_PORT, DANTED_PORT = 8801, 1080
DEST = "127.0.0.3"
# outbound address of each proxy: the destination's record says who carried it
OUTBOUND = {"danted": "127.0.0.5", "py plain": "127.0.0.4",
            "py gss integrity": "127.0.0.2", "py gss confidentiality": "127.0.0.2"}
VARIANTS = ("native", "danted", "py plain", "py gss integrity", "py gss confidentiality")


# ------------------------------------------------------------- client
def client_main(argv):
    """gssapi.py client HOST PORT UP DOWN PATTERN_FILE: one transfer; prints
    one JSON line (secs, down_ok, up_ok, cpu)."""
    host, port, up, down, pfile = argv[0], int(argv[1]), int(argv[2]), int(argv[3]), argv[4]
    with open(pfile, "rb") as fh:
        pat = fh.read(max(up, down))
    up_hex = hashlib.sha256(pat[:up]).hexdigest()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    s = socket.create_connection((host, port), timeout=60)
    s.sendall(b"BULK %d %d\n" % (up, down))
    err = []

    def writer():
        try:
            mv = memoryview(pat)[:up]
            for i in range(0, up, 1 << 18):
                s.sendall(mv[i:i + (1 << 18)])
        except OSError as exc:
            err.append(str(exc))
    w = threading.Thread(target=writer, daemon=True)
    w.start()
    parts = []   # recv() of 1 MiB: recv_into a huge view measured 3x slower
    while True:
        data = s.recv(1 << 20)
        if not data:
            break
        parts.append(data)
    t1 = time.perf_counter()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    w.join(5)
    s.close()
    buf = b"".join(parts)
    got = len(buf)
    trailer = buf[down:].decode("ascii", "replace")
    fields = dict(f.split("=", 1) for f in trailer.split() if "=" in f)
    print(json.dumps({
        "secs": t1 - t0, "down_bytes": min(got, down),
        "down_ok": got >= down and buf[:down] == pat[:down],
        "up_ok": fields.get("up_sha256") == up_hex and fields.get("up_bytes") == str(up),
        "cpu": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
        "error": err}))
    return 0


# ---------------------------------------------------------- namespace
def sh(argv, stdin=None):
    p = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if p.returncode or (argv[0] == "kadmin.local" and "error" in (p.stdout + p.stderr).lower()):
        raise SystemExit(f"bench: {' '.join(argv)} failed: {p.stdout}{p.stderr}")
    return p.stdout


def wait_file(path, proc, t=15):
    end = time.time() + t
    while time.time() < end:
        if os.path.exists(path) and open(path).read().strip():
            return int(open(path).read())
        if proc.poll() is not None:
            raise SystemExit(f"bench: {proc.args[:3]} exited with {proc.returncode}")
        time.sleep(0.05)
    raise SystemExit(f"bench: {path} never written")


# ----------------------------------------------------------- Kerberos
def start_kdc(procs):
    """The realm of tests/bats/gssapi.bash, in GWORK/krb; alice's TGT."""
    d = os.path.join(GWORK, "krb")
    os.makedirs(d)
    os.environ.update(KRB5_CONFIG=f"{d}/krb5.conf", KRB5_KDC_PROFILE=f"{d}/kdc.conf",
                      KRB5CCNAME=f"FILE:{d}/ccache", KRB5_KTNAME=f"FILE:{d}/keytab",
                      KRB5RCACHEDIR=d)
    write(f"{d}/krb5.conf", (
        f"[libdefaults]\n default_realm = {REALM}\n dns_lookup_kdc = false\n"
        " dns_lookup_realm = false\n dns_canonicalize_hostname = false\n"
        " dns_uri_lookup = false\n rdns = false\n qualify_shortname = \"\"\n"
        f" udp_preference_limit = 1\n forwardable = false\n default_ccache_name = FILE:{d}/ccache\n"
        f"[realms]\n {REALM} = {{\n  kdc = 127.0.0.1:{KDC_PORT}\n  admin_server = 127.0.0.1:1\n }}\n"
        f"[domain_realm]\n localhost = {REALM}\n 127.0.0.1 = {REALM}\n"))
    write(f"{d}/kdc.conf", (
        f"[kdcdefaults]\n kdc_listen = 127.0.0.1:{KDC_PORT}\n kdc_tcp_listen = 127.0.0.1:{KDC_PORT}\n"
        f"[realms]\n {REALM} = {{\n  database_name = {d}/principal\n  key_stash_file = {d}/stash\n"
        f"  acl_file = {d}/kadm5.acl\n  max_life = 10h\n  max_renewable_life = 0\n"
        "  supported_enctypes = aes256-cts-hmac-sha1-96:normal\n }\n"
        f"[logging]\n kdc = FILE:{d}/kdc.log\n"))
    sh(["kdb5_util", "create", "-s", "-r", REALM, "-P", MASTER])
    for q in (f"addprinc -pw {PASS} {USER}", "addprinc -randkey rcmd/localhost",
              f"ktadd -k {d}/keytab rcmd/localhost"):
        sh(["kadmin.local", "-r", REALM, "-q", q])
    kdc = subprocess.Popen(["krb5kdc", "-n", "-P", f"{d}/kdc.pid"])
    procs.append(kdc)
    wait_port("127.0.0.1", KDC_PORT, kdc, t=15)
    sh(["kinit", "-l", "10h", USER], stdin=PASS + "\n")


# ------------------------------------------------------------- servers
def start_py(procs, name, script, extra):
    pf = f"{GWORK}/{name}.port"
    p = subprocess.Popen([PY, os.path.join(SERVERS, script), "--listen", "127.0.0.1:0",
                          "--port-file", pf] + extra, stdout=subprocess.DEVNULL)
    procs.append(p)
    return p, wait_file(pf, p)


def start_danted(procs):
    conf = write(f"{GWORK}/danted.conf", (
        f"logoutput: {GWORK}/danted.log\n"
        f"internal: 127.0.0.1 port = {DANTED_PORT}\nexternal: {OUTBOUND['danted']}\n"
        "socksmethod: none\nclientmethod: none\n"
        "user.privileged: root\nuser.unprivileged: nobody\n"
        "client pass {\n from: 127.0.0.0/8 to: 0.0.0.0/0\n}\n"
        f"socks pass {{\n from: 127.0.0.0/8 to: {DEST}/32\n command: connect\n}}\n"
        "socks block {\n from: 0.0.0.0/0 to: 0.0.0.0/0\n log: error\n}\n"))
    p = subprocess.Popen(["danted", "-f", conf, "-N", "1", "-p", f"{GWORK}/danted.pid"])
    procs.append(p)
    wait_port("127.0.0.1", DANTED_PORT, p, t=15)
    return p


def start_servers(procs):
    """{variant: (server Popen or None, port, socksify conf or None)}, the
    destination's Popen and port, the GSS server's record path."""
    dest = subprocess.Popen([PY, os.path.join(SERVERS, "bulk.py"), "serve", "--listen", f"{DEST}:0",
                             "--port-file", f"{GWORK}/bulk.port", "--log", f"{GWORK}/bulk.jsonl"])
    procs.append(dest)
    dport = wait_file(f"{GWORK}/bulk.port", dest)
    plain, pport = start_py(procs, "plain", "socks5_testserver.py", ["--bind-out", OUTBOUND["py plain"]])
    gss, gport = start_py(procs, "gss", "socks5_gssapi.py",
                          ["--bind-out", OUTBOUND["py gss integrity"], "--record", f"{GWORK}/gss.jsonl"])
    dd = start_danted(procs)
    v = {"native": (None, None, None)}
    base = "direct_loopback = no\nlog_level = error\n"
    v["danted"] = (dd, DANTED_PORT, write(f"{GWORK}/danted-sfy.conf",
                                          f"proxy = socks5://127.0.0.1:{DANTED_PORT}\n" + base))
    v["py plain"] = (plain, pport, write(f"{GWORK}/plain.conf", f"proxy = socks5://127.0.0.1:{pport}\n" + base))
    for lvl in ("integrity", "confidentiality"):
        v[f"py gss {lvl}"] = (gss, gport, write(
            f"{GWORK}/gss-{lvl}.conf",
            f"proxy = socks5://127.0.0.1:{gport}\n" + base +
            f"gssapi = yes\ngssapi_service = rcmd@localhost\ngssapi_protection = {lvl}\n"))
    return v, dest, dport


# ------------------------------------------------------------ measuring
def tree_cpu(pid):
    """utime+stime (s) of pid and its descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                with open(f"/proc/{e}/stat") as fh:
                    f = fh.read().rsplit(")", 1)[1].split()
                stats[int(e)] = (int(f[1]), int(f[11]) + int(f[12]))
            except (OSError, IndexError):
                pass
    want, total, grew = {pid}, 0, True
    while grew:
        grew = False
        for p, (pp, _) in stats.items():
            if pp in want and p not in want:
                want.add(p)
                grew = True
    for p in want:
        total += stats.get(p, (0, 0))[1]
    return total / tick


def machine_cpu():
    """(busy, total) jiffies of all CPUs, from /proc/stat (global)."""
    with open("/proc/stat") as fh:
        f = [int(x) for x in fh.readline().split()[1:]]
    return sum(f) - f[3] - f[4], sum(f)


def records(path):
    try:
        with open(path) as fh:
            return [json.loads(x) for x in fh if x.strip()]
    except OSError:
        return []


def wait_records(path, n, t=10):
    end = time.time() + t
    while time.time() < end:
        r = records(path)
        if len(r) >= n:
            return r
        time.sleep(0.02)
    raise SystemExit(f"bench: {path}: expected {n} records, have {len(records(path))}")


def transfer(var, spec, dest, dport, direction, pfile):
    server, port, conf = spec
    up, down = (NBYTES, 0) if direction == "up" else (0, NBYTES)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOCKSIFY", "LD_PRELOAD"))}
    if conf:
        env.update(LD_PRELOAD=LIB, SOCKSIFY_CONF=conf)
    nb = len(records(f"{GWORK}/bulk.jsonl"))
    ng = len(records(f"{GWORK}/gss.jsonl"))
    s0 = tree_cpu(server.pid) if server else 0.0
    d0 = tree_cpu(dest.pid)
    m0 = machine_cpu()
    p = subprocess.run([PY, os.path.abspath(__file__), "client", DEST, str(dport), str(up), str(down), pfile],
                       env=env, capture_output=True, text=True, timeout=300)
    s1 = tree_cpu(server.pid) if server else 0.0
    d1 = tree_cpu(dest.pid)
    m1 = machine_cpu()
    what = f"{var} {direction}"
    try:
        r = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SystemExit(f"bench: {what}: client failed ({p.returncode}): {p.stdout}{p.stderr[-2000:]}")
    if p.returncode or not r["down_ok"] or not r["up_ok"] or r["error"]:
        raise SystemExit(f"bench: {what}: data not verified: {r} {p.stderr[-2000:]}")
    rec = wait_records(f"{GWORK}/bulk.jsonl", nb + 1)[-1]
    peer = OUTBOUND.get(var, DEST)  # native: the kernel picks the destination address itself
    if rec["peer"] != peer or rec["up_bytes"] != up or rec.get("error"):
        raise SystemExit(f"bench: {what}: the destination says {rec} (expected peer {peer})")
    if var.startswith("py gss"):
        g = wait_records(f"{GWORK}/gss.jsonl", ng + 1)[-1]
        conf_want = [var.endswith("confidentiality")]
        if g.get("conf") != conf_want or g.get("conf_violations") or g.get("violations"):
            raise SystemExit(f"bench: {what}: the GSS server says {g}")
    secs = r["secs"]
    return {"mbs": NBYTES / secs / 1e6, "secs": secs, "client": r["cpu"] / secs,
            "server": (s1 - s0) / secs, "dest": (d1 - d0) / secs,
            "machine": (m1[0] - m0[0]) / max(1, m1[1] - m0[1]) * os.cpu_count()}


def crypto_ceiling():
    """MB/s of gss_wrap and gss_unwrap alone, one thread, no sockets: an
    initiator and an acceptor context in this process (alice's ticket, the
    keytab), 64 MiB in chunks whose token fits 65535 octets."""
    saved = sys.path[:]   # this file is gssapi.py too: import python3-gssapi
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
    try:
        import gssapi
    finally:
        sys.path[:] = saved
    name = gssapi.Name("rcmd@localhost", gssapi.NameType.hostbased_service)
    F = gssapi.RequirementFlag
    ini = gssapi.SecurityContext(name=name, usage="initiate",
                                 flags=[F.mutual_authentication, F.integrity, F.confidentiality])
    acc = gssapi.SecurityContext(usage="accept")
    tok = ini.step()
    while not (ini.complete and acc.complete):
        tok = acc.step(tok)
        if not ini.complete:
            tok = ini.step(tok)
    pat = open(f"{GWORK}/pattern.bin", "rb").read()
    out = {}
    for conf in (False, True):
        n = ini.get_wrap_size_limit(65535, conf)
        t0 = time.perf_counter()
        toks = [ini.wrap(pat[i:i + n], conf).message for i in range(0, NBYTES, n)]
        t1 = time.perf_counter()
        back = b"".join(acc.unwrap(t).message for t in toks)
        t2 = time.perf_counter()
        if back != pat:
            raise SystemExit("bench: wrap/unwrap in process does not give the data back")
        out["confidentiality" if conf else "integrity"] = (n, NBYTES / (t1 - t0) / 1e6, NBYTES / (t2 - t1) / 1e6)
    return out


# ----------------------------------------------------------------- main
def main():
    enter_namespace(__file__, python=PY, lab=False)
    t0 = time.time()
    subprocess.run(["rm", "-rf", GWORK], check=True)
    os.makedirs(GWORK)
    for a in set(OUTBOUND.values()) | {DEST}:
        subprocess.run(["ip", "addr", "add", f"{a}/32", "dev", "lo"], check=True,
                       stderr=subprocess.DEVNULL)
    sys.path.insert(0, SERVERS)
    import bulk
    pfile = f"{GWORK}/pattern.bin"
    with open(pfile, "wb") as fh:
        fh.write(bulk.pattern(NBYTES))
    procs = []
    try:
        start_kdc(procs)
        ceiling = crypto_ceiling()
        vs, dest, dport = start_servers(procs)
        for var in VARIANTS:   # warm-up: the destination's pattern cache, tickets
            transfer(var, vs[var], dest, dport, "down", pfile)
        res = {(v, d): [] for v in VARIANTS for d in ("up", "down")}
        for rnd in range(ROUNDS):
            order = VARIANTS[rnd % len(VARIANTS):] + VARIANTS[:rnd % len(VARIANTS)]
            for var in order:
                for d in ("up", "down"):
                    res[(var, d)].append(transfer(var, vs[var], dest, dport, d, pfile))
            log(f"round {rnd + 1}/{ROUNDS} done")
        report(res, ceiling, time.time() - t0)
    finally:
        stop(procs, [f"{GWORK}/danted.pid"])
    write(OUT, "\n".join(out_lines) + "\n")
    log(f"results written to {OUT}")


def report(res, ceiling, runtime):
    emit(f"## GSSAPI throughput ({'quick' if ROUNDS < 7 else 'full'} run)")
    emit()
    emit(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} CPUs; "
         f"{ROUNDS} rounds (order rotates), {NBYTES >> 20} MiB per transfer, every octet verified. "
         "CPU: share of one CPU over the transfer (client includes socksify's relay thread; "
         "proxy: its whole process tree; dest: bulk.py; machine: every process on every CPU, "
         f"of {os.cpu_count()} CPUs, others' work included).")
    emit()
    emit("| variant | dir | MB/s (median) | x py plain | x native | client CPU | proxy CPU | dest CPU | machine |")
    emit("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for d in ("up", "down"):
        for v in VARIANTS:
            xs = res[(v, d)]

            def ratio(base):
                return med([a["mbs"] / b["mbs"] for a, b in zip(xs, res[(base, d)])])
            proxy = "-" if v == "native" else f"{med([x['server'] for x in xs]) * 100:.0f}%"
            emit(f"| {v} | {d} | {med([x['mbs'] for x in xs]):.1f} | {ratio('py plain'):.2f} | "
                 f"{ratio('native'):.2f} | {med([x['client'] for x in xs]) * 100:.0f}% | {proxy} | "
                 f"{med([x['dest'] for x in xs]) * 100:.0f}% | {med([x['machine'] for x in xs]) * 100:.0f}% |")
    emit()
    for d in ("up", "down"):
        c = med([a["mbs"] / b["mbs"] for a, b in zip(res[("py gss confidentiality", d)], res[("py plain", d)])])
        i = med([a["mbs"] / b["mbs"] for a, b in zip(res[("py gss integrity", d)], res[("py plain", d)])])
        emit(f"- {d}: confidentiality/plain {c:.2f}, integrity/plain {i:.2f}")
    emit()
    emit("In-process GSS cost, one thread, no sockets (python-gssapi over MIT krb5, aes256-cts-hmac-sha1-96):")
    emit()
    for lvl, (n, w, u) in ceiling.items():
        emit(f"- {lvl}: chunks of {n} octets, wrap {w:.0f} MB/s, unwrap {u:.0f} MB/s")
    emit()
    emit(f"Run time: {runtime:.0f} s.")


if __name__ == "__main__":
    if sys.argv[1:2] == ["client"]:
        sys.exit(client_main(sys.argv[2:]))
    main()
