#!/usr/bin/env python3
"""Peer number for the training benchmark: one eager-PyTorch training step on CPU, one thread, float32.

Per model: forward in train mode, loss, backward, torch.optim.AdamW step (lr 1e-3, weight decay 0.05 on
weight matrices as models/train.py), on seeded random inputs N(0,1) of the model's shape and seeded
random labels. Loss: cross-entropy (no label smoothing); for the distilled DeiT both heads,
0.5*CE(head(cls), y) + 0.5*CE(head_dist(dist), y). Wall time of a whole step (zero_grad through
opt.step); the median (and the minimum) over the timed steps after warm-up.

Rows: the shipped models (models/vit-fmnist-hf, models/deit-fmnist-timm; their weights, batch 64,
5 warm-up + 30 timed steps) and "deit-tiny" (DeiT-tiny shape: 224x224x3, patch 16, dim 192, depth 12,
heads 3, mlp 768, 1000 classes, fused qkv, not distilled; random weights, batch 8, 2 + 5 steps).
Models are models/train.py's ViT class; nothing of the repo's build is used.

Output: one JSON object per line, or with --json one JSON array; progress on stderr.
Usage: OMP_NUM_THREADS=1 /usr/bin/python3 tests/bench/torch_train_step.py [--json] [--only NAME,...]
"""

import argparse
import json
import os
import statistics
import sys
import time

# one thread everywhere, also inside OpenBLAS (set before torch loads it)
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "models"))
import train  # noqa: E402  (model classes, name maps, safetensors reader)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def deit_tiny():
    return train.ViT(img=224, patch=16, chans=3, dim=192, depth=12, heads=3, hidden=768, eps=1e-6,
                     fused_qkv=True, distilled=False, num_classes=1000)


# name -> (builder, batch, warm-up steps, timed steps, image size, channels, classes)
ROWS = {
    "vit-fmnist-hf": (lambda: train.load_model("hf"), 64, 5, 30, 28, 1, 10),
    "deit-fmnist-timm": (lambda: train.load_model("timm"), 64, 5, 30, 28, 1, 10),
    "deit-tiny": (deit_tiny, 8, 2, 5, 224, 3, 1000),
}


def blas_library():
    """The BLAS this process loaded (Debian: libblas.so.3 alternative), from /proc/self/maps."""
    torch.ones(8, 8) @ torch.ones(8, 8)
    try:
        libs = {ln.split()[-1] for ln in open("/proc/self/maps") if "blas" in ln or "mkl" in ln}
    except OSError:
        return "unknown"
    real = sorted({os.path.realpath(p) for p in libs if p.startswith("/")})
    return ",".join(os.path.relpath(p, "/usr/lib/x86_64-linux-gnu") if "x86_64-linux-gnu" in p else p
                    for p in real) or "none"


def time_row(name, blas, seed=0):
    build, batch, warmup, steps, img, chans, classes = ROWS[name]
    torch.manual_seed(seed)
    model = build().float().train()
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch, chans, img, img, generator=g)
    y = torch.randint(0, classes, (batch,), generator=g)
    opt = torch.optim.AdamW(train.param_groups(model, 0.05), lr=1e-3, betas=(0.9, 0.999))

    def step():
        opt.zero_grad(set_to_none=True)
        out = model(x)
        if isinstance(out, tuple):  # distilled, train mode: (head(cls), head_dist(dist))
            loss = 0.5 * F.cross_entropy(out[0], y) + 0.5 * F.cross_entropy(out[1], y)
        else:
            loss = F.cross_entropy(out, y)
        loss.backward()
        opt.step()
        return float(loss)

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    ms = statistics.median(times)
    print(f"[torch_train_step] {name}: batch {batch}, median {ms:.2f} ms/step "
          f"(min {min(times):.2f}, {steps} timed after {warmup} warm-up)", file=sys.stderr, flush=True)
    return {"model": name, "batch": batch, "ms_per_step": round(ms, 3),
            "min_ms_per_step": round(min(times), 3), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "warmup": warmup, "steps": steps, "blas": blas}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON array instead of one object per line")
    ap.add_argument("--only", default="", help="comma-separated rows: " + ",".join(ROWS))
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(ROWS)
    for n in names:
        if n not in ROWS:
            ap.error(f"unknown row {n!r} (rows: {', '.join(ROWS)})")
    torch.set_num_threads(1)
    blas = blas_library()
    if blas.startswith("blas/"):
        print("[torch_train_step] warning: PyTorch runs on the reference BLAS (libblas3), ~10x slower; "
              "apt-get install libopenblas0-pthread", file=sys.stderr)
    rows = []
    for n in names:
        r = time_row(n, blas)
        rows.append(r)
        if not args.json:
            print(json.dumps(r), flush=True)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
