//! ContentV1's kinds beyond text (content-v1.md §7.8–§7.12) and
//! capabilities (§8), through in-process engines on one relay and one
//! fake clock.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::{World, meet};
use kith_content::kind::{CallStep, Capabilities, PaymentState};
use kith_core::{Clock, Config, Engine};

/// A person whose kith shows plain text and nothing else: a kith from
/// before ContentV1, as far as anyone can tell.
async fn older_host(world: &World, name: &str) -> Engine {
    let config = Config {
        capabilities: Capabilities::plain_text(),
        ..world.config()
    };
    Engine::init(&world.home(name), name, Some(world.relay.url()), config)
        .await
        .unwrap()
}

/// Both sides sync until each knows what the other advertised.
async fn exchange(a: &mut Engine, b: &mut Engine) {
    for _ in 0..2 {
        a.sync().await.unwrap();
        b.sync().await.unwrap();
    }
}

/// Acceptance (issue 15): Alex's kith advertises plain text only; Blair
/// reacts, edits, asks for a payment and sends an application's part.
/// Alex reads each as a plain message that says what it is, none marked
/// as needing a newer kith, and no integrity event.
#[tokio::test]
async fn a_plain_text_kith_reads_every_kind_as_its_fallback() {
    let world = World::new().await;
    let mut alex = older_host(&world, "Alex").await;
    let mut blair = world.guest("Blair").await;
    let (ab, ba) = meet(&mut alex, &mut blair).await;
    exchange(&mut alex, &mut blair).await;
    let hello = alex.send(&ab, "lunch at noon?").await.unwrap();
    blair.sync().await.unwrap();
    let mine = blair.send(&ba, "see you there").await.unwrap();
    blair.react(&ba, &hello.id, Some("👍")).await.unwrap();
    blair.edit(&ba, &mine.id, "see you at 12:15").await.unwrap();
    blair
        .request_payment(
            &ba,
            "iban/DE75512108001245126199",
            Some("EUR:12.50"),
            Some("lunch"),
        )
        .await
        .unwrap();
    blair
        .send_app(
            &ba,
            "application/vnd.example.chess",
            b"e2e4",
            "Blair moved a pawn to e4 (chess)",
        )
        .await
        .unwrap();
    let report = alex.sync().await.unwrap();
    assert!(report.integrity_events.is_empty(), "{report:?}");
    let got: Vec<(String, bool)> = alex
        .read(&ab)
        .unwrap()
        .into_iter()
        .filter(|m| !m.outgoing)
        .map(|m| (m.text, m.needs_newer))
        .collect();
    let texts: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        texts,
        [
            "see you there",
            "reacted 👍 to “lunch at noon?”",
            "edited “see you there” to: see you at 12:15",
            "a payment request: 12.50 EUR to iban/DE75512108001245126199 “lunch” \
             (payto://iban/DE75512108001245126199?amount=EUR:12.50&message=lunch)",
            "Blair moved a pawn to e4 (chess)",
        ]
    );
    assert!(got.iter().all(|(_, newer)| !newer), "{got:?}");
    assert!(alex.integrity_events(&ab).unwrap().is_empty());
}

/// The same kinds to a kith that knows them: the reaction sits on its
/// message, the edit replaces the text, the payment has its state and is
/// answered, the application's part comes with its bytes.
#[tokio::test]
async fn a_current_kith_gets_each_kind_as_itself() {
    let world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut blair = world.guest("Blair").await;
    let (ab, ba) = meet(&mut alex, &mut blair).await;
    exchange(&mut alex, &mut blair).await;
    let mine = blair.send(&ba, "see you there").await.unwrap();
    blair.edit(&ba, &mine.id, "see you at 12:15").await.unwrap();
    blair.react(&ba, &mine.id, Some("🎉")).await.unwrap();
    let request = blair
        .request_payment(
            &ba,
            "payto://iban/DE75512108001245126199",
            Some("EUR:12.50"),
            Some("lunch"),
        )
        .await
        .unwrap();
    blair
        .send_app(
            &ba,
            "application/vnd.example.chess",
            b"e2e4",
            "a chess move",
        )
        .await
        .unwrap();
    alex.sync().await.unwrap();
    let got = alex.read(&ab).unwrap();
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_eq!(got[0].text, "see you at 12:15");
    assert!(got[0].edited);
    assert_eq!(got[0].reactions[0].reaction, "🎉");
    let payment = got[1]
        .payment
        .clone()
        .unwrap_or_else(|| panic!("{:#?}", got[1]));
    assert_eq!(payment.state, "requested");
    assert_eq!(
        payment.uri,
        "payto://iban/DE75512108001245126199?amount=EUR:12.50&message=lunch"
    );
    assert_eq!(got[2].app.as_ref().unwrap().data, hex::encode("e2e4"));
    assert_eq!(got[2].text, "a chess move");

    alex.answer_payment(&ab, &got[1].id, PaymentState::Paid, Some("TX 4411"))
        .await
        .unwrap();
    assert_eq!(alex.payment(&ab, &got[1].id).unwrap().state, "paid");
    blair.sync().await.unwrap();
    assert_eq!(blair.payment(&ba, &request.id).unwrap().state, "paid");
    let answer = blair.read(&ba).unwrap().pop().unwrap();
    assert_eq!(
        answer.text,
        "paid the payment request “12.50 EUR to iban/DE75512108001245126199 “lunch”” (reference: TX 4411)"
    );
    assert_eq!(
        answer.payment.unwrap().reference.as_deref(),
        Some("TX 4411")
    );
}

