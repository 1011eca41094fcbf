#!/usr/bin/env bash
# The paper's experiment on held-out faces, run through faceup's own commands:
#
#   tools/eval-upscale.sh [N_PAIRS] [OUT_DIR]      (defaults: 20, build/eval-upscale)
#
# Faces: LFW (never trained on by faceup's generator or heads), the first N_PAIRS/10 same-person
# pairs of each of pairs.txt's 10 folds: photo i is the high-resolution face, photo j of the same
# person the identity reference. Per face: `faceup align --size 256 --downscale 4` gives the 64x64
# FFHQ-aligned original, `--downscale 16` its 16x16 thumbnail (factor 4, PULSE's bicubic).
# Methods (faceup upscale, default generator, 1 seed, 100 steps, defaults otherwise):
#   pulse     100*L2+0.05*GEOCROSS only (plain PULSE)
#   identity  + 5*IDENTITY_SCORE towards photo j (the paper's identity goal)
#   race      + RACE_IS_k with k = the thumbnail classifier's race (--race keep)
# Judges NOT used by the search: faceres (human-models) descriptors for identity (cosine between
# the result and the 64x64 original) and gear for race (agreement of the result's class with the
# original's), both on the whole 64x64 image as the face (--no-detect).
# Output: OUT_DIR/summary.json and a table on stdout.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FU="$ROOT/build/faceup"
LFW="${FACEUP_SHARED:-$ROOT/../shared}/data/lfw"
N="${1:-20}"
OUT="${2:-$ROOT/build/eval-upscale}"
[ -x "$FU" ] || { echo "error: build faceup first (make)" >&2; exit 2; }
[ -f "$LFW/pairs.txt" ] || { echo "error: $LFW/pairs.txt not found (set FACEUP_SHARED)" >&2; exit 2; }
mkdir -p "$OUT"/{hr,thumb,pulse,identity,race}

python3 - "$LFW/pairs.txt" "$N" > "$OUT/pairs.tsv" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
folds, per = map(int, lines[0].split())
take = max(1, int(sys.argv[2]) // folds)
for f in range(folds):
    for k in range(take):
        name, i, j = lines[1 + f * 2 * per + k].split()
        print(f"{name}\t{int(i):04d}\t{int(j):04d}")
PY

k=0
while IFS=$'\t' read -r name i j; do
    k=$((k + 1)); id=$(printf '%03d' "$k")
    hr="$LFW/images/$name/${name}_$i.jpg"; ref="$LFW/images/$name/${name}_$j.jpg"
    echo "[$id] $name $i (reference $j)" >&2
    "$FU" align "$hr" -o "$OUT/hr/$id.png" --size 256 --downscale 4 --quiet || continue
    "$FU" align "$hr" -o "$OUT/thumb/$id.png" --size 256 --downscale 16 --quiet || continue
    "$FU" upscale "$OUT/thumb/$id.png" -o "$OUT/pulse/$id" --quiet --json --overwrite > "$OUT/pulse/$id.json" || true
    "$FU" upscale "$OUT/thumb/$id.png" -o "$OUT/identity/$id" --identity "$ref" --quiet --json --overwrite > "$OUT/identity/$id.json" || true
    "$FU" upscale "$OUT/thumb/$id.png" -o "$OUT/race/$id" --race keep --quiet --json --overwrite > "$OUT/race/$id.json" || true
done < "$OUT/pairs.tsv"

# The judges, batched per folder (a method's image is OUT/METHOD/ID.png or ID_no_solution.png).
for m in hr pulse identity race; do
    ls "$OUT/$m"/*.png > /dev/null 2>&1 || continue
    "$FU" embed --model faceres --no-detect --json --quiet "$OUT/$m"/*.png > "$OUT/$m.faceres.json" || true
    "$FU" analyze --no-detect --json --quiet "$OUT/$m"/*.png > "$OUT/$m.gear.json" || true
done

python3 - "$OUT" <<'PY'
import json, math, os, sys
out = sys.argv[1]
def by_id(path, key):
    try: rows = json.load(open(path))
    except Exception: return {}
    return {os.path.basename(r["file"]).split(".")[0].split("_")[0]: r[key] for r in rows if key in r}
def cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
hr_desc, hr_race = by_id(f"{out}/hr.faceres.json", "embedding"), by_id(f"{out}/hr.gear.json", "race")
summary = {"faces": len(hr_desc), "methods": {}}
for m in ["pulse", "identity", "race"]:
    desc, race = by_id(f"{out}/{m}.faceres.json", "embedding"), by_id(f"{out}/{m}.gear.json", "race")
    met, l2 = [], []
    for f in sorted(os.listdir(f"{out}/{m}")):
        if f.endswith(".json"):
            try: j = json.load(open(f"{out}/{m}/{f}"))
            except Exception: continue
            for job in j.get("results", []):
                met.append(job.get("status") == "ok")
                seeds = job.get("seeds", [])
                if seeds: l2.append(seeds[0]["waves"][-1]["l2"])
    ids = [i for i in hr_desc if i in desc]
    sims = [cos(hr_desc[i], desc[i]) for i in ids]
    per_class = {}
    for i in ids:
        if i in hr_race and i in race:
            c = per_class.setdefault(hr_race[i], [0, 0]); c[0] += hr_race[i] == race[i]; c[1] += 1
    kept = sum(v[0] for v in per_class.values()); total = sum(v[1] for v in per_class.values())
    summary["methods"][m] = {
        "faces": len(ids), "met_eps": sum(met) / len(met) if met else None,
        "mean_l2": sum(l2) / len(l2) if l2 else None,
        "identity_cosine_faceres": sum(sims) / len(sims) if sims else None,
        "race_preserved_gear": kept / total if total else None,
        "race_preserved_per_class": {k: f"{v[0]}/{v[1]}" for k, v in sorted(per_class.items())}}
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)
print(f"{'method':10} {'faces':>5} {'met eps':>8} {'mean L2':>9} {'id cos (faceres)':>17} {'race kept (gear)':>17}  per class")
for m, r in summary["methods"].items():
    f = lambda v, p: "-" if v is None else f"{v:.{p}f}"
    print(f"{m:10} {r['faces']:5d} {f(r['met_eps'], 2):>8} {f(r['mean_l2'], 5):>9} {f(r['identity_cosine_faceres'], 4):>17} "
          f"{f(r['race_preserved_gear'], 2):>17}  {r['race_preserved_per_class']}")
PY
