#!/bin/bash
# Rewrites the committed seed corpora (tests/fuzz/corpus/) with fuzz_make_seeds (see make_seeds.cpp), and adds
# the gzipped IDX seed. Inputs the fuzzers found (crash-*, kept as regressions) are left alone.
set -eu
cd "$(dirname "$0")/../.."
B=build/fuzz
[ -f $B/build.ninja ] || CC=clang-14 CXX=clang++-14 cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DBITLENS_FUZZ=ON >/dev/null
cmake --build $B --target fuzz_make_seeds
ASAN_OPTIONS=detect_leaks=1 $B/fuzz_make_seeds . tests/fuzz/corpus
python3 - <<'PY'
import gzip
sep = b"\n--bitlens-fuzz-part--\n"
images, labels = open("tests/fuzz/corpus/idx/raw", "rb").read().split(sep)
z = lambda b: gzip.compress(b, compresslevel=9, mtime=0)
open("tests/fuzz/corpus/idx/gzip", "wb").write(z(images) + sep + z(labels))
open("tests/fuzz/corpus/idx/gzip-images-raw-labels", "wb").write(z(images) + sep + labels)
PY
du -sh tests/fuzz/corpus
