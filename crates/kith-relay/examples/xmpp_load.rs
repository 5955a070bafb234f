//! The relay bench's workload, spoken to an XMPP server: the side-by-side
//! figure in docs/performance.md ("Beside an XMPP server"). Run by
//! `scripts/bench-vs-xmpp.sh`, which installs and starts ejabberd:
//!
//! ```text
//! xmpp_load --port 5222 --pairs 16 --in-flight 16 --size 256 --warmup 2 --duration 10
//! ```
//!
//! Sender `sN@localhost` sends chat messages to `rN@localhost/r`, keeping
//! `--in-flight` of them not yet acknowledged by the server (XEP-0198: a
//! `<r/>` after each message, answered `<a h=…/>` once the server has
//! handled it — the counterpart of the relay's append answer). Each body
//! is `--size` bytes and starts with the time it was sent; receivers time
//! each message from it. One line of JSON: messages delivered per second
//! in the measured window and the delivery latency percentiles.
//!
//! The XML is read by searching for the few markers this exchange has,
//! which is enough for a server that answers as ejabberd does; it is a
//! load generator, not an XMPP client.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

struct Args {
    port: u16,
    domain: String,
    password: String,
    pairs: usize,
    in_flight: u64,
    size: usize,
    warmup: u64,
    duration: u64,
}

