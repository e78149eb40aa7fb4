# bn — ternary language models on ordinary CPUs.
# `make` builds libbn and the programs; `make check` runs unit and bats tests;
# `make install` honours PREFIX and DESTDIR (and BINDIR, LIBDIR, INCDIR, MANDIR).

PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  = $(PREFIX)/bin
LIBDIR  = $(PREFIX)/lib
INCDIR  = $(PREFIX)/include
MANDIR  = $(PREFIX)/share/man
PKGDIR  = $(LIBDIR)/pkgconfig

CC      ?= cc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
WARN    = -Wall -Wextra -Wshadow -Wno-unused-parameter
ARCHFLAGS ?=
# The library's floors, lowest first (README.md §Layout; tools/check-layers.py
# fails `make check` when a file uses a higher floor). cmd/cli and cmd/bench
# are program-side: they link into the programs, never into libbn.
FLOORS  = lib/core formats lib/kernels lib/tokenizer lib/model
INCDIRS = lib $(FLOORS) cmd/cli cmd/bench
# Hidden by default: libbn.so exports only what bn.h marks BN_API (the
# programs and tests link libbn.a, where visibility does not matter).
BN_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(ARCHFLAGS) -fPIC -fvisibility=hidden $(INCDIRS:%=-I%)
LDLIBS  = -lxxhash -lz -lpcre2-8 -lcjson -lpthread -lm

