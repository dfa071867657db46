#!/usr/bin/env python3
"""Train the two small BitLens reference Vision Transformers on Fashion-MNIST.

Produces, under models/:
  vit-fmnist-hf/     Hugging Face ViTForImageClassification layout
                     (model.safetensors, config.json, preprocessor_config.json)
  deit-fmnist-timm/  timm vision_transformer (DeiT distilled) layout
                     (model.safetensors, config.json)
  each with reference_logits.json (first 16 t10k images) and eval_results.json
  data/fmnist-test-1k-{images-idx3,labels-idx1}-ubyte.gz  balanced 1k eval set
  data/fmnist-train-5k-{images-idx3,labels-idx1}-ubyte.gz  balanced 5k training subset

Plain PyTorch only (no timm / transformers / safetensors packages): the models
are re-implemented here with math identical to HF ViT / timm
VisionTransformer, and safetensors is written and read by hand.

Usage (always with one OpenMP thread; more threads is much slower here):
  OMP_NUM_THREADS=1 /usr/bin/python3 models/train.py --which all     # data + A + B
  OMP_NUM_THREADS=1 /usr/bin/python3 models/train.py --which hf      # model A only
  OMP_NUM_THREADS=1 /usr/bin/python3 models/train.py --which timm    # teacher + model B only
  OMP_NUM_THREADS=1 /usr/bin/python3 models/train.py --which data    # only the 1k eval set
  OMP_NUM_THREADS=1 /usr/bin/python3 models/train.py --which train-subset  # only the 5k training subset
  OMP_NUM_THREADS=1 /usr/bin/python3 models/train.py --eval-only     # verify saved files
See models/README.md for the recipe and measured results.
"""

import argparse
import gzip
import io
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = "/usr/share/datasets/fashion-mnist"
HF_DIR = os.path.join(HERE, "vit-fmnist-hf")
TIMM_DIR = os.path.join(HERE, "deit-fmnist-timm")
EVAL_DIR = os.path.join(HERE, "data")

LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
NUM_CLASSES = 10
IMG = 28
BACKGROUND = 0.0  # set in main(): (0 - mean) / std


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# ----------------------------------------------------------------------------
# IDX data
# ----------------------------------------------------------------------------

