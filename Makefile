# recur — build, test and demo. `make` builds build/recur, build/librecur.a and .so; `make test` runs every test;
# `make demo` trains configs/demo.cfg on Fashion-MNIST. Both install missing Debian packages first.
CC      ?= gcc
ARCH    ?= -march=native
OPT     ?= -O3
BUILD   ?= build
CFLAGS  := -std=c11 $(OPT) -g $(ARCH) -Wall -Wextra -Werror -fopenmp -Iinclude -Isrc $(EXTRA_CFLAGS)
LDLIBS  := -lm -lz
LDFLAGS := -fopenmp $(EXTRA_LDFLAGS)

ifeq ($(SAN),1)
  BUILD   := build-san
  CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=address,undefined
endif
# libFuzzer build (`make fuzz`, clang): the library with coverage, ASan and UBSan, and the fuzz targets
ifeq ($(FUZZ),1)
  BUILD   := build-fuzz
  CFLAGS  += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
  CFLAGS  += -Wno-pass-failed # coverage instrumentation can stop `omp simd` loops from vectorising
endif

# oneDNN (the convolutions' second fast path, src/ops/conv2d_dnnl.c) when installed; `make DNNL=0` builds
# without it (recur's own kernels and the reference; `make test-nodnnl`).
HAVE_DNNL := $(shell test -f /usr/include/dnnl.h && echo 1)
DNNL ?= $(HAVE_DNNL)
ifeq ($(DNNL),1)
  CFLAGS += -DRC_HAVE_DNNL
  LDLIBS += -ldnnl
endif
# MPI (data-parallel training, src/dist): Open MPI's compiler wrapper gives the flags; `make MPI=0` builds
# the single-process stubs instead.
HAVE_MPI := $(shell mpicc --showme:compile >/dev/null 2>&1 && echo 1)
MPI ?= $(HAVE_MPI)
ifeq ($(MPI),1)
  CFLAGS += -DRC_HAVE_MPI $(patsubst -I%,-isystem %,$(shell mpicc --showme:compile))
  LDLIBS += $(shell mpicc --showme:link)
endif

# The gate nonlinearities (lstm.c, sigmoid.c, tanh.c: vmath.h's polynomials) with 512-bit vectors where ARCH
# has AVX-512: gcc and clang prefer 256-bit ones on these CPUs unless told (docs/PERFORMANCE.md).
VEC512 := $(if $(shell $(CC) $(ARCH) -dM -E -x c /dev/null 2>/dev/null | grep -w __AVX512F__),-mprefer-vector-width=512)
VEC512_OBJ := $(foreach f,gru lstm sigmoid tanh,$(BUILD)/obj/src/ops/$(f).o $(BUILD)/pic/src/ops/$(f).o)
$(VEC512_OBJ): CFLAGS += $(VEC512)

