//! Known-answer vectors for relationships (`test-vectors/relationships-v1.json`,
//! generated from the specs by `test-vectors/relationships-v1.py`): frame
//! encodings, recognition tags, safety numbers, contact requests, link
//! statements, address links, and directories' encodings and signed
//! messages.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use kith_wire::Codec;
use kith_wire::conv::{ContactRequest, Envelope, LinkProof, PairFrame};
use kith_wire::dir::{Attestation, DirectoryInfo, DirectoryKey, DirectoryOp, SearchResults};
use kith_wire::relay::request::Operation;
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
    assert_eq!(frames.len(), 12);
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
                | PairFrame::Attestation(_)
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

#[test]
fn directory_encodings_and_signed_messages_match() {
    let v = &vectors()["directory"];
    let hex = |x: &Value| unhex(x.as_str().unwrap());
    let k = &v["key_message"];
    let key: [u8; 32] = hex(&k["key"]).try_into().unwrap();
    assert_eq!(
        DirectoryKey::signed(
            k["name"].as_str().unwrap(),
            &key,
            k["valid_from_ms"].as_u64().unwrap(),
            k["valid_until_ms"].as_u64().unwrap()
        ),
        hex(&k["message"])
    );
    let bytes = hex(&v["attestation"]["hex"]);
    let a = Attestation::from_bytes(&bytes).unwrap();
    assert_eq!(a.to_bytes(), bytes);
    assert_eq!(a.signed(), hex(&v["attestation"]["signed"]));
    assert_eq!(
        (a.directory.as_str(), a.statement.as_str()),
        ("school", "current student")
    );
    let ops: Vec<&str> = v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let bytes = hex(&r["hex"]);
            let Operation::Directory(d) = Operation::from_bytes(&bytes).unwrap() else {
                panic!("{}: not a directory operation", r["name"]);
            };
            assert_eq!(Operation::Directory(d.clone()).to_bytes(), bytes);
            assert_eq!(d.directory, "school");
            match d.op {
                DirectoryOp::Enrol { .. } => "enrol",
                DirectoryOp::Publish(e) => {
                    assert_eq!(e.display_name, "Emery Stone");
                    "publish"
                }
                DirectoryOp::Unpublish => "unpublish",
                DirectoryOp::Search { query } => {
                    assert_eq!(query, "eme chess");
                    "search"
                }
                DirectoryOp::Leave => "leave",
            }
        })
        .collect();
    assert_eq!(ops, ["enrol", "publish", "unpublish", "search", "leave"]);
    let bytes = hex(&v["info"]["hex"]);
    let info = DirectoryInfo::from_bytes(&bytes).unwrap();
    assert_eq!(info.to_bytes(), bytes);
    assert_eq!(info.signed(), hex(&v["info"]["signed"]));
    assert!(info.members_only && info.keys.len() == 1 && info.revoked.len() == 2);
    let bytes = hex(&v["search_results"]["hex"]);
    let results = SearchResults::from_bytes(&bytes).unwrap();
    assert_eq!(results.to_bytes(), bytes);
    assert_eq!(results.items[1].text, "");
}
