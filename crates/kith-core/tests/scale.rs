//! A group of a thousand members formed as people would form it: the admin
//! makes a link per person, each person accepts, the admin syncs, each
//! member syncs (group-v1.md §6.3, §6.4). Members are in-process engines,
//! the relay a real `kith-relay` process. `KITH_SCALE_MEMBERS` changes the
//! size (the figures in docs/performance.md come from this test in release
//! mode, `-- --nocapture`); the assertions are on outcomes and bytes, never
//! on time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::time::{Duration, Instant};

use kith_core::{Config, Engine};
use kith_testkit::{RelayOptions, RelayProcess};

/// One number from the relay's store, as its operator could read it.
fn relay_number(relay: &RelayProcess, sql: &str) -> i64 {
    let db = rusqlite::Connection::open(relay.db_path()).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// What the relay holds, in bytes: message payloads and blob chunks.
fn relay_bytes(relay: &RelayProcess) -> i64 {
    relay_number(
        relay,
        "SELECT (SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM messages) + \
                (SELECT COALESCE(SUM(LENGTH(data)), 0) FROM blob_chunks)",
    )
}

/// The largest message on the relay (a commit of the biggest batch).
fn largest_message(relay: &RelayProcess) -> i64 {
    relay_number(
        relay,
        "SELECT COALESCE(MAX(LENGTH(payload)), 0) FROM messages",
    )
}

/// How many messages the channel with the most bytes holds: after the
/// admin's sync, the group's channel with its commits (a link's inbox
/// holds a request and a Welcome of a few KiB).
fn commits(relay: &RelayProcess) -> i64 {
    relay_number(
        relay,
        "SELECT COUNT(*) FROM messages WHERE channel_id = (SELECT channel_id FROM messages \
         GROUP BY channel_id ORDER BY SUM(LENGTH(payload)) DESC LIMIT 1)",
    )
}

/// This process's peak resident memory since the last reset, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

async fn open(home: &Path) -> Engine {
    Engine::open(home, Config::default()).await.unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::test]
async fn a_thousand_members_join_by_links_and_hear_each_other() {
    let n: usize = std::env::var("KITH_SCALE_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let relay = RelayProcess::start(RelayOptions::default().unlimited()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let admin_home = dir.path().join("admin");
    let member_home = |i: usize| dir.path().join(format!("m{i}"));
    let started = Instant::now();

    let mut admin = Engine::init(&admin_home, "Admin", Some(relay.url()), Config::default())
        .await
        .unwrap();
    admin.group_create("Big", None).await.unwrap();
    let mut links = Vec::with_capacity(n);
    for _ in 0..n {
        links.push(admin.group_invite("Big").await.unwrap().link);
    }
    drop(admin);
    for (i, link) in links.iter().enumerate() {
        let mut member = Engine::init(&member_home(i), &format!("M{i}"), None, Config::default())
            .await
            .unwrap();
        member.accept(link, None).await.unwrap();
    }
    let links_accepted = started.elapsed();
    eprintln!("scale: {n} links made and accepted in {links_accepted:?}");

    // The admin's one sync reads every request and commits them all, in
    // batches that fit.
    reset_peak_rss();
    let admin_sync = Instant::now();
    let mut admin = open(&admin_home).await;
    let report = admin.sync().await.unwrap();
    let admin_sync = admin_sync.elapsed();
    let admin_peak = peak_rss_kib();
    // The relay holds the most now: every Welcome, state and commit is
    // written, and no new member has read (and acknowledged) anything.
    let stored = relay_bytes(&relay);
    let largest = largest_message(&relay);
    let commits = commits(&relay);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(admin.group_members("Big").unwrap().len(), n + 1);
    drop(admin);
    eprintln!("scale: the admin's sync took {admin_sync:?}");

    let mut first_syncs = Vec::with_capacity(n);
    for i in 0..n {
        let mut member = open(&member_home(i)).await;
        let t = Instant::now();
        let report = member.sync().await.unwrap();
        first_syncs.push(t.elapsed());
        assert!(report.errors.is_empty(), "M{i}: {:?}", report.errors);
        assert!(
            report.connected.iter().any(|c| c.name == "Big"),
            "M{i} did not join: {report:?}"
        );
    }
    let formed = started.elapsed();
    eprintln!("scale: every member joined; formed in {formed:?}");
    let stored_after = relay_bytes(&relay);

    // A message from one member reaches every other.
    let send = Instant::now();
    open(&member_home(0))
        .await
        .send("Big", "hello, everyone")
        .await
        .unwrap();
    for i in 1..n {
        let mut member = open(&member_home(i)).await;
        let report = member.sync().await.unwrap();
        assert!(
            report
                .messages
                .iter()
                .any(|m| m.text == "hello, everyone" && m.from == "M0"),
            "M{i}: {report:?}"
        );
    }
    let everyone_heard = send.elapsed();

    // A removal holds: the removed member reads nothing after it.
    let mut admin = open(&admin_home).await;
    assert!(admin.group_remove("Big", "M1").await.unwrap().done);
    drop(admin);
    let mut removed = open(&member_home(1)).await;
    removed.sync().await.unwrap();
    drop(removed);
    let mut other = open(&member_home(2)).await;
    other.sync().await.unwrap();
    other.send("Big", "after M1 left").await.unwrap();
    drop(other);
    let mut removed = open(&member_home(1)).await;
    let report = removed.sync().await.unwrap();
    assert!(report.messages.is_empty(), "{report:?}");
    assert_eq!(
        removed.list().unwrap()[0].state,
        "closed",
        "{:?}",
        removed.list()
    );
    let mut third = open(&member_home(3)).await;
    let report = third.sync().await.unwrap();
    assert!(
        report.messages.iter().any(|m| m.text == "after M1 left"),
        "{report:?}"
    );

    first_syncs.sort();
    let median = first_syncs[first_syncs.len() / 2];
    let p95 = first_syncs[first_syncs.len() * 95 / 100];
    eprintln!(
        "scale: {n} members; links made and accepted {:.1} s; admin's sync {:.2} s, \
         process peak RSS during it {} MiB; first sync of a new member: median {:.1} ms, \
         p95 {:.1} ms; formed in {:.1} s; relay holds {:.1} MB after the admin's sync \
         ({:.1} MB once everyone joined); largest message {} bytes ({} commits); \
         a message to everyone: {:.2} s for {} syncs",
        links_accepted.as_secs_f64(),
        admin_sync.as_secs_f64(),
        admin_peak / 1024,
        ms(median),
        ms(p95),
        formed.as_secs_f64(),
        stored as f64 / 1e6,
        stored_after as f64 / 1e6,
        largest,
        commits,
        everyone_heard.as_secs_f64(),
        n - 1,
    );
    assert!(
        stored < 64_000_000,
        "forming a group of {n} stored {stored} bytes on the relay"
    );
}
