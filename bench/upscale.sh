#!/bin/sh
# Benchmark of `faceup upscale` (16x16 -> 64x64, 100 steps, 1 seed, PULSE's defaults) against
# the same search in PyTorch (bench/torch_upscale.py, Debian's python3-torch 1.13) on the same
# generator weights and the same thumbnail. Three generators:
#   vae     models/faceup-vae64.safetensors, faceup's default generator (decoder; the search starts
#           from its encoder's posterior sample on both sides)
#   golden  ../shared/golden/stylegan2/weights.pt (64x64, style 64, 2 mapping layers, 16-32 channels)
#   cfgf64  random weights with config-f's widths at 64x64 (style 512, 8 mapping layers, 512 channels),
#           written by torch_upscale.py make (so both sides load one file)
# The StyleGAN2s have random weights: no trained StyleGAN2 is available here.
# faceup's time is the search's own (JSON "seconds": graph build + 100 evaluations + 99 updates),
# torch's the same loop; model loading is outside both. Each case runs faceup then torch back to
# back; BENCH_ROUNDS rounds (default 2), best of each side.
# Usage (repository root, after `make`): bench/upscale.sh   Env: BENCH_THREADS (default "1 2"),
# BENCH_GENERATORS (default "vae golden cfgf64"; cfgf64 takes most of an hour on 2 busy cores).
set -eu
PY=/usr/bin/python3
BIN=build/faceup
SHARED=${FACEUP_SHARED:-../shared}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
WANT=" ${BENCH_GENERATORS:-vae golden cfgf64} "
GENS=""
case $WANT in *" vae "*) [ -f models/faceup-vae64.safetensors ] && GENS="$GENS vae=models/faceup-vae64.safetensors" ;; esac
case $WANT in *" golden "*) [ -f "$SHARED/golden/stylegan2/weights.pt" ] && GENS="$GENS golden=$SHARED/golden/stylegan2/weights.pt" ;; esac
case $WANT in *" cfgf64 "*) "$PY" bench/torch_upscale.py make "$OUT/cfgf64.pt" 64 512 8 2 && GENS="$GENS cfgf64=$OUT/cfgf64.pt" ;; esac
[ -n "$GENS" ] || { echo "bench/upscale.sh: no generator to run (BENCH_GENERATORS='${BENCH_GENERATORS:-}')" >&2; exit 2; }
for g in $GENS; do "$PY" bench/torch_upscale.py thumb "${g#*=}" 16 "$OUT/${g%%=*}.png"; done
for round in $(seq "${BENCH_ROUNDS:-2}"); do
    for t in ${BENCH_THREADS:-1 2}; do
        for g in $GENS; do
            name=${g%%=*} path=${g#*=}
            echo "round $round: $name, $t thread(s)" >&2
            FACEUP_THREADS=$t OMP_NUM_THREADS=$t "$BIN" upscale "$OUT/$name.png" --generator "$path" --steps 100 --seeds 1 --no-face-check \
                --json --quiet --overwrite -o "$OUT/${name}_up.png" >"$OUT/fu.json" || [ $? -eq 1 ]
            fu=$("$PY" -c 'import json,sys; w=json.load(open(sys.argv[1]))["results"][0]["seeds"][0]["waves"][0]; print(w["seconds"], w["loss"])' "$OUT/fu.json")
            th=$(OMP_NUM_THREADS=$t "$PY" bench/torch_upscale.py time "$path" "$OUT/$name.png" 100 "$t")
            echo "$name $t $fu $th" >>"$OUT/rows"
        done
    done
done
"$PY" - "$OUT/rows" <<'PYEOF'
import sys
best = {}
for line in open(sys.argv[1]):
    name, t, fs, fl, ts, tl = line.split()
    k = (name, int(t))
    fs, ts = float(fs), float(ts)
    old = best.get(k)
    best[k] = (min(fs, old[0]) if old else fs, min(ts, old[1]) if old else ts, float(fl), float(tl))
print(f"{'generator':<10} {'thr':>3} {'faceup s':>9} {'torch s':>9} {'ratio':>6} {'faceup ms/step':>15} {'best loss faceup/torch':>24}")
for (name, t), (fs, ts, fl, tl) in sorted(best.items()):
    print(f"{name:<10} {t:>3} {fs:>9.2f} {ts:>9.2f} {fs / ts:>6.2f} {1000 * fs / 100:>15.1f} {fl:>11.4f} / {tl:<10.4f}")
PYEOF
