//! `kith up` end to end: real relay and daemon processes, the CLI going
//! through the daemon, the JSON API against its OpenAPI document, the
//! event log from a cursor, and the example bot surviving a restart.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::process::{Command, Stdio};

use common::{Person, Up, eventually, meet, relay};
use kith_testkit::http::{Events, request};
use kith_testkit::openapi::{answer_pointer, check};
use serde_json::{Value, json};

fn openapi(up: &Up) -> Value {
    up.call("GET", "/api/v1/openapi.json", None)
}

/// Checks an answer against the document's schema for that operation.
fn conforms(doc: &Value, path: &str, method: &str, value: &Value) {
    if let Err(e) = check(doc, &answer_pointer(path, method), value) {
        panic!("{method} {path} answered against the document: {e}\n{value}");
    }
}

#[test]
fn the_cli_goes_through_a_running_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, blair) = meet(dir.path(), &relay);
    let up = Up::start(&alex);

    // The daemon holds the profile; without it these would wait for the
    // lock and fail.
    let sent = alex.json(&["send", "Blair Sample", "through the daemon"]);
    assert_eq!(sent["text"], "through the daemon");
    let out = alex.run_with_stdin(&["send", "Blair Sample", "-"], b"from standard input");
    assert!(out.status.success(), "{out:?}");

    // A failure is one line and exit code 1, as without a daemon.
    let out = alex.run(&["send", "nobody", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("kith: "), "{err}");
    let out = alex.run(&["--json", "send", "nobody", "hi"]);
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["code"], "no_such_conversation");

    // A server for calls that is not one is refused before anything.
    let bad = blair.run(&["up", "--listen", "127.0.0.1:0", "--ice-server", "http://x"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a STUN or TURN server"));

    // A second daemon for the same profile is refused.
    let second = alex
        .command(&["up", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!second.status.success());

    // What Blair sends arrives in Alex's daemon by itself: no sync.
    blair.ok(&["sync"]);
    let texts: Vec<String> = blair
        .texts("Alex Example")
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(texts, ["through the daemon", "from standard input"]);
    // `watch` through the daemon: what arrives, as `watch --json` says it.
    let (mut watching, lines) = common::watch(&alex);
    let live = lines
        .recv_timeout(std::time::Duration::from_secs(20))
        .unwrap();
    assert_eq!(live["event"], "live", "{live}");
    blair.ok(&["send", "Alex Example", "pushed to the daemon"]);
    let line = lines
        .recv_timeout(std::time::Duration::from_secs(20))
        .unwrap();
    assert_eq!(line["event"], "message", "{line}");
    assert_eq!(line["text"], "pushed to the daemon");
    watching.kill().unwrap();
    watching.wait().unwrap();
    eventually(20, "Blair's message in Alex's daemon", || {
        alex.texts("Blair Sample")
            .iter()
            .any(|(_, t)| t == "pushed to the daemon")
    });

    // Stopped (SIGTERM), the profile is the CLI's again.
    up.stop();
    assert!(!alex.home.join("kith.sock").exists());
    assert!(!alex.home.join("daemon.json").exists());
    assert!(alex.ok(&["list"]).contains("Blair Sample"));
}

#[test]
fn the_api_answers_as_its_document_says_and_refuses_strangers() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, blair) = meet(dir.path(), &relay);
    let up = Up::start(&alex);
    let doc = openapi(&up);
    let conv = alex.json(&["list"])[0]["id"].as_str().unwrap().to_string();

    let list = up.call("GET", "/api/v1/conversations", None);
    conforms(&doc, "/api/v1/conversations", "get", &list);
    let profile = up.call("GET", "/api/v1/profile", None);
    conforms(&doc, "/api/v1/profile", "get", &profile);
    assert_eq!(profile["name"], "Alex Example");
    let sent = up.call(
        "POST",
        &format!("/api/v1/conversations/{conv}/messages"),
        Some(json!({"text": "**hello** <b>there</b>"})),
    );
    conforms(&doc, "/api/v1/conversations/{conv}/messages", "post", &sent);
    let id = sent["id"].as_str().unwrap();
    let replied = up.call(
        "POST",
        &format!("/api/v1/conversations/{conv}/messages"),
        Some(json!({"text": "a reply", "reply_to": id})),
    );
    assert_eq!(replied["reply_to"]["id"], id);
    let edited = up.call(
        "POST",
        &format!("/api/v1/conversations/{conv}/messages/{id}/edit"),
        Some(json!({"text": "edited"})),
    );
    conforms(
        &doc,
        "/api/v1/conversations/{conv}/messages/{msg}/edit",
        "post",
        &edited,
    );
    let invite = up.call("POST", "/api/v1/invitations", None);
    conforms(&doc, "/api/v1/invitations", "post", &invite);
    assert!(invite["qr_svg"].as_str().unwrap().starts_with("<?xml"));
    let info = up.call("GET", &format!("/api/v1/conversations/{conv}"), None);
    conforms(&doc, "/api/v1/conversations/{conv}", "get", &info);
    let group = up.call("POST", "/api/v1/groups", Some(json!({"name": "Book club"})));
    conforms(&doc, "/api/v1/groups", "post", &group);
    let added = up.call(
        "POST",
        "/api/v1/groups/Book club/members"
            .replace(' ', "%20")
            .as_str(),
        Some(json!({"conversation": conv})),
    );
    conforms(&doc, "/api/v1/groups/{group}/members", "post", &added);
    let members = up.call("GET", "/api/v1/groups/Book%20club/members", None);
    conforms(&doc, "/api/v1/groups/{group}/members", "get", &members);
    let sync = up.call("POST", "/api/v1/sync", None);
    conforms(&doc, "/api/v1/sync", "post", &sync);
    let page = up.call(
        "GET",
        &format!("/api/v1/conversations/{conv}/messages?limit=1"),
        None,
    );
    conforms(&doc, "/api/v1/conversations/{conv}/messages", "get", &page);
    assert_eq!(page.as_array().unwrap().len(), 1);
    let events = up.call("GET", "/api/v1/events?after=0", None);
    conforms(&doc, "/api/v1/events", "get", &events);
    let calls = up.call("GET", "/api/v1/calls/config", None);
    conforms(&doc, "/api/v1/calls/config", "get", &calls);
    assert_eq!(calls["ice_servers"], json!([]));

    // Blair joins the group and says something: it appears as an event.
    eventually(20, "Blair in the group", || {
        blair.ok(&["sync"]);
        blair.ok(&["list"]).contains("Book club")
    });
    blair.ok(&["send", "Book club", "hello club"]);
    eventually(20, "Blair's group message", || {
        up.call("GET", "/api/v1/conversations/Book%20club/messages", None)
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["text"] == "hello club")
    });

    // Bad input: a clear error, in the document's shape.
    let bad = up.raw(
        "POST",
        &format!("/api/v1/conversations/{conv}/messages"),
        Some(json!({"txt": "typo"})),
    );
    assert!(bad.status == 422 || bad.status == 400, "{}", bad.status);
    let missing = up.raw("GET", "/api/v1/conversations/nobody", None);
    assert_eq!(missing.status, 404);
    check(&doc, "/components/schemas/Error", &missing.json()).unwrap();

    // Strangers: no token, another site's page, another host name.
    let url = format!("{}/api/v1/conversations", up.url);
    assert_eq!(request("GET", &url, &[], b"").unwrap().status, 401);
    let auth = format!("Bearer {}", up.token);
    let rebinding = request(
        "GET",
        &url,
        &[("Host", "evil.example"), ("Authorization", &auth)],
        b"",
    )
    .unwrap();
    assert_eq!(rebinding.status, 403);
    let csrf = request(
        "POST",
        &format!("{}/api/v1/conversations/{conv}/messages", up.url),
        &[
            ("Origin", "http://evil.example"),
            ("Cookie", &format!("kith_token={}", up.token)),
            ("Content-Type", "application/json"),
        ],
        br#"{"text":"forged"}"#,
    )
    .unwrap();
    assert_eq!(csrf.status, 403);
    assert!(
        !alex
            .texts("Blair Sample")
            .iter()
            .any(|(_, t)| t == "forged"),
        "a forged request was sent"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for file in ["daemon.token", "daemon.json", "kith.sock"] {
            let mode = std::fs::metadata(alex.home.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{file} is readable by others: {mode:o}");
        }
    }
}

