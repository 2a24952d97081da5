#!/usr/bin/env bats
# UDP through the proxy (RFC 1928 UDP ASSOCIATE) in the firewall lab: the
# client namespace reaches only danted (198.51.100.1 / 2001:db8:1::1), which
# relays datagrams to the server host's UDP echo (port 7) and its small
# authoritative DNS server (port 53), tests/servers/udp_lab_server.py.  Both
# log every datagram's source, which must be the proxy's external address
# (203.0.113.1 / 2001:db8:2::1).  Clients run under scripts/socksify with
# the lab's configs, which leave "udp" at its default (proxy).  Every test
# checks the echoed content, the source the server saw and that the client's
# DNS sentinel saw no query.  Topology and helpers: tests/lab/lab.bash.

# shellcheck source=tests/lab/lab.bash
source "$BATS_TEST_DIRNAME/../lab/lab.bash"

UDPC=$LAB_HOME/clients/udp.py
MMSG=$LAB_ROOT/build/tests/udp_mmsg
CONF4=$LAB_HOME/client-v4.conf
CONF6=$LAB_HOME/client-v6.conf
PEER4=$LAB_PROXY_EXT4
PEER6=$LAB_PROXY_EXT6
NO_LIB="no socksify here: the release pass runs it"

setup_file() {
	lab_setup_file lab_udp.bats "network namespaces, danted" "$MMSG" cmd:dig:bind9-dnsutils
}

teardown_file() {
	lab_teardown_checked
}

setup() {
	lab_setup
	: >"$LAB_UDP_LOG"
}

teardown() {
	lab_teardown "$LAB_DNS_LOG" "$LAB_DIR/danted.out" "$LAB_UDP_LOG" "$LAB_DIR/udp.out"
}

# prog_out: the output without the library's own log lines.
prog_out() {
	grep -v '^socksify' <<<"$output" || true
}

expect_line() { # LINE: one line of the output is exactly LINE
	grep -qxF -- "$1" <<<"$output" || lab_fail "expected a line '$1'; output:" "$output"
}

# lab_udp_count KIND ADDR: lines of $LAB_UDP_LOG of KIND (echo or dns)
# whose source is ADDR (any form; v4-mapped counts as IPv4).
lab_udp_count() {
	"$LAB_PY" - "$1" "$2" "$LAB_UDP_LOG" <<'PY'
import ipaddress, sys

def norm(a):
    a = ipaddress.ip_address(a.strip("[]"))
    return getattr(a, "ipv4_mapped", None) or a

kind, want = sys.argv[1], norm(sys.argv[2])
n = 0
with open(sys.argv[3]) as f:
    for line in f:
        words = line.split()
        if len(words) < 2 or words[0] != kind or not words[1].startswith("from="):
            continue
        if norm(words[1][5:].rpartition(":")[0]) == want:
            n += 1
print(n)
PY
}

# expect_udp_via KIND PEER [MIN]: the server logged at least MIN (default
# 1) datagrams of KIND (echo, dns), every one of them from PEER (the
# proxy's external address), and the client's sentinel saw nothing.
expect_udp_via() {
	local kind=$1 peer=$2 min=${3:-1} n all
	n=$(lab_udp_count "$kind" "$peer")
	all=$(grep -c "^$kind " "$LAB_UDP_LOG" || true)
	((n >= min)) || lab_fail "the $kind server saw $n datagrams from $peer (want >= $min):" \
		"$(tail -n 5 "$LAB_UDP_LOG")" || return 1
	((n == all)) || lab_fail "the $kind server saw datagrams from elsewhere than $peer:" \
		"$(grep -v "from=$peer" "$LAB_UDP_LOG" | head -n 5)" || return 1
	lab_assert_no_dns_leak
}

# udp_py MODE HOST [ARG] [CONF]: the python client under socksify.
udp_py() {
	run lab_sfy -c "${4:-$CONF4}" "$LAB_PY" "$UDPC" "$1" "$2" "$LAB_UDP_ECHO_PORT" ${3:+"$3"}
}

