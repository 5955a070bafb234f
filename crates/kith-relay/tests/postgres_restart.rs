//! PostgreSQL restarts under load and the relay recovers by itself: two
//! relay processes share the database; writers keep appending through one
//! while `KITH_TEST_POSTGRES_RESTART` (a shell command, e.g.
//! `pg_ctlcluster 15 main restart`) restarts the server. Afterwards appends
//! succeed again without touching the relays, every acknowledged append is
//! stored once and in order, and the other process's subscriber gets what
//! is written after the restart. A test binary of its own: restarting the
//! server would disturb other tests running beside it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[cfg(kith_postgres_tests)]
mod common;

#[cfg(kith_postgres_tests)]
const STORE: common::Store = common::Store::Postgres;

#[cfg(kith_postgres_tests)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_recovers_when_postgresql_restarts() {
    use common::*;
    use kith_relay_client::ChannelOptions;
    use kith_wire::relay::push::ServerFrame;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    let Some(restart) = std::env::var("KITH_TEST_POSTGRES_RESTART")
        .ok()
        .filter(|c| !c.is_empty())
    else {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED the_relay_recovers_when_postgresql_restarts: set KITH_TEST_POSTGRES_RESTART \
             to a command that restarts the server"
        );
        return;
    };
    let (a, b) = two_processes_on_postgres();
    let (via_a, via_b) = (client(&a), client(&b));
    let ch = channel(&via_a, ChannelOptions::default()).await;
    let (w, r) = (ch.created.write_id, ch.created.read_id);

    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let errors = Arc::new(Mutex::new(0u32));
    let writer = {
        let (client, stop, acked, errors) =
            (via_a.clone(), stop.clone(), acked.clone(), errors.clone());
        let key = ch.writer.clone();
        tokio::spawn(async move {
            let mut counter = 0u64;
            while !stop.load(Ordering::Acquire) {
                let mut p = vec![0u8; 256];
                p[..8].copy_from_slice(&counter.to_be_bytes());
                // A failed append is not retried with the same payload: an
                // answer lost with the connection may hide a commit.
                match client.append(&key, w, &p).await {
                    Ok(done) => acked.lock().unwrap().push((counter, done.seq)),
                    Err(_) => {
                        *errors.lock().unwrap() += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                counter += 1;
            }
        })
    };
    wait_for_count("appends acknowledged", 20, || acked.lock().unwrap().len()).await;
    let before = acked.lock().unwrap().len();
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(&restart)
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(status.success(), "the restart command failed");
    // Appends succeed again, with no action on the relays.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < before + 50 {
        assert!(Instant::now() < deadline, "the relay did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Release);
    writer.await.unwrap();

    // B's subscriber (its notification connection was cut too) gets what
    // is written now.
    let mut session = via_b.session().await.unwrap();
    let last = acked.lock().unwrap().last().unwrap().1;
    let sub = session.subscribe(&ch.reader, r, last).await.unwrap();
    assert!(matches!(
        session.next().await.unwrap(),
        ServerFrame::Subscribed { sub: s, .. } if s == sub
    ));
    via_a.append(&ch.writer, w, &vec![9u8; 256]).await.unwrap();
    let pushed = tokio::time::timeout(Duration::from_secs(10), session.next())
        .await
        .expect("pushed across processes after the restart")
        .unwrap();
    assert!(matches!(pushed, ServerFrame::Message { .. }), "{pushed:?}");

    // Every acknowledged append: stored, once, under its sequence number.
    let mut stored: HashMap<u64, u64> = HashMap::new();
    let mut after = 0;
    loop {
        let page = via_b
            .read(&ch.owner, r, after, 1_000, Duration::ZERO)
            .await
            .unwrap();
        let Some(end) = page.items.last().map(|m| m.seq) else {
            break;
        };
        for m in page.items {
            let counter = u64::from_be_bytes(m.payload[..8].try_into().unwrap());
            assert!(stored.insert(m.seq, counter).is_none());
        }
        after = end;
    }
    let acked = acked.lock().unwrap().clone();
    for (counter, seq) in &acked {
        assert_eq!(
            stored.get(seq),
            Some(counter),
            "acknowledged #{counter} lost"
        );
    }
    let mut counters: Vec<u64> = stored.values().copied().collect();
    let n = counters.len();
    counters.sort_unstable();
    counters.dedup();
    assert_eq!(counters.len(), n, "no payload stored twice");
    assert!(*errors.lock().unwrap() > 0, "the restart was felt");
}

#[cfg(not(kith_postgres_tests))]
#[test]
fn the_relay_recovers_when_postgresql_restarts() {
    assert!(kith_testkit::postgres_url().is_none());
}
