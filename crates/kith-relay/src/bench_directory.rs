//! `kith-relay bench-directory`: directory searches per second against a
//! running relay (`docs/performance.md`, "Directory search").
//!
//! In one run, against the same relay, at the same concurrency:
//! 1. (optional) publish `--populate` entries, each by its own member key;
//! 2. baseline: signed searches of an empty public directory with an
//!    empty query — the same request path (signature, nonce, rate limit,
//!    a store read) with nothing to find — so that what the entries cost is
//!    a ratio, not a number that depends on this machine alone;
//! 3. narrow searches (a first name's first letters and a surname: a few
//!    matches each) and broad ones (one word every entry has: the newest
//!    50 of all of them).

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use kith_relay_client::{RelayClient, generate_key, one_line};
use kith_wire::Codec;
use kith_wire::dir::{DirectoryOp, DirectoryRequest, Entry, SearchResults};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub(crate) struct DirectoryBenchArgs {
    /// The relay's URL.
    #[arg(long, default_value = "http://127.0.0.1:7070")]
    url: String,
    /// The public directory searched (made with `kith-relay directory
    /// create`).
    #[arg(long)]
    directory: String,
    /// An empty public directory, searched for the baseline.
    #[arg(long)]
    baseline: String,
    /// Publish this many entries first (each by a new member key).
    #[arg(long, default_value_t = 0)]
    populate: u64,
    /// Concurrent searchers (and publishers).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds measured per phase.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

const FIRST: &[&str] = &[
    "Alex", "Blair", "Casey", "Dana", "Emery", "Frankie", "Gray", "Harper", "Indra", "Jordan",
    "Kai", "Lee", "Morgan", "Noor", "Oakley", "Parker", "Quinn", "Reese", "Sasha", "Taylor", "Uma",
    "Vivian", "Wren", "Xiu", "Yael", "Zion", "Amani", "Bodhi", "Carmen", "Dmitri", "Esme", "Farah",
    "Gideon", "Hana", "Idris", "Jun", "Kenji", "Lina", "Mateo", "Nadia",
];
const LAST: &[&str] = &[
    "Stone", "Rivera", "Okafor", "Nguyen", "Schmidt", "Haddad", "Kowalski", "Tanaka", "Silva",
    "Moreau", "Larsen", "Ivanova", "Mensah", "Costa", "Novak", "Fischer", "Ahmed", "Park", "Rossi",
    "Dubois", "Jensen", "Kaur", "Lopez", "Murphy", "Berg", "Sato", "Ali", "Cohen", "Evans",
    "Popescu",
];
const CLUBS: &[&str] = &["chess", "rowing", "choir", "robotics", "drama", "football"];

/// Entry `i`: a name, a year and a club; `Year` is in every one.
fn entry(i: u64) -> Entry {
    let pick = |list: &[&'static str], n: u64| {
        list.get((n % list.len() as u64) as usize)
            .copied()
            .unwrap_or_default()
    };
    Entry {
        display_name: format!(
            "{} {} {}",
            pick(FIRST, i),
            pick(LAST, i / FIRST.len() as u64),
            i
        ),
        text: format!("Year {}, {} club", 7 + i % 6, pick(CLUBS, i / 7)),
        address: format!("https://relay.example/a/entry{i}#key"),
    }
}

/// A narrow query (a few matches) for `i`.
fn narrow(i: u64) -> String {
    let e = entry(i.wrapping_mul(2_654_435_761));
    let mut words = e.display_name.split(' ');
    let first = words.next().unwrap_or_default();
    let last = words.next().unwrap_or_default();
    format!("{} {last}", first.get(..3).unwrap_or(first))
}

#[derive(Debug, serde::Serialize)]
struct Phase {
    name: &'static str,
    per_sec: f64,
    ok: u64,
    errors: u64,
    p50_ms: f64,
    p99_ms: f64,
    /// Entries per answer, on average.
    results: f64,
}

#[derive(Debug, serde::Serialize)]
struct Report {
    relay: String,
    directory: String,
    concurrency: usize,
    duration_secs: u64,
    populated: u64,
    publishes_per_sec: f64,
    phases: Vec<Phase>,
    narrow_to_baseline: f64,
    broad_to_baseline: f64,
}

pub(crate) async fn run(args: DirectoryBenchArgs) -> Result<()> {
    kith_relay_client::install_crypto_provider();
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let client = RelayClient::new(&args.url)?;
    client
        .info()
        .await
        .with_context(|| format!("cannot reach the relay at {}", args.url))?;
    for d in [&args.directory, &args.baseline] {
        let info = client
            .directory_info(d)
            .await
            .map_err(|e| anyhow::anyhow!("directory {d}: {}", one_line(&e)))?;
        if info.members_only {
            bail!("{d} is members-only; the bench searches public directories");
        }
    }
    let publishes_per_sec = if args.populate > 0 {
        populate(&client, &args).await?
    } else {
        0.0
    };
    let mut phases = Vec::new();
    for (name, directory) in [
        ("baseline (empty directory)", &args.baseline),
        ("narrow", &args.directory),
        ("broad", &args.directory),
    ] {
        let phase = search_phase(&client, &args, name, directory).await?;
        if !args.json {
            println!(
                "{:<27} {:>8.0} searches/s  p50 {:>6.2} ms  p99 {:>6.2} ms  {:.1} results each  ({} errors)",
                phase.name, phase.per_sec, phase.p50_ms, phase.p99_ms, phase.results, phase.errors
            );
        }
        phases.push(phase);
    }
    let base = phases.first().map_or(1.0, |p| p.per_sec.max(1.0));
    let ratio = |i: usize| phases.get(i).map_or(0.0, |p| p.per_sec / base);
    let report = Report {
        relay: args.url.clone(),
        directory: args.directory.clone(),
        concurrency: args.concurrency,
        duration_secs: args.duration,
        populated: args.populate,
        publishes_per_sec,
        narrow_to_baseline: ratio(1),
        broad_to_baseline: ratio(2),
        phases,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "narrow searches run at {:.2}× the empty directory's rate, broad ones at {:.2}×",
            report.narrow_to_baseline, report.broad_to_baseline
        );
    }
    Ok(())
}

