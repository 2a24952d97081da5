#!/usr/bin/env bats
# FTP through danted in the firewall lab (tests/lab/lab.bash): the client
# namespace reaches only the proxy, so in ACTIVE mode the server's data
# connection can only come back through a SOCKS5 BIND made by socksify on
# the client's listening socket.  An FTP server (tests/lab/ftp_server.py,
# pyftpdlib) runs on files.test / files6.test (203.0.113.10 /
# 2001:db8:2::10), whose names only the proxy knows.
#
# Every transfer moves a 1 MiB random file and compares sha256 sums; every
# active transfer must show up in danted's log as a "tcp/bind" and a
# "tcp/bindreply" session; every test asserts the client's DNS sentinel saw
# nothing.  Needs root; runs from the host namespace (bats
# tests/bats/ftp.bats) or inside tests/bats/run's.

# shellcheck source=tests/lab/lab.bash
source "$BATS_TEST_DIRNAME/../lab/lab.bash"

CONF4=$LAB_HOME/client-v4.conf
CONF6=$LAB_HOME/client-v6.conf
FTP_CREDS=$LAB_FTP_USER:$LAB_FTP_PASS
PEER4=$LAB_PROXY_EXT4   # the FTP server must be told the proxy's address
PEER6=$LAB_PROXY_EXT6

