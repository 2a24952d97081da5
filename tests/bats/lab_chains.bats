#!/usr/bin/env bats
# Proxy chains, failover, per-destination routes and every hop type (issue
# 14) in the firewall lab (tests/lab/lab.bash), with the extra proxies of
# lab_start_chain_proxies:
#
#   client 198.51.100.2 --> danted       198.51.100.1:1080  (proxy ns, the lab's)
#                           danted-rr    198.51.100.1:1082/1083/1084 (proxy ns)
#                           tinyproxy    198.51.100.1:8888, :8889 with Basic auth
#                           danted-inner 203.0.113.10:1081 (server ns; the client
#                                        has no route to it) --> "inner", HTTP on
#                                        the server's 127.0.0.1:8081 only
#                           hop3         127.0.0.1:1082 in the server ns (test
#                                        SOCKS5 server; reachable only from there)
#                           hop4a        203.0.113.10:1087 (test server with
#                                        SOCKS4a; danted has no 4a)
#
# files.test and www.corp.test resolve only in the proxy namespace,
# inner.test only in the server namespace: a chain by name works only when
# each name goes to the hop that knows it.  Every test checks the content,
# where the traffic went (the proxies' and servers' logs name the peers),
# the errno when it fails, and that the client's DNS sentinel saw nothing.
# Syntax: /work/issue14.md, socksify.conf(5) (proxy = URL, URL; repeated
# proxy lines; pick; route = PATTERN... via|direct|block; retry_after).
#
# Needs root.  Runs from the host namespace or inside tests/bats/run's.

# shellcheck source=tests/lab/lab.bash
source "$BATS_TEST_DIRNAME/../lab/lab.bash"

TESTBIN=$LAB_ROOT/build/tests
P=$LAB_PROXY4                 # the proxy host's address, as the client sees it
S=$LAB_SERVER4                # the server host's
C=$LAB_CLIENT4
EXT=$LAB_PROXY_EXT4           # what the server host sees from the proxy host
DEAD_PORT=1099                # nothing listens there (connection refused)
GARBAGE_PORT=1090             # server ns: SOCKS5 hop that answers garbage
SILENT_PORT=1091              # server ns: SOCKS5 hop that never answers
FLAKY_PORT=1095               # proxy ns: closes after the greeting, records each try
NO_LIB="no socksify here: the release pass runs it"
CURL_HANGS="curl hangs under a preloaded ASan runtime"
LFTP_SET='set ftp:passive-mode off; set net:max-retries 1; set net:timeout 15; set xfer:clobber on'

setup_file() {
	lab_setup_file lab_chains.bats "network namespaces, danted" "$TESTBIN/tcp_get" \
		cmd:tinyproxy:tinyproxy cmd:proxychains4:proxychains4 cmd:lftp:lftp || return 1
	[[ -z $LAB_SKIP ]] || return 0
	if ! {
		lab_start_chain_proxies &&
			lab_start_socks_testserver "$LAB_S" garbage "$S:$GARBAGE_PORT" \
				--mode method-raw --raw 485454502f312e312034303020426164 &&
			lab_start_socks_testserver "$LAB_S" silent "$S:$SILENT_PORT" --mode silent &&
			lab_start_socks_testserver "$LAB_P" flaky "$P:$FLAKY_PORT" --mode close-after-greeting
	}; then
		lab_fail "could not start the chain proxies"
		return 1
	fi
	export FTP_SRC=$LAB_FTP_HOME/chain.bin
	head -c 262144 /dev/urandom >"$FTP_SRC"
	FTP_SHA=$(sha256sum "$FTP_SRC" | cut -d' ' -f1)
	export FTP_SHA
}

teardown_file() {
	lab_teardown_checked
}

