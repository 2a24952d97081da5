# shellcheck shell=bash
# Shared setup for socksify's bats integration suite.
#
# Every server a test starts is tracked in a pid file of the current scope
# (the test, or the file when called from setup_file) and its whole process
# group is killed in teardown, so a failing test cannot leak servers.
#
# Hard rule: tests only ever talk to loopback.  tests/bats/run executes the
# suite in private network + mount namespaces (only "lo" exists), and
# require_isolation refuses to run outside them.  Do not run files in
# parallel (bats --jobs): each file's DNS sentinel binds 127.0.0.53:53.
#
# Variables set here are used by the .bats files; status/output/lines are
# set by bats' run:
# shellcheck disable=SC2034,SC2154

ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SOCKSIFY=${SOCKSIFY_WRAPPER:-$ROOT/scripts/socksify}   # override: testing a wrapper elsewhere
LIB=${SOCKSIFY_LIB:-$BUILD/libsocksify.so}
TESTBIN=$BUILD/tests
SERVERS=$ROOT/tests/servers
PY=/usr/bin/python3            # the system interpreter, stdlib only

# SOCKSIFY_TEST_ASAN=1: clients run with the ASan+UBSan build of the
# library, behind the ASan runtime (which must come first in LD_PRELOAD);
# a sanitizer report fails the test (see common_teardown).
ASAN_RT=
if [[ ${SOCKSIFY_TEST_ASAN-} == 1 ]]; then
	LIB=$BUILD/asan/libsocksify.so
	ASAN_RT=$(cc -print-file-name=libasan.so)
	export SOCKSIFY_LIB=$LIB
fi
# An LD_PRELOAD value that loads the library (for tests bypassing the
# wrapper), and what LD_PRELOAD is when socksify is off.
PRELOAD=${ASAN_RT:+$ASAN_RT }$LIB
BASE_PRELOAD=$ASAN_RT
# How much slower this pass runs: upper time limits are a configured time
# plus a margin, and the margin is TIME_SCALE times larger in the ASan pass
# (see expect_ms).
TIME_SCALE=1
[[ -z $ASAN_RT ]] || TIME_SCALE=3

# Fixed credentials for danted's "username" method.  The hash is
# SHA-512-crypt of DANTED_PASS (openssl passwd -6 -salt socksifytest).
DANTED_USER=sxuser
DANTED_PASS=sx-s3cret-pw
# shellcheck disable=SC2016 # a literal hash, not an expansion
DANTED_HASH='$6$socksifytest$J/5VTF3VLcDEs4eTv6gBDh5/lPDA5omMQRmQYvpzHfnQKZW/MYERs1blm4B/XnQvZpLvIwvZDPK/GjP4pt21g0'

# Clients must not pick up proxies or a socksify setup from the caller.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY \
	no_proxy NO_PROXY LD_PRELOAD SOCKSIFY_CONF SOCKSIFY_PROXY \
	SOCKSIFY_LOG_LEVEL SOCKSIFY_LOG_FILE
export CURL_HOME=/nonexistent   # no ~/.curlrc (wget gets --no-config)
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the source tree

WAIT_SECS=10                   # upper bound for any server to come up
export CMD_TIMEOUT=${CMD_TIMEOUT:-30}   # upper bound for any client command
export BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-90}

# ---------------------------------------------------------------- basics
# fail MESSAGE...: each argument on its own line (e.g. a text, then output).
fail() {
	printf '%s\n' "$@" >&2
	return 1
}

# Directory for files of the current scope (test or file).
scope_dir() {
	printf '%s\n' "${BATS_TEST_TMPDIR:-$BATS_FILE_TMPDIR}"
}

# Only "lo" may exist: anything else means we could reach a real network.
require_isolation() {
	local ifs
	ifs=$(awk -F: 'NR > 2 { gsub(/ /, "", $1); print $1 }' /proc/net/dev |
		grep -vx lo || true)
	if [[ -n $ifs ]]; then
		fail "refusing to run outside a private network namespace" \
			"(found interfaces: $ifs); use tests/bats/run"
		return 1
	fi
}

# Every check returns on its own: callers use "require_build || return 1",
# and in that context bash ignores errexit inside the function.
require_build() {
	[[ -f $LIB ]] || fail "missing $LIB (run make)" || return 1
	local p
	for p in tcp_get resolve udp_send threads; do
		[[ -x $TESTBIN/$p ]] || fail "missing $TESTBIN/$p (run make)" || return 1
	done
}

