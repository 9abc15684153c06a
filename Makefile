# acbill: nightly Teams Audio Conferencing billing job.
#
#   make            check dependencies (installing missing Debian packages),
#                   then build bin/acbill
#   make test       build and run every test suite (unit, PostgreSQL,
#                   workbooks, upload); one line per suite, then a total
#   make demo       end-to-end run on a throwaway PostgreSQL with sample data
#   make asan       build and run the tests under Address/UB sanitizers
#   make valgrind   run the unit and database suites under valgrind
#   make bench      benchmark (see docs/performance.md)
#   make conformance  e-invoices of every kind (the tests' fixtures and the
#                   demo's) against the EN 16931 and Peppol BIS 3 rules
#                   (needs the validator, EINVOICE_VALIDATE)
#   make install    install binary, man page, SQL, cron wrapper (PREFIX,
#                   DESTDIR)
#   make V=1        show the commands
#
# The only set-up a fresh machine needs is this Makefile: `deps` installs
# the Debian packages below when they are missing (as root, or via sudo).

VERSION  := 0.1.0
PREFIX   ?= /usr/local
# The job's user and its state folder (the cron wrapper's lock).
ACBILL_USER ?= acbill
STATE_DIR   ?= /var/lib/acbill
DESTDIR  ?=
BUILD    ?= build
BIN      ?= bin
CC       ?= cc
OPT      ?= -O2 -g
SAN      ?=

DEB_PKGS := gcc make pkg-config libpq-dev libxlsxwriter-dev \
            libcurl4-openssl-dev libssl-dev libcunit1-dev postgresql postgresql-common \
            nginx-light openssl ca-certificates python3 python3-openpyxl \
            python3-phonenumbers python3-rstr util-linux bsdutils procps \
            time man-db groff-base libzip-dev libcsv-dev libjansson-dev \
            zlib1g-dev libcairo2-dev libpango1.0-dev libxml2-dev \
            fonts-noto-core fonts-noto-cjk fonts-dejavu-core poppler-utils

PKGS     := libpq xlsxwriter libcurl libcrypto libzip jansson zlib cairo \
            pangocairo fontconfig libxml-2.0
# libcsv (RFC 4180 CSV, the PSTN export) ships no pkg-config file.
LIBS_EXTRA := -lcsv
CFLAGS   += -std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L \
            -Wno-format-truncation -D_DEFAULT_SOURCE $(OPT) $(SAN) \
            -DACBILL_VERSION='"$(VERSION)"' \
            -DACBILL_SQL_DIR='"$(SQL_DIR_DEFAULT)"' \
            -Ijob -Ireports
SQL_DIR_DEFAULT ?= $(CURDIR)/sql
LDFLAGS  += $(SAN)

Q := @
ifeq ($(V),1)
Q :=
endif