def read_idx_gz(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    assert zero == 0 and dtype_code == 0x08, "expected unsigned-byte IDX"
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    assert data.size == int(np.prod(dims))
    return data.reshape(dims)


def write_idx_gz(path, arr):
    """Write a uint8 array as a gzipped IDX file, deterministically (mtime=0, no name)."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, arr.ndim)
    header += struct.pack(">" + "I" * arr.ndim, *arr.shape)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as g:
        g.write(header + arr.tobytes())
    with open(path, "wb") as f:
        f.write(buf.getvalue())


def load_fmnist():
    xtr = read_idx_gz(os.path.join(DATA_DIR, "train-images-idx3-ubyte.gz"))
    ytr = read_idx_gz(os.path.join(DATA_DIR, "train-labels-idx1-ubyte.gz"))
    xte = read_idx_gz(os.path.join(DATA_DIR, "t10k-images-idx3-ubyte.gz"))
    yte = read_idx_gz(os.path.join(DATA_DIR, "t10k-labels-idx1-ubyte.gz"))
    return xtr, ytr, xte, yte


def mean_std(xtr):
    x = xtr.astype(np.float64) / 255.0
    return float(round(x.mean(), 4)), float(round(x.std(), 4))


def to_tensor(x_u8, mean, std):
    """uint8 [N,28,28] -> float32 [N,1,28,28], x = (pixel/255 - mean)/std."""
    x = torch.from_numpy(x_u8.astype(np.float32) / np.float32(255.0))
    return ((x - mean) / std).unsqueeze(1).contiguous()


def augment(x, pad=2, flip=True):
    """Random crop with `pad`-pixel zero(=background) padding + horizontal flip.

    x is already normalised; padding uses the normalised value of a 0 pixel.
    """
    b, c, h, w = x.shape
    bg = BACKGROUND  # normalised value of a 0 pixel
    xp = F.pad(x, (pad, pad, pad, pad), value=bg)
    oy = torch.randint(0, 2 * pad + 1, (b,))
    ox = torch.randint(0, 2 * pad + 1, (b,))
    rows = (oy[:, None] + torch.arange(h)[None, :])  # [B,h]
    cols = (ox[:, None] + torch.arange(w)[None, :])  # [B,w]
    if flip:
        fl = torch.rand(b) < 0.5
        cols = torch.where(fl[:, None], cols.flip(1), cols)
    bi = torch.arange(b)[:, None, None]
    out = xp[:, 0][bi, rows[:, :, None], cols[:, None, :]]
    return out.unsqueeze(1).contiguous()


# ----------------------------------------------------------------------------
# safetensors (hand-written writer / reader)
# ----------------------------------------------------------------------------

def save_safetensors(path, tensors, metadata=None):
    names = sorted(tensors)  # same order real safetensors uses for a single dtype
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    off = 0
    for n in names:
        t = tensors[n].detach().to(torch.float32).contiguous().cpu().numpy()
        b = t.astype("<f4").tobytes()
        header[n] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    out = {}
    expect = 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        assert info["dtype"] == "F32", info
        b, e = info["data_offsets"]
        assert b == expect, f"non-contiguous tensor {name}"
        expect = e
        shape = info["shape"]
        arr = np.frombuffer(data[b:e], dtype="<f4").reshape(shape).copy()
        out[name] = torch.from_numpy(arr)
    assert expect == len(data), "trailing bytes in safetensors data"
    return out, meta


# ----------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------

class Block(nn.Module):
    """Pre-LN transformer block; q/k/v either fused (timm) or separate (HF)."""

    def __init__(self, dim, heads, hidden, eps, fused_qkv):
        super().__init__()
        self.heads = heads
        self.fused = fused_qkv
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        if fused_qkv:
            self.qkv = nn.Linear(dim, 3 * dim)
        else:
            self.q = nn.Linear(dim, dim)
            self.k = nn.Linear(dim, dim)
            self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def attn(self, x):
        b, t, d = x.shape
        hd = d // self.heads
        if self.fused:
            q, k, v = self.qkv(x).split(d, dim=-1)
        else:
            q, k, v = self.q(x), self.k(x), self.v(x)
        q = q.view(b, t, self.heads, hd).transpose(1, 2)
        k = k.view(b, t, self.heads, hd).transpose(1, 2)
        v = v.view(b, t, self.heads, hd).transpose(1, 2)
        s = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        p = s.softmax(dim=-1)
        o = (p @ v).transpose(1, 2).reshape(b, t, d)
        return self.proj(o)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        x = x + self.fc2(F.gelu(self.fc1(self.norm2(x))))  # exact (erf) GELU
        return x


class ViT(nn.Module):
    def __init__(self, img=28, patch=4, chans=1, dim=64, depth=4, heads=4, hidden=128,
                 eps=1e-12, fused_qkv=False, distilled=False, num_classes=10):
        super().__init__()
        self.patch = patch
        self.distilled = distilled
        n_patches = (img // patch) ** 2
        self.n_prefix = 2 if distilled else 1
        self.patch_embed = nn.Conv2d(chans, dim, kernel_size=patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim)) if distilled else None
        self.pos_embed = nn.Parameter(torch.zeros(1, n_patches + self.n_prefix, dim))
        self.blocks = nn.ModuleList([Block(dim, heads, hidden, eps, fused_qkv) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.head = nn.Linear(dim, num_classes)
        self.head_dist = nn.Linear(dim, num_classes) if distilled else None
        self._init()

    def _init(self):
        # trunc-normal(0.02) everywhere like timm/HF, zero biases, LN = (1, 0).
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        if self.dist_token is not None:
            nn.init.trunc_normal_(self.dist_token, std=0.02)

    def features(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # [B, N, D]
        b = x.shape[0]
        pre = [self.cls_token.expand(b, -1, -1)]
        if self.distilled:
            pre.append(self.dist_token.expand(b, -1, -1))
        x = torch.cat(pre + [x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward(self, x):
        """Training: logits (or (cls_logits, dist_logits) if distilled); eval: averaged."""
        h = self.features(x)
        out = self.head(h[:, 0])
        if not self.distilled:
            return out
        out_d = self.head_dist(h[:, 1])
        if self.training:
            return out, out_d
        return (out + out_d) / 2


class SmallCNN(nn.Module):
    """Teacher for DeiT hard distillation (never exported)."""

    def __init__(self):
        super().__init__()
        def cbr(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))
        self.f = nn.Sequential(cbr(1, 32), nn.MaxPool2d(2),
                               cbr(32, 64), cbr(64, 64), nn.MaxPool2d(2),
                               cbr(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc(self.f(x))


# ----------------------------------------------------------------------------
# Name mapping to HF / timm state dicts
# ----------------------------------------------------------------------------

def hf_state_dict(m):
    sd = {
        "vit.embeddings.cls_token": m.cls_token,
        "vit.embeddings.position_embeddings": m.pos_embed,
        "vit.embeddings.patch_embeddings.projection.weight": m.patch_embed.weight,
        "vit.embeddings.patch_embeddings.projection.bias": m.patch_embed.bias,
        "vit.layernorm.weight": m.norm.weight,
        "vit.layernorm.bias": m.norm.bias,
        "classifier.weight": m.head.weight,
        "classifier.bias": m.head.bias,
    }
    for i, b in enumerate(m.blocks):
        p = f"vit.encoder.layer.{i}."
        for ours, theirs in [("norm1", "layernorm_before"), ("q", "attention.attention.query"),
                             ("k", "attention.attention.key"), ("v", "attention.attention.value"),
                             ("proj", "attention.output.dense"), ("norm2", "layernorm_after"),
                             ("fc1", "intermediate.dense"), ("fc2", "output.dense")]:
            mod = getattr(b, ours)
            sd[p + theirs + ".weight"] = mod.weight
            sd[p + theirs + ".bias"] = mod.bias
    return sd


def timm_state_dict(m):
    sd = {
        "cls_token": m.cls_token,
        "dist_token": m.dist_token,
        "pos_embed": m.pos_embed,
        "patch_embed.proj.weight": m.patch_embed.weight,
        "patch_embed.proj.bias": m.patch_embed.bias,
        "norm.weight": m.norm.weight,
        "norm.bias": m.norm.bias,
        "head.weight": m.head.weight,
        "head.bias": m.head.bias,
        "head_dist.weight": m.head_dist.weight,
        "head_dist.bias": m.head_dist.bias,
    }
    for i, b in enumerate(m.blocks):
        p = f"blocks.{i}."
        for ours, theirs in [("norm1", "norm1"), ("qkv", "attn.qkv"), ("proj", "attn.proj"),
                             ("norm2", "norm2"), ("fc1", "mlp.fc1"), ("fc2", "mlp.fc2")]:
            mod = getattr(b, ours)
            sd[p + theirs + ".weight"] = mod.weight
            sd[p + theirs + ".bias"] = mod.bias
    return sd


def load_named(model, named_sd, loaded):
    """Copy tensors from a loaded HF/timm dict into `model` via the name map."""
    assert set(named_sd) == set(loaded), (set(named_sd) ^ set(loaded))
    with torch.no_grad():
        for k, p in named_sd.items():
            assert tuple(p.shape) == tuple(loaded[k].shape), (k, p.shape, loaded[k].shape)
            p.copy_(loaded[k])


# ----------------------------------------------------------------------------
# Configs
# ----------------------------------------------------------------------------

HF_ARCH = dict(img=28, patch=4, chans=1, dim=64, depth=4, heads=4, hidden=128, eps=1e-12)
TIMM_ARCH = dict(img=28, patch=7, chans=1, dim=64, depth=4, heads=4, mlp_ratio=4.0, eps=1e-6)


def build_hf():
    a = HF_ARCH
    return ViT(img=a["img"], patch=a["patch"], chans=a["chans"], dim=a["dim"], depth=a["depth"],
               heads=a["heads"], hidden=a["hidden"], eps=a["eps"], fused_qkv=False, distilled=False)


def build_timm():
    a = TIMM_ARCH
    return ViT(img=a["img"], patch=a["patch"], chans=a["chans"], dim=a["dim"], depth=a["depth"],
               heads=a["heads"], hidden=int(a["dim"] * a["mlp_ratio"]), eps=a["eps"],
               fused_qkv=True, distilled=True)


def hf_config():
    a = HF_ARCH
    return {
        "architectures": ["ViTForImageClassification"],
        "model_type": "vit",
        "hidden_size": a["dim"],
        "num_hidden_layers": a["depth"],
        "num_attention_heads": a["heads"],
        "intermediate_size": a["hidden"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "initializer_range": 0.02,
        "layer_norm_eps": a["eps"],
        "image_size": a["img"],
        "patch_size": a["patch"],
        "num_channels": a["chans"],
        "qkv_bias": True,
        "encoder_stride": a["patch"],
        "id2label": {str(i): n for i, n in enumerate(LABELS)},
        "label2id": {n: i for i, n in enumerate(LABELS)},
        "problem_type": "single_label_classification",
        "torch_dtype": "float32",
    }


def hf_preprocessor(mean, std):
    return {
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": [mean],
        "image_std": [std],
        "image_processor_type": "ViTImageProcessor",
        "resample": 2,
        "rescale_factor": 0.00392156862745098,
        "size": {"height": HF_ARCH["img"], "width": HF_ARCH["img"]},
    }


def timm_config(mean, std):
    a = TIMM_ARCH
    return {
        "architecture": f"deit_fmnist_distilled_patch{a['patch']}_{a['img']}",
        "num_classes": NUM_CLASSES,
        "num_features": a["dim"],
        "global_pool": "token",
        "model_args": {"img_size": a["img"], "patch_size": a["patch"], "in_chans": a["chans"],
                       "embed_dim": a["dim"], "depth": a["depth"], "num_heads": a["heads"],
                       "mlp_ratio": a["mlp_ratio"]},
        "pretrained_cfg": {"input_size": [a["chans"], a["img"], a["img"]], "mean": [mean], "std": [std],
                           "interpolation": "bilinear", "crop_pct": 1.0, "num_classes": NUM_CLASSES},
        "label_names": LABELS,
    }


def write_json(path, obj, sort_keys=False):
    # HF's to_json_file uses indent=2, sort_keys=True; timm's hub config indent=2, unsorted
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=sort_keys)
        f.write("\n")


def write_reference(path, ref):
    """reference_logits.json with one logits row per line."""
    rows = ",\n    ".join(json.dumps(r) for r in ref["logits"])
    with open(path, "w") as f:
        f.write('{\n  "indices": %s,\n  "labels": %s,\n  "logits": [\n    %s\n  ]\n}\n'
                % (json.dumps(ref["indices"]), json.dumps(ref["labels"]), rows))


# ----------------------------------------------------------------------------
# Training / evaluation
# ----------------------------------------------------------------------------

def cosine_lr(step, total, base, warmup):
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * t))


@torch.no_grad()
def predict(model, x, bs=1000):
    model.eval()
    outs = [model(x[i:i + bs]) for i in range(0, len(x), bs)]
    return torch.cat(outs)


def accuracy_report(logits, y):
    pred = logits.argmax(1).numpy()
    y = np.asarray(y)
    top1 = float((pred == y).mean())
    per = {LABELS[c]: float((pred[y == c] == c).mean()) for c in range(NUM_CLASSES)}
    return {"top1": top1, "correct": int((pred == y).sum()), "total": int(len(y)), "per_class": per}


def param_groups(model, wd):
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or n in ("cls_token", "dist_token", "pos_embed") else decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def train_loop(model, xtr, ytr, xte, yte, epochs, bs, lr, wd, label_smoothing, tag,
               teacher=None, warmup_epochs=1, max_steps=None, aug="none"):
    opt = torch.optim.AdamW(param_groups(model, wd), lr=lr, betas=(0.9, 0.999))
    n = len(xtr)
    steps_per_epoch = n // bs
    total = epochs * steps_per_epoch
    warmup = warmup_epochs * steps_per_epoch
    ytr_t = torch.from_numpy(ytr.astype(np.int64))
    step = 0
    t0 = time.time()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(n)
        te = time.time()
        tot_loss = 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * bs:(i + 1) * bs]
            xb = xtr[idx]
            if aug == "shift":
                xb = augment(xb, flip=False)
            elif aug == "flipshift":
                xb = augment(xb, flip=True)
            yb = ytr_t[idx]
            for g in opt.param_groups:
                g["lr"] = cosine_lr(step, total, lr, warmup)
            out = model(xb)
            if teacher is not None:
                with torch.no_grad():
                    yt = teacher(xb).argmax(1)
                cls_out, dist_out = out
                loss = 0.5 * F.cross_entropy(cls_out, yb, label_smoothing=label_smoothing) + \
                    0.5 * F.cross_entropy(dist_out, yt)
            else:
                loss = F.cross_entropy(out, yb, label_smoothing=label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot_loss += float(loss)
            step += 1
            if max_steps is not None and step >= max_steps:
                dt = time.time() - te
                log(f"[{tag}] timing: {step} steps in {dt:.1f}s -> "
                    f"{dt / step * steps_per_epoch:.0f}s/epoch estimated")
                return time.time() - t0
        acc = accuracy_report(predict(model, xte), yte)["top1"]
        log(f"[{tag}] epoch {ep + 1}/{epochs} loss {tot_loss / steps_per_epoch:.4f} "
            f"test top1 {acc * 100:.2f}% ({time.time() - te:.0f}s, total {time.time() - t0:.0f}s)")
    return time.time() - t0


def average_into(model, other_sd):
    """model <- (model + other) / 2, parameter-wise (two-snapshot weight averaging)."""
    with torch.no_grad():
        for k, v in model.state_dict().items():
            v.copy_((v + other_sd[k]) / 2)


def reference_logits(model, xte_u8, yte, mean, std, n=16):
    x = to_tensor(xte_u8[:n], mean, std)
    lg = predict(model, x)
    return {
        "indices": list(range(n)),
        "labels": [int(v) for v in yte[:n]],
        "logits": [[float(f"{float(v):.9g}") for v in row] for row in lg.tolist()],
    }


def write_eval_set(xte, yte):
    os.makedirs(EVAL_DIR, exist_ok=True)
    sel = []
    for c in range(NUM_CLASSES):
        sel.extend(np.nonzero(yte == c)[0][:100].tolist())
    sel = np.array(sorted(sel))
    assert len(sel) == 1000
    write_idx_gz(os.path.join(EVAL_DIR, "fmnist-test-1k-images-idx3-ubyte.gz"), xte[sel])
    write_idx_gz(os.path.join(EVAL_DIR, "fmnist-test-1k-labels-idx1-ubyte.gz"), yte[sel])
    # round-trip check
    xi = read_idx_gz(os.path.join(EVAL_DIR, "fmnist-test-1k-images-idx3-ubyte.gz"))
    yi = read_idx_gz(os.path.join(EVAL_DIR, "fmnist-test-1k-labels-idx1-ubyte.gz"))
    assert xi.shape == (1000, 28, 28) and yi.shape == (1000,)
    assert (xi == xte[sel]).all() and (yi == yte[sel]).all()
    assert all((yi == c).sum() == 100 for c in range(NUM_CLASSES))
    log(f"wrote 1k eval set ({EVAL_DIR}), t10k indices {sel[0]}..{sel[-1]}")
    return sel


def write_train_subset(xtr, ytr, per_class=500):
    """The first `per_class` training images of each class, in file order: the page's default QAT set."""
    os.makedirs(EVAL_DIR, exist_ok=True)
    sel = np.sort(np.concatenate([np.nonzero(ytr == c)[0][:per_class] for c in range(NUM_CLASSES)]))
    n = per_class * NUM_CLASSES
    assert len(sel) == n
    tag = f"fmnist-train-{n // 1000}k"
    write_idx_gz(os.path.join(EVAL_DIR, f"{tag}-images-idx3-ubyte.gz"), xtr[sel])
    write_idx_gz(os.path.join(EVAL_DIR, f"{tag}-labels-idx1-ubyte.gz"), ytr[sel])
    xi = read_idx_gz(os.path.join(EVAL_DIR, f"{tag}-images-idx3-ubyte.gz"))
    yi = read_idx_gz(os.path.join(EVAL_DIR, f"{tag}-labels-idx1-ubyte.gz"))
    assert (xi == xtr[sel]).all() and (yi == ytr[sel]).all()
    assert all((yi == c).sum() == per_class for c in range(NUM_CLASSES))
    log(f"wrote {n} training images ({EVAL_DIR}), train indices {sel[0]}..{sel[-1]}")
    return sel


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def save_model(which, model, mean, std, report, train_info):
    if which == "hf":
        d, sd, cfgs = HF_DIR, hf_state_dict(model), {"config.json": hf_config(),
                                                     "preprocessor_config.json": hf_preprocessor(mean, std)}
    else:
        d, sd, cfgs = TIMM_DIR, timm_state_dict(model), {"config.json": timm_config(mean, std)}
    os.makedirs(d, exist_ok=True)
    save_safetensors(os.path.join(d, "model.safetensors"), sd, {"format": "pt"})
    for name, obj in cfgs.items():
        write_json(os.path.join(d, name), obj, sort_keys=(which == "hf"))
    res = {"dataset": "fashion-mnist t10k (10000 images)", "num_parameters": n_params(model)}
    res.update(train_info)
    res.update({"eval_accuracy": report["top1"], "eval_correct": report["correct"],
                "eval_per_class_accuracy": report["per_class"]})
    write_json(os.path.join(d, "eval_results.json"), res)


def load_model(which):
    if which == "hf":
        model, d, mapper = build_hf(), HF_DIR, hf_state_dict
    else:
        model, d, mapper = build_timm(), TIMM_DIR, timm_state_dict
    loaded, meta = load_safetensors(os.path.join(d, "model.safetensors"))
    assert meta.get("format") == "pt", meta
    load_named(model, mapper(model), loaded)
    return model.eval()


def print_report(tag, rep):
    log(f"[{tag}] top-1 {rep['top1'] * 100:.2f}% ({rep['correct']}/{rep['total']})")
    for k, v in rep["per_class"].items():
        log(f"[{tag}]   {k:12s} {v * 100:.1f}%")


def main():
    global HF_DIR, TIMM_DIR, BACKGROUND
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--which", choices=["hf", "timm", "all", "data", "train-subset"], default="all")
    ap.add_argument("--epochs-hf", type=int, default=15)
    ap.add_argument("--epochs-timm", type=int, default=18)
    ap.add_argument("--hf-intermediate", type=int, default=HF_ARCH["hidden"],
                    help="intermediate (MLP) size of model A")
    ap.add_argument("--restart-epochs-hf", type=int, default=8,
                    help="model A: epochs of a second (warm-restart) cosine cycle after --epochs-hf")
    ap.add_argument("--restart-lr-hf", type=float, default=1e-3, help="model A: peak LR of the restart")
    ap.add_argument("--no-average-hf", action="store_true",
                    help="model A: keep the phase-2 weights instead of averaging them with phase 1's")
    ap.add_argument("--resume-hf", default="",
                    help="model A: load phase-1 weights from this model.safetensors instead of training them")
    ap.add_argument("--resume-hf-restart", default="",
                    help="model A: load phase-2 weights (from a --no-average-hf run) instead of training them")
    ap.add_argument("--hf-depth", type=int, default=HF_ARCH["depth"], help="layers of model A")
    ap.add_argument("--out-hf", default=HF_DIR, help="output directory of model A")
    ap.add_argument("--out-timm", default=TIMM_DIR, help="output directory of model B")
    ap.add_argument("--epochs-teacher", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--augment", choices=["none", "shift", "flipshift"], default="none",
                    help="training augmentation: none, random 2px shift, or shift + horizontal flip")
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-steps", type=int, default=0,
                    help="only time this many training steps per model and exit")
    ap.add_argument("--eval-only", action="store_true",
                    help="reload saved safetensors and recompute the test metrics")
    args = ap.parse_args()

    HF_ARCH["hidden"] = args.hf_intermediate
    HF_ARCH["depth"] = args.hf_depth
    HF_DIR, TIMM_DIR = args.out_hf, args.out_timm
    if os.environ.get("OMP_NUM_THREADS") != "1":
        print("warning: set OMP_NUM_THREADS=1 (multi-threading is far slower here)", file=sys.stderr)
    torch.set_num_threads(1)

    xtr_u8, ytr, xte_u8, yte = load_fmnist()
    if args.which in ("all", "train-subset") and not args.eval_only:
        write_train_subset(xtr_u8, ytr)
    if args.which == "train-subset":
        return
    mean, std = mean_std(xtr_u8)
    log(f"fashion-mnist train {xtr_u8.shape} test {xte_u8.shape}; mean {mean} std {std}")
    BACKGROUND = float(to_tensor(np.zeros((1, 1, 1), np.uint8), mean, std)[0, 0, 0, 0])
    xtr = to_tensor(xtr_u8, mean, std)
    xte = to_tensor(xte_u8, mean, std)

    whiches = ["hf", "timm"] if args.which == "all" else [args.which]
    if args.which in ("all", "data") and not args.eval_only:
        write_eval_set(xte_u8, yte)
    if args.which == "data":
        return

    if args.eval_only:
        xi = read_idx_gz(os.path.join(EVAL_DIR, "fmnist-test-1k-images-idx3-ubyte.gz"))
        yi = read_idx_gz(os.path.join(EVAL_DIR, "fmnist-test-1k-labels-idx1-ubyte.gz"))
        sel = np.sort(np.concatenate([np.nonzero(yte == c)[0][:100] for c in range(NUM_CLASSES)]))
        assert (xi == xte_u8[sel]).all() and (yi == yte[sel]).all(), "1k eval set mismatch"
        log("1k eval set matches t10k selection")
        for w in whiches:
            model = load_model(w)
            rep = accuracy_report(predict(model, xte), yte)
            print_report(w, rep)
            d = HF_DIR if w == "hf" else TIMM_DIR
            ref = json.load(open(os.path.join(d, "reference_logits.json")))
            got = reference_logits(model, xte_u8, yte, mean, std, n=len(ref["indices"]))
            diff = np.abs(np.array(ref["logits"]) - np.array(got["logits"])).max()
            saved = json.load(open(os.path.join(d, "eval_results.json")))
            log(f"[{w}] reference_logits max |diff| {diff:.3g}; saved top-1 {saved['eval_accuracy'] * 100:.2f}%")
            assert diff < 1e-4, "reference logits do not reproduce"
            assert rep["correct"] == saved["eval_correct"], "accuracy does not reproduce"
        log("eval-only: OK")
        return

    for w in whiches:
        torch.manual_seed(args.seed)
        np.random.seed(args.seed)
        teacher = None
        info = {}
        t_start = time.time()
        if w == "timm":
            teacher = SmallCNN()
            log(f"[teacher] SmallCNN params {n_params(teacher)}")
            tt = train_loop(teacher, xtr, ytr, xte, yte, args.epochs_teacher, args.batch, 2e-3, 0.05,
                            0.1, "teacher", max_steps=args.time_steps or None, aug=args.augment)
            teacher.eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
            if not args.time_steps:
                trep = accuracy_report(predict(teacher, xte), yte)
                log(f"[teacher] top-1 {trep['top1'] * 100:.2f}% ({tt:.0f}s)")
                info["teacher"] = {"type": "SmallCNN (4 conv3x3+BN+ReLU, 2 maxpool, GAP, fc)",
                                   "num_parameters": n_params(teacher), "epochs": args.epochs_teacher,
                                   "test_top1": trep["top1"], "train_seconds": round(tt)}
        model = build_hf() if w == "hf" else build_timm()
        log(f"[{w}] params {n_params(model)}")
        epochs = args.epochs_hf if w == "hf" else args.epochs_timm
        ls = 0.1
        if w == "hf" and args.resume_hf:
            # skip phase 1: load its result (bit-identical to recomputing it)
            load_named(model, hf_state_dict(model), load_safetensors(args.resume_hf)[0])
            secs = float(json.load(open(os.path.join(os.path.dirname(args.resume_hf),
                                                     "eval_results.json")))["train_seconds"])
            log(f"[{w}] phase 1 loaded from {args.resume_hf}: "
                f"top-1 {accuracy_report(predict(model, xte), yte)['top1'] * 100:.2f}%")
        else:
            secs = train_loop(model, xtr, ytr, xte, yte, epochs, args.batch, args.lr, args.wd, ls, w,
                              teacher=teacher, max_steps=args.time_steps or None, aug=args.augment)
        if args.time_steps:
            continue
        phase2 = {}
        if w == "hf" and args.restart_epochs_hf > 0:
            # phase 2: one warm restart of the cosine schedule (SGDR-style) with a lower peak
            # LR and a fresh AdamW; the tiny model still underfits after phase 1.
            log(f"[{w}] phase 1 top-1 {accuracy_report(predict(model, xte), yte)['top1'] * 100:.2f}%")
            snapshot = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if args.resume_hf_restart:
                # skip phase 2: load its (no-average) result, bit-identical to recomputing it
                load_named(model, hf_state_dict(model), load_safetensors(args.resume_hf_restart)[0])
                s2 = float(json.load(open(os.path.join(os.path.dirname(args.resume_hf_restart),
                                                       "eval_results.json")))["restart_train_seconds"])
            else:
                torch.manual_seed(args.seed + 1)
                s2 = train_loop(model, xtr, ytr, xte, yte, args.restart_epochs_hf, args.batch,
                                args.restart_lr_hf, args.wd, ls, w + "/restart", aug=args.augment)
            phase2 = {"restart_epochs": args.restart_epochs_hf, "restart_lr": args.restart_lr_hf,
                      "restart_train_seconds": round(s2)}
            secs += s2
            if not args.no_average_hf:
                log(f"[{w}] phase 2 top-1 {accuracy_report(predict(model, xte), yte)['top1'] * 100:.2f}%")
                average_into(model, snapshot)
                phase2["final_weights"] = "mean of the phase-1 and phase-2 end weights (SWA-style)"
        rep = accuracy_report(predict(model, xte), yte)
        print_report(w, rep)
        info.update({"epochs": epochs, "batch_size": args.batch, "lr": args.lr, "weight_decay": args.wd,
                     "label_smoothing": ls, "augment": args.augment, "seed": args.seed, "train_seconds": round(secs),
                     "total_seconds": round(max(time.time() - t_start, secs))})
        info.update(phase2)
        save_model(w, model, mean, std, rep, info)
        d = HF_DIR if w == "hf" else TIMM_DIR
        write_reference(os.path.join(d, "reference_logits.json"), reference_logits(model, xte_u8, yte, mean, std))
        # round-trip through the written file
        re = load_model(w)
        rep2 = accuracy_report(predict(re, xte), yte)
        assert rep2["correct"] == rep["correct"], "safetensors round-trip changed accuracy"
        log(f"[{w}] saved to {d} (round-trip OK)")


if __name__ == "__main__":
    main()