#[test]
fn contact_requests_arrive_live_and_are_answered_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, [casey, dana]) = common::alex_and(dir.path(), &relay, ["Casey", "Dana"]);
    let up = Up::start(&alex);
    let doc = openapi(&up);
    let head = up.call("GET", "/api/v1/events?after=0", None)["cursor"].clone();

    let address = up.call(
        "POST",
        "/api/v1/addresses",
        Some(json!({"label": "Profile page"})),
    );
    conforms(&doc, "/api/v1/addresses", "post", &address);
    assert!(address["qr_svg"].as_str().unwrap().starts_with("<?xml"));
    let link = address["link"].as_str().unwrap().to_string();
    let list = up.call("GET", "/api/v1/addresses", None);
    conforms(&doc, "/api/v1/addresses", "get", &list);
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Addresses are not conversations, for the API either.
    let convs = up.call("GET", "/api/v1/conversations", None);
    assert!(convs.as_array().unwrap().is_empty(), "{convs}");

    casey.ok(&["accept", &link, "--note", "from your <b>page</b>"]);
    dana.ok(&["accept", &link]);
    // The daemon watches the address: both arrive as events, unasked.
    let mut requests = Vec::new();
    eventually(20, "two request events", || {
        let page = up.call("GET", &format!("/api/v1/events?after={head}"), None);
        conforms(&doc, "/api/v1/events", "get", &page);
        requests = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "request")
            .map(|e| e["request"].clone())
            .collect();
        requests.len() == 2
    });
    let listed = up.call("GET", "/api/v1/requests", None);
    conforms(&doc, "/api/v1/requests", "get", &listed);
    let from = |name: &str| {
        requests
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no request from {name}: {requests:?}"))
    };
    assert_eq!(from("Casey")["note"], "from your <b>page</b>");
    assert_eq!(from("Casey")["address_label"], "Profile page");

    let casey_id = from("Casey")["id"].to_string();
    let accepted = up.call("POST", &format!("/api/v1/requests/{casey_id}/accept"), None);
    conforms(&doc, "/api/v1/requests/{id}/{answer}", "post", &accepted);
    assert_eq!(accepted["conversation"]["name"], "Casey");
    let dana_id = from("Dana")["id"].to_string();
    let declined = up.call("POST", &format!("/api/v1/requests/{dana_id}/decline"), None);
    conforms(&doc, "/api/v1/requests/{id}/{answer}", "post", &declined);
    let missing = up.raw("POST", &format!("/api/v1/requests/{dana_id}/accept"), None);
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert!(
        up.call("GET", "/api/v1/requests", None)
            .as_array()
            .unwrap()
            .is_empty()
    );
    eventually(20, "Casey connected", || {
        casey.json(&["sync"])["connected"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    });

    let deleted = up.call("DELETE", "/api/v1/addresses/Profile%20page", None);
    conforms(&doc, "/api/v1/addresses/{address}", "delete", &deleted);
    let late = Person::new(dir.path(), "late");
    late.ok(&["init", "--name", "Late"]);
    let out = late.run(&["--json", "accept", &link]);
    let err: Value = serde_json::from_slice(out.stderr.trim_ascii()).unwrap();
    assert_eq!(err["error"]["code"], "address_gone", "{err}");
}

