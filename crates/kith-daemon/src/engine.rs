//! The engine, kept running on a thread of its own, and the handle the
//! rest of the daemon reaches it through.
//!
//! ```text
//!  HTTP handlers ──call(job)──▶ jobs (bounded) ─▶ engine thread: Engine::serve
//!        ▲                                           │ pushes, outbox, timers
//!        └──────── oneshot answer ◀──────────────────┘ head (newest event) ─▶ streams
//! ```
//!
//! The engine is one SQLite connection and one owner of the profile: its
//! work is one job at a time, in order, between the relays' pushes.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use kith_core::{Config, Engine, Job, Live};
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::ApiError;

/// How many calls may wait for the engine before a caller waits to queue.
const JOBS: usize = 64;

/// A future borrowing the engine for its run.
pub type EngineFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Reaches the running engine; cheap to clone.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    jobs: mpsc::Sender<Job>,
    head: watch::Receiver<u64>,
    live: Live,
    stopping: watch::Receiver<bool>,
}

/// What the engine thread says while it runs: warnings (relays unreachable,
/// messages refused) and its end.
pub type Say = Box<dyn Fn(&str) + Send>;

impl EngineHandle {
    /// Opens the profile in `home` (taking its lock) on a new thread and
    /// runs it until every handle is dropped. Fails if the profile cannot
    /// be opened (none, or another process holds it).
    pub async fn start(
        home: PathBuf,
        config: Config,
        say: Say,
        stopping: watch::Receiver<bool>,
    ) -> Result<(Self, std::thread::JoinHandle<()>), ApiError> {
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>(JOBS);
        let (head_tx, head_rx) = watch::channel(0u64);
        let (opened_tx, opened_rx) = oneshot::channel::<Result<Live, ApiError>>();
        let thread = std::thread::Builder::new()
            .name("kith-engine".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = opened_tx.send(Err(ApiError::Local(e.to_string())));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let mut engine = match Engine::open(&home, config).await {
                        Ok(engine) => engine,
                        Err(e) => {
                            let _ = opened_tx.send(Err(e.into()));
                            return;
                        }
                    };
                    let mut opened = Some(opened_tx);
                    let result = engine
                        .serve(
                            jobs_rx,
                            &head_tx,
                            |live| {
                                if let Some(tx) = opened.take() {
                                    let _ = tx.send(Ok(live.clone()));
                                }
                            },
                            |report| {
                                for e in &report.errors {
                                    say(&format!("warning: {e}"));
                                }
                                true
                            },
                        )
                        .await;
                    if let Err(e) = result {
                        say(&format!("the engine stopped: {e}"));
                        if let Some(tx) = opened.take() {
                            let _ = tx.send(Err(e.into()));
                        }
                    }
                });
            })
            .map_err(|e| ApiError::Local(format!("cannot start the engine's thread: {e}")))?;
        match opened_rx.await {
            Ok(Ok(live)) => Ok((
                Self {
                    jobs: jobs_tx,
                    head: head_rx,
                    live,
                    stopping,
                },
                thread,
            )),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ApiError::Local("the engine stopped while opening".into())),
        }
    }

    /// Runs `work` with the engine to itself and returns what it returns.
    pub async fn call<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut Engine) -> EngineFuture<'a, T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |engine: &mut Engine| {
            Box::pin(async move {
                let _ = tx.send(work(engine).await);
            })
        });
        self.jobs.send(job).await.map_err(|_| ApiError::Stopped)?;
        rx.await.map_err(|_| ApiError::Stopped)
    }

    /// What the engine followed once it was live (its first sync done).
    pub fn live(&self) -> &Live {
        &self.live
    }

    /// Turns true when the daemon begins to stop: whatever streams ends.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.clone()
    }

    /// The newest event's cursor, changing as the engine commits.
    pub fn head(&self) -> watch::Receiver<u64> {
        self.head.clone()
    }
}
