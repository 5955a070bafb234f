//! Identifiers and digests: conversation ids, safety numbers, `seen`
//! digests, randomness.

use kith_wire::relay::{WriteId, to_hex};
use sha2::{Digest, Sha256};

use crate::error::{CoreError, Result};

pub(crate) fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| CoreError::Randomness(e.to_string()))?;
    Ok(b)
}

/// The safety number of a 1:1 conversation (pair-v1.md §10): the same for
/// both members, from their two identity keys.
pub fn safety_number(a: &[u8], b: &[u8]) -> String {
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    let digest = Sha256::new()
        .chain_update(b"kith safety number v1\0")
        .chain_update(first)
        .chain_update(second)
        .finalize();
    digest
        .get(..15)
        .unwrap_or_default()
        .chunks(3)
        .map(|c| {
            let n = c.iter().fold(0u32, |n, b| n << 8 | u32::from(*b));
            format!("{:07}", n % 10_000_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `conversation_id` (pair-v1.md §2): from the first channel's write id,
/// which both sides know from the invitation.
pub fn conversation_id(first_write_id: &WriteId) -> String {
    let mut h = Sha256::new();
    h.update(b"kith conversation id v1\0");
    h.update(first_write_id.0);
    to_hex(h.finalize().get(..16).unwrap_or_default())
}

pub(crate) fn digest(payload: &[u8]) -> Vec<u8> {
    Sha256::digest(payload).to_vec()
}
