//! # kith-testkit
//!
//! Starts real kith processes for tests: a [`RelayProcess`] is the
//! `kith-relay` binary listening on port 0 with its own temporary directory.
//! Its log (stderr) is kept in that directory and printed when a test fails
//! while the process is alive, so that a failure explains itself.
//!
//! ```text
//!  test ──spawn──▶ kith-relay serve --listen 127.0.0.1:0 --db <tmp>/relay.db
//!       ◀─stdout── "kith-relay listening on http://127.0.0.1:PORT"
//!       ──HTTP/WS─▶ (the test's client)
//!       ──SIGTERM / SIGKILL──▶ restart on the same database
//! ```
//!
//! ```no_run
//! use kith_testkit::{RelayOptions, RelayProcess};
//! let relay = RelayProcess::start(RelayOptions::default().unlimited()).unwrap();
//! assert!(relay.url().starts_with("http://127.0.0.1:"));
//! ```

// A test helper: it reports a failing relay's log on stderr.
#![allow(clippy::print_stderr)]

pub mod browser;
pub mod http;
pub mod openapi;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a relay may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How to run a relay.
#[derive(Debug, Clone, Default)]
pub struct RelayOptions {
    /// The `kith-relay` binary; [`relay_binary`] if `None`.
    pub binary: Option<PathBuf>,
    /// Environment variables (e.g. `KITH_RELAY_LIMITS__MAX_CHANNEL_MESSAGES`).
    pub env: Vec<(String, String)>,
    /// Contents of a `relay.toml` to pass with `--config`.
    pub config: Option<String>,
    /// The store: `--db` (default: a SQLite file in the relay's directory).
    pub db: Option<String>,
}

impl RelayOptions {
    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.push((key.to_owned(), value.to_string()));
        self
    }

    /// Runs this binary.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// Uses the PostgreSQL store at `url`, in `schema`.
    pub fn postgres(mut self, url: &str, schema: &str) -> Self {
        self.db = Some(url.to_owned());
        self.env("KITH_RELAY_POSTGRES_SCHEMA", schema)
    }

    /// Turns rate limiting off (for tests that send many requests).
    pub fn unlimited(self) -> Self {
        self.env("KITH_RELAY_RATE_LIMIT__ENABLED", "false")
    }
}

/// A running `kith-relay serve`.
#[derive(Debug)]
pub struct RelayProcess {
    binary: PathBuf,
    dir: tempfile::TempDir,
    options: RelayOptions,
    child: Option<Child>,
    url: String,
}

/// The `kith-relay` binary next to the running test executable
/// (`target/<profile>/kith-relay`).
pub fn relay_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KITH_RELAY_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test> → target/<profile>/kith-relay
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    profile_dir.join("kith-relay")
}

