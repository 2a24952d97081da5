# Installation and the socksify-check diagnostic (issue 7); included by the
# Makefile.  PREFIX and DESTDIR follow the GNU conventions:
#   make install DESTDIR=/tmp/stage PREFIX=/usr
PREFIX     ?= /usr/local
DESTDIR    ?=
SYSCONFDIR ?= /etc
INSTALL    ?= install

SFY_LIBDIR := $(PREFIX)/lib/socksify
SFY_BINDIR := $(PREFIX)/bin
SFY_DOCDIR := $(PREFIX)/share/doc/socksify
SFY_MANDIR := $(PREFIX)/share/man
# socksify-check is a program, not part of the library: it reuses the
# pure modules so that what it reports is what the library would do.
CHECK_SRCS := shim/check.c shim/check_config.c shim/check_route.c shim/engine.c shim/engine_s4.c shim/engine_http.c shim/engine_gss.c shim/gss.c shim/codec_gss.c shim/chain.c sealed/probe.c shim/codec.c shim/config.c shim/config_chain.c shim/config_route.c shim/routes.c shim/rules.c shim/hosts.c shim/wire.c \
	shim/pool.c shim/session_obj.c
# Every file install lays down, relative to $(DESTDIR); uninstall removes
# exactly these.
SFY_FILES  := $(SFY_LIBDIR)/libsocksify.so $(SFY_LIBDIR)/socksify-check $(SFY_LIBDIR)/socksify-sealed \
	$(SFY_BINDIR)/socksify $(SFY_DOCDIR)/socksify.conf.example \
	$(SFY_MANDIR)/man1/socksify.1 $(SFY_MANDIR)/man5/socksify.conf.5

.PHONY: install uninstall install-conf
all: $(B)/socksify-check $(B)/asan/socksify-check

$(B)/socksify-check: $(CHECK_SRCS) $(HDRS) sealed/sealed.h
	@mkdir -p $(@D)
	$(CC) $(BASE) -Isealed $(CFLAGS) -o $@ $(CHECK_SRCS)

# Sits next to the sanitizer library, where the wrapper looks for it when
# the tests' ASan pass points SOCKSIFY_LIB there.
$(B)/asan/socksify-check: $(CHECK_SRCS) $(HDRS) sealed/sealed.h
	@mkdir -p $(@D)
	$(CC) $(BASE) -Isealed -O1 -g $(SAN) -o $@ $(CHECK_SRCS)

install: $(B)/libsocksify.so $(B)/socksify-check $(B)/socksify-sealed
	$(INSTALL) -d $(DESTDIR)$(SFY_LIBDIR) $(DESTDIR)$(SFY_BINDIR) $(DESTDIR)$(SFY_DOCDIR) \
		$(DESTDIR)$(SFY_MANDIR)/man1 $(DESTDIR)$(SFY_MANDIR)/man5
	$(INSTALL) -m 0644 $(B)/libsocksify.so $(DESTDIR)$(SFY_LIBDIR)/libsocksify.so
	$(INSTALL) -m 0755 $(B)/socksify-check $(DESTDIR)$(SFY_LIBDIR)/socksify-check
	$(INSTALL) -m 0755 $(B)/socksify-sealed $(DESTDIR)$(SFY_LIBDIR)/socksify-sealed
	# The wrapper gets the library's final path (without DESTDIR) baked in.
	sed 's|^_sfy_installed_lib=""$$|_sfy_installed_lib="$(SFY_LIBDIR)/libsocksify.so"|' \
		scripts/socksify >$(B)/socksify.installed
	grep -q '^_sfy_installed_lib="$(SFY_LIBDIR)/libsocksify.so"$$' $(B)/socksify.installed
	$(INSTALL) -m 0755 $(B)/socksify.installed $(DESTDIR)$(SFY_BINDIR)/socksify
	$(INSTALL) -m 0644 socksify.conf.example $(DESTDIR)$(SFY_DOCDIR)/socksify.conf.example
	$(INSTALL) -m 0644 scripts/man/socksify.1 $(DESTDIR)$(SFY_MANDIR)/man1/socksify.1
	$(INSTALL) -m 0644 scripts/man/socksify.conf.5 $(DESTDIR)$(SFY_MANDIR)/man5/socksify.conf.5

# The system-wide config, from the example.  Never overwrites one that
# exists: it may hold the admin's proxy and password.
install-conf:
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/socksify.conf ]; then \
		echo "$(DESTDIR)$(SYSCONFDIR)/socksify.conf exists; left as it is"; \
	else \
		$(INSTALL) -d $(DESTDIR)$(SYSCONFDIR) && \
		$(INSTALL) -m 0644 socksify.conf.example $(DESTDIR)$(SYSCONFDIR)/socksify.conf && \
		echo "installed $(DESTDIR)$(SYSCONFDIR)/socksify.conf"; \
	fi

# Removes what install put there, and the package's own directories when
# they are empty; never the config in $(SYSCONFDIR), which holds user data.
uninstall:
	rm -f $(addprefix $(DESTDIR),$(SFY_FILES))
	-rmdir $(DESTDIR)$(SFY_LIBDIR) $(DESTDIR)$(SFY_DOCDIR) 2>/dev/null