LIB_SRC  := $(sort $(wildcard src/base/*.c src/core/*.c src/ops/*.c src/models/*.c src/train/*.c src/io/*.c src/dist/*.c src/export/*.c src/api/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
PIC_OBJ  := $(LIB_SRC:%.c=$(BUILD)/pic/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
HDRS     := $(wildcard include/*.h src/*/*.h tests/*.h)

.PHONY: bench-tools all test test-unit test-cli test-mpi demo deps clean info-build fuzz fuzz-targets test-fuzz-replay test-reliability test-valgrind
.PHONY: shared install uninstall test-install test-nodnnl
all: $(BUILD)/recur $(TESTS) bench-tools $(if $(SAN)$(FUZZ),,shared)

# Shared library and install (include/recur.h is the public API): librecur.so.VERSION from -fPIC objects,
# soname librecur.so.MAJOR; `make install PREFIX=/usr/local DESTDIR=` puts bin/recur, lib/librecur.{a,so*},
# include/recur.h and lib/pkgconfig/recur.pc there; `make uninstall` removes them.
PREFIX   ?= /usr/local
VERSION  := $(shell sed -n 's/^\#define RC_VERSION "\(.*\)"/\1/p' include/recur.h)
SOMAJOR  := $(firstword $(subst ., ,$(VERSION)))
SONAME   := librecur.so.$(SOMAJOR)
SHLIB    := $(BUILD)/librecur.so.$(VERSION)
shared: $(SHLIB)

$(BUILD)/pic/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC    $< (PIC)"
	@$(CC) $(CFLAGS) -fPIC -c $< -o $@

$(SHLIB): $(PIC_OBJ) scripts/librecur.map
	@echo "  LD    $@"
	@$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=scripts/librecur.map $(LDFLAGS) -o $@ $(PIC_OBJ) $(LDLIBS)
	@ln -sf $(notdir $@) $(BUILD)/$(SONAME) && ln -sf $(SONAME) $(BUILD)/librecur.so

# recur.pc: Libs.private is what librecur links (static users need it); a sanitizer build needs its runtime.
, := ,
PC_LIBS := $(if $(filter 1,$(SAN)),-fsanitize=address$(,)undefined)
PC_PRIV := $(LDLIBS) -fopenmp
install: $(BUILD)/recur $(BUILD)/librecur.a $(SHLIB) include/recur.h scripts/recur.pc.in
	@echo "  INSTALL $(DESTDIR)$(PREFIX)"
	@install -d "$(DESTDIR)$(PREFIX)/bin" "$(DESTDIR)$(PREFIX)/lib/pkgconfig" "$(DESTDIR)$(PREFIX)/include"
	@install -m 755 $(BUILD)/recur "$(DESTDIR)$(PREFIX)/bin/recur"
	@install -m 644 $(BUILD)/librecur.a "$(DESTDIR)$(PREFIX)/lib/librecur.a"
	@install -m 755 $(SHLIB) "$(DESTDIR)$(PREFIX)/lib/"
	@ln -sf $(notdir $(SHLIB)) "$(DESTDIR)$(PREFIX)/lib/$(SONAME)"
	@ln -sf $(SONAME) "$(DESTDIR)$(PREFIX)/lib/librecur.so"
	@install -m 644 include/recur.h "$(DESTDIR)$(PREFIX)/include/recur.h"
	@sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@LIBS@|$(strip $(PC_LIBS))|' \
	    -e 's|@LIBS_PRIVATE@|$(strip $(PC_PRIV))|' scripts/recur.pc.in >"$(DESTDIR)$(PREFIX)/lib/pkgconfig/recur.pc"

uninstall:
	rm -f "$(DESTDIR)$(PREFIX)/bin/recur" "$(DESTDIR)$(PREFIX)/include/recur.h" \
	    "$(DESTDIR)$(PREFIX)/lib/librecur.a" "$(DESTDIR)$(PREFIX)/lib/librecur.so" \
	    "$(DESTDIR)$(PREFIX)/lib/$(SONAME)" "$(DESTDIR)$(PREFIX)/lib/librecur.so.$(VERSION)" \
	    "$(DESTDIR)$(PREFIX)/lib/pkgconfig/recur.pc"

# Installs into a temporary prefix and builds a C program against it with pkg-config, shared and
# static (tests/test_install.sh). Plain build only: the SAN build does not make the -fPIC library (a
# second sanitized compile of everything); tests/test_api.c covers the same API under ASan and UBSan.
test-install: $(BUILD)/recur shared
	+@sh tests/test_install.sh $(BUILD)

# Benchmark programs (not tests; see docs/PERFORMANCE.md): bnact_bench and fma_peak always, conv_bench
# with oneDNN. fma_peak needs -ffp-contract=fast (C11 mode would keep a*b+c as two instructions).
BENCH_TOOLS := $(BUILD)/bnact_bench $(BUILD)/fma_peak $(if $(filter 1,$(DNNL)),$(BUILD)/conv_bench)
bench-tools: $(BENCH_TOOLS)

$(BUILD)/bnact_bench $(BUILD)/conv_bench: $(BUILD)/%: bench/%.c $(BUILD)/librecur.a $(HDRS)
	@echo "  LD    $@"
	@$(CC) $(CFLAGS) -o $@ $< $(BUILD)/librecur.a $(LDFLAGS) $(LDLIBS)

$(BUILD)/fma_peak: bench/fma_peak.c
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	@$(CC) $(CFLAGS) -ffp-contract=fast -o $@ $< $(LDFLAGS)

info-build:
	@echo "recur build: CC=$(CC) oneDNN=$(if $(filter 1,$(DNNL)),yes,no) MPI=$(if $(filter 1,$(MPI)),yes,no) SAN=$(or $(SAN),0)"

$(BUILD)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	@$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/librecur.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@ && ar rcs $@ $^
	@echo "  AR    $@"

$(BUILD)/recur: $(CLI_OBJ) $(BUILD)/librecur.a
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/librecur.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/librecur.a $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  TEST  $@"
	@$(CC) $(CFLAGS) -o $@ $< $(BUILD)/librecur.a $(LDFLAGS) $(LDLIBS)
# the option parser's test compiles the CLI's src/cli/cli.c into itself
$(BUILD)/tests/test_cli_parse: src/cli/cli.c

deps:
	@sh scripts/deps.sh

# Fuzzing (fuzz/, docs/RELIABILITY.md): `make fuzz` builds build-fuzz/fuzz_T (libFuzzer); sh fuzz/run.sh SECONDS
# runs them. make test replays the seeds and regression inputs through each target linked with a plain main().
FUZZ_TARGETS := config checkpoint idx cifar npy
FUZZ_HDRS    := fuzz/fuzz_util.h $(HDRS)

fuzz: deps
	@$(MAKE) --no-print-directory FUZZ=1 CC=clang MPI=0 fuzz-targets

fuzz-targets: $(FUZZ_TARGETS:%=$(BUILD)/fuzz_%)

$(BUILD)/fuzz_%: fuzz/fuzz_%.c $(BUILD)/librecur.a $(FUZZ_HDRS)
	@echo "  FUZZ  $@"
	@$(CC) $(CFLAGS) -Ifuzz -o $@ $< $(BUILD)/librecur.a $(LDFLAGS) -fsanitize=fuzzer,address,undefined $(LDLIBS)

$(BUILD)/fuzz/replay_%: fuzz/fuzz_%.c fuzz/replay.c $(BUILD)/librecur.a $(FUZZ_HDRS)
	@mkdir -p $(dir $@)
	@echo "  FUZZ  $@"
	@$(CC) $(CFLAGS) -Ifuzz -o $@ $< fuzz/replay.c $(BUILD)/librecur.a $(LDFLAGS) $(LDLIBS)

test-fuzz-replay: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/replay_%)
	@sh fuzz/replay.sh $(BUILD)

# Malformed inputs through the CLI, kill -9 / SIGINT and resume, full disk, limits, numerics
# (tests/test_reliability.sh); under SAN=1 the quick subset. test-valgrind: a short training run under
# valgrind memcheck, from a build without -march=native (valgrind lacks AVX-512) and without MPI.
test-reliability: $(BUILD)/recur
	@sh tests/test_reliability.sh $(BUILD) $(if $(filter 1,$(SAN)),quick,full)

test-valgrind:
	@$(MAKE) --no-print-directory BUILD=build-vg ARCH= OPT=-O1 MPI=0 EXTRA_CFLAGS=-Wno-psabi build-vg/recur
	@sh tests/test_reliability.sh build-vg valgrind

# Unit, gradient and parity tests (C), then CLI tests (shell).
test: deps
	@$(MAKE) --no-print-directory info-build all
	@$(MAKE) --no-print-directory test-unit test-cli test-fuzz-replay test-reliability test-mpi test-install
	@echo "== the same tests built with clang, AddressSanitizer and UndefinedBehaviorSanitizer"
	@$(MAKE) --no-print-directory SAN=1 CC=clang all test-unit test-cli test-fuzz-replay test-reliability test-mpi
	@echo "== a short training run under valgrind memcheck"
	@$(MAKE) --no-print-directory test-valgrind
	@echo "== the build without oneDNN (recur's own kernels and the reference)"
	@$(MAKE) --no-print-directory test-nodnnl
	@echo "== gcc and clang both build clean with -Wall -Wextra -Werror"
	@$(MAKE) --no-print-directory CC=clang BUILD=build-clang all
	@echo "make test: all passed"

test-unit: $(TESTS)
	@sh tests/run_unit.sh $(BUILD)

test-cli: $(BUILD)/recur $(BUILD)/tests/test_onnx_ops
	@sh tests/run_cli.sh $(BUILD)
	@sh tests/test_export.sh $(BUILD)
	@sh tests/test_experiments.sh $(BUILD)
	@sh tests/test_onnx.sh $(BUILD)
	@sh tests/test_outputs.sh $(BUILD)
	@sh tests/test_ponder.sh $(BUILD)
	@sh tests/test_trainer.sh $(BUILD)
	@sh tests/test_groups.sh $(BUILD)
	@sh tests/test_gru.sh $(BUILD)

# The build without oneDNN (DNNL=0, into build-nodnnl): its conv, plan and parity tests, a short training run
# and eval, whose logits must match this build's (tests/test_nodnnl.sh).
test-nodnnl: $(BUILD)/recur
	+@$(MAKE) --no-print-directory DNNL=0 BUILD=build-nodnnl build-nodnnl/recur build-nodnnl/tests/test_conv \
	    build-nodnnl/tests/test_plan build-nodnnl/tests/test_parity build-nodnnl/tests/test_opcases
	@sh tests/test_nodnnl.sh build-nodnnl $(BUILD)

# Data-parallel tests under mpirun (tests/test_mpi.sh; skipped when built with MPI=0). Open MPI's own
# allocations read as leaks to LeakSanitizer, so leak checking is off for these runs (ASan, UBSan stay on).
test-mpi: $(BUILD)/recur
	@ASAN_OPTIONS=$${ASAN_OPTIONS:+$$ASAN_OPTIONS:}detect_leaks=0 sh tests/test_mpi.sh $(BUILD)

demo:
	@sh scripts/deps.sh demo
	@$(MAKE) --no-print-directory -j$$(nproc) info-build $(BUILD)/recur
	$(BUILD)/recur train configs/demo.cfg --out runs/demo --force
	$(BUILD)/recur eval runs/demo

clean:
	rm -rf build build-san build-clang build-fuzz build-vg build-nodnnl
