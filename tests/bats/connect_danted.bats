#!/usr/bin/env bats
# CONNECT through a real SOCKS5 server (dante).  danted connects out from
# 127.0.0.2, so "peer=127.0.0.2" in an HTTP body proves the connection went
# through the proxy; only the proxy's /etc/hosts knows web.test, so a
# successful fetch by name proves the name was resolved remotely.

load helpers

setup_file() {
	common_setup_file
	start_sentinel
	start_danted
	start_http web 127.0.0.3
	export WEB_PORT=$HTTP_PORT WEB_LOG=$HTTP_LOG
	start_http web6 ::1
	export WEB6_PORT=$HTTP_PORT WEB6_LOG=$HTTP_LOG
}

setup() {
	common_setup
	proxy_conf "$CONF" "$DANTED_PORT"
}

# The proxy's log names the address it connected to (ADDR.PORT).
expect_danted_connected_to() {
	grep -qF -- "$1.$2" "$DANTED_LOG" ||
		fail "danted did not connect to $1.$2:" "$(tail -n 20 "$DANTED_LOG")"
}

@test "curl by name: resolved by the proxy, no DNS leak" {
	skip_curl_under_asan
	run sfy curl -sS --max-time 20 "http://web.test:$WEB_PORT/curl"
	expect_status 0
	[[ $output == "hello from web path=/curl peer=127.0.0.2" ]] || fail "$output"
	assert_no_dns_leak
	expect_danted_connected_to 127.0.0.3 "$WEB_PORT"
}

@test "wget by name: resolved by the proxy, no DNS leak" {
	run sfy wget --no-config -q -O - --timeout=20 --tries=1 "http://web.test:$WEB_PORT/wget"
	expect_status 0
	[[ $output == "hello from web path=/wget peer=127.0.0.2" ]] || fail "$output"
	assert_no_dns_leak
}

@test "curl by a name only the proxy maps to ::1" {
	skip_curl_under_asan
	run sfy curl -sS --max-time 20 "http://web6.test:$WEB6_PORT/name6"
	expect_status 0
	[[ $output == "hello from web6 path=/name6 peer=::1" ]] || fail "$output"
	assert_no_dns_leak
	expect_danted_connected_to ::1 "$WEB6_PORT"
}

@test "curl by IPv4 literal goes through the proxy" {
	skip_curl_under_asan
	run sfy curl -sS --max-time 20 "http://127.0.0.3:$WEB_PORT/v4"
	expect_status 0
	[[ $output == "hello from web path=/v4 peer=127.0.0.2" ]] || fail "$output"
}

@test "wget by IPv4 literal goes through the proxy" {
	run sfy wget --no-config -q -O - --timeout=20 --tries=1 "http://127.0.0.3:$WEB_PORT/wv4"
	expect_status 0
	[[ $output == "hello from web path=/wv4 peer=127.0.0.2" ]] || fail "$output"
}

@test "curl by IPv6 literal goes through the proxy" {
	skip_curl_under_asan
	local before
	before=$(grep -c "::1.$WEB6_PORT" "$DANTED_LOG" || true)
	run sfy curl -sS --max-time 20 "http://[::1]:$WEB6_PORT/v6"
	expect_status 0
	[[ $output == "hello from web6 path=/v6 peer=::1" ]] || fail "$output"
	# The HTTP peer is ::1 either way: the proxy's log is the evidence.
	[[ $(grep -c "::1.$WEB6_PORT" "$DANTED_LOG") -gt $before ]] ||
		fail "danted saw no connection to ::1.$WEB6_PORT"
}

@test "wget by IPv6 literal goes through the proxy" {
	local before
	before=$(grep -c "::1.$WEB6_PORT" "$DANTED_LOG" || true)
	run sfy wget --no-config -q -O - --timeout=20 --tries=1 "http://[::1]:$WEB6_PORT/wv6"
	expect_status 0
	[[ $output == "hello from web6 path=/wv6 peer=::1" ]] || fail "$output"
	[[ $(grep -c "::1.$WEB6_PORT" "$DANTED_LOG") -gt $before ]] ||
		fail "danted saw no connection to ::1.$WEB6_PORT"
}

@test "ncat by name sends a request through the proxy" {
	run sfy sh -c 'printf "GET /ncat HTTP/1.0\r\n\r\n" | ncat -w 10 web.test "$1"' \
		sh "$WEB_PORT"
	expect_status 0
	expect_contains "hello from web path=/ncat peer=127.0.0.2"
	assert_no_dns_leak
}

@test "tcp_get: getpeername returns the address the app connected to" {
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$WEB_PORT" /peer
	expect_status 0
	expect_contains "peer=127.0.0.3:$WEB_PORT"
	expect_contains "hello from web path=/peer peer=127.0.0.2"
}

