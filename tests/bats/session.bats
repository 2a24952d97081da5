#!/usr/bin/env bats
# The session pool's life (shim/session.c): made at the first name, shared
# by every process of the session across exec, removed when the session's
# leader exits, reaped after a leader that was killed, and created/removed
# by `. socksify on` / `. socksify off`.  /dev/shm is a private tmpfs here,
# so nothing of the host's is touched and every object seen is ours; each
# test also checks that it leaves none behind.  The lab file
# lab_session.bats covers connections (exec, isolation, a killed lock
# holder, hostile objects).

load helpers

FAKE4='(24[0-9]|25[0-5])\.[0-9]+\.[0-9]+\.[0-9]+'

setup_file() {
	common_setup_file || return 1
	# tests/bats/run gave us a private mount namespace: hide the host's
	# /dev/shm behind a tmpfs of our own.
	mount -t tmpfs -o mode=1777 sfy-session-shm /dev/shm || fail "cannot mount a tmpfs on /dev/shm" || return 1
	start_sentinel
}

teardown_file() {
	common_teardown_file
	umount /dev/shm
}

setup() {
	common_setup
	proxy_conf "$CONF" "$(free_port)" # names need no proxy
	rm -f /dev/shm/socksify-*
}

teardown() {
	common_teardown
	rm -f /dev/shm/socksify-*
}

# objects: the session objects in /dev/shm, one per line.
objects() {
	find /dev/shm -maxdepth 1 -name 'socksify-*' -printf '%f\n' | sort
}

expect_no_objects() {
	local left
	left=$(objects)
	[[ -z $left ]] || fail "left in /dev/shm:" "$left"
}

@test "socksify CMD: the pool is made at the first name, shared across exec, and gone when CMD exits" {
	# dash ends with _exit(): the _exit hook removes the object.
	run sfy sh -c 'echo "id=$SOCKSIFY_SESSION"; echo "before=$(ls /dev/shm | grep -c socksify)"
		getent ahostsv4 one.test | head -1
		ls /dev/shm; exec sh -c "getent ahostsv4 one.test | head -1"'
	expect_status 0
	local id
	id=$(output_value id)
	[[ $id =~ ^[0-9]+-[0-9a-f]{16}$ ]] || fail "no session id:" "$output" || return 1
	# Nothing before the first name; then one object, named after the session.
	[[ $(output_value before) == 0 ]] || fail "object made before any name:" "$output" || return 1
	expect_contains "socksify-$(id -u)-$id"
	# The exec'd program got the same address: the same pool.
	local a b
	a=$(grep -E "^$FAKE4 " <<<"$output" | sed -n 1p | cut -d' ' -f1)
	b=$(grep -E "^$FAKE4 " <<<"$output" | sed -n 2p | cut -d' ' -f1)
	[[ -n $a && $a == "$b" ]] || fail "not the same fake address across exec:" "$output" || return 1
	expect_no_objects || return 1
	assert_no_dns_leak
}

@test "a program that never resolves makes no pool; bash (exit()) removes its session's object too" {
	run sfy bash -c 'true; ls /dev/shm | grep -c socksify; getent ahostsv4 two.test >/dev/null; ls /dev/shm | grep -c socksify; exit 0'
	expect_status 0
	[[ $output == $'0\n1' ]] || fail "expected no object, then one:" "$output" || return 1
	expect_no_objects || return 1
	assert_no_dns_leak
}

@test "_exit() in a clone(CLONE_VM|CLONE_SETTLS) child with a zeroed TLS block (Chromium's sandbox) exits cleanly" {
	# The ASan runtime's own _exit interceptor needs TLS: only the release
	# build can be asked this.
	[[ -z $ASAN_RT ]] || skip "the ASan runtime itself cannot run in a child without TLS"
	run sfy "$TESTBIN/clone_exit"
	expect_status 0
	expect_contains "child exited 0"
}

