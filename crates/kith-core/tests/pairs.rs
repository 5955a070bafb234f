//! PairV1 and the engine's handling of what arrives, through in-process
//! engines: each test is one promise of `docs/spec/pair-v1.md`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{World, meet, profile_db, texts};
use kith_crypto::mls::{GroupSnapshot, IdentityKey, Session, key_package};
use kith_wire::Codec;
use kith_wire::conv::Envelope;
use kith_wire::relay::{SIZE_BUCKETS, WriteId};

/// Blair's state for the conversation, and her channel key on it, read
/// from her profile as a modified client would.
fn blairs_session(world: &World, conv: &str) -> (Session, String, [u8; 32], [u8; 32]) {
    let db = profile_db(world, "Blair");
    let (identity, state): (Vec<u8>, Vec<u8>) = db
        .query_row(
            "SELECT identity, mls_state FROM conversations WHERE id = ?1",
            [conv],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let (url, key, write_id): (String, Vec<u8>, Vec<u8>) = db
        .query_row(
            "SELECT relay_url, key, write_id FROM channels WHERE conversation_id = ?1",
            [conv],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let session = Session::load(
        &IdentityKey::from_bytes(&identity).unwrap(),
        GroupSnapshot::from_bytes(&state).unwrap(),
    )
    .unwrap();
    (
        session,
        url,
        key.try_into().unwrap(),
        write_id.try_into().unwrap(),
    )
}

async fn append(url: &str, key: [u8; 32], write_id: [u8; 32], mls: Vec<u8>) {
    let payload = kith_crypto::padding::pad(&Envelope::Mls(mls).to_bytes(), &SIZE_BUCKETS).unwrap();
    kith_relay_client::RelayClient::new(url)
        .unwrap()
        .append(
            &ed25519_dalek::SigningKey::from_bytes(&key),
            WriteId(write_id),
            &payload,
        )
        .await
        .unwrap();
}

/// A 1:1 conversation has exactly two members: a modified client's commit
/// adding a third, and its proposal, are refused and recorded; the
/// conversation goes on between the two (finding 4).
#[tokio::test]
async fn a_one_to_one_conversation_never_gains_a_member() {
    let world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut blair = world.guest("Blair").await;
    let (ab, ba) = meet(&mut alex, &mut blair).await;

    let (mut session, url, key, write_id) = blairs_session(&world, &ba);
    let ghost = IdentityKey::generate().unwrap();
    let (ghost_kp, _) = key_package(&ghost).unwrap();
    let commit = session.commit(&[&ghost_kp], &[]).unwrap().commit;
    append(&url, key, write_id, commit).await;
    let (mut session, ..) = blairs_session(&world, &ba);
    append(&url, key, write_id, session.propose_leave().unwrap()).await;

    let report = alex.sync().await.unwrap();
    assert_eq!(report.integrity_events.len(), 2, "{report:?}");
    assert!(report.integrity_events[0].detail.contains("exactly two"));
    let info = alex.info(&ab).unwrap();
    assert_eq!(info.member_identities.len(), 1, "still one other member");
    assert!(info.safety_number.is_some());

    blair.send(&ba, "still two of us").await.unwrap();
    alex.sync().await.unwrap();
    assert_eq!(
        texts(&mut alex, &ab),
        [("Blair".to_string(), "still two of us".to_string())]
    );
}

/// A local failure while opening a message (here: the stored MLS state
/// cannot be read) is not the peer's fault: nothing is recorded as an
/// integrity event, nothing is acknowledged, and once the store is
/// readable again the message arrives (finding 6).
#[tokio::test]
async fn a_local_failure_loses_no_message() {
    let world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut blair = world.guest("Blair").await;
    let (ab, ba) = meet(&mut alex, &mut blair).await;
    blair.send(&ba, "do not lose me").await.unwrap();

    let db = profile_db(&world, "Alex");
    let state: Vec<u8> = db
        .query_row(
            "SELECT mls_state FROM conversations WHERE id = ?1",
            [&ab],
            |r| r.get(0),
        )
        .unwrap();
    db.execute(
        "UPDATE conversations SET mls_state = x'00' WHERE id = ?1",
        [&ab],
    )
    .unwrap();
    let report = alex.sync().await.unwrap();
    assert!(report.messages.is_empty());
    assert!(report.integrity_events.is_empty(), "{report:?}");
    assert_eq!(report.errors.len(), 1, "{report:?}");
    assert!(alex.integrity_events(&ab).unwrap().is_empty());
    let cursor: i64 = db
        .query_row(
            "SELECT MAX(cursor) FROM channels WHERE conversation_id = ?1",
            [&ab],
            |r| r.get(0),
        )
        .unwrap();

    db.execute(
        "UPDATE conversations SET mls_state = ?2 WHERE id = ?1",
        rusqlite::params![ab, state],
    )
    .unwrap();
    let report = alex.sync().await.unwrap();
    assert_eq!(report.messages.len(), 1, "{report:?}");
    assert_eq!(report.messages[0].text, "do not lose me");
    let after: i64 = db
        .query_row(
            "SELECT MAX(cursor) FROM channels WHERE conversation_id = ?1",
            [&ab],
            |r| r.get(0),
        )
        .unwrap();
    assert!(after > cursor, "the message was read again");
}

/// Content of a kind this version does not know is shown as the plain text
/// its sender attached, never refused; a critical one is marked as needing
/// a newer kith (pair-v1.md §4.1).
#[tokio::test]
async fn unknown_content_is_shown_as_its_fallback() {
    let world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut blair = world.guest("Blair").await;
    let (ab, ba) = meet(&mut alex, &mut blair).await;
    let (mut session, url, key, write_id) = blairs_session(&world, &ba);
    for (n, critical) in [(1u8, false), (2u8, true)] {
        let frame = kith_wire::conv::PairFrame::Content(kith_wire::conv::Content {
            message_id: [n; 16],
            sent_at_ms: 1_795_000_000_000 + u64::from(n),
            content_type: 0x7001,
            critical,
            fallback: format!("fallback {n}"),
            body: vec![n; 100],
        });
        let ct = session.encrypt(&frame.to_bytes()).unwrap();
        append(&url, key, write_id, ct).await;
    }
    let report = alex.sync().await.unwrap();
    assert!(report.integrity_events.is_empty(), "{report:?}");
    let shown: Vec<(String, bool)> = alex
        .read(&ab)
        .unwrap()
        .into_iter()
        .map(|m| (m.text, m.needs_newer))
        .collect();
    assert_eq!(
        shown,
        [
            ("fallback 1".to_string(), false),
            ("fallback 2".to_string(), true)
        ]
    );
}

/// ContentV1 (content-v1.md): a part this version shows is shown (markdown
/// as plain text); a message with no part it shows falls back to the
/// frame's fallback, marked only when critical; a body that is not the one
/// deterministic encoding is refused as an integrity event.
#[tokio::test]
async fn content_v1_is_shown_its_fallback_used_and_bad_bytes_refused() {
    use kith_content::{CONTENT_V1, Content, Disposition, Extensions, Part, PartBody};
    let world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut blair = world.guest("Blair").await;
    let (ab, ba) = meet(&mut alex, &mut blair).await;
    let (mut session, url, key, write_id) = blairs_session(&world, &ba);
    let single = |content_type: &str, content: &[u8]| Content {
        salt: [9; 16],
        replaces: None,
        topic_id: Vec::new(),
        expires: None,
        in_reply_to: None,
        extensions: Extensions::default(),
        part: Part {
            disposition: Disposition::RENDER,
            language: String::new(),
            body: PartBody::Single {
                content_type: content_type.into(),
                content: content.to_vec(),
            },
        },
    };
    let markdown = single("text/markdown", b"**bold** move").to_cbor();
    let picture = single("image/png", &[0x89, b'P', b'N', b'G']).to_cbor();
    // The markdown message with its first byte's array header written in
    // a longer form: same value, not the deterministic encoding.
    let mut long_form = vec![0x98, 0x07];
    long_form.extend_from_slice(&markdown[1..]);
    for (n, body, fallback) in [
        (1u8, markdown, "bold move"),
        (2, picture, "a picture"),
        (3, long_form, "never shown"),
    ] {
        let frame = kith_wire::conv::PairFrame::Content(kith_wire::conv::Content {
            message_id: [n; 16],
            sent_at_ms: 1_795_000_000_000 + u64::from(n),
            content_type: CONTENT_V1,
            critical: false,
            fallback: fallback.into(),
            body,
        });
        let ct = session.encrypt(&frame.to_bytes()).unwrap();
        append(&url, key, write_id, ct).await;
    }
    let report = alex.sync().await.unwrap();
    assert_eq!(report.integrity_events.len(), 1, "{report:?}");
    assert!(
        report.integrity_events[0].detail.contains("deterministic"),
        "{report:?}"
    );
    let shown: Vec<(String, bool)> = alex
        .read(&ab)
        .unwrap()
        .into_iter()
        .map(|m| (m.text, m.needs_newer))
        .collect();
    assert_eq!(
        shown,
        [
            ("bold move".to_string(), false),
            ("a picture".to_string(), false)
        ]
    );
}

/// An edit or delete of someone else's message (content-v1.md §7.7) is
/// refused by the receiver as an integrity event, and changes nothing,
/// even from a client that does not check before sending.
#[tokio::test]
async fn a_change_to_someone_elses_message_is_refused() {
    use kith_content::{CONTENT_V1, Content, MessageId};
    let world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut blair = world.guest("Blair").await;
    let (ab, ba) = meet(&mut alex, &mut blair).await;
    alex.send(&ab, "mine").await.unwrap();
    let target: Vec<u8> = profile_db(&world, "Alex")
        .query_row(
            "SELECT content_id FROM messages WHERE conversation_id = ?1",
            [&ab],
            |r| r.get(0),
        )
        .unwrap();
    let (mut session, url, key, write_id) = blairs_session(&world, &ba);
    for (n, text) in [(1u8, Some("changed by Blair")), (2, None)] {
        let mut content = Content::of_text([n; 16], text.unwrap_or("x"));
        content.replaces = Some(MessageId(target.clone().try_into().unwrap()));
        if text.is_none() {
            content.part.body = kith_content::PartBody::Null;
        }
        let frame = kith_wire::conv::PairFrame::Content(kith_wire::conv::Content {
            message_id: [n; 16],
            sent_at_ms: 1_795_000_000_000 + u64::from(n),
            content_type: CONTENT_V1,
            critical: true,
            fallback: "changed".into(),
            body: content.to_cbor(),
        });
        let ct = session.encrypt(&frame.to_bytes()).unwrap();
        append(&url, key, write_id, ct).await;
    }
    let report = alex.sync().await.unwrap();
    assert_eq!(report.integrity_events.len(), 2, "{report:?}");
    let read = alex.read(&ab).unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].text, "mine");
    assert!(!read[0].edited && !read[0].deleted);
}

