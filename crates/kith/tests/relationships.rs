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

use std::collections::BTreeSet;
use std::path::Path;

use common::{Person, channel_count, connect, relay, relay_db};
use kith_testkit::RelayProcess;
use serde_json::Value;
use std::time::Duration;

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
    kith_wire::relay::from_hex_vec(s).unwrap()
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

/// Texts `p` received from `from` in the conversation `conv`.
fn received(p: &Person, conv: &str, from: &str) -> Vec<String> {
    p.texts(conv)
        .into_iter()
        .filter(|(who, _)| who == from)
        .map(|(_, text)| text)
        .collect()
}

/// A contact who keeps writing while the other side moves: sends `count`
/// numbered messages; half-way it says so on `halfway` and waits for `go`
/// (the move is made then); after that it also syncs every few messages,
/// so that the messages right after the move are sent by a contact who has
/// not yet seen the address update.
fn keep_sending(
    p: Person,
    to: &'static str,
    prefix: &'static str,
    count: usize,
    halfway: std::sync::mpsc::Sender<()>,
    go: std::sync::mpsc::Receiver<()>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for i in 0..count {
            p.ok(&["send", to, &format!("{prefix} {i}")]);
            if i == count / 2 {
                halfway.send(()).unwrap();
                go.recv().unwrap();
            } else if i > count / 2 && i % 4 == 3 {
                p.ok(&["sync"]);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

#[test]
fn moving_relays_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let relay_a = relay();
    let relay_b = relay();
    let relay_c = relay();
    let emery = person(dir.path(), "emery", "Emery", Some(&relay_a));
    let fay = person(dir.path(), "fay", "Fay", None);
    let gus = person(dir.path(), "gus", "Gus", Some(&relay_c));
    connect(&emery, &fay);
    connect(&emery, &gus);
    assert_eq!(channel_count(&relay_a), 2);

    let count = 24;
    let (halfway, at_halfway) = std::sync::mpsc::channel();
    let mut go = Vec::new();
    let mut senders = Vec::new();
    for who in ["fay", "gus"] {
        let (tx, rx) = std::sync::mpsc::channel();
        go.push(tx);
        senders.push(keep_sending(
            Person::new(dir.path(), who),
            "Emery",
            who,
            count,
            halfway.clone(),
            rx,
        ));
    }
    emery.ok(&["sync"]);
    at_halfway.recv().unwrap();
    at_halfway.recv().unwrap();
    let moved = emery.json(&["move", "--to", relay_b.url()]);
    assert_eq!(moved["moved"].as_array().unwrap().len(), 2, "{moved}");
    go.iter().for_each(|g| g.send(()).unwrap());
    for _ in 0..6 {
        emery.ok(&["sync"]);
        std::thread::sleep(Duration::from_millis(100));
    }
    for s in senders {
        s.join().unwrap();
    }
    for _ in 0..2 {
        sync_all(&[&fay, &gus, &emery]);
    }

    let expected = |prefix: &str| {
        (0..count)
            .map(|i| format!("{prefix} {i}"))
            .collect::<Vec<_>>()
    };
    let mut from_fay = received(&emery, "Fay", "Fay");
    from_fay.sort_by_key(|t| t[4..].parse::<usize>().unwrap());
    assert_eq!(from_fay, expected("fay"), "every message once");
    let mut from_gus = received(&emery, "Gus", "Gus");
    from_gus.sort_by_key(|t| t[4..].parse::<usize>().unwrap());
    assert_eq!(from_gus, expected("gus"), "every message once");
    assert_eq!(
        channel_count(&relay_a),
        0,
        "relay A holds none of Emery's channels"
    );

    // The contacts followed: they write to relay B now.
    emery.ok(&["send", "Fay", "from B"]);
    fay.ok(&["sync"]);
    assert!(received(&fay, "Emery", "Emery").contains(&"from B".to_string()));
    let info = fay.json(&["info", "Emery"]);
    let relays: Vec<&str> = info["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["relay_url"].as_str().unwrap())
        .collect();
    assert_eq!(relays, [relay_b.url().trim_end_matches('/')]);
    assert_eq!(
        emery.json(&["info", "Gus"])["channels"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "Gus's channel on C, Emery's on B"
    );
}

#[test]
fn a_move_reaches_contacts_while_the_old_relay_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay_a = relay();
    let relay_b = relay();
    let relay_c = relay();
    let emery = person(dir.path(), "emery", "Emery", Some(&relay_a));
    let hana = person(dir.path(), "hana", "Hana", Some(&relay_c));
    connect(&emery, &hana);
    hana.ok(&["send", "Emery", "before"]);
    emery.ok(&["sync"]);

    relay_a.terminate(Duration::from_secs(10)).unwrap();
    let moved = emery.run(&["move", "--to", relay_b.url()]);
    assert!(
        moved.status.success(),
        "{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    assert!(String::from_utf8_lossy(&moved.stderr).contains("queued"));
    hana.ok(&["sync"]); // learns the new address through her own relay
    hana.ok(&["send", "Emery", "while A is down"]);
    emery.ok(&["sync"]);
    emery.ok(&["send", "Hana", "Emery from B"]);
    hana.ok(&["sync"]);
    assert_eq!(
        received(&emery, "Hana", "Hana"),
        ["before", "while A is down"]
    );
    assert_eq!(received(&hana, "Emery", "Emery"), ["Emery from B"]);

    // A comes back: the old channel is drained and deleted.
    relay_a.restart().unwrap();
    sync_all(&[&emery, &hana, &emery]);
    assert_eq!(channel_count(&relay_a), 0);
    assert_eq!(
        received(&emery, "Hana", "Hana"),
        ["before", "while A is down"]
    );
}

#[test]
fn channels_rotate_on_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let alex = person(dir.path(), "alex", "Alex", Some(&relay));
    let blair = person(dir.path(), "blair", "Blair", None);
    connect(&alex, &blair);
    let before = alex.json(&["info", "Blair"])["channels"][0]["write_id"].clone();
    // Every channel is due at once: no waiting for the clock.
    let out = alex
        .command(&["sync"])
        .env("KITH_ROTATE_SECS", "0")
        .output()
        .unwrap();
    assert!(out.status.success());
    let info = alex.json(&["info", "Blair"]);
    let channels = info["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 2, "{info}");
    assert!(
        channels
            .iter()
            .any(|c| c["role"] == "retiring" && c["write_id"] == before)
    );
    blair.ok(&["sync"]);
    blair.ok(&["send", "Alex", "after the rotation"]);
    alex.ok(&["sync"]);
    assert_eq!(received(&alex, "Blair", "Blair"), ["after the rotation"]);
    let after = alex.json(&["info", "Blair"]);
    assert_eq!(after["channels"].as_array().unwrap().len(), 1, "{after}");
    assert_ne!(after["channels"][0]["write_id"], before);
    assert_eq!(
        channel_count(&relay),
        1,
        "the old ids are gone from the relay"
    );
}

/// Everything that identifies Alex in one relationship, as the contact
/// and the relay saw it: Alex's identity keys (the conversation's, and the
/// spare one offered for groups), the channels' ids, every capability key
/// registered on them, and the name Alex shows there.
fn identifiers(contact: &Person, alex_conv: &str, relay: &RelayProcess) -> BTreeSet<Vec<u8>> {
    let info = contact.json(&["info", alex_conv]);
    let mut ids = BTreeSet::new();
    for k in info["member_identities"].as_array().unwrap() {
        ids.insert(unhex(k.as_str().unwrap()));
    }
    ids.insert(
        info["conversation"]["name"]
            .as_str()
            .unwrap()
            .as_bytes()
            .to_vec(),
    );
    let db = relay_db(relay);
    for c in info["channels"].as_array().unwrap() {
        for field in ["write_id", "read_id", "my_key"] {
            ids.insert(unhex(c[field].as_str().unwrap()));
        }
        let mut stmt = db
            .prepare(
                "SELECT k.key FROM channel_keys k JOIN channels c ON c.id = k.channel_id WHERE c.write_id = ?1",
            )
            .unwrap();
        let keys = stmt
            .query_map([unhex(c["write_id"].as_str().unwrap())], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .unwrap();
        for key in keys {
            ids.insert(key.unwrap());
        }
    }
    let kp: Vec<u8> = rusqlite::Connection::open(contact.home.join("kith.db"))
        .unwrap()
        .query_row(
            "SELECT contact_kp FROM conversations WHERE id = ?1",
            [info["conversation"]["id"].as_str().unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    ids.insert(kith_crypto::mls::key_package_identity(&kp).unwrap());
    ids
}

/// Accepts the one request waiting on `owner`'s addresses.
fn accept_request(owner: &Person) {
    owner.ok(&["sync"]);
    let requests = owner.json(&["requests"]);
    let id = requests[0]["id"].to_string();
    owner.ok(&["requests", "accept", &id]);
}

#[test]
fn a_persona_shares_one_key_in_its_context_and_nothing_with_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let alex = person(dir.path(), "alex", "Alex Example", Some(&relay));
    let blair = person(dir.path(), "blair", "Blair", None);
    let casey = person(dir.path(), "casey", "Casey", None);
    let dana = person(dir.path(), "dana", "Dana", None);
    let school = alex.json(&["persona", "create", "School", "--display-name", "Alex K."]);
    let school_key = unhex(school["identity"].as_str().unwrap());

    // The school: Blair by invitation, Casey through the school persona's
    // address. The running club: Dana through another address.
    let link = alex.json(&["invite", "--persona", "School"])["link"]
        .as_str()
        .unwrap()
        .to_string();
    blair.ok(&["accept", &link]);
    let school_address = alex.json(&["address", "create", "--persona", "School"]);
    casey.ok(&["accept", school_address["link"].as_str().unwrap()]);
    accept_request(&alex);
    // The school's directory on the same relay: the persona joins and
    // lists itself (with an address made for the directory).
    common::relay_directory(&relay, &["create", "school", "--members-only"]);
    let enrolment = common::relay_directory(
        &relay,
        &[
            "admit",
            "school",
            "--statement",
            "current student",
            "--until",
            "2099-01-01",
            "--url",
            relay.url(),
        ],
    );
    alex.ok(&["directory", "join", &enrolment, "--persona", "School"]);
    alex.ok(&["directory", "publish", "school", "--text", "Year 11"]);
    let club_address = alex.json(&["address", "create", "--display-name", "Alex R."]);
    dana.ok(&["accept", club_address["link"].as_str().unwrap()]);
    accept_request(&alex);
    sync_all(&[&alex, &blair, &casey, &dana]);
    blair.ok(&["send", "Alex K.", "hi"]);
    casey.ok(&["send", "Alex K.", "hello"]);
    dana.ok(&["send", "Alex R.", "see you at the track"]);
    sync_all(&[&alex, &blair, &casey, &dana, &alex]);
    let out = alex
        .command(&["sync"])
        .env("KITH_ROTATE_SECS", "0")
        .output()
        .unwrap();
    assert!(out.status.success());
    sync_all(&[&blair, &casey, &dana, &alex]);

    let address_ids = |a: &Value| {
        let link = kith_core::AddressLink::parse(a["link"].as_str().unwrap()).unwrap();
        [link.write_id.0.to_vec(), link.box_public.to_vec()]
    };
    let with_blair = identifiers(&blair, "Alex K.", &relay);
    let mut with_casey = identifiers(&casey, "Alex K.", &relay);
    with_casey.extend(address_ids(&school_address));
    let mut with_dana = identifiers(&dana, "Alex R.", &relay);
    with_dana.extend(address_ids(&club_address));
    // In the school, one Alex: the persona's key is what Blair and Casey
    // share (and the name it shows).
    assert!(with_blair.contains(&school_key) && with_casey.contains(&school_key));
    let shared: Vec<_> = with_blair.intersection(&with_casey).collect();
    assert!(
        shared
            .iter()
            .all(|id| **id == school_key || id.as_slice() == b"Alex K."),
        "the school's contacts share more than the persona: {shared:?}"
    );
    // The club shares nothing with the school, and no file of one side
    // holds an identifier of the other.
    for school_side in [&with_blair, &with_casey] {
        let common: Vec<_> = school_side.intersection(&with_dana).collect();
        assert!(common.is_empty(), "common identifiers: {common:?}");
    }
    // The directory holds the school persona's key, and nothing of the
    // club: every row of its tables, as bytes.
    let db = common::relay_db(&relay);
    let mut directory_bytes = Vec::new();
    for table in [
        "directories",
        "directory_keys",
        "directory_members",
        "directory_entries",
    ] {
        let mut stmt = db.prepare(&format!("SELECT * FROM {table}")).unwrap();
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..columns {
                match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Blob(b) => directory_bytes.extend_from_slice(b),
                    rusqlite::types::ValueRef::Text(t) => directory_bytes.extend_from_slice(t),
                    _ => {}
                }
            }
        }
    }
    assert!(contains(&directory_bytes, &school_key));
    for id in &with_dana {
        assert!(
            !contains(&directory_bytes, id),
            "the directory holds a club identifier {id:?}"
        );
    }
    let dana_files = file_bytes(&dana.home);
    for id in with_blair.iter().chain(&with_casey) {
        assert!(!contains(&dana_files, id), "Dana's files hold {id:?}");
    }
    for school_contact in [&blair, &casey] {
        let files = file_bytes(&school_contact.home);
        for id in &with_dana {
            assert!(
                !contains(&files, id),
                "a school contact's files hold {id:?}"
            );
        }
    }
}

#[test]
fn two_contacts_pooling_everything_find_no_common_identifier() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let alex = person(dir.path(), "alex", "Alex Example", Some(&relay));
    let blair = person(dir.path(), "blair", "Blair", None);
    let charlie = person(dir.path(), "charlie", "Charlie", None);
    for (contact, shown) in [(&blair, "Alex B."), (&charlie, "Sasha")] {
        let link = alex.json(&["invite", "--name", shown])["link"]
            .as_str()
            .unwrap()
            .to_string();
        contact.ok(&["accept", &link]);
    }
    // Messages, spare key packages and a rotation: everything a
    // relationship normally carries.
    alex.ok(&["sync"]);
    blair.ok(&["send", "Alex B.", "hi"]);
    charlie.ok(&["send", "Sasha", "hello"]);
    sync_all(&[&alex, &blair, &charlie, &alex]);
    // Every channel is due at once: no waiting for the clock.
    let out = alex
        .command(&["sync"])
        .env("KITH_ROTATE_SECS", "0")
        .output()
        .unwrap();
    assert!(out.status.success());
    sync_all(&[&blair, &charlie]);
    alex.ok(&["send", "Blair", "after rotating"]);
    alex.ok(&["send", "Charlie", "after rotating"]);
    sync_all(&[&blair, &charlie, &alex]);

    let with_blair = identifiers(&blair, "Alex B.", &relay);
    let with_charlie = identifiers(&charlie, "Sasha", &relay);
    assert!(with_blair.len() >= 8 && with_charlie.len() >= 8);
    let common: Vec<_> = with_blair.intersection(&with_charlie).collect();
    assert!(common.is_empty(), "common identifiers: {common:?}");
    // Nor does anything one contact holds name Alex's other relationship.
    let (blair_files, charlie_files) = (file_bytes(&blair.home), file_bytes(&charlie.home));
    for id in &with_charlie {
        assert!(!contains(&blair_files, id), "Blair's files hold {id:?}");
    }
    for id in &with_blair {
        assert!(!contains(&charlie_files, id), "Charlie's files hold {id:?}");
    }
}
