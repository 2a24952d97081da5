#!/bin/sh
# tests/sealed/build.sh OUTDIR — build the sealed-mode test clients:
#   static_get   C, glibc -static (no PT_INTERP: the preload never loads)
#   uring_get    C, liburing (connect/send/recv as io_uring operations)
#   own_seccomp  C, installs its own seccomp filter first
#   goget        Go, CGO_ENABLED=0 (static, Go's own resolver)
# Idempotent: a client newer than its sources and this script is left
# alone.  Prints what it built and how long each took; on failure says
# which client and why, and exits non-zero.  The Go build uses the Debian
# golang-go toolchain offline (GOPROXY=off, no dependencies), with its
# cache under OUTDIR.  A cold build recompiles the parts of the standard
# library that CGO_ENABLED=0 changes (net, os/user: ~8 s on 2 cores); no
# -trimpath, which would recompile all of it (~25 s).
# Called by the sealed bats suites' setup_file and by bench/sealed.py.
set -eu

[ $# -eq 1 ] || { echo "usage: tests/sealed/build.sh OUTDIR" >&2; exit 64; }
src=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
# Two suites building at once would write the same .tmp files: one at a time.
exec 9>"$out/.lock"
flock -w 900 9 || { echo "tests/sealed/build.sh: $out is locked by another build" >&2; exit 1; }
CC=${CC:-cc}
cc_client() { "$CC" -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g "$@"; }

die() {
	echo "tests/sealed/build.sh: $*" >&2
	exit 1
}

now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# up_to_date TARGET SOURCE...: TARGET exists and is newer than every source.
up_to_date() {
	t=$1
	shift
	[ -x "$t" ] || return 1
	for s in "$@" "$src/build.sh"; do
		# find -newer: POSIX sh's test has no -nt
		[ -z "$(find "$s" -newer "$t")" ] || return 1
	done
	return 0
}

# build NAME SOURCES -- COMMAND...: run COMMAND (which writes $out/NAME.tmp)
# unless NAME is up to date; its output is shown only when it fails.
build() {
	name=$1
	shift
	deps=
	while [ "$1" != -- ]; do
		deps="$deps $1"
		shift
	done
	shift
	# shellcheck disable=SC2086
	if up_to_date "$out/$name" $deps; then
		echo "sealed clients: $name up to date"
		return 0
	fi
	t0=$(now)
	if ! "$@" >"$out/$name.log" 2>&1; then
		cat "$out/$name.log" >&2
		die "building $name failed (log above, also in $out/$name.log)"
	fi
	mv -f "$out/$name.tmp" "$out/$name"
	rm -f "$out/$name.log"
	echo "sealed clients: built $name in $(took "$t0") s"
}

[ -e /usr/include/liburing.h ] || die "liburing.h missing: apt-get install liburing-dev (scripts/install-deps.sh)"
GO=$(command -v go 2>/dev/null || true)
[ -n "$GO" ] || [ ! -x /usr/lib/go/bin/go ] || GO=/usr/lib/go/bin/go
[ -n "$GO" ] || die "go missing: apt-get install golang-go (scripts/install-deps.sh)"
command -v "$CC" >/dev/null || die "no C compiler ($CC)"

# Static glibc warns at link time that getaddrinfo will want the shared NSS
# modules at run time; that is this client's point, not a defect (the
# warning is a linker note, -Werror does not cover it).
build static_get "$src/static_get.c" "$src/client.h" -- \
	cc_client -static -o "$out/static_get.tmp" "$src/static_get.c"
build uring_get "$src/uring_get.c" "$src/client.h" -- \
	cc_client -o "$out/uring_get.tmp" "$src/uring_get.c" -luring
build own_seccomp "$src/own_seccomp.c" "$src/client.h" -- \
	cc_client -o "$out/own_seccomp.tmp" "$src/own_seccomp.c"

gobuild() {
	cd "$src/goget" &&
		env -u GOFLAGS GOENV=off GO111MODULE=on GOPROXY=off GOSUMDB=off GOTOOLCHAIN=local \
			GOCACHE="$out/go-cache" GOPATH="$out/go-path" GOMODCACHE="$out/go-path/mod" \
			CGO_ENABLED=0 "$GO" build -buildvcs=false -o "$out/goget.tmp" .
}
build goget "$src/goget/main.go" "$src/goget/go.mod" -- gobuild
