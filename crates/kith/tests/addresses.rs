//! Contact addresses end to end (docs/spec/address-v1.md): real `kith`
//! processes against a real `kith-relay`, with its rate limits on.
//! Requesters come from different loopback addresses
//! (`KITH_SOURCE_ADDRESS`), as people on different networks would.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::Person;
use kith_testkit::{RelayOptions, RelayProcess};
use serde_json::Value;

/// Runs `args` as `who`, from the loopback address `source`; returns the
/// `--json` answer or error.
fn from(who: &Person, source: &str, args: &[&str]) -> (bool, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = who
        .command(&all)
        .env("KITH_SOURCE_ADDRESS", source)
        .output()
        .unwrap();
    let text = if out.status.success() {
        out.stdout
    } else {
        out.stderr
    };
    let value = serde_json::from_slice(text.trim_ascii()).unwrap_or_else(|_| {
        panic!(
            "kith {args:?}: not JSON: {}",
            String::from_utf8_lossy(&text)
        )
    });
    (out.status.success(), value)
}

#[test]
fn fifty_requesters_a_flood_from_one_source_and_a_deleted_address() {
    let dir = tempfile::tempdir().unwrap();
    // Rate limits on (the default), as a relay on the internet runs.
    let relay = RelayProcess::start(RelayOptions::default()).unwrap();
    let alex = Person::new(dir.path(), "alex");
    alex.ok(&["init", "--name", "Alex", "--relay", relay.url()]);
    let address = alex.json(&["address", "create", "--name", "Shop counter"]);
    let link = address["link"].as_str().unwrap().to_string();
    assert!(
        link.starts_with("kith:http://") && link.contains("/a/"),
        "{link}"
    );

    // Fifty people on fifty networks, a few at a time.
    let requesters: Vec<Person> = (0..50)
        .map(|i| Person::new(dir.path(), &format!("r{i}")))
        .collect();
    std::thread::scope(|s| {
        for batch in requesters.chunks(10).enumerate() {
            let (b, people) = batch;
            let link = &link;
            s.spawn(move || {
                for (j, p) in people.iter().enumerate() {
                    let i = b * 10 + j;
                    p.ok(&["init", "--name", &format!("Requester {i}")]);
                    let source = format!("127.0.0.{}", 10 + i);
                    let note = format!("note {i}");
                    let (ok, answer) = from(p, &source, &["accept", link, "--note", &note]);
                    assert!(ok, "requester {i}: {answer}");
                    assert_eq!(answer["state"], "invited", "{answer}");
                }
            });
        }
    });

    // All fifty arrive, each once, with what its sender chose to show.
    alex.ok(&["sync"]);
    let requests = alex.json(&["requests"]);
    let requests = requests.as_array().unwrap();
    assert_eq!(requests.len(), 50, "{requests:?}");
    let mut names: Vec<&str> = requests
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 50);
    for r in requests {
        let n = r["name"].as_str().unwrap().trim_start_matches("Requester ");
        assert_eq!(r["note"], format!("note {n}"));
        assert_eq!(r["address_label"], "Shop counter");
    }
    assert_eq!(alex.json(&["address", "list"])[0]["requests"], 50);
    let shown = alex.json(&["address", "show", "Shop counter"]);
    assert_eq!(shown["link"], link.as_str());
    let text = alex.ok(&["address", "show", "shop COUNTER"]);
    assert!(
        text.contains(link.as_str()) && text.contains("50 request(s) waiting"),
        "{text}"
    );

    // Accepting one connects the two; declining another sends nothing.
    let id_of = |name: &str| {
        requests
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| r["id"].to_string())
            .unwrap()
    };
    let accepted = alex.json(&["requests", "accept", &id_of("Requester 7")]);
    assert_eq!(accepted["name"], "Requester 7");
    alex.ok(&["requests", "decline", &id_of("Requester 8")]);
    assert_eq!(alex.json(&["requests"]).as_array().unwrap().len(), 48);
    alex.ok(&["send", "Requester 7", "hello from the shop"]);
    let seven = &requesters[7];
    let sync = seven.json(&["sync"]);
    assert_eq!(sync["connected"][0]["name"], "Alex", "{sync}");
    assert_eq!(
        seven.texts("Alex"),
        [("Alex".to_string(), "hello from the shop".to_string())]
    );
    seven.ok(&["send", "Alex", "thanks"]);
    alex.ok(&["sync"]);
    assert_eq!(alex.texts("Requester 7").last().unwrap().1, "thanks");
    // Declined: nothing arrives; the request waits, then expires.
    let eight = requesters[8].json(&["sync"]);
    assert!(eight["connected"].as_array().unwrap().is_empty(), "{eight}");

    // The relay holds sealed requests: no name or note in its files.
    let files = kith_testkit::relay_files(&relay.db_path());
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_default();
        for needle in [&b"Requester 1"[..], b"note 1", b"Shop counter"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds {:?}",
                file.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }

    // A flood from one source: the relay takes its burst, then refuses.
    let flooder = Person::new(dir.path(), "flooder");
    flooder.ok(&["init", "--name", "Flood"]);
    let answers: Vec<(bool, Value)> = (0..8)
        .map(|_| from(&flooder, "127.0.0.200", &["accept", &link]))
        .collect();
    let taken = answers.iter().filter(|(ok, _)| *ok).count();
    assert_eq!(taken, 5, "{answers:?}");
    for (ok, answer) in &answers[5..] {
        assert!(!ok);
        assert_eq!(answer["error"]["code"], "address_busy", "{answer}");
    }
    // Refused requests leave nothing behind with the flooder.
    let waiting = flooder.json(&["list"]).as_array().unwrap().len();
    assert_eq!(waiting, 5);
    // Someone else on another network is not held back by the flood.
    let late = Person::new(dir.path(), "late");
    late.ok(&["init", "--name", "Late"]);
    assert!(from(&late, "127.0.0.201", &["accept", &link]).0);

    // Deleted: the relay refuses every further request.
    alex.ok(&["address", "delete", "Shop counter"]);
    assert!(
        alex.json(&["address", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let after = Person::new(dir.path(), "after");
    after.ok(&["init", "--name", "After"]);
    let (ok, answer) = from(&after, "127.0.0.202", &["accept", &link]);
    assert!(!ok);
    assert_eq!(answer["error"]["code"], "address_gone", "{answer}");
    // The conversation already started goes on.
    alex.ok(&["send", "Requester 7", "still here"]);
    seven.ok(&["sync"]);
    assert_eq!(seven.texts("Alex").last().unwrap().1, "still here");
}

#[test]
fn a_requester_cannot_read_the_address_and_bad_links_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let relay = common::relay();
    let alex = Person::new(dir.path(), "alex");
    alex.ok(&["init", "--name", "Alex", "--relay", relay.url()]);
    let link = alex.json(&["address", "create"])["link"]
        .as_str()
        .unwrap()
        .to_string();
    let blair = Person::new(dir.path(), "blair");
    blair.ok(&["init", "--name", "Blair"]);
    blair.ok(&["accept", &link, "--note", "hello"]);

    // The key every holder of the link has may append, not read: nobody
    // sees another's request (and each is sealed to Alex's key anyway).
    let parsed = kith_core::AddressLink::parse(&link).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rights = rt.block_on(async {
        let client = kith_relay_client::RelayClient::new(relay.url()).unwrap();
        client
            .status(
                &parsed.guest_key().unwrap(),
                kith_wire::relay::ChannelRef::Write(parsed.write_id),
            )
            .await
            .unwrap()
            .rights
    });
    assert_eq!(rights, kith_wire::relay::Rights::WRITE);

    // A changed character, a truncated link, a note too long: one line
    // each, nothing sent, the address still works.
    let mut broken = link.clone();
    broken.pop();
    for (args, needle) in [
        (vec!["accept", broken.as_str()], "malformed key"),
        (
            vec!["accept", link.as_str(), "--note", &"x".repeat(1025)],
            "note",
        ),
        (
            vec!["accept", "kith:http://127.0.0.1:1/a/AAAA#BBBB"],
            "malformed",
        ),
    ] {
        let out = blair.run(&args);
        assert!(!out.status.success());
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(needle) && err.lines().count() == 1, "{err}");
    }
    // A note goes with an address only.
    let invite = alex.json(&["invite"])["link"].as_str().unwrap().to_string();
    let out = blair.run(&["accept", &invite, "--note", "hi"]);
    assert!(!out.status.success());
    alex.ok(&["sync"]);
    assert_eq!(alex.json(&["requests"]).as_array().unwrap().len(), 1);
    // One's own address is refused.
    let out = alex.run(&["accept", &link]);
    assert!(!out.status.success());
    // Addresses are not conversations: the list holds the invitation only.
    let list = alex.json(&["list"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["state"], "invited");
}