async fn populate(client: &RelayClient, args: &DirectoryBenchArgs) -> Result<f64> {
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (client, next, failed) = (client.clone(), next.clone(), failed.clone());
        let (directory, total) = (args.directory.clone(), args.populate);
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let Ok(key) = generate_key() else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let request = DirectoryRequest {
                    directory: directory.clone(),
                    op: DirectoryOp::Publish(entry(i)),
                };
                if client.directory(&key, request).await.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let secs = started.elapsed().as_secs_f64();
    let failed = failed.load(Ordering::Relaxed);
    if failed > 0 {
        bail!(
            "{failed} of {} publishes failed (are the relay's rate limits off?)",
            args.populate
        );
    }
    let rate = args.populate as f64 / secs.max(0.001);
    if !args.json {
        println!(
            "published {} entries in {secs:.1} s ({rate:.0}/s)",
            args.populate
        );
    }
    Ok(rate)
}

async fn search_phase(
    client: &RelayClient,
    args: &DirectoryBenchArgs,
    name: &'static str,
    directory: &str,
) -> Result<Phase> {
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..args.concurrency {
        let client = client.clone();
        let directory = directory.to_string();
        tasks.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let key = generate_key()?;
            let (mut ok, mut errors, mut results) = (0u64, 0u64, 0u64);
            let mut i = worker as u64 * 1_000_003;
            while Instant::now() < deadline {
                i += 1;
                let query = match name {
                    "broad" => "year".to_string(),
                    "narrow" => narrow(i),
                    _ => String::new(),
                };
                let request = DirectoryRequest {
                    directory: directory.clone(),
                    op: DirectoryOp::Search { query },
                };
                let sent = Instant::now();
                match client.directory(&key, request).await {
                    Ok(bytes) => {
                        histogram.saturating_record(sent.elapsed().as_micros() as u64);
                        ok += 1;
                        results += SearchResults::from_bytes(&bytes)
                            .map(|r| r.items.len() as u64)
                            .unwrap_or(0);
                    }
                    Err(_) => errors += 1,
                }
            }
            anyhow::Ok((histogram, ok, errors, results))
        }));
    }
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut ok, mut errors, mut results) = (0, 0, 0);
    for t in tasks {
        let (h, o, e, r) = t.await??;
        all.add(&h)?;
        ok += o;
        errors += e;
        results += r;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(Phase {
        name,
        per_sec: ok as f64 / secs.max(0.001),
        ok,
        errors,
        p50_ms: all.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: all.value_at_quantile(0.99) as f64 / 1000.0,
        results: results as f64 / ok.max(1) as f64,
    })
}
