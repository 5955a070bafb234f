#!/usr/bin/env python3
"""An echo bot for kith, with nothing but Python's standard library.

It reads the event log of a running `kith up` (docs/api.md), answers every
text message it receives with "echo: TEXT" as a reply, and keeps its cursor
in a file, so that after a restart it answers what arrived while it was
away -- each message once.

    python3 examples/echo_bot.py --home PROFILE_DIR [--cursor FILE]

The daemon's address is in PROFILE_DIR/daemon.json, its token in
PROFILE_DIR/daemon.token (0600; the bot must run as the profile's user).
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def load(path, default):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def save(path, value):
    """Writes the state whole or not at all (temporary file, then rename)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Daemon:
    def __init__(self, home):
        with open(os.path.join(home, "daemon.json"), encoding="utf-8") as f:
            self.url = json.load(f)["url"]
        with open(os.path.join(home, "daemon.token"), encoding="utf-8") as f:
            self.token = f.read().strip()

    def call(self, method, path, body=None, timeout=90):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.load(answer)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="the profile's directory")
    parser.add_argument("--cursor", help="where the bot keeps its place (default: HOME/echo-bot.json)")
    args = parser.parse_args()
    state_path = args.cursor or os.path.join(args.home, "echo-bot.json")
    daemon = Daemon(args.home)
    state = load(state_path, None)
    if state is None:
        # First start: answer what arrives from now on, not the history.
        page = daemon.call("GET", "/api/v1/events?from=now&limit=1")
        state = {"cursor": page["cursor"]}
        save(state_path, state)
    print(f"echo bot: reading events after {state['cursor']}", file=sys.stderr, flush=True)
    while True:
        try:
            query = urllib.parse.urlencode({"after": state["cursor"], "wait": 30})
            page = daemon.call("GET", "/api/v1/events?" + query)
        except (urllib.error.URLError, OSError) as e:
            print(f"echo bot: {e}; trying again", file=sys.stderr, flush=True)
            time.sleep(2)
            continue
        for event in page["events"]:
            message = event.get("message")
            if event["kind"] == "message" and message and not message["outgoing"] and message["text"]:
                conv = urllib.parse.quote(message["conversation"], safe="")
                daemon.call(
                    "POST",
                    f"/api/v1/conversations/{conv}/messages",
                    {"text": "echo: " + message["text"], "reply_to": message["id"]},
                )
            # Each event is done once its answer is sent: the cursor moves past it.
            state["cursor"] = event["seq"]
            save(state_path, state)
        if not page["events"]:
            state["cursor"] = page["cursor"]


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
