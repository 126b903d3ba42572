# tlsgate: GNU make, no autotools.
PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/sbin
MANDIR	?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR	?= $(PREFIX)/lib/systemd/system

PKGS	 = gnutls inih libsystemd
CC	?= cc
CFLAGS	?= -O2 -g
WARN	 = -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes \
	   -Wmissing-prototypes -Wpointer-arith -Wcast-qual -Werror
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) \
	   $(shell pkg-config --cflags $(PKGS))
LDLIBS	 = $(shell pkg-config --libs $(PKGS)) -lpthread

SRCS	 = proxy.c relay.c stage.c stats.c pp.c tls.c config.c log.c
LIBOBJS	 = relay.o stage.o stats.o pp.o tls.o config.o log.o
HDRS	 = relay.h stage.h stats.h pp.h tls.h config.h log.h

B	?= .
OBJS	 = $(SRCS:%.c=$(B)/%.o)

all: $(B)/tlsgate

$(B)/tlsgate: $(OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

$(B)/%.o: %.c $(HDRS)
	@mkdir -p $(B)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/config_test: test/unit/config_test.c $(LIBOBJS:%=$(B)/%)
	$(CC) $(ALL_CFLAGS) -I. -o $@ $^ $(LDLIBS)

HELPERS	 = $(patsubst test/helpers/%.c,$(B)/test/helpers/%,$(wildcard test/helpers/*.c))
$(B)/test/helpers/%: test/helpers/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< -lpthread

deps:
	@scripts/deps build

test-deps:
	@scripts/deps test

certs: demo/ca.pem
demo/ca.pem:
	scripts/mkcerts demo

run: deps
	@$(MAKE) --no-print-directory all certs
	./tlsgate -c routes.ini

check: all $(B)/config_test $(HELPERS)
	TLSGATE=$(abspath $(B)/tlsgate) HELPERS=$(abspath $(B)/test/helpers) \
	    CONFIG_TEST=$(abspath $(B)/config_test) test/run $(TESTS)

test: test-deps
	@$(MAKE) --no-print-directory check

tlsgate.service: dist/tlsgate.service.in
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    dist/tlsgate.service.in > $@

install: all tlsgate.service
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(SYSCONFDIR)/tlsgate \
	    $(DESTDIR)$(UNITDIR)
	install -m 755 tlsgate $(DESTDIR)$(BINDIR)/tlsgate
	install -m 644 tlsgate.8 $(DESTDIR)$(MANDIR)/man8/tlsgate.8
	install -m 644 tlsgate.ini.5 $(DESTDIR)$(MANDIR)/man5/tlsgate.ini.5
	install -m 644 dist/routes.ini.example \
	    $(DESTDIR)$(SYSCONFDIR)/tlsgate/routes.ini.example
	install -m 644 tlsgate.service $(DESTDIR)$(UNITDIR)/tlsgate.service

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/tlsgate $(DESTDIR)$(MANDIR)/man8/tlsgate.8 \
	    $(DESTDIR)$(MANDIR)/man5/tlsgate.ini.5 \
	    $(DESTDIR)$(SYSCONFDIR)/tlsgate/routes.ini.example \
	    $(DESTDIR)$(UNITDIR)/tlsgate.service
	-rmdir $(DESTDIR)$(SYSCONFDIR)/tlsgate 2>/dev/null

ASAN_CFLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -fno-sanitize-recover=all
ASAN_LDFLAGS = -fsanitize=address,undefined
TSAN_CFLAGS = -O1 -g -fsanitize=thread
TSAN_LDFLAGS = -fsanitize=thread

asan:
	$(MAKE) B=build-asan CFLAGS="$(ASAN_CFLAGS)" LDFLAGS="$(ASAN_LDFLAGS)" all

tsan:
	$(MAKE) B=build-tsan CFLAGS="$(TSAN_CFLAGS)" LDFLAGS="$(TSAN_LDFLAGS)" all

# The whole suite against a sanitizer build of tlsgate and the unit test
# (the helpers stay plain). test/run sets ASAN_OPTIONS, UBSAN_OPTIONS and
# TSAN_OPTIONS so that a report lands in the gateway's log and makes it
# exit 66; test/lib.sh fails the test on either.
check-asan: $(HELPERS)
	@$(MAKE) --no-print-directory B=build-asan CFLAGS="$(ASAN_CFLAGS)" \
	    LDFLAGS="$(ASAN_LDFLAGS)" all build-asan/config_test
	TLSGATE=$(abspath build-asan/tlsgate) HELPERS=$(abspath test/helpers) \
	    CONFIG_TEST=$(abspath build-asan/config_test) test/run $(TESTS)

check-tsan: $(HELPERS)
	@$(MAKE) --no-print-directory B=build-tsan CFLAGS="$(TSAN_CFLAGS)" \
	    LDFLAGS="$(TSAN_LDFLAGS)" all build-tsan/config_test
	TLSGATE=$(abspath build-tsan/tlsgate) HELPERS=$(abspath test/helpers) \
	    CONFIG_TEST=$(abspath build-tsan/config_test) test/run $(TESTS)

# libFuzzer targets (clang), each run for FUZZ_SECONDS.
FUZZ_SECONDS ?= 60
FUZZ_CC	 ?= clang
FUZZ_FLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -I. \
	   -fsanitize=fuzzer,address,undefined $(shell pkg-config --cflags $(PKGS))
FUZZERS	 = config addr pp
fuzz: $(FUZZERS:%=build-fuzz/%_fuzz)
	@for f in $(FUZZERS); do \
	    mkdir -p build-fuzz/corpus-$$f && \
	    echo "fuzz: $$f for $(FUZZ_SECONDS) s" && \
	    build-fuzz/$${f}_fuzz -max_total_time=$(FUZZ_SECONDS) \
	        -print_final_stats=1 -close_fd_mask=3 \
	        build-fuzz/corpus-$$f test/fuzz/$$f 2>&1 | \
	        grep -E '^(stat::number_of_executed_units|stat::new_units_added)|ERROR|SUMMARY' ; \
	    test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

# make fuzz, or a clean skip when $(FUZZ_CC) cannot build a libFuzzer
# target (CI: make check-fuzz FUZZ_SECONDS=20).
check-fuzz:
	@mkdir -p build-fuzz
	@if echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)' \
	    '{ (void)d; (void)n; return 0; }' | $(FUZZ_CC) -x c \
	    -fsanitize=fuzzer -o build-fuzz/probe - >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory fuzz; \
	else \
		echo "fuzz: skipped: $(FUZZ_CC) cannot build libFuzzer targets"; \
	fi

build-fuzz/%_fuzz: test/fuzz/%_fuzz.c config.c log.c tls.c pp.c $(HDRS)
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< config.c log.c tls.c pp.c $(LDLIBS)

clean:
	rm -rf tlsgate *.o config_test tlsgate.service build-asan build-tsan \
	    build-fuzz
	rm -f $(HELPERS)

SHELL	 = /bin/bash

.PHONY: fuzz all deps test-deps certs run check test asan tsan clean install \
	uninstall tlsgate.service check-asan check-tsan check-fuzz

.PHONY: bench bench-deps
bench: bench-deps all
	bench/run

bench-deps:
	@scripts/deps bench
