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

# Fails the file (loudly, with the list) if anything of the lab is left:
# namespaces, /etc/netns directories, or processes (tracked servers, or any
# process still in a lab namespace).  tests/bats/lab_teardown.bats checks
# that this holds when tests fail, time out or are killed.
teardown_file() {
	lab_teardown_checked
}

setup() {
	[[ -z $LAB_SKIP ]] || skip "$LAB_SKIP"
	lab_asan_setup
	lab_reset_dns
	# danted's log so far; zoo_expect_proxied looks at what follows.
	DANTED_LINES=$(wc -l <"$LAB_DANTED_LOG")
}

teardown() {
	[[ -z $LAB_SKIP ]] || return 0
	if [[ -z ${BATS_TEST_COMPLETED-} ]]; then
		local f
		for f in "$LAB_DNS_LOG" "$LAB_DIR/danted.out" "$LAB_DIR"/http-*.log \
			"$LAB_DIR/sshd.out" "$LAB_DIR/git-http.out" "$LAB_DIR/echo.out" "$LAB_DIR/echo.log"; do
			[[ -s $f ]] || continue
			echo "--- $f (tail)"
			tail -n 10 "$f"
		done
	fi
	lab_no_sanitizer_report
}

# Why tests skip in the ASan pass (SOCKSIFY_TEST_ASAN=1).
NO_LIB="no socksify here: the release pass runs it"
CURL_HANGS="curl hangs under a preloaded ASan runtime"

# ------------------------------------------------------------ the lab
@test "the lab's clients run this pass's build of the library (the ASan build behind its runtime in the ASan pass)" {
	lab_expect_pass_library
}

@test "lab: the client has no route but to the proxy's subnet, and the proxy does not forward" {
	lab_skip_under_asan "$NO_LIB"
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
	lab_skip_under_asan "$NO_LIB"
	run in_client curl -sS --max-time 5 http://files.test/
	expect_status 6
	grep -q '^files\.test ' "$LAB_DNS_LOG" ||
		lab_fail "the sentinel saw no query for files.test:" "$(cat "$LAB_DNS_LOG")"
}

# ------------------------------------------------------------ the zoo
# Every program runs against the same five targets (zoo_target), each test
# a one-line call of the program's helper:
#   name   files.test      -> the IPv4 server; a fake IPv4 address here
#   lit4   203.0.113.10
#   lit6   2001:db8:2::10
#   name6  files6.test     -> the IPv6 server; the proxy resolves it
#   p6     203.0.113.10 through the proxy's IPv6 address: the program's
#          IPv4 socket is swapped for an IPv6 one on the same fd
# and asserts what came back, what the server logged as its peer (the
# proxy's external address of the right family), that danted relayed
# exactly the expected sessions (zoo_expect_proxied), and that the DNS
# sentinel saw nothing.

# zoo_target VARIANT: sets Z (the variant), Z_HOST (as typed on a command
# line), Z_URL (bracketed for URLs), Z_SERVER (the address danted must
# connect to), Z_SRV (that HTTP server's name), Z_PEER (what the servers
# must see), Z_CONF, and Z_CLIENT / Z_PROXY (the addresses danted must see
# the client come from and to).
zoo_target() {
	Z=$1 Z_CONF=$CONF4 Z_CLIENT=$LAB_CLIENT4 Z_PROXY=$LAB_PROXY4
	case $1 in
	name) Z_HOST=files.test Z_SERVER=$LAB_SERVER4 ;;
	lit4) Z_HOST=$LAB_SERVER4 Z_SERVER=$LAB_SERVER4 ;;
	lit6) Z_HOST=$LAB_SERVER6 Z_SERVER=$LAB_SERVER6 ;;
	name6) Z_HOST=files6.test Z_SERVER=$LAB_SERVER6 ;;
	p6)
		Z_HOST=$LAB_SERVER4 Z_SERVER=$LAB_SERVER4
		Z_CONF=$CONF6 Z_CLIENT=$LAB_CLIENT6 Z_PROXY=$LAB_PROXY6
		;;
	*) lab_fail "unknown zoo variant $1" || return 1 ;;
	esac
	Z_URL=$Z_HOST
	[[ $Z_HOST != *:* ]] || Z_URL="[$Z_HOST]"
	if [[ $Z_SERVER == *:* ]]; then
		Z_SRV=files-v6 Z_PEER=$PEER6
	else
		Z_SRV=files-v4 Z_PEER=$PEER4
	fi
}

