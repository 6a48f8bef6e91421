# heapsnap - GNU Make build.
#
#   make                 libheapsnap.so, libheapsnap-core.a, the heapsnap command
#   make check           every test: unit tests under ASan+UBSan, the tracer on live programs, fuzz smoke
#   make install         honours PREFIX (/usr/local) and DESTDIR
#   make fuzz FUZZ_SECONDS=600   run the libFuzzer targets longer
#
# Layout follows the data's path: src/tracer (inside the traced process) -> src/snapshot (the
# snapshot object and file) -> src/analysis (statistics, compare, filters, formats) -> src/cli.

PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
DESTDIR ?=
CC      ?= cc
CXX     ?= c++
CLANG   ?= clang
CFLAGS  ?= -O2 -g
PYTEST  ?= /usr/bin/python3 -m pytest
FUZZ_SECONDS ?= 10

B := build
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2 -Wno-format-nonliteral
HS_CPPFLAGS := -Iinclude -DHEAPSNAP_BUILDING -D_GNU_SOURCE
HS_CFLAGS := -std=gnu11 -fPIC -fvisibility=hidden $(WARN)
SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

CORE_SRC   := $(sort $(wildcard src/common/*.c src/snapshot/*.c src/analysis/*.c))
TRACER_SRC := $(sort $(wildcard src/tracer/*.c))
CLI_SRC    := $(sort $(wildcard src/cli/*.c))
UNIT_SRC   := $(sort $(wildcard tests/unit/test_*.c))
LIVE_SRC   := $(sort $(wildcard tests/live/*.c tests/live/*.cc))
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz_*.c))

CORE_OBJ      := $(CORE_SRC:%.c=$(B)/obj/%.o)
TRACER_OBJ    := $(TRACER_SRC:%.c=$(B)/obj/%.o)
CORE_ASAN_OBJ := $(CORE_SRC:%.c=$(B)/asan/%.o)
CLI_OBJ       := $(CLI_SRC:%.c=$(B)/obj/%.o)
CLI_ASAN_OBJ  := $(CLI_SRC:%.c=$(B)/asan/%.o)
UNIT_BIN      := $(UNIT_SRC:tests/unit/%.c=$(B)/asan/tests/%)
LIVE_BIN      := $(patsubst tests/live/%,$(B)/live/%,$(basename $(LIVE_SRC)))
FUZZ_BIN      := $(FUZZ_SRC:tests/fuzz/%.c=$(B)/fuzz/%)

LIB := $(B)/libheapsnap.so
CORE_LIB := $(B)/libheapsnap-core.a
# libgcc_s comes before libunwind in our dependencies on purpose: libunwind.so.8 also exports the
# _Unwind_* exception-handling functions, and the C++ runtime must keep finding libgcc_s's first.
TRACER_LIBS := -Wl,--no-as-needed -lgcc_s -lunwind -ldl -lpthread

all: $(LIB) $(CORE_LIB) $(if $(CLI_SRC),$(B)/heapsnap)

# ---- export formats (src/output, maintained with src/output/*) ---------------------------------
# Folded stacks, the JSON dump and the JSON writer, pprof's profile.proto.  Linked into the
# heapsnap command and the unit tests only, never into libheapsnap.so: pprof export needs
# protobuf-c and zlib, which a traced process must not load.  protoc-c generates the C code for
# src/output/profile.proto into $(B)/gen at build time (never committed).
OUTPUT_SRC      := $(sort $(wildcard src/output/*.c))
OUTPUT_OBJ      := $(OUTPUT_SRC:%.c=$(B)/obj/%.o) $(B)/obj/gen/profile.pb-c.o
OUTPUT_ASAN_OBJ := $(OUTPUT_SRC:%.c=$(B)/asan/%.o) $(B)/asan/gen/profile.pb-c.o
OUTPUT_LIB      := $(B)/libheapsnap-output.a
OUTPUT_ASAN_LIB := $(B)/asan/libheapsnap-output.a
OUTPUT_LIBS     := -lprotobuf-c -lz
PROTOC_C        ?= protoc-c

$(B)/gen/%.pb-c.c $(B)/gen/%.pb-c.h: src/output/%.proto
	@mkdir -p $(B)/gen
	$(PROTOC_C) --proto_path=src/output --c_out=$(B)/gen $<

$(OUTPUT_OBJ) $(OUTPUT_ASAN_OBJ): HS_CPPFLAGS += -I$(B)/gen
$(OUTPUT_OBJ) $(OUTPUT_ASAN_OBJ): $(B)/gen/profile.pb-c.h

# Generated code: our warnings, but not fatal (it is protoc-c's, and changes with its version).
$(B)/obj/gen/profile.pb-c.o: $(B)/gen/profile.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) $(HS_CPPFLAGS) $(CFLAGS) $(HS_CFLAGS) -Wno-error -c $< -o $@
$(B)/asan/gen/profile.pb-c.o: $(B)/gen/profile.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) $(HS_CPPFLAGS) -O1 -g $(HS_CFLAGS) $(SAN) -Wno-error -c $< -o $@

$(OUTPUT_LIB): $(OUTPUT_OBJ)
	rm -f $@ && ar rcs $@ $^
$(OUTPUT_ASAN_LIB): $(OUTPUT_ASAN_OBJ)
	rm -f $@ && ar rcs $@ $^
# ---- end of export formats ------------------------------------------------------------------------

$(B)/obj/%.o: %.c $(wildcard include/*.h src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(HS_CPPFLAGS) $(CFLAGS) $(HS_CFLAGS) -c $< -o $@

# The hooks define malloc & co.: the compiler must not treat those names as its builtins there.
$(TRACER_OBJ): HS_CFLAGS += -fno-builtin-malloc -fno-builtin-calloc -fno-builtin-realloc -fno-builtin-free
# The stack walk starts in the program's frame, found from the hook's frame pointer (hooks.c).
$(B)/obj/src/tracer/hooks.o $(B)/ubsan/src/tracer/hooks.o $(B)/uwcheck/src/tracer/hooks.o: HS_CFLAGS += -fno-omit-frame-pointer

$(B)/asan/%.o: %.c $(wildcard include/*.h src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(HS_CPPFLAGS) -O1 -g $(HS_CFLAGS) $(SAN) -c $< -o $@

# The tracer library: everything, and the allocation hooks.  libdw is opened with dlopen only
# when a snapshot is symbolized, so it adds nothing to a traced process that never takes one.
$(LIB): $(CORE_OBJ) $(TRACER_OBJ)
	$(CC) -shared -Wl,-soname,libheapsnap.so -Wl,-z,now -Wl,-z,relro -o $@ $^ $(TRACER_LIBS)

# The same library under UBSan (the tracer cannot run under ASan or TSan: they replace malloc).
UBSAN_OBJ := $(CORE_SRC:%.c=$(B)/ubsan/%.o) $(TRACER_SRC:%.c=$(B)/ubsan/%.o)
$(B)/ubsan/%.o: %.c $(wildcard include/*.h src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(HS_CPPFLAGS) -O1 -g $(HS_CFLAGS) -fno-builtin-malloc -fno-builtin-calloc -fno-builtin-realloc -fno-builtin-free -fsanitize=undefined -fno-sanitize-recover=all -c $< -o $@
$(B)/ubsan/libheapsnap.so: $(UBSAN_OBJ)
	$(CC) -shared -fsanitize=undefined -Wl,-soname,libheapsnap.so -Wl,-z,now -o $@ $^ $(TRACER_LIBS)

# The same library with the fast unwinder checked against libunwind on every stack it walks
# (src/tracer/unwind_check.h; tests/test_unwind.py).
UWCHECK_OBJ := $(TRACER_SRC:%.c=$(B)/uwcheck/%.o)
$(B)/uwcheck/%.o: %.c $(wildcard include/*.h src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(HS_CPPFLAGS) -DHS_UNWIND_CHECK $(CFLAGS) $(HS_CFLAGS) -fno-builtin-malloc -fno-builtin-calloc -fno-builtin-realloc -fno-builtin-free -c $< -o $@
$(B)/uwcheck/libheapsnap.so: $(CORE_OBJ) $(UWCHECK_OBJ)
	$(CC) -shared -Wl,-soname,libheapsnap.so -Wl,-z,now -Wl,-z,relro -o $@ $^ $(TRACER_LIBS)

$(CORE_LIB): $(CORE_OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/asan/libheapsnap-core.a: $(CORE_ASAN_OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/heapsnap: $(CLI_OBJ) $(OUTPUT_LIB) $(CORE_LIB)
	$(CC) -o $@ $(CLI_OBJ) $(OUTPUT_LIB) $(CORE_LIB) $(OUTPUT_LIBS) -lm

$(B)/asan/heapsnap: $(CLI_ASAN_OBJ) $(OUTPUT_ASAN_LIB) $(B)/asan/libheapsnap-core.a
	$(CC) $(SAN) -o $@ $^ $(OUTPUT_LIBS) -lm

# Unit tests: the analysis, file and CLI code on snapshots built from literals, under ASan+UBSan.
$(B)/asan/tests/%: tests/unit/%.c tests/unit/unit.h tests/unit/oom.h $(OUTPUT_ASAN_LIB) $(B)/asan/libheapsnap-core.a
	@mkdir -p $(dir $@)
	$(CC) $(HS_CPPFLAGS) -Isrc -I$(B)/gen -O1 -g $(HS_CFLAGS) $(SAN) -o $@ $< $(OUTPUT_ASAN_LIB) $(B)/asan/libheapsnap-core.a $(OUTPUT_LIBS) -lcmocka -lm

# Live test programs: small real C and C++ programs linked against the tracer, built -O0 -g so
# that lines are known.
$(B)/live/%: tests/live/%.c $(LIB) tests/live/live.h
	@mkdir -p $(dir $@)
	$(CC) -Iinclude -Itests/live -O0 -g -fno-omit-frame-pointer -Wall -Wextra -Werror -o $@ $< -L$(B) -lheapsnap -Wl,-rpath,$(abspath $(B)) -ldl -lpthread

$(B)/live/%: tests/live/%.cc $(LIB) tests/live/live.h
	@mkdir -p $(dir $@)
	$(CXX) -Iinclude -Itests/live -O0 -g -fno-omit-frame-pointer -Wall -Wextra -Werror -o $@ $< -L$(B) -lheapsnap -Wl,-rpath,$(abspath $(B)) -ldl -lpthread

# Plain programs for the preload tests: they know nothing of heapsnap.
PROG_SRC := $(sort $(wildcard tests/progs/*.c))
PROG_CXX := $(sort $(wildcard tests/progs/*.cc))
PROG_BIN := $(patsubst tests/progs/%.c,$(B)/progs/%,$(filter-out tests/progs/lib%,$(PROG_SRC))) \
            $(patsubst tests/progs/%.cc,$(B)/progs/%,$(PROG_CXX)) \
            $(patsubst tests/progs/%.c,$(B)/progs/%.so,$(filter tests/progs/lib%,$(PROG_SRC)))
$(B)/progs/%: tests/progs/%.c
	@mkdir -p $(dir $@)
	$(CC) -Iinclude $(PROG_OPT) -g -Wall -Wextra -Werror -o $@ $< -ldl -lpthread
$(B)/progs/%: tests/progs/%.cc
	@mkdir -p $(dir $@)
	$(CXX) -O1 -g -Wall -Wextra -Werror -o $@ $< -lpthread
LIBPROG_OPT = -O0
# CFAs relative to %rsp, the same code in both
PROG_OPT = -O0
$(B)/progs/walkmemo: PROG_OPT = -O2           # frames without a frame pointer too
$(B)/progs/noharm_cancel: PROG_OPT = -O0 -fno-asynchronous-unwind-tables -fno-unwind-tables
$(B)/progs/fibers: tests/progs/fibers.cc       # boost.context (libboost-context-dev)
	@mkdir -p $(dir $@)
	$(CXX) -O1 -g -Wall -Wextra -Werror -o $@ $< -lboost_context
$(B)/progs/libswap1.so $(B)/progs/libswap2.so: LIBPROG_OPT = -O2 -fomit-frame-pointer
$(B)/progs/lib%.so: tests/progs/lib%.c
	@mkdir -p $(dir $@)
	$(CC) $(LIBPROG_OPT) -g -fPIC -shared -Wall -Wextra -Werror -o $@ $<

# The tables and their locking under ThreadSanitizer, outside any preload.
$(B)/tsan/test_tables: tests/tsan/test_tables.c src/tracer/tables.c src/tracer/tracer.h src/common/mem.c
	@mkdir -p $(dir $@)
	$(CC) $(HS_CPPFLAGS) -Isrc -O1 -g $(HS_CFLAGS) -fsanitize=thread -o $@ $< src/common/mem.c -lpthread
tsan: $(B)/tsan/test_tables
	TSAN_OPTIONS=halt_on_error=1 $(B)/tsan/test_tables

# libFuzzer targets over the core code.  fuzz_pattern and fuzz_args drive the command line's
# parsing too: they also link the CLI without main.c (which holds only main), what the CLI links
# (the exporters, protoc-c's code), and the tracer's alloc-fn list, which is pure code.
FUZZ_FLAGS := $(HS_CPPFLAGS) -Isrc -I$(B)/gen -O1 -g -fno-sanitize-recover=undefined
FUZZ_CLI_BIN := $(B)/fuzz/fuzz_pattern $(B)/fuzz/fuzz_args
FUZZ_CLI_SRC := $(filter-out src/cli/main.c,$(CLI_SRC)) $(OUTPUT_SRC) src/tracer/allocfn.c
FUZZ_CLI_OBJ := $(FUZZ_CLI_SRC:%.c=$(B)/fuzzobj/%.o) $(B)/fuzzobj/gen/profile.pb-c.o
$(B)/fuzzobj/%.o: %.c $(wildcard include/*.h src/*/*.h) $(B)/gen/profile.pb-c.h
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_FLAGS) $(WARN) -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@
$(B)/fuzzobj/gen/profile.pb-c.o: $(B)/gen/profile.pb-c.c
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@
$(FUZZ_CLI_BIN): $(FUZZ_CLI_OBJ) tests/fuzz/fuzz.h
$(FUZZ_CLI_BIN): FUZZ_LINK = $(FUZZ_CLI_OBJ) -lprotobuf-c -lz
$(B)/fuzz/%: tests/fuzz/%.c $(CORE_SRC) $(wildcard include/*.h src/*/*.h)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_FLAGS) $(WARN) -fsanitize=fuzzer,address,undefined -o $@ $< $(CORE_SRC) $(FUZZ_LINK) -lm

