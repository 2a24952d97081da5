#!/usr/bin/env bats
# socksify --sealed in the firewall lab (tests/lab/lab.bash): the client
# namespace reaches only danted, so a connection that went direct fails
# with "Network is unreachable", and the client's DNS sentinel records any
# name the client resolves itself.  The clients the preload cannot see
# (static glibc, Go with its own resolver, io_uring, raw syscall(), a
# program with its own seccomp filter) are built by tests/sealed/build.sh
# in setup_file, Go from Debian's golang-go, liburing from liburing-dev.
# Every proxied answer must show the proxy's external address as the peer
# (203.0.113.1: files-v4 prints "peer=" what it saw), and the sentinel
# must stay silent.

# shellcheck source=tests/lab/lab.bash
source "$BATS_TEST_DIRNAME/../lab/lab.bash"

CLIENTS=$LAB_ROOT/build/tests/sealed
RAWSYS=$LAB_ROOT/build/tests/rawsys
BODY="hello from files-v4 path=/ peer=$LAB_PROXY_EXT4"

setup_file() {
	lab_setup_file lab_sealed.bats "network namespaces, danted" "$RAWSYS" || return 1
	[[ -z $LAB_SKIP ]] || return 0
	"$LAB_ROOT/tests/sealed/build.sh" "$CLIENTS" >"$BATS_FILE_TMPDIR/build.log" 2>&1 ||
		lab_fail "building the sealed-mode clients failed:" "$(tail -n 20 "$BATS_FILE_TMPDIR/build.log")"
}

teardown_file() {
	lab_teardown_checked
}

setup() {
	lab_setup
}

teardown() {
	lab_teardown "$LAB_DNS_LOG" "$LAB_DIR/danted.out"
}

# sealed_sfy CMD...: CMD under socksify --sealed in the client namespace,
# as lab_sfy runs it unsealed.
sealed_sfy() {
	local conf=${LAB_CONF:-$LAB_HOME/client-v4.conf}
	if [[ -n $LAB_ASAN_RT ]]; then
		in_client env LD_PRELOAD="$LAB_ASAN_RT" "$LAB_SOCKSIFY" --sealed -c "$conf" -- "$@"
	else
		in_client "$LAB_SOCKSIFY" --sealed -c "$conf" -- "$@"
	fi
}

# The lines of output that are not socksify's own log lines.
program_output() {
	grep -v '^socksify' <<<"$output" || true
}

expect_body() {
	[[ $(program_output) == "$BODY" ]] ||
		lab_fail "expected exactly the page, seen by the server from the proxy:" "$output"
}

@test "Go net/http client: unsealed it is warned about and resolves locally; sealed it goes through the proxy by name" {
	run lab_sfy "$CLIENTS/goget" http://files.test/
	expect_status 2
	expect_match "is a Go program: the preload cannot see its connections"
	grep -q '^files.test ' "$LAB_DNS_LOG" || lab_fail "unsealed Go did not query the sentinel (the leak sealed mode prevents):" "$(cat "$LAB_DNS_LOG")"
	lab_reset_dns
	run sealed_sfy "$CLIENTS/goget" http://files.test/
	expect_status 0
	expect_body
	lab_assert_no_dns_leak
}

@test "static glibc client: proxied by name sealed, its own DNS answered by the supervisor" {
	run lab_sfy "$CLIENTS/static_get" files.test 80 /
	[[ $status -ne 0 ]] || lab_fail "the static client succeeded unsealed, so this lab lets traffic out:" "$output"
	lab_reset_dns
	run sealed_sfy "$CLIENTS/static_get" files.test 80 /
	expect_status 0
	expect_body
	lab_assert_no_dns_leak
}

@test "static client to an IPv4 literal: proxied sealed; direct unsealed is unreachable" {
	run lab_sfy "$CLIENTS/static_get" "$LAB_SERVER4" 80 /
	expect_status 2
	expect_match "ERR ENETUNREACH"
	run sealed_sfy "$CLIENTS/static_get" "$LAB_SERVER4" 80 /
	expect_status 0
	expect_body
}

@test "raw syscall(SYS_connect) client: proxied sealed" {
	run sealed_sfy "$RAWSYS" files.test 80 /
	expect_status 0
	expect_match "hello from files-v4 path=/ peer=$(re_quote "$LAB_PROXY_EXT4")"
	lab_assert_no_dns_leak
}

