# shellcheck shell=bash
# The firewall lab: three network namespaces where the client can reach
# ONLY the SOCKS proxy.  Sourced by tests/bats/lab.bats and tests/lab/shell.
#
#   client  198.51.100.2/24  2001:db8:1::2/64          (no other route)
#      |  veth
#   proxy   198.51.100.1     2001:db8:1::1   danted :1080 (internal)
#           203.0.113.1/24   2001:db8:2::1/64          (external)
#      |  veth                forwarding off: only danted crosses
#   server  203.0.113.10     2001:db8:2::10  http :80 (v4 and v6), git
#                                            over dumb http :8080, echo :7,
#                                            sshd :22, ftp :21 (v4 and v6),
#                                            UDP echo :7 and DNS :53 (v4, v6),
#                                            https :443 and the same site in
#                                            http :8000 (nginx, v4 and v6)
#
# Only documentation ranges are used, and no namespace has a default route,
# so nothing can leave the lab.  The client's resolv.conf points at a DNS
# sentinel on 127.0.0.1:53 inside the client namespace: any name the client
# resolves itself is recorded there (a leak).  The proxy's /etc/hosts (via
# /etc/netns/<proxy>/hosts) maps files.test -> 203.0.113.10 and
# files6.test -> 2001:db8:2::10; nobody else knows these names.
#
# Namespaces are named sfylab-<owner pid>-{client,proxy,server}, where the
# owner is the process that created them, so parallel runs do not collide
# and a later run can tell stale leftovers (dead owner) from live ones.
# Every server runs under "timeout", so even a killed run cannot leave
# servers behind for longer than LAB_LIFETIME seconds.

LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_HOME=$LAB_ROOT/tests/lab
LAB_SOCKSIFY=${SOCKSIFY_WRAPPER:-$LAB_ROOT/scripts/socksify}
LAB_LIB=${SOCKSIFY_LIB:-$LAB_ROOT/build/libsocksify.so}
# SOCKSIFY_TEST_ASAN=1 (tests/run.sh's second pass): clients run with the
# ASan+UBSan build behind the ASan runtime, which must come first in
# LD_PRELOAD (lab_sfy puts it there, the wrapper keeps it first), and a
# sanitizer report fails the test (lab_asan_setup, lab_no_sanitizer_report).
# Tests that do not load the library, or whose program hangs under the
# runtime (curl, lftp, git's libcurl helper), skip in that pass
# (lab_skip_under_asan): they are not counted as passes of the ASan build.
LAB_ASAN_RT=
if [[ ${SOCKSIFY_TEST_ASAN-} == 1 ]]; then
	LAB_LIB=$LAB_ROOT/build/asan/libsocksify.so
	LAB_ASAN_RT=$(cc -print-file-name=libasan.so)
	export SOCKSIFY_LIB=$LAB_LIB
fi
LAB_SERVERS=$LAB_ROOT/tests/servers
LAB_PY=/usr/bin/python3
LAB_LIFETIME=${LAB_LIFETIME:-300}       # seconds any lab server may live
LAB_CMD_TIMEOUT=${LAB_CMD_TIMEOUT:-30}  # seconds any client command may run
LAB_WAIT=10                             # seconds for a server to come up

# Addresses (documentation ranges only).
LAB_CLIENT4=198.51.100.2
LAB_CLIENT6=2001:db8:1::2
LAB_PROXY4=198.51.100.1
LAB_PROXY6=2001:db8:1::1
LAB_PROXY_EXT4=203.0.113.1
LAB_PROXY_EXT6=2001:db8:2::1
LAB_SERVER4=203.0.113.10
LAB_SERVER6=2001:db8:2::10
LAB_PROXY_PORT=1080
LAB_GIT_PORT=8080
LAB_ECHO_PORT=7
LAB_UDP_ECHO_PORT=7                     # UDP echo (tests/servers/udp_lab_server.py)
LAB_UDP_DNS_PORT=53                     # its authoritative DNS over UDP
LAB_LOCAL_PORT=8081                     # HTTP server on the client itself
LAB_HTTPS_PORT=443                      # nginx, TLS with the lab's test CA
LAB_PAGE_PORT=8000                      # nginx, the same site in plain HTTP
LAB_FTP_PORT=21
LAB_FTP_PASV=30000-30009                # the FTP server's passive ports
LAB_FTP_USER=labftp
LAB_FTP_PASS=lab-ftp-pw

# Clients must not pick up proxies or a socksify setup from the caller.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY \
	no_proxy NO_PROXY LD_PRELOAD SOCKSIFY_CONF SOCKSIFY_PROXY \
	SOCKSIFY_LOG_LEVEL SOCKSIFY_LOG_FILE
unset WGETRC
export CURL_HOME=/nonexistent GIT_CONFIG_NOSYSTEM=1

# Debian packages the lab needs (command or file : package).
LAB_NEEDS="ip:iproute2 danted:dante-server curl:curl wget:wget ncat:ncat
git:git ssh:openssh-client ssh-keygen:openssh-client
/usr/sbin/sshd:openssh-server /usr/bin/node:nodejs /usr/bin/python3:python3
/usr/lib/python3/dist-packages/pyftpdlib:python3-pyftpdlib
socat:socat timeout:coreutils setsid:util-linux xargs:findutils ss:iproute2
openssl:openssl /usr/sbin/nginx:nginx-light"

lab_fail() {
	printf 'lab: %s\n' "$*" >&2
	return 1
}

