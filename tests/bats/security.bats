#!/usr/bin/env bats
# Security rules: what the library exports, and warnings about secrets.

load helpers

@test "the library exports only the interposed functions" {
	local got want
	got=$(nm -D --defined-only "$LIB" | awk '{print $3}' | sort | tr '\n' ' ')
	want="__poll_chk __ppoll_chk __read_chk __recv_chk __recvfrom_chk accept accept4 bind close close_range connect dup dup2 dup3 epoll_ctl epoll_pwait epoll_pwait2 epoll_wait fcntl fcntl64 freeaddrinfo getaddrinfo gethostbyaddr gethostbyaddr_r gethostbyname gethostbyname2 gethostbyname2_r gethostbyname_r getnameinfo getpeername getsockname getsockopt ioctl listen poll ppoll pselect read readv recv recvfrom recvmsg select send sendmmsg sendmsg sendto setsockopt socket syscall write writev "
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

@test "an over-long or malformed environment value is rejected with a clear message, nothing goes direct" {
	local long
	long="socks5h://$(printf 'a%.0s' {1..2000})@127.0.0.1:1080"
	run env SOCKSIFY_PROXY="$long" LD_PRELOAD="$PRELOAD" "$TESTBIN/resolve" web.test
	expect_status 0
	expect_contains "SOCKSIFY_PROXY: proxy URL too long"
	run env SOCKSIFY_PROXY="http://127.0.0.1:1080" LD_PRELOAD="$PRELOAD" "$TESTBIN/resolve" web.test
	expect_contains "SOCKSIFY_PROXY: proxy URL must start with socks5:// or socks5h://"
}
