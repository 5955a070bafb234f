//! The CBOR of content-v1.md §3: arrays of definite length, shortest
//! integers, map keys in the order of their encodings. Decoding checks
//! every bound as it goes and then that the value encodes to exactly the
//! bytes it came from.

use minicbor::data::Type;
use minicbor::{Decoder, Encoder};

use crate::{
    Content, Disposition, Expiration, ExtensionName, ExtensionValue, Extensions, ExternalPart,
    MAX_CONTENT, MAX_DEPTH, MAX_EXTENSION_VALUE, MAX_EXTENSIONS, MAX_PARTS, MAX_SHORT_TEXT,
    MAX_TOPIC, MessageId, Part, PartBody, Semantics,
};

/// Why bytes are not a ContentV1 message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("content is not well-formed CBOR of the expected shape: {0}")]
    Cbor(String),
    #[error("content: {0}")]
    Invalid(&'static str),
    #[error("content is not in its one deterministic encoding")]
    NotCanonical,
}

impl From<minicbor::decode::Error> for DecodeError {
    fn from(e: minicbor::decode::Error) -> Self {
        Self::Cbor(e.to_string())
    }
}

type Result<T> = std::result::Result<T, DecodeError>;

// Writing to a Vec cannot fail: the errors below are unreachable, and
// ignored rather than unwrapped (no panics in library code).
pub(crate) fn encode(content: &Content) -> Vec<u8> {
    let mut e = Encoder::new(Vec::new());
    let _ = encode_content(&mut e, content);
    e.into_writer()
}

type Enc = Encoder<Vec<u8>>;
type EncResult = std::result::Result<(), minicbor::encode::Error<std::convert::Infallible>>;

fn encode_content(e: &mut Enc, c: &Content) -> EncResult {
    e.array(7)?.bytes(&c.salt)?;
    message_id(e, c.replaces.as_ref())?;
    e.bytes(&c.topic_id)?;
    match c.expires {
        None => e.null()?,
        Some(x) => e.array(2)?.bool(x.relative)?.u32(x.time)?,
    };
    message_id(e, c.in_reply_to.as_ref())?;
    e.map(c.extensions.len() as u64)?;
    for (name, value) in c.extensions.iter() {
        match name {
            ExtensionName::Int(i) => e.i64(*i)?,
            ExtensionName::Text(t) => e.str(t)?,
        };
        match value {
            ExtensionValue::Uint(u) => e.u64(*u)?,
            ExtensionValue::Bytes(b) => e.bytes(b)?,
            ExtensionValue::Text(t) => e.str(t)?,
            ExtensionValue::Bool(b) => e.bool(*b)?,
        };
    }
    encode_part(e, &c.part)
}

fn message_id(e: &mut Enc, id: Option<&MessageId>) -> EncResult {
    match id {
        None => e.null()?,
        Some(id) => e.bytes(&id.0)?,
    };
    Ok(())
}

fn encode_part(e: &mut Enc, p: &Part) -> EncResult {
    let len = match &p.body {
        PartBody::Null => 3,
        PartBody::Single { .. } | PartBody::Multi { .. } => 5,
        PartBody::External(_) => 15,
    };
    e.array(len)?.u8(p.disposition.0)?.str(&p.language)?;
    match &p.body {
        PartBody::Null => {
            e.u8(0)?;
        }
        PartBody::Single {
            content_type,
            content,
        } => {
            e.u8(1)?.str(content_type)?.bytes(content)?;
        }
        PartBody::External(x) => {
            e.u8(2)?
                .str(&x.content_type)?
                .str(&x.url)?
                .u32(x.expires)?
                .u64(x.size)?
                .u16(x.enc_alg)?
                .bytes(&x.key)?
                .bytes(&x.nonce)?
                .bytes(&x.aad)?
                .u8(x.hash_alg)?
                .bytes(&x.content_hash)?
                .str(&x.description)?
                .str(&x.filename)?;
        }
        PartBody::Multi { semantics, parts } => {
            let s = match semantics {
                Semantics::ChooseOne => 0,
                Semantics::SingleUnit => 1,
                Semantics::ProcessAll => 2,
            };
            e.u8(3)?.u8(s)?.array(parts.len() as u64)?;
            for part in parts {
                encode_part(e, part)?;
            }
        }
    }
    Ok(())
}

