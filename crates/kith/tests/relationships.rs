//! Relationships end to end, through the `kith` binary and real relays:
//! introductions, blocking, ignoring, moving relays, rotation, and the
//! unlinkability of one user's relationships.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;

use common::{Person, connect, relay};
use kith_testkit::RelayProcess;
use serde_json::Value;

fn person(dir: &Path, who: &str, name: &str, relay: Option<&RelayProcess>) -> Person {
    let p = Person::new(dir, who);
    match relay {
        Some(r) => p.ok(&["init", "--name", name, "--relay", r.url()]),
        None => p.ok(&["init", "--name", name]),
    };
    p
}

fn introductions(p: &Person) -> Vec<Value> {
    p.json(&["introductions"]).as_array().unwrap().clone()
}

/// The one introduction `p` was offered.
fn offered(p: &Person) -> Value {
    let list: Vec<Value> = introductions(p)
        .into_iter()
        .filter(|i| i["role"] == "received")
        .collect();
    assert_eq!(list.len(), 1, "{list:?}");
    list[0].clone()
}

fn sync_all(people: &[&Person]) {
    for p in people {
        p.ok(&["sync"]);
    }
}

fn conversations(p: &Person) -> Vec<Value> {
    p.json(&["list"]).as_array().unwrap().clone()
}

fn file_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            all.extend(std::fs::read(path).unwrap());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn an_introduction_connects_only_when_both_accept() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let blair = person(dir.path(), "blair", "Blair", Some(&relay));
    let alex = person(dir.path(), "alex", "Alex", Some(&relay));
    let charlie = person(dir.path(), "charlie", "Charlie", None);
    let dani = person(dir.path(), "dani", "Dani", None);
    for p in [&alex, &charlie, &dani] {
        connect(&blair, p);
    }

    // Both accept: connected, with fresh keys the introducer never holds.
    let made = blair.json(&["introduce", "Alex", "Charlie", "--note", "you both climb"]);
    assert_eq!(made["peer"], "Alex and Charlie");
    sync_all(&[&alex, &charlie]);
    let offer = offered(&alex);
    assert_eq!(offer["introducer"], "Blair");
    assert_eq!(offer["peer"], "Charlie");
    assert_eq!(offer["note"], "you both climb");
    assert_eq!(offer["state"], "pending");
    assert_eq!(offered(&charlie)["peer"], "Alex");
    alex.ok(&["introductions", "accept", offer["id"].as_str().unwrap()]);
    let id = offered(&charlie)["id"].as_str().unwrap()[..6].to_string();
    charlie.ok(&["introductions", "accept", &id]);
    blair.ok(&["sync"]); // both answers in: each side gets the other's
    alex.ok(&["sync"]); // Alex creates the conversation
    blair.ok(&["sync"]); // forwards the Welcome
    let joined = charlie.json(&["sync"]);
    assert_eq!(joined["connected"][0]["name"], "Alex", "{joined}");
    assert_eq!(joined["connected"][0]["introduced_by"], "Blair");
    let alex_side = alex.json(&["sync"]);
    assert!(alex_side["messages"].as_array().unwrap().is_empty());
    charlie.ok(&["send", "Alex", "hello from Charlie"]);
    alex.ok(&["send", "Charlie", "hello from Alex"]);
    sync_all(&[&alex, &charlie]);
    assert!(
        alex.texts("Charlie")
            .contains(&("Charlie".into(), "hello from Charlie".into()))
    );
    assert!(
        charlie
            .texts("Alex")
            .contains(&("Alex".into(), "hello from Alex".into()))
    );
    let info = alex.json(&["info", "Charlie"]);
    assert_eq!(info["conversation"]["introduced_by"], "Blair");
    let charlie_info = charlie.json(&["info", "Alex"]);
    assert_eq!(info["safety_number"], charlie_info["safety_number"]);
    // Blair forwarded their key packages (public keys) but never saw the
    // new conversation's channel or capability keys: they were sealed with
    // a secret of the new group.
    let blair_files = file_bytes(&blair.home);
    for secret in [
        info["channels"][0]["write_id"].as_str().unwrap(),
        info["channels"][0]["read_id"].as_str().unwrap(),
        info["channels"][0]["my_key"].as_str().unwrap(),
        charlie_info["channels"][0]["my_key"].as_str().unwrap(),
    ] {
        assert!(
            !contains(&blair_files, &unhex(secret)),
            "Blair holds {secret}"
        );
    }
    assert_eq!(
        introductions(&blair)[0]["state"]
            .as_str()
            .unwrap()
            .split(' ')
            .next(),
        Some("connected")
    );

    // One declines: nothing happens.
    blair.ok(&["introduce", "Alex", "Dani"]);
    sync_all(&[&alex, &dani]);
    let to_alex = introductions(&alex)
        .into_iter()
        .find(|i| i["peer"] == "Dani")
        .unwrap();
    alex.ok(&["introductions", "accept", to_alex["id"].as_str().unwrap()]);
    dani.ok(&[
        "introductions",
        "decline",
        offered(&dani)["id"].as_str().unwrap(),
    ]);
    sync_all(&[&blair, &alex, &dani, &blair, &alex]);
    let to_alex = introductions(&alex)
        .into_iter()
        .find(|i| i["peer"] == "Dani")
        .unwrap();
    assert_eq!(to_alex["state"], "closed");
    assert_eq!(offered(&dani)["state"], "declined");
    assert_eq!(conversations(&dani).len(), 1, "Dani knows only Blair");
    assert_eq!(
        conversations(&alex).len(),
        2,
        "Alex knows Blair and Charlie"
    );
}

