//! Groups end to end through the `kith` binary against a real `kith-relay`:
//! create, add a contact, invite by link, everyone talks, two admins commit
//! at once, removal (enforced by the relay), leaving.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Person, alex_and, channel_count, connect, relay};
use serde_json::Value;

fn members(p: &Person, group: &str) -> Vec<(String, bool)> {
    let mut list: Vec<(String, bool)> = p
        .json(&["group", "members", group])
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["admin"].as_bool().unwrap(),
            )
        })
        .collect();
    list.sort();
    list
}

fn names(p: &Person, group: &str) -> Vec<String> {
    let mut list: Vec<String> = p
        .json(&["group", "members", group])
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    list.sort();
    list
}

fn sync_all(people: &[&Person]) {
    for _ in 0..2 {
        for p in people {
            p.ok(&["sync"]);
        }
    }
}

fn texts_of(p: &Person, group: &str) -> Vec<String> {
    p.texts(group)
        .into_iter()
        .map(|(from, text)| format!("{from}: {text}"))
        .collect()
}

#[test]
fn a_group_lives_on_one_channel_from_creation_to_leaving() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, [blair, charlie, dani]) = alex_and(dir.path(), &relay, ["Blair", "Charlie", "Dani"]);
    let (alex_blair, _) = connect(&alex, &blair);
    let (alex_charlie, _) = connect(&alex, &charlie);
    // Contacts hand each other a spare key package on sync.
    sync_all(&[&blair, &charlie, &alex]);

    let created = alex.json(&["group", "create", "Climbing", "--relay", relay.url()]);
    assert_eq!(created["kind"], "group");
    assert_eq!(members(&alex, "Climbing").len(), 1);

    // Add a contact: done at once, and Blair is in after a sync.
    let added = alex.json(&["group", "add", "Climbing", &alex_blair]);
    assert_eq!(added["done"], true, "{added}");
    let sync = blair.json(&["sync"]);
    assert_eq!(sync["connected"][0]["name"], "Climbing", "{sync}");
    assert_eq!(names(&blair, "Climbing"), ["Alex", "me"]);

    // Invite by link: Dani (no contact of anyone) asks; Alex's syncs add her.
    let link = alex.json(&["group", "invite", "Climbing"])["link"]
        .as_str()
        .unwrap()
        .to_string();
    let joining = dani.json(&["accept", &link]);
    assert_eq!(joining["state"], "joining", "{joining}");
    let err = dani.run(&["send", "Climbing", "too early"]);
    assert!(!err.status.success());
    alex.ok(&["sync"]);
    alex.ok(&["sync"]);
    let sync = dani.json(&["sync"]);
    assert_eq!(sync["connected"][0]["name"], "Climbing", "{sync}");
    blair.ok(&["sync"]);
    assert_eq!(names(&dani, "Climbing"), ["Alex", "Blair", "me"]);
    assert_eq!(names(&blair, "Climbing"), ["Alex", "Dani", "me"]);
    // The link was for one person.
    let again = charlie.run(&["accept", &link]);
    assert!(!again.status.success());

    // Everyone reaches everyone.
    alex.ok(&["send", "Climbing", "saturday at the crag?"]);
    blair.ok(&["send", "Climbing", "yes!"]);
    dani.ok(&["send", "Climbing", "count me in"]);
    sync_all(&[&alex, &blair, &dani]);
    let mut seen_by_alex = texts_of(&alex, "Climbing");
    seen_by_alex.sort();
    assert_eq!(
        seen_by_alex,
        [
            "Blair: yes!",
            "Dani: count me in",
            "me: saturday at the crag?"
        ]
    );
    let mut seen_by_dani = texts_of(&dani, "Climbing");
    seen_by_dani.sort();
    assert_eq!(
        seen_by_dani,
        [
            "Alex: saturday at the crag?",
            "Blair: yes!",
            "me: count me in"
        ]
    );

    // Two admins commit at once: Alex adds Charlie while Blair removes
    // Dani. The channel orders them; the loser builds its change again.
    let promoted = alex.json(&["group", "admins", "Climbing", "add", "Blair"]);
    assert_eq!(promoted["done"], true, "{promoted}");
    sync_all(&[&blair, &dani, &alex]);
    let racers = [
        alex.command(&["--json", "group", "add", "Climbing", &alex_charlie])
            .spawn()
            .unwrap(),
        blair
            .command(&["--json", "group", "remove", "Climbing", "Dani"])
            .spawn()
            .unwrap(),
    ];
    for mut r in racers {
        assert!(r.wait().unwrap().success());
    }
    sync_all(&[&alex, &blair, &charlie]);
    let view = members(&alex, "Climbing");
    assert_eq!(view.len(), 3, "{view:?}");
    assert_eq!(members(&blair, "Climbing"), view);
    assert_eq!(members(&charlie, "Climbing"), view);
    assert_eq!(names(&charlie, "Climbing"), ["Alex", "Blair", "me"]);

    // Dani was removed: the relay refuses her reads and nothing new opens.
    charlie.ok(&["send", "Climbing", "hello from charlie"]);
    let sync = dani.json(&["sync"]);
    assert!(
        sync["notices"][0]["text"]
            .as_str()
            .unwrap()
            .contains("no longer lets you in"),
        "{sync}"
    );
    assert!(
        !texts_of(&dani, "Climbing")
            .iter()
            .any(|t| t.contains("hello from charlie"))
    );
    let send = dani.run(&["send", "Climbing", "still here?"]);
    assert!(!send.status.success());
    let list: Value = dani.json(&["list"]);
    assert_eq!(list[0]["state"], "closed", "{list}");

    sync_all(&[&alex, &blair, &charlie]);
    assert!(texts_of(&alex, "Climbing").contains(&"Charlie: hello from charlie".to_string()));
    assert!(texts_of(&blair, "Climbing").contains(&"Charlie: hello from charlie".to_string()));

    // Charlie leaves; an admin's sync carries it out and revokes the key.
    charlie.ok(&["group", "leave", "Climbing"]);
    sync_all(&[&alex, &blair]);
    assert_eq!(names(&alex, "Climbing"), ["Blair", "me"]);
    assert_eq!(names(&blair, "Climbing"), ["Alex", "me"]);
    let send = charlie.run(&["send", "Climbing", "bye"]);
    assert!(!send.status.success());
    alex.ok(&["send", "Climbing", "after charlie left"]);
    sync_all(&[&blair]);
    assert!(texts_of(&blair, "Climbing").contains(&"Alex: after charlie left".to_string()));

    // A non-admin cannot remove; the last admin cannot simply leave.
    let demoted = alex.json(&["group", "admins", "Climbing", "remove", "me"]);
    assert_eq!(demoted["done"], true, "{demoted}");
    let err = alex.run(&["group", "remove", "Climbing", "Blair"]);
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("only an admin"),
        "{}{}",
        String::from_utf8_lossy(&err.stdout),
        String::from_utf8_lossy(&err.stderr)
    );
    blair.ok(&["sync"]);
    let err = blair.run(&["group", "leave", "Climbing"]);
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("needs an admin"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );

    // The relay holds the group's messages but no name and no text.
    let mut files = Vec::new();
    for path in kith_testkit::relay_files(&relay.db_path()) {
        files.extend(std::fs::read(path).unwrap());
    }
    for secret in ["Climbing", "Charlie", "Dani", "saturday at the crag"] {
        assert!(
            !files.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the relay stored {secret:?}"
        );
    }
}