/// True if `needle` is anywhere in the profile's database or its log.
fn profile_holds(world: &World, name: &str, needle: &str) -> bool {
    ["kith.db", "kith.db-wal"].iter().any(|f| {
        std::fs::read(world.home(name).join(f))
            .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .unwrap_or(false)
    })
}

/// Messages on the relay that it keeps no longer than `ttl_ms`.
fn relay_expiring(world: &World, ttl_ms: i64) -> i64 {
    let db = rusqlite::Connection::open(world.relay.db_path()).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.query_row(
        "SELECT COUNT(*) FROM messages WHERE expires_at - received_at <= ?1",
        [ttl_ms],
        |r| r.get(0),
    )
    .unwrap()
}

/// Acceptance (issue 15): with a timer set by either side, a message is
/// gone from both profiles (searched as bytes) and from the relay once
/// the timer has run — the relay's copy too when it was never fetched.
#[tokio::test]
async fn a_disappearing_message_leaves_both_profiles_and_the_relay() {
    let world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut blair = world.guest("Blair").await;
    let (ab, ba) = meet(&mut alex, &mut blair).await;
    exchange(&mut alex, &mut blair).await;
    let set = alex.set_timer(&ab, 60).await.unwrap();
    assert_eq!(set.text, "you set messages to disappear after 1 minute");
    blair.sync().await.unwrap();
    let seen = blair.read(&ba).unwrap();
    assert_eq!(
        seen[0].text,
        "Alex set messages to disappear after 1 minute"
    );
    assert_eq!(seen[0].timer, Some(60));

    // Set by Alex, kept by Blair's kith: her messages disappear too.
    let first = blair.send(&ba, "the code is swordfish").await.unwrap();
    assert!(first.expires_at.is_some());
    alex.sync().await.unwrap();
    let got = alex.read(&ab).unwrap();
    assert_eq!(got.last().unwrap().text, "the code is swordfish");
    assert!(got.last().unwrap().expires_at.is_some());
    // Alex is away when this one comes: only the relay has it.
    blair.send(&ba, "and the door is blue").await.unwrap();
    assert!(relay_expiring(&world, 60_000) >= 1);
    assert!(profile_holds(&world, "Blair", "swordfish"));

    world.clock.advance(Duration::from_secs(90));
    let swept = world.relay.sweep_at(world.clock.now_ms()).await.unwrap();
    assert!(swept >= 1, "the unfetched message expired on the relay");
    assert_eq!(relay_expiring(&world, 60_000), 0);
    alex.sync().await.unwrap();
    blair.sync().await.unwrap();
    for (e, conv) in [(&mut alex, &ab), (&mut blair, &ba)] {
        let texts: Vec<String> = e.read(conv).unwrap().into_iter().map(|m| m.text).collect();
        assert!(
            texts
                .iter()
                .all(|t| !t.contains("swordfish") && !t.contains("door")),
            "{texts:?}"
        );
    }
    for name in ["Alex", "Blair"] {
        assert!(!profile_holds(&world, name, "swordfish"), "{name}");
        assert!(!profile_holds(&world, name, "door is blue"), "{name}");
    }
    // Turned off, messages stay.
    blair.set_timer(&ba, 0).await.unwrap();
    let kept = blair.send(&ba, "this one stays").await.unwrap();
    assert_eq!(kept.expires_at, None);
}

