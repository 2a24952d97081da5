#!/usr/bin/env bats
# The suite's own rules, each checked by breaking it on purpose: helpers
# fail when any one of their checks fails (not only the last), ports from
# free_port stay free until their server takes them, time limits are never
# measured around process start-up, each pass loads the build it is
# counted for, and the fuzz smoke starts from the seed corpus only.
# (tests/bats/runner.bats does the same for tests/run.sh.)

load helpers

# no_library: skip in the ASan pass a test that does not load the library
# (the release pass runs it; the ASan pass would only repeat it).
no_library() {
	[[ -z $ASAN_RT ]] || skip "does not load the library: the release pass runs it"
}

# ---------------------------------------------------------------- helpers
# Helpers are called as "helper || return 1", and in that context bash
# ignores errexit inside them: only a check that returns on its own counts.

@test "require_build fails when the library is missing, or any test program" {
	no_library
	run require_build
	expect_status 0 || return 1
	LIB=$BATS_TEST_TMPDIR/no-such-libsocksify.so run require_build
	expect_status 1 || return 1
	expect_contains "missing $BATS_TEST_TMPDIR/no-such-libsocksify.so" || return 1
	# Every program but the last one checked is missing.
	mkdir "$BATS_TEST_TMPDIR/bin"
	ln -s "$TESTBIN/threads" "$BATS_TEST_TMPDIR/bin/threads"
	TESTBIN=$BATS_TEST_TMPDIR/bin run require_build
	expect_status 1 || return 1
	expect_contains "missing $BATS_TEST_TMPDIR/bin/tcp_get"
}

# bind_test's output when the listener stayed local, and a record of the
# control connection (a CONNECT, no BIND).
good_local_listen() {
	status=0
	output=$'bnd=0.0.0.0:4242\ndata=HELLO-FROM-REMOTE\npeer read=HELLO-FROM-CLIENT\npeer status=0\ndone'
	TS_RECORD=$BATS_TEST_TMPDIR/ts.jsonl
	echo '{"cmd": 1, "host": "web.test", "rep": 0}' >"$TS_RECORD"
}

# expect_local_listen_fails WHAT: local_listen_ok 0.0.0.0:4242 fails.
expect_local_listen_fails() {
	local saved_output=$output saved_status=$status
	run local_listen_ok 0.0.0.0:4242
	[[ $status -ne 0 ]] ||
		fail "local_listen_ok passed with $1; its input:" "$saved_status" "$saved_output"
}

@test "local_listen_ok fails on each of its checks alone: status, address, data, what the peer read, the peer's status, records" {
	no_library
	WAIT_SECS=1 # when there is no record, give up after 1 s
	good_local_listen
	run local_listen_ok 0.0.0.0:4242
	expect_status 0 || return 1
	good_local_listen
	status=1
	expect_local_listen_fails "exit status 1" || return 1
	good_local_listen
	output=${output/bnd=0.0.0.0:4242/bnd=0.0.0.0:4343}
	expect_local_listen_fails "another address" || return 1
	good_local_listen
	output=${output/data=HELLO-FROM-REMOTE/data=}
	expect_local_listen_fails "no data" || return 1
	good_local_listen
	output=${output/peer read=HELLO-FROM-CLIENT/peer read=}
	expect_local_listen_fails "the peer reading nothing" || return 1
	good_local_listen
	output=${output/peer status=0/peer status=1}
	expect_local_listen_fails "the peer failing" || return 1
	good_local_listen
	: >"$TS_RECORD"
	expect_local_listen_fails "no record" || return 1
	good_local_listen
	echo '{"cmd": 2, "host": "web.test", "rep": 0}' >>"$TS_RECORD"
	expect_local_listen_fails "a BIND record"
}

