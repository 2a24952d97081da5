#!/usr/bin/env bats
# The test runner itself (tests/run.sh, behind `make test`): a part that
# did not run in full must fail the run and be named, never read as a
# pass.  The bats fixtures are in tests/selftest/ (outside tests/bats/, so
# the suite never runs them itself); the unit-test fixtures are written
# here.  Each case runs one part of the runner (tests/run.sh --unit,
# --bats or --tap) with its logs in the test's own directory.

load helpers

RUNNER=$ROOT/tests/run.sh
FIXTURES=$ROOT/tests/selftest

setup() {
	common_setup
	# The runner's checks do not involve the library: the release pass
	# runs them, the ASan pass would only run the same thing again.
	[[ -z $ASAN_RT ]] || skip "the runner's own tests do not load the library"
	export SOCKSIFY_TEST_LOGS=$BATS_TEST_TMPDIR/logs
	# bats puts its libexec directory first on PATH, and the bats found
	# there needs a function that bats exports to it, which sh (the runner,
	# tests/bats/run) does not pass on: find the bats on the usual PATH.
	PATH=$(tr ':' '\n' <<<"$PATH" | grep -v '/libexec/bats-core/*$' | paste -sd:)
}

# expect_total LINE: the runner's last line.
expect_total() {
	[[ ${lines[${#lines[@]} - 1]} == "$1" ]] ||
		fail "expected the total '$1'; output:" "$output"
}

# tap FILE LINES...: a saved bats output, one line per argument.
tap() {
	local file=$1
	shift
	printf '%s\n' "$@" >"$file"
}

# unit_fixture NAME BODY: an executable shell script standing in for a
# cmocka binary.
unit_fixture() {
	printf '#!/bin/sh\n%s\n' "$2" >"$BATS_TEST_TMPDIR/$1"
	chmod +x "$BATS_TEST_TMPDIR/$1"
}

# ------------------------------------------------------------------ bats
@test "a bats file killed midway (every line it printed says ok) fails the run, naming the file" {
	local file=$FIXTURES/killed.bats
	run "$RUNNER" --bats "$file"
	expect_status 1 || return 1
	# The fixture did what it is for: bats printed no "not ok" line and
	# exited 1, and test 3 never ran.
	local saved=$SOCKSIFY_TEST_LOGS/bats-release-killed.tap
	[[ -s $saved ]] || fail "no saved TAP in $SOCKSIFY_TEST_LOGS" || return 1
	! grep -q '^not ok' "$saved" || fail "the fixture printed 'not ok':" "$(cat "$saved")" || return 1
	grep -q '^ok 2 ' "$saved" || fail "the fixture did not get to test 2:" "$(cat "$saved")" || return 1
	! grep -q '^ok 3 ' "$saved" || fail "the fixture was not killed:" "$(cat "$saved")" || return 1
	expect_contains "FAILED: $file (release): reported 2 of the 3 tests in its plan; bats warned: Executed 2 instead of expected 3 tests" || return 1
	expect_total "2 passed, 1 failed, 0 skipped"
}

@test "a bats file that runs in full is counted exactly: skips as skipped, exit 0" {
	run "$RUNNER" --bats "$FIXTURES/clean.bats"
	expect_status 0 || return 1
	expect_not_contains "FAILED:" || return 1
	expect_total "1 passed, 0 failed, 1 skipped"
}

@test "a failing test fails the run" {
	run "$RUNNER" --bats "$FIXTURES/failing.bats"
	expect_status 1 || return 1
	expect_total "1 passed, 1 failed, 0 skipped"
}

@test "bats' exit status counts even when every test it printed is ok" {
	tap "$BATS_TEST_TMPDIR/out.tap" "1..2" "ok 1 a" "ok 2 b"
	run "$RUNNER" --tap x.bats "$BATS_TEST_TMPDIR/out.tap" 1
	expect_status 1 || return 1
	expect_contains "FAILED: x.bats: bats exited 1 with no failing test" || return 1
	expect_total "2 passed, 1 failed, 0 skipped" || return 1
	# The same output with exit status 0 passes: the status made the difference.
	run "$RUNNER" --tap x.bats "$BATS_TEST_TMPDIR/out.tap" 0
	expect_status 0 || return 1
	expect_total "2 passed, 0 failed, 0 skipped"
}

@test "fewer or more tests than the plan, or no plan at all, fail the run" {
	tap "$BATS_TEST_TMPDIR/short.tap" "1..3" "ok 1 a" "ok 2 b"
	run "$RUNNER" --tap short.bats "$BATS_TEST_TMPDIR/short.tap" 0
	expect_status 1 || return 1
	expect_contains "FAILED: short.bats: reported 2 of the 3 tests in its plan" || return 1
	tap "$BATS_TEST_TMPDIR/long.tap" "1..1" "ok 1 a" "ok 2 b"
	run "$RUNNER" --tap long.bats "$BATS_TEST_TMPDIR/long.tap" 0
	expect_status 1 || return 1
	expect_contains "FAILED: long.bats: reported 2 of the 1 tests in its plan" || return 1
	tap "$BATS_TEST_TMPDIR/none.tap" "ok 1 a"
	run "$RUNNER" --tap none.bats "$BATS_TEST_TMPDIR/none.tap" 0
	expect_status 1 || return 1
	expect_contains "FAILED: none.bats: no TAP plan (1..N)"
}

@test "bats' warning 'Executed X instead of expected Y tests' fails the run" {
	tap "$BATS_TEST_TMPDIR/warn.tap" "1..1" "ok 1 a" "# bats warning: Executed 1 instead of expected 2 tests"
	run "$RUNNER" --tap warn.bats "$BATS_TEST_TMPDIR/warn.tap" 0
	expect_status 1 || return 1
	expect_contains "FAILED: warn.bats: bats warned: Executed 1 instead of expected 2 tests"
}

# ------------------------------------------------------------ unit tests
@test "no unit-test binaries at all fail the run" {
	run "$RUNNER" --unit
	expect_status 1 || return 1
	expect_contains "FAILED: unit tests: no test binaries" || return 1
	expect_total "0 passed, 1 failed, 0 skipped"
}

@test "a missing unit-test binary fails the run, named" {
	run "$RUNNER" --unit "$BATS_TEST_TMPDIR/test_gone"
	expect_status 1 || return 1
	expect_contains "FAILED: test_gone: $BATS_TEST_TMPDIR/test_gone is missing"
}

@test "a unit-test binary that prints no count fails the run, even with exit status 0" {
	unit_fixture test_silent 'echo "all fine, honestly"'
	run "$RUNNER" --unit "$BATS_TEST_TMPDIR/test_silent"
	expect_status 1 || return 1
	expect_contains "FAILED: test_silent: printed no count (exit status 0)"
}

@test "a unit-test binary whose counts do not add up, or that exits non-zero with no failure, fails the run" {
	unit_fixture test_short 'printf "[==========] 3 test(s) run.\n[  PASSED  ] 2 test(s).\n"'
	run "$RUNNER" --unit "$BATS_TEST_TMPDIR/test_short"
	expect_status 1 || return 1
	expect_contains "FAILED: test_short: counted 2 passed and 0 failed of the 3 it ran" || return 1
	unit_fixture test_crash 'printf "[==========] 2 test(s) run.\n[  PASSED  ] 2 test(s).\n"; exit 1'
	run "$RUNNER" --unit "$BATS_TEST_TMPDIR/test_crash"
	expect_status 1 || return 1
	expect_contains "FAILED: test_crash: exited 1 with no failing test"
}

@test "CMOCKA_MESSAGE_OUTPUT=TAP in the caller's environment does not turn the counts into 0" {
	local bin=$BUILD/tests/test_rules want
	[[ -x $bin ]] || fail "missing $bin (run make test)" || return 1
	want=$(CMOCKA_MESSAGE_OUTPUT=STDOUT "$bin" 2>&1 | sed -n 's/^\[==========\] \([0-9]*\) test(s) run\.$/\1/p')
	((want > 0)) || fail "test_rules ran no tests?" || return 1
	CMOCKA_MESSAGE_OUTPUT=TAP run "$RUNNER" --unit "$bin"
	expect_status 0 || return 1
	expect_match "test_rules +$want passed, 0 failed" || return 1
	expect_total "$want passed, 0 failed, 0 skipped"
}
