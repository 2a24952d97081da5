#!/usr/bin/env bats
# The asynchronous SOCKS handshake of non-blocking sockets: connect()
# returns EINPROGRESS at once and the handshake advances while the program
# waits on the fd (poll, select, epoll in every flavour) or touches it;
# the program sees the fd writable only once the handshake is done, a
# failure as POLLERR plus SO_ERROR, and handshake_timeout holds even in
# epoll_wait(-1).
#
# tests/servers/delay_relay.py sits in front of the proxy and holds each
# of its first answers on a connection back 50 ms, so every proxied
# connect costs >= 100 ms of handshake: N handshakes run one after the
# other take N x 100 ms, run concurrently about 100 ms.  The programs time
# themselves (CLOCK_MONOTONIC, time.monotonic, performance.now, curl's
# time_total), so process start-up never counts.  The relay logs every
# connection it accepts: each client must open exactly one proxy
# connection per request (no happy-eyeballs duplicates, no retries).
#
# The HTTP and SOCKS test servers listen with a backlog of 256: with
# http.server's default of 5 a burst of 100 connects loses SYNs, and the
# kernel's 1 s SYN retransmit would swamp what is measured.

load helpers

# The concurrency tests' limit, and the serial time they must beat.
# SPAN_MS bounds how far apart in time (at the relay) a client opens its
# proxy connections: one handshake after the other puts N x 100 ms between
# the first and the last.
LIMIT_MS=3000
SPAN_MS=1000
if [[ -n $ASAN_RT ]]; then
	LIMIT_MS=6000
	SPAN_MS=2000
fi
DELAY_MS=50

setup_file() {
	common_setup_file
	start_sentinel
	start_danted
	start_http web 127.0.0.3
	export WEB_PORT=$HTTP_PORT WEB_LOG=$HTTP_LOG DANTED_PORT
}

setup() {
	common_setup
	proxy_conf "$CONF" "$DANTED_PORT"
}

# start_relay UPSTREAM_PORT [ARGS...]: delay_relay.py in front of the SOCKS
# proxy on 127.0.0.1:UPSTREAM_PORT; sets RELAY_PORT, RELAY_LOG, and points
# $CONF at the relay.
start_relay() {
	local up=$1 dir
	shift
	dir=$(scope_dir)
	export RELAY_LOG="$dir/relay.log"
	: >"$RELAY_LOG"
	spawn relay "$PY" "$SERVERS/delay_relay.py" --listen 127.0.0.1:0 \
		--port-file "$dir/relay.port" --upstream "127.0.0.1:$up" \
		--delay-ms "$DELAY_MS" --log "$RELAY_LOG" "$@"
	wait_file "$dir/relay.port" "$SPAWNED_PID" || return 1
	RELAY_PORT=$(<"$dir/relay.port")
	export RELAY_PORT
	proxy_conf "$CONF" "$RELAY_PORT"
}

# spawn_isolated LABEL CMD...: like run_isolated (private resolv.conf and
# hosts, the sentinel as DNS server), in the background via spawn.
spawn_isolated() {
	local label=$1
	shift
	# shellcheck disable=SC2016 # expanded by the inner sh
	spawn "$label" env "SFY_BASE_PRELOAD=$BASE_PRELOAD" unshare -m sh -c '
		mount --bind "$1" /etc/resolv.conf &&
		mount --bind "$2" /etc/hosts && shift 2 || exit 125
		if [ -n "$SFY_BASE_PRELOAD" ]; then
			export LD_PRELOAD="$SFY_BASE_PRELOAD"
		fi
		unset SFY_BASE_PRELOAD
		exec "$@"' sh "$CLIENT_RESOLV" "$CLIENT_HOSTS" "$@"
}

# expect_relay_conns N: the relay accepted exactly N connections.
# expect_relay_conns_at_most N: node's count.  node closes an attempt
# that has not connected in 250 ms and tries the name's next address;
# socksify parks the closed attempt's handshake and the next connect takes
# it over, so each request costs one proxy connection.  Under load a
# handshake can end just as node's overdue timer closes it, and then that
# request costs two: a few percent, more on a loaded machine running both
# test passes at once (199 of 100 without parking).
expect_relay_conns_at_most() {
	local got
	got=$(wc -l <"$RELAY_LOG")
	[[ $got -ge $2 && $got -le $1 ]] ||
		fail "expected $2 to $1 proxy connections, the relay accepted $got"
}

