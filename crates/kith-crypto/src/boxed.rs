//! Sealing to a public key: what protects a contact request on an
//! address's channel (`docs/spec/address-v1.md` §3). Anyone holding the
//! address may seal; only its owner opens. The sender is anonymous: a
//! fresh X25519 key per message, nothing else of theirs.
//!
//! ```text
//! e      = fresh X25519 key
//! shared = X25519(e, recipient)            (all-zero: refused)
//! secret = HKDF-SHA256-Extract(salt = e_pub || recipient, ikm = shared)
//! boxed  = e_pub || SealKey(secret).seal(context, plaintext)
//! ```
//!
//! The sealing after the key agreement is [`crate::seal`]'s, so the
//! context separates domains here as it does there.

use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::CryptoError;
use crate::error::random;
use crate::seal::SealKey;

const PUBLIC_LEN: usize = 32;

/// An X25519 key pair that sealed messages are opened with.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct BoxKey([u8; 32]);

impl std::fmt::Debug for BoxKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BoxKey([redacted])")
    }
}

impl BoxKey {
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(random()?))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0)
    }

    /// The public half, given to whoever may seal to this key.
    pub fn public(&self) -> [u8; 32] {
        PublicKey::from(&StaticSecret::from(self.0)).to_bytes()
    }

    /// Opens what [`seal_to`] sealed to this key for `context`.
    pub fn open(&self, context: &[u8], boxed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (ephemeral, sealed) = boxed
            .split_first_chunk::<PUBLIC_LEN>()
            .ok_or(CryptoError::Invalid("sealed box too short"))?;
        let secret = StaticSecret::from(self.0);
        let shared = secret.diffie_hellman(&PublicKey::from(*ephemeral));
        derive(&shared, ephemeral, &self.public())?.open(context, sealed)
    }
}

/// Seals `plaintext` for `context` so that only the holder of the
/// [`BoxKey`] whose public half is `recipient` can open it.
pub fn seal_to(
    recipient: &[u8; 32],
    context: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let ephemeral = StaticSecret::from(random::<32>()?);
    let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
    let shared = ephemeral.diffie_hellman(&PublicKey::from(*recipient));
    let sealed = derive(&shared, &ephemeral_public, recipient)?.seal(context, plaintext)?;
    let mut out = Vec::with_capacity(PUBLIC_LEN + sealed.len());
    out.extend_from_slice(&ephemeral_public);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The sealing secret both sides reach; a shared secret of zeros (a
/// low-order public key) is refused, so a sender cannot make it known.
fn derive(
    shared: &x25519_dalek::SharedSecret,
    ephemeral: &[u8; 32],
    recipient: &[u8; 32],
) -> Result<SealKey, CryptoError> {
    if !shared.was_contributory() {
        return Err(CryptoError::Invalid("a low-order X25519 key"));
    }
    let mut salt = [0u8; 2 * PUBLIC_LEN];
    salt[..PUBLIC_LEN].copy_from_slice(ephemeral);
    salt[PUBLIC_LEN..].copy_from_slice(recipient);
    let (prk, _) = Hkdf::<Sha256>::extract(Some(&salt), shared.as_bytes());
    let mut secret = Zeroizing::new([0u8; 32]);
    secret.copy_from_slice(&prk);
    Ok(SealKey::from_bytes(*secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_recipient_opens_and_only_in_its_context() {
        let owner = BoxKey::generate().unwrap();
        let other = BoxKey::generate().unwrap();
        let boxed = seal_to(&owner.public(), b"ctx", b"hello").unwrap();
        assert_eq!(owner.open(b"ctx", &boxed).unwrap().as_slice(), b"hello");
        assert!(owner.open(b"other", &boxed).is_err());
        assert!(other.open(b"ctx", &boxed).is_err());
        let mut tampered = boxed.clone();
        tampered[40] ^= 1;
        assert!(owner.open(b"ctx", &tampered).is_err());
        assert!(owner.open(b"ctx", &boxed[..20]).is_err());
        // Two seals of one plaintext share nothing visible.
        let again = seal_to(&owner.public(), b"ctx", b"hello").unwrap();
        assert_ne!(boxed[..32], again[..32]);
    }

    #[test]
    fn a_low_order_key_is_refused() {
        assert!(seal_to(&[0; 32], b"ctx", b"x").is_err());
        let owner = BoxKey::generate().unwrap();
        let mut boxed = seal_to(&owner.public(), b"ctx", b"x").unwrap();
        boxed[..32].copy_from_slice(&[0; 32]);
        assert!(owner.open(b"ctx", &boxed).is_err());
        assert!(format!("{owner:?}").contains("redacted"));
    }
}
