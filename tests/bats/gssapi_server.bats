#!/usr/bin/env bats
# The RFC 1961 test server itself (tests/servers/socks5_gssapi.py), checked
# with the minimal python-gssapi client socks5_gssapi_client.py against a
# real KDC (tests/bats/gssapi.bash): both protection levels, CONNECT and
# BIND, 1 MiB each way, what the server records about its client, and that
# each misbehaviour mode is what a client sees.  The library's own GSSAPI
# tests (gssapi.bats) rely on all of this.  Nothing here loads the library.

load helpers
load gssapi

CLIENT=$SERVERS/socks5_gssapi_client.py

setup_file() {
	common_setup_file || return 1
	start_kdc || return 1
	start_http web 127.0.0.3 || return 1
	start_bulk
}

setup() {
	common_setup
	# The ASan pass would only repeat this file: no library is loaded.
	[[ -z $ASAN_RT ]] || skip "does not load the library: the release pass runs it"
}

# gss_client ARGS...: the python client against $GSS_PORT.
gss_client() {
	run timeout -k 2 60 "$PY" "$CLIENT" --proxy "127.0.0.1:$GSS_PORT" "$@"
}

# expect_client_error KIND: the client failed, and it was this check.
expect_client_error() {
	expect_status 1 || return 1
	expect_contains "error: $1:"
}

@test "level 2: CONNECT by address, the reply and data wrapped with confidentiality; the record says so" {
	start_gss_server
	gss_client --level 2 --connect "127.0.0.3:$HTTP_PORT" --http /hello
	expect_status 0 || return 1
	expect_line "method=1" || return 1
	expect_line "ctx_tokens_in=1" || return 1
	expect_line "level=2" || return 1
	expect_line "rep=0" || return 1
	expect_line "body=hello from web path=/hello peer=127.0.0.2" || return 1
	gss_expect method 1 || return 1
	gss_expect methods "[1]" || return 1
	gss_expect principal "$KRB_USER@$KRB_REALM" || return 1
	gss_expect target "rcmd/localhost@$KRB_REALM" || return 1
	gss_expect level_asked 2 || return 1
	gss_expect level_granted 2 || return 1
	gss_expect level_msg_conf False || return 1
	gss_expect conf "[true]" || return 1
	gss_expect conf_violations 0 || return 1
	gss_expect request_tokens 1 || return 1
	gss_expect cmd 1 || return 1
	gss_expect host 127.0.0.3 || return 1
	gss_expect violations "[]" || return 1
	[[ $(gss_get -1 up_bytes) -gt 20 && $(gss_get -1 down_bytes) -gt 50 ]] ||
		fail "byte counts:" "$(cat "$GSS_RECORD")"
}

@test "level 1: integrity only, nothing encrypted either way; a name goes to the server as a name" {
	start_gss_server
	gss_client --level 1 --connect "web.test:$HTTP_PORT" --http /one
	expect_status 0 || return 1
	expect_line "level=1" || return 1
	expect_line "body=hello from web path=/one peer=127.0.0.2" || return 1
	gss_expect conf "[false]" || return 1
	gss_expect level_granted 1 || return 1
	gss_expect host web.test || return 1
	gss_expect atyp 3
}

@test "1 MiB each way at level 2 and at level 1, checked octet by octet and by sha256" {
	local level
	start_gss_server
	for level in 2 1; do
		gss_client --level "$level" --connect "127.0.0.3:$BULK_PORT" --bulk 1048576 1048576
		expect_status 0 || return 1
		expect_line "down_bytes=1048576" || return 1
		expect_line "down_ok=1" || return 1
		expect_line "up_ok=1" || return 1
	done
	gss_wait_records 2 || return 1
	gss_expect up_bytes $((1048576 + 21)) || return 1   # + "BULK 1048576 1048576\n"
	bulk_expect up_bytes 1048576 || return 1
	bulk_expect peer 127.0.0.2
}

@test "split and coalesce: frames cut across reads, several frames in one read" {
	start_gss_server --mode split
	gss_client --level 2 --connect "127.0.0.3:$BULK_PORT" --bulk 100000 300000
	expect_status 0 || return 1
	expect_line "down_ok=1" || return 1
	expect_line "up_ok=1" || return 1
	start_gss_server --mode coalesce --chunk 700
	gss_client --level 1 --connect "127.0.0.3:$BULK_PORT" --bulk 100000 300000
	expect_status 0 || return 1
	expect_line "down_bytes=300000" || return 1
	expect_line "down_ok=1" || return 1
	[[ $(gss_get -1 server_frames) -gt 400 ]] || fail "few frames:" "$(cat "$GSS_RECORD")"
}

@test "without mutual authentication the server sends no context token" {
	start_gss_server
	gss_client --no-mutual --level 2 --connect "127.0.0.3:$HTTP_PORT" --http /nm
	expect_status 0 || return 1
	expect_line "ctx_tokens_in=0" || return 1
	expect_line "body=hello from web path=/nm peer=127.0.0.2"
}

