#!/usr/bin/env bats
# AT_SECURE: a setuid program run by an ordinary user must not let that
# user's environment choose the proxy (or the config, or the log file).
# The loader ignores LD_PRELOAD for such programs but honours
# /etc/ld.so.preload, so the test lays an overlay over /etc in a private
# mount namespace (the real /etc is never touched), preloads the library
# from there and runs a setuid copy of tcp_get as "nobody".

load helpers

setup_file() {
	common_setup_file
	start_http web 127.0.0.3
	export WEB_PORT=$HTTP_PORT
}

setup() {
	common_setup
	# /etc/ld.so.preload would load the ASan build before its runtime.
	[[ -z $ASAN_RT ]] || skip "not run with the ASan build"
	# Somewhere "nobody" can traverse: bats' own temp dirs are private.
	SEC_DIR=$(mktemp -d /tmp/sfy-secure.XXXXXX)
	chmod 755 "$SEC_DIR"
	cp "$LIB" "$SEC_DIR/libsocksify.so"
	cp "$TESTBIN/tcp_get" "$SEC_DIR/tcp_get_suid"
	cp "$TESTBIN/tcp_get" "$SEC_DIR/tcp_get_plain"
	chmod 4755 "$SEC_DIR/tcp_get_suid"
	chmod 755 "$SEC_DIR/tcp_get_plain" "$SEC_DIR/libsocksify.so"
	start_testserver
	TRUSTED_PORT=$TS_PORT TRUSTED_RECORD=$TS_RECORD
	start_testserver
	ENV_PORT=$TS_PORT ENV_RECORD=$TS_RECORD
	printf 'proxy = socks5h://127.0.0.1:%s\ndirect_loopback = no\n' "$TRUSTED_PORT" >"$SEC_DIR/etc-socksify.conf"
	printf 'proxy = socks5h://127.0.0.1:%s\ndirect_loopback = no\n' "$ENV_PORT" >"$SEC_DIR/user.conf"
	chmod 644 "$SEC_DIR"/*.conf
	: >"$SEC_DIR/env.log"
	chmod 666 "$SEC_DIR/env.log" # writable for the unprivileged run too
}

teardown() {
	common_teardown
	rm -rf "$SEC_DIR"
}

# as_nobody PROGRAM: PROGRAM web.test $WEB_PORT as uid nobody, with the
# library in /etc/ld.so.preload and the trusted config in /etc, and an
# environment that tries to redirect everything to the other proxy.
as_nobody() {
	local prog=$1
	mkdir -p "$SEC_DIR/upper" "$SEC_DIR/work"
	unshare -m sh -c '
		d=$1; prog=$2; port=$3; envport=$4
		mount -t overlay overlay -o "lowerdir=/etc,upperdir=$d/upper,workdir=$d/work" /etc || exit 99
		echo "$d/libsocksify.so" >/etc/ld.so.preload
		cp "$d/etc-socksify.conf" /etc/socksify.conf
		exec env SOCKSIFY_PROXY="socks5h://127.0.0.1:$envport" SOCKSIFY_CONF="$d/user.conf" \
			SOCKSIFY_LOG_LEVEL=debug SOCKSIFY_LOG_FILE="$d/env.log" \
			timeout 20 setpriv --reuid=65534 --regid=65534 --clear-groups "$d/$prog" web.test "$3" /secure' \
		sh "$SEC_DIR" "$prog" "$WEB_PORT" "$ENV_PORT"
}

@test "AT_SECURE: setuid program ignores SOCKSIFY_PROXY/CONF/LOG_* and uses /etc/socksify.conf" {
	run as_nobody tcp_get_suid
	expect_status 0
	expect_contains "hello from web path=/secure peer=127.0.0.2"
	TS_RECORD=$TRUSTED_RECORD wait_records 1
	[[ -s $TRUSTED_RECORD ]] || fail "the /etc config's proxy saw nothing"
	[[ ! -s $ENV_RECORD ]] || fail "the environment's proxy was used:" "$(cat "$ENV_RECORD")"
	# env, timeout and setpriv are preloaded too and may log there; the
	# setuid program itself must not.
	! grep -E 'web\.test|secure mode' "$SEC_DIR/env.log" ||
		fail "the setuid program honoured SOCKSIFY_LOG_FILE"
}

@test "AT_SECURE control: the same program without setuid honours the environment" {
	run as_nobody tcp_get_plain
	expect_status 0
	expect_contains "hello from web path=/secure peer=127.0.0.2"
	TS_RECORD=$ENV_RECORD wait_records 1
	[[ ! -s $TRUSTED_RECORD ]] || fail "the /etc proxy was used although the environment chose another"
	grep -q 'connect web.test' "$SEC_DIR/env.log" || fail "SOCKSIFY_LOG_FILE was not honoured"
}
