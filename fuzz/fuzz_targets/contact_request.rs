#![no_main]
//! Decoding `ContactRequest` never panics, and whatever it accepts
//! re-encodes to exactly the input (one encoding per value).

use kith_wire::Codec;
use kith_wire::conv::ContactRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = ContactRequest::from_bytes(data) {
        assert_eq!(value.to_bytes(), data);
    }
});
