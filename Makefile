# faceup build. `make` builds the library, the command and the tests; `make test` runs them;
# `make asan` runs them under AddressSanitizer + UndefinedBehaviorSanitizer; `make bench`.
CC ?= gcc
BUILD ?= build
OPT ?= -O2 -march=native
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unknown-pragmas -fopenmp -Iinclude -Isrc -MMD -MP
CFLAGS ?=
LDLIBS = -ldnnl -lpng -ljpeg -lcjson -lm
LDFLAGS ?=
ALL_CFLAGS = $(CFLAGS_BASE) $(OPT) $(CFLAGS)

LIB_SRC := $(sort $(wildcard src/core/*.c src/io/*.c src/face/*.c src/gen/*.c src/search/*.c src/train/*.c src/eval/*.c))
CLI_SRC := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
BENCH_OBJ := $(BENCH_SRC:%.c=$(BUILD)/%.o)

.PHONY: all test asan bench bench-upscale clean
all: $(BUILD)/faceup $(BUILD)/faceup_tests

$(BUILD)/libfaceup.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/faceup: $(CLI_OBJ) $(BUILD)/libfaceup.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/faceup_tests: $(TEST_OBJ) $(BUILD)/libfaceup.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench_ops: $(BENCH_OBJ) $(BUILD)/libfaceup.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

test: $(BUILD)/faceup_tests $(BUILD)/faceup
	FACEUP_BIN=$(BUILD)/faceup $(BUILD)/faceup_tests

# Sanitizer build in its own folder; oneDNN's JIT code is opaque to ASan but harmless.
asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" build-asan/faceup
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" build-asan/faceup_tests
	FACEUP_BIN=build-asan/faceup ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 build-asan/faceup_tests

bench: $(BUILD)/bench_ops
	bench/run.sh

bench-upscale: $(BUILD)/faceup
	bench/upscale.sh

clean:
	rm -rf build build-asan

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BENCH_OBJ:.o=.d)
