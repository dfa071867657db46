#!/bin/sh
# The README's pruning table (issue 15): both shipped models pruned to half their heads and MLP units (and to
# three quarters), recovered by distillation or by fine-tuning on the labels, then quantized with PTQ; every row
# evaluated on the full Fashion-MNIST test set. Natively, 2 jobs; ~30 min on 2 cores.
#   sh tests/bench/prune_table.sh [OUT_DIR]   (default build/prune-exp; JSON per run, then a summary table)
set -e
cd "$(dirname "$0")/../.."
OUT=${1:-build/prune-exp}
B=${BITLENS:-build/native/bitlens}
FM=/usr/share/datasets/fashion-mnist
TR=$FM/train-images-idx3-ubyte.gz
EV=$FM/t10k-images-idx3-ubyte.gz
mkdir -p "$OUT"
for M in vit-fmnist-hf deit-fmnist-timm; do
  run() {  # name, prune options...
    name=$1; shift
    [ -s "$OUT/$M-$name.json" ] || $B prune --model models/$M --train $TR --eval $EV --jobs 2 --out "$OUT/$M-$name" --json "$@" > "$OUT/$M-$name.json"
  }
  run h50-m50-distill --keep-heads 0.5 --keep-mlp 0.5 --distill --epochs 2
  run h50-m50-finetune --keep-heads 0.5 --keep-mlp 0.5 --epochs 2
  run h75-m75-distill --keep-heads 0.75 --keep-mlp 0.75 --distill --epochs 2
  run h50-m50-mask --keep-heads 0.5 --keep-mlp 0.5 --epochs 0 --importance mask --importance-images 256
  run h50-m50-taylor256 --keep-heads 0.5 --keep-mlp 0.5 --epochs 0 --importance-images 256
  for S in original h50-m50-distill h75-m75-distill; do
    dir=models/$M; [ $S = original ] || dir=$OUT/$M-$S
    for W in 8 6 4 3; do
      f="$OUT/$M-$S-w${W}a${W}.json"
      [ -s "$f" ] || $B quantize --model "$dir" --calib $TR --eval $EV --wbits $W --abits $W --jobs 2 --json > "$f"
    done
  done
done
python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
for m in ['vit-fmnist-hf', 'deit-fmnist-timm']:
    print(f'\n{m}')
    for s in ['h50-m50-distill', 'h50-m50-finetune', 'h75-m75-distill', 'h50-m50-mask', 'h50-m50-taylor256']:
        j = json.load(open(f'{out}/{m}-{s}.json'))
        r = j['recovered'] or j['pruned']
        print(f"  {s:20s} params {j['parameters']}/{j['parameters_before']} ({100*j['parameter_ratio']:.1f}%)  FP32 {100*j['fp32']['top1']:.2f}/{100*j['fp32']['worst']:.2f}"
              f"  pruned {100*j['pruned']['top1']:.2f}/{100*j['pruned']['worst']:.2f}  final {100*r['top1']:.2f}/{r['worst_label']} {100*r['worst']:.2f}")
    for s in ['original', 'h50-m50-distill', 'h75-m75-distill']:
        for w in [8, 6, 4, 3]:
            j = json.load(open(f'{out}/{m}-{s}-w{w}a{w}.json'))
            wc = j['worst_class']
            print(f"  {s:20s} W{w}A{w}  {100*j['top1']:.2f} / {wc['label']} {100*wc['accuracy']:.2f}  {j['model_bytes']} bytes (FP32 {j['fp32_bytes']})")
PY
