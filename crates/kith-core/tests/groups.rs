//! GroupV1 through in-process engines: each test is one promise of
//! `docs/spec/group-v1.md`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{World, meet, member_names, texts};
use kith_core::Engine;

/// A member who has not caught up never sends in an epoch the channel has
/// left: Charlie, added before Emery, sends right after joining, and
/// Emery (who joined at the later epoch) reads it (finding 1).
#[tokio::test]
async fn a_member_who_is_behind_catches_up_before_sending() {
    let world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut charlie = world.guest("Charlie").await;
    let mut emery = world.guest("Emery").await;
    let (ac, _) = meet(&mut alex, &mut charlie).await;
    let (ae, _) = meet(&mut alex, &mut emery).await;
    alex.group_create("Ski", None).await.unwrap();
    assert!(alex.group_add("Ski", &ac).await.unwrap().done);
    assert!(alex.group_add("Ski", &ae).await.unwrap().done);
    charlie.sync().await.unwrap();
    charlie.send("Ski", "charlie in ski").await.unwrap();
    emery.sync().await.unwrap();
    assert_eq!(
        texts(&mut emery, "Ski"),
        [("Charlie".to_string(), "charlie in ski".to_string())]
    );
    alex.sync().await.unwrap();
    assert_eq!(texts(&mut alex, "Ski").len(), 1);
    assert_eq!(member_names(&charlie, "Ski"), ["Alex", "Emery", "me"]);
}

/// A mail in a group (content-v1.md §7.4) reaches every member with its
/// subject, and the sender's name as each member knows it.
#[tokio::test]
async fn a_mail_in_a_group_has_its_subject_for_everyone() {
    let world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut charlie = world.guest("Charlie").await;
    let mut emery = world.guest("Emery").await;
    let (ac, _) = meet(&mut alex, &mut charlie).await;
    let (ae, _) = meet(&mut alex, &mut emery).await;
    alex.group_create("Ski", None).await.unwrap();
    assert!(alex.group_add("Ski", &ac).await.unwrap().done);
    assert!(alex.group_add("Ski", &ae).await.unwrap().done);
    charlie.sync().await.unwrap();
    charlie
        .send_mail("Ski", "Cabin", "Keys are **under the mat**.")
        .await
        .unwrap();
    for e in [&mut alex, &mut emery] {
        e.sync().await.unwrap();
        let got: Vec<_> = e
            .read("Ski")
            .unwrap()
            .into_iter()
            .map(|m| (m.from, m.subject, m.text))
            .collect();
        assert_eq!(
            got,
            [(
                "Charlie".to_string(),
                Some("Cabin".to_string()),
                "Keys are under the mat.".to_string()
            )]
        );
    }
}

/// A member whose last sync was before a commit sends after it: the send
/// reads the channel first and encrypts in the group's current epoch, so
/// the member added by that commit reads it.
#[tokio::test]
async fn sending_reads_the_channel_first() {
    let world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut charlie = world.guest("Charlie").await;
    let mut emery = world.guest("Emery").await;
    let (ac, _) = meet(&mut alex, &mut charlie).await;
    let (ae, _) = meet(&mut alex, &mut emery).await;
    alex.group_create("Ski", None).await.unwrap();
    assert!(alex.group_add("Ski", &ac).await.unwrap().done);
    charlie.sync().await.unwrap();
    assert!(alex.group_add("Ski", &ae).await.unwrap().done);
    // Charlie has not synced since Emery was added.
    charlie.send("Ski", "welcome Emery").await.unwrap();
    emery.sync().await.unwrap();
    assert_eq!(
        texts(&mut emery, "Ski"),
        [("Charlie".to_string(), "welcome Emery".to_string())]
    );
    // What Charlie read on the way is reported by Charlie's next sync.
    let report = charlie.sync().await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(member_names(&charlie, "Ski"), ["Alex", "Emery", "me"]);
}

/// A member removed while a message of theirs waited in the outbox is told
/// once that it was not delivered; the group closes with its history, and
/// later syncs are quiet (finding 7).
#[tokio::test]
async fn what_a_removed_member_queued_is_dropped_once_with_a_notice() {
    let mut world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut dani = world.guest("Dani").await;
    let (ad, _) = meet(&mut alex, &mut dani).await;
    alex.group_create("Crew", None).await.unwrap();
    assert!(alex.group_add("Crew", &ad).await.unwrap().done);
    dani.sync().await.unwrap();
    dani.send("Crew", "hello crew").await.unwrap();

    world.relay.stop().await;
    let queued = dani.send("Crew", "written while the relay was down").await;
    assert!(queued.is_err(), "queued, not sent");
    world.relay.restart().await.unwrap();
    assert!(alex.group_remove("Crew", "Dani").await.unwrap().done);

    let report = dani.sync().await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.notices.len(), 1, "{report:?}");
    assert!(
        report.notices[0].text.contains("could not be delivered"),
        "{report:?}"
    );
    let again = dani.sync().await.unwrap();
    assert!(
        again.errors.is_empty() && again.notices.is_empty(),
        "{again:?}"
    );
    let crew = dani
        .list()
        .unwrap()
        .into_iter()
        .find(|c| c.name == "Crew")
        .unwrap();
    assert_eq!(crew.state, "closed");
    let history: Vec<String> = dani
        .read("Crew")
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(history, ["hello crew", "written while the relay was down"]);
}

