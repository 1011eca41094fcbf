"""PyTorch peer of faceup's StyleGAN generators, for bench/run.sh (`stylegan` part).

An independent PyTorch implementation of the two synthesis networks, written from the facts in
../shared/golden/README.md (not from faceup's C code):
  v1: PULSE's G_synthesis (state_dict names "blocks.RxR.conv0_up.weight", "torgb.bias", ...),
      nearest x2 + 3x3 conv below 128, the fused transposed conv (summed 4x4 kernel) from 128 up,
      [1,2,1] blur, noise, leaky ReLU, instance norm, style modulation;
  v2: rosinality's Generator (names "g_ema.convs.3.conv.weight", ...), modulated convs with the
      style folded into the weight (rosinality's fused_modconv), demodulation, transposed-conv
      upsampling + [1,3,3,1] FIR blur, noise, fused leaky ReLU, ToRGB with upsampled skips.
Weights are the stored (equalised-lr) tensors; the runtime multipliers are applied here.

Commands (run with Debian's /usr/bin/python3):
  golden GOLDEN_DIR            match ../shared/golden/stylegan{1,2} (image and gradients) with the
                               README's tolerance max|diff| <= 1e-4 max|golden|; exit 1 on a miss
  make v1|v2 RES DIR           random weights at RES (v1: PULSE FFHQ widths; v2: config-f) as
                               DIR/<v>_<RES>.pt, and inputs (latents, noise maps, cotangent R) as
                               DIR/<v>_<RES>_inputs.pt
  time v1|v2 RES DIR THREADS   forward + backward (gradients of sum(image*R) w.r.t. latents and
                               noise) on those files: one warm-up, then the median of BENCH_REPS runs;
                               prints "v|res|threads|median ms|peak RSS MiB" and writes the image
                               and gradients to DIR/<v>_<RES>_torch.pt for faceup to compare with.
Environment: BENCH_REPS (default 3)."""
import math
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

# Stride-2 transposed convolutions: F.conv_transpose2d runs aten::slow_conv_transpose2d on this
# torch 1.13 CPU build (no oneDNN kernel), about 30x slower than its oneDNN conv2d. The same map is
# a plain convolution of the zero-upsampled input with the flipped kernel, which costs 4x the
# multiply-adds but runs in oneDNN. TORCH_CONVT=direct selects F.conv_transpose2d instead.
CONVT_DIRECT = os.environ.get("TORCH_CONVT", "dilated") == "direct"


def conv_transpose_s2(x, w, padding):
    """F.conv_transpose2d(x, w, stride=2, padding=padding), w [Cin, Cout, k, k]."""
    if CONVT_DIRECT:
        return F.conv_transpose2d(x, w, stride=2, padding=padding)
    n, c, h, wd = x.shape
    k = w.shape[-1]
    up = F.pad(x.reshape(n, c, h, 1, wd, 1), (0, 1, 0, 0, 0, 1)).reshape(n, c, 2 * h, 2 * wd)[:, :, : 2 * h - 1, : 2 * wd - 1]
    return F.conv2d(up, torch.flip(w, (2, 3)).transpose(0, 1), padding=k - 1 - padding)


# ---------------------------------------------------------------- StyleGAN v1 (PULSE)


def sg1_layer_count(sd):
    return 2 * sum(1 for k in sd if k.endswith(".conv1.weight")) + 2


def sg1_epilogue(sd, x, block, e, dlat, noise):
    """noise, leaky ReLU, instance norm, style x*(s0+1)+s1."""
    p = f"blocks.{block}.epi{e}."
    c = x.shape[1]
    x = x + sd[p + "noise.weight"].view(1, c, 1, 1) * noise
    x = F.leaky_relu(x, 0.2)
    x = x - x.mean(dim=(2, 3), keepdim=True)
    x = x * torch.rsqrt(x.pow(2).mean(dim=(2, 3), keepdim=True) + 1e-5)
    w = sd[p + "style_mod.lin.weight"]
    s = F.linear(dlat, w * (1 / math.sqrt(w.shape[1])), sd[p + "style_mod.lin.bias"]).view(-1, 2, c, 1, 1)
    return x * (s[:, 0] + 1) + s[:, 1]


