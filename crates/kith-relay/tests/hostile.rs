//! Clients that misbehave on purpose (relay.md §3.4): a body dripped a byte
//! at a time, a body that stops, a WebSocket that stops reading. Each runs
//! against the real binary on SQLite; the relay's own metrics say what it
//! holds. Tests wait for conditions with deadlines, never for time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

const STORE: common::Store = common::Store::Sqlite;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use common::{channel, client, metric, payload, relay, unlimited, wait_for_metric};
use futures_util::SinkExt;
use kith_relay_client::ChannelOptions;
use kith_wire::Codec;
use kith_wire::relay::push::ClientFrame;
use kith_wire::relay::request::{Operation, Read};

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_dripped_a_byte_at_a_time_holds_little_memory() {
    const CONNECTIONS: usize = 4;
    const BYTES: usize = 4_000;
    let relay = relay(unlimited());
    let url = relay.url().to_owned();
    let rss = "kith_relay_process_resident_memory_bytes";
    let before = metric(&url, rss).await;
    let target = addr(&url);
    let drip = tokio::task::spawn_blocking(move || {
        let mut conns: Vec<TcpStream> = (0..CONNECTIONS)
            .map(|_| {
                let mut tcp = TcpStream::connect(&target).unwrap();
                tcp.set_nodelay(true).unwrap();
                write!(
                    tcp,
                    "POST /v1/channel/append HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n"
                )
                .unwrap();
                tcp
            })
            .collect();
        // One byte to each in turn: every read on the relay's side finds
        // one byte, as from a client that sends them far apart.
        for _ in 0..BYTES {
            for tcp in &mut conns {
                tcp.write_all(&[0]).unwrap();
            }
            std::thread::sleep(Duration::from_micros(300));
        }
        conns
    });
    let conns = drip.await.unwrap();
    let grown = metric(&url, rss).await - before;
    drop(conns);
    eprintln!(
        "{BYTES} bytes dripped on each of {CONNECTIONS} connections: the relay grew {grown} bytes"
    );
    assert!(
        grown < (CONNECTIONS as f64) * 1e6,
        "{BYTES} bytes dripped on each of {CONNECTIONS} connections grew the relay by {grown} bytes"
    );
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_and_frees_its_connection() {
    // Ten connections allowed, all taken by bodies that stop.
    let relay = relay(
        unlimited()
            .env("KITH_RELAY_BODY_TIMEOUT_SECS", 1)
            .env("KITH_RELAY_MAX_CONNECTIONS", 10),
    );
    let url = relay.url().to_owned();
    let target = addr(&url);
    let answers = tokio::task::spawn_blocking(move || {
        let conns: Vec<TcpStream> = (0..10)
            .map(|_| {
                let mut tcp = TcpStream::connect(&target).unwrap();
                tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                write!(
                    tcp,
                    "POST /v1/channel/append HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab"
                )
                .unwrap();
                tcp
            })
            .collect();
        conns
            .into_iter()
            .map(|mut tcp| {
                let mut answer = Vec::new();
                // The answer, then the end of the connection.
                tcp.read_to_end(&mut answer).unwrap();
                String::from_utf8_lossy(&answer).into_owned()
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for answer in answers {
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("connection: close"), "{answer}");
    }
    // Their connections are free again.
    let health = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test]
async fn a_websocket_that_stops_reading_is_closed_within_the_write_timeout() {
    let relay = relay(unlimited().env("KITH_RELAY_WRITE_TIMEOUT_SECS", 1));
    let url = relay.url().to_owned();
    let client = client(&relay);
    let ch = channel(&client, ChannelOptions::default()).await;
    // About 4 MiB to read.
    for i in 0..16u8 {
        client
            .append(&ch.writer, ch.created.write_id, &payload(i, 262_144))
            .await
            .unwrap();
    }
    let ws_url = format!("{}/v1/ws", url.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    for id in 0..100 {
        let request = client
            .sign(
                &ch.reader,
                Operation::Read(Read {
                    read_id: ch.created.read_id,
                    after_seq: 0,
                    max_messages: 1_000,
                    wait_ms: 0,
                }),
            )
            .await
            .unwrap();
        let frame = ClientFrame::Request { id, request }.to_bytes();
        ws.send(tokio_tungstenite::tungstenite::Message::Binary(
            frame.into(),
        ))
        .await
        .unwrap();
    }
    // Never read: the relay gives up on the connection, and holds nothing
    // for it any more.
    wait_for_metric(
        &url,
        "kith_relay_write_timeouts_total",
        Duration::from_secs(60),
        |n| n >= 1.0,
    )
    .await;
    wait_for_metric(
        &url,
        "kith_relay_websocket_connections",
        Duration::from_secs(30),
        |n| n == 0.0,
    )
    .await;
    drop(ws);
}