@test "a SIGKILLed leader leaves its object; the next session's pool creation removes it" {
	run sfy sh -c 'getent ahostsv4 three.test >/dev/null; echo "id=$SOCKSIFY_SESSION"; kill -9 $$'
	[[ $status -eq 137 ]] || fail "expected the leader killed (137), got $status:" "$output" || return 1
	local id
	id=$(output_value id)
	[[ -f /dev/shm/socksify-$(id -u)-$id ]] || fail "the killed leader's object is not there:" "$(objects)" || return 1
	# Another session: no name, no pool, nothing reaped (start-up stays free).
	run sfy true
	[[ -f /dev/shm/socksify-$(id -u)-$id ]] || fail "removed without a pool being made" || return 1
	# Another session's first name: the dead session's object goes.
	run sfy sh -c 'getent ahostsv4 four.test >/dev/null; ls /dev/shm'
	expect_status 0
	expect_not_contains "$id" || return 1
	expect_no_objects || return 1
	assert_no_dns_leak
}

@test "the leader's children make or join its pool; only the leader removes it" {
	run sfy sh -c 'sh -c "getent ahostsv4 five.test >/dev/null"; ls /dev/shm | grep -c socksify
		getent ahostsv4 five.test | head -1'
	expect_status 0
	expect_match $'^1\n' || return 1
	expect_no_objects
}

@test ". socksify on exports a session led by the shell; its commands share it; . socksify off removes it" {
	run run_isolated env SOCKSIFY_CONF="$CONF" SOCKSIFY_LIB="$LIB" bash -c '
		. "$1" on 2>/dev/null
		echo "id=$SOCKSIFY_SESSION"
		getent ahostsv4 six.test | head -1
		getent ahostsv4 six.test | head -1
		ls /dev/shm
		"$1" show | grep ^session
		. "$1" off 2>/dev/null
		echo "after=${SOCKSIFY_SESSION-unset}"
		ls /dev/shm | grep -c socksify || true' sh "$SOCKSIFY"
	expect_status 0
	local id
	id=$(output_value id)
	[[ $id =~ ^[0-9]+-[0-9a-f]{16}$ ]] || fail "no session id:" "$output" || return 1
	local addrs
	addrs=$(grep -E "^$FAKE4 " <<<"$output" | cut -d' ' -f1 | sort -u)
	[[ -n $addrs && $addrs != *$'\n'* ]] || fail "two commands of one shell got different addresses:" "$output" || return 1
	expect_contains "socksify-$(id -u)-$id" || return 1
	expect_contains "session: $id (pool /dev/shm/socksify-$(id -u)-$id)" || return 1
	expect_contains "after=unset" || return 1
	[[ ${output##*$'\n'} == 0 ]] || fail "off left the object:" "$output" || return 1
	expect_no_objects || return 1
	assert_no_dns_leak
}

@test "an invalid SOCKSIFY_SESSION is refused: names fail, fake addresses get EHOSTUNREACH, no object, no DNS" {
	run run_isolated env SOCKSIFY_SESSION='../../etc/x' SOCKSIFY_LOG_FILE="$SFY_LOG" \
		"$SOCKSIFY" -c "$CONF" -- "$TESTBIN/resolve" seven.test 80
	[[ $status -ne 0 ]] || fail "the name resolved:" "$output" || return 1
	grep -q "SOCKSIFY_SESSION=../../etc/x is not a session id" "$SFY_LOG" ||
		fail "no log line about the id:" "$(cat "$SFY_LOG")" || return 1
	run run_isolated env SOCKSIFY_SESSION='bad id' "$SOCKSIFY" -c "$CONF" -- "$TESTBIN/tcp_get" 240.0.0.1 80 /x
	expect_errno EHOSTUNREACH || return 1
	expect_no_objects || return 1
	assert_no_dns_leak
}

@test "a fake address in a process with no pool and no session object: EHOSTUNREACH, and no object is made for it" {
	run sfy "$TESTBIN/tcp_get" 240.0.0.1 80 /x
	expect_errno EHOSTUNREACH || return 1
	expect_no_objects || return 1
	assert_no_dns_leak
}