# lab_missing_packages: prints the Debian packages the lab lacks.
lab_missing_packages() {
	local pair check pkg missing=()
	for pair in $LAB_NEEDS; do
		check=${pair%%:*} pkg=${pair#*:}
		if [[ $check == /* ]]; then
			[[ -x $check ]] && continue
		else
			command -v "$check" >/dev/null 2>&1 && continue
		fi
		[[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
	done
	printf '%s\n' "${missing[*]}"
}

lab_require_build() {
	[[ -f $LAB_LIB ]] || lab_fail "missing $LAB_LIB (run make)" || return 1
	[[ -z $LAB_ASAN_RT || -f $LAB_ASAN_RT ]] || lab_fail "missing the ASan runtime ($LAB_ASAN_RT)"
}

# lab_skip_under_asan REASON: skip this test in the ASan pass.
lab_skip_under_asan() {
	[[ -z $LAB_ASAN_RT ]] || skip "$1"
}

# lab_asan_setup: in the ASan pass, sanitizer reports of this test's
# clients go to $BATS_TEST_TMPDIR/sanitizer.*.  For setup().
lab_asan_setup() {
	[[ -n $LAB_ASAN_RT ]] || return 0
	export ASAN_OPTIONS="detect_leaks=0:log_path=$BATS_TEST_TMPDIR/sanitizer"
	export UBSAN_OPTIONS="print_stacktrace=1:log_path=$BATS_TEST_TMPDIR/sanitizer"
}

# lab_no_sanitizer_report: fails, showing it, if a client of this test
# wrote a sanitizer report.  For teardown().
lab_no_sanitizer_report() {
	local f
	for f in "$BATS_TEST_TMPDIR"/sanitizer.*; do
		[[ -e $f ]] || continue
		lab_fail "sanitizer report $f:" "$(head -n 40 "$f")"
		return 1
	done
}

# lab_names OWNER: sets LAB_ID and the namespace names.
lab_names() {
	LAB_ID=$1
	LAB_C=sfylab-$LAB_ID-client
	LAB_P=sfylab-$LAB_ID-proxy
	LAB_S=sfylab-$LAB_ID-server
	export LAB_ID LAB_C LAB_P LAB_S
}

# ------------------------------------------------------------ processes
# lab_spawn NS LABEL CMD...: CMD in namespace NS, in the background, in its
# own process group, bounded by LAB_LIFETIME, output in $LAB_DIR/LABEL.out.
# fd 3 is closed so bats does not wait for it.  Sets LAB_PID.
lab_spawn() {
	local ns=$1 label=$2
	shift 2
	setsid ip netns exec "$ns" timeout -k 5 "$LAB_LIFETIME" "$@" \
		>"$LAB_DIR/$label.out" 2>&1 </dev/null 3>&- &
	LAB_PID=$!
	echo "$LAB_PID" >>"$LAB_DIR/pids"
}

# lab_kill_tracked: TERM every spawned process group, bounded wait, KILL.
lab_kill_tracked() {
	local pidfile=$LAB_DIR/pids pid i alive
	[[ -f $pidfile ]] || return 0
	while read -r pid; do
		kill -TERM -- "-$pid" 2>/dev/null || true
	done <"$pidfile"
	for ((i = 0; i < 40; i++)); do
		alive=0
		while read -r pid; do
			kill -0 -- "-$pid" 2>/dev/null && alive=1
		done <"$pidfile"
		((alive)) || break
		sleep 0.05
	done
	while read -r pid; do
		kill -KILL -- "-$pid" 2>/dev/null || true
	done <"$pidfile"
	rm -f "$pidfile"
}

# lab_del_ns NAME: kill what still runs in it (only our own namespaces
# ever get here), delete it and its /etc/netns directory.
lab_del_ns() {
	local ns=$1 pid i
	if [[ -e /run/netns/$ns ]]; then
		for ((i = 0; i < 20; i++)); do
			pid=$(ip netns pids "$ns" 2>/dev/null) || break
			[[ -n $pid ]] || break
			# shellcheck disable=SC2086 # one pid per word
			kill -KILL $pid 2>/dev/null || true
			sleep 0.05
		done
		ip netns del "$ns" 2>/dev/null || rm -f "/run/netns/$ns"
	fi
	rm -rf "/etc/netns/$ns"
}

# lab_cleanup_stale: delete sfylab-* namespaces (and /etc/netns dirs) whose
# owner process is gone: leftovers of an aborted run.  Live runs are kept.
lab_cleanup_stale() {
	local ns owner
	for ns in $( (ls /run/netns /etc/netns 2>/dev/null || true) |
		grep -E '^sfylab-[0-9]+-(client|proxy|server)$' | sort -u); do
		owner=${ns#sfylab-}
		owner=${owner%%-*}
		if kill -0 "$owner" 2>/dev/null &&
			tr '\0' ' ' <"/proc/$owner/cmdline" 2>/dev/null | grep -q 'bats\|lab'; then
			continue
		fi
		echo "lab: removing stale namespace $ns (owner $owner is gone)" >&2
		lab_del_ns "$ns"
	done
	rmdir /etc/netns 2>/dev/null || true
}

# ------------------------------------------------------------- waiting
# lab_wait_listen NS PORT PID [PROTO]: until something in NS listens on PORT.
lab_wait_listen() {
	local ns=$1 port=$2 pid=$3 flag=${4:--lnt} i
	for ((i = 0; i < LAB_WAIT * 20; i++)); do
		if [[ -n $(ip netns exec "$ns" ss -H "$flag" "sport = :$port" 2>/dev/null) ]]; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	lab_fail "nothing listening on port $port in $ns (pid $pid)"
	lab_show_logs >&2
	return 1
}

# lab_wait_file FILE PID: until FILE is non-empty.
lab_wait_file() {
	local file=$1 pid=$2 i
	for ((i = 0; i < LAB_WAIT * 20; i++)); do
		[[ -s $file ]] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	lab_fail "timed out waiting for $file (pid $pid)"
	lab_show_logs >&2
	return 1
}

lab_show_logs() {
	local f
	for f in "$LAB_DIR"/*.out "$LAB_DIR"/*.log; do
		[[ -s $f ]] || continue
		echo "--- $f (tail)"
		tail -n 20 "$f"
	done
}

# --------------------------------------------------------------- network
# lab_etc NS HOSTS-LINES...: /etc/netns/NS/{hosts,resolv.conf}.  Every
# namespace's resolver points at 127.0.0.1: in the client the sentinel
# answers there, elsewhere nothing does (fails at once, never leaves).
lab_etc() {
	local ns=$1
	shift
	mkdir -p "/etc/netns/$ns"
	{
		echo "127.0.0.1 localhost"
		echo "::1 localhost ip6-localhost ip6-loopback"
		[[ $# -gt 0 ]] && printf '%s\n' "$@"
	} >"/etc/netns/$ns/hosts"
	printf 'nameserver 127.0.0.1\noptions attempts:1 timeout:1\n' \
		>"/etc/netns/$ns/resolv.conf"
}

# lab_link NS1 IF1 NS2 IF2: a veth pair between two namespaces, created
# inside them (the host namespace never holds either end), with no
# link-local addresses, router solicitations or DAD.
lab_link() {
	local ns1=$1 if1=$2 ns2=$3 if2=$4 ns ifc
	ip -n "$ns1" link add "$if1" type veth peer name "$if2" netns "$ns2" || return 1
	for ns in "$ns1:$if1" "$ns2:$if2"; do
		ifc=${ns#*:} ns=${ns%%:*}
		ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$ifc.accept_ra=0" \
			"net.ipv6.conf.$ifc.accept_dad=0" || return 1
		ip -n "$ns" link set "$ifc" addrgenmode none || return 1
		ip -n "$ns" link set "$ifc" up || return 1
	done
}

lab_addr() { # NS IF ADDR/PREFIX (IPv6 without DAD: usable at once)
	if [[ $3 == *:* ]]; then
		ip -n "$1" addr add "$3" dev "$2" nodad
	else
		ip -n "$1" addr add "$3" dev "$2"
	fi
}

lab_network() {
	local ns
	for ns in "$LAB_C" "$LAB_P" "$LAB_S"; do
		ip netns add "$ns" || return 1
		# The namespace's inode, for lab_leftovers: a process still in it
		# after lab_down keeps it (and its veths) alive, name or no name.
		echo "$ns $(stat -L -c %i "/run/netns/$ns")" >>"$LAB_DIR/netns" || return 1
		ip -n "$ns" link set lo up || return 1
		ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=0 \
			net.ipv6.conf.all.forwarding=0 net.ipv6.conf.default.accept_ra=0 ||
			return 1
	done
	lab_etc "$LAB_C"
	lab_etc "$LAB_P" "$LAB_SERVER4 files.test" "$LAB_SERVER6 files6.test"
	lab_etc "$LAB_S"
	lab_link "$LAB_C" to-proxy "$LAB_P" to-client || return 1
	lab_link "$LAB_P" to-server "$LAB_S" to-proxy || return 1
	lab_addr "$LAB_C" to-proxy "$LAB_CLIENT4/24" &&
		lab_addr "$LAB_C" to-proxy "$LAB_CLIENT6/64" &&
		lab_addr "$LAB_P" to-client "$LAB_PROXY4/24" &&
		lab_addr "$LAB_P" to-client "$LAB_PROXY6/64" &&
		lab_addr "$LAB_P" to-server "$LAB_PROXY_EXT4/24" &&
		lab_addr "$LAB_P" to-server "$LAB_PROXY_EXT6/64" &&
		lab_addr "$LAB_S" to-proxy "$LAB_SERVER4/24" &&
		lab_addr "$LAB_S" to-proxy "$LAB_SERVER6/64"
}

# --------------------------------------------------------------- servers
lab_start_sentinel() {
	export LAB_DNS_LOG=$LAB_DIR/dns-queries.log
	lab_spawn "$LAB_C" sentinel "$LAB_PY" "$LAB_SERVERS/dns_sentinel.py" \
		--listen 127.0.0.1:53 --log "$LAB_DNS_LOG" \
		--port-file "$LAB_DIR/sentinel.port"
	lab_wait_file "$LAB_DIR/sentinel.port" "$LAB_PID" &&
		lab_wait_listen "$LAB_C" 53 "$LAB_PID" -lnu
}

lab_start_danted() {
	export LAB_DANTED_LOG=$LAB_DIR/danted.out
	lab_spawn "$LAB_P" danted danted -f "$LAB_HOME/danted.conf" -N 1 \
		-p "$LAB_DIR/danted.pid"
	lab_wait_listen "$LAB_P" "$LAB_PROXY_PORT" "$LAB_PID"
}

# lab_start_http NS NAME HOST PORT: tests/servers/http_server.py; its log
# has one line per accepted connection and per request.
lab_start_http() {
	local ns=$1 name=$2 host=$3 port=$4
	[[ $host == *:* ]] && host="[$host]"
	: >"$LAB_DIR/http-$name.log"
	lab_spawn "$ns" "http-$name" "$LAB_PY" "$LAB_SERVERS/http_server.py" \
		--name "$name" --listen "$host:$port" --log "$LAB_DIR/http-$name.log" \
		--port-file "$LAB_DIR/http-$name.port"
	lab_wait_file "$LAB_DIR/http-$name.port" "$LAB_PID"
}

# A bare repository with one commit, for git's dumb HTTP protocol, served
# by python's static file server on [::]:LAB_GIT_PORT (v4 and v6).
lab_start_git() {
	local work=$LAB_DIR/git-work
	export LAB_GIT_TOKEN="lab-git-$LAB_ID-$RANDOM"
	mkdir -p "$LAB_DIR/www" "$work" || return 1
	(
		export HOME=$LAB_DIR GIT_CONFIG_NOSYSTEM=1
		git="git -c user.name=lab -c user.email=lab@files.test -c init.defaultBranch=main"
		$git init -q --bare "$LAB_DIR/www/repo.git" &&
			$git init -q "$work" &&
			echo "$LAB_GIT_TOKEN" >"$work/README.lab" &&
			$git -C "$work" add README.lab &&
			$git -C "$work" commit -qm "lab fixture" &&
			$git -C "$work" push -q "$LAB_DIR/www/repo.git" HEAD:refs/heads/main &&
			$git -C "$LAB_DIR/www/repo.git" update-server-info
	) || return 1
	lab_spawn "$LAB_S" git-http "$LAB_PY" -m http.server --bind :: \
		--directory "$LAB_DIR/www" "$LAB_GIT_PORT"
	lab_wait_listen "$LAB_S" "$LAB_GIT_PORT" "$LAB_PID"
}

# TCP echo on [::]:LAB_ECHO_PORT (v4 and v6).  socat, not "ncat -l -k -e":
# ncat's exec mode may close before echoing when the client half-closes
# right after its line (as "ncat HOST PORT <<<line" does).  Each connection
# first appends "connect peer=[ADDR] port=PORT" to $LAB_DIR/echo.log
# (socat's SOCAT_PEER* variables: ADDR in full IPv6 form, IPv4 peers
# v4-mapped; lab_echo_count compares them).  No comma or colon in the
# command: socat would split the address there.
lab_start_echo() {
	: >"$LAB_DIR/echo.log"
	lab_spawn "$LAB_S" echo socat "TCP6-LISTEN:$LAB_ECHO_PORT,ipv6only=0,fork,reuseaddr" \
		"SYSTEM:echo connect peer=\$SOCAT_PEERADDR port=\$SOCAT_PEERPORT >>$LAB_DIR/echo.log; exec cat"
	lab_wait_listen "$LAB_S" "$LAB_ECHO_PORT" "$LAB_PID"
}

# UDP echo on port LAB_UDP_ECHO_PORT and an authoritative DNS server on
# LAB_UDP_DNS_PORT (files.test A 203.0.113.10, files6.test AAAA
# 2001:db8:2::10), both on the server's two addresses
# (tests/servers/udp_lab_server.py).  $LAB_UDP_LOG gets one line per
# datagram with its source: "echo from=ADDR:PORT to=... len=N data=TEXT"
# and "dns from=ADDR:PORT name=NAME type=T rcode=R".
lab_start_udp() {
	export LAB_UDP_LOG=$LAB_DIR/udp.log
	: >"$LAB_UDP_LOG"
	lab_spawn "$LAB_S" udp "$LAB_PY" "$LAB_SERVERS/udp_lab_server.py" \
		--echo "$LAB_SERVER4:$LAB_UDP_ECHO_PORT" --echo "[$LAB_SERVER6]:$LAB_UDP_ECHO_PORT" \
		--dns "$LAB_SERVER4:$LAB_UDP_DNS_PORT" --dns "[$LAB_SERVER6]:$LAB_UDP_DNS_PORT" \
		--zone "files.test=$LAB_SERVER4" --zone "files6.test=$LAB_SERVER6" \
		--log "$LAB_UDP_LOG" --port-file "$LAB_DIR/udp.port"
	lab_wait_file "$LAB_DIR/udp.port" "$LAB_PID" &&
		lab_wait_listen "$LAB_S" "$LAB_UDP_DNS_PORT" "$LAB_PID" -lnu
}

# sshd with its own host key; the client key is $LAB_SSH_KEY.
lab_start_sshd() {
	local d=$LAB_DIR/ssh
	mkdir -p "$d" /run/sshd || return 1 # /run/sshd: privilege separation
	chmod 700 "$d"
	ssh-keygen -q -t ed25519 -N '' -C lab-host -f "$d/host_ed25519" &&
		ssh-keygen -q -t ed25519 -N '' -C lab-client -f "$d/id_lab" &&
		cp "$d/id_lab.pub" "$d/authorized_keys" || return 1
	export LAB_SSH_KEY=$d/id_lab
	lab_spawn "$LAB_S" sshd /usr/sbin/sshd -D -e -f "$LAB_HOME/sshd_config" \
		-o "HostKey=$d/host_ed25519" -o "AuthorizedKeysFile=$d/authorized_keys" \
		-o "PidFile=$d/sshd.pid"
	lab_wait_listen "$LAB_S" 22 "$LAB_PID"
}

# FTP (pyftpdlib) on 203.0.113.10 and [2001:db8:2::10], port LAB_FTP_PORT,
# user LAB_FTP_USER, home $LAB_FTP_HOME (writable), active and passive.
lab_start_ftp() {
	export LAB_FTP_HOME=$LAB_DIR/ftp-home
	mkdir -p "$LAB_FTP_HOME" || return 1
	lab_spawn "$LAB_S" ftp "$LAB_PY" "$LAB_HOME/ftp_server.py" \
		--listen "$LAB_SERVER4" --listen "$LAB_SERVER6" --port "$LAB_FTP_PORT" \
		--user "$LAB_FTP_USER" --password "$LAB_FTP_PASS" --home "$LAB_FTP_HOME" \
		--passive-ports "$LAB_FTP_PASV" --port-file "$LAB_DIR/ftp.port"
	lab_wait_file "$LAB_DIR/ftp.port" "$LAB_PID" &&
		lab_wait_listen "$LAB_S" "$LAB_FTP_PORT" "$LAB_PID"
}

# A test CA made for this run and a server certificate it signs for
# files.test, files6.test and the server's two addresses, in $LAB_DIR/tls
# (nothing outside $LAB_DIR, so removing it removes them).  Sets LAB_CA
# (the CA certificate, PEM, for clients to trust).
lab_make_ca() {
	local d=$LAB_DIR/tls
	mkdir -p "$d" && chmod 700 "$d" || return 1
	export LAB_CA=$d/ca.pem
	cat >"$d/server.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:files.test, DNS:files6.test, IP:$LAB_SERVER4, IP:$LAB_SERVER6
EOF
	# EC P-256: quick to make; valid 2 days: a lab lives minutes.
	if ! {
		openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$d/ca.key" -out "$LAB_CA" -days 2 -subj "/CN=socksify lab CA $LAB_ID" \
			-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" 2>"$d/openssl.err" &&
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=files.test" \
			2>>"$d/openssl.err" &&
		openssl x509 -req -in "$d/server.csr" -CA "$LAB_CA" -CAkey "$d/ca.key" \
			-CAcreateserial -days 2 -extfile "$d/server.ext" -out "$d/server.pem" \
			2>>"$d/openssl.err"
	}; then
		lab_fail "could not make the test CA:" "$(cat "$d/openssl.err")"
		return 1
	fi
}

# nginx on $LAB_SERVER4 and [$LAB_SERVER6] port LAB_HTTPS_PORT, TLS with a
# certificate from the test CA, and port LAB_PAGE_PORT, plain HTTP (an HTML
# page with a script, which the port-80 servers do not have), serving
# $LAB_DIR/https-www:
#   /         an HTML page: the token $LAB_HTTPS_TOKEN, the peer nginx saw
#             (SSI), and a script, /app.js, that adds "script ran" to the
#             page and then an image /seen?TEXT, TEXT being what the page
#             shows (token and peer)
#   /seen     an empty 204: its line in the log proves that the script ran
#             on the rendered page (for browsers that cannot dump the DOM)
# One line per request in $LAB_HTTPS_LOG:
#   peer=ADDR port=PORT host=HOST tls=PROTOCOL ("-" in plain HTTP) "REQUEST" STATUS
lab_start_https() {
	local d=$LAB_DIR/nginx www=$LAB_DIR/https-www
	lab_make_ca || return 1
	mkdir -p "$d/tmp" "$www" || return 1
	export LAB_HTTPS_LOG=$LAB_DIR/https-access.log
	export LAB_HTTPS_TOKEN="lab-https-$LAB_ID-$RANDOM"
	: >"$LAB_HTTPS_LOG"
	cat >"$www/index.html" <<EOF
<!doctype html>
<html><head><meta charset="utf-8"><title>socksify lab</title>
<script src="/app.js"></script></head>
<body><p id="token">$LAB_HTTPS_TOKEN</p>
<p id="peer">peer=<!--# echo var="remote_addr" --></p></body></html>
EOF
	cat >"$www/app.js" <<'EOF'
document.addEventListener("DOMContentLoaded", function () {
	var p = document.createElement("p");
	p.id = "script";
	p.textContent = "script ran";
	document.body.appendChild(p);
	var text = document.getElementById("token").textContent + " " +
		document.getElementById("peer").textContent;
	// An image added before the load event delays it: a browser that
	// waits for "load" (a screenshot, --dump-dom) has requested it.
	var img = document.createElement("img");
	img.src = "/seen?" + encodeURIComponent(text);
	document.body.appendChild(img);
});
EOF
	: >"$www/favicon.ico"
	# master_process off: one process, which lab_spawn tracks.
	cat >"$d/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log info;
events { worker_connections 256; }
http {
	log_format lab 'peer=\$remote_addr port=\$server_port host=\$host tls=\$ssl_protocol "\$request" \$status';
	access_log $LAB_HTTPS_LOG lab;
	client_body_temp_path $d/tmp/body;
	proxy_temp_path $d/tmp/proxy;
	fastcgi_temp_path $d/tmp/fastcgi;
	uwsgi_temp_path $d/tmp/uwsgi;
	scgi_temp_path $d/tmp/scgi;
	types { text/html html; application/javascript js; image/x-icon ico; }
	server {
		listen $LAB_SERVER4:$LAB_HTTPS_PORT ssl;
		listen [$LAB_SERVER6]:$LAB_HTTPS_PORT ssl;
		listen $LAB_SERVER4:$LAB_PAGE_PORT;
		listen [$LAB_SERVER6]:$LAB_PAGE_PORT;
		server_name files.test files6.test;
		ssl_protocols TLSv1.2 TLSv1.3;
		ssl_certificate $LAB_DIR/tls/server.pem;
		ssl_certificate_key $LAB_DIR/tls/server.key;
		root $www;
		ssi on;
		location = /seen { return 204; }
	}
}
EOF
	lab_spawn "$LAB_S" https nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf"
	lab_wait_listen "$LAB_S" "$LAB_HTTPS_PORT" "$LAB_PID" &&
		lab_wait_listen "$LAB_S" "$LAB_PAGE_PORT" "$LAB_PID"
}

# lab_https_count ERE: lines of the HTTPS access log that match.
lab_https_count() {
	grep -Ec -- "$1" "$LAB_HTTPS_LOG" || true
}

# ------------------------------------------------- chains (issue 14)
# Extra proxies for tests/bats/lab_chains.bats, started after lab_up by
# lab_start_chain_proxies; the other suites never start them.
LAB_INNER_PORT=8081          # "inner": HTTP on the server host's 127.0.0.1 only
LAB_DANTED2_PORT=1081        # second danted, server namespace (danted-inner.conf)
LAB_RR_PORTS="1082 1083 1084" # danted-rr.conf, proxy namespace
LAB_HOP3_PORT=1082           # test SOCKS5 server on the server host's 127.0.0.1
LAB_HOP4A_PORT=1087          # test server with SOCKS4/4a, on the server's address
LAB_TINY_PORT=8888           # tinyproxy, HTTP CONNECT, proxy namespace
LAB_TINY_AUTH_PORT=8889      # the same with Basic auth
LAB_TINY_USER=labhop
LAB_TINY_PASS=lab-hop-pw

# lab_start_tinyproxy LABEL PORT [BASICAUTH-LINE]: tinyproxy (one process,
# threads) on LAB_PROXY4:PORT in the proxy namespace, CONNECT allowed to the
# ports the chain tests use; its log ($LAB_DIR/LABEL.log) has a "Connect
# (file descriptor N): PEER" and an "Established connection to host" line
# per connection.
lab_start_tinyproxy() {
	local label=$1 port=$2 auth=${3-} p
	: >"$LAB_DIR/$label.log"
	{
		echo "Port $port"
		echo "Listen $LAB_PROXY4"
		echo "Timeout 60"
		echo "LogFile \"$LAB_DIR/$label.log\""
		echo "LogLevel Connect"
		echo "PidFile \"$LAB_DIR/$label.pid\""
		echo "MaxClients 64"
		echo "Allow 198.51.100.0/24"
		echo "DisableViaHeader Yes"
		for p in 80 "$LAB_INNER_PORT" "$LAB_DANTED2_PORT" "$LAB_ECHO_PORT" \
			"$LAB_PAGE_PORT" "$LAB_FTP_PORT"; do
			echo "ConnectPort $p"
		done
		[[ -z $auth ]] || echo "$auth"
	} >"$LAB_DIR/$label.conf"
	lab_spawn "$LAB_P" "$label" tinyproxy -d -c "$LAB_DIR/$label.conf"
	lab_wait_listen "$LAB_P" "$port" "$LAB_PID"
}

# lab_start_socks_testserver NS LABEL HOST:PORT ARGS...: the project's test
# SOCKS5 server (tests/servers/socks5_testserver.py, e.g. --mode silent),
# recording each client in $LAB_DIR/LABEL.jsonl (peer, request, reply).
lab_start_socks_testserver() {
	local ns=$1 label=$2 listen=$3
	shift 3
	: >"$LAB_DIR/$label.jsonl"
	lab_spawn "$ns" "$label" "$LAB_PY" "$LAB_SERVERS/socks5_testserver.py" \
		--listen "$listen" --record "$LAB_DIR/$label.jsonl" \
		--port-file "$LAB_DIR/$label.port" "$@"
	lab_wait_file "$LAB_DIR/$label.port" "$LAB_PID"
}

# lab_start_chain_proxies: after lab_up.
#   - "inner", tests/servers/http_server.py on the server host's 127.0.0.1:
#     LAB_INNER_PORT ("hello from inner ..."), and inner.test -> 127.0.0.1 in
#     the server namespace's /etc/hosts (no one else knows the name);
#   - a second danted in the server namespace on 203.0.113.10 and
#     [2001:db8:2::10] port LAB_DANTED2_PORT whose external address is the
#     loopback: the only way to "inner" is client -> danted (proxy) ->
#     danted (server) -> 127.0.0.1 (the client has no route to it);
#     log $LAB_DANTED2_LOG;
#   - hop 3 of the three-hop chains: the test SOCKS5 server on the server
#     host's 127.0.0.1:LAB_HOP3_PORT (reachable only from that host), which
#     resolves inner.test itself (--map), records in $LAB_DIR/hop3.jsonl;
#   - a SOCKS4a hop (danted 1.4 speaks SOCKS4 but not 4a: it takes
#     0.0.0.1 for an address): the test server with --socks4 on
#     LAB_SERVER4:LAB_HOP4A_PORT, resolving inner.test itself, records in
#     $LAB_DIR/hop4a.jsonl; reachable only as hop 2 (through danted);
#   - danted-rr.conf: danted on the proxy's address, ports LAB_RR_PORTS,
#     log $LAB_RR_LOG (the port of each session is in its line);
#     www.corp.test -> 203.0.113.10 in the proxy's /etc/hosts;
#   - tinyproxy (HTTP CONNECT) on LAB_PROXY4:LAB_TINY_PORT and, with Basic
#     auth (LAB_TINY_USER / LAB_TINY_PASS), on LAB_TINY_AUTH_PORT; logs
#     $LAB_DIR/tinyproxy.log and tinyproxy-auth.log.
# danted speaks SOCKS4 on the same ports as SOCKS5, so socks4:// hops use
# the danteds above.  Everything is tracked by
# lab_spawn: lab_down stops it.
lab_start_chain_proxies() {
	# Appending keeps the files' inodes: processes already in the
	# namespaces see the new lines too.
	echo "127.0.0.1 inner.test" >>"/etc/netns/$LAB_S/hosts" &&
		echo "$LAB_SERVER4 www.corp.test" >>"/etc/netns/$LAB_P/hosts" || return 1
	lab_start_http "$LAB_S" inner 127.0.0.1 "$LAB_INNER_PORT" || return 1
	export LAB_DANTED2_LOG=$LAB_DIR/danted-inner.out
	lab_spawn "$LAB_S" danted-inner danted -f "$LAB_HOME/danted-inner.conf" -N 1 \
		-p "$LAB_DIR/danted-inner.pid"
	lab_wait_listen "$LAB_S" "$LAB_DANTED2_PORT" "$LAB_PID" || return 1
	lab_start_socks_testserver "$LAB_S" hop3 "127.0.0.1:$LAB_HOP3_PORT" \
		--map inner.test=127.0.0.1 || return 1
	lab_start_socks_testserver "$LAB_S" hop4a "$LAB_SERVER4:$LAB_HOP4A_PORT" \
		--socks4 --map inner.test=127.0.0.1 || return 1
	export LAB_RR_LOG=$LAB_DIR/danted-rr.out
	lab_spawn "$LAB_P" danted-rr danted -f "$LAB_HOME/danted-rr.conf" -N 1 \
		-p "$LAB_DIR/danted-rr.pid"
	local port
	for port in $LAB_RR_PORTS; do
		lab_wait_listen "$LAB_P" "$port" "$LAB_PID" || return 1
	done
	lab_start_tinyproxy tinyproxy "$LAB_TINY_PORT" &&
		lab_start_tinyproxy tinyproxy-auth "$LAB_TINY_AUTH_PORT" \
			"BasicAuth $LAB_TINY_USER $LAB_TINY_PASS"
}

# --------------------------------------------------------------- up/down
# lab_up OWNER DIR: namespaces, links, every server.  On failure it tears
# down what it made and returns 1.
lab_up() {
	lab_names "$1"
	export LAB_DIR=$2
	mkdir -p "$LAB_DIR" || return 1
	if lab_network && lab_start_sentinel && lab_start_danted &&
		lab_start_http "$LAB_S" files-v4 "$LAB_SERVER4" 80 &&
		lab_start_http "$LAB_S" files-v6 "$LAB_SERVER6" 80 &&
		lab_start_http "$LAB_C" client-local "$LAB_CLIENT4" "$LAB_LOCAL_PORT" &&
		lab_start_git && lab_start_echo && lab_start_udp && lab_start_sshd && lab_start_ftp &&
		lab_start_https; then
		return 0
	fi
	lab_fail "could not bring the lab up"
	lab_down
	return 1
}

# lab_down: idempotent; kills every lab process and deletes the namespaces
# (which destroys the veths) and their /etc/netns directories.
lab_down() {
	[[ -n ${LAB_ID-} ]] || return 0
	local up
	# When the teardown began (seconds since boot): lab_leftovers ignores
	# processes started later, which cannot be ours.
	[[ -n ${LAB_DIR-} && -d $LAB_DIR ]] && read -r up _ </proc/uptime &&
		echo "$up" >"$LAB_DIR/down-at"
	[[ -n ${LAB_DIR-} ]] && lab_kill_tracked
	local ns
	for ns in "$LAB_C" "$LAB_P" "$LAB_S"; do
		lab_del_ns "$ns"
	done
	rmdir /etc/netns 2>/dev/null || true
	return 0
}

# lab_leftovers: prints anything of this lab that still exists: its named
# namespaces and /etc/netns directories, and every live process that is in
# a tracked process group (lab_spawn), in one of the lab's network
# namespaces (tracked or not, e.g. a client a test left running), or that
# names $LAB_DIR in its command line (every lab server does).  A process
# keeps its namespace, and the veths in it, alive after "ip netns del".
# Zombies do not count: they hold no namespace, and their parent may be
# gone (a killed run's servers end up as children of init).
lab_leftovers() {
	local ns
	for ns in "$LAB_C" "$LAB_P" "$LAB_S"; do
		[[ -e /run/netns/$ns ]] && echo "namespace $ns"
		[[ -e /etc/netns/$ns ]] && echo "/etc/netns/$ns"
	done
	[[ -n ${LAB_DIR-} ]] || return 0
	"$LAB_PY" - "$LAB_DIR" <<'PY'
import os, sys

lab_dir = sys.argv[1]
groups = set()
try:
    with open(os.path.join(lab_dir, "pids")) as f:
        groups = {int(line) for line in f if line.strip().isdigit()}
except OSError:
    pass
inodes = {}
try:
    with open(os.path.join(lab_dir, "netns")) as f:
        for line in f:
            name, ino = line.split()
            inodes[int(ino)] = name
except OSError:
    pass
try:
    with open(os.path.join(lab_dir, "down-at")) as f:
        down_at = float(f.read())
except (OSError, ValueError):
    down_at = float("inf")
hz = os.sysconf("SC_CLK_TCK")
me = os.getpid()
for pid in filter(str.isdigit, os.listdir("/proc")):
    if int(pid) == me:
        continue
    try:
        with open("/proc/%s/stat" % pid) as f:
            stat = f.read().rsplit(")", 1)[1].split()
        if stat[0] == "Z":
            continue
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        try:
            ino = os.stat("/proc/%s/ns/net" % pid).st_ino
        except OSError:
            ino = None
    except (OSError, IndexError):
        continue
    if int(stat[19]) / hz > down_at:
        continue          # started after the teardown: not ours
    if ino in inodes:
        print("process %s in namespace %s: %s" % (pid, inodes[ino], cmd))
    elif int(stat[2]) in groups:
        print("process %s in process group %s: %s" % (pid, stat[2], cmd))
    elif (lab_dir + "/") in cmd:
        print("process %s: %s" % (pid, cmd))
PY
	return 0
}

# lab_teardown_checked: lab_down, then fail loudly (with the list) if
# anything of the lab is left.  For teardown_file.
lab_teardown_checked() {
	[[ -n ${LAB_ID-} ]] || return 0
	lab_down
	local left
	left=$(lab_leftovers)
	[[ -z $left ]] || lab_fail "the lab left behind:" "$left"
}

# --------------------------------------------------------------- clients
# in_client CMD...: CMD in the client namespace, killed after
# LAB_CMD_TIMEOUT seconds (timeout runs before the wrapper sets LD_PRELOAD,
# so it is not itself preloaded).
in_client() {
	ip netns exec "$LAB_C" timeout -k 3 "$LAB_CMD_TIMEOUT" "$@"
}

# lab_sfy [-c CONF] CMD...: CMD under scripts/socksify in the client
# namespace; the config defaults to $LAB_CONF (the IPv4 proxy).  In the
# ASan pass the runtime is preloaded first and the wrapper adds the ASan
# build (SOCKSIFY_LIB) after it.
lab_sfy() {
	local conf=${LAB_CONF:-$LAB_HOME/client-v4.conf}
	if [[ ${1-} == -c ]]; then
		conf=$2
		shift 2
	fi
	if [[ -n $LAB_ASAN_RT ]]; then
		in_client env LD_PRELOAD="$LAB_ASAN_RT" "$LAB_SOCKSIFY" -c "$conf" -- "$@"
	else
		in_client "$LAB_SOCKSIFY" -c "$conf" -- "$@"
	fi
}

# lab_expect_pass_library: a program under lab_sfy has this pass's build
# of the library mapped (and, in the ASan pass, the runtime before it).
lab_expect_pass_library() {
	local maps want=$LAB_LIB
	# The ASan pass is for this build, whatever LAB_LIB says.
	[[ ${SOCKSIFY_TEST_ASAN-} != 1 ]] || want=$LAB_ROOT/build/asan/libsocksify.so
	maps=$(lab_sfy "$LAB_PY" -c 'print(open("/proc/self/maps").read())' | awk '{ print $6 }' | grep '\.so' | uniq) ||
		lab_fail "could not read the client's maps" || return 1
	grep -qxF "$(readlink -f "$want")" <<<"$maps" ||
		lab_fail "$want is not mapped in the client:" "$maps" || return 1
	if [[ -n $LAB_ASAN_RT ]]; then
		grep -q '/libasan\.so' <<<"$maps" ||
			lab_fail "the ASan runtime is not mapped in the client:" "$maps" || return 1
	else
		! grep -q '/libasan\.so\|/asan/libsocksify\.so' <<<"$maps" ||
			lab_fail "the release pass loaded ASan:" "$maps" || return 1
	fi
}

# ------------------------------------------------------- suite scaffolding
# lab_setup_file NAME WHY [NEED...]: a lab suite's setup_file.  Without
# root it sets LAB_SKIP ("NAME needs root (WHY)") and returns 0, so every
# test skips; otherwise it fails on missing packages, a missing build or a
# missing NEED (a path: an executable the build makes; "cmd:NAME:PACKAGE":
# a command from that Debian package), clears stale labs, and brings this
# file's lab up, named after this process.
lab_setup_file() {
	local name=$1 why=$2 need missing bins=()
	shift 2
	export LAB_SKIP=
	if [[ $(id -u) != 0 ]]; then
		LAB_SKIP="$name needs root ($why)"
		echo "# SKIPPING: $LAB_SKIP" >&3
		return 0
	fi
	missing=$(lab_missing_packages)
	for need in "$@"; do
		if [[ $need == cmd:* ]]; then
			need=${need#cmd:}
			command -v "${need%%:*}" >/dev/null 2>&1 || missing+=" ${need#*:}"
		else
			bins+=("$need")
		fi
	done
	[[ -z ${missing// /} ]] || lab_fail "missing Debian packages: $missing" || return 1
	lab_require_build || return 1
	for need in "${bins[@]}"; do
		[[ -x $need ]] || lab_fail "missing $need (run make test's build)" || return 1
	done
	lab_cleanup_stale >/dev/null 2>&1 || true
	lab_up "$$" "$BATS_FILE_TMPDIR/lab"
}

# lab_setup: the start of every lab test (skipped without root; ASan
# reports collected; the DNS sentinel's log emptied).
lab_setup() {
	[[ -z $LAB_SKIP ]] || skip "$LAB_SKIP"
	lab_asan_setup
	lab_reset_dns
}

# lab_teardown FILE...: the end of every lab test: after a failure the
# tail of each FILE that has something, then no sanitizer report allowed.
lab_teardown() {
	[[ -z $LAB_SKIP ]] || return 0
	if [[ -z ${BATS_TEST_COMPLETED-} ]]; then
		local f
		for f in "$@"; do
			[[ -s $f ]] || continue
			echo "--- $f (tail)"
			tail -n 10 "$f"
		done
	fi
	lab_no_sanitizer_report
}

# ------------------------------------------------------------ assertions
# After bats' "run": the status, the whole output, a match of it (ERE).
# shellcheck disable=SC2154 # status and output are set by bats' run
expect_status() {
	[[ $status -eq $1 ]] || lab_fail "expected exit status $1, got $status; output:" "$output"
}

expect_output() {
	[[ $output == "$1" ]] || lab_fail "expected output '$1', got:" "$output"
}

expect_match() {
	[[ $output =~ $1 ]] || lab_fail "expected output to match /$1/, got:" "$output"
}

re_quote() { # an address or name as an ERE
	printf '%s' "${1//./\\.}"
}

lab_reset_dns() {
	: >"$LAB_DNS_LOG"
}

lab_assert_no_dns_leak() {
	if [[ -s $LAB_DNS_LOG ]]; then
		lab_fail "DNS leak: the client's sentinel saw:" "$(cat "$LAB_DNS_LOG")"
		return 1
	fi
}

# lab_echo_count ADDR: connections the echo server logged from ADDR (an
# IPv4 or IPv6 address in any form; v4-mapped peers count as IPv4).
lab_echo_count() {
	"$LAB_PY" - "$1" "$LAB_DIR/echo.log" <<'PY'
import ipaddress, sys

def norm(a):
    a = ipaddress.ip_address(a.strip("[]"))
    return getattr(a, "ipv4_mapped", None) or a

want = norm(sys.argv[1])
n = 0
with open(sys.argv[2]) as f:
    for line in f:
        for word in line.split():
            if word.startswith("peer=") and norm(word[5:]) == want:
                n += 1
print(n)
PY
}

# lab_http_count NAME: lines (connections + requests) in that server's log.
lab_http_count() {
	wc -l <"$LAB_DIR/http-$1.log"
}