#[test]
fn a_group_moves_to_another_relay_with_its_members() {
    let dir = tempfile::tempdir().unwrap();
    let relay_a = relay();
    let relay_b = relay();
    let alex = Person::new(dir.path(), "alex");
    let blair = Person::new(dir.path(), "blair");
    let charlie = Person::new(dir.path(), "charlie");
    alex.ok(&["init", "--name", "Alex", "--relay", relay_a.url()]);
    blair.ok(&["init", "--name", "Blair"]);
    charlie.ok(&["init", "--name", "Charlie"]);
    let (alex_blair, _) = connect(&alex, &blair);
    let (alex_charlie, _) = connect(&alex, &charlie);
    sync_all(&[&blair, &charlie, &alex]);
    alex.ok(&["group", "create", "Band"]);
    alex.ok(&["group", "add", "Band", &alex_blair]);
    alex.ok(&["group", "add", "Band", &alex_charlie]);
    sync_all(&[&blair, &charlie, &alex]);
    alex.ok(&["send", "Band", "before the move"]);
    sync_all(&[&blair, &charlie]);

    let moved = alex.json(&["move", "--to", relay_b.url()]);
    assert_eq!(moved["moved"].as_array().unwrap().len(), 3, "{moved}");
    // Blair has not seen the move yet: this goes to the old channel.
    blair.ok(&["send", "Band", "sent to the old channel"]);
    sync_all(&[&alex, &blair, &charlie]);
    charlie.ok(&["send", "Band", "on the new channel"]);
    alex.ok(&["send", "Band", "also new"]);
    sync_all(&[&alex, &blair, &charlie]);

    let mut seen = texts_of(&charlie, "Band");
    seen.sort();
    assert_eq!(
        seen,
        [
            "Alex: also new",
            "Alex: before the move",
            "Blair: sent to the old channel",
            "me: on the new channel"
        ]
    );
    let mut seen = texts_of(&alex, "Band");
    seen.sort();
    assert_eq!(
        seen,
        [
            "Blair: sent to the old channel",
            "Charlie: on the new channel",
            "me: also new",
            "me: before the move"
        ]
    );
    assert_eq!(
        channel_count(&relay_a),
        0,
        "the group and both 1:1 channels left relay A"
    );
    let info = blair.json(&["info", "Band"]);
    assert_eq!(info["channels"].as_array().unwrap().len(), 1, "{info}");
    assert_eq!(
        info["channels"][0]["relay_url"],
        relay_b.url().trim_end_matches('/')
    );

    // Membership still works on the new channel, relay included.
    alex.ok(&["group", "remove", "Band", "Charlie"]);
    let after = charlie.json(&["sync"]);
    assert!(
        after["notices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["text"]
                .as_str()
                .unwrap()
                .contains("no longer lets you in")),
        "{after}"
    );
    alex.ok(&["send", "Band", "without Charlie"]);
    blair.ok(&["sync"]);
    assert!(texts_of(&blair, "Band").contains(&"Alex: without Charlie".to_string()));
}

