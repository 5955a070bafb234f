//! Many hostile clients of one kind at once, to measure what they cost the
//! relay (docs/performance.md, "The relay under hostile clients"). Run by
//! `scripts/hostile.sh`, which starts the relay:
//!
//! ```text
//! hostile --url URL --kind drip|stall|ws-no-read --connections 1000 --seconds 20
//! ```
//!
//! - `drip`: `POST /v1/channel/append` headers declaring 20,000 bytes, then
//!   the body one byte per connection in turn, for `--seconds`;
//! - `stall`: the headers and 2 of 100 declared bytes, then silence;
//! - `ws-no-read`: a WebSocket that asks for `--requests` (20) pages of
//!   about 4 MiB and never reads an answer.
//!
//! It samples the relay's resident memory (`/metrics`) every 250 ms and
//! prints one line: the kind, connections, the relay's memory before, at its
//! peak and after the clients are gone, and how many connections the relay
//! closed by itself.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::SinkExt;
use kith_relay_client::{ChannelOptions, RelayClient, generate_key, public_key};
use kith_wire::Codec;
use kith_wire::relay::push::ClientFrame;
use kith_wire::relay::request::{Operation, Read};
use kith_wire::relay::{KeyGrant, Rights};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    url: String,
    kind: String,
    connections: usize,
    seconds: u64,
    /// Reads each non-reading WebSocket asks for.
    requests: u32,
}

fn args() -> Result<Args> {
    let mut a = Args {
        url: String::new(),
        kind: String::new(),
        connections: 1000,
        seconds: 20,
        requests: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => a.url = value,
            "--kind" => a.kind = value,
            "--connections" => a.connections = value.parse()?,
            "--seconds" => a.seconds = value.parse()?,
            "--requests" => a.requests = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    if a.url.is_empty() || a.kind.is_empty() {
        bail!(
            "usage: hostile --url URL --kind drip|stall|ws-no-read [--connections N] [--seconds S]"
        );
    }
    Ok(a)
}

async fn metric(url: &str, name: &str) -> Result<f64> {
    let text = reqwest::get(format!("{url}/metrics")).await?.text().await?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .with_context(|| format!("no {name} in /metrics"))
}

async fn rss_mb(url: &str) -> Result<f64> {
    Ok(metric(url, "kith_relay_process_resident_memory_bytes").await? / 1e6)
}

/// Connections opened with the request line and headers already sent.
async fn open_posts(addr: &str, n: usize, head: &str) -> Result<Vec<TcpStream>> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        tcp.write_all(head.as_bytes()).await?;
        conns.push(tcp);
    }
    Ok(conns)
}

/// Whether the relay closed this connection (it answered or hung up).
async fn closed_by_relay(tcp: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    matches!(
        tokio::time::timeout(Duration::from_millis(1), tcp.read(&mut buf)).await,
        Ok(Ok(_) | Err(_))
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    kith_relay_client::install_crypto_provider();
    let addr = a.url.trim_start_matches("http://").to_owned();
    let before = rss_mb(&a.url).await?;
    let mut peak = before;
    let until = Instant::now() + Duration::from_secs(a.seconds);
    let mut closed = 0usize;
    match a.kind.as_str() {
        "drip" => {
            let head =
                "POST /v1/channel/append HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n";
            let mut conns = open_posts(&addr, a.connections, head).await?;
            let mut sampled = Instant::now();
            while Instant::now() < until {
                for tcp in &mut conns {
                    // A connection the relay closed stays closed.
                    let _ = tcp.write_all(&[0]).await;
                }
                if sampled.elapsed() > Duration::from_millis(250) {
                    peak = peak.max(rss_mb(&a.url).await?);
                    sampled = Instant::now();
                }
            }
            for tcp in &mut conns {
                closed += usize::from(closed_by_relay(tcp).await);
            }
        }
        "stall" => {
            let head =
                "POST /v1/channel/append HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab";
            let mut conns = open_posts(&addr, a.connections, head).await?;
            while Instant::now() < until {
                peak = peak.max(rss_mb(&a.url).await?);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            for tcp in &mut conns {
                closed += usize::from(closed_by_relay(tcp).await);
            }
        }
        "ws-no-read" => {
            let client = RelayClient::new(&a.url)?;
            let (owner, reader) = (generate_key()?, generate_key()?);
            let created = client
                .create_channel(
                    &owner,
                    ChannelOptions {
                        grants: vec![KeyGrant {
                            key: public_key(&reader),
                            rights: Rights::READ,
                        }],
                        ..ChannelOptions::default()
                    },
                )
                .await?;
            for i in 0..16u8 {
                client
                    .append(&owner, created.write_id, &vec![i; 262_144])
                    .await?;
            }
            let ws_url = format!("{}/v1/ws", a.url.replace("http://", "ws://"));
            let mut sockets = Vec::with_capacity(a.connections);
            for _ in 0..a.connections {
                let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await?;
                for id in 0..a.requests {
                    let request = client
                        .sign(
                            &reader,
                            Operation::Read(Read {
                                read_id: created.read_id,
                                after_seq: 0,
                                max_messages: 1_000,
                                wait_ms: 0,
                            }),
                        )
                        .await?;
                    let frame = ClientFrame::Request { id, request }.to_bytes();
                    ws.send(tokio_tungstenite::tungstenite::Message::Binary(
                        frame.into(),
                    ))
                    .await?;
                }
                sockets.push(ws);
            }
            while Instant::now() < until {
                peak = peak.max(rss_mb(&a.url).await?);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            closed = metric(&a.url, "kith_relay_write_timeouts_total").await? as usize;
            drop(sockets);
        }
        other => bail!("unknown kind {other}"),
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_mb(&a.url).await?;
    println!(
        "{}: {} connections for {} s: relay {before:.1} MB before, {peak:.1} MB at the peak, \
         {after:.1} MB after; {closed} closed by the relay",
        a.kind, a.connections, a.seconds
    );
    Ok(())
}
