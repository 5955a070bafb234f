#!/usr/bin/env python3
"""Writes test-vectors/content-v1.json from docs/spec/content-v1.md alone,
with the cbor2 library, independently of the Rust code that must match it:
each message's input values, its deterministic CBOR and its message id,
and encodings a decoder must refuse. The Rust test
(crates/kith-content/tests/vectors.rs) builds each message from its inputs
and checks both. Run: pip install cbor2 && python3 test-vectors/content-v1.py"""
import hashlib, json, pathlib, struct
import cbor2

SENDER = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
CONVERSATION = b"0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def sorted_map(pairs):
    """content-v1.md §3: map keys in the bytewise order of their encodings."""
    return dict(sorted(pairs, key=lambda kv: cbor2.dumps(kv[0])))


def part(p):
    head = [p["disposition"], p["language"]]
    kind = p["kind"]
    if kind == "null":
        return head + [0]
    if kind == "single":
        return head + [1, p["content_type"], bytes.fromhex(p["content"])]
    if kind == "external":
        x = p
        return head + [2, x["content_type"], x["url"], x["expires"], x["size"], x["enc_alg"],
                       bytes.fromhex(x["key"]), bytes.fromhex(x["nonce"]), bytes.fromhex(x["aad"]),
                       x["hash_alg"], bytes.fromhex(x["content_hash"]), x["description"],
                       x["filename"]]
    semantics = {"choose_one": 0, "single_unit": 1, "process_all": 2}[p["semantics"]]
    return head + [3, semantics, [part(q) for q in p["parts"]]]


def ext_value(v):
    t, x = v["type"], v["value"]
    return {"uint": lambda: x, "bytes": lambda: bytes.fromhex(x), "text": lambda: x,
            "bool": lambda: x}[t]()


def content(m):
    opt_id = lambda v: None if v is None else bytes.fromhex(v)
    expires = None if m["expires"] is None else [m["expires"]["relative"], m["expires"]["time"]]
    exts = sorted_map((e["name"], ext_value(e["value"])) for e in m["extensions"])
    return [bytes.fromhex(m["salt"]), opt_id(m["replaces"]), bytes.fromhex(m["topic_id"]),
            expires, opt_id(m["in_reply_to"]), exts, part(m["part"])]


def message_id(encoded, salt):
    """content-v1.md §4."""
    h = hashlib.sha256(b"kith content message id v1\x00")
    for piece in (SENDER, CONVERSATION, encoded):
        h.update(struct.pack(">I", len(piece)) + piece)
    h.update(salt)
    return (b"\x01" + h.digest()[:31]).hex()


def single(content_type, text, disposition=1):
    return {"disposition": disposition, "language": "", "kind": "single",
            "content_type": content_type, "content": text.encode().hex()}


def message(salt_byte, part_, **kw):
    m = {"salt": bytes([salt_byte] * 16).hex(), "replaces": None, "topic_id": "",
         "expires": None, "in_reply_to": None, "extensions": [], "part": part_}
    m.update(kw)
    return m


EARLIER = "01" + "ab" * 31
MESSAGES = {
    "plain_text": message(1, single("text/plain;charset=utf-8", "Hello, Blair")),
    "markdown_with_plain": message(2, {
        "disposition": 1, "language": "en", "kind": "multi", "semantics": "choose_one",
        "parts": [single("text/markdown;charset=utf-8", "**Hello**, Blair"),
                  single("text/plain;charset=utf-8", "Hello, Blair")]}),
    "reply": message(3, single("text/plain;charset=utf-8", "Yes!"), in_reply_to=EARLIER),
    "reaction": message(4, single("text/plain;charset=utf-8", "\U0001F44D", disposition=2),
                        in_reply_to=EARLIER),
    "edit": message(5, single("text/plain;charset=utf-8", "Hello, Blair (edited)"),
                    replaces=EARLIER),
    "delete": message(6, {"disposition": 1, "language": "", "kind": "null"}, replaces=EARLIER),
    "disappearing": message(7, single("text/plain;charset=utf-8", "gone in a minute"),
                            expires={"relative": True, "time": 60}),
    "attachment": message(8, {
        "disposition": 6, "language": "", "kind": "external", "content_type": "image/jpeg",
        "url": "https://relay.example/v1/blob/9f", "expires": 1790000000, "size": 2100000,
        "enc_alg": 16, "key": "11" * 16, "nonce": "22" * 12, "aad": "", "hash_alg": 1,
        "content_hash": "33" * 32, "description": "the beach", "filename": "beach.jpg"}),
    "extensions_and_topic": message(9, single("text/plain;charset=utf-8", "mail body"),
        topic_id="746f706963",
        extensions=[{"name": "subject", "value": {"type": "text", "value": "Lunch"}},
                    {"name": 3, "value": {"type": "uint", "value": 100000}},
                    {"name": -1, "value": {"type": "bool", "value": True}},
                    {"name": "x", "value": {"type": "bytes", "value": "00ff"}}]),
}

