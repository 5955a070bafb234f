//! A relay's directories on the wire (`docs/spec/directory-v1.md` §6):
//! `GET /v1/dir/{name}`, the `directory` operation of a signed request,
//! and the page behind an enrolment link.

use super::AppState;
use super::api::Answer;
use super::error::{ApiError, binary};
use crate::directory::{DirectoryError, attest, enrolment_hash, signed_info};
use crate::store::{DirectoryRow, Search};
use crate::time::now_ms;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use kith_wire::Codec;
use kith_wire::dir::{DirectoryOp, DirectoryRequest, MAX_RESULTS, SearchResults};
use kith_wire::relay::PublicKey;
use kith_wire::relay::response::ErrorCode;
use std::net::IpAddr;
use std::sync::Arc;

impl From<DirectoryError> for ApiError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Store(e) => e.into(),
            DirectoryError::NoSuchDirectory(_) => no_such_directory(),
            other => {
                tracing::error!(error = %other, "directory failure");
                ApiError::new(ErrorCode::INTERNAL, "internal error")
            }
        }
    }
}

fn no_such_directory() -> ApiError {
    ApiError::new(
        ErrorCode::NOT_FOUND,
        "this relay has no directory of that name",
    )
}

async fn load(state: &AppState, name: &str, now: u64) -> Result<DirectoryRow, ApiError> {
    if !state.config.directory.enabled {
        return Err(no_such_directory());
    }
    state
        .store
        .dir_load(name, now)
        .await?
        .ok_or_else(no_such_directory)
}

/// `GET /v1/dir/{name}`: the directory's `DirectoryInfo`.
pub(crate) async fn info(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    let started = std::time::Instant::now();
    let now = now_ms();
    let result = async {
        let row = load(&state, &name, now).await?;
        Ok(binary(signed_info(&row, now)?.to_bytes()).into_response())
    }
    .await;
    state.answer("directory_info", started, result)
}

/// The `directory` operation, by the member key `signer` from `source`.
pub(crate) async fn handle(
    state: &AppState,
    (signer, source): (PublicKey, IpAddr),
    request: DirectoryRequest,
    now: u64,
) -> Result<Answer, ApiError> {
    let row = load(state, &request.directory, now).await?;
    let member = signer.0;
    let store = &state.store;
    // In a members-only directory, everything but enrolling and leaving
    // needs a membership valid now.
    let needs_membership = row.members_only
        && matches!(
            request.op,
            DirectoryOp::Publish(_) | DirectoryOp::Search { .. }
        );
    if needs_membership && store.dir_member(&row.name, member, now).await?.is_none() {
        return Err(ApiError::unauthorized());
    }
    let bytes = match request.op {
        DirectoryOp::Enrol { secret } => {
            if !row.members_only {
                return Err(ApiError::new(
                    ErrorCode::INVALID_ARGUMENT,
                    "a public directory has no enrolment: publish or search directly",
                ));
            }
            let admission = store
                .dir_enrol(&row.name, enrolment_hash(&secret), member, now)
                .await?;
            attest(&row, member, &admission, now)?.to_bytes()
        }
        DirectoryOp::Publish(entry) => {
            if !row.members_only {
                state
                    .rate
                    .check_publish(source)
                    .map_err(ApiError::rate_limited)?;
            }
            if !entry.address.starts_with("https://") && !entry.address.starts_with("http://") {
                return Err(ApiError::new(
                    ErrorCode::INVALID_ARGUMENT,
                    "an entry's address is a contact address link (http:// or https://)",
                ));
            }
            store
                .dir_publish(&row.name, member, Some(entry), now)
                .await?;
            Vec::new()
        }
        DirectoryOp::Unpublish => {
            store.dir_publish(&row.name, member, None, now).await?;
            Vec::new()
        }
        DirectoryOp::Search { query } => {
            let items = store
                .dir_search(Search {
                    directory: row.name.clone(),
                    words: Search::words(&query),
                    members_only: row.members_only,
                    now_ms: now,
                    limit: MAX_RESULTS,
                })
                .await?;
            SearchResults { items }.to_bytes()
        }
        DirectoryOp::Leave => {
            store.dir_leave(&row.name, member, now).await?;
            Vec::new()
        }
    };
    Ok(bytes.into())
}

/// What a browser shows for an enrolment link: the same for every link,
/// touching nothing (the secret is in the fragment, which browsers do not
/// send).
pub(crate) async fn enrolment_page() -> Response {
    const PAGE: &str = "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>\
<title>kith directory</title><h1>You are invited to join a directory on kith</h1>\
<p>This link enrols you, once, in a members-only directory. Open it with kith:</p>\
<pre id=cmd>kith directory join '&lt;this page's address&gt;'</pre>\
<p>It works once; keep it to yourself until you have used it.</p>\
<script>document.getElementById('cmd').textContent=\"kith directory join '\"+location.href+\"'\";</script>\n";
    super::api::static_page(PAGE)
}
