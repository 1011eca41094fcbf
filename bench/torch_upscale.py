"""The PULSE-style search of `faceup upscale` in PyTorch, as the benchmark's peer.

StyleGAN2 is written here from its published description in rosinality's layout (the
checkpoint's state_dict names and shapes; modulated convs with per-sample weights, as that
implementation runs them), with PULSE's search around it: z ~ N(0, I) [1, L, D] on its
sphere, each row through the mapping network, loss 100*L2 + 0.05*GEOCROSS on PULSE's bicubic
downscale, Adam lr 0.4 with linear1cycledrop, 5 trainable noise maps, last noise map zero,
100 evaluations and 99 updates (the last update is never evaluated, as in faceup).

  torch_upscale.py thumb WEIGHTS.pt SIDE OUT.png  -> a SIDExSIDE thumbnail: the generator's image
      for a latent drawn from torch seed 1 (zero noise), PULSE-downscaled, 8-bit PNG (+ OUT.png.npy)
  torch_upscale.py time WEIGHTS.pt THUMB.png STEPS THREADS  -> "seconds best_loss" of the loop
  torch_upscale.py make WEIGHTS.pt SIZE STYLE_DIM N_MLP CHANNEL_MULTIPLIER
      writes random weights {'g_ema': state_dict} with rosinality's names (faceup loads them)

WEIGHTS ending in .safetensors is faceup's own VAE (src/gen/vae.h; the file read here with the
safetensors header, no extra package), or its sharp generator (the VAE's decoder followed by the
2x sharpening stage of src/gen/sr.h, when the file has sr.* tensors): its decoder is the generator (one latent row, so
GEOCROSS is 0 and left out, no noise maps), and each search starts, as faceup's does by default,
from the encoder's posterior sample mu + exp(logvar / 2) * eps for the bicubic-upscaled
thumbnail, kept on the sphere of that start's radius. With a fitted prior in the file
(prior.mean, prior.scale_tril) the search moves the whitened latent w, z = mean + L w, and the
start is whitened, w = L^-1 (z - mean), as in faceup.
"""
import json
import math
import struct
import sys
import time
import zlib

import numpy as np

import torch
import torch.nn.functional as F

FIR = torch.tensor([1.0, 3.0, 3.0, 1.0])


def channels(res, cm):
    return 512 if res <= 32 else 256 * cm * 64 // res


