#!/usr/bin/env bats
# The resolver's own interface in the firewall lab (tests/lab/lab.bash):
# res_query for A, AAAA, HTTPS and PTR, and getaddrinfo_a, under socksify
# in the client namespace, whose only nameserver is the DNS sentinel.
# Every test asserts the sentinel saw nothing; the A/AAAA answers are
# followed by a connection to the fake address, which must reach the lab
# server through danted by name.
#
# Needs root, like tests/bats/lab.bats.

# shellcheck source=tests/lab/lab.bash
source "$BATS_TEST_DIRNAME/../lab/lab.bash"

CONF4=$LAB_HOME/client-v4.conf
RQ=$LAB_ROOT/build/tests/resquery
FAKE4='(24[0-9]|25[0-5])\.[0-9]+\.[0-9]+\.[0-9]+'
FAKE6='100::[0-9a-f:]+'

setup_file() {
	lab_setup_file lab_res.bats "network namespaces, danted" "$RQ"
}

teardown_file() {
	lab_teardown_checked
}

setup() {
	lab_setup
	DANTED_LINES=$(wc -l <"$LAB_DANTED_LOG")
}

teardown() {
	lab_teardown "$LAB_DNS_LOG" "$LAB_DIR/danted.out" "$LAB_DIR"/http-*.log
}

expect_line_re() { # a whole line of the output matches the ERE
	grep -qE "^$1\$" <<<"$output" || lab_fail "no line matches /^$1\$/; output:" "$output"
}

# danted_relayed SERVER PORT: since the test began, danted opened a session
# from the client to SERVER:PORT (its log lags the client by a moment).
danted_relayed() {
	local re i
	re="tcp/connect \[: ${LAB_CLIENT4//./\\.}\.[0-9]+ ${LAB_PROXY4//./\\.}\.$LAB_PROXY_PORT -> .* ${1//./\\.}\.$2\$"
	for ((i = 0; i < 40; i++)); do
		tail -n "+$((DANTED_LINES + 1))" "$LAB_DANTED_LOG" | grep -Eq "$re" && return 0
		sleep 0.05
	done
	lab_fail "danted relayed no session to $1:$2:" "$(tail -n "+$((DANTED_LINES + 1))" "$LAB_DANTED_LOG")"
}

@test "lab: res_query A gives a fake address; connecting to it reaches files.test through danted" {
	run lab_sfy -c "$CONF4" "$RQ" query files.test A --connect 80 /res-a --ptr
	expect_status 0
	expect_line_re "A $FAKE4 ttl=5"
	expect_line_re "body=hello from files-v4 path=/res-a peer=${LAB_PROXY_EXT4//./\\.}"
	expect_line_re "PTR files\.test ttl=5"
	danted_relayed "$LAB_SERVER4" 80
	lab_assert_no_dns_leak
}

@test "lab: res_query AAAA gives a fake IPv6 address; connecting to it reaches files6.test" {
	run lab_sfy -c "$CONF4" "$RQ" query files6.test AAAA --connect 80 /res-aaaa --ptr
	expect_status 0
	expect_line_re "AAAA $FAKE6 ttl=5"
	expect_line_re "body=hello from files-v6 path=/res-aaaa peer=$LAB_PROXY_EXT6"
	expect_line_re "PTR files6\.test ttl=5"
	danted_relayed "$LAB_SERVER6" 80
	lab_assert_no_dns_leak
}

@test "lab: res_query HTTPS and res_nquery MX are NODATA; PTR of an unknown address NXDOMAIN" {
	run lab_sfy -c "$CONF4" "$RQ" query files.test HTTPS
	expect_status 1
	expect_line_re "rc=-1 herrno=NO_DATA"
	run lab_sfy -c "$CONF4" "$RQ" nquery files.test MX
	expect_status 1
	expect_line_re "res_h_errno=NO_DATA"
	run lab_sfy -c "$CONF4" "$RQ" query 10.113.0.203.in-addr.arpa PTR
	expect_status 1
	expect_line_re "rc=-1 herrno=HOST_NOT_FOUND"
	lab_assert_no_dns_leak
}

@test "lab: getaddrinfo_a (wait, signal, thread) gives fake addresses, no query" {
	local mode
	for mode in wait signal thread; do
		run lab_sfy -c "$CONF4" "$RQ" gai "$mode" files.test files6.test
		expect_status 0
		expect_line_re "gai files\.test ret=0 addr=$FAKE4:80"
		expect_line_re "gai files6\.test ret=0 addr=$FAKE4:80"
	done
	expect_line_re "notified=thread value=42 sigmask=full"
	lab_assert_no_dns_leak
}

@test "lab control: without socksify res_query and getaddrinfo_a ask the sentinel" {
	lab_skip_under_asan "no socksify here: the release pass runs it"
	run in_client "$RQ" query files.test A
	expect_status 1
	run in_client "$RQ" gai wait gai-ctl.test
	grep -q '^files\.test ' "$LAB_DNS_LOG" && grep -q '^gai-ctl\.test ' "$LAB_DNS_LOG" ||
		lab_fail "the sentinel did not see the queries:" "$(cat "$LAB_DNS_LOG")"
}
