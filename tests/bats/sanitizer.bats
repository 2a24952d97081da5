#!/usr/bin/env bats
# The ASan+UBSan build of the library under LeakSanitizer: the resolver
# hooks must neither leak nor touch memory they do not own, also when the
# fake pool recycles (a pool of 64 names, 3000 distinct names).

load helpers

setup_file() {
	common_setup_file
	start_sentinel
}

@test "resolver hooks under ASan+LSan: no leaks, no errors, across pool recycling" {
	local asan
	asan=$(cc -print-file-name=libasan.so)
	[[ -f $asan ]] || fail "libasan not found"
	write_conf "$CONF" "fake_pool_size = 64"
	run run_isolated env SOCKSIFY_CONF="$CONF" \
		ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:log_path=$BATS_TEST_TMPDIR/asan" \
		UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$BATS_TEST_TMPDIR/asan" \
		LD_PRELOAD="$asan $BUILD/asan/libsocksify.so" \
		"$TESTBIN/churn" 3000
	if compgen -G "$BATS_TEST_TMPDIR/asan*" >/dev/null; then
		fail "sanitizer report:" "$(cat "$BATS_TEST_TMPDIR"/asan*)"
	fi
	expect_status 0
	expect_contains "ok 3000 lookups"
	assert_no_dns_leak
}
