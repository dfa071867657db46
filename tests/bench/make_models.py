#!/usr/bin/env python3
"""Models for `npm run bench` (tests/bench/bench.mjs), cached under build/bench/.

  synthetic   DeiT-tiny- and DeiT-small-shaped ViTs (224x224x3, patch 16, 1000 classes) with fixed-seed
              random weights: model.safetensors (timm names) + config.json (timm), model.onnx (fp32),
              model.int8.onnx and model.int8-conv.onnx (ONNX Runtime's dynamic int8 forms, built here
              with the `onnx` package: MatMul only, and MatMul + the patch-embedding Conv).
  fmnist      the shipped Fashion-MNIST models (models/vit-fmnist-hf, models/deit-fmnist-timm; --shipped), their
              safetensors loaded into an equivalent PyTorch module and exported the same two ways.
  gemm        one-op ONNX models for the DeiT-tiny GEMM shapes: MatMul (f32) and MatMulInteger (u8 x s8).

The int8 graphs are what onnxruntime.quantization.quantize_dynamic(weight_type=QInt8) writes (the Python
onnxruntime package is not in Debian): every MatMul whose B is a constant becomes
DynamicQuantizeLinear(A) -> MatMulInteger(A_q, B_q, A_zp, 0) -> Cast(float) -> Mul(A_scale * B_scale),
weights symmetric per-tensor int8 ([-127, 127], zero point 0), activations asymmetric uint8 per call;
in model.int8-conv.onnx the patch-embedding Conv also becomes ConvInteger (bias added after), as
quantize_dynamic's default op set does; model.int8.onnx is op_types_to_quantize=["MatMul"], which is the
faster of the two in ORT-web (its ConvInteger is slow). MatMuls with a dynamic B (attention q.k^T and
p.v) and Gemm (the classifier head) stay fp32 in both, as quantize_dynamic does (MatMulConstBOnly).
ONNX Runtime then fuses the pattern into DynamicQuantizeMatMul / MatMulIntegerToFloat.

Usage (Debian's python3-torch, python3-onnx; one thread):
  OMP_NUM_THREADS=1 /usr/bin/python3 tests/bench/make_models.py --out build/bench [--only synthetic,fmnist,gemm]
"""

import argparse
import json
import math
import os
import struct
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPSET = 17
FORMAT = 2  # bump when the exports change; bench.mjs re-exports caches of another format
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

SYNTHETIC = {
    "deit-tiny": dict(arch="deit_tiny_patch16_224", dim=192, heads=3, seed=1),
    "deit-small": dict(arch="deit_small_patch16_224", dim=384, heads=6, seed=2),
}
GEMM_SHAPES = [(197, 192, 576), (197, 192, 768), (197, 768, 192)]  # M x K x N


