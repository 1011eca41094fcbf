"""IR-SE parity with PyTorch (run by the test irse_matches_pytorch in tests/test_irse.c).

Usage: irse_torch.py MODEL.safetensors IO.safetensors
MODEL is a faceup IR-SE file (fu_irse_save: tensors under PyTorch state-dict names, config in
the "irse_config" metadata); IO holds the input x, the cotangent r, and faceup's results: the
eval-mode embedding, the training-mode embedding, the gradient of sum(train_embedding * r) with
respect to x and to the stem convolution, and one running variance after the training pass.
Builds the same net from bench/irse/irse_torch.py, loads the weights by name, recomputes all of
it and exits 1 when a result differs by more than 1e-4 of its largest magnitude."""
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench", "irse"))
from irse_torch import IRSE  # noqa: E402


def read_safetensors(path):
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = blob[8 + n:]
    tensors = {}
    for name, e in header.items():
        assert e["dtype"] == "F32", name
        begin, end = e["data_offsets"]
        tensors[name] = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.float32).reshape(e["shape"])
    return tensors, meta


def parse_config(s):
    fields = dict(kv.split("=") for kv in s.split())
    ints = lambda v: tuple(int(x) for x in v.split(","))
    return dict(units=ints(fields["units"]), channels=ints(fields["channels"]), input_size=int(fields["input"]),
                embedding=int(fields["embedding"]), se_reduction=int(fields["se"]), dropout=float(fields["dropout"]))


def main():
    torch.set_num_threads(1)
    weights, meta = read_safetensors(sys.argv[1])
    io, _ = read_safetensors(sys.argv[2])
    net = IRSE(**parse_config(meta["irse_config"])).double()
    missing, unexpected = net.load_state_dict({k: v.double() for k, v in weights.items()}, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    x = io["x"].double().requires_grad_(True)
    net.eval()
    with torch.no_grad():
        e_eval = net(x)
    net.train()
    e_train = net(x)
    (e_train * io["r"].double()).sum().backward()
    ours = {"eval": e_eval, "train": e_train, "grad_x": x.grad, "grad_stem": net.input_layer[0].weight.grad,
            "running_var": net.body[1].res_layer[2].running_var}
    worst = 0.0
    for name, ref in ours.items():
        got = io[name].double().reshape(ref.shape)
        err = ((got - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()
        worst = max(worst, err)
        print(f"{name}: max |faceup - torch| / max |torch| = {err:.2e}")
    sys.exit(0 if worst <= 1e-4 else 1)


if __name__ == "__main__":
    main()
