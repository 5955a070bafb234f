//! Verifying a directory's attestation offline (`docs/spec/directory-v1.md`
//! §2): the root key signed the signing key, the signing key signed the
//! attestation, and both were valid when it was made. Nothing here asks
//! the directory; revocation is by expiry.

use ed25519_dalek::{Signature, VerifyingKey};
use kith_wire::dir::{Attestation, DirectoryKey};

/// What an attestation that verifies says about now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Valid now.
    Valid,
    /// Past its `valid_until_ms`.
    Expired,
    /// Before its `valid_from_ms`.
    NotYetValid,
}

/// Why an attestation does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttestationError {
    #[error("the directory's root key did not sign its signing key")]
    SigningKey,
    #[error("the directory's signing key did not sign this attestation")]
    Signature,
    #[error("the attestation was made outside its signing key's validity")]
    OutsideKeyValidity,
    #[error("the attestation is for another directory root than the one pinned")]
    OtherRoot,
}

fn verify(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    VerifyingKey::from_bytes(key).is_ok_and(|k| {
        !k.is_weak()
            && k.verify_strict(message, &Signature::from_bytes(signature))
                .is_ok()
    })
}

/// Checks `a`'s signatures (and, with `pinned`, that it is that root's),
/// then says where `now` stands in its validity.
pub fn check(
    a: &Attestation,
    pinned: Option<&[u8; 32]>,
    now_ms: u64,
) -> Result<Standing, AttestationError> {
    if pinned.is_some_and(|root| *root != a.root) {
        return Err(AttestationError::OtherRoot);
    }
    let s = &a.signing;
    let key_message = DirectoryKey::signed(&a.directory, &s.key, s.valid_from_ms, s.valid_until_ms);
    if !verify(&a.root, &key_message, &s.root_signature) {
        return Err(AttestationError::SigningKey);
    }
    if !verify(&s.key, &a.signed(), &a.signature) {
        return Err(AttestationError::Signature);
    }
    // Issued while the signing key was valid: a key past its time signs
    // nothing new that counts.
    if a.valid_from_ms < s.valid_from_ms || a.valid_from_ms > s.valid_until_ms {
        return Err(AttestationError::OutsideKeyValidity);
    }
    Ok(if now_ms < a.valid_from_ms {
        Standing::NotYetValid
    } else if now_ms > a.valid_until_ms {
        Standing::Expired
    } else {
        Standing::Valid
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn issue(root: &SigningKey, signing: &SigningKey, member: [u8; 32]) -> Attestation {
        let key = signing.verifying_key().to_bytes();
        let (from, until) = (1_000, 10_000);
        let root_signature = root
            .sign(&DirectoryKey::signed("school", &key, from, until))
            .to_bytes();
        let mut a = Attestation {
            directory: "school".into(),
            root: root.verifying_key().to_bytes(),
            signing: DirectoryKey {
                key,
                valid_from_ms: from,
                valid_until_ms: until,
                root_signature,
            },
            member,
            statement: "current student".into(),
            valid_from_ms: 2_000,
            valid_until_ms: 5_000,
            signature: [0; 64],
        };
        a.signature = signing.sign(&a.signed()).to_bytes();
        a
    }

    #[test]
    fn a_good_attestation_expires_and_a_changed_one_fails() {
        let (root, signing) = (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
        );
        let a = issue(&root, &signing, [9; 32]);
        let pinned = root.verifying_key().to_bytes();
        assert_eq!(check(&a, Some(&pinned), 1_500), Ok(Standing::NotYetValid));
        assert_eq!(check(&a, Some(&pinned), 3_000), Ok(Standing::Valid));
        assert_eq!(check(&a, None, 6_000), Ok(Standing::Expired));
        assert_eq!(
            check(&a, Some(&[7; 32]), 3_000),
            Err(AttestationError::OtherRoot)
        );

        let mut statement = a.clone();
        statement.statement = "alumnus".into();
        assert_eq!(
            check(&statement, None, 3_000),
            Err(AttestationError::Signature)
        );
        let mut member = a.clone();
        member.member = [8; 32];
        assert_eq!(
            check(&member, None, 3_000),
            Err(AttestationError::Signature)
        );
        let mut longer = a.clone();
        longer.signing.valid_until_ms = 99_999;
        assert_eq!(
            check(&longer, None, 3_000),
            Err(AttestationError::SigningKey)
        );
        // A signing key the root never signed.
        let rogue = issue(&SigningKey::from_bytes(&[3; 32]), &signing, [9; 32]);
        assert_eq!(
            check(&rogue, Some(&pinned), 3_000),
            Err(AttestationError::OtherRoot)
        );
    }
}
