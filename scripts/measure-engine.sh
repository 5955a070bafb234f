#!/usr/bin/env bash
# Measures the client engine through the `kith` binary against a fresh
# release relay: how long an introduction takes to connect with `watch`
# running on every side, the CPU of an idle `watch` and of one whose relay
# is down, and how fast a profile catches up on messages received while it
# was offline. Every figure in docs/performance.md "Client engine" comes
# from it; run it for two builds in one session to compare them.
#
#   scripts/measure-engine.sh [KITH_BIN [KITH_RELAY_BIN]]
#
# Defaults: target/release/kith and target/release/kith-relay (build them
# with `cargo build --release -p kith -p kith-relay`). MESSAGES (default
# 10000) sets the catch-up size, IDLE_SECS (default 60) the CPU windows.
set -euo pipefail
cd "$(dirname "$0")/.."
KITH="${1:-target/release/kith}"
RELAY="${2:-target/release/kith-relay}"
MESSAGES="${MESSAGES:-10000}"
IDLE_SECS="${IDLE_SECS:-60}"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
k() { local who="$1"; shift; "$KITH" --home "$work/$who" "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
# CPU seconds (user + system) a process has used so far.
cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}
# Waits (up to 60 s) until FILE has a line matching PATTERN.
wait_for() {
  local file="$1" pattern="$2" deadline=$(( $(date +%s) + 60 ))
  until grep -q "$pattern" "$file" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "timed out waiting for $pattern in $file" >&2; exit 1; }
    sleep 0.01
  done
}

start_relay() {
  KITH_RELAY_RATE_LIMIT__ENABLED=false "$RELAY" serve --listen "${1:-127.0.0.1:0}" \
    --db "$work/relay.db" >"$work/relay.out" 2>"$work/relay.log" &
  relay_pid=$!
  pids+=("$relay_pid")
  wait_for "$work/relay.out" "listening on"
  url="$(sed -n 's/.*listening on //p' "$work/relay.out" | head -n 1)"
}

start_relay
echo "kith: $KITH ($("$KITH" --version))"
echo "relay: $url"

k alex init --name Alex --relay "$url" >/dev/null
k blair init --name Blair >/dev/null
k charlie init --name Charlie >/dev/null
link="$(k alex --json invite | field '["link"]')"
k blair accept "$link" --name Blair >/dev/null
k alex sync >/dev/null
link="$(k alex --json invite --name Alex2 | field '["link"]')"
k charlie accept "$link" --name Charlie >/dev/null
k alex sync >/dev/null
# Blair knows Alex and Charlie: Charlie accepts an invitation Blair makes on
# Alex's relay.
link="$(k blair --json invite --relay "$url" | field '["link"]')"
k charlie accept "$link" --name Charlie >/dev/null
k blair sync >/dev/null
for who in alex blair charlie; do k "$who" sync >/dev/null; done

# 1. An introduction with `watch` running on all three sides.
for who in alex blair charlie; do
  # The binary itself in the background (not through `k`, whose subshell
  # would be what $! names).
  "$KITH" --home "$work/$who" --json watch >"$work/$who.watch" 2>"$work/$who.watch.err" &
  pids+=("$!")
  eval "${who}_watch=$!"
done
sleep 1
k blair introduce Alex Charlie --note "you both ski" >/dev/null
wait_for "$work/alex.watch" '"event":"introduction"'
wait_for "$work/charlie.watch" '"event":"introduction"'
intro_a="$(k alex --json introductions | field '[0]["id"]')"
intro_c="$(k charlie --json introductions | field '[0]["id"]')"
k alex introductions accept "$intro_a" >/dev/null
k charlie introductions accept "$intro_c" >/dev/null
accepted="$(now_ms)"
wait_for "$work/alex.watch" '"event":"connected"'
wait_for "$work/charlie.watch" '"event":"connected"'
connected="$(now_ms)"
echo "introduction: last accept to both connected (watch running): $(( connected - accepted )) ms"

# 2. An idle watch, then the same watch with its relay down.
sleep 5
before="$(cpu "$alex_watch")"
sleep "$IDLE_SECS"
after="$(cpu "$alex_watch")"
echo "idle watch: $(python3 -c "print(f'{($after - $before) / $IDLE_SECS * 100:.3f}')") % of a core over ${IDLE_SECS} s"
kill "$relay_pid"
wait "$relay_pid" 2>/dev/null || true
sleep 2
before="$(cpu "$alex_watch")"
sleep "$IDLE_SECS"
after="$(cpu "$alex_watch")"
echo "watch, relay down: $(python3 -c "print(f'{($after - $before) / $IDLE_SECS * 100:.3f}')") % of a core over ${IDLE_SECS} s"
for who in alex blair charlie; do eval "kill \$${who}_watch" 2>/dev/null || true; done
for who in alex blair charlie; do eval "wait \$${who}_watch" 2>/dev/null || true; done
listen="${url#http://}"
start_relay "$listen"

# 3. Catching up: Blair sends while Alex is offline, then Alex syncs.
k alex sync >/dev/null
k blair sync >/dev/null
sent_start="$(now_ms)"
for i in $(seq 1 "$MESSAGES"); do
  k blair send Alex "message $i of $MESSAGES" >/dev/null
done
sent_end="$(now_ms)"
echo "sending $MESSAGES messages, one kith send each: $(( (sent_end - sent_start) / MESSAGES )) ms per command"
start="$(now_ms)"
k alex sync >/dev/null
end="$(now_ms)"
count="$(k alex --json read Blair | field '.__len__()')"
echo "catch-up: $count messages in $(( end - start )) ms = $(python3 -c "print(round($count * 1000 / max($end - $start, 1)))") messages/s"
