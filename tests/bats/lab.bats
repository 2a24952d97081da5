#!/usr/bin/env bats
# The firewall lab: the client namespace can reach ONLY the proxy (danted on
# 198.51.100.1 / 2001:db8:1::1); the servers sit behind it on 203.0.113.10 /
# 2001:db8:2::10 and only the proxy knows their names (files.test,
# files6.test).  Real programs run under scripts/socksify in the client
# namespace; every test checks what arrived AND that the client's DNS
# sentinel (its only nameserver, 127.0.0.1:53) saw no query.  Topology,
# servers and helpers: tests/lab/lab.bash.
#
# Needs root.  It makes its own namespaces, so it runs from the host
# namespace (bats tests/bats/lab.bats) or inside tests/bats/run's.

# shellcheck source=tests/lab/lab.bash
source "$BATS_TEST_DIRNAME/../lab/lab.bash"

CLIENTS=$LAB_HOME/clients
CONF4=$LAB_HOME/client-v4.conf
CONF6=$LAB_HOME/client-v6.conf
PEER4=$LAB_PROXY_EXT4   # the servers must see the proxy's external address
PEER6=$LAB_PROXY_EXT6

setup_file() {
	export LAB_SKIP=
	if [[ $(id -u) != 0 ]]; then
		LAB_SKIP="lab.bats needs root (network namespaces, danted, sshd)"
		echo "# SKIPPING the firewall lab: $LAB_SKIP" >&3
		return 0
	fi
	local missing
	missing=$(lab_missing_packages)
	[[ -z $missing ]] || lab_fail "missing Debian packages: $missing" || return 1
	lab_require_build || return 1
	local stale
	stale=$(lab_cleanup_stale 2>&1)
	[[ -z $stale ]] || printf '# %s\n' "$stale" >&3
	# The namespaces are named after this process (bats-exec-file), which
	# lives as long as the file runs.
	lab_up "$$" "$BATS_FILE_TMPDIR/lab"
}

teardown_file() {
	[[ -n ${LAB_ID-} ]] || return 0
	lab_down
	local left
	left=$(lab_leftovers)
	[[ -z $left ]] || lab_fail "the lab left behind:" "$left"
}

setup() {
	[[ -z $LAB_SKIP ]] || skip "$LAB_SKIP"
	lab_reset_dns
}

teardown() {
	[[ -z $LAB_SKIP ]] || return 0
	if [[ -z ${BATS_TEST_COMPLETED-} ]]; then
		local f
		for f in "$LAB_DNS_LOG" "$LAB_DIR/danted.out" "$LAB_DIR"/http-*.log \
			"$LAB_DIR/sshd.out" "$LAB_DIR/git-http.out" "$LAB_DIR/echo.out"; do
			[[ -s $f ]] || continue
			echo "--- $f (tail)"
			tail -n 10 "$f"
		done
	fi
}

expect_status() {
	[[ $status -eq $1 ]] || lab_fail "expected exit status $1, got $status; output:" "$output"
}

expect_output() {
	[[ $output == "$1" ]] || lab_fail "expected output '$1', got:" "$output"
}

expect_match() {
	[[ $output =~ $1 ]] || lab_fail "expected output to match /$1/, got:" "$output"
}