expect_relay_conns() {
	local got
	got=$(wc -l <"$RELAY_LOG")
	[[ $got -eq $1 ]] ||
		fail "expected exactly $1 proxy connections, the relay accepted $got"
}

# expect_relay_span_below MS: the relay accepted all its connections
# within MS of the first (its own monotonic clock).
expect_relay_span_below() {
	local span
	span=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^t_ms=/) {
			t = substr($i, 6) + 0
			if (min == "" || t < min) min = t
			if (t > max) max = t } }
		END { printf "%d", max - min }' "$RELAY_LOG")
	((span < $1)) ||
		fail "the relay accepted the connections over $span ms (limit $1 ms):" \
			"$(head -n 3 "$RELAY_LOG")" ... "$(tail -n 3 "$RELAY_LOG")"
}

# expect_web_gets PREFIX N: exactly N requests for paths starting with
# PREFIX reached the HTTP server, all from the proxy's outbound address
# 127.0.0.2 (never from the client's 127.0.0.1).
expect_web_gets() {
	local prefix=$1 n=$2 ok other
	ok=$(grep -c "^GET $prefix[^ ]* peer=127\.0\.0\.2\$" "$WEB_LOG" || true)
	other=$(grep "^GET $prefix" "$WEB_LOG" | grep -vc ' peer=127\.0\.0\.2$' || true)
	[[ $ok -eq $n && $other -eq 0 ]] ||
		fail "expected $n GET $prefix* from 127.0.0.2, got $ok (and $other from elsewhere):" \
			"$(grep "^GET $prefix" "$WEB_LOG" | head -n 20)"
}

# expect_ms_below LIMIT: evloop's "ok N ms=ELAPSED" (or a "ms=" anywhere in
# the output) is below LIMIT.
expect_ms_below() {
	local ms
	[[ $output =~ ms=([0-9]+) ]] || fail "no ms= in the output:" "$output"
	ms=${BASH_REMATCH[1]}
	((ms < $1)) || fail "took $ms ms, limit $1 ms; output:" "$output"
}

# evloop_mode MODE [ARGS...]: 20 connections to web.test through the relay
# in front of danted; one handshake after the other would take >= 2000 ms.
evloop_mode() {
	local mode=$1 path
	shift
	# a suffix, so that no test's path is a prefix of another's
	path="/ev-$mode-after"
	[[ ${1-} == --register-before ]] && path="/ev-$mode-before"
	start_relay "$DANTED_PORT"
	run sfy "$TESTBIN/evloop" --mode "$mode" "$@" --conns 20 --host web.test \
		--port "$WEB_PORT" --path "$path" \
		--expect-body "hello from web path=$path peer=127.0.0.2"
	expect_status 0
	expect_match $'(^|\n)ok 20 ms=[0-9]+'
	expect_line "einprogress=20"
	expect_ms_below 1000
	expect_relay_conns 20
	expect_relay_span_below "$SPAN_MS"
	expect_web_gets "$path" 20
	assert_no_dns_leak
}

# ------------------------------------------------------------ event loops
@test "evloop poll: 20 concurrent handshakes by name through danted" {
	evloop_mode poll
}

@test "evloop select: 20 concurrent handshakes by name through danted" {
	evloop_mode select
}

@test "evloop epoll level-triggered: 20 concurrent handshakes" {
	evloop_mode epoll-lt
}

@test "evloop epoll edge-triggered: 20 concurrent handshakes" {
	evloop_mode epoll-et
}

@test "evloop epoll EPOLLONESHOT re-armed with EPOLL_CTL_MOD: 20 concurrent handshakes" {
	evloop_mode epoll-oneshot
}

@test "evloop epoll edge-triggered, registered before connect() (as nginx): 20 handshakes" {
	evloop_mode epoll-et --register-before
}

@test "evloop epoll level-triggered, registered before connect(): 20 handshakes" {
	evloop_mode epoll-lt --register-before
}

@test "evloop by IPv4 literal, poll, straight to danted (no relay)" {
	run sfy "$TESTBIN/evloop" --mode poll --conns 20 --host 127.0.0.3 \
		--port "$WEB_PORT" --path /ev-literal \
		--expect-body "hello from web path=/ev-literal peer=127.0.0.2"
	expect_status 0
	expect_match $'(^|\n)ok 20 ms=[0-9]+'
	expect_web_gets /ev-literal 20
	grep -qF "127.0.0.3.$WEB_PORT" "$DANTED_LOG" ||
		fail "danted did not connect to 127.0.0.3.$WEB_PORT"
}

