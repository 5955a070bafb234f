//! `kith-relay cgi`: one request from the CGI environment (RFC 3875), for
//! shared hosting where a web server runs a program per request.
//!
//! ```text
//!  web server ──env (REQUEST_METHOD, PATH_INFO, HTTP_*…) + stdin body──▶ kith-relay cgi
//!      ▲                                      same router, same store code
//!      └──────── stdout: "Status: …", headers, blank line, body ◀──┘
//! ```
//!
//! Everything a relay process normally keeps in memory must survive the
//! process here: nonces are recorded in the store (so are they with
//! PostgreSQL); rate limits reset with every request (leave them to the web
//! server). There is no WebSocket: clients long-poll, and a waiting read
//! looks at the store every `LONG_POLL_TICK` for messages written by other
//! requests' processes.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http_body_util::BodyExt;
use kith_wire::relay::request::MAX_SIGNED_REQUEST;
use tower::ServiceExt;

use super::config::Config;
use super::hub::Hub;
use super::metrics::Metrics;
use super::{ServerError, build_state, open_store, sink};
use crate::time::now_ms;

/// How often a long-poll read looks at the store again.
const LONG_POLL_TICK: Duration = Duration::from_millis(200);
/// Largest body read from stdin; a longer one is refused unread.
const MAX_BODY: usize = MAX_SIGNED_REQUEST as usize + 4096;

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The request the web server handed over, or the answer to give at once.
fn request_from_env() -> Result<axum::http::Request<Body>, (u16, &'static str)> {
    let method = var("REQUEST_METHOD").unwrap_or_else(|| "GET".into());
    let path = var("PATH_INFO").unwrap_or_else(|| "/".into());
    let uri = match var("QUERY_STRING") {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut builder = axum::http::Request::builder()
        .method(method.as_str())
        .uri(uri);
    for (name, value) in std::env::vars() {
        if let Some(header) = name.strip_prefix("HTTP_") {
            builder = builder.header(header.to_ascii_lowercase().replace('_', "-"), value);
        }
    }
    if let Some(t) = var("CONTENT_TYPE") {
        builder = builder.header("content-type", t);
    }
    let length = var("CONTENT_LENGTH")
        .map(|l| l.parse::<usize>())
        .transpose()
        .map_err(|_| (400, "CONTENT_LENGTH is not a number"))?
        .unwrap_or(0);
    if length > MAX_BODY {
        return Err((413, "the request body is too large"));
    }
    let mut body = vec![0u8; length];
    std::io::stdin()
        .lock()
        .read_exact(&mut body)
        .map_err(|_| (400, "the request body is shorter than CONTENT_LENGTH"))?;
    let peer = SocketAddr::new(
        var("REMOTE_ADDR")
            .and_then(|a| a.parse::<IpAddr>().ok())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        var("REMOTE_PORT").and_then(|p| p.parse().ok()).unwrap_or(0),
    );
    let mut request = builder
        .header("content-length", length)
        .body(Body::from(body))
        .map_err(|_| (400, "the request could not be understood"))?;
    request.extensions_mut().insert(ConnectInfo(peer));
    Ok(request)
}

fn write_response(status: u16, headers: &[(String, Vec<u8>)], body: &[u8]) -> std::io::Result<()> {
    let reason = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut out = std::io::stdout().lock();
    write!(out, "Status: {status} {reason}\r\n")?;
    for (name, value) in headers {
        out.write_all(name.as_bytes())?;
        out.write_all(b": ")?;
        out.write_all(value)?;
        out.write_all(b"\r\n")?;
    }
    out.write_all(b"\r\n")?;
    out.write_all(body)?;
    out.flush()
}

/// Serves the one request of this process.
pub async fn serve(config: Config) -> Result<(), ServerError> {
    let request = match request_from_env() {
        Ok(r) => r,
        Err((status, message)) => {
            return write_response(
                status,
                &[("content-type".into(), b"text/plain".to_vec())],
                message.as_bytes(),
            )
            .map_err(ServerError::Io);
        }
    };
    let hub = Arc::new(Hub::default());
    let metrics = Metrics::new();
    let store = open_store(&config, sink(&hub, &metrics)).await?;
    let state = build_state(config, store, hub.clone(), metrics, true)?;
    // Messages from other processes arrive only in the store.
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(LONG_POLL_TICK).await;
            hub.resync();
        }
    });
    let answer = super::api::router(state.clone()).oneshot(request).await;
    ticker.abort();
    let written = match answer {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let headers: Vec<(String, Vec<u8>)> = parts
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect();
            write_response(parts.status.as_u16(), &headers, &body)
        }
        Err(e) => match e {},
    };
    // Expired data is never served; deleting it is housekeeping, done by
    // about one request in 64 so that most answer at once.
    if now_ms().is_multiple_of(64) {
        let _ = state.store.sweep(now_ms()).await;
    }
    state.store.close().await;
    let closing = state.clone();
    let _ = tokio::task::spawn_blocking(move || closing.verifier.close()).await;
    written.map_err(ServerError::Io)
}