# ------------------------------------------------------------ the lab
@test "lab: the client has no route but to the proxy's subnet, and the proxy does not forward" {
	# Main tables: one connected route per family, to the proxy's subnet.
	run ip -n "$LAB_C" -4 route show
	[[ $output == "198.51.100.0/24 dev to-proxy "* && $output != *$'\n'* ]] ||
		lab_fail "unexpected IPv4 routes:" "$output"
	run ip -n "$LAB_C" -6 route show
	[[ $output == "2001:db8:1::/64 dev to-proxy "* && $output != *$'\n'* ]] ||
		lab_fail "unexpected IPv6 routes:" "$output"
	# No default route in any table, any family, any namespace.
	local ns
	for ns in "$LAB_C" "$LAB_P" "$LAB_S"; do
		run ip -n "$ns" -4 route show table all
		[[ $output != *default* ]] || lab_fail "$ns has a default route:" "$output"
		run ip -n "$ns" -6 route show table all
		[[ $output != *default* ]] || lab_fail "$ns has a default route:" "$output"
	done
	run ip netns exec "$LAB_P" sysctl -n net.ipv4.ip_forward net.ipv6.conf.all.forwarding
	expect_output $'0\n0'
	# Without the proxy the server cannot be reached, by either family.
	run in_client curl -sS --max-time 3 "http://$LAB_SERVER4/"
	expect_status 7
	run in_client curl -sS --max-time 3 "http://[$LAB_SERVER6]/"
	expect_status 7
	# Even with a route via the proxy host, the proxy does not forward.
	ip -n "$LAB_C" route add 203.0.113.0/24 via "$LAB_PROXY4"
	run in_client curl -sS --connect-timeout 1 --max-time 2 "http://$LAB_SERVER4/forwarded"
	ip -n "$LAB_C" route del 203.0.113.0/24 via "$LAB_PROXY4"
	[[ $status -ne 0 ]] || lab_fail "the proxy host forwarded:" "$output"
	! grep -q "forwarded\\|peer=$LAB_CLIENT4" "$LAB_DIR/http-files-v4.log" ||
		lab_fail "the server saw a forwarded connection"
	lab_assert_no_dns_leak
}

@test "control: without socksify, curl cannot resolve files.test and the sentinel records the query" {
	run in_client curl -sS --max-time 5 http://files.test/
	expect_status 6
	grep -q '^files\.test ' "$LAB_DNS_LOG" ||
		lab_fail "the sentinel saw no query for files.test:" "$(cat "$LAB_DNS_LOG")"
}

# ------------------------------------------------------------ curl, wget
@test "curl by name (files.test) goes through danted, no DNS leak" {
	run lab_sfy curl -sS --max-time 20 http://files.test/by-name
	expect_status 0
	expect_output "hello from files-v4 path=/by-name peer=$PEER4"
	lab_assert_no_dns_leak
}

@test "curl by IPv4 literal goes through danted" {
	run lab_sfy curl -sS --max-time 20 "http://$LAB_SERVER4/v4-literal"
	expect_status 0
	expect_output "hello from files-v4 path=/v4-literal peer=$PEER4"
	lab_assert_no_dns_leak
}

@test "curl by IPv6 literal ([2001:db8:2::10]) goes through danted" {
	run lab_sfy curl -sS --max-time 20 "http://[$LAB_SERVER6]/v6-literal"
	expect_status 0
	expect_output "hello from files-v6 path=/v6-literal peer=$PEER6"
	lab_assert_no_dns_leak
}

@test "curl -6 by name (files6.test) goes through danted" {
	# curl -6 resolves with AF_UNSPEC (hints.ai_family 0) and keeps only
	# the IPv6 answers.  This fails while the shim answers AF_UNSPEC with an
	# IPv4 fake address alone: curl then has no address to try and exits 7
	# without calling connect().  (wget -6, ssh -6 and node family:6 ask
	# AF_INET6 and work.)
	run lab_sfy curl -6 -sS --max-time 20 http://files6.test/v6-name
	expect_status 0
	expect_output "hello from files-v6 path=/v6-name peer=$PEER6"
	lab_assert_no_dns_leak
}

@test "IPv6 proxy address: curl by name, by IPv4 literal (socket swap) and by IPv6 literal" {
	run lab_sfy -c "$CONF6" curl -sS --max-time 20 http://files.test/p6-name
	expect_status 0
	expect_output "hello from files-v4 path=/p6-name peer=$PEER4"
	run lab_sfy -c "$CONF6" curl -sS --max-time 20 "http://$LAB_SERVER4/p6-v4"
	expect_status 0
	expect_output "hello from files-v4 path=/p6-v4 peer=$PEER4"
	run lab_sfy -c "$CONF6" curl -sS --max-time 20 "http://[$LAB_SERVER6]/p6-v6"
	expect_status 0
	expect_output "hello from files-v6 path=/p6-v6 peer=$PEER6"
	# danted saw these from the client's IPv6 address.
	grep -q "$LAB_CLIENT6\.[0-9]* $LAB_PROXY6\.$LAB_PROXY_PORT" "$LAB_DANTED_LOG" ||
		lab_fail "danted did not log a client on $LAB_CLIENT6"
	lab_assert_no_dns_leak
}

