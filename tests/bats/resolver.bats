#!/usr/bin/env bats
# Name resolution under socksify: names become fake addresses that map back
# to the name (remote DNS), local names stay real, and no lookup reaches
# the DNS sentinel unless it should.

load helpers

FAKE4='(24[0-9]|25[0-5])\.[0-9]+\.[0-9]+\.[0-9]+'
FAKE6='100::[0-9a-f:]+'

setup_file() {
	common_setup_file
	start_sentinel
}

setup() {
	common_setup
	# Resolution must not need the proxy: point at a closed port.
	proxy_conf "$CONF" "$(free_port)"
}

# Every address line of the output (FAMILY SOCKTYPE PROTO ADDR PORT CANON).
addr_lines() {
	grep -E '^inet6? ' <<<"$output" || true
}

@test "control: the sentinel sees a lookup made without socksify" {
	run run_isolated "$TESTBIN/resolve" web.test 80
	expect_status 1
	expect_contains "error: EAI_"
	grep -q '^web.test ' "$SENTINEL_LOG" ||
		fail "sentinel saw nothing; the leak tests could not fail"
}

@test "name -> fake IPv4 from 240.0.0.0/4, reversible, no DNS" {
	run sfy "$TESTBIN/resolve" web.test 80 --family 4
	expect_status 0
	expect_match "^inet stream 6 $FAKE4 80 -"
	[[ $(addr_lines | grep -cvE " $FAKE4 80 ") -eq 0 ]] ||
		fail "non-fake address:" "$output"
	expect_contains "name=web.test"
	expect_contains "hba=web.test"
	expect_match "hbn=web.test $FAKE4"
	assert_no_dns_leak
}

@test "name -> fake IPv6 from 100::/64 for AF_INET6" {
	run sfy "$TESTBIN/resolve" web.test 443 --family 6
	expect_status 0
	expect_match "inet6 stream 6 $FAKE6 443 -"
	[[ $(addr_lines | grep -cvE " $FAKE6 443 ") -eq 0 ]] ||
		fail "non-fake address:" "$output"
	expect_contains "name=web.test"
	expect_contains "hba=web.test"
	assert_no_dns_leak
}

@test "AF_UNSPEC returns only fake addresses" {
	run sfy "$TESTBIN/resolve" web.test 80
	expect_status 0
	[[ -n $(addr_lines) ]] || fail "no addresses: $output"
	[[ $(addr_lines | grep -cvE " ($FAKE4|$FAKE6) 80 ") -eq 0 ]] ||
		fail "non-fake address:" "$output"
	assert_no_dns_leak
}

@test "the same name maps to the same fake address, others differ" {
	# Within one process a name keeps its address.
	run sfy "$PY" -c 'import socket as s
a = s.getaddrinfo("a.test", 1, s.AF_INET, s.SOCK_STREAM)[0][4][0]
b = s.getaddrinfo("b.test", 1, s.AF_INET, s.SOCK_STREAM)[0][4][0]
a2 = s.getaddrinfo("a.test", 1, s.AF_INET, s.SOCK_STREAM)[0][4][0]
print(a, b, a2, a == a2, a != b)'
	expect_status 0
	expect_match " True True$"
	assert_no_dns_leak
}

@test "canonname flag returns the name" {
	run sfy "$TESTBIN/resolve" web.test 80 --family 4 --flags canonname
	expect_status 0
	expect_match "^inet stream 6 $FAKE4 80 web.test"
}

@test "service names are resolved locally (http -> 80)" {
	run sfy "$TESTBIN/resolve" web.test http --family 4
	expect_status 0
	expect_match "^inet stream 6 $FAKE4 80 "
}

@test "localhost resolves to the real loopback address" {
	run sfy "$TESTBIN/resolve" localhost 80 --family 4
	expect_status 0
	expect_contains "inet stream 6 127.0.0.1 80"
	expect_contains "hbn=localhost 127.0.0.1"
	assert_no_dns_leak
}

@test "/etc/hosts names resolve locally to their real address" {
	run sfy "$TESTBIN/resolve" hostsonly.test 80 --family 4
	expect_status 0
	expect_contains "inet stream 6 127.0.0.3 80"
	expect_contains "hbn=hostsonly.test 127.0.0.3"
	assert_no_dns_leak
}

@test "numeric hosts pass through unchanged" {
	run sfy "$TESTBIN/resolve" 127.0.0.5 80 --family 4
	expect_status 0
	expect_contains "inet stream 6 127.0.0.5 80"
	run sfy "$TESTBIN/resolve" ::1 80 --family 6
	expect_status 0
	expect_contains "inet6 stream 6 ::1 80"
}

