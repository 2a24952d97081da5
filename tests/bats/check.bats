#!/usr/bin/env bats
# "socksify --check [HOST[:PORT]]" (build/socksify-check): the effective
# configuration and its source, the rule for HOST, and a live probe of the
# proxy whose every step is reported in words.

load helpers

setup_file() {
	common_setup_file
	start_http web 127.0.0.3
	export WEB_PORT=$HTTP_PORT
}

# check ARGS...: the wrapper's --check with config $CONF.
check() {
	run_isolated "$SOCKSIFY" -c "$CONF" --check "$@"
}

# step_ms STEP: how long --check says STEP took ("STEP  ok in 12.3 ms" or
# "STEP  FAILED after 12.3 ms"), in whole ms: measured inside the tool.
step_ms() {
	local line re="^$1 +(ok in|FAILED after) ([0-9]+)(\.[0-9]+)? ms"
	while IFS= read -r line; do
		if [[ $line =~ $re ]]; then
			echo "${BASH_REMATCH[2]}"
			return 0
		fi
	done <<<"$output"
	return 1
}

@test "--check prints the config file and masks the password" {
	start_testserver --auth alice:pw-Secr3t-xyz
	proxy_conf "$CONF" "$TS_PORT" "username = alice" "password = pw-Secr3t-xyz"
	run check
	expect_status 0
	expect_contains "config: $CONF (from SOCKSIFY_CONF, which socksify -c sets)"
	expect_contains "proxy: socks5h://alice:***@127.0.0.1:$TS_PORT (from the config file)"
	expect_contains "password          = *** (set, hidden)"
	expect_contains "direct_loopback   = no"
	expect_contains "handshake_timeout = 5s"
	expect_not_contains "pw-Secr3t-xyz"
	expect_contains "greeting  ok"
	expect_contains "method X'02' (username/password)"
	expect_contains 'auth      ok'
	expect_line "result: OK"
}

@test "--check names SOCKSIFY_PROXY (-x) as the proxy's source, password masked" {
	start_testserver
	run run_isolated "$SOCKSIFY" -x "socks5h://bob:hunter2-pw@127.0.0.1:$TS_PORT" --check
	expect_status 0
	expect_contains "proxy: socks5h://bob:***@127.0.0.1:$TS_PORT (from SOCKSIFY_PROXY, which socksify -x sets)"
	expect_not_contains "hunter2-pw"
}

@test "--check: a literal address under a direct rule, and loopback" {
	write_conf "$CONF" "proxy = socks5h://127.0.0.1:$(free_port)" \
		"direct = 10.9.0.0/16" "direct = [fd00::]/8:443"
	run check 10.9.1.2:8080
	expect_contains 'rule: 10.9.1.2:8080 goes DIRECT, not through the proxy: it matches "direct = 10.9.0.0/16"'
	expect_contains "CONNECT   skipped"
	run check '[fd12::1]:443'
	expect_contains 'rule: fd12::1:443 goes DIRECT, not through the proxy: it matches "direct = [fd00::]/8:443"'
	run check 127.0.0.9:22
	expect_contains "goes DIRECT, not through the proxy: loopback, and direct_loopback = yes"
	run check 192.0.2.7:80
	expect_contains "rule: 192.0.2.7:80 goes via proxy 127.0.0.1:"
	expect_contains "no direct rule matches"
}

@test "--check: a name goes to the proxy (remote DNS), or direct under direct_domain" {
	start_testserver
	proxy_conf "$CONF" "$TS_PORT" "direct_domain = intranet.test"
	run check web.test:"$WEB_PORT"
	expect_status 0
	expect_contains "rule: web.test:$WEB_PORT goes via proxy 127.0.0.1:$TS_PORT; the name is resolved by the proxy (remote DNS)"
	run check files.intranet.test:21
	expect_status 0
	expect_contains 'goes DIRECT, not through the proxy: it matches "direct_domain = intranet.test"'
	run check hostsonly.test:80
	expect_contains "name: hostsonly.test is read from /etc/hosts: 127.0.0.3 (no DNS)"
}