@test "wget by name goes through danted" {
	run lab_sfy wget --no-config -q -O - --timeout=20 --tries=1 http://files.test/wget
	expect_status 0
	expect_output "hello from files-v4 path=/wget peer=$PEER4"
	lab_assert_no_dns_leak
}

# ------------------------------------------------------- git, ssh, ncat
@test "git clone over dumb HTTP by name (git-remote-http is a child process)" {
	# shellcheck disable=SC2031 # this test's own HOME (git's config)
	export HOME=$BATS_TEST_TMPDIR
	run lab_sfy git clone -q "http://files.test:$LAB_GIT_PORT/repo.git" "$BATS_TEST_TMPDIR/clone"
	expect_status 0
	[[ $(<"$BATS_TEST_TMPDIR/clone/README.lab") == "$LAB_GIT_TOKEN" ]] ||
		lab_fail "README.lab has the wrong content:" "$(cat "$BATS_TEST_TMPDIR/clone/README.lab")"
	grep -Eq "^(::ffff:)?$PEER4 .*GET /repo.git/info/refs" "$LAB_DIR/git-http.out" ||
		lab_fail "the git HTTP server saw no request from the proxy"
	lab_assert_no_dns_leak
}

ssh_opts=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
	-o BatchMode=yes -o ConnectTimeout=15 -o LogLevel=ERROR)

@test "ssh by name with a key runs a command on the server" {
	run lab_sfy ssh -F /dev/null -i "$LAB_SSH_KEY" "${ssh_opts[@]}" root@files.test echo hello-from-ssh
	expect_status 0
	expect_output hello-from-ssh
	grep -q "Accepted publickey for root from $PEER4 " "$LAB_DIR/sshd.out" ||
		lab_fail "sshd did not log a login from $PEER4:" "$(tail -n 5 "$LAB_DIR/sshd.out")"
	lab_assert_no_dns_leak
}

@test "ssh by name with the system ssh_config, through the IPv6 proxy address" {
	run lab_sfy -c "$CONF6" ssh -i "$LAB_SSH_KEY" "${ssh_opts[@]}" root@files.test echo hello-via-v6-proxy
	expect_status 0
	expect_output hello-via-v6-proxy
	lab_assert_no_dns_leak
}

@test "ncat by name to the echo service: a line comes back" {
	run lab_sfy ncat files.test "$LAB_ECHO_PORT" <<<"ping-through-the-lab"
	expect_status 0
	expect_output ping-through-the-lab
	lab_assert_no_dns_leak
}

# ------------------------------------------------- python, node, many
@test "python3: 16 threads x 64 connections by name, all succeed" {
	local before
	before=$(grep -c '^GET /t' "$LAB_DIR/http-files-v4.log" || true)
	run lab_sfy "$LAB_PY" "$CLIENTS/threads.py" files.test 80 16 64 "$PEER4"
	expect_status 0
	expect_output "ok=1024 failed=0"
	[[ $(grep -c '^GET /t' "$LAB_DIR/http-files-v4.log") -eq $((before + 1024)) ]] ||
		lab_fail "the server did not log 1024 requests"
	lab_assert_no_dns_leak
}

@test "python3 asyncio: open_connection by name, HTTP and echo, concurrently" {
	run lab_sfy "$LAB_PY" "$CLIENTS/aio.py" files.test 80 "$LAB_ECHO_PORT" 16 "$PEER4"
	expect_status 0
	expect_output "http ok=16 echo ok=16"
	lab_assert_no_dns_leak
}

@test "node: http.get by name" {
	run lab_sfy /usr/bin/node -e '
		require("http").get(process.argv[1], (r) => {
			let b = "";
			r.on("data", (d) => { b += d; });
			r.on("end", () => { process.stdout.write(b); });
		}).on("error", (e) => { console.error("node:", e.message); process.exit(1); });
	' http://files.test/node
	expect_status 0
	expect_output "hello from files-v4 path=/node peer=$PEER4"
	lab_assert_no_dns_leak
}

