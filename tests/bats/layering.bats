#!/usr/bin/env bats
# Layering: the library never calls its own exported hooks.  Internal calls
# go to libc through the private layer (shim/sys.h, REAL()), so readelf
# shows no relocation against a symbol the library itself exports.  The
# checker is shown to catch a library that does call itself.

load helpers

# self_relocations SO: exported symbols of SO that SO also relocates
# against (a call through its own PLT, or its own GOT entry).
self_relocations() {
	comm -12 <(nm -D --defined-only "$1" | awk '{ print $3 }' | sort -u) \
		<(readelf -rW "$1" | awk '/JUMP_SLOT|GLOB_DAT/ && $5 !~ /@/ { print $5 }' | sort -u)
}

@test "no relocation against the library's own exports (release and sanitizer builds)" {
	local so own
	for so in "$BUILD/libsocksify.so" "$BUILD/asan/libsocksify.so"; do
		[[ -f $so ]] || fail "missing $so"
		own=$(self_relocations "$so")
		[[ -z $own ]] || fail "$so calls its own hooks through the PLT/GOT:" "$own"
	done
}

@test "the library exports the hooks the asynchronous handshake needs" {
	local sym
	for sym in poll ppoll __poll_chk select pselect epoll_wait epoll_pwait epoll_pwait2 epoll_ctl \
		read __read_chk write readv writev recv __recv_chk recvfrom __recvfrom_chk recvmsg send getsockopt; do
		nm -D --defined-only "$LIB" | awk '{ print $3 }' | grep -qx -- "$sym" || fail "$sym is not hooked"
	done
}

@test "the checker catches a library that calls its own export" {
	local dir=$BATS_TEST_TMPDIR
	cat >"$dir/self.c" <<'SRC'
#include <unistd.h>
__attribute__((visibility("default"))) int close(int fd) { return fd < 0 ? -1 : 0; }
__attribute__((visibility("default"))) int helper(int fd) { return close(fd); }
SRC
	cc -shared -fPIC -O1 -o "$dir/self.so" "$dir/self.c"
	run self_relocations "$dir/self.so"
	expect_status 0
	[[ $output == *close* ]] || fail "a self-call to close() was not reported:" "$output"
}