JOB_SRC  := $(filter-out job/main.c,$(wildcard job/*.c job/*/*.c)) $(wildcard reports/*.c)
JOB_OBJ  := $(JOB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(filter-out tests/testmain.c tests/testdb.c,$(wildcard tests/*_test.c))
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
DEPS_OK  := $(BUILD)/.deps-ok

.PHONY: all deps test asan valgrind demo bench install clean seed san-unit \
        conformance
# Keep the test objects: no "rm" after the test summary.
.SECONDARY:

all: $(BIN)/acbill

# ------------------------------------------------------------------ deps
# A stamp keeps the check to once per package list; `make deps` forces it.
$(DEPS_OK): Makefile
	$(Q)mkdir -p $(BUILD)
	$(Q)missing=""; for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	        | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "deps: installing$$missing"; \
	    if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi; \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -qq --no-install-recommends $$missing \
	        >/dev/null || { echo "deps: apt-get install failed" >&2; exit 1; }; \
	fi
	$(Q)touch $@

deps:
	$(Q)rm -f $(DEPS_OK)
	$(Q)$(MAKE) --no-print-directory $(DEPS_OK)

# ------------------------------------------------------------------ build
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS)) $(LIBS_EXTRA) -lm

$(BUILD)/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libacbill.a: $(JOB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN)/acbill: $(BUILD)/job/main.o $(BUILD)/libacbill.a
	@mkdir -p $(BIN)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# ------------------------------------------------------------------ tests
$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/tests/testmain.o \
                  $(BUILD)/tests/testdb.o $(BUILD)/libacbill.a
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lcunit

$(BUILD)/tests/%.o: CFLAGS += -Itests

# The unit suite (rating, money, hostile values) also runs built with
# AddressSanitizer and UndefinedBehaviorSanitizer on every `make test`.
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=all
SAN_UNIT  := build-san/tests/unit_test

san-unit:
	$(Q)$(MAKE) --no-print-directory BUILD=build-san BIN=build-san/bin \
	    OPT="-O1 -g" SAN="$(SAN_FLAGS)" $(SAN_UNIT)

# tests/destinations_check.py: the destination table as `acbill migrate`
# loads it, against numbers sampled from libphonenumber (Debian's package).
# tests/tracked_files_check.sh: no tracked file but .ci/run and this one
# names the shared folder outside the project.
test: $(BIN)/acbill $(TESTS) san-unit
	$(Q)ACBILL=$(CURDIR)/$(BIN)/acbill tests/run.sh $(TESTS) $(SAN_UNIT) \
	    tests/destinations_check.py tests/tracked_files_check.sh

asan:
	$(Q)ASAN_OPTIONS=detect_leaks=1 $(MAKE) --no-print-directory \
	    BUILD=build-asan BIN=build-asan/bin OPT="-O1 -g" \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    test

valgrind: $(BIN)/acbill $(TESTS)
	$(Q)ACBILL=$(CURDIR)/$(BIN)/acbill TEST_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
	    tests/run.sh $(TESTS)

demo: $(BIN)/acbill
	$(Q)ACBILL=$(CURDIR)/$(BIN)/acbill cron/demo.sh

# The e-invoices of every kind (written from the tests' fixtures by
# tests/conformance.sh) against the EN 16931 and Peppol BIS Billing 3.0
# rules.  The validator is not part of acbill; CI has it beside the checkout.
EINVOICE_VALIDATE ?= ../shared/tools/einvoice-validate
# The demo's e-invoices too: it runs first (its output in ./demo, its log
# in $(BUILD)/conformance-demo.log).
conformance: $(BIN)/acbill
	$(Q)mkdir -p $(BUILD)
	$(Q)ACBILL=$(CURDIR)/$(BIN)/acbill cron/demo.sh \
	    > $(BUILD)/conformance-demo.log 2>&1 || { \
	    tail -n 20 $(BUILD)/conformance-demo.log; exit 1; }
	$(Q)ACBILL=$(CURDIR)/$(BIN)/acbill tests/conformance.sh \
	    $(EINVOICE_VALIDATE) demo/out

bench:
	$(Q)$(MAKE) --no-print-directory BUILD=build-bench BIN=build-bench/bin \
	    OPT="-O2 -DNDEBUG" build-bench/bin/acbill
	$(Q)ACBILL=$(CURDIR)/build-bench/bin/acbill tests/bench.sh

# `make seed` regenerates the committed seed files from sql/seed/.  Migration
# 002 is applied and stays as it is (sql/seed/gen-seed.sh still makes it from
# destinations_v1.csv, byte for byte; the destinations check compares).  The
# destination table comes from libphonenumber's metadata: the npm package
# pinned in sql/seed/package-lock.json, which needs node and npm (only here).
SEED_BUILD := $(BUILD)/seed
seed:
	$(Q)python3 sql/seed/gen-ref-v2.py > sql/migrations/006_reference_v2_seed.sql
	$(Q)python3 sql/seed/gen-ref-v3.py > sql/migrations/014_spec_v3_inputs.sql
	$(Q)command -v node >/dev/null && command -v npm >/dev/null || { \
	    if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi; \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
	$(Q)mkdir -p $(SEED_BUILD)
	$(Q)cp sql/seed/package.json sql/seed/package-lock.json $(SEED_BUILD)/
	$(Q)cd $(SEED_BUILD) && npm ci --ignore-scripts --no-audit --no-fund --silent
	$(Q)NODE_PATH=$(CURDIR)/$(SEED_BUILD)/node_modules \
	    node sql/seed/libphonenumber-metadata.js > $(SEED_BUILD)/libphonenumber-metadata.json
	$(Q)python3 sql/seed/gen-destinations.py $(SEED_BUILD)/libphonenumber-metadata.json

install: $(BIN)/acbill
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/acbill/sql/migrations \
	    $(DESTDIR)$(PREFIX)/lib/acbill $(DESTDIR)$(PREFIX)/share/acbill/examples \
	    $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(BIN)/acbill $(DESTDIR)$(PREFIX)/bin/acbill
	install -m 0644 docs/acbill.1 $(DESTDIR)$(PREFIX)/share/man/man1/acbill.1
	install -m 0644 sql/migrations/*.sql $(DESTDIR)$(PREFIX)/share/acbill/sql/migrations/
	install -m 0755 cron/acbill-cron.sh $(DESTDIR)$(PREFIX)/lib/acbill/acbill-cron.sh
	install -m 0644 cron/acbill.cron cron/acbill.default $(DESTDIR)$(PREFIX)/share/acbill/examples/
	@# The wrapper's lock lives where only the job's user can create it.
	install -d -m 0750 $(DESTDIR)$(STATE_DIR)
	@if id $(ACBILL_USER) >/dev/null 2>&1; then \
	    chown $(ACBILL_USER): $(DESTDIR)$(STATE_DIR); \
	else \
	    echo "install: no user $(ACBILL_USER) yet: chown it $(STATE_DIR) once it exists"; \
	fi

clean:
	rm -rf build build-asan build-bench build-san bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