# zoo_run CMD...: CMD under socksify with the variant's config.
zoo_run() {
	run lab_sfy -c "$Z_CONF" "$@"
}

# zoo_expect_proxied PORT:COUNT...: since this test began, danted opened
# exactly COUNT sessions (at least one for "+") from the variant's client
# address via its proxy address to Z_SERVER:PORT, from Z_PEER, and no
# other session at all.  danted logs a session when it starts, so the
# lines may trail the client by a moment.
zoo_expect_proxied() {
	local spec port want re got total expect_total i lines ok
	for ((i = 0; i < 40; i++)); do
		lines=$(tail -n "+$((DANTED_LINES + 1))" "$LAB_DANTED_LOG" | grep 'tcp/connect \[: ' || true)
		total=$(grep -c . <<<"$lines" || true)
		ok=1 expect_total=0
		for spec in "$@"; do
			port=${spec%%:*} want=${spec#*:}
			re="tcp/connect \[: $(re_quote "$Z_CLIENT")\.[0-9]+ $(re_quote "$Z_PROXY")\.$LAB_PROXY_PORT"
			re+=" -> $(re_quote "$Z_PEER")\.[0-9]+ $(re_quote "$Z_SERVER")\.$port\$"
			got=$(grep -Ec "$re" <<<"$lines" || true)
			if [[ $want == + ]]; then
				((got >= 1)) || ok=0
				expect_total=$((expect_total + got))
			else
				((got == want)) || ok=0
				expect_total=$((expect_total + want))
			fi
		done
		((ok && total == expect_total)) && return 0
		sleep 0.05
	done
	lab_fail "danted's sessions differ from $* ($Z_CLIENT via $Z_PROXY, $Z_PEER -> $Z_SERVER):" "$lines"
}

# zoo_echo_since COUNT_BEFORE WANT: the echo server logged WANT more
# connections from Z_PEER.
zoo_echo_since() {
	local got
	got=$(($(lab_echo_count "$Z_PEER") - $1))
	((got == $2)) || lab_fail "the echo server logged $got connections from $Z_PEER, expected $2:" \
		"$(tail -n 5 "$LAB_DIR/echo.log")"
}

# ------------------------------------------------------------------ curl
zoo_curl() {
	lab_skip_under_asan "$CURL_HANGS"
	zoo_target "$1" || return 1
	zoo_run curl -gsS --max-time 20 "http://$Z_URL/curl-$Z"
	expect_status 0 || return 1
	expect_output "hello from $Z_SRV path=/curl-$Z peer=$Z_PEER" || return 1
	zoo_expect_proxied 80:1 || return 1
	lab_assert_no_dns_leak
}

@test "curl by name (files.test)" { zoo_curl name; }
@test "curl by IPv4 literal" { zoo_curl lit4; }
@test "curl by IPv6 literal ([2001:db8:2::10])" { zoo_curl lit6; }
@test "curl by IPv6 name (files6.test)" { zoo_curl name6; }
@test "curl by IPv4 literal through the IPv6 proxy address (socket swap)" { zoo_curl p6; }

@test "curl -6 by name (files6.test) goes through danted" {
	# curl -6 resolves with AF_UNSPEC (hints.ai_family 0) and keeps only
	# the IPv6 answers.  This fails while the shim answers AF_UNSPEC with an
	# IPv4 fake address alone: curl then has no address to try and exits 7
	# without calling connect().  (wget -6, ssh -6 and node family:6 ask
	# AF_INET6 and work.)
	lab_skip_under_asan "$CURL_HANGS"
	run lab_sfy curl -6 -sS --max-time 20 http://files6.test/v6-name
	expect_status 0
	expect_output "hello from files-v6 path=/v6-name peer=$PEER6"
	lab_assert_no_dns_leak
}

@test "IPv6 proxy address: curl by name and by IPv6 literal" {
	lab_skip_under_asan "$CURL_HANGS"
	run lab_sfy -c "$CONF6" curl -sS --max-time 20 http://files.test/p6-name
	expect_status 0
	expect_output "hello from files-v4 path=/p6-name peer=$PEER4"
	run lab_sfy -c "$CONF6" curl -sS --max-time 20 "http://[$LAB_SERVER6]/p6-v6"
	expect_status 0
	expect_output "hello from files-v6 path=/p6-v6 peer=$PEER6"
	# danted saw these from the client's IPv6 address.
	grep -q "$LAB_CLIENT6\.[0-9]* $LAB_PROXY6\.$LAB_PROXY_PORT" "$LAB_DANTED_LOG" ||
		lab_fail "danted did not log a client on $LAB_CLIENT6"
	lab_assert_no_dns_leak
}

# ------------------------------------------------------------------ wget
zoo_wget() {
	zoo_target "$1" || return 1
	zoo_run wget --no-config -q -O - --timeout=20 --tries=1 "http://$Z_URL/wget-$Z"
	expect_status 0 || return 1
	expect_output "hello from $Z_SRV path=/wget-$Z peer=$Z_PEER" || return 1
	zoo_expect_proxied 80:1 || return 1
	lab_assert_no_dns_leak
}

@test "wget by name (files.test)" { zoo_wget name; }
@test "wget by IPv4 literal" { zoo_wget lit4; }
@test "wget by IPv6 literal" { zoo_wget lit6; }
@test "wget by IPv6 name (files6.test)" { zoo_wget name6; }
@test "wget by IPv4 literal through the IPv6 proxy address (socket swap)" { zoo_wget p6; }

# ------------------------------------------------------------------- git
# git clone over dumb HTTP: the connections are made by git-remote-http, a
# child process.  Each variant clones its own alias of the repository
# (repo-VARIANT.git, a symlink), so the server's log shows whose requests
# are whose; one connection per request (HTTP/1.0).
zoo_git() {
	lab_skip_under_asan "git's HTTP helper (libcurl) hangs under a preloaded ASan runtime"
	zoo_target "$1" || return 1
	# shellcheck disable=SC2031 # this test's own HOME (git's config)
	export HOME=$BATS_TEST_TMPDIR
	ln -sfn repo.git "$LAB_DIR/www/repo-$Z.git"
	zoo_run git clone -q "http://$Z_URL:$LAB_GIT_PORT/repo-$Z.git" "$BATS_TEST_TMPDIR/clone"
	expect_status 0 || return 1
	[[ -z $output ]] || lab_fail "git printed:" "$output" || return 1
	[[ $(<"$BATS_TEST_TMPDIR/clone/README.lab") == "$LAB_GIT_TOKEN" ]] ||
		lab_fail "README.lab has the wrong content:" "$(cat "$BATS_TEST_TMPDIR/clone/README.lab")" || return 1
	local requests
	requests=$(grep -Ec "\"GET /repo-$Z\.git/" "$LAB_DIR/git-http.out" || true)
	((requests >= 3)) || lab_fail "the git server logged $requests requests for repo-$Z.git" || return 1
	[[ $(grep -Ec "^(::ffff:)?$(re_quote "$Z_PEER") .*\"GET /repo-$Z\.git/" "$LAB_DIR/git-http.out" || true) -eq $requests ]] ||
		lab_fail "the git server saw requests for repo-$Z.git from elsewhere than $Z_PEER:" \
			"$(grep "/repo-$Z\.git/" "$LAB_DIR/git-http.out")" || return 1
	zoo_expect_proxied "$LAB_GIT_PORT:+" || return 1
	lab_assert_no_dns_leak
}

@test "git clone over dumb HTTP by name (files.test)" { zoo_git name; }
@test "git clone by IPv4 literal" { zoo_git lit4; }
@test "git clone by IPv6 literal" { zoo_git lit6; }
@test "git clone by IPv6 name (files6.test)" { zoo_git name6; }
@test "git clone by IPv4 literal through the IPv6 proxy address (socket swap)" { zoo_git p6; }

# ------------------------------------------------------------------- ssh
ssh_opts=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
	-o BatchMode=yes -o ConnectTimeout=15 -o LogLevel=ERROR)

