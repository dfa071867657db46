#!/usr/bin/env python3
"""Gradient fixtures for the C++ training engine: d loss / d every checkpoint tensor.

For each shipped model (models/vit-fmnist-hf, models/deit-fmnist-timm) this loads model.safetensors
into models/train.py's ViT, converts it to float64, takes the first 16 images of the default eval set
(models/data/fmnist-test-1k-*, file order), preprocesses them as the C++ does (float32: p/255, then
(x - mean)/std with the model's own mean/std), computes the inference logits (eval mode; the distilled
DeiT averages head(cls) and head_dist(dist)), loss = mean cross-entropy (no label smoothing), and
backward. It writes tests/fixtures/grad-<model dir>.safetensors: one F32 tensor per checkpoint tensor,
same name and shape, holding the float64 gradient rounded to float32, with the loss, logits and labels
in __metadata__. A float32 run of the same computation is compared with the float64 one (relative L2
error per tensor) to show what a float32 engine can be expected to meet.

Usage: OMP_NUM_THREADS=1 /usr/bin/python3 models/grad_dump.py [--out tests/fixtures] [--images 16]
"""

import argparse
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import train  # noqa: E402  (model classes, name maps, safetensors reader/writer)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

MODELS = {"vit-fmnist-hf": "hf", "deit-fmnist-timm": "timm"}
IMAGES = "fmnist-test-1k-images-idx3-ubyte.gz"
LABELS = "fmnist-test-1k-labels-idx1-ubyte.gz"


def mean_std(model_dir, which):
    """The model's normalisation, read from its own config file (as the C++ loader does)."""
    if which == "hf":
        pp = json.load(open(os.path.join(model_dir, "preprocessor_config.json")))
        assert pp.get("do_rescale", True) and abs(pp.get("rescale_factor", 1 / 255) - 1 / 255) < 1e-9, pp
        if not pp.get("do_normalize", True):
            return [0.0], [1.0]
        return pp["image_mean"], pp["image_std"]
    cfg = json.load(open(os.path.join(model_dir, "config.json")))["pretrained_cfg"]
    return cfg["mean"], cfg["std"]


def preprocess(x_u8, mean, std, channels):
    """uint8 [N,H,W] -> float32 [N,C,H,W] exactly as src/data/image.cpp: v = p/255.0f; (v - mean[c]) / std[c]."""
    assert channels == 1, "the eval set is grey"

    def ch(vals, c):  # one value per channel, or one for all; extra values ignored
        return vals[c] if len(vals) >= channels else vals[0]

    v = torch.from_numpy(x_u8.astype(np.float32)) / torch.tensor(255.0, dtype=torch.float32)
    m = torch.tensor(ch(mean, 0), dtype=torch.float32)
    s = torch.tensor(ch(std, 0), dtype=torch.float32)
    return ((v - m) / s).unsqueeze(1).contiguous()


