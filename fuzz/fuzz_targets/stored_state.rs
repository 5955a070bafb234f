#![no_main]
//! The decoders of what kith-core stores (group snapshots, identity keys,
//! pending key packages) never panic on damaged bytes, and re-encode what
//! they accept to the same bytes.

use kith_crypto::mls::{GroupSnapshot, IdentityKey, PendingKeyPackage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = GroupSnapshot::from_bytes(data) {
        assert_eq!(s.to_bytes().as_slice(), data);
    }
    if let Ok(k) = IdentityKey::from_bytes(data) {
        assert_eq!(k.to_bytes().as_slice(), data);
    }
    if let Ok(p) = PendingKeyPackage::from_bytes(data) {
        assert_eq!(p.to_bytes().as_slice(), data);
    }
});
