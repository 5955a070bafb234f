//! `kith-relay bench`: a load generator against a running relay.
//!
//! Phases, all against the same relay in one run:
//! 1. idle subscribers: resident memory before and after opening N
//!    WebSocket connections, each subscribed to its own channel;
//! 2. load: W writers append to W channels (closed loop, or open loop at
//!    `--rate` messages/s in total); R WebSocket readers subscribed to those
//!    channels measure send→push latency from a timestamp in each payload;
//! 3. baseline: the same concurrency on `GET /healthz`, so that throughput
//!    is also reported as a ratio to what the relay's HTTP stack alone does
//!    on this machine in this run.

use anyhow::{Context, Result, bail};
use ed25519_dalek::SigningKey;
use hdrhistogram::Histogram;
use kith_relay_client::{ChannelOptions, RelayClient, generate_key, one_line};
use kith_wire::Codec;
use kith_wire::relay::push::ServerFrame;
use kith_wire::relay::request::{Ack, Append, Operation};
use kith_wire::relay::response::Appended;
use kith_wire::relay::response::ErrorCode;
use kith_wire::relay::{ReadId, WriteId, is_bucket_size};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// The relay's URL.
    #[arg(long, default_value = "http://127.0.0.1:7070")]
    url: String,
    /// Concurrent writers, each appending to its own channel.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// Readers connect here instead (another process of the same relay,
    /// sharing its PostgreSQL database): pushes then cross processes.
    #[arg(long)]
    read_url: Option<String>,
    /// WebSocket readers (reader i subscribes to channel i mod writers).
    #[arg(long, default_value_t = 64)]
    readers: usize,
    /// Seconds measured (after the warm-up).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Payload size in bytes (a size bucket).
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Total messages/s to offer (open loop); 0 = as fast as accepted.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// How writers send: over their own WebSocket, or one HTTP request each.
    #[arg(long, value_enum, default_value_t = Transport::Ws)]
    transport: Transport,
    /// Appends each writer keeps in flight (1 = wait for each answer).
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
    /// Sign this many appends per in-flight slot before the run, instead of
    /// signing each as it is sent: the load generator's own signing then does
    /// not compete with the relay for this machine's cores. Needs the
    /// WebSocket transport and a run shorter than the relay's timestamp window.
    #[arg(long, default_value_t = 0)]
    presign: usize,
    /// Bind each writer's and reader's key to its WebSocket once and send
    /// its appends and acknowledgements unsigned (relay.md §8, "Bound
    /// keys"), as a client on a TLS connection does.
    #[arg(long)]
    bound: bool,
    /// Readers acknowledge after this many messages (0: never), as clients
    /// do once they have processed what they read.
    #[arg(long, default_value_t = 32)]
    ack_every: u64,
    /// Idle subscribers to open first, to measure their memory.
    #[arg(long, default_value_t = 0)]
    idle: usize,
    /// Skip the /healthz baseline.
    #[arg(long)]
    no_baseline: bool,
    /// Also measure one-fsync-per-write (4 KiB) in this directory, as the
    /// baseline a store without group commit would have; put it on the
    /// relay's disk (when the bench runs on the relay's machine).
    #[arg(long)]
    fsync_dir: Option<std::path::PathBuf>,
    /// Channel-creation token, if the relay needs one.
    #[arg(long)]
    create_token: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Transport {
    Ws,
    Http,
}

struct Channel {
    key: SigningKey,
    write_id: WriteId,
    read_id: ReadId,
}

#[derive(Default)]
struct Totals {
    accepted: AtomicU64,
    /// Presigned slots that ran out before the end.
    exhausted: AtomicU64,
    errors: std::sync::Mutex<BTreeMap<String, u64>>,
}

impl Totals {
    fn error(&self, what: String) {
        if let Ok(mut e) = self.errors.lock() {
            *e.entry(what).or_default() += 1;
        }
    }
}

fn histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 60_000_000, 3).context("histogram")
}

/// A gauge from the relay's `/metrics`.
async fn relay_metric(client: &RelayClient, name: &str) -> Result<Option<f64>> {
    let url = client.url().join("metrics")?;
    let text = reqwest::get(url).await?.text().await?;
    Ok(text
        .lines()
        .find(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' '))
        })
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok()))
}

