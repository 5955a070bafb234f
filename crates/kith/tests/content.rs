//! ContentV1 through the `kith` binary and a real relay process
//! (content-v1.md): mail with a subject and a markdown body.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;

/// Alex mails Blair from a file and from standard input; Blair reads the
/// body as plain text under its subject, lists mail by subject, and gets
/// the structured form with `--json`. A peer's subject with terminal
/// escapes is shown escaped.
#[test]
fn mail_has_a_subject_and_a_markdown_body() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, blair) = meet(dir.path(), &relay);

    let letter = dir.path().join("letter.md");
    std::fs::write(
        &letter,
        "# Saturday\n\nMeet at **noon** by the [fountain](https://map.example/f).\n\n- bread\n- cheese\n",
    )
    .unwrap();
    let sent = alex.json(&[
        "mail",
        "Blair Sample",
        "--subject",
        "Picnic",
        "--file",
        letter.to_str().unwrap(),
    ]);
    assert_eq!(sent["subject"], "Picnic");

    let out = alex.run_with_stdin(
        &["mail", "Blair Sample", "--subject", "Bell\u{1b}[31m"],
        b"Ring *twice*.",
    );
    assert!(out.status.success(), "{out:?}");

    blair.ok(&["sync"]);
    let read = blair.ok(&["read", "Alex Example"]);
    assert!(read.contains("mail \u{201c}Picnic\u{201d}"), "{read}");
    assert!(
        read.contains("Meet at noon by the fountain <https://map.example/f>."),
        "{read}"
    );
    assert!(read.contains("• bread"), "{read}");
    assert!(
        !read.contains('\u{1b}'),
        "escapes reach the terminal: {read:?}"
    );

    let list = blair.ok(&["mail", "Alex Example"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(lines[0].contains("Alex Example: Picnic"), "{list}");

    let messages = blair.json(&["read", "Alex Example"]);
    let picnic = &messages[0];
    assert_eq!(picnic["subject"], "Picnic");
    assert_eq!(picnic["needs_newer"], false);
    assert!(
        picnic["text"]
            .as_str()
            .unwrap()
            .starts_with("Saturday\n\nMeet at noon"),
        "{picnic}"
    );
    assert_eq!(messages[1]["text"], "Ring twice.");
    // A text message is not a mail.
    alex.ok(&["send", "Blair Sample", "see you"]);
    blair.ok(&["sync"]);
    assert_eq!(
        blair
            .json(&["mail", "Alex Example"])
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Bad input loses nothing: an empty subject, a missing file.
    let out = alex.run(&[
        "mail",
        "Blair Sample",
        "--subject",
        " ",
        "--file",
        letter.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("subject is empty"));
    let out = alex.run(&[
        "mail",
        "Blair Sample",
        "--subject",
        "x",
        "--file",
        "/nonexistent/x.md",
    ]);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}

/// Replies quote what they answer, reactions are counted under the message
/// they are about (one per person, replaced or taken back), and a wrong
/// message id is one clear line that changes nothing.
#[test]
fn replies_quote_and_reactions_count() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, blair) = meet(dir.path(), &relay);
    let sent = alex.json(&["send", "Blair Sample", "lunch at noon?"]);
    let lunch = sent["id"].as_str().unwrap().to_string();
    blair.ok(&["sync"]);

    blair.ok(&["send", "Alex Example", "yes!", "--reply-to", &lunch[..8]]);
    blair.ok(&["react", "Alex Example", &lunch[..8], "\u{1f44d}"]);
    let report = alex.json(&["sync"]);
    let notices = report["notices"].to_string();
    assert!(notices.contains("reacted \u{1f44d}"), "{report}");

    let read = alex.json(&["read", "Blair Sample"]);
    assert_eq!(read[0]["text"], "lunch at noon?");
    assert_eq!(read[0]["reactions"][0]["reaction"], "\u{1f44d}");
    assert_eq!(read[0]["reactions"][0]["count"], 1);
    assert_eq!(read[0]["reactions"][0]["mine"], false);
    assert_eq!(read[1]["text"], "yes!");
    assert_eq!(read[1]["reply_to"]["id"], lunch.as_str());
    assert_eq!(read[1]["reply_to"]["from"], "me");
    assert_eq!(read[1]["reply_to"]["text"], "lunch at noon?");
    let shown = alex.ok(&["read", "Blair Sample"]);
    assert!(shown.contains("\u{1f44d} 1"), "{shown}");
    assert!(
        shown.contains("Blair Sample: \u{21aa} me: \u{201c}lunch at noon?\u{201d}"),
        "{shown}"
    );

    // Alex reacts too, then Blair changes hers and takes it back.
    alex.ok(&["react", "Blair Sample", &lunch, "\u{1f44d}"]);
    blair.ok(&["react", "Alex Example", &lunch, "\u{2764}"]);
    alex.ok(&["sync"]);
    let read = alex.json(&["read", "Blair Sample"]);
    let counts: Vec<(String, u64, bool)> = read[0]["reactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["reaction"].as_str().unwrap().to_string(),
                r["count"].as_u64().unwrap(),
                r["mine"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("\u{1f44d}".to_string(), 1, true),
            ("\u{2764}".to_string(), 1, false)
        ]
    );
    blair.ok(&["react", "Alex Example", &lunch, "--remove"]);
    alex.ok(&["sync"]);
    let read = alex.json(&["read", "Blair Sample"]);
    assert_eq!(read[0]["reactions"].as_array().unwrap().len(), 1);
    // Blair sees her own view the same way.
    blair.ok(&["sync"]);
    let hers = blair.json(&["read", "Alex Example"]);
    assert_eq!(hers[0]["reactions"][0]["mine"], false);

    let out = blair.run(&["send", "Alex Example", "?", "--reply-to", "ffffffff"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no message"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(
        blair
            .json(&["read", "Alex Example"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// Only a message's author edits or deletes it; an edit is shown marked,
/// and a delete empties the message in both profiles: its text is in
/// neither's files afterwards, searched as bytes (content-v1.md §7.7).
#[test]
fn edits_and_deletes_are_the_authors_and_leave_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, blair) = meet(dir.path(), &relay);
    let secret = "the door code is 4711-SWORDFISH";
    let sent = alex.json(&["send", "Blair Sample", "see you at 6"]);
    let six = sent["id"].as_str().unwrap().to_string();
    let sent = alex.json(&["send", "Blair Sample", secret]);
    let code = sent["id"].as_str().unwrap().to_string();
    blair.ok(&["sync"]);
    blair.ok(&["react", "Alex Example", &code, "\u{1f510}"]);

    alex.ok(&["edit", "Blair Sample", &six, "see you at 7"]);
    // Not Blair's to change: refused before anything is sent.
    let out = blair.run(&["edit", "Alex Example", &six, "never"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only the person who wrote"),
        "{out:?}"
    );
    blair.ok(&["sync"]);
    let read = blair.json(&["read", "Alex Example"]);
    assert_eq!(read[0]["text"], "see you at 7");
    assert_eq!(read[0]["edited"], true);
    assert!(
        blair
            .ok(&["read", "Alex Example"])
            .contains("see you at 7 (edited)")
    );

    alex.ok(&["sync"]);
    alex.ok(&["delete-message", "Blair Sample", &code]);
    blair.ok(&["sync"]);
    for (who, other) in [(&alex, "Blair Sample"), (&blair, "Alex Example")] {
        let read = who.json(&["read", other]);
        assert_eq!(read[1]["deleted"], true, "{read}");
        assert_eq!(read[1]["text"], "");
        assert_eq!(read[1]["reactions"].as_array().unwrap().len(), 0);
        assert!(who.ok(&["read", other]).contains("(deleted)"));
    }
    let mut found = Vec::new();
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
            found.push(entry);
        }
    }
    assert!(found.is_empty(), "the deleted text is still in {found:?}");
}

/// Timers, receipts, payments, calls and application parts, each by its
/// command against a real relay: what the other side sees, readably and
/// with `--json`.
#[test]
fn timers_receipts_payments_calls_and_app_parts() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, blair) = meet(dir.path(), &relay);
    // Both learn what the other's kith shows.
    for _ in 0..2 {
        alex.ok(&["sync"]);
        blair.ok(&["sync"]);
    }

    // Receipts: delivered once Blair synced, read once she read.
    alex.ok(&["send", "Blair Sample", "lunch?"]);
    blair.ok(&["sync"]);
    alex.ok(&["sync"]);
    assert!(
        alex.ok(&["read", "Blair Sample"])
            .contains("\u{2713} delivered")
    );
    blair.ok(&["read", "Alex Example"]);
    alex.ok(&["sync"]);
    let read = alex.json(&["read", "Blair Sample"]);
    assert_eq!(read[0]["receipts"]["read"], 1, "{read}");
    assert!(
        alex.ok(&["read", "Blair Sample"])
            .contains("\u{2713}\u{2713} read")
    );
    blair.ok(&["receipts", "Alex Example", "off"]);

    // A timer, set by Alex, shown to both.
    assert_eq!(
        alex.ok(&["timer", "Blair Sample", "1h"]).trim(),
        "you set messages to disappear after 1 hour"
    );
    blair.ok(&["sync"]);
    let read = blair.ok(&["read", "Alex Example"]);
    assert!(
        read.contains("Alex Example set messages to disappear after 1 hour"),
        "{read}"
    );
    let sent = blair.json(&["send", "Alex Example", "gone in an hour"]);
    assert!(sent["expires_at"].as_u64().is_some(), "{sent}");
    alex.ok(&["sync"]);
    assert!(alex.ok(&["read", "Blair Sample"]).contains("disappears "));
    alex.ok(&["timer", "Blair Sample", "off"]);
    let out = alex.run(&["timer", "Blair Sample", "soon"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a duration"));

    // A payment request, answered.
    let request = blair.json(&[
        "pay",
        "request",
        "Alex Example",
        "--to",
        "iban/DE75512108001245126199",
        "--amount",
        "EUR:12.50",
        "--note",
        "lunch",
    ]);
    let id = request["id"].as_str().unwrap().to_string();
    assert_eq!(request["payment"]["state"], "requested");
    alex.ok(&["sync"]);
    let shown = alex.ok(&["read", "Blair Sample"]);
    assert!(
        shown.contains(
            "payment request: 12.50 EUR to iban/DE75512108001245126199 \u{201c}lunch\u{201d}"
        ),
        "{shown}"
    );
    assert!(
        shown.contains(
            "requested \u{b7} payto://iban/DE75512108001245126199?amount=EUR:12.50&message=lunch"
        ),
        "{shown}"
    );
    alex.ok(&[
        "pay",
        "paid",
        "Blair Sample",
        &id[..8],
        "--reference",
        "TX-9",
    ]);
    blair.ok(&["sync"]);
    let open = blair.ok(&["pay", "open", "Alex Example", &id]);
    assert!(
        open.starts_with("12.50 EUR to iban/DE75512108001245126199 \u{201c}lunch\u{201d} (paid)"),
        "{open}"
    );
    let out = blair.run(&[
        "pay",
        "request",
        "Alex Example",
        "--to",
        "iban/X",
        "--amount",
        "12",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CURRENCY:VALUE"),
        "{out:?}"
    );

    // A call rung and hung up before an answer: missed, for Blair.
    let call = alex.json(&["call", "ring", "Blair Sample", "--video"]);
    let call_id = call["id"].as_str().unwrap().to_string();
    assert_eq!(call["state"], "ringing");
    alex.ok(&["call", "hangup", "Blair Sample", &call_id[..6]]);
    blair.ok(&["sync"]);
    assert!(
        blair
            .ok(&["read", "Alex Example"])
            .contains("missed video call")
    );
    let history = blair.ok(&["call", "list", "Alex Example"]);
    assert!(history.contains("incoming video call: missed"), "{history}");

    // An application's part: its bytes for the app, its sentence for people.
    blair.ok(&[
        "send-app",
        "Alex Example",
        "--type",
        "application/vnd.example.chess",
        "--data",
        "e2e4",
        "--fallback",
        "Blair moved a pawn (chess)",
    ]);
    alex.ok(&["sync"]);
    let read = alex.json(&["read", "Blair Sample"]);
    let last = read.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["text"], "Blair moved a pawn (chess)");
    assert_eq!(last["app"]["content_type"], "application/vnd.example.chess");
    assert_eq!(last["app"]["data"], "65326534");
    let out = blair.run(&[
        "send-app",
        "Alex Example",
        "--type",
        "text/html",
        "--data",
        "x",
        "--fallback",
        "y",
    ]);
    assert!(!out.status.success());
}

#[test]
fn calls_are_answered_or_declined_and_payments_declined() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, blair) = meet(dir.path(), &relay);
    // Each learns what the other's kith shows (calls among it).
    blair.ok(&["sync"]);
    alex.ok(&["sync"]);
    let state = |p: &Person, conv: &str, id: &str| {
        let calls = p.json(&["call", "list", conv]);
        calls
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| c["state"].as_str().unwrap().to_string())
            .unwrap()
    };

    // Rung, answered with a description and a candidate, then ended.
    let id = alex.json(&["call", "ring", "Blair Sample"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    blair.ok(&["sync"]);
    assert_eq!(state(&blair, "Alex Example", &id), "ringing");
    let sdp = dir.path().join("answer.sdp");
    std::fs::write(&sdp, "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n").unwrap();
    blair.ok(&[
        "call",
        "answer",
        "Alex Example",
        &id[..6],
        "--sdp-file",
        sdp.to_str().unwrap(),
    ]);
    blair.ok(&[
        "call",
        "candidate",
        "Alex Example",
        &id[..6],
        "candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host",
    ]);
    alex.ok(&["sync"]);
    assert_eq!(state(&alex, "Blair Sample", &id), "active");
    alex.ok(&["call", "hangup", "Blair Sample", &id[..6]]);
    blair.ok(&["sync"]);
    assert_eq!(state(&blair, "Alex Example", &id), "ended");

    // Rung and declined.
    let id = alex.json(&["call", "ring", "Blair Sample", "--video"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    blair.ok(&["sync"]);
    blair.ok(&["call", "decline", "Alex Example", &id[..6]]);
    alex.ok(&["sync"]);
    assert_eq!(state(&alex, "Blair Sample", &id), "declined");
    let out = blair.run(&["call", "answer", "Alex Example", "ffffff"]);
    assert!(!out.status.success());

    // A payment request declined.
    let request = blair.json(&[
        "pay",
        "request",
        "Alex Example",
        "--to",
        "iban/DE75512108001245126199",
        "--amount",
        "EUR:4",
    ]);
    let id = request["id"].as_str().unwrap().to_string();
    alex.ok(&["sync"]);
    alex.ok(&["pay", "decline", "Blair Sample", &id[..8]]);
    blair.ok(&["sync"]);
    let open = blair.ok(&["pay", "open", "Alex Example", &id]);
    assert!(open.contains("(declined)"), "{open}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
