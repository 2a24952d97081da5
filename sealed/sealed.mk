# socksify-sealed, the sealed-mode launcher and supervisor (issue 17);
# included by the Makefile.  A program, not part of the library: it reuses
# the pure modules so that it reads the configuration as the library does.
SEALED_SRCS      := $(wildcard sealed/*.c)
SEALED_SHIM_SRCS := shim/config.c shim/config_chain.c shim/config_route.c shim/routes.c shim/rules.c shim/hosts.c shim/log.c shim/codec.c \
	shim/engine.c shim/engine_s4.c shim/engine_http.c shim/engine_gss.c shim/gss.c shim/codec_gss.c shim/chain.c shim/wire.c \
	shim/pool.c shim/session_obj.c shim/session.c shim/names.c shim/dns.c shim/dns_answer.c shim/route.c
SEALED_HDRS      := $(wildcard sealed/*.h) $(HDRS)

all: $(B)/socksify-sealed $(B)/asan/socksify-sealed

$(B)/socksify-sealed: $(SEALED_SRCS) $(SEALED_SHIM_SRCS) $(SEALED_HDRS)
	@mkdir -p $(@D)
	$(CC) $(BASE) -Isealed $(CFLAGS) -o $@ $(SEALED_SRCS) $(SEALED_SHIM_SRCS) -lpthread

# Next to the sanitizer library, where the wrapper looks for it when the
# tests' ASan pass points SOCKSIFY_LIB there (as socksify-check).
$(B)/asan/socksify-sealed: $(SEALED_SRCS) $(SEALED_SHIM_SRCS) $(SEALED_HDRS)
	@mkdir -p $(@D)
	$(CC) $(BASE) -Isealed -O1 -g $(SAN) -o $@ $(SEALED_SRCS) $(SEALED_SHIM_SRCS) -lpthread

# The unit tests of the launcher's pure parts link them directly.
$(B)/tests/test_sealed: tests/unit/test_sealed.c sealed/decide.c sealed/inspect.c $(SEALED_HDRS)
	@mkdir -p $(@D)
	$(CC) $(BASE) -Isealed -O1 -g $(SAN) -o $@ $< sealed/decide.c sealed/inspect.c -lcmocka