def log(*a):
    print("[make_models]", *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------
# safetensors (F32 only)

def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for n in sorted(tensors):
        b = np.ascontiguousarray(tensors[n].detach().cpu().numpy(), dtype="<f4").tobytes()
        header[n] = {"dtype": "F32", "shape": list(tensors[n].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    data = raw[8 + n:]
    dt = {"F32": "<f4", "F16": "<f2"}
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        if info["dtype"] == "BF16":
            u = np.frombuffer(data[b:e], dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(data[b:e], dtype=dt[info["dtype"]]).astype(np.float32)
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return out


# ---------------------------------------------------------------------------------------------------
# A timm-style ViT (token pooling, pre-LN blocks, fused qkv rows q|k|v, exact erf GELU)

class Block(nn.Module):
    def __init__(self, dim, heads, mlp, eps):
        super().__init__()
        self.heads, self.dim, self.hd = heads, dim, dim // heads
        self.scale = float(self.hd) ** -0.5
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x):
        # Static head sizes (batch 1, fixed token count) keep the exported graph free of shape arithmetic.
        t = self.tokens
        q, k, v = self.qkv(self.norm1(x)).reshape(1, t, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4)
        p = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        x = x + self.proj((p @ v).transpose(1, 2).reshape(1, t, self.dim))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, img, patch, chans, dim, depth, heads, mlp, classes, eps, distilled=False):
        super().__init__()
        self.distilled = distilled
        pre = 2 if distilled else 1
        self.patch_embed = nn.Conv2d(chans, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim)) if distilled else None
        self.pos_embed = nn.Parameter(torch.zeros(1, (img // patch) ** 2 + pre, dim))
        self.blocks = nn.ModuleList([Block(dim, heads, mlp, eps) for _ in range(depth)])
        for b in self.blocks:
            b.tokens = (img // patch) ** 2 + pre
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.head = nn.Linear(dim, classes)
        self.head_dist = nn.Linear(dim, classes) if distilled else None

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        pre = [self.cls_token]  # batch 1
        if self.distilled:
            pre.append(self.dist_token)
        x = torch.cat(pre + [x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        out = self.head(x[:, 0])
        if self.distilled:
            out = (out + self.head_dist(x[:, 1])) * 0.5
        return out

    def timm_state(self):
        sd = {"cls_token": self.cls_token, "pos_embed": self.pos_embed,
              "patch_embed.proj.weight": self.patch_embed.weight, "patch_embed.proj.bias": self.patch_embed.bias,
              "norm.weight": self.norm.weight, "norm.bias": self.norm.bias,
              "head.weight": self.head.weight, "head.bias": self.head.bias}
        if self.distilled:
            sd.update({"dist_token": self.dist_token, "head_dist.weight": self.head_dist.weight,
                       "head_dist.bias": self.head_dist.bias})
        for i, b in enumerate(self.blocks):
            for ours, theirs in [("norm1", "norm1"), ("qkv", "attn.qkv"), ("proj", "attn.proj"),
                                 ("norm2", "norm2"), ("fc1", "mlp.fc1"), ("fc2", "mlp.fc2")]:
                m = getattr(b, ours)
                sd[f"blocks.{i}.{theirs}.weight"] = m.weight
                sd[f"blocks.{i}.{theirs}.bias"] = m.bias
        return sd

    def load_timm_state(self, loaded, what):
        mine = self.timm_state()
        missing, extra = set(mine) - set(loaded), set(loaded) - set(mine)
        if missing or extra:
            raise SystemExit(f"{what}: tensors missing {sorted(missing)[:5]}, unexpected {sorted(extra)[:5]}")
        with torch.no_grad():
            for k, p in mine.items():
                if tuple(p.shape) != tuple(loaded[k].shape):
                    raise SystemExit(f"{what}: {k} has shape {tuple(loaded[k].shape)}, expected {tuple(p.shape)}")
                p.copy_(loaded[k])


def random_init(m, seed):
    """Fixed-seed random weights with enough spread that the logits have a clear top-1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "norm.weight":
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1:
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
            elif name == "head.weight":
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel() if p.ndim >= 2 and name.endswith("weight") else p.shape[-1]
                std = 1.0 / math.sqrt(fan_in) if name.endswith("weight") else 0.02
                p.copy_(std * torch.randn(p.shape, generator=g))


# ---------------------------------------------------------------------------------------------------
# Hugging Face ViT naming -> timm

def hf_to_timm(sd, depth, dim):
    p = "vit."
    out = {"cls_token": sd[p + "embeddings.cls_token"], "pos_embed": sd[p + "embeddings.position_embeddings"],
           "patch_embed.proj.weight": sd[p + "embeddings.patch_embeddings.projection.weight"],
           "patch_embed.proj.bias": sd[p + "embeddings.patch_embeddings.projection.bias"],
           "norm.weight": sd[p + "layernorm.weight"], "norm.bias": sd[p + "layernorm.bias"],
           "head.weight": sd["classifier.weight"], "head.bias": sd["classifier.bias"]}
    for i in range(depth):
        L = f"{p}encoder.layer.{i}."
        a = L + "attention.attention."
        out[f"blocks.{i}.attn.qkv.weight"] = torch.cat([sd[a + n + ".weight"] for n in ("query", "key", "value")])
        out[f"blocks.{i}.attn.qkv.bias"] = torch.cat([sd[a + n + ".bias"] for n in ("query", "key", "value")])
        for ours, theirs in [("norm1", "layernorm_before"), ("attn.proj", "attention.output.dense"),
                             ("norm2", "layernorm_after"), ("mlp.fc1", "intermediate.dense"),
                             ("mlp.fc2", "output.dense")]:
            out[f"blocks.{i}.{ours}.weight"] = sd[L + theirs + ".weight"]
            out[f"blocks.{i}.{ours}.bias"] = sd[L + theirs + ".bias"]
    return out


def load_shipped(model_dir):
    """A shipped checkpoint (HF ViT or timm DeiT layout) as our module, plus its input shape."""
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    sd = load_safetensors(os.path.join(model_dir, "model.safetensors"))
    if "model_args" in cfg:  # timm
        a = cfg["model_args"]
        dim, depth = a["embed_dim"], a["depth"]
        m = ViT(a["img_size"], a["patch_size"], a.get("in_chans", 3), dim, depth, a["num_heads"],
                int(dim * a.get("mlp_ratio", 4.0)), cfg["num_classes"], 1e-6, distilled="dist_token" in sd)
        m.load_timm_state(sd, model_dir)
        return m.eval(), (a.get("in_chans", 3), a["img_size"], a["img_size"])
    dim, depth = cfg["hidden_size"], cfg["num_hidden_layers"]
    if cfg.get("hidden_act", "gelu") != "gelu":
        raise SystemExit(f"{model_dir}: hidden_act {cfg['hidden_act']} not supported by this export")
    m = ViT(cfg["image_size"], cfg["patch_size"], cfg.get("num_channels", 3), dim, depth,
            cfg["num_attention_heads"], cfg["intermediate_size"], len(cfg["id2label"]),
            cfg.get("layer_norm_eps", 1e-12))
    extra = [k for k in sd if k.startswith("vit.pooler")]
    for k in extra:
        sd.pop(k)
    m.load_timm_state(hf_to_timm(sd, depth, dim), model_dir)
    c, s = cfg.get("num_channels", 3), cfg["image_size"]
    return m.eval(), (c, s, s)


# ---------------------------------------------------------------------------------------------------
# ONNX

def export_onnx(model, shape, path):
    x = torch.zeros(1, *shape)
    tmp = path + ".tmp"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about the static reshape sizes (batch 1 by design)
        torch.onnx.export(model, x, tmp, opset_version=OPSET, input_names=["input"], output_names=["logits"],
                          do_constant_folding=True)
    os.replace(tmp, path)


def quantize_dynamic_int8(src, dst, conv=False):
    """ONNX Runtime's quantize_dynamic(weight_type=QInt8) graph form, written with the onnx package.
    conv=False: op_types_to_quantize=["MatMul"]; conv=True: also Conv -> ConvInteger (the default op set)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(src)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers[i] = consumers.get(i, 0) + 1
    new_nodes, new_inits, dropped, qcache = [], [], set(), {}
    counts = {"MatMul": 0, "Conv": 0}

    def quant_act(name):  # one DynamicQuantizeLinear per activation, shared by its consumers
        if name not in qcache:
            base = name.replace(":", "_").replace("/", "_")
            outs = [base + "_quantized", base + "_scale", base + "_zero_point"]
            new_nodes.append(helper.make_node("DynamicQuantizeLinear", [name], outs, base + "_QuantizeLinear"))
            qcache[name] = outs
        return qcache[name]

    def quant_weight(name):
        w = numpy_helper.to_array(inits[name]).astype(np.float32)
        scale = np.float32(max(float(np.abs(w).max()), 1e-12) / 127.0)
        q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
        new_inits.extend([numpy_helper.from_array(q, name + "_quantized"),
                          numpy_helper.from_array(np.array(scale, dtype=np.float32), name + "_scale"),
                          numpy_helper.from_array(np.array(0, dtype=np.int8), name + "_zero_point")])
        if consumers.get(name, 0) == 1:
            dropped.add(name)
        return name + "_quantized", name + "_scale", name + "_zero_point"

    for n in g.node:
        if n.op_type == "MatMul" and n.input[1] in inits and len(inits[n.input[1]].dims) == 2:
            aq, asc, azp = quant_act(n.input[0])
            wq, wsc, wzp = quant_weight(n.input[1])
            base = (n.name or n.output[0]).replace("/", "_")
            new_nodes += [
                helper.make_node("MatMulInteger", [aq, wq, azp, wzp], [base + "_i32"], base + "_quant"),
                helper.make_node("Cast", [base + "_i32"], [base + "_f32"], base + "_cast", to=TensorProto.FLOAT),
                helper.make_node("Mul", [asc, wsc], [base + "_scales"], base + "_scales_mul"),
                helper.make_node("Mul", [base + "_f32", base + "_scales"], [n.output[0]], base + "_output_scale_mul"),
            ]
            counts["MatMul"] += 1
        elif conv and n.op_type == "Conv" and n.input[1] in inits:
            aq, asc, azp = quant_act(n.input[0])
            wq, wsc, wzp = quant_weight(n.input[1])
            base = (n.name or n.output[0]).replace("/", "_")
            out = n.output[0] if len(n.input) < 3 else base + "_nobias"
            new_nodes += [
                helper.make_node("ConvInteger", [aq, wq, azp, wzp], [base + "_i32"], base + "_quant",
                                 **{a.name: helper.get_attribute_value(a) for a in n.attribute}),
                helper.make_node("Cast", [base + "_i32"], [base + "_f32"], base + "_cast", to=TensorProto.FLOAT),
                helper.make_node("Mul", [asc, wsc], [base + "_scales"], base + "_scales_mul"),
                helper.make_node("Mul", [base + "_f32", base + "_scales"], [out], base + "_output_scale_mul"),
            ]
            if len(n.input) >= 3:
                b = numpy_helper.to_array(inits[n.input[2]]).astype(np.float32)
                new_inits.append(numpy_helper.from_array(b.reshape(-1, 1, 1), n.input[2] + "_reshaped"))
                if consumers.get(n.input[2], 0) == 1:
                    dropped.add(n.input[2])
                new_nodes.append(helper.make_node("Add", [out, n.input[2] + "_reshaped"], [n.output[0]], base + "_bias_add"))
            counts["Conv"] += 1
        else:
            new_nodes.append(n)
    keep = [i for i in g.initializer if i.name not in dropped]
    del g.node[:]
    g.node.extend(new_nodes)
    del g.initializer[:]
    g.initializer.extend(keep + new_inits)
    if not any(o.domain in ("", "ai.onnx") and o.version >= 10 for o in m.opset_import):
        raise SystemExit("quantize_dynamic_int8: needs opset >= 10")
    onnx.checker.check_model(m)
    tmp = dst + ".tmp"
    onnx.save(m, tmp)
    os.replace(tmp, dst)
    return counts


def gemm_models(out_dir):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(7)
    for M, K, N in GEMM_SHAPES:
        b = rng.standard_normal((K, N)).astype(np.float32) / np.sqrt(K)
        g = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["Y"])], "gemm_f32",
                              [helper.make_tensor_value_info("A", TensorProto.FLOAT, [M, K])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [M, N])],
                              [numpy_helper.from_array(b, "B")])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
        onnx.checker.check_model(m)
        onnx.save(m, os.path.join(out_dir, f"f32_{M}x{K}x{N}.onnx"))
        bq = rng.integers(-127, 128, (K, N)).astype(np.int8)
        g = helper.make_graph([helper.make_node("MatMulInteger", ["A", "B", "a_zp", "b_zp"], ["Y"])], "gemm_u8s8",
                              [helper.make_tensor_value_info("A", TensorProto.UINT8, [M, K])],
                              [helper.make_tensor_value_info("Y", TensorProto.INT32, [M, N])],
                              [numpy_helper.from_array(bq, "B"),
                               numpy_helper.from_array(np.array(128, dtype=np.uint8), "a_zp"),
                               numpy_helper.from_array(np.array(0, dtype=np.int8), "b_zp")])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
        onnx.checker.check_model(m)
        onnx.save(m, os.path.join(out_dir, f"int8_{M}x{K}x{N}.onnx"))
    log("gemm models:", out_dir)


def have_onnx():
    try:
        import onnx  # noqa: F401
        return True
    except ImportError:
        return False


def write_outputs(model, shape, out_dir, manifest, key, extra=None):
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()
    export_onnx(model, shape, os.path.join(out_dir, "model.onnx"))
    entry = {"format": FORMAT, "onnx": "model.onnx", "input": [1, *shape], "opset": OPSET}
    if have_onnx():
        src = os.path.join(out_dir, "model.onnx")
        entry["int8"] = "model.int8.onnx"
        entry["int8_quantized_ops"] = quantize_dynamic_int8(src, os.path.join(out_dir, "model.int8.onnx"))
        entry["int8conv"] = "model.int8-conv.onnx"
        entry["int8conv_quantized_ops"] = quantize_dynamic_int8(src, os.path.join(out_dir, "model.int8-conv.onnx"), conv=True)
    else:
        log("python3-onnx is missing (apt-get install python3-onnx): no int8 ONNX for", key)
    # Reference logits from PyTorch on a fixed input, for the bench's consistency check.
    g = torch.Generator().manual_seed(123)
    x = torch.randn(1, *shape, generator=g)
    with torch.no_grad():
        entry["torch_check"] = {"seed": 123, "logits_head": model(x)[0, :8].tolist()}
    entry.update(extra or {})
    manifest[key] = entry
    log(f"{key}: exported in {time.time() - t0:.1f}s ->", out_dir)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench"))
    ap.add_argument("--only", default="synthetic,fmnist,gemm")
    ap.add_argument("--shipped", default="models/vit-fmnist-hf,models/deit-fmnist-timm",
                    help="model folders (relative to the repo) exported by the 'fmnist' part, each to OUT/<folder name>")
    args = ap.parse_args()
    torch.set_num_threads(1)
    only = set(args.only.split(","))
    os.makedirs(args.out, exist_ok=True)
    mpath = os.path.join(args.out, "models.json")
    manifest = json.load(open(mpath)) if os.path.exists(mpath) else {}

    if "synthetic" in only:
        for key, s in SYNTHETIC.items():
            d = os.path.join(args.out, key)
            dim = s["dim"]
            torch.manual_seed(s["seed"])
            m = ViT(224, 16, 3, dim, 12, s["heads"], 4 * dim, 1000, 1e-6).eval()
            random_init(m, s["seed"])
            os.makedirs(d, exist_ok=True)
            save_safetensors(os.path.join(d, "model.safetensors"), m.timm_state())
            cfg = {"architecture": s["arch"], "num_classes": 1000,
                   "model_args": {"img_size": 224, "patch_size": 16, "in_chans": 3, "embed_dim": dim, "depth": 12,
                                  "num_heads": s["heads"], "mlp_ratio": 4.0},
                   "pretrained_cfg": {"input_size": [3, 224, 224], "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
                                      "interpolation": "bilinear", "crop_pct": 1.0}}
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(cfg, f, indent=2)
                f.write("\n")
            write_outputs(m, (3, 224, 224), d, manifest, key, {"safetensors": "model.safetensors", "seed": s["seed"]})

    if "fmnist" in only:
        for rel in filter(None, args.shipped.split(",")):
            src = os.path.join(ROOT, rel)
            name = os.path.basename(os.path.normpath(src))
            if not os.path.exists(os.path.join(src, "model.safetensors")):
                log(f"{src}/model.safetensors not there yet: skipped")
                continue
            m, shape = load_shipped(src)
            st = os.stat(os.path.join(src, "model.safetensors"))
            write_outputs(m, shape, os.path.join(args.out, name), manifest, name,
                          {"source": os.path.relpath(src, ROOT), "source_mtime": st.st_mtime, "source_size": st.st_size})

    if "gemm" in only:
        if have_onnx():
            gemm_models(os.path.join(args.out, "gemm"))
            manifest["gemm"] = {"shapes": GEMM_SHAPES}
        else:
            log("python3-onnx is missing: no one-op GEMM models")

    with open(mpath + ".tmp", "w") as f:
        json.dump(manifest, f, indent=2)
    os.replace(mpath + ".tmp", mpath)


if __name__ == "__main__":
    main()
