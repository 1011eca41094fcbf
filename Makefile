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

LIB_SRC := $(sort $(wildcard src/core/*.c src/io/*.c src/face/*.c src/gen/*.c src/data/*.c src/search/*.c src/train/*.c src/eval/*.c))
CLI_SRC := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
# The library's objects serve both libfaceup.a and libfaceup.so: position-independent, and hidden
# unless include/faceup.h marks a function FU_API, so the .so exports only the public API.
$(LIB_OBJ): ALL_CFLAGS += -fPIC -fvisibility=hidden
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
BENCH_OBJ := $(BENCH_SRC:%.c=$(BUILD)/%.o)

# The version comes from include/faceup.h; the soname changes with the major version.
VERSION := $(shell sed -n 's/^\#define FACEUP_VERSION "\([^"]*\)".*/\1/p' include/faceup.h)
SONAME := libfaceup.so.$(firstword $(subst ., ,$(VERSION)))

.PHONY: all test asan valgrind bench bench-upscale bench-faces eval-lfw clean install uninstall install-check abi-check abi-update layers
.SECONDARY: $(BENCH_OBJ)
all: $(BUILD)/faceup $(BUILD)/faceup_tests $(BUILD)/$(SONAME) $(BUILD)/libfaceup.so

$(BUILD)/libfaceup.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# -z defs: every symbol the library uses must come from it or from the libraries it names;
# libfaceup.map: only fu_* leaves the library.
$(BUILD)/libfaceup.so.$(VERSION): $(LIB_OBJ) libfaceup.map
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,-z,defs -Wl,--version-script=libfaceup.map \
	    -o $@ $(LIB_OBJ) $(LDLIBS)

$(BUILD)/$(SONAME) $(BUILD)/libfaceup.so: $(BUILD)/libfaceup.so.$(VERSION)
	ln -sf $(notdir $<) $@

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

bench: $(BUILD)/bench_ops $(BUILD)/bench_stylegan $(BUILD)/faceup
	bench/run.sh
	BENCH_GENERATORS=vae bench/upscale.sh

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

# Install: `make install PREFIX=/usr/local DESTDIR=`. The binary links libfaceup statically; the
# shipped models go to $(DATADIR)/faceup/models, where fu_shipped_path (src/face/models.h) looks
# relative to the binary.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
SHIPPED_MODELS = $(wildcard models/*.safetensors) models/calibration.json models/README.md

install: $(BUILD)/faceup $(BUILD)/libfaceup.a $(BUILD)/libfaceup.so.$(VERSION)
	@case "$(PREFIX)" in /?*) ;; *) echo "make install: PREFIX must be an absolute folder, got '$(PREFIX)'" >&2; exit 2 ;; esac
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) \
	    $(DESTDIR)$(DATADIR)/faceup/models $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(BUILD)/faceup $(DESTDIR)$(BINDIR)/faceup
	install -m 644 $(BUILD)/libfaceup.a $(DESTDIR)$(LIBDIR)/libfaceup.a
	install -m 755 $(BUILD)/libfaceup.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libfaceup.so.$(VERSION)
	ln -sf libfaceup.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libfaceup.so
	install -m 644 include/faceup.h $(DESTDIR)$(INCLUDEDIR)/faceup.h
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|; s|@VERSION@|$(VERSION)|' \
	    faceup.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/faceup.pc
	install -m 644 $(SHIPPED_MODELS) $(DESTDIR)$(DATADIR)/faceup/models/
	install -m 644 docs/faceup.1 $(DESTDIR)$(MANDIR)/man1/faceup.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/faceup $(DESTDIR)$(LIBDIR)/libfaceup.a $(DESTDIR)$(LIBDIR)/libfaceup.so* \
	    $(DESTDIR)$(LIBDIR)/pkgconfig/faceup.pc $(DESTDIR)$(INCLUDEDIR)/faceup.h $(DESTDIR)$(MANDIR)/man1/faceup.1
	rm -rf $(DESTDIR)$(DATADIR)/faceup

# Installs into a temporary DESTDIR and checks the result (tools/install-check.sh).
install-check: $(BUILD)/faceup $(BUILD)/libfaceup.a $(BUILD)/libfaceup.so.$(VERSION)
	tools/install-check.sh $(BUILD)

# The exported symbols of libfaceup.so against the checked-in include/faceup.symbols.
abi-check: $(BUILD)/libfaceup.so.$(VERSION)
	tools/abi-check.sh $<
abi-update: $(BUILD)/libfaceup.so.$(VERSION)
	tools/abi-check.sh $< --update

# No layer of src/ includes a higher one (tools/check-layers.sh).
layers:
	tools/check-layers.sh

clean:
	rm -rf build build-asan build-valgrind build-mpi

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BENCH_OBJ:.o=.d) $(BUILD)/bench/irse/bench_irse.d
