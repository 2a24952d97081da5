#!/usr/bin/env bats
# The GSSAPI data relay (shim/relay.h), without Kerberos: tests/c/relay_test
# links the library, starts relays on loopback TCP connections whose other
# end it drives as the proxy, with a fake protection (XOR and a checksum
# byte, 1000 plain bytes a frame).  It is built with ASan+UBSan (and LSan
# at its exit), so the release pass runs it and the ASan pass skips it.

load helpers

relay_case() {
	[[ -z $ASAN_RT ]] || skip "relay_test carries the sanitizers itself: the release pass runs it"
	[[ -x $TESTBIN/relay_test ]] || fail "missing $TESTBIN/relay_test (run make)" || return 1
	run env SOCKSIFY_PROXY=socks5://127.0.0.1:9 timeout 120 "$TESTBIN/relay_test" "$1"
	expect_status 0 || return 1
	expect_contains "ok $1"
}

@test "1 MiB each way intact, frames within max_in, both ends shut down, no fd left" { relay_case bulk; }
@test "frames split byte by byte, and 50 frames in one write" { relay_case split; }
@test "corrupt token, bad version, bad mtyp, length 0, abort, EOF mid-frame: good bytes, then ECONNRESET, logged" {
	relay_case errors
}
@test "half-close each way, and the program's close, end the relay" { relay_case halfclose; }
@test "poll and epoll report readable only for unwrapped bytes; O_NONBLOCK and epoll registrations kept" {
	relay_case readiness
}
@test "sendfile() to the relayed fd and splice() from it" { relay_case zerocopy; }
@test "getpeername, getsockname, getsockopt and setsockopt look like the TCP socket, through a dup too" {
	relay_case looks_tcp
}
@test "a fork child closes its copies of the relay's fds: it outlives the relay and sees the end" { relay_case fork; }
@test "sfy_relay_start refuses what it cannot run and leaves the fd alone" { relay_case refuse; }
@test "no spinning under backpressure, after each side's end, after a reset" { relay_case nospin; }
@test "a program that writes and exits at once: its last bytes still reach the proxy" { relay_case exit_drain; }
