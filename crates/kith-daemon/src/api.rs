//! The JSON API (docs/api.md; `openapi.json` is its contract): the CLI's
//! operations as HTTP resources under `/api/v1`. Every handler is one call
//! into the running engine; what comes back is the engine's view, the same
//! JSON as the CLI's `--json` (docs/cli-json.md).

use std::path::PathBuf;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine as _;
use futures_util::TryStreamExt as _;
use kith_content::kind::{CallStep, PaymentState};
use kith_core::{Engine, MessageView};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

use crate::AppState;
use crate::engine::EngineFuture;
use crate::error::ApiError;

type Answer<T> = Result<Json<T>, ApiError>;

/// The largest file the browser may hand the daemon in one upload: what
/// one relay blob can hold (files-v1.md §4).
const MAX_UPLOAD: u64 = 4 << 30;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/profile", get(profile))
        .route("/api/v1/sync", post(sync))
        .route("/api/v1/move", post(move_to))
        .route("/api/v1/invitations", post(invite))
        .route("/api/v1/invitations/accept", post(accept))
        .route("/api/v1/qr", post(qr))
        .route("/api/v1/conversations", get(list))
        .route(
            "/api/v1/conversations/{conv}",
            get(info).delete(delete_conversation),
        )
        .route("/api/v1/conversations/{conv}/rename", post(rename))
        .route("/api/v1/conversations/{conv}/read", post(mark_read))
        .route(
            "/api/v1/conversations/{conv}/messages",
            get(messages).post(send),
        )
        .route("/api/v1/conversations/{conv}/mail", post(mail))
        .route("/api/v1/conversations/{conv}/files", post(send_file))
        .route("/api/v1/conversations/{conv}/app", post(send_app))
        .route("/api/v1/conversations/{conv}/timer", post(timer))
        .route("/api/v1/conversations/{conv}/receipts", post(receipts))
        .route(
            "/api/v1/conversations/{conv}/auto-download",
            post(auto_download),
        )
        .route("/api/v1/conversations/{conv}/block", post(block))
        .route("/api/v1/conversations/{conv}/unblock", post(unblock))
        .route(
            "/api/v1/conversations/{conv}/ignore-introductions",
            post(ignore_introductions),
        )
        .route(
            "/api/v1/conversations/{conv}/payments",
            post(request_payment),
        )
        .route("/api/v1/conversations/{conv}/calls", get(calls).post(ring))
        .route(
            "/api/v1/conversations/{conv}/calls/{call}",
            get(call_session).post(call_step),
        )
        .route(
            "/api/v1/conversations/{conv}/messages/{msg}",
            get(message).delete(delete_message),
        )
        .route(
            "/api/v1/conversations/{conv}/messages/{msg}/edit",
            post(edit),
        )
        .route(
            "/api/v1/conversations/{conv}/messages/{msg}/react",
            post(react),
        )
        .route(
            "/api/v1/conversations/{conv}/messages/{msg}/payment",
            post(answer_payment),
        )
        .route(
            "/api/v1/conversations/{conv}/messages/{msg}/download",
            post(download),
        )
        .route(
            "/api/v1/conversations/{conv}/messages/{msg}/file",
            get(file),
        )
        .route("/api/v1/groups", post(group_create))
        .route("/api/v1/groups/{group}/invite", post(group_invite))
        .route(
            "/api/v1/groups/{group}/members",
            get(group_members).post(group_add),
        )
        .route(
            "/api/v1/groups/{group}/members/{member}",
            delete(group_remove),
        )
        .route("/api/v1/groups/{group}/admins", post(group_admin))
        .route("/api/v1/groups/{group}/leave", post(group_leave))
        .route("/api/v1/introductions", get(introductions).post(introduce))
        .route("/api/v1/addresses", get(addresses).post(address_create))
        .route("/api/v1/addresses/{address}", delete(address_delete))
        .route("/api/v1/requests", get(requests))
        .route("/api/v1/personas", get(personas).post(persona_create))
        .route("/api/v1/directories", get(directories).post(directory_join))
        .route("/api/v1/directories/search", post(directory_search))
        .route("/api/v1/directories/{directory}", delete(directory_leave))
        .route(
            "/api/v1/directories/{directory}/entry",
            post(directory_publish).delete(directory_unpublish),
        )
        .route(
            "/api/v1/conversations/{conv}/attestation",
            post(directory_show),
        )
        .route("/api/v1/personas/{name}", delete(persona_delete))
        .route("/api/v1/conversations/{conv}/link", post(link))
        .route("/api/v1/requests/{id}/{answer}", post(answer_request))
        .route(
            "/api/v1/introductions/{id}/{answer}",
            post(answer_introduction),
        )
        .route("/api/v1/events", get(crate::events::events))
        .route("/api/v1/transfers", get(transfers))
        .route("/api/v1/calls/config", get(call_config))
}

