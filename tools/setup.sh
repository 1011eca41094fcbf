#!/usr/bin/env bash
# One command from a fresh Debian 12 machine: dependencies, build, the pinned face models, and
# the main job on the bundled example: `faceup upscale` of examples/thumb16.png (a 16x16 face
# drawn by hand, pixel by pixel, so no data set image is in the repository) with faceup's own
# generator (models/faceup-vae64.safetensors), 4 seeds, keeping the thumbnail's race.
# Results: build/example/ (upscaled faces, a comparison sheet, a JSON report).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-deps.sh
make -j"$(nproc)"
tools/fetch-models.sh
build/faceup selfcheck
mkdir -p build/example
status=0
build/faceup upscale examples/thumb16.png -o build/example/upscaled.png --seeds 4 --race keep --overwrite \
    --sheet build/example/sheet.png --json > build/example/report.json || status=$?
case $status in
    0) echo "example: every seed met eps; see build/example/sheet.png and report.json" ;;
    1) echo "example: no seed met eps (best attempts saved); see build/example/sheet.png and report.json" ;;
    *) exit "$status" ;;
esac
