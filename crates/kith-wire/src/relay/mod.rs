//! The relay protocol, version 1: `docs/spec/relay.md`.
//!
//! Identifiers, capability rights and protocol constants live here; the
//! signed requests in [`request`], what the relay answers in [`response`], and
//! the WebSocket push frames in [`push`].

pub mod push;
pub mod request;
pub mod response;

use crate::codec::{Codec, DecodeError, Reader, Writer};
use std::fmt;

/// The protocol version carried in every request and in `RelayInfo`.
pub const PROTOCOL_VERSION: u8 = 1;

/// Message payload sizes a relay accepts: clients pad every payload to one of
/// these, so that the relay (and anyone watching it) learns only the bucket.
pub const SIZE_BUCKETS: [u32; 6] = [256, 1024, 4096, 16_384, 65_536, 262_144];

/// The largest payload, and the size of every chunk of a multi-chunk blob.
pub const MAX_PAYLOAD: u32 = 262_144;

/// Size of each chunk of a blob that has more than one chunk.
pub const CHUNK_SIZE: u32 = MAX_PAYLOAD;

/// The domain-separation prefix of every request signature: the signed bytes
/// are this string, then the encoded [`request::RequestBody`].
pub const REQUEST_SIGNATURE_CONTEXT: &[u8] = b"kith relay request v1\0";

/// The smallest size bucket that holds `len` bytes, if any does.
pub fn bucket_for(len: usize) -> Option<u32> {
    SIZE_BUCKETS
        .iter()
        .copied()
        .find(|b| usize::try_from(*b).is_ok_and(|b| b >= len))
}

/// Whether `len` is exactly one of the [`SIZE_BUCKETS`].
pub fn is_bucket_size(len: usize) -> bool {
    SIZE_BUCKETS
        .iter()
        .any(|b| usize::try_from(*b).is_ok_and(|b| b == len))
}

pub(crate) fn hex_prefix(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes.iter().take(4) {
        write!(f, "{b:02x}")?;
    }
    f.write_str("…")
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Parses hex (either case) into exactly `N` bytes.
pub fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    from_hex_vec(s)?.try_into().ok()
}

/// Parses hex (either case) of any even length.
pub fn from_hex_vec(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some((nibble(*hi)? << 4) | nibble(*lo)?),
            _ => None,
        })
        .collect()
}

macro_rules! fixed_bytes {
    ($(#[$meta:meta])* $name:ident, $len:expr, $what:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length of the encoding in bytes.
            pub const LEN: usize = $len;

            /// Lower-case hex of the bytes.
            pub fn to_hex(&self) -> String {
                to_hex(&self.0)
            }

            /// Parses the hex form.
            pub fn from_hex(s: &str) -> Option<Self> {
                from_hex::<$len>(s).map(Self)
            }
        }

        impl fmt::Debug for $name {
            // Only a prefix: enough to tell values apart in a log, never
            // enough to use one as a capability.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "("))?;
                hex_prefix(f, &self.0)?;
                f.write_str(")")
            }
        }

        impl Codec for $name {
            fn encode(&self, w: &mut Writer) {
                w.raw(&self.0);
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                r.array($what).map(Self)
            }
        }
    };
}

fixed_bytes!(
    /// The relay's identity: 32 random bytes fixed when its store is created.
    /// Every request signs it, so a request made for one relay is worthless at
    /// another.
    RelayId, 32, "relay_id"
);
fixed_bytes!(
    /// The identifier used to write to a channel (and to administer it).
    WriteId, 32, "write_id"
);
fixed_bytes!(
    /// The identifier used to read a channel. Unrelated to its [`WriteId`], so
    /// that ids alone do not match writers' traffic with readers'.
    ReadId, 32, "read_id"
);
fixed_bytes!(
    /// The identifier of a blob. It is a bearer capability: whoever has it can
    /// fetch the blob, which is why relays store only its hash.
    BlobId, 32, "blob_id"
);
fixed_bytes!(
    /// An Ed25519 public key in its 32-byte compressed form.
    PublicKey, 32, "public_key"
);
fixed_bytes!(
    /// An Ed25519 signature.
    Signature, 64, "signature"
);
fixed_bytes!(
    /// 128 random bits that make a request unique.
    Nonce, 16, "nonce"
);

