#!/bin/sh
# bench/run.sh — run bench/bench.py inside a private network and mount
# namespace: only lo exists, so no benchmark packet can leave the machine.
# The origin server listens on 10.77.0.1, local through a "local" route on lo
# rather than an interface address: Dante's client adds direct routes for the
# addresses of local interfaces and would not proxy it.  Needs root.
set -eu
if [ -z "${SFY_BENCH_IN_NS:-}" ]; then
	export SFY_BENCH_IN_NS=1
	exec unshare --net --mount --propagation private sh "$0" "$@"
fi
ip link set lo up
ip route add local 10.77.0.0/24 dev lo
# Tens of thousands of short connections: reuse TIME_WAIT ports (netns-local).
sysctl -qw net.ipv4.tcp_tw_reuse=1
sysctl -qw net.ipv4.ip_local_port_range="1024 65000"
exec python3 "$(dirname "$0")/bench.py" "$@"