/// Receipts (content-v1.md §7.8): delivered when the other side's kith
/// has it, read when they read it; none from someone who turned them off,
/// and none to a contact one blocked.
#[tokio::test]
async fn receipts_say_delivered_and_read_unless_turned_off() {
    let world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut blair = world.guest("Blair").await;
    let (ab, ba) = meet(&mut alex, &mut blair).await;
    exchange(&mut alex, &mut blair).await;
    let receipts = |e: &mut Engine, conv: &str| {
        let r = e.read(conv).unwrap().pop().unwrap().receipts.unwrap();
        (r.delivered, r.read, r.of)
    };
    blair.send(&ba, "are you there?").await.unwrap();
    assert_eq!(receipts(&mut blair, &ba), (0, 0, 1));
    alex.sync().await.unwrap();
    blair.sync().await.unwrap();
    assert_eq!(receipts(&mut blair, &ba), (1, 0, 1), "delivered");
    alex.read(&ab).unwrap();
    alex.flush_receipts().await.unwrap();
    blair.sync().await.unwrap();
    assert_eq!(receipts(&mut blair, &ba), (1, 1, 1), "read");

    alex.set_receipts(&ab, false).unwrap();
    blair.send(&ba, "and now?").await.unwrap();
    alex.sync().await.unwrap();
    alex.read(&ab).unwrap();
    alex.flush_receipts().await.unwrap();
    blair.sync().await.unwrap();
    assert_eq!(receipts(&mut blair, &ba), (0, 0, 1), "turned off");

    alex.set_receipts(&ab, true).unwrap();
    alex.block(&ab).await.unwrap();
    blair.send(&ba, "hello?").await.ok();
    alex.sync().await.unwrap();
    alex.flush_receipts().await.unwrap();
    blair.sync().await.unwrap();
    assert_eq!(receipts(&mut blair, &ba).1, 0, "never to a blocked contact");
}

/// In a group, receipts are counted: "read by 1 of 2".
#[tokio::test]
async fn a_group_counts_who_read_a_message() {
    let world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut charlie = world.guest("Charlie").await;
    let mut emery = world.guest("Emery").await;
    let (ac, _) = meet(&mut alex, &mut charlie).await;
    let (ae, _) = meet(&mut alex, &mut emery).await;
    alex.group_create("Ski", None).await.unwrap();
    assert!(alex.group_add("Ski", &ac).await.unwrap().done);
    assert!(alex.group_add("Ski", &ae).await.unwrap().done);
    for _ in 0..2 {
        for e in [&mut charlie, &mut emery, &mut alex] {
            e.sync().await.unwrap();
        }
    }
    alex.send("Ski", "bus leaves at 7").await.unwrap();
    for e in [&mut charlie, &mut emery] {
        e.sync().await.unwrap();
    }
    charlie.read("Ski").unwrap();
    charlie.flush_receipts().await.unwrap();
    alex.sync().await.unwrap();
    let r = alex.read("Ski").unwrap().pop().unwrap().receipts.unwrap();
    assert_eq!((r.delivered, r.read, r.of), (2, 1, 2));
}

/// Calls (content-v1.md §7.11): a call hung up before an answer is a
/// missed call for the one called; an answered one ends with its length.
#[tokio::test]
async fn calls_ring_and_end_up_in_the_history() {
    let world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut blair = world.guest("Blair").await;
    let (ab, ba) = meet(&mut alex, &mut blair).await;
    exchange(&mut alex, &mut blair).await;

    let call = alex.call(&ab, false, "v=0 offer").await.unwrap();
    assert_eq!(call.state, "ringing");
    let report = blair.sync().await.unwrap();
    assert!(
        report
            .notices
            .iter()
            .any(|n| n.text == "Alex: is calling (audio)"),
        "{report:?}"
    );
    alex.call_step(&ab, &call.id, CallStep::Hangup, "")
        .await
        .unwrap();
    blair.sync().await.unwrap();
    assert_eq!(blair.calls(&ba).unwrap()[0].state, "missed");
    let line = blair.read(&ba).unwrap().pop().unwrap();
    assert_eq!(line.text, "missed call");
    assert_eq!(line.call.unwrap().state, "missed");

    let call = alex.call(&ab, true, "v=0 video offer").await.unwrap();
    blair.sync().await.unwrap();
    blair
        .call_step(&ba, &call.id, CallStep::Answer, "v=0 answer")
        .await
        .unwrap();
    blair
        .call_step(
            &ba,
            &call.id,
            CallStep::Candidate,
            "candidate:1 1 udp 1 10.0.0.2 5000 typ host",
        )
        .await
        .unwrap();
    alex.sync().await.unwrap();
    let by_id =
        |calls: Vec<kith_core::CallView>| calls.into_iter().find(|c| c.id == call.id).unwrap();
    assert_eq!(by_id(alex.calls(&ab).unwrap()).state, "active");
    world.clock.advance(Duration::from_secs(120));
    alex.call_step(&ab, &call.id, CallStep::Hangup, "")
        .await
        .unwrap();
    blair.sync().await.unwrap();
    let ended = by_id(blair.calls(&ba).unwrap());
    assert_eq!(
        (ended.state.as_str(), ended.duration_ms),
        ("ended", Some(120_000))
    );
    assert_eq!(
        blair.read(&ba).unwrap().pop().unwrap().text,
        "video call, 2 minutes"
    );

    // A kith that takes no calls is never rung.
    let mut dani = older_host(&world, "Dani").await;
    let (_, bd) = meet(&mut dani, &mut blair).await;
    exchange(&mut blair, &mut dani).await;
    assert!(blair.call(&bd, false, "v=0").await.is_err());
}
