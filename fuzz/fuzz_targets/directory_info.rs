#![no_main]
//! Decoding `DirectoryInfo` never panics, and whatever it accepts
//! re-encodes to exactly the input (one encoding per value).

use kith_wire::Codec;
use kith_wire::dir::DirectoryInfo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = DirectoryInfo::from_bytes(data) {
        assert_eq!(value.to_bytes(), data);
    }
});
