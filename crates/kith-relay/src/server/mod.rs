//! The relay server: [`start`] binds, opens the store and returns a
//! [`RelayHandle`] that owns every task it started.
//!
//! ```text
//!  accept loop ──(permit from max_connections)──▶ connection task (hyper HTTP/1.1)
//!      │                                             ├─ axum router ─▶ api / ws
//!      │                                             └─ WebSocket task (tracked)
//!      │   every connection: body timeout, write timeout (CountedStream);
//!      │   every answer read from the store: room from the answer budget
//!  sweeper task: expiry, rate-limit memory
//!  verifier threads: Ed25519 in batches
//!  store writer thread (SqliteStore)
//! ```
//!
//! Shutdown ([`RelayHandle::shutdown`]): stop accepting, ask every connection
//! to finish its current request, close WebSockets with "going away", wait up
//! to `shutdown_grace_secs`, then let the store finish its last batch.

mod api;
mod auth;
mod budget;
pub mod cgi;
pub mod config;
mod directory;
mod error;
mod hub;
mod metrics;
mod ratelimit;
mod replay;
mod verifier;
mod ws;

use crate::store::{PostgresOptions, PostgresStore, SqliteOptions, SqliteStore, Store, StoreError};
use crate::time::now_ms;
use axum::extract::ConnectInfo;
use config::Config;
use hub::Hub;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use kith_wire::relay::RelayId;
use metrics::Metrics;
use ratelimit::RateLimits;
use replay::ReplayGuard;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use subtle::ConstantTimeEq;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use verifier::Verifier;

/// How long a client may take to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most nonces remembered at once (about 20 bytes each).
const MAX_REPLAY_NONCES: usize = 8_000_000;

/// Why the relay could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start the verifier threads: {0}")]
    Threads(io::Error),
    /// Reading the request or writing the answer failed (CGI).
    #[error("{0}")]
    Io(io::Error),
    /// The TLS certificate or key could not be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The store could not be opened.
    #[error("cannot open the store at {path}: {source}")]
    Store {
        /// The database.
        path: String,
        /// Why.
        source: StoreError,
    },
}

/// Everything request handlers share.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) config: Config,
    pub(crate) relay_id: RelayId,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) replay: ReplayGuard,
    /// Nonces are remembered in the store, not in this process: other
    /// processes serve this relay too (PostgreSQL, CGI).
    pub(crate) shared_nonces: bool,
    pub(crate) rate: RateLimits,
    pub(crate) verifier: Verifier,
    pub(crate) keys: auth::KeyCache,
    pub(crate) metrics: Metrics,
    pub(crate) answers: budget::AnswerBudget,
    pub(crate) create_token_hashes: Vec<[u8; 32]>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tasks: TaskTracker,
    next_connection: AtomicU64,
}

fn token_hash(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl AppState {
    pub(crate) fn next_connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether `token` opens channel creation; compared as hashes in constant
    /// time, so neither content nor length leaks.
    pub(crate) fn create_token_ok(&self, token: &[u8]) -> bool {
        if self.create_token_hashes.is_empty() {
            return true;
        }
        let h = token_hash(token);
        self.create_token_hashes
            .iter()
            .fold(0u8, |found, t| found | t.ct_eq(&h).unwrap_u8())
            == 1
    }
}

/// A running relay. Dropping it does not stop the relay; call
/// [`RelayHandle::shutdown`].
#[derive(Debug)]
pub struct RelayHandle {
    local_addr: SocketAddr,
    scheme: &'static str,
    state: Arc<AppState>,
    accept: JoinHandle<()>,
    sweeper: JoinHandle<()>,
}

impl RelayHandle {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The relay's base URL as bound: `http://` or, with TLS, `https://`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.local_addr)
    }

    /// The relay's identity.
    pub fn relay_id(&self) -> RelayId {
        self.state.relay_id
    }

    /// Runs an expiry sweep as if the clock read `now_ms`: what expires by
    /// then is deleted. Tests of expiry call it instead of waiting for the
    /// sweeper (a later `now_ms` only ever deletes more).
    pub async fn sweep_at(
        &self,
        now_ms: u64,
    ) -> Result<crate::store::SweepStats, crate::store::StoreError> {
        self.state.store.sweep(now_ms).await
    }

    /// Stops accepting, lets requests finish (up to the grace period), closes
    /// WebSockets, and closes the store.
    pub async fn shutdown(self) {
        let grace = Duration::from_secs(self.state.config.shutdown_grace_secs);
        self.state.shutdown.cancel();
        let _ = self.accept.await;
        self.sweeper.abort();
        let _ = self.sweeper.await;
        self.state.tasks.close();
        if tokio::time::timeout(grace, self.state.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the grace period; closing anyway");
        }
        self.state.store.close().await;
        let state = self.state.clone();
        let _ = tokio::task::spawn_blocking(move || state.verifier.close()).await;
        tracing::info!("relay stopped");
    }
}

