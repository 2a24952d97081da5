# tests/sealed/sealed_clients.mk — the sealed-mode test clients (issue 17);
# included by the Makefile.  The bats suites build them themselves (their
# setup_file runs the same script), so `make test` needs no rule here;
# `make sealed-clients` builds them by hand.  build.sh decides what is out
# of date (C sources, client.h, the Go module, build.sh itself).
.PHONY: sealed-clients
sealed-clients:
	sh tests/sealed/build.sh $(B)/tests/sealed