#[test]
fn events_resume_from_a_cursor_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, blair) = meet(dir.path(), &relay);
    let up = Up::start(&alex);
    let start = up.call("GET", "/api/v1/events?from=now", None)["cursor"]
        .as_u64()
        .unwrap();

    // A stream opened now sees Blair's messages as they arrive.
    let auth = format!("Bearer {}", up.token);
    let mut stream = Events::open(
        &format!("{}/api/v1/events?after={start}", up.url),
        &[("Authorization", &auth)],
    )
    .unwrap();
    assert_eq!(stream.status, 200);
    for i in 0..5 {
        blair.ok(&["send", "Alex Example", &format!("number {i}")]);
    }
    let mut seen = Vec::new();
    let mut last_id = String::new();
    while seen.len() < 5 {
        let event = stream.next_event().unwrap();
        last_id = event.id.clone().unwrap();
        if event.event.as_deref() == Some("message") {
            let e: Value = serde_json::from_str(&event.data).unwrap();
            seen.push(e["message"]["text"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(
        seen,
        (0..5).map(|i| format!("number {i}")).collect::<Vec<_>>()
    );
    drop(stream);

    // Away: three more arrive. Coming back with the last id gets those
    // three, once, in order; coming back again from the end gets nothing.
    for i in 5..8 {
        blair.ok(&["send", "Alex Example", &format!("number {i}")]);
    }
    eventually(20, "three more stored", || {
        alex.texts("Blair Sample").len() >= 8
    });
    let mut resumed = Events::open(
        &format!("{}/api/v1/events", up.url),
        &[("Authorization", &auth), ("Last-Event-ID", &last_id)],
    )
    .unwrap();
    let mut again = Vec::new();
    while again.len() < 3 {
        let event = resumed.next_event().unwrap();
        assert!(event.id.as_deref().unwrap().parse::<u64>().unwrap() > last_id.parse().unwrap());
        if event.event.as_deref() == Some("message") {
            let e: Value = serde_json::from_str(&event.data).unwrap();
            again.push(e["message"]["text"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(again, ["number 5", "number 6", "number 7"]);

    // The long poll: the same log, a page at a time.
    let page = up.call("GET", &format!("/api/v1/events?after={last_id}"), None);
    let texts: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "message")
        .map(|e| e["message"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["number 5", "number 6", "number 7"]);
    let end = page["cursor"].as_u64().unwrap();
    let t = std::time::Instant::now();
    let empty = up.call("GET", &format!("/api/v1/events?after={end}&wait=1"), None);
    assert!(t.elapsed() >= std::time::Duration::from_millis(900));
    assert_eq!(empty["events"], json!([]));
    assert_eq!(empty["cursor"].as_u64(), Some(end));
}

/// The example bot answers every message once, including those that came
/// while it was stopped.
#[test]
fn the_echo_bot_answers_what_came_while_it_was_away() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, blair) = meet(dir.path(), &relay);
    let _up = Up::start(&alex);
    let bot_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/echo_bot.py");
    let cursor = dir.path().join("bot-cursor.json");
    let start_bot = || {
        Command::new("python3")
            .arg(bot_path)
            .arg("--home")
            .arg(&alex.home)
            .arg("--cursor")
            .arg(&cursor)
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let echoes = || -> Vec<String> {
        blair.ok(&["sync"]);
        blair
            .texts("Alex Example")
            .into_iter()
            .filter(|(from, t)| from == "Alex Example" && t.starts_with("echo: "))
            .map(|(_, t)| t)
            .collect()
    };

    let mut bot = start_bot();
    eventually(20, "the bot's cursor", || cursor.exists());
    blair.ok(&["send", "Alex Example", "first"]);
    eventually(30, "the first echo", || echoes() == ["echo: first"]);
    bot.kill().unwrap();
    bot.wait().unwrap();

    for text in ["one", "two", "three"] {
        blair.ok(&["send", "Alex Example", text]);
    }
    let mut bot = start_bot();
    eventually(30, "three echoes", || echoes().len() >= 4);
    // A little longer: nothing is answered twice.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(
        echoes(),
        ["echo: first", "echo: one", "echo: two", "echo: three"]
    );
    bot.kill().unwrap();
    bot.wait().unwrap();
}

/// While a large file travels, the daemon goes on: with the file's relay
/// frozen (SIGSTOP) mid-upload, a group on another relay still gets and
/// sends messages through the same daemon; thawed, the file completes.
#[test]
fn messages_keep_moving_while_a_file_travels() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let other = common::relay();
    let (alex, blair) = meet(dir.path(), &relay);
    alex.ok(&["group", "create", "Walkers", "--relay", other.url()]);
    alex.ok(&["group", "add", "Walkers", "Blair Sample"]);
    eventually(20, "Blair in the group", || {
        alex.ok(&["sync"]);
        blair.ok(&["sync"]);
        blair.ok(&["list"]).contains("Walkers")
    });
    let up = Up::start(&alex);
    let url = format!(
        "{}/api/v1/conversations/Blair%20Sample/files?name=big.bin",
        up.url
    );
    let auth = format!("Bearer {}", up.token);
    let body: Vec<u8> = (0..96u32 << 20).map(|i| (i % 251) as u8).collect();
    let upload = std::thread::spawn(move || {
        request("POST", &url, &[("Authorization", &auth)], &body).unwrap()
    });
    // The chunks have begun to move: freeze the file's relay.
    eventually(60, "the upload under way", || {
        up.call("GET", "/api/v1/transfers", None)
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["total_bytes"].as_u64() > Some(0))
    });
    let pid = relay.pid().unwrap().to_string();
    let signal = |s: &str| Command::new("kill").args([s, &pid]).status().unwrap();
    signal("-STOP");
    let still = up.call("GET", "/api/v1/transfers", None);
    assert_eq!(
        still.as_array().unwrap().len(),
        1,
        "the upload ended too soon: {still}"
    );

    blair.ok(&["send", "Walkers", "while the file travels"]);
    eventually(20, "Blair's group message at Alex", || {
        up.call("GET", "/api/v1/conversations/Walkers/messages", None)
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["text"] == "while the file travels")
    });
    up.call(
        "POST",
        "/api/v1/conversations/Walkers/messages",
        Some(json!({"text": "and an answer"})),
    );
    assert_eq!(
        up.call("GET", "/api/v1/transfers", None)
            .as_array()
            .unwrap()
            .len(),
        1,
        "the upload finished with its relay frozen"
    );

    signal("-CONT");
    let answer = upload.join().unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["file"]["name"], "big.bin");
    blair.ok(&["sync"]);
    assert!(
        blair
            .texts("Walkers")
            .iter()
            .any(|(_, t)| t == "and an answer")
    );
}
