"""PyTorch side of the operator benchmark: the cases `build/bench_ops --list` prints, timed the
same way (one warm-up, then repetitions until ~0.4 s or 15 runs, at least 3; median).

Usage: torch_ops.py THREADS [I] < cases   prints "name|shape|threads|median ms|GFLOP/s" for every
case (or only case number I, from 0).
Backward = input gradient + weight gradient of the op (torch.autograd.grad), as fu_graph_backward."""
import sys
import time

import torch
import torch.nn.functional as F


def make_case(name, n, c, h, w, o, k, stride, pad, groups):
    """Returns a function performing one timed unit of work."""
    if name == "sgemm":
        a, b = torch.randn(c, c), torch.randn(c, c)
        out = torch.empty(c, c)
        return lambda: torch.mm(a, b, out=out)
    backward = name.endswith("_bwd")
    x = torch.randn(n, c, h, w, requires_grad=backward)
    if name.startswith("convt"):
        wt = torch.randn(c, o // groups, k, k, requires_grad=backward)
        fwd = lambda: F.conv_transpose2d(x, wt, None, stride, pad, 0, groups)
    else:
        wt = torch.randn(o, c // groups, k, k, requires_grad=backward)
        fwd = lambda: F.conv2d(x, wt, None, stride, pad, 1, groups)
    if not backward:
        def run():
            with torch.no_grad():
                fwd()
        return run
    y = fwd()
    seed = torch.randn_like(y)
    return lambda: torch.autograd.grad(y, [x, wt], seed, retain_graph=True)


def median_ms(run):
    run()
    times = []
    start = time.perf_counter()
    while len(times) < 15 and (len(times) < 3 or time.perf_counter() - start < 0.4):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    m = len(times)
    return times[m // 2] if m % 2 else 0.5 * (times[m // 2 - 1] + times[m // 2])


def main():
    threads = int(sys.argv[1])
    only = int(sys.argv[2]) if len(sys.argv) > 2 else -1
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    for i, line in enumerate(sys.stdin):
        if only >= 0 and i != only:
            continue
        f = line.split()
        name, shape, ints, flops = f[0], f[1], [int(v) for v in f[2:11]], float(f[11])
        ms = median_ms(make_case(name, *ints))
        print(f"{name}|{shape}|{threads}|{ms:.3f}|{flops / (ms * 1e6):.1f}", flush=True)


if __name__ == "__main__":
    main()
