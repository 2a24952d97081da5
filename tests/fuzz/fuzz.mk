# libFuzzer targets (tests/fuzz/fuzz_*.c) for the pure parts of the shim:
# the SOCKS5 decoders, the config and proxy-URL parsers, the CIDR parser
# and matcher, the domain matcher.  Included by the main Makefile.
#
#   make fuzz          each target for FUZZ_SECONDS (default 60)
#   make fuzz-smoke    each target for FUZZ_SMOKE_SECONDS (default 5),
#                      from the seed corpus only (part of make test)
#   make fuzz-build    only build them (build/fuzz/fuzz_NAME)
#
# Needs clang with the libFuzzer runtime: on Debian bookworm the packages
# clang (clang-14) and libclang-rt-14-dev.  `make fuzz` writes the inputs
# it finds to build/fuzz/corpus/NAME and builds on them the next time; the
# smoke run starts from the seed corpus (tests/fuzz/corpus/NAME, only
# read) alone each time, with a fresh working corpus it then removes.
# Crashes go to build/fuzz/artifacts/.  Output: one line per target,
# "fuzz_NAME  N passed, N failed  (EXECS execs)", then the total
# "fuzz: N passed, N failed" (see tests/fuzz/run.sh).

FUZZ_CC            ?= clang
FUZZ_SECONDS       ?= 60
FUZZ_SMOKE_SECONDS ?= 5
FUZZ_DIR           := $(B)/fuzz
FUZZ_NAMES         := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS          := $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_NAMES))
FUZZ_SRCS          := shim/codec.c shim/codec_gss.c shim/engine.c shim/engine_s4.c shim/engine_http.c shim/engine_gss.c tests/fuzz/gss_stub.c shim/config.c shim/config_chain.c shim/config_route.c shim/rules.c shim/hosts.c shim/dns.c
FUZZ_CFLAGS        := -std=gnu11 -D_GNU_SOURCE -Iinclude -Ishim -Wall -Wextra -Werror -g -O1 \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer

.PHONY: fuzz fuzz-smoke fuzz-build
fuzz-build: $(FUZZ_BINS)

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_SRCS) $(HDRS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRCS)

fuzz: fuzz-build
	sh tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_NAMES)

fuzz-smoke: fuzz-build
	sh tests/fuzz/run.sh --smoke $(FUZZ_SMOKE_SECONDS) $(FUZZ_NAMES)
