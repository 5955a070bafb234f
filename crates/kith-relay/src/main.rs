//! The `kith-relay` binary: `serve` runs a relay, `bench` load-tests one.

// A terminal program: printing is its interface.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use kith_relay::server::{self, config::Config, config::LogFormat};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "kith-relay",
    version,
    about = "The kith relay: stores ciphertext channels and blobs, pushes new messages"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the relay until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Measure a running relay: accepted messages/s, send→push latency, idle
    /// subscriber memory.
    Bench(bench::BenchArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML configuration file (default: <config dir>/kith-relay/relay.toml if it exists).
    #[arg(long, env = "KITH_RELAY_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port) [default: 127.0.0.1:7070].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// SQLite database file, or postgres://USER@HOST/DB for the shared
    /// PostgreSQL store [default: <data dir>/kith-relay/relay.db].
    #[arg(long)]
    db: Option<PathBuf>,
    /// A name shown to clients.
    #[arg(long)]
    name: Option<String>,
    /// Log format.
    #[arg(long, value_enum)]
    log_format: Option<LogFormatArg>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Bench(args) => runtime.block_on(bench::run(args)),
    }
}

fn default_config_file() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "kith-relay")?;
    let file = dirs.config_dir().join("relay.toml");
    file.exists().then_some(file)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    let file = args.config.or_else(default_config_file);
    let mut config = Config::load(file.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(db) = args.db {
        config.db = db;
    }
    if let Some(name) = args.name {
        config.name = name;
    }
    if let Some(format) = args.log_format {
        config.log_format = match format {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        };
    }
    let config = config.finish()?;
    init_logging(config.log_format);
    match config.postgres_url() {
        Some(_) => tracing::info!(schema = %config.postgres_schema, "opening the PostgreSQL store"),
        None => tracing::info!(db = %config.db.display(), "opening store"),
    }
    let relay = server::start(config).await?;

    // The first line on stdout is the URL, for scripts and tests.
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "kith-relay listening on http://{}",
        relay.local_addr()
    )?;
    stdout.flush()?;
    drop(stdout);

    shutdown_signal().await?;
    tracing::info!("shutting down");
    relay.shutdown().await;
    Ok(())
}

async fn shutdown_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}