async fn resident_memory(client: &RelayClient) -> Result<Option<u64>> {
    Ok(
        relay_metric(client, "kith_relay_process_resident_memory_bytes")
            .await?
            .map(|v| v as u64),
    )
}

async fn relay_cpu(client: &RelayClient) -> Result<Option<f64>> {
    relay_metric(client, "kith_relay_process_cpu_seconds").await
}

async fn create_channels(
    client: &RelayClient,
    n: usize,
    token: &Option<String>,
) -> Result<Vec<Channel>> {
    let mut tasks = tokio::task::JoinSet::new();
    let parallel = 32.min(n.max(1));
    let per_task = n.div_ceil(parallel);
    for t in 0..parallel {
        let client = client.clone();
        let token = token.clone();
        let count = per_task.min(n.saturating_sub(t * per_task));
        tasks.spawn(async move {
            let mut out = Vec::with_capacity(count);
            for _ in 0..count {
                let key = generate_key()?;
                let created = client
                    .create_channel(
                        &key,
                        ChannelOptions {
                            create_token: token.clone().map(String::into_bytes),
                            ..ChannelOptions::default()
                        },
                    )
                    .await?;
                out.push(Channel {
                    key,
                    write_id: created.write_id,
                    read_id: created.read_id,
                });
            }
            anyhow::Ok(out)
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        all.extend(r??);
    }
    Ok(all)
}

pub(crate) async fn run(args: BenchArgs) -> Result<()> {
    kith_relay_client::install_crypto_provider();
    if !is_bucket_size(args.size) || args.size < 16 {
        bail!("--size must be a size bucket (256, 1024, 4096, 16384, 65536, 262144)");
    }
    if args.writers == 0 {
        bail!("--writers must be at least 1");
    }
    if args.bound && (args.transport == Transport::Http || args.presign > 0) {
        bail!("--bound needs --transport ws and no --presign (bound requests are not signed)");
    }
    let client = RelayClient::new(&args.url)?;
    let info = client
        .info()
        .await
        .with_context(|| format!("cannot reach the relay at {}", args.url))?;
    let mut report = serde_report::Report {
        relay: args.url.clone(),
        presigned: args.presign > 0,
        bound: args.bound,
        transport: args.transport,
        in_flight: args.in_flight.max(1),
        writers: args.writers,
        readers: args.readers,
        size: args.size,
        offered_rate: args.rate,
        duration_secs: args.duration,
        idle_subscribers: 0,
        idle_memory_bytes: 0,
        accepted_per_sec: 0.0,
        relay_cpu_cores: 0.0,
        relay_cpu_us_per_message: 0.0,
        append_ms: serde_report::Percentiles::default(),
        push_ms: serde_report::Percentiles::default(),
        pushed: 0,
        errors: BTreeMap::new(),
        baseline_healthz_per_sec: 0.0,
        ratio_to_baseline: 0.0,
        baseline_fsyncs_per_sec: 0.0,
        messages_per_fsync: 0.0,
    };
    eprintln!(
        "relay {} ({}), {} writers over {:?} ({} in flight each), {} readers, {} B payloads, {}",
        args.url,
        info.relay_id.to_hex().get(..8).unwrap_or(""),
        args.writers,
        args.transport,
        args.in_flight.max(1),
        args.readers,
        args.size,
        if args.rate == 0 {
            "closed loop".to_owned()
        } else {
            format!("{} msg/s offered", args.rate)
        }
    );

    // Phase 1: idle subscribers.
    let mut idle = Vec::new();
    if args.idle > 0 {
        let before = resident_memory(&client).await?;
        let channels = create_channels(&client, args.idle, &args.create_token).await?;
        for c in &channels {
            let s = client.session().await?;
            s.subscribe(&c.key, c.read_id, 0).await?;
            idle.push(s);
        }
        for s in &mut idle {
            match s.next().await {
                Some(ServerFrame::Subscribed { .. }) => {}
                other => bail!("idle subscription failed: {other:?}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = resident_memory(&client).await?;
        if let (Some(b), Some(a)) = (before, after) {
            report.idle_subscribers = args.idle;
            report.idle_memory_bytes = a.saturating_sub(b);
            eprintln!(
                "idle: {} subscribers cost {:.1} MiB ({:.1} KiB each); relay RSS {:.1} MiB",
                args.idle,
                report.idle_memory_bytes as f64 / 1048576.0,
                report.idle_memory_bytes as f64 / 1024.0 / args.idle as f64,
                a as f64 / 1048576.0
            );
        }
    }

    // Phase 2: load.
    let channels = Arc::new(create_channels(&client, args.writers, &args.create_token).await?);
    let slots_per_writer = args.in_flight.max(1);
    let presigned = if args.presign > 0 {
        Some(Arc::new(
            presign(&client, &channels, &args, slots_per_writer).await?,
        ))
    } else {
        None
    };
    let epoch = Instant::now();
    let clock = Clock {
        epoch,
        sent: presigned.as_ref().map(|p| p.sent.clone()),
    };
    let measure_from = Duration::from_secs(args.warmup);
    let measure_to = measure_from + Duration::from_secs(args.duration);
    let totals = Arc::new(Totals::default());
    let push_latency = Arc::new(Mutex::new(histogram()?));
    let append_latency = Arc::new(Mutex::new(histogram()?));
    let stop_readers = Arc::new(AtomicBool::new(false));

    let read_client = match &args.read_url {
        Some(url) => RelayClient::new(url)?,
        None => client.clone(),
    };
    let mut readers = tokio::task::JoinSet::new();
    for ch in channels.iter().cycle().take(args.readers) {
        let mut sub = read_client.session().await?;
        sub.subscribe(&ch.key, ch.read_id, 0).await?;
        match sub.next().await {
            Some(ServerFrame::Subscribed { .. }) => {}
            other => bail!("subscription failed: {other:?}"),
        }
        let bound = if args.bound {
            Some(sub.bind(&ch.key).await?)
        } else {
            None
        };
        let hist = push_latency.clone();
        let stop = stop_readers.clone();
        let (key, read_id) = (ch.key.clone(), ch.read_id);
        let ack_every = args.ack_every;
        let clock = clock.clone();
        readers.spawn(async move {
            let mut local = histogram()?;
            let mut unacked = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let frame = tokio::time::timeout(Duration::from_millis(200), sub.next()).await;
                let message = match frame {
                    Ok(Some(ServerFrame::Message { message, .. })) => message,
                    Ok(None) => bail!("the relay closed a reader's WebSocket"),
                    Ok(Some(_)) | Err(_) => continue,
                };
                let now = clock.epoch.elapsed();
                if let Some(sent) = clock
                    .sent_at(&message.payload)
                    .filter(|s| *s >= measure_from && *s < measure_to)
                {
                    let _ = local.record((now.saturating_sub(sent).as_micros() as u64).max(1));
                }
                unacked += 1;
                if ack_every > 0 && unacked >= ack_every {
                    unacked = 0;
                    let ack = Operation::Ack(Ack {
                        read_id,
                        seq: message.seq,
                    });
                    // Acknowledge without pausing the reading, as a client does.
                    let (requester, key) = (sub.requester(), key.clone());
                    tokio::spawn(async move {
                        let _ = match bound {
                            Some(key_ref) => requester.send_bound(key_ref, &ack).await,
                            None => requester.call(&key, ack).await,
                        };
                    });
                }
            }
            hist.lock().await.add(&local)?;
            sub.close().await;
            anyhow::Ok(())
        });
    }

    let mut writers = tokio::task::JoinSet::new();
    // Open loop: each in-flight slot of each writer sends on its own timer.
    let slots = args.writers * slots_per_writer;
    let interval =
        (args.rate > 0).then(|| Duration::from_secs_f64(slots as f64 / args.rate as f64));
    for w in 0..channels.len() {
        let session = match args.transport {
            Transport::Ws => Some(Arc::new(client.session().await?)),
            Transport::Http => None,
        };
        let bound = match (&session, channels.get(w)) {
            (Some(s), Some(ch)) if args.bound => Some(s.bind(&ch.key).await?),
            _ => None,
        };
        for slot in 0..slots_per_writer {
            let client = client.clone();
            let session = session.clone();
            let channels = channels.clone();
            let totals = totals.clone();
            let hist = append_latency.clone();
            let presigned = presigned.clone();
            let clock = clock.clone();
            let size = args.size;
            let slot_id = w * slots_per_writer + slot;
            let phase = slot_id as f64 / slots as f64;
            writers.spawn(async move {
                let Some(ch) = channels.get(w) else {
                    return Ok(());
                };
                let mut local = histogram()?;
                let mut payload = vec![0u8; size];
                let mut ticker = interval.map(|i| {
                    let mut t =
                        tokio::time::interval_at(tokio::time::Instant::now() + i.mul_f64(phase), i);
                    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    t
                });
                let mut ready = presigned
                    .as_ref()
                    .and_then(|p| p.requests.get(slot_id))
                    .map(|r| r.iter());
                loop {
                    if let Some(t) = ticker.as_mut() {
                        t.tick().await;
                    }
                    let start = clock.epoch.elapsed();
                    if start >= measure_to {
                        break;
                    }
                    let result = match (&session, ready.as_mut()) {
                        (Some(s), Some(ready)) => {
                            let Some((index, request)) = ready.next() else {
                                totals.exhausted.fetch_add(1, Ordering::Relaxed);
                                break;
                            };
                            clock.mark_sent(*index, start);
                            s.send_signed(request.clone())
                                .await
                                .and_then(|b| Ok(Appended::from_bytes(&b)?))
                        }
                        (session, _) => {
                            stamp(&mut payload, start, slot_id as u64);
                            match (session, bound) {
                                (Some(s), Some(key_ref)) => {
                                    s.append_bound(key_ref, ch.write_id, &payload).await
                                }
                                (Some(s), None) => s.append(&ch.key, ch.write_id, &payload).await,
                                (None, _) => client.append(&ch.key, ch.write_id, &payload).await,
                            }
                        }
                    };
                    let in_window = start >= measure_from;
                    match result {
                        Ok(_) if in_window => {
                            totals.accepted.fetch_add(1, Ordering::Relaxed);
                            let took = clock.epoch.elapsed().saturating_sub(start);
                            let _ = local.record((took.as_micros() as u64).max(1));
                        }
                        Ok(_) => {}
                        Err(e) if e.code().is_none() => {
                            // Not an answer from the relay: it is gone or
                            // dropping connections, and nothing after this
                            // measures it.
                            anyhow::bail!("the relay stopped answering: {}", one_line(&e));
                        }
                        Err(e) => {
                            let what = e
                                .code()
                                .map_or_else(|| e.to_string(), |c: ErrorCode| c.name().to_owned());
                            totals.error(what);
                            if e.code() == Some(ErrorCode::RATE_LIMITED) {
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                }
                hist.lock().await.add(&local)?;
                anyhow::Ok(())
            });
        }
    }
    // The relay's CPU over the measured window.
    let cpu_probe = {
        let client = client.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(tokio::time::Instant::from_std(epoch + measure_from)).await;
            let start = relay_cpu(&client).await.ok().flatten();
            tokio::time::sleep_until(tokio::time::Instant::from_std(epoch + measure_to)).await;
            let end = relay_cpu(&client).await.ok().flatten();
            start.zip(end).map(|(a, b)| b - a)
        })
    };
    while let Some(r) = writers.join_next().await {
        r??;
    }
    let relay_cpu_secs = cpu_probe.await.ok().flatten();
    // Let the last pushes arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_readers.store(true, Ordering::Relaxed);
    while let Some(r) = readers.join_next().await {
        r??;
    }

    let accepted = totals.accepted.load(Ordering::Relaxed);
    report.accepted_per_sec = accepted as f64 / args.duration as f64;
    if let Some(cpu) = relay_cpu_secs {
        report.relay_cpu_cores = cpu / args.duration as f64;
        report.relay_cpu_us_per_message = cpu * 1e6 / (accepted.max(1) as f64);
    }
    let a = append_latency.lock().await;
    report.append_ms = serde_report::Percentiles::of(&a);
    let p = push_latency.lock().await;
    report.push_ms = serde_report::Percentiles::of(&p);
    report.pushed = p.len();
    report.errors = totals.errors.lock().map(|e| e.clone()).unwrap_or_default();
    eprintln!(
        "load: {:.0} messages/s accepted; append p50 {:.2} ms p99 {:.2} ms; push p50 {:.2} ms p90 {:.2} ms p99 {:.2} ms max {:.2} ms ({} pushes measured)",
        report.accepted_per_sec,
        report.append_ms.p50,
        report.append_ms.p99,
        report.push_ms.p50,
        report.push_ms.p90,
        report.push_ms.p99,
        report.push_ms.max,
        report.pushed
    );
    if relay_cpu_secs.is_some() {
        eprintln!(
            "relay CPU: {:.2} cores, {:.0} us per accepted message (its readers' pushes and acks included)",
            report.relay_cpu_cores, report.relay_cpu_us_per_message
        );
    }
    if !report.errors.is_empty() {
        eprintln!("errors: {:?}", report.errors);
    }
    let exhausted = totals.exhausted.load(Ordering::Relaxed);
    if exhausted > 0 {
        eprintln!(
            "warning: {exhausted} writer slot(s) ran out of presigned appends before the end; \
             the rate above is too low: raise --presign"
        );
    }

    // Phase 3: baseline.
    if !args.no_baseline {
        let url = client.url().join("healthz")?;
        let http = reqwest::Client::new();
        let count = Arc::new(AtomicU64::new(0));
        let until = Instant::now() + Duration::from_secs(args.duration);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..args.writers {
            let (http, url, count) = (http.clone(), url.clone(), count.clone());
            tasks.spawn(async move {
                while Instant::now() < until {
                    if http.get(url.clone()).send().await.is_ok() {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        report.baseline_healthz_per_sec =
            count.load(Ordering::Relaxed) as f64 / args.duration as f64;
        report.ratio_to_baseline =
            report.accepted_per_sec / report.baseline_healthz_per_sec.max(1.0);
        eprintln!(
            "baseline: {:.0} GET /healthz per s with the same concurrency; durable appends run at {:.2}× that",
            report.baseline_healthz_per_sec, report.ratio_to_baseline
        );
    }
    if let Some(dir) = &args.fsync_dir {
        let per_sec = fsync_rate(dir)?;
        report.baseline_fsyncs_per_sec = per_sec;
        report.messages_per_fsync = report.accepted_per_sec / per_sec.max(1.0);
        eprintln!(
            "baseline: {:.0} write+fsync of 4 KiB per s in {}; durable appends run at {:.1}× that",
            per_sec,
            dir.display(),
            report.messages_per_fsync
        );
    }
    for s in idle {
        s.close().await;
    }
    if args.json {
        #[allow(clippy::print_stdout)]
        {
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    Ok(())
}

/// Sequential 4 KiB writes, each followed by fsync, per second.
fn fsync_rate(dir: &std::path::Path) -> Result<f64> {
    use std::io::Write;
    let path = dir.join(format!("kith-bench-fsync-{}.tmp", std::process::id()));
    let mut file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let block = [0x5au8; 4096];
    let n = 500;
    let started = Instant::now();
    for _ in 0..n {
        file.write_all(&block)?;
        file.sync_all()?;
    }
    let rate = f64::from(n) / started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

/// Where a payload's send time comes from. Signed as it is sent, a payload
/// starts with the send time (ns since `epoch`); presigned, it starts with
/// its index (top bit set) into a table filled when it is sent.
#[derive(Clone)]
struct Clock {
    epoch: Instant,
    sent: Option<Arc<Vec<AtomicU64>>>,
}

const PRESIGNED: u64 = 1 << 63;

impl Clock {
    fn sent_at(&self, payload: &[u8]) -> Option<Duration> {
        let head = u64::from_be_bytes(payload.get(..8)?.try_into().ok()?);
        if head & PRESIGNED == 0 {
            return Some(Duration::from_nanos(head));
        }
        let index = usize::try_from(head & !PRESIGNED).ok()?;
        match self.sent.as_ref()?.get(index)?.load(Ordering::Acquire) {
            0 => None,
            ns => Some(Duration::from_nanos(ns - 1)),
        }
    }

    fn mark_sent(&self, index: usize, at: Duration) {
        if let Some(slot) = self.sent.as_ref().and_then(|s| s.get(index)) {
            slot.store(at.as_nanos() as u64 + 1, Ordering::Release);
        }
    }
}

/// Writes the send time and writer id at the head of a payload.
fn stamp(payload: &mut [u8], at: Duration, writer: u64) {
    let head = (at.as_nanos() as u64 & !PRESIGNED).to_be_bytes();
    for (dst, src) in payload
        .iter_mut()
        .zip(head.iter().chain(&writer.to_be_bytes()))
    {
        *dst = *src;
    }
}

/// Requests signed before the run, per in-flight slot, with their indexes.
struct Presigned {
    requests: Vec<Vec<(usize, Vec<u8>)>>,
    sent: Arc<Vec<AtomicU64>>,
}

async fn presign(
    client: &RelayClient,
    channels: &Arc<Vec<Channel>>,
    args: &BenchArgs,
    slots_per_writer: usize,
) -> Result<Presigned> {
    if args.transport != Transport::Ws {
        bail!("--presign needs --transport ws");
    }
    let window = client.cached_info().await?.limits.timestamp_max_age_ms;
    if (args.warmup + args.duration) * 1000 + 5_000 > u64::from(window) {
        bail!(
            "with --presign, warm-up + duration must end within the relay's {window} ms timestamp window"
        );
    }
    let slots = channels.len() * slots_per_writer;
    let total = slots * args.presign;
    eprintln!("signing {total} appends before the run");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for slot in 0..slots {
        let (client, channels) = (client.clone(), channels.clone());
        let (count, size) = (args.presign, args.size);
        tasks.spawn(async move {
            let Some(ch) = channels.get(slot / slots_per_writer) else {
                return anyhow::Ok((slot, Vec::new()));
            };
            let mut out = Vec::with_capacity(count);
            for n in 0..count {
                let index = slot * count + n;
                let mut payload = vec![0u8; size];
                for (dst, src) in payload
                    .iter_mut()
                    .zip(((index as u64) | PRESIGNED).to_be_bytes())
                {
                    *dst = src;
                }
                let op = Operation::Append(Append {
                    write_id: ch.write_id,
                    payload,
                });
                out.push((index, client.sign(&ch.key, op).await?));
            }
            anyhow::Ok((slot, out))
        });
    }
    let mut requests = vec![Vec::new(); slots];
    while let Some(done) = tasks.join_next().await {
        let (slot, signed) = done??;
        if let Some(r) = requests.get_mut(slot) {
            *r = signed;
        }
    }
    eprintln!("signed in {:.1} s", started.elapsed().as_secs_f64());
    Ok(Presigned {
        requests,
        sent: Arc::new((0..total).map(|_| AtomicU64::new(0)).collect()),
    })
}

/// The report, printed as JSON with `--json`.
mod serde_report {
    use hdrhistogram::Histogram;
    use serde::Serialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Default, Clone, Copy, Serialize)]
    pub(crate) struct Percentiles {
        pub(crate) p50: f64,
        pub(crate) p90: f64,
        pub(crate) p99: f64,
        pub(crate) max: f64,
    }

    impl Percentiles {
        pub(crate) fn of(h: &Histogram<u64>) -> Self {
            let ms = |us: u64| us as f64 / 1000.0;
            Self {
                p50: ms(h.value_at_quantile(0.50)),
                p90: ms(h.value_at_quantile(0.90)),
                p99: ms(h.value_at_quantile(0.99)),
                max: ms(h.max()),
            }
        }
    }

    #[derive(Debug, Serialize)]
    pub(crate) struct Report {
        pub(crate) relay: String,
        pub(crate) bound: bool,
        pub(crate) presigned: bool,
        pub(crate) transport: super::Transport,
        pub(crate) in_flight: usize,
        pub(crate) writers: usize,
        pub(crate) readers: usize,
        pub(crate) size: usize,
        pub(crate) offered_rate: u64,
        pub(crate) duration_secs: u64,
        pub(crate) idle_subscribers: usize,
        pub(crate) idle_memory_bytes: u64,
        pub(crate) accepted_per_sec: f64,
        pub(crate) relay_cpu_cores: f64,
        pub(crate) relay_cpu_us_per_message: f64,
        pub(crate) append_ms: Percentiles,
        pub(crate) push_ms: Percentiles,
        pub(crate) pushed: u64,
        pub(crate) errors: BTreeMap<String, u64>,
        pub(crate) baseline_healthz_per_sec: f64,
        pub(crate) ratio_to_baseline: f64,
        pub(crate) baseline_fsyncs_per_sec: f64,
        pub(crate) messages_per_fsync: f64,
    }
}
