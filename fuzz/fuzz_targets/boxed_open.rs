#![no_main]
//! Opening a sealed box (a contact request as it arrives on an address)
//! never panics, whatever the bytes.

use kith_crypto::boxed::BoxKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = BoxKey::from_bytes([7; 32]);
    let _ = key.open(b"kith contact request v1", data);
});
