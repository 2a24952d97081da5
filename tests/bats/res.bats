#!/usr/bin/env bats
# The resolver's own interface under socksify (shim/hook_res.c): res_query
# and its family answer in the process, without a query, with fake
# addresses, names for PTR and NODATA for other types; getaddrinfo_a
# resolves like getaddrinfo.  The client's only nameserver is the DNS
# sentinel, which must stay silent unless the config lets DNS out.

load helpers

FAKE4='(24[0-9]|25[0-5])\.[0-9]+\.[0-9]+\.[0-9]+'
FAKE6='100::[0-9a-f:]+'

# Counts below are of whole lines: "A ADDR ttl=N" per answer record.

setup_file() {
	common_setup_file
	start_sentinel
	start_http web 127.0.0.3
	export WEB_PORT=$HTTP_PORT WEB_LOG=$HTTP_LOG
}

setup() {
	common_setup
	# Answers must not need the proxy: point at a closed port.
	proxy_conf "$CONF" "$(free_port)"
}

rq() {
	run sfy "$TESTBIN/resquery" "$@"
}

@test "control: without socksify res_query asks the sentinel" {
	run run_isolated "$TESTBIN/resquery" query ctl.test A
	expect_status 1
	grep -q '^ctl.test ' "$SENTINEL_LOG" ||
		fail "sentinel saw nothing; the leak tests could not fail"
}

@test "res_query A and AAAA: fake addresses, well-formed reply, no query" {
	rq query files.test A
	expect_status 0
	expect_match "rc=[0-9]+ herrno="
	expect_contains "hdr rcode=0 qd=1 an=1 tc=0 aa=0 ra=1 rd=1"
	grep -qE "^A $FAKE4 ttl=5$" <<<"$output" || fail "no fake A record:" "$output"
	rq query files.test AAAA
	expect_status 0
	grep -qE "^AAAA $FAKE6 ttl=5$" <<<"$output" || fail "no fake AAAA record:" "$output"
	assert_no_dns_leak
}

@test "res_query of an /etc/hosts name: its address; the missing family is NODATA, not fake" {
	rq query hostsonly.test A
	expect_status 0
	expect_line "A 127.0.0.3 ttl=5"
	rq query hostsonly.test AAAA
	expect_status 1
	expect_contains "rc=-1 herrno=NO_DATA"
	rq query localhost AAAA
	expect_status 0
	expect_line "AAAA ::1 ttl=5"
	assert_no_dns_leak
}

@test "res_query HTTPS, SVCB, MX, TXT, SRV: NODATA (-1, h_errno NO_DATA, reply written)" {
	local t
	for t in HTTPS SVCB MX TXT SRV ANY; do
		rq query files.test "$t"
		expect_status 1
		expect_contains "rc=-1 herrno=NO_DATA"
		expect_contains "hdr rcode=0 qd=1 an=0"
	done
	assert_no_dns_leak
}

@test "PTR of a fake address gives the name; of an unknown one NXDOMAIN" {
	rq query ptr.test A --ptr
	expect_status 0
	expect_contains "PTR ptr.test ttl=5"
	rq query ptr6.test AAAA --ptr
	expect_contains "PTR ptr6.test ttl=5"
	rq query 7.0.0.192.in-addr.arpa PTR
	expect_status 1
	expect_contains "rc=-1 herrno=HOST_NOT_FOUND"
	expect_contains "hdr rcode=3"
	rq query 1.0.0.127.in-addr.arpa PTR
	expect_status 0
	expect_contains "PTR localhost"
	assert_no_dns_leak
}

@test "a follow-up connection to res_query's address goes through the proxy by name" {
	start_testserver
	proxy_conf "$CONF" "$TS_PORT"
	rq query web.test A --connect "$WEB_PORT" /via-res
	expect_status 0
	expect_contains "body=hello from web path=/via-res"
	wait_records 1
	expect_record atyp 3
	expect_record host web.test
	expect_record port "$WEB_PORT"
	assert_no_dns_leak
}

