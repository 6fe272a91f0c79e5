#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) with libFuzzer, starting from the seeds
# and the regression inputs, and keeping what it learns in fuzz/corpus/<target>/ (not
# committed). A crash stops the run with the target and input named; fix it, then copy the
# input to fuzz/regressions/<target>/ so that the normal test suite runs it on stable.
#
#   fuzz/run.sh 600                 # ten minutes per target
#   fuzz/run.sh 60 verify_range     # one target
#   JOBS=2 fuzz/run.sh 600          # two targets at a time (one per core)
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`), installed here if
# missing. Writes each target's figures (runs, corpus size, coverage) to fuzz/out/<target>.log
# and a summary to fuzz/out/summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
jobs="${JOBS:-1}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
mkdir -p fuzz/out
# One build for all targets, then the campaigns. The release profile's thin LTO would
# optimise each of the fourteen binaries across all its dependencies again (minutes each):
# off for fuzzing, where the sanitizer's instrumentation dominates anyway.
export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
cargo +nightly fuzz build --features libfuzzer -O
triple=$(rustc -vV | sed -n 's/^host: //p')

run_one() {
  local target="$1"
  mkdir -p "fuzz/corpus/$target" "fuzz/regressions/$target"
  local log="fuzz/out/$target.log"
  # -rss_limit_mb: the node's own limits keep every decoder far below it.
  mkdir -p "fuzz/artifacts/$target"
  # The binary cargo-fuzz built, run directly: no cargo (and no lock on the build directory)
  # while several campaigns run.
  if "target/$triple/release/$target" "fuzz/corpus/$target" "fuzz/seeds/$target" "fuzz/regressions/$target" \
      -artifact_prefix="fuzz/artifacts/$target/" -max_total_time="$seconds" -rss_limit_mb=2048 \
      -print_final_stats=1 >"$log" 2>&1; then
    local runs corpus cov
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    echo "$target: clean, ${seconds}s, ${runs:-?} runs, corpus ${corpus} inputs, coverage ${cov:-?} edges"
  else
    echo "$target: CRASH (see $log and fuzz/artifacts/$target/)"
    return 1
  fi
}

status=0
: >fuzz/out/summary.txt
if [ "$jobs" -le 1 ]; then
  for target in "${targets[@]}"; do
    run_one "$target" | tee -a fuzz/out/summary.txt || status=1
  done
else
  export -f run_one
  export seconds triple
  printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}' | tee -a fuzz/out/summary.txt || status=1
fi
exit "$status"