fn args() -> Result<Args> {
    let mut a = Args {
        port: 5222,
        domain: "localhost".into(),
        password: "bench".into(),
        pairs: 16,
        in_flight: 16,
        size: 256,
        warmup: 2,
        duration: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => a.port = value.parse()?,
            "--domain" => a.domain = value,
            "--password" => a.password = value,
            "--pairs" => a.pairs = value.parse()?,
            "--in-flight" => a.in_flight = value.parse()?,
            "--size" => a.size = value.parse()?,
            "--warmup" => a.warmup = value.parse()?,
            "--duration" => a.duration = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    if a.size < 32 {
        bail!("--size must be at least 32");
    }
    Ok(a)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [0, 1, 2].map(|i| chunk.get(i).copied().unwrap_or(0));
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let digit = ALPHABET.get((n >> (18 - 6 * i)) as usize & 63);
                out.push(char::from(digit.copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Incoming bytes, searched for markers.
struct Incoming {
    read: OwnedReadHalf,
    buf: Vec<u8>,
}

impl Incoming {
    /// Reads until `marker` appears; returns everything up to and including
    /// it and keeps the rest.
    async fn until(&mut self, marker: &str) -> Result<Vec<u8>> {
        let marker = marker.as_bytes();
        let mut from = 0;
        loop {
            if let Some(at) = find(self.buf.get(from..).unwrap_or_default(), marker) {
                let end = from + at + marker.len();
                return Ok(self.buf.drain(..end).collect());
            }
            from = self.buf.len().saturating_sub(marker.len());
            let mut chunk = [0u8; 16384];
            let n = self.read.read(&mut chunk).await?;
            if n == 0 {
                bail!(
                    "the server closed the stream (waiting for {})",
                    String::from_utf8_lossy(marker)
                );
            }
            self.buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn stream_header(domain: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    )
}

/// A bound session of `user`, with stream management enabled.
async fn login(args: &Args, user: &str) -> Result<(Incoming, OwnedWriteHalf)> {
    let tcp = TcpStream::connect(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("connecting to 127.0.0.1:{}", args.port))?;
    tcp.set_nodelay(true)?;
    let (read, mut write) = tcp.into_split();
    let mut incoming = Incoming {
        read,
        buf: Vec::new(),
    };
    write
        .write_all(stream_header(&args.domain).as_bytes())
        .await?;
    incoming.until("</stream:features>").await?;
    let plain = base64(format!("\0{user}\0{}", args.password).as_bytes());
    write
        .write_all(
            format!(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>"
            )
            .as_bytes(),
        )
        .await?;
    let answer = incoming.until(">").await?;
    if find(&answer, b"<success").is_none() {
        let rest = incoming.until(">").await.unwrap_or_default();
        bail!(
            "{user} could not log in: {}{}",
            String::from_utf8_lossy(&answer),
            String::from_utf8_lossy(&rest)
        );
    }
    write
        .write_all(stream_header(&args.domain).as_bytes())
        .await?;
    incoming.until("</stream:features>").await?;
    write
        .write_all(
            b"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
              <resource>r</resource></bind></iq>",
        )
        .await?;
    incoming.until("</iq>").await?;
    write.write_all(b"<enable xmlns='urn:xmpp:sm:3'/>").await?;
    incoming.until("<enabled").await?;
    incoming.until(">").await?;
    Ok((incoming, write))
}

fn histogram() -> Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Arc::new(args()?);
    let epoch = Instant::now();
    let measure_from = Duration::from_secs(args.warmup);
    let measure_to = measure_from + Duration::from_secs(args.duration);
    let delivered = Arc::new(AtomicU64::new(0));

    let mut receivers = tokio::task::JoinSet::new();
    for i in 0..args.pairs {
        let (mut incoming, mut write) = login(&args, &format!("r{i}")).await?;
        write.write_all(b"<presence/>").await?;
        let delivered = delivered.clone();
        receivers.spawn(async move {
            let mut latency = histogram()?;
            let mut acked_to = 0u64;
            let mut handled = 0u64;
            loop {
                let body = match tokio::time::timeout(
                    Duration::from_millis(500),
                    incoming.until("</body>"),
                )
                .await
                {
                    Ok(body) => body?,
                    Err(_) if epoch.elapsed() > measure_to => break,
                    Err(_) => continue,
                };
                handled += 1;
                let Some(start) = find(&body, b"<body>") else {
                    continue;
                };
                let stamp = body.get(start + 6..start + 26).unwrap_or_default();
                let Ok(sent) = std::str::from_utf8(stamp)
                    .unwrap_or_default()
                    .trim()
                    .parse::<u64>()
                else {
                    continue;
                };
                let sent = Duration::from_micros(sent);
                let now = epoch.elapsed();
                if sent >= measure_from && sent < measure_to {
                    delivered.fetch_add(1, Ordering::Relaxed);
                    latency.record(now.saturating_sub(sent).as_micros().max(1) as u64)?;
                }
                // Acknowledged now and then, as a client that keeps its
                // stream resumable does.
                if handled - acked_to >= 32 {
                    acked_to = handled;
                    write
                        .write_all(format!("<a xmlns='urn:xmpp:sm:3' h='{handled}'/>").as_bytes())
                        .await?;
                }
            }
            anyhow::Ok(latency)
        });
    }

    let mut senders = tokio::task::JoinSet::new();
    for i in 0..args.pairs {
        let (mut incoming, mut write) = login(&args, &format!("s{i}")).await?;
        let args = args.clone();
        senders.spawn(async move {
            let to = format!("r{i}@{}/r", args.domain);
            let filler = "x".repeat(args.size - 20);
            let (mut sent, mut acked) = (0u64, 0u64);
            loop {
                while sent - acked < args.in_flight {
                    let at = epoch.elapsed();
                    if at >= measure_to {
                        return anyhow::Ok(sent);
                    }
                    let stanza = format!(
                        "<message to='{to}' type='chat'><body>{:020}{filler}</body></message>\
                         <r xmlns='urn:xmpp:sm:3'/>",
                        at.as_micros()
                    );
                    write.write_all(stanza.as_bytes()).await?;
                    sent += 1;
                }
                let answer = incoming.until("/>").await?;
                if find(&answer, b"<r ").is_some() {
                    // The server asks what this sender has received: nothing.
                    write.write_all(b"<a xmlns='urn:xmpp:sm:3' h='0'/>").await?;
                } else if let Some(at) = find(&answer, b"h='") {
                    let digits: String = answer
                        .get(at + 3..)
                        .unwrap_or_default()
                        .iter()
                        .take_while(|b| b.is_ascii_digit())
                        .map(|b| char::from(*b))
                        .collect();
                    acked = acked.max(digits.parse().unwrap_or(0));
                }
            }
        });
    }
    let mut sent = 0;
    while let Some(done) = senders.join_next().await {
        sent += done??;
    }
    let mut latency = histogram()?;
    while let Some(done) = receivers.join_next().await {
        latency.add(done??)?;
    }
    let count = delivered.load(Ordering::Relaxed);
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{{\"server\":\"xmpp\",\"pairs\":{},\"in_flight\":{},\"size\":{},\"sent\":{sent},\
         \"delivered_per_sec\":{:.0},\"latency_ms\":{{\"p50\":{:.2},\"p99\":{:.2},\"max\":{:.2}}}}}",
        args.pairs,
        args.in_flight,
        args.size,
        count as f64 / args.duration as f64,
        ms(0.5),
        ms(0.99),
        latency.max() as f64 / 1000.0,
    );
    Ok(())
}