# ------------------------------------------------------------------ ports
@test "free_port: ports outside the kernel's ephemeral range, each handed out once" {
	no_library
	local low high a b
	read -r low high </proc/sys/net/ipv4/ip_local_port_range
	((low > FREE_PORT_MAX)) ||
		fail "ephemeral ports $low-$high overlap free_port's $FREE_PORT_MIN-$FREE_PORT_MAX" || return 1
	a=$(free_port) && b=$(free_port) || fail "free_port failed" || return 1
	((a >= FREE_PORT_MIN && a <= FREE_PORT_MAX && b >= FREE_PORT_MIN && b <= FREE_PORT_MAX)) ||
		fail "free_port gave $a and $b" || return 1
	[[ $a != "$b" ]] || fail "free_port gave $a twice" || return 1
	# Ports the kernel picks (port 0, as every server here that reports its
	# port in a port file does) never fall among them.
	run "$PY" -c '
import socket, sys
lo, hi = int(sys.argv[1]), int(sys.argv[2])
socks = [socket.socket() for _ in range(200)]
for s in socks:
    s.bind(("127.0.0.1", 0))
bad = [s.getsockname()[1] for s in socks if lo <= s.getsockname()[1] <= hi]
print("in range:", bad)' "$FREE_PORT_MIN" "$FREE_PORT_MAX"
	expect_status 0 || return 1
	expect_contains "in range: []"
}

@test "free_port refuses to hand out ports when the ephemeral range overlaps them" {
	no_library
	local saved
	read -r saved </proc/sys/net/ipv4/ip_local_port_range
	sysctl -qw net.ipv4.ip_local_port_range="1024 60999"
	run free_port
	sysctl -qw net.ipv4.ip_local_port_range="$saved"
	expect_status 1 || return 1
	expect_contains "the ephemeral port range starts at 1024"
}

