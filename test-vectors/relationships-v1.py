#!/usr/bin/env python3
"""Generates test-vectors/relationships-v1.json from the specs alone
(pair-v1.md §4, §4.1, §8, §10, §12; content-v1.md §8.1; introduction-v1.md §2, §5;
address-v1.md §2, §3; directory-v1.md §1, §2, §4, §6), independently of the
Rust code that the vectors check. Run: python3 test-vectors/relationships-v1.py"""
import hashlib, hmac, json, struct, pathlib

def opaque(b): return struct.pack(">I", len(b)) + b
def string(s): return opaque(s.encode())
def vec32(items): return struct.pack(">I", len(items)) + b"".join(items)
def b(n, seed): return bytes((seed + i) % 256 for i in range(n))

def channel_move(url, relay_id, write_id, read_id, key, retire):
    out = string(url) + relay_id + write_id + read_id
    out += (b"\x01" + key) if key is not None else b"\x00"
    return out + vec32(retire)

def pair_frame(tag, body): return bytes([1, tag]) + body

def intro(intro_id, step, body): return intro_id + bytes([step]) + body

intro_id = b(16, 0x40)
frames = [
    {"name": "channel_move with key",
     "hex": pair_frame(6, channel_move("https://relay.example", b(32, 1), b(32, 2), b(32, 3), b(32, 4), [b(32, 5)])).hex()},
    {"name": "channel_move without key (group)",
     "hex": pair_frame(6, channel_move("http://127.0.0.1:7070", b(32, 9), b(32, 10), b(32, 11), None, [])).hex()},
    {"name": "introduction offer",
     "hex": pair_frame(7, intro(intro_id, 1, string("Charlie") + string("you both climb") + b"\x01" + struct.pack(">Q", 1_795_000_000_000))).hex()},
    {"name": "introduction answer (accept)",
     "hex": pair_frame(7, intro(intro_id, 2, opaque(b(40, 7)) + vec32([b(32, 100), b(32, 200)]))).hex()},
    {"name": "introduction answer (decline)",
     "hex": pair_frame(7, intro(intro_id, 2, opaque(b"") + vec32([]))).hex()},
    {"name": "introduction matched",
     "hex": pair_frame(7, intro(intro_id, 3, opaque(b(40, 8)) + vec32([b(32, 50)]))).hex()},
    {"name": "introduction welcome",
     "hex": pair_frame(7, intro(intro_id, 4, opaque(b(64, 20)) + opaque(b(48, 30)))).hex()},
    {"name": "introduction closed",
     "hex": pair_frame(7, intro(intro_id, 5, b"")).hex()},
    {"name": "content (critical, unknown type)",
     "hex": pair_frame(8, b(16, 0x70) + struct.pack(">QH", 1_795_000_000_000, 0x0101) + b"\x01"
                       + string("a payment request: 12 EUR") + opaque(b(20, 0x33))).hex()},
    {"name": "link (pair-v1.md §12)",
     "hex": pair_frame(11, b(32, 0x21) + b(32, 0x42) + struct.pack(">Q", 1_795_000_000_000)
                       + b(64, 0x63) + b(64, 0x84)).hex()},
    {"name": "capabilities (content-v1.md §8.1)",
     "hex": pair_frame(10, struct.pack(">I", 2) + string("text/markdown") + string("text/plain")
                       + struct.pack(">I", 2) + string("reactions") + string("receipts")).hex()},
]

secret = b(32, 0xA0)
tag = hmac.new(secret, b"kith introduction tag v1" + intro_id, hashlib.sha256).digest()

def safety(k1, k2):
    d = hashlib.sha256(b"kith safety number v1\x00" + b"".join(sorted([k1, k2]))).digest()[:15]
    return " ".join("%07d" % (int.from_bytes(d[i:i + 3], "big") % 10_000_000) for i in range(0, 15, 3))

def channel_grant(url, relay_id, write_id, read_id, key):
    return string(url) + relay_id + write_id + read_id + key

def contact_request(grant, key_package, name, note, expires):
    return b"\x01" + grant + opaque(key_package) + string(name) + string(note) + struct.pack(">Q", expires)

request = contact_request(channel_grant("https://relay.example", b(32, 1), b(32, 2), b(32, 3), b(32, 4)),
                          b(120, 9), "Blair", "about the bike", 1_797_000_000_000)
envelope = bytes([1, 6]) + opaque(b(80, 0x55))

def link_statement(a, bb, at): return b"kith link v1\x00" + a + bb + struct.pack(">Q", at)