@test "xargs -P 32: 64 curl processes in parallel, all succeed" {
	run lab_sfy sh -c 'seq 64 | xargs -P 32 -I{} curl -sS --max-time 20 http://files.test/x{}'
	expect_status 0
	local i missing=
	for ((i = 1; i <= 64; i++)); do
		[[ $output == *"path=/x$i peer=$PEER4"$'\n'* || $output == *"path=/x$i peer=$PEER4" ]] ||
			missing+=" $i"
	done
	[[ -z $missing ]] || lab_fail "no response for:$missing; output:" "$output"
	[[ $(grep -c . <<<"$output") -eq 64 ]] || lab_fail "expected 64 lines:" "$output"
	lab_assert_no_dns_leak
}

# ------------------------------------------------------ failures, direct
@test "proxy down (nothing listens on the port): curl fails fast with a socksify error, nothing reaches the server" {
	local conf=$BATS_TEST_TMPDIR/down.conf before t0 ms
	printf 'proxy = socks5h://%s:1081\nconnect_timeout = 3\n' "$LAB_PROXY4" >"$conf"
	before=$(lab_http_count files-v4)
	t0=$(date +%s%3N)
	run lab_sfy -c "$conf" curl -sS --max-time 20 http://files.test/down
	ms=$(($(date +%s%3N) - t0))
	[[ $status -ne 0 ]] || lab_fail "curl succeeded:" "$output"
	((ms < 5000)) || lab_fail "took ${ms} ms"
	expect_match "socksify\[[0-9]+\]: connect files\.test:80 via $LAB_PROXY4:1081 failed at connect to proxy: Connection refused"
	[[ $(lab_http_count files-v4) -eq $before ]] || lab_fail "the server saw a connection"
	lab_assert_no_dns_leak
}

@test "proxy host unreachable: curl fails within connect_timeout with a socksify error" {
	local conf=$BATS_TEST_TMPDIR/gone.conf before t0 ms
	# 198.51.100.3 is on the client's link, but no host answers there.
	printf 'proxy = socks5h://198.51.100.3:1080\nconnect_timeout = 2\n' >"$conf"
	before=$(lab_http_count files-v4)
	t0=$(date +%s%3N)
	run lab_sfy -c "$conf" curl -sS --max-time 20 http://files.test/gone
	ms=$(($(date +%s%3N) - t0))
	[[ $status -ne 0 ]] || lab_fail "curl succeeded:" "$output"
	((ms < 6000)) || lab_fail "took ${ms} ms"
	expect_match "socksify\[[0-9]+\]: connect files\.test:80 via 198\.51\.100\.3:1080 failed at connect to proxy"
	[[ $(lab_http_count files-v4) -eq $before ]] || lab_fail "the server saw a connection"
	lab_assert_no_dns_leak
}

@test "direct rule: the client's own address is reached without the proxy, and refused by it without the rule" {
	local conf=$BATS_TEST_TMPDIR/direct.conf url="http://$LAB_CLIENT4:$LAB_LOCAL_PORT"
	{
		cat "$CONF4"
		echo "direct = $LAB_CLIENT4/32"
	} >"$conf"
	run lab_sfy -c "$conf" curl -sS --max-time 20 "$url/direct"
	expect_status 0
	expect_output "hello from client-local path=/direct peer=$LAB_CLIENT4"
	# Without the rule it goes to danted, whose rules refuse the client's
	# subnet as a destination (REP 02): no connection reaches the server.
	local before
	before=$(lab_http_count client-local)
	run lab_sfy -c "$CONF4" curl -sS --max-time 20 "$url/proxied"
	[[ $status -ne 0 ]] || lab_fail "curl succeeded:" "$output"
	expect_match "socksify\[[0-9]+\]: connect $LAB_CLIENT4:$LAB_LOCAL_PORT via $LAB_PROXY4:1080 failed: proxy replied 2"
	[[ $(lab_http_count client-local) -eq $before ]] || lab_fail "the local server saw a connection"
	lab_assert_no_dns_leak
}