def sg1_conv(x, w, b, pad):
    return F.conv2d(x, w * (math.sqrt(2) / math.sqrt(w[0].numel())), b, padding=pad)


def sg1_upscale_conv(sd, x, block):
    """x2 upscale + 3x3 conv (fused transposed conv when the output is >= 128), blur, bias."""
    w = sd[f"blocks.{block}.conv0_up.weight"]
    w = w * (math.sqrt(2) / math.sqrt(w[0].numel()))
    if 2 * min(x.shape[2], x.shape[3]) >= 128:
        w = F.pad(w.permute(1, 0, 2, 3), (1, 1, 1, 1))
        w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]
        x = conv_transpose_s2(x, w, 1)
    else:
        x = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), w, padding=1)
    c = x.shape[1]
    blur = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype)
    k = (blur[:, None] * blur[None, :] / 16).expand(c, 1, 3, 3)
    x = F.conv2d(x, k, padding=1, groups=c)
    return x + sd[f"blocks.{block}.conv0_up.bias"].view(1, c, 1, 1)


def sg1_forward(sd, dlatents, noise):
    n = dlatents.shape[0]
    x = (sd["blocks.4x4.const"] + sd["blocks.4x4.bias"].view(1, -1, 1, 1)).expand(n, -1, -1, -1)
    x = sg1_epilogue(sd, x, "4x4", 1, dlatents[:, 0], noise[0])
    x = sg1_conv(x, sd["blocks.4x4.conv.weight"], sd["blocks.4x4.conv.bias"], 1)
    x = sg1_epilogue(sd, x, "4x4", 2, dlatents[:, 1], noise[1])
    for i in range(2, sg1_layer_count(sd), 2):
        r = 4 << (i // 2)
        block = f"{r}x{r}"
        x = sg1_upscale_conv(sd, x, block)
        x = sg1_epilogue(sd, x, block, 1, dlatents[:, i], noise[i])
        x = sg1_conv(x, sd[f"blocks.{block}.conv1.weight"], sd[f"blocks.{block}.conv1.bias"], 1)
        x = sg1_epilogue(sd, x, block, 2, dlatents[:, i + 1], noise[i + 1])
    w = sd["torgb.weight"]
    return F.conv2d(x, w * (1 / math.sqrt(w[0].numel())), sd["torgb.bias"])


def sg1_random(res, seed=1):
    """PULSE FFHQ widths (fmap_base 8192, fmap_max 512), N(0,1) weights, small biases."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, std=1.0):
        return torch.randn(*shape, generator=g) * std

    def ch(r):
        return min(8192 // (2 ** (int(math.log2(r)) - 1)), 512)

    d = 512
    sd = {}
    blur = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]).view(1, 1, 3, 3) / 16
    c = ch(4)
    sd["blocks.4x4.const"] = rnd(1, c, 4, 4)
    sd["blocks.4x4.bias"] = rnd(c, std=0.2)
    for r in [4 << i for i in range(int(math.log2(res)) - 1)]:
        b = f"blocks.{r}x{r}."
        cin, c = c, ch(r)
        if r == 4:
            sd[b + "conv.weight"], sd[b + "conv.bias"] = rnd(c, c, 3, 3), rnd(c, std=0.2)
        else:
            sd[b + "conv0_up.weight"], sd[b + "conv0_up.bias"] = rnd(c, cin, 3, 3), rnd(c, std=0.2)
            sd[b + "conv0_up.intermediate.kernel"] = blur.clone()
            sd[b + "conv1.weight"], sd[b + "conv1.bias"] = rnd(c, c, 3, 3), rnd(c, std=0.2)
        for e in (1, 2):
            sd[b + f"epi{e}.noise.weight"] = rnd(c, std=0.2)
            sd[b + f"epi{e}.style_mod.lin.weight"] = rnd(2 * c, d)
            sd[b + f"epi{e}.style_mod.lin.bias"] = rnd(2 * c, std=0.2)
    sd["torgb.weight"], sd["torgb.bias"] = rnd(3, c, 1, 1), rnd(3, std=0.2)
    return sd


def sg1_noise_res(i):
    return 4 << (i // 2)


# ---------------------------------------------------------------- StyleGAN2 (rosinality)


def sg2_fir(x, kernel, up, pad0, pad1):
    """upfirdn2d with down = 1: zero insertion by `up`, pad (pad0 before, pad1 after) on both
    axes, correlation with the flipped kernel per channel."""
    n, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(n, c, h, 1, w, 1), (0, up - 1, 0, 0, 0, up - 1)).reshape(n, c, h * up, w * up)
    x = F.pad(x, (pad0, pad1, pad0, pad1))
    k = torch.flip(kernel, (0, 1)).expand(c, 1, *kernel.shape)
    return F.conv2d(x, k, groups=c)


def sg2_modconv(sd, p, x, style, demodulate, upsample):
    """rosinality's ModulatedConv2d with fused_modconv: the style scales the weight per sample
    (a grouped conv over the batch)."""
    w = sd[p + "conv.weight"]  # [1, Cout, Cin, k, k]
    _, cout, cin, k, _ = w.shape
    mw = sd[p + "conv.modulation.weight"]
    s = F.linear(style, mw * (1 / math.sqrt(mw.shape[1])), sd[p + "conv.modulation.bias"])
    n = x.shape[0]
    weight = w * (1 / math.sqrt(cin * k * k)) * s.view(n, 1, cin, 1, 1)
    if demodulate:
        weight = weight * torch.rsqrt(weight.pow(2).sum((2, 3, 4), keepdim=True) + 1e-8)
    x = x.reshape(1, n * cin, x.shape[2], x.shape[3])
    if upsample:
        weight = weight.transpose(1, 2).reshape(n * cin, cout, k, k)
        x = conv_transpose_s2(x, weight, 0) if n == 1 else F.conv_transpose2d(x, weight, stride=2, groups=n)
        x = x.reshape(n, cout, x.shape[2], x.shape[3])
        blur = sd[p + "conv.blur.kernel"]
        pad = blur.shape[0] - 2 - (k - 1)
        return sg2_fir(x, blur, 1, (pad + 1) // 2 + 1, pad // 2 + 1)
    x = F.conv2d(x, weight.reshape(n * cout, cin, k, k), padding=k // 2, groups=n)
    return x.reshape(n, cout, x.shape[2], x.shape[3])


def sg2_styled_conv(sd, p, x, style, noise, upsample):
    x = sg2_modconv(sd, p, x, style, True, upsample)
    x = x + sd[p + "noise.weight"] * noise
    return F.leaky_relu(x + sd[p + "activate.bias"].view(1, -1, 1, 1), 0.2) * math.sqrt(2)


def sg2_to_rgb(sd, p, x, style, skip):
    y = sg2_modconv(sd, p, x, style, False, False) + sd[p + "bias"]
    if skip is None:
        return y
    k = sd[p + "upsample.kernel"]
    pad = k.shape[0] - 2
    return y + sg2_fir(skip, k, 2, (pad + 1) // 2 + 1, pad // 2)


def sg2_n_convs(sd):
    return sum(1 for k in sd if k.startswith("convs.") and k.endswith(".conv.weight"))


def sg2_forward(sd, latent, noise):
    n = latent.shape[0]
    x = sd["input.input"].expand(n, -1, -1, -1)
    x = sg2_styled_conv(sd, "conv1.", x, latent[:, 0], noise[0], False)
    skip = sg2_to_rgb(sd, "to_rgb1.", x, latent[:, 1], None)
    for b in range(sg2_n_convs(sd) // 2):
        x = sg2_styled_conv(sd, f"convs.{2 * b}.", x, latent[:, 2 * b + 1], noise[2 * b + 1], True)
        x = sg2_styled_conv(sd, f"convs.{2 * b + 1}.", x, latent[:, 2 * b + 2], noise[2 * b + 2], False)
        skip = sg2_to_rgb(sd, f"to_rgbs.{b}.", x, latent[:, 2 * b + 3], skip)
    return skip


def sg2_mapping(sd, z):
    """Pixel norm, then EqualLinear (lr_mul 0.01) + leaky ReLU * sqrt(2) per layer."""
    x = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
    i = 1
    while f"style.{i}.weight" in sd:
        w = sd[f"style.{i}.weight"]
        x = F.linear(x, w * (0.01 / math.sqrt(w.shape[1])))
        x = F.leaky_relu(x + sd[f"style.{i}.bias"] * 0.01, 0.2) * math.sqrt(2)
        i += 1
    return x


def sg2_random(size, seed=1):
    """Config-f (channel multiplier 2, style 512, 8 mapping layers), rosinality's names."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, std=1.0, mean=0.0):
        return torch.randn(*shape, generator=g) * std + mean

    def ch(r):
        return 512 if r <= 32 else 256 * 2 * 64 // r

    d = 512
    k1 = torch.tensor([1.0, 3.0, 3.0, 1.0])
    fir = k1[:, None] * k1[None, :] / 64 * 4
    sd = {}
    for i in range(1, 9):
        sd[f"style.{i}.weight"], sd[f"style.{i}.bias"] = rnd(d, d, std=100.0), rnd(d)
    sd["input.input"] = rnd(1, ch(4), 4, 4)

    def conv(p, cin, cout, rgb, upsample):
        k = 1 if rgb else 3
        sd[p + "conv.weight"] = rnd(1, cout, cin, k, k)
        sd[p + "conv.modulation.weight"] = rnd(cin, d)
        sd[p + "conv.modulation.bias"] = rnd(cin, std=0.2, mean=1.0)
        if rgb:
            sd[p + "bias"] = rnd(1, cout, 1, 1, std=0.2)
            if upsample:
                sd[p + "upsample.kernel"] = fir.clone()
        else:
            sd[p + "noise.weight"] = rnd(1, std=0.2)
            sd[p + "activate.bias"] = rnd(cout, std=0.2)
            if upsample:
                sd[p + "conv.blur.kernel"] = fir.clone()

    c = ch(4)
    conv("conv1.", c, c, False, False)
    conv("to_rgb1.", c, 3, True, False)
    n_noise = 1
    for b, r in enumerate(8 << i for i in range(int(math.log2(size)) - 2)):
        cin, c = c, ch(r)
        conv(f"convs.{2 * b}.", cin, c, False, True)
        conv(f"convs.{2 * b + 1}.", c, c, False, False)
        conv(f"to_rgbs.{b}.", c, 3, True, True)
        n_noise += 2
    for i in range(n_noise):
        r = sg2_noise_res(i)
        sd[f"noises.noise_{i}"] = rnd(1, 1, r, r)
    return sd


def sg2_noise_res(i):
    return 4 << ((i + 1) // 2)


# ---------------------------------------------------------------- goldens


def load_npy(folder, name):
    return torch.from_numpy(np.load(os.path.join(folder, "npy", name + ".npy")))


def check(folder, name, value, tol=1e-4):
    gold = load_npy(folder, name)
    diff = (value.detach() - gold).abs().max().item()
    limit = tol * gold.abs().max().item()
    ok = diff <= limit
    print(f"  {os.path.basename(folder)}/{name}: max diff {diff:.3g}, limit {limit:.3g} {'ok' if ok else 'MISSED'}")
    return ok


def golden(root):
    torch.set_num_threads(1)
    ok = True
    folder = os.path.join(root, "stylegan1")
    sd = torch.load(os.path.join(folder, "weights.pt"))
    n_layers = sg1_layer_count(sd)
    dl = load_npy(folder, "dlatents").requires_grad_(True)
    noise = [load_npy(folder, f"noise_{i}").requires_grad_(True) for i in range(n_layers)]
    img = sg1_forward(sd, dl, noise)
    grads = torch.autograd.grad((img * load_npy(folder, "R")).sum(), [dl] + noise)
    ok &= check(folder, "image", img)
    ok &= check(folder, "grad_dlatents", grads[0])
    for i in range(n_layers):
        ok &= check(folder, f"grad_noise_{i}", grads[1 + i])

    folder = os.path.join(root, "stylegan2")
    sd = torch.load(os.path.join(folder, "weights.pt"))["g_ema"]
    n_noise = sg2_n_convs(sd) + 1
    lat = load_npy(folder, "latent").requires_grad_(True)
    noise = [load_npy(folder, f"noise_{i}").requires_grad_(True) for i in range(n_noise)]
    img = sg2_forward(sd, lat, noise)
    grads = torch.autograd.grad((img * load_npy(folder, "R")).sum(), [lat] + noise)
    ok &= check(folder, "image", img)
    ok &= check(folder, "grad_latent", grads[0])
    for i in range(n_noise):
        ok &= check(folder, f"grad_noise_{i}", grads[1 + i])
    z = load_npy(folder, "z").requires_grad_(True)
    w = sg2_mapping(sd, z)
    ok &= check(folder, "w", w)
    img_z = sg2_forward(sd, w.unsqueeze(1).expand(-1, lat.shape[1], -1), noise)
    ok &= check(folder, "grad_z", torch.autograd.grad((img_z * load_npy(folder, "R")).sum(), z)[0])
    print("goldens: " + ("all within tolerance" if ok else "MISSED"))
    return 0 if ok else 1


# ---------------------------------------------------------------- benchmark files and timing


def paths(kind, res, folder):
    base = os.path.join(folder, f"{kind}_{res}")
    return base + ".pt", base + "_inputs.pt", base + "_torch.pt"


def make(kind, res, folder):
    wpath, ipath, _ = paths(kind, res, folder)
    if kind == "v1":
        sd = sg1_random(res)
        n_lat, n_noise, noise_res, to_save = sg1_layer_count(sd), sg1_layer_count(sd), sg1_noise_res, sd
    else:
        sd = sg2_random(res)
        n_noise = sg2_n_convs(sd) + 1
        n_lat, noise_res, to_save = n_noise + 1, sg2_noise_res, {"g_ema": sd}
    torch.save(to_save, wpath)
    g = torch.Generator().manual_seed(2)
    inputs = {"latents": torch.randn(1, n_lat, 512, generator=g)}
    for i in range(n_noise):
        inputs[f"noise_{i}"] = torch.randn(1, 1, noise_res(i), noise_res(i), generator=g)
    inputs["R"] = torch.randn(1, 3, res, res, generator=g)
    torch.save(inputs, ipath)
    return 0


def timed(kind, res, folder, threads):
    torch.set_num_threads(threads)
    wpath, ipath, opath = paths(kind, res, folder)
    sd = torch.load(wpath)
    forward = sg1_forward if kind == "v1" else sg2_forward
    if kind == "v2":
        sd = sd["g_ema"]
    inputs = torch.load(ipath)
    lat = inputs["latents"].requires_grad_(True)
    noise = [inputs[f"noise_{i}"].requires_grad_(True) for i in range(len(inputs) - 2)]
    r = inputs["R"]

    def run():
        img = forward(sd, lat, noise)
        return img, torch.autograd.grad(img, [lat] + noise, r)

    img, grads = run()
    times = []
    for _ in range(int(os.environ.get("BENCH_REPS", "3"))):
        del img, grads
        t0 = time.perf_counter()
        img, grads = run()
        times.append((time.perf_counter() - t0) * 1e3)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"image": img.detach(), "grad_latents": grads[0]}
    for i, gn in enumerate(grads[1:]):
        out[f"grad_noise_{i}"] = gn
    torch.save(out, opath)
    print(f"{kind}|{res}|{threads}|{statistics.median(times):.1f}|{rss_mib:.0f}", flush=True)
    return 0


def main(argv):
    if len(argv) == 2 and argv[0] == "golden":
        return golden(argv[1])
    if len(argv) == 4 and argv[0] == "make" and argv[1] in ("v1", "v2"):
        return make(argv[1], int(argv[2]), argv[3])
    if len(argv) == 5 and argv[0] == "time" and argv[1] in ("v1", "v2"):
        return timed(argv[1], int(argv[2]), argv[3], int(argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
