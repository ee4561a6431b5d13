# recur — build, test and demo. `make` builds build/recur and build/librecur.a; `make test` runs every test;
# `make demo` trains configs/demo.cfg on Fashion-MNIST. Both install missing Debian packages first.
CC      ?= gcc
ARCH    ?= -march=native
OPT     ?= -O2
BUILD   ?= build
CFLAGS  := -std=c11 $(OPT) -g $(ARCH) -Wall -Wextra -Werror -fopenmp -Iinclude -Isrc $(EXTRA_CFLAGS)
LDLIBS  := -lm -lz
LDFLAGS := -fopenmp $(EXTRA_LDFLAGS)

ifeq ($(SAN),1)
  BUILD   := build-san
  CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=address,undefined
endif

HAVE_DNNL := $(shell test -f /usr/include/dnnl.h && echo 1)
ifeq ($(HAVE_DNNL),1)
  CFLAGS += -DRC_HAVE_DNNL
  LDLIBS += -ldnnl
endif
HAVE_MPI := $(shell command -v mpicc >/dev/null 2>&1 && echo 1)

LIB_SRC  := $(sort $(wildcard src/core/*.c src/ops/*.c src/models/*.c src/train/*.c src/io/*.c src/dist/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
HDRS     := $(wildcard include/*.h src/*/*.h tests/*.h)

.PHONY: all test test-unit test-cli demo deps clean info-build
all: $(BUILD)/recur $(TESTS)

info-build:
	@echo "recur build: CC=$(CC) oneDNN=$(if $(HAVE_DNNL),yes,no) MPI=$(if $(HAVE_MPI),yes,no) SAN=$(or $(SAN),0)"

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

deps:
	@sh scripts/deps.sh

# Unit, gradient and parity tests (C), then CLI tests (shell).
test: deps
	@$(MAKE) --no-print-directory info-build all
	@$(MAKE) --no-print-directory test-unit test-cli
	@echo "== the same tests built with clang, AddressSanitizer and UndefinedBehaviorSanitizer"
	@$(MAKE) --no-print-directory SAN=1 CC=clang all test-unit test-cli
	@echo "== gcc and clang both build clean with -Wall -Wextra -Werror"
	@$(MAKE) --no-print-directory CC=clang BUILD=build-clang all
	@echo "make test: all passed"

test-unit: $(TESTS)
	@sh tests/run_unit.sh $(BUILD)

test-cli: $(BUILD)/recur
	@sh tests/run_cli.sh $(BUILD)

demo: deps
	@$(MAKE) --no-print-directory info-build $(BUILD)/recur
	$(BUILD)/recur train configs/demo.cfg --out runs/demo --force
	$(BUILD)/recur eval runs/demo

clean:
	rm -rf build build-san build-clang
