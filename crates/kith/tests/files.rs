//! Files through the `kith` binary and a real relay process
//! (files-v1.md): Blair, who has no relay, sends through Alex's; an upload
//! killed with SIGKILL resumes sending only what is missing, and so do an
//! upload and a download cut by a relay restart; a group gets
//! one copy on the relay that every member downloads.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

fn sample(len: usize) -> Vec<u8> {
    let mut h = Sha256::digest(b"kith cli file sample");
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        out.extend_from_slice(&h);
        h = Sha256::digest(h);
    }
    out.truncate(len);
    out
}

/// The `progress` lines and the last line of `kith --json send-file`.
fn progress_of(stdout: &str) -> (Vec<Value>, Value) {
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (last, steps) = lines.split_last().unwrap();
    (steps.to_vec(), last.clone())
}

#[test]
fn a_file_killed_halfway_resumes_and_arrives_whole() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, blair) = meet(dir.path(), &relay);
    let bytes = sample(24 << 20);
    let path = dir.path().join("film.mp4");
    std::fs::write(&path, &bytes).unwrap();
    let path = path.to_str().unwrap();

    // SIGKILL once some chunks are stored.
    let mut child = blair
        .command(&[
            "--json",
            "send-file",
            "Alex Example",
            path,
            "--caption",
            "our trip",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stopped_at = 0;
    for line in BufReader::new(stdout).lines() {
        let step: Value = serde_json::from_str(&line.unwrap()).unwrap();
        stopped_at = step["moved_chunks"].as_u64().unwrap_or(0);
        if stopped_at >= 8 {
            child.kill().unwrap();
            break;
        }
    }
    child.wait().unwrap();
    assert!(
        stopped_at >= 8,
        "the upload finished before it could be killed"
    );

    let out = blair.ok(&[
        "--json",
        "send-file",
        "Alex Example",
        path,
        "--caption",
        "our trip",
    ]);
    let (steps, sent) = progress_of(&out);
    let first = &steps[0];
    let last = steps.last().unwrap();
    let resumed = first["resumed_chunks"].as_u64().unwrap();
    assert!(
        resumed >= stopped_at,
        "resumed at {resumed}, killed after {stopped_at}"
    );
    let chunks = kith_files::padded_chunks(bytes.len() as u64).unwrap() as u64;
    assert_eq!(
        last["moved_chunks"].as_u64().unwrap(),
        chunks - resumed,
        "only the missing chunks were sent again"
    );
    assert_eq!(sent["event"], "sent");
    assert_eq!(sent["message"]["file"]["name"], "film.mp4");

    alex.ok(&["sync"]);
    let read = alex.ok(&["read", "Blair Sample"]);
    assert!(
        read.contains("file: film.mp4 (25.2 MB) \u{2014} our trip"),
        "{read}"
    );
    let id = alex.json(&["read", "Blair Sample"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let downloads = dir.path().join("downloads");
    std::fs::create_dir(&downloads).unwrap();
    let out = alex.ok(&[
        "--json",
        "download",
        "Blair Sample",
        &id[..8],
        "--to",
        downloads.to_str().unwrap(),
    ]);
    let (steps, saved) = progress_of(&out);
    assert_eq!(
        steps.last().unwrap()["done_bytes"].as_u64(),
        Some(bytes.len() as u64)
    );
    assert_eq!(saved["event"], "saved");
    let got = std::fs::read(downloads.join("film.mp4")).unwrap();
    assert_eq!(Sha256::digest(&got), Sha256::digest(&bytes));

    // Bad input: a missing file, a message without one.
    let out = blair.run(&["send-file", "Alex Example", "/nonexistent/x.jpg"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open /nonexistent/x.jpg"));
    alex.ok(&["send", "Blair Sample", "thanks!"]);
    let text_id = alex.json(&["read", "Blair Sample"])[1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = alex.run(&["download", "Blair Sample", &text_id]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no file"),
        "{out:?}"
    );
}

/// Runs `kith --json ARGS` for `who` and kills the relay once a progress
/// line reports `after` chunks moved; returns how many had been reported.
fn cut_by_a_relay_restart(
    who: &Person,
    args: &[&str],
    relay: &mut kith_testkit::RelayProcess,
    after: u64,
) -> u64 {
    let mut child = who
        .command(&[&["--json"], args].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (mut moved, mut killed) = (0, false);
    // Read to the end: a closed pipe would end the program quietly.
    for line in BufReader::new(stdout).lines() {
        let step: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if !killed {
            moved = step["moved_chunks"].as_u64().unwrap_or(moved);
        }
        if moved >= after && !killed {
            relay.kill().unwrap();
            killed = true;
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(moved >= after, "finished before the relay could be stopped");
    assert!(
        !out.status.success(),
        "{args:?} went on without its relay (moved {moved})"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    relay.restart().unwrap();
    moved
}

#[test]
fn transfers_cut_by_a_relay_restart_resume_where_they_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = relay();
    let (alex, blair) = meet(dir.path(), &relay);
    // Large enough that neither transfer ends before the relay is stopped.
    let bytes = sample(32 << 20);
    let path = dir.path().join("talk.mp3");
    std::fs::write(&path, &bytes).unwrap();
    let path = path.to_str().unwrap();
    let chunks = kith_files::padded_chunks(bytes.len() as u64).unwrap() as u64;

    let moved = cut_by_a_relay_restart(&blair, &["send-file", "Alex Example", path], &mut relay, 4);
    let out = blair.ok(&["--json", "send-file", "Alex Example", path]);
    let (steps, sent) = progress_of(&out);
    let resumed = steps[0]["resumed_chunks"].as_u64().unwrap();
    assert!(resumed >= moved, "resumed at {resumed}, cut after {moved}");
    assert_eq!(
        steps.last().unwrap()["moved_chunks"].as_u64().unwrap(),
        chunks - resumed,
        "only the missing chunks were sent again"
    );
    assert_eq!(sent["event"], "sent");

    alex.ok(&["sync"]);
    let id = alex.json(&["read", "Blair Sample"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let downloads = dir.path().join("downloads");
    std::fs::create_dir(&downloads).unwrap();
    let to = downloads.to_str().unwrap();
    let args = ["download", "Blair Sample", &id, "--to", to];
    let moved = cut_by_a_relay_restart(&alex, &args, &mut relay, 4);
    assert!(
        !downloads.join("talk.mp3").exists(),
        "nothing saved half way"
    );
    let out = alex.ok(&[&["--json"], &args[..]].concat());
    let (steps, _) = progress_of(&out);
    // What reached the disk before the relay went is kept (chunks in
    // flight may have landed after the line was read, and chunks still
    // queued for the disk are fetched again).
    let resumed = steps[0]["resumed_chunks"].as_u64().unwrap();
    assert!(resumed >= 1, "resumed at {resumed}, cut after {moved}");
    assert_eq!(
        steps.last().unwrap()["moved_chunks"].as_u64().unwrap(),
        chunks - resumed
    );
    assert_eq!(std::fs::read(downloads.join("talk.mp3")).unwrap(), bytes);
}

#[test]
fn a_file_over_the_relays_quota_is_refused_before_any_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let relay = kith_testkit::RelayProcess::start(
        kith_testkit::RelayOptions::default()
            .unlimited()
            .env("KITH_RELAY_LIMITS__MAX_CHANNEL_BLOB_BYTES", 2_000_000),
    )
    .unwrap();
    let (alex, blair) = meet(dir.path(), &relay);
    let path = dir.path().join("big.iso");
    std::fs::write(&path, sample(3_000_000)).unwrap();
    let out = blair.run(&["send-file", "Alex Example", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("quota"), "{err}");
    let db = relay_db(&relay);
    let reserved: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM blobs WHERE chunk_count > 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(reserved, 0, "nothing reserved, nothing sent");
    // What fits still goes.
    let small = dir.path().join("small.pdf");
    std::fs::write(&small, sample(1_000_000)).unwrap();
    blair.ok(&["send-file", "Alex Example", small.to_str().unwrap()]);
    alex.ok(&["sync"]);
    let read = alex.ok(&["read", "Blair Sample"]);
    assert!(read.contains("small.pdf"), "{read}");
    assert!(!read.contains("big.iso"), "{read}");
}

#[test]
fn small_files_download_by_themselves_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, blair) = meet(dir.path(), &relay);
    let bad = alex.run(&["auto-download", "Blair Sample", "ten"]);
    assert!(!bad.status.success());
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr).trim().lines().count(),
        1
    );
    let set = alex.json(&["auto-download", "Blair Sample", "2MB"]);
    assert_eq!(set["auto_download_max"], 2_000_000);

    let small = sample(1_500_000);
    let large = sample(3_000_000);
    for (name, bytes) in [("photo.jpg", &small), ("video.mp4", &large)] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        blair.ok(&["send-file", "Alex Example", path.to_str().unwrap()]);
    }
    alex.ok(&["sync"]);
    let downloads = alex.home.join("downloads");
    assert_eq!(std::fs::read(downloads.join("photo.jpg")).unwrap(), small);
    assert!(!downloads.join("video.mp4").exists(), "over the size");
    let read = alex.json(&["read", "Blair Sample"]);
    let saved = read[0]["file"]["saved"].as_str().unwrap();
    assert!(saved.ends_with("downloads/photo.jpg"), "{read}");
    assert!(read[1]["file"]["saved"].is_null(), "{read}");

    // Off again: the next small file waits to be asked for.
    alex.ok(&["auto-download", "Blair Sample", "off"]);
    let path = dir.path().join("note.txt");
    std::fs::write(&path, b"later").unwrap();
    blair.ok(&["send-file", "Alex Example", path.to_str().unwrap()]);
    alex.ok(&["sync"]);
    assert!(!downloads.join("note.txt").exists());
}

#[test]
fn a_group_file_is_stored_once_and_every_member_gets_it() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay();
    let (alex, [blair, charlie]) = alex_and(dir.path(), &relay, ["Blair", "Charlie"]);
    let (alex_blair, _) = connect(&alex, &blair);
    let (alex_charlie, _) = connect(&alex, &charlie);
    for p in [&blair, &charlie, &alex] {
        p.ok(&["sync"]);
    }
    alex.ok(&["group", "create", "Trip"]);
    alex.ok(&["group", "add", "Trip", &alex_blair]);
    alex.ok(&["group", "add", "Trip", &alex_charlie]);
    for p in [&blair, &charlie, &alex] {
        p.ok(&["sync"]);
    }
    let bytes = sample(1_500_000);
    let path = dir.path().join("map.png");
    std::fs::write(&path, &bytes).unwrap();
    let blobs_before: i64 = relay_db(&relay)
        .query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get(0))
        .unwrap();
    blair.ok(&["send-file", "Trip", path.to_str().unwrap()]);
    let blobs_after: i64 = relay_db(&relay)
        .query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(blobs_after - blobs_before, 1, "one copy on the relay");
    for (n, member) in [&alex, &charlie].into_iter().enumerate() {
        member.ok(&["sync"]);
        let read = member.json(&["read", "Trip"]);
        let id = read.as_array().unwrap().last().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let to = dir.path().join(format!("downloads-{n}"));
        std::fs::create_dir(&to).unwrap();
        member.ok(&["download", "Trip", &id, "--to", to.to_str().unwrap()]);
        assert_eq!(std::fs::read(to.join("map.png")).unwrap(), bytes);
    }
}
