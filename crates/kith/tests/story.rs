//! End to end through the `kith` binary against a real `kith-relay`
//! process: two people meet by a one-time link, only Alex runs a relay, and
//! they talk; the relay never sees a plaintext or a name; tampering and
//! replays by the relay are caught.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use kith_testkit::RelayProcess;
use serde_json::Value;

mod common;
use common::{Person, meet, relay, watch};

#[test]
fn two_people_meet_and_talk_through_one_relay() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = relay();
    let (alex, blair) = meet(dir.path(), &relay);

    // One link, one conversation: a second accept is refused clearly.
    let link = alex.json(&["invite"])["link"].as_str().unwrap().to_string();
    let charlie = Person::new(dir.path(), "charlie");
    charlie.ok(&["init", "--name", "Charlie"]);
    charlie.ok(&["accept", &link]);
    let again = blair.run(&["accept", &link]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("already used or has expired"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // Both directions, by name and by id prefix.
    alex.ok(&["send", "Blair Sample", "hello Blair, it is Alex"]);
    blair.ok(&["send", "alex example", "hi Alex!"]);
    let conv = alex
        .json(&["list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Blair Sample")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    alex.ok(&["send", &conv[..6], "second from Alex"]);
    blair.ok(&["sync"]);
    alex.ok(&["sync"]);
    let expected_alex = vec![
        ("me".to_string(), "hello Blair, it is Alex".to_string()),
        ("Blair Sample".to_string(), "hi Alex!".to_string()),
        ("me".to_string(), "second from Alex".to_string()),
    ];
    assert_eq!(alex.texts(&conv), expected_alex);
    let blair_view = blair.texts("Alex Example");
    assert_eq!(blair_view.len(), 3, "{blair_view:?}");
    assert!(blair_view.contains(&(
        "Alex Example".to_string(),
        "hello Blair, it is Alex".to_string()
    )));
    assert!(blair_view.contains(&("me".to_string(), "hi Alex!".to_string())));

    // list: unread counts, newest first.
    blair.ok(&["send", "Alex Example", "unread one"]);
    alex.ok(&["sync"]);
    let list = alex.json(&["list"]);
    let first = &list.as_array().unwrap()[0];
    assert_eq!(first["name"], "Blair Sample", "{list}");
    assert_eq!(first["unread"], 1, "{list}");

    // watch: a message arrives within a second.
    let (mut child, lines) = watch(&alex);
    let live = lines.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(live["event"], "live", "{live}");
    blair.ok(&["send", "Alex Example", "live message"]);
    let sent = Instant::now();
    let line = lines
        .recv_timeout(Duration::from_secs(5))
        .expect("watch printed nothing");
    let latency = sent.elapsed();
    assert_eq!(line["text"], "live message", "{line}");
    assert!(latency < Duration::from_secs(1), "watch took {latency:?}");
    child.kill().unwrap();
    child.wait().unwrap();

    // Restart the relay; the clients are processes and restart each time.
    relay.terminate(Duration::from_secs(10)).unwrap();
    relay.restart().unwrap();
    alex.ok(&["sync"]);
    blair.ok(&["sync"]);
    alex.ok(&["send", &conv, "after the restart"]);
    blair.ok(&["sync"]);
    alex.ok(&["sync"]);
    let history = alex.texts(&conv);
    assert_eq!(history.len(), 6, "{history:?}");
    let blair_history = blair.texts("Alex Example");
    assert_eq!(blair_history.len(), 6, "{blair_history:?}");
    assert_eq!(blair_history.last().unwrap().1, "after the restart");
    for h in [&history, &blair_history] {
        let mut texts: Vec<_> = h.iter().map(|(_, t)| t.clone()).collect();
        texts.sort();
        texts.dedup();
        assert_eq!(texts.len(), 6, "duplicates shown: {h:?}");
    }

    // Rename and delete.
    alex.ok(&["rename", &conv, "B."]);
    assert_eq!(alex.texts("B.").len(), 6);
    charlie.ok(&["delete", "Alex Example"]);
    assert_eq!(charlie.json(&["list"]).as_array().unwrap().len(), 0);

    // The relay holds no plaintext and no display name, in any of its files.
    relay.terminate(Duration::from_secs(10)).unwrap();
    let secrets = [
        "hello Blair, it is Alex",
        "hi Alex!",
        "second from Alex",
        "unread one",
        "live message",
        "after the restart",
        "Alex Example",
        "Blair Sample",
        "Charlie",
    ];
    let db = relay.db_path();
    let mut checked = 0;
    for path in kith_testkit::relay_files(&db) {
        let bytes = std::fs::read(&path).unwrap();
        checked += bytes.len();
        for s in secrets {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "{s:?} found in {}",
                path.display()
            );
        }
    }
    assert!(checked > 0);
}

#[test]
fn unknown_conversations_and_missing_profiles_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let nobody = Person::new(dir.path(), "nobody");
    for args in [&["list"][..], &["send", "x", "y"], &["invite"]] {
        let out = nobody.run(args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("kith init"), "{err}");
        assert_eq!(err.lines().count(), 1);
    }
    let alex = Person::new(dir.path(), "alex");
    alex.ok(&["init", "--name", "Alex"]);
    let out = alex.run(&["invite"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no relay"));
    let out = alex.run(&["send", "nobody", "hi"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no conversation matches"));
    let out = alex.run(&["accept", "kith:http://127.0.0.1:1/i/AAAA#BBBB"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a kith invitation link"));
}

/// Direct access to the relay's store, as a malicious relay operator has.
fn relay_db(relay: &RelayProcess) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(relay.db_path()).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db
}

#[test]
fn tampered_and_replayed_messages_are_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, blair) = meet(dir.path(), &relay);

    // The relay alters the ciphertext of Blair's next message.
    blair.ok(&["send", "Alex Example", "altered in transit"]);
    {
        let db = relay_db(&relay);
        let (rowid, mut payload): (i64, Vec<u8>) = db
            .query_row(
                "SELECT rowid, payload FROM messages ORDER BY rowid DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        // Padded { u32 len; Envelope { u8 version; u8 kind; u32 len; mls } }:
        // flip the last byte of the MLS message (its AEAD tag).
        let mls_len = u32::from_be_bytes(payload[6..10].try_into().unwrap()) as usize;
        payload[10 + mls_len - 1] ^= 0x01;
        db.execute(
            "UPDATE messages SET payload = ?1 WHERE rowid = ?2",
            rusqlite::params![payload, rowid],
        )
        .unwrap();
    }
    let sync = alex.json(&["sync"]);
    assert_eq!(sync["messages"].as_array().unwrap().len(), 0, "{sync}");
    assert_eq!(
        sync["integrity_events"].as_array().unwrap().len(),
        1,
        "{sync}"
    );
    let list = alex.json(&["list"]);
    assert_eq!(list[0]["integrity_events"], 1, "{list}");
    let read = alex.ok(&["read", "Blair Sample"]);
    assert!(!read.contains("altered in transit"));
    assert!(read.contains("refused (integrity)"), "{read}");

    // The next message still arrives; then the relay replays it.
    blair.ok(&["send", "Alex Example", "said once"]);
    alex.ok(&["sync"]);
    {
        let db = relay_db(&relay);
        db.execute_batch(
            "INSERT INTO messages (channel_id, seq, received_at, expires_at, payload)
               SELECT m.channel_id, c.last_seq + 1, m.received_at, m.expires_at, m.payload
               FROM messages m JOIN channels c ON c.id = m.channel_id
               WHERE m.rowid = (SELECT MAX(rowid) FROM messages);
             UPDATE channels SET last_seq = last_seq + 1
               WHERE id = (SELECT channel_id FROM messages WHERE rowid = (SELECT MAX(rowid) FROM messages));",
        )
        .unwrap();
    }
    let sync = alex.json(&["sync"]);
    assert_eq!(sync["messages"].as_array().unwrap().len(), 0, "{sync}");
    let texts = alex.texts("Blair Sample");
    assert_eq!(
        texts.iter().filter(|(_, t)| t == "said once").count(),
        1,
        "{texts:?}"
    );
}

#[test]
fn with_two_relays_the_conversation_survives_either_going_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay_a = relay();
    let mut relay_b = relay();
    let alex = Person::new(dir.path(), "alex");
    let blair = Person::new(dir.path(), "blair");
    alex.ok(&["init", "--name", "Alex", "--relay", relay_a.url()]);
    blair.ok(&["init", "--name", "Blair", "--relay", relay_b.url()]);
    let link = alex.json(&["invite"])["link"].as_str().unwrap().to_string();
    blair.ok(&["accept", &link]);
    alex.ok(&["sync"]); // joins, and learns Blair's channel on relay B

    // Relay A (the first channel's) goes down: both fall back to B.
    relay_a.terminate(Duration::from_secs(10)).unwrap();
    blair.ok(&["send", "Alex", "via B while A is down"]);
    alex.ok(&["send", "Blair", "Alex also via B"]);
    let sync = alex.run(&["sync"]);
    assert!(sync.status.success());
    assert!(
        String::from_utf8_lossy(&sync.stderr).contains("warning"),
        "A's failure is reported"
    );
    blair.ok(&["sync"]);
    assert!(
        alex.texts("Blair")
            .contains(&("Blair".into(), "via B while A is down".into()))
    );
    assert!(
        blair
            .texts("Alex")
            .contains(&("Alex".into(), "Alex also via B".into()))
    );

    // A comes back, B goes down: the first channel carries it again.
    relay_a.restart().unwrap();
    relay_b.terminate(Duration::from_secs(10)).unwrap();
    blair.ok(&["send", "Alex", "via A again"]);
    alex.run(&["sync"]);
    relay_b.restart().unwrap();
    alex.ok(&["sync"]);
    blair.ok(&["sync"]);
    let texts = alex.texts("Blair");
    assert_eq!(texts.len(), 3, "nothing lost, nothing doubled: {texts:?}");
    assert_eq!(blair.texts("Alex").len(), 3);
}

#[test]
fn of_two_people_racing_for_one_link_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let alex = Person::new(dir.path(), "alex");
    alex.ok(&["init", "--name", "Alex", "--relay", relay.url()]);
    // A different name for this relationship only.
    let link = alex.json(&["invite", "--name", "Coach A."])["link"]
        .as_str()
        .unwrap()
        .to_string();
    // Opening the https form in a browser shows how to accept it, and does
    // not use it up.
    let web = alex.json(&["invite"])["web_link"]
        .as_str()
        .unwrap()
        .to_string();
    let page = http_get(web.split('#').next().unwrap());
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("kith accept"), "{page}");
    let visitor = Person::new(dir.path(), "visitor");
    visitor.ok(&["init", "--name", "Visitor"]);
    visitor.ok(&["accept", &web]);
    let racers: Vec<Person> = (0..4)
        .map(|i| Person::new(dir.path(), &format!("racer{i}")))
        .collect();
    for r in &racers {
        r.ok(&["init", "--name", "Racer"]);
    }
    let children: Vec<Child> = racers
        .iter()
        .map(|r| {
            r.command(&["--json", "accept", &link])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let winners: Vec<&Output> = outputs.iter().filter(|o| o.status.success()).collect();
    assert_eq!(winners.len(), 1, "{outputs:?}");
    let won: Value = serde_json::from_slice(&winners[0].stdout).unwrap();
    assert_eq!(won["name"], "Coach A.");
    for lost in outputs.iter().filter(|o| !o.status.success()) {
        assert!(String::from_utf8_lossy(&lost.stderr).contains("already used or has expired"));
    }
    alex.ok(&["sync"]);
    let list = alex.json(&["list"]);
    let states: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["state"].clone(), c["my_name"].clone()))
        .collect();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert!(
        states.contains(&("active".into(), "Coach A.".into())),
        "{list}"
    );
    assert!(states.contains(&("active".into(), "Alex".into())), "{list}");
}

/// A plain HTTP GET, as a browser would send it (never the fragment).
fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn a_message_sent_while_the_relay_is_down_is_kept_and_sent_later_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = relay();
    let (alex, blair) = meet(dir.path(), &relay);
    relay.terminate(Duration::from_secs(10)).unwrap();
    let out = blair.run(&["send", "Alex Example", "written offline"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("queued"), "{err}");
    assert_eq!(blair.texts("Alex Example").len(), 1, "kept locally");
    blair.run(&["send", "Alex Example", "second offline"]);
    relay.restart().unwrap();
    blair.ok(&["sync"]);
    blair.ok(&["sync"]);
    alex.ok(&["sync"]);
    let texts: Vec<String> = alex
        .texts("Blair Sample")
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(texts, ["written offline", "second offline"]);
}

/// The client's promise (pair-v1.md §6): MLS state, messages and cursors are
/// written together, so killing `kith sync` at any moment loses nothing,
/// shows nothing twice and never desynchronises the session.
#[test]
fn killing_the_client_mid_sync_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, blair) = meet(dir.path(), &relay);
    const N: usize = 40;
    for i in 0..N {
        blair.ok(&["send", "Alex Example", &format!("message {i:02}")]);
    }
    for delay_ms in [15u64, 40, 70, 110, 25, 160, 60] {
        let mut child = alex
            .command(&["sync"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();
    }
    alex.ok(&["sync"]);
    let mut texts: Vec<String> = alex
        .texts("Blair Sample")
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(texts.len(), N, "{texts:?}");
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), N);
    assert_eq!(alex.json(&["list"])[0]["integrity_events"], 0);
    // The session is intact both ways.
    blair.ok(&["send", "Alex Example", "after the crashes"]);
    alex.ok(&["send", "Blair Sample", "still here"]);
    alex.ok(&["sync"]);
    blair.ok(&["sync"]);
    assert_eq!(alex.texts("Blair Sample").last().unwrap().1, "still here");
    assert!(
        blair
            .texts("Alex Example")
            .iter()
            .any(|(_, t)| t == "still here")
    );
    assert!(
        alex.texts("Blair Sample")
            .iter()
            .any(|(_, t)| t == "after the crashes")
    );
}
