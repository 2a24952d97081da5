#!/bin/sh
# tests/fuzz/run.sh [--smoke] SECONDS NAME...: run each libFuzzer target
# build/fuzz/fuzz_NAME for SECONDS seconds over its seed corpus
# (tests/fuzz/corpus/NAME, read only) and a working corpus, where new
# inputs go; two targets at a time, reported in the order given.  Called by `make fuzz` and `make fuzz-smoke` (tests/fuzz/fuzz.mk).
#
#   (default)  the working corpus is $FUZZ_OUT/corpus/NAME, kept between
#              runs, so a long campaign builds on the ones before;
#   --smoke    the working corpus is a fresh empty directory, removed
#              afterwards: each run starts from the seed corpus only, so its
#              result never depends on what an earlier run found.
#
# FUZZ_OUT (default build/fuzz) holds the working corpora, the logs
# ($FUZZ_OUT/logs/NAME.log) and the crash artifacts ($FUZZ_OUT/artifacts/).
#
# Output, one line per target, then a total (the last line):
#   fuzz_NAME                1 passed, 0 failed  (123456 execs)
#   fuzz_NAME                0 passed, 1 failed  (crash: build/fuzz/artifacts/NAME-crash-...)
#   fuzz: N passed, N failed
# A target fails when libFuzzer exits non-zero (a crash, an invariant
# trap, a sanitizer report, a leak, a timeout); its log's tail is shown.
# Exit status 0 when every target passed.
set -u
cd "$(dirname "$0")/../.." || exit 1
smoke=
if [ "${1-}" = --smoke ]; then
	smoke=1
	shift
fi
secs=$1
shift
bins=build/fuzz
out=${FUZZ_OUT:-build/fuzz}
mkdir -p "$out/artifacts" "$out/logs" || exit 1
fresh=
if [ -n "$smoke" ]; then
	fresh=$(mktemp -d "${TMPDIR:-/tmp}/socksify-fuzz-smoke.XXXXXX") || exit 1
	trap 'rm -rf "$fresh"' EXIT
	trap 'exit 1' HUP INT TERM
fi
passed=0
failed=0
# One target's run; its exit status goes to $out/logs/NAME.rc.
run_one() {
	name=$1
	work=$out/corpus/$name
	[ -z "$fresh" ] || work=$fresh/$name
	mkdir -p "$work" "tests/fuzz/corpus/$name"
	"$bins/fuzz_$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$out/artifacts/$name-" \
		"$work" "tests/fuzz/corpus/$name" >"$out/logs/$name.log" 2>&1
	echo $? >"$out/logs/$name.rc"
}
# Its line (in the order given, whatever order they ran in).
report() {
	name=$1
	log=$out/logs/$name.log
	rc=$(cat "$out/logs/$name.rc" 2>/dev/null || echo 1)
	execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		printf '%-24s 1 passed, 0 failed  (%s execs)\n' "fuzz_$name" "${execs:-?}"
	else
		failed=$((failed + 1))
		crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
		printf '%-24s 0 passed, 1 failed  (crash: %s)\n' "fuzz_$name" "${crash:-see $log}"
		tail -n 40 "$log" | sed 's/^/    /'
	fi
}
# Two at a time (each target is one process on one CPU).
set -- "$@"
while [ $# -gt 0 ]; do
	first=$1
	shift
	rm -f "$out/logs/$first.rc"
	run_one "$first" &
	second=
	if [ $# -gt 0 ]; then
		second=$1
		shift
		rm -f "$out/logs/$second.rc"
		run_one "$second"
	fi
	wait
	report "$first"
	[ -z "$second" ] || report "$second"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
