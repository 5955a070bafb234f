#!/usr/bin/env python3
"""Measures `kith up` (docs/performance.md, "The daemon"): a fresh release
relay and two daemons, Alex (with the relay) and Blair (without one), in
one conversation.

1. Idle: Alex's daemon's RSS and CPU over 60 s doing nothing.
2. Latency: Blair sends through her API at a fixed rate (default 100/s);
   Alex's event stream (server-sent events) sees each message arrive;
   send->event latency is from Blair's request to the event at Alex, both
   timed by this one process. A baseline in the same run: the same number
   of `GET /healthz` round trips to the relay, one at a time.
3. A conversation of 10,000 messages: what opening it costs (the first
   page, `GET .../messages?limit=50`), against reading all of it.
4. The web UI's assets, gzip -9.

    scripts/measure-daemon.py [--kith BIN] [--relay BIN] [--rate 100] [--count 1000] [--long 10000]
"""

import argparse
import gzip
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


class Daemon:
    def __init__(self, kith, home):
        self.home = home
        self.proc = subprocess.Popen(
            [kith, "--home", home, "--json", "up", "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        first = json.loads(self.proc.stdout.readline())
        self.url = first["url"]
        self.port = int(self.url.rsplit(":", 1)[1])
        with open(os.path.join(home, "daemon.token"), encoding="utf-8") as f:
            self.token = f.read().strip()

    def headers(self, extra=None):
        h = {"Authorization": "Bearer " + self.token, "Host": f"127.0.0.1:{self.port}"}
        h.update(extra or {})
        return h

    def call(self, method, path, body=None, conn=None):
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        data = None if body is None else json.dumps(body)
        headers = self.headers({"Content-Type": "application/json"} if data else None)
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        raw = r.read()
        if own:
            conn.close()
        if r.status != 200:
            raise RuntimeError(f"{method} {path}: {r.status} {raw[:200]!r}")
        return json.loads(raw)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
    return cpu, rss


def sse_reader(daemon, wanted, arrivals, ready):
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=300)
    conn.request("GET", "/api/v1/events?from=now", headers=daemon.headers({"Accept": "text/event-stream"}))
    r = conn.getresponse()
    ready.set()
    event = None
    while len(arrivals) < wanted:
        line = r.fp.readline()
        if not line:
            break
        line = line.decode().rstrip("\r\n")
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:") and event == "message":
            now = time.perf_counter()
            e = json.loads(line[5:])
            m = e.get("message") or {}
            text = m.get("text", "")
            if text.startswith("m ") and not m.get("outgoing"):
                arrivals[int(text.split()[1])] = now


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kith", default=os.path.join(ROOT, "target/release/kith"))
    ap.add_argument("--relay", default=os.path.join(ROOT, "target/release/kith-relay"))
    ap.add_argument("--rate", type=float, default=100)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--long", type=int, default=10000)
    ap.add_argument("--idle", type=int, default=60)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="kith-daemon-")
    relay = subprocess.Popen([args.relay, "serve", "--listen", "127.0.0.1:0", "--db", f"{work}/relay.db"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env={**os.environ, "KITH_RELAY_RATE_LIMIT__ENABLED": "false"})
    relay_url = relay.stdout.readline().split()[-1]
    k = lambda who, *a: subprocess.run([args.kith, "--home", f"{work}/{who}", *a], check=True,
                                       capture_output=True, text=True).stdout
    daemons = []
    try:
        k("alex", "init", "--name", "Alex", "--relay", relay_url)
        k("blair", "init", "--name", "Blair")
        link = json.loads(k("alex", "--json", "invite"))["link"]
        k("blair", "accept", link)
        k("alex", "sync")
        alex = Daemon(args.kith, f"{work}/alex")
        blair = Daemon(args.kith, f"{work}/blair")
        daemons = [alex, blair]
        conv = alex.call("GET", "/api/v1/conversations")[0]["id"]
        to_alex = blair.call("GET", "/api/v1/conversations")[0]["id"]
        results = {}

        # 1. Idle.
        time.sleep(5)
        cpu0, rss0 = proc_stat(alex.proc.pid)
        time.sleep(args.idle)
        cpu1, rss1 = proc_stat(alex.proc.pid)
        results["idle"] = {"seconds": args.idle, "cpu_seconds": round(cpu1 - cpu0, 3),
                           "cpu_percent": round(100 * (cpu1 - cpu0) / args.idle, 3),
                           "rss_mib": round(rss1, 1)}
        print(json.dumps({"idle": results["idle"]}), flush=True)

        # 2. Latency at a fixed rate, with a baseline round trip in the same run.
        host, port = urllib.parse.urlparse(relay_url).netloc.split(":")
        base = http.client.HTTPConnection(host, int(port), timeout=30)
        rtts = []
        for _ in range(args.count):
            t = time.perf_counter()
            base.request("GET", "/healthz")
            base.getresponse().read()
            rtts.append((time.perf_counter() - t) * 1000)
        arrivals, sent, done = {}, {}, threading.Event()
        reader = threading.Thread(target=sse_reader, args=(alex, args.count, arrivals, done), daemon=True)
        reader.start()
        done.wait(10)
        time.sleep(0.5)
        conn = http.client.HTTPConnection("127.0.0.1", blair.port, timeout=120)
        start = time.perf_counter()
        answer_ms = []
        for i in range(args.count):
            due = start + i / args.rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            sent[i] = time.perf_counter()
            blair.call("POST", f"/api/v1/conversations/{to_alex}/messages", {"text": f"m {i}"}, conn=conn)
            answer_ms.append((time.perf_counter() - sent[i]) * 1000)
        elapsed = time.perf_counter() - start
        reader.join(timeout=60)
        lat = [(arrivals[i] - sent[i]) * 1000 for i in sent if i in arrivals]
        results["latency"] = {
            "rate_asked": args.rate, "rate_sent": round(args.count / elapsed, 1), "messages": args.count,
            "arrived": len(lat),
            "send_to_event_ms": {"p50": round(percentile(lat, 50), 2), "p99": round(percentile(lat, 99), 2),
                                 "max": round(max(lat), 2) if lat else None},
            "api_answer_ms": {"p50": round(percentile(answer_ms, 50), 2), "p99": round(percentile(answer_ms, 99), 2)},
            "baseline_healthz_rtt_ms": {"p50": round(percentile(rtts, 50), 3), "p99": round(percentile(rtts, 99), 3)},
        }
        print(json.dumps({"latency": results["latency"]}), flush=True)

        # 3. A long conversation: fill it to --long messages, then open it.
        have = args.count
        conn = http.client.HTTPConnection("127.0.0.1", blair.port, timeout=120)
        t = time.perf_counter()
        while have < args.long:
            blair.call("POST", f"/api/v1/conversations/{to_alex}/messages", {"text": f"filler {have}"}, conn=conn)
            have += 1
        fill = time.perf_counter() - t
        deadline = time.time() + 300
        while time.time() < deadline:
            page = alex.call("GET", f"/api/v1/conversations/{conv}/messages?limit=1")
            if page and page[-1]["text"] == f"filler {args.long - 1}":
                break
            time.sleep(0.5)
        def timed(path, n=5):
            times = []
            for _ in range(n):
                t = time.perf_counter()
                body = alex.call("GET", path)
                times.append((time.perf_counter() - t) * 1000)
            return statistics.median(times), body
        first_ms, first = timed(f"/api/v1/conversations/{conv}/messages?limit=50")
        older_ms, _ = timed(f"/api/v1/conversations/{conv}/messages?limit=50&before={first[0]['id']}")
        cpu_a, rss_a = proc_stat(alex.proc.pid)
        all_ms, everything = timed(f"/api/v1/conversations/{conv}/messages?limit=1000", n=3)
        results["long"] = {"messages": have, "fill_seconds": round(fill, 1),
                           "first_page_ms": round(first_ms, 2), "older_page_ms": round(older_ms, 2),
                           "page_of_1000_ms": round(all_ms, 2), "page": len(first),
                           "rss_mib_after": round(rss_a, 1)}
        print(json.dumps({"long": results["long"]}), flush=True)

        # 4. The web UI's assets.
        web = os.path.join(ROOT, "crates/kith-daemon/web")
        raw = gz = 0
        for name in sorted(os.listdir(web)):
            with open(os.path.join(web, name), "rb") as f:
                data = f.read()
            raw += len(data)
            gz += len(gzip.compress(data, 9))
        results["assets"] = {"bytes": raw, "gzip_bytes": gz}
        print(json.dumps({"assets": results["assets"]}), flush=True)
    finally:
        for d in daemons:
            try:
                d.stop()
            except Exception:  # noqa: BLE001 - stop the others all the same
                d.proc.kill()
        relay.send_signal(signal.SIGTERM)
        relay.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
