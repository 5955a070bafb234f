//! The `kith-relay` binary: `serve` runs a relay, `cgi` serves one request
//! from a web server, `bench` load-tests a relay, `admin stats` and `backup`
//! are for its operator.

// A terminal program: printing is its interface.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod bench_directory;
mod directory_cli;

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
    /// Measure a running relay's directory searches per second, against an
    /// empty directory's in the same run.
    BenchDirectory(bench_directory::DirectoryBenchArgs),
    /// Serve one request from the CGI environment (RFC 3875), for shared
    /// hosting; a binary started by a web server without arguments does this.
    Cgi,
    /// Directories this relay runs: create, admit, remove, list, rotate.
    Directory {
        #[command(subcommand)]
        command: directory_cli::DirectoryCommand,
    },
    /// Operator commands on a relay's store.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Copy the SQLite store to a file, consistently, while the relay runs.
    /// (PostgreSQL: use pg_dump.)
    Backup {
        /// The relay's database [default: as `serve` would use].
        #[arg(long)]
        db: Option<PathBuf>,
        /// TOML configuration file, as for `serve`.
        #[arg(long, env = "KITH_RELAY_CONFIG")]
        config: Option<PathBuf>,
        /// The backup file to create.
        #[arg(long)]
        to: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Totals: channels, retained messages and bytes, blobs.
    Stats {
        /// The relay's database or postgres:// URL [default: as `serve` would use].
        #[arg(long)]
        db: Option<PathBuf>,
        /// TOML configuration file (for the database and PostgreSQL schema).
        #[arg(long, env = "KITH_RELAY_CONFIG")]
        config: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
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
    /// Serve HTTPS with this certificate chain (PEM) ...
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// ... and this private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum)]
    log_format: Option<LogFormatArg>,
}

fn main() {
    if let Err(e) = run() {
        // One line: no `Caused by:` block, no backtrace (RUST_BACKTRACE is
        // for panics, which a relay must not have).
        eprintln!("kith-relay: {}", kith_relay_client::one_line(e.as_ref()));
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    // Started by a web server as a CGI program: no arguments, but a gateway.
    let cli = if std::env::args_os().len() == 1 && std::env::var_os("GATEWAY_INTERFACE").is_some() {
        Cli {
            command: Command::Cgi,
        }
    } else {
        Cli::parse()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Bench(args) => runtime.block_on(bench::run(args)),
        Command::BenchDirectory(args) => runtime.block_on(bench_directory::run(args)),
        Command::Cgi => runtime.block_on(cgi()),
        Command::Admin {
            command: AdminCommand::Stats { db, config, json },
        } => runtime.block_on(stats(StoreArgs { db, config }, json)),
        Command::Directory { command } => runtime.block_on(directory_cli::run(command)),
        Command::Backup { db, config, to } => {
            let config = resolve(config, db)?.finish()?;
            if config.postgres_url().is_some() {
                anyhow::bail!("a PostgreSQL store is backed up with pg_dump (docs/hosting.md)");
            }
            kith_relay::store::backup_sqlite(&config.db, &to)
                .with_context(|| format!("backing up {}", config.db.display()))?;
            println!("backed up {} to {}", config.db.display(), to.display());
            Ok(())
        }
    }
}

fn default_config_file() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "kith-relay")?;
    let file = dirs.config_dir().join("relay.toml");
    file.exists().then_some(file)
}

/// The configuration every command resolves alike, so that `admin stats`
/// and `backup` act on the store `serve` uses: defaults, the TOML file
/// (`--config`, `KITH_RELAY_CONFIG`, or the default file), `KITH_RELAY_*`,
/// then `--db`.
pub(crate) fn resolve(file: Option<PathBuf>, db: Option<PathBuf>) -> Result<Config> {
    let mut config = Config::load(file.or_else(default_config_file).as_deref())?;
    if let Some(db) = db {
        config.db = db;
    }
    Ok(config)
}

