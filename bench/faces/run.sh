#!/bin/sh
# Face-network benchmark: inference of dlib's face ResNet (dlib-resnet), gear and faceres at
# batch 1 and 8, and forward + backward (to the input) of dlib-resnet, in faceup
# (bench_faces.c) and in TF.js on node (tfjs_faces.mjs) with the wasm backend and the plain JS
# cpu backend; same cases, same inputs, one script run; prints one table of times and ratios.
# Each case runs faceup, then tfjs-wasm, then tfjs-cpu back to back (they see the same load).
# tfjs-cpu is single-threaded JS: it runs once per case (shown on both thread rows).
# Usage (repository root, models fetched): bench/faces/run.sh
# Environment: BENCH_THREADS (default "1 2"), BENCH_TFJS_CPU=0 skips the (slow) cpu backend,
# FACEUP_MODELS; OMP_WAIT_POLICY=passive avoids OpenMP spin-waiting on a loaded machine.
set -eu
M=${FACEUP_MODELS:-$HOME/.cache/faceup/models}
PY=/usr/bin/python3
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
make -s build/libfaceup.a
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -march=native -fopenmp -Iinclude -Isrc -o build/bench_faces \
    bench/faces/bench_faces.c build/libfaceup.a -ldnnl -lpng -ljpeg -lcjson -lm
(cd tests/parity && { [ -d node_modules/@vladmandic/face-api ] || npm ci --ignore-scripts --no-audit --no-fund; })
tfjs() { node bench/faces/tfjs_faces.mjs "$M" "$@" 2>/dev/null | grep '|'; }
for case in "dlib-resnet fwd" "dlib-resnet fwdbwd" "gear fwd" "faceres fwd"; do
    set -- $case
    for batch in 1 8; do
        for t in ${BENCH_THREADS:-1 2}; do
            echo "$1 $2 batch $batch, $t thread(s)" >&2
            FACEUP_THREADS=$t OMP_NUM_THREADS=$t build/bench_faces "$M" "$1" "$batch" "$2" | sed "s/\$/|faceup|$t/" >>"$OUT/rows"
            tfjs wasm "$t" "$1" "$batch" "$2" | sed "s/\$/|$t/" >>"$OUT/rows"
        done
        [ "${BENCH_TFJS_CPU:-1}" = 0 ] || tfjs cpu 1 "$1" "$batch" "$2" | sed "s/\$/|1/" >>"$OUT/rows"
    done
done
"$PY" - "$OUT/rows" <<'PYEOF'
import sys
rows = {}
used = {}
for line in open(sys.argv[1]):
    model, batch, threads_used, mode, ms, side, threads = line.strip().split("|")
    rows[(model, int(batch), mode, side, int(threads))] = float(ms)
    used[(side, int(threads))] = threads_used
keys = sorted({(m, b, mo, t) for (m, b, mo, s, t) in rows if s == "faceup"}, key=lambda k: (k[0] != "dlib-resnet", k[0], k[2], k[1], k[3]))
print(f"{'model':<12} {'mode':<7} {'batch':>5} {'thr':>3} {'faceup ms':>10} {'wasm ms':>9} {'cpu ms':>9} {'fu/wasm':>8} {'fu/cpu':>7}")
for m, b, mo, t in keys:
    fu = rows[(m, b, mo, "faceup", t)]
    wa = rows.get((m, b, mo, "tfjs-wasm", t), float("nan"))
    cp = rows.get((m, b, mo, "tfjs-cpu", 1), float("nan"))
    print(f"{m:<12} {mo:<7} {b:>5} {t:>3} {fu:>10.1f} {wa:>9.1f} {cp:>9.1f} {fu / wa:>8.3f} {fu / cp:>7.4f}")
print("threads actually used by tfjs-wasm (tf.getThreadsCount): " + ", ".join(f"asked {t}: {u}" for (s, t), u in sorted(used.items()) if s == "tfjs-wasm"))
PYEOF