# ssh with a key runs a command that prints the server's view of the
# connection ($SSH_CONNECTION: peer address and port, server address and
# port); sshd must have logged that very login.  Nothing else may be
# printed (ssh's warnings go to stderr, which "run" captures too).  name6
# fails while getsockname() answers an IPv4 socket with the proxy's IPv6
# BND address: ssh then sets IPV6_TCLASS on it and warns "setsockopt
# socket 3 IPV6_TCLASS 8: Protocol not available" (see the getsockname
# test below).
zoo_ssh() {
	zoo_target "$1" || return 1
	zoo_run ssh -F /dev/null -i "$LAB_SSH_KEY" "${ssh_opts[@]}" "root@$Z_HOST" \
		"echo ssh-$Z \$SSH_CONNECTION"
	expect_status 0 || return 1
	expect_match "^ssh-$Z $(re_quote "$Z_PEER") ([0-9]+) $(re_quote "$Z_SERVER") 22\$" || return 1
	local port=${BASH_REMATCH[1]}
	grep -q "Accepted publickey for root from $Z_PEER port $port " "$LAB_DIR/sshd.out" ||
		lab_fail "sshd did not log a login from $Z_PEER port $port:" "$(tail -n 5 "$LAB_DIR/sshd.out")" || return 1
	zoo_expect_proxied 22:1 || return 1
	lab_assert_no_dns_leak
}