@test "res_search, res_querydomain, res_ninit+res_nquery, res_mkquery+res_send" {
	rq search intranet A
	expect_status 0
	expect_match "A $FAKE4"
	rq querydomain www example.test AAAA
	expect_status 0
	expect_match "AAAA $FAKE6"
	rq nquery files.test HTTPS
	expect_status 1
	expect_contains "res_h_errno=NO_DATA"
	expect_contains "rc=-1 herrno=NO_DATA"
	rq nquery files.test A
	expect_status 0
	expect_match "A $FAKE4"
	rq send files.test AAAA
	expect_status 0
	expect_not_contains "id mismatch"
	expect_match "AAAA $FAKE6"
	assert_no_dns_leak
}

@test "answers larger than the buffer are truncated with TC, never overrun" {
	rq query files.test A --anslen 30
	expect_status 0
	expect_contains "rc=30 "
	expect_contains "tc=1"
	expect_not_contains "error:"
	rq query files.test A --anslen 11
	expect_status 1
	expect_contains "rc=-1 herrno=TRY_AGAIN"
	assert_no_dns_leak
}

@test "res_send of garbage: an error, no crash, no query" {
	rq sendraw 0102
	expect_status 1
	expect_contains "rc=-1 errno=EINVAL"
	# a response (QR set) is never answered
	rq sendraw 000181800001000000000000017800000010001
	expect_status 1
	expect_contains "rc=-1 errno=EINVAL"
	# no question: FORMERR; another opcode: NOTIMP
	rq sendraw 000101000000000000000000
	expect_status 0
	expect_contains "hdr rcode=1 qd=0"
	rq sendraw 000111000001000000000000017800000010001
	expect_contains "hdr rcode=4"
	# pointer loop in the question
	rq sendraw 0001010000010000000000000178c00c00010001
	expect_contains "hdr rcode=1"
	assert_no_dns_leak
}

@test "getaddrinfo_a GAI_WAIT and GAI_NOWAIT (none, signal, thread): fake addresses, no query" {
	local mode
	for mode in wait nowait signal thread; do
		rq gai "$mode" gai1.test 127.0.0.1 gai2.test
		expect_status 0
		expect_contains "getaddrinfo_a=0"
		expect_match "gai gai1.test ret=0 addr=$FAKE4:80"
		expect_contains "gai 127.0.0.1 ret=0 addr=127.0.0.1:80"
		expect_match "gai gai2.test ret=0 addr=$FAKE4:80"
		expect_contains "suspend=EAI_ALLDONE"
		expect_contains "cancel=0"
	done
	rq gai signal gai1.test
	expect_contains "notified=signal code=SI_ASYNCNL value=42"
	rq gai thread gai1.test
	expect_contains "notified=thread value=42 sigmask=full"
	assert_no_dns_leak
}

@test "remote_dns = no: res_query, res_send and getaddrinfo_a reach the resolver" {
	echo "remote_dns = no" >>"$CONF"
	rq query off1.test A
	expect_status 1
	rq send off2.test AAAA
	rq gai wait off3.test
	expect_status 0
	expect_contains "gai off3.test ret=EAI_"
	local n
	for n in off1.test off2.test off3.test; do
		grep -q "^$n " "$SENTINEL_LOG" ||
			fail "$n not asked; sentinel log:" "$(cat "$SENTINEL_LOG")"
	done
}

@test "direct_domain: the sentinel sees exactly that name, nothing else" {
	echo "direct_domain = direct.test" >>"$CONF"
	rq query www.direct.test A
	expect_status 1
	rq query remote.test A
	expect_status 0
	rq gai wait gai.direct.test gai-remote.test
	expect_match "gai gai-remote.test ret=0 addr=$FAKE4:80"
	expect_contains "gai gai.direct.test ret=EAI_"
	run sort -u <(cut -d' ' -f1 "$SENTINEL_LOG")
	[[ $output == $'gai.direct.test\nwww.direct.test' ]] ||
		fail "sentinel saw:" "$(cat "$SENTINEL_LOG")"
}
