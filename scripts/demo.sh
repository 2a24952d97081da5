#!/bin/sh
# make demo: a real danted and an HTTP server on loopback, then wget and curl
# through socksify by a name that only the proxy can resolve.  Runs in
# private network and mount namespaces, so nothing leaves this machine and
# the proxy's /etc/hosts entry is invisible to the client.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" != 0 ]; then
	echo "demo: needs root (it creates private namespaces); try: sudo make demo" >&2
	exit 1
fi
if [ -z "${SOCKSIFY_DEMO_INNER:-}" ]; then
	SOCKSIFY_DEMO_INNER=1 exec unshare --net --mount sh "$0"
fi
ip link set lo up
tmp=$(mktemp -d)
cleanup() {
	[ -f "$tmp/danted.pid" ] && kill "$(cat "$tmp/danted.pid")" 2>/dev/null
	[ -f "$tmp/http.pid" ] && kill "$(cat "$tmp/http.pid")" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

echo "127.0.0.3 demo.test" >"$tmp/hosts"
cat >"$tmp/danted.conf" <<CONF
logoutput: $tmp/danted.log
internal: 127.0.0.1 port = 1080
external: 127.0.0.2
socksmethod: none
clientmethod: none
debug: 1
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 log: connect disconnect }
CONF
chmod 755 "$tmp"
# Only the proxy sees demo.test: its own mount namespace, its own /etc/hosts.
unshare --mount sh -c "mount --bind $tmp/hosts /etc/hosts && exec danted -f $tmp/danted.conf -N 1 -p $tmp/danted.pid" \
	>"$tmp/danted.out" 2>&1 &
/usr/bin/python3 "$root/tests/servers/http_server.py" --listen 127.0.0.3:8080 --name demo.test \
	--pid-file "$tmp/http.pid" >"$tmp/http.out" 2>&1 &
i=0
until grep -q 'running' "$tmp/danted.log" 2>/dev/null && [ -s "$tmp/http.pid" ]; do
	i=$((i + 1))
	[ "$i" -lt 100 ] || { echo "demo: servers did not start" >&2; cat "$tmp"/*.out >&2; exit 1; }
	sleep 0.1
done

cat >"$tmp/socksify.conf" <<CONF
proxy = socks5h://127.0.0.1:1080
direct_loopback = no   # the demo's "remote" server lives on loopback
log_level = info
CONF
run() {
	echo "\$ $*"
	"$@"
	echo
}
echo "== the client cannot resolve demo.test itself:"
run sh -c 'getent hosts demo.test || echo "(no answer: demo.test is unknown here)"'
echo "== through socksify (danted resolves the name and connects from 127.0.0.2):"
run "$root/scripts/socksify" -c "$tmp/socksify.conf" wget -qO- http://demo.test:8080/via-wget
run "$root/scripts/socksify" -c "$tmp/socksify.conf" curl -sS http://demo.test:8080/via-curl
echo "== what danted logged: the request carried the NAME (ATYP 3), danted resolved it"
echo "== and connected from its own address 127.0.0.2:"
grep -E 'Packet: .*ATYP: 3|resolved to address|tcp/connect \[' "$tmp/danted.log" |
	sed -e 's/^.*\(debug\|info\): //' -e 's/^dorequest(): .*Packet: /request: /' -e 's/^reqhostisok(): //'
