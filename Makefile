# faceup build. `make` builds the library, the command and the tests; `make test` runs them;
# `make asan` runs them under AddressSanitizer + UndefinedBehaviorSanitizer; `make bench`.
CC ?= gcc
# `make MPI=1`: data-parallel training under mpirun (mpicc, -DFU_MPI), built in build-mpi/.
ifeq ($(MPI),1)
CC = mpicc
BUILD ?= build-mpi
MPI_CFLAGS = -DFU_MPI
endif
BUILD ?= build
OPT ?= -O2 -march=native
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unknown-pragmas -fopenmp -Iinclude -Isrc -MMD -MP
CFLAGS ?=
LDLIBS = -ldnnl -lpng -ljpeg -lcjson -lm
LDFLAGS ?=
ALL_CFLAGS = $(CFLAGS_BASE) $(MPI_CFLAGS) $(OPT) $(CFLAGS)

LIB_SRC := $(sort $(wildcard src/core/*.c src/io/*.c src/face/*.c src/gen/*.c src/search/*.c src/train/*.c src/eval/*.c))
CLI_SRC := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
BENCH_OBJ := $(BENCH_SRC:%.c=$(BUILD)/%.o)

.PHONY: all test asan valgrind bench bench-upscale bench-faces eval-lfw clean
.SECONDARY: $(BENCH_OBJ)
all: $(BUILD)/faceup $(BUILD)/faceup_tests

$(BUILD)/libfaceup.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/faceup: $(CLI_OBJ) $(BUILD)/libfaceup.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/faceup_tests: $(TEST_OBJ) $(BUILD)/libfaceup.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench_%: $(BUILD)/bench/bench_%.o $(BUILD)/libfaceup.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Passive OpenMP waiting: spinning threads slow everything down on a busy machine (see src/cli/main.c).
export OMP_WAIT_POLICY ?= passive

test: $(BUILD)/faceup_tests $(BUILD)/faceup
	FACEUP_BIN=$(BUILD)/faceup $(BUILD)/faceup_tests

# Sanitizer build in its own folder; oneDNN's JIT code is opaque to ASan but harmless.
asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" build-asan/faceup
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" build-asan/faceup_tests
	FACEUP_BIN=build-asan/faceup ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 build-asan/faceup_tests

# The file readers, parsers, losses and optimisers under valgrind's memcheck: a subset (the
# convolution tests spend minutes in oneDNN's JIT code there and add nothing faceup owns), built
# without -march=native because valgrind does not decode AVX-512.
VALGRIND_TESTS = image_ safetensors_ pt_ pickle_ dtype_ half_ bf16_ tfjs_base64 tfjs_parses \
                 tfjs_decodes tfjs_rejects atomic_ loss_ optim_ reduce_values reshape_ slice_ cli_exit \
                 recordio_ face_data_
valgrind:
	$(MAKE) BUILD=build-valgrind OPT="-O1 -g" build-valgrind/faceup build-valgrind/faceup_tests
	FACEUP_BIN=build-valgrind/faceup FACEUP_THREADS=1 valgrind -q --error-exitcode=99 --leak-check=full \
	    --errors-for-leak-kinds=definite --show-leak-kinds=definite build-valgrind/faceup_tests $(VALGRIND_TESTS)

# IR-SE50 training-step benchmark against PyTorch (bench/irse/run.sh).
$(BUILD)/bench_irse: $(BUILD)/bench/irse/bench_irse.o $(BUILD)/libfaceup.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench: $(BUILD)/bench_ops $(BUILD)/bench_stylegan
	bench/run.sh

bench-upscale: $(BUILD)/faceup
	bench/upscale.sh

# Face networks (dlib-resnet, gear, faceres) against TF.js (wasm, cpu) in node: bench/faces/run.sh.
bench-faces:
	bench/faces/run.sh

# Full LFW verification (6,000 pairs, 7,701 images) for both descriptors; embeddings are cached
# (~/.cache/faceup/embeddings), so a second run only re-scores. LFW=... overrides the data folder.
LFW ?= ../shared/data/lfw
eval-lfw: $(BUILD)/faceup
	$(BUILD)/faceup eval lfw --data $(LFW) --model dlib-resnet --roc $(BUILD)/lfw-dlib-resnet-roc.png --csv $(BUILD)/lfw-dlib-resnet.csv
	$(BUILD)/faceup eval lfw --data $(LFW) --model faceres --roc $(BUILD)/lfw-faceres-roc.png --csv $(BUILD)/lfw-faceres.csv

clean:
	rm -rf build build-asan build-valgrind build-mpi

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BENCH_OBJ:.o=.d) $(BUILD)/bench/irse/bench_irse.d
