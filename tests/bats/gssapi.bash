# shellcheck shell=bash
# GSSAPI (RFC 1961) test helpers: a private Kerberos realm, the RFC 1961
# test server (tests/servers/socks5_gssapi.py) and a bulk-data destination.
# Source after helpers.bash:  load helpers; load gssapi
#
#   start_kdc            realm SOCKSIFY.TEST in $(scope_dir)/krb (call it
#                        from setup_file for the whole file), KDC on
#                        127.0.0.1:KDC_PORT; exports KRB5_CONFIG,
#                        KRB5_KDC_PROFILE, KRB5CCNAME, KRB5_KTNAME,
#                        KRB5RCACHEDIR, KRB_DIR, KDC_PORT
#   kinit_user [LIFE] [CCACHE]   alice's TGT (default lifetime 10h, default
#                        cache $KRB5CCNAME), password on stdin
#   kinit_expired CCACHE         a TGT that lives 1 s (the shortest MIT
#                        kinit asks for and the KDC grants), in CCACHE
#   wait_expired CCACHE          until that ticket is expired for the KDC
#   start_gss_server [ARGS]      socks5_gssapi.py on 127.0.0.1; sets GSS_PORT
#                        and GSS_RECORD (outbound from 127.0.0.2, web.test
#                        -> 127.0.0.3, BIND listeners on 127.0.0.2)
#   start_bulk                   bulk.py destination on 127.0.0.3; sets
#                        BULK_PORT and BULK_LOG
#   gss_wait_records N / gss_expect KEY VALUE [INDEX] / gss_get INDEX KEY
#   bulk_expect KEY VALUE        the bulk destination's last record
#   gss_check_truncation OUTPUT FAIL_RE   attempts against truncate --each
#
# Principals: alice (password KRB_PASS), rcmd/localhost and rcmd/127.0.0.1
# (both in the server's keytab), other/localhost (known to the KDC, not in
# the keytab: a wrong service).  No DNS query leaves: the KDC is given by
# address, and every DNS-using option of libkrb5 is off.
# shellcheck disable=SC2034

KRB_REALM=SOCKSIFY.TEST
KRB_USER=alice
KRB_PASS=alice-s3cret
KRB_MASTER=socksify-master-key

start_kdc() {
	local dir
	dir=$(scope_dir)/krb
	mkdir -p "$dir" || return 1
	KDC_PORT=$(free_port) || return 1
	export KRB_DIR=$dir KDC_PORT
	write_krb5_conf "$dir/krb5.conf" || return 1
	write_kdc_conf "$dir/kdc.conf" || return 1
	export KRB5_CONFIG=$dir/krb5.conf KRB5_KDC_PROFILE=$dir/kdc.conf
	export KRB5CCNAME=FILE:$dir/ccache KRB5_KTNAME=FILE:$dir/keytab
	export KRB5RCACHEDIR=$dir   # the acceptor's replay cache, not /var/tmp
	kdb5_util create -s -r "$KRB_REALM" -P "$KRB_MASTER" >"$dir/kdb5_util.out" 2>&1 ||
		fail "kdb5_util create failed:" "$(cat "$dir/kdb5_util.out")" || return 1
	kadmin_q "addprinc -pw $KRB_PASS $KRB_USER" || return 1
	local p
	for p in rcmd/localhost rcmd/127.0.0.1 other/localhost; do
		kadmin_q "addprinc -randkey $p" || return 1
	done
	kadmin_q "ktadd -k $dir/keytab rcmd/localhost rcmd/127.0.0.1" || return 1
	spawn kdc krb5kdc -n -P "$dir/kdc.pid"
	wait_listen "$KDC_PORT" "$SPAWNED_PID" || return 1
	# It answers: a TGT for alice (tests kdestroy it when they need none).
	kinit_user
}

# kadmin_q QUERY: kadmin.local exits 0 even when a query fails.
kadmin_q() {
	if ! kadmin.local -r "$KRB_REALM" -q "$1" >"$KRB_DIR/kadmin.out" 2>&1 ||
		grep -qi 'error\|not found\|failed' "$KRB_DIR/kadmin.out"; then
		fail "kadmin.local -q '$1' failed:" "$(cat "$KRB_DIR/kadmin.out")"
		return 1
	fi
}

write_krb5_conf() {
	cat >"$1" <<EOF
[libdefaults]
	default_realm = $KRB_REALM
	dns_lookup_kdc = false
	dns_lookup_realm = false
	dns_canonicalize_hostname = false
	dns_uri_lookup = false
	rdns = false
	qualify_shortname = ""
	udp_preference_limit = 1
	forwardable = false
	default_ccache_name = FILE:$KRB_DIR/ccache
[realms]
	$KRB_REALM = {
		kdc = 127.0.0.1:$KDC_PORT
		admin_server = 127.0.0.1:1
	}
[domain_realm]
	localhost = $KRB_REALM
	127.0.0.1 = $KRB_REALM
EOF
}

write_kdc_conf() {
	cat >"$1" <<EOF
[kdcdefaults]
	kdc_listen = 127.0.0.1:$KDC_PORT
	kdc_tcp_listen = 127.0.0.1:$KDC_PORT
[realms]
	$KRB_REALM = {
		database_name = $KRB_DIR/principal
		key_stash_file = $KRB_DIR/stash
		acl_file = $KRB_DIR/kadm5.acl
		max_life = 10h
		max_renewable_life = 0
		supported_enctypes = aes256-cts-hmac-sha1-96:normal
	}
[logging]
	kdc = FILE:$KRB_DIR/kdc.log
EOF
}