/// What a key registered on a channel may do; a bit set.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rights(u8);

impl Rights {
    /// May read, acknowledge, subscribe and see the channel's status.
    pub const READ: Self = Self(1);
    /// May append messages and create, fill and delete the channel's blobs.
    pub const WRITE: Self = Self(2);
    /// May add and revoke keys, delete the channel, and see its key list.
    pub const ADMIN: Self = Self(4);
    /// Every right.
    pub const ALL: Self = Self(7);
    /// No right; never valid in a grant.
    pub const NONE: Self = Self(0);

    /// The rights from their bits, if no unknown bit is set.
    pub fn from_bits(bits: u8) -> Option<Self> {
        (bits & !Self::ALL.0 == 0).then_some(Self(bits))
    }

    /// The bits.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Whether every right in `other` is in `self`.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no right is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for Rights {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl fmt::Debug for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::READ, "read"),
            (Self::WRITE, "write"),
            (Self::ADMIN, "admin"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(r, _)| self.contains(*r))
            .map(|(_, n)| *n)
            .collect();
        write!(f, "Rights({})", set.join("|"))
    }
}

impl Codec for Rights {
    fn encode(&self, w: &mut Writer) {
        w.u8(self.0);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::from_bits(r.u8("rights")?).ok_or(DecodeError::Invalid {
            what: "rights",
            reason: "unknown right bit set",
        })
    }
}

/// A key and the rights it is granted on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyGrant {
    /// The capability key.
    pub key: PublicKey,
    /// Its rights; never empty.
    pub rights: Rights,
}

impl Codec for KeyGrant {
    fn encode(&self, w: &mut Writer) {
        self.key.encode(w);
        self.rights.encode(w);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let key = PublicKey::decode(r)?;
        let rights = Rights::decode(r)?;
        if rights.is_empty() {
            return Err(DecodeError::Invalid {
                what: "key_grant.rights",
                reason: "a grant needs at least one right",
            });
        }
        Ok(Self { key, rights })
    }
}

/// A channel named by either of its identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelRef {
    /// By write id (tag 1).
    Write(WriteId),
    /// By read id (tag 2).
    Read(ReadId),
}

impl Codec for ChannelRef {
    fn encode(&self, w: &mut Writer) {
        match self {
            Self::Write(id) => {
                w.u8(1);
                id.encode(w);
            }
            Self::Read(id) => {
                w.u8(2);
                id.encode(w);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8("channel_ref")? {
            1 => Ok(Self::Write(WriteId::decode(r)?)),
            2 => Ok(Self::Read(ReadId::decode(r)?)),
            tag => Err(DecodeError::UnknownTag {
                what: "channel_ref",
                tag,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets() {
        assert_eq!(bucket_for(0), Some(256));
        assert_eq!(bucket_for(256), Some(256));
        assert_eq!(bucket_for(257), Some(1024));
        assert_eq!(bucket_for(262_144), Some(262_144));
        assert_eq!(bucket_for(262_145), None);
        assert!(is_bucket_size(4096));
        assert!(!is_bucket_size(4095));
    }

    #[test]
    fn hex_round_trip() {
        let id = WriteId([0xab; 32]);
        assert_eq!(WriteId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(WriteId::from_hex("zz"), None);
        assert_eq!(format!("{id:?}"), "WriteId(abababab…)");
    }

    #[test]
    fn rights() {
        assert_eq!(Rights::from_bits(8), None);
        assert!(Rights::ALL.contains(Rights::READ | Rights::ADMIN));
        assert!(!Rights::READ.contains(Rights::WRITE));
        assert_eq!(
            format!("{:?}", Rights::READ | Rights::WRITE),
            "Rights(read|write)"
        );
    }

    #[test]
    fn empty_grant_refused() {
        let mut bytes = vec![0u8; 32];
        bytes.push(0);
        assert!(KeyGrant::from_bytes(&bytes).is_err());
    }
}