# --------------------------------------------------------------- control
@test "control: without socksify the client cannot reach the UDP echo or the DNS server" {
	lab_skip_under_asan "$NO_LIB"
	run in_client "$LAB_PY" "$UDPC" unconnected "$LAB_SERVER4" "$LAB_UDP_ECHO_PORT"
	expect_status 1
	[[ $output == "error: sendto: ENETUNREACH "* ]] || lab_fail "expected ENETUNREACH:" "$output"
	run in_client dig +tries=1 +time=1 "@$LAB_SERVER4" files.test
	[[ $status -ne 0 ]] || lab_fail "dig reached the server directly:" "$output"
	[[ ! -s $LAB_UDP_LOG ]] || lab_fail "the server saw:" "$(cat "$LAB_UDP_LOG")"
}

# ---------------------------------------------------------- python modes
@test "python unconnected sendto/recvfrom to an IPv4 literal: echoed, the server sees the proxy" {
	udp_py unconnected "$LAB_SERVER4"
	expect_status 0 || return 1
	expect_line "from=$LAB_SERVER4:$LAB_UDP_ECHO_PORT" || return 1
	expect_udp_via echo "$PEER4" 1
}

@test "python connected send/recv: echoed, getpeername is the server" {
	udp_py connected "$LAB_SERVER4"
	expect_status 0 || return 1
	expect_line "peer=$LAB_SERVER4:$LAB_UDP_ECHO_PORT" || return 1
	expect_udp_via echo "$PEER4" 1
}

@test "python 8 KiB datagram: echoed byte for byte" {
	udp_py big "$LAB_SERVER4"
	expect_status 0 || return 1
	expect_line "big=ok len=8192" || return 1
	grep -q "len=8192 " "$LAB_UDP_LOG" || lab_fail "the server never got 8192 bytes:" "$(cat "$LAB_UDP_LOG")"
	expect_udp_via echo "$PEER4" 1
}

@test "python 200 round trips on one socket: all echoed, one association" {
	udp_py rounds "$LAB_SERVER4" 200
	expect_status 0 || return 1
	expect_line "rounds=200" || return 1
	expect_udp_via echo "$PEER4" 200 || return 1
	# One association: every datagram left danted from one port.
	local ports
	ports=$(grep -o 'from=[^ ]*' "$LAB_UDP_LOG" | sort -u | wc -l)
	((ports == 1)) || lab_fail "the datagrams came from $ports source ports:" "$(grep -o 'from=[^ ]*' "$LAB_UDP_LOG" | sort | uniq -c)"
}

# ------------------------------------------------------------------- DNS
@test "dig @203.0.113.10 files.test: DNS through the proxy, answered by the server's DNS, not a leak" {
	run lab_sfy -c "$CONF4" dig +tries=1 +time=3 +short "@$LAB_SERVER4" files.test A
	expect_status 0 || return 1
	[[ $(prog_out) == "$LAB_SERVER4" ]] || lab_fail "expected $LAB_SERVER4:" "$output" || return 1
	grep -q "^dns from=$PEER4:[0-9]* name=files.test type=A rcode=0$" "$LAB_UDP_LOG" ||
		lab_fail "the DNS server did not see files.test from $PEER4:" "$(cat "$LAB_UDP_LOG")" || return 1
	expect_udp_via dns "$PEER4" 1
}

@test "dig @2001:db8:2::10 files6.test AAAA through the proxy's IPv6 address" {
	run lab_sfy -c "$CONF6" dig +tries=1 +time=3 +short "@$LAB_SERVER6" files6.test AAAA
	expect_status 0 || return 1
	[[ $(prog_out) == "$LAB_SERVER6" ]] || lab_fail "expected $LAB_SERVER6:" "$output" || return 1
	expect_udp_via dns "$PEER6" 1
}

# ------------------------------------------------------- other programs
# ncat -u exits at the end of its input, without waiting for the echo; and
# a datagram sent just before the program exits may die with its
# association (danted drops what arrives after the control connection
# closed).  So the input stays open until the echo is back.
@test "ncat -u: a line echoed" {
	# shellcheck disable=SC2016 # expanded by the inner bash
	run lab_sfy bash -c '(echo ncat-udp-line; sleep 1.5) | ncat -u -i 2 "$0" "$1"' \
		"$LAB_SERVER4" "$LAB_UDP_ECHO_PORT"
	[[ $output == *"ncat-udp-line"* ]] || lab_fail "no echo (status $status):" "$output" || return 1
	expect_udp_via echo "$PEER4" 1
}

