#!/usr/bin/env bats
# Security rules: what the library exports, and warnings about secrets.

load helpers

@test "the library exports only the interposed functions" {
	local got want
	got=$(nm -D --defined-only "$LIB" | awk '{print $3}' | sort | tr '\n' ' ')
	want="_Exit __poll_chk __ppoll_chk __read_chk __recv_chk __recvfrom_chk __res_nquery __res_nquerydomain __res_nsearch __res_nsend __res_query __res_querydomain __res_search __res_send _exit accept accept4 bind close close_range closefrom connect dup dup2 dup3 epoll_ctl epoll_pwait epoll_pwait2 epoll_wait fcntl fcntl64 freeaddrinfo getaddrinfo getaddrinfo_a gethostbyaddr gethostbyaddr_r gethostbyname gethostbyname2 gethostbyname2_r gethostbyname_r getnameinfo getpeername getsockname getsockopt ioctl listen poll ppoll pselect read readv recv recvfrom recvmmsg recvmsg res_nquery res_nquerydomain res_nsearch res_nsend res_query res_querydomain res_search res_send select send sendmmsg sendmsg sendto setsockopt socket syscall write writev "
	[[ $got == "$want" ]] || fail "exported: $got" "expected: $want"
}

# The configuration is read at the first network call, so the program
# resolves a name; /bin/true alone reads nothing and warns of nothing.
@test "a world-readable config holding a password gets a warning; a private one does not" {
	write_conf "$CONF" "proxy = socks5h://127.0.0.1:9" "username = u" "password = pw-not-to-show"
	chmod 644 "$CONF"
	run env SOCKSIFY_CONF="$CONF" LD_PRELOAD="$PRELOAD" "$TESTBIN/resolve" web.test
	expect_status 0
	expect_contains "$CONF holds a password and is readable by every user"
	expect_not_contains "pw-not-to-show"
	chmod 600 "$CONF"
	run env SOCKSIFY_CONF="$CONF" LD_PRELOAD="$PRELOAD" "$TESTBIN/resolve" web.test
	expect_status 0
	expect_not_contains "readable by every user"
	chmod 644 "$CONF"
	run env SOCKSIFY_CONF="$CONF" LD_PRELOAD="$PRELOAD" /bin/true
	expect_status 0
	[[ -z $output ]] || fail "/bin/true printed something:" "$output"
}

# expect_nothing_went_out: no connection reached the web server or the
# proxy (the config file names a working one; the bad environment value
# must void it).
expect_nothing_went_out() {
	[[ ! -s $HTTP_LOG ]] || fail "the web server saw a connection:" "$(cat "$HTTP_LOG")" || return 1
	[[ ! -s $TS_RECORD ]] || fail "the proxy saw a connection:" "$(cat "$TS_RECORD")"
}

@test "an over-long or malformed environment value is rejected with a clear message, nothing goes direct" {
	start_http web 127.0.0.3
	start_testserver
	# A working proxy and, without the bad value, a direct route to
	# loopback (direct_loopback defaults to yes).
	write_conf "$CONF" "proxy = socks5h://127.0.0.1:$TS_PORT"
	local long bad target
	long="socks5h://$(printf 'a%.0s' {1..2000})@127.0.0.1:1080"
	for bad in "$long|proxy URL too long" \
		"ftp://127.0.0.1:1080|proxy URL: must start with socks5://, socks5h://, socks4://, socks4a:// or http://"; do
		for target in 127.0.0.3 web.test; do
			run run_isolated env SOCKSIFY_CONF="$CONF" SOCKSIFY_PROXY="${bad%%|*}" \
				LD_PRELOAD="$PRELOAD" "$TESTBIN/tcp_get" "$target" "$HTTP_PORT" /must-not-arrive
			expect_errno EACCES || return 1
			expect_contains "error: connect: EACCES" || return 1
			expect_contains "SOCKSIFY_PROXY: ${bad#*|}" || return 1
			expect_nothing_went_out || return 1
		done
	done
	# The same connection without the bad value does go out (direct): the
	# checks above could fail.
	run run_isolated env SOCKSIFY_CONF="$CONF" LD_PRELOAD="$PRELOAD" \
		"$TESTBIN/tcp_get" 127.0.0.3 "$HTTP_PORT" /control
	expect_status 0
	expect_contains "path=/control peer=127.0.0.1"
}
