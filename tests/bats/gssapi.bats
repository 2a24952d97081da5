#!/usr/bin/env bats
# GSSAPI authentication (RFC 1961) in the library: a private Kerberos realm
# and KDC, alice's ticket from kinit, and the RFC 1961 test server
# (tests/servers/socks5_gssapi.py, itself tested by gssapi_server.bats),
# whose record says what the library really did on the wire: the methods
# offered, the level asked, whether its tokens were really encrypted, the
# request, and every framing fault.
#
# Config: gssapi = yes, gssapi_service = SERVICE@HOST (default rcmd@ + the
# proxy's host as written), gssapi_protection = integrity|confidentiality
# (default confidentiality).

load helpers
load gssapi

MIB=1048576

setup_file() {
	common_setup_file || return 1
	start_sentinel || return 1
	start_kdc || return 1
	# Made first: by the time the test that needs it runs, long expired.
	export EXPIRED_CC=FILE:$BATS_FILE_TMPDIR/expired.ccache
	kinit_expired "$EXPIRED_CC" || return 1
	start_http web 127.0.0.3 || return 1
	start_bulk || return 1
	export UPFILE=$BATS_FILE_TMPDIR/up.bin
	head -c "$MIB" /dev/urandom >"$UPFILE"
}

# gss_conf [LINES...]: $CONF for the GSS server, log to $SFY_LOG.
gss_conf() {
	proxy_conf "$CONF" "$GSS_PORT" "gssapi = yes" \
		"gssapi_service = rcmd@localhost" "log_file = $SFY_LOG" "$@"
}

# gss_setup [SERVER ARGS...]: a server and $CONF (confidentiality).
gss_setup() {
	start_gss_server "$@" || return 1
	gss_conf
}

sha() {
	sha256sum "$1" | cut -d' ' -f1
}

# expect_no_delivery PATH: the destination never saw a request for PATH.
expect_no_delivery() {
	! grep -q "GET $1 " "$HTTP_LOG" || fail "the request reached the destination:" "$(cat "$HTTP_LOG")"
}

# expect_fast_failure: tcp_get failed in connect() well within the 5 s
# handshake_timeout: the library noticed, it did not wait.
expect_fast_failure() {
	expect_status 1 || return 1
	expect_match "error: connect: E[A-Z]+ " || return 1
	expect_connect_ms 0 0 1500
}

# ------------------------------------------------------------ CONNECT
@test "CONNECT with confidentiality (the default): method 1 offered first, level 2, every token encrypted, outbound from the proxy" {
	start_gss_server
	proxy_conf "$CONF" "$GSS_PORT" "gssapi = yes" "gssapi_service = rcmd@localhost"
	run sfy "$TESTBIN/tcp_get" web.test "$HTTP_PORT" /conf
	expect_status 0 || return 1
	expect_contains "hello from web path=/conf peer=127.0.0.2" || return 1
	gss_wait_records 1 || return 1
	[[ $(gss_get -1 methods) == "[1"* ]] || fail "GSSAPI not offered first:" "$(cat "$GSS_RECORD")" || return 1
	gss_expect method 1 || return 1
	gss_expect principal "$KRB_USER@$KRB_REALM" || return 1
	gss_expect target "rcmd/localhost@$KRB_REALM" || return 1
	gss_expect level_asked 2 || return 1
	gss_expect level_granted 2 || return 1
	gss_expect level_msg_conf False || return 1   # RFC 1961 4.4: conf_req FALSE
	gss_expect conf "[true]" || return 1
	gss_expect conf_violations 0 || return 1
	gss_expect request_tokens 1 || return 1
	gss_expect violations "[]" || return 1
	gss_expect cmd 1 || return 1
	gss_expect host web.test || return 1
	[[ $(gss_get -1 ctx_flags) == *mutual_authentication* ]] ||
		fail "no mutual authentication:" "$(cat "$GSS_RECORD")" || return 1
	assert_no_dns_leak
}

