#![no_main]
//! `padding::unpad` (every relay message a client reads) never panics, and
//! what it accepts pads back to the same bytes when that bucket is the
//! smallest that fits (a sender may pad more than it must).

use kith_crypto::padding::{pad, unpad};
use kith_wire::relay::SIZE_BUCKETS;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = unpad(data) {
        if let Ok(padded) = pad(payload, &SIZE_BUCKETS) {
            if padded.len() == data.len() {
                assert_eq!(padded, data);
            }
        }
    }
});
