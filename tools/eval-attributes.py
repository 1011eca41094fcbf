#!/usr/bin/env python3
"""Accuracy of `faceup analyze` against data-set labels.

  utkface: race (gear) on a stratified sample, PER images of each of the 5 classes (all of a
           class when it has fewer), drawn with a fixed seed; per-class recall and overall.
  celeba:  smiling = P(happy) (emotion) against CelebA's Smiling attribute on the first N
           images: accuracy at 0.5 and ROC AUC; also gender (gear) against Male.

Usage: tools/eval-attributes.py utkface|celeba [--data ../shared/data] [--per 200] [--n 1000]
       [--faceup build/faceup] [--no-detect]
Prints a JSON summary. Images without a detected face are counted and left out.
"""
import argparse, json, os, random, subprocess, sys

RACES = ["white", "black", "asian", "indian", "other"]


def analyze(faceup, files, no_detect):
    cmd = [faceup, "analyze", "--json", "--quiet"] + (["--no-detect"] if no_detect else []) + files
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode not in (0, 2):
        sys.exit(f"faceup analyze failed ({run.returncode}): {run.stderr.strip()}")
    return json.loads(run.stdout)


def auc(scores, labels):
    """Probability that a random positive scores above a random negative (ties count half)."""
    pairs = sorted(zip(scores, labels))
    wins, negatives, i = 0.0, 0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        pos = sum(l for _, l in pairs[i:j])
        neg = (j - i) - pos
        wins += pos * (negatives + 0.5 * neg)
        negatives += neg
        i = j
    positives = sum(labels)
    return wins / (positives * negatives) if positives and negatives else float("nan")


def utkface(a):
    folder = os.path.join(a.data, "utkface", "images")
    by_race = {r: [] for r in range(5)}
    for name in sorted(os.listdir(folder)):
        parts = name.split("_")
        if len(parts) >= 4 and parts[2].isdigit() and int(parts[2]) in by_race:
            by_race[int(parts[2])].append(name)
    files, truth = [], []
    for r in range(5):
        random.Random(r).shuffle(by_race[r])   # a fixed random sample: sorted order starts with the ages 1-10
        for name in by_race[r][: a.per]:
            files.append(os.path.join(folder, name))
            truth.append(r)
    results = analyze(a.faceup, files, a.no_detect)
    hits, counts, confusion, missing = [0] * 5, [0] * 5, [[0] * 5 for _ in range(5)], 0
    for res, t in zip(results, truth):
        if "error" in res:
            missing += 1
            continue
        p = RACES.index(res["race"])
        counts[t] += 1
        hits[t] += p == t
        confusion[t][p] += 1
    recall = {RACES[r]: hits[r] / counts[r] if counts[r] else None for r in range(5)}
    return {"images": len(files), "no_face": missing, "accuracy": sum(hits) / max(1, sum(counts)),
            "balanced_accuracy": sum(v for v in recall.values() if v is not None) / 5,
            "recall": recall, "per_class": dict(zip(RACES, counts)), "confusion_rows_truth": confusion}


def celeba(a):
    folder = os.path.join(a.data, "celeba")
    with open(os.path.join(folder, "list_attr_celeba.txt")) as f:
        f.readline()
        names = f.readline().split()
        rows = [line.split() for _, line in zip(range(a.n), f)]
    smile, male = names.index("Smiling") + 1, names.index("Male") + 1
    files = [os.path.join(folder, "images", r[0]) for r in rows]
    results = analyze(a.faceup, files, a.no_detect)
    scores, labels, gender_hits, missing = [], [], 0, 0
    for res, row in zip(results, rows):
        if "error" in res:
            missing += 1
            continue
        scores.append(res["smiling"])
        labels.append(1 if row[smile] == "1" else 0)
        gender_hits += (res["gender"] == "male") == (row[male] == "1")
    n = len(scores)
    acc = sum((s > 0.5) == bool(l) for s, l in zip(scores, labels)) / max(1, n)
    return {"images": len(files), "no_face": missing, "smiling_accuracy": acc, "smiling_auc": auc(scores, labels),
            "smiling_positive_rate": sum(labels) / max(1, n), "gender_accuracy": gender_hits / max(1, n)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("set", choices=["utkface", "celeba"])
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--per", type=int, default=200)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--faceup", default="build/faceup")
    p.add_argument("--no-detect", action="store_true")
    a = p.parse_args()
    print(json.dumps(utkface(a) if a.set == "utkface" else celeba(a), indent=1))


if __name__ == "__main__":
    main()