#[test]
fn a_blocked_contact_cannot_write_or_be_introduced_again() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let alex = person(dir.path(), "alex", "Alex", Some(&relay));
    let blair = person(dir.path(), "blair", "Blair", Some(&relay));
    let dani = person(dir.path(), "dani", "Dani", None);
    connect(&alex, &dani);
    connect(&blair, &alex);
    connect(&blair, &dani);
    dani.ok(&["send", "Alex", "before the block"]);
    alex.ok(&["sync"]);

    alex.ok(&["block", "Dani"]);
    assert_eq!(
        conversations(&alex)
            .iter()
            .find(|c| c["name"] == "Dani")
            .unwrap()["blocked"],
        true
    );
    let refused = dani.run(&["send", "Alex", "after the block"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("refuses your messages"), "{stderr}");
    let report = alex.json(&["sync"]);
    assert!(report["messages"].as_array().unwrap().is_empty());
    assert!(alex.run(&["send", "Dani", "x"]).status.code() == Some(1));
    assert_eq!(
        dani.texts("Alex").len(),
        1,
        "the refused message is not kept as sent"
    );

    // Dani, introduced again through Blair, is refused by Alex's client.
    blair.ok(&["introduce", "Dani", "Alex"]);
    sync_all(&[&alex, &dani]);
    for p in [&alex, &dani] {
        let id = offered(p)["id"].as_str().unwrap().to_string();
        p.ok(&["introductions", "accept", &id]);
    }
    sync_all(&[&blair, &dani, &alex, &blair, &dani, &alex, &blair, &dani]);
    assert_eq!(offered(&alex)["state"], "refused");
    assert_eq!(offered(&dani)["state"], "closed");
    assert_eq!(conversations(&alex).len(), 2);
    assert_eq!(conversations(&dani).len(), 2);

    // Unblocking continues the conversation on a fresh channel.
    let before = alex.json(&["info", "Dani"])["channels"][0]["write_id"].clone();
    alex.ok(&["unblock", "Dani"]);
    dani.ok(&["sync"]);
    dani.ok(&["send", "Alex", "after the unblock"]);
    alex.ok(&["sync"]);
    let texts = alex.texts("Dani");
    assert_eq!(
        texts.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(),
        ["before the block", "after the unblock"]
    );
    let after = alex.json(&["info", "Dani"]);
    assert_ne!(after["channels"][0]["write_id"], before);
}

#[test]
fn ignored_introductions_are_declined_without_asking() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let blair = person(dir.path(), "blair", "Blair", Some(&relay));
    let alex = person(dir.path(), "alex", "Alex", None);
    let charlie = person(dir.path(), "charlie", "Charlie", None);
    connect(&blair, &alex);
    connect(&blair, &charlie);
    alex.ok(&["ignore-introductions", "Blair"]);
    blair.ok(&["introduce", "Alex", "Charlie"]);
    let report = alex.json(&["sync"]);
    assert!(report["introductions"].as_array().unwrap().is_empty());
    assert!(introductions(&alex).is_empty());
    charlie.ok(&["sync"]);
    charlie.ok(&[
        "introductions",
        "accept",
        offered(&charlie)["id"].as_str().unwrap(),
    ]);
    sync_all(&[&blair, &charlie]);
    assert_eq!(offered(&charlie)["state"], "closed");
    let made = &introductions(&blair)[0];
    assert!(
        made["state"].as_str().unwrap().starts_with("closed"),
        "{made}"
    );
}
