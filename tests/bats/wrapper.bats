#!/usr/bin/env bats
# The user interface: scripts/socksify options, ". socksify on/off",
# "socksify show", environment variables and logging.

load helpers

setup_file() {
	common_setup_file
	start_sentinel
	start_http web 127.0.0.3
	export WEB_PORT=$HTTP_PORT WEB_LOG=$HTTP_LOG
	start_testserver
	export FILE_TS_PORT=$TS_PORT FILE_TS_RECORD=$TS_RECORD
}

setup() {
	common_setup
	TS_PORT=$FILE_TS_PORT
	TS_RECORD=$FILE_TS_RECORD
	proxy_conf "$CONF" "$TS_PORT"
	# A config whose proxy is dead: only an override can make it work.
	DEAD_CONF=$BATS_TEST_TMPDIR/dead.conf
	proxy_conf "$DEAD_CONF" "$(free_port)"
	OTHER_PRELOAD=$(ls /lib/*-linux-gnu/libdl.so.2 /usr/lib/*-linux-gnu/libdl.so.2 2>/dev/null | head -n1)
}

# The last request the file's test server saw was for PATH by name.
expect_last_request() {
	wait_records 1 || return 1
	expect_record host web.test || return 1
	grep -q "GET $1 peer=127.0.0.2" "$WEB_LOG" || fail "no proxied GET $1"
}

@test "socksify -c FILE CMD" {
	run run_isolated "$SOCKSIFY" -c "$CONF" "$TESTBIN/tcp_get" web.test \
		"$WEB_PORT" /dash-c
	expect_status 0
	expect_contains "hello from web path=/dash-c peer=127.0.0.2"
	expect_last_request /dash-c
	assert_no_dns_leak
}

@test "SOCKSIFY_CONF in the environment" {
	SOCKSIFY_CONF=$CONF run run_isolated "$SOCKSIFY" "$TESTBIN/tcp_get" \
		web.test "$WEB_PORT" /env-conf
	expect_status 0
	expect_contains "path=/env-conf peer=127.0.0.2"
}

@test "socksify -x URL overrides the config file's proxy" {
	run run_isolated "$SOCKSIFY" -c "$DEAD_CONF" \
		-x "socks5h://127.0.0.1:$TS_PORT" -- \
		"$TESTBIN/tcp_get" web.test "$WEB_PORT" /dash-x
	expect_status 0
	expect_contains "path=/dash-x peer=127.0.0.2"
	expect_last_request /dash-x
}

@test "SOCKSIFY_PROXY overrides the config file, with a plain LD_PRELOAD" {
	run run_isolated env SOCKSIFY_CONF="$DEAD_CONF" \
		SOCKSIFY_PROXY="socks5h://127.0.0.1:$TS_PORT" LD_PRELOAD="$PRELOAD" \
		"$TESTBIN/tcp_get" web.test "$WEB_PORT" /env-proxy
	expect_status 0
	expect_contains "path=/env-proxy peer=127.0.0.2"
}

@test "SOCKSIFY_PROXY with host localhost" {
	run run_isolated env SOCKSIFY_CONF="$DEAD_CONF" \
		SOCKSIFY_PROXY="socks5h://localhost:$TS_PORT" LD_PRELOAD="$PRELOAD" \
		"$TESTBIN/tcp_get" web.test "$WEB_PORT" /proxy-localhost
	expect_status 0
	expect_contains "path=/proxy-localhost peer=127.0.0.2"
	assert_no_dns_leak
}

@test "a proxy given by the config file alone is used for wget" {
	run run_isolated "$SOCKSIFY" -c "$CONF" -- wget --no-config -q -O - --tries=1 \
		--timeout=10 "http://web.test:$WEB_PORT/wget-c"
	expect_status 0
	[[ $output == "hello from web path=/wget-c peer=127.0.0.2" ]] || fail "$output"
}

@test "the command's arguments and exit status pass through" {
	run run_isolated "$SOCKSIFY" -c "$CONF" -- sh -c 'printf "<%s>" "$@"; exit 7' \
		sh "a b" "" "-c"
	expect_status 7
	[[ $output == "<a b><><-c>" ]] || fail "$output"
}

@test "the wrapper prepends to an existing LD_PRELOAD" {
	[[ -n $OTHER_PRELOAD ]] || fail "no libdl.so.2 found to preload"
	run run_isolated env LD_PRELOAD="${BASE_PRELOAD:+$BASE_PRELOAD }$OTHER_PRELOAD" \
		"$SOCKSIFY" -c "$CONF" -- printenv LD_PRELOAD
	expect_status 0
	[[ $output == *libsocksify.so* ]] || fail "lib missing: $output"
	[[ $output == *"$OTHER_PRELOAD"* ]] || fail "existing entry lost: $output"
	[[ ${output%%"$OTHER_PRELOAD"*} == *libsocksify.so* ]] ||
		fail "not prepended: $output"
}

@test ". socksify on / off in bash" {
	run run_isolated env SOCKSIFY_CONF="$CONF" bash -c '
		. "$1" on 2>/dev/null || exit 10
		echo "on=$LD_PRELOAD"
		"$2" 127.0.0.3 "$3" /sourced-on
		. "$1" off 2>/dev/null || exit 11
		echo "off=${LD_PRELOAD-<unset>}"
		"$2" 127.0.0.3 "$3" /sourced-off' bash "$SOCKSIFY" "$TESTBIN/tcp_get" "$WEB_PORT"
	expect_status 0
	[[ $(grep '^on=' <<<"$output") == on=*libsocksify.so* ]] || fail "$output"
	[[ $(grep '^off=' <<<"$output") == "off=${BASE_PRELOAD:-<unset>}" ]] ||
		fail "$output"
	expect_contains "path=/sourced-on peer=127.0.0.2"
	expect_contains "path=/sourced-off peer=127.0.0.1"
}

@test ". socksify on keeps an existing LD_PRELOAD, off restores it" {
	[[ -n $OTHER_PRELOAD ]] || fail "no libdl.so.2 found to preload"
	run run_isolated env LD_PRELOAD="$OTHER_PRELOAD" SOCKSIFY_CONF="$CONF" \
		bash -c '. "$1" on 2>/dev/null; echo "on=$LD_PRELOAD"
			. "$1" off 2>/dev/null; echo "off=$LD_PRELOAD"' bash "$SOCKSIFY"
	expect_status 0
	local on off
	on=$(grep '^on=' <<<"$output")
	off=$(grep '^off=' <<<"$output")
	[[ $on == on=*libsocksify.so* && $on == *"$OTHER_PRELOAD"* ]] ||
		fail "$output"
	[[ $off == "off=$OTHER_PRELOAD" ]] || fail "$output"
}

@test "socksify on twice does not preload the library twice" {
	run run_isolated env SOCKSIFY_CONF="$CONF" bash -c \
		'. "$1" on 2>/dev/null; . "$1" on 2>/dev/null; echo "$LD_PRELOAD"' \
		bash "$SOCKSIFY"
	expect_status 0
	[[ $(grep -o libsocksify.so <<<"$output" | wc -l) -eq 1 ]] || fail "$output"
}

# dash ignores arguments to ".", so ". socksify on" cannot work in sh;
# the wrapper's "env" subcommand is the portable form.
@test "eval \"\$(socksify env)\" in sh" {
	run run_isolated env SOCKSIFY_CONF="$CONF" sh -c '
		eval "$("$1" env)" || exit 10
		echo "env=$LD_PRELOAD"
		"$2" 127.0.0.3 "$3" /sh-env' sh "$SOCKSIFY" "$TESTBIN/tcp_get" "$WEB_PORT"
	expect_status 0
	[[ $(grep '^env=' <<<"$output") == env=*libsocksify.so* ]] || fail "$output"
	expect_contains "path=/sh-env peer=127.0.0.2"
}

@test "socksify show reports inactive, then active with LD_PRELOAD" {
	run run_isolated bash -c '"$1" show; echo ---; . "$1" on; "$1" show' \
		bash "$SOCKSIFY"
	expect_status 0
	local before=${output%%---*} after=${output#*---}
	[[ $before != *libsocksify.so* ]] || fail "$output"
	[[ $before =~ (not active|inactive|off) ]] || fail "$output"
	[[ $after == *libsocksify.so* ]] || fail "$output"
	[[ $after =~ active ]] || fail "$output"
	[[ $after != *"not active"* && $after != *inactive* ]] || fail "$output"
}

@test "setuid commands are refused with exit status 1" {
	cp /usr/bin/true "$BATS_TEST_TMPDIR/suid-true"
	chmod 4755 "$BATS_TEST_TMPDIR/suid-true"
	run run_isolated "$SOCKSIFY" -c "$CONF" -- "$BATS_TEST_TMPDIR/suid-true"
	expect_status 1
	expect_match "set[ug]id"
}

@test "setgid commands found via PATH are refused" {
	mkdir "$BATS_TEST_TMPDIR/bin"
	cp /usr/bin/true "$BATS_TEST_TMPDIR/bin/sgid-true"
	chmod 2755 "$BATS_TEST_TMPDIR/bin/sgid-true"
	PATH="$BATS_TEST_TMPDIR/bin:$PATH" run run_isolated "$SOCKSIFY" \
		-c "$CONF" -- sgid-true
	expect_status 1
	expect_match "set[ug]id"
}

@test "-v logs debug lines as socksify[PID]: on stderr" {
	run run_isolated "$SOCKSIFY" -v -c "$CONF" -- "$TESTBIN/tcp_get" \
		web.test "$WEB_PORT" /verbose
	expect_status 0
	expect_match "socksify\[[0-9]+\]: "
	expect_contains "path=/verbose peer=127.0.0.2"
}

@test "default level logs a proxy failure, -q silences it" {
	start_testserver --reply 5
	proxy_conf "$CONF" "$TS_PORT"
	run run_isolated "$SOCKSIFY" -c "$CONF" -- "$TESTBIN/tcp_get" 127.0.0.3 1 /
	expect_errno ECONNREFUSED
	expect_match "socksify\[[0-9]+\]: "
	run run_isolated "$SOCKSIFY" -q -c "$CONF" -- "$TESTBIN/tcp_get" 127.0.0.3 1 /
	expect_errno ECONNREFUSED
	expect_not_contains "socksify["
}

@test "SOCKSIFY_LOG_FILE receives the log instead of stderr" {
	SOCKSIFY_LOG_LEVEL=debug SOCKSIFY_LOG_FILE=$SFY_LOG run run_isolated \
		"$SOCKSIFY" -c "$CONF" -- "$TESTBIN/tcp_get" web.test "$WEB_PORT" /logfile
	expect_status 0
	expect_not_contains "socksify["
	grep -qE "^socksify\[[0-9]+\]: " "$SFY_LOG" || fail "no log lines in file"
}

@test "proxy credentials never appear in the debug log" {
	printf 'username = carol\npassword = Pw-In-File-321\n' >>"$CONF"
	SOCKSIFY_LOG_LEVEL=debug SOCKSIFY_LOG_FILE=$SFY_LOG run run_isolated \
		"$SOCKSIFY" -c "$CONF" -- "$TESTBIN/tcp_get" web.test "$WEB_PORT" /cred1
	expect_status 0
	SOCKSIFY_LOG_LEVEL=debug run run_isolated env SOCKSIFY_CONF="$DEAD_CONF" \
		SOCKSIFY_PROXY="socks5h://dave:Pw-In-Url-654@127.0.0.1:$TS_PORT" \
		SOCKSIFY_LOG_FILE="$SFY_LOG" "$SOCKSIFY" -- \
		"$TESTBIN/tcp_get" web.test "$WEB_PORT" /cred2
	expect_status 0
	[[ -s $SFY_LOG ]] || fail "debug log is empty"
	! grep -qE "Pw-In-File-321|Pw-In-Url-654" "$SFY_LOG" ||
		fail "password in the log:" "$(grep -E 'Pw-In' "$SFY_LOG")"
	expect_not_contains "Pw-In-Url-654"
}

@test "the ASan build of the library works too" {
	[[ -f $BUILD/asan/libsocksify.so ]] || skip "no ASan build"
	local asan
	asan=$(cc -print-file-name=libasan.so)
	[[ -f $asan ]] || skip "libasan not found"
	run run_isolated env SOCKSIFY_CONF="$CONF" \
		ASAN_OPTIONS="detect_leaks=0:log_path=$BATS_TEST_TMPDIR/sanitizer" \
		LD_PRELOAD="$asan $BUILD/asan/libsocksify.so" \
		"$TESTBIN/tcp_get" web.test "$WEB_PORT" /asan
	expect_status 0
	expect_contains "path=/asan peer=127.0.0.2"
}