# kinit_user [LIFETIME] [CCACHE]
kinit_user() {
	local life=${1:-10h} cc=${2:-$KRB5CCNAME}
	echo "$KRB_PASS" | kinit -c "$cc" -l "$life" "$KRB_USER" >"$KRB_DIR/kinit.out" 2>&1 ||
		fail "kinit failed:" "$(cat "$KRB_DIR/kinit.out")"
}

# kinit_expired CCACHE: MIT kinit takes "-l 1s" and the KDC grants it (the
# ticket's end time is its start, in whole seconds, plus 1).  Make it in
# setup_file and it has long expired when a test uses it: wait_expired
# then returns at once.
kinit_expired() {
	kinit_user 1s "$1"
}

# wait_expired CCACHE: until klist no longer calls the ticket valid, and
# then one more second: the KDC compares end times in whole seconds and
# still honours a ticket during its last one (measured: a ticket ending at
# :54 was accepted at :54.6 and refused at :56).
wait_expired() {
	local i
	for ((i = 0; i < 50; i++)); do
		klist -s -c "$1" || break
		sleep 0.1
	done
	! klist -s -c "$1" || fail "the ticket in $1 does not expire" || return 1
	sleep 1.1
}

# start_gss_server [ARGS...]: sets GSS_PORT and GSS_RECORD (one JSON line per
# connection, written when the connection ends: see socks5_gssapi.py).
start_gss_server() {
	local dir n
	dir=$(scope_dir)
	n=0
	while [[ -e $dir/gss$n.jsonl ]]; do n=$((n + 1)); done
	export GSS_RECORD="$dir/gss$n.jsonl"
	: >"$GSS_RECORD"
	spawn "gss$n" "$PY" "$SERVERS/socks5_gssapi.py" \
		--listen 127.0.0.1:0 --port-file "$dir/gss$n.port" \
		--record "$GSS_RECORD" --bind-out 127.0.0.2 \
		--map web.test=127.0.0.3 "$@"
	wait_file "$dir/gss$n.port" "$SPAWNED_PID" || return 1
	GSS_PORT=$(<"$dir/gss$n.port")
	export GSS_PORT
}

# start_bulk: the bulk destination (tests/servers/bulk.py) on 127.0.0.3.
start_bulk() {
	local dir
	dir=$(scope_dir)
	export BULK_LOG="$dir/bulk.jsonl"
	: >"$BULK_LOG"
	spawn bulk "$PY" "$SERVERS/bulk.py" serve --listen 127.0.0.3:0 \
		--port-file "$dir/bulk.port" --log "$BULK_LOG"
	wait_file "$dir/bulk.port" "$SPAWNED_PID" || return 1
	BULK_PORT=$(<"$dir/bulk.port")
	export BULK_PORT
}

# gss_wait_records N: until the GSS server wrote N records (one per ended
# connection).
gss_wait_records() {
	TS_RECORD=$GSS_RECORD wait_records "$1"
}

# gss_get INDEX KEY: a field of the INDEX-th record (-1: the last).
gss_get() {
	TS_RECORD=$GSS_RECORD record_get "$1" "$2"
}

# gss_expect KEY VALUE [INDEX]: waits for at least one record first.
gss_expect() {
	gss_wait_records 1 || return 1
	TS_RECORD=$GSS_RECORD expect_record "$@"
}

# bulk_expect KEY VALUE: the last record of the bulk destination.
bulk_expect() {
	local i
	for ((i = 0; i < WAIT_SECS * 20; i++)); do
		[[ -s $BULK_LOG ]] && break
		sleep 0.05
	done
	TS_RECORD=$BULK_LOG expect_record "$@"
}

# gss_check_truncation OUTPUT FAIL_RE: OUTPUT has one "attempt=I RESULT"
# line per connection made against "--mode truncate --each" (attempt I
# got the first I octets of the server's handshake); $GSS_RECORD has the
# server's side.  Every attempt the server really cut (its record says
# "truncated") must have a RESULT matching the regex FAIL_RE, every other
# must start with "ok".  Prints "attempts=N cut=M" and each mismatch.
gss_check_truncation() {
	"$PY" - "$1" "$GSS_RECORD" "$2" <<'PYEOF'
import json, re, sys
out, rec_path, fail_re = sys.argv[1:4]
attempts = dict(re.findall(r"^attempt=(\d+) (.*)$", out, re.M))
records = {r["truncate"]: r for r in map(json.loads, open(rec_path))
           if "truncate" in r}
bad, cut = [], 0
for n, result in sorted(attempts.items(), key=lambda kv: int(kv[0])):
    r = records.get(int(n))
    if r is None:
        bad.append("no record for truncate=%s" % n)
    elif "truncated" in r.get("stopped", ""):
        cut += 1
        if not re.search(fail_re, result):
            bad.append("cut at %s: %s" % (n, result))
    elif not result.startswith("ok"):
        bad.append("whole handshake at %s: %s" % (n, result))
print("attempts=%d cut=%d" % (len(attempts), cut))
print("\n".join(bad))
sys.exit(1 if bad else 0)
PYEOF
}
