#!/usr/bin/env bats
# make install / make uninstall (scripts/install.mk): the layout under
# DESTDIR and PREFIX, the installed wrapper and --check working from there,
# the man pages rendering cleanly, and uninstall removing all of it.

load helpers

setup_file() {
	common_setup_file
	start_http web 127.0.0.3
	export WEB_PORT=$HTTP_PORT WEB_LOG=$HTTP_LOG
	start_testserver
	export FILE_TS_PORT=$TS_PORT FILE_TS_RECORD=$TS_RECORD
}

setup() {
	common_setup
	TS_PORT=$FILE_TS_PORT
	TS_RECORD=$FILE_TS_RECORD
	proxy_conf "$CONF" "$TS_PORT"
	STAGE=$BATS_TEST_TMPDIR/stage
	# The wrapper must find the installed library, not an override.
	unset SOCKSIFY_LIB
}

# mk TARGET VARS...: the project's make, quietly.
mk() {
	make -s -C "$ROOT" "$@"
}

# Every file under DIR, relative to it, sorted.
files_under() {
	(cd "$1" && find . -type f -o -type l) | sed 's#^\./##' | LC_ALL=C sort
}

@test "make install DESTDIR PREFIX=/usr lays out exactly the specified files" {
	run mk install DESTDIR="$STAGE" PREFIX=/usr
	expect_status 0
	run files_under "$STAGE"
	expect_status 0
	[[ $output == "usr/bin/socksify
usr/lib/socksify/libsocksify.so
usr/lib/socksify/socksify-check
usr/lib/socksify/socksify-sealed
usr/share/doc/socksify/socksify.conf.example
usr/share/man/man1/socksify.1
usr/share/man/man5/socksify.conf.5" ]] || fail "unexpected layout:" "$output"
	[[ -x $STAGE/usr/bin/socksify && -x $STAGE/usr/lib/socksify/socksify-check &&
		-x $STAGE/usr/lib/socksify/socksify-sealed ]] ||
		fail "wrapper, socksify-check or socksify-sealed not executable"
	cmp "$ROOT/socksify.conf.example" "$STAGE/usr/share/doc/socksify/socksify.conf.example"
	# The final path, without DESTDIR, is baked into the wrapper.
	grep -qx '_sfy_installed_lib="/usr/lib/socksify/libsocksify.so"' "$STAGE/usr/bin/socksify" ||
		fail "library path not baked in:" "$(grep _sfy_installed_lib= "$STAGE/usr/bin/socksify")"
	shellcheck "$STAGE/usr/bin/socksify"
}

@test "PREFIX defaults to /usr/local" {
	run mk install DESTDIR="$STAGE"
	expect_status 0
	[[ -f $STAGE/usr/local/lib/socksify/libsocksify.so && -f $STAGE/usr/local/bin/socksify ]] ||
		fail "not under /usr/local:" "$(files_under "$STAGE")"
	grep -qx '_sfy_installed_lib="/usr/local/lib/socksify/libsocksify.so"' "$STAGE/usr/local/bin/socksify"
}

@test "the wrapper in DESTDIR runs a program through the proxy" {
	mk install DESTDIR="$STAGE" PREFIX=/usr
	run "$STAGE/usr/bin/socksify" env
	expect_status 0
	expect_contains "$STAGE/usr/lib/socksify/libsocksify.so"
	run run_isolated "$STAGE/usr/bin/socksify" -c "$CONF" "$TESTBIN/tcp_get" \
		web.test "$WEB_PORT" /from-destdir
	expect_status 0
	expect_contains "path=/from-destdir peer=127.0.0.2"
	wait_records 1
	expect_record host web.test
}

@test "a moved wrapper finds the library through the baked-in path" {
	local prefix=$BATS_TEST_TMPDIR/prefix elsewhere=$BATS_TEST_TMPDIR/elsewhere
	mk install PREFIX="$prefix"
	mkdir -p "$elsewhere"
	cp "$prefix/bin/socksify" "$elsewhere/socksify"
	run "$elsewhere/socksify" env
	expect_status 0
	expect_contains "$prefix/lib/socksify/libsocksify.so"
	run run_isolated "$elsewhere/socksify" -c "$CONF" "$TESTBIN/tcp_get" \
		web.test "$WEB_PORT" /baked
	expect_status 0
	expect_contains "path=/baked peer=127.0.0.2"
}

@test "the installed --check finds socksify-check next to the library" {
	mk install DESTDIR="$STAGE" PREFIX=/usr
	run run_isolated "$STAGE/usr/bin/socksify" -c "$CONF" --check web.test:"$WEB_PORT"
	expect_status 0
	expect_contains "config: $CONF"
	expect_contains "CONNECT   ok"
	expect_line "result: OK"
}

@test "man -l renders both installed pages without warnings" {
	mk install DESTDIR="$STAGE" PREFIX=/usr
	local page err
	for page in man1/socksify.1 man5/socksify.conf.5; do
		page=$STAGE/usr/share/man/$page
		err=$(groff -ww -man -z "$page" 2>&1) || fail "groff failed on $page" "$err"
		[[ -z $err ]] || fail "groff warnings for $page:" "$err"
		run env MANWIDTH=80 man --warnings -l -P cat "$page"
		expect_status 0
		[[ $output != *warning* && $output != *"can't"* ]] || fail "man -l on $page:" "$output"
	done
	run env MANWIDTH=80 man -l -P cat "$STAGE/usr/share/man/man1/socksify.1"
	expect_contains "socksify - run a program with its TCP connections"
	expect_contains "ECONNREFUSED"
	expect_contains "BIND (ACTIVE-MODE FTP)"
	run env MANWIDTH=80 man -l -P cat "$STAGE/usr/share/man/man5/socksify.conf.5"
	expect_contains "handshake_timeout = seconds"
}

@test "make uninstall removes everything install put there" {
	mk install DESTDIR="$STAGE" PREFIX=/usr
	run mk uninstall DESTDIR="$STAGE" PREFIX=/usr
	expect_status 0
	run files_under "$STAGE"
	[[ -z $output ]] || fail "left behind:" "$output"
	[[ ! -e $STAGE/usr/lib/socksify && ! -e $STAGE/usr/share/doc/socksify ]] ||
		fail "package directories left behind"
}

@test "make install-conf installs /etc/socksify.conf once and never overwrites it" {
	run mk install-conf DESTDIR="$STAGE"
	expect_status 0
	cmp "$ROOT/socksify.conf.example" "$STAGE/etc/socksify.conf"
	echo "proxy = socks5h://10.0.0.1:1080" >"$STAGE/etc/socksify.conf"
	run mk install-conf DESTDIR="$STAGE"
	expect_status 0
	expect_contains "exists; left as it is"
	[[ $(<"$STAGE/etc/socksify.conf") == "proxy = socks5h://10.0.0.1:1080" ]] ||
		fail "install-conf overwrote the admin's file"
	mk uninstall DESTDIR="$STAGE"
	[[ -f $STAGE/etc/socksify.conf ]] || fail "uninstall removed the config"
}
