#!/bin/sh
# Quick LFW sanity check of dlib-resnet (see lfw_sanity.c): bench/faces/lfw_sanity.sh [N]
set -eu
make -s build/libfaceup.a
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -march=native -fopenmp -Iinclude -Isrc -o build/lfw_sanity \
    bench/faces/lfw_sanity.c build/libfaceup.a -ldnnl -lpng -ljpeg -lcjson -lm
build/lfw_sanity "${FACEUP_MODELS:-$HOME/.cache/faceup/models}" "${FACEUP_SHARED:-../shared}/data/lfw" "${1:-20}"
