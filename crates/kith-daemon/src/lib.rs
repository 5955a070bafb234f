//! # kith-daemon
//!
//! `kith up`: one profile's engine kept running (pushes, outbox, timers),
//! and everything that talks to it — the JSON API, the event log as a
//! stream, the web UI — on `127.0.0.1` and on a Unix socket in the
//! profile. The daemon owns the profile's lock; other `kith` commands go
//! through its socket.
//!
//! ```text
//!  browser / bot ──TCP 127.0.0.1──▶ guard (Host, Origin, token) ─┐
//!  kith CLI ───────Unix socket (0600)────────────────────────────┼─▶ router
//!                                                                │   api.rs    /api/v1/…
//!                                                                │   events.rs /api/v1/events
//!                                                                ▼
//!                        engine.rs: jobs ─▶ engine thread (Engine::serve) ─▶ relays
//! ```

mod api;
mod auth;
pub mod client;
mod engine;
mod error;
mod events;
mod web;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use kith_core::Config;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

pub use auth::{token, token_path};
pub use engine::{EngineFuture, EngineHandle, Say};
pub use error::ApiError;

/// The Unix socket the daemon listens on, in the profile.
pub fn socket_path(home: &Path) -> PathBuf {
    home.join("kith.sock")
}

/// Where a running daemon writes its address and process id, for programs
/// that look for it (`{"url": "http://127.0.0.1:PORT", "pid": N}`).
pub fn info_path(home: &Path) -> PathBuf {
    home.join("daemon.json")
}

/// How long a stopping daemon waits for requests under way.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// What every handler gets.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) engine: EngineHandle,
    pub(crate) home: PathBuf,
    pub(crate) streams: Arc<Semaphore>,
    pub(crate) stopping: watch::Receiver<bool>,
    pub(crate) token: Arc<String>,
    /// Files moving now, for the web UI's progress bars.
    pub(crate) transfers: Arc<std::sync::Mutex<Transfers>>,
    pub(crate) ice_servers: Arc<Vec<String>>,
}

/// Transfers under way, by a number of their own.
#[derive(Debug, Default)]
pub(crate) struct Transfers {
    next: u64,
    pub(crate) now: std::collections::BTreeMap<u64, Transfer>,
}

/// A file moving between this daemon and a relay.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Transfer {
    pub(crate) id: u64,
    /// `upload` or `download`.
    pub(crate) direction: &'static str,
    pub(crate) conversation: String,
    /// The file's name (upload), or the message's id (download).
    pub(crate) name: String,
    pub(crate) done_bytes: u64,
    pub(crate) total_bytes: u64,
}

impl Transfers {
    pub(crate) fn start(&mut self, direction: &'static str, conversation: &str, name: &str) -> u64 {
        self.next += 1;
        let id = self.next;
        self.now.insert(
            id,
            Transfer {
                id,
                direction,
                conversation: conversation.to_string(),
                name: name.to_string(),
                done_bytes: 0,
                total_bytes: 0,
            },
        );
        id
    }
}

/// How to run the daemon.
pub struct Options {
    pub home: PathBuf,
    pub config: Config,
    /// The TCP address (loopback only; port 0 picks one).
    pub listen: SocketAddr,
    /// STUN/TURN servers the web UI's calls use (none: direct only).
    pub ice_servers: Vec<String>,
    /// Routes served on the Unix socket only (the CLI's), given the engine.
    pub unix_routes: Box<dyn FnOnce(EngineHandle) -> Router + Send>,
    /// Where the daemon's warnings go.
    pub say: Say,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("home", &self.home)
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The address to open in a browser: it signs the browser in.
    pub login_url: String,
    home: PathBuf,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    engine: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    /// Opens the profile, starts the engine and both listeners.
    pub async fn start(options: Options) -> Result<Self, ApiError> {
        let Options {
            home,
            config,
            listen,
            ice_servers,
            unix_routes,
            say,
        } = options;
        if !listen.ip().is_loopback() {
            return Err(ApiError::BadRequest(format!(
                "{listen} is not a loopback address: the daemon serves this machine only"
            )));
        }
        let (stop, stopping) = watch::channel(false);
        let (engine, engine_thread) =
            EngineHandle::start(home.clone(), config, say, stopping.clone()).await?;
        let token = auth::token(&home)?;
        let tcp = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| ApiError::Local(format!("cannot listen on {listen}: {e}")))?;
        let port = tcp
            .local_addr()
            .map_err(|e| ApiError::Local(e.to_string()))?
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let state = AppState {
            engine: engine.clone(),
            home: home.clone(),
            streams: events::streams(),
            stopping: stopping.clone(),
            token: Arc::new(token.clone()),
            transfers: Arc::default(),
            ice_servers: Arc::new(ice_servers),
        };
        let guard = auth::Guard::new(token.clone(), port);
        let web = api::routes()
            .merge(web::routes())
            .with_state(state.clone())
            .layer(axum::middleware::from_fn_with_state(guard, auth::guard))
            .layer(axum::middleware::from_fn(web::headers));
        let local = api::routes()
            .with_state(state)
            .merge(unix_routes(engine.clone()));
        let mut servers = Vec::new();
        let shutdown = |mut s: watch::Receiver<bool>| async move {
            let _ = s.wait_for(|stop| *stop).await;
        };
        servers.push(tokio::spawn({
            let stopping = stopping.clone();
            async move {
                let _ = axum::serve(tcp, web)
                    .with_graceful_shutdown(shutdown(stopping))
                    .await;
            }
        }));
        #[cfg(unix)]
        {
            let path = socket_path(&home);
            // A socket left by a daemon that was killed.
            let _ = std::fs::remove_file(&path);
            let unix = tokio::net::UnixListener::bind(&path).map_err(|e| {
                ApiError::Local(format!("cannot listen on {}: {e}", path.display()))
            })?;
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| ApiError::Local(format!("cannot restrict {}: {e}", path.display())))?;
            servers.push(tokio::spawn(async move {
                let _ = axum::serve(unix, local)
                    .with_graceful_shutdown(shutdown(stopping))
                    .await;
            }));
        }
        #[cfg(not(unix))]
        drop(local);
        let info = serde_json::json!({ "url": url, "pid": std::process::id() });
        write_private(&info_path(&home), info.to_string().as_bytes())?;
        drop(engine);
        Ok(Self {
            login_url: format!("{url}/login?token={token}"),
            url,
            home,
            stop,
            servers,
            engine: Some(engine_thread),
        })
    }

    /// Stops: no new requests, streams end, requests under way finish,
    /// then the engine lets go of the profile.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for mut server in self.servers.drain(..) {
            // Requests under way get a while to finish; a connection held
            // open past it (a client that stopped reading) is cut.
            if tokio::time::timeout(STOP_GRACE, &mut server).await.is_err() {
                server.abort();
                let _ = server.await;
            }
        }
        let _ = std::fs::remove_file(info_path(&self.home));
        #[cfg(unix)]
        let _ = std::fs::remove_file(socket_path(&self.home));
        if let Some(thread) = self.engine.take() {
            // Every handle is gone with the servers: the engine returns.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// Writes a file only this user can read (0600), replacing it.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ApiError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| ApiError::Local(format!("cannot write {}: {e}", path.display())))
}
