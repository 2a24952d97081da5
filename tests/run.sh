#!/bin/sh
# The whole test run behind `make test`: C unit tests (cmocka, built with
# ASan+UBSan), a libFuzzer smoke run, shell lint, then the bats integration
# suite twice (the release library and the ASan+UBSan build, side by side),
# each .bats file on its own in private namespaces.  Ends with one line:
# "N passed, N failed, N skipped"; the exit status is 0 only if none failed.
#
# A part that did not run in full counts as one failure, named on a
# "FAILED:" line (repeated just before the total):
#   - a unit-test source (tests/unit/test_*.c) without its binary, a binary
#     that prints no count, or whose counts do not add up to the tests it
#     says it ran (it runs with CMOCKA_MESSAGE_OUTPUT=STDOUT, whatever the
#     caller set, so the counts are always in the form read here);
#   - a bats file that exits non-zero without a failing test, prints no
#     plan ("1..N"), reports a different number of tests than its plan, or
#     makes bats warn "Executed X instead of expected Y tests".
#
# The parts, one at a time (tests/bats/runner.bats tests the runner so):
#   tests/run.sh --unit BIN...       count these unit-test binaries
#   tests/run.sh --bats FILE...      these bats files (each on its own; the
#                                    ASan build if SOCKSIFY_TEST_ASAN=1)
#   tests/run.sh --tap NAME TAP RC   count saved bats output (TAP, with
#                                    bats' stderr) whose exit status was RC
# Logs: $SOCKSIFY_TEST_LOGS (default build/test-logs).
set -u
cd "$(dirname "$0")/.." || exit 1
passed=0
failed=0
skipped=0
problems=
log=${SOCKSIFY_TEST_LOGS:-build/test-logs}
mkdir -p "$log" || exit 1

count() { # PASSED FAILED [SKIPPED]
	passed=$((passed + $1))
	failed=$((failed + $2))
	skipped=$((skipped + ${3:-0}))
}

# problem TEXT: a part that did not run in full; one failure.
problem() {
	echo "FAILED: $*"
	problems="$problems
FAILED: $*"
	count 0 1
}

finish() {
	if [ -n "$problems" ]; then
		echo "== parts that did not run in full"
		printf '%s\n' "$problems" | sed 1d
	fi
	echo "$passed passed, $failed failed, $skipped skipped"
	[ "$failed" -eq 0 ]
	exit
}

