//! `GET /api/v1/events`: the profile's event log from a cursor, as one
//! JSON page (waiting up to `wait` seconds for the first event: a long
//! poll a shell script or Python's standard library can read) or, asked
//! with `Accept: text/event-stream`, as server-sent events whose ids are
//! the cursors (a browser's EventSource resumes with `Last-Event-ID` by
//! itself). A client that comes back with its cursor gets every event it
//! missed, once: the log is durable (kith-core, migration 0016).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use kith_core::EventPage;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::AppState;
use crate::engine::EngineHandle;
use crate::error::ApiError;

/// The longest a long poll waits.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Events per page, and per read of a stream.
const PAGE: usize = 200;
/// Event streams open at once (each holds a task and a page at most).
pub(crate) const MAX_STREAMS: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsQuery {
    /// The cursor: events after it (0, the default: the whole log).
    after: Option<u64>,
    /// Seconds to wait for an event when there is none yet (long poll).
    wait: Option<u64>,
    limit: Option<usize>,
    /// `now`: start from the newest event (ignore the past).
    from: Option<String>,
}

pub(crate) async fn events(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let wants_stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut after = last_event_id.or(q.after).unwrap_or(0);
    if q.from.as_deref() == Some("now") && last_event_id.is_none() {
        after = s
            .engine
            .call(|e| Box::pin(async move { e.events_head() }))
            .await??;
    }
    let limit = q.limit.unwrap_or(PAGE).clamp(1, 1000);
    if wants_stream {
        let permit = Arc::clone(&s.streams)
            .try_acquire_owned()
            .map_err(|_| ApiError::Busy)?;
        let stream = stream(s.engine.clone(), s.stopping.clone(), after, permit);
        return Ok(Sse::new(stream)
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response());
    }
    let wait = Duration::from_secs(q.wait.unwrap_or(0)).min(MAX_WAIT);
    let page = long_poll(&s.engine, s.stopping.clone(), after, limit, wait).await?;
    Ok(Json(page).into_response())
}

async fn page(engine: &EngineHandle, after: u64, limit: usize) -> Result<EventPage, ApiError> {
    Ok(engine
        .call(move |e| Box::pin(async move { e.events(after, limit) }))
        .await??)
}

/// Waits until the log's head passes `after` (true), or the daemon stops
/// (false).
async fn until_past(
    head: &mut watch::Receiver<u64>,
    stopping: &mut watch::Receiver<bool>,
    after: u64,
) -> bool {
    tokio::select! {
        moved = head.wait_for(|h| *h > after) => moved.is_ok(),
        _ = stopping.wait_for(|s| *s) => false,
    }
}

async fn long_poll(
    engine: &EngineHandle,
    mut stopping: watch::Receiver<bool>,
    after: u64,
    limit: usize,
    wait: Duration,
) -> Result<EventPage, ApiError> {
    let mut head = engine.head();
    let first = page(engine, after, limit).await?;
    if !first.events.is_empty() || first.gap || wait.is_zero() {
        return Ok(first);
    }
    let waited = tokio::time::timeout(wait, until_past(&mut head, &mut stopping, after)).await;
    if matches!(waited, Ok(false)) {
        return Ok(first);
    }
    page(engine, after, limit).await
}

/// Server-sent events from `after` on, for as long as the client listens.
fn stream(
    engine: EngineHandle,
    stopping: watch::Receiver<bool>,
    after: u64,
    permit: OwnedSemaphorePermit,
) -> impl Stream<Item = Result<Event, Infallible>> {
    struct At {
        engine: EngineHandle,
        head: watch::Receiver<u64>,
        stopping: watch::Receiver<bool>,
        cursor: u64,
        ready: std::collections::VecDeque<Event>,
        _permit: OwnedSemaphorePermit,
    }
    let head = engine.head();
    let start = At {
        engine,
        head,
        stopping,
        cursor: after,
        ready: std::collections::VecDeque::new(),
        _permit: permit,
    };
    futures_util::stream::unfold(start, |mut at| async move {
        loop {
            if let Some(event) = at.ready.pop_front() {
                return Some((Ok(event), at));
            }
            let page = match page(&at.engine, at.cursor, PAGE).await {
                Ok(page) => page,
                // The daemon is stopping: the stream ends; the client
                // comes back with its last id.
                Err(_) => return None,
            };
            if page.gap {
                at.ready.push_back(Event::default().event("gap").data("{}"));
            }
            for e in &page.events {
                let data = serde_json::to_string(e).unwrap_or_default();
                at.ready.push_back(
                    Event::default()
                        .id(e.seq.to_string())
                        .event(e.kind.clone())
                        .data(data),
                );
            }
            at.cursor = page.cursor;
            if at.ready.is_empty() {
                let cursor = at.cursor;
                if !until_past(&mut at.head, &mut at.stopping, cursor).await {
                    return None;
                }
            }
        }
    })
}

pub(crate) fn streams() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(MAX_STREAMS))
}
