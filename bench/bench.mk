# bench/bench.mk — benchmarks (issue 6); included by the Makefile.
#   make bench                 full run (several minutes)
#   make bench BENCH_QUICK=1   quick run (under ~2 minutes)
#   make bench BENCH_README=1  also put the table into bench/README.md
#   make bench-sealed          sealed mode's cost (bench/sealed.py, issue 17)
#   make bench-chain           cost per extra hop of a chain (bench/chain.py, issue 14)
#   make bench-gssapi          GSSAPI protection against plain SOCKS5 (bench/gssapi.py, issue 15)
# Not part of `make test`.  Needs root (private network namespace, apt-get).
BENCH_PKGS := proxychains4 tsocks torsocks dante-client dante-server curl \
	strace valgrind time python3 iproute2 hyperfine
BENCH_BINS := $(B)/bench/connbench $(B)/bench/srv $(B)/bench/spawn $(B)/bench/lookup $(B)/bench/udpbench \
	$(B)/bench/libempty.so

.PHONY: bench bench-deps bench-sealed bench-chain bench-gssapi
$(B)/bench/libempty.so: bench/empty.c
	@mkdir -p $(@D)
	$(CC) $(WARN) -O2 -fPIC -shared -o $@ $<

$(B)/bench/%: bench/%.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -D_GNU_SOURCE $(WARN) -O2 -g -o $@ $<

bench-deps:
	@missing=; for p in $(BENCH_PKGS); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "bench: installing$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

bench: bench-deps $(B)/libsocksify.so $(BENCH_BINS)
	BENCH_QUICK=$(BENCH_QUICK) sh bench/run.sh
	@if [ -n "$(BENCH_README)" ]; then python3 bench/splice.py; fi

# What sealed mode costs (issue 17): bench/sealed.py, on its own (it builds
# the test clients of tests/sealed/ itself).  `all` builds the launcher too.
bench-sealed: bench-deps all $(B)/bench/connbench $(B)/bench/srv $(B)/bench/spawn
	BENCH_QUICK=$(BENCH_QUICK) python3 bench/sealed.py

# What each extra hop of a proxy chain costs (issue 14): bench/chain.py, 1, 2
# and 3 danted hops on loopback, socksify against proxychains4 strict_chain.
bench-chain: bench-deps $(B)/libsocksify.so $(B)/bench/connbench $(B)/bench/srv
	BENCH_QUICK=$(BENCH_QUICK) python3 bench/chain.py

# What GSSAPI protection costs (issue 15): bench/gssapi.py, a private KDC, the
# RFC 1961 test server and 64 MiB each way.  Needs the Kerberos packages of
# scripts/install-deps.sh (krb5-kdc, krb5-admin-server, krb5-user, python3-gssapi).
bench-gssapi: bench-deps $(B)/libsocksify.so
	BENCH_QUICK=$(BENCH_QUICK) /usr/bin/python3 bench/gssapi.py