/// Adding a contact whose spare key package has not arrived yet is queued,
/// and completes when it does, without the admin typing it again
/// (finding 10).
#[tokio::test]
async fn adding_a_contact_waits_for_their_key_package() {
    let world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut emery = world.guest("Emery").await;
    let invite = alex.invite(None, None).await.unwrap();
    emery.accept(&invite.link, None).await.unwrap();
    alex.sync().await.unwrap();
    alex.group_create("Ski", None).await.unwrap();
    let change = alex.group_add("Ski", &invite.conversation).await.unwrap();
    assert!(!change.done);
    assert!(
        change.warnings[0].contains("as soon as it arrives"),
        "{change:?}"
    );

    emery.sync().await.unwrap(); // offers a spare key package
    alex.sync().await.unwrap(); // takes it, commits, sends the Welcome
    let report = emery.sync().await.unwrap();
    assert!(
        report.connected.iter().any(|c| c.name == "Ski"),
        "{report:?}"
    );
    assert_eq!(member_names(&alex, "Ski"), ["Emery", "me"]);
}

/// Alex, Blair and Dani know each other; Alex blocked Dani.
async fn alex_blocked_dani(world: &World) -> (Engine, Engine, Engine, String, String) {
    let mut alex = world.host("Alex").await;
    let mut blair = world.guest("Blair").await;
    let mut dani = world.guest("Dani").await;
    let (_, blair_alex) = meet(&mut alex, &mut blair).await;
    let (alex_dani, _) = meet(&mut alex, &mut dani).await;
    let invite = blair.invite(Some(world.relay.url()), None).await.unwrap();
    dani.accept(&invite.link, None).await.unwrap();
    blair.sync().await.unwrap();
    dani.sync().await.unwrap();
    blair.sync().await.unwrap();
    alex.block(&alex_dani).await.unwrap();
    (alex, blair, dani, blair_alex, invite.conversation)
}

/// A group that adds someone Alex blocked, on Alex's own relay: Alex is
/// told, and never shown what they say there (finding 3).
#[tokio::test]
async fn a_blocked_contact_added_to_a_group_is_hidden() {
    let world = World::new().await;
    let (mut alex, mut blair, mut dani, blair_alex, blair_dani) = alex_blocked_dani(&world).await;
    blair
        .group_create("Ski", Some(world.relay.url()))
        .await
        .unwrap();
    assert!(blair.group_add("Ski", &blair_alex).await.unwrap().done);
    alex.sync().await.unwrap();
    assert!(blair.group_add("Ski", &blair_dani).await.unwrap().done);
    dani.sync().await.unwrap();
    dani.send("Ski", "hi Alex").await.unwrap();

    let report = alex.sync().await.unwrap();
    assert!(report.messages.is_empty(), "{report:?}");
    assert!(
        report
            .notices
            .iter()
            .any(|n| n.text.contains("whom you blocked")),
        "{report:?}"
    );
    assert!(texts(&mut alex, "Ski").is_empty());
    let hidden: Vec<bool> = alex
        .group_members("Ski")
        .unwrap()
        .into_iter()
        .map(|m| m.blocked)
        .collect();
    assert_eq!(hidden.iter().filter(|b| **b).count(), 1, "{hidden:?}");
    blair.sync().await.unwrap();
    assert_eq!(texts(&mut blair, "Ski").len(), 1, "others still read Dani");
}

/// Joining a group where someone Alex blocked already is: the roster tells
/// Alex's client at once.
#[tokio::test]
async fn joining_a_group_with_a_blocked_contact_in_it_hides_them() {
    let world = World::new().await;
    let (mut alex, mut blair, mut dani, blair_alex, blair_dani) = alex_blocked_dani(&world).await;
    blair
        .group_create("Ski", Some(world.relay.url()))
        .await
        .unwrap();
    assert!(blair.group_add("Ski", &blair_dani).await.unwrap().done);
    dani.sync().await.unwrap();
    blair.sync().await.unwrap();
    assert!(blair.group_add("Ski", &blair_alex).await.unwrap().done);
    let joined = alex.sync().await.unwrap();
    assert!(
        joined
            .notices
            .iter()
            .any(|n| n.text.contains("whom you blocked")),
        "{joined:?}"
    );
    dani.send("Ski", "hi Alex").await.unwrap();
    alex.sync().await.unwrap();
    assert!(texts(&mut alex, "Ski").is_empty());

    // Unblocked: Dani's next messages show again.
    let alex_dani = alex
        .list()
        .unwrap()
        .into_iter()
        .find(|c| c.blocked)
        .unwrap()
        .id;
    alex.unblock(&alex_dani).await.unwrap();
    dani.send("Ski", "friends again").await.unwrap();
    alex.sync().await.unwrap();
    let shown: Vec<String> = texts(&mut alex, "Ski").into_iter().map(|t| t.1).collect();
    assert_eq!(shown, ["friends again"]);
}
