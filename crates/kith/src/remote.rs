//! `kith` with a daemon running: the command goes to the daemon over the
//! profile's Unix socket and runs there, on the engine that owns the
//! profile, so that two processes never change it at once. What it says
//! comes back line by line and is printed here as if it ran here.
//!
//! ```text
//!  kith send …  ──POST /cli {args, cwd, stdin}──▶ daemon: cmd::dispatch on its engine
//!     stdout ◀── {"out": …} {"err": …} {"progress": …} {"exit": N} ◀── render (REMOTE)
//! ```

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use clap::Parser as _;
use kith_daemon::EngineHandle;
use serde::{Deserialize, Serialize};

use crate::cli::{Cli, Command};
use crate::cmd;
use crate::render::{self, REMOTE, Remote, Said};

/// How often a quiet answer says it is still there.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// The most standard input a command forwards (the daemon's check of what
/// a message may carry still applies).
const MAX_STDIN: u64 = 64 << 20;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CliRequest {
    /// The command line, without the program's name.
    args: Vec<String>,
    /// Where relative paths in it start.
    cwd: PathBuf,
    /// Standard input, base64, when the command reads it.
    stdin: Option<String>,
    /// The output is read on a terminal (progress is drawn).
    terminal: bool,
}

/// One line of the answer.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Line {
    Out(String),
    Err(String),
    Progress { what: String, done: u64, total: u64 },
    Exit(i32),
}

/// The daemon's side: routes on its Unix socket only.
pub(crate) fn routes(engine: EngineHandle) -> Router {
    Router::new().route("/cli", post(run)).with_state(engine)
}

async fn run(State(engine): State<EngineHandle>, Json(request): Json<CliRequest>) -> Response {
    let (said, mut heard) = tokio::sync::mpsc::unbounded_channel::<Said>();
    let stdin = request
        .stdin
        .as_deref()
        .map(|b| base64::engine::general_purpose::STANDARD.decode(b))
        .transpose();
    let (tx, rx) = tokio::sync::mpsc::channel::<Line>(64);
    tokio::spawn(async move {
        let exit = match (stdin, parse(&request)) {
            (Ok(stdin), Ok((command, json))) => {
                let remote = Remote {
                    said: said.clone(),
                    terminal: request.terminal,
                    stdin: stdin.unwrap_or_default(),
                };
                let code = run_command(&engine, remote, command, json);
                // What it says goes out while it runs.
                let forward = async {
                    loop {
                        tokio::select! {
                            s = heard.recv() => {
                                let Some(s) = s else { break };
                                if tx.send(line(s)).await.is_err() {
                                    break;
                                }
                            }
                            // The answer is gone (the process went away):
                            // dropping `heard` tells the command.
                            () = tx.closed() => break,
                        }
                    }
                    drop(heard);
                };
                drop(said);
                let (code, ()) = tokio::join!(code, forward);
                code
            }
            (Err(e), _) => {
                let _ = tx
                    .send(Line::Err(format!("kith: bad standard input: {e}")))
                    .await;
                1
            }
            (_, Err(e)) => {
                let _ = tx.send(Line::Err(format!("kith: {e}"))).await;
                2
            }
        };
        let _ = tx.send(Line::Exit(exit)).await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        // A quiet command (`watch`) writes an empty line now and then: a
        // process that went away is noticed by the write failing.
        let Ok(line) = tokio::time::timeout(KEEP_ALIVE, rx.recv()).await else {
            return Some((Ok::<_, std::convert::Infallible>(b"\n".to_vec()), rx));
        };
        let mut bytes = serde_json::to_vec(&line?).unwrap_or_default();
        bytes.push(b'\n');
        Some((Ok(bytes), rx))
    });
    Body::from_stream(stream).into_response()
}

fn line(said: Said) -> Line {
    match said {
        Said::Out(s) => Line::Out(s),
        Said::Err(s) => Line::Err(s),
        Said::Progress { what, done, total } => Line::Progress { what, done, total },
    }
}

fn parse(request: &CliRequest) -> Result<(Command, bool)> {
    let cli = Cli::try_parse_from(
        std::iter::once("kith".to_string()).chain(request.args.iter().cloned()),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            e.to_string()
                .lines()
                .next()
                .unwrap_or("bad command")
                .to_string()
        )
    })?;
    let mut command = cli.command;
    command.anchor(&request.cwd);
    Ok((command, cli.json))
}