def zero_part(name, n):
    """Entries whose gradient is analytically 0: the key bias (softmax ignores a per-query constant)."""
    if name.endswith("attention.attention.key.bias"):
        return slice(0, n)
    if name.endswith("attn.qkv.bias"):  # rows q, k, v
        return slice(n // 3, 2 * n // 3)
    return None


def grads(which, x, y, dtype):
    """Loaded model in `dtype`; returns (loss, logits, {checkpoint name: grad}, {name: shape})."""
    model = train.load_model(which).to(dtype).eval()
    mapper = train.hf_state_dict if which == "hf" else train.timm_state_dict
    named = mapper(model)
    # the name map must cover every parameter, once
    assert sorted(id(p) for p in named.values()) == sorted(id(p) for p in model.parameters())
    model.zero_grad(set_to_none=True)
    logits = model(x.to(dtype))
    loss = F.cross_entropy(logits, y)
    loss.backward()
    out = {}
    for k, p in named.items():
        assert p.grad is not None, f"no gradient for {k}"
        assert torch.isfinite(p.grad).all(), k
        out[k] = p.grad.detach().clone()
    return float(loss), logits.detach(), out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures"))
    ap.add_argument("--images", type=int, default=16)
    args = ap.parse_args()
    if os.environ.get("OMP_NUM_THREADS") != "1":
        print("warning: set OMP_NUM_THREADS=1", file=sys.stderr)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)

    xi = train.read_idx_gz(os.path.join(train.EVAL_DIR, IMAGES))[:args.images]
    yi = train.read_idx_gz(os.path.join(train.EVAL_DIR, LABELS))[:args.images]
    y = torch.from_numpy(yi.astype(np.int64))

    for name, which in MODELS.items():
        d = os.path.join(HERE, name)
        mean, std = mean_std(d, which)
        x = preprocess(xi, mean, std, train.HF_ARCH["chans"] if which == "hf" else train.TIMM_ARCH["chans"])
        ckpt, _ = train.load_safetensors(os.path.join(d, "model.safetensors"))

        loss64, logits64, g64 = grads(which, x, y, torch.float64)
        loss32, _, g32 = grads(which, x, y, torch.float32)

        assert set(g64) == set(ckpt), set(g64) ^ set(ckpt)
        for k, t in ckpt.items():
            assert tuple(g64[k].shape) == tuple(t.shape), (k, g64[k].shape, t.shape)

        meta = {
            "loss": repr(loss64),
            "images": str(args.images),
            "data": IMAGES,
            "logits": json.dumps(logits64.tolist()),
            "labels": json.dumps([int(v) for v in yi]),
            "made_by": "models/grad_dump.py",
        }
        path = os.path.join(args.out, f"grad-{name}.safetensors")
        train.save_safetensors(path, g64, meta)

        # read back: same names/shapes as the checkpoint, nothing else, values = float32(grad64)
        back, bmeta = train.load_safetensors(path)
        assert set(back) == set(ckpt) and bmeta == meta
        for k, t in back.items():
            assert tuple(t.shape) == tuple(ckpt[k].shape)
            assert torch.equal(t, g64[k].to(torch.float32)), k

        print(f"== {name}: mean {mean} std {std}, {args.images} images, labels {meta['labels']}")
        # the 16 images are t10k 0..15: the logits must match the committed float32 reference
        ref = json.load(open(os.path.join(d, "reference_logits.json")))
        if ref["labels"][:args.images] == [int(v) for v in yi]:
            dl = float(np.abs(np.array(ref["logits"][:args.images]) - logits64.numpy()).max())
            assert dl < 1e-4, dl
            print(f"   logits vs reference_logits.json (float32): max |diff| {dl:.2e}")
        else:
            print("   (first images are not reference_logits.json's: logits not cross-checked)")

        print(f"   loss float64 {loss64!r}  float32 {loss32!r}  (rel diff {abs(loss32 - loss64) / loss64:.2e})")
        print(f"   {'tensor':52s} {'shape':>16s} {'|grad|':>11s} {'rel L2 f32':>10s}")
        worst = (0.0, "")
        for k in sorted(g64):
            a, b = g64[k].flatten(), g32[k].double().flatten()
            z = zero_part(k, a.numel())
            note = ""
            if z is not None:  # exclude the analytically zero entries from the relative error
                note = f"  (key bias part ~0: |f64| {float(a[z].abs().max()):.1e}, |f32| {float(b[z].abs().max()):.1e})"
                keep = torch.ones_like(a, dtype=torch.bool)
                keep[z] = False
                a, b = a[keep], b[keep]
            n64 = float(a.norm()) if a.numel() else 0.0
            rel = float((b - a).norm()) / n64 if n64 > 0 else float("nan")
            if n64 > 0 and rel > worst[0]:
                worst = (rel, k)
            rs = f"{rel:10.2e}" if n64 > 0 else f"{'-':>10s}"
            print(f"   {k:52s} {str(list(g64[k].shape)):>16s} {float(g64[k].norm()):11.4e} {rs}{note}")
        print(f"   max rel L2 error float32 vs float64: {worst[0]:.2e} ({worst[1]})")
        print(f"   wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