@test "CONNECT with gssapi_protection = integrity: level 1, nothing encrypted" {
	gss_setup
	gss_conf "gssapi_protection = integrity"
	run sfy "$TESTBIN/tcp_get" web.test "$HTTP_PORT" /integ
	expect_status 0 || return 1
	expect_contains "hello from web path=/integ peer=127.0.0.2" || return 1
	gss_expect level_asked 1 || return 1
	gss_expect level_granted 1 || return 1
	gss_expect level_msg_conf False || return 1
	gss_expect conf "[false]" || return 1
	gss_expect violations "[]" || return 1
	assert_no_dns_leak
}

@test "the default gssapi_service is rcmd@ plus the proxy's host as written" {
	start_gss_server --service rcmd@127.0.0.1
	proxy_conf "$CONF" "$GSS_PORT" "gssapi = yes"
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$HTTP_PORT" /default
	expect_status 0 || return 1
	expect_contains "path=/default peer=127.0.0.2" || return 1
	gss_expect target "rcmd/127.0.0.1@$KRB_REALM"
}

# ---------------------------------------------------------- bulk data
@test "1 MiB each way at both levels, octet by octet and by sha256 (threads, blocking I/O)" {
	local prot
	start_gss_server
	for prot in confidentiality integrity; do
		gss_conf "gssapi_protection = $prot"
		run sfy "$PY" "$SERVERS/bulk.py" client 127.0.0.3 "$BULK_PORT" --up "$MIB" --down "$MIB"
		expect_status 0 || return 1
		expect_line "down_bytes=$MIB" || return 1
		expect_line "down_ok=1" || return 1
		expect_line "up_ok=1" || return 1
	done
	gss_wait_records 2 || return 1
	gss_expect conf "[true]" 0 || return 1
	gss_expect conf "[false]" 1 || return 1
	gss_expect conf_violations 0 || return 1
	bulk_expect up_bytes "$MIB" || return 1
	bulk_expect peer 127.0.0.2
}

@test "a program that writes 8 MiB and exits at once: every octet reaches the destination, and the exit is clean (Kerberos torn down after the relay)" {
	local prot before i sum
	start_gss_server
	for prot in confidentiality integrity; do
		gss_conf "gssapi_protection = $prot"
		before=$(wc -l <"$BULK_LOG")
		# The destination waits 400 ms before it reads: the last of the
		# data is still in the relay when the program's exit() runs the
		# library's teardown and Kerberos's own.
		run sfy "$PY" "$SERVERS/bulk.py" client 127.0.0.3 "$BULK_PORT" --up "$((8 * MIB))" --server-delay 400 \
			--exit-after-send
		expect_status 0 || fail "$prot" || return 1
		expect_line "sent=$((8 * MIB))" || return 1
		! [[ $output =~ k5_mutex|Assertion|Sanitizer ]] || fail "$prot: the exit was not clean" || return 1
		sum=$(sed -n 's/^up_sha256=//p' <<<"$output")
		for ((i = 0; i < WAIT_SECS * 20; i++)); do
			(($(wc -l <"$BULK_LOG") > before)) && break
			sleep 0.05
		done
		bulk_expect up_bytes "$((8 * MIB))" || fail "$prot" || return 1
		bulk_expect up_sha256 "$sum" || return 1
	done
}

@test "poll readiness: an event loop (O_NONBLOCK, poll) never sees a readable report that yields nothing, even with several tokens per read" {
	local m
	local down
	for m in normal coalesce split; do
		down=300000
		[[ $m == split ]] && down=60000 # each token in two halves 5 ms apart: 60 of them
		gss_setup --mode "$m" --chunk 1000 || return 1
		run sfy "$PY" "$SERVERS/bulk.py" client 127.0.0.3 "$BULK_PORT" --up 200000 --down "$down" --nonblock
		expect_status 0 || fail "mode $m" || return 1
		expect_line "down_bytes=$down" || return 1
		expect_line "down_ok=1" || return 1
		expect_line "up_ok=1" || return 1
		expect_line "spurious_reads=0" || fail "mode $m" || return 1
	done
}

