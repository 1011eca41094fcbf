#!/usr/bin/python3
"""Is the race head or the descriptor the limit? Other classifiers on the same descriptors, scored
as `faceup train race-offsets --folds 5` scores faceup's head: stratified 5-fold out-of-fold logits
of the UTKFace train faces of a fine-tune data file (face-api's descriptors, stored in it), per-class
offsets fitted by a leximin coordinate search (0.05 steps in [-6, 6]) so that the worst class beats
gear's anchors by the largest margin, then the recalls and that margin.

usage: tools/race-heads-oof.py runs/ftdata.bin        (needs python3-torch; about 10 min on 1 thread)
"""
import sys, numpy as np, torch

ANCHOR = np.array([.94, .66, .62, .58, .44])
REC = 96 + 8 + 8 + 8 + 512 + 3 * 150 * 150 + 2 * 3 * 64 * 64   # src/train/finetune_data.h


def utk_train_descriptors(path):
    mm = np.memmap(path, dtype=np.uint8, mode='r')
    assert bytes(mm[:8]) == b'FUXCHIP1', 'not a fine-tune data file'
    n = int(np.frombuffer(mm[8:16].tobytes(), '<u8')[0])
    recs = mm[16:16 + n * REC].reshape(n, REC)
    split, race = recs[:, 97].astype(int), recs[:, 98].view(np.int8).astype(int)
    keep = (split == 0) & (race >= 0)
    desc = np.ascontiguousarray(recs[keep, 120:120 + 512]).view('<f4').reshape(-1, 128)
    return torch.tensor(desc), torch.tensor(race[keep])


def recalls(logits, y, b):
    p = (logits + b).argmax(1)
    return np.array([(p[y == c] == c).mean() for c in range(5)])


def fit_offsets(logits, y):
    b, grid = np.zeros(5), np.arange(-6, 6.001, 0.05)
    key = lambda b: tuple(np.sort(recalls(logits, y, b) - ANCHOR)) + (recalls(logits, y, b).mean(),)
    for _ in range(10):
        changed = False
        for c in range(5):
            best, value = key(b), b[c]
            for g in grid:
                trial = b.copy(); trial[c] = g
                if key(trial) > best: best, value, changed = key(trial), g, True
            b[c] = value
        if not changed: break
    return b - b[0]


def train(x, y, hidden, epochs, drop, wd, seed):
    gen = torch.Generator().manual_seed(seed); torch.manual_seed(seed)
    layers, d = [], x.shape[1]
    for h in hidden: layers += [torch.nn.Linear(d, h), torch.nn.ReLU(), torch.nn.Dropout(drop)]; d = h
    net = torch.nn.Sequential(*layers, torch.nn.Linear(d, 5))
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=wd)
    members = [torch.nonzero(y == c)[:, 0] for c in range(5)]
    for _ in range(epochs * len(y) // 128):   # class-balanced batches, as faceup's head trainer
        cls = torch.randint(0, 5, (128,), generator=gen).tolist()
        pick = torch.stack([members[c][torch.randint(0, len(members[c]), (1,), generator=gen)][0] for c in cls])
        loss = torch.nn.functional.cross_entropy(net(x[pick]), y[pick])
        opt.zero_grad(); loss.backward(); opt.step()
    return net.eval()


def out_of_fold(x, y, k, **cfg):
    fold, seen = np.zeros(len(y), int), np.zeros(5, int)
    for i, c in enumerate(y.tolist()): fold[i] = seen[c] % k; seen[c] += 1
    logits = np.zeros((len(y), 5), np.float32)
    for j in range(k):
        net = train(x[torch.tensor(fold != j)], y[torch.tensor(fold != j)], seed=j, **cfg)
        with torch.no_grad(): logits[fold == j] = net(x[torch.tensor(fold == j)]).numpy()
    return logits


def main():
    torch.set_num_threads(1)
    x, y = utk_train_descriptors(sys.argv[1])
    unit = x / x.norm(dim=1, keepdim=True) * 10
    print(f'{len(y)} UTKFace train faces, per class {np.bincount(y.numpy(), minlength=5).tolist()}')
    variants = [('MLP 256, 20 epochs', x, dict(hidden=[256], epochs=20, drop=0, wd=1e-4)),
                ('MLP 256, 60 epochs', x, dict(hidden=[256], epochs=60, drop=0, wd=1e-4)),
                ('linear, 40 epochs', x, dict(hidden=[], epochs=40, drop=0, wd=1e-4)),
                ('MLP 512-512, dropout 0.3', x, dict(hidden=[512, 512], epochs=40, drop=0.3, wd=1e-3)),
                ('MLP 1024, dropout 0.5', x, dict(hidden=[1024], epochs=40, drop=0.5, wd=1e-3)),
                ('MLP 256, unit-norm input x10', unit, dict(hidden=[256], epochs=40, drop=0, wd=1e-4))]
    for name, inputs, cfg in variants:
        logits, labels = out_of_fold(inputs, y, 5, **cfg), y.numpy()
        fitted = recalls(logits, labels, fit_offsets(logits, labels))
        argmax = recalls(logits, labels, np.zeros(5))
        print(f'{name:30s} argmax {np.round(100 * argmax, 1)} balanced {100 * argmax.mean():.1f} | offsets '
              f'{np.round(100 * fitted, 1)} worst margin {100 * (fitted - ANCHOR).min():+.1f}', flush=True)


main()
