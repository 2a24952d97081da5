#!/usr/bin/env bats
# The hostile-proxy matrix: the project's SOCKS5 test server misbehaves in
# one way per case (socks5_testserver.py, socks5_bind.py, and the scripted
# modes of socks5_hostile.py), and tests/c/hostile, preloaded with the
# shim, makes a few CONNECT (or BIND) attempts against it.  Every case
# asserts the exact errno name, that each call returned within the
# configured timeout plus a margin, and that /proc/self/fd holds as many
# entries afterwards as before (no leaked fd).
#
# Timeouts are short (handshake_timeout = bind_timeout = 0.5 s) so the
# whole file runs in well under a minute.  The destination is the IPv4
# literal 127.0.0.3 (no name resolution involved); only the cases that
# need a real outbound connection reach the web server there.

load helpers

TIMEOUT_MS=500                 # handshake_timeout and bind_timeout
# Measured inside tests/c/hostile, around the call; TIME_SCALE times more
# in the ASan pass.
MARGIN_MS=$((${HOSTILE_MARGIN_MS:-300} * TIME_SCALE))
OK_REPLY=050000017f0000021f90  # REP 0, BND 127.0.0.2:8080
EARLY_HEX=4541524c59444154410a # "EARLYDATA\n"

setup_file() {
	common_setup_file
	[[ -x $TESTBIN/hostile ]] || fail "missing $TESTBIN/hostile (run make)"
	start_http web 127.0.0.3
	export WEB_PORT=$HTTP_PORT
}

# hostile_conf PORT [LINES...]: $CONF for a proxy on 127.0.0.1:PORT.
hostile_conf() {
	local port=$1
	shift
	write_conf "$CONF" "proxy = socks5h://127.0.0.1:$port" \
		"direct_loopback = no" "bind = always" \
		"handshake_timeout = 0.5" "bind_timeout = 0.5" "$@"
}

# hrun [HARNESS OPTIONS...]: tests/c/hostile under the shim with $CONF,
# against 127.0.0.3:$WEB_PORT.  Sets status/output (stderr included: the
# shim's warn lines).
hrun() {
	run timeout -k 2 "$CMD_TIMEOUT" env LD_PRELOAD="$PRELOAD" \
		SOCKSIFY_CONF="$CONF" "$TESTBIN/hostile" 127.0.0.3 "$WEB_PORT" "$@"
}

# expect_outcome ENAME [data]: the summary line of the last hrun says
# errno=ENAME, every call took at most TIMEOUT_MS + MARGIN_MS, no fd
# leaked; with "data", the bytes after the reply reached the program.
# ENAME "TIMEOUT" means errno=ETIMEDOUT after the configured timeout (at
# least TIMEOUT_MS), not an early ETIMEDOUT such as REP 6's.
expect_outcome() {
	local want=$1 summary got ms before after limit waited=
	limit=$((TIMEOUT_MS + MARGIN_MS))
	[[ $want == TIMEOUT ]] && want=ETIMEDOUT waited=1
	summary=$(output_value errno) ||
		fail "no summary line; status $status; output:" "$output" || return 1
	got=${summary%% *}
	[[ $summary =~ elapsed_ms=([0-9]+)\ fds_before=([0-9]+)\ fds_after=([0-9]+) ]] ||
		fail "bad summary '$summary'" || return 1
	ms=${BASH_REMATCH[1]} before=${BASH_REMATCH[2]} after=${BASH_REMATCH[3]}
	[[ $got == "$want" ]] ||
		fail "expected errno=$want, got errno=$got; output:" "$output" || return 1
	((ms <= limit)) ||
		fail "a call took ${ms} ms (limit $limit ms); output:" "$output" || return 1
	# A timeout must be the configured one, not an early give-up.
	if [[ -n $waited ]] && ((ms < TIMEOUT_MS - 20)); then
		fail "ETIMEDOUT after only ${ms} ms (timeout $TIMEOUT_MS ms); output:" "$output"
		return 1
	fi
	((before == after)) ||
		fail "fd leak: $before fds before, $after after; output:" "$output" || return 1
	if [[ ${2-} == data ]]; then
		[[ $summary == *" data=ok" ]] ||
			fail "data after the reply damaged; output:" "$output" || return 1
	fi
	expect_status 0
}

