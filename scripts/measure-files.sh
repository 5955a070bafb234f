#!/usr/bin/env bash
# Measures file transfer through the `kith` binary against a fresh release
# relay (SQLite), beside the machine's own limits in the same run: the disk
# (`dd … conv=fdatasync`) and a static file server (lighttpd, fetched with
# curl). Blair (no relay of her own) sends a file of random bytes to Alex
# through Alex's relay; Alex downloads it; the copy is compared by hash.
# Peak memory of both clients comes from `/usr/bin/time -v`, the relay's
# from its VmHWM before and after. Every figure in docs/performance.md
# "Files" comes from it.
#
#   scripts/measure-files.sh [KITH_BIN [KITH_RELAY_BIN]]
#
# SIZE_MIB (default 1024) sets the file's size. GROUP=1 also sends the
# file to a 5-member group and has every other member download it.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
KITH="$(realpath "${1:-target/release/kith}")"
RELAY="$(realpath "${2:-target/release/kith-relay}")"
SIZE_MIB="${SIZE_MIB:-1024}"
GROUP="${GROUP:-0}"
LIGHTTPD="${LIGHTTPD:-/usr/sbin/lighttpd}"
work="$(mktemp -d "${TMPDIR:-/var/tmp}/kith-files.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
k() { local who="$1"; shift; "$KITH" --home "$work/$who" "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
wait_for() {
  local file="$1" pattern="$2" deadline=$(( $(date +%s) + 60 ))
  until grep -q "$pattern" "$file" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "timed out waiting for $pattern in $file" >&2; exit 1; }
    sleep 0.01
  done
}
# MiB/s of BYTES moved in MS milliseconds.
rate() { python3 -c "print(f'{$1 / 1048576 / ($2 / 1000):.1f}')"; }
# Peak RSS in MiB from a `/usr/bin/time -v` log.
peak() { awk -F': ' '/Maximum resident/ { printf "%.1f", $2 / 1024 }' "$1"; }
relay_hwm() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$relay_pid/status"; }
# Sends FILE from WHO to CONV, timed; prints the rate.
timed_send() {
  local who="$1" conv="$2" file="$3" start end
  start="$(now_ms)"
  /usr/bin/time -v -o "$work/$who.send.time" "$KITH" --home "$work/$who" send-file "$conv" "$file" >/dev/null
  end="$(now_ms)"
  echo "$(rate "$(stat -c %s "$file")" $(( end - start )))"
}
# WHO downloads the last message of CONV into DIR, timed; checks the hash.
timed_download() {
  local who="$1" conv="$2" file="$3" dir="$4" id start end
  k "$who" sync >/dev/null
  id="$(k "$who" --json read "$conv" | field '[-1]["id"]')"
  mkdir -p "$dir"
  start="$(now_ms)"
  /usr/bin/time -v -o "$work/$who.download.time" "$KITH" --home "$work/$who" download "$conv" "$id" --to "$dir" >/dev/null
  end="$(now_ms)"
  [ "$(sha256sum < "$dir/$(basename "$file")")" = "$(sha256sum < "$file")" ] \
    || { echo "$who's copy differs from the original" >&2; exit 1; }
  rm -f "$dir/$(basename "$file")"
  echo "$(rate "$(stat -c %s "$file")" $(( end - start )))"
}

echo "kith: $KITH ($("$KITH" --version)); file: $SIZE_MIB MiB; $(nproc) cores"

# The machine's limits, in the same run and on the same disk.
# This disk's rate moves between runs (a shared host): three, in order.
for _ in 1 2 3; do
  dd if=/dev/zero of="$work/dd" bs=1M count=1024 conv=fdatasync 2>"$work/dd.log"
  tail -n 1 "$work/dd.log" | sed 's/.*, //'
  rm -f "$work/dd"
done | paste -sd ' ' | sed 's/^/disk (dd bs=1M count=1024 conv=fdatasync, three runs): /'

