#!/bin/sh
# IR-SE50 training step (batch 8: forward, ArcFace + cross entropy, backward, SGD momentum update)
# in faceup (build/bench_irse) against PyTorch (bench/irse/irse_torch.py, Debian's python3-torch),
# with 1 and 2 threads. The machine is shared: for each thread count the two run back to back
# (same load), the whole comparison runs BENCH_ROUNDS times (default 2), and each side keeps its
# best median. Both print their parameter count, which must agree (same layer shapes).
# Usage (repository root): make build/bench_irse && bench/irse/run.sh   (BENCH_STEPS, default 3)
set -eu
PY=/usr/bin/python3
STEPS=${BENCH_STEPS:-3}
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
for round in $(seq "${BENCH_ROUNDS:-2}"); do
    for t in ${BENCH_THREADS:-1 2}; do
        echo "round $round, $t thread(s)" >&2
        echo "faceup|$t|$(FACEUP_THREADS=$t OMP_NUM_THREADS=$t build/bench_irse "$STEPS")" >>"$OUT"
        echo "torch|$t|$(OMP_NUM_THREADS=$t "$PY" bench/irse/irse_torch.py "$t" "$STEPS")" >>"$OUT"
    done
done
"$PY" - "$OUT" <<'PYEOF'
import sys
best, params = {}, {}
for line in open(sys.argv[1]):
    side, t, n, ms = line.strip().split("|")
    key = (side, int(t))
    params[side] = int(n)
    best[key] = min(best.get(key, float("inf")), float(ms))
assert params["faceup"] == params["torch"], f"parameter counts differ: {params}"
print(f"IR-SE50, {params['faceup']:,} parameters (both sides), batch 8, 112x112")
print(f"{'threads':>7} {'faceup ms':>10} {'torch ms':>10} {'ratio':>6}")
worst = 0
for t in sorted({t for _, t in best}):
    r = best[("faceup", t)] / best[("torch", t)]
    worst = max(worst, r)
    print(f"{t:>7} {best[('faceup', t)]:>10.0f} {best[('torch', t)]:>10.0f} {r:>6.2f}")
print(f"worst ratio {worst:.2f}, target <= 1.00: {'ok' if worst <= 1.0 else 'MISSED'}")
PYEOF
