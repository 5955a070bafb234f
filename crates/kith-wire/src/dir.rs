//! Directory keys and attestations (`docs/spec/directory-v1.md` §1–§2):
//! what a directory signs and what a member shows. The encodings here are
//! what the signatures are over; signing and verifying are the callers'
//! (the relay signs, clients verify).

use crate::codec::{Codec, DecodeError, Reader, Writer};

/// Longest directory name.
pub const MAX_DIRECTORY_NAME: u32 = 64;
/// Longest attestation statement.
pub const MAX_STATEMENT: u32 = 256;

/// Whether `name` is a directory name: 1 to 64 lower-case ASCII letters,
/// digits and `-`.
pub fn valid_directory_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_DIRECTORY_NAME as usize
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn directory_name(r: &mut Reader<'_>, what: &'static str) -> Result<String, DecodeError> {
    let name = r.string(MAX_DIRECTORY_NAME, what)?;
    if !valid_directory_name(&name) {
        return Err(DecodeError::Invalid {
            what,
            reason: "a directory name is lower-case letters, digits and '-'",
        });
    }
    Ok(name)
}

/// `DirectoryKey` (§1): a signing key of a directory, signed by its root.
///
/// ```text
/// struct { PublicKey key; u64 valid_from_ms; u64 valid_until_ms;
///          Signature root_signature; } DirectoryKey;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryKey {
    pub key: [u8; 32],
    pub valid_from_ms: u64,
    pub valid_until_ms: u64,
    pub root_signature: [u8; 64],
}

impl DirectoryKey {
    /// What the root key signs: `"kith directory key v1" || 0x00 ||
    /// string(name) || key || u64(valid_from_ms) || u64(valid_until_ms)`.
    pub fn signed(name: &str, key: &[u8; 32], valid_from_ms: u64, valid_until_ms: u64) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(b"kith directory key v1\0");
        w.string(name);
        w.raw(key);
        w.u64(valid_from_ms);
        w.u64(valid_until_ms);
        w.into_bytes()
    }
}

impl Codec for DirectoryKey {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.key);
        w.u64(self.valid_from_ms);
        w.u64(self.valid_until_ms);
        w.raw(&self.root_signature);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            key: r.array("directory_key.key")?,
            valid_from_ms: r.u64("directory_key.valid_from_ms")?,
            valid_until_ms: r.u64("directory_key.valid_until_ms")?,
            root_signature: r.array("directory_key.root_signature")?,
        })
    }
}

/// `Attestation` (§2): a directory's statement about the holder of a
/// member key, valid for a period.
///
/// ```text
/// struct { string directory<1..64>; PublicKey root; DirectoryKey signing;
///          PublicKey member; string statement<1..256>;
///          u64 valid_from_ms; u64 valid_until_ms; Signature signature; } Attestation;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    pub directory: String,
    pub root: [u8; 32],
    pub signing: DirectoryKey,
    pub member: [u8; 32],
    pub statement: String,
    pub valid_from_ms: u64,
    pub valid_until_ms: u64,
    pub signature: [u8; 64],
}

impl Attestation {
    /// What the signing key signs: `"kith attestation v1" || 0x00 ||
    /// string(directory) || root || member || string(statement) ||
    /// u64(valid_from_ms) || u64(valid_until_ms)`.
    pub fn signed(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(b"kith attestation v1\0");
        w.string(&self.directory);
        w.raw(&self.root);
        w.raw(&self.member);
        w.string(&self.statement);
        w.u64(self.valid_from_ms);
        w.u64(self.valid_until_ms);
        w.into_bytes()
    }
}