impl RelayProcess {
    /// Starts a relay.
    pub fn start(options: RelayOptions) -> std::io::Result<Self> {
        let binary = options.binary.clone().unwrap_or_else(relay_binary);
        let dir = tempfile::Builder::new()
            .prefix("kith-relay-test")
            .tempdir()?;
        let mut relay = Self {
            binary,
            dir,
            options,
            child: None,
            url: String::new(),
        };
        relay.spawn()?;
        Ok(relay)
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        // A restart keeps the address, as a real relay's does: clients
        // remember it.
        let listen = self
            .url
            .split_once("://")
            .map_or_else(|| "127.0.0.1:0".to_owned(), |(_, addr)| addr.to_owned());
        let mut cmd = Command::new(&self.binary);
        cmd.arg("serve")
            .arg("--listen")
            .arg(listen)
            .arg("--db")
            .arg(
                self.options
                    .db
                    .clone()
                    .unwrap_or_else(|| self.db_path().display().to_string()),
            )
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        if let Some(config) = &self.options.config {
            let path = self.dir.path().join("relay.toml");
            std::fs::write(&path, config)?;
            cmd.arg("--config").arg(path);
        }
        for (k, v) in &self.options.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| {
            std::io::Error::new(e.kind(), format!("starting {}: {e}", self.binary.display()))
        })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the relay never blocks on a full pipe.
            for _ in lines {}
        });
        let line = rx.recv_timeout(START_TIMEOUT).map_err(|_| {
            let _ = child.kill();
            std::io::Error::other(format!("the relay did not start; its log:\n{}", self.log()))
        })?;
        self.url = line
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            .ok_or_else(|| std::io::Error::other(format!("unexpected first line: {line}")))?
            .to_owned();
        self.child = Some(child);
        Ok(())
    }

    /// The relay's base URL (`http://127.0.0.1:PORT`, or `https://` with TLS).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The relay's SQLite database.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("relay.db")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("relay.log")
    }

    /// Everything the relay has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The relay's process id (to stop it with SIGSTOP, say: a relay that
    /// hangs).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: the relay gets no chance to finish anything.
    pub fn kill(&mut self) -> std::io::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM, then waits (up to `timeout`) for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> std::io::Result<ExitStatus> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| std::io::Error::other("not running"))?;
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                child.kill()?;
                child.wait()?;
                return Err(std::io::Error::other(format!(
                    "the relay did not exit within {timeout:?} of SIGTERM; its log:\n{}",
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the relay again on the same database (after `kill` or
    /// `terminate`), on the same address.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.kill()?;
        self.spawn()
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        if std::thread::panicking() && self.child.is_some() {
            eprintln!("--- relay log ({}) ---\n{}", self.url, self.log());
        }
        let _ = self.kill();
    }
}

/// Every file a SQLite relay with its database at `db` keeps: the
/// database, its log, and the blob files beside it (`<db>-blobs/`).
pub fn relay_files(db: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| beside(db, suffix))
        .filter(|p| p.is_file())
        .collect();
    files.extend(blob_files(db));
    files
}

/// The blob files of the SQLite relay with its database at `db`.
pub fn blob_files(db: &std::path::Path) -> Vec<PathBuf> {
    std::fs::read_dir(beside(db, "-blobs"))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// `db` with `suffix` after its file name (`relay.db-wal`).
fn beside(db: &std::path::Path, suffix: &str) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    db.with_file_name(name)
}

/// The PostgreSQL server for tests, from `KITH_TEST_POSTGRES_URL`. Without
/// it, says on the terminal (past the test harness's capture) which test is
/// skipped, and returns `None`.
pub fn postgres_url() -> Option<String> {
    match std::env::var("KITH_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            use std::io::Write as _;
            let test = std::thread::current()
                .name()
                .unwrap_or("a PostgreSQL test")
                .to_owned();
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: set KITH_TEST_POSTGRES_URL=postgres://USER@HOST/DB to run it"
            );
            None
        }
    }
}

/// A schema name no other test run uses.
pub fn unique_schema() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "kith_test_{}_{}_{}",
        std::process::id(),
        nanos,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A relay inside the test process (the same server code as the binary, on
/// port 0 with its own SQLite file), for engine tests that start many
/// people and must stay fast. Rate limits are off. It can be stopped and
/// started again on the same address and database, as a real relay is
/// restarted.
#[derive(Debug)]
pub struct InProcessRelay {
    handle: Option<kith_relay::server::RelayHandle>,
    config: kith_relay::server::config::Config,
    url: String,
    _dir: tempfile::TempDir,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl InProcessRelay {
    /// Starts a relay on the current tokio runtime.
    pub async fn start() -> Result<Self, BoxError> {
        let dir = tempfile::Builder::new()
            .prefix("kith-relay-inproc")
            .tempdir()?;
        let mut config = kith_relay::server::config::Config {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            db: dir.path().join("relay.db"),
            ..kith_relay::server::config::Config::default()
        };
        config.rate_limit.enabled = false;
        let config = config.finish()?;
        let handle = kith_relay::server::start(config.clone()).await?;
        let mut config = config;
        config.listen = handle.local_addr();
        Ok(Self {
            url: handle.url(),
            handle: Some(handle),
            config,
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The relay's SQLite database.
    pub fn db_path(&self) -> &std::path::Path {
        &self.config.db
    }

    /// Deletes what expires by `now_ms` (relay time), as the sweeper will
    /// once that time comes; returns how many messages went.
    pub async fn sweep_at(&self, now_ms: u64) -> Result<u64, BoxError> {
        let handle = self.handle.as_ref().ok_or("the relay is stopped")?;
        Ok(handle.sweep_at(now_ms).await?.messages)
    }

    /// Stops the relay; [`InProcessRelay::restart`] brings it back.
    pub async fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await;
        }
    }

    /// Starts the relay again on the same address and database.
    pub async fn restart(&mut self) -> Result<(), BoxError> {
        self.stop().await;
        self.handle = Some(kith_relay::server::start(self.config.clone()).await?);
        Ok(())
    }

    /// Stops the relay (dropping it without this leaves it to the runtime).
    pub async fn shutdown(mut self) {
        self.stop().await;
    }
}