/// Runs the command in the daemon with its output going to `remote`;
/// returns the exit code.
async fn run_command(engine: &EngineHandle, remote: Remote, command: Command, json: bool) -> i32 {
    if matches!(command, Command::Watch) {
        return REMOTE.scope(remote, watch(engine.clone(), json)).await;
    }
    let ran = engine
        .call(move |e| {
            Box::pin(REMOTE.scope(remote, async move {
                match cmd::dispatch(e, command, json).await {
                    Ok(()) => 0,
                    Err(err) => {
                        render::error(crate::code(&err), &crate::one_line(&err), json);
                        1
                    }
                }
            }))
        })
        .await;
    ran.unwrap_or_else(|e| {
        render::error(e.code(), &e.to_string(), json);
        1
    })
}

/// `kith watch` through the daemon: what the engine stores, from the event
/// log, as `watch` says it (new messages, introductions, contact requests).
async fn watch(engine: EngineHandle, json: bool) -> i32 {
    render::live(engine.live(), json);
    let head = engine
        .call(|e| Box::pin(async move { e.events_head() }))
        .await;
    let Ok(Ok(mut cursor)) = head else {
        return 1;
    };
    let mut moved = engine.head();
    let mut stopping = engine.stopping();
    // The process that asked went away (Ctrl-C): stop at once, not at the
    // next event.
    let Ok(said) = REMOTE.try_with(|r| r.said.clone()) else {
        return 1;
    };
    loop {
        let after = cursor;
        let page = engine
            .call(move |e| Box::pin(async move { e.events(after, 200) }))
            .await;
        let Ok(Ok(page)) = page else {
            return 0;
        };
        cursor = page.cursor;
        let mut report = kith_core::SyncReport::default();
        for event in page.events {
            if let ("request", Some(r)) = (event.kind.as_str(), event.request) {
                report.requests.push(r);
                continue;
            }
            match (event.kind.as_str(), event.message, event.introduction) {
                ("message", Some(m), _) if !m.outgoing => report.messages.push(m),
                ("introduction", _, Some(i)) if i.role == "received" && i.state == "pending" => {
                    report.introductions.push(i);
                }
                _ => {}
            }
        }
        if render::report(&report, json).is_err() || said.is_closed() {
            return 0;
        }
        tokio::select! {
            changed = moved.wait_for(|h| *h > cursor) => {
                if changed.is_err() {
                    return 0;
                }
            }
            () = said.closed() => return 0,
            _ = stopping.wait_for(|s| *s) => return 0,
        }
    }
}

/// The client's side: runs the command through the daemon and returns the
/// exit code it ended with.
pub(crate) async fn forward(
    mut daemon: kith_daemon::client::Connection,
    command: &Command,
    json: bool,
) -> Result<i32> {
    let args = std::env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string().map_err(|_| {
                anyhow::anyhow!("an argument is not UTF-8; kith cannot pass it to the daemon")
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let stdin = if command.reads_stdin() {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_STDIN)
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
        Some(base64::engine::general_purpose::STANDARD.encode(bytes))
    } else {
        None
    };
    let request = CliRequest {
        args,
        cwd: std::env::current_dir().context("no current directory")?,
        stdin,
        terminal: {
            use std::io::IsTerminal as _;
            std::io::stderr().is_terminal()
        },
    };
    let mut answer = daemon
        .request("POST", "/cli", serde_json::to_vec(&request)?)
        .await?;
    if answer.status != 200 {
        let body = answer.bytes().await?;
        anyhow::bail!(
            "the daemon refused the command: {}",
            String::from_utf8_lossy(&body).trim()
        );
    }
    let mut meter: Option<cmd::content::Meter> = None;
    while let Some(bytes) = answer.line().await? {
        if bytes.is_empty() {
            continue;
        }
        let line: Line =
            serde_json::from_slice(&bytes).context("the daemon's answer is not kith's")?;
        match line {
            Line::Out(s) => render::out(&s),
            Line::Err(s) => render::err(&s),
            Line::Progress { what, done, total } => meter
                .get_or_insert_with(|| cmd::content::Meter::new(&what, json))
                .show(done, total),
            Line::Exit(code) => {
                if let Some(m) = &meter {
                    m.finish();
                }
                return Ok(code);
            }
        }
    }
    anyhow::bail!("the daemon stopped before the command ended")
}