@test "AI_NUMERICHOST with a name fails, no fake address" {
	run sfy "$TESTBIN/resolve" web.test 80 --flags numerichost
	expect_status 1
	expect_contains "error: EAI_NONAME"
	assert_no_dns_leak
}

@test "direct_domain names are resolved by the local resolver" {
	echo "direct_domain = direct.test" >>"$CONF"
	run sfy "$TESTBIN/resolve" www.direct.test 80 --family 4
	expect_status 1
	expect_contains "error: EAI_"
	grep -q '^www.direct.test ' "$SENTINEL_LOG" ||
		fail "not resolved locally; sentinel log:" "$(cat "$SENTINEL_LOG")"
}

@test "direct_domain matches the domain itself" {
	echo "direct_domain = direct.test" >>"$CONF"
	run sfy "$TESTBIN/resolve" direct.test 80 --family 4
	expect_status 1
	grep -q '^direct.test ' "$SENTINEL_LOG" || fail "not resolved locally"
}

@test "direct_domain matches whole labels only (xdirect.test is remote)" {
	echo "direct_domain = direct.test" >>"$CONF"
	run sfy "$TESTBIN/resolve" xdirect.test 80 --family 4
	expect_status 0
	expect_match "^inet stream 6 $FAKE4 80"
	assert_no_dns_leak
}

@test "remote_dns = no resolves locally" {
	echo "remote_dns = no" >>"$CONF"
	run sfy "$TESTBIN/resolve" web.test 80 --family 4
	expect_status 1
	grep -q '^web.test ' "$SENTINEL_LOG" || fail "not resolved locally"
}

@test "socks5:// proxy URL means local DNS" {
	write_conf "$CONF" "proxy = socks5://127.0.0.1:$(free_port)" \
		"direct_loopback = no"
	run sfy "$TESTBIN/resolve" web.test 80 --family 4
	expect_status 1
	grep -q '^web.test ' "$SENTINEL_LOG" || fail "not resolved locally"
}

@test "fake_ipv4 and fake_ipv6 ranges are configurable" {
	echo "fake_ipv4 = 10.99.0.0/16" >>"$CONF"
	echo "fake_ipv6 = fd00:99::/64" >>"$CONF"
	run sfy "$TESTBIN/resolve" web.test 80 --family 4
	expect_status 0
	expect_match "^inet stream 6 10\.99\.[0-9]+\.[0-9]+ 80"
	expect_contains "name=web.test"
	run sfy "$TESTBIN/resolve" web.test 80 --family 6
	expect_status 0
	expect_match "^inet6 stream 6 fd00:99::[0-9a-f:]+ 80"
	assert_no_dns_leak
}

@test "python gethostbyname by name gives a fake address, no DNS" {
	run sfy "$PY" -c 'import socket; print(socket.gethostbyname("gh.test"))'
	expect_status 0
	[[ $output =~ ^$FAKE4$ ]] || fail "$output"
	assert_no_dns_leak
}

@test "gethostbyaddr_r (python) of a fake address gives the name, no PTR" {
	run sfy "$PY" -c 'import socket
print(socket.gethostbyaddr(socket.gethostbyname("gh.test"))[0])'
	expect_status 0
	[[ $output == gh.test ]] || fail "$output"
	assert_no_dns_leak
}

@test "curl by name under run_isolated: no DNS leak" {
	skip_curl_under_asan
	run sfy curl -sS --max-time 5 "http://leakcheck.test:1/"
	# The proxy is down: curl got as far as connect() (exit 7, "Failed to
	# connect"), so it did resolve the name; what matters is that it did
	# not ask DNS on its way there.  (Any other status, e.g. 6 for a failed
	# lookup or 124 for a hang, means the test proved nothing.)
	expect_status 7
	assert_no_dns_leak
}

# /etc/hosts is kept between look-ups and read again when it changes.
@test "/etc/hosts edited while a program runs: the next look-up sees the edit" {
	cp "$CLIENT_HOSTS" "$BATS_TEST_TMPDIR/hosts"
	CLIENT_HOSTS=$BATS_TEST_TMPDIR/hosts run sfy "$PY" -c '
import socket
def v4(name):
    return socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
print("before", v4("edited.test"), v4("hostsonly.test"))
with open("/etc/hosts", "a") as f:
    f.write("127.0.0.9 edited.test\n")
print("after", v4("edited.test"), v4("hostsonly.test"))'
	expect_status 0
	expect_match "before (24[0-9]|25[0-5])\.[0-9.]+ 127\.0\.0\.3"
	expect_contains "after 127.0.0.9 127.0.0.3"
	assert_no_dns_leak
}
