#!/usr/bin/env bats
# The cheap guards of the default mode and the wrapper side of sealed mode
# (issue 17): the launcher (socksify-sealed --launch) warning about static
# and Go programs, refusing programs with file capabilities, choosing to
# seal under sealed = auto and --sealed in any option order, its --probe
# and --inspect, the nested-tree check; and the library's syscall() hook
# sending raw socket calls through the same code as libc's.  What the
# supervisor does once it runs a program is tests/bats/sealed.bats.

load helpers
bats_require_minimum_version 1.5.0

# The static and Go programs, built once per run of the file.
setup_file() {
	common_setup_file
	start_sentinel
	start_http web 127.0.0.3
	export WEB_PORT=$HTTP_PORT WEB_LOG=$HTTP_LOG
	start_testserver
	export FILE_TS_PORT=$TS_PORT FILE_TS_RECORD=$TS_RECORD
	export PROGS=$BATS_FILE_TMPDIR/progs
	mkdir -p "$PROGS"
	printf '#include <stdio.h>\nint main(void) { puts("static hi"); return 3; }\n' >"$PROGS/static.c"
	cc -static -O1 -o "$PROGS/static_hi" "$PROGS/static.c"
	if command -v go >/dev/null; then
		printf 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("go hi") }\n' >"$PROGS/main.go"
		(cd "$PROGS" && CGO_ENABLED=0 GOCACHE=$BUILD/gocache GOPATH=$BUILD/gopath GO111MODULE=off \
			timeout 120 go build -o "$PROGS/go_hi" main.go)
	fi
}