def make_weights(path, size, style_dim, n_mlp, cm):
    torch.manual_seed(0)
    sd = {}
    kernel = torch.outer(FIR, FIR) / 64 * 4
    for i in range(n_mlp):
        sd[f"style.{i + 1}.weight"] = torch.randn(style_dim, style_dim) * 100  # lr_mul 0.01 divides
        sd[f"style.{i + 1}.bias"] = torch.randn(style_dim)

    def conv(name, cin, cout, rgb, up):
        k = 1 if rgb else 3
        sd[f"{name}.conv.weight"] = torch.randn(1, cout, cin, k, k)
        sd[f"{name}.conv.modulation.weight"] = torch.randn(cin, style_dim)
        sd[f"{name}.conv.modulation.bias"] = 1 + 0.2 * torch.randn(cin)
        if rgb:
            sd[f"{name}.bias"] = 0.2 * torch.randn(1, cout, 1, 1)
            if up:
                sd[f"{name}.upsample.kernel"] = kernel.clone()
        else:
            sd[f"{name}.activate.bias"] = 0.2 * torch.randn(cout)
            sd[f"{name}.noise.weight"] = 0.2 * torch.randn(1)
            if up:
                sd[f"{name}.conv.blur.kernel"] = kernel.clone()

    c = channels(4, cm)
    sd["input.input"] = torch.randn(1, c, 4, 4)
    conv("conv1", c, c, False, False)
    conv("to_rgb1", c, 3, True, False)
    res, b, n_noise = 8, 0, 1
    while res <= size:
        cin, c = c, channels(res, cm)
        conv(f"convs.{2 * b}", cin, c, False, True)
        conv(f"convs.{2 * b + 1}", c, c, False, False)
        conv(f"to_rgbs.{b}", c, 3, True, True)
        res, b, n_noise = res * 2, b + 1, n_noise + 2
    for i in range(n_noise):
        r = 4 << ((i + 1) // 2)
        sd[f"noises.noise_{i}"] = torch.randn(1, 1, r, r)
    torch.save({"g_ema": sd}, path)


def upfirdn2d(x, k, up, pad0, pad1):
    n, c, h, w = x.shape
    if up > 1:
        x = x.view(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).view(n, c, h * up, w * up)
    x = F.pad(x, [pad0, pad1, pad0, pad1])
    kk = torch.flip(k, [0, 1]).view(1, 1, *k.shape).repeat(c, 1, 1, 1)
    return F.conv2d(x, kk, groups=c)


class StyleGAN2:
    def __init__(self, path):
        sd = torch.load(path, map_location="cpu")
        sd = sd.get("g_ema", sd)
        self.sd = {k: v.float() for k, v in sd.items()}
        self.n_mlp = sum(1 for k in self.sd if k.startswith("style.") and k.endswith(".weight"))
        self.style_dim = self.sd["conv1.conv.modulation.weight"].shape[1]
        self.n_blocks = sum(1 for k in self.sd if k.startswith("to_rgbs.") and k.endswith(".conv.weight"))
        self.size = 4 << self.n_blocks
        self.n_latent = 2 * (self.n_blocks + 2) - 2
        self.n_noise = self.n_latent - 1
        self.kernel = torch.outer(FIR, FIR) / 64

    def mapping(self, z):
        x = z * torch.rsqrt((z * z).mean(1, keepdim=True) + 1e-8)
        d = self.style_dim
        for i in range(1, self.n_mlp + 1):
            x = F.linear(x, self.sd[f"style.{i}.weight"] * (0.01 / math.sqrt(d)))
            x = F.leaky_relu(x + self.sd[f"style.{i}.bias"] * 0.01, 0.2) * math.sqrt(2)
        return x

    def modconv(self, name, x, w, demod, up):
        wt = self.sd[f"{name}.conv.weight"]
        _, cout, cin, k, _ = wt.shape
        s = F.linear(w, self.sd[f"{name}.conv.modulation.weight"] / math.sqrt(self.style_dim),
                     self.sd[f"{name}.conv.modulation.bias"])
        weight = wt / math.sqrt(cin * k * k) * s.view(1, 1, cin, 1, 1)
        if demod:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(1, cout, 1, 1, 1)
        weight = weight.view(cout, cin, k, k)
        if up:
            y = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
            return upfirdn2d(y, self.kernel * 4, 1, 1, 1)
        return F.conv2d(x, weight, padding=k // 2)

    def styled(self, name, x, w, noise, up=False):
        x = self.modconv(name, x, w, True, up)
        x = x + self.sd[f"{name}.noise.weight"] * noise
        return F.leaky_relu(x + self.sd[f"{name}.activate.bias"].view(1, -1, 1, 1), 0.2) * math.sqrt(2)

    def to_rgb(self, name, x, w, skip):
        y = self.modconv(name, x, w, False, False) + self.sd[f"{name}.bias"]
        return y if skip is None else y + upfirdn2d(skip, self.kernel * 4, 2, 2, 1)

    def synthesis(self, latent, noise):
        x = self.styled("conv1", self.sd["input.input"], latent[:, 0], noise[0])
        skip = self.to_rgb("to_rgb1", x, latent[:, 1], None)
        for b in range(self.n_blocks):
            i = 2 * b + 1
            x = self.styled(f"convs.{2 * b}", x, latent[:, i], noise[i], up=True)
            x = self.styled(f"convs.{2 * b + 1}", x, latent[:, i + 1], noise[i + 1])
            skip = self.to_rgb(f"to_rgbs.{b}", x, latent[:, i + 2], skip)
        return skip


def read_safetensors(path):
    """{name: float32 tensor} of a safetensors file (8-byte header length, JSON header, data)."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] != "F32":
            raise ValueError(f"{path}: {name} is {e['dtype']}, expected F32")
        a, b = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=torch.float32).view(e["shape"])
    return out


class VAE:
    """faceup's VAE (src/gen/vae.h): decoder z -> linear -> 4x4 -> n x (nearest 2x, conv 3x3,
    leaky relu 0.2) -> conv 3x3 -> tanh; encoder n x (conv 4x4 stride 2, leaky relu) -> mu, logvar."""
    def __init__(self, path):
        self.sd = read_safetensors(path)
        self.n_stages = sum(1 for k in self.sd if k.startswith("dec.conv") and k.endswith(".weight"))
        self.dim = self.sd["dec.fc.weight"].shape[1]
        self.vae_size = 4 << self.n_stages
        self.sr_blocks = sum(1 for k in self.sd if k.startswith("sr.block") and k.endswith(".conv0.weight"))
        self.sharp = "sr.head.weight" in self.sd
        self.size = 2 * self.vae_size if self.sharp else self.vae_size
        self.prior = "prior.mean" in self.sd

    def latent(self, w):
        """The decoder's latent for a whitened w (w itself without a prior)."""
        return F.linear(w, self.sd["prior.scale_tril"], self.sd["prior.mean"]) if self.prior else w

    def whiten(self, z):
        if not self.prior:
            return z
        d = (z - self.sd["prior.mean"]).view(-1, 1)
        return torch.linalg.solve_triangular(self.sd["prior.scale_tril"], d, upper=False).view(1, -1)

    def decode(self, w):
        """The generator's image for a whitened w: decoder, then the stage of a sharp generator."""
        x = self.decode_raw(self.latent(w))
        return self.sharpen(x) if self.sharp else x

    def decode_raw(self, z):
        """The VAE's decoder on its own latent z."""
        sd = self.sd
        h = F.leaky_relu(F.linear(z, sd["dec.fc.weight"], sd["dec.fc.bias"]), 0.2).view(z.shape[0], -1, 4, 4)
        for i in range(self.n_stages):
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = F.leaky_relu(F.conv2d(h, sd[f"dec.conv{i}.weight"], sd[f"dec.conv{i}.bias"], padding=1), 0.2)
        return torch.tanh(F.conv2d(h, sd["dec.rgb.weight"], sd["dec.rgb.bias"], padding=1))

    def sharpen(self, x):
        """faceup's 2x sharpening stage (src/gen/sr.h): head conv, residual blocks, nearest 2x,
        two convs, RGB conv, added to the bicubic upscale of its input."""
        sd = self.sd

        def conv(name, h):
            return F.conv2d(h, sd[name + ".weight"], sd[name + ".bias"], padding=1)
        h = F.leaky_relu(conv("sr.head", x), 0.2)
        for i in range(self.sr_blocks):
            h = h + conv(f"sr.block{i}.conv1", F.leaky_relu(conv(f"sr.block{i}.conv0", h), 0.2))
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = F.leaky_relu(conv("sr.up1", F.leaky_relu(conv("sr.up0", h), 0.2)), 0.2)
        up = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
        return up + conv("sr.rgb", h)

    def encode(self, x):
        sd = self.sd
        h = x
        for i in range(self.n_stages):
            h = F.leaky_relu(F.conv2d(h, sd[f"enc.conv{i}.weight"], sd[f"enc.conv{i}.bias"], stride=2, padding=1), 0.2)
        h = h.flatten(1)
        return F.linear(h, sd["enc.mu.weight"], sd["enc.mu.bias"]), F.linear(h, sd["enc.logvar.weight"], sd["enc.logvar.bias"])


def bicubic_down(x, f):
    """PULSE's BicubicDownSample: 4f Keys taps (a = -0.5), reflect padding, rows then columns."""
    a = -0.5

    def cubic(t):
        t = abs(t)
        if t <= 1:
            return (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1
        if t < 2:
            return a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a
        return 0.0

    taps = torch.tensor([cubic((i - 2 * f + 0.5) / f) for i in range(4 * f)])
    taps = taps / taps.sum()
    c = x.shape[1]
    p0, p1 = 3 * f // 2, 3 * f - 3 * f // 2
    x = F.pad(x, [0, 0, p0, p1], mode="reflect")
    x = F.conv2d(x, taps.view(1, 1, -1, 1).repeat(c, 1, 1, 1), stride=(f, 1), groups=c)
    x = F.pad(x, [p0, p1, 0, 0], mode="reflect")
    return F.conv2d(x, taps.view(1, 1, 1, -1).repeat(c, 1, 1, 1), stride=(1, f), groups=c)


def geocross(latent):
    n, l, d = latent.shape
    x, y = latent.view(n, 1, l, d), latent.view(n, l, 1, d)
    a = ((x - y).pow(2).sum(-1) + 1e-9).sqrt()
    b = ((x + y).pow(2).sum(-1) + 1e-9).sqrt()
    dist = 2 * torch.atan2(a, b)
    return ((dist.pow(2) * d).mean((1, 2)) / 8.0).sum()


def schedule(x, steps):
    if x < 0.9 * steps:
        return (9 * (1 - abs(x / (0.9 * steps) - 0.5) * 2) + 1) / 10
    return 1 / 10 + (x - 0.9 * steps) / (0.1 * steps) * (1 / 1000 - 1 / 10)


def write_png(path, img):
    """8-bit RGB PNG of img [1,3,H,W] in [0,1] (filter 0 rows, one IDAT)."""
    a = (img[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).contiguous().numpy()
    h, w = a.shape[:2]
    raw = b"".join(b"\x00" + a[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return torch.tensor(a).permute(2, 0, 1).unsqueeze(0).float() / 255


def make_thumb(path, side, out):
    torch.manual_seed(1)
    if path.endswith(".safetensors"):
        g = VAE(path)
        with torch.no_grad():
            img = (g.decode(torch.randn(1, g.dim)) + 1) / 2
            ref = write_png(out, bicubic_down(img, g.size // side))
        np.save(out + ".npy", ref.numpy())
        return
    g = StyleGAN2(path)
    L, D = g.n_latent, g.style_dim
    zeros = [torch.zeros(1, 1, 4 << ((i + 1) // 2), 4 << ((i + 1) // 2)) for i in range(g.n_noise)]
    with torch.no_grad():
        img = (g.synthesis(g.mapping(torch.randn(L, D)).view(1, L, D), zeros) + 1) / 2
        ref = write_png(out, bicubic_down(img, g.size // side))
    np.save(out + ".npy", ref.numpy())


def time_search_vae(path, thumb, steps):
    g = VAE(path)
    ref = torch.tensor(np.load(thumb + ".npy"))
    f = g.size // ref.shape[2]
    with torch.no_grad():
        up = F.interpolate(ref, size=(g.vae_size, g.vae_size), mode="bicubic", align_corners=False)
        mu, logvar = g.encode(up * 2 - 1)
        z0 = g.whiten(mu + torch.exp(logvar / 2) * torch.randn(1, g.dim))
    z = z0.clone().requires_grad_(True)
    radius = (z0.pow(2).sum() + 1e-9).sqrt()
    opt = torch.optim.Adam([z], lr=0.4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda x: schedule(x, steps))
    eps = 2e-3
    start = time.perf_counter()
    best = float("inf")
    for j in range(steps):
        opt.zero_grad()
        img = (g.decode(z) + 1) / 2
        loss = 100 * (bicubic_down(img, f) - ref).pow(2).mean((1, 2, 3)).clamp(min=eps).sum()
        best = min(best, loss.item())
        if j == steps - 1:
            break
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            z.div_((z.pow(2).sum() + 1e-9).sqrt()).mul_(radius)
    print(f"{time.perf_counter() - start:.4f} {best:.5f}")


def time_search(path, thumb, steps, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if path.endswith(".safetensors"):
        return time_search_vae(path, thumb, steps)
    g = StyleGAN2(path)
    ref = torch.tensor(np.load(thumb + ".npy"))
    f = g.size // ref.shape[2]
    L, D = g.n_latent, g.style_dim
    z = torch.randn(1, L, D, requires_grad=True)
    noise, train = [], [z]
    for i in range(g.n_noise):
        r = 4 << ((i + 1) // 2)
        t = torch.zeros(1, 1, r, r) if i == g.n_noise - 1 else torch.randn(1, 1, r, r)
        if i < 5 and i < g.n_noise - 1:
            t.requires_grad_(True)
            train.append(t)
        noise.append(t)
    radii = [(p.pow(2).sum(tuple(range(2, p.ndim)), keepdim=True) + 1e-9).sqrt().detach() for p in train]
    opt = torch.optim.Adam(train, lr=0.4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda x: schedule(x, steps))
    eps = 2e-3
    start = time.perf_counter()
    best = float("inf")
    for j in range(steps):
        opt.zero_grad()
        w = g.mapping(z.view(L, D)).view(1, L, D)
        img = (g.synthesis(w, noise) + 1) / 2
        l2 = (bicubic_down(img, f) - ref).pow(2).mean((1, 2, 3)).clamp(min=eps).sum()
        loss = 100 * l2 + 0.05 * geocross(w)
        best = min(best, loss.item())
        if j == steps - 1:
            break
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            for p, r in zip(train, radii):
                p.div_((p.pow(2).sum(tuple(range(2, p.ndim)), keepdim=True) + 1e-9).sqrt()).mul_(r)
    print(f"{time.perf_counter() - start:.4f} {best:.5f}")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make_weights(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    elif sys.argv[1] == "thumb":
        make_thumb(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        time_search(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
