#!/usr/bin/env bash
# The relay beside an XMPP server on one workload (docs/performance.md,
# "Beside an XMPP server"): 16 sender/receiver pairs, 16 messages in flight
# each, 256-byte bodies, 2 s warm-up then 10 s measured, runs interleaved.
#
#   scripts/bench-vs-xmpp.sh [ROUNDS]      (default 3)
#
# ejabberd comes from Debian's package (installed here if missing; needs
# root) and runs from a temporary directory with its own configuration:
# one client listener without TLS, no traffic shaper, no offline storage,
# no archive, stream management on — messages are delivered to online
# receivers only and nothing is written to disk. The relay runs as
# scripts/bench-relay.sh runs it: every message fsynced before its answer.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
if ! command -v ejabberdctl >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q ejabberd >/dev/null
fi
# The package's own service (where systemd runs one) is not the one measured.
ejabberdctl stop >/dev/null 2>&1 || true
cargo build --release -p kith-relay -q --example xmpp_load
load=target/release/examples/xmpp_load

dir=$(mktemp -d "${TMPDIR:-/tmp}/kith-xmpp.XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
node="kithbench$$@localhost"
ctl() {
  ejabberdctl --ctl-config "$dir/ejabberdctl.cfg" --config "$dir/ejabberd.yml" \
    --spool "$dir/spool" --logs "$dir/logs" --node "$node" "$@"
}
trap 'ctl stop >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
mkdir -p "$dir/spool" "$dir/logs"
cat >"$dir/ejabberd.yml" <<YML
loglevel: warning
hosts: [localhost]
listen:
  - port: $port
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    shaper: none
    access: c2s
    starttls: false
auth_method: internal
auth_password_format: plain
shaper_rules:
  max_user_sessions: 10
access_rules:
  c2s:
    allow: all
modules:
  mod_stream_mgmt:
    resend_on_timeout: false
  mod_disco: {}
  mod_ping: {}
YML
# The package's ejabberdctl.cfg would name its own configuration instead.
printf 'EJABBERD_CONFIG_PATH=%s\nEJABBERD_PID_PATH=%s\n' "$dir/ejabberd.yml" "$dir/ejabberd.pid" \
  >"$dir/ejabberdctl.cfg"
chown -R ejabberd:ejabberd "$dir"
ctl start
ctl started
for i in $(seq 0 15); do
  ctl register "s$i" localhost bench >/dev/null
  ctl register "r$i" localhost bench >/dev/null
done
beam_cpu() { awk '{print $14 + $15}' "/proc/$(pgrep -f -- "$node" | head -1)/stat"; }
for round in $(seq "$rounds"); do
  # Keys bound to the WebSocket once, as XMPP authenticates a stream once
  # (relay.md §8, "Bound keys").
  echo "== round $round: relay, bound keys" >&2
  scripts/bench-relay.sh --writers 16 --readers 16 --in-flight 16 --size 256 \
    --bound --no-baseline --json | tee -a "$dir/relay.jsonl"
  # Every request signed (signed before the run, so the load generator's
  # signing does not compete with the relay for the cores).
  echo "== round $round: relay, every request signed" >&2
  scripts/bench-relay.sh --writers 16 --readers 16 --in-flight 16 --size 256 \
    --presign 2400 --no-baseline --json | tee -a "$dir/signed.jsonl"
  echo "== round $round: ejabberd" >&2
  before=$(beam_cpu)
  "$load" --port "$port" --pairs 16 --in-flight 16 --size 256 | tee -a "$dir/xmpp.jsonl"
  after=$(beam_cpu)
  echo "ejabberd CPU: $(( (after - before) * 1000 / $(getconf CLK_TCK) )) ms" >&2
done
python3 - "$dir/relay.jsonl" "$dir/signed.jsonl" "$dir/xmpp.jsonl" <<'PY'
import json, statistics, sys
def lines(path): return [json.loads(l) for l in open(path) if l.startswith("{")]
bound, signed, xmpp = (lines(p) for p in sys.argv[1:4])
def rate(r): return r["pushed"] / r["duration_secs"]
print("| round | relay, bound keys: msg/s (p99 ms) | relay, signed: msg/s (p99 ms) "
      "| ejabberd: msg/s (p99 ms) | bound / ejabberd | signed / ejabberd |")
print("|---|---|---|---|---|---|")
ratios, signed_ratios = [], []
for i, (b, s, x) in enumerate(zip(bound, signed, xmpp), 1):
    xr = x["delivered_per_sec"]
    ratios.append(rate(b) / xr)
    signed_ratios.append(rate(s) / xr)
    print(f"| {i} | {rate(b):,.0f} ({b['push_ms']['p99']:.1f}) | {rate(s):,.0f} ({s['push_ms']['p99']:.1f}) "
          f"| {xr:,.0f} ({x['latency_ms']['p99']:.1f}) | {ratios[-1]:.2f} | {signed_ratios[-1]:.2f} |")
print(f"median ratio, bound keys / ejabberd: {statistics.median(ratios):.2f}; "
      f"every request signed / ejabberd: {statistics.median(signed_ratios):.2f}")
PY
