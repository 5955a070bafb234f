//! The relay protocol suite (`suite/relay.rs`) against the real
//! `kith-relay` binary on the PostgreSQL store named by
//! `KITH_TEST_POSTGRES_URL`, each test in a schema of its own. Without that
//! variable (when this crate was built), the suite is skipped and says so.

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
include!("suite/relay.rs");

#[cfg(not(kith_postgres_tests))]
#[test]
fn relay_suite_on_postgresql() {
    assert!(kith_testkit::postgres_url().is_none());
}

/// Two relay processes on one database: a WebSocket subscriber on one gets,
/// at once and in order, what writers send through the other; a long-poll
/// on one returns for a write through the other; revoking a reader through
/// one ends its subscription on the other.
#[cfg(kith_postgres_tests)]
#[tokio::test]
async fn two_processes_share_one_database_and_push_across() {
    let (a, b) = two_processes_on_postgres();
    let (via_a, via_b) = (client(&a), client(&b));
    assert_eq!(
        via_a.info().await.unwrap().relay_id,
        via_b.info().await.unwrap().relay_id,
        "one relay, two processes"
    );
    let ch = channel(&via_a, ChannelOptions::default()).await;
    let (w, r) = (ch.created.write_id, ch.created.read_id);
    let mut session = via_b.session().await.unwrap();
    let sub = session.subscribe(&ch.reader, r, 0).await.unwrap();
    assert_eq!(
        next(&mut session).await,
        ServerFrame::Subscribed { sub, last_seq: 0 }
    );
    let mut latencies = Vec::new();
    for i in 1..=20u8 {
        let started = Instant::now();
        via_a.append(&ch.writer, w, &payload(i, 256)).await.unwrap();
        let ServerFrame::Message { message, .. } = next(&mut session).await else {
            panic!()
        };
        latencies.push(started.elapsed());
        assert_eq!(message.seq, u64::from(i));
        assert_eq!(message.payload, payload(i, 256));
    }
    latencies.sort();
    assert!(latencies[19] < Duration::from_secs(1), "{latencies:?}");

    // Long-poll through A, written through B.
    let waiting = {
        let via_a = via_a.clone();
        let reader = ch.reader.clone();
        tokio::spawn(async move {
            via_a
                .read(&reader, r, 20, 10, Duration::from_secs(10))
                .await
                .unwrap()
        })
    };
    wait_for_long_poll(a.url()).await;
    via_b
        .append(&ch.writer, w, &payload(21, 256))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.items.len(), 1);
    assert_eq!(got.items[0].seq, 21);

    // Revoked through A: B ends the subscription.
    via_a
        .revoke_key(&ch.owner, w, public_key(&ch.reader))
        .await
        .unwrap();
    loop {
        match next(&mut session).await {
            ServerFrame::Message { .. } => continue,
            ServerFrame::Closed { error, .. } => {
                assert_eq!(error.code, ErrorCode::UNAUTHORIZED);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
}