@test "ssh by name (files.test) with a key runs a command on the server" { zoo_ssh name; }
@test "ssh by IPv4 literal" { zoo_ssh lit4; }
@test "ssh by IPv6 literal" { zoo_ssh lit6; }
@test "ssh by IPv6 name (files6.test)" { zoo_ssh name6; }
@test "ssh by IPv4 literal through the IPv6 proxy address (socket swap)" { zoo_ssh p6; }

@test "getsockname() on an IPv4 socket to files6.test (IPv6 BND) answers in the socket's family" {
	# The program asked for AF_INET and got an IPv4 fake address; danted
	# reaches files6.test over IPv6 and replies with an IPv6 BND.  A
	# sockaddr_in6 does not fit the program's sockaddr_in (python passes
	# 16 bytes, as ssh's set_sock_tos() does): it sees a truncated IPv6
	# address, with garbage after byte 16.
	run lab_sfy "$LAB_PY" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect(("files6.test", 80))
a = s.getsockname()
print(s.family == socket.AF_INET and len(a) == 2, a)
s.sendall(b"GET /gsn HTTP/1.0\r\n\r\n")
print(s.makefile("rb").read().decode().splitlines()[-1])'
	expect_status 0
	expect_match "^True \('[0-9.]+', [0-9]+\)"$'\n'"hello from files-v6 path=/gsn peer=$PEER6\$"
	lab_assert_no_dns_leak
}

@test "ssh by name with the system ssh_config, through the IPv6 proxy address" {
	run lab_sfy -c "$CONF6" ssh -i "$LAB_SSH_KEY" "${ssh_opts[@]}" root@files.test echo hello-via-v6-proxy
	expect_status 0
	expect_output hello-via-v6-proxy
	lab_assert_no_dns_leak
}

# ------------------------------------------------------------------ ncat
zoo_ncat() {
	zoo_target "$1" || return 1
	local before
	before=$(lab_echo_count "$Z_PEER")
	zoo_run ncat "$Z_HOST" "$LAB_ECHO_PORT" <<<"ncat-$Z-through-the-lab"
	expect_status 0 || return 1
	expect_output "ncat-$Z-through-the-lab" || return 1
	zoo_echo_since "$before" 1 || return 1
	zoo_expect_proxied "$LAB_ECHO_PORT:1" || return 1
	lab_assert_no_dns_leak
}

@test "ncat by name (files.test) to the echo service: a line comes back" { zoo_ncat name; }
@test "ncat by IPv4 literal" { zoo_ncat lit4; }
@test "ncat by IPv6 literal" { zoo_ncat lit6; }
@test "ncat by IPv6 name (files6.test)" { zoo_ncat name6; }
@test "ncat by IPv4 literal through the IPv6 proxy address (socket swap)" { zoo_ncat p6; }

