#!/bin/bash
# Builds the libFuzzer harnesses (build/fuzz, clang-14, ASan + UBSan) and runs each in turn for N seconds:
#   npm run fuzz -- [--seconds N] [--only safetensors,config,...]      (N: 600 by default; npm test runs 3)
# Each starts from its committed seeds (tests/fuzz/corpus/<harness>/, found inputs included) plus what earlier runs
# found (build/fuzz/corpus/<harness>/, where new inputs go). Any finding — a crash, an ASan or UBSan report, a leak,
# a timeout (> 10 s for one input) or more than 2 GB of memory — stops that harness; the script ends non-zero,
# naming the harness and the input file that did it (build/fuzz/findings/<harness>/). A table of executions and
# seconds per harness follows, also in build/fuzz/summary.txt.
set -u
cd "$(dirname "$0")/../.."
SECONDS_EACH=600
ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_EACH="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    *) echo "fuzz: unknown option $1 (use --seconds N, --only a,b)" >&2; exit 2 ;;
  esac
done
case "$SECONDS_EACH" in ''|*[!0-9]*) echo "fuzz: --seconds takes a whole number" >&2; exit 2 ;; esac
HARNESSES="safetensors config image idx folder quantized quantconfig sweep mixed"
[ -n "$ONLY" ] && HARNESSES="${ONLY//,/ }"
for h in $HARNESSES; do
  [ -f "tests/fuzz/fuzz_$h.cpp" ] || { echo "fuzz: no harness '$h' (tests/fuzz/fuzz_$h.cpp)" >&2; exit 2; }
done

B=build/fuzz
if ! command -v clang++-14 >/dev/null || ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "fuzz: needs clang-14 and libFuzzer: run 'npm run setup' as root (or apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 1
fi
if [ ! -f $B/build.ninja ]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DBITLENS_FUZZ=ON >/dev/null || exit 1
fi
targets=""
for h in $HARNESSES; do targets="$targets fuzz_$h"; done
cmake --build $B --target $targets || { echo "fuzz: the build failed" >&2; exit 1; }

summary=$B/summary.txt
: > "$summary"
failed=""
for h in $HARNESSES; do
  mkdir -p "$B/corpus/$h" "$B/findings/$h" "$B/logs"
  log="$B/logs/$h.log"
  start=$(date +%s%N)
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
    "$B/fuzz_$h" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
      -dict=tests/fuzz/bitlens.dict -artifact_prefix="$B/findings/$h/" -print_final_stats=1 \
      "$B/corpus/$h" "tests/fuzz/corpus/$h" > "$log" 2>&1
  rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  secs="$((ms / 1000)).$(( (ms % 1000) / 100 ))"
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  [ -z "$runs" ] && runs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
  if [ $rc -eq 0 ]; then
    printf '%-12s %10s executions %8s s  ok\n' "$h" "${runs:-?}" "$secs" | tee -a "$summary"
  else
    input=$(grep -o 'Test unit written to .*' "$log" | tail -1 | sed 's/Test unit written to //')
    kind=$(grep -m1 -oE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer): [a-zA-Z -]+|runtime error: .*|SUMMARY: .*' "$log" | head -1)
    printf '%-12s %10s executions %8s s  FINDING (exit %d): %s; input: %s (log: %s)\n' "$h" "${runs:-?}" "$secs" "$rc" \
      "${kind:-see the log}" "${input:-none written}" "$log" | tee -a "$summary"
    failed="$failed $h"
  fi
done
if [ -n "$failed" ]; then
  echo "fuzz: findings in:$failed (inputs under $B/findings/; reproduce: $B/fuzz_<harness> <input>)" >&2
  exit 1
fi
echo "fuzz: no findings ($(date -u +%Y-%m-%d), $SECONDS_EACH s per harness)"
