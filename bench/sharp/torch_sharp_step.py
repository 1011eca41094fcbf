"""One training step of faceup's sharpening stage (src/train/train_sharp.h) in PyTorch, as the
benchmark's peer: the same computation on the same weights and the same batch shapes.

  torch_sharp_step.py CKPT.safetensors BATCH STEPS THREADS  -> "ms_per_step" (median of STEPS)

CKPT is a `faceup train sharp` checkpoint (VAE, stage, discriminator). Per step: B real faces at
2S and B/2 prior draws; VAE encode of the downscale, posterior sample (eps = 0 for every other
face), decode; the stage on all 3B/2; G loss = L1 + edge L1 + prior consistency (PULSE's bicubic
downscales) + adversarial hinge term through DiffAugment and the PatchGAN; Adam on the stage;
then the discriminator's hinge loss on the augmented reals and (detached) outputs, Adam on it.
Data come from random tensors (the step's cost does not depend on them).
"""
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from torch_upscale import VAE, bicubic_down  # noqa: E402


def disc_forward(sd, x):
    layers = sorted({k.split(".")[1] for k in sd if k.startswith("disc.conv")})
    for i, name in enumerate(layers):
        w, b = sd[f"disc.{name}.weight"], sd[f"disc.{name}.bias"]
        x = F.conv2d(x, w, b, stride=2 if w.shape[-1] == 4 else 1, padding=1)
        if i < len(layers) - 1:
            x = F.leaky_relu(x, 0.2)
    return x


def diff_augment(x):
    n, _, h, w = x.shape
    x = x + (torch.rand(n, 1, 1, 1) - 0.5)
    m = x.mean(1, keepdim=True)
    x = (x - m) * (torch.rand(n, 1, 1, 1) * 2) + m
    m = x.mean((1, 2, 3), keepdim=True)
    x = (x - m) * (torch.rand(n, 1, 1, 1) + 0.5) + m
    shift = torch.randint(-(w // 8), w // 8 + 1, (n, 2)).float()
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = shift * 2 / w
    x = F.grid_sample(x, F.affine_grid(theta, x.shape, align_corners=False), align_corners=False, padding_mode="zeros")
    cy, cx = torch.randint(0, h, (n, 1, 1)), torch.randint(0, w, (n, 1, 1))
    ys, xs = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    mask = ~(((ys - cy).abs() * 2 < h // 2) & ((xs - cx).abs() * 2 < w // 2))
    return x * mask.unsqueeze(1).float()


def edge_l1(a, b):
    dh = F.l1_loss(a[:, :, 1:] - a[:, :, :-1], b[:, :, 1:] - b[:, :, :-1])
    dw = F.l1_loss(a[..., 1:] - a[..., :-1], b[..., 1:] - b[..., :-1])
    return 0.5 * (dh + dw)


def main():
    path, batch, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    g = VAE(path)
    sd = g.sd
    sr = [k for k in sd if k.startswith("sr.")]
    disc = [k for k in sd if k.startswith("disc.")]
    for k in sr + disc:
        sd[k] = sd[k].clone().requires_grad_(True)
    opt_g = torch.optim.Adam([sd[k] for k in sr], lr=2e-4, betas=(0.5, 0.99))
    opt_d = torch.optim.Adam([sd[k] for k in disc], lr=2e-4, betas=(0.5, 0.99))
    B, P, S2 = batch, max(batch // 2, 1), g.size
    times = []
    for _ in range(steps):
        x = torch.rand(B, 3, S2, S2) * 2 - 1
        start = time.perf_counter()
        with torch.no_grad():
            mu, logvar = g.encode(bicubic_down(x, 2))
            eps = torch.randn(B, g.dim)
            eps[0::2] = 0
            z = mu + torch.exp(logvar / 2) * eps
            w = torch.randn(P, g.dim)
            prior_in = g.decode_raw(g.latent(w))
            inp = torch.cat([g.decode_raw(z), prior_in])
        y = g.sharpen(inp)
        y_rec, y_prior = y[:B], y[B:]
        loss = F.l1_loss(y_rec, x) + edge_l1(y_rec, x) + F.l1_loss(bicubic_down(y_prior, 4), bicubic_down(prior_in, 2))
        loss = loss - 0.05 * disc_forward(sd, diff_augment(y)).mean()
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()
        d_loss = F.relu(1 - disc_forward(sd, diff_augment(x))).mean() + F.relu(1 + disc_forward(sd, diff_augment(y.detach()))).mean()
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        times.append(time.perf_counter() - start)
    print(f"{1000 * statistics.median(times[1:] or times):.1f}")


if __name__ == "__main__":
    main()