setup() {
	common_setup
	TS_PORT=$FILE_TS_PORT
	TS_RECORD=$FILE_TS_RECORD
	proxy_conf "$CONF" "$TS_PORT"
	LAUNCHER=${LIB%/*}/socksify-sealed
	STATIC=$PROGS/static_hi
}

need_go() {
	[[ -x $PROGS/go_hi ]] || skip "no go compiler (Debian's golang-go): the Go program was not built"
}

# A copy of the static program with file capabilities ($CAPS).
make_caps_prog() {
	CAPS=$BATS_TEST_TMPDIR/caps_hi
	cp "$STATIC" "$CAPS"
	setcap cap_net_raw+ep "$CAPS" 2>/dev/null ||
		skip "setcap cap_net_raw+ep refused here (needs CAP_SETFCAP and a file system with xattrs)"
}

expect_static_warning() {
	expect_line "socksify: $1 is statically linked: the preload cannot see its connections and they would NOT go through the proxy; run it with socksify --sealed"
}

# ------------------------------------------------------ warnings, refusal
@test "a static program: exactly one warning line, then it runs with its status" {
	run sfy "$STATIC"
	expect_status 3
	expect_static_warning "$STATIC"
	expect_line "static hi"
	[[ ${#lines[@]} -eq 2 ]] || fail "expected the warning and the program's line:" "$output"
}

@test "a static program found on PATH: the warning names the file; -q silences it" {
	PATH=$PROGS:$PATH run run_isolated "$SOCKSIFY" -c "$CONF" static_hi
	expect_status 3
	expect_static_warning "$PROGS/static_hi"
	PATH=$PROGS:$PATH run run_isolated "$SOCKSIFY" -q -c "$CONF" static_hi
	expect_status 3
	[[ $output == "static hi" ]] || fail "-q: expected only the program's line:" "$output"
}

@test "a Go program: exactly one warning line, silent under -q and log_level = error" {
	need_go
	run sfy "$PROGS/go_hi"
	expect_status 0
	expect_line "socksify: $PROGS/go_hi is a Go program: the preload cannot see its connections and they would NOT go through the proxy; run it with socksify --sealed"
	expect_line "go hi"
	[[ ${#lines[@]} -eq 2 ]] || fail "expected the warning and the program's line:" "$output"
	run run_isolated "$SOCKSIFY" -c "$CONF" -q "$PROGS/go_hi"
	[[ $output == "go hi" ]] || fail "-q: expected only the program's line:" "$output"
	proxy_conf "$CONF" "$TS_PORT" "log_level = error"
	run sfy "$PROGS/go_hi"
	[[ $output == "go hi" ]] || fail "log_level = error: expected only the program's line:" "$output"
}

@test "a dynamic program and a script: no warning" {
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /plain
	expect_status 0
	expect_not_contains "socksify:"
	expect_contains "path=/plain peer=127.0.0.2"
	printf '#!/bin/sh\necho script ran\n' >"$BATS_TEST_TMPDIR/s.sh"
	chmod +x "$BATS_TEST_TMPDIR/s.sh"
	run sfy "$BATS_TEST_TMPDIR/s.sh"
	[[ $status -eq 0 && $output == "script ran" ]] || fail "script: status $status" "$output"
}

@test "a program with file capabilities is refused (exit 1, not run), as setuid ones are" {
	make_caps_prog
	run sfy "$CAPS"
	expect_status 1
	expect_line "socksify: $CAPS has file capabilities: the kernel and the dynamic loader ignore LD_PRELOAD for it, so it would NOT go through the proxy; refusing to run it (socksify --sealed runs it sealed)"
	expect_not_contains "static hi"
	# -q does not hide a refusal.
	run run_isolated "$SOCKSIFY" -q -c "$CONF" "$CAPS"
	expect_status 1
	expect_contains "has file capabilities"
}

@test "missing and non-executable commands: 127 and 126 with the shell's words" {
	run -127 sfy "$BATS_TEST_TMPDIR/nonexistent"
	expect_line "socksify: $BATS_TEST_TMPDIR/nonexistent: No such file or directory"
	printf 'echo ran\n' >"$BATS_TEST_TMPDIR/noexec"
	chmod 0644 "$BATS_TEST_TMPDIR/noexec"
	run -126 sfy "$BATS_TEST_TMPDIR/noexec"
	expect_line "socksify: $BATS_TEST_TMPDIR/noexec: Permission denied"
}

# ------------------------------------------------ choosing to seal
@test "sealed = auto seals static, Go and file-capability programs, not dynamic ones" {
	proxy_conf "$CONF" "$TS_PORT" "sealed = auto" "log_level = info"
	run sfy "$STATIC"
	expect_contains "sealing $STATIC (statically linked, sealed = auto)"
	expect_not_contains "would NOT go through the proxy"
	if [[ -x $PROGS/go_hi ]]; then
		run sfy "$PROGS/go_hi"
		expect_contains "sealing $PROGS/go_hi (Go program, sealed = auto)"
	fi
	make_caps_prog
	run sfy "$CAPS"
	expect_contains "sealing $CAPS (file capabilities, sealed = auto)"
	expect_not_contains "refusing"
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /auto-dynamic
	expect_status 0
	expect_not_contains "sealing"
	expect_contains "path=/auto-dynamic peer=127.0.0.2"
}

@test "SOCKSIFY_SEALED overrides sealed =; a bad value is refused before running anything" {
	proxy_conf "$CONF" "$TS_PORT" "sealed = auto" "log_level = info"
	SOCKSIFY_SEALED=no run sfy "$STATIC"
	expect_status 3
	expect_static_warning "$STATIC"
	expect_contains "not sealing $STATIC (statically linked, SOCKSIFY_SEALED=no)"
	proxy_conf "$CONF" "$TS_PORT" "log_level = info"
	SOCKSIFY_SEALED=1 run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /x
	expect_contains "sealing $TESTBIN/tcp_get (dynamically linked, SOCKSIFY_SEALED=yes)"
	SOCKSIFY_SEALED=perhaps run sfy "$STATIC"
	expect_status 2
	expect_line "socksify: SOCKSIFY_SEALED=perhaps: expected yes, no or auto"
	expect_not_contains "static hi"
}

@test "--sealed in any order with -c, -x, -q and -v" {
	local url="socks5h://127.0.0.1:$TS_PORT" want="sealing $STATIC (statically linked, SOCKSIFY_SEALED=yes)"
	run run_isolated "$SOCKSIFY" --sealed -c "$CONF" -v "$STATIC"
	expect_contains "$want"
	run run_isolated "$SOCKSIFY" -v -c "$CONF" --sealed -- "$STATIC"
	expect_contains "$want"
	run run_isolated "$SOCKSIFY" -x "$url" -v --sealed "$STATIC"
	expect_contains "$want"
	run run_isolated "$SOCKSIFY" -q --sealed -v -x "$url" -c "$CONF" "$STATIC"
	expect_contains "$want"
	# Never the static warning: the program is not run unsealed.
	expect_not_contains "would NOT go through the proxy"
	run run_isolated "$SOCKSIFY" --seal "$STATIC"
	expect_status 2
	expect_contains "unknown option --seal"
}

@test "inside a sealed tree (SOCKSIFY_SEALED_ACTIVE and a seccomp filter) the launcher just runs the program" {
	SOCKSIFY_SEALED_ACTIVE=1 run run_isolated "$TESTBIN/notif_wrap" "$SOCKSIFY" --sealed -v -c "$CONF" "$STATIC"
	expect_status 3
	expect_line "static hi"
	expect_not_contains "sealing"
	# Without the variable it is no tree of ours: sealing fails (the other
	# listener), and the program is never run unsealed.
	run run_isolated "$TESTBIN/notif_wrap" "$SOCKSIFY" --sealed -c "$CONF" "$STATIC"
	expect_status 126
	expect_not_contains "static hi"
	# The variable alone (no filter) is not trusted.
	SOCKSIFY_SEALED_ACTIVE=1 run run_isolated "$SOCKSIFY" --sealed -v -c "$CONF" "$STATIC"
	expect_contains "sealing $STATIC"
}

@test "socksify-sealed --probe and --inspect" {
	run "$LAUNCHER" --probe
	expect_status 0
	[[ $output == "sealed mode: available (seccomp user notification, pidfd_getfd)" ]] || fail "probe:" "$output"
	run "$LAUNCHER" --inspect "$STATIC"
	[[ $output == static ]] || fail "static program: $output"
	run "$LAUNCHER" --inspect "$TESTBIN/tcp_get"
	[[ $output == dynamic ]] || fail "dynamic program: $output"
	run "$LAUNCHER" --inspect "$SOCKSIFY"
	[[ $output == dynamic ]] || fail "script: $output"
	if [[ -x $PROGS/go_hi ]]; then
		run "$LAUNCHER" --inspect "$PROGS/go_hi"
		[[ $output == go ]] || fail "Go program: $output"
		strip -o "$BATS_TEST_TMPDIR/go_stripped" "$PROGS/go_hi"
		run "$LAUNCHER" --inspect "$BATS_TEST_TMPDIR/go_stripped"
		[[ $output == go ]] || fail "stripped Go program: $output"
	fi
	make_caps_prog
	run "$LAUNCHER" --inspect "$CAPS"
	[[ $output == caps ]] || fail "file capabilities: $output"
	run "$LAUNCHER" --bogus
	expect_status 2
}

# ------------------------------------------------ syscall() in the library
@test "syscall(SYS_connect) and friends go through the proxy by name, no DNS leak" {
	run sfy "$TESTBIN/rawsys" web.test "$WEB_PORT" /raw
	expect_status 0
	expect_contains "hello from web path=/raw peer=127.0.0.2"
	# SYS_getpeername answers with the fake address the program connected to.
	expect_match "peer=(24[0-9]|25[0-5])\.[0-9]+\.[0-9]+\.[0-9]+:$WEB_PORT"
	wait_records 1
	expect_record host web.test
	expect_record atyp 3
	grep -q "GET /raw peer=127.0.0.2" "$WEB_LOG" || fail "no proxied GET /raw:" "$(cat "$WEB_LOG")"
	assert_no_dns_leak
}

@test "a refused raw connect reports the proxy's answer as errno (REP 5: ECONNREFUSED)" {
	start_testserver --reply 5
	proxy_conf "$CONF" "$TS_PORT"
	run sfy "$TESTBIN/rawsys" web.test "$WEB_PORT" /raw-refused
	expect_errno ECONNREFUSED
	wait_records 1
	expect_record host web.test
	expect_record rep 5
	! grep -q "/raw-refused" "$WEB_LOG" || fail "the request reached the server directly"
	assert_no_dns_leak
}

@test "syscall() passes other numbers through with all six arguments" {
	run run_isolated env SOCKSIFY_CONF="$CONF" LD_PRELOAD="$PRELOAD" "$TESTBIN/rawsys" --passthrough
	expect_status 0
	[[ $output == "passthrough ok" ]] || fail "passthrough:" "$output"
}
