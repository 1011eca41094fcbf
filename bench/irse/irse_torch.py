"""IR-SE50 training-step benchmark, PyTorch side (see bench_irse.c): the same network written here
in plain torch.nn (the InsightFace Backbone 'ir_se' layout with the BN between the first conv and
the PReLU, as faceup's src/face/irse.c), batch 8 of 112x112, ArcFace logits (s 64, m 0.5) over
1000 classes, cross entropy, backward, SGD (momentum 0.9, weight decay 5e-4).

Usage: irse_torch.py THREADS [STEPS]   prints "params|median ms" like bench_irse."""
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH, N_IDS = 8, 1000


class SE(nn.Module):
    def __init__(self, c, r):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // r, 1, bias=False)
        self.fc2 = nn.Conv2d(c // r, c, 1, bias=False)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class Unit(nn.Module):
    def __init__(self, cin, depth, stride, se_reduction):
        super().__init__()
        if cin == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(cin, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(cin), nn.Conv2d(cin, depth, 3, 1, 1, bias=False), nn.BatchNorm2d(depth), nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth), SE(depth, se_reduction))

    def forward(self, x):
        return self.res_layer(x) + self.shortcut_layer(x)


class IRSE(nn.Module):
    """State-dict names are the ones faceup's safetensors files use (num_batches_tracked aside)."""

    def __init__(self, units=(3, 4, 14, 3), channels=(64, 128, 256, 512), input_size=112, embedding=512,
                 se_reduction=16, dropout=0.0):
        super().__init__()
        c0, c3, s = channels[0], channels[-1], input_size // 16
        self.input_layer = nn.Sequential(nn.Conv2d(3, c0, 3, 1, 1, bias=False), nn.BatchNorm2d(c0), nn.PReLU(c0))
        body, cin = [], c0
        for n, c in zip(units, channels):
            for i in range(n):
                body.append(Unit(cin, c, 2 if i == 0 else 1, se_reduction))
                cin = c
        self.body = nn.Sequential(*body)
        self.output_layer = nn.Sequential(nn.BatchNorm2d(c3), nn.Dropout(dropout), nn.Flatten(),
                                          nn.Linear(c3 * s * s, embedding), nn.BatchNorm1d(embedding))

    def forward(self, x):
        return self.output_layer(self.body(self.input_layer(x)))


def arcface_logits(emb, weight, labels, s=64.0, m=0.5):
    cos = F.linear(F.normalize(emb), F.normalize(weight)).clamp(-1, 1)
    sin = torch.sqrt((1 - cos * cos).clamp_min(1e-12))
    target = cos * math.cos(m) - sin * math.sin(m)
    onehot = F.one_hot(labels, weight.shape[0]).bool()
    return s * torch.where(onehot, target, cos)


def main():
    threads = int(sys.argv[1])
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = IRSE().train()
    head = nn.Parameter(torch.randn(N_IDS, 512) * 0.01)
    opt = torch.optim.SGD(list(model.parameters()) + [head], lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(BATCH, 3, 112, 112) * 2 - 1
    labels = torch.randint(0, N_IDS, (BATCH,))

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(arcface_logits(model(x), head, labels), labels)
        loss.backward()
        opt.step()

    step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    n = len(times)
    med = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    print(f"{sum(p.numel() for p in model.parameters())}|{med:.1f}")


if __name__ == "__main__":
    main()