/// An edit that arrives before the message it changes (two relays have no
/// order between them) waits for it, and is applied when it comes.
#[tokio::test]
async fn an_edit_before_its_message_waits_for_it() {
    use kith_content::{CONTENT_V1, Content, MessageId};
    let world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut blair = world.guest("Blair").await;
    let (ab, ba) = meet(&mut alex, &mut blair).await;
    let blair_key: Vec<u8> = {
        let db = profile_db(&world, "Blair");
        let identity: Vec<u8> = db
            .query_row(
                "SELECT identity FROM conversations WHERE id = ?1",
                [&ba],
                |r| r.get(0),
            )
            .unwrap();
        kith_crypto::mls::IdentityKey::from_bytes(&identity)
            .unwrap()
            .public()
            .to_vec()
    };
    let (mut session, url, key, write_id) = blairs_session(&world, &ba);
    let original = [7u8; 16];
    let text = kith_wire::conv::PairFrame::Text {
        message_id: original,
        sent_at_ms: 1_795_000_000_000,
        text: "at 6".into(),
    };
    // Ids are computed over the conversation id as each side names it:
    // the same id on both sides (pair-v1.md §2).
    let target = Content::of_text(original, "at 6").id(&blair_key, ab.as_bytes());
    let mut edit = Content::of_text([8; 16], "at 7");
    edit.replaces = Some(MessageId(target.0));
    let edit = kith_wire::conv::PairFrame::Content(kith_wire::conv::Content {
        message_id: [8; 16],
        sent_at_ms: 1_795_000_000_001,
        content_type: CONTENT_V1,
        critical: true,
        fallback: "edited".into(),
        body: edit.to_cbor(),
    });
    let first = session.encrypt(&text.to_bytes()).unwrap();
    let second = session.encrypt(&edit.to_bytes()).unwrap();
    append(&url, key, write_id, second).await;
    append(&url, key, write_id, first).await;
    let report = alex.sync().await.unwrap();
    assert!(report.integrity_events.is_empty(), "{report:?}");
    let read = alex.read(&ab).unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].text, "at 7");
    assert!(read[0].edited);
}

/// One character of a link's secret changed, `at` positions from the end
/// (the secret is the base64url text after `#`).
fn mistyped(link: &str, at: usize) -> String {
    let mut chars: Vec<char> = link.chars().collect();
    let i = chars.len() - at;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[tokio::test]
async fn a_mistyped_link_uses_nothing_up() {
    let world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut blair = world.guest("Blair").await;
    let mut dani = world.guest("Dani").await;
    for group in [false, true] {
        let link = if group {
            alex.group_create("Crew", None).await.unwrap();
            alex.group_invite("Crew").await.unwrap().link
        } else {
            alex.invite(None, None).await.unwrap().link
        };
        // A typo in the secret: refused, and said so; the invitation stays.
        let e = dani.accept(&mistyped(&link, 5), None).await.unwrap_err();
        assert!(e.to_string().contains("does not fit"), "{e}");
        // The link without its secret is not a link.
        let bare = link.split('#').next().unwrap();
        assert!(dani.accept(bare, None).await.is_err());
        // The right link still works, once.
        let who = if group { &mut blair } else { &mut dani };
        who.accept(&link, None).await.unwrap();
        let e = blair.accept(&link, None).await.unwrap_err();
        assert!(e.to_string().contains("already used"), "{e}");
    }
}
