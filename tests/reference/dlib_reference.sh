#!/usr/bin/env bash
# Builds tests/reference/dlib_landmarks.cpp against Debian's libdlib-dev and writes dlib's
# detector boxes and 68 landmarks for real faces into the model cache, where
# tests/test_face_landmarks.c finds them:
#   $FACEUP_MODELS/reference/dlib_landmarks.json   (default ~/.cache/faceup/models)
# Faces: the first image of the first 60 LFW people (sorted) and the first 40 UTKFace images.
# Needs: libdlib-dev, g++, ../shared/data (FACEUP_SHARED), tools/fetch-models.sh done.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SHARED="${FACEUP_SHARED:-$ROOT/../shared}"
CACHE="${FACEUP_MODELS:-$HOME/.cache/faceup/models}"
PREDICTOR="$CACHE/dlib/shape_predictor_68_face_landmarks.dat"
[ -f /usr/include/dlib/image_processing.h ] || { echo "error: libdlib-dev is not installed (apt-get install libdlib-dev)" >&2; exit 2; }
[ -f "$PREDICTOR" ] || { echo "error: $PREDICTOR missing; run tools/fetch-models.sh" >&2; exit 2; }
[ -d "$SHARED/data/lfw" ] || { echo "error: $SHARED/data/lfw missing (set FACEUP_SHARED)" >&2; exit 2; }
mkdir -p "$CACHE/reference"
bin="$(mktemp -d)/dlib_landmarks"
trap 'rm -rf "$(dirname "$bin")"' EXIT
g++ -O2 -std=c++14 -o "$bin" "$ROOT/tests/reference/dlib_landmarks.cpp" $(pkg-config --cflags --libs dlib-1)
lfw=("$SHARED"/data/lfw/images/*/*_0001.jpg)
utk=("$SHARED"/data/utkface/images/*.jpg)
images=("${lfw[@]:0:60}" "${utk[@]:0:40}")
out="$CACHE/reference/dlib_landmarks.json"
"$bin" "$PREDICTOR" "${images[@]}" > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out ($(grep -c '"parts"' "$out") faces with a dlib detection of ${#images[@]} images)"
