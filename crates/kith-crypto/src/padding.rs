//! Padding to the relay's size buckets (`docs/spec/relay.md`, "Size
//! buckets"): a relay sees only a handful of message sizes.
//!
//! ```text
//! struct { u32 length; opaque payload[length]; opaque zeros[bucket - 4 - length]; } Padded;
//! ```
//!
//! The padding is outside the MLS ciphertext, so it is checked strictly on
//! the way in: non-zero padding or a length past the end is an error, which
//! keeps one encoding per payload.

use crate::CryptoError;

/// The smallest bucket that holds `payload` with its length prefix.
pub fn pad(payload: &[u8], buckets: &[u32]) -> Result<Vec<u8>, CryptoError> {
    let needed = payload.len().saturating_add(4);
    let max = buckets.iter().copied().max().unwrap_or(0) as usize;
    let bucket = buckets
        .iter()
        .map(|b| *b as usize)
        .filter(|b| *b >= needed)
        .min()
        .ok_or(CryptoError::TooLarge {
            len: payload.len(),
            max: max.saturating_sub(4),
        })?;
    let len = u32::try_from(payload.len()).map_err(|_| CryptoError::Padding("length"))?;
    let mut out = Vec::with_capacity(bucket);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out.resize(bucket, 0);
    Ok(out)
}

/// The payload inside `padded`; the bucket size itself is the relay's check.
pub fn unpad(padded: &[u8]) -> Result<&[u8], CryptoError> {
    let (len, rest) = padded
        .split_first_chunk::<4>()
        .ok_or(CryptoError::Padding("too short"))?;
    let len = u32::from_be_bytes(*len) as usize;
    if len > rest.len() {
        return Err(CryptoError::Padding("length past the end"));
    }
    let (payload, zeros) = rest.split_at(len);
    if zeros.iter().any(|b| *b != 0) {
        return Err(CryptoError::Padding("non-zero padding"));
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BUCKETS: [u32; 3] = [256, 1024, 4096];

    #[test]
    fn picks_the_smallest_bucket() {
        assert_eq!(pad(&[1; 252], &BUCKETS).unwrap().len(), 256);
        assert_eq!(pad(&[1; 253], &BUCKETS).unwrap().len(), 1024);
        assert!(matches!(
            pad(&[1; 4093], &BUCKETS),
            Err(CryptoError::TooLarge { .. })
        ));
    }

    #[test]
    fn refuses_altered_padding() {
        let mut padded = pad(b"hi", &BUCKETS).unwrap();
        *padded.last_mut().unwrap() = 1;
        assert!(unpad(&padded).is_err());
        let mut padded = pad(b"hi", &BUCKETS).unwrap();
        padded[..4].copy_from_slice(&300u32.to_be_bytes());
        assert!(unpad(&padded).is_err());
        assert!(unpad(&[0, 0]).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(payload in proptest::collection::vec(any::<u8>(), 0..4092)) {
            let padded = pad(&payload, &BUCKETS).unwrap();
            prop_assert!(BUCKETS.contains(&(padded.len() as u32)));
            prop_assert_eq!(unpad(&padded).unwrap(), &payload[..]);
        }
    }
}