impl Codec for Attestation {
    fn encode(&self, w: &mut Writer) {
        w.string(&self.directory);
        w.raw(&self.root);
        self.signing.encode(w);
        w.raw(&self.member);
        w.string(&self.statement);
        w.u64(self.valid_from_ms);
        w.u64(self.valid_until_ms);
        w.raw(&self.signature);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let directory = directory_name(r, "attestation.directory")?;
        let root = r.array("attestation.root")?;
        let signing = DirectoryKey::decode(r)?;
        let member = r.array("attestation.member")?;
        let statement = r.string(MAX_STATEMENT, "attestation.statement")?;
        if statement.is_empty() {
            return Err(DecodeError::Invalid {
                what: "attestation.statement",
                reason: "an empty statement",
            });
        }
        Ok(Self {
            directory,
            root,
            signing,
            member,
            statement,
            valid_from_ms: r.u64("attestation.valid_from_ms")?,
            valid_until_ms: r.u64("attestation.valid_until_ms")?,
            signature: r.array("attestation.signature")?,
        })
    }
}

/// Longest display name in an entry.
pub const MAX_ENTRY_NAME: u32 = 256;
/// Longest text in an entry.
pub const MAX_ENTRY_TEXT: u32 = 1_024;
/// Longest address link in an entry.
pub const MAX_ENTRY_ADDRESS: u32 = 2_048;
/// Longest search query.
pub const MAX_QUERY: u32 = 256;
/// Most entries one search answers.
pub const MAX_RESULTS: u32 = 50;
/// Most signing keys a directory publishes at once.
pub const MAX_DIRECTORY_KEYS: u32 = 16;
/// Most revoked member keys a directory publishes.
pub const MAX_REVOKED: u32 = 65_536;

/// `Entry` (§3): what a search answers — never a member key.
///
/// ```text
/// struct { string display_name<1..256>; string text<0..1024>;
///          string address<1..2048>; } Entry;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub display_name: String,
    pub text: String,
    pub address: String,
}

impl Codec for Entry {
    fn encode(&self, w: &mut Writer) {
        w.string(&self.display_name);
        w.string(&self.text);
        w.string(&self.address);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let display_name = r.string(MAX_ENTRY_NAME, "entry.display_name")?;
        let text = r.string(MAX_ENTRY_TEXT, "entry.text")?;
        let address = r.string(MAX_ENTRY_ADDRESS, "entry.address")?;
        if display_name.is_empty() || address.is_empty() {
            return Err(DecodeError::Invalid {
                what: "entry",
                reason: "an entry without a name or an address",
            });
        }
        Ok(Self {
            display_name,
            text,
            address,
        })
    }
}

/// `SearchResults` (§6): the answer to a search, newest first.
///
/// ```text
/// struct { Entry items<0..50>; } SearchResults;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchResults {
    pub items: Vec<Entry>,
}

impl Codec for SearchResults {
    fn encode(&self, w: &mut Writer) {
        w.vec(&self.items, |w, e| e.encode(w));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            items: r.vec(MAX_RESULTS, "search_results.items", Entry::decode)?,
        })
    }
}

/// What a directory request asks (§6), the `op` of a `DirectoryRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryOp {
    /// Tag 1: join a members-only directory with a one-time enrolment
    /// secret; answered by an `Attestation`.
    Enrol { secret: [u8; 32] },
    /// Tag 2: set the signer's one entry.
    Publish(Entry),
    /// Tag 3: remove the signer's entry.
    Unpublish,
    /// Tag 4: entries whose name or text have every word of `query` at
    /// the start of one of their words; answered by `SearchResults`.
    Search { query: String },
    /// Tag 5: remove the entry and the membership.
    Leave,
}

/// `DirectoryRequest` (§6): the operation `directory` (tag 16) of a
/// relay request (`relay.md` §4), signed by the member key.
///
/// ```text
/// struct { string directory<1..64>;
///          select (u8 op) {
///              case 1 enrol:     opaque secret[32];
///              case 2 publish:   Entry entry;
///              case 3 unpublish: ;
///              case 4 search:    string query<0..256>;
///              case 5 leave:     ;
///          }; } DirectoryRequest;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryRequest {
    pub directory: String,
    pub op: DirectoryOp,
}

