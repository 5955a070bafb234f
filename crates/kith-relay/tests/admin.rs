//! Operator commands against a running relay: `kith-relay backup` copies
//! the SQLite store while writers append, the copy opens as a relay of its
//! own with everything acknowledged before the backup began, and
//! `kith-relay admin stats` reports its totals.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

const STORE: common::Store = common::Store::Sqlite;

use common::*;
use kith_relay_client::ChannelOptions;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn kith_relay(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kith-relay"))
        .args(args)
        .env_remove("KITH_RELAY_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kith-relay {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_is_a_working_relay() {
    let relay = relay(unlimited());
    let client = client(&relay);
    let ch = channel(&client, ChannelOptions::default()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let writer = {
        let (client, stop, acked, key, w) = (
            client.clone(),
            stop.clone(),
            acked.clone(),
            ch.writer.clone(),
            ch.created.write_id,
        );
        tokio::spawn(async move {
            let mut i = 0u8;
            while !stop.load(Ordering::Acquire) {
                let done = client.append(&key, w, &payload(i, 256)).await.unwrap();
                acked.lock().unwrap().push(done.seq);
                i = i.wrapping_add(1);
            }
        })
    };
    // Until the writer has had some 20 appends acknowledged (however slow
    // the machine is), then the backup starts while it goes on.
    let busy = async {
        while acked.lock().unwrap().len() <= 20 {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), busy)
        .await
        .unwrap();
    let before = acked.lock().unwrap().len();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("backup.db");
    let db = relay.db_path();
    let (db_arg, copy_arg) = (db.display().to_string(), copy.display().to_string());
    tokio::task::spawn_blocking(move || {
        kith_relay(&["backup", "--db", &db_arg, "--to", &copy_arg]);
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Release);
    writer.await.unwrap();
    assert!(before > 20, "the writer was busy ({before})");

    let stats: serde_json::Value = serde_json::from_str(&kith_relay(&[
        "admin",
        "stats",
        "--json",
        "--db",
        &copy.display().to_string(),
    ]))
    .unwrap();
    assert_eq!(stats["channels"], 1);
    assert!(
        stats["messages"].as_u64().unwrap() >= before as u64,
        "{stats}"
    );
    let live: serde_json::Value = serde_json::from_str(&kith_relay(&[
        "admin",
        "stats",
        "--json",
        "--db",
        &relay.db_path().display().to_string(),
    ]))
    .unwrap();
    assert_eq!(live["relay_id"], stats["relay_id"]);

    // The copy serves: same relay identity, the messages acknowledged
    // before the backup began.
    let restored = kith_testkit::RelayProcess::start(kith_testkit::RelayOptions {
        db: Some(copy.display().to_string()),
        ..unlimited().binary(env!("CARGO_BIN_EXE_kith-relay"))
    })
    .unwrap();
    let on_copy = kith_relay_client::RelayClient::new(restored.url()).unwrap();
    assert_eq!(
        on_copy.info().await.unwrap().relay_id,
        client.info().await.unwrap().relay_id
    );
    let page = on_copy
        .read(&ch.reader, ch.created.read_id, 0, 1_000, Duration::ZERO)
        .await
        .unwrap();
    let acked = acked.lock().unwrap().clone();
    for seq in &acked[..before] {
        assert!(
            page.items.iter().any(|m| m.seq == *seq),
            "seq {seq} missing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_stops_and_fails_when_the_relay_dies() {
    let mut relay = relay(unlimited());
    let url = relay.url().to_owned();
    let bench = std::process::Command::new(env!("CARGO_BIN_EXE_kith-relay"))
        .args([
            "bench",
            "--url",
            &url,
            "--writers",
            "2",
            "--readers",
            "2",
            "--warmup",
            "0",
            "--duration",
            "60",
            "--no-baseline",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Killed once the bench is writing.
    common::wait_for_metric(
        &url,
        "kith_relay_appended_bytes_total",
        Duration::from_secs(60),
        |n| n > 0.0,
    )
    .await;
    let started = std::time::Instant::now();
    tokio::task::spawn_blocking(move || relay.kill().unwrap())
        .await
        .unwrap();
    let out = tokio::task::spawn_blocking(move || bench.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the bench succeeded: {stderr}");
    assert!(stderr.contains("the relay stopped answering"), "{stderr}");
    // It stopped long before its 60 s were up.
    assert!(started.elapsed() < Duration::from_secs(50), "{stderr}");
}
