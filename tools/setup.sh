#!/usr/bin/env bash
# One command from a fresh Debian 12 machine: dependencies, build, and the main job on the
# bundled example (for now the engine self-check; see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-deps.sh
make -j"$(nproc)"
build/faceup selfcheck