@test "io_uring: io_uring_setup fails with ENOSYS sealed; the client's fallback to connect() is proxied" {
	run sealed_sfy "$CLIENTS/uring_get" files.test 80 /
	expect_status 3
	expect_match "io_uring: Function not implemented"
	run sealed_sfy "$CLIENTS/uring_get" --fallback files.test 80 /
	expect_status 0
	expect_match "$(re_quote "$BODY")"
	lab_assert_no_dns_leak
}

@test "a program with its own seccomp filter: libc and raw connects are proxied sealed" {
	local v
	for v in "" -raw; do
		run sealed_sfy "$CLIENTS/own_seccomp" $v files.test 80 /
		expect_status 0
		expect_match "own filter active"
		expect_match "(^|"$'\n'")$(re_quote "$BODY")\$"
	done
	lab_assert_no_dns_leak
}

@test "curl, wget and python still work sealed (preloaded as usual)" {
	lab_skip_under_asan "curl hangs under the ASan runtime (see lab.bats)"
	run sealed_sfy curl -sS --max-time 10 http://files.test/
	expect_status 0
	expect_body
	run sealed_sfy wget -q -O - http://files.test/
	expect_status 0
	expect_body
	run sealed_sfy "$LAB_PY" -c 'import urllib.request; print(urllib.request.urlopen("http://files.test/", timeout=10).read().decode(), end="")'
	expect_status 0
	expect_body
	lab_assert_no_dns_leak
}

@test "ssh by name works sealed" {
	run sealed_sfy ssh -F /dev/null -i "$LAB_SSH_KEY" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o BatchMode=yes -o ConnectTimeout=15 -o LogLevel=ERROR root@files.test 'echo ssh-ok $SSH_CONNECTION'
	expect_status 0
	expect_match "^ssh-ok $(re_quote "$LAB_PROXY_EXT4") [0-9]+ $(re_quote "$LAB_SERVER4") 22\$"
	lab_assert_no_dns_leak
}

@test "fork, exec and threads: a shell runs Go, static and raw clients at once, all proxied" {
	run sealed_sfy sh -c '
		"$1/goget" http://files.test/ >"$4/go.out" 2>&1 &
		"$1/static_get" files.test 80 / >"$4/static.out" 2>&1 &
		("$2" files.test 80 / >"$4/raw.out" 2>&1; echo "raw=$?" >>"$4/raw.out") &
		"$1/goget" -n 5 http://files.test/ >"$4/go5.out" 2>&1; echo "go5=$?" >>"$4/go5.out"
		wait; echo done' sh "$CLIENTS" "$RAWSYS" x "$BATS_TEST_TMPDIR"
	expect_status 0
	expect_match "^done$"
	[[ $(<"$BATS_TEST_TMPDIR/go.out") == "$BODY" ]] || lab_fail "go:" "$(cat "$BATS_TEST_TMPDIR/go.out")"
	[[ $(<"$BATS_TEST_TMPDIR/static.out") == "$BODY" ]] || lab_fail "static:" "$(cat "$BATS_TEST_TMPDIR/static.out")"
	grep -q "raw=0" "$BATS_TEST_TMPDIR/raw.out" || lab_fail "raw:" "$(cat "$BATS_TEST_TMPDIR/raw.out")"
	# goget -n 5: five connections, the last one's page printed.
	[[ $(<"$BATS_TEST_TMPDIR/go5.out") == "$BODY"$'\n'"go5=0" ]] || lab_fail "go -n 5:" "$(cat "$BATS_TEST_TMPDIR/go5.out")"
	lab_assert_no_dns_leak
}

@test "the supervisor killed mid-run: the program's next connect fails (ENOSYS), never direct" {
	# The program is the supervisor's child: $PPID in the shell.
	run sealed_sfy sh -c '
		"$1/static_get" files.test 80 / || exit 9
		kill -9 "$PPID"; sleep 0.3
		"$1/static_get" "$2" 80 /after-kill; echo "after=$?"' sh "$CLIENTS" "$LAB_SERVER4"
	expect_status 0
	expect_match "$(re_quote "$BODY")"
	expect_match "ERR ENOSYS"
	expect_match "after=2\$"
	! grep -q after-kill "$LAB_DIR/http-files-v4.log" ||
		lab_fail "the server saw the request made after the supervisor died"
	lab_assert_no_dns_leak
}