@test "--check describes the DNS answers and port 53 under remote DNS, and not without it" {
	start_testserver
	proxy_conf "$CONF" "$TS_PORT" "direct_dns = 127.0.0.53"
	run check web.test:"$WEB_PORT"
	expect_status 0
	expect_match "direct_dns += 127\.0\.0\.53:53"
	expect_contains "port 53           = DNS a program sends itself"
	expect_contains "dns answers       = A/AAAA: /etc/hosts or the fake address; PTR:"
	expect_contains "res_query/res_send and friends, and getaddrinfo_a"
	proxy_conf "$CONF" "$TS_PORT" "remote_dns = no"
	run check 127.0.0.3:80
	expect_contains "port 53           = DNS goes out as the program sends it"
	expect_not_contains "dns answers"
}

@test "--check: remote_dns = no says the name is resolved locally" {
	start_testserver
	proxy_conf "$CONF" "$TS_PORT" "remote_dns = no"
	run check no-such-name.test:80
	expect_status 1
	expect_contains "proxy: socks5://127.0.0.1:$TS_PORT"
	expect_contains "no-such-name.test is resolved locally (remote_dns = no), and that failed"
}

@test "--check probes a working proxy: CONNECT succeeded, exit 0" {
	start_testserver
	proxy_conf "$CONF" "$TS_PORT"
	run check web.test:"$WEB_PORT"
	expect_status 0
	expect_match "connect   ok in [0-9.]+ ms: TCP connection to 127.0.0.1:$TS_PORT"
	expect_match "greeting  ok in [0-9.]+ ms: proxy chose method X'00' \(no authentication\)"
	expect_match "CONNECT   ok in [0-9.]+ ms: web.test:$WEB_PORT: proxy replied 0 \(succeeded\)"
	expect_line "result: OK"
	# Then UDP ASSOCIATE on a connection of its own, which the test server
	# relays.
	expect_match "udp       ok in [0-9.]+ ms: udp associate ok, relay 127\.0\.0\.1:[0-9]+"
	wait_records 2
	expect_record host web.test 0
	expect_record cmd 3 1
}

@test "--check reports rejected credentials and exits non-zero" {
	start_testserver --auth alice:right-pw
	proxy_conf "$CONF" "$TS_PORT" "username = alice" "password = wrong-pw"
	run check web.test:"$WEB_PORT"
	expect_status 1
	expect_contains 'auth      FAILED after'
	expect_contains 'username/password rejected for user "alice"'
	expect_line "result: FAILED"
	expect_not_contains "wrong-pw"
}

@test "--check without credentials against a proxy that needs them" {
	start_testserver --mode no-method
	proxy_conf "$CONF" "$TS_PORT"
	run check
	expect_status 1
	expect_contains "proxy answered method X'FF' (no acceptable methods)"
	expect_contains "does it need a username/password?"
}

@test "--check prints REP codes in words" {
	local rep text
	for rep in 1 2 3 4 5 6 7 8 9; do
		case $rep in
		1) text="general SOCKS server failure" ;;
		2) text="connection not allowed by ruleset" ;;
		3) text="network unreachable" ;;
		4) text="host unreachable" ;;
		5) text="connection refused" ;;
		6) text="TTL expired" ;;
		7) text="command not supported" ;;
		8) text="address type not supported" ;;
		9) text="unassigned reply code" ;;
		esac
		start_testserver --reply "$rep"
		proxy_conf "$CONF" "$TS_PORT"
		run check web.test:"$WEB_PORT"
		expect_status 1
		expect_contains "CONNECT   FAILED after"
		expect_contains "web.test:$WEB_PORT: proxy replied $rep ($text)"
	done
	expect_contains "a program would get Protocol error"
}

@test "--check with timeouts of 0 and pipeline = yes: shown as such, the probe still works step by step" {
	start_testserver
	proxy_conf "$CONF" "$TS_PORT" "connect_timeout = 0" "handshake_timeout = 0" "pipeline = yes"
	run check web.test:$WEB_PORT
	expect_status 0
	expect_contains "connect_timeout   = 0s (no limit; --check waits 30s)"
	expect_contains "handshake_timeout = 0s (no limit; --check waits 30s)"
	expect_contains "pipeline          = yes"
	expect_contains "greeting  ok"
	expect_line "result: OK"
}

@test "--check with the proxy down: a clear message, non-zero" {
	proxy_conf "$CONF" "$(free_port)"
	run check web.test:80
	expect_status 1
	expect_contains "connect   FAILED after"
	expect_contains "Connection refused"
	expect_contains "is a SOCKS5 proxy running at 127.0.0.1:"
	expect_line "result: FAILED"
}

