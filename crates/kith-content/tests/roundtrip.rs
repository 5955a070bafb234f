//! Every message encodes to bytes that decode to it again, and to nothing
//! else; bytes that are not one decode to an error, never a panic.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use kith_content::{
    Content, Disposition, Expiration, ExtensionName, ExtensionValue, Extensions, ExternalPart,
    MessageId, Part, PartBody, Semantics,
};
use proptest::collection::vec;
use proptest::prelude::*;

fn leaf() -> impl Strategy<Value = PartBody> {
    prop_oneof![
        Just(PartBody::Null),
        ("[a-z]{1,10}/[a-z.+-]{1,20}", vec(any::<u8>(), 0..64)).prop_map(
            |(content_type, content)| PartBody::Single {
                content_type,
                content
            }
        ),
        (
            "[a-z]{1,10}/[a-z]{1,10}",
            ".{0,40}",
            any::<u32>(),
            any::<u64>(),
            any::<u16>(),
            vec(any::<u8>(), 0..33),
            vec(any::<u8>(), 0..13),
            any::<u8>(),
            vec(any::<u8>(), 0..33),
            ".{0,20}",
        )
            .prop_map(
                |(content_type, url, expires, size, enc_alg, key, nonce, hash_alg, hash, name)| {
                    PartBody::External(Box::new(ExternalPart {
                        content_type,
                        url,
                        expires,
                        size,
                        enc_alg,
                        key,
                        nonce,
                        aad: Vec::new(),
                        hash_alg,
                        content_hash: hash,
                        description: String::new(),
                        filename: name,
                    }))
                }
            ),
    ]
}

fn part() -> impl Strategy<Value = Part> {
    let body = leaf().prop_recursive(3, 24, 4, |inner| {
        (
            prop_oneof![
                Just(Semantics::ChooseOne),
                Just(Semantics::SingleUnit),
                Just(Semantics::ProcessAll)
            ],
            vec(
                (any::<u8>(), inner).prop_map(|(d, body)| Part {
                    disposition: Disposition(d),
                    language: String::new(),
                    body,
                }),
                2..5,
            ),
        )
            .prop_map(|(semantics, parts)| PartBody::Multi { semantics, parts })
    });
    (any::<u8>(), "[a-z]{0,3}", body).prop_map(|(d, language, body)| Part {
        disposition: Disposition(d),
        language,
        body,
    })
}

fn extensions() -> impl Strategy<Value = Extensions> {
    vec(
        (
            prop_oneof![
                (3i64..1000).prop_map(ExtensionName::Int),
                (-1000i64..0).prop_map(ExtensionName::Int),
                "[a-z]{1,8}".prop_map(ExtensionName::Text),
            ],
            prop_oneof![
                any::<u64>().prop_map(ExtensionValue::Uint),
                vec(any::<u8>(), 0..20).prop_map(ExtensionValue::Bytes),
                ".{0,20}".prop_map(ExtensionValue::Text),
                any::<bool>().prop_map(ExtensionValue::Bool),
            ],
        ),
        0..6,
    )
    .prop_map(|pairs| {
        let mut e = Extensions::default();
        for (n, v) in pairs {
            e.insert(n, v);
        }
        e
    })
}

fn id() -> impl Strategy<Value = Option<MessageId>> {
    proptest::option::of(any::<[u8; 32]>().prop_map(MessageId))
}

fn content() -> impl Strategy<Value = Content> {
    (
        any::<[u8; 16]>(),
        id(),
        vec(any::<u8>(), 0..8),
        proptest::option::of(
            (any::<bool>(), any::<u32>())
                .prop_map(|(relative, time)| Expiration { relative, time }),
        ),
        id(),
        extensions(),
        part(),
    )
        .prop_map(
            |(salt, replaces, topic_id, expires, in_reply_to, extensions, part)| Content {
                salt,
                replaces,
                topic_id,
                expires,
                in_reply_to,
                extensions,
                part,
            },
        )
}

proptest! {
    #[test]
    fn content_round_trips(c in content()) {
        let bytes = c.to_cbor();
        prop_assert_eq!(Content::from_cbor(&bytes).unwrap(), c);
    }

    #[test]
    fn any_bytes_decode_or_refuse_without_panic(bytes in vec(any::<u8>(), 0..256)) {
        if let Ok(c) = Content::from_cbor(&bytes) {
            prop_assert_eq!(c.to_cbor(), bytes);
        }
    }

    #[test]
    fn a_changed_byte_never_decodes_to_the_same_message(c in content(), at in any::<usize>(), flip in 1u8..) {
        let mut bytes = c.to_cbor();
        let at = at % bytes.len();
        bytes[at] ^= flip;
        if let Ok(other) = Content::from_cbor(&bytes) {
            prop_assert_ne!(other, c);
        }
    }
}
