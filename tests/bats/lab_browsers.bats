#!/usr/bin/env bats
# Browsers in the firewall lab (tests/lab/lab.bash): Chromium and Firefox
# ESR, headless, load pages by name through danted under scripts/socksify in
# the client namespace, over HTTP and over HTTPS (nginx with the lab's test
# CA, which each browser trusts through an NSS database: never
# --ignore-certificate-errors).  Each test checks the page content, that the
# server saw the proxy's external address, that danted relayed the sessions,
# and that the client's DNS sentinel saw no query.
#
# Default settings: no flag or pref turns off a browser's DNS client,
# prefetching or background requests.  The only flags are the ones a
# headless run needs (--headless, and for Chromium --dump-dom to print the
# page; for Firefox a fresh --profile, --no-remote and --screenshot, which
# loads the page, waits for its load event and quits) and, as root,
# Chromium's --no-sandbox.  Background requests (Chromium's component
# updater and sign-in, Firefox's remote settings and geolocation) go to
# danted like everything else, by name; danted cannot resolve those names
# and refuses them, and the sentinel shows that nothing resolved them on
# the client.
#
# Browsers leave helpers behind (Chromium's crashpad handler detaches into
# its own session), so their output goes to files, never to a pipe, and
# each test kills every process that carries its browser's HOME
# (browser_reap).  Needs root, like lab.bats.

# shellcheck source=tests/lab/lab.bash
source "$BATS_TEST_DIRNAME/../lab/lab.bash"

CONF4=$LAB_HOME/client-v4.conf
PEER4=$LAB_PROXY_EXT4
PEER6=$LAB_PROXY_EXT6
BROWSER_TIMEOUT=45 # seconds a browser may run (bats' own limit is 90)
# Why the tests skip in the ASan pass (SOCKSIFY_TEST_ASAN=1).
# Chromium does not run behind a preloaded ASan runtime even without
# socksify: it hangs until killed (with the ASan build of socksify too, it
# dies at start-up with SIGSEGV).
ASAN_BROWSER="Chromium hangs behind a preloaded ASan runtime, even without socksify; the release pass runs the browsers"