@test "event loops: epoll (edge-triggered, one-shot, registered before connect) and select, 10 handshakes at once, each protected" {
	local mode reg path
	gss_setup
	for mode in epoll-et epoll-oneshot epoll-lt select; do
		for reg in "" --register-before; do
			path=/ev-$mode${reg:+-before}-x
			# shellcheck disable=SC2086 # $reg: empty or one word
			run sfy "$TESTBIN/evloop" --mode "$mode" $reg --conns 10 --host web.test --port "$HTTP_PORT" \
				--path "$path" --expect-body "hello from web path=$path peer=127.0.0.2"
			expect_status 0 || fail "$mode $reg" || return 1
			expect_match $'(^|\n)ok 10 ms=[0-9]+' || return 1
			expect_line "einprogress=10" || return 1
		done
	done
	# Every one of the 80 was GSSAPI at confidentiality, nothing plain.
	gss_wait_records 80 || return 1
	[[ $(TS_RECORD=$GSS_RECORD count_records method 1) -eq 80 ]] ||
		fail "not all GSSAPI:" "$(cat "$GSS_RECORD")" || return 1
	[[ $(TS_RECORD=$GSS_RECORD count_records conf "[True]") -eq 80 ]] ||
		fail "not all encrypted:" "$(cat "$GSS_RECORD")" || return 1
	assert_no_dns_leak
}

@test "gssapi = required offers GSSAPI alone; yes lets a proxy choose no authentication" {
	gss_setup --mode prefer-none
	gss_conf
	run sfy "$TESTBIN/tcp_get" web.test "$HTTP_PORT" /yes
	expect_status 0 || return 1
	gss_wait_records 1 || return 1
	gss_expect methods "[1, 0]" 0 || return 1
	gss_expect method 0 0 || return 1 # chosen by the proxy: documented
	# required: the same server cannot downgrade us; it refuses instead.
	gss_conf "gssapi = required"
	run sfy "$TESTBIN/tcp_get" web.test "$HTTP_PORT" /refused
	expect_errno EACCES || return 1
	gss_wait_records 2 || return 1
	gss_expect methods "[1]" 1 || return 1
	expect_no_delivery /refused || return 1
	# ...and a GSSAPI server serves it, protected.
	gss_setup
	gss_conf "gssapi = required"
	run sfy "$TESTBIN/tcp_get" web.test "$HTTP_PORT" /required
	expect_status 0 || return 1
	expect_contains "path=/required peer=127.0.0.2" || return 1
	gss_expect methods "[1]" || return 1
	gss_expect method 1 || return 1
	gss_expect conf "[true]"
}