libs: $(LIB) $(CORE_LIB)
unit: $(UNIT_BIN)
live: $(LIVE_BIN) $(PROG_BIN)
$(B)/fuzz/fuzz_rustsym: src/tracer/rustsym.c      # compiled into the target (tracer code)
fuzzers: $(FUZZ_BIN)

check: all unit live fuzzers symtest $(B)/ubsan/libheapsnap.so $(B)/uwcheck/libheapsnap.so
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done
	@$(MAKE) --no-print-directory tsan
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)
	@echo "== the tracer built with UBSan, on the live tests"
	HEAPSNAP_BUILD=$(abspath $(B)) HEAPSNAP_LIB=$(abspath $(B))/ubsan/libheapsnap.so LD_LIBRARY_PATH=$(abspath $(B))/ubsan \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 $(PYTEST) -q -p no:cacheprovider tests/test_tracer.py
	@echo "== all tests"
	HEAPSNAP_BUILD=$(abspath $(B)) $(PYTEST) -q -p no:cacheprovider tests

fuzz: fuzzers
	@set -e; for f in $(FUZZ_BIN); do n=$$(basename $$f); mkdir -p $(B)/fuzz/corpus-$$n; \
	  echo "== $$n for $(FUZZ_SECONDS)s"; \
	  dict=; if [ -f tests/fuzz/$$n.dict ]; then dict=-dict=tests/fuzz/$$n.dict; fi; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 -close_fd_mask=3 $$dict $(B)/fuzz/corpus-$$n tests/fuzz/corpus/$$n; done

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(BINDIR)
	install -m 0755 $(LIB) $(DESTDIR)$(LIBDIR)/libheapsnap.so
	install -m 0644 $(CORE_LIB) $(DESTDIR)$(LIBDIR)/libheapsnap-core.a
	install -m 0644 include/heapsnap.h include/heapsnap-annotate.h $(DESTDIR)$(INCDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
	    -e 's|@VERSION@|$(shell sed -n 's/.*HEAPSNAP_VERSION_STRING "\(.*\)"/\1/p' include/heapsnap.h)|' \
	    heapsnap.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/heapsnap.pc
	if [ -f $(B)/heapsnap ]; then install -m 0755 $(B)/heapsnap $(DESTDIR)$(BINDIR)/heapsnap; fi
	install -d $(DESTDIR)$(MANDIR)/man1
	install -m 0644 docs/heapsnap.1 $(DESTDIR)$(MANDIR)/man1/heapsnap.1

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libheapsnap.so $(DESTDIR)$(LIBDIR)/libheapsnap-core.a \
	      $(DESTDIR)$(INCDIR)/heapsnap.h $(DESTDIR)$(INCDIR)/heapsnap-annotate.h \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/heapsnap.pc $(DESTDIR)$(BINDIR)/heapsnap \
	      $(DESTDIR)$(MANDIR)/man1/heapsnap.1

clean:
	rm -rf $(B)

.PHONY: all libs unit live fuzzers check fuzz install uninstall clean tsan
.SECONDARY:

# ---- symbolizer test (maintained with src/tracer/symbolize.c) -------------------------------------
# Put rules here: build/sym/... binaries built from tests/sym/*.c with src/tracer/symbolize.c.
#
# build/sym/test_symbolize runs the symbolizer in a real process against small libraries built
# here: libhssym.so (-g), libhssym-stripped.so (the same, strip --strip-all), libhssym-dbglink.so
# (debug info in .debug/ through .gnu_debuglink), libhssym-buildid.so (debug info under
# debugroot/.build-id/), libhssymcxx.so (C++, for demangling).  The test is run with the libdw
# backend and with the dladdr fallback, plain and under ASan+UBSan, and as a non-PIE program,
# with DEBUGINFOD_URLS set to prove that no debuginfod client is ever loaded.
SYM_B := $(B)/sym
SYM_CFLAGS := -std=gnu11 $(WARN) -Isrc -Iinclude -D_GNU_SOURCE
SYM_LIB_CFLAGS := -O0 -g -fPIC -shared -Wl,--build-id -Itests/sym
SYM_SRC := src/tracer/symbolize.c src/tracer/rustsym.c $(sort $(wildcard src/common/*.c))
SYM_DEPS := tests/sym/test_symbolize.c tests/sym/symtest.h $(SYM_SRC) src/tracer/symbolize.h src/common/common.h
SYM_LIBS := $(SYM_B)/libhssym.so $(SYM_B)/libhssym-stripped.so $(SYM_B)/libhssym-dbglink.so \
            $(SYM_B)/libhssym-buildid.so $(SYM_B)/libhssymcxx.so
SYM_NO_DEBUGINFOD := DEBUGINFOD_URLS=http://127.0.0.1:9/

$(SYM_B)/libhssym.so: tests/sym/symlib.c tests/sym/symtest.h
	@mkdir -p $(dir $@)
	$(CC) $(SYM_LIB_CFLAGS) -DHS_SYMLIB_VARIANT=1 -o $@ $<

$(SYM_B)/libhssym-stripped.so: $(SYM_B)/libhssym.so
	strip --strip-all -o $@ $<

$(SYM_B)/libhssym-dbglink.so: tests/sym/symlib.c tests/sym/symtest.h
	@mkdir -p $(SYM_B)/.debug
	$(CC) $(SYM_LIB_CFLAGS) -DHS_SYMLIB_VARIANT=2 -o $@.full $<
	objcopy --only-keep-debug $@.full $(SYM_B)/.debug/libhssym-dbglink.so.debug
	objcopy --strip-debug $@.full $@.tmp
	objcopy --add-gnu-debuglink=$(SYM_B)/.debug/libhssym-dbglink.so.debug $@.tmp $@
	rm -f $@.full $@.tmp

$(SYM_B)/libhssym-buildid.so: tests/sym/symlib.c tests/sym/symtest.h
	@mkdir -p $(dir $@)
	$(CC) $(SYM_LIB_CFLAGS) -DHS_SYMLIB_VARIANT=3 -o $@.full $<
	set -e; id=$$(readelf -n $@.full | sed -n 's/.*Build ID: *\([0-9a-f]*\).*/\1/p'); \
	  test -n "$$id"; d=$(SYM_B)/debugroot/.build-id/$$(echo $$id | cut -c1-2); mkdir -p $$d; \
	  objcopy --only-keep-debug $@.full $$d/$$(echo $$id | cut -c3-).debug
	objcopy --strip-debug $@.full $@
	rm -f $@.full

$(SYM_B)/libhssymcxx.so: tests/sym/symcxx.cc tests/sym/symtest.h
	@mkdir -p $(dir $@)
	$(CXX) $(SYM_LIB_CFLAGS) -o $@ $<

# The symbolizer at the optimisation it ships with, the test code at -O0 (exact call lines).
$(SYM_B)/test_symbolize: $(SYM_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(SYM_CFLAGS) -O2 -g -c src/tracer/symbolize.c -o $@-symbolize.o
	$(CC) $(SYM_CFLAGS) -O0 -g -o $@ tests/sym/test_symbolize.c $@-symbolize.o \
	    src/tracer/rustsym.c $(sort $(wildcard src/common/*.c)) -ldl -lpthread

$(SYM_B)/test_symbolize-asan: $(SYM_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(SYM_CFLAGS) -O1 -g $(SAN) -c src/tracer/symbolize.c -o $@-symbolize.o
	$(CC) $(SYM_CFLAGS) -O0 -g $(SAN) -o $@ tests/sym/test_symbolize.c $@-symbolize.o \
	    src/tracer/rustsym.c $(sort $(wildcard src/common/*.c)) -ldl -lpthread

# The main program as ET_EXEC (load bias 0) rather than PIE.
$(SYM_B)/test_symbolize-nopie: $(SYM_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(SYM_CFLAGS) -O2 -g -c src/tracer/symbolize.c -o $@-symbolize.o
	$(CC) $(SYM_CFLAGS) -O0 -g -no-pie -o $@ tests/sym/test_symbolize.c $@-symbolize.o \
	    src/tracer/rustsym.c $(sort $(wildcard src/common/*.c)) -ldl -lpthread

# The Rust demanglers as a filter (tests/test_rust.py compares them with c++filt), under ASan.
$(SYM_B)/rustdm: tests/sym/rustdm.c src/tracer/rustsym.c src/tracer/rustsym.h
	@mkdir -p $(dir $@)
	$(CC) $(SYM_CFLAGS) -O1 -g $(SAN) -o $@ tests/sym/rustdm.c src/tracer/rustsym.c

symtest: $(SYM_B)/test_symbolize $(SYM_B)/test_symbolize-asan $(SYM_B)/test_symbolize-nopie $(SYM_LIBS) $(SYM_B)/rustdm
	@if readelf -d $(SYM_B)/test_symbolize | grep -q 'NEEDED.*libdw'; then \
	  echo "symtest: libdw must not be a DT_NEEDED"; exit 1; fi
	$(SYM_NO_DEBUGINFOD) $(SYM_B)/test_symbolize
	$(SYM_B)/test_symbolize --fallback
	$(SYM_NO_DEBUGINFOD) $(SYM_B)/test_symbolize-asan
	$(SYM_B)/test_symbolize-asan --fallback
	$(SYM_NO_DEBUGINFOD) $(SYM_B)/test_symbolize-nopie

.PHONY: symtest

# ---- Python package (maintained with python/ and tests/python/) -----------------------------------
# heapsnap._heapsnap, the extension of the Python package, for Debian's python3: setup.py builds it
# with the engine's sources under $(B)/python/py<version>, where tests/python looks for it (and
# builds it for pyenv's CPythons 3.9-3.13 too, when they are there).  `make check` builds it
# first; its tests run with all the others (tests/python is under tests/).  `make python-check`
# runs only them.
PYTHON ?= /usr/bin/python3
PY_VER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
PY_BUILD := $(abspath $(B))/python/py$(PY_VER)

python-ext:
	HEAPSNAP_BUILD_BASE=$(PY_BUILD) $(PYTHON) setup.py -q build --build-base $(PY_BUILD)

python-check: python-ext $(LIB) $(B)/heapsnap
	HEAPSNAP_BUILD=$(abspath $(B)) $(PYTEST) -q -p no:cacheprovider tests/python

check: python-ext

.PHONY: python-ext python-check