# ------------------------------------------------------ process handling
# spawn LABEL CMD...: run CMD in the background, in its own process group
# (setsid does not fork here: a background job is never a group leader),
# with fd 3 closed so bats does not wait for it.
spawn() {
	local label=$1 dir
	shift
	dir=$(scope_dir)
	setsid "$@" >"$dir/$label.out" 2>&1 </dev/null 3>&- &
	echo "$!" >>"$dir/pids"
	SPAWNED_PID=$!
}

# Kill every process group recorded in PIDFILE: TERM, bounded wait, KILL.
kill_tracked() {
	local pidfile=$1 pid i
	[[ -f $pidfile ]] || return 0
	while read -r pid; do
		kill -TERM -- "-$pid" 2>/dev/null || true
	done <"$pidfile"
	for ((i = 0; i < 40; i++)); do
		local alive=0
		while read -r pid; do
			kill -0 -- "-$pid" 2>/dev/null && alive=1
		done <"$pidfile"
		((alive)) || break
		sleep 0.05
	done
	while read -r pid; do
		kill -KILL -- "-$pid" 2>/dev/null || true
	done <"$pidfile"
	rm -f "$pidfile"
}

# wait_file FILE PID: until FILE is non-empty; fails early if PID died.
wait_file() {
	local file=$1 pid=$2 i
	for ((i = 0; i < WAIT_SECS * 20; i++)); do
		[[ -s $file ]] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	fail "timed out waiting for $file (pid $pid)"
	cat "$(scope_dir)"/*.out >&2 2>/dev/null
	return 1
}

# wait_listen PORT PID: until something listens on 127.0.0.1:PORT.
wait_listen() {
	local port=$1 pid=$2 i
	for ((i = 0; i < WAIT_SECS * 20; i++)); do
		if (exec 9<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	fail "nothing listening on 127.0.0.1:$port (pid $pid)"
	return 1
}

# free_port: a port for a server that must be told its port (danted,
# microsocks, a client binding an explicit port), or one nothing listens
# on (a proxy that is down).  Servers that can pick their own port do so
# and report it in a port file instead (start_http, start_testserver).
# tests/bats/run pins the namespace's ephemeral range
# (net.ipv4.ip_local_port_range) to FREE_PORT_MAX+1..60999, so no bind to
# port 0 and no outgoing connection ever gets a port below it; free_port
# hands out each port of FREE_PORT_MIN..FREE_PORT_MAX once per run (a
# counter in BATS_RUN_TMPDIR), so it stays free until its server takes it.
# (It used to bind port 0 and let the port go again before the server
# bound it: any connection could take it in between.)
FREE_PORT_MIN=20000
FREE_PORT_MAX=32767
free_port() {
	local counter=$BATS_RUN_TMPDIR/socksify-next-port low port
	read -r low _ </proc/sys/net/ipv4/ip_local_port_range
	((low > FREE_PORT_MAX)) ||
		fail "the ephemeral port range starts at $low, inside free_port's" \
			"$FREE_PORT_MIN..$FREE_PORT_MAX (use tests/bats/run)" || return 1
	port=$(
		exec 9>>"$counter.lock" && flock 9 || exit 1
		p=$(cat "$counter" 2>/dev/null) || p=$FREE_PORT_MIN
		echo $((p + 1)) >"$counter" && echo "$p"
	) || return 1
	((port <= FREE_PORT_MAX)) || fail "free_port: all of $FREE_PORT_MIN..$FREE_PORT_MAX used" || return 1
	echo "$port"
}

# ---------------------------------------------------------------- servers
# start_http NAME HOST: sets HTTP_PORT and HTTP_LOG (one line per accepted
# connection and per request, so tests can prove nothing arrived).
start_http() {
	local name=$1 host=$2 dir
	dir=$(scope_dir)
	[[ $host == *:* ]] && host="[$host]"
	export HTTP_LOG="$dir/http-$name.log"
	: >"$HTTP_LOG"
	spawn "http-$name" "$PY" "$SERVERS/http_server.py" --name "$name" \
		--listen "$host:0" --port-file "$dir/http-$name.port" \
		--log "$HTTP_LOG"
	wait_file "$dir/http-$name.port" "$SPAWNED_PID" || return 1
	HTTP_PORT=$(<"$dir/http-$name.port")
	export HTTP_PORT
}

# start_testserver [ARGS...]: our SOCKS5 server on 127.0.0.1; sets TS_PORT
# and TS_RECORD.  web.test maps to 127.0.0.3, outbound source 127.0.0.2.
start_testserver() {
	local dir n
	dir=$(scope_dir)
	n=0
	while [[ -e $dir/ts$n.jsonl ]]; do n=$((n + 1)); done
	export TS_RECORD="$dir/ts$n.jsonl"
	: >"$TS_RECORD"
	spawn "ts$n" "$PY" "$SERVERS/socks5_testserver.py" \
		--listen 127.0.0.1:0 --port-file "$dir/ts$n.port" \
		--record "$TS_RECORD" --bind-out 127.0.0.2 \
		--map web.test=127.0.0.3 --map web6.test=::1 "$@"
	wait_file "$dir/ts$n.port" "$SPAWNED_PID" || return 1
	TS_PORT=$(<"$dir/ts$n.port")
	export TS_PORT
}

# start_sentinel: DNS query logger on 127.0.0.53:53; sets SENTINEL_LOG.
start_sentinel() {
	local dir
	dir=$(scope_dir)
	export SENTINEL_LOG="$dir/dns-queries.log"
	spawn sentinel "$PY" "$SERVERS/dns_sentinel.py" \
		--listen 127.0.0.53:53 --log "$SENTINEL_LOG" \
		--port-file "$dir/sentinel.port"
	wait_file "$dir/sentinel.port" "$SPAWNED_PID"
}

# start_udp_sink NAME HOST: a UDP server that logs every datagram
# ("from=ADDR:PORT data=TEXT", tests/servers/udp_sink.py); sets UDP_PORT
# and UDP_LOG.
start_udp_sink() {
	local name=$1 host=$2 dir
	dir=$(scope_dir)
	[[ $host == *:* ]] && host="[$host]"
	export UDP_LOG="$dir/udp-$name.log"
	: >"$UDP_LOG"
	spawn "udp-$name" "$PY" "$SERVERS/udp_sink.py" --listen "$host:0" \
		--port-file "$dir/udp-$name.port" --log "$UDP_LOG"
	wait_file "$dir/udp-$name.port" "$SPAWNED_PID" || return 1
	UDP_PORT=$(<"$dir/udp-$name.port")
	export UDP_PORT
}

# start_danted [--username] [EXTRA CONFIG LINES...]
# Runs danted in a private mount namespace whose /etc/hosts knows
# web.test -> 127.0.0.3 (the client's does not) and whose resolver points
# at a dead loopback address, so the proxy never sends DNS anywhere.
# --username requires RFC 1929 auth as DANTED_USER/DANTED_PASS, checked
# against private copies of /etc/passwd and /etc/shadow bind-mounted in the
# same namespace (the system's user database is never modified).
# Sets DANTED_PORT and DANTED_LOG.
start_danted() {
	local method=none dir mounts
	if [[ ${1-} == --username ]]; then
		method=username
		shift
	fi
	dir=$(scope_dir)/danted
	mkdir -p "$dir" || return 1
	DANTED_PORT=$(free_port) || return 1
	export DANTED_PORT DANTED_LOG="$dir/danted.log"
	write_danted_conf "$dir/danted.conf" "$method" "$@"
	printf '127.0.0.1 localhost\n127.0.0.3 web.test\n::1 web6.test\n' \
		>"$dir/hosts"
	printf 'nameserver 127.0.0.1\noptions attempts:1 timeout:1\n' \
		>"$dir/resolv.conf"
	cp /etc/passwd "$dir/passwd"
	cp /etc/shadow "$dir/shadow"
	echo "$DANTED_USER:x:64999:64999::/nonexistent:/usr/sbin/nologin" \
		>>"$dir/passwd"
	echo "$DANTED_USER:$DANTED_HASH:19000:0:99999:7:::" >>"$dir/shadow"
	mounts="mount --bind $dir/hosts /etc/hosts"
	mounts+=" && mount --bind $dir/resolv.conf /etc/resolv.conf"
	mounts+=" && mount --bind $dir/passwd /etc/passwd"
	mounts+=" && mount --bind $dir/shadow /etc/shadow"
	spawn danted unshare -m sh -c "$mounts && exec danted -f $dir/danted.conf -N 1 -p $dir/danted.pid"
	wait_listen "$DANTED_PORT" "$SPAWNED_PID"
}

write_danted_conf() {
	local conf=$1 method=$2 rule
	shift 2
	{
		echo "logoutput: $DANTED_LOG"
		echo "internal: 127.0.0.1 port = $DANTED_PORT"
		echo "external: 127.0.0.2"
		echo "external: ::1"
		echo "socksmethod: $method"
		echo "clientmethod: none"
		echo "user.privileged: root"
		echo "user.unprivileged: nobody"
		# Extra lines go before the rules: settings must precede rules,
		# and rules are first-match.
		if (($#)); then printf "%s\n" "$@"; fi
		printf 'client pass {\n from: 127.0.0.0/8 to: 0.0.0.0/0\n log: connect disconnect error\n}\n'
		# Destinations are restricted to loopback (and names the private
		# /etc/hosts maps to loopback): the proxy must never reach out.
		for rule in "to: 127.0.0.0/8" "to: ::1/128" "to: web.test" "to: web6.test"; do
			printf 'socks pass {\n from: 127.0.0.0/8 %s\n command: connect bind udpassociate\n log: connect disconnect error\n}\n' "$rule"
		done
		printf 'socks block {\n from: 0.0.0.0/0 to: 0.0.0.0/0\n log: connect error\n}\n'
	} >"$conf"
}

# --------------------------------------------------------------- clients
# Files that make up the client's view of the world in run_isolated:
# resolv.conf points at the sentinel, hosts is the system's minus any
# *.test names plus hostsonly.test -> 127.0.0.3 (where the web server is).
write_client_files() {
	local dir
	dir=$(scope_dir)
	export CLIENT_RESOLV="$dir/client-resolv.conf" CLIENT_HOSTS="$dir/client-hosts"
	printf 'nameserver 127.0.0.53\noptions attempts:1 timeout:1\n' \
		>"$CLIENT_RESOLV"
	{
		grep -v '\.test\b' /etc/hosts || true
		echo "127.0.0.3 hostsonly.test"
	} >"$CLIENT_HOSTS"
}

# run_isolated CMD...: CMD in a private mount namespace whose DNS server is
# the sentinel, so any lookup the client makes itself is logged.  CMD is
# killed after CMD_TIMEOUT seconds: a hanging shim must fail the test, not
# hang the suite.  (timeout runs before the wrapper sets LD_PRELOAD, so it
# is not itself preloaded.)
run_isolated() {
	[[ -n ${CLIENT_RESOLV-} ]] || write_client_files
	# shellcheck disable=SC2016 # expanded by the inner sh
	SFY_BASE_PRELOAD=$BASE_PRELOAD unshare -m sh -c '
		mount --bind "$1" /etc/resolv.conf &&
		mount --bind "$2" /etc/hosts && shift 2 || exit 125
		if [ -n "$SFY_BASE_PRELOAD" ]; then
			export LD_PRELOAD="$SFY_BASE_PRELOAD"
		fi
		unset SFY_BASE_PRELOAD
		exec timeout -k 3 "$CMD_TIMEOUT" "$@"' \
		sh "$CLIENT_RESOLV" "$CLIENT_HOSTS" "$@"
}

# sfy CMD...: run_isolated under the socksify wrapper with config $CONF.
sfy() {
	run_isolated "$SOCKSIFY" -c "$CONF" -- "$@"
}

# write_conf FILE LINES...: a socksify config file, one line per argument.
write_conf() {
	local file=$1
	shift
	printf '%s\n' "$@" >"$file"
}

# proxy_conf FILE PORT [LINES...]: config for a SOCKS5 proxy on
# 127.0.0.1:PORT with loopback NOT direct (all our servers are loopback).
proxy_conf() {
	local file=$1 port=$2
	shift 2
	write_conf "$file" "proxy = socks5h://127.0.0.1:$port" \
		"direct_loopback = no" "handshake_timeout = 5" "$@"
}

# ------------------------------------------------------------- assertions
expect_status() {
	[[ $status -eq $1 ]] ||
		fail "expected exit status $1, got $status; output:" "$output"
}

expect_contains() {
	[[ $output == *"$1"* ]] ||
		fail "expected output to contain '$1'; output:" "$output"
}

expect_not_contains() {
	[[ $output != *"$1"* ]] ||
		fail "expected output NOT to contain '$1'; output:" "$output"
}

expect_match() {
	[[ $output =~ $1 ]] ||
		fail "expected output to match /$1/; output:" "$output"
}

# expect_errno ENAME: the tcp_get/udp_send failure line names ENAME.
expect_errno() {
	expect_status 1 || return 1
	[[ $output =~ error:\ [a-z+]+:\ $1\  ]] ||
		fail "expected error $1; output:" "$output"
}

assert_no_dns_leak() {
	if [[ -s $SENTINEL_LOG ]]; then
		fail "DNS leak, the sentinel saw:" "$(cat "$SENTINEL_LOG")"
		return 1
	fi
}

reset_sentinel() {
	: >"$SENTINEL_LOG"
}

# wait_records N: until the test server recorded at least N connections.
wait_records() {
	local n=$1 i
	for ((i = 0; i < WAIT_SECS * 20; i++)); do
		[[ $(wc -l <"$TS_RECORD") -ge $n ]] && return 0
		sleep 0.05
	done
	fail "test server recorded $(wc -l <"$TS_RECORD") of $n connections"
}

# record_get INDEX KEY: field of the INDEX-th (0-based, -1 = last) record.
record_get() {
	"$PY" - "$TS_RECORD" "$1" "$2" <<'EOF'
import json, sys
records = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
value = records[int(sys.argv[2])].get(sys.argv[3])
print(json.dumps(value) if isinstance(value, (list, dict)) else value)
EOF
}

# expect_record KEY VALUE [INDEX]
expect_record() {
	local got
	got=$(record_get "${3:--1}" "$1") || return 1
	[[ $got == "$2" ]] ||
		fail "record[$1] = '$got', expected '$2'; records:" "$(cat "$TS_RECORD")"
}

# curl hangs at start-up when the ASan runtime is preloaded into it, with
# or without socksify (seen on Debian bookworm), so ASan runs skip it.
skip_curl_under_asan() {
	[[ -z $ASAN_RT ]] || skip "curl hangs under a preloaded ASan runtime"
}

# expect_ms MS LOW HIGH MARGIN WHAT: a time MS (milliseconds) measured
# inside the program, around the call that waits (connect_ms= of tcp_get,
# elapsed_ms= of bind_test and hostile, the step times of --check), never
# around a process's start-up: LOW <= MS <= HIGH + MARGIN * TIME_SCALE.
expect_ms() {
	local ms=$1 low=$2 high=$(($3 + $4 * TIME_SCALE)) what=$5
	[[ $ms =~ ^[0-9]+$ ]] ||
		fail "$what: no time measured ('$ms'); output:" "$output" || return 1
	((ms >= low)) ||
		fail "$what took $ms ms, less than $low ms; output:" "$output" || return 1
	((ms <= high)) ||
		fail "$what took $ms ms, more than $high ms; output:" "$output"
}

# expect_connect_ms LOW HIGH MARGIN: tcp_get's connect() (its
# "connect_ms=" line) took LOW to HIGH + MARGIN * TIME_SCALE ms.
expect_connect_ms() {
	expect_ms "$(output_value connect_ms)" "$1" "$2" "$3" "connect()"
}

# ---------------------------------------------------------- setup/teardown
common_setup_file() {
	require_isolation || return 1
	require_build || return 1
	write_client_files
}

common_teardown_file() {
	kill_tracked "$BATS_FILE_TMPDIR/pids"
}

common_setup() {
	CONF=$BATS_TEST_TMPDIR/socksify.conf
	SFY_LOG=$BATS_TEST_TMPDIR/socksify.log
	[[ -n ${SENTINEL_LOG-} ]] && reset_sentinel
	if [[ -n $ASAN_RT ]]; then
		export ASAN_OPTIONS="detect_leaks=0:log_path=$BATS_TEST_TMPDIR/sanitizer"
		export UBSAN_OPTIONS="print_stacktrace=1:log_path=$BATS_TEST_TMPDIR/sanitizer"
	fi
	return 0
}

# On failure, show what the servers saw: usually the quickest diagnosis.
common_teardown() {
	if [[ -z ${BATS_TEST_COMPLETED-} ]]; then
		local f
		for f in "$BATS_TEST_TMPDIR"/*.out "$BATS_TEST_TMPDIR"/*.jsonl \
			"$SFY_LOG" "${DANTED_LOG-}" "${SENTINEL_LOG-}"; do
			[[ -s $f ]] || continue
			echo "--- $f (tail)"
			tail -n 15 "$f"
		done
	fi
	kill_tracked "$BATS_TEST_TMPDIR/pids"
	expect_no_sanitizer_report
}

# Default bats hooks: a file that needs more defines its own after
# "load helpers" (the later definition wins) and calls these from it.
setup_file() { common_setup_file; }
teardown_file() { common_teardown_file; }
setup() { common_setup; }
teardown() { common_teardown; }

expect_no_sanitizer_report() {
	local f
	for f in "$BATS_TEST_TMPDIR"/sanitizer.*; do
		[[ -e $f ]] || continue
		fail "sanitizer report $f:" "$(head -n 40 "$f")"
		return 1
	done
}

# ================================================================== BIND
# Helpers for bind.bats (SOCKS5 BIND through tests/c/bind_test).  The test
# server (socks5_bind.py) records a BIND like a CONNECT (cmd 2) plus
# bind_listen, bnd, accepted_from, rep and rep2; with --bind-self-connect
# it also plays the remote peer and writes a second record, with
# "remote": true, holding what the peer read back (remote_read).

# bind_conf FILE PORT [LINES...]: proxy_conf with "bind = always" (the
# suite is all loopback, which "auto" keeps local).
bind_conf() {
	local file=$1 port=$2
	shift 2
	proxy_conf "$file" "$port" "bind = always" "$@"
}

# bind_ts [SERVER ARGS...]: a test server that plays the remote peer, and
# $CONF (bind = always) pointing at it.
bind_ts() {
	start_testserver --bind-self-connect "$@" || return 1
	bind_conf "$CONF" "$TS_PORT"
}

# record_where KEY VALUE FIELD: FIELD of the last record whose KEY is VALUE
# (compared as text, e.g. "cmd 2", "remote True").  Lists print as
# ADDR:PORT, or [ADDR]:PORT for IPv6, when they are [address, port].
record_where() {
	"$PY" - "$TS_RECORD" "$1" "$2" "$3" <<'PYEOF'
import json, sys
path, key, want, field = sys.argv[1:5]
records = [json.loads(l) for l in open(path) if l.strip()]
hits = [r for r in records if str(r.get(key)) == want]
if not hits:
    sys.exit(1)
value = hits[-1].get(field)
if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int):
    host = "[%s]" % value[0] if ":" in value[0] else value[0]
    print("%s:%d" % (host, value[1]))
else:
    print(json.dumps(value) if isinstance(value, (list, dict)) else value)
PYEOF
}

# wait_record_where KEY VALUE: until such a record exists.
wait_record_where() {
	local i
	for ((i = 0; i < WAIT_SECS * 20; i++)); do
		record_where "$1" "$2" cmd >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	fail "no record with $1 = $2; records:" "$(cat "$TS_RECORD")"
}

# expect_bind_record FIELD VALUE: the last BIND (cmd 2) record.
expect_bind_record() {
	local got
	wait_record_where cmd 2 || return 1
	got=$(record_where cmd 2 "$1")
	[[ $got == "$2" ]] ||
		fail "BIND record[$1] = '$got', expected '$2'; records:" "$(cat "$TS_RECORD")"
}

# expect_remote_read TEXT: what the simulated remote peer read back.
expect_remote_read() {
	local got
	wait_record_where remote True || return 1
	got=$(record_where remote True remote_read)
	[[ $got == "$1" ]] ||
		fail "the remote peer read '$got', expected '$1'; records:" "$(cat "$TS_RECORD")"
}

# count_records KEY VALUE: how many records have KEY = VALUE.
count_records() {
	"$PY" - "$TS_RECORD" "$1" "$2" <<'PYEOF'
import json, sys
records = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(sum(1 for r in records if str(r.get(sys.argv[2])) == sys.argv[3]))
PYEOF
}

# local_listen_ok EXPECTED_BND: bind_test's listener stayed local (an
# unshimmed peer, --local-peer, reached it on EXPECTED_BND, and data went
# both ways) and the test server saw no BIND.  Each check returns on its
# own: bind.bats calls this as "local_listen_ok ... || return 1".
local_listen_ok() {
	expect_status 0 || return 1
	expect_line "bnd=$1" || return 1
	expect_line "data=HELLO-FROM-REMOTE" || return 1
	expect_line "peer read=HELLO-FROM-CLIENT" || return 1
	expect_line "peer status=0" || return 1
	wait_records 1 || return 1
	[[ $(count_records cmd 2) -eq 0 ]] || fail "unexpected BIND:" "$(cat "$TS_RECORD")"
}

# expect_line LINE: the output has LINE as a whole line.
expect_line() {
	[[ $'\n'$output$'\n' == *$'\n'"$1"$'\n'* ]] ||
		fail "expected the line '$1'; output:" "$output"
}

# output_value KEY: the value of the first "KEY=VALUE" line of the output.
output_value() {
	local line
	while IFS= read -r line; do
		if [[ $line == "$1="* ]]; then
			printf '%s\n' "${line#"$1="}"
			return 0
		fi
	done <<<"$output"
	return 1
}
