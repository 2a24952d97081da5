#!/usr/bin/env bats
# Session pools in the firewall lab (tests/lab/lab.bash): a fake address
# made in one process works after an exec, two concurrent sessions do not
# see each other's names, a process killed while holding the pool's lock
# costs the session nothing but the name it was writing, and an object
# planted by someone else (another user's file, a link, a wrong mode,
# garbage) is refused: the connection fails closed, the log says why.
# Every test checks that the client's DNS sentinel saw nothing, and that
# the session objects it made are gone.
#
# Needs root.  Runs from the host namespace or inside tests/bats/run's.

# shellcheck source=tests/lab/lab.bash
source "$BATS_TEST_DIRNAME/../lab/lab.bash"

PEER4=$LAB_PROXY_EXT4
TESTBIN=$LAB_ROOT/build/tests
FAKE4='(24[0-9]|25[0-5])\.[0-9]+\.[0-9]+\.[0-9]+'

setup_file() {
	lab_setup_file lab_session.bats "network namespaces, danted" "$TESTBIN/pool_kill" "$TESTBIN/tcp_get"
}

teardown_file() {
	lab_teardown_checked
}

setup() {
	lab_setup
	SFY_LOG=$BATS_TEST_TMPDIR/socksify.log
	MADE=() # session objects this test made or planted
	ONE=
}

teardown() {
	[[ -z $LAB_SKIP ]] || return 0
	local f
	if [[ -n $ONE ]]; then
		touch "$BATS_TEST_TMPDIR/go"
		wait "$ONE" 2>/dev/null || true
	fi
	for f in "${MADE[@]}"; do
		rm -f -- "$f" "$f.real"
	done
	lab_no_sanitizer_report
}

expect_has() {
	[[ $output == *"$1"* ]] || lab_fail "expected output to contain '$1'; output:" "$output"
}

# value KEY: the KEY=VALUE line's value in $output.
value() {
	sed -n "s/^$1=//p" <<<"$output" | head -1
}

obj_path() {
	printf '/dev/shm/socksify-%s-%s\n' "$(id -u)" "$1"
}

expect_gone() {
	[[ ! -e $(obj_path "$1") ]] || lab_fail "session $1's object is still in /dev/shm"
}

# The client's script resolves files.test with getent (a process of its own)
# and prints the first IPv4 address.
GET_IP='getent ahostsv4 files.test | cut -d" " -f1 | head -1'

@test "a fake address passed across exec: getent resolves, tcp_get (exec'd later) connects through the proxy" {
	run lab_sfy sh -c "echo id=\$SOCKSIFY_SESSION; ip=\$($GET_IP); echo ip=\$ip; exec '$TESTBIN/tcp_get' \$ip 80 /across-exec"
	expect_status 0
	[[ $(value ip) =~ ^$FAKE4$ ]] || lab_fail "no fake address:" "$output" || return 1
	expect_has "hello from files-v4 path=/across-exec peer=$PEER4" || return 1
	expect_gone "$(value id)" || return 1
	lab_assert_no_dns_leak
}

@test "the issue's command: socksify sh -c 'ip=\$(getent ...); curl http://\$ip/'" {
	lab_skip_under_asan "curl hangs under a preloaded ASan runtime"
	run lab_sfy sh -c "ip=\$($GET_IP); curl -sS --max-time 20 http://\$ip/issue-12"
	expect_status 0
	expect_has "hello from files-v4 path=/issue-12 peer=$PEER4" || return 1
	lab_assert_no_dns_leak
}

@test "two concurrent sessions are isolated: session 1's address in session 2 gets EHOSTUNREACH" {
	local ready=$BATS_TEST_TMPDIR/one.out go=$BATS_TEST_TMPDIR/go
	# Session 1 resolves, then stays alive (its pool with it) until told.
	lab_sfy sh -c "echo id=\$SOCKSIFY_SESSION; echo ip=\$($GET_IP); while [ ! -e '$go' ]; do sleep 0.05; done" >"$ready" 2>&1 &
	ONE=$!
	local i
	for ((i = 0; i < 200; i++)); do grep -q '^ip=' "$ready" 2>/dev/null && break; sleep 0.05; done
	local id1 ip1
	id1=$(sed -n 's/^id=//p' "$ready") ip1=$(sed -n 's/^ip=//p' "$ready")
	MADE+=("$(obj_path "$id1")")
	[[ $ip1 =~ ^$FAKE4$ ]] || lab_fail "session 1 got no fake address:" "$(cat "$ready")" || return 1
	# Session 2, while session 1 lives: its own name works, 1's address does not.
	run lab_sfy sh -c "echo id=\$SOCKSIFY_SESSION; ip=\$($GET_IP); echo ip=\$ip
		'$TESTBIN/tcp_get' \$ip 80 /own; SOCKSIFY_LOG_FILE='$SFY_LOG' '$TESTBIN/tcp_get' $ip1 80 /foreign"
	touch "$go"
	wait "$ONE" || lab_fail "session 1 failed:" "$(cat "$ready")" || return 1
	MADE+=("$(obj_path "$(value id)")")
	[[ $(value id) != "$id1" ]] || lab_fail "one session id for both" || return 1
	[[ $(value ip) != "$ip1" ]] || lab_fail "both sessions gave files.test the address $ip1" || return 1
	expect_has "hello from files-v4 path=/own peer=$PEER4" || return 1
	[[ $output =~ error:\ connect:\ EHOSTUNREACH ]] || lab_fail "session 1's address was not refused:" "$output" || return 1
	grep -q 'fake address no longer mapped to a name' "$SFY_LOG" || lab_fail "no log line:" "$(cat "$SFY_LOG")" || return 1
	! grep -q /foreign "$LAB_DIR/http-files-v4.log" || lab_fail "the foreign address reached the server" || return 1
	expect_gone "$id1" || return 1
	expect_gone "$(value id)" || return 1
	lab_assert_no_dns_leak
}

