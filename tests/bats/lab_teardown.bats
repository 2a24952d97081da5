#!/usr/bin/env bats
# The firewall lab (tests/lab/lab.bash) must leave nothing behind: no
# sfylab-* namespaces, no /etc/netns/sfylab-* directories, no veths, no
# processes, whether its tests pass, fail, time out, its setup fails half
# way, or the whole run is killed.  Each test here writes a small bats file
# that brings a lab up the way lab.bats does (lab_up in setup_file,
# lab_teardown_checked in teardown_file), runs it with bats, breaks it on
# purpose, and then looks for what is left.  While the inner lab is up, it
# records its namespaces and every process in them (pid and start time) in
# $STATE, so the check afterwards does not depend on the lab's own
# bookkeeping.
#
# Needs root, like lab.bats.  Runs from the host namespace (bats
# tests/bats/lab_teardown.bats) or inside tests/bats/run's.

# shellcheck source=tests/lab/lab.bash
source "$BATS_TEST_DIRNAME/../lab/lab.bash"

setup_file() {
	export LAB_SKIP=
	if [[ $(id -u) != 0 ]]; then
		LAB_SKIP="lab_teardown.bats needs root (network namespaces, danted, sshd)"
		echo "# SKIPPING the lab teardown tests: $LAB_SKIP" >&3
		return 0
	fi
	# What is checked here is lab.bash's own clean-up, not the library:
	# the ASan pass would only repeat the release pass's run.
	if [[ -n $LAB_ASAN_RT ]]; then
		LAB_SKIP="the lab's clean-up does not depend on the library: the release pass runs it"
		return 0
	fi
	local missing
	missing=$(lab_missing_packages)
	[[ -z $missing ]] || lab_fail "missing Debian packages: $missing" || return 1
	lab_require_build
}

setup() {
	[[ -z $LAB_SKIP ]] || skip "$LAB_SKIP"
	export STATE=$BATS_TEST_TMPDIR/state
	mkdir -p "$STATE"
	INNER=$BATS_TEST_TMPDIR/inner.bats
	export LAB_BASH=$LAB_HOME/lab.bash
}

teardown() {
	[[ -z $LAB_SKIP ]] || return 0
	# Whatever a failed check left: remove it, so one failure stays one.
	if [[ -f $STATE/lab.env ]]; then
		(
			# shellcheck disable=SC1091 # written by the inner run
			source "$STATE/lab.env"
			lab_names "$LAB_ID"
			lab_down
		)
	fi
}

# inner_file <<'INNER' BODY INNER: $INNER, a bats file whose setup_file brings a lab up
# (named after the inner bats process, in $STATE/lab) and whose
# teardown_file is lab.bats's, followed by BODY (its tests).  In it,
# record_lab writes $STATE/lab.env (LAB_ID, LAB_DIR), $STATE/pids (every
# process in the lab's namespaces: "PID STARTTIME") and $STATE/leftovers
# (what lab_leftovers says while the lab is up).
inner_file() {
	cat >"$INNER" <<'EOF'
#!/usr/bin/env bats
source "$LAB_BASH"

record_lab() {
	local ns pid
	printf 'LAB_ID=%s\nLAB_DIR=%s\n' "$LAB_ID" "$LAB_DIR" >"$STATE/lab.env"
	for ns in "$LAB_C" "$LAB_P" "$LAB_S"; do
		for pid in $(ip netns pids "$ns"); do
			echo "$pid $(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f20)"
		done
	done >"$STATE/pids"
	lab_leftovers >"$STATE/leftovers"
}

ns_has() { # NS COMM: a process named COMM runs in namespace NS
	local pid
	for pid in $(ip netns pids "$1"); do
		[[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]] && return 0
	done
	return 1
}

setup_file() {
	lab_up "$$" "$STATE/lab"
}

teardown_file() {
	lab_teardown_checked
}

EOF
	# "%test" in BODY: a literal "@test" at the start of a line here would
	# be taken for one of this file's tests by bats' preprocessor.
	sed 's/^%test /@test /' >>"$INNER"
}

