#!/usr/bin/env bash
# Runs `kith-relay bench` against a fresh release relay hosted one of four
# ways, with rate limits off:
#
#   scripts/bench-hosting.sh sqlite    [bench flags]   # serve, SQLite file
#   scripts/bench-hosting.sh postgres  [bench flags]   # serve, PostgreSQL ($KITH_BENCH_POSTGRES_URL)
#   scripts/bench-hosting.sh postgres2 [bench flags]   # two processes on it: writers to one,
#                                                      # WebSocket readers on the other
#   scripts/bench-hosting.sh cgi       [bench flags]   # lighttpd running the relay as CGI
#                                                      # (no WebSocket: use --transport http --readers 0)
#
# The figures of docs/performance.md "Hosting" come from this script.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?sqlite, postgres, postgres2 or cgi}
shift
cargo build --release -p kith-relay -q
bin=$PWD/target/release/kith-relay
dir=$(mktemp -d "${TMPDIR:-/tmp}/kith-bench.XXXXXX")
cleanup() {
  for p in $(cat "$dir"/*.pid 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
pg=${KITH_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
schema="kith_bench_$$"

start() { # name, then extra environment
  local name=$1; shift
  env KITH_RELAY_RATE_LIMIT__ENABLED=false "$@" "$bin" serve --listen 127.0.0.1:0 \
    >"$dir/$name.out" 2>"$dir/$name.log" &
  echo $! >"$dir/$name.pid"
  for _ in $(seq 100); do [ -s "$dir/$name.out" ] && break; sleep 0.1; done
  awk '{print $4}' "$dir/$name.out"
}

case "$mode" in
  sqlite)
    url=$(start a KITH_RELAY_DB="$dir/relay.db")
    "$bin" bench --url "$url" "$@" ;;
  postgres)
    url=$(start a KITH_RELAY_DB="$pg" KITH_RELAY_POSTGRES_SCHEMA="$schema")
    "$bin" bench --url "$url" --no-baseline "$@" ;;
  postgres2)
    url=$(start a KITH_RELAY_DB="$pg" KITH_RELAY_POSTGRES_SCHEMA="$schema")
    read_url=$(start b KITH_RELAY_DB="$pg" KITH_RELAY_POSTGRES_SCHEMA="$schema")
    "$bin" bench --url "$url" --read-url "$read_url" --no-baseline "$@" ;;
  cgi)
    mkdir -p "$dir/www" "$dir/cgi-bin" "$dir/data"
    cp "$bin" "$dir/cgi-bin/kith-relay.cgi"
    printf 'db = "%s"\n[rate_limit]\nenabled = false\n' "$dir/data/relay.db" \
      >"$dir/cgi-bin/kith-relay.toml"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat >"$dir/lighttpd.conf" <<CONF
server.document-root = "$dir/www"
server.bind = "127.0.0.1"
server.port = $port
server.modules = ("mod_alias", "mod_cgi")
server.errorlog = "$dir/error.log"
server.max-connections = 1024
alias.url = ("/cgi-bin/" => "$dir/cgi-bin/")
cgi.assign = (".cgi" => "")
CONF
    /usr/sbin/lighttpd -D -f "$dir/lighttpd.conf" &
    echo $! >"$dir/lighttpd.pid"
    sleep 1
    "$bin" bench --url "http://127.0.0.1:$port/cgi-bin/kith-relay.cgi" --no-baseline "$@" ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
if [ "${mode#postgres}" != "$mode" ]; then
  psql "$pg" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
fi