# The kinds of §7.8-§7.11: their parts' bytes built from the spec's layouts,
# and what a receiver reads them as ("kind").
def raw(content_type, data, disposition):
    return {"disposition": disposition, "language": "", "kind": "single",
            "content_type": content_type, "content": data.hex()}

LATER = "01" + "cd" * 31
PAYTO = "payto://iban/DE75512108001245126199?amount=EUR:12.50&message=lunch%20%26%20tea"
KINDS = {
    "receipt_read": (message(10, raw("application/vnd.kith.receipt",
                                     b"\x02" + bytes.fromhex(EARLIER) + bytes.fromhex(LATER), 7)),
                     {"kind": "receipt", "status": 2, "messages": [EARLIER, LATER]}),
    "timer_with_plain": (message(11, {
        "disposition": 7, "language": "", "kind": "multi", "semantics": "choose_one",
        "parts": [raw("application/vnd.kith.timer", struct.pack(">I", 3600), 7),
                  single("text/plain;charset=utf-8", "set messages to disappear after 1 hour")]}),
        {"kind": "timer", "seconds": 3600}),
    "payment_request": (message(12, raw("application/vnd.kith.payto", PAYTO.encode(), 1)),
                        {"kind": "payment_request", "currency": "EUR", "value": "12.50",
                         "message": "lunch & tea"}),
    "payment_paid": (message(13, raw("application/vnd.kith.payment-status", b"paid\nTX 4411", 1),
                             in_reply_to=EARLIER),
                     {"kind": "payment_status", "state": "paid", "reference": "TX 4411"}),
    "call_offer": (message(14, raw("application/vnd.kith.call",
                                   bytes(range(16)) + b"\x01\x01" + b"v=0", 7)),
                   {"kind": "call", "step": 1, "video": True, "payload": "v=0"}),
}
for name, (m, _) in KINDS.items():
    MESSAGES[name] = m

vectors = []
for name, m in MESSAGES.items():
    encoded = cbor2.dumps(content(m))
    v = {"name": name, "input": m, "cbor": encoded.hex(),
         "message_id": message_id(encoded, bytes.fromhex(m["salt"]))}
    if name in KINDS:
        v["reads_as"] = KINDS[name][1]
    vectors.append(v)

plain = bytes.fromhex(vectors[0]["cbor"])
REJECT = [
    ("integer_not_shortest",
     cbor2.dumps(content(MESSAGES["attachment"])).replace(bytes.fromhex("1a00200b20"),
                                                          bytes.fromhex("1b0000000000200b20")),
     "the size 2,100,000 as an 8-byte integer"),
    ("indefinite_array", b"\x9f" + plain[1:] + b"\xff", "the message as an indefinite-length array"),
    ("unsorted_extensions", cbor2.dumps([bytes(16), None, b"", None, None, {"b": 1, "a": 2},
                                         [1, "", 0]]), "extension keys out of order"),
    ("short_salt", cbor2.dumps([bytes(15), None, b"", None, None, {}, [1, "", 0]]),
     "a salt of 15 bytes"),
    ("unknown_cardinality", cbor2.dumps([bytes(16), None, b"", None, None, {}, [1, "", 4]]),
     "cardinality 4"),
    ("sender_uri", cbor2.dumps([bytes(16), None, b"", None, None, {1: "mimi://a"}, [1, "", 0]]),
     "MIMI's senderUri extension"),
    ("too_deep", cbor2.dumps([bytes(16), None, b"", None, None, {},
                              [1, "", 3, 0, [[1, "", 3, 0, [[1, "", 3, 0, [[1, "", 3, 0, [
                                  [1, "", 0], [1, "", 0]]], [1, "", 0]]], [1, "", 0]]],
                                  [1, "", 0]]]]), "multiparts nested five deep"),
    ("one_part_multi", cbor2.dumps([bytes(16), None, b"", None, None, {},
                                    [1, "", 3, 0, [[1, "", 0]]]]), "a multipart of one part"),
    ("trailing_bytes", plain + b"\x00", "a byte after the message"),
]
rejects = [{"name": n, "cbor": b.hex(), "why": why} for n, b, why in REJECT]

out = {
    "description": "kith ContentV1 known-answer vectors (docs/spec/content-v1.md), written by "
                   "test-vectors/content-v1.py with cbor2. Message ids are for 'sender' (an "
                   "identity key) in 'conversation'. Values are hex.",
    "sender": SENDER.hex(),
    "conversation": CONVERSATION.hex(),
    "messages": vectors,
    "reject": rejects,
}
path = pathlib.Path(__file__).parent / "content-v1.json"
path.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
print(f"{len(vectors)} messages, {len(rejects)} rejects written to {path.name}")
