#!/usr/bin/env bash
# The ABI check: the dynamic symbols libfaceup.so exports must be exactly the list checked in as
# include/faceup.symbols, so that a change to the public API is a deliberate change of that file.
# Usage: tools/abi-check.sh LIBRARY [--update]   (--update rewrites the list from LIBRARY)
set -euo pipefail
cd "$(dirname "$0")/.."
lib=$1
list=include/faceup.symbols
exported() { nm -D --defined-only "$lib" | awk '{print $3}' | LC_ALL=C sort; }
if [ "${2:-}" = "--update" ]; then
    exported > "$list"
    echo "abi-check: wrote $list ($(wc -l < "$list") symbols)"
    exit 0
fi
if ! diff -u "$list" <(exported); then
    echo "abi-check: $lib exports a different symbol list than $list (above: - checked in, + built)." >&2
    echo "If the public API changed on purpose: make abi-update, and commit $list." >&2
    exit 1
fi
echo "abi-check: $lib exports the $(wc -l < "$list") symbols of $list"
