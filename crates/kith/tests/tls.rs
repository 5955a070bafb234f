//! A relay serving HTTPS itself (`--tls-cert`/`--tls-key`, rustls) with a
//! certificate from a private authority that the clients trust through
//! `KITH_CA_FILE`: two people meet, talk, and one watches over `wss://`.
//! The certificates come from the `openssl` command; without it the test
//! says it is skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Person, watch};
use kith_testkit::{RelayOptions, RelayProcess};

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A certificate authority and a certificate for 127.0.0.1 it signed.
fn certificates(dir: &Path) -> bool {
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=kith test authority",
        ],
    ) && openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "relay.key",
            "-out",
            "relay.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ) && openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "relay.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "relay.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ],
    )
}

#[test]
fn two_people_talk_through_a_relay_serving_https() {
    let dir = tempfile::tempdir().unwrap();
    if !certificates(dir.path()) {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED two_people_talk_through_a_relay_serving_https: the openssl command is needed"
        );
        return;
    }
    let relay = RelayProcess::start(
        RelayOptions::default()
            .unlimited()
            .env(
                "KITH_RELAY_TLS_CERT",
                dir.path().join("relay.pem").display(),
            )
            .env("KITH_RELAY_TLS_KEY", dir.path().join("relay.key").display()),
    )
    .unwrap();
    assert!(
        relay.url().starts_with("https://127.0.0.1:"),
        "{}",
        relay.url()
    );
    let ca = (
        "KITH_CA_FILE".to_string(),
        dir.path().join("ca.pem").display().to_string(),
    );
    let mut alex = Person::new(dir.path(), "alex");
    let mut blair = Person::new(dir.path(), "blair");
    alex.env.push(ca.clone());
    blair.env.push(ca);

    // Without the authority, the relay's certificate is refused.
    let stranger = Person::new(dir.path(), "stranger");
    let refused = stranger.run(&["init", "--name", "S", "--relay", relay.url()]);
    assert!(!refused.status.success());

    alex.ok(&["init", "--name", "Alex", "--relay", relay.url()]);
    blair.ok(&["init", "--name", "Blair"]);
    let link = alex.json(&["invite"])["link"].as_str().unwrap().to_string();
    assert!(link.starts_with("kith:https://"), "{link}");
    blair.ok(&["accept", &link]);
    assert_eq!(alex.json(&["sync"])["connected"][0]["name"], "Blair");

    let (mut watcher, lines) = watch(&blair);
    alex.ok(&["send", "Blair", "over TLS"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut pushed = false;
    while std::time::Instant::now() < deadline && !pushed {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(500)) {
            pushed = line["text"] == "over TLS";
        }
    }
    let _ = watcher.kill();
    let _ = watcher.wait();
    assert!(pushed, "the watcher received the message");
    blair.ok(&["send", "Alex", "back over TLS"]);
    alex.ok(&["sync"]);
    assert!(
        alex.texts("Blair")
            .contains(&("Blair".into(), "back over TLS".into()))
    );
}