/// Which store: as `serve` would open it.
#[derive(Debug, clap::Args)]
pub(crate) struct StoreArgs {
    /// The relay's database or postgres:// URL [default: as `serve` would use].
    #[arg(long)]
    pub(crate) db: Option<PathBuf>,
    /// TOML configuration file, as for `serve`.
    #[arg(long, env = "KITH_RELAY_CONFIG")]
    pub(crate) config: Option<PathBuf>,
}

/// Receives nothing: these commands serve no subscribers.
struct NoSubscribers;

impl kith_relay::store::EventSink for NoSubscribers {
    fn publish(&self, _: &[kith_relay::store::StoreEvent]) {}
}

/// The store `serve` would use, with the configuration it came from.
pub(crate) async fn open_store(
    args: StoreArgs,
) -> Result<(Box<dyn kith_relay::store::Store>, Config)> {
    use kith_relay::store::{PostgresOptions, PostgresStore, SqliteOptions, SqliteStore, Store};
    let config = resolve(args.config, args.db)?.finish()?;
    let sink = std::sync::Arc::new(NoSubscribers);
    let store: Box<dyn Store> = match config.postgres_url() {
        Some(url) => Box::new(
            PostgresStore::open(
                PostgresOptions {
                    url: url.to_owned(),
                    schema: Some(config.postgres_schema.clone()).filter(|s| !s.is_empty()),
                    quotas: config.limits.quotas(),
                    pool_size: 1,
                },
                sink,
            )
            .await
            .context("opening the PostgreSQL store")?,
        ),
        None => {
            anyhow::ensure!(
                config.db.exists(),
                "no relay database at {} (start the relay once, or give --db)",
                config.db.display()
            );
            Box::new(
                SqliteStore::open(
                    SqliteOptions {
                        path: config.db.clone(),
                        quotas: config.limits.quotas(),
                        read_connections: 1,
                        write_queue: 1,
                        max_batch: 1,
                    },
                    sink,
                )
                .with_context(|| format!("opening {}", config.db.display()))?,
            )
        }
    };
    Ok((store, config))
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
    let mut config = resolve(args.config, args.db)?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(name) = args.name {
        config.name = name;
    }
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls_cert = cert;
        config.tls_key = key;
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
    writeln!(stdout, "kith-relay listening on {}", relay.url())?;
    stdout.flush()?;
    drop(stdout);

    shutdown_signal().await?;
    tracing::info!("shutting down");
    relay.shutdown().await;
    Ok(())
}

/// CGI: configuration from `kith-relay.toml` beside the program (shared
/// hosting often cannot set environment variables), or `KITH_RELAY_CONFIG`,
/// then `KITH_RELAY_*`; logs go to the web server's error log (stderr).
async fn cgi() -> Result<()> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("kith-relay.toml")))
        .filter(|f| f.exists());
    let file = std::env::var_os("KITH_RELAY_CONFIG")
        .map(PathBuf::from)
        .or(beside);
    let config = Config::load(file.as_deref())?.finish()?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    server::cgi::serve(config).await?;
    Ok(())
}

async fn stats(args: StoreArgs, json: bool) -> Result<()> {
    let (store, _) = open_store(args).await?;
    let stats = store.stats().await?;
    let relay_id = store.relay_id().to_hex();
    store.close().await;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "relay_id": relay_id,
                "channels": stats.channels,
                "messages": stats.messages,
                "message_bytes": stats.message_bytes,
                "blobs": stats.blobs,
                "blob_bytes": stats.blob_bytes,
            })
        );
    } else {
        println!("relay id       {relay_id}");
        println!("channels       {}", stats.channels);
        println!(
            "messages       {} ({} bytes)",
            stats.messages, stats.message_bytes
        );
        println!(
            "blobs          {} ({} bytes reserved)",
            stats.blobs, stats.blob_bytes
        );
    }
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