impl Codec for DirectoryRequest {
    fn encode(&self, w: &mut Writer) {
        w.string(&self.directory);
        match &self.op {
            DirectoryOp::Enrol { secret } => {
                w.u8(1);
                w.raw(secret);
            }
            DirectoryOp::Publish(entry) => {
                w.u8(2);
                entry.encode(w);
            }
            DirectoryOp::Unpublish => w.u8(3),
            DirectoryOp::Search { query } => {
                w.u8(4);
                w.string(query);
            }
            DirectoryOp::Leave => w.u8(5),
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let directory = directory_name(r, "directory_request.directory")?;
        let op = match r.u8("directory_request.op")? {
            1 => DirectoryOp::Enrol {
                secret: r.array("directory_request.secret")?,
            },
            2 => DirectoryOp::Publish(Entry::decode(r)?),
            3 => DirectoryOp::Unpublish,
            4 => DirectoryOp::Search {
                query: r.string(MAX_QUERY, "directory_request.query")?,
            },
            5 => DirectoryOp::Leave,
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "directory_request.op",
                    tag,
                });
            }
        };
        Ok(Self { directory, op })
    }
}

/// `DirectoryInfo` (§6): what `GET /v1/dir/{name}` answers, signed by the
/// root key so that a copy passed on is as good as the relay's.
///
/// ```text
/// struct { u8 version = 1; string name<1..64>; bool members_only;
///          PublicKey root; DirectoryKey keys<1..16>;
///          PublicKey revoked<0..65536>; u64 issued_ms;
///          Signature root_signature; } DirectoryInfo;
/// root_signature = Ed25519(root, "kith directory info v1" || 0x00 || all before it)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryInfo {
    pub name: String,
    pub members_only: bool,
    pub root: [u8; 32],
    pub keys: Vec<DirectoryKey>,
    /// Member keys removed while their attestations were still valid.
    pub revoked: Vec<[u8; 32]>,
    pub issued_ms: u64,
    pub root_signature: [u8; 64],
}

/// `DirectoryInfo.version`.
pub const DIRECTORY_INFO_VERSION: u8 = 1;

impl DirectoryInfo {
    fn encode_unsigned(&self, w: &mut Writer) {
        w.u8(DIRECTORY_INFO_VERSION);
        w.string(&self.name);
        w.bool(self.members_only);
        w.raw(&self.root);
        w.vec(&self.keys, |w, k| k.encode(w));
        w.vec(&self.revoked, |w, k| w.raw(k));
        w.u64(self.issued_ms);
    }

    /// What the root key signs.
    pub fn signed(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(b"kith directory info v1\0");
        self.encode_unsigned(&mut w);
        w.into_bytes()
    }
}

impl Codec for DirectoryInfo {
    fn encode(&self, w: &mut Writer) {
        self.encode_unsigned(w);
        w.raw(&self.root_signature);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8("directory_info.version")?;
        if version != DIRECTORY_INFO_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                found: version,
                supported: DIRECTORY_INFO_VERSION,
            });
        }
        let name = directory_name(r, "directory_info.name")?;
        let members_only = r.bool("directory_info.members_only")?;
        let root = r.array("directory_info.root")?;
        let keys = r.vec(
            MAX_DIRECTORY_KEYS,
            "directory_info.keys",
            DirectoryKey::decode,
        )?;
        if keys.is_empty() {
            return Err(DecodeError::Invalid {
                what: "directory_info.keys",
                reason: "a directory without a signing key",
            });
        }
        Ok(Self {
            name,
            members_only,
            root,
            keys,
            revoked: r.vec(MAX_REVOKED, "directory_info.revoked", |r| {
                r.array("directory_info.revoked")
            })?,
            issued_ms: r.u64("directory_info.issued_ms")?,
            root_signature: r.array("directory_info.root_signature")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(valid_directory_name("school-27"));
        for bad in ["", "School", "a b", "é", &"a".repeat(65)] {
            assert!(!valid_directory_name(bad), "{bad}");
        }
    }
}
