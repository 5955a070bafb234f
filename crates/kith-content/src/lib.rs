//! ContentV1 (`docs/spec/content-v1.md`): what one kith message says, as a
//! tree of parts in deterministic CBOR, after the IETF MIMI content format
//! (draft-ietf-mimi-content). No I/O, no keys: the engine puts the encoding
//! in a `PairFrame::Content` of type [`CONTENT_V1`] and encrypts it.
//!
//! ```text
//!  Content ─ salt, replaces, topic, expires, in_reply_to, extensions
//!     └── Part ─ disposition, language
//!           ├── Null                          (a delete: nothing left)
//!           ├── Single   { content_type, content }
//!           ├── External { url, key, nonce, hash, size, name, … }
//!           └── Multi    { choose-one | single-unit | process-all, [Part] }
//! ```
//!
//! Every value has exactly one encoding: [`Content::from_cbor`] decodes,
//! encodes again and refuses bytes that differ, so non-shortest integers,
//! indefinite lengths and unsorted maps never get in.

mod codec;
pub mod kind;
pub mod payto;
pub mod show;

pub use codec::DecodeError;

use sha2::{Digest, Sha256};

/// `PairFrame::Content` type of a ContentV1 body (pair-v1.md §4.1).
pub const CONTENT_V1: u16 = 0x0001;

/// The media type of plain text, as kith writes it.
pub const PLAIN_TEXT: &str = "text/plain;charset=utf-8";
/// The media type of markdown, as kith writes it.
pub const MARKDOWN: &str = "text/markdown;charset=utf-8";

/// Longest encoded ContentV1 message: what fits one relay message with the
/// frame and MLS around it.
pub const MAX_CONTENT: usize = 200_000;
/// Deepest nesting of multipart parts (the top part is depth 1).
pub const MAX_DEPTH: usize = 4;
/// Most parts in one multipart.
pub const MAX_PARTS: usize = 16;
/// Longest media type, language tag, URL, file name or description.
pub const MAX_SHORT_TEXT: usize = 1_024;
/// Longest topic id.
pub const MAX_TOPIC: usize = 64;
/// Most extensions, and the longest value of one.
pub const MAX_EXTENSIONS: usize = 32;
pub const MAX_EXTENSION_VALUE: usize = 4_096;

/// `MessageId` (content-v1.md §4): `0x01` then the first 31 bytes of a
/// SHA-256 over the sender, the conversation, the content and its salt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub [u8; 32]);

impl MessageId {
    /// The id of `content` (its encoding) sent by the member whose identity
    /// key in this conversation is `sender`, in `conversation`.
    pub fn of(sender: &[u8], conversation: &[u8], content: &[u8], salt: &[u8; 16]) -> Self {
        let mut h = Sha256::new();
        h.update(b"kith content message id v1\0");
        for part in [sender, conversation, content] {
            h.update(u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            h.update(part);
        }
        h.update(salt);
        let digest = h.finalize();
        let mut id = [0u8; 32];
        id[0] = 0x01;
        for (dst, src) in id.iter_mut().skip(1).zip(digest.iter()) {
            *dst = *src;
        }
        Self(id)
    }
}

/// When a message stops being shown (`Expiration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiration {
    /// `time` is seconds after the message was sent, not a Unix time.
    pub relative: bool,
    pub time: u32,
}

/// `mimiContent`: one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// Random, so that equal contents still get different ids.
    pub salt: [u8; 16],
    /// The message this one edits (or deletes, with a `Null` part).
    pub replaces: Option<MessageId>,
    /// A thread within the conversation; empty for none.
    pub topic_id: Vec<u8>,
    pub expires: Option<Expiration>,
    pub in_reply_to: Option<MessageId>,
    pub extensions: Extensions,
    pub part: Part,
}

/// `NestedPart`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub disposition: Disposition,
    /// A BCP 47 language tag, or empty.
    pub language: String,
    pub body: PartBody,
}

/// How a part is meant to be shown (`baseDispos`; 9–255 are unknown ones,
/// kept as they are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Disposition(pub u8);

impl Disposition {
    pub const UNSPECIFIED: Self = Self(0);
    pub const RENDER: Self = Self(1);
    pub const REACTION: Self = Self(2);
    pub const PROFILE: Self = Self(3);
    pub const INLINE: Self = Self(4);
    pub const ICON: Self = Self(5);
    pub const ATTACHMENT: Self = Self(6);
    pub const SESSION: Self = Self(7);
    pub const PREVIEW: Self = Self(8);
}