/// Runs `work` on the engine; its error is the API's.
async fn run<T, F>(state: &AppState, work: F) -> Answer<T>
where
    T: Send + 'static,
    F: for<'a> FnOnce(&'a mut Engine) -> EngineFuture<'a, kith_core::Result<T>> + Send + 'static,
{
    Ok(Json(state.engine.call(work).await??))
}

/// The API's contract, as served; tests check the routes against it.
pub(crate) const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

async fn profile(State(s): State<AppState>) -> Answer<kith_core::ProfileView> {
    run(&s, |e| Box::pin(async move { e.profile_view() })).await
}

async fn sync(State(s): State<AppState>) -> Answer<kith_core::SyncReport> {
    run(&s, |e| Box::pin(async move { e.sync().await })).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveTo {
    to: String,
}

async fn move_to(
    State(s): State<AppState>,
    Json(b): Json<MoveTo>,
) -> Answer<kith_core::MoveReport> {
    run(&s, move |e| Box::pin(async move { e.move_to(&b.to).await })).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    relay: Option<String>,
    name: Option<String>,
    persona: Option<String>,
}

/// An invitation with its link drawn as a QR code.
#[derive(Serialize)]
struct InviteAnswer {
    #[serde(flatten)]
    invite: kith_core::Invite,
    qr_svg: String,
}

async fn invite(State(s): State<AppState>, body: Option<Json<InviteBody>>) -> Answer<InviteAnswer> {
    let b = body.map(|Json(b)| b).unwrap_or_default();
    let Json(invite) = run(&s, move |e| {
        Box::pin(async move {
            e.invite_as(b.relay.as_deref(), b.name.as_deref(), b.persona.as_deref())
                .await
        })
    })
    .await?;
    with_qr(invite)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    link: String,
    name: Option<String>,
    /// A contact request's note (address links only).
    #[serde(default)]
    note: String,
    persona: Option<String>,
}

/// An invitation is accepted; to an address link, a contact request is
/// sent (the conversation waits in state `invited`).
async fn accept(
    State(s): State<AppState>,
    Json(b): Json<AcceptBody>,
) -> Answer<kith_core::Accepted> {
    let link = b.link.trim().to_string();
    if !kith_core::AddressLink::is_address(&link) && !b.note.is_empty() {
        return Err(ApiError::BadRequest(
            "a note goes with a contact address link (…/a/…), not an invitation".into(),
        ));
    }
    run(&s, move |e| {
        Box::pin(async move {
            let (name, persona) = (b.name.as_deref(), b.persona.as_deref());
            if kith_core::AddressLink::is_address(&link) {
                e.request_contact(&link, name, &b.note, persona).await
            } else {
                e.accept_as(&link, name, persona).await
            }
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QrBody {
    text: String,
}

/// A QR code of any text (a group's invitation link), as SVG.
async fn qr(Json(b): Json<QrBody>) -> Answer<Value> {
    Ok(Json(json!({ "qr_svg": qr_svg(&b.text)? })))
}

fn with_qr(invite: kith_core::Invite) -> Answer<InviteAnswer> {
    let qr_svg = qr_svg(&invite.web_link)?;
    Ok(Json(InviteAnswer { invite, qr_svg }))
}

fn qr_svg(text: &str) -> Result<String, ApiError> {
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| ApiError::BadRequest(format!("cannot draw that as a QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

async fn list(State(s): State<AppState>) -> Answer<Vec<kith_core::ConversationView>> {
    run(&s, |e| Box::pin(async move { e.list() })).await
}

async fn info(
    State(s): State<AppState>,
    Path(conv): Path<String>,
) -> Answer<kith_core::ConversationInfo> {
    run(&s, move |e| Box::pin(async move { e.info(&conv) })).await
}

async fn delete_conversation(State(s): State<AppState>, Path(conv): Path<String>) -> Answer<Value> {
    let Json(warnings) = run(&s, move |e| {
        Box::pin(async move {
            let id = e.resolve(&conv)?;
            let warnings = e.delete(&id).await?;
            Ok(json!({ "deleted": id, "warnings": warnings }))
        })
    })
    .await?;
    Ok(Json(warnings))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody {
    name: String,
}

async fn rename(
    State(s): State<AppState>,
    Path(conv): Path<String>,
    Json(b): Json<NameBody>,
) -> Answer<kith_core::ConversationView> {
    run(&s, move |e| {
        Box::pin(async move { e.rename(&conv, &b.name) })
    })
    .await
}

/// Marks the conversation read and sends the read receipts it owes.
async fn mark_read(State(s): State<AppState>, Path(conv): Path<String>) -> Answer<Value> {
    run(&s, move |e| {
        Box::pin(async move {
            e.mark_read(&conv)?;
            // Receipts that cannot go now go with the next sync.
            let _ = e.flush_receipts().await;
            Ok(json!({ "read": conv }))
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    before: Option<String>,
    limit: Option<usize>,
}

async fn messages(
    State(s): State<AppState>,
    Path(conv): Path<String>,
    Query(p): Query<Page>,
) -> Answer<Vec<MessageView>> {
    run(&s, move |e| {
        Box::pin(async move { e.messages(&conv, p.before.as_deref(), p.limit.unwrap_or(50)) })
    })
    .await
}

async fn message(
    State(s): State<AppState>,
    Path((conv, msg)): Path<(String, String)>,
) -> Answer<MessageView> {
    let Json(found) = run(&s, move |e| {
        Box::pin(async move {
            let id = e.resolve(&conv)?;
            e.message(&id, &msg)
        })
    })
    .await?;
    found
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("no such message".into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    text: String,
    reply_to: Option<String>,
}

async fn send(
    State(s): State<AppState>,
    Path(conv): Path<String>,
    Json(b): Json<SendBody>,
) -> Answer<MessageView> {
    run(&s, move |e| {
        Box::pin(async move {
            match &b.reply_to {
                Some(to) => e.send_reply(&conv, to, &b.text).await,
                None => e.send(&conv, &b.text).await,
            }
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MailBody {
    subject: String,
    body: String,
}

async fn mail(
    State(s): State<AppState>,
    Path(conv): Path<String>,
    Json(b): Json<MailBody>,
) -> Answer<MessageView> {
    run(&s, move |e| {
        Box::pin(async move { e.send_mail(&conv, &b.subject, &b.body).await })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileQuery {
    name: String,
    caption: Option<String>,
}

/// The request's body is the file. It is written to `outgoing/` in the
/// profile (the sender's kept copy), then sent as any file is.
async fn send_file(
    State(s): State<AppState>,
    Path(conv): Path<String>,
    Query(q): Query<FileQuery>,
    body: Body,
) -> Answer<MessageView> {
    let name = safe_upload_name(&q.name)?;
    let dir = s.home.join("outgoing").join(random_hex()?);
    create_private_dir(&dir).await?;
    let path = dir.join(&name);
    let written = write_body(&path, body).await;
    if let Err(e) = written {
        let _ = tokio::fs::remove_dir_all(&dir).await;
        return Err(e);
    }
    let transfers = std::sync::Arc::clone(&s.transfers);
    let id = lock(&transfers).start("upload", &conv, &name);
    let progress = std::sync::Arc::clone(&transfers);
    // The engine prepares and finishes; the chunks move without it, so
    // that messages come and go meanwhile.
    let sent = async {
        let prepared = run(&s, move |e| {
            Box::pin(async move { e.prepare_file(&conv, &path, q.caption.as_deref()).await })
        })
        .await?;
        let Json(send) = prepared;
        let moved = send.transfer(move |p| step(&progress, id, p)).await?;
        run(&s, move |e| {
            Box::pin(async move { e.finish_file(moved).await })
        })
        .await
    }
    .await;
    lock(&transfers).now.remove(&id);
    if sent.is_err() {
        let _ = tokio::fs::remove_dir_all(&dir).await;
    }
    sent
}

fn lock(
    transfers: &std::sync::Mutex<crate::Transfers>,
) -> std::sync::MutexGuard<'_, crate::Transfers> {
    // A panic while holding it cannot leave it half-changed: recover.
    transfers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn step(transfers: &std::sync::Mutex<crate::Transfers>, id: u64, p: kith_core::Progress) {
    if let Some(t) = lock(transfers).now.get_mut(&id) {
        t.done_bytes = p.done_bytes;
        t.total_bytes = p.total_bytes;
    }
}

/// Files moving now (the web UI's progress bars).
async fn transfers(State(s): State<AppState>) -> Answer<Vec<crate::Transfer>> {
    Ok(Json(lock(&s.transfers).now.values().cloned().collect()))
}

/// A file name from the browser, as the last part of a path of ours.
fn safe_upload_name(name: &str) -> Result<String, ApiError> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("").trim();
    let clean: String = base.chars().filter(|c| !c.is_control()).collect();
    if clean.is_empty() || clean == "." || clean == ".." || clean.len() > 255 {
        return Err(ApiError::BadRequest(format!(
            "{:?} is not a file name",
            crate::error::one_line(name)
        )));
    }
    Ok(clean)
}

fn random_hex() -> Result<String, ApiError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Local(format!("no randomness: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

async fn create_private_dir(dir: &std::path::Path) -> Result<(), ApiError> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder
        .create(dir)
        .await
        .map_err(|e| ApiError::Local(format!("cannot create {}: {e}", dir.display())))
}

async fn write_body(path: &std::path::Path, body: Body) -> Result<(), ApiError> {
    let local =
        |e: std::io::Error| ApiError::Local(format!("cannot write {}: {e}", path.display()));
    let mut file = tokio::fs::File::create(path).await.map_err(local)?;
    let mut stream = body.into_data_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|e| ApiError::BadRequest(format!("the upload broke off: {e}")))?
    {
        total = total.saturating_add(chunk.len() as u64);
        if total > MAX_UPLOAD {
            return Err(ApiError::BadRequest(format!(
                "a file can be at most {} bytes",
                MAX_UPLOAD
            )));
        }
        file.write_all(&chunk).await.map_err(local)?;
    }
    file.sync_all().await.map_err(local)?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppBody {
    content_type: String,
    /// The application's bytes, base64 (standard alphabet).
    data: String,
    fallback: String,
}

async fn send_app(
    State(s): State<AppState>,
    Path(conv): Path<String>,
    Json(b): Json<AppBody>,
) -> Answer<MessageView> {
    let data = base64::engine::general_purpose::STANDARD
        .decode(b.data.as_bytes())
        .map_err(|e| ApiError::BadRequest(format!("data is not base64: {e}")))?;
    run(&s, move |e| {
        Box::pin(async move { e.send_app(&conv, &b.content_type, &data, &b.fallback).await })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimerBody {
    /// Seconds; 0 turns it off.
    seconds: u32,
}

async fn timer(
    State(s): State<AppState>,
    Path(conv): Path<String>,
    Json(b): Json<TimerBody>,
) -> Answer<MessageView> {
    run(&s, move |e| {
        Box::pin(async move { e.set_timer(&conv, b.seconds).await })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnBody {
    on: bool,
}

async fn receipts(
    State(s): State<AppState>,
    Path(conv): Path<String>,
    Json(b): Json<OnBody>,
) -> Answer<Value> {
    run(&s, move |e| {
        Box::pin(async move {
            e.set_receipts(&conv, b.on)?;
            Ok(json!({ "receipts": b.on }))
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AutoDownloadBody {
    /// Bytes; `null` turns it off.
    max: Option<u64>,
}

async fn auto_download(
    State(s): State<AppState>,
    Path(conv): Path<String>,
    Json(b): Json<AutoDownloadBody>,
) -> Answer<Value> {
    run(&s, move |e| {
        Box::pin(async move {
            e.set_auto_download(&conv, b.max)?;
            Ok(json!({ "auto_download_max": b.max, "dir": e.downloads_dir() }))
        })
    })
    .await
}

async fn block(State(s): State<AppState>, Path(conv): Path<String>) -> Answer<Value> {
    run(&s, move |e| {
        Box::pin(async move {
            let warnings = e.block(&conv).await?;
            Ok(json!({ "blocked": conv, "warnings": warnings }))
        })
    })
    .await
}

async fn unblock(State(s): State<AppState>, Path(conv): Path<String>) -> Answer<Value> {
    run(&s, move |e| {
        Box::pin(async move {
            let warnings = e.unblock(&conv).await?;
            Ok(json!({ "unblocked": conv, "warnings": warnings }))
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IgnoreBody {
    ignore: bool,
}

async fn ignore_introductions(
    State(s): State<AppState>,
    Path(conv): Path<String>,
    Json(b): Json<IgnoreBody>,
) -> Answer<Value> {
    run(&s, move |e| {
        Box::pin(async move {
            e.ignore_introductions(&conv, b.ignore)?;
            Ok(json!({ "conversation": conv, "ignore_introductions": b.ignore }))
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentBody {
    to: String,
    amount: Option<String>,
    note: Option<String>,
}

async fn request_payment(
    State(s): State<AppState>,
    Path(conv): Path<String>,
    Json(b): Json<PaymentBody>,
) -> Answer<MessageView> {
    run(&s, move |e| {
        Box::pin(async move {
            e.request_payment(&conv, &b.to, b.amount.as_deref(), b.note.as_deref())
                .await
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentAnswer {
    /// `paid` or `declined`.
    state: String,
    reference: Option<String>,
}

async fn answer_payment(
    State(s): State<AppState>,
    Path((conv, msg)): Path<(String, String)>,
    Json(b): Json<PaymentAnswer>,
) -> Answer<MessageView> {
    let state = match b.state.as_str() {
        "paid" => PaymentState::Paid,
        "declined" => PaymentState::Declined,
        other => {
            return Err(ApiError::BadRequest(format!(
                "state {:?}: use paid or declined",
                crate::error::one_line(other)
            )));
        }
    };
    run(&s, move |e| {
        Box::pin(async move {
            e.answer_payment(&conv, &msg, state, b.reference.as_deref())
                .await
        })
    })
    .await
}

async fn calls(
    State(s): State<AppState>,
    Path(conv): Path<String>,
) -> Answer<Vec<kith_core::CallView>> {
    run(&s, move |e| Box::pin(async move { e.calls(&conv) })).await
}

/// What the browser's calls need: the STUN/TURN servers `kith up` was
/// given, as `RTCPeerConnection` takes them.
async fn call_config(State(s): State<AppState>) -> Answer<Value> {
    let servers: Vec<Value> = s.ice_servers.iter().map(|u| json!({ "urls": u })).collect();
    Ok(Json(json!({ "ice_servers": servers })))
}

async fn call_session(
    State(s): State<AppState>,
    Path((conv, call)): Path<(String, String)>,
) -> Answer<kith_core::CallSession> {
    run(&s, move |e| {
        Box::pin(async move { e.call_session(&conv, &call) })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RingBody {
    video: bool,
    /// The WebRTC offer (SDP).
    sdp: String,
}

async fn ring(
    State(s): State<AppState>,
    Path(conv): Path<String>,
    Json(b): Json<RingBody>,
) -> Answer<kith_core::CallView> {
    run(&s, move |e| {
        Box::pin(async move { e.call(&conv, b.video, &b.sdp).await })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepBody {
    /// `answer`, `candidate`, `decline` or `hangup`.
    step: String,
    /// The answer's SDP, or the candidate.
    #[serde(default)]
    data: String,
}

async fn call_step(
    State(s): State<AppState>,
    Path((conv, call)): Path<(String, String)>,
    Json(b): Json<StepBody>,
) -> Answer<kith_core::CallView> {
    let step = match b.step.as_str() {
        "answer" => CallStep::Answer,
        "candidate" => CallStep::Candidate,
        "decline" => CallStep::Decline,
        "hangup" => CallStep::Hangup,
        other => {
            return Err(ApiError::BadRequest(format!(
                "step {:?}: use answer, candidate, decline or hangup",
                crate::error::one_line(other)
            )));
        }
    };
    run(&s, move |e| {
        Box::pin(async move { e.call_step(&conv, &call, step, &b.data).await })
    })
    .await
}

async fn delete_message(
    State(s): State<AppState>,
    Path((conv, msg)): Path<(String, String)>,
) -> Answer<Value> {
    run(&s, move |e| {
        Box::pin(async move {
            e.delete_for_everyone(&conv, &msg).await?;
            Ok(json!({ "deleted": msg }))
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextBody {
    text: String,
}

async fn edit(
    State(s): State<AppState>,
    Path((conv, msg)): Path<(String, String)>,
    Json(b): Json<TextBody>,
) -> Answer<MessageView> {
    run(&s, move |e| {
        Box::pin(async move { e.edit(&conv, &msg, &b.text).await })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReactBody {
    /// The emoji; `null` takes this user's reaction back.
    emoji: Option<String>,
}

async fn react(
    State(s): State<AppState>,
    Path((conv, msg)): Path<(String, String)>,
    Json(b): Json<ReactBody>,
) -> Answer<Value> {
    run(&s, move |e| {
        Box::pin(async move {
            e.react(&conv, &msg, b.emoji.as_deref()).await?;
            Ok(json!({ "reacted": b.emoji }))
        })
    })
    .await
}

/// Downloads a message's file into `downloads/` in the profile.
async fn download(
    State(s): State<AppState>,
    Path((conv, msg)): Path<(String, String)>,
) -> Answer<Value> {
    create_private_dir(&s.home.join("downloads")).await?;
    let transfers = std::sync::Arc::clone(&s.transfers);
    let id = lock(&transfers).start("download", &conv, &msg);
    let progress = std::sync::Arc::clone(&transfers);
    let done = async {
        let Json(fetch) = run(&s, move |e| {
            Box::pin(async move {
                let dir = e.downloads_dir();
                e.prepare_download(&conv, &msg, &dir)
            })
        })
        .await?;
        let fetched = fetch.fetch(move |p| step(&progress, id, p)).await?;
        let Json(path) = run(&s, move |e| {
            Box::pin(async move { e.finish_download(fetched) })
        })
        .await?;
        Ok(Json(json!({ "path": path })))
    }
    .await;
    lock(&transfers).now.remove(&id);
    done
}

/// Types a browser may show inline: pictures that carry no script. Every
/// other file (SVG and HTML included) is an attachment to save.
const INLINE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

/// This user's copy of a message's file (sent from, or downloaded to).
async fn file(
    State(s): State<AppState>,
    Path((conv, msg)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let Json(found) = run(&s, move |e| {
        Box::pin(async move {
            let id = e.resolve(&conv)?;
            e.message(&id, &msg)
        })
    })
    .await?;
    let file = found
        .and_then(|m| m.file)
        .ok_or_else(|| ApiError::NotFound("no such file".into()))?;
    let path = file
        .saved
        .map(PathBuf::from)
        .ok_or_else(|| ApiError::NotFound("not downloaded yet".into()))?;
    let opened = tokio::fs::File::open(&path)
        .await
        .map_err(|_| ApiError::NotFound("this copy of the file is gone".into()))?;
    let inline = INLINE_TYPES.contains(&file.content_type.as_str());
    let content_type = if inline {
        file.content_type.clone()
    } else {
        "application/octet-stream".to_string()
    };
    let ascii_name: String = file
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!(
        "{}; filename=\"{ascii_name}\"",
        if inline { "inline" } else { "attachment" }
    );
    let stream = futures_util::stream::unfold(opened, |mut f| async move {
        use tokio::io::AsyncReadExt as _;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    let header = |v: &str| HeaderValue::from_str(v).map_err(|e| ApiError::Local(e.to_string()));
    headers.insert(header::CONTENT_TYPE, header(&content_type)?);
    headers.insert(header::CONTENT_DISPOSITION, header(&disposition)?);
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupBody {
    name: String,
    relay: Option<String>,
    persona: Option<String>,
}

async fn group_create(
    State(s): State<AppState>,
    Json(b): Json<GroupBody>,
) -> Answer<kith_core::ConversationView> {
    run(&s, move |e| {
        Box::pin(async move {
            e.group_create_as(&b.name, b.relay.as_deref(), b.persona.as_deref())
                .await
        })
    })
    .await
}

async fn group_invite(
    State(s): State<AppState>,
    Path(group): Path<String>,
) -> Answer<InviteAnswer> {
    let Json(invite) = run(&s, move |e| {
        Box::pin(async move { e.group_invite(&group).await })
    })
    .await?;
    with_qr(invite)
}

async fn group_members(
    State(s): State<AppState>,
    Path(group): Path<String>,
) -> Answer<Vec<kith_core::MemberView>> {
    run(&s, move |e| {
        Box::pin(async move { e.group_members(&group) })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    /// The 1:1 conversation with the contact to add.
    conversation: String,
}

async fn group_add(
    State(s): State<AppState>,
    Path(group): Path<String>,
    Json(b): Json<AddBody>,
) -> Answer<kith_core::GroupChange> {
    run(&s, move |e| {
        Box::pin(async move { e.group_add(&group, &b.conversation).await })
    })
    .await
}

async fn group_remove(
    State(s): State<AppState>,
    Path((group, member)): Path<(String, String)>,
) -> Answer<kith_core::GroupChange> {
    run(&s, move |e| {
        Box::pin(async move { e.group_remove(&group, &member).await })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminBody {
    member: String,
    admin: bool,
}

async fn group_admin(
    State(s): State<AppState>,
    Path(group): Path<String>,
    Json(b): Json<AdminBody>,
) -> Answer<kith_core::GroupChange> {
    run(&s, move |e| {
        Box::pin(async move { e.group_set_admin(&group, &b.member, b.admin).await })
    })
    .await
}

async fn group_leave(
    State(s): State<AppState>,
    Path(group): Path<String>,
) -> Answer<kith_core::ConversationView> {
    run(&s, move |e| {
        Box::pin(async move { e.group_leave(&group).await })
    })
    .await
}

async fn introductions(State(s): State<AppState>) -> Answer<Vec<kith_core::IntroductionView>> {
    run(&s, |e| Box::pin(async move { e.introductions() })).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntroduceBody {
    a: String,
    b: String,
    #[serde(default)]
    note: String,
}

async fn introduce(
    State(s): State<AppState>,
    Json(b): Json<IntroduceBody>,
) -> Answer<kith_core::IntroductionView> {
    run(&s, move |e| {
        Box::pin(async move { e.introduce(&b.a, &b.b, &b.note).await })
    })
    .await
}

/// `…/accept` or `…/decline` (introductions, contact requests).
fn accepting(answer: &str) -> Result<bool, ApiError> {
    match answer {
        "accept" => Ok(true),
        "decline" => Ok(false),
        _ => Err(ApiError::NotFound("use …/accept or …/decline".into())),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    name: Option<String>,
}

async fn answer_introduction(
    State(s): State<AppState>,
    Path((id, answer)): Path<(String, String)>,
    body: Option<Json<AnswerBody>>,
) -> Answer<kith_core::IntroductionView> {
    let accept = accepting(&answer)?;
    let name = body.and_then(|Json(b)| b.name);
    run(&s, move |e| {
        Box::pin(async move { e.answer_introduction(&id, accept, name.as_deref()).await })
    })
    .await
}

async fn addresses(State(s): State<AppState>) -> Answer<Vec<AddressAnswer>> {
    let list = run(&s, |e| Box::pin(async move { e.addresses() })).await?;
    list.0
        .into_iter()
        .map(address_with_qr)
        .collect::<Result<_, _>>()
        .map(Json)
}

/// An address with its QR code (of the https form).
#[derive(Serialize)]
struct AddressAnswer {
    #[serde(flatten)]
    address: kith_core::AddressView,
    qr_svg: String,
}

fn address_with_qr(address: kith_core::AddressView) -> Result<AddressAnswer, ApiError> {
    let qr_svg = qr_svg(address.link.trim_start_matches("kith:"))?;
    Ok(AddressAnswer { address, qr_svg })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressBody {
    label: Option<String>,
    relay: Option<String>,
    display_name: Option<String>,
    persona: Option<String>,
}

async fn address_create(
    State(s): State<AppState>,
    Json(b): Json<AddressBody>,
) -> Answer<AddressAnswer> {
    let view = run(&s, move |e| {
        Box::pin(async move {
            e.address_create(
                b.label.as_deref(),
                b.relay.as_deref(),
                b.display_name.as_deref(),
                b.persona.as_deref(),
            )
            .await
        })
    })
    .await?;
    address_with_qr(view.0).map(Json)
}

async fn address_delete(State(s): State<AppState>, Path(address): Path<String>) -> Answer<Value> {
    run(&s, move |e| {
        Box::pin(async move {
            e.address_delete(&address).await?;
            Ok(json!({ "deleted": address }))
        })
    })
    .await
}

async fn directories(State(s): State<AppState>) -> Answer<Vec<kith_core::DirectoryView>> {
    run(&s, |e| Box::pin(async move { e.directories() })).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    link: String,
    persona: Option<String>,
}

async fn directory_join(
    State(s): State<AppState>,
    Json(b): Json<JoinBody>,
) -> Answer<kith_core::DirectoryView> {
    run(&s, move |e| {
        Box::pin(async move { e.directory_join(&b.link, b.persona.as_deref()).await })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    directory: String,
    query: String,
}

async fn directory_search(
    State(s): State<AppState>,
    Json(b): Json<SearchBody>,
) -> Answer<Vec<kith_core::EntryView>> {
    run(&s, move |e| {
        Box::pin(async move { e.directory_search(&b.directory, &b.query).await })
    })
    .await
}

async fn directory_leave(
    State(s): State<AppState>,
    Path(directory): Path<String>,
) -> Answer<Value> {
    run(&s, move |e| {
        Box::pin(async move {
            e.directory_leave(&directory).await?;
            Ok(json!({ "left": directory }))
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryBody {
    display_name: Option<String>,
    text: String,
}

async fn directory_publish(
    State(s): State<AppState>,
    Path(directory): Path<String>,
    Json(b): Json<EntryBody>,
) -> Answer<kith_core::DirectoryView> {
    run(&s, move |e| {
        Box::pin(async move {
            e.directory_publish(&directory, b.display_name.as_deref(), &b.text)
                .await
        })
    })
    .await
}

async fn directory_unpublish(
    State(s): State<AppState>,
    Path(directory): Path<String>,
) -> Answer<kith_core::DirectoryView> {
    run(&s, move |e| {
        Box::pin(async move { e.directory_unpublish(&directory).await })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShowBody {
    directory: String,
}

async fn directory_show(
    State(s): State<AppState>,
    Path(conv): Path<String>,
    Json(b): Json<ShowBody>,
) -> Answer<Value> {
    run(&s, move |e| {
        Box::pin(async move {
            let warnings = e.directory_show(&b.directory, &conv).await?;
            Ok(json!({ "shown": b.directory, "in": conv, "warnings": warnings }))
        })
    })
    .await
}

async fn personas(State(s): State<AppState>) -> Answer<Vec<kith_core::PersonaView>> {
    run(&s, |e| Box::pin(async move { e.personas() })).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonaBody {
    name: String,
    display_name: Option<String>,
}

async fn persona_create(
    State(s): State<AppState>,
    Json(b): Json<PersonaBody>,
) -> Answer<kith_core::PersonaView> {
    run(&s, move |e| {
        Box::pin(async move { e.persona_create(&b.name, b.display_name.as_deref()) })
    })
    .await
}

async fn persona_delete(State(s): State<AppState>, Path(name): Path<String>) -> Answer<Value> {
    run(&s, move |e| {
        Box::pin(async move {
            e.persona_delete(&name)?;
            Ok(json!({ "deleted": name }))
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    with: String,
}

/// Shows the conversation's contact that this user is also the person of
/// `with`.
async fn link(
    State(s): State<AppState>,
    Path(conv): Path<String>,
    Json(b): Json<LinkBody>,
) -> Answer<Value> {
    run(&s, move |e| {
        Box::pin(async move {
            let warnings = e.link(&conv, &b.with).await?;
            Ok(json!({ "linked": conv, "with": b.with, "warnings": warnings }))
        })
    })
    .await
}

async fn requests(State(s): State<AppState>) -> Answer<Vec<kith_core::RequestView>> {
    run(&s, |e| Box::pin(async move { e.requests() })).await
}

/// Accepting answers the new conversation; declining `{"declined": id}`.
async fn answer_request(
    State(s): State<AppState>,
    Path((id, answer)): Path<(String, String)>,
    body: Option<Json<AnswerBody>>,
) -> Answer<Value> {
    let accept = accepting(&answer)?;
    let name = body.and_then(|Json(b)| b.name);
    run(&s, move |e| {
        Box::pin(async move {
            if accept {
                let accepted = e.request_accept(&id, name.as_deref()).await?;
                serde_json::to_value(accepted)
                    .map_err(|err| kith_core::CoreError::Corrupt(err.to_string()))
            } else {
                e.request_decline(&id)?;
                Ok(json!({ "declined": id }))
            }
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_names_are_one_plain_path_part() {
        assert_eq!(
            safe_upload_name("photo.jpg").ok().as_deref(),
            Some("photo.jpg")
        );
        assert_eq!(
            safe_upload_name("../../etc/passwd").ok().as_deref(),
            Some("passwd")
        );
        assert_eq!(
            safe_upload_name("C:\\x\\a b.png").ok().as_deref(),
            Some("a b.png")
        );
        assert!(safe_upload_name("..").is_err());
        assert!(safe_upload_name("dir/").is_err());
        assert!(safe_upload_name("\u{7}").is_err());
    }
}

/// The routes this file registers and the paths and methods of
/// `openapi.json` are the same set.
#[cfg(test)]
mod contract {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use std::collections::BTreeSet;

    fn registered() -> BTreeSet<(String, String)> {
        // The handlers, before the tests (which quote `.route(`).
        let source = include_str!("api.rs").split("#[cfg(test)]").next().unwrap();
        let mut found = BTreeSet::new();
        let mut rest = source;
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            // The call ends at the parenthesis that closes it.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map(|(i, _)| i)
                .unwrap();
            let call = &rest[..end];
            let Some(path) = call.split('"').nth(1) else {
                continue;
            };
            if !path.starts_with("/api/") {
                continue;
            }
            for method in ["get", "post", "delete"] {
                if call.contains(&format!("{method}(")) {
                    found.insert((method.to_string(), path.to_string()));
                }
            }
        }
        found
    }

    #[test]
    fn every_route_is_in_the_openapi_document_and_nothing_else() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.clone(), path.clone()));
            }
        }
        let registered = registered();
        assert!(registered.len() > 40, "{registered:?}");
        assert_eq!(registered, documented);
    }
}