/// The walkthrough of the engine issue, typed as a person would: a member
/// who sends right after joining is read by a member added after them
/// (finding 1), a leave completes with one sync each (finding 2), and a
/// contact Alex blocked cannot be added by Alex (hiding one that another
/// admin adds: `kith-core/tests/groups.rs`).
#[test]
fn the_ski_walkthrough_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, [charlie, emery, dani]) = alex_and(dir.path(), &relay, ["Charlie", "Emery", "Dani"]);
    connect(&alex, &charlie);
    connect(&alex, &emery);
    connect(&alex, &dani);
    sync_all(&[&charlie, &emery, &dani, &alex]);

    alex.ok(&["group", "create", "Ski"]);
    alex.ok(&["group", "add", "Ski", "Charlie"]);
    alex.ok(&["group", "add", "Ski", "Emery"]);
    charlie.ok(&["sync"]);
    charlie.ok(&["send", "Ski", "charlie in ski"]);
    emery.ok(&["sync"]);
    assert_eq!(texts_of(&emery, "Ski"), ["Charlie: charlie in ski"]);
    assert_eq!(names(&charlie, "Ski"), ["Alex", "Emery", "me"]);

    // Alex blocks Dani, then adds her (as another admin could).
    alex.ok(&["block", "Dani"]);
    let dani_in = alex.run(&["group", "add", "Ski", "Dani"]);
    assert!(
        !dani_in.status.success(),
        "a blocked contact cannot be added"
    );
    // Emery leaves; the next syncs carry it out.
    emery.ok(&["group", "leave", "Ski"]);
    alex.ok(&["sync"]);
    charlie.ok(&["sync"]);
    assert_eq!(names(&alex, "Ski"), ["Charlie", "me"]);
    assert_eq!(names(&charlie, "Ski"), ["Alex", "me"]);
    let list: Value = emery.json(&["list"]);
    let ski = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Ski")
        .unwrap();
    assert_eq!(ski["state"], "leaving", "until Emery reads the commit");
    emery.ok(&["sync"]);
    let list: Value = emery.json(&["list"]);
    let ski = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Ski")
        .unwrap();
    assert_eq!(ski["state"], "closed");
}

/// Waits for a `watch --json` line that `wanted` accepts (a bounded wait on
/// the process's output, never a sleep).
fn until(
    rx: &std::sync::mpsc::Receiver<Value>,
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if wanted(&line) => return line,
            Ok(_) => {}
            Err(e) => panic!("no {what} from watch: {e}"),
        }
    }
}

/// Finding 10 through the binary: with `kith watch` running on every side,
/// an introduction and a group link join complete with no `sync` typed by
/// anyone; the people type only their answers.
#[test]
fn introductions_and_group_links_complete_with_watch_running() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, [blair, charlie, dani]) = alex_and(dir.path(), &relay, ["Blair", "Charlie", "Dani"]);
    connect(&alex, &blair);
    connect(&alex, &charlie);
    let watches: Vec<_> = [&alex, &blair, &charlie, &dani]
        .into_iter()
        .map(common::watch)
        .collect();
    let rx = |i: usize| &watches[i].1;

    alex.ok(&["introduce", "Blair", "Charlie", "--note", "you both ski"]);
    let offered = |i: usize| {
        let line = until(rx(i), "introduction", |l| l["event"] == "introduction");
        line["introduction"]["id"].as_str().unwrap().to_string()
    };
    let (to_blair, to_charlie) = (offered(1), offered(2));
    blair.ok(&["introductions", "accept", &to_blair]);
    charlie.ok(&["introductions", "accept", &to_charlie]);
    until(rx(1), "connection to Charlie", |l| {
        l["event"] == "connected" && l["name"] == "Charlie"
    });
    until(rx(2), "connection to Blair", |l| {
        l["event"] == "connected" && l["name"] == "Blair"
    });

    alex.ok(&["group", "create", "Ski"]);
    let link = alex.json(&["group", "invite", "Ski"])["link"]
        .as_str()
        .unwrap()
        .to_string();
    dani.ok(&["accept", &link]);
    until(rx(3), "the group joined", |l| {
        l["event"] == "connected" && l["name"] == "Ski"
    });
    for (mut child, _) in watches {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert_eq!(names(&alex, "Ski"), ["Dani", "me"]);
    assert_eq!(names(&dani, "Ski"), ["Alex", "me"]);
}

