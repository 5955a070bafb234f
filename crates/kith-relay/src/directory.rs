//! Directories (`docs/spec/directory-v1.md`): what a relay's operator does
//! with one (create, admit, rotate) and what the relay signs for it. The
//! store keeps the rows; this module makes the keys and signatures.
//!
//! ```text
//!  root key ──signs──▶ signing keys (rotate) ──sign──▶ attestations
//!     │                                                  (member key,
//!     └──signs──▶ DirectoryInfo (keys, revoked members)   statement, until)
//! ```

use crate::store::{Admission, DirectoryRow, NewDirectory, SigningKeyRow, Store, StoreError};
use ed25519_dalek::{Signer, SigningKey};
use kith_wire::dir::{Attestation, DirectoryInfo, DirectoryKey, valid_directory_name};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// How long a signing key signs: a year; `rotate` adds the next.
pub const SIGNING_KEY_VALIDITY_MS: u64 = 365 * 24 * 3_600 * 1_000;

/// Why a directory operation could not be done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    #[error("a directory name is 1 to 64 lower-case letters, digits and '-'")]
    BadName,
    #[error("there is no directory named {0}")]
    NoSuchDirectory(String),
    #[error("the directory {0} has no signing key valid now; run `kith-relay directory rotate`")]
    NoSigningKey(String),
    #[error("the statement must be 1 to 256 bytes")]
    BadStatement,
    #[error("the validity ends before it starts")]
    BadValidity,
    #[error("the random source failed")]
    Random,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn random() -> Result<Zeroizing<[u8; 32]>, DirectoryError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut bytes[..]).map_err(|_| DirectoryError::Random)?;
    Ok(bytes)
}

/// The hash a relay keeps of an enrolment secret.
pub fn enrolment_hash(secret: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"kith directory enrolment v1\0");
    h.update(secret);
    h.finalize().into()
}

fn new_signing_key(
    name: &str,
    root: &SigningKey,
    now_ms: u64,
) -> Result<SigningKeyRow, DirectoryError> {
    let secret = random()?;
    let key = SigningKey::from_bytes(&secret).verifying_key().to_bytes();
    let until = now_ms.saturating_add(SIGNING_KEY_VALIDITY_MS);
    let root_signature = root
        .sign(&DirectoryKey::signed(name, &key, now_ms, until))
        .to_bytes();
    Ok(SigningKeyRow {
        secret,
        key: DirectoryKey {
            key,
            valid_from_ms: now_ms,
            valid_until_ms: until,
            root_signature,
        },
    })
}

/// Creates a directory with a fresh root key and a first signing key.
pub async fn create(
    store: &dyn Store,
    name: &str,
    members_only: bool,
    now_ms: u64,
) -> Result<DirectoryInfo, DirectoryError> {
    if !valid_directory_name(name) {
        return Err(DirectoryError::BadName);
    }
    let root_secret = random()?;
    let root = SigningKey::from_bytes(&root_secret);
    let signing = new_signing_key(name, &root, now_ms)?;
    store
        .dir_create(NewDirectory {
            name: name.to_string(),
            members_only,
            root_secret,
            signing,
            now_ms,
        })
        .await?;
    info(store, name, now_ms).await
}

/// Adds a new signing key; the older ones still verify what they signed.
pub async fn rotate(
    store: &dyn Store,
    name: &str,
    now_ms: u64,
) -> Result<DirectoryKey, DirectoryError> {
    let row = load(store, name, now_ms).await?;
    let signing = new_signing_key(name, &SigningKey::from_bytes(&row.root_secret), now_ms)?;
    let key = signing.key.clone();
    store.dir_add_key(name, signing).await?;
    Ok(key)
}