# --------------------------------------------------------------- headline
@test "100 connections, one thread (epoll-et): well below 100 serial handshakes (10 s)" {
	start_relay "$DANTED_PORT"
	run sfy "$TESTBIN/evloop" --mode epoll-et --conns 100 --host web.test \
		--port "$WEB_PORT" --path /hundred-et \
		--expect-body "hello from web path=/hundred-et peer=127.0.0.2"
	expect_status 0
	expect_match $'(^|\n)ok 100 ms=[0-9]+'
	expect_line "einprogress=100"
	expect_ms_below "$LIMIT_MS"
	expect_relay_conns 100
	expect_relay_span_below "$SPAN_MS"
	expect_web_gets /hundred-et 100
	assert_no_dns_leak
}

@test "100 connections, one thread (poll): well below 100 serial handshakes (10 s)" {
	start_relay "$DANTED_PORT"
	run sfy "$TESTBIN/evloop" --mode poll --conns 100 --host web.test \
		--port "$WEB_PORT" --path /hundred-poll \
		--expect-body "hello from web path=/hundred-poll peer=127.0.0.2"
	expect_status 0
	expect_match $'(^|\n)ok 100 ms=[0-9]+'
	expect_line "einprogress=100"
	expect_ms_below "$LIMIT_MS"
	expect_relay_conns 100
	expect_relay_span_below "$SPAN_MS"
	expect_web_gets /hundred-poll 100
	assert_no_dns_leak
}

# ------------------------------------------------------- real event loops
@test "python asyncio: 100 concurrent GETs by name, one proxy connection each" {
	start_relay "$DANTED_PORT"
	run sfy "$PY" - "$WEB_PORT" <<'EOF'
import asyncio, sys, time

PORT = int(sys.argv[1])

async def get(i):
    reader, writer = await asyncio.open_connection("web.test", PORT)
    writer.write(b"GET /asyncio-%d HTTP/1.0\r\nHost: web.test\r\n\r\n" % i)
    await writer.drain()
    data = await reader.read()
    writer.close()
    want = b"hello from web path=/asyncio-%d peer=127.0.0.2" % i
    if not data.startswith(b"HTTP/1.") or want not in data:
        raise RuntimeError("conn %d: bad response %r" % (i, data[:200]))

async def main():
    t0 = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(get(i) for i in range(100))), 20)
    print("ok 100 ms=%d" % ((time.monotonic() - t0) * 1000))

asyncio.run(main())
EOF
	expect_status 0
	expect_match $'(^|\n)ok 100 ms=[0-9]+'
	expect_ms_below "$LIMIT_MS"
	expect_relay_conns 100
	expect_relay_span_below "$SPAN_MS"
	expect_web_gets /asyncio- 100
	assert_no_dns_leak
}

@test "curl --parallel: 100 transfers by name, each fast, one proxy connection each" {
	skip_curl_under_asan
	start_relay "$DANTED_PORT"
	local dir=$BATS_TEST_TMPDIR/curl i body max
	mkdir -p "$dir"
	run sfy curl -sS --max-time 20 --parallel --parallel-immediate \
		--parallel-max 100 -o "$dir/b#1" \
		-w '%{http_code} %{time_total}\n' \
		"http://web.test:$WEB_PORT/curl-[1-100]"
	expect_status 0
	[[ $(grep -c '^200 ' <<<"$output") -eq 100 ]] ||
		fail "expected 100 answers 200:" "$output"
	for ((i = 1; i <= 100; i++)); do
		body=$(<"$dir/b$i")
		[[ $body == "hello from web path=/curl-$i peer=127.0.0.2" ]] ||
			fail "transfer $i got: $body"
	done
	# time_total of each transfer counts from when curl started it, which
	# with blocking handshakes is after the ones before it: the relay's
	# clock shows whether the 100 handshakes overlapped.
	max=$(awk '$2 > m { m = $2 } END { printf "%d", m * 1000 }' <<<"$output")
	((max < LIMIT_MS)) || fail "slowest transfer took $max ms:" "$output"
	expect_relay_conns 100
	expect_relay_span_below "$SPAN_MS"
	expect_web_gets /curl- 100
	assert_no_dns_leak
}