@test "a session pool survives a process killed while holding its lock" {
	run lab_sfy sh -c "ip=\$($GET_IP); echo ip=\$ip
		'$TESTBIN/pool_kill' victim.test; echo killed=\$?
		echo again=\$($GET_IP)
		'$TESTBIN/tcp_get' \$ip 80 /after-kill
		'$TESTBIN/tcp_get' files.test 80 /by-name"
	expect_status 0
	[[ $(value killed) == 137 ]] || lab_fail "pool_kill was not killed holding the lock:" "$output" || return 1
	[[ $(value ip) =~ ^$FAKE4$ && $(value again) == "$(value ip)" ]] ||
		lab_fail "files.test lost its address:" "$output" || return 1
	expect_has "hello from files-v4 path=/after-kill peer=$PEER4" || return 1
	expect_has "hello from files-v4 path=/by-name peer=$PEER4" || return 1
	lab_assert_no_dns_leak
}

# hostile HOW: plant an object for a session of our own naming, spoiled by
# HOW, and run a client of that session: names and fake addresses must
# fail closed, with one log line naming the path and the reason.
hostile() {
	local how=$1 reason=$2 sid="$$-hostile-$1" path
	path=$(obj_path "$sid")
	MADE+=("$path")
	case $how in
	owner) head -c 8192 /dev/zero >"$path"; chmod 0600 "$path"; chown nobody "$path" ;;
	symlink) head -c 8192 /dev/zero >"$path.real"; chmod 0600 "$path.real"; ln -s "$path.real" "$path" ;;
	mode) head -c 8192 /dev/zero >"$path"; chmod 0644 "$path" ;;
	garbage)
		# The right size (a real pool's), full of junk.
		lab_sfy sh -c "SOCKSIFY_SESSION=$$-probe-$how; export SOCKSIFY_SESSION; getent ahostsv4 a.test >/dev/null
			stat -c %s $(obj_path "$$-probe-$how")" >"$BATS_TEST_TMPDIR/size" || return 1
		rm -f "$(obj_path "$$-probe-$how")"
		head -c "$(cat "$BATS_TEST_TMPDIR/size")" /dev/urandom >"$path"
		chmod 0600 "$path" ;;
	esac
	local before
	before=$(stat -c '%U %a %s %Y' "$path" "$path.real" 2>/dev/null || true)
	SOCKSIFY_SESSION=$sid SOCKSIFY_LOG_FILE=$SFY_LOG run lab_sfy sh -c "getent ahostsv4 files.test; echo getent=\$?
		'$TESTBIN/tcp_get' 240.0.0.1 80 /hostile-$how; '$TESTBIN/tcp_get' files.test 80 /hostile-name-$how"
	[[ $(value getent) == 2 ]] || lab_fail "files.test resolved:" "$output" || return 1
	[[ $output =~ error:\ connect:\ EHOSTUNREACH ]] || lab_fail "the fake address did not fail closed:" "$output" || return 1
	[[ $output == *"error: getaddrinfo"* ]] || lab_fail "tcp_get files.test did not fail to resolve:" "$output" || return 1
	grep -q "session pool $path refused: $reason" "$SFY_LOG" ||
		lab_fail "no clear log line (want 'session pool $path refused: $reason'):" "$(cat "$SFY_LOG")" || return 1
	! grep -q "hostile" "$LAB_DIR/http-files-v4.log" || lab_fail "a connection reached the server" || return 1
	[[ $(stat -c '%U %a %s %Y' "$path" "$path.real" 2>/dev/null || true) == "$before" ]] ||
		lab_fail "the planted object was changed" || return 1
	lab_assert_no_dns_leak
}

@test "hostile object: another user's file (chown nobody) is refused, connections fail closed" { hostile owner "owned by uid $(id -u nobody)"; }
@test "hostile object: a symbolic link is refused and not followed" { hostile symlink "a symbolic link"; }
@test "hostile object: mode 0644 is refused" { hostile mode "mode 0644"; }
@test "hostile object: garbage of the right size is refused" { hostile garbage "not a socksify pool"; }
