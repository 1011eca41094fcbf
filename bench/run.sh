#!/bin/sh
# Runs the operator benchmark: build/bench_ops (faceup) and bench/torch_ops.py (Debian's
# python3-torch) on the same cases with 1 and 2 threads, then prints one table.
# The machine is shared, so load from others comes and goes: each case runs in faceup then torch
# back to back (both see the same load), the whole suite runs BENCH_ROUNDS times (default 2), and
# each side keeps its best median over the rounds.
# Usage (from the repository root, after `make build/bench_ops`): bench/run.sh [case-filter]
# (a substring of "name shape", e.g. conv_bwd or g128). Environment: BENCH_THREADS (default "1 2").
set -eu
BIN=build/bench_ops
PY=/usr/bin/python3  # the system interpreter has torch; a pyenv python3 may not
FILTER=${1:-}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
"$BIN" --list >"$OUT/cases"
# One pass over the cases for one thread count: faceup then torch, case by case.
run_cases() {
    i=0
    while read -r name shape rest; do
        case "$name $shape" in
        *"$FILTER"*)
            echo "threads $1: $name $shape" >&2
            FACEUP_THREADS=$1 OMP_NUM_THREADS=$1 "$BIN" $i >>"$OUT/faceup"
            OMP_NUM_THREADS=$1 "$PY" bench/torch_ops.py "$1" $i <"$OUT/cases" >>"$OUT/torch" ;;
        esac
        i=$((i + 1))
    done <"$OUT/cases"
}
for round in $(seq "${BENCH_ROUNDS:-2}"); do
    for t in ${BENCH_THREADS:-1 2}; do
        echo "round $round" >&2
        run_cases "$t"
    done
done
"$PY" - "$OUT/faceup" "$OUT/torch" <<'PYEOF'
import statistics, sys
def load(path):
    rows = {}
    for line in open(path):
        name, shape, threads, ms, gflops = line.strip().split("|")
        key = (name, shape, int(threads))
        if key not in rows or float(ms) < rows[key][0]:
            rows[key] = (float(ms), float(gflops))
    return rows
fu, th = load(sys.argv[1]), load(sys.argv[2])
# Peak per thread count: the best sgemm rate either side measured.
peak = {}
for rows in (fu, th):
    for (name, _, t), (_, gf) in rows.items():
        if name == "sgemm":
            peak[t] = max(peak.get(t, 0), gf)
print(f"{'op':<10} {'shape':<30} {'thr':>3} {'faceup ms':>10} {'torch ms':>10} {'ratio':>6} {'GFLOP/s':>8} {'%peak':>6}")
ratios = []
for key in fu:
    name, shape, t = key
    ms, gf = fu[key]
    tms = th[key][0] if key in th else float("nan")
    r = ms / tms
    ratios.append((r, key))
    pk = f"{100 * gf / peak[t]:5.0f}%" if t in peak else "    -"
    print(f"{name:<10} {shape:<30} {t:>3} {ms:>10.2f} {tms:>10.2f} {r:>6.2f} {gf:>8.1f} {pk:>6}")
print("sgemm peak (GFLOP/s): " + ", ".join(f"{t} thr {p:.1f}" for t, p in sorted(peak.items())))
if ratios:
    worst = max(ratios)
    med = statistics.median(r for r, _ in ratios)
    print(f"worst ratio {worst[0]:.2f} ({worst[1][0]} {worst[1][1]} {worst[1][2]} thr), target <= 1.25: {'ok' if worst[0] <= 1.25 else 'MISSED'}")
    print(f"median ratio {med:.2f}, target <= 1.00: {'ok' if med <= 1.0 else 'MISSED'}")
    over = [f"{k[0]} {k[1]} {k[2]}thr ({r:.2f})" for r, k in sorted(ratios, reverse=True) if r > 1.25]
    if over:
        print("over 1.25x: " + "; ".join(over))
PYEOF
