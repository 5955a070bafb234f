//! A small deterministic binary codec in the style of the TLS presentation
//! language: big-endian fixed-width integers, fixed-size byte arrays,
//! length-prefixed byte strings and vectors with explicit limits, one-byte
//! tags for variants.
//!
//! Every value has exactly one encoding. Decoding is strict, so that a value
//! decoded from bytes re-encodes to the same bytes: booleans are 0 or 1, tags
//! are known, lengths are within their limit, and [`Codec::from_bytes`] refuses
//! trailing bytes. This is what lets signatures be computed over encodings.

use thiserror::Error;

/// Why bytes could not be decoded. Decoding never panics and never allocates
/// more than the input length (plus the fixed size of the value).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of a value.
    #[error("{what}: input ended at byte {at}, {needed} more byte(s) needed")]
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// Offset where the input ended.
        at: usize,
        /// Bytes still needed.
        needed: usize,
    },
    /// A length or count prefix is above the limit for that field.
    #[error("{what}: length {len} exceeds the limit of {max}")]
    TooLong {
        /// The field.
        what: &'static str,
        /// The length found.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A variant tag that this version does not know.
    #[error("{what}: unknown tag {tag}")]
    UnknownTag {
        /// The enum being decoded.
        what: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// A field whose value is outside its domain.
    #[error("{what}: {reason}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// Bytes left after a complete value.
    #[error("{trailing} trailing byte(s) after a complete value")]
    TrailingBytes {
        /// How many bytes were left.
        trailing: usize,
    },
    /// A protocol version this implementation does not speak.
    #[error("unsupported protocol version {found} (this implementation speaks {supported})")]
    UnsupportedVersion {
        /// The version in the input.
        found: u8,
        /// The version this crate implements.
        supported: u8,
    },
}

/// Reads values from a byte slice, tracking the position.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            trailing => Err(DecodeError::TrailingBytes { trailing }),
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|end| *end <= self.buf.len());
        match end.and_then(|end| self.buf.get(self.pos..end).map(|s| (s, end))) {
            Some((slice, end)) => {
                self.pos = end;
                Ok(slice)
            }
            None => Err(DecodeError::Truncated {
                what,
                at: self.buf.len(),
                needed: n.saturating_sub(self.remaining()),
            }),
        }
    }

    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.array(what)?))
    }

    /// A big-endian u16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// A big-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// A big-endian u64.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// A boolean: exactly 0 or 1.
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Invalid {
                what,
                reason: "a boolean must be 0 or 1",
            }),
        }
    }

    /// A u32 length prefix, checked against `max` before anything is read.
    fn length(&mut self, max: u32, what: &'static str) -> Result<usize, DecodeError> {
        let len = self.u32(what)?;
        if len > max {
            return Err(DecodeError::TooLong {
                what,
                len: u64::from(len),
                max: u64::from(max),
            });
        }
        usize::try_from(len).map_err(|_| DecodeError::TooLong {
            what,
            len: u64::from(len),
            max: usize::MAX as u64,
        })
    }

    /// `opaque<0..max>`: a u32 length, then that many bytes.
    pub fn opaque(&mut self, max: u32, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.length(max, what)?;
        self.take(len, what)
    }

    /// A UTF-8 string encoded as `opaque<0..max>`.
    pub fn string(&mut self, max: u32, what: &'static str) -> Result<String, DecodeError> {
        let bytes = self.opaque(max, what)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::Invalid {
                what,
                reason: "not valid UTF-8",
            })
    }

    /// `T items<0..max>`: a u32 count, then that many items.
    pub fn vec<T>(
        &mut self,
        max: u32,
        what: &'static str,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let count = self.length(max, what)?;
        // Each item takes at least one byte, so the remaining input bounds the
        // allocation even when the count prefix lies.
        let mut out = Vec::with_capacity(count.min(self.remaining()));
        for _ in 0..count {
            out.push(item(self)?);
        }
        Ok(out)
    }

    /// `optional<T>`: a presence byte (0 or 1), then the value if present.
    pub fn optional<T>(
        &mut self,
        what: &'static str,
        item: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        if self.bool(what)? {
            Ok(Some(item(self)?))
        } else {
            Ok(None)
        }
    }
}

/// Writes values; the counterpart of [`Reader`].
///
/// Lengths are written as u32. Values longer than their field's limit still
/// encode, but no conforming decoder accepts them: limits are checked on the
/// decoding side, where the bytes come from someone else.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty writer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Raw bytes, no prefix.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// A big-endian u16.
    pub fn u16(&mut self, v: u16) {
        self.raw(&v.to_be_bytes());
    }

    /// A big-endian u32.
    pub fn u32(&mut self, v: u32) {
        self.raw(&v.to_be_bytes());
    }

    /// A big-endian u64.
    pub fn u64(&mut self, v: u64) {
        self.raw(&v.to_be_bytes());
    }

    /// A boolean as 0 or 1.
    pub fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    fn length(&mut self, len: usize) {
        self.u32(u32::try_from(len).unwrap_or(u32::MAX));
    }

    /// `opaque<..>`: a u32 length, then the bytes.
    pub fn opaque(&mut self, bytes: &[u8]) {
        self.length(bytes.len());
        self.raw(bytes);
    }

    /// A string as `opaque<..>`.
    pub fn string(&mut self, s: &str) {
        self.opaque(s.as_bytes());
    }

    /// `T items<..>`: a u32 count, then the items.
    pub fn vec<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) {
        self.length(items.len());
        for it in items {
            item(self, it);
        }
    }

    /// `optional<T>`: 0, or 1 followed by the value.
    pub fn optional<T>(&mut self, v: Option<&T>, item: impl FnOnce(&mut Self, &T)) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                item(self, v);
            }
        }
    }
}

/// A type with one canonical binary encoding.
pub trait Codec: Sized {
    /// Appends the encoding of `self`.
    fn encode(&self, w: &mut Writer);

    /// Decodes one value, leaving the reader after it.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// The encoding as a new vector.
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.into_bytes()
    }

    /// Decodes a value that must span all of `bytes`.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::decode(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_input_reports_position() {
        let mut r = Reader::new(&[1, 2]);
        assert_eq!(
            r.u32("x"),
            Err(DecodeError::Truncated {
                what: "x",
                at: 2,
                needed: 2
            })
        );
    }

    #[test]
    fn opaque_limit_is_checked_before_reading() {
        let mut w = Writer::new();
        w.opaque(&[7; 10]);
        let bytes = w.into_bytes();
        assert!(matches!(
            Reader::new(&bytes).opaque(9, "payload"),
            Err(DecodeError::TooLong {
                len: 10,
                max: 9,
                ..
            })
        ));
        assert_eq!(
            Reader::new(&bytes).opaque(10, "payload"),
            Ok(&[7u8; 10][..])
        );
    }

    #[test]
    fn lying_vector_count_does_not_allocate_it() {
        // count = 2^32-1 (above the limit) and count = limit with no items.
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert!(r.vec(u32::MAX, "v", |r| r.u64("item")).is_err());
    }

    #[test]
    fn booleans_are_strict() {
        assert_eq!(Reader::new(&[1]).bool("b"), Ok(true));
        assert!(Reader::new(&[2]).bool("b").is_err());
    }

    #[test]
    fn strings_must_be_utf8() {
        let mut w = Writer::new();
        w.opaque(&[0xff, 0xfe]);
        assert!(Reader::new(&w.into_bytes()).string(10, "s").is_err());
    }
}