# --------------------------------------------------------------- timing
@test "no time limit is measured around a process's start-up (date, SECONDS, timed_run)" {
	no_library
	local hits
	hits=$(grep -nE 'date \+%s|\$\{?SECONDS\b|EPOCHREALTIME|timed_run|now_ms' \
		"$ROOT"/tests/bats/*.bats "$ROOT/tests/bats/helpers.bash" "$ROOT/tests/lab/lab.bash" |
		grep -v "^$ROOT/tests/bats/suite.bats:" || true)
	[[ -z $hits ]] || fail "time measured in the shell (measure inside the program instead):" "$hits"
}

@test "tcp_get reports connect()'s own duration" {
	start_testserver --mode silent
	proxy_conf "$CONF" "$TS_PORT" "handshake_timeout = 0.3"
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 1 /
	expect_errno ETIMEDOUT || return 1
	expect_connect_ms 250 300 1000 || return 1
	# A limit below what it measured fails.
	run expect_ms "$(output_value connect_ms)" 0 100 0 "connect()"
	expect_status 1
}

# ------------------------------------------------------------- the passes
@test "programs run with this pass's build of the library (the ASan build behind its runtime in the ASan pass)" {
	write_conf "$CONF" "proxy = socks5h://127.0.0.1:1"
	run sfy "$PY" -c 'print(open("/proc/self/maps").read())'
	expect_status 0 || return 1
	local maps
	maps=$(awk '{ print $6 }' <<<"$output" | grep '\.so' | uniq)
	grep -qxF "$(readlink -f "$LIB")" <<<"$maps" || fail "$LIB is not mapped:" "$maps" || return 1
	if [[ -n $ASAN_RT ]]; then
		[[ $LIB == "$BUILD/asan/libsocksify.so" ]] || fail "the ASan pass preloads $LIB" || return 1
		grep -q '/libasan\.so' <<<"$maps" || fail "the ASan runtime is not mapped:" "$maps"
	else
		! grep -q '/libasan\.so' <<<"$maps" || fail "the release pass loaded ASan:" "$maps"
	fi
}

@test "every suite file loads helpers.bash or lab.bash, which pick the pass's build" {
	no_library
	local f bad=()
	for f in "$ROOT"/tests/bats/*.bats; do
		grep -qE '^load helpers$|^source "\$BATS_TEST_DIRNAME/\.\./lab/lab\.bash"$' "$f" ||
			bad+=("$f")
	done
	((${#bad[@]} == 0)) || fail "these files would run the release library in the ASan pass:" "${bad[@]}"
}

# ------------------------------------------------------------------ fuzz
@test "the fuzz smoke starts from the seed corpus only, not from inputs an earlier run left" {
	no_library
	local bin=$BUILD/fuzz/fuzz_cidr seeds i
	[[ -x $bin ]] || fail "missing $bin (run make fuzz-build)" || return 1
	seeds=$(find "$ROOT/tests/fuzz/corpus/cidr" -type f | wc -l)
	export FUZZ_OUT=$BATS_TEST_TMPDIR/fuzz
	mkdir -p "$FUZZ_OUT/corpus/cidr"
	for i in 1 2 3 4 5; do
		echo "10.$i.0.0/16 left by an earlier run" >"$FUZZ_OUT/corpus/cidr/old-$i"
	done
	run sh "$ROOT/tests/fuzz/run.sh" --smoke 1 cidr
	expect_status 0 || return 1
	grep -q "^INFO: seed corpus: files: $seeds " "$FUZZ_OUT/logs/cidr.log" ||
		fail "the smoke did not start from the $seeds seeds alone:" "$(grep INFO: "$FUZZ_OUT/logs/cidr.log")" || return 1
	# Without --smoke (make fuzz) the earlier inputs count: the check above
	# can tell the two apart.
	run sh "$ROOT/tests/fuzz/run.sh" 1 cidr
	expect_status 0 || return 1
	grep -q "^INFO: seed corpus: files: $((seeds + 5)) " "$FUZZ_OUT/logs/cidr.log" ||
		fail "make fuzz did not read the working corpus:" "$(grep INFO: "$FUZZ_OUT/logs/cidr.log")"
}

@test "no libFuzzer artifacts in the repository, and new ones are ignored" {
	no_library
	git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1 || skip "not a git checkout"
	local tracked
	tracked=$(git -C "$ROOT" ls-files 'crash-*' 'leak-*' 'timeout-*' 'oom-*' '*/crash-*' '*/leak-*' '*/timeout-*' '*/oom-*')
	[[ -z $tracked ]] || fail "libFuzzer artifacts in the repository:" "$tracked" || return 1
	local f
	for f in crash-0123abcd leak-0123abcd timeout-0123abcd oom-0123abcd; do
		git -C "$ROOT" check-ignore -q "$f" || fail "$f would not be ignored" || return 1
	done
}

# ----------------------------------------------------------------- bench
@test "bench: a target the table marks NO (or could not measure) fails the run; the curl probe needs danted's address in the body" {
	no_library
	run "$PY" - "$ROOT/bench" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from counts import sec_targets
from timing import curl_body_ok

def data(lat_ip=1.0, bulk=True):
    lines = lambda n: [["x"], ["recvfrom(3, ...)"] + ["y"] * n]
    sys_data = {"direct (IP)": (0, lines(2)), "native (IP)": (0, lines(6)),
                "socksify[timeouts=0] (IP)": (0, lines(6)), "socksify (IP)": (0, lines(10)),
                "proxychains4 (IP)": (0, lines(9))}
    start = {"true": [1000] * 3, "socksify": [1050] * 3, "proxychains4": [1200] * 3}
    start_sys = [("socksify", 40, 0, 0), ("none", 30, 0, 0)]
    lat = {"socksify (name)": [1.0], "native (name)": [1.0],
           "socksify (IP)": [lat_ip], "native (IP)": [1.0]}
    b = {"socksify (name)": [1.0], "native curl --socks5-hostname (name)": [1.0]} if bulk else {}
    return lat, sys_data, start, start_sys, b

print("all met:", sec_targets(*data()))
print("slow:", sec_targets(*data(lat_ip=1.2)))
print("no bulk:", sec_targets(*data(bulk=False)))
print("curl:", [curl_body_ok(*a)[0] for a in (
    ("socksify LD_PRELOAD (name)", "127.0.0.2", "200"),
    ("socksify LD_PRELOAD (name)", "127.0.0.1", "200"),
    ("socksify LD_PRELOAD (name)", "127.0.0.2", "502"),
    ("direct (IP)", "10.77.0.1", "200"),
    ("direct (IP)", "127.0.0.2", "200"))])
PY
	expect_status 0 || return 1
	expect_line "all met: []" || return 1
	expect_line "slow: ['latency per connection within 5% of the native client (IP target)']" || return 1
	expect_contains "no bulk: ['bulk 64 MiB" || return 1
	expect_line "curl: [True, False, False, True, False]" || return 1
	# bench.py turns what sec_targets returns, and the event-loop targets, into
	# its exit status.
	grep -qE 'unmet \+?= sec_targets\(' "$ROOT/bench/bench.py" && grep -q 'unmet.append(f"event loop' "$ROOT/bench/bench.py" && grep -q 'sys.exit(1)' "$ROOT/bench/bench.py" ||
		fail "bench.py does not exit non-zero for unmet targets"
}
