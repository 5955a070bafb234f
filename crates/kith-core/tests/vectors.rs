//! Known-answer vectors for relationships (`test-vectors/relationships-v1.json`,
//! generated from the specs by `test-vectors/relationships-v1.py`): frame
//! encodings, recognition tags and safety numbers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use kith_wire::Codec;
use kith_wire::conv::PairFrame;
use serde_json::Value;

fn unhex(s: &str) -> Vec<u8> {
    kith_wire::relay::from_hex_vec(s).unwrap()
}

fn vectors() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-vectors/relationships-v1.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn frames_decode_and_encode_to_the_same_bytes() {
    let v = vectors();
    let frames = v["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 10);
    for f in frames {
        let bytes = unhex(f["hex"].as_str().unwrap());
        let frame = PairFrame::from_bytes(&bytes).unwrap_or_else(|e| panic!("{}: {e}", f["name"]));
        assert!(matches!(
            frame,
            PairFrame::Move(_)
                | PairFrame::Introduction(_)
                | PairFrame::Content(_)
                | PairFrame::Capabilities { .. }
        ));
        assert_eq!(frame.to_bytes(), bytes, "{}", f["name"]);
    }
}

#[test]
fn recognition_tags_match() {
    for t in vectors()["recognition_tags"].as_array().unwrap() {
        let secret: [u8; 32] = unhex(t["secret"].as_str().unwrap()).try_into().unwrap();
        let id: [u8; 16] = unhex(t["intro_id"].as_str().unwrap()).try_into().unwrap();
        let tag = kith_core::recognition_tag(&secret, &id).unwrap();
        assert_eq!(tag.to_vec(), unhex(t["tag"].as_str().unwrap()));
    }
}

#[test]
fn safety_numbers_match_and_do_not_depend_on_order() {
    for s in vectors()["safety_numbers"].as_array().unwrap() {
        let (a, b) = (
            unhex(s["a"].as_str().unwrap()),
            unhex(s["b"].as_str().unwrap()),
        );
        let want = s["safety_number"].as_str().unwrap();
        assert_eq!(kith_core::safety_number(&a, &b), want);
        assert_eq!(kith_core::safety_number(&b, &a), want);
    }
}