# unit_tests BIN...: each cmocka binary, counted from its own summary lines
# ("[==========] N test(s) run.", "[  PASSED  ] N test(s).",
# "[  FAILED  ] N test(s), listed below:"), summed over its groups.
unit_tests() {
	[ "$#" -gt 0 ] || problem "unit tests: no test binaries"
	for t in "$@"; do
		name=$(basename "$t")
		if [ ! -f "$t" ] || [ ! -x "$t" ]; then
			problem "$name: $t is missing (not built?)"
			continue
		fi
		CMOCKA_MESSAGE_OUTPUT=STDOUT "$t" >"$log/$name.log" 2>&1
		rc=$?
		sums=$(awk '
			/^\[==========\] [0-9]+ test\(s\) run\./ { r += $2; seen = 1 }
			/^\[  PASSED  \] [0-9]+ test\(s\)\./ { p += $4 }
			/^\[  FAILED  \] [0-9]+ test\(s\), listed below:/ { f += $4 }
			END { print (seen ? r : "-"), p + 0, f + 0 }' "$log/$name.log")
		run=${sums%% *}
		rest=${sums#* }
		p=${rest%% *}
		f=${rest#* }
		why=
		if [ "$run" = - ]; then
			why="printed no count (exit status $rc)"
		elif [ "$run" -ne $((p + f)) ]; then
			why="counted $p passed and $f failed of the $run it ran"
		fi
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && [ -z "$why" ]; then
			why="exited $rc with no failing test (crash or sanitizer report?)"
		fi
		printf '%-24s %s passed, %s failed\n' "$name" "$p" "$f"
		if [ -n "$why" ] || [ "$f" -ne 0 ]; then
			sed 's/^/    /' "$log/$name.log" | tail -n 40
		fi
		count "$p" "$f"
		[ -z "$why" ] || problem "$name: $why"
	done
}

# count_tap NAME TAP RC: one bats file's output (TAP plus bats' stderr)
# and exit status.  "ok ... # skip" counts as skipped, not passed.
count_tap() {
	name=$1 tap=$2 rc=$3
	plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' "$tap" | head -n 1)
	p=$(grep -c '^ok ' "$tap")
	f=$(grep -c '^not ok ' "$tap")
	s=$(grep -c '^ok .* # skip' "$tap")
	why=
	if [ -z "$plan" ]; then
		why="no TAP plan (1..N)"
	elif [ $((p + f)) -ne "$plan" ]; then
		why="reported $((p + f)) of the $plan tests in its plan"
	fi
	warn=$(grep -o 'Executed [0-9]* instead of expected [0-9]* tests' "$tap" | head -n 1)
	[ -z "$warn" ] || why="${why:+$why; }bats warned: $warn"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && [ -z "$why" ]; then
		why="bats exited $rc with no failing test"
	fi
	printf '%s: %s passed, %s failed, %s skipped\n' "$name" $((p - s)) "$f" "$s"
	count $((p - s)) "$f" "$s"
	[ -z "$why" ] || problem "$name: $why"
}

# bats_run LABEL FILE [ENV=VALUE...]: one .bats file in private network
# and mount namespaces of its own (tests/bats/run); its TAP (with bats'
# stderr) and exit status saved for bats_report.
bats_run() {
	label=$1 file=$2
	shift 2
	out=$log/bats-$label-$(basename "$file" .bats).tap
	env "$@" tests/bats/run --tap "$file" >"$out" 2>&1
	echo $? >"$out.rc"
}

# bats_report LABEL FILE: print and count what bats_run saved.
bats_report() {
	label=$1 file=$2
	out=$log/bats-$label-$(basename "$file" .bats).tap
	echo "-- $file ($label)"
	cat "$out" 2>/dev/null
	rc=$(cat "$out.rc" 2>/dev/null) || rc=1
	count_tap "$file ($label)" "$out" "${rc:-1}"
}

bats_file() {
	bats_run "$@"
	bats_report "$1" "$2"
}

# bats_pass_run LABEL ORDER [ENV=VALUE...]: every file of the suite, saved,
# in ORDER, forward or reverse
# (the two passes run side by side in opposite orders, so that a file
# never meets its own twin, as the heaviest would: the stress and hostile
# files, a hundred handshakes at once in the event-loop file).
bats_pass_run() {
	label=$1
	order=$2
	shift 2
	sort_flag=
	[ "$order" = reverse ] && sort_flag=-r
	for file in $(printf '%s\n' tests/bats/*.bats | sort $sort_flag); do
		[ -f "$file" ] && bats_run "$label" "$file" "$@"
	done
}

# bats_pass_report LABEL: every file's result, in order, counted.
bats_pass_report() {
	label=$1
	echo "== integration tests, $label (bats, private network namespaces)"
	n=0
	for file in tests/bats/*.bats; do
		[ -f "$file" ] || continue
		n=$((n + 1))
		bats_report "$label" "$file"
	done
	[ "$n" -gt 0 ] || problem "bats ($label): no .bats files in tests/bats"
}

case ${1-} in
--unit)
	shift
	echo "== unit tests (cmocka, ASan+UBSan)"
	unit_tests "$@"
	finish
	;;
--bats)
	shift
	label=release
	[ "${SOCKSIFY_TEST_ASAN-}" != 1 ] || label=asan
	[ "$#" -gt 0 ] || problem "bats: no files given"
	for file in "$@"; do
		bats_file "$label" "$file"
	done
	finish
	;;
--tap)
	[ "$#" -eq 4 ] || { echo "usage: tests/run.sh --tap NAME TAP RC" >&2; exit 2; }
	count_tap "$2" "$3" "$4"
	finish
	;;
"") ;;
*)
	echo "usage: tests/run.sh [--unit BIN... | --bats FILE... | --tap NAME TAP RC]" >&2
	exit 2
	;;
esac

echo "== unit tests (cmocka, ASan+UBSan)"
# One binary per source: a source without its binary is a failure, not 0.
set --
for src in tests/unit/test_*.c; do
	[ -f "$src" ] || continue
	set -- "$@" "build/tests/$(basename "$src" .c)"
done
unit_tests "$@"

echo "== fuzz smoke (libFuzzer, a few seconds per target, from the seed corpus)"
make -s -j2 fuzz-smoke >"$log/fuzz.log" 2>&1 # 2 cores: two builds, two targets at a time
cat "$log/fuzz.log"
p=$(sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$log/fuzz.log")
f=$(sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$log/fuzz.log")
if [ -z "$p" ]; then
	problem "fuzz smoke: no count (the build failed?)"
else
	count "$p" "$f"
fi

echo "== shellcheck"
for s in scripts/socksify scripts/*.sh tests/run.sh tests/bats/run tests/bats/helpers.bash tests/lab/lab.bash tests/lab/shell tests/fuzz/run.sh bench/run.sh; do
	if shellcheck -x "$s" >"$log/shellcheck.log" 2>&1; then
		count 1 0
	else
		echo "shellcheck $s failed:"
		cat "$log/shellcheck.log"
		count 0 1
	fi
done

if [ "$(id -u)" != 0 ]; then
	problem "integration suite: needs root (namespaces, danted)"
else
	# The release pass, and again with the ASan+UBSan build preloaded
	# behind libasan (any sanitizer report fails the test that caused
	# it), side by side: the suites spend most of their time waiting for
	# servers and timeouts, each file runs in private namespaces, and the
	# lab's are named after their owner, so the passes do not meet.
	# Reported afterwards, file by file, in order.
	echo "== integration tests: the release and ASan passes run side by side"
	bats_pass_run release forward -u SOCKSIFY_TEST_ASAN &
	bats_pass_run asan reverse SOCKSIFY_TEST_ASAN=1
	wait
	bats_pass_report release
	bats_pass_report asan
fi
finish