@test "node http: 100 concurrent http.get with default options, one proxy connection each (15% slack under load)" {
	command -v node >/dev/null || skip "node is not installed"
	local major
	major=$(node -e 'console.log(process.versions.node.split(".")[0])')
	((major >= 20)) || skip "node $major: the test wants node 20 (happy eyeballs on by default)"
	start_relay "$DANTED_PORT"
	run sfy node - "$WEB_PORT" <<'EOF'
const http = require("http");
const port = Number(process.argv[2]);
const t0 = performance.now();
let done = 0;
const timer = setTimeout(() => { console.log("error: timeout done=" + done); process.exit(1); }, 20000);
for (let i = 0; i < 100; i++) {
  http.get({ host: "web.test", port, path: "/node-" + i }, (res) => {
    let body = "";
    res.setEncoding("utf8");
    res.on("data", (c) => { body += c; });
    res.on("end", () => {
      const want = "hello from web path=/node-" + i + " peer=127.0.0.2";
      if (res.statusCode !== 200 || !body.includes(want)) {
        console.log("error: conn " + i + ": " + res.statusCode + " " + body);
        process.exit(1);
      }
      if (++done === 100) {
        clearTimeout(timer);
        console.log("ok 100 ms=" + Math.round(performance.now() - t0));
      }
    });
  }).on("error", (e) => { console.log("error: conn " + i + ": " + e.code + " " + e.message); process.exit(1); });
}
EOF
	expect_status 0
	expect_match $'(^|\n)ok 100 ms=[0-9]+'
	expect_ms_below "$LIMIT_MS"
	expect_relay_conns_at_most 115 100
	expect_relay_span_below "$SPAN_MS"
	expect_web_gets /node- 100
	assert_no_dns_leak
}

@test "nginx under socksify proxies to a name only the proxy resolves" {
	command -v nginx >/dev/null || skip "nginx is not installed (Debian: nginx-light)"
	local dir=$BATS_TEST_TMPDIR/nginx port
	mkdir -p "$dir/tmp"
	start_testserver --map upstream.test=127.0.0.3
	proxy_conf "$CONF" "$TS_PORT"
	port=$(free_port)
	cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log info;
events { worker_connections 512; }
http {
	access_log $dir/access.log;
	client_body_temp_path $dir/tmp/body;
	proxy_temp_path $dir/tmp/proxy;
	fastcgi_temp_path $dir/tmp/fastcgi;
	uwsgi_temp_path $dir/tmp/uwsgi;
	scgi_temp_path $dir/tmp/scgi;
	server {
		listen 127.0.0.1:$port;
		location / {
			proxy_pass http://upstream.test:$WEB_PORT/;
			proxy_connect_timeout 10s;
		}
	}
}
EOF
	spawn_isolated nginx "$SOCKSIFY" -c "$CONF" -- \
		nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
	wait_listen "$port" "$SPAWNED_PID" || fail "nginx:" "$(cat "$dir/error.log")"
	# The client (not under socksify) asks nginx on loopback: one request,
	# then 20 at once (nginx runs 20 upstream handshakes concurrently).
	run timeout 20 "$TESTBIN/tcp_get" 127.0.0.1 "$port" /ngx-one
	[[ $status -eq 0 ]] &&
		[[ $'\n'$output$'\n' == *$'\n'"hello from web path=/ngx-one peer=127.0.0.2"$'\n'* ]] ||
		fail "through nginx (status $status):" "$output" "$(tail -n 20 "$dir/error.log")"
	run timeout 20 "$TESTBIN/evloop" --mode epoll-et --conns 20 \
		--host 127.0.0.1 --port "$port" --path /ngx-many \
		--expect-body "hello from web path=/ngx-many peer=127.0.0.2"
	expect_status 0
	expect_match $'(^|\n)ok 20 ms=[0-9]+'
	expect_web_gets /ngx-one 1
	expect_web_gets /ngx-many 20
	[[ $(count_records host upstream.test) -eq 21 ]] ||
		fail "the proxy did not get 21 CONNECTs to upstream.test:" "$(cat "$TS_RECORD")"
	[[ $(count_records atyp 3) -eq 21 ]] || fail "not sent as names:" "$(cat "$TS_RECORD")"
	assert_no_dns_leak
}

