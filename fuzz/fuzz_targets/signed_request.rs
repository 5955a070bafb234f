#![no_main]
//! Decoding `SignedRequest` never panics, and whatever it accepts
//! re-encodes to exactly the input (one encoding per value).

use kith_wire::Codec;
use kith_wire::relay::request::SignedRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = SignedRequest::from_bytes(data) {
        assert_eq!(value.to_bytes(), data);
    }
    // The relay's entry point: split off the signature, keep the signed bytes.
    if let Ok((body, signed, _)) = SignedRequest::split(data) {
        assert_eq!(body.to_bytes(), signed);
    }
});
