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