setup() {
	lab_setup
	SFY_LOG=$BATS_TEST_TMPDIR/socksify.log
	CONF=$BATS_TEST_TMPDIR/chain.conf
	: >"$SFY_LOG"
	# Where each log stands: the tests look only at what follows.
	declare -gA MARK=()
	local f
	for f in "$LAB_DIR"/*.out "$LAB_DIR"/*.log "$LAB_DIR"/*.jsonl; do
		MARK[$f]=$(wc -l <"$f")
	done
}

teardown() {
	[[ -z $LAB_SKIP ]] || return 0
	if [[ -z ${BATS_TEST_COMPLETED-} ]]; then
		local f
		for f in "$SFY_LOG" "$LAB_DNS_LOG" "$LAB_DANTED_LOG" "$LAB_DANTED2_LOG" "$LAB_RR_LOG" \
			"$LAB_DIR"/tinyproxy*.log "$LAB_DIR"/*.jsonl "$LAB_DIR/http-inner.log"; do
			[[ -s $f ]] || continue
			echo "--- $f (since the test began)"
			since "$f" | grep -v '\[debug\]' | tail -n 12
		done
	fi
	lab_no_sanitizer_report
}

# ------------------------------------------------------------- helpers
# conf LINES...: $CONF with the lab's time limits, the log in $SFY_LOG at
# info (the chosen route and why), and LINES.
conf() {
	{
		echo "connect_timeout = 3"
		echo "handshake_timeout = 5"
		echo "log_level = info"
		echo "log_file = $SFY_LOG"
		printf '%s\n' "$@"
	} >"$CONF"
}

# sfy CMD...: CMD under socksify with $CONF in the client namespace.
sfy() {
	lab_sfy -c "$CONF" "$@"
}

# get HOST PORT PATH [ARGS...]: tests/c/tcp_get under socksify (body on
# stdout; peer=, connect_ms= and "error: STEP: ENAME (...)" on stderr).
get() {
	sfy "$TESTBIN/tcp_get" "$@"
}

# since FILE: the lines FILE got since the test began.
since() {
	tail -n "+$((${MARK[$1]:-0} + 1))" "$1" 2>/dev/null
}

# count FILE ERE: new lines of FILE that match.
count() {
	since "$1" | grep -Ec -- "$2" || true
}

# expect_count FILE ERE N: exactly N new matching lines (waits up to 2 s
# for the Nth: danted writes a session's line as it opens it).
expect_count() {
	local file=$1 re=$2 want=$3 got i
	for ((i = 0; i < 40; i++)); do
		got=$(count "$file" "$re")
		((got >= want)) && break
		sleep 0.05
	done
	((got == want)) ||
		lab_fail "$(basename "$file"): $got new lines match /$re/, expected $want:" "$(since "$file" | tail -n 15)"
}

# sess FROM INTERNAL TO: a danted session line: client address FROM (any
# port) came in on INTERNAL (ADDR.PORT) and went to TO (ADDR.PORT; danted
# logs the address it resolved a name to, so these lines cannot tell a
# name from an address: the DNS sentinel and hop3's record do).
sess() {
	printf 'tcp/connect \\[: %s\\.[0-9]+ %s -> [^ ]+ %s$' "$(re_quote "$1")" "$(re_quote "$2")" "$(re_quote "$3")"
}

# expect_errno ENAME: tcp_get failed with that errno.
expect_errno() {
	expect_status 1 || return 1
	[[ $output =~ error:\ [a-z_]+:\ $1\  ]] || lab_fail "expected error $1; output:" "$output"
}

# connect_ms: the connect() time tcp_get reported.
connect_ms() {
	[[ $output =~ connect_ms=([0-9]+) ]] || lab_fail "no connect_ms in:" "$output" || return 1
	echo "${BASH_REMATCH[1]}"
}

expect_log() { # ERE: a line of socksify's log matches
	grep -Eq -- "$1" "$SFY_LOG" || lab_fail "socksify's log has no /$1/:" "$(cat "$SFY_LOG")"
}

inner_hello() { # PATH: what the inner service answers, through danted-inner
	echo "hello from inner path=$1 peer=127.0.0.1"
}

# ----------------------------------------------------- the lab, no socksify
@test "chain lab: the extra proxies answer, and the client cannot reach the second danted or the inner service itself" {
	lab_skip_under_asan "$NO_LIB"
	# No route from the client to the server host, the second danted or 'inner'.
	run in_client curl -sS --max-time 3 --socks5-hostname "$S:$LAB_DANTED2_PORT" "http://inner.test:$LAB_INNER_PORT/"
	expect_status 7
	# From the proxy host the second danted resolves inner.test itself.
	run ip netns exec "$LAB_P" timeout 10 curl -sS --max-time 5 \
		--socks5-hostname "$S:$LAB_DANTED2_PORT" "http://inner.test:$LAB_INNER_PORT/from-proxy"
	expect_status 0
	expect_output "$(inner_hello /from-proxy)"
	expect_count "$LAB_DANTED2_LOG" "$(sess "$EXT" "$S.$LAB_DANTED2_PORT" "127.0.0.1.$LAB_INNER_PORT")" 1
	# danted speaks SOCKS4 on the SOCKS5 port (not 4a: it takes 0.0.0.1 for
	# an address); the SOCKS4a hop is the test server, seen from the proxy.
	run in_client curl -sS --max-time 5 --socks4 "$P:$LAB_PROXY_PORT" "http://$S/s4"
	expect_status 0
	expect_output "hello from files-v4 path=/s4 peer=$EXT"
	run ip netns exec "$LAB_P" timeout 10 curl -sS --max-time 5 \
		--socks4a "$S:$LAB_HOP4A_PORT" "http://inner.test:$LAB_INNER_PORT/s4a"
	expect_status 0
	expect_output "$(inner_hello /s4a)"
	# tinyproxy: CONNECT, and Basic auth on the second one.
	run in_client curl -sS --max-time 5 -p -x "http://$P:$LAB_TINY_PORT" "http://files.test/tiny"
	expect_status 0
	expect_output "hello from files-v4 path=/tiny peer=$EXT"
	expect_count "$LAB_DIR/tinyproxy.log" "Connect \(file descriptor [0-9]+\): $(re_quote "$C")\$" 1
	run in_client curl -sS --max-time 5 -p -x "http://$P:$LAB_TINY_AUTH_PORT" -o /dev/null -w 'connect=%{http_connect}' "http://files.test/"
	expect_match 'connect=407'
	run in_client curl -sS --max-time 5 -p -x "http://$LAB_TINY_USER:$LAB_TINY_PASS@$P:$LAB_TINY_AUTH_PORT" "http://files.test/auth"
	expect_status 0
	expect_output "hello from files-v4 path=/auth peer=$EXT"
	lab_assert_no_dns_leak
}

@test "control: proxychains4 (strict_chain, proxy_dns) reaches the inner service through the same two hops" {
	lab_skip_under_asan "$NO_LIB"
	local pc=$BATS_TEST_TMPDIR/proxychains.conf
	printf '%s\n' strict_chain proxy_dns quiet_mode "remote_dns_subnet 224" \
		"tcp_read_time_out 5000" "tcp_connect_time_out 3000" "[ProxyList]" \
		"socks5 $P $LAB_PROXY_PORT" "socks5 $S $LAB_DANTED2_PORT" >"$pc"
	run in_client proxychains4 -q -f "$pc" curl -sS --max-time 10 "http://inner.test:$LAB_INNER_PORT/pc"
	expect_status 0
	expect_output "$(inner_hello /pc)"
	expect_count "$LAB_DANTED_LOG" "$(sess "$C" "$P.$LAB_PROXY_PORT" "$S.$LAB_DANTED2_PORT")" 1
	expect_count "$LAB_DANTED2_LOG" "$(sess "$EXT" "$S.$LAB_DANTED2_PORT" "127.0.0.1.$LAB_INNER_PORT")" 1
	lab_assert_no_dns_leak
}

@test "control: a single socks5h proxy still works (files.test through the lab's danted)" {
	conf "proxy = socks5h://$P:$LAB_PROXY_PORT"
	run get files.test 80 /single
	expect_status 0
	expect_match "hello from files-v4 path=/single peer=$EXT"
	expect_count "$LAB_DANTED_LOG" "$(sess "$C" "$P.$LAB_PROXY_PORT" "$S.80")" 1
	lab_assert_no_dns_leak
}

# --------------------------------------------------------------- chains
@test "two hops in the config, by name: hop 1 resolves hop 2 (files.test), hop 2 resolves inner.test (blocking and non-blocking)" {
	conf "proxy = socks5h://$P:$LAB_PROXY_PORT, socks5h://files.test:$LAB_DANTED2_PORT"
	run get inner.test "$LAB_INNER_PORT" /two
	expect_status 0
	expect_match "$(inner_hello /two)"
	run get inner.test "$LAB_INNER_PORT" /two-nb --nonblock
	expect_status 0
	expect_match "$(inner_hello /two-nb)"
	expect_count "$LAB_DANTED_LOG" "$(sess "$C" "$P.$LAB_PROXY_PORT" "$S.$LAB_DANTED2_PORT")" 2
	expect_count "$LAB_DANTED2_LOG" "$(sess "$EXT" "$S.$LAB_DANTED2_PORT" "127.0.0.1.$LAB_INNER_PORT")" 2
	expect_count "$LAB_DIR/http-inner.log" "^GET /two(-nb)? peer=127\.0\.0\.1$" 2
	lab_assert_no_dns_leak
}

@test "three hops by name: hop 3 (reachable only from the server host's loopback) gets inner.test and resolves it" {
	conf "proxy = socks5h://$P:$LAB_PROXY_PORT, socks5h://files.test:$LAB_DANTED2_PORT, socks5h://127.0.0.1:$LAB_HOP3_PORT"
	run get inner.test "$LAB_INNER_PORT" /three
	expect_status 0
	expect_match "$(inner_hello /three)"
	expect_count "$LAB_DANTED_LOG" "$(sess "$C" "$P.$LAB_PROXY_PORT" "$S.$LAB_DANTED2_PORT")" 1
	expect_count "$LAB_DANTED2_LOG" "$(sess "$EXT" "$S.$LAB_DANTED2_PORT" "127.0.0.1.$LAB_HOP3_PORT")" 1
	# hop 3 saw danted-inner's address and the name, as a name (ATYP 3).
	expect_count "$LAB_DIR/hop3.jsonl" "\"atyp\": 3.*\"host\": \"inner\.test\".*\"peer\": \"127\.0\.0\.1\".*\"port\": $LAB_INNER_PORT" 1
	lab_assert_no_dns_leak
}

@test "socksify --check HOST: the route HOST takes and why, then every hop step by step" {
	conf "proxy = socks5h://$P:$LAB_PROXY_PORT, socks5h://files.test:$LAB_DANTED2_PORT" \
		"route = .corp.test via socks5h://$P:$LAB_PROXY_PORT"
	run in_client "$LAB_SOCKSIFY" -c "$CONF" --check "inner.test:$LAB_INNER_PORT"
	expect_status 0
	expect_match "route for inner\.test:$LAB_INNER_PORT: .*$(re_quote "$P:$LAB_PROXY_PORT").*files\.test:$LAB_DANTED2_PORT.* because "
	expect_match "hop 1 +connect ok in [0-9.]+ ms: TCP connection to [a-z0-9]*:?/*$(re_quote "$P:$LAB_PROXY_PORT")"
	expect_match "hop 1 +ok in [0-9.]+ ms: .* reached .*files\.test:$LAB_DANTED2_PORT"
	expect_match "hop 2 +ok in [0-9.]+ ms: CONNECT inner\.test:$LAB_INNER_PORT through "
	expect_match "result: OK"
	# A hop that is down: the probe names it and the result fails.
	conf "proxy = socks5h://$P:$LAB_PROXY_PORT, socks5h://$S:1085"
	run in_client "$LAB_SOCKSIFY" -c "$CONF" --check "files.test:80"
	expect_status 1
	expect_match "hop 1 +FAILED after [0-9.]+ ms at .*replied 5"
	lab_assert_no_dns_leak
}

@test "chains with -x URL,URL and SOCKSIFY_PROXY (hop 2 by its IPv6 address)" {
	local x="socks5h://$P:$LAB_PROXY_PORT,socks5h://$S:$LAB_DANTED2_PORT"
	conf # no proxy line: -x gives it
	if [[ -n $LAB_ASAN_RT ]]; then
		run in_client env LD_PRELOAD="$LAB_ASAN_RT" "$LAB_SOCKSIFY" -c "$CONF" -x "$x" -- "$TESTBIN/tcp_get" inner.test "$LAB_INNER_PORT" /dash-x
	else
		run in_client "$LAB_SOCKSIFY" -c "$CONF" -x "$x" -- "$TESTBIN/tcp_get" inner.test "$LAB_INNER_PORT" /dash-x
	fi
	expect_status 0
	expect_match "$(inner_hello /dash-x)"
	SOCKSIFY_PROXY="socks5h://$P:$LAB_PROXY_PORT, socks5h://[$LAB_SERVER6]:$LAB_DANTED2_PORT" \
		run get inner.test "$LAB_INNER_PORT" /env
	expect_status 0
	expect_match "$(inner_hello /env)"
	expect_count "$LAB_DANTED_LOG" "$(sess "$C" "$P.$LAB_PROXY_PORT" "$S.$LAB_DANTED2_PORT")" 1
	expect_count "$LAB_DANTED2_LOG" "$(sess "$EXT" "$S.$LAB_DANTED2_PORT" "127.0.0.1.$LAB_INNER_PORT")" 1
	expect_count "$LAB_DANTED2_LOG" "$(sess "$LAB_PROXY_EXT6" "$LAB_SERVER6.$LAB_DANTED2_PORT" "127.0.0.1.$LAB_INNER_PORT")" 1
	lab_assert_no_dns_leak
}

# ------------------------------------------------------------ hop types
@test "every hop type in a chain: socks5, socks4, http and http with Basic auth as hop 1; socks4a as hop 2 resolving inner.test" {
	local hop1 i=0 names=(socks5 socks4 socks4a http http-auth)
	for hop1 in "socks5://$P:$LAB_PROXY_PORT, socks5h://$S:$LAB_DANTED2_PORT" \
		"socks4://$P:$LAB_PROXY_PORT, socks5h://$S:$LAB_DANTED2_PORT" \
		"socks5h://$P:$LAB_PROXY_PORT, socks4a://$S:$LAB_HOP4A_PORT" \
		"http://$P:$LAB_TINY_PORT, socks5h://$S:$LAB_DANTED2_PORT" \
		"http://$LAB_TINY_USER:$LAB_TINY_PASS@$P:$LAB_TINY_AUTH_PORT, socks5h://files.test:$LAB_DANTED2_PORT"; do
		conf "proxy = $hop1"
		run get inner.test "$LAB_INNER_PORT" "/hop1-${names[i]}"
		expect_status 0 || lab_fail "hop 1 ${names[i]} ($hop1)" || return 1
		expect_match "$(inner_hello "/hop1-${names[i]}")"
		i=$((i + 1))
	done
	# Three through the lab's danted, two through the tinyproxies.
	expect_count "$LAB_DANTED_LOG" "$(sess "$C" "$P.$LAB_PROXY_PORT" "$S.$LAB_DANTED2_PORT")" 2
	expect_count "$LAB_DANTED_LOG" "$(sess "$C" "$P.$LAB_PROXY_PORT" "$S.$LAB_HOP4A_PORT")" 1
	expect_count "$LAB_DIR/tinyproxy.log" "Request \(file descriptor [0-9]+\): CONNECT $(re_quote "$S:$LAB_DANTED2_PORT") " 1
	expect_count "$LAB_DIR/tinyproxy-auth.log" "Request \(file descriptor [0-9]+\): CONNECT files\.test:$LAB_DANTED2_PORT " 1
	expect_count "$LAB_DANTED2_LOG" "$(sess "$EXT" "$S.$LAB_DANTED2_PORT" "127.0.0.1.$LAB_INNER_PORT")" 4
	# The SOCKS4a hop got the name (4a) from the proxy host.
	expect_count "$LAB_DIR/hop4a.jsonl" "\"atyp\": 3.*\"host\": \"inner\.test\".*\"peer\": \"$(re_quote "$EXT")\".*\"socks\": 4" 1
	lab_assert_no_dns_leak
}

@test "every hop type as the only hop: socks5 and socks4 (IPv4 literal), http (by name; socks4a: above)" {
	local url i=0 names=(socks5 socks4 http) hosts=("$S" "$S" files.test)
	for url in "socks5://$P:$LAB_PROXY_PORT" "socks4://$P:$LAB_PROXY_PORT" \
		"http://$P:$LAB_TINY_PORT"; do
		conf "proxy = $url"
		run get "${hosts[i]}" 80 "/last-${names[i]}"
		expect_status 0 || lab_fail "last hop ${names[i]} ($url)" || return 1
		expect_match "hello from files-v4 path=/last-${names[i]} peer=$EXT"
		i=$((i + 1))
	done
	expect_count "$LAB_DANTED_LOG" "$(sess "$C" "$P.$LAB_PROXY_PORT" "$S.80")" 2
	expect_count "$LAB_DIR/tinyproxy.log" "CONNECT files\.test:80 " 1
	lab_assert_no_dns_leak
}

@test "socks4 cannot carry a name: a clear error, never a local look-up (as the last hop and for hop 2's name)" {
	conf "proxy = socks4://$P:$LAB_PROXY_PORT"
	run get files.test 80 /s4-name
	expect_status 1
	expect_log 'socks4'
	conf "proxy = socks4://$P:$LAB_PROXY_PORT, socks5h://files.test:$LAB_DANTED2_PORT"
	run get inner.test "$LAB_INNER_PORT" /s4-hop-name
	expect_status 1
	expect_count "$LAB_DANTED_LOG" 'tcp/connect \[: ' 0
	lab_assert_no_dns_leak
}

# ---------------------------------------------------- failover and down
@test "a proxy that is down: ECONNREFUSED at once, the log names it" {
	conf "proxy = socks5h://$P:$DEAD_PORT"
	run get files.test 80 /down
	expect_errno ECONNREFUSED
	(($(connect_ms) < 1000)) || lab_fail "took $(connect_ms) ms"
	expect_log "connect files\.test:80 via $(re_quote "$P:$DEAD_PORT").* failed"
	lab_assert_no_dns_leak
}

@test "hop 2 down: hop 1 answers 5; the error is ECONNREFUSED and the log line names hop 2" {
	conf "proxy = socks5h://$P:$LAB_PROXY_PORT, socks5h://$S:1085"
	run get files.test 80 /hop2-down
	expect_errno ECONNREFUSED
	expect_log "connect files\.test:80 via $(re_quote "$P:$LAB_PROXY_PORT") > $(re_quote "$S:1085") failed at hop 2: proxy replied 5 \(connection refused\)"
	lab_assert_no_dns_leak
}

@test "failover: a dead first route (refused) is skipped for the second; the info line says failover" {
	conf "proxy = socks5h://$P:$DEAD_PORT" "proxy = socks5h://$P:1082"
	run get files.test 80 /failover
	expect_status 0
	expect_match "hello from files-v4 path=/failover peer=$EXT"
	expect_count "$LAB_RR_LOG" "$(sess "$C" "$P.1082" "$S.80")" 1
	expect_log 'failover'
	lab_assert_no_dns_leak
}

@test "failover is remembered by every process of the session for retry_after seconds, then the route is tried again" {
	conf "proxy = socks5h://$P:$FLAKY_PORT" "proxy = socks5h://$P:1083" "retry_after = 2"
	# Three processes of one session, then a fourth after retry_after.
	run sfy sh -c "for p in a b c; do '$TESTBIN/tcp_get' files.test 80 /skip-\$p || exit 1; done
		sleep 2.5; exec '$TESTBIN/tcp_get' files.test 80 /skip-d"
	expect_status 0
	expect_match "path=/skip-c peer=$EXT"
	expect_match "path=/skip-d peer=$EXT"
	# The flaky hop saw the first process and the one after retry_after only.
	expect_count "$LAB_DIR/flaky.jsonl" "\"peer\": \"$(re_quote "$C")\"" 2
	expect_count "$LAB_RR_LOG" "$(sess "$C" "$P.1083" "$S.80")" 4
	lab_assert_no_dns_leak
}

@test "all routes down: the call fails at once with the last attempt's errno, in every process" {
	conf "proxy = socks5h://$P:$DEAD_PORT" "proxy = socks5h://$P:1098"
	run sfy sh -c "'$TESTBIN/tcp_get' files.test 80 /all-down-1; '$TESTBIN/tcp_get' files.test 80 /all-down-2"
	[[ $(grep -c 'error: [a-z_]*: ECONNREFUSED ' <<<"$output") -eq 2 ]] ||
		lab_fail "expected two ECONNREFUSED:" "$output"
	local ms
	for ms in $(grep -Eo 'connect_ms=[0-9]+' <<<"$output" | cut -d= -f2); do
		((ms < 500)) || lab_fail "a connect took $ms ms:" "$output"
	done
	lab_assert_no_dns_leak
}

# -------------------------------------------------------- round robin
@test "round robin over three proxies: six commands of one session spread 2/2/2 (counted in danted's log)" {
	conf "pick = round_robin" "proxy = socks5h://$P:1082" "proxy = socks5h://$P:1083" "proxy = socks5h://$P:1084"
	run sfy sh -c "for i in 1 2 3 4 5 6; do '$TESTBIN/tcp_get' files.test 80 /rr\$i || exit 1; done"
	expect_status 0
	expect_match "path=/rr6 peer=$EXT"
	local port
	for port in 1082 1083 1084; do
		expect_count "$LAB_RR_LOG" "$(sess "$C" "$P.$port" "$S.80")" 2
	done
	expect_log 'round.robin'
	lab_assert_no_dns_leak
}

# ------------------------------------------------------------- routes
@test "routes by domain suffix, exact name, CIDR with port and :PORT; the proxy line is the fallback" {
	conf "proxy = socks5h://$P:$LAB_PROXY_PORT" \
		"route = .corp.test via socks5h://$P:1082" \
		"route = files.test via socks5h://$P:1083" \
		"route = 203.0.113.0/24:80 via socks5://$P:1084" \
		"route = :$LAB_PAGE_PORT via http://$P:$LAB_TINY_PORT"
	run get www.corp.test 80 /suffix
	expect_match "hello from files-v4 path=/suffix peer=$EXT"
	run get files.test 80 /exact
	expect_match "hello from files-v4 path=/exact peer=$EXT"
	run get "$S" 80 /cidr
	expect_match "hello from files-v4 path=/cidr peer=$EXT"
	run get "$S" "$LAB_PAGE_PORT" /
	expect_match "peer=$(re_quote "$EXT")"
	run get "$LAB_SERVER6" 80 /fallback
	expect_match "hello from files-v6 path=/fallback peer=$LAB_PROXY_EXT6"
	expect_count "$LAB_RR_LOG" "$(sess "$C" "$P.1082" "$S.80")" 1
	expect_count "$LAB_RR_LOG" "$(sess "$C" "$P.1083" "$S.80")" 1
	expect_count "$LAB_RR_LOG" "$(sess "$C" "$P.1084" "$S.80")" 1
	expect_count "$LAB_RR_LOG" 'tcp/connect \[: ' 3
	expect_count "$LAB_DIR/tinyproxy.log" "CONNECT $(re_quote "$S:$LAB_PAGE_PORT") " 1
	expect_count "$LAB_DANTED_LOG" "$(sess "$C" "$P.$LAB_PROXY_PORT" "$LAB_SERVER6.80")" 1
	expect_count "$LAB_DANTED_LOG" 'tcp/connect \[: ' 1
	expect_log 'route'
	lab_assert_no_dns_leak
}

@test "route = ... block (by address:port and by name) refuses with EPERM or EACCES and no proxy sees it; direct goes direct" {
	conf "proxy = socks5h://$P:$LAB_PROXY_PORT" \
		"route = $S:22 block" \
		"route = *.blocked.test block" \
		"route = $C/32 direct"
	run get "$S" 22 /
	[[ $output =~ error:\ [a-z_]+:\ (EPERM|EACCES)\  ]] || lab_fail "expected EPERM or EACCES:" "$output"
	run get www.blocked.test 80 /
	[[ $output =~ error:\ [a-z_]+:\ (EPERM|EACCES)\  ]] || lab_fail "expected EPERM or EACCES:" "$output"
	run get "$C" "$LAB_LOCAL_PORT" /direct
	expect_status 0
	expect_match "hello from client-local path=/direct peer=$C"
	expect_count "$LAB_DANTED_LOG" 'tcp/connect \[: ' 0
	expect_count "$LAB_DANTED_LOG" 'block' 0
	lab_assert_no_dns_leak
}

# ------------------------------------------------------- hostile hops
@test "an intermediate hop that answers garbage: EPROTO, the log names hop 2" {
	conf "proxy = socks5h://$P:$LAB_PROXY_PORT, socks5h://$S:$GARBAGE_PORT, socks5h://127.0.0.1:$LAB_HOP3_PORT"
	run get inner.test "$LAB_INNER_PORT" /garbage
	expect_errno EPROTO
	expect_log "failed at hop 2"
	expect_log "$(re_quote "$S:$GARBAGE_PORT")"
	# Reached through hop 1 (the server host saw the proxy's address).
	expect_count "$LAB_DIR/garbage.jsonl" "\"peer\": \"$(re_quote "$EXT")\"" 1
	expect_count "$LAB_DIR/hop3.jsonl" . 0
	lab_assert_no_dns_leak
}

@test "an intermediate hop that says nothing: ETIMEDOUT within handshake_timeout" {
	conf "proxy = socks5h://$P:$LAB_PROXY_PORT, socks5h://$S:$SILENT_PORT, socks5h://127.0.0.1:$LAB_HOP3_PORT" \
		"handshake_timeout = 2"
	run get inner.test "$LAB_INNER_PORT" /silent
	expect_errno ETIMEDOUT
	local ms
	ms=$(connect_ms) || return 1
	((ms >= 1500 && ms <= 3500)) || lab_fail "ETIMEDOUT after $ms ms, expected about 2000"
	expect_log "failed at hop 2"
	expect_count "$LAB_DIR/silent.jsonl" "\"peer\": \"$(re_quote "$EXT")\"" 1
	lab_assert_no_dns_leak
}

# ---------------------------------------------------------------- BIND
@test "BIND through a two-hop chain: active FTP with curl -P - and lftp; the BIND is at the last hop" {
	lab_skip_under_asan "$CURL_HANGS"
	local out=$BATS_TEST_TMPDIR creds=$LAB_FTP_USER:$LAB_FTP_PASS
	conf "proxy = socks5h://$P:$LAB_PROXY_PORT, socks5h://files.test:$LAB_DANTED2_PORT"
	run sfy curl -sS --max-time 20 -P - "ftp://$creds@$S/chain.bin" -o "$out/curl.bin"
	expect_status 0
	[[ $(sha256sum "$out/curl.bin" | cut -d' ' -f1) == "$FTP_SHA" ]] || lab_fail "curl's copy differs"
	run sfy lftp -c "$LFTP_SET; open -u $LAB_FTP_USER,$LAB_FTP_PASS ftp://$S; get chain.bin -o $out/lftp.bin"
	expect_status 0
	[[ $(sha256sum "$out/lftp.bin" | cut -d' ' -f1) == "$FTP_SHA" ]] || lab_fail "lftp's copy differs"
	# Both BINDs at danted-inner (whose address is the loopback), none at hop 1.
	expect_count "$LAB_DANTED2_LOG" 'tcp/bindreply \[' 2
	expect_count "$LAB_DANTED_LOG" 'tcp/bind' 0
	grep -Eq '(PORT 127,0,0,1,|EPRT \|1\|127\.0\.0\.1\|)' <(since "$LAB_DIR/ftp.out") ||
		lab_fail "the FTP server was not given danted-inner's BIND address:" "$(since "$LAB_DIR/ftp.out" | grep -E 'PORT|EPRT' | tail -n 4)"
	lab_assert_no_dns_leak
}
