"""Sharp-generator parity with PyTorch (run by the test sharp_generator_matches_pytorch in
tests/test_sharp.c).

Usage: sharp_torch.py MODEL.safetensors IO.safetensors
MODEL is a faceup sharp generator (VAE + sharpening stage, src/gen/sharp.h); IO holds the
whitened latents w [N, D], the cotangent r, and faceup's results through the search's generator
interface: the image in [0, 1] and the gradient of sum(image * r) with respect to w. The model is
rebuilt from bench/torch_upscale.py's independent PyTorch code in float64 and every result must
agree within 1e-4 of its largest magnitude (exit 1 otherwise)."""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
from torch_upscale import VAE, read_safetensors  # noqa: E402


def main():
    g = VAE(sys.argv[1])
    g.sd = {k: v.double() for k, v in g.sd.items()}
    io = {k: v.double() for k, v in read_safetensors(sys.argv[2]).items()}
    w = io["w"].clone().requires_grad_(True)
    img = (g.decode(w) + 1) / 2
    (img * io["r"]).sum().backward()
    ok = True
    for name, ours, theirs in (("image", io["image"], img.detach()), ("grad_w", io["grad_w"], w.grad)):
        err = (ours - theirs).abs().max().item() / max(theirs.abs().max().item(), 1e-12)
        print(f"{name}: max |faceup - torch| / max |torch| = {err:.2e}")
        ok &= err <= 1e-4
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
