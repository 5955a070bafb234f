//! `watch` as people leave it running: introductions and group joins
//! complete with no command typed, and a relay that is down is retried
//! with a backoff instead of in a loop (findings 10 and 11).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::{Duration, Instant};

use common::{World, meet};
use kith_core::{Engine, SyncReport};
use tokio::sync::mpsc;

/// A person's `watch`, running in a thread of its own as in its own
/// process; its reports arrive on the receiver.
struct Watching {
    reports: mpsc::UnboundedReceiver<SyncReport>,
}

impl Watching {
    fn start(world: &World, name: &str) -> Self {
        let (tx, reports) = mpsc::unbounded_channel();
        let (home, config) = (world.home(name), world.config());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut engine = Engine::open(&home, config).await.unwrap();
                let _ = engine
                    .watch(|_| {}, |report| tx.send(report.clone()).is_ok())
                    .await;
            });
        });
        Self { reports }
    }

    /// Waits (up to 20 s) for a report that `done` accepts.
    async fn until(&mut self, mut done: impl FnMut(&SyncReport) -> bool) -> SyncReport {
        let wait = async {
            loop {
                let report = self.reports.recv().await.expect("watch ended");
                if done(&report) {
                    return report;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .expect("nothing came in time")
    }
}

async fn open(world: &World, name: &str) -> Engine {
    Engine::open(&world.home(name), world.config())
        .await
        .unwrap()
}

/// Blair introduces Alex and Charlie while all three run `watch`: once
/// both have accepted (each from another process, as the CLI does), the
/// new conversation is made and joined with no further command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_introduction_completes_with_watch_running_everywhere() {
    let world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut blair = world.guest("Blair").await;
    let mut charlie = world.guest("Charlie").await;
    let (_, blair_alex) = meet(&mut alex, &mut blair).await;
    // Charlie invites nobody (no relay): Blair's own channel is on Alex's
    // relay too, through an invitation Alex's relay hosts for Blair.
    let invite = blair.invite(Some(world.relay.url()), None).await.unwrap();
    charlie.accept(&invite.link, None).await.unwrap();
    blair.sync().await.unwrap();
    let blair_charlie = blair
        .list()
        .unwrap()
        .into_iter()
        .find(|c| c.name == "Charlie")
        .unwrap()
        .id;
    drop((alex, blair, charlie));

    let mut alex_watch = Watching::start(&world, "Alex");
    let _blair_watch = Watching::start(&world, "Blair");
    let mut charlie_watch = Watching::start(&world, "Charlie");

    open(&world, "Blair")
        .await
        .introduce(&blair_alex, &blair_charlie, "you both ski")
        .await
        .unwrap();
    let offered = alex_watch.until(|r| !r.introductions.is_empty()).await;
    let on_alex = offered.introductions[0].id.clone();
    let offered = charlie_watch.until(|r| !r.introductions.is_empty()).await;
    let on_charlie = offered.introductions[0].id.clone();

    open(&world, "Alex")
        .await
        .answer_introduction(&on_alex, true, None)
        .await
        .unwrap();
    open(&world, "Charlie")
        .await
        .answer_introduction(&on_charlie, true, None)
        .await
        .unwrap();
    let accepted = Instant::now();
    let connected = |r: &SyncReport| r.connected.iter().any(|c| c.kind == "pair");
    alex_watch.until(connected).await;
    charlie_watch.until(connected).await;
    let took = accepted.elapsed();
    eprintln!("introduction: last accept to both connected: {took:?}");

    // And they talk, still with nothing but watch running on their side.
    let mut alex = open(&world, "Alex").await;
    let to_charlie = alex
        .list()
        .unwrap()
        .into_iter()
        .find(|c| c.introduced_by.is_some())
        .unwrap()
        .id;
    alex.send(&to_charlie, "hi from Alex").await.unwrap();
    drop(alex);
    charlie_watch
        .until(|r| r.messages.iter().any(|m| m.text == "hi from Alex"))
        .await;
}

/// Dani accepts a group link while the admin runs `watch`: the admin's
/// watch adds her, and her own watch sees her in, with no sync typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_link_join_completes_with_watch_running() {
    let world = World::new().await;
    let mut alex = world.host("Alex").await;
    let dani = world.guest("Dani").await;
    alex.group_create("Ski", None).await.unwrap();
    let link = alex.group_invite("Ski").await.unwrap().link;
    drop((alex, dani));
    let mut alex_watch = Watching::start(&world, "Alex");
    let mut dani_watch = Watching::start(&world, "Dani");

    let joining = open(&world, "Dani")
        .await
        .accept(&link, None)
        .await
        .unwrap();
    assert_eq!(joining.conversation.state, "joining");
    dani_watch
        .until(|r| r.connected.iter().any(|c| c.name == "Ski"))
        .await;
    let mut dani = open(&world, "Dani").await;
    dani.send("Ski", "thanks for the link").await.unwrap();
    drop(dani);
    alex_watch
        .until(|r| r.messages.iter().any(|m| m.text == "thanks for the link"))
        .await;
}

/// With its relay gone, `watch` says so once and tries again with a
/// backoff: over three seconds a handful of connection attempts, not
/// hundreds (finding 11). A listener that takes connections and closes
/// them stands in for the relay's address and counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_is_down_is_retried_with_a_backoff() {
    let mut world = World::new().await;
    let mut alex = world.host("Alex").await;
    let mut blair = world.guest("Blair").await;
    meet(&mut alex, &mut blair).await;
    drop((alex, blair));
    let mut watching = Watching::start(&world, "Blair");
    // A first report (the initial sync) may or may not come: nothing new.
    let addr = world.relay.url().trim_start_matches("http://").to_string();
    world.relay.stop().await;
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    let (count_tx, mut count_rx) = mpsc::unbounded_channel::<()>();
    let counting = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
            if count_tx.send(()).is_err() {
                break;
            }
        }
    });
    // However the first attempt fails (refused before the listener is up,
    // or accepted and dropped after), it is said once, with the backoff.
    let said = watching
        .until(|r| r.errors.iter().any(|e| e.contains("kith keeps trying")))
        .await;
    assert_eq!(said.errors.len(), 1, "{said:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    counting.abort();
    let mut attempts = 0;
    while count_rx.try_recv().is_ok() {
        attempts += 1;
    }
    // 0.5 s, 1 s, 2 s apart (less up to a quarter): four or five.
    eprintln!("{attempts} connection attempts in 3 s");
    assert!(
        (1..=8).contains(&attempts),
        "{attempts} connection attempts in 3 s"
    );
    let repeated = std::iter::from_fn(|| watching.reports.try_recv().ok())
        .filter(|r| r.errors.iter().any(|e| e.contains("kith keeps trying")))
        .count();
    assert_eq!(repeated, 0, "said once");
}
