#!/usr/bin/env python3
"""Checks test-vectors/relay-v1.json against docs/spec/relay.md alone,
independently of the Rust code that wrote it: every request's body is
encoded again from its input values (relay.md §2, §4.1, §4.2) and must equal
the vector's bytes, and every signature input must be the context string,
0x00 and the body. Run: python3 test-vectors/relay-v1-check.py"""
import json, pathlib, struct, sys

def u8(v): return struct.pack(">B", v)
def u16(v): return struct.pack(">H", v)
def u32(v): return struct.pack(">I", v)
def u64(v): return struct.pack(">Q", v)
def opaque(b): return u32(len(b)) + b
def h(s): return bytes.fromhex(s)
def grant(g): return h(g["key"]) + u8(g["rights"])

# relay.md §4.2: the operation tag, then its struct.
OPERATIONS = {
    "create_channel": (1, lambda o: u32(o["message_ttl_secs"]) + u32(o["channel_ttl_secs"])
                       + u32(len(o["grants"])) + b"".join(grant(g) for g in o["grants"])
                       + opaque(h(o["create_token"]))),
    "append": (2, lambda o: h(o["write_id"]) + opaque(h(o["payload"]))),
    "read": (3, lambda o: h(o["read_id"]) + u64(o["after_seq"]) + u16(o["max_messages"])
             + u32(o["wait_ms"])),
    "ack": (4, lambda o: h(o["read_id"]) + u64(o["seq"])),
    "add_key": (5, lambda o: h(o["write_id"]) + grant(o["grant"])),
    "revoke_key": (6, lambda o: h(o["write_id"]) + h(o["key"])),
    "delete_channel": (7, lambda o: h(o["write_id"])),
    "status": (8, lambda o: u8(o["channel"]["kind"]) + h(o["channel"]["id"])),
    "subscribe": (9, lambda o: h(o["read_id"]) + u64(o["after_seq"])),
    "blob_create": (10, lambda o: h(o["write_id"]) + u32(o["chunk_size"]) + u32(o["chunk_count"])
                    + u32(o["ttl_secs"]) + u8(1 if o["read_once"] else 0)
                    + opaque(h(o["claim_key"]))),
    "blob_put": (11, lambda o: h(o["write_id"]) + h(o["blob_id"]) + u32(o["index"])
                 + opaque(h(o["data"]))),
    "blob_delete": (12, lambda o: h(o["write_id"]) + h(o["blob_id"])),
    "append_after": (13, lambda o: h(o["write_id"]) + u64(o["after_seq"]) + opaque(h(o["payload"]))),
    "bind": (14, lambda o: b""),
    "append_expiring": (15, lambda o: h(o["write_id"])
                        + (u8(0) if o["after_seq"] is None else u8(1) + u64(o["after_seq"]))
                        + u32(o["ttl_secs"]) + opaque(h(o["payload"]))),
}
OPERATIONS["append_expiring_after"] = OPERATIONS["append_expiring"]

def body(i, name):
    tag, encode = OPERATIONS[name]
    return (u8(i["version"]) + h(i["relay_id"]) + u64(i["timestamp_ms"]) + h(i["nonce"])
            + h(i["signer"]) + u8(tag) + encode(i["op"]))

vectors = json.loads((pathlib.Path(__file__).parent / "relay-v1.json").read_text())
failures = 0
for v in vectors["requests"]:
    encoded = body(v["input"], v["name"])
    if encoded.hex() != v["body"]:
        print(f"{v['name']}: the body differs from its input values")
        failures += 1
    if b"kith relay request v1\x00" + encoded != h(v["signed_message"]):
        print(f"{v['name']}: the signature input is not context || 0x00 || body")
        failures += 1
    if v["request"] != v["body"] + v["signature"]:
        print(f"{v['name']}: the request is not the body then the signature")
        failures += 1
print(f"{len(vectors['requests'])} requests checked, {failures} failure(s)")
sys.exit(1 if failures else 0)
