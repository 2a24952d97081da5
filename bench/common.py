"""bench/common.py — what every part of the benchmark shares: paths, sizes,
the results being written, and how a variant's process is started."""
import os
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


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


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


# ------------------------------------------------------- process helpers
def enter_namespace(script, python=sys.executable, lab=True):
    """Re-run script in a new network and mount namespace, with only lo.
    lab: the origin's 10.77.0.0/24 is a local route (as in bench/run.sh),
    and ports are recycled quickly."""
    if os.environ.get("SFY_BENCH_IN_NS"):
        cmds = [["ip", "link", "set", "lo", "up"]]
        if lab:
            cmds += [["ip", "route", "add", "local", "10.77.0.0/24", "dev", "lo"],
                     ["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"],
                     ["sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65000"]]
        for cmd in cmds:
            subprocess.run(cmd, check=True)
        return
    env = dict(os.environ, SFY_BENCH_IN_NS="1")
    os.execvpe("unshare", ["unshare", "--net", "--mount", "--propagation", "private",
                           python, os.path.abspath(script)] + sys.argv[1:], env)


def wait_port(host, port, proc=None, t=10):
    """Until something listens on host:port (proc: a server that must not
    have exited meanwhile)."""
    end = time.time() + t
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"bench: {proc.args[:3]} exited with {proc.returncode}")
        try:
            socket.create_connection((host, port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench: nothing listens on {host}:{port}")


def stop(procs, pidfiles=()):
    """End the servers, then the daemons whose pid files are given
    (danted's children outlive the unshare process)."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
    for path in pidfiles:
        try:
            with open(path) as fh:
                os.kill(int(fh.read().strip()), 15)
        except (OSError, ValueError):
            pass