setup_file() {
	export LAB_SKIP=
	if [[ $(id -u) != 0 ]]; then
		LAB_SKIP="ftp.bats needs root (network namespaces, danted)"
		echo "# SKIPPING the FTP lab: $LAB_SKIP" >&3
		return 0
	fi
	local missing
	missing=$(lab_missing_packages)
	command -v lftp >/dev/null || missing+=" lftp"
	command -v inetutils-ftp >/dev/null || missing+=" inetutils-ftp"
	[[ -z ${missing// /} ]] || lab_fail "missing Debian packages: $missing" || return 1
	lab_require_build || return 1
	local stale
	stale=$(lab_cleanup_stale 2>&1)
	[[ -z $stale ]] || printf '# %s\n' "$stale" >&3
	lab_up "$$" "$BATS_FILE_TMPDIR/lab" || return 1
	# The file to download (on the server) and the one to upload (here).
	export SRC=$BATS_FILE_TMPDIR/upload.bin
	head -c 1048576 /dev/urandom >"$LAB_FTP_HOME/big.bin"
	head -c 1048576 /dev/urandom >"$SRC"
	BIG_SHA=$(sha "$LAB_FTP_HOME/big.bin")
	SRC_SHA=$(sha "$SRC")
	export BIG_SHA SRC_SHA
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
	lab_asan_setup
	lab_reset_dns
	BINDS_BEFORE=$(danted_count 'tcp/bindreply \[')
	OUT=$BATS_TEST_TMPDIR
}

teardown() {
	[[ -z $LAB_SKIP ]] || return 0
	if [[ -z ${BATS_TEST_COMPLETED-} ]]; then
		local f
		for f in "$LAB_DNS_LOG" "$LAB_DIR/danted.out" "$LAB_DIR/ftp.out"; do
			[[ -s $f ]] || continue
			echo "--- $f (tail)"
			grep -v '\[debug\]' "$f" | tail -n 25
		done
	fi
	lab_no_sanitizer_report
}

# Why tests skip in the ASan pass (SOCKSIFY_TEST_ASAN=1).
CURL_HANGS="curl hangs under a preloaded ASan runtime"
LFTP_HANGS="lftp hangs under a preloaded ASan runtime"

sha() {
	sha256sum "$1" | cut -d' ' -f1
}

danted_count() {
	grep -c "$1" "$LAB_DANTED_LOG" || true
}

expect_status() {
	[[ $status -eq $1 ]] || lab_fail "expected exit status $1, got $status; output:" "$output"
}

# expect_same FILE SHA: FILE exists and has that sha256.
expect_same() {
	[[ -f $1 ]] || lab_fail "$1 was not written; output:" "$output" || return 1
	[[ $(sha "$1") == "$2" ]] || lab_fail "$1 differs from the original ($(stat -c %s "$1") bytes)"
}

# expect_binds N: danted logged at least N more BIND sessions (a bindreply:
# the server's connection back through the BIND) than before the test.
expect_binds() {
	local n
	n=$(($(danted_count 'tcp/bindreply \[') - BINDS_BEFORE))
	((n >= $1)) || lab_fail "danted logged $n BIND replies, expected $1:" \
		"$(grep 'tcp/bind' "$LAB_DANTED_LOG" | tail -n 10)"
}

# expect_bind_dst DST: danted logged a BIND whose DST (the last CONNECT's
# destination, as socksify sent it) was DST, e.g. files.test.21.
expect_bind_dst() {
	grep -q "tcp/bind \[: .* ${1//./\\.}\$" "$LAB_DANTED_LOG" ||
		lab_fail "danted logged no BIND to $1:" "$(grep 'tcp/bind' "$LAB_DANTED_LOG" | tail -n 5)"
}

# expect_ftp_cmd REGEX: the FTP server logged a matching command.
expect_ftp_cmd() {
	grep -Eq "$1" "$LAB_DIR/ftp.out" ||
		lab_fail "the FTP server logged no /$1/:" "$(grep -E 'PORT|EPRT|PASV|EPSV' "$LAB_DIR/ftp.out" | tail -n 5)"
}

@test "the FTP clients run this pass's build of the library (the ASan build behind its runtime in the ASan pass)" {
	lab_expect_pass_library
}

# ------------------------------------------------------------ curl (-P -)
@test "curl -P - (active) by name: 1 MiB download, byte-identical, via a BIND" {
	lab_skip_under_asan "$CURL_HANGS"
	run lab_sfy -c "$CONF4" curl -sS --max-time 20 -P - \
		"ftp://$FTP_CREDS@files.test/big.bin" -o "$OUT/curl.bin"
	expect_status 0
	expect_same "$OUT/curl.bin" "$BIG_SHA"
	expect_binds 1
	expect_bind_dst files.test.21
	# The address advertised in EPRT/PORT is the proxy's, not the client's.
	expect_ftp_cmd "(EPRT \|1\|$PEER4\||PORT ${PEER4//./,},)"
	lab_assert_no_dns_leak
}

@test "curl -P - -T (active) by name: 1 MiB upload, byte-identical" {
	lab_skip_under_asan "$CURL_HANGS"
	run lab_sfy -c "$CONF4" curl -sS --max-time 20 -P - -T "$SRC" \
		"ftp://$FTP_CREDS@files.test/up-curl.bin"
	expect_status 0
	expect_same "$LAB_FTP_HOME/up-curl.bin" "$SRC_SHA"
	expect_binds 1
	lab_assert_no_dns_leak
}

@test "curl -6 -P - (active, EPRT) by name via files6.test: download and upload" {
	lab_skip_under_asan "$CURL_HANGS"
	run lab_sfy -c "$CONF6" curl -6 -sS --max-time 20 -P - \
		"ftp://$FTP_CREDS@files6.test/big.bin" -o "$OUT/curl6.bin"
	expect_status 0
	expect_same "$OUT/curl6.bin" "$BIG_SHA"
	run lab_sfy -c "$CONF6" curl -6 -sS --max-time 20 -P - -T "$SRC" \
		"ftp://$FTP_CREDS@files6.test/up-curl6.bin"
	expect_status 0
	expect_same "$LAB_FTP_HOME/up-curl6.bin" "$SRC_SHA"
	expect_binds 2
	expect_bind_dst files6.test.21
	expect_ftp_cmd "EPRT \|2\|$PEER6\|"
	lab_assert_no_dns_leak
}

# ----------------------------------------------- inetutils-ftp (classic)
@test "inetutils-ftp (active, the default) by name: get, put, get in one session" {
	run lab_sfy -c "$CONF4" inetutils-ftp -n -v files.test <<EOF
user $LAB_FTP_USER $LAB_FTP_PASS
binary
get big.bin $OUT/ftp1.bin
put $SRC up-ftp.bin
get big.bin $OUT/ftp2.bin
quit
EOF
	expect_status 0
	expect_same "$OUT/ftp1.bin" "$BIG_SHA"
	expect_same "$LAB_FTP_HOME/up-ftp.bin" "$SRC_SHA"
	expect_same "$OUT/ftp2.bin" "$BIG_SHA"
	expect_binds 3
	expect_bind_dst files.test.21
	lab_assert_no_dns_leak
}

# ------------------------------------------------------------------ lftp
LFTP_SET='set ftp:passive-mode off; set net:max-retries 1; set net:timeout 15; set xfer:clobber on'

# lftp resolves names in a forked child and connects in the parent: the
# fake pool is shared between them, so the parent finds the child's name.
@test "lftp (active) by name, resolved in lftp's forked resolver: get and put" {
	lab_skip_under_asan "$LFTP_HANGS"
	run lab_sfy -c "$CONF4" lftp -c "$LFTP_SET; open -u $LAB_FTP_USER,$LAB_FTP_PASS ftp://files.test;
		get big.bin -o $OUT/lftpn.bin; put $SRC -o up-lftpn.bin"
	expect_status 0
	expect_same "$OUT/lftpn.bin" "$BIG_SHA"
	expect_same "$LAB_FTP_HOME/up-lftpn.bin" "$SRC_SHA"
	expect_binds 2
	lab_assert_no_dns_leak
}

@test "lftp (active) by IPv4 address: get, put, get in one session" {
	lab_skip_under_asan "$LFTP_HANGS"
	run lab_sfy -c "$CONF4" lftp -c "$LFTP_SET; open -u $LAB_FTP_USER,$LAB_FTP_PASS ftp://$LAB_SERVER4;
		get big.bin -o $OUT/lftp1.bin; put $SRC -o up-lftp.bin; get big.bin -o $OUT/lftp2.bin"
	expect_status 0
	expect_same "$OUT/lftp1.bin" "$BIG_SHA"
	expect_same "$LAB_FTP_HOME/up-lftp.bin" "$SRC_SHA"
	expect_same "$OUT/lftp2.bin" "$BIG_SHA"
	expect_binds 3
	expect_bind_dst "$LAB_SERVER4.21"
	expect_ftp_cmd "PORT ${PEER4//./,},"
	lab_assert_no_dns_leak
}

@test "lftp (active, EPRT) by IPv6 address: get and put" {
	lab_skip_under_asan "$LFTP_HANGS"
	run lab_sfy -c "$CONF6" lftp -c "$LFTP_SET; open -u $LAB_FTP_USER,$LAB_FTP_PASS ftp://[$LAB_SERVER6];
		get big.bin -o $OUT/lftp6.bin; put $SRC -o up-lftp6.bin"
	expect_status 0
	expect_same "$OUT/lftp6.bin" "$BIG_SHA"
	expect_same "$LAB_FTP_HOME/up-lftp6.bin" "$SRC_SHA"
	expect_binds 2
	expect_bind_dst "$LAB_SERVER6.21"
	expect_ftp_cmd "EPRT \|2\|$PEER6\|"
	lab_assert_no_dns_leak
}

# --------------------------------------------------------------- passive
@test "passive mode (EPSV, then PASV) by name: curl download and upload, no BIND" {
	lab_skip_under_asan "$CURL_HANGS"
	run lab_sfy -c "$CONF4" curl -sS --max-time 20 \
		"ftp://$FTP_CREDS@files.test/big.bin" -o "$OUT/pasv1.bin"
	expect_status 0
	expect_same "$OUT/pasv1.bin" "$BIG_SHA"
	run lab_sfy -c "$CONF4" curl -sS --max-time 20 --disable-epsv -T "$SRC" \
		"ftp://$FTP_CREDS@files.test/up-pasv.bin"
	expect_status 0
	expect_same "$LAB_FTP_HOME/up-pasv.bin" "$SRC_SHA"
	expect_binds 0
	[[ $(danted_count 'tcp/bindreply \[') -eq $BINDS_BEFORE ]] ||
		lab_fail "passive mode made a BIND"
	lab_assert_no_dns_leak
}

@test "passive mode by name over IPv6 (files6.test, EPSV): curl download" {
	lab_skip_under_asan "$CURL_HANGS"
	run lab_sfy -c "$CONF6" curl -6 -sS --max-time 20 \
		"ftp://$FTP_CREDS@files6.test/big.bin" -o "$OUT/pasv6.bin"
	expect_status 0
	expect_same "$OUT/pasv6.bin" "$BIG_SHA"
	lab_assert_no_dns_leak
}