# --------------------------------------------------------------- python3
# zoo_threads VARIANT THREADS PER_THREAD: THREADS threads, each making
# PER_THREAD connections (socket.create_connection, resolving every time).
zoo_threads() {
	zoo_target "$1" || return 1
	local n=$(($2 * $3)) re before
	re="^GET /t[0-9]+-[0-9]+ peer=$(re_quote "$Z_PEER")\$"
	before=$(grep -Ec "$re" "$LAB_DIR/http-$Z_SRV.log" || true)
	zoo_run "$LAB_PY" "$CLIENTS/threads.py" "$Z_HOST" 80 "$2" "$3" "$Z_PEER"
	expect_status 0 || return 1
	expect_output "ok=$n failed=0" || return 1
	[[ $(grep -Ec "$re" "$LAB_DIR/http-$Z_SRV.log" || true) -eq $((before + n)) ]] ||
		lab_fail "$Z_SRV did not log $n requests from $Z_PEER" || return 1
	zoo_expect_proxied "80:$n" || return 1
	lab_assert_no_dns_leak
}

@test "python3: 16 threads x 64 connections by name (files.test), all succeed" { zoo_threads name 16 64; }
@test "python3 threads: 4 x 16 by IPv4 literal" { zoo_threads lit4 4 16; }
@test "python3 threads: 4 x 16 by IPv6 literal" { zoo_threads lit6 4 16; }
@test "python3 threads: 4 x 16 by IPv6 name (files6.test)" { zoo_threads name6 4 16; }
@test "python3 threads: 16 x 64 by IPv4 literal through the IPv6 proxy address (socket swap)" { zoo_threads p6 16 64; }

# python3 asyncio: 16 HTTP requests and 16 echo round trips at once, all
# with asyncio.open_connection (non-blocking sockets).
zoo_aio() {
	zoo_target "$1" || return 1
	local before
	before=$(lab_echo_count "$Z_PEER")
	zoo_run "$LAB_PY" "$CLIENTS/aio.py" "$Z_HOST" 80 "$LAB_ECHO_PORT" 16 "$Z_PEER"
	expect_status 0 || return 1
	expect_output "http ok=16 echo ok=16" || return 1
	zoo_echo_since "$before" 16 || return 1
	zoo_expect_proxied 80:16 "$LAB_ECHO_PORT:16" || return 1
	lab_assert_no_dns_leak
}

@test "python3 asyncio by name (files.test): HTTP and echo, concurrently" { zoo_aio name; }
@test "python3 asyncio by IPv4 literal" { zoo_aio lit4; }
@test "python3 asyncio by IPv6 literal" { zoo_aio lit6; }
@test "python3 asyncio by IPv6 name (files6.test)" { zoo_aio name6; }
@test "python3 asyncio by IPv4 literal through the IPv6 proxy address (socket swap)" { zoo_aio p6; }

# ------------------------------------------------------------------ node
zoo_node() {
	zoo_target "$1" || return 1
	zoo_run /usr/bin/node -e '
		require("http").get(process.argv[1], (r) => {
			let b = "";
			r.on("data", (d) => { b += d; });
			r.on("end", () => { process.stdout.write(b); });
		}).on("error", (e) => { console.error("node:", e.message); process.exit(1); });
	' "http://$Z_URL/node-$Z"
	expect_status 0 || return 1
	expect_output "hello from $Z_SRV path=/node-$Z peer=$Z_PEER" || return 1
	zoo_expect_proxied 80:1 || return 1
	lab_assert_no_dns_leak
}

@test "node: http.get by name (files.test)" { zoo_node name; }
@test "node: http.get by IPv4 literal" { zoo_node lit4; }
@test "node: http.get by IPv6 literal" { zoo_node lit6; }
@test "node: http.get by IPv6 name (files6.test)" { zoo_node name6; }
@test "node: http.get by IPv4 literal through the IPv6 proxy address (socket swap)" { zoo_node p6; }

