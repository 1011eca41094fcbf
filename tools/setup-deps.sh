#!/usr/bin/env bash
# Installs faceup's build and test dependencies from Debian 12 packages (needs root or sudo).
set -euo pipefail
pkgs=(build-essential clang libomp-dev libdnnl-dev libpng-dev libjpeg62-turbo-dev libcjson-dev
      python3-torch python3-numpy libopenmpi-dev openmpi-bin libdlib-data)
# libdlib-data: dlib's 68-point landmark model (tools/fetch-models.sh copies it into the cache).
# Optional, for the dlib reference landmarks (tests/reference/dlib_reference.sh): libdlib-dev g++
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