# ------------------------------------------------------------ the contract
@test "check-errors: during the handshake EALREADY and EAGAIN, then POLLOUT, SO_ERROR 0, EISCONN" {
	start_testserver
	start_relay "$TS_PORT"
	run sfy "$TESTBIN/evloop" --mode check-errors --host web.test \
		--port "$WEB_PORT" --path /check-ok \
		--expect-body "hello from web path=/check-ok peer=127.0.0.2"
	expect_status 0
	expect_line "connect1=EINPROGRESS"
	expect_line "connect_again=EALREADY"
	expect_line "read=EAGAIN"
	expect_line "write=EAGAIN"
	expect_line "revents=POLLOUT"
	expect_line "so_error=0"
	expect_line "so_error2=0"
	expect_line "connect2=EISCONN"
	# the program's "X" written during the handshake went nowhere: the
	# proxy got a clean CONNECT, the server a clean GET.
	expect_line "body=ok"
	expect_record cmd 1
	expect_record host web.test
	expect_record port "$WEB_PORT"
	expect_record rep 0
	expect_web_gets /check-ok 1
	expect_relay_conns 1
	assert_no_dns_leak
}

@test "check-errors: the proxy answers 5: POLLOUT|POLLERR, SO_ERROR ECONNREFUSED once, then 0" {
	start_testserver --reply 5
	start_relay "$TS_PORT"
	run sfy "$TESTBIN/evloop" --mode check-errors --host 127.0.0.3 \
		--port "$WEB_PORT" --path /check-refused
	expect_status 0
	expect_line "connect1=EINPROGRESS"
	expect_line "connect_again=EALREADY"
	expect_line "read=EAGAIN"
	expect_line "write=EAGAIN"
	expect_match $'\n''revents=POLLOUT\|POLLERR(\|POLLHUP)?'$'\n'
	expect_line "so_error=ECONNREFUSED"
	expect_line "so_error2=0"
	expect_record rep 5
	expect_record host 127.0.0.3
	expect_record cmd 1
	grep -q "^GET /check-refused" "$WEB_LOG" && fail "the request reached the server"
	expect_relay_conns 1
}

@test "check-errors: a silent proxy: poll() wakes with POLLERR and ETIMEDOUT at handshake_timeout" {
	start_testserver --mode silent
	write_conf "$CONF" "proxy = socks5h://127.0.0.1:$TS_PORT" \
		"direct_loopback = no" "handshake_timeout = 1"
	run sfy "$TESTBIN/evloop" --mode check-errors --host 127.0.0.3 \
		--port "$WEB_PORT" --timeout-ms 8000
	expect_status 0
	expect_line "connect_again=EALREADY"
	expect_match $'\n''revents=POLLOUT\|POLLERR(\|POLLHUP)?'$'\n'
	expect_line "so_error=ETIMEDOUT"
	expect_line "so_error2=0"
	local ms
	ms=$(output_value elapsed_ms)
	((ms >= 900 && ms < LIMIT_MS)) || fail "ETIMEDOUT after $ms ms, expected about 1000:" "$output"
}

@test "epoll_wait(-1) on a silent proxy: ETIMEDOUT after handshake_timeout, no hang" {
	start_testserver --mode silent
	write_conf "$CONF" "proxy = socks5h://127.0.0.1:$TS_PORT" \
		"direct_loopback = no" "handshake_timeout = 1"
	CMD_TIMEOUT=15 run sfy "$TESTBIN/evloop" --mode epoll-wait-forever \
		--host web.test --port "$WEB_PORT" --timeout-ms 8000
	expect_status 0
	expect_match $'(^|\n)events=[A-Z|]*EPOLLERR'
	expect_match $'(^|\n)events=[A-Z|]*EPOLLOUT'
	expect_line "so_error=ETIMEDOUT"
	local ms
	ms=$(output_value elapsed_ms)
	((ms >= 900 && ms < LIMIT_MS)) || fail "ETIMEDOUT after $ms ms, expected about 1000:" "$output"
	[[ $(wc -l <"$TS_RECORD") -eq 1 ]] || fail "records:" "$(cat "$TS_RECORD")"
	assert_no_dns_leak
}

