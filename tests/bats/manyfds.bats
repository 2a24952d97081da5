#!/usr/bin/env bats
# A program with thousands of fds: its socket lands above FD_SETSIZE, it
# sizes select()'s sets for its own nfds, and the asynchronous handshake
# runs inside that select(), poll() or epoll_wait() all the same.

load helpers

setup_file() {
	common_setup_file
	start_http web 127.0.0.3
	export WEB_PORT=$HTTP_PORT WEB_LOG=$HTTP_LOG
}

manyfds_case() {
	start_testserver
	proxy_conf "$CONF" "$TS_PORT"
	run sfy "$TESTBIN/manyfds" web.test "$WEB_PORT" "/many-$1" "$1"
	expect_status 0
	[[ ${lines[0]} =~ ^fd=2[1-9][0-9][0-9]$ ]] || fail "the socket is not above 2100:" "$output"
	expect_contains "hello from web path=/many-$1 peer=127.0.0.2"
	expect_record host web.test
	assert_no_dns_leak
}

@test "fd above FD_SETSIZE: select() on a set sized for nfds" { manyfds_case select; }
@test "fd above FD_SETSIZE: poll()" { manyfds_case poll; }
@test "fd above FD_SETSIZE: edge-triggered epoll" { manyfds_case epoll; }
