#!/usr/bin/env bats
# DNS packets a program sends itself, in the firewall lab: the client's only
# nameserver is the sentinel on 127.0.0.1:53 (loopback, so direct).  dig,
# host and nslookup get fake answers made in the process, and a follow-up
# connection to the fake address reaches the server through danted (the
# server sees the proxy's external address).  Every test asserts that the
# sentinel saw 0 queries.  Topology and helpers: tests/lab/lab.bash.

# shellcheck source=tests/lab/lab.bash
source "$BATS_TEST_DIRNAME/../lab/lab.bash"

FAKE4='(24[0-9]|25[0-5])\.[0-9]+\.[0-9]+\.[0-9]+'
FAKE6='100::[0-9a-f:]+'
CONF4=$LAB_HOME/client-v4.conf
DNSUDP=$LAB_ROOT/build/tests/dnsudp

setup_file() {
	lab_setup_file lab_dns.bats "network namespaces, danted" "$DNSUDP" cmd:dig:bind9-dnsutils
}

teardown_file() {
	lab_teardown_checked
}

setup() {
	lab_setup
}

teardown() {
	lab_teardown "$LAB_DNS_LOG" "$LAB_DIR/danted.out" "$LAB_DIR"/http-files-v4.log
}

expect_match() {
	[[ $output =~ $1 ]] || lab_fail "expected output to match /$1/; output:" "$output"
}

@test "lab control: dig without socksify reaches the sentinel" {
	lab_skip_under_asan "no socksify here: the release pass runs it"
	run in_client dig +tries=1 +time=2 files.test
	grep -q '^files\.test ' "$LAB_DNS_LOG" ||
		lab_fail "the sentinel saw no query; the leak checks could not fail:" "$output"
}

@test "lab: dig gets fake A and AAAA (UDP and TCP), NODATA for HTTPS; sentinel silent" {
	run lab_sfy -c "$CONF4" dig +tries=1 +time=2 +short files.test A
	expect_status 0
	expect_match "^$FAKE4\$"
	run lab_sfy -c "$CONF4" dig +tries=1 +time=2 +short +tcp files.test AAAA
	expect_status 0
	expect_match "^$FAKE6\$"
	run lab_sfy -c "$CONF4" dig +tries=1 +time=2 files.test HTTPS
	expect_status 0
	expect_match "status: NOERROR"
	expect_match "ANSWER: 0,"
	lab_assert_no_dns_leak
}

@test "lab: host and nslookup get fake answers; sentinel silent" {
	run lab_sfy -c "$CONF4" host -W 2 files.test
	expect_status 0
	expect_match "files\.test has address $FAKE4"
	run lab_sfy -c "$CONF4" nslookup -timeout=2 files.test
	expect_status 0
	expect_match "Address: $FAKE4"
	lab_assert_no_dns_leak
}

@test "lab: a program's own DNS client, then a connection to the fake address reaches the server through danted" {
	run lab_sfy -c "$CONF4" "$DNSUDP" 127.0.0.1 files.test --tcp --get 80 /lab-dns
	expect_status 0
	expect_match "connected: peer=127\.0\.0\.1:53 from=127\.0\.0\.1:53 rcode=0 addr=$FAKE4"
	expect_match "unconnected: from=127\.0\.0\.1:53 rcode=0 addr=$FAKE4"
	expect_match "response: HTTP/1\.[01] 200"
	grep -q "GET /lab-dns peer=$LAB_PROXY_EXT4" "$LAB_DIR/http-files-v4.log" ||
		lab_fail "the server did not see the request from the proxy:" "$(tail -n 5 "$LAB_DIR/http-files-v4.log")"
	lab_assert_no_dns_leak
}
