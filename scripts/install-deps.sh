#!/bin/sh
# Install what building and testing socksify needs, from Debian packages.
# Idempotent and quick when everything is present; needs root to install.
set -eu

# "check package" pairs: a command or file that shows the package is there.
need="
gcc:gcc
make:make
/usr/include/stdio.h:libc6-dev
/usr/include/cmocka.h:libcmocka-dev
/usr/lib/x86_64-linux-gnu/libasan.so.8:libasan8
danted:dante-server
microsocks:microsocks
bats:bats
curl:curl
wget:wget
ncat:ncat
/usr/bin/python3:python3
ip:iproute2
unshare:util-linux
pkill:procps
shellcheck:shellcheck
git:git
ssh:openssh-client
/usr/sbin/sshd:openssh-server
socat:socat
/usr/lib/python3/dist-packages/pyftpdlib:python3-pyftpdlib
inetutils-ftp:inetutils-ftp
lftp:lftp
groff:groff-base
man:man-db
clang:clang
dpkg:libclang-rt-14-dev
node:nodejs
strace:strace
/usr/sbin/nginx:nginx-light
openssl:openssl
chromium:chromium
firefox-esr:firefox-esr
certutil:libnss3-tools
dig:bind9-dnsutils
nslookup:bind9-dnsutils
host:bind9-host
setpriv:util-linux
go:golang-go
/usr/sbin/setcap:libcap2-bin
/usr/lib/x86_64-linux-gnu/libdsocksd.so.0:dante-client
/usr/lib/go/bin/go:golang-go
/usr/include/liburing.h:liburing-dev
tinyproxy:tinyproxy
proxychains4:proxychains4
/usr/sbin/krb5kdc:krb5-kdc
/usr/sbin/kdb5_util:krb5-kdc
/usr/sbin/kadmin.local:krb5-admin-server
kinit:krb5-user
/usr/lib/python3/dist-packages/gssapi:python3-gssapi
/usr/include/gssapi/gssapi.h:libkrb5-dev
"

missing=
for pair in $need; do
	check=${pair%%:*}
	pkg=${pair#*:}
	case $check in
	dpkg) dpkg -s "$pkg" >/dev/null 2>&1 && continue ;; # nothing simpler to look for
	/*) [ -e "$check" ] && continue ;;
	*) command -v "$check" >/dev/null 2>&1 && continue ;;
	esac
	# libasan's file name depends on the architecture and gcc version.
	if [ "$pkg" = libasan8 ] && gcc -print-file-name=libasan.so | grep -q /; then
		continue
	fi
	missing="$missing $pkg"
done

if [ -z "$missing" ]; then
	echo "install-deps: all dependencies present"
	exit 0
fi
echo "install-deps: installing:$missing"
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: not root; install these packages yourself:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
