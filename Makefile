# Non-recursive Makefile for the mgmt suite.
#   make            build the three programs into $(B)/ (default build/)
#   make check      ASan+UBSan build, unit then integration tests, one summary line
#   make deps       install missing Debian packages (scripts/deps.sh)
#   make demo       run a real local cluster (scripts/demo.sh)
#   make install    PREFIX=/usr/local DESTDIR=
#   make bench      benchmarks with real processes (bench/run.sh)
#   make soak       a million schedules of the membership simulation
#   make chaos      four minutes of faults and resizes against real etcd
# Helpers building in parallel use B=/some/dir so object files never collide.

B ?= build
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
VERSION := 0.1.0

PKGS := libcurl jansson yaml-0.1 libsystemd libbsd libcrypto libmicrohttpd
CC ?= cc
WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
        -Wno-unused-parameter
CFLAGS ?= -O2 -g
SAN ?=
ifneq ($(SAN),)
SANFLAGS := -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
ALL_CFLAGS = -std=gnu17 $(WARN) $(CFLAGS) $(SANFLAGS) -D_GNU_SOURCE -DMGMT_VERSION=\"$(VERSION)\" \
        -Ilib -I$(B)/gen $(shell pkg-config --cflags $(PKGS))
LIBS = $(shell pkg-config --libs $(PKGS)) -lm
ALL_LDFLAGS = $(LDFLAGS) $(SANFLAGS)

LIB_SRC := $(wildcard lib/*.c)
SUP_SRC := $(wildcard supervisor/*.c)
AGENT_SRC := $(wildcard agent/*.c)
DEPLOY_SRC := $(wildcard deployer/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
TOOL_SRC := $(wildcard tests/tools/*.c)

obj = $(patsubst %.c,$(B)/%.o,$(1))
# program sources other than main.c also go into the unit tests; the
# supervisor's subcommands (cmd_*.c) stay out: their names clash with mgmt-deploy's
SUP_LIBOBJ := $(call obj,$(filter-out supervisor/main.c supervisor/cmd_%.c,$(SUP_SRC)))
AGENT_LIBOBJ := $(call obj,$(filter-out agent/main.c,$(AGENT_SRC)))
DEPLOY_LIBOBJ := $(call obj,$(filter-out deployer/main.c,$(DEPLOY_SRC)))

PROGS := $(B)/mgmt-supervisor $(B)/mgmt-agent $(B)/mgmt-deploy
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
TOOL_BINS := $(patsubst tests/tools/%.c,$(B)/tools/%,$(TOOL_SRC))

.PHONY: all check soak chaos unit-bins deps demo install bench clean format format-check
all: $(PROGS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# the status page, embedded as a C string (generated into the build dir only)
$(B)/gen/status_html.h: supervisor/status.html
	@mkdir -p $(dir $@)
	{ echo '/* generated from supervisor/status.html by the Makefile */'; \
	  echo 'static const char status_html[] ='; \
	  sed 's/\\/\\\\/g; s/"/\\"/g; s/^/"/; s/$$/\\n"/' $<; echo ';'; } > $@.tmp && mv $@.tmp $@
$(B)/supervisor/metrics.o: $(B)/gen/status_html.h

$(B)/libmgmt.a: $(call obj,$(LIB_SRC))
	@rm -f $@
	ar rcs $@ $^

$(B)/mgmt-supervisor: $(call obj,$(SUP_SRC)) $(B)/libmgmt.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
$(B)/mgmt-agent: $(call obj,$(AGENT_SRC)) $(B)/libmgmt.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
$(B)/mgmt-deploy: $(call obj,$(DEPLOY_SRC)) $(B)/libmgmt.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(B)/tests/%: $(B)/tests/unit/%.o $(SUP_LIBOBJ) $(AGENT_LIBOBJ) $(DEPLOY_LIBOBJ) $(B)/libmgmt.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(shell pkg-config --libs check)

$(B)/tests/unit/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isupervisor -Iagent -Ideployer $(shell pkg-config --cflags check) -MMD -MP -c -o $@ $<

# the membership simulation: the real coordinator and role function
$(B)/tests/membership-sim: $(B)/tests/sim/sim.o $(SUP_LIBOBJ) $(B)/libmgmt.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(B)/tests/sim/%.o: tests/sim/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isupervisor -MMD -MP -c -o $@ $<

# small drivers of lib/ used by the integration tests
$(B)/tools/%: $(B)/tests/tools/%.o $(B)/libmgmt.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

unit-bins: $(UNIT_BINS) $(TOOL_BINS) $(B)/tests/membership-sim

# a long run of the membership simulation
soak: $(B)/tests/membership-sim
	$(B)/tests/membership-sim 1000000

# four minutes of chaos against real etcd (make check runs 40 s of it)
chaos: all
	MGMT_BIN=$(abspath $(B)) CHAOS_SECONDS=$${CHAOS_SECONDS:-240} bats --tap tests/integration/chaos.bats

# make check: everything under ASan+UBSan in build-san/
check: deps
	@scripts/check.sh

deps:
	@scripts/deps.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

# the plot needs gnuplot, which only the benchmark uses
bench:
	@MGMT_EXTRA_PKGS=gnuplot-nox scripts/deps.sh
	@$(MAKE) --no-print-directory all $(B)/tools/etcd-probe
	@bench/run.sh

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/share/mgmt/examples \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 0755 $(B)/mgmt-supervisor $(B)/mgmt-agent $(DESTDIR)$(SBINDIR)/
	install -m 0755 $(B)/mgmt-deploy $(DESTDIR)$(BINDIR)/
	for s in 1 5 8; do for f in docs/*.$$s; do [ -e "$$f" ] || continue; \
		sed 's|@PREFIX@|$(PREFIX)|g; s|@SBINDIR@|$(SBINDIR)|g; s|@BINDIR@|$(BINDIR)|g' "$$f" \
			> $(DESTDIR)$(MANDIR)/man$$s/$$(basename $$f) && chmod 0644 $(DESTDIR)$(MANDIR)/man$$s/$$(basename $$f); \
		done; done
	for f in units/*.service; do [ -e "$$f" ] && sed 's|@SBINDIR@|$(SBINDIR)|g; s|@BINDIR@|$(BINDIR)|g' "$$f" \
		> $(DESTDIR)$(UNITDIR)/$$(basename $$f) || true; done
	for f in units/*.env examples/*.yaml; do [ -e "$$f" ] && install -m 0644 "$$f" \
		$(DESTDIR)$(PREFIX)/share/mgmt/examples/ || true; done
	for f in scripts/completion/*; do [ -e "$$f" ] && install -m 0644 "$$f" \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/ || true; done

# the C sources one .clang-format governs
FORMAT_SRC = $(wildcard lib/*.[ch] supervisor/*.[ch] agent/*.[ch] deployer/*.[ch] tests/unit/*.[ch] tests/sim/*.[ch])

format:
	clang-format -i $(FORMAT_SRC)

# fails (and names each file and line) when a source differs from .clang-format
format-check:
	clang-format --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf build build-san

-include $(shell find $(B) -name '*.d' 2>/dev/null)
