#!/bin/sh
# One training step of the sharpening stage (faceup train sharp: generator and discriminator,
# forward and backward, both Adam updates) in faceup and in PyTorch (Debian's python3-torch) on the
# same model, batch and step; BENCH_THREADS (default "1 2") threads each, BENCH_ROUNDS rounds
# (default 2) of faceup then torch back to back, best median of each side.
# Usage (repository root): bench/sharp/run.sh CKPT.safetensors MODEL.safetensors [BATCH]
#   CKPT: a `faceup train sharp` checkpoint (torch reads its VAE, stage and discriminator);
#   MODEL: the sharp generator beside it (faceup starts from its VAE and stage).
set -eu
PY=/usr/bin/python3
CKPT=$1 MODEL=$2 BATCH=${3:-8} STEPS=${BENCH_STEPS:-6}
make -s build/bench_sharp
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
for round in $(seq "${BENCH_ROUNDS:-2}"); do
    for t in ${BENCH_THREADS:-1 2}; do
        fu=$(FACEUP_THREADS=$t OMP_NUM_THREADS=$t build/bench_sharp "$MODEL" "$BATCH" "$STEPS")
        th=$(OMP_NUM_THREADS=$t "$PY" bench/sharp/torch_sharp_step.py "$CKPT" "$BATCH" "$STEPS" "$t")
        echo "round $round, $t thread(s): faceup $fu ms, torch $th ms" >&2
        echo "$t $fu $th" >>"$OUT"
    done
done
"$PY" - "$OUT" "$BATCH" <<'PYEOF'
import sys
best = {}
for line in open(sys.argv[1]):
    t, fu, th = line.split()
    f0, t0 = best.get(t, (float("inf"), float("inf")))
    best[t] = (min(f0, float(fu)), min(t0, float(th)))
print(f"batch {sys.argv[2]} real + {max(int(sys.argv[2]) // 2, 1)} prior faces per step")
print(f"{'threads':>7} {'faceup ms':>10} {'torch ms':>9} {'ratio':>6}")
for t, (fu, th) in sorted(best.items()):
    print(f"{t:>7} {fu:>10.1f} {th:>9.1f} {fu / th:>6.2f}")
PYEOF