# hcase ENAME [HARNESS OPTIONS...] -- [SERVER ARGS...]: a fresh test server
# with SERVER ARGS, then hrun and expect_outcome.  Extra config lines come
# from $HCONF (an array), if set.
hcase() {
	local want=$1 harness=() data=
	shift
	while (($#)) && [[ $1 != -- ]]; do
		[[ $1 == --expect-data ]] && data=data
		harness+=("$1")
		shift
	done
	shift
	start_testserver "$@" || return 1
	hostile_conf "$TS_PORT" "${HCONF[@]}"
	hrun "${harness[@]}"
	expect_outcome "$want" $data
}

# loop_cases NAME CASE...: runs "hcase" per case ("ENAME|HARNESS|SERVER",
# word-split), reporting every failing case, not just the first.
loop_cases() {
	local name=$1 c want harness server failed=() n=0
	shift
	for c in "$@"; do
		IFS='|' read -r want harness server <<<"$c"
		n=$((n + 1))
		# shellcheck disable=SC2086 # word splitting intended
		if ! hcase "$want" $harness -- $server; then
			failed+=("$c")
		fi
	done
	((${#failed[@]} == 0)) ||
		fail "$name: ${#failed[@]} of $n cases failed:" "${failed[@]}"
}

# truncated_cases MODE HEX [HARNESS OPTS] [SERVER OPTS]: one case per
# byte boundary k = 0 .. len-1: the first k bytes of HEX, then the server
# closes.  k = 0 is "closed before replying" (ECONNRESET), any other k a
# truncated reply (EPROTO).
truncated_cases() {
	local mode=$1 hex=$2 harness=${3-} extra=${4-} k want raw
	for ((k = 0; k < ${#hex} / 2; k++)); do
		want=EPROTO raw="--raw ${hex:0:2*k}"
		((k == 0)) && want=ECONNRESET raw= # no --raw: nothing is sent
		printf '%s\n' "$want|$harness|--mode $mode --then close $raw $extra"
	done
}

# A reply with a domain name of LEN bytes ("a" repeated), port 80.
domain_reply() {
	local len=$1 name
	name=$(printf 'a%.0s' $(seq "$len"))
	printf '05000003%02x%s0050' "$len" "$(printf '%s' "$name" | od -An -v -tx1 | tr -d ' \n')"
}

# ------------------------------------------------------ method selection
@test "method reply: wrong VER (4) -> EPROTO" {
	hcase EPROTO -- --mode method-raw --raw 0400
}

@test "method reply: VER 0 with method 0 -> EPROTO" {
	hcase EPROTO -- --mode method-raw --raw 0000
}

@test "method reply: username/password chosen but not offered -> EPROTO" {
	hcase EPROTO -- --mode method-raw --raw 0502
}

@test "method reply: GSSAPI (1) chosen, offered were 0 and 2 -> EPROTO" {
	HCONF=("username = u" "password = p")
	hcase EPROTO -- --mode method-raw --raw 0501
}

@test "method reply: X'FF' (no acceptable method), no credentials -> EACCES" {
	hcase EACCES -- --mode method-raw --raw 05ff
}

@test "method reply: X'FF' with credentials offered -> EACCES" {
	HCONF=("username = u" "password = p")
	hcase EACCES -- --mode no-method
}

@test "method reply truncated at every byte boundary" {
	mapfile -t cases < <(truncated_cases method-raw 0500)
	loop_cases "method reply" "${cases[@]}"
}

@test "method reply: first byte only, then silence -> ETIMEDOUT" {
	hcase TIMEOUT --attempts 2 -- --mode method-raw --raw 05
}

# ------------------------------------------------ RFC 1929 authentication
@test "auth reply: wrong VER (5) -> EPROTO" {
	HCONF=("username = u" "password = p")
	hcase EPROTO -- --mode auth-raw --raw 0500
}

@test "auth reply: failure status 1 -> EACCES" {
	HCONF=("username = u" "password = p")
	hcase EACCES -- --mode auth-raw --raw 0101
}

@test "auth reply: failure status X'FF' -> EACCES" {
	HCONF=("username = u" "password = p")
	hcase EACCES -- --mode auth-raw --raw 01ff
}

@test "auth: wrong password rejected by the server -> EACCES" {
	HCONF=("username = u" "password = wrong")
	hcase EACCES -- --auth u:right
}

@test "auth reply truncated at every byte boundary" {
	HCONF=("username = u" "password = p")
	mapfile -t cases < <(truncated_cases auth-raw 0100)
	loop_cases "auth reply" "${cases[@]}"
}

@test "credentials of 255 bytes each work, and reach the server intact" {
	local u p
	u=$(printf 'u%.0s' $(seq 255))
	p=$(printf 'p%.0s' $(seq 255))
	HCONF=("username = $u" "password = $p")
	hcase 0 -- --auth "$u:$p"
	expect_record user "$u"
	expect_record password_len 255
	expect_record auth_ok True
}

@test "a username of 256 bytes: config rejected with a clear message, EACCES, proxy never contacted" {
	local u
	u=$(printf 'u%.0s' $(seq 256))
	HCONF=("username = $u" "password = p")
	hcase EACCES -- --auth "u:p"
	expect_contains "username: value must be 1 to 255 bytes"
	expect_contains "every connection will fail (EACCES) until it is fixed"
	[[ $(wc -l <"$TS_RECORD") -eq 0 ]] || fail "the proxy was contacted:" "$(cat "$TS_RECORD")"
}

@test "a password of 256 bytes: config rejected with a clear message, EACCES" {
	local p
	p=$(printf 'p%.0s' $(seq 256))
	HCONF=("username = u" "password = $p")
	hcase EACCES -- --auth "u:p"
	expect_contains "password: value must be 1 to 255 bytes"
	expect_not_contains "$p"
}

# ------------------------------------------------------------ REP codes
REP_ERRNO=([1]=ECONNABORTED [2]=EACCES [3]=ENETUNREACH [4]=EHOSTUNREACH
	[5]=ECONNREFUSED [6]=ETIMEDOUT [7]=EOPNOTSUPP [8]=EAFNOSUPPORT
	[9]=EPROTO [255]=EPROTO)

# rep_cases HARNESS SERVER-OPTION: one case per REP code 1-8, 9 and 255.
rep_cases() {
	local rep
	for rep in 1 2 3 4 5 6 7 8 9 255; do
		printf '%s\n' "${REP_ERRNO[rep]}|$1|$2 $rep"
	done
}

@test "CONNECT reply: REP 1-8, unassigned 9 and 255 -> README's errno" {
	mapfile -t cases < <(rep_cases "" --reply)
	loop_cases "CONNECT REP" "${cases[@]}"
}

@test "BIND reply 1: REP 1-8, unassigned 9 and 255 -> listen() fails with README's errno" {
	mapfile -t cases < <(rep_cases --bind --bind-reply1)
	loop_cases "BIND reply 1 REP" "${cases[@]}"
}

@test "BIND reply 2: REP 1-8, unassigned 9 and 255 -> accept() fails with README's errno" {
	mapfile -t cases < <(rep_cases --bind "--bind-self-connect --bind-reply2")
	loop_cases "BIND reply 2 REP" "${cases[@]}"
}

# ------------------------------------------------------ malformed replies
@test "CONNECT reply: wrong VER (4) -> EPROTO" {
	hcase EPROTO -- --mode reply-raw --raw 040000017f0000021f90
}

@test "CONNECT reply: reserved byte set -> EPROTO" {
	hcase EPROTO -- --mode reply-raw --raw 050001017f0000021f90
}

@test "CONNECT reply: unknown ATYP 9 (bad-atyp mode) -> EPROTO" {
	hcase EPROTO -- --mode bad-atyp
}

@test "CONNECT reply: ATYP 0 and ATYP 2 -> EPROTO" {
	loop_cases "ATYP" "EPROTO||--mode reply-raw --raw 050000007f0000021f90" \
		"EPROTO||--mode reply-raw --raw 050000027f0000021f90"
}

@test "CONNECT reply: domain name of length 0 -> EPROTO" {
	hcase EPROTO -- --mode reply-raw --raw 05000003000050
}

@test "CONNECT reply: domain name of length 255 -> success, data after it intact" {
	hcase 0 --expect-data "$(printf 'EARLYDATA\n')" -- \
		--mode reply-raw --raw "$(domain_reply 255)$EARLY_HEX"
}

@test "BIND reply 1: domain name of length 0 -> EPROTO; reply 2 unknown ATYP -> EPROTO" {
	loop_cases "BIND ATYP" "EPROTO|--bind|--mode reply-raw --raw 05000003000050" \
		"EPROTO|--bind|--mode reply2-raw --bind-self-connect --raw 050000097f0000021f90"
}

@test "CONNECT reply (IPv4 BND) truncated at every byte boundary" {
	mapfile -t cases < <(truncated_cases reply-raw "$OK_REPLY")
	loop_cases "IPv4 reply" "${cases[@]}"
}

@test "CONNECT reply (IPv6 BND) truncated at every byte boundary" {
	mapfile -t cases < <(truncated_cases reply-raw 0500000400000000000000000000000000000001a0a0)
	loop_cases "IPv6 reply" "${cases[@]}"
}

@test "CONNECT reply (domain BND) truncated at every byte boundary" {
	mapfile -t cases < <(truncated_cases reply-raw "$(domain_reply 3)")
	loop_cases "domain reply" "${cases[@]}"
}

@test "BIND reply 1 (IPv4 BND) truncated at every byte boundary -> listen() fails" {
	mapfile -t cases < <(truncated_cases reply-raw "$OK_REPLY" --bind)
	loop_cases "BIND reply 1" "${cases[@]}"
}

@test "BIND reply 2 (IPv4 BND) truncated at every byte boundary -> accept() fails" {
	mapfile -t cases < <(truncated_cases reply2-raw "$OK_REPLY" --bind --bind-self-connect)
	loop_cases "BIND reply 2" "${cases[@]}"
}

@test "BIND reply 2 truncated after 5 bytes -> accept() EPROTO" {
	hcase EPROTO --bind -- --bind-self-connect --mode bind-truncated-reply2
}

# ------------------------------------------------ reply plus data, split
@test "reply and application data in one segment: the data reaches the program intact" {
	hcase 0 --expect-data "$(printf 'EARLYDATA\n')" -- --mode reply-raw --raw "$OK_REPLY$EARLY_HEX"
}

@test "BIND reply 2 and data in one segment: the data reaches the program intact" {
	hcase 0 --bind --expect-data "$(printf 'EARLYDATA\nHELLO-FROM-REMOTE\n')" -- \
		--bind-self-connect --mode bind-reply2-plus-data
}

@test "slowloris: 1-byte segments 20 ms apart, within the timeout -> success, data intact" {
	hcase 0 --expect-data OK -- --mode reply-raw --drip 20 --raw "${OK_REPLY}4f4b"
}

# expect_proxied_connects N: the test server answered N CONNECTs with
# success, each after connecting to the web server itself.  (A connect()
# that went direct succeeds too, without any record.)
expect_proxied_connects() {
	[[ $(count_records rep 0) -eq $1 ]] ||
		fail "expected $1 successful CONNECTs; records:" "$(cat "$TS_RECORD")" || return 1
	[[ $(count_records connected_to "['127.0.0.3', $WEB_PORT]") -eq $1 ]] ||
		fail "expected $1 connections to 127.0.0.3:$WEB_PORT; records:" "$(cat "$TS_RECORD")"
}

@test "slowloris: the whole server (method reply and reply) 1 byte per 20 ms -> success" {
	hcase 0 -- --mode slowloris --drip 20 || return 1
	expect_proxied_connects 3 # the default 3 attempts
}

@test "control: connections that go direct fail the slowloris case's proof" {
	HCONF=("direct = 127.0.0.3/32")
	hcase 0 -- --mode slowloris --drip 20 || return 1
	run expect_proxied_connects 3
	expect_status 1
}

@test "slowloris: 1-byte segments 100 ms apart, beyond the timeout -> ETIMEDOUT" {
	hcase TIMEOUT --attempts 2 -- --mode reply-raw --drip 100 --raw "$OK_REPLY"
}

@test "BIND reply 2 in 1-byte segments 20 ms apart -> accept() succeeds" {
	hcase 0 --bind --expect-data "$(printf 'HELLO-FROM-REMOTE\n')" -- \
		--bind-self-connect --mode bind-split-reply2 --split-delay 20
}

@test "BIND reply 2 in 1-byte segments 100 ms apart -> accept() ETIMEDOUT" {
	hcase TIMEOUT --bind --attempts 2 -- --bind-self-connect --mode bind-split-reply2 --split-delay 100
}

# ------------------------------------------------- silence and timeouts
@test "no method reply at all -> ETIMEDOUT" {
	hcase TIMEOUT --attempts 2 -- --mode silent
}

@test "method reply, then no reply to CONNECT -> ETIMEDOUT" {
	hcase TIMEOUT --attempts 2 -- --mode silent-after-method
}

@test "method reply, then no reply 1 to BIND -> listen() ETIMEDOUT" {
	hcase TIMEOUT --bind --attempts 2 -- --mode silent-after-method
}

@test "half a CONNECT reply, then silence -> ETIMEDOUT" {
	hcase TIMEOUT --attempts 2 -- --mode reply-raw --raw 05000001
}

@test "proxy accepts TCP, never reads, never replies -> ETIMEDOUT" {
	hcase TIMEOUT --attempts 2 -- --mode never-read
}

@test "BIND reply 2 never comes -> accept() ETIMEDOUT" {
	hcase TIMEOUT --bind --attempts 2 -- --bind-self-connect --mode bind-no-reply2
}

# --------------------------------------------------- closes and resets
@test "close before the greeting -> ECONNRESET" {
	hcase ECONNRESET -- --mode close-before-greeting --then close
}

@test "RST before the greeting -> ECONNRESET" {
	hcase ECONNRESET -- --mode close-before-greeting --then rst
}

@test "close after the greeting -> ECONNRESET" {
	hcase ECONNRESET -- --mode close-after-greeting
}

@test "RST after the greeting -> ECONNRESET" {
	hcase ECONNRESET -- --mode after-greeting --then rst
}

@test "close after choosing username/password, before the auth reply -> ECONNRESET" {
	HCONF=("username = u" "password = p")
	hcase ECONNRESET -- --mode method-raw --raw 0502 --then close
}

@test "RST after choosing username/password, before the auth reply -> ECONNRESET" {
	HCONF=("username = u" "password = p")
	hcase ECONNRESET -- --mode method-raw --raw 0502 --then rst
}

@test "RST after the method reply, before the CONNECT reply -> ECONNRESET" {
	hcase ECONNRESET -- --mode reply-raw --then rst
}

@test "RST in the middle of the CONNECT reply -> ECONNRESET" {
	hcase ECONNRESET -- --mode reply-raw --raw 050000 --then rst
}

@test "BIND: close between reply 1 and reply 2 -> accept() ECONNRESET" {
	hcase ECONNRESET --bind -- --mode bind-close-between
}

@test "BIND: RST instead of reply 2 -> accept() ECONNRESET" {
	hcase ECONNRESET --bind -- --bind-self-connect --mode reply2-raw --then rst
}