/// What the store reports: events to the hub, commit figures to metrics.
#[derive(Debug)]
struct Sink {
    hub: Arc<Hub>,
    commit_seconds: prometheus_client::metrics::histogram::Histogram,
    commit_writes: prometheus_client::metrics::histogram::Histogram,
}

impl crate::store::EventSink for Sink {
    fn publish(&self, events: &[crate::store::StoreEvent]) {
        self.hub.publish(events);
    }

    fn resync(&self) {
        self.hub.resync();
    }

    fn committed(&self, writes: usize, took: Duration) {
        self.commit_seconds.observe(took.as_secs_f64());
        self.commit_writes.observe(writes as f64);
    }
}

/// The sink a relay's store reports to.
fn sink(hub: &Arc<Hub>, metrics: &Metrics) -> Arc<Sink> {
    Arc::new(Sink {
        hub: hub.clone(),
        commit_seconds: metrics.commit_seconds.clone(),
        commit_writes: metrics.commit_writes.clone(),
    })
}

/// Opens the store `config.db` names: a `postgres://` URL or a SQLite file.
async fn open_store(config: &Config, sink: Arc<Sink>) -> Result<Arc<dyn Store>, ServerError> {
    Ok(match config.postgres_url() {
        Some(url) => Arc::new(
            PostgresStore::open(
                PostgresOptions {
                    url: url.to_owned(),
                    schema: Some(config.postgres_schema.clone()).filter(|s| !s.is_empty()),
                    quotas: config.limits.quotas(),
                    pool_size: config.postgres_pool,
                },
                sink,
            )
            .await
            .map_err(|source| ServerError::Store {
                // Never the URL itself: it may hold a password.
                path: "the PostgreSQL database".into(),
                source,
            })?,
        ),
        None => Arc::new(
            SqliteStore::open(
                SqliteOptions {
                    path: config.db.clone(),
                    quotas: config.limits.quotas(),
                    read_connections: config.read_connections,
                    write_queue: config.write_queue,
                    max_batch: config.max_batch,
                },
                sink,
            )
            .map_err(|source| ServerError::Store {
                path: config.db.display().to_string(),
                source,
            })?,
        ),
    })
}

/// Opens the store named by `config.db` and starts serving.
pub async fn start(config: Config) -> Result<RelayHandle, ServerError> {
    let hub = Arc::new(Hub::default());
    let metrics = Metrics::new();
    let store = open_store(&config, sink(&hub, &metrics)).await?;
    // PostgreSQL may have other relay processes on it.
    let shared_nonces = config.postgres_url().is_some();
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.listen,
        source,
    })?;
    let tls = tls_acceptor(&config)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let state = build_state(config, store, hub, metrics, shared_nonces)?;
    let router = api::router(state.clone());
    let accept = tokio::spawn(accept_loop(listener, router, state.clone(), tls));
    let sweeper = tokio::spawn(sweep_loop(state.clone()));
    tracing::info!(%local_addr, relay_id = %state.relay_id.to_hex(), "relay listening");
    Ok(RelayHandle {
        local_addr,
        scheme,
        state,
        accept,
        sweeper,
    })
}

/// The TLS acceptor for `tls_cert`/`tls_key` (PEM), if both are set.
fn tls_acceptor(config: &Config) -> Result<Option<tokio_rustls::TlsAcceptor>, ServerError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (cert, key) = (&config.tls_cert, &config.tls_key);
    match (cert.as_os_str().is_empty(), key.as_os_str().is_empty()) {
        (true, true) => return Ok(None),
        (false, false) => {}
        _ => {
            return Err(ServerError::Tls(
                "give both tls_cert and tls_key, or neither".into(),
            ));
        }
    }
    let bad = |what: &Path, e: &dyn std::fmt::Display| {
        ServerError::Tls(format!("{}: {e}", what.display()))
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, &e))?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| bad(cert, &e))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(server))))
}

