//! Sealing with a one-time secret: what protects an invitation blob on the
//! inviter's relay. The secret travels only in the link's fragment; the
//! relay stores ciphertext under a blob id it cannot relate to the secret.
//!
//! ```text
//! key   = HKDF-SHA256(salt = "", ikm = secret, info = "kith seal v1" || 0x00 || context)
//! nonce = 12 random bytes
//! sealed = nonce || ChaCha20-Poly1305(key, nonce, aad = context, plaintext)
//! ```
//!
//! `context` names what is sealed (for instance `"kith invitation v1"`), so
//! a sealed value is valid in exactly one place (domain separation).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::CryptoError;
use crate::error::random;

const NONCE_LEN: usize = 12;

/// A 256-bit one-time secret.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SealKey([u8; 32]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey([redacted])")
    }
}

impl SealKey {
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(random()?))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A 32-byte secret for `context`, independent of every other context's:
    /// `HKDF-SHA256(salt = "", ikm = secret, info = "kith seal v1" || 0x00 || context)`.
    /// The sealing key is one; the seed of the key that claims a read-once
    /// blob (`"kith invitation claim v1"`) is another.
    pub fn derive(&self, context: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let mut info = Vec::with_capacity(13 + context.len());
        info.extend_from_slice(b"kith seal v1\0");
        info.extend_from_slice(context);
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(None, &self.0)
            .expand(&info, key.as_mut())
            .map_err(|_| CryptoError::Invalid("HKDF output length"))?;
        Ok(key)
    }

    fn cipher(&self, context: &[u8]) -> Result<ChaCha20Poly1305, CryptoError> {
        let key = self.derive(context)?;
        Ok(ChaCha20Poly1305::new(Key::from_slice(key.as_ref())))
    }

    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce: [u8; NONCE_LEN] = random()?;
        let ciphertext = self
            .cipher(context)?
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| CryptoError::Invalid("plaintext too long"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (nonce, ciphertext) = sealed
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(CryptoError::Unseal)?;
        self.cipher(context)?
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Unseal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_in_one_context_only() {
        let key = SealKey::generate().unwrap();
        let sealed = key.seal(b"kith invitation v1", b"hello").unwrap();
        assert_eq!(
            key.open(b"kith invitation v1", &sealed).unwrap().as_slice(),
            b"hello"
        );
        assert!(matches!(
            key.open(b"other", &sealed),
            Err(CryptoError::Unseal)
        ));
        let other = SealKey::generate().unwrap();
        assert!(matches!(
            other.open(b"kith invitation v1", &sealed),
            Err(CryptoError::Unseal)
        ));
        let mut altered = sealed.clone();
        altered[20] ^= 1;
        assert!(matches!(
            key.open(b"kith invitation v1", &altered),
            Err(CryptoError::Unseal)
        ));
        assert!(matches!(
            key.open(b"kith invitation v1", &sealed[..5]),
            Err(CryptoError::Unseal)
        ));
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(
            format!("{:?}", SealKey::from_bytes([9; 32])),
            "SealKey([redacted])"
        );
    }
}