setup_file() {
	export LAB_SKIP=
	if [[ $(id -u) != 0 ]]; then
		LAB_SKIP="lab_browsers.bats needs root (network namespaces, danted)"
		echo "# SKIPPING the browser lab: $LAB_SKIP" >&3
		return 0
	fi
	if [[ -n $LAB_ASAN_RT ]]; then
		LAB_SKIP=$ASAN_BROWSER
		return 0
	fi
	local missing pair
	missing=$(lab_missing_packages)
	for pair in chromium:chromium firefox-esr:firefox-esr certutil:libnss3-tools \
		setpriv:util-linux; do
		command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=" ${pair#*:}"
	done
	[[ -z ${missing// /} ]] || lab_fail "missing Debian packages: $missing" || return 1
	lab_require_build || return 1
	local stale
	stale=$(lab_cleanup_stale 2>&1)
	[[ -z $stale ]] || printf '# %s\n' "$stale" >&3
	lab_up "$$" "$BATS_FILE_TMPDIR/lab"
}

teardown_file() {
	lab_teardown_checked
}

setup() {
	[[ -z $LAB_SKIP ]] || skip "$LAB_SKIP"
	lab_reset_dns
	DANTED_LINES=$(wc -l <"$LAB_DANTED_LOG")
	HTTPS_LINES=$(wc -l <"$LAB_HTTPS_LOG")
	B_HOME=$BATS_TEST_TMPDIR/home
	B_OUT=$BATS_TEST_TMPDIR/browser.out
	B_ERR=$BATS_TEST_TMPDIR/browser.err
	mkdir -p "$B_HOME"
}

teardown() {
	[[ -z $LAB_SKIP ]] || return 0
	browser_reap
	[[ -z ${B_HOME_TMP-} ]] || rm -rf "$B_HOME_TMP"
	if [[ -z ${BATS_TEST_COMPLETED-} ]]; then
		local f
		for f in "$B_OUT" "$B_ERR" "$LAB_DNS_LOG" "$LAB_DANTED_LOG" "$LAB_HTTPS_LOG" \
			"$LAB_DIR"/http-files-v*.log; do
			[[ -s $f ]] || continue
			echo "--- $f (tail)"
			tail -n 8 "$f"
		done
	fi
}

# browser_reap: kill (by pid) every process in the client namespace whose
# environment has this test's HOME: the browser and whatever it left.
browser_reap() {
	local pid
	for pid in $(ip netns pids "$LAB_C" 2>/dev/null); do
		tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "HOME=$B_HOME" &&
			kill -KILL "$pid" 2>/dev/null
	done
	return 0
}

# nssdb DIR: a new NSS database in DIR that trusts the lab's CA for TLS
# servers (Chromium reads $HOME/.pki/nssdb, Firefox its profile).
nssdb() {
	mkdir -p "$1" &&
		certutil -N -d "sql:$1" --empty-password &&
		certutil -A -d "sql:$1" -n "socksify lab CA" -t C,, -i "$LAB_CA"
}

# browser_run [--user USER] CMD...: CMD under socksify in the client
# namespace with HOME=$B_HOME (as USER, which then owns $B_HOME), output
# in $B_OUT and $B_ERR; sets status.  Then browser_reap.
browser_run() {
	local user=
	if [[ $1 == --user ]]; then
		user=$2
		shift 2
	fi
	status=0
	if [[ -n $user ]]; then
		chown -R "$user:" "$B_HOME" || return 1
		ip netns exec "$LAB_C" timeout -k 3 "$BROWSER_TIMEOUT" \
			setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups \
			env HOME="$B_HOME" "$LAB_SOCKSIFY" -c "$CONF4" -- "$@" \
			>"$B_OUT" 2>"$B_ERR" </dev/null || status=$?
	else
		HOME=$B_HOME LAB_CMD_TIMEOUT=$BROWSER_TIMEOUT lab_sfy -c "$CONF4" "$@" \
			>"$B_OUT" 2>"$B_ERR" </dev/null || status=$?
	fi
	browser_reap
}

# chromium_run [--user USER] URL: chromium --headless --dump-dom URL (with
# --no-sandbox unless USER is given); the DOM is in $B_OUT.
chromium_run() {
	local user=() sandbox=(--no-sandbox)
	if [[ $1 == --user ]]; then
		user=(--user "$2") sandbox=()
		shift 2
		# The user cannot reach the test's own directory (mode 700 up
		# the tree): a home of its own, which teardown removes.
		B_HOME=$(mktemp -d /tmp/sfy-browser-home.XXXXXX) || return 1
		B_HOME_TMP=$B_HOME
	fi
	nssdb "$B_HOME/.pki/nssdb" >/dev/null || return 1
	browser_run "${user[@]}" chromium --headless "${sandbox[@]}" --dump-dom "$1"
}

# firefox_run URL: firefox-esr --headless with a fresh profile that trusts
# the lab's CA; --screenshot loads URL, waits for its load event, writes
# $BATS_TEST_TMPDIR/shot.png and quits.
firefox_run() {
	local profile=$B_HOME/profile
	nssdb "$profile" >/dev/null || return 1
	browser_run firefox-esr --headless --no-remote --profile "$profile" \
		--screenshot "$BATS_TEST_TMPDIR/shot.png" "$1"
}

expect_status() {
	[[ $status -eq $1 ]] || lab_fail "expected exit status $1, got $status; stderr:" "$(tail -n 20 "$B_ERR")"
}

# expect_dom TEXT...: the DOM Chromium printed contains every TEXT.
expect_dom() {
	local want
	for want in "$@"; do
		grep -qF -- "$want" "$B_OUT" ||
			lab_fail "the page lacks '$want'; DOM:" "$(cat "$B_OUT")" "stderr:" "$(tail -n 20 "$B_ERR")" ||
			return 1
	done
}

# expect_https_get PORT HOST PEER PATH-ERE...: since this test began, the
# nginx log has a request for each path (an ERE for the whole path)
# on PORT for HOST from PEER (over TLS on LAB_HTTPS_PORT).
expect_https_get() {
	local port=$1 host=$2 peer=$3 path re lines tls='TLSv1\.[23]'
	shift 3
	[[ $port == "$LAB_HTTPS_PORT" ]] || tls=-
	lines=$(tail -n "+$((HTTPS_LINES + 1))" "$LAB_HTTPS_LOG")
	for path in "$@"; do
		re="^peer=$(re_quote "$peer") port=$port host=$(re_quote "$host") tls=$tls \"GET $path HTTP/[0-9.]+\" (200|204)\$"
		grep -Eq -- "$re" <<<"$lines" ||
			lab_fail "nginx logged no GET $path on $port for $host from $peer:" "$lines" || return 1
	done
	# Every request came from the proxy.
	! grep -v "^peer=$(re_quote "$peer") " <<<"$lines" | grep -q . ||
		lab_fail "nginx saw a peer other than $peer:" "$lines"
}

# expect_proxied SERVER PORT: since this test began, danted relayed at
# least one session from the client (via its IPv4 address) to SERVER:PORT
# from the proxy's external address of SERVER's family, and every session
# it relayed went to the server.  (Background requests to other names are
# refused: danted cannot resolve them.)  danted logs a session when it
# starts, so its lines may trail the browser by a moment.
expect_proxied() {
	local server=$1 port=$2 peer=$PEER4 lines re i
	[[ $server != *:* ]] || peer=$PEER6
	re="tcp/connect \[: $(re_quote "$LAB_CLIENT4")\.[0-9]+ $(re_quote "$LAB_PROXY4")\.$LAB_PROXY_PORT"
	re+=" -> $(re_quote "$peer")\.[0-9]+ $(re_quote "$server")\.$port\$"
	for ((i = 0; i < 40; i++)); do
		lines=$(tail -n "+$((DANTED_LINES + 1))" "$LAB_DANTED_LOG" | grep 'pass([0-9]*): tcp/connect \[: ' || true)
		grep -Eq -- "$re" <<<"$lines" && break
		sleep 0.05
	done
	grep -Eq -- "$re" <<<"$lines" ||
		lab_fail "danted relayed no session to $server.$port:" "$lines" || return 1
	! grep -Ev -- "-> ($(re_quote "$PEER4")|$(re_quote "$PEER6"))\.[0-9]+ ($(re_quote "$LAB_SERVER4")|$(re_quote "$LAB_SERVER6"))\.[0-9]+\$" <<<"$lines" | grep -q . ||
		lab_fail "danted relayed a session to something other than the server:" "$lines"
}

# userns_ok USER: USER may create a user namespace in the client namespace
# (what Chromium's sandbox needs without a setuid helper).
userns_ok() {
	ip netns exec "$LAB_C" setpriv --reuid="$1" --regid="$(id -g "$1")" --clear-groups \
		unshare --user --map-root-user true 2>/dev/null
}

# ---------------------------------------------------------------- the lab
@test "lab HTTPS: nginx serves files.test and files6.test with the test CA's certificate, and sees the proxy" {
	run lab_sfy curl -sS --max-time 20 --cacert "$LAB_CA" https://files.test/
	[[ $status -eq 0 && $output == *"$LAB_HTTPS_TOKEN"* && $output == *"peer=$PEER4"* ]] ||
		lab_fail "https://files.test/ (status $status):" "$output"
	run lab_sfy curl -sS --max-time 20 --cacert "$LAB_CA" https://files6.test/
	[[ $status -eq 0 && $output == *"peer=$PEER6"* ]] ||
		lab_fail "https://files6.test/ (status $status):" "$output"
	# Without the CA, verification fails (curl: 60).
	run lab_sfy curl -sS --max-time 20 https://files.test/
	[[ $status -eq 60 ]] || lab_fail "expected a certificate error (60), got $status:" "$output"
	expect_https_get 443 files.test "$PEER4" / &&
		expect_https_get 443 files6.test "$PEER6" /
	lab_assert_no_dns_leak
}

# --------------------------------------------------------------- chromium
@test "control: chromium without socksify cannot load files.test, and the sentinel records its lookup" {
	nssdb "$B_HOME/.pki/nssdb" >/dev/null
	status=0
	HOME=$B_HOME LAB_CMD_TIMEOUT=$BROWSER_TIMEOUT in_client chromium --headless --no-sandbox \
		--dump-dom http://files.test/control >"$B_OUT" 2>"$B_ERR" </dev/null || status=$?
	browser_reap
	! grep -q 'hello from' "$B_OUT" || lab_fail "chromium reached the server directly:" "$(cat "$B_OUT")"
	grep -q '^files\.test ' "$LAB_DNS_LOG" ||
		lab_fail "the sentinel saw no query for files.test:" "$(cat "$LAB_DNS_LOG")"
}

@test "chromium (root, --no-sandbox) loads http://files.test/ by name through danted, no DNS leak" {
	chromium_run http://files.test/chromium-http
	expect_status 0
	expect_dom "hello from files-v4 path=/chromium-http peer=$PEER4"
	grep -q "GET /chromium-http peer=$PEER4\$" "$LAB_DIR/http-files-v4.log" ||
		lab_fail "the server logged no GET from the proxy"
	expect_proxied "$LAB_SERVER4" 80
	lab_assert_no_dns_leak
}

@test "chromium (root, --no-sandbox) loads https://files.test/ with its script, trusting the lab CA, no DNS leak" {
	chromium_run https://files.test/
	expect_status 0
	expect_dom "$LAB_HTTPS_TOKEN" "peer=$PEER4" '<p id="script">script ran</p>'
	expect_https_get 443 files.test "$PEER4" '/' '/app\.js'
	expect_proxied "$LAB_SERVER4" 443
	lab_assert_no_dns_leak
}

@test "chromium (root, --no-sandbox) loads https://files6.test/ (the proxy resolves it to IPv6), no DNS leak" {
	chromium_run https://files6.test/
	expect_status 0
	expect_dom "$LAB_HTTPS_TOKEN" "peer=$PEER6" '<p id="script">script ran</p>'
	expect_https_get 443 files6.test "$PEER6" '/' '/app\.js'
	expect_proxied "$LAB_SERVER6" 443
	lab_assert_no_dns_leak
}

@test "chromium as an unprivileged user with its sandbox on loads https://files.test/, no DNS leak" {
	userns_ok nobody ||
		skip "user 'nobody' cannot create user namespaces here (Chromium's sandbox needs them)"
	chromium_run --user nobody https://files.test/
	expect_status 0
	# A sandbox that cannot start is fatal, not a silent fallback.
	! grep -qi 'no usable sandbox' "$B_ERR" || lab_fail "the sandbox did not start:" "$(cat "$B_ERR")"
	expect_dom "$LAB_HTTPS_TOKEN" "peer=$PEER4" '<p id="script">script ran</p>'
	expect_https_get 443 files.test "$PEER4" '/' '/app\.js'
	expect_proxied "$LAB_SERVER4" 443
	lab_assert_no_dns_leak
}

# ---------------------------------------------------------------- firefox
# The screenshot proves little about the content; the log does: the page's
# script requests /seen?TEXT with the text the page shows (token and the
# peer nginx put in it), after the page and its script came through.
@test "firefox (headless, fresh profile) loads https://files.test/ with its script, trusting the lab CA, no DNS leak" {
	firefox_run https://files.test/
	expect_status 0
	[[ -s $BATS_TEST_TMPDIR/shot.png ]] || lab_fail "no screenshot"
	expect_https_get 443 files.test "$PEER4" '/' '/app\.js' \
		"/seen\\?$LAB_HTTPS_TOKEN%20peer%3D$(re_quote "$PEER4")"
	expect_proxied "$LAB_SERVER4" 443
	lab_assert_no_dns_leak
}

@test "firefox (headless, fresh profile) loads http://files.test:8000/ (plain HTTP) with its script, no DNS leak" {
	firefox_run "http://files.test:$LAB_PAGE_PORT/"
	expect_status 0
	expect_https_get "$LAB_PAGE_PORT" files.test "$PEER4" '/' '/app\.js' \
		"/seen\\?$LAB_HTTPS_TOKEN%20peer%3D$(re_quote "$PEER4")"
	expect_proxied "$LAB_SERVER4" "$LAB_PAGE_PORT"
	lab_assert_no_dns_leak
}

@test "firefox (headless, fresh profile) loads https://files6.test/ (IPv6 behind the proxy), no DNS leak" {
	firefox_run https://files6.test/
	expect_status 0
	expect_https_get 443 files6.test "$PEER6" '/' '/app\.js' \
		"/seen\\?$LAB_HTTPS_TOKEN%20peer%3D$(re_quote "$PEER6" | sed 's/:/%3A/g')"
	expect_proxied "$LAB_SERVER6" 443
	lab_assert_no_dns_leak
}