@test "sendfile from a file to the socket, splice from the socket to a file; copy_file_range fails as on TCP" {
	gss_setup
	run sfy "$TESTBIN/gss_io" files 127.0.0.3 "$BULK_PORT" "$UPFILE" 500000 "$BATS_TEST_TMPDIR/down.bin"
	expect_status 0 || return 1
	expect_line "copy_file_range=EINVAL" || return 1 # as on any TCP socket
	expect_line "sent=$MIB" || return 1
	bulk_expect up_sha256 "$(sha "$UPFILE")" || return 1
	# What came back: 500000 pattern octets, then the trailer line.
	local want
	want=$("$PY" -c "import sys, hashlib; sys.path.insert(0, '$SERVERS')
import bulk; print(hashlib.sha256(bulk.pattern(500000)).hexdigest())")
	[[ $(head -c 500000 "$BATS_TEST_TMPDIR/down.bin" | sha256sum | cut -d' ' -f1) == "$want" ]] ||
		fail "the spliced download differs"
}

# ------------------------------------------------------------ BIND / FTP
# start_ftp: pyftpdlib (tests/lab/ftp_server.py) on 127.0.0.3; sets
# FTP_PORT, FTP_HOME (holding big.bin, 1 MiB).
start_ftp() {
	local dir
	dir=$(scope_dir)
	export FTP_HOME=$dir/ftp-home
	mkdir -p "$FTP_HOME"
	head -c "$MIB" /dev/urandom >"$FTP_HOME/big.bin"
	FTP_PORT=$(free_port) || return 1
	export FTP_PORT
	spawn ftp "$PY" "$ROOT/tests/lab/ftp_server.py" --listen 127.0.0.3 \
		--port "$FTP_PORT" --user ftpuser --password ftp-pw \
		--home "$FTP_HOME" --port-file "$dir/ftp.port"
	wait_file "$dir/ftp.port" "$SPAWNED_PID"
}

@test "active FTP (inetutils-ftp) through BIND at both levels: get and put 1 MiB, byte-identical" {
	local prot out=$BATS_TEST_TMPDIR
	start_ftp || return 1
	start_gss_server || return 1
	for prot in confidentiality integrity; do
		gss_conf "gssapi_protection = $prot" "bind = always"
		run sfy inetutils-ftp -n -v 127.0.0.3 "$FTP_PORT" <<EOF
user ftpuser ftp-pw
binary
get big.bin $out/get-$prot.bin
put $UPFILE up-$prot.bin
quit
EOF
		expect_status 0 || return 1
		[[ $(sha "$out/get-$prot.bin") == "$(sha "$FTP_HOME/big.bin")" ]] ||
			fail "get at $prot differs; output:" "$output" || return 1
		[[ $(sha "$FTP_HOME/up-$prot.bin") == "$(sha "$UPFILE")" ]] ||
			fail "put at $prot differs; output:" "$output" || return 1
	done
	# Two BINDs per session, each wrapped at that session's level.
	gss_wait_records 6 || return 1
	[[ $(TS_RECORD=$GSS_RECORD count_records cmd 2) -ge 4 ]] ||
		fail "fewer than 4 BINDs:" "$(cat "$GSS_RECORD")" || return 1
	[[ $(TS_RECORD=$GSS_RECORD record_where cmd 2 conf_violations) == 0 ]] ||
		fail "BIND data not at its level:" "$(cat "$GSS_RECORD")"
}

# ----------------------------------------------------------- credentials
@test "no ticket: EACCES, and the log says to run kinit" {
	gss_setup
	KRB5CCNAME=FILE:$BATS_TEST_TMPDIR/no-such-ccache run sfy "$TESTBIN/tcp_get" web.test "$HTTP_PORT" /noticket
	expect_errno EACCES || return 1
	grep -q kinit "$SFY_LOG" || fail "no kinit hint in the log:" "$(cat "$SFY_LOG")" || return 1
	expect_no_delivery /noticket || return 1
	assert_no_dns_leak
}

@test "an expired ticket: EACCES, and the log says to run kinit" {
	wait_expired "$EXPIRED_CC" || return 1
	gss_setup
	KRB5CCNAME=$EXPIRED_CC run sfy "$TESTBIN/tcp_get" web.test "$HTTP_PORT" /expired
	expect_errno EACCES || return 1
	grep -q kinit "$SFY_LOG" || fail "no kinit hint in the log:" "$(cat "$SFY_LOG")" || return 1
	expect_no_delivery /expired || return 1
	assert_no_dns_leak
}

@test "a wrong service fails: a principal not in the keytab, or one the server does not accept as" {
	gss_setup
	gss_conf "gssapi_service = other@localhost"
	run sfy "$TESTBIN/tcp_get" web.test "$HTTP_PORT" /wrong1
	expect_status 1 || return 1
	expect_contains "error: connect:" || return 1
	start_gss_server --service rcmd@localhost
	gss_conf "gssapi_service = rcmd@127.0.0.1"
	run sfy "$TESTBIN/tcp_get" web.test "$HTTP_PORT" /wrong2
	expect_fast_failure || return 1
	gss_expect stopped "context failed; abort sent" || return 1
	expect_no_delivery /wrong1 || return 1
	expect_no_delivery /wrong2 || return 1
	# GSS status text goes to the log, keys never (a hex run as long as an
	# AES-256 key would be one).
	! grep -qE '[0-9a-fA-F]{64}' "$SFY_LOG" || fail "a key in the log?" "$(cat "$SFY_LOG")"
}

# ----------------------------------------------------- a hostile server
@test "the server's abort message (X'01' X'FF') fails the connection at once" {
	gss_setup --mode abort
	run sfy "$TESTBIN/tcp_get" web.test "$HTTP_PORT" /abort
	expect_fast_failure || return 1
	expect_no_delivery /abort
}

@test "a server that refuses GSSAPI (X'FF') fails the connection" {
	gss_setup --mode no-gss
	run sfy "$TESTBIN/tcp_get" web.test "$HTTP_PORT" /nogss
	expect_fast_failure || return 1
	gss_expect method 255 || return 1
	expect_no_delivery /nogss
}

@test "a level below the configured protection (server grants integrity to a confidentiality client) is refused" {
	gss_setup --level 1
	run sfy "$TESTBIN/tcp_get" web.test "$HTTP_PORT" /downgrade
	expect_fast_failure || return 1
	gss_expect level_asked 2 || return 1
	expect_no_delivery /downgrade
}

@test "a corrupted reply token fails connect(); no byte reaches the program" {
	gss_setup --mode corrupt-reply
	run sfy "$TESTBIN/tcp_get" web.test "$HTTP_PORT" /corrupt
	expect_fast_failure || return 1
	expect_not_contains "hello" || return 1
	gss_expect mode corrupt-reply
}

@test "a corrupted data token: the program gets the good octets before it and never a corrupted one" {
	local level
	for level in confidentiality integrity; do
		gss_setup --mode corrupt-data=70000 || return 1
		gss_conf "gssapi_protection = $level"
		run sfy "$PY" "$SERVERS/bulk.py" client 127.0.0.3 "$BULK_PORT" --up 1000 --down 300000
		expect_status 1 || return 1
		expect_line "down_bytes=70000" || return 1
		expect_line "down_ok=1" || return 1
		expect_match "error: recv: E[A-Z]+ " || return 1
		gss_expect corrupted_at 70000 || return 1
	done
}

@test "hostile framing (bad version, bad mtyp, length 0, length 65535) in each of the server's messages fails quickly" {
	local m f
	for f in context level reply data; do
		for m in bad-version bad-mtyp len0 len65535; do
			gss_setup --mode "$m" --frame "$f" || return 1
			run sfy "$TESTBIN/tcp_get" web.test "$HTTP_PORT" "/$m-$f"
			if [[ $f == data ]]; then
				# connect() succeeded; the read fails, no byte delivered.
				expect_status 1 || fail "$m in $f" || return 1
				expect_match "error: recv: E[A-Z]+ " || fail "$m in $f" || return 1
				expect_not_contains "hello" || return 1
			else
				expect_fast_failure || fail "$m in $f" || return 1
			fi
			gss_wait_records 1 || return 1
			[[ $(gss_get -1 client_close_ms) -lt $((1500 * TIME_SCALE)) ]] ||
				fail "$m in $f: the library closed late:" "$(cat "$GSS_RECORD")" || return 1
		done
	done
}

@test "the server's first messages truncated at every octet: each attempt fails in connect(), quickly" {
	local len
	gss_setup
	run sfy "$TESTBIN/tcp_get" 127.0.0.3 "$HTTP_PORT" /len
	expect_status 0 || return 1
	gss_wait_records 1 || return 1
	len=$(gss_get 0 hs_sent)
	((len > 150 && len < 600)) || fail "hs_sent=$len" || return 1
	gss_setup --mode truncate --each
	run sfy "$TESTBIN/gss_io" loop 127.0.0.3 "$HTTP_PORT" $((len + 4))
	expect_status 0 || return 1
	gss_wait_records $((len + 4)) || return 1
	local attempts=$output
	run gss_check_truncation "$attempts" "^error: connect: E[A-Z]+ "
	expect_status 0 || return 1
	# No attempt waited for a timeout.
	local slow
	slow=$(grep -E 'ms=[0-9]{4,}' <<<"$attempts" || true)
	[[ -z $slow ]] || fail "slow attempts:" "$slow"
}

# --------------------------------------------------------------- --check
@test "socksify --check shows the GSSAPI steps: context, protection level, then the request" {
	gss_setup
	run run_isolated "$SOCKSIFY" -c "$CONF" --check web.test:"$HTTP_PORT"
	expect_status 0 || return 1
	expect_contains "gssapi context" || return 1
	expect_contains "gssapi protection" || return 1
	expect_match "CONNECT +ok in [0-9.]+ ms: web.test:$HTTP_PORT" || return 1
	# In that order.
	local ctx prot req
	ctx=$(grep -n "gssapi context" <<<"$output" | head -n1 | cut -d: -f1)
	prot=$(grep -n "gssapi protection" <<<"$output" | head -n1 | cut -d: -f1)
	req=$(grep -n "^CONNECT" <<<"$output" | head -n1 | cut -d: -f1)
	((ctx < prot && prot < req)) || fail "steps out of order:" "$output"
}
