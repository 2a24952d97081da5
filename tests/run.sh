#!/bin/sh
# The whole test run behind `make test`: C unit tests (cmocka, built with
# ASan+UBSan), shell lint, then the bats integration suite in private
# namespaces.  Ends with one line: "N passed, N failed".
set -u
cd "$(dirname "$0")/.." || exit 1
passed=0
failed=0
skipped=0
log=build/test-logs
mkdir -p "$log"

count() { # $1 = passed, $2 = failed
	passed=$((passed + $1))
	failed=$((failed + $2))
}

echo "== unit tests (cmocka, ASan+UBSan)"
for t in build/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	"$t" >"$log/$name.log" 2>&1
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log/$name.log" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log/$name.log" | tail -n 1)
	p=${p:-0}
	f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi # crashed or sanitizer report
	printf '%-24s %s passed, %s failed\n' "$name" "$p" "$f"
	[ "$f" -eq 0 ] || sed 's/^/    /' "$log/$name.log" | tail -n 40
	count "$p" "$f"
done

echo "== fuzz smoke (libFuzzer, a few seconds per target)"
make -s fuzz-smoke >"$log/fuzz.log" 2>&1
cat "$log/fuzz.log"
p=$(sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$log/fuzz.log")
f=$(sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$log/fuzz.log")
if [ -z "$p" ]; then p=0 f=1; fi # the build failed
count "$p" "$f"

echo "== shellcheck"
for s in scripts/socksify scripts/*.sh tests/run.sh tests/bats/run tests/bats/helpers.bash tests/lab/lab.bash tests/lab/shell tests/fuzz/run.sh bench/run.sh; do
	if shellcheck -x "$s" >"$log/shellcheck.log" 2>&1; then
		count 1 0
	else
		echo "shellcheck $s failed:"; cat "$log/shellcheck.log"
		count 0 1
	fi
done

# bats_pass LABEL [ENV=VALUE...]: the whole suite once, counted from TAP.
bats_pass() {
	label=$1
	shift
	echo "== integration tests, $label (bats, private network namespace)"
	env "$@" tests/bats/run --tap tests/bats >"$log/bats-$label.tap" 2>&1
	cat "$log/bats-$label.tap"
	p=$(grep -c '^ok ' "$log/bats-$label.tap")
	f=$(grep -c '^not ok ' "$log/bats-$label.tap")
	s=$(grep -c '^ok .* # skip' "$log/bats-$label.tap")
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; fi # bats itself failed
	skipped=$((skipped + s))
	count $((p - s)) "$f"
}

if [ "$(id -u)" != 0 ]; then
	echo "SKIPPED: the integration suite needs root (namespaces, danted)" >&2
	count 0 1
else
	bats_pass release
	# Again with the ASan+UBSan build preloaded behind libasan: any
	# sanitizer report fails the test that caused it.
	bats_pass asan SOCKSIFY_TEST_ASAN=1
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