/// The encoding of an extension's name: what the map is ordered by.
pub(crate) fn encoded_name(name: &ExtensionName) -> Vec<u8> {
    let mut e = Encoder::new(Vec::new());
    let _ = match name {
        ExtensionName::Int(i) => e.i64(*i).map(|_| ()),
        ExtensionName::Text(t) => e.str(t).map(|_| ()),
    };
    e.into_writer()
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Content> {
    if bytes.len() > MAX_CONTENT {
        return Err(DecodeError::Invalid("longer than a message may be"));
    }
    let mut d = Decoder::new(bytes);
    let content = decode_content(&mut d)?;
    if d.position() != bytes.len() {
        return Err(DecodeError::Invalid("bytes after the message"));
    }
    if encode(&content) != bytes {
        return Err(DecodeError::NotCanonical);
    }
    Ok(content)
}

fn array(d: &mut Decoder<'_>, what: &'static str) -> Result<u64> {
    d.array()?.ok_or(DecodeError::Invalid(what))
}

fn bounded_bytes<'b>(d: &mut Decoder<'b>, max: usize, what: &'static str) -> Result<&'b [u8]> {
    let b = d.bytes()?;
    if b.len() > max {
        return Err(DecodeError::Invalid(what));
    }
    Ok(b)
}

fn short_text(d: &mut Decoder<'_>, what: &'static str) -> Result<String> {
    let s = d.str()?;
    if s.len() > MAX_SHORT_TEXT {
        return Err(DecodeError::Invalid(what));
    }
    Ok(s.to_owned())
}

fn decode_content(d: &mut Decoder<'_>) -> Result<Content> {
    if array(d, "a message is an array of 7")? != 7 {
        return Err(DecodeError::Invalid("a message is an array of 7"));
    }
    let salt = d
        .bytes()?
        .try_into()
        .map_err(|_| DecodeError::Invalid("salt is 16 bytes"))?;
    let replaces = decode_message_id(d)?;
    let topic_id = bounded_bytes(d, MAX_TOPIC, "topic id too long")?.to_vec();
    let expires = if d.datatype()? == Type::Null {
        d.null()?;
        None
    } else {
        if array(d, "expires is [relative, time]")? != 2 {
            return Err(DecodeError::Invalid("expires is [relative, time]"));
        }
        Some(Expiration {
            relative: d.bool()?,
            time: d.u32()?,
        })
    };
    let in_reply_to = decode_message_id(d)?;
    let extensions = decode_extensions(d)?;
    let part = decode_part(d, 1)?;
    Ok(Content {
        salt,
        replaces,
        topic_id,
        expires,
        in_reply_to,
        extensions,
        part,
    })
}

fn decode_message_id(d: &mut Decoder<'_>) -> Result<Option<MessageId>> {
    if d.datatype()? == Type::Null {
        d.null()?;
        return Ok(None);
    }
    let id: [u8; 32] = d
        .bytes()?
        .try_into()
        .map_err(|_| DecodeError::Invalid("a message id is 32 bytes"))?;
    Ok(Some(MessageId(id)))
}

fn decode_extensions(d: &mut Decoder<'_>) -> Result<Extensions> {
    let n = d
        .map()?
        .ok_or(DecodeError::Invalid("extensions have a definite length"))?;
    if n > MAX_EXTENSIONS as u64 {
        return Err(DecodeError::Invalid("too many extensions"));
    }
    let mut out = Vec::new();
    for _ in 0..n {
        let name = match d.datatype()? {
            Type::String => {
                let t = d.str()?;
                if t.is_empty() || t.len() > 255 {
                    return Err(DecodeError::Invalid("an extension name is 1 to 255 bytes"));
                }
                ExtensionName::Text(t.to_owned())
            }
            _ => ExtensionName::Int(d.i64()?),
        };
        if matches!(name, ExtensionName::Int(1 | 2)) {
            // MIMI's senderUri and roomUri: kith has no URIs (§6).
            return Err(DecodeError::Invalid("senderUri and roomUri are not used"));
        }
        let value = match d.datatype()? {
            Type::Bool => ExtensionValue::Bool(d.bool()?),
            Type::Bytes => ExtensionValue::Bytes(
                bounded_bytes(d, MAX_EXTENSION_VALUE, "extension value too long")?.to_vec(),
            ),
            Type::String => {
                let t = d.str()?;
                if t.len() > MAX_EXTENSION_VALUE {
                    return Err(DecodeError::Invalid("extension value too long"));
                }
                ExtensionValue::Text(t.to_owned())
            }
            Type::U8 | Type::U16 | Type::U32 | Type::U64 => ExtensionValue::Uint(d.u64()?),
            _ => {
                return Err(DecodeError::Invalid(
                    "an extension value is an unsigned integer, bytes, text or a bool",
                ));
            }
        };
        out.push((name, value));
    }
    // Keys strictly increasing by their encodings: sorted and unique.
    let keys: Vec<Vec<u8>> = out.iter().map(|(n, _)| encoded_name(n)).collect();
    if keys.windows(2).any(|w| matches!(w, [a, b] if a >= b)) {
        return Err(DecodeError::NotCanonical);
    }
    Ok(Extensions(out))
}

fn decode_part(d: &mut Decoder<'_>, depth: usize) -> Result<Part> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::Invalid("parts nested too deep"));
    }
    let len = array(d, "a part is an array")?;
    let disposition = Disposition(d.u8()?);
    let language = short_text(d, "language tag too long")?;
    let cardinality = d.u8()?;
    let expected = match cardinality {
        0 => 3,
        1 | 3 => 5,
        2 => 15,
        _ => return Err(DecodeError::Invalid("unknown cardinality")),
    };
    if len != expected {
        return Err(DecodeError::Invalid(
            "a part has the fields of its cardinality",
        ));
    }
    let body = match cardinality {
        0 => PartBody::Null,
        1 => PartBody::Single {
            content_type: short_text(d, "media type too long")?,
            content: d.bytes()?.to_vec(),
        },
        2 => PartBody::External(Box::new(ExternalPart {
            content_type: short_text(d, "media type too long")?,
            url: short_text(d, "url too long")?,
            expires: d.u32()?,
            size: d.u64()?,
            enc_alg: d.u16()?,
            key: bounded_bytes(d, 64, "key too long")?.to_vec(),
            nonce: bounded_bytes(d, 64, "nonce too long")?.to_vec(),
            aad: bounded_bytes(d, MAX_SHORT_TEXT, "aad too long")?.to_vec(),
            hash_alg: d.u8()?,
            content_hash: bounded_bytes(d, 64, "hash too long")?.to_vec(),
            description: short_text(d, "description too long")?,
            filename: short_text(d, "file name too long")?,
        })),
        _ => {
            let semantics = match d.u8()? {
                0 => Semantics::ChooseOne,
                1 => Semantics::SingleUnit,
                2 => Semantics::ProcessAll,
                _ => return Err(DecodeError::Invalid("unknown part semantics")),
            };
            let n = array(d, "parts have a definite length")?;
            if !(2..=MAX_PARTS as u64).contains(&n) {
                return Err(DecodeError::Invalid("a multipart has 2 to 16 parts"));
            }
            let mut parts = Vec::new();
            for _ in 0..n {
                parts.push(decode_part(d, depth + 1)?);
            }
            PartBody::Multi { semantics, parts }
        }
    };
    Ok(Part {
        disposition,
        language,
        body,
    })
}