@test "--check against a silent proxy times out within handshake_timeout" {
	start_testserver --mode silent
	proxy_conf "$CONF" "$TS_PORT" "handshake_timeout = 1"
	run check web.test:80
	expect_status 1
	expect_contains "greeting  FAILED after"
	expect_contains "no answer from the proxy within handshake_timeout (1s)"
	expect_ms "$(step_ms greeting)" 900 1000 1000 "the greeting"
}

@test "--check against a proxy that never accepts: connect_timeout" {
	start_testserver --blackhole
	proxy_conf "$CONF" "$TS_PORT" "connect_timeout = 0.5"
	run check
	expect_status 1
	expect_contains "did not answer within connect_timeout (0.5s)"
	expect_ms "$(step_ms connect)" 400 500 1000 "the connect step"
}

@test "--check: a malformed answer and an early close, in words" {
	start_testserver --mode bad-version
	proxy_conf "$CONF" "$TS_PORT"
	run check
	expect_status 1
	expect_contains "malformed answer (not a SOCKS5 proxy?)"
	start_testserver --mode close-after-greeting
	proxy_conf "$CONF" "$TS_PORT"
	run check
	expect_status 1
	expect_contains "the proxy closed the connection"
}

@test "--check with a broken config says where and exits non-zero" {
	write_conf "$CONF" "proxy = socks5h://127.0.0.1:1080" "direct = not-an-address"
	run check
	expect_status 1
	expect_contains "config ERROR: $CONF:2: direct:"
	expect_contains "every proxied connection fails (EACCES)"
}

@test "--check reports the sealed key and that sealed mode is available here, as socksify-sealed --probe does" {
	write_conf "$CONF" "proxy = socks5h://127.0.0.1:1080" "sealed = auto"
	run "${LIB%/*}/socksify-sealed" --probe
	expect_status 0
	expect_line "sealed mode: available (seccomp user notification, pidfd_getfd)"
	run check
	expect_line "  sealed            = auto (seal static, Go and file-capability programs)"
	expect_line "sealed mode: available (seccomp user notification, pidfd_getfd)"
	SOCKSIFY_SEALED=no run check
	expect_line "sealed: SOCKSIFY_SEALED=no (overrides sealed = auto)"
}

@test "--check under another seccomp listener: sealed mode unavailable, and why" {
	write_conf "$CONF" "proxy = socks5h://127.0.0.1:1080"
	run run_isolated "$TESTBIN/notif_wrap" "$SOCKSIFY" -c "$CONF" --check
	expect_line "  sealed            = no"
	expect_line "sealed mode: unavailable: this process already runs under a seccomp listener (nested sealed mode or a container's supervisor)"
	run run_isolated "$TESTBIN/notif_wrap" "${LIB%/*}/socksify-sealed" --probe
	expect_status 1
	expect_contains "sealed mode: unavailable: this process already runs under a seccomp listener"
}

@test "--check rejects a bad HOST argument" {
	write_conf "$CONF" "proxy = socks5h://127.0.0.1:1080"
	run check web.test:99999
	expect_status 2
	expect_contains "usage: socksify --check [HOST[:PORT]]"
}

# Items 4 and 5 of the man page: the info line per connection and the warn
# line that names the proxy, the step and the reply code.
@test "log_level = info: one line per proxied connection with the decision" {
	start_testserver
	proxy_conf "$CONF" "$TS_PORT" "log_level = info" "log_file = $SFY_LOG"
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /logged
	expect_status 0
	run cat "$SFY_LOG"
	expect_match "^socksify\[[0-9]+\]: connect web.test:$WEB_PORT via 127.0.0.1:$TS_PORT \(remote dns\) ok [0-9.]+ms$"
}

@test "a failure logs one warn line naming proxy, step and reply code" {
	start_testserver --reply 5
	proxy_conf "$CONF" "$TS_PORT" "log_file = $SFY_LOG"
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /refused
	expect_errno ECONNREFUSED
	run cat "$SFY_LOG"
	expect_match "^socksify\[[0-9]+\]: connect web.test:$WEB_PORT via 127.0.0.1:$TS_PORT failed: proxy replied 5 \(connection refused\)$"
	start_testserver --mode silent
	proxy_conf "$CONF" "$TS_PORT" "handshake_timeout = 1" "log_file = $SFY_LOG"
	: >"$SFY_LOG"
	run sfy "$TESTBIN/tcp_get" web.test "$WEB_PORT" /silent
	expect_errno ETIMEDOUT
	run cat "$SFY_LOG"
	expect_match "via 127.0.0.1:$TS_PORT failed at greeting: Connection timed out$"
}