/// The state every request handler shares.
fn build_state(
    config: Config,
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    metrics: Metrics,
    shared_nonces: bool,
) -> Result<Arc<AppState>, ServerError> {
    let limits = config.limits;
    Ok(Arc::new(AppState {
        relay_id: store.relay_id(),
        // With nonces in the store there is no memory to lose on restart,
        // so no request needs refusing for having been signed before it.
        replay: ReplayGuard::new(
            (!shared_nonces).then(now_ms),
            u64::from(limits.timestamp_max_age_ms),
            u64::from(limits.timestamp_max_future_ms),
            MAX_REPLAY_NONCES,
        ),
        shared_nonces,
        rate: RateLimits::new(&config.rate_limit),
        // Half the cores: one thread gathers bigger batches (measured: 11.0k vs
        // 10.1k msg/s on two cores), and the rest serve connections and the store.
        verifier: Verifier::start(
            std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            metrics.verify_batch_size.clone(),
        )
        .map_err(ServerError::Threads)?,
        keys: auth::KeyCache::new(),
        metrics,
        answers: budget::AnswerBudget::new(config.answer_memory_mib),
        create_token_hashes: config
            .create_tokens
            .iter()
            .map(|t| token_hash(t.as_bytes()))
            .collect(),
        shutdown: CancellationToken::new(),
        tasks: TaskTracker::new(),
        next_connection: AtomicU64::new(1),
        store,
        hub,
        config,
    }))
}

/// A TCP stream that holds a connection permit for as long as it lives,
/// including after an upgrade to WebSocket; and fails a write that makes
/// no progress for `write_timeout_secs`, so a peer that stops reading
/// (HTTP or WebSocket) is closed and what was queued for it freed.
struct CountedStream {
    inner: Either<TcpStream, tokio_rustls::server::TlsStream<TcpStream>>,
    state: Arc<AppState>,
    _permit: OwnedSemaphorePermit,
    /// Set while writes wait on the peer; reset by any progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl CountedStream {
    fn new(
        inner: Either<TcpStream, tokio_rustls::server::TlsStream<TcpStream>>,
        state: Arc<AppState>,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            inner,
            state,
            _permit: permit,
            stalled: None,
        }
    }

    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let limit = Duration::from_secs(self.state.config.write_timeout_secs);
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if stalled.as_mut().poll(cx).is_ready() {
            self.state.metrics.write_timeouts.inc();
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer stopped reading",
            )));
        }
        Poll::Pending
    }
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        self.state.metrics.connections.dec();
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.guard(cx, polled)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.guard(cx, polled)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.guard(cx, polled)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.guard(cx, polled)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

async fn accept_loop(
    listener: TcpListener,
    router: axum::Router,
    state: Arc<AppState>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let permits = Arc::new(Semaphore::new(state.config.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .keep_alive(true);
    loop {
        let accepted = tokio::select! {
            () = state.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            state.metrics.connections_refused.inc();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        state.metrics.connections.inc();
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            },
        ));
        let shutdown = state.shutdown.clone();
        let (http, tls, state_for_io) = (http.clone(), tls.clone(), state.clone());
        state.tasks.spawn(async move {
            let inner = match tls {
                None => Either::Left(stream),
                Some(acceptor) => {
                    // The handshake runs in the connection's task: a slow
                    // client never holds up the accept loop.
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => Either::Right(tls),
                        _ => {
                            state_for_io.metrics.connections.dec();
                            return;
                        }
                    }
                }
            };
            let io = TokioIo::new(CountedStream::new(inner, state_for_io, permit));
            let connection = http.serve_connection(io, service).with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
}

async fn sweep_loop(state: Arc<AppState>) {
    let mut every = tokio::time::interval(Duration::from_secs(state.config.sweep_interval_secs));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match state.store.sweep(now_ms()).await {
            Ok(s) if s.channels + s.messages + s.blobs > 0 => {
                tracing::debug!(
                    channels = s.channels,
                    messages = s.messages,
                    blobs = s.blobs,
                    "expired"
                );
            }
            Ok(_) => {}
            Err(StoreError::Closed) => return,
            Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
        }
        state.rate.forget_idle();
    }
}
