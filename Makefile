# socksify — build, test, demo.  `make test` is the one test command.
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror
BASE    := -std=gnu11 -D_GNU_SOURCE -Iinclude -Ishim $(WARN)
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LIBS    := -ldl -lpthread

B        := build
# shim/check*.c is the socksify --check tool, not part of the library.
LIB_SRCS := $(filter-out shim/check%.c,$(wildcard shim/*.c))
HDRS     := $(wildcard include/*.h shim/*.h)
# The config parser and what it needs (every program that reads the config).
CONFIG_SRCS := shim/config.c shim/config_chain.c shim/config_route.c shim/rules.c shim/hosts.c
# Pure modules the unit tests link directly (no hooks, no sockets).
PURE     := shim/engine.c shim/engine_s4.c shim/engine_http.c shim/engine_gss.c shim/gss.c shim/codec_gss.c shim/chain.c shim/codec.c shim/config.c shim/rules.c shim/pool.c \
	    shim/hosts.c shim/session_obj.c shim/dns.c shim/config_chain.c shim/config_route.c shim/routes.c
UNIT     := $(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/test_*.c))
TOOLS    := $(patsubst tests/c/%.c,$(B)/tests/%,$(wildcard tests/c/*.c))

.PHONY: all test unit demo clean deps check-shell
all: $(B)/libsocksify.so $(B)/asan/libsocksify.so

$(B)/libsocksify.so: $(LIB_SRCS) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(BASE) $(CFLAGS) -fPIC -fvisibility=hidden -DSFY_LIBRARY -shared -o $@ $(LIB_SRCS) $(LIBS)

# The sanitizer build the tests preload (after libasan; see README "Tests").
$(B)/asan/libsocksify.so: $(LIB_SRCS) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(BASE) -O1 -g $(SAN) -fPIC -fvisibility=hidden -DSFY_LIBRARY -shared -o $@ $(LIB_SRCS) $(LIBS)

# ThreadSanitizer build, for the thread stress test (preloaded after libtsan).
$(B)/tsan/libsocksify.so: $(LIB_SRCS) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(BASE) -O1 -g -fsanitize=thread -fPIC -fvisibility=hidden -DSFY_LIBRARY -shared -o $@ $(LIB_SRCS) $(LIBS)

$(B)/tests/test_%: tests/unit/test_%.c $(PURE) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(BASE) -DSFY_POOL_TEST_HOOK -O1 -g $(SAN) -o $@ $< $(PURE) -lcmocka -lpthread

$(B)/tests/%: tests/c/%.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -Iinclude $(WARN) -O1 -g -pthread -o $@ $<

# Dies holding a session pool's lock: links the pool with its test hook.
$(B)/tests/pool_kill: tests/c/pool_kill.c shim/pool.c shim/session_obj.c $(CONFIG_SRCS) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(BASE) -DSFY_POOL_TEST_HOOK -O1 -g -pthread -o $@ $< shim/pool.c shim/session_obj.c $(CONFIG_SRCS)

# The GSSAPI data relay (shim/relay.h) driven with a fake protection: the
# whole library linked in (its hooks as the program's own functions), with
# the sanitizers, so that leaks and races in the relay fail it.
$(B)/tests/relay_test: tests/c/relay_test.c tests/c/relay_util.h $(LIB_SRCS) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(BASE) -DSFY_LIBRARY -O1 -g $(SAN) -o $@ $< $(LIB_SRCS) $(LIBS)

deps:
	sh scripts/install-deps.sh

unit: $(UNIT)
	@for t in $(UNIT); do $$t || exit 1; done

test: deps
	$(MAKE) -j2 all $(B)/tsan/libsocksify.so $(UNIT) $(TOOLS)
	sh tests/run.sh

demo: deps all
	sh scripts/demo.sh

clean:
	rm -rf $(B)

# Fragments owned by their areas: installation (scripts/install.mk),
# fuzzing (tests/fuzz/fuzz.mk), benchmarks (bench/bench.mk), sealed mode
# (sealed/sealed.mk) and its test clients (tests/sealed/sealed_clients.mk).
-include scripts/install.mk
include sealed/sealed.mk
-include tests/fuzz/fuzz.mk
-include bench/bench.mk
-include tests/sealed/sealed_clients.mk
