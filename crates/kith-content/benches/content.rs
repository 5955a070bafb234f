//! Encode/decode cost of ContentV1 for a typical rich message (decoding
//! also encodes again to check determinism), and its message id.

#![allow(clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use kith_content::{Content, Disposition, Extensions, MessageId, Part, PartBody, Semantics};
use std::hint::black_box;

fn single(content_type: &str, text: &str) -> Part {
    Part {
        disposition: Disposition::RENDER,
        language: String::new(),
        body: PartBody::Single {
            content_type: content_type.into(),
            content: text.as_bytes().to_vec(),
        },
    }
}

/// A markdown reply with its plain-text alternative: a typical rich message.
fn reply() -> Content {
    let text = "Sounds good, see you at **noon** by the fountain.";
    Content {
        salt: [7; 16],
        replaces: None,
        topic_id: Vec::new(),
        expires: None,
        in_reply_to: Some(MessageId([1; 32])),
        extensions: Extensions::default(),
        part: Part {
            disposition: Disposition::RENDER,
            language: "en".into(),
            body: PartBody::Multi {
                semantics: Semantics::ChooseOne,
                parts: vec![
                    single("text/markdown;charset=utf-8", text),
                    single("text/plain;charset=utf-8", &text.replace("**", "")),
                ],
            },
        },
    }
}

fn content(c: &mut Criterion) {
    let message = reply();
    let bytes = message.to_cbor();
    c.bench_function("content_v1/encode_reply", |b| {
        b.iter(|| black_box(&message).to_cbor())
    });
    c.bench_function("content_v1/decode_reply", |b| {
        b.iter(|| Content::from_cbor(black_box(&bytes)).unwrap())
    });
    c.bench_function("content_v1/message_id", |b| {
        b.iter(|| black_box(&message).id(&[3; 32], b"0f1e2d3c4b5a69788796a5b4c3d2e1f0"))
    });
}

criterion_group!(benches, content);
criterion_main!(benches);
