#!/usr/bin/env bash
# Runs `kith-relay bench` against a fresh release relay (rate limits off, a
# temporary database on the same disk as the bench's fsync baseline), then
# stops the relay and prints the CPU time it used.
#
#   scripts/bench-relay.sh --writers 64 --readers 64
#   scripts/bench-relay.sh --writers 16 --readers 16 --in-flight 16 --presign 1200
#
# Every figure in docs/performance.md comes from this script.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p kith-relay -q
bin=target/release/kith-relay
dir=$(mktemp -d "${TMPDIR:-/tmp}/kith-bench.XXXXXX")
trap 'kill "$relay" 2>/dev/null || true; rm -rf "$dir"' EXIT
KITH_RELAY_RATE_LIMIT__ENABLED=false "$bin" serve --listen 127.0.0.1:0 --db "$dir/relay.db" \
  >"$dir/out" 2>"$dir/relay.log" &
relay=$!
for _ in $(seq 100); do [ -s "$dir/out" ] && break; sleep 0.1; done
url=$(awk '{print $4}' "$dir/out")
ticks() { awk '{print $14 + $15}' "/proc/$relay/stat"; }
before=$(ticks)
"$bin" bench --url "$url" --fsync-dir "$dir" "$@"
after=$(ticks)
kill -TERM "$relay"
wait "$relay" || true
echo "relay CPU: $(( (after - before) * 1000 / $(getconf CLK_TCK) )) ms" >&2
