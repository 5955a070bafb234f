//! Known-answer vectors (`test-vectors/content-v1.json`, written by
//! `test-vectors/content-v1.py` with Python's cbor2 from the spec alone):
//! each message built from its input values encodes to exactly the
//! vector's CBOR and has its message id; each reject is refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use kith_content::kind::Kind;
use kith_content::{
    Content, Disposition, Expiration, ExtensionName, ExtensionValue, Extensions, ExternalPart,
    MessageId, Part, PartBody, Semantics,
};
use serde_json::Value;

fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn id(v: &Value) -> Option<MessageId> {
    (!v.is_null()).then(|| MessageId(hex(v).try_into().unwrap()))
}

fn text(v: &Value) -> String {
    v.as_str().unwrap().to_owned()
}

fn uint(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

fn part(p: &Value) -> Part {
    let body = match p["kind"].as_str().unwrap() {
        "null" => PartBody::Null,
        "single" => PartBody::Single {
            content_type: text(&p["content_type"]),
            content: hex(&p["content"]),
        },
        "external" => PartBody::External(Box::new(ExternalPart {
            content_type: text(&p["content_type"]),
            url: text(&p["url"]),
            expires: uint(&p["expires"]) as u32,
            size: uint(&p["size"]),
            enc_alg: uint(&p["enc_alg"]) as u16,
            key: hex(&p["key"]),
            nonce: hex(&p["nonce"]),
            aad: hex(&p["aad"]),
            hash_alg: uint(&p["hash_alg"]) as u8,
            content_hash: hex(&p["content_hash"]),
            description: text(&p["description"]),
            filename: text(&p["filename"]),
        })),
        "multi" => PartBody::Multi {
            semantics: match p["semantics"].as_str().unwrap() {
                "choose_one" => Semantics::ChooseOne,
                "single_unit" => Semantics::SingleUnit,
                _ => Semantics::ProcessAll,
            },
            parts: p["parts"].as_array().unwrap().iter().map(part).collect(),
        },
        other => panic!("kind {other}"),
    };
    Part {
        disposition: Disposition(uint(&p["disposition"]) as u8),
        language: text(&p["language"]),
        body,
    }
}

fn content(m: &Value) -> Content {
    let mut extensions = Extensions::default();
    for e in m["extensions"].as_array().unwrap() {
        let name = match &e["name"] {
            Value::String(s) => ExtensionName::Text(s.clone()),
            n => ExtensionName::Int(n.as_i64().unwrap()),
        };
        let v = &e["value"]["value"];
        let value = match e["value"]["type"].as_str().unwrap() {
            "uint" => ExtensionValue::Uint(uint(v)),
            "bytes" => ExtensionValue::Bytes(hex(v)),
            "text" => ExtensionValue::Text(text(v)),
            _ => ExtensionValue::Bool(v.as_bool().unwrap()),
        };
        extensions.insert(name, value);
    }
    Content {
        salt: hex(&m["salt"]).try_into().unwrap(),
        replaces: id(&m["replaces"]),
        topic_id: hex(&m["topic_id"]),
        expires: (!m["expires"].is_null()).then(|| Expiration {
            relative: m["expires"]["relative"].as_bool().unwrap(),
            time: uint(&m["expires"]["time"]) as u32,
        }),
        in_reply_to: id(&m["in_reply_to"]),
        extensions,
        part: part(&m["part"]),
    }
}

#[test]
fn messages_encode_as_the_independent_script_says() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors/content-v1.json");
    let vectors: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let sender = hex(&vectors["sender"]);
    let conversation = hex(&vectors["conversation"]);
    let messages = vectors["messages"].as_array().unwrap();
    assert!(messages.len() >= 9);
    for v in messages {
        let name = v["name"].as_str().unwrap();
        let built = content(&v["input"]);
        let cbor = hex(&v["cbor"]);
        assert_eq!(hex::encode(built.to_cbor()), hex::encode(&cbor), "{name}");
        assert_eq!(Content::from_cbor(&cbor).unwrap(), built, "{name}");
        assert_eq!(
            built.id(&sender, &conversation).0.to_vec(),
            hex(&v["message_id"]),
            "{name}"
        );
    }
    // The kinds of §7.8-§7.11 read as the script says.
    for v in messages.iter().filter(|v| v.get("reads_as").is_some()) {
        let name = v["name"].as_str().unwrap();
        let want = &v["reads_as"];
        let kind = Kind::of(&content(&v["input"]));
        match (want["kind"].as_str().unwrap(), kind) {
            ("receipt", Kind::Receipt { status, messages }) => {
                assert_eq!(status as u64, uint(&want["status"]), "{name}");
                let ids: Vec<String> = messages.iter().map(|m| hex::encode(m.0)).collect();
                assert_eq!(serde_json::json!(ids), want["messages"], "{name}");
            }
            ("timer", Kind::Timer { seconds }) => {
                assert_eq!(u64::from(seconds), uint(&want["seconds"]), "{name}");
            }
            ("payment_request", Kind::PaymentRequest(uri)) => {
                let amount = uri.amount.unwrap();
                assert_eq!(amount.currency, text(&want["currency"]), "{name}");
                assert_eq!(amount.value, text(&want["value"]), "{name}");
                assert_eq!(uri.message.unwrap(), text(&want["message"]), "{name}");
            }
            (
                "payment_status",
                Kind::PaymentStatus {
                    state, reference, ..
                },
            ) => {
                assert_eq!(state.as_str(), text(&want["state"]), "{name}");
                assert_eq!(reference, text(&want["reference"]), "{name}");
            }
            ("call", Kind::Call(signal)) => {
                assert_eq!(signal.step as u64, uint(&want["step"]), "{name}");
                assert_eq!(signal.video, want["video"].as_bool().unwrap(), "{name}");
                assert_eq!(signal.payload, text(&want["payload"]), "{name}");
            }
            (want, got) => panic!("{name}: read as {got:?}, not {want}"),
        }
    }
    // A text frame's id is that of the ContentV1 text it stands for
    // (content-v1.md §5): the plain_text vector is one.
    let plain = messages.iter().find(|v| v["name"] == "plain_text").unwrap();
    let text = Content::of_text([1; 16], "Hello, Blair");
    assert_eq!(text.to_cbor(), hex(&plain["cbor"]));
    assert_eq!(
        text.id(&sender, &conversation).0.to_vec(),
        hex(&plain["message_id"])
    );
    let rejects = vectors["reject"].as_array().unwrap();
    assert!(rejects.len() >= 9);
    for r in rejects {
        assert!(
            Content::from_cbor(&hex(&r["cbor"])).is_err(),
            "{} decoded: {}",
            r["name"],
            r["why"]
        );
    }
}
