#![no_main]
//! Decoding ContentV1 never panics, and whatever it accepts re-encodes to
//! exactly the input (one encoding per value).

use kith_content::Content;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = Content::from_cbor(data) {
        assert_eq!(value.to_cbor(), data);
    }
});
