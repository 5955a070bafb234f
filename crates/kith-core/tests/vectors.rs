//! Known-answer vectors for relationships (`test-vectors/relationships-v1.json`,
//! generated from the specs by `test-vectors/relationships-v1.py`): frame
//! encodings, recognition tags, safety numbers, contact requests, link
//! statements and address links.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use kith_wire::Codec;
use kith_wire::conv::{ContactRequest, Envelope, LinkProof, PairFrame};
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
    assert_eq!(frames.len(), 11);
    for f in frames {
        let bytes = unhex(f["hex"].as_str().unwrap());
        let frame = PairFrame::from_bytes(&bytes).unwrap_or_else(|e| panic!("{}: {e}", f["name"]));
        assert!(matches!(
            frame,
            PairFrame::Move(_)
                | PairFrame::Introduction(_)
                | PairFrame::Content(_)
                | PairFrame::Capabilities { .. }
                | PairFrame::Link(_)
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

#[test]
fn contact_requests_and_their_envelope_decode_and_encode_to_the_same_bytes() {
    let v = vectors();
    for r in v["contact_requests"].as_array().unwrap() {
        let bytes = unhex(r["hex"].as_str().unwrap());
        let request = ContactRequest::from_bytes(&bytes).unwrap();
        assert_eq!(request.display_name, "Blair");
        assert_eq!(request.note, "about the bike");
        assert_eq!(request.to_bytes(), bytes);
    }
    for e in v["envelopes"].as_array().unwrap() {
        let bytes = unhex(e["hex"].as_str().unwrap());
        let envelope = Envelope::from_bytes(&bytes).unwrap();
        assert!(matches!(envelope, Envelope::ContactRequest(_)));
        assert_eq!(envelope.to_bytes(), bytes);
    }
}

#[test]
fn link_statements_match() {
    for l in vectors()["link_statements"].as_array().unwrap() {
        let a: [u8; 32] = unhex(l["key_a"].as_str().unwrap()).try_into().unwrap();
        let b: [u8; 32] = unhex(l["key_b"].as_str().unwrap()).try_into().unwrap();
        let at = l["made_at_ms"].as_u64().unwrap();
        assert_eq!(
            LinkProof::statement(&a, &b, at),
            unhex(l["statement"].as_str().unwrap())
        );
    }
}

#[test]
fn address_links_parse_and_derive_their_guest_key() {
    for a in vectors()["address_links"].as_array().unwrap() {
        let link = kith_core::AddressLink::parse(a["link"].as_str().unwrap()).unwrap();
        assert_eq!(link.relay_url, a["relay_url"].as_str().unwrap());
        assert_eq!(
            link.write_id.0.to_vec(),
            unhex(a["write_id"].as_str().unwrap())
        );
        assert_eq!(
            link.secret.as_bytes().to_vec(),
            unhex(a["secret"].as_str().unwrap())
        );
        assert_eq!(
            link.box_public.to_vec(),
            unhex(a["box_public"].as_str().unwrap())
        );
        assert_eq!(
            link.guest_key().unwrap().to_bytes().to_vec(),
            unhex(a["guest_seed"].as_str().unwrap())
        );
        assert_eq!(link.kith(), a["link"].as_str().unwrap());
    }
}