@test "BIND: two wrapped replies, the listener on 127.0.0.2, data both ways wrapped" {
	start_gss_server
	gss_client --level 2 --bind "127.0.0.3:21"
	expect_status 0 || return 1
	expect_match 'bnd=127\.0\.0\.2:[0-9]+' || return 1
	expect_match 'bnd=127\.0\.0\.5:[0-9]+' || return 1
	expect_line "client_read=HELLO-FROM-PEER" || return 1
	expect_line "peer_read=HELLO-FROM-CLIENT" || return 1
	gss_expect cmd 2 || return 1
	gss_expect rep2 0 || return 1
	gss_expect conf "[true]"
}

@test "the acceptor name: --service refuses another principal of the keytab; a service not in the keytab is refused" {
	start_gss_server --service rcmd@localhost
	gss_client --service rcmd@127.0.0.1 --connect "127.0.0.3:$HTTP_PORT" --http /x
	expect_client_error abort || return 1
	gss_wait_records 1 || return 1
	[[ $(gss_get -1 gss_error) == *rcmd/127.0.0.1* ]] || fail "gss_error:" "$(cat "$GSS_RECORD")" || return 1
	start_gss_server
	gss_client --service other@localhost --connect "127.0.0.3:$HTTP_PORT" --http /x
	expect_client_error abort || return 1
	gss_wait_records 1 || return 1
	[[ $(gss_get -1 gss_error) == *"not found in keytab"* ]] || fail "gss_error:" "$(cat "$GSS_RECORD")" || return 1
	# Without --service any key of the keytab is accepted.
	gss_client --service rcmd@127.0.0.1 --connect "127.0.0.3:$HTTP_PORT" --http /y
	expect_status 0
}

@test "--level forces the server's choice; the client sees it" {
	start_gss_server --mode level=1
	gss_client --level 2 --connect "127.0.0.3:$HTTP_PORT" --http /x
	expect_client_error reply || return 1
	expect_line "level=1" || return 1
	gss_expect level_asked 2 || return 1
	gss_expect level_granted 1
}

# mode_case MODE KIND [SERVER ARGS...]: the client fails in check KIND, and
# the server saw it close.
mode_case() {
	local m=$1 kind=$2
	shift 2
	start_gss_server --mode "$m" "$@" || return 1
	gss_client --level 2 --connect "127.0.0.3:$BULK_PORT" --bulk 1000 200000
	expect_client_error "$kind" || fail "mode $m $*" || return 1
	gss_expect mode "${m%%=*}"
}

@test "each misbehaviour is caught by the client's matching check" {
	mode_case no-gss method || return 1
	gss_expect method 255 || return 1
	mode_case abort abort || return 1
	mode_case bad-version framing || return 1
	mode_case bad-mtyp framing || return 1
	mode_case len0 framing || return 1
	mode_case len65535 gss || return 1
	mode_case corrupt-reply gss || return 1
	local f
	for f in level reply data; do
		mode_case bad-version framing --frame "$f" || return 1
		mode_case len0 framing --frame "$f" || return 1
	done
	# The client closed at once after each hostile message.
	[[ $(gss_get -1 client_close_ms) -lt 2000 ]] || fail "slow close:" "$(cat "$GSS_RECORD")"
}

@test "corrupt-data=K: exactly K good octets, then a frame that fails its integrity check" {
	mode_case corrupt-data=70000 gss || return 1
	expect_line "down_bytes=70000" || return 1
	expect_line "down_ok=1" || return 1
	gss_expect corrupted_at 70000
}

@test "truncate=N --each: the server's first messages cut at every octet, each such attempt fails with EOF" {
	local len
	start_gss_server
	gss_client --level 2 --connect "127.0.0.3:$HTTP_PORT" --http /len
	expect_status 0 || return 1
	gss_wait_records 1 || return 1
	len=$(gss_get 0 hs_sent)
	# 2 (method) + 4 + AP-REP + 4 + level token + 4 + reply token; the
	# AP-REP's length varies by an octet or two (its DER sequence number).
	((len > 150 && len < 600)) || fail "hs_sent=$len" || return 1
	start_gss_server --mode truncate --each
	gss_client --level 2 --connect "127.0.0.3:$HTTP_PORT" --http /t --repeat $((len + 4))
	expect_status 0 || return 1
	gss_wait_records $((len + 4)) || return 1
	run gss_check_truncation "$output" "^error: eof:"
	expect_status 0 || return 1
	expect_match "attempts=$((len + 4)) cut=($((len - 2))|$((len - 1))|$len|$((len + 1))|$((len + 2)))"
}

@test "the record shows the client's own framing and protection faults" {
	start_gss_server
	gss_client --client-mode bad-ver --connect "127.0.0.3:$HTTP_PORT" --http /x
	expect_status 1 || return 1
	gss_expect violations '["ver=2 (expected 1)"]' || return 1
	gss_client --client-mode level-conf --connect "127.0.0.3:$HTTP_PORT" --http /x
	gss_wait_records 2 || return 1
	gss_expect level_msg_conf True || return 1
	gss_client --client-mode conf-mismatch --level 2 --connect "127.0.0.3:$HTTP_PORT" --http /x
	gss_wait_records 3 || return 1
	gss_expect conf "[false]" || return 1
	[[ $(gss_get -1 conf_violations) -ge 1 ]] || fail "no conf violation:" "$(cat "$GSS_RECORD")" || return 1
	gss_client --client-mode len0-data --connect "127.0.0.3:$HTTP_PORT" --http /x
	gss_wait_records 4 || return 1
	gss_expect violations '["len=0 in mtyp 3"]'
}