impl Part {
    /// One inline part, with no language.
    pub fn single(disposition: Disposition, content_type: &str, content: &[u8]) -> Self {
        Self {
            disposition,
            language: String::new(),
            body: PartBody::Single {
                content_type: content_type.into(),
                content: content.to_vec(),
            },
        }
    }

    /// A part with nothing in it: a delete, or a reaction taken back.
    pub fn null(disposition: Disposition) -> Self {
        Self {
            disposition,
            language: String::new(),
            body: PartBody::Null,
        }
    }
}

/// What a part holds (its cardinality and the fields that go with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartBody {
    /// Nothing: a deleted message, or a reaction taken back.
    Null,
    /// Content inline.
    Single {
        /// A media type, with parameters (`text/markdown;charset=utf-8`).
        content_type: String,
        content: Vec<u8>,
    },
    /// Content stored elsewhere, encrypted (files-v1.md).
    External(Box<ExternalPart>),
    /// Several parts, read as `semantics` says.
    Multi {
        semantics: Semantics,
        parts: Vec<Part>,
    },
}

/// `ExternalPart`: where an attachment is and how to open it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalPart {
    pub content_type: String,
    pub url: String,
    /// Unix seconds after which `url` may be gone; 0 for no promise.
    pub expires: u32,
    pub size: u64,
    /// An IANA AEAD algorithm number (RFC 5116), 0 for none.
    pub enc_alg: u16,
    pub key: Vec<u8>,
    pub nonce: Vec<u8>,
    pub aad: Vec<u8>,
    /// An IANA named-information hash algorithm number (1 = SHA-256).
    pub hash_alg: u8,
    pub content_hash: Vec<u8>,
    pub description: String,
    pub filename: String,
}

/// How the parts of a multipart relate (`partSemantics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Semantics {
    /// Alternatives of one thing, best first as the sender sees it: a
    /// receiver shows the first it supports.
    ChooseOne,
    /// Parts that only make sense together.
    SingleUnit,
    /// Independent parts, all shown.
    ProcessAll,
}

/// An extension's name (`name = int / tstr .size (1..255)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtensionName {
    Int(i64),
    Text(String),
}

/// An extension's value: kith carries the simple CBOR types only (MIMI
/// allows `any`), so that every value has one encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtensionValue {
    Uint(u64),
    Bytes(Vec<u8>),
    Text(String),
    Bool(bool),
}

/// The extensions map, kept in the order of its keys' encodings
/// (RFC 8949 §4.2.1), which is the order they are encoded in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions(Vec<(ExtensionName, ExtensionValue)>);

impl Extensions {
    /// Sets `name` to `value`, replacing any value it had.
    pub fn insert(&mut self, name: ExtensionName, value: ExtensionValue) {
        let key = codec::encoded_name(&name);
        match self
            .0
            .binary_search_by(|(n, _)| codec::encoded_name(n).cmp(&key))
        {
            Ok(at) => {
                if let Some(slot) = self.0.get_mut(at) {
                    slot.1 = value;
                }
            }
            Err(at) => self.0.insert(at, (name, value)),
        }
    }

    pub fn get(&self, name: &ExtensionName) -> Option<&ExtensionValue> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = &(ExtensionName, ExtensionValue)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Content {
    /// The ContentV1 message a text frame (pair-v1.md §4, tag 1) stands
    /// for, so that a text has a [`MessageId`] like any message
    /// (content-v1.md §5): salt is the frame's `message_id`, one
    /// `text/plain` part, nothing else.
    pub fn of_text(message_id: [u8; 16], text: &str) -> Self {
        Self::new(
            message_id,
            Part::single(Disposition::RENDER, PLAIN_TEXT, text.as_bytes()),
        )
    }

    /// A message of one part and nothing else: no thread, expiry, reply,
    /// replacement or extension.
    pub fn new(salt: [u8; 16], part: Part) -> Self {
        Self {
            salt,
            replaces: None,
            topic_id: Vec::new(),
            expires: None,
            in_reply_to: None,
            extensions: Extensions::default(),
            part,
        }
    }

    /// The deterministic encoding.
    pub fn to_cbor(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes `bytes`, refusing anything but the one encoding of a valid
    /// value within the limits above.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode(bytes)
    }

    /// This message's id, as sent by `sender` in `conversation`.
    pub fn id(&self, sender: &[u8], conversation: &[u8]) -> MessageId {
        MessageId::of(sender, conversation, &self.to_cbor(), &self.salt)
    }
}
