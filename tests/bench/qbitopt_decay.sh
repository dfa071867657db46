#!/bin/bash
# The --sensitivity-decay measurement in the README (QBitOpt): 3 seeds x 2 models x 3 decays, JSON in build/decay/.
cd "$(dirname "$0")/../.."
mkdir -p build/decay
for seed in 0 1 2; do for m in hf deit; do for d in 0 0.5 0.8; do
  model=models/vit-fmnist-hf; [ $m = deit ] && model=models/deit-fmnist-timm
  n=$m-s$seed-d$d
  [ -s build/decay/$n.json ] && continue
  s=$(date +%s)
  build/native/bitlens qat --model $model --train /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz --eval /usr/share/datasets/fashion-mnist --budget 3 --abudget 3 --epochs 3 --train-limit 10000 --jobs 2 --no-edges-8bit --seed $seed --sensitivity-decay $d --json > build/decay/$n.json 2> build/decay/$n.err
  echo "$n rc=$? $(( $(date +%s) - s ))s" >> build/decay/log
done; done; done