/// Finding 3 through the binary: Alex blocked Dani; Blair, an admin of a
/// group on Alex's relay, adds both; Alex is told, Dani is marked in the
/// member list, and what Dani says there never reaches Alex's screen.
#[test]
fn a_blocked_contact_cannot_reach_alex_through_a_group() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, [blair, dani]) = alex_and(dir.path(), &relay, ["Blair", "Dani"]);
    connect(&alex, &blair);
    connect(&alex, &dani);
    let link = blair.json(&["invite", "--relay", relay.url()])["link"]
        .as_str()
        .unwrap()
        .to_string();
    dani.ok(&["accept", &link]);
    sync_all(&[&blair, &dani, &alex]);
    alex.ok(&["block", "Dani"]);

    blair.ok(&["group", "create", "Ski", "--relay", relay.url()]);
    assert!(blair.json(&["group", "add", "Ski", "Alex"])["done"] == true);
    assert!(blair.json(&["group", "add", "Ski", "Dani"])["done"] == true);
    dani.ok(&["sync"]);
    dani.ok(&["send", "Ski", "hi Alex"]);
    let report = alex.json(&["sync"]);
    let notices = report["notices"].to_string();
    assert!(notices.contains("whom you blocked"), "{report}");
    assert!(
        report["messages"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert!(alex.texts("Ski").is_empty());
    let shown = alex.ok(&["read", "Ski"]);
    assert!(!shown.contains("hi Alex"), "{shown}");
    let blocked: Vec<bool> = alex
        .json(&["group", "members", "Ski"])
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["blocked"].as_bool().unwrap())
        .collect();
    assert_eq!(blocked.iter().filter(|b| **b).count(), 1, "{blocked:?}");
    blair.ok(&["sync"]);
    assert_eq!(texts_of(&blair, "Ski"), ["Dani: hi Alex"]);
}

/// Issue 13's flow through the binary at a hundred members: a link per
/// person, each accepts, one `sync` by the admin commits every join in
/// batches, each member's first `sync` joins, a message reaches everyone,
/// and a removal holds.
#[test]
fn a_hundred_people_join_by_links_through_the_cli() {
    const N: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let admin = Person::new(dir.path(), "admin");
    admin.ok(&["init", "--name", "Admin", "--relay", relay.url()]);
    admin.ok(&["group", "create", "Club"]);
    let people: Vec<Person> = (0..N)
        .map(|i| {
            let p = Person::new(dir.path(), &format!("p{i}"));
            p.ok(&["init", "--name", &format!("P{i}")]);
            let link = admin.json(&["group", "invite", "Club"])["link"]
                .as_str()
                .unwrap()
                .to_string();
            p.ok(&["accept", &link]);
            p
        })
        .collect();
    let sync = admin.json(&["sync"]);
    assert!(sync["errors"].as_array().unwrap().is_empty(), "{sync}");
    assert_eq!(names(&admin, "Club").len(), N + 1);
    for p in &people {
        let joined = p.json(&["sync"]);
        assert!(joined.to_string().contains("\"Club\""), "{joined}");
    }
    people[0].ok(&["send", "Club", "hello, club"]);
    for p in &people[1..] {
        assert_eq!(texts_of(p, "Club"), Vec::<String>::new());
        p.ok(&["sync"]);
        assert_eq!(texts_of(p, "Club"), ["P0: hello, club"]);
    }
    assert!(admin.json(&["group", "remove", "Club", "P1"])["done"] == true);
    people[1].ok(&["sync"]);
    people[2].ok(&["sync"]);
    people[2].ok(&["send", "Club", "after P1 left"]);
    people[1].ok(&["sync"]);
    assert_eq!(texts_of(&people[1], "Club"), ["P0: hello, club"]);
    people[3].ok(&["sync"]);
    assert_eq!(
        texts_of(&people[3], "Club"),
        ["P0: hello, club", "P2: after P1 left"]
    );
}
