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

use std::cell::RefCell;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::rc::Rc;
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
                (SELECT COALESCE(SUM(LENGTH(data)), 0) FROM blob_chunks) + \
                (SELECT COALESCE(SUM(b.chunk_size), 0) FROM blob_file_chunks c \
                 JOIN blobs b ON b.id = c.blob_id WHERE c.stored = 1)",
    )
}

/// The largest message on the relay (a commit of the biggest batch).
fn largest_message(relay: &RelayProcess) -> i64 {
    relay_number(
        relay,
        "SELECT COALESCE(MAX(LENGTH(payload)), 0) FROM messages",
    )
}

/// The sizes of the messages on the channel with the most bytes, in order:
/// after the admin's sync, the group's channel with its commits (a link's
/// inbox holds a request and a Welcome of a few KiB).
fn commit_sizes(relay: &RelayProcess) -> Vec<i64> {
    let db = rusqlite::Connection::open(relay.db_path()).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut q = db
        .prepare(
            "SELECT LENGTH(payload) FROM messages WHERE channel_id = (SELECT channel_id \
             FROM messages GROUP BY channel_id ORDER BY SUM(LENGTH(payload)) DESC LIMIT 1) \
             ORDER BY seq",
        )
        .unwrap();
    q.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// `262144 ×6, 65536` for six commits of the largest size and one smaller.
fn runs(sizes: &[i64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sizes.len() {
        let run = sizes[i..].iter().take_while(|&&s| s == sizes[i]).count();
        out.push(if run > 1 {
            format!("{} ×{run}", sizes[i])
        } else {
            sizes[i].to_string()
        });
        i += run;
    }
    out.join(", ")
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

/// Runs `each` for every member in `members` on `threads` threads, each
/// with its own runtime (an engine is one person's process), and gives
/// back how long each one took. Members are independent here: nothing they
/// do changes what another reads.
fn on_threads<F, Fut>(members: &[usize], threads: usize, each: F) -> Vec<Duration>
where
    F: Fn(usize) -> Fut + Sync,
    Fut: Future<Output = ()>,
{
    let chunk = members.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = members
            .chunks(chunk)
            .map(|part| {
                let each = &each;
                scope.spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    part.iter()
                        .map(|&i| {
                            let t = Instant::now();
                            rt.block_on(each(i));
                            t.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn median_p95(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    (
        ms(times[times.len() / 2]),
        ms(times[(times.len() * 95 / 100).min(times.len() - 1)]),
    )
}

/// A new member's first sync: reads its link's inbox, fetches the group's
/// state, joins and reads the channel after the commit that added it.
async fn first_sync(home: PathBuf, i: usize) {
    let mut member = open(&home).await;
    let report = member.sync().await.unwrap();
    assert!(report.errors.is_empty(), "M{i}: {:?}", report.errors);
    assert!(
        report.connected.iter().any(|c| c.name == "Big"),
        "M{i} did not join: {report:?}"
    );
}

/// `watchers` watch (subscribed to the group's channel over the
/// relay's WebSocket) while M0 sends; gives back each watcher's time from
/// the send to the message in its report.
async fn watched_send(member_home: &dyn Fn(usize) -> PathBuf, watchers: &[usize]) -> Vec<Duration> {
    let received: Rc<RefCell<Vec<Instant>>> = Rc::default();
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let (live_tx, mut live) = tokio::sync::mpsc::unbounded_channel();
            let mut tasks = Vec::new();
            for &i in watchers {
                let home = member_home(i);
                let live_tx = live_tx.clone();
                let received = Rc::clone(&received);
                tasks.push(tokio::task::spawn_local(async move {
                    let mut member = open(&home).await;
                    member
                        .watch(
                            |_| {
                                let _ = live_tx.send(());
                            },
                            |report| {
                                if report.messages.iter().any(|m| m.text == "hello, everyone") {
                                    received.borrow_mut().push(Instant::now());
                                    return false;
                                }
                                true
                            },
                        )
                        .await
                        .unwrap();
                }));
            }
            for _ in watchers {
                live.recv().await.unwrap();
            }
            let mut sender = open(&member_home(0)).await;
            let sent = Instant::now();
            sender.send("Big", "hello, everyone").await.unwrap();
            drop(sender);
            for task in tasks {
                tokio::time::timeout(Duration::from_secs(120), task)
                    .await
                    .expect("a watcher never heard the message")
                    .unwrap();
            }
            received
                .borrow()
                .iter()
                .map(|t| t.duration_since(sent))
                .collect()
        })
        .await
}

#[tokio::test]
async fn a_thousand_members_join_by_links_and_hear_each_other() {
    let n: usize = std::env::var("KITH_SCALE_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    // Members are people on their own machines: two of them at a time use
    // this machine's two cores, except where one is timed alone.
    const THREADS: usize = 2;
    let relay = RelayProcess::start(RelayOptions::default().unlimited()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let admin_home = dir.path().join("admin");
    let root = dir.path().to_path_buf();
    let member_home = move |i: usize| root.join(format!("m{i}"));
    let everyone: Vec<usize> = (0..n).collect();
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
    on_threads(&everyone, THREADS, |i| {
        let (home, link) = (member_home(i), links[i].clone());
        async move {
            let mut member = Engine::init(&home, &format!("M{i}"), None, Config::default())
                .await
                .unwrap();
            member.accept(&link, None).await.unwrap();
        }
    });
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
    let commits = commit_sizes(&relay);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(admin.group_members("Big").unwrap().len(), n + 1);
    drop(admin);
    eprintln!("scale: the admin's sync took {admin_sync:?}");

    // First syncs: a sample (at most 500, spread over every batch) timed
    // one at a time, then the rest two at a time. Every commit is on the
    // relay already, so the order changes nothing a member reads.
    // With KITH_SCALE_SAMPLE_ONLY=1 only the sample opens kith at all (at
    // 5,000, the others' first syncs would take an hour on two cores): they
    // are members who have not looked yet.
    let step = n.div_ceil(500).max(1);
    let (sample, rest): (Vec<usize>, Vec<usize>) = everyone.iter().partition(|&&i| i % step == 0);
    let sample_only = std::env::var("KITH_SCALE_SAMPLE_ONLY").is_ok_and(|v| v == "1");
    let rest = if sample_only { Vec::new() } else { rest };
    let first_syncs = on_threads(&sample, 1, |i| first_sync(member_home(i), i));
    on_threads(&rest, THREADS, |i| first_sync(member_home(i), i));
    let joined: Vec<usize> = sample.iter().chain(&rest).copied().collect();
    let formed = started.elapsed();
    eprintln!("scale: every member joined; formed in {formed:?}");
    let stored_after = relay_bytes(&relay);

    // A message from one member: a few members watch and hear it pushed;
    // then every other member reads it in a sync.
    // The sender and the watchers are members who joined (M0, then the
    // next ones of the sample).
    let joined_others: Vec<usize> = joined.iter().copied().filter(|&i| i != 0).collect();
    let watchers = joined_others.len().min(10);
    let heard = watched_send(&member_home, &joined_others[..watchers]).await;
    assert_eq!(heard.len(), watchers);
    let catch_up = Instant::now();
    let quiet: Vec<usize> = joined_others[watchers..].to_vec();
    let catch_ups = on_threads(&quiet, THREADS, |i| {
        let home = member_home(i);
        async move {
            let mut member = open(&home).await;
            let report = member.sync().await.unwrap();
            assert!(
                report
                    .messages
                    .iter()
                    .any(|m| m.text == "hello, everyone" && m.from == "M0"),
                "M{i}: {report:?}"
            );
        }
    });
    let catch_up = catch_up.elapsed();

    let (first_median, first_p95) = median_p95(first_syncs);
    let (heard_median, _) = median_p95(heard.clone());
    let heard_max = heard.iter().max().copied().map_or(0.0, ms);
    let (catch_up_median, _) = median_p95(catch_ups);
    eprintln!(
        "scale: {n} members ({} opened kith); links made and accepted {:.1} s; admin's sync {:.2} s, \
         process peak RSS during it {} MiB; first sync of a new member ({} timed): \
         median {:.1} ms, p95 {:.1} ms; formed in {:.1} s; relay holds {:.1} MB after \
         the admin's sync ({:.1} MB once everyone joined); {} commits, sizes as stored: {}; \
         a message pushed to {watchers} watching members: median {:.1} ms, last {:.1} ms; \
         then {} syncs reading it in {:.1} s (median {:.1} ms)",
        joined.len(),
        links_accepted.as_secs_f64(),
        admin_sync.as_secs_f64(),
        admin_peak / 1024,
        sample.len(),
        first_median,
        first_p95,
        formed.as_secs_f64(),
        stored as f64 / 1e6,
        stored_after as f64 / 1e6,
        commits.len(),
        runs(&commits),
        heard_median,
        heard_max,
        quiet.len(),
        catch_up.as_secs_f64(),
        catch_up_median,
    );
    // A removal holds: the removed member reads nothing after it.
    let (gone, other, third) = (joined_others[0], joined_others[1], joined_others[2]);
    let mut admin = open(&admin_home).await;
    assert!(
        admin
            .group_remove("Big", &format!("M{gone}"))
            .await
            .unwrap()
            .done
    );
    drop(admin);
    let mut removed = open(&member_home(gone)).await;
    removed.sync().await.unwrap();
    drop(removed);
    let mut sender = open(&member_home(other)).await;
    sender.sync().await.unwrap();
    sender.send("Big", "after the removal").await.unwrap();
    drop(sender);
    let mut removed = open(&member_home(gone)).await;
    let report = removed.sync().await.unwrap();
    assert!(report.messages.is_empty(), "{report:?}");
    assert_eq!(
        removed.list().unwrap()[0].state,
        "closed",
        "{:?}",
        removed.list()
    );
    let mut hearing = open(&member_home(third)).await;
    let report = hearing.sync().await.unwrap();
    assert!(
        report
            .messages
            .iter()
            .any(|m| m.text == "after the removal"),
        "{report:?}"
    );

    let largest_bucket = kith_wire::relay::SIZE_BUCKETS.iter().max().copied();
    assert!(
        u32::try_from(largest).ok() <= largest_bucket,
        "a message of {largest} bytes"
    );
    // 64 MB at 1,000 (the target); beyond, each batch's state blob holds
    // the tree so far, so bytes grow faster than the members.
    let bound = 64_000_000_i64 * (n.max(1000) as i64 / 1000).pow(2);
    assert!(
        stored < bound,
        "forming a group of {n} stored {stored} bytes on the relay"
    );
}