@test "socat UDP: a line echoed" {
	run lab_sfy socat -T 2 - "UDP:$LAB_SERVER4:$LAB_UDP_ECHO_PORT" <<<"socat-udp-line"
	expect_status 0 || return 1
	[[ $(prog_out) == "socat-udp-line" ]] || lab_fail "no echo:" "$output" || return 1
	expect_udp_via echo "$PEER4" 1
}

@test "C client: sendmmsg/recvmmsg with poll, 32 datagrams" {
	run lab_sfy "$MMSG" "$LAB_SERVER4" "$LAB_UDP_ECHO_PORT" poll 32
	expect_status 0 || return 1
	[[ $output == "sent=32 received=32 matched=32 from=$LAB_SERVER4:$LAB_UDP_ECHO_PORT "* ]] ||
		lab_fail "unexpected:" "$output" || return 1
	expect_udp_via echo "$PEER4" 32
}

@test "C client: sendmmsg/recvmmsg with epoll, 32 datagrams, IPv6" {
	run lab_sfy -c "$CONF6" "$MMSG" "$LAB_SERVER6" "$LAB_UDP_ECHO_PORT" epoll 32
	expect_status 0 || return 1
	[[ $output == "sent=32 received=32 matched=32 from=[$LAB_SERVER6]:$LAB_UDP_ECHO_PORT "* ]] ||
		lab_fail "unexpected:" "$output" || return 1
	expect_udp_via echo "$PEER6" 32
}

# -------------------------------------------------- IPv4 and IPv6 mixes
@test "mix: IPv6 literal through the proxy's IPv4 address" {
	udp_py unconnected "$LAB_SERVER6" "" "$CONF4"
	expect_status 0 || return 1
	expect_line "from=[$LAB_SERVER6]:$LAB_UDP_ECHO_PORT" || return 1
	expect_udp_via echo "$PEER6" 1
}

@test "mix: IPv4 literal through the proxy's IPv6 address" {
	udp_py unconnected "$LAB_SERVER4" "" "$CONF6"
	expect_status 0 || return 1
	expect_line "from=$LAB_SERVER4:$LAB_UDP_ECHO_PORT" || return 1
	expect_udp_via echo "$PEER4" 1
}

@test "mix: by name files.test through the proxy's IPv4 address (ATYP 3, resolved by the proxy)" {
	udp_py unconnected files.test "" "$CONF4"
	expect_status 0 || return 1
	[[ $output == *"reply=udp-unconnected-"* ]] || lab_fail "no echo:" "$output" || return 1
	expect_udp_via echo "$PEER4" 1
}

@test "mix: by name files6.test (IPv6 server) through the proxy's IPv4 address" {
	udp_py connected files6.test "" "$CONF4"
	expect_status 0 || return 1
	expect_udp_via echo "$PEER6" 1
}

@test "mix: by name files.test (IPv4 server) through the proxy's IPv6 address" {
	udp_py rounds files.test 20 "$CONF6"
	expect_status 0 || return 1
	expect_line "rounds=20" || return 1
	expect_udp_via echo "$PEER4" 20
}

# ---------------------------------------------------------------- stress
@test "stress: 10,000 datagrams from 8 threads through danted: no crash, no fd leak" {
	run lab_sfy "$MMSG" "$LAB_SERVER4" "$LAB_UDP_ECHO_PORT" stress 8 1250
	echo "# $output" >&3
	expect_status 0 || return 1
	[[ $output =~ fds_before=([0-9]+)\ fds_after=([0-9]+)\ sent=10000\ received=([0-9]+) ]] ||
		lab_fail "unexpected:" "$output" || return 1
	((BASH_REMATCH[3] > 0)) || lab_fail "no echo came back:" "$output" || return 1
	expect_udp_via echo "$PEER4" 1
}
