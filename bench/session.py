"""bench/session.py — section "session": what a process pays at its first
name look-up for the session pool, creating it (the session's first name)
or joining the one another process of the session made (every later
process), and the steady look-up cost after it."""
import os
import subprocess
import time

from common import B, pick, emit, med, run_env

LOOKUP = os.path.join(B, "lookup")
SESSION_ROUNDS = pick(300, 60)


def _run(env):
    out = subprocess.run([LOOKUP, "web.bench", "200"], env=env, capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise SystemExit(f"bench: lookup failed: {out.stderr.strip()}")
    kv = dict(w.split("=") for w in out.stdout.split())
    return float(kv["first_us"]), float(kv["steady_us"])


def sec_session(envs):
    emit("## Session pool: first look-up of a process, creating vs joining")
    emit()
    base = envs["socksify"]
    # A session whose pool exists: its leader is this script (alive), so no
    # process of the run removes it; removed at the end.
    sid = f"{os.getpid()}-bench{int(time.time())}"
    obj = f"/dev/shm/socksify-{os.geteuid()}-{sid}"
    join_env = run_env({**base, "SOCKSIFY_SESSION": sid})
    _run(join_env)  # creates it
    variants = {
        "creates the session pool (new session)": lambda: run_env(base),
        "joins the session's existing pool": lambda: join_env,
    }
    first = {k: [] for k in variants}
    steady = {k: [] for k in variants}
    ratios = []
    try:
        for r in range(SESSION_ROUNDS):
            order = list(variants) if r % 2 == 0 else list(reversed(variants))
            got = {}
            for k in order:
                f, s = _run(variants[k]())
                got[k] = f
                first[k].append(f)
                steady[k].append(s)
            a, b = list(variants)
            ratios.append(got[b] / got[a])
    finally:
        try:
            os.unlink(obj)
        except OSError:
            pass
    emit(f"`bench/lookup.c`: one process times its first `getaddrinfo()` (a name under remote DNS: the pool "
         f"is mapped there) and then the median of 200 look-ups of new names. {SESSION_ROUNDS} rounds, the two "
         "variants interleaved (order alternates); ratio = median of per-round ratios.")
    emit()
    emit("| first look-up of a process that | first look-up us (median) | steady look-up us (median) |")
    emit("|---|---:|---:|")
    for k in variants:
        emit(f"| {k} | {med(first[k]):.1f} | {med(steady[k]):.2f} |")
    emit()
    emit(f"Joining costs {med(ratios):.2f}x creating (median of per-round ratios).")
    emit()
