#!/usr/bin/env bash
# TF.js parity: fetches the models, writes face inputs, runs the models in TF.js (node, pure JS
# CPU backend) for reference outputs and input gradients, then runs the C parity tests.
# dlib-resnet (dlib's face recognition ResNet) is run by face-api itself (dlib_resnet.mjs).
#
#   tools/parity.sh [model...]      default: every model of tests/parity/make_inputs.c
#
# Needs npm/node and the npm registry (first run), and ../shared/data (FACEUP_SHARED).
# Files: $FACEUP_MODELS (default ~/.cache/faceup/models)/parity/<model>.{inputs,tfjs}.safetensors
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export FACEUP_MODELS="${FACEUP_MODELS:-$HOME/.cache/faceup/models}"
SHARED="${FACEUP_SHARED:-$ROOT/../shared}"
MODELS="$FACEUP_MODELS/human-models-3.0.4/models"
OUT="$FACEUP_MODELS/parity"
ALL=(faceres gear emotion blazeface faceres-deep facemesh age gender mobileface mobilefacenet dlib-resnet)
if [ $# -gt 0 ]; then NAMES=("$@"); else NAMES=("${ALL[@]}"); fi

[ -d "$SHARED/data" ] || { echo "error: $SHARED/data not found; set FACEUP_SHARED" >&2; exit 1; }
tools/fetch-models.sh
make -j2 build/libfaceup.a build/faceup_tests
mkdir -p "$OUT" build/parity
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc -o build/parity/make_inputs tests/parity/make_inputs.c \
    build/libfaceup.a -ldnnl -lpng -ljpeg -lcjson -lm -fopenmp
build/parity/make_inputs "$SHARED/data" "$OUT"

(cd tests/parity && { [ -d node_modules/@vladmandic/face-api ] || npm ci --ignore-scripts --no-audit --no-fund; })
graph=()
tests=()
for n in "${NAMES[@]}"; do
    if [ "$n" = dlib-resnet ]; then
        node tests/parity/dlib_resnet.mjs "$FACEUP_MODELS/face-api-1.7.15/model" "$OUT"
        tests+=(dlib_resnet_parity)
    else
        graph+=("$n")
        tests+=("tfjs_parity_${n//-/_}")
    fi
done
[ ${#graph[@]} -eq 0 ] || node tests/parity/run.mjs "$MODELS" "$OUT" "${graph[@]}"
FACEUP_SHARED="$SHARED" build/faceup_tests "${tests[@]}"
