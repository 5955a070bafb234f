// The crash-safety suite, included by `crash.rs` (SQLite) and
// `crash_postgres.rs` (PostgreSQL); `STORE` names the store.

use common::*;
use kith_relay_client::{ChannelOptions, RelayClient};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CHANNELS: usize = 4;
const KILLS: usize = 2;

/// (channel, writer, counter, seq) of every acknowledged append.
type Acked = Arc<Mutex<Vec<(usize, u32, u64, u64)>>>;

fn encode(writer: u32, counter: u64) -> Vec<u8> {
    let mut p = vec![0u8; 256];
    p[..4].copy_from_slice(&writer.to_be_bytes());
    p[4..12].copy_from_slice(&counter.to_be_bytes());
    p
}

fn decode(p: &[u8]) -> (u32, u64) {
    (
        u32::from_be_bytes(p[..4].try_into().unwrap()),
        u64::from_be_bytes(p[4..12].try_into().unwrap()),
    )
}

/// Two writers per channel, one over HTTP and one over a WebSocket, until
/// the relay goes away.
async fn write_until_killed(
    client: &RelayClient,
    channels: &Arc<Vec<Channel>>,
    acked: &Acked,
    round: u32,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut writers = Vec::new();
    for (c, _) in channels.iter().enumerate() {
        for over_ws in [false, true] {
            let writer_id = round * 100 + (c as u32) * 2 + u32::from(over_ws);
            let (client, channels, acked) = (client.clone(), channels.clone(), acked.clone());
            let session = if over_ws {
                Some(client.session().await.unwrap())
            } else {
                None
            };
            writers.push(tokio::spawn(async move {
                let ch = &channels[c];
                for counter in 0.. {
                    let payload = encode(writer_id, counter);
                    let result = match &session {
                        Some(s) => s.append(&ch.owner, ch.created.write_id, &payload).await,
                        None => {
                            client
                                .append(&ch.writer, ch.created.write_id, &payload)
                                .await
                        }
                    };
                    match result {
                        Ok(a) => acked.lock().unwrap().push((c, writer_id, counter, a.seq)),
                        Err(_) => return,
                    }
                }
            }));
        }
    }
    writers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_sigkill() {
    let mut relay = relay(unlimited());
    let client = client(&relay);
    let mut created = Vec::new();
    for _ in 0..CHANNELS {
        created.push(channel(&client, ChannelOptions::default()).await);
    }
    let channels = Arc::new(created);
    let acked: Acked = Arc::default();

    for round in 0..KILLS as u32 {
        let client = RelayClient::new(relay.url()).unwrap();
        let before = acked.lock().unwrap().len();
        let writers = write_until_killed(&client, &channels, &acked, round).await;
        // Killed while busy: after a good number of acknowledged appends,
        // however slow the machine.
        wait_for_count("appends acknowledged", before + 200, || {
            acked.lock().unwrap().len()
        })
        .await;
        relay = tokio::task::spawn_blocking(move || {
            relay.kill().unwrap();
            relay
        })
        .await
        .unwrap();
        for w in writers {
            w.await.unwrap();
        }
        relay.restart().unwrap();
    }

    let client = RelayClient::new(relay.url()).unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 200,
        "the test appended enough to mean something ({})",
        acked.len()
    );
    for (c, ch) in channels.iter().enumerate() {
        let mut stored = Vec::new();
        let mut after = 0;
        loop {
            let page = client
                .read(&ch.owner, ch.created.read_id, after, 1_000, Duration::ZERO)
                .await
                .unwrap();
            let Some(last) = page.items.last() else { break };
            after = last.seq;
            stored.extend(page.items);
        }
        let by_seq: HashMap<u64, (u32, u64)> =
            stored.iter().map(|m| (m.seq, decode(&m.payload))).collect();
        // Exactly once: no payload twice, no sequence number twice.
        let distinct: HashSet<(u32, u64)> = by_seq.values().copied().collect();
        assert_eq!(distinct.len(), stored.len(), "a message was stored twice");
        assert_eq!(by_seq.len(), stored.len());
        // Every acknowledged append is there, under the sequence number given.
        for &(_, writer, counter, seq) in acked.iter().filter(|a| a.0 == c) {
            assert_eq!(
                by_seq.get(&seq),
                Some(&(writer, counter)),
                "acknowledged append (writer {writer}, #{counter}) lost or changed at seq {seq}"
            );
        }
        // In order: each writer's messages appear in the order it sent them.
        let mut last_counter: HashMap<u32, u64> = HashMap::new();
        for m in &stored {
            let (writer, counter) = decode(&m.payload);
            if let Some(prev) = last_counter.insert(writer, counter) {
                assert!(
                    counter > prev,
                    "writer {writer}: #{counter} stored after #{prev}"
                );
            }
        }
    }
}
