#!/usr/bin/env bash
# What hostile clients cost the relay: for each kind (a body dripped a byte
# at a time, a body that stops, a WebSocket that never reads), a fresh
# release relay (rate limits off, default timeouts and answer budget) and
# N such clients at once; prints the relay's memory before, at the peak and
# after, and how many connections the relay closed itself.
#
#   scripts/hostile.sh            # 1,000 connections of each kind
#   CONNECTIONS=100 SECONDS_EACH=40 scripts/hostile.sh
#
# The figures in docs/performance.md ("The relay under hostile clients")
# come from this script.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || ulimit -n 8192
cargo build --release -p kith-relay --bin kith-relay --example hostile -q
bin=target/release/kith-relay
hostile=target/release/examples/hostile
n=${CONNECTIONS:-1000}
for kind in drip stall ws-no-read; do
  dir=$(mktemp -d "${TMPDIR:-/tmp}/kith-hostile.XXXXXX")
  KITH_RELAY_RATE_LIMIT__ENABLED=false "$bin" serve --listen 127.0.0.1:0 --db "$dir/relay.db" \
    >"$dir/out" 2>"$dir/relay.log" &
  relay=$!
  for _ in $(seq 100); do [ -s "$dir/out" ] && break; sleep 0.1; done
  url=$(awk '{print $4}' "$dir/out")
  # Past the 30 s body and write timeouts, so that what they free shows.
  "$hostile" --url "$url" --kind "$kind" --connections "$n" --seconds "${SECONDS_EACH:-40}" || true
  kill -TERM "$relay"; wait "$relay" || true
  rm -rf "$dir"
done