# ------------------------------------------------------------------ many
zoo_xargs() {
	lab_skip_under_asan "$CURL_HANGS"
	zoo_target "$1" || return 1
	# shellcheck disable=SC2016 # expanded by that sh
	zoo_run sh -c 'seq 64 | xargs -P 32 -I{} curl -gsS --max-time 20 "http://$1/x-$2-{}"' sh "$Z_URL" "$Z"
	expect_status 0 || return 1
	local i missing=
	for ((i = 1; i <= 64; i++)); do
		[[ $output == *"path=/x-$Z-$i peer=$Z_PEER"$'\n'* || $output == *"path=/x-$Z-$i peer=$Z_PEER" ]] ||
			missing+=" $i"
	done
	[[ -z $missing ]] || lab_fail "no response for:$missing; output:" "$output" || return 1
	[[ $(grep -c . <<<"$output") -eq 64 ]] || lab_fail "expected 64 lines:" "$output" || return 1
	zoo_expect_proxied 80:64 || return 1
	lab_assert_no_dns_leak
}

@test "xargs -P 32: 64 curl processes in parallel by name (files.test), all succeed" { zoo_xargs name; }
@test "xargs -P 32: 64 curl processes by IPv6 literal" { zoo_xargs lit6; }
@test "xargs -P 32: 64 curl processes by IPv6 name (files6.test)" { zoo_xargs name6; }

# ------------------------------------------------------ failures, direct
# curl_ms: curl's own measure of the transfer ("curl_ms=" from -w), so the
# namespace, wrapper and curl start-up do not count.
CURL_TIME=(-w 'curl_time=%{time_total}\n')
curl_ms() {
	local t
	[[ $output =~ curl_time=([0-9]+)\.([0-9]{3}) ]] || return 1
	t=$((10#${BASH_REMATCH[1]} * 1000 + 10#${BASH_REMATCH[2]}))
	echo "$t"
}

@test "proxy down (nothing listens on the port): curl fails fast with a socksify error, nothing reaches the server" {
	lab_skip_under_asan "$CURL_HANGS"
	local conf=$BATS_TEST_TMPDIR/down.conf before ms
	printf 'proxy = socks5h://%s:1081\nconnect_timeout = 3\n' "$LAB_PROXY4" >"$conf"
	before=$(lab_http_count files-v4)
	run lab_sfy -c "$conf" curl -sS "${CURL_TIME[@]}" --max-time 20 http://files.test/down
	[[ $status -ne 0 ]] || lab_fail "curl succeeded:" "$output"
	ms=$(curl_ms) || lab_fail "curl reported no time:" "$output"
	((ms < 1000)) || lab_fail "took ${ms} ms"
	expect_match "socksify\[[0-9]+\]: connect files\.test:80 via $LAB_PROXY4:1081 failed at connect to proxy: Connection refused"
	[[ $(lab_http_count files-v4) -eq $before ]] || lab_fail "the server saw a connection"
	lab_assert_no_dns_leak
}

@test "proxy host unreachable: curl fails within connect_timeout with a socksify error" {
	lab_skip_under_asan "$CURL_HANGS"
	local conf=$BATS_TEST_TMPDIR/gone.conf before ms
	# 198.51.100.3 is on the client's link, but no host answers there.
	printf 'proxy = socks5h://198.51.100.3:1080\nconnect_timeout = 2\n' >"$conf"
	before=$(lab_http_count files-v4)
	run lab_sfy -c "$conf" curl -sS "${CURL_TIME[@]}" --max-time 20 http://files.test/gone
	[[ $status -ne 0 ]] || lab_fail "curl succeeded:" "$output"
	ms=$(curl_ms) || lab_fail "curl reported no time:" "$output"
	# curl tries both of the name's (fake) addresses, one after the other,
	# each bounded by connect_timeout (or failed sooner by the neighbour
	# lookup: "No route to host").
	((ms < 2 * 2000 + 1000)) || lab_fail "took ${ms} ms for two tries with a 2 s connect_timeout; output:" "$output"
	expect_match "socksify\[[0-9]+\]: connect files\.test:80 via 198\.51\.100\.3:1080 failed at connect to proxy"
	[[ $(lab_http_count files-v4) -eq $before ]] || lab_fail "the server saw a connection"
	lab_assert_no_dns_leak
}

@test "direct rule: the client's own address is reached without the proxy, and refused by it without the rule" {
	lab_skip_under_asan "$CURL_HANGS"
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