BUILD   = build
PROGS   = bn-convert bn-quant bn-pack bn-tokenize bn-infer bn-bench bn-serve
LIB_SRC = $(sort $(foreach d,$(FLOORS),$(wildcard $(d)/*.c)))
LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ = $(patsubst %.c,$(BUILD)/%.o,$(sort $(wildcard cmd/cli/*.c)))
BENCH_OBJ = $(patsubst %.c,$(BUILD)/%.o,$(sort $(wildcard cmd/bench/*.c)))
SERVE_OBJ = $(patsubst %.c,$(BUILD)/%.o,$(sort $(wildcard cmd/serve/*.c)))
BIN     = $(PROGS:%=$(BUILD)/bin/%)
UNIT_SRC = $(sort $(wildcard tests/unit/*.c))
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
MAN1    = $(PROGS:%=man/%.1)
MAN5    = man/bn-model.5 man/bn-tokens.5
MAN3    = man/libbn.3
BN_VER  = $(shell sed -n 's/^#define BN_VERSION "\(.*\)"/\1/p' lib/bn.h)
# The shared library's soname changes only when its ABI breaks.
SONAME  = libbn.so.0
SHLIB   = libbn.so.$(BN_VER)

.PHONY: all check layers exports man-check unit bats install uninstall clean deps sanitize valgrind demo fuzz fuzz-build fuzz-merge

all: deps $(BUILD)/libbn.a $(BUILD)/libbn.so $(BUILD)/$(SONAME) $(BIN) $(UNIT_BIN) man/bn-model.5 man/bn-tokens.5

# Fail early, naming the Debian package, when a dependency is missing.
DEPS_OK = $(BUILD)/.deps-ok
deps: $(DEPS_OK)
$(DEPS_OK): tools/check-deps.sh
	@sh tools/check-deps.sh "$(CC)"
	@mkdir -p $(BUILD) && touch $@

# The compile command, rewritten only when it changes: objects depend on it,
# so a change of flags (-fvisibility=hidden, say) rebuilds them.
CFLAGS_FILE = $(BUILD)/.cflags
$(CFLAGS_FILE): FORCE
	@mkdir -p $(BUILD) && echo '$(CC) $(BN_CFLAGS) $(CFLAGS)' | cmp -s - $@ || echo '$(CC) $(BN_CFLAGS) $(CFLAGS)' >$@
.PHONY: FORCE

# -MMD: each object depends on the headers it really includes.
$(BUILD)/%.o: %.c $(CFLAGS_FILE) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(BN_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

-include $(shell find $(BUILD) build-fuzz -name '*.d' 2>/dev/null)

$(BUILD)/libbn.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/$(SHLIB): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/$(SONAME) $(BUILD)/libbn.so: $(BUILD)/$(SHLIB)
	ln -sf $(SHLIB) $@

$(BUILD)/libbncli.a: $(CLI_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The benchmark code links into bn-bench alone.
$(BUILD)/bin/bn-bench: $(BUILD)/cmd/bn-bench.o $(BENCH_OBJ) $(BUILD)/libbncli.a $(BUILD)/libbn.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(BUILD)/cmd/bn-bench.o $(BENCH_OBJ) -o $@ $(BUILD)/libbncli.a $(BUILD)/libbn.a $(LDFLAGS) $(LDLIBS)

# The HTTP server's parts link into bn-serve alone, with libmicrohttpd.
$(BUILD)/bin/bn-serve: $(BUILD)/cmd/bn-serve.o $(SERVE_OBJ) $(BUILD)/libbncli.a $(BUILD)/libbn.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(BUILD)/cmd/bn-serve.o $(SERVE_OBJ) -o $@ $(BUILD)/libbncli.a $(BUILD)/libbn.a $(LDFLAGS) -lmicrohttpd $(LDLIBS)

$(BUILD)/bin/%: $(BUILD)/cmd/%.o $(BUILD)/libbncli.a $(BUILD)/libbn.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(BUILD)/libbncli.a $(BUILD)/libbn.a $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libbncli.a $(BUILD)/libbn.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(BUILD)/libbncli.a $(BUILD)/libbn.a $(LDFLAGS) $(TEST_LDFLAGS) $(LDLIBS)

# test_oom makes chosen allocations of the library fail: its own malloc,
# calloc, realloc and aligned_alloc stand in for the C library's (ld --wrap). Not in
# LDFLAGS, which `make sanitize` sets on the command line. zlib linked
# statically, so that its own allocations (inflate's state) fail too.
$(BUILD)/tests/test_oom: TEST_LDFLAGS = -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc -Wl,--wrap=aligned_alloc \
	-Wl,-Bstatic -lz -Wl,-Bdynamic

check: all layers exports man-check unit bats

# libbn.so exports exactly the functions bn.h declares BN_API.
exports: $(BUILD)/$(SHLIB)
	sh tools/check-exports.sh $(BUILD)/$(SHLIB) lib/bn.h

# The floors hold (tools/check-layers.py): includes and calls go down only.
layers: all
	python3 tools/check-layers.py $(BUILD)

# libbn prints nothing, installs no signal handlers and keeps no mutable
# globals (tools/check-lib-quiet.sh); callbacks carry all of that instead.
check: quiet
quiet: $(BUILD)/libbn.a
	sh tools/check-lib-quiet.sh $(BUILD)
.PHONY: quiet

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "unit: $$t"; $$t; done

# BATS_FILES picks suites. With GNU parallel installed the suites run side
# by side, one per core (BATS_JOBS; tests within a file stay in order, as
# their shared setup_file fixtures expect); BATS_JOBS=1 runs them in turn.
BATS_FILES ?= tests/
BATS_JOBS  ?= $(shell command -v parallel >/dev/null 2>&1 && nproc || echo 1)
BATS_PAR    = $(if $(filter-out 1,$(BATS_JOBS)),--jobs $(BATS_JOBS) --no-parallelize-within-files)
bats: $(BIN)
	BN_BIN=$(CURDIR)/$(BUILD)/bin bats $(BATS_PAR) $(BATS_FILES)

# The whole suite (unit tests, then the bats suites with BN_BIN pointing
# at build-san/bin) on ASan + UBSan builds. UBSan only reports and goes on
# unless recovery is off, so -fno-sanitize-recover makes every finding fail
# the test that hit it; ASan's leak check runs at every exit.
# SAN_SKIP: suites that run no C path the others do not already run under
# the sanitizers (bn-serve under load, behind haproxy, driven by the npm
# client; bn-infer --parallel over ssh): minutes of the CI for nothing.
SAN_SKIP  ?= serve-load haproxy serve-openai hosts
SAN_BATS  ?= $(filter-out $(SAN_SKIP:%=tests/%.bats),$(sort $(wildcard tests/*.bats)))
SAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# BN_SANITIZED tells tests that measure peak memory that shadow memory
# counts, and test_spec to run its sampling on a twentieth of the draws
# (its statistical verdicts are the normal pass's); BN_USER_CC/LDFLAGS let
# install.bats link the sanitized libbn.a.
sanitize:
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 BN_SANITIZED=1 \
	BN_USER_CC=clang BN_USER_CXX=clang++ BN_USER_LDFLAGS="$(SAN_FLAGS)" \
	$(MAKE) BUILD=build-san CC=clang CFLAGS="-O1 -g $(SAN_FLAGS)" LDFLAGS="$(SAN_FLAGS)" \
	    BATS_FILES="$(if $(filter tests/,$(BATS_FILES)),$(SAN_BATS),$(BATS_FILES))" check

# The main pipelines under valgrind (memcheck, leaks included); any error
# exits 99 and fails the test (tests/valgrind.bats, not part of `bats`).
valgrind: $(BIN)
	BN_BIN=$(CURDIR)/$(BUILD)/bin bats tests/valgrind/

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(PKGDIR)
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)
	install -m 644 $(BUILD)/libbn.a $(DESTDIR)$(LIBDIR)
	install -m 755 $(BUILD)/$(SHLIB) $(DESTDIR)$(LIBDIR)
	ln -sf $(SHLIB) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libbn.so
	install -m 644 lib/bn.h $(DESTDIR)$(INCDIR)
	install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1
	install -m 644 $(MAN3) $(DESTDIR)$(MANDIR)/man3
	install -m 644 $(MAN5) $(DESTDIR)$(MANDIR)/man5
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
	    -e 's|@VERSION@|$(BN_VER)|' tools/bn.pc.in > $(DESTDIR)$(PKGDIR)/bn.pc

uninstall:
	rm -f $(PROGS:%=$(DESTDIR)$(BINDIR)/%) $(DESTDIR)$(LIBDIR)/libbn.a $(DESTDIR)$(LIBDIR)/libbn.so \
	    $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/$(SHLIB) $(MAN3:man/%=$(DESTDIR)$(MANDIR)/man3/%) \
	    $(DESTDIR)$(INCDIR)/bn.h $(DESTDIR)$(PKGDIR)/bn.pc \
	    $(PROGS:%=$(DESTDIR)$(MANDIR)/man1/%.1) $(MAN5:man/%=$(DESTDIR)$(MANDIR)/man5/%)

clean:
	rm -rf $(BUILD) build-san build-fuzz

# The formats' man pages are rendered from their specs, so the two cannot
# drift: `make` brings them up to date, `make check` fails when a committed
# page differs from its rendering (man-check).
man/bn-model.5: formats/bn-model.md tools/md2man.py lib/bn.h
	python3 tools/md2man.py $< bn-model 5 "$(BN_VER)" "the bn model file format" > $@.tmp && mv $@.tmp $@
man/bn-tokens.5: formats/bn-tokens.md tools/md2man.py lib/bn.h
	python3 tools/md2man.py $< bn-tokens 5 "$(BN_VER)" "token id streams between bn programs" > $@.tmp && mv $@.tmp $@
man-check:
	@set -e; for p in bn-model:"the bn model file format" bn-tokens:"token id streams between bn programs"; do \
	    n=$${p%%:*}; python3 tools/md2man.py formats/$$n.md $$n 5 "$(BN_VER)" "$${p#*:}" | cmp -s - man/$$n.5 \
	    || { echo "man-check: man/$$n.5 is not the rendering of formats/$$n.md (run make)"; exit 1; }; done
	@echo "man-check: man/bn-model.5 and man/bn-tokens.5 are their specs' renderings"

demo: all
	sh tools/demo.sh

# Fuzzing (libFuzzer, clang): every parser has a target in tests/fuzz/.
# `make fuzz FUZZ_SECONDS=N` runs each for N seconds from its seed corpus in
# tests/fuzz/corpus/NAME; new inputs go to build-fuzz/corpus-NAME, crashes
# to build-fuzz/ (turn each into a regression test).
FUZZ_SECONDS ?= 10
FUZZ_SRC   = $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN   = $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
FUZZ_FLAGS = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_OBJ   = $(LIB_SRC:%.c=build-fuzz/%.o)

build-fuzz/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	clang $(BN_CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(FUZZ_OBJ)
	clang $(BN_CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer $< $(FUZZ_EXTRA) $(FUZZ_OBJ) -o $@ $(LDLIBS)

# bn-serve's request parsing and replies, without its HTTP side (http.c,
# libmicrohttpd): the parts fuzz_serve needs beside libbn.
FUZZ_SERVE_OBJ = $(patsubst %.c,build-fuzz/%.o,$(filter-out cmd/serve/http.c,$(sort $(wildcard cmd/serve/*.c))))
build-fuzz/fuzz_serve: FUZZ_EXTRA = $(FUZZ_SERVE_OBJ)
build-fuzz/fuzz_serve: $(FUZZ_SERVE_OBJ)

.SECONDARY:

fuzz-build: $(FUZZ_BIN)

# A target's log goes to build-fuzz/NAME.log; a crash (or any fuzzer exit
# but 0) stops make with the log's findings shown. FUZZ_TARGETS picks some.
FUZZ_TARGETS ?= $(FUZZ_SRC:tests/fuzz/%.c=%)
fuzz: fuzz-build
	@set -e; for n in $(FUZZ_TARGETS); do mkdir -p build-fuzz/corpus-$$n; \
	    echo "fuzz: $$n for $(FUZZ_SECONDS) s"; st=0; \
	    build-fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 \
	        -max_len=262144 -artifact_prefix=build-fuzz/$$n- -print_final_stats=1 \
	        build-fuzz/corpus-$$n tests/fuzz/corpus/$$n >build-fuzz/$$n.log 2>&1 || st=$$?; \
	    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+==ERROR|SUMMARY|.*runtime error)' \
	        build-fuzz/$$n.log || true; \
	    if [ $$st -ne 0 ]; then tail -40 build-fuzz/$$n.log; echo "fuzz: $$n failed (status $$st)"; exit 1; fi; done

# Folds what the fuzzers found into the committed seed corpora, keeping
# only inputs that add coverage (libFuzzer -merge=1).
fuzz-merge: fuzz-build
	@set -e; for n in $(FUZZ_TARGETS); do mkdir -p build-fuzz/corpus-$$n tests/fuzz/corpus/$$n; \
	    build-fuzz/$$n -merge=1 -max_len=262144 tests/fuzz/corpus/$$n build-fuzz/corpus-$$n \
	        >build-fuzz/$$n.merge.log 2>&1; grep -E 'MERGE-OUTER: [0-9]+ new files' build-fuzz/$$n.merge.log; done

# AArch64 kernels, cross-built and run under qemu-user (Debian packages
# gcc-aarch64-linux-gnu, qemu-user, libc6-dev-arm64-cross). The kernel test
# links only the kernel files, so no arm64 builds of the I/O libraries are
# needed. It runs on a CPU model with the dot-product extension and on one
# without (cortex-a53), so both NEON sets and the dispatch between them run.
ARM_CC   ?= aarch64-linux-gnu-gcc
KERN_SRC = lib/core/cpu.c lib/core/floats.c formats/types.c formats/layout.c \
           $(filter-out lib/kernels/pack.c lib/kernels/quantize.c,$(wildcard lib/kernels/*.c))
.PHONY: check-arm
check-arm: $(BUILD)/arm/test_kernels $(BUILD)/arm/test_kernels_tl
	qemu-aarch64 -cpu max $<
	qemu-aarch64 -cpu cortex-a53 $<
	qemu-aarch64 -cpu max $(BUILD)/arm/test_kernels_tl
	qemu-aarch64 -cpu cortex-a53 $(BUILD)/arm/test_kernels_tl

$(BUILD)/arm/test_kernels $(BUILD)/arm/test_kernels_tl: $(BUILD)/arm/%: tests/unit/%.c $(KERN_SRC) $(wildcard lib/*.h lib/*/*.h formats/*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(ARM_CC) $(filter-out $(ARCHFLAGS),$(BN_CFLAGS)) -O2 -static $< $(KERN_SRC) -lm -o $@
