//! `send` → `watch` latency through a real local relay: Blair's engine sends,
//! Alex's engine (watching in its own thread, as `kith watch` does) prints.
//! Includes MLS, both SQLite transactions, the relay's durable append, the
//! WebSocket push and the HTTP read that follows it.
//!
//! Needs the release relay: `cargo build --release -p kith-relay` first (or
//! set KITH_RELAY_BIN).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use kith_core::{Config, Engine};
use kith_testkit::{RelayOptions, RelayProcess};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn benches(c: &mut Criterion) {
    let relay = RelayProcess::start(RelayOptions::default().unlimited()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (alex_home, blair_home) = (dir.path().join("alex"), dir.path().join("blair"));
    let rt = runtime();
    let (mut blair, conv) = rt.block_on(async {
        let mut alex = Engine::init(&alex_home, "Alex", Some(relay.url()), Config::default())
            .await
            .unwrap();
        let mut blair = Engine::init(&blair_home, "Blair", None, Config::default())
            .await
            .unwrap();
        let invite = alex.invite(None, None).await.unwrap();
        let accepted = blair.accept(&invite.link, None).await.unwrap();
        alex.sync().await.unwrap();
        (blair, accepted.conversation.id)
    });
    let (tx, rx) = mpsc::channel::<Instant>();
    let (live_tx, live) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        runtime().block_on(async {
            let mut alex = Engine::open(&alex_home, Config::default()).await.unwrap();
            let _ = alex
                .watch(
                    |_| {
                        let _ = live_tx.send(());
                    },
                    |report| {
                        for _ in &report.messages {
                            let _ = tx.send(Instant::now());
                        }
                        true
                    },
                )
                .await;
        })
    });
    live.recv_timeout(Duration::from_secs(20))
        .expect("watch never went live");
    let mut g = c.benchmark_group("pair");
    g.sample_size(30);
    g.bench_function("send_to_watch_latency", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                rt.block_on(blair.send(&conv, "latency probe")).unwrap();
                let arrived = rx
                    .recv_timeout(Duration::from_secs(10))
                    .expect("watch got nothing");
                total += arrived - start;
            }
            total
        })
    });
    // The same words as a ContentV1 message (a reply: one text/plain part
    // naming the message it answers), measured in the same run: what the
    // richer encoding costs end to end (content-v1.md).
    let first = rt.block_on(blair.send(&conv, "the first")).unwrap();
    rx.recv_timeout(Duration::from_secs(10))
        .expect("watch got nothing");
    g.bench_function("send_to_watch_latency_content_v1", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                rt.block_on(blair.send_reply(&conv, &first.id, "latency probe"))
                    .unwrap();
                let arrived = rx
                    .recv_timeout(Duration::from_secs(10))
                    .expect("watch got nothing");
                total += arrived - start;
            }
            total
        })
    });
    g.bench_function("send_only", |b| {
        b.iter(|| rt.block_on(blair.send(&conv, "throughput probe")).unwrap());
        while rx.try_recv().is_ok() {}
    });
    g.finish();
}

criterion_group!(latency, benches);
criterion_main!(latency);
