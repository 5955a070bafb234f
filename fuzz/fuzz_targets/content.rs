#![no_main]
//! Decoding ContentV1 never panics, whatever it accepts re-encodes to
//! exactly the input (one encoding per value), and reading what a message
//! is for (receipts, timers, payments, calls: their own small decoders)
//! never panics either.

use kith_content::Content;
use kith_content::kind::{CallSignal, Kind};
use kith_content::payto::PaytoUri;
use kith_content::show::show;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = Content::from_cbor(data) {
        assert_eq!(value.to_cbor(), data);
        let _ = Kind::of(&value);
        let _ = show(&value);
    }
    if let Some(signal) = CallSignal::from_bytes(data) {
        assert_eq!(signal.to_bytes(), data);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(uri) = PaytoUri::parse(text)
    {
        // What kith writes, it reads back the same.
        assert_eq!(PaytoUri::parse(&uri.uri()), Ok(uri));
    }
});