def hkdf(secret, info):
    prk = hmac.new(b"", secret, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()

def b64(x):
    import base64
    return base64.urlsafe_b64encode(x).rstrip(b"=").decode()

address_secret, address_box, address_write = b(32, 0x90), b(32, 0xB0), b(32, 0xD0)
guest_seed = hkdf(address_secret, b"kith seal v1\x00kith address key v1")

# Directories (directory-v1.md).
def u64(n): return struct.pack(">Q", n)
def directory_key(key, frm, until, sig): return key + u64(frm) + u64(until) + sig
def key_message(name, key, frm, until):
    return b"kith directory key v1\x00" + string(name) + key + u64(frm) + u64(until)
def attestation(directory, root, signing, member, statement, frm, until, sig):
    return string(directory) + root + signing + member + string(statement) + u64(frm) + u64(until) + sig
def attestation_message(directory, root, member, statement, frm, until):
    return (b"kith attestation v1\x00" + string(directory) + root + member + string(statement)
            + u64(frm) + u64(until))
def entry(name, text, address): return string(name) + string(text) + string(address)

signing = directory_key(b(32, 0x31), 1_790_000_000_000, 1_821_536_000_000, b(64, 0x32))
att = attestation("school", b(32, 0x30), signing, b(32, 0x33), "current student",
                  1_795_000_000_000, 1_814_400_000_000, b(64, 0x34))
frames.append({"name": "attestation (directory-v1.md §4)", "hex": pair_frame(12, att).hex()})

def directory_op(directory, op, body=b""): return bytes([16]) + string(directory) + bytes([op]) + body
directory_requests = [
    {"name": "enrol", "hex": directory_op("school", 1, b(32, 0x50)).hex()},
    {"name": "publish", "hex": directory_op("school", 2, entry("Emery Stone", "Year 12, chess club",
                                                                "https://relay.example/a/xyz#abc")).hex()},
    {"name": "unpublish", "hex": directory_op("school", 3).hex()},
    {"name": "search", "hex": directory_op("school", 4, string("eme chess")).hex()},
    {"name": "leave", "hex": directory_op("school", 5).hex()},
]
info_unsigned = (bytes([1]) + string("school") + b"\x01" + b(32, 0x30) + struct.pack(">I", 1) + signing
                 + vec32([b(32, 0x60), b(32, 0x61)]) + u64(1_796_000_000_000))
search_results = struct.pack(">I", 2) + entry("Emery Stone", "Year 12", "https://r.example/a/1#k") \
    + entry("Alex K.", "", "https://r.example/a/2#k")
enrolment_secret = b(32, 0x70)

k1, k2 = b(32, 0x11), b(32, 0xEE)
out = {
    "frames": frames,
    "recognition_tags": [{"secret": secret.hex(), "intro_id": intro_id.hex(), "tag": tag.hex()}],
    "safety_numbers": [{"a": k1.hex(), "b": k2.hex(), "safety_number": safety(k1, k2)}],
    "contact_requests": [{"name": "contact request (address-v1.md §3)", "hex": request.hex()}],
    "envelopes": [{"name": "contact request envelope (kind 6)", "hex": envelope.hex()}],
    "link_statements": [{"key_a": b(32, 0x21).hex(), "key_b": b(32, 0x42).hex(),
                         "made_at_ms": 1_795_000_000_000,
                         "statement": link_statement(b(32, 0x21), b(32, 0x42), 1_795_000_000_000).hex()}],
    "address_links": [{"link": "kith:https://relay.example/a/" + b64(address_write) + "#" + b64(address_secret + address_box),
                       "relay_url": "https://relay.example", "write_id": address_write.hex(),
                       "secret": address_secret.hex(), "box_public": address_box.hex(),
                       "guest_seed": guest_seed.hex()}],
    "directory": {
        "key_message": {"name": "school", "key": b(32, 0x31).hex(), "valid_from_ms": 1_790_000_000_000,
                        "valid_until_ms": 1_821_536_000_000,
                        "message": key_message("school", b(32, 0x31), 1_790_000_000_000, 1_821_536_000_000).hex()},
        "attestation": {"hex": att.hex(),
                        "signed": attestation_message("school", b(32, 0x30), b(32, 0x33), "current student",
                                                      1_795_000_000_000, 1_814_400_000_000).hex()},
        "requests": directory_requests,
        "info": {"hex": (info_unsigned + b(64, 0x62)).hex(),
                 "signed": (b"kith directory info v1\x00" + info_unsigned).hex()},
        "search_results": {"hex": search_results.hex()},
        "enrolment": {"secret": enrolment_secret.hex(),
                      "hash": hashlib.sha256(b"kith directory enrolment v1\x00" + enrolment_secret).hexdigest()},
    },
}
path = pathlib.Path(__file__).with_suffix(".json")
path.write_text(json.dumps(out, indent=2) + "\n")
