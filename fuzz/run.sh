#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) each.
#   fuzz/run.sh            # a minute per target
#   fuzz/run.sh 10         # what CI runs
# Needs cargo-fuzz (cargo install cargo-fuzz). cargo-fuzz wants nightly
# flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list)
cargo fuzz build --release 2>&1 | tail -n 3
for t in $targets; do
  mkdir -p "corpus/$t"
  echo "fuzzing $t for ${seconds}s"
  cargo fuzz run --release "$t" "corpus/$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 2>&1 \
    | grep -E "^(#[0-9]+.*DONE|==|SUMMARY|Done)" || true
  if [ -d "artifacts/$t" ] && [ -n "$(ls -A "artifacts/$t" 2>/dev/null)" ]; then
    echo "fuzz target $t found a crash: fuzz/artifacts/$t" >&2
    exit 1
  fi
done
echo "all fuzz targets ran ${seconds}s without a crash"
