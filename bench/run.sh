#!/bin/sh
# Runs the benchmarks against PyTorch (Debian's python3-torch), each in its part:
#  ops       build/bench_ops (faceup) and bench/torch_ops.py on the same cases with 1 and 2
#            threads, then one table. The machine is shared, so load from others comes and goes:
#            each case runs in faceup then torch back to back (both see the same load), the whole
#            suite runs BENCH_ROUNDS times (default 2), and each side keeps its best median.
#  stylegan  StyleGAN v1 (PULSE) and StyleGAN2 (config-f) forward + backward at SG_SIZES
#            (default "256 1024"): bench/torch_stylegan.py first proves itself on the goldens
#            (when $FACEUP_SHARED/golden exists), writes random weights and inputs, then each
#            size/thread count runs torch then build/bench_stylegan on the same files; a table
#            of times, peak RSS and the output differences. BENCH_REPS timed runs per side
#            (default 1 here: a 1024 run takes minutes on 2 cores).
# Usage (from the repository root, after `make build/bench_ops build/bench_stylegan`):
#   bench/run.sh               both parts
#   bench/run.sh stylegan      the StyleGAN part only
#   bench/run.sh ops|FILTER    the operator part, optionally only cases whose "name shape"
#                              contains FILTER (e.g. conv_bwd or g128)
# Environment: BENCH_THREADS (default "1 2").
set -eu
BIN=build/bench_ops
PY=/usr/bin/python3  # the system interpreter has torch; a pyenv python3 may not
PART=all
FILTER=
case "${1:-}" in
"") ;;
stylegan | ops) PART=$1 ;;
*) PART=ops FILTER=$1 ;;
esac
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# ---- StyleGAN generators
run_stylegan() {
    SG=$OUT/stylegan
    mkdir -p "$SG"
    GOLDEN=${FACEUP_SHARED:-../shared}/golden
    if [ -d "$GOLDEN/stylegan1" ]; then
        "$PY" bench/torch_stylegan.py golden "$GOLDEN" >&2
    else
        echo "no goldens at $GOLDEN: the PyTorch peer is not re-checked" >&2
    fi
    for v in v1 v2; do
        for res in ${SG_SIZES:-256 1024}; do
            "$PY" bench/torch_stylegan.py make $v "$res" "$SG"
            for t in ${BENCH_THREADS:-1 2}; do
                echo "stylegan $v $res, threads $t" >&2
                OMP_NUM_THREADS=$t BENCH_REPS=${BENCH_REPS:-1} "$PY" bench/torch_stylegan.py time $v "$res" "$SG" "$t" >>"$SG/torch"
                FACEUP_THREADS=$t OMP_NUM_THREADS=$t BENCH_REPS=${BENCH_REPS:-1} build/bench_stylegan $v "$SG/${v}_$res.pt" \
                    "$SG/${v}_${res}_inputs.pt" "$SG/${v}_${res}_torch.pt" >>"$SG/faceup"
            done
            rm -f "$SG/${v}_$res"*.pt
        done
    done
    "$PY" - "$SG/faceup" "$SG/torch" <<'PYEOF'
import sys
fu = [l.strip().split("|") for l in open(sys.argv[1])]
th = {tuple(l.strip().split("|")[:3]): l.strip().split("|") for l in open(sys.argv[2])}
print(f"{'net':<4} {'size':>5} {'thr':>3} {'faceup ms':>10} {'torch ms':>10} {'ratio':>6} {'faceup MiB':>10} {'torch MiB':>10} {'img diff':>9} {'grad diff':>9} {'grad L2':>9}")
for v, size, t, ms, rss, dimg, dgrad, dl2 in fu:
    tv = th[(v, size, t)]
    print(f"{v:<4} {size:>5} {t:>3} {float(ms):>10.0f} {float(tv[3]):>10.0f} {float(ms) / float(tv[3]):>6.2f} {rss:>10} {tv[4]:>10} {dimg:>9} {dgrad:>9} {dl2:>9}")
print("ratio = faceup / torch time of one forward + backward (median of BENCH_REPS); MiB = peak RSS;")
print("diffs: max|faceup - torch| / max|torch| (image; worst gradient array), grad L2 = worst |diff| / |torch|")
PYEOF
}

if [ "$PART" = stylegan ] || [ "$PART" = all ]; then
    run_stylegan
fi
[ "$PART" = stylegan ] && exit 0

# ---- operators
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
