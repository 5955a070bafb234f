//! What the stores keep for directories (`docs/spec/directory-v1.md`): the
//! rows both backends read and write. What they mean — signing, checking a
//! request — is `server::directory`'s.

use kith_wire::dir::{DirectoryKey, Entry};
use zeroize::Zeroizing;

/// A signing key with its secret.
#[derive(Clone)]
pub struct SigningKeyRow {
    /// The Ed25519 secret.
    pub secret: Zeroizing<[u8; 32]>,
    /// The public key, its validity and the root's signature.
    pub key: DirectoryKey,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("secret", &"[redacted]")
            .field("key", &self.key)
            .finish()
    }
}

/// A directory to create.
#[derive(Debug, Clone)]
pub struct NewDirectory {
    /// Its name (`valid_directory_name`).
    pub name: String,
    /// Whether only admitted members search and publish.
    pub members_only: bool,
    /// The root key's secret.
    pub root_secret: Zeroizing<[u8; 32]>,
    /// Its first signing key.
    pub signing: SigningKeyRow,
    /// When.
    pub now_ms: u64,
}

/// A directory as stored, with its secrets.
#[derive(Debug, Clone)]
pub struct DirectoryRow {
    /// Its name.
    pub name: String,
    /// Whether only admitted members search and publish.
    pub members_only: bool,
    /// The root key's secret.
    pub root_secret: Zeroizing<[u8; 32]>,
    /// Signing keys not yet expired, newest last.
    pub keys: Vec<SigningKeyRow>,
    /// Member keys removed while their attestations were still valid.
    pub revoked: Vec<[u8; 32]>,
}

/// What an admission grants: the attestation's statement and validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// "current student".
    pub statement: String,
    /// Start of validity, Unix ms.
    pub valid_from_ms: u64,
    /// End of validity, Unix ms.
    pub valid_until_ms: u64,
}

/// One admission, for the operator's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// The number the operator removes it by.
    pub id: u64,
    /// What it grants.
    pub admission: Admission,
    /// Whether its enrolment link was used.
    pub enrolled: bool,
    /// Whether the operator removed it, or the member left.
    pub removed: bool,
    /// The member's entry's display name, if it published one.
    pub entry_name: Option<String>,
}

/// One directory, for the operator's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectorySummary {
    /// Its name.
    pub name: String,
    /// Whether only admitted members search and publish.
    pub members_only: bool,
    /// Members enrolled and not removed.
    pub members: u64,
    /// Entries published.
    pub entries: u64,
}

/// A search: the words, each matched at the start of a word of an entry's
/// name or text (case insensitive), all of them; no words lists the newest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// The directory.
    pub directory: String,
    /// Lower-cased words of letters and digits.
    pub words: Vec<String>,
    /// Only entries of members whose admission is valid at `now_ms`.
    pub members_only: bool,
    /// When.
    pub now_ms: u64,
    /// Most entries answered.
    pub limit: u32,
}

impl Search {
    /// The words of a query: runs of letters and digits, lower-cased, at
    /// most 16 (the rest only narrow further, at a cost).
    pub fn words(query: &str) -> Vec<String> {
        query
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .take(16)
            .map(str::to_lowercase)
            .collect()
    }
}

/// An entry to set (`Some`) or remove (`None`).
pub type EntryChange = Option<Entry>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_runs_of_letters_and_digits() {
        assert_eq!(
            Search::words("  Emery  O'Hara-12 "),
            ["emery", "o", "hara", "12"]
        );
        assert_eq!(Search::words("\"*:& |"), Vec::<String>::new());
        assert_eq!(Search::words("ÉMERY"), ["émery"]);
        assert_eq!(Search::words(&"a ".repeat(40)).len(), 16);
    }
}