head -c $(( SIZE_MIB << 20 )) /dev/urandom >"$work/payload.bin"
mkdir -p "$work/www"
ln "$work/payload.bin" "$work/www/payload.bin"
cat >"$work/lighttpd.conf" <<EOF
server.document-root = "$work/www"
server.bind = "127.0.0.1"
server.port = 0
server.errorlog = "$work/lighttpd.log"
EOF
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
sed -i "s/server.port = 0/server.port = $port/" "$work/lighttpd.conf"
"$LIGHTTPD" -D -f "$work/lighttpd.conf" &
pids+=("$!")
sleep 0.5
curl -s -o /dev/null "http://127.0.0.1:$port/payload.bin"
for _ in 1 2 3; do
  curl -s -o /dev/null -w '%{speed_download}\n' "http://127.0.0.1:$port/payload.bin"
done | sort -n | sed -n 2p | awk '{ printf "curl from lighttpd to /dev/null (median of 3): %.1f MiB/s\n", $1 / 1048576 }'
# The same fetch, saved to the disk and synced, as a download must be.
for _ in 1 2 3; do
  start="$(now_ms)"
  curl -s -o "$work/curl.out" "http://127.0.0.1:$port/payload.bin"
  sync --data "$work/curl.out"
  end="$(now_ms)"
  rm -f "$work/curl.out"
  rate $(( SIZE_MIB << 20 )) $(( end - start ))
done | sort -n | sed -n 2p | awk '{ printf "curl from lighttpd to a file, then fdatasync (median of 3): %s MiB/s\n", $1 }'

KITH_RELAY_RATE_LIMIT__ENABLED=false "$RELAY" serve --listen 127.0.0.1:0 \
  --db "$work/relay.db" >"$work/relay.out" 2>"$work/relay.log" &
relay_pid=$!
pids+=("$relay_pid")
wait_for "$work/relay.out" "listening on"
url="$(sed -n 's/.*listening on //p' "$work/relay.out" | head -n 1)"

k alex init --name Alex --relay "$url" >/dev/null
k blair init --name Blair >/dev/null
k blair accept "$(k alex --json invite | field '["link"]')" >/dev/null
k alex sync >/dev/null
relay_before="$(relay_hwm)"

sent="$(timed_send blair Alex "$work/payload.bin")"
echo "send-file (Blair to Alex's relay): $sent MiB/s, client peak $(peak "$work/blair.send.time") MiB"
got="$(timed_download alex Blair "$work/payload.bin" "$work/dl")"
echo "download (Alex): $got MiB/s, client peak $(peak "$work/alex.download.time") MiB, identical"
echo "relay peak RSS: $(relay_hwm) MiB (before the transfers: $relay_before MiB)"

if [ "$GROUP" = 1 ]; then
  for who in charlie dana emery; do
    k "$who" init --name "${who^}" >/dev/null
    k "$who" accept "$(k alex --json invite | field '["link"]')" >/dev/null
    k alex sync >/dev/null
  done
  # Everyone's key package reaches Alex before the group is made.
  for who in blair charlie dana emery alex; do k "$who" sync >/dev/null; done
  k alex group create Trip >/dev/null
  for conv in Blair Charlie Dana Emery; do k alex group add Trip "$conv" >/dev/null; done
  k alex sync >/dev/null
  for who in blair charlie dana emery; do k "$who" sync >/dev/null; done
  sent="$(timed_send blair Trip "$work/payload.bin")"
  echo "send-file (Blair to the 5-member group): $sent MiB/s"
  for who in alex charlie dana emery; do
    got="$(timed_download "$who" Trip "$work/payload.bin" "$work/dl-$who")"
    echo "download ($who, group): $got MiB/s, identical"
  done
  echo "relay: $(sqlite3 "$work/relay.db" 'SELECT COUNT(*) FROM blobs WHERE chunk_count > 1') blobs of several chunks (one per file sent), $(ls "$work/relay.db-blobs" | wc -l) blob files"
fi