@test "epoll_wait(-1), success: EPOLLOUT once the handshake is done, then the GET" {
	start_relay "$DANTED_PORT"
	CMD_TIMEOUT=15 run sfy "$TESTBIN/evloop" --mode epoll-wait-forever \
		--host web.test --port "$WEB_PORT" --path /forever-ok --timeout-ms 8000 \
		--expect-body "hello from web path=/forever-ok peer=127.0.0.2"
	expect_status 0
	expect_line "events=EPOLLOUT"
	expect_line "so_error=0"
	expect_line "body=ok"
	local ms
	ms=$(output_value elapsed_ms)
	# two answers held back 50 ms each: the event cannot come earlier
	((ms >= 2 * DELAY_MS)) || fail "EPOLLOUT after $ms ms, before the handshake could finish:" "$output"
	expect_relay_conns 1
	expect_web_gets /forever-ok 1
	assert_no_dns_leak
}

@test "thread-waiter: a thread already in epoll_wait(-1) sees 10 handshakes complete" {
	start_relay "$DANTED_PORT"
	run sfy "$TESTBIN/evloop" --mode thread-waiter --conns 10 --host web.test \
		--port "$WEB_PORT" --path /waiter --timeout-ms 10000 \
		--expect-body "hello from web path=/waiter peer=127.0.0.2"
	expect_status 0
	expect_line "waiter_seen=10 so_error=0"
	expect_line "einprogress=10"
	# 200 ms for thread A to settle, then 10 handshakes at once
	expect_ms_below "$SPAN_MS"
	expect_match $'(^|\n)ok 10 ms=[0-9]+'
	expect_relay_conns 10
	expect_web_gets /waiter 10
	assert_no_dns_leak
}

@test "fork-during: fork() with 10 handshakes under way; the parent completes them all" {
	start_relay "$DANTED_PORT"
	run sfy "$TESTBIN/evloop" --mode fork-during --conns 10 --host web.test \
		--port "$WEB_PORT" --path /forked --timeout-ms 10000 \
		--expect-body "hello from web path=/forked peer=127.0.0.2"
	expect_status 0
	expect_line "child=exited0"
	expect_line "einprogress=10" # the fork came during the handshakes
	expect_match $'(^|\n)ok 10 ms=[0-9]+'
	expect_relay_conns 10
	expect_web_gets /forked 10
	assert_no_dns_leak
}

@test "close-during: close() and dup2() over handshaking fds, reuse their numbers, no hang" {
	start_relay "$DANTED_PORT"
	run sfy "$TESTBIN/evloop" --mode close-during --conns 20 --host web.test \
		--port "$WEB_PORT" --path /closing --timeout-ms 10000 \
		--expect-body "hello from web path=/closing peer=127.0.0.2"
	expect_status 0
	expect_line "devnull_read=EOF"
	expect_line "closed=10 reopened=9"
	expect_line "einprogress=29" # the closes came during the handshakes
	# 10 kept + 9 new sockets on the freed numbers
	expect_match $'(^|\n)ok 19 ms=[0-9]+'
	expect_web_gets /closing 19
	# 20 + 9 connections were opened; the 10 closed ones may or may not
	# have reached the relay's accept() before they were closed.
	local n
	n=$(wc -l <"$RELAY_LOG")
	((n >= 19 && n <= 29)) || fail "the relay accepted $n connections"
	assert_no_dns_leak
}

# ---------------------------------------------------------------- control
@test "blocking socket: connect() still blocks through the whole handshake" {
	start_relay "$DANTED_PORT"
	run sfy "$PY" - "$WEB_PORT" <<'EOF'
import socket, sys, time
s = socket.socket()
t0 = time.monotonic()
s.connect(("web.test", int(sys.argv[1])))
ms = (time.monotonic() - t0) * 1000
s.sendall(b"GET /blocking HTTP/1.0\r\nHost: web.test\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print("connect_ms=%d" % ms)
print(data.split(b"\r\n\r\n", 1)[1].decode())
EOF
	expect_status 0
	expect_contains "hello from web path=/blocking peer=127.0.0.2"
	local ms
	ms=$(output_value connect_ms)
	((ms >= 2 * DELAY_MS)) || fail "connect() returned after $ms ms, before the handshake was done"
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /blocking-c
	expect_status 0
	expect_contains "hello from web path=/blocking-c peer=127.0.0.2"
	expect_relay_conns 2
	expect_web_gets /blocking 2
	assert_no_dns_leak
}
