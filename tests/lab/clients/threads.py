#!/usr/bin/python3
"""threads.py HOST PORT THREADS PER_THREAD PEER: THREADS threads, each
making PER_THREAD HTTP/1.0 requests over new connections to HOST:PORT (a
name, resolved for every connection, or an address).  Each response must echo its path and show
PEER as the server's peer (the proxy's external address).  Prints
"ok=N failed=M" and the first errors; exits 0 only if all succeeded."""

import socket
import sys
import threading

host, port = sys.argv[1], int(sys.argv[2])
nthreads, per, peer = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
lock = threading.Lock()
ok = 0
errors = []


def fetch(path):
    with socket.create_connection((host, port), timeout=20) as s:
        s.sendall(("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (path, host)).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode("ascii", "replace")


def worker(t):
    global ok
    for i in range(per):
        path = "/t%d-%d" % (t, i)
        try:
            body = fetch(path)
            good = ("path=%s peer=%s\n" % (path, peer)) in body
            err = None if good else "%s: unexpected response %r" % (path, body[-120:])
        except OSError as e:
            err = "%s: %s" % (path, e)
        with lock:
            if err:
                errors.append(err)
            else:
                ok += 1


threads = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
for th in threads:
    th.start()
for th in threads:
    th.join()
print("ok=%d failed=%d" % (ok, len(errors)))
for e in errors[:5]:
    print("error:", e)
sys.exit(0 if not errors and ok == nthreads * per else 1)