# expect_gone: nothing of the lab in $STATE/lab.env exists any more.
expect_gone() {
	[[ -s $STATE/lab.env && -s $STATE/pids ]] ||
		lab_fail "the inner run recorded no lab; its output:" "$output" || return 1
	local id dir
	id=$(sed -n 's/^LAB_ID=//p' "$STATE/lab.env")
	dir=$(sed -n 's/^LAB_DIR=//p' "$STATE/lab.env")
	local left=() ns pid start now
	# Namespaces (named, and in "ip netns" terms) and their /etc/netns.
	for ns in "sfylab-$id-client" "sfylab-$id-proxy" "sfylab-$id-server"; do
		[[ ! -e /run/netns/$ns ]] || left+=("namespace /run/netns/$ns")
		[[ ! -e /etc/netns/$ns ]] || left+=("directory /etc/netns/$ns")
	done
	# (stderr: "ip netns list" complains about entries it cannot open, e.g.
	# of labs run in other mount namespaces)
	ns=$(ip netns list 2>/dev/null | grep "^sfylab-$id-" || true)
	[[ -z $ns ]] || left+=("ip netns list: $ns")
	# The veths were made inside the namespaces; none may have landed here.
	ns=$(ip -o link show | grep -E ' to-(proxy|client|server)[@:]' || true)
	[[ -z $ns ]] || left+=("veth here: $ns")
	# Every process that was in the lab: dead (or a zombie waiting for its
	# parent), not merely a pid reused by something else.
	while read -r pid start; do
		[[ -r /proc/$pid/stat ]] || continue
		now=$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f1,20) || continue
		if [[ $now == *" $start" && $now != Z* ]]; then
			left+=("process $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline")")
		fi
	done <"$STATE/pids"
	# And lab.bash's own check, by namespace inode and command line.
	local check
	check=$(
		lab_names "$id"
		LAB_DIR=$dir lab_leftovers
	)
	[[ -z $check ]] || left+=("lab_leftovers: $check")
	((${#left[@]} == 0)) || lab_fail "the lab left behind:" "${left[@]}"
}

expect_recorded() { # at least the lab's servers were seen in it
	local n
	n=$(wc -l <"$STATE/pids")
	((n >= 10)) || lab_fail "only $n processes recorded in the lab:" "$(cat "$STATE/pids")"
}

@test "a failing test, a stray process in the lab and a timed-out test: teardown_file removes everything" {
	inner_file <<'INNER'
%test "start strays, then fail" {
	# Untracked: a plain process in the client namespace, a process in the
	# server namespace, and a socksified ncat holding a connection open
	# through danted.  Only the namespaces know about them.
	setsid ip netns exec "$LAB_C" sleep 300 </dev/null >/dev/null 2>&1 3>&- &
	setsid ip netns exec "$LAB_S" sleep 300 </dev/null >/dev/null 2>&1 3>&- &
	setsid ip netns exec "$LAB_C" sh -c 'sleep 300 | "$0" -c "$1" -- ncat files.test 7' \
		"$LAB_SOCKSIFY" "$LAB_HOME/client-v4.conf" </dev/null >/dev/null 2>&1 3>&- &
	local i
	for ((i = 0; i < 200; i++)); do
		ns_has "$LAB_C" sleep && ns_has "$LAB_S" sleep && ns_has "$LAB_C" ncat &&
			[[ -s $LAB_DIR/echo.log ]] && break # ncat is connected
		sleep 0.05
	done
	record_lab
	false
}

%test "hang until BATS_TEST_TIMEOUT" {
	sleep 60
}

# Only this test gets a short timeout (bats reads it as the test starts,
# after loading this file), so a slow machine cannot time out the first.
[[ $BATS_TEST_NAME != test_hang* ]] || BATS_TEST_TIMEOUT=3
INNER
	run bats --tap "$INNER"
	[[ $status -eq 1 ]] || lab_fail "the inner run exited $status:" "$output"
	[[ $output == *"not ok 1 start strays, then fail"* ]] || lab_fail "test 1 did not fail:" "$output"
	[[ $output == *"not ok 2 hang until BATS_TEST_TIMEOUT # timeout after 3s"* ]] ||
		lab_fail "test 2 did not time out:" "$output"
	[[ $output != *"left behind"* ]] || lab_fail "teardown_file found leftovers:" "$output"
	expect_recorded
	# While the lab was up, lab_leftovers saw all of it, the strays too
	# (so its silence at the end means something).
	local id
	id=$(sed -n 's/^LAB_ID=//p' "$STATE/lab.env")
	for want in "namespace sfylab-$id-client" "namespace sfylab-$id-server" \
		"/etc/netns/sfylab-$id-proxy" \
		"in namespace sfylab-$id-client: sleep 300" "in namespace sfylab-$id-server: sleep 300" \
		"in namespace sfylab-$id-client: ncat files.test" "in namespace sfylab-$id-proxy: danted"; do
		grep -qF "$want" "$STATE/leftovers" ||
			lab_fail "lab_leftovers on a live lab did not report '$want':" "$(cat "$STATE/leftovers")"
	done
	expect_gone
}

@test "setup_file fails half way (sshd does not start): lab_up removes what it made" {
	inner_file <<'INNER'
# Everything before sshd is up (sentinel, danted, HTTP, git, echo); then
# sshd "fails".
lab_start_sshd() {
	record_lab
	lab_fail "sshd deliberately not started"
}

%test "never runs" {
	true
}
INNER
	run bats --tap "$INNER"
	[[ $status -ne 0 ]] || lab_fail "the inner run passed:" "$output"
	[[ $output == *"sshd deliberately not started"* && $output == *"could not bring the lab up"* ]] ||
		lab_fail "the inner setup_file did not fail as planned:" "$output"
	[[ $output != *"left behind"* ]] || lab_fail "teardown_file found leftovers:" "$output"
	expect_recorded
	expect_gone
}

@test "a run killed with SIGKILL leaves stale namespaces; the next run's cleanup removes them and their processes" {
	inner_file <<'INNER'
%test "record, then wait to be killed" {
	record_lab
	echo "$(ps -o pgid= -p $$)" >"$STATE/pgid"
	sleep 60
}
INNER
	setsid bats --tap "$INNER" >"$STATE/out" 2>&1 </dev/null 3>&- &
	local bats_pid=$! i pgid
	for ((i = 0; i < 400; i++)); do
		[[ -s $STATE/pgid ]] && break
		kill -0 "$bats_pid" 2>/dev/null || break
		sleep 0.05
	done
	[[ -s $STATE/pgid ]] || lab_fail "the inner run never got going:" "$(cat "$STATE/out")" || return 1
	pgid=$(tr -d ' ' <"$STATE/pgid")
	kill -KILL -- "-$pgid"
	wait "$bats_pid" || true
	expect_recorded
	# No teardown ran: the namespaces are still there, with the servers.
	local id
	id=$(sed -n 's/^LAB_ID=//p' "$STATE/lab.env")
	[[ -e /run/netns/sfylab-$id-proxy ]] || lab_fail "the killed run's namespaces are already gone?"
	# Its owner (the inner bats-exec-file) is dead, so they are stale.
	for ((i = 0; i < 40; i++)); do
		kill -0 "$id" 2>/dev/null || break
		sleep 0.05
	done
	run lab_cleanup_stale
	local ns
	for ns in client proxy server; do
		[[ $output == *"removing stale namespace sfylab-$id-$ns"* ]] ||
			lab_fail "lab_cleanup_stale did not remove sfylab-$id-$ns:" "$output"
	done
	expect_gone
}
