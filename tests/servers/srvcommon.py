"""Helpers shared by the test servers (stdlib only)."""

import argparse
import os
import signal
import sys


def parse_hostport(text):
    """'HOST:PORT' or '[V6]:PORT' -> (host, port); port 0 means any."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
    else:
        host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT or [V6]:PORT")
    return host, int(port)


def write_atomically(path, text):
    """Tests poll for these files; never let them see a partial write."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def announce(port, port_file=None, pid_file=None):
    """Write pid and port files once the socket is listening."""
    if pid_file:
        write_atomically(pid_file, "%d\n" % os.getpid())
    if port_file:
        write_atomically(port_file, "%d\n" % port)


def exit_on_sigterm():
    # sys.exit unwinds serve_forever() so sockets are closed cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


def serve(server, opts):
    """Announce a listening socketserver and serve until SIGTERM."""
    exit_on_sigterm()
    announce(server.server_address[1], opts.port_file, opts.pid_file)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