@test "tcp_get by name: getpeername returns the fake address" {
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /fakepeer --family 4
	expect_status 0
	expect_match "peer=(24[0-9]|25[0-5])\.[0-9]+\.[0-9]+\.[0-9]+:$WEB_PORT"
	expect_contains "hello from web path=/fakepeer peer=127.0.0.2"
	assert_no_dns_leak
}

@test "tcp_get --nonblock by name" {
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /nb --nonblock
	expect_status 0
	expect_contains "hello from web path=/nb peer=127.0.0.2"
	assert_no_dns_leak
}

@test "tcp_get --v6sock by name (v4-mapped fake address)" {
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /v6sock --family 4 --v6sock
	expect_status 0
	expect_match "peer=\[::ffff:(24[0-9]|25[0-5])\.[0-9.]+\]:$WEB_PORT"
	expect_contains "hello from web path=/v6sock peer=127.0.0.2"
}

@test "tcp_get --family 6 by name uses a fake IPv6 address" {
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /fam6 --family 6
	expect_status 0
	expect_match "peer=\[100::[0-9a-f:]*\]:$WEB_PORT"
	expect_contains "hello from web path=/fam6 peer=127.0.0.2"
}

@test "300 kB response arrives intact through the proxy" {
	local want
	want=$("$PY" -c 'import sys; sys.path.insert(0, sys.argv[1])
import http_server, hashlib
print(hashlib.sha256(http_server.pattern_bytes(300000)).hexdigest())' "$SERVERS")
	run sfy sh -c '"$1" web.test "$2" /bytes/300000 | sha256sum' sh \
		"$TESTBIN/tcp_get" "$WEB_PORT"
	expect_status 0
	expect_contains "$want"
}

@test "threads: 16 threads x 32 connections by name" {
	run sfy "$TESTBIN/threads" web.test "$WEB_PORT" 16 32
	expect_status 0
	[[ ${lines[-1]} == "ok 512" ]] || fail "$output"
	assert_no_dns_leak
}

@test "python urllib with 8 threads by name" {
	run sfy "$PY" - "$WEB_PORT" <<'EOF'
import sys, threading, urllib.request
port = sys.argv[1]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
bad = []
def worker(t):
    for i in range(8):
        url = "http://web.test:%s/py%d-%d" % (port, t, i)
        body = opener.open(url, timeout=20).read().decode()
        want = "hello from web path=/py%d-%d peer=127.0.0.2\n" % (t, i)
        if body != want:
            bad.append(body)
threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print("bad=%d" % len(bad), *bad[:3])
EOF
	expect_status 0
	[[ $output == "bad=0" ]] || fail "$output"
	assert_no_dns_leak
}

@test "python asyncio open_connection by name" {
	run sfy "$PY" - "$WEB_PORT" <<'EOF'
import asyncio, sys
async def fetch(i):
    r, w = await asyncio.open_connection("web.test", int(sys.argv[1]))
    w.write(b"GET /aio%d HTTP/1.0\r\n\r\n" % i)
    data = await asyncio.wait_for(r.read(), 20)
    w.close()
    return data.split(b"\r\n\r\n", 1)[1].decode()
async def main():
    for body in await asyncio.gather(*(fetch(i) for i in range(4))):
        print(body, end="")
asyncio.run(main())
EOF
	expect_status 0
	local i
	for i in 0 1 2 3; do
		expect_contains "hello from web path=/aio$i peer=127.0.0.2" || return 1
	done
	assert_no_dns_leak
}

@test "danted username auth: right password works, password not logged" {
	start_danted --username
	proxy_conf "$CONF" "$DANTED_PORT" "username = $DANTED_USER" \
		"password = $DANTED_PASS"
	SOCKSIFY_LOG_LEVEL=debug SOCKSIFY_LOG_FILE=$SFY_LOG \
		run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /auth
	expect_status 0
	expect_contains "hello from web path=/auth peer=127.0.0.2"
	grep -q "username%$DANTED_USER@" "$DANTED_LOG" ||
		fail "danted did not log an authenticated session"
	[[ -s $SFY_LOG ]] || fail "debug log is empty"
	! grep -qF -- "$DANTED_PASS" "$SFY_LOG" || fail "password in log"
	expect_not_contains "$DANTED_PASS"
}

@test "danted username auth: wrong password gives EACCES" {
	start_danted --username
	proxy_conf "$CONF" "$DANTED_PORT" "username = $DANTED_USER" \
		"password = wrong-password"
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /badauth
	expect_errno EACCES
	expect_not_contains "wrong-password"
	! grep -q "path=/badauth" "$WEB_LOG" || fail "request reached the server"
}