/// Records a one-time enrolment; answers its number and the secret that
/// goes in the link (the store keeps only its hash).
pub async fn admit(
    store: &dyn Store,
    name: &str,
    statement: &str,
    valid_until_ms: u64,
    now_ms: u64,
) -> Result<(u64, Zeroizing<[u8; 32]>), DirectoryError> {
    if statement.is_empty() || statement.len() > kith_wire::dir::MAX_STATEMENT as usize {
        return Err(DirectoryError::BadStatement);
    }
    if valid_until_ms <= now_ms {
        return Err(DirectoryError::BadValidity);
    }
    load(store, name, now_ms).await?;
    let secret = random()?;
    let id = store
        .dir_admit(
            name,
            enrolment_hash(&secret),
            Admission {
                statement: statement.to_string(),
                valid_from_ms: now_ms,
                valid_until_ms,
            },
            now_ms,
        )
        .await?;
    Ok((id, secret))
}

async fn load(store: &dyn Store, name: &str, now_ms: u64) -> Result<DirectoryRow, DirectoryError> {
    store
        .dir_load(name, now_ms)
        .await?
        .ok_or_else(|| DirectoryError::NoSuchDirectory(name.to_string()))
}

/// The directory's public description, signed by its root.
pub async fn info(
    store: &dyn Store,
    name: &str,
    now_ms: u64,
) -> Result<DirectoryInfo, DirectoryError> {
    let row = load(store, name, now_ms).await?;
    signed_info(&row, now_ms)
}

/// `row` as a signed `DirectoryInfo`: its newest 16 signing keys.
pub(crate) fn signed_info(
    row: &DirectoryRow,
    now_ms: u64,
) -> Result<DirectoryInfo, DirectoryError> {
    let root = SigningKey::from_bytes(&row.root_secret);
    let skip = row
        .keys
        .len()
        .saturating_sub(kith_wire::dir::MAX_DIRECTORY_KEYS as usize);
    let keys: Vec<DirectoryKey> = row.keys.iter().skip(skip).map(|k| k.key.clone()).collect();
    if keys.is_empty() {
        return Err(DirectoryError::NoSigningKey(row.name.clone()));
    }
    let mut info = DirectoryInfo {
        name: row.name.clone(),
        members_only: row.members_only,
        root: root.verifying_key().to_bytes(),
        keys,
        revoked: row.revoked.clone(),
        issued_ms: now_ms,
        root_signature: [0; 64],
    };
    info.root_signature = root.sign(&info.signed()).to_bytes();
    Ok(info)
}

/// An attestation for `member` with `admission`'s statement, valid from
/// now until the admission ends, signed by the newest signing key valid
/// now.
pub(crate) fn attest(
    row: &DirectoryRow,
    member: [u8; 32],
    admission: &Admission,
    now_ms: u64,
) -> Result<Attestation, DirectoryError> {
    let signing = row
        .keys
        .iter()
        .rev()
        .find(|k| k.key.valid_from_ms <= now_ms && now_ms <= k.key.valid_until_ms)
        .ok_or_else(|| DirectoryError::NoSigningKey(row.name.clone()))?;
    let mut a = Attestation {
        directory: row.name.clone(),
        root: SigningKey::from_bytes(&row.root_secret)
            .verifying_key()
            .to_bytes(),
        signing: signing.key.clone(),
        member,
        statement: admission.statement.clone(),
        valid_from_ms: now_ms.max(admission.valid_from_ms),
        valid_until_ms: admission.valid_until_ms,
        signature: [0; 64],
    };
    a.signature = SigningKey::from_bytes(&signing.secret)
        .sign(&a.signed())
        .to_bytes();
    Ok(a)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    /// The enrolment hash, against `test-vectors/relationships-v1.json`
    /// (written by an independent script from directory-v1.md §2).
    #[test]
    fn the_enrolment_hash_is_the_specs() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../test-vectors/relationships-v1.json");
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let e = &v["directory"]["enrolment"];
        let hex = |k: &str| kith_wire::relay::from_hex_vec(e[k].as_str().unwrap()).unwrap();
        let secret: [u8; 32] = hex("secret").try_into().unwrap();
        assert_eq!(enrolment_hash(&secret).to_vec(), hex("hash"));
    }
}
