//! The HTTP API (`docs/spec/relay.md`, "Transport").
//!
//! Every signed operation has its own `POST` path; the body is one encoded
//! `SignedRequest` whose operation must be the one the path names.

use super::AppState;
use super::auth::{self, UnverifiedRequest, acceptable_key};
use super::budget::Room;
use super::error::{ApiError, binary};
use crate::store::{BlobClaim, ChannelKey, NewBlob, NewChannel};
use crate::time::now_ms;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::BodyExt;
use kith_wire::Codec;
use kith_wire::relay::request::{
    BlobCreate, BlobGet, MAX_SIGNED_REQUEST, OP_TAG_OFFSET, Operation, Read, blob_claim_message,
    carries_payload,
};
use kith_wire::relay::response::{ErrorCode, RelayInfo};
use kith_wire::relay::{CHUNK_SIZE, PROTOCOL_VERSION, PublicKey, Rights, is_bucket_size};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Every path that takes a signed request, with its operation's name and
/// tag.
const SIGNED_PATHS: &[(&str, &str, u8)] = &[
    ("/v1/channel/create", "create_channel", 1),
    ("/v1/channel/append", "append", 2),
    ("/v1/channel/append-after", "append_after", 13),
    ("/v1/channel/append-expiring", "append_expiring", 15),
    ("/v1/channel/read", "read", 3),
    ("/v1/channel/ack", "ack", 4),
    ("/v1/channel/key/add", "add_key", 5),
    ("/v1/channel/key/revoke", "revoke_key", 6),
    ("/v1/channel/delete", "delete_channel", 7),
    ("/v1/channel/status", "status", 8),
    ("/v1/blob/create", "blob_create", 10),
    ("/v1/blob/put", "blob_put", 11),
    ("/v1/blob/delete", "blob_delete", 12),
    ("/v1/dir/request", "directory", 16),
];

/// Limit for requests without a payload.
const SMALL_BODY: usize = 8_192;

/// The largest request of the operation with this tag (relay.md §3), over
/// HTTP, in a `Request` frame or in a `Bound` frame alike.
fn body_limit(tag: Option<u8>) -> usize {
    if tag.is_some_and(carries_payload) {
        MAX_SIGNED_REQUEST as usize
    } else {
        SMALL_BODY
    }
}

/// Step 1 of §4.3 inside a WebSocket frame, where no path set the limit.
fn within_limit(bytes: &[u8], tag: Option<u8>) -> Result<(), ApiError> {
    let limit = body_limit(tag);
    if bytes.len() > limit {
        return Err(ApiError::new(
            ErrorCode::TOO_LARGE,
            format!("this request is at most {limit} bytes"),
        ));
    }
    Ok(())
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    let mut router = Router::new()
        .route("/v1/info", get(info))
        .route("/v1/blob/get", post(blob_get))
        .route("/v1/ws", get(super::ws::upgrade))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/i/{id}", get(invitation_page))
        .route("/a/{id}", get(address_page))
        .route("/v1/dir/{name}", get(super::directory::info))
        .route("/d/{id}", get(super::directory::enrolment_page));
    for (path, _, _) in SIGNED_PATHS {
        router = router.route(path, post(signed));
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// The client's address: the TCP peer, or the last `X-Forwarded-For` hop
/// when the operator says a proxy sets it.
pub(crate) fn client_ip(state: &AppState, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
    if state.config.trust_forwarded_for {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .next_back();
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    peer.ip()
}

/// Reads a request body of at most `limit` bytes, all of it within the
/// body timeout. Each frame is copied into one buffer as it comes and
/// dropped: keeping hyper's frames would pin a read buffer of kilobytes
/// per frame, so a body dripped a byte at a time cost kilobytes per byte.
async fn read_body(state: &AppState, req: Request, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::TOO_LARGE,
            format!("the body is larger than the {limit} bytes this path accepts"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let timeout = Duration::from_secs(state.config.body_timeout_secs);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut body = req.into_body();
    // Grown as bytes arrive, never from the declared length alone: a
    // client that declares much and sends little holds little.
    let mut bytes = Vec::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Err(ApiError::new(
                    ErrorCode::TIMEOUT,
                    format!(
                        "the request body did not arrive within {} s",
                        timeout.as_secs()
                    ),
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                return Err(ApiError::new(
                    ErrorCode::MALFORMED,
                    "the request body could not be read",
                ));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if bytes.len().saturating_add(data.len()) > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(bytes))
}

fn encoded<T: Codec>(value: &T) -> Result<Vec<u8>, ApiError> {
    Ok(value.to_bytes())
}

fn empty() -> Result<Vec<u8>, ApiError> {
    Ok(Vec::new())
}

impl AppState {
    /// Records the answer in metrics and turns errors into responses.
    pub(crate) fn answer(
        &self,
        op: &'static str,
        started: Instant,
        result: Result<Response, ApiError>,
    ) -> Response {
        let code = result.as_ref().map_or_else(|e| e.code.name(), |_| "ok");
        self.record(op, code, started);
        result.unwrap_or_else(|e| e.into_response(now_ms(), self.replay.min_timestamp_ms()))
    }

    pub(crate) fn record(&self, op: &'static str, code: &'static str, started: Instant) {
        self.metrics
            .requests
            .get_or_create(&super::metrics::RequestLabels { op, code })
            .inc();
        self.metrics
            .request_seconds
            .get_or_create(&super::metrics::OpLabels { op })
            .observe(started.elapsed().as_secs_f64());
    }

    pub(crate) fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.rate.check_ip(ip).map_err(ApiError::rate_limited)
    }

    fn check_payload(&self, len: usize, what: &str) -> Result<(), ApiError> {
        if is_bucket_size(len) && len <= self.config.limits.max_payload as usize {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::BAD_SIZE,
                format!(
                    "{what} length {len} is not a size bucket up to {} bytes",
                    self.config.limits.max_payload
                ),
            ))
        }
    }
}

/// A TTL from a request: 0 means the default; above the maximum is refused.
fn ttl_ms(requested: u32, default: u32, max: u32, what: &'static str) -> Result<u64, ApiError> {
    match requested {
        0 => Ok(u64::from(default) * 1000),
        s if s <= max => Ok(u64::from(s) * 1000),
        _ => Err(ApiError::new(
            ErrorCode::INVALID_ARGUMENT,
            format!("{what} is above this relay's maximum of {max}"),
        )),
    }
}

async fn signed(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let Some(&(path, op, tag)) = SIGNED_PATHS.iter().find(|(p, _, _)| *p == req.uri().path())
    else {
        return not_found(State(state)).await;
    };
    let result = async {
        let ip = client_ip(&state, req.headers(), peer);
        state.check_ip(ip)?;
        let bytes = read_body(&state, req, body_limit(Some(tag))).await?;
        execute(&state, &bytes, Some(path), ip).await.1
    }
    .await
    .map(Answer::into_response);
    state.answer(op, started, result)
}

/// An answer's encoding, with the room it takes in the answer budget
/// (given back once it is written).
pub(crate) struct Answer {
    pub(crate) bytes: Vec<u8>,
    pub(crate) room: Option<Room>,
}

impl From<Vec<u8>> for Answer {
    fn from(bytes: Vec<u8>) -> Self {
        Self { bytes, room: None }
    }
}

impl Answer {
    /// An HTTP response whose body keeps the answer's room until hyper has
    /// taken its last bytes: hyper asks for more only as it writes, so a
    /// client that stops reading holds the room, and nothing beyond it.
    fn into_response(self) -> Response {
        let Some(room) = self.room else {
            return binary(self.bytes).into_response();
        };
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            )],
            Body::new(HeldBody {
                rest: Bytes::from(self.bytes),
                _room: room,
            }),
        )
            .into_response()
    }
}

/// A response body given to hyper in pieces, holding its room until done.
struct HeldBody {
    rest: Bytes,
    _room: Room,
}

impl hyper::body::Body for HeldBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        const PIECE: usize = 64 * 1024;
        if self.rest.is_empty() {
            return std::task::Poll::Ready(None);
        }
        let n = self.rest.len().min(PIECE);
        let piece = self.rest.split_to(n);
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.rest.len() as u64)
    }
}

/// Verifies and carries out one signed request: the operation's name (for
/// metrics) and the answer's encoding. Over HTTP the operation must be the
/// one `path` names; over the WebSocket (`path` is `None`) any operation but
/// `subscribe` is allowed. `source` is the client's address.
pub(crate) async fn execute(
    state: &AppState,
    bytes: &[u8],
    path: Option<&'static str>,
    source: IpAddr,
) -> (&'static str, Result<Answer, ApiError>) {
    // Over HTTP the path's limit came first; inside a WebSocket frame the
    // operation's limit holds just the same, before decoding (§4.3, §8).
    if let Err(e) = within_limit(bytes, bytes.get(OP_TAG_OFFSET).copied()) {
        return ("too_large", Err(e));
    }
    let request = match UnverifiedRequest::decode(bytes) {
        Ok(r) => r,
        Err(e) => return ("malformed", Err(e)),
    };
    let op = op_name(&request.body.op);
    let op_path = request.body.op.path();
    if op_path.is_none() || path.is_some_and(|p| op_path != Some(p)) {
        let message = match path {
            Some(p) => format!("the request's operation does not belong on {p}"),
            None => format!("{op} requests do not go in a Request frame"),
        };
        return (op, Err(ApiError::new(ErrorCode::MALFORMED, message)));
    }
    let now = now_ms();
    let result = match auth::verify(state, request, now).await {
        // Over a WebSocket an answer is copied once more on its way out.
        Ok(verified) => {
            let body = verified.into_body();
            let copies = if path.is_none() { 2 } else { 1 };
            dispatch(state, body.signer, body.op, copies, now, source).await
        }
        Err(e) => Err(e),
    };
    (op, result)
}

/// An operation's name in metrics.
fn op_name(op: &Operation) -> &'static str {
    match op {
        Operation::Subscribe(_) => "subscribe",
        Operation::Bind(_) => "bind",
        op => SIGNED_PATHS
            .iter()
            .find(|(_, _, tag)| *tag == op.tag())
            .map_or("unknown", |(_, name, _)| *name),
    }
}

/// Carries out an operation by a key bound to a WebSocket connection
/// (relay.md §8, "Bound keys"): §4.3 without steps 3–5 and 7, which the
/// binding did once; the size limit, decoding, the key's rate limit and
/// the operation's own checks as for any request.
pub(crate) async fn execute_bound(
    state: &AppState,
    signer: PublicKey,
    bytes: &[u8],
    source: IpAddr,
) -> (&'static str, Result<Answer, ApiError>) {
    if let Err(e) = within_limit(bytes, bytes.first().copied()) {
        return ("too_large", Err(e));
    }
    let op = match Operation::from_bytes(bytes) {
        Ok(op) => op,
        Err(e) => return ("malformed", Err(ApiError::malformed(&e))),
    };
    let name = op_name(&op);
    if op.path().is_none() {
        return (
            name,
            Err(ApiError::new(
                ErrorCode::MALFORMED,
                format!("{name} requests do not go in a Bound frame"),
            )),
        );
    }
    if let Err(e) = state.rate.check_key(&signer) {
        return (name, Err(ApiError::rate_limited(e)));
    }
    (name, dispatch(state, signer, op, 2, now_ms(), source).await)
}

fn refuse_weak(key: &PublicKey) -> Result<(), ApiError> {
    if acceptable_key(key) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::INVALID_ARGUMENT,
            "a registered key must be a valid Ed25519 public key of large order",
        ))
    }
}

async fn dispatch(
    state: &AppState,
    signer: PublicKey,
    op: Operation,
    copies: usize,
    now: u64,
    source: IpAddr,
) -> Result<Answer, ApiError> {
    let limits = &state.config.limits;
    let answer = match op {
        Operation::CreateChannel(c) => {
            if !state.create_token_ok(&c.create_token) {
                return Err(ApiError::unauthorized());
            }
            for g in &c.grants {
                refuse_weak(&g.key)?;
            }
            let new = NewChannel {
                owner: signer,
                grants: c.grants,
                message_ttl_ms: ttl_ms(
                    c.message_ttl_secs,
                    limits.default_message_ttl_secs,
                    limits.max_message_ttl_secs,
                    "message_ttl_secs",
                )?,
                channel_ttl_ms: ttl_ms(
                    c.channel_ttl_secs,
                    limits.default_channel_ttl_secs,
                    limits.max_channel_ttl_secs,
                    "channel_ttl_secs",
                )?,
                now_ms: now,
            };
            encoded(&state.store.create_channel(new).await?)
        }
        Operation::Append(a) => {
            let at = (None, None);
            append(state, (signer, source), a.write_id, a.payload, at, now).await
        }
        Operation::AppendAfter(a) => {
            let at = (Some(a.after_seq), None);
            append(state, (signer, source), a.write_id, a.payload, at, now).await
        }
        Operation::AppendExpiring(a) => {
            let ttl = u64::from(a.ttl_secs).saturating_mul(1000);
            append(
                state,
                (signer, source),
                a.write_id,
                a.payload,
                (a.after_seq, Some(ttl)),
                now,
            )
            .await
        }
        Operation::Read(r) => return read(state, signer, r, copies, now).await,
        Operation::Ack(a) => encoded(&state.store.ack(a.read_id, signer, a.seq, now).await?),
        Operation::AddKey(a) => {
            refuse_weak(&a.grant.key)?;
            state
                .store
                .add_key(a.write_id, signer, a.grant, now)
                .await?;
            empty()
        }
        Operation::RevokeKey(r) => {
            state
                .store
                .revoke_key(r.write_id, signer, r.key, now)
                .await?;
            empty()
        }
        Operation::DeleteChannel(d) => {
            state.store.delete_channel(d.write_id, signer, now).await?;
            empty()
        }
        Operation::Status(s) => encoded(&state.store.status(s.channel, signer, now).await?),
        Operation::BlobCreate(b) => {
            let spec = validate_blob(state, b)?;
            encoded(
                &state
                    .store
                    .blob_create(NewBlob {
                        spec,
                        key: signer,
                        now_ms: now,
                    })
                    .await?,
            )
        }
        Operation::BlobPut(p) => {
            state.check_payload(p.data.len(), "chunk")?;
            state
                .store
                .blob_put(p.write_id, signer, p.blob_id, p.index, p.data, now)
                .await?;
            empty()
        }
        Operation::BlobDelete(d) => {
            state
                .store
                .blob_delete(d.write_id, signer, d.blob_id, now)
                .await?;
            empty()
        }
        Operation::Directory(d) => {
            return super::directory::handle(state, (signer, source), d, now).await;
        }
        Operation::Subscribe(_) | Operation::Bind(_) => Err(ApiError::new(
            ErrorCode::MALFORMED,
            "this operation is only valid on the WebSocket",
        )),
    };
    answer.map(Answer::from)
}

fn validate_blob(state: &AppState, mut b: BlobCreate) -> Result<BlobCreate, ApiError> {
    let limits = &state.config.limits;
    state.check_payload(b.chunk_size as usize, "chunk_size")?;
    if b.chunk_count == 0 {
        return Err(ApiError::new(
            ErrorCode::INVALID_ARGUMENT,
            "a blob has at least one chunk",
        ));
    }
    if b.chunk_count > 1 && b.chunk_size != CHUNK_SIZE {
        return Err(ApiError::new(
            ErrorCode::BAD_SIZE,
            format!("a blob with several chunks uses chunks of exactly {CHUNK_SIZE} bytes"),
        ));
    }
    if b.read_once && b.chunk_count != 1 {
        return Err(ApiError::new(
            ErrorCode::INVALID_ARGUMENT,
            "only single-chunk blobs can be read once",
        ));
    }
    match (&b.claim_key, b.read_once) {
        (Some(key), true) => refuse_weak(key)?,
        (None, true) => {
            return Err(ApiError::new(
                ErrorCode::INVALID_ARGUMENT,
                "a read-once blob needs a claim key",
            ));
        }
        (Some(_), false) => {
            return Err(ApiError::new(
                ErrorCode::INVALID_ARGUMENT,
                "only a read-once blob has a claim key",
            ));
        }
        (None, false) => {}
    }
    b.ttl_secs = u32::try_from(
        ttl_ms(
            b.ttl_secs,
            limits.default_blob_ttl_secs,
            limits.max_blob_ttl_secs,
            "ttl_secs",
        )? / 1000,
    )
    .unwrap_or(u32::MAX);
    Ok(b)
}

/// Releases a long-poll watch when the request ends, however it ends.
struct Watch<'a> {
    state: &'a AppState,
    channel: ChannelKey,
    notify: Option<Arc<Notify>>,
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        if let Some(n) = self.notify.take() {
            self.state.hub.unwatch(self.channel, n);
        }
        self.state.metrics.long_polls.dec();
    }
}

/// `append`, `append_after` and `append_expiring` (relay.md §5.2–§5.2b):
/// `at` is the head it must follow, if any, and the message's own TTL.
async fn append(
    state: &AppState,
    (signer, source): (PublicKey, IpAddr),
    write_id: kith_wire::relay::WriteId,
    payload: Vec<u8>,
    (after_seq, ttl_ms): (Option<u64>, Option<u64>),
    now: u64,
) -> Result<Vec<u8>, ApiError> {
    state.check_payload(payload.len(), "payload")?;
    state
        .rate
        .check_address(&write_id.0, source)
        .map_err(ApiError::rate_limited)?;
    let len = payload.len() as u64;
    let (appended, rights) = state
        .store
        .append_as(write_id, signer, payload, after_seq, ttl_ms, now)
        .await?;
    if !rights.contains(Rights::READ) {
        state.rate.appended_to_address(&write_id.0, source);
    }
    state.metrics.appended_bytes.inc_by(len);
    encoded(&appended)
}

/// Room a read takes before it knows its page: one message of the
/// largest size and its framing (a page always holds its first message).
pub(crate) fn page_floor(state: &AppState) -> usize {
    state.config.limits.max_payload as usize + 64
}

/// A page of `read_id` after `after_seq`, no larger than the room it could
/// take from the answer budget.
///
/// `copies` is how many copies of the page are alive at once on its way
/// out: 1 over HTTP (hyper writes slices of the one buffer), 2 over a
/// WebSocket (the encoded frame, and the WebSocket's own write buffer).
pub(crate) async fn read_page(
    state: &AppState,
    read_id: kith_wire::relay::ReadId,
    key: PublicKey,
    after_seq: u64,
    max_messages: u16,
    copies: usize,
    now: u64,
) -> Result<(crate::store::ReadPage, Room), ApiError> {
    let max_bytes = state.config.limits.max_read_bytes;
    let room = state
        .answers
        .take(page_floor(state) * copies, max_bytes as usize * copies)?;
    let max_bytes = max_bytes.min(u32::try_from(room.bytes() / copies).unwrap_or(u32::MAX));
    let page = state
        .store
        .read(read_id, key, after_seq, max_messages, max_bytes, now)
        .await?;
    Ok((page, room))
}

fn page_answer(
    page: &crate::store::ReadPage,
    mut room: Room,
    copies: usize,
) -> Result<Answer, ApiError> {
    let bytes = encoded(&page.messages)?;
    room.shrink_to(bytes.len() * copies);
    Ok(Answer {
        bytes,
        room: Some(room),
    })
}

async fn read(
    state: &AppState,
    signer: PublicKey,
    r: Read,
    copies: usize,
    now: u64,
) -> Result<Answer, ApiError> {
    let limits = &state.config.limits;
    let max_messages = r.max_messages.clamp(1, limits.max_read_messages);
    let wait = Duration::from_millis(u64::from(r.wait_ms.min(limits.max_wait_ms)));
    let page_at = |now| {
        read_page(
            state,
            r.read_id,
            signer,
            r.after_seq,
            max_messages,
            copies,
            now,
        )
    };
    let (page, room) = page_at(now).await?;
    if !page.messages.items.is_empty() || wait.is_zero() {
        return page_answer(&page, room, copies);
    }
    drop(room);
    // Long-poll: wait for a commit to this channel, then read again.
    let Some(notify) = state.hub.watch(page.channel) else {
        return encoded(&page.messages).map(Answer::from);
    };
    // Counted from here: an append from now on wakes this read.
    state.metrics.long_polls.inc();
    let watch = Watch {
        state,
        channel: page.channel,
        notify: Some(notify.clone()),
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (page, room) = page_at(now_ms()).await?;
        if !page.messages.items.is_empty() {
            drop(watch);
            return page_answer(&page, room, copies);
        }
        // An empty page holds no room while it waits.
        drop(room);
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep_until(deadline) => return encoded(&page.messages).map(Answer::from),
            () = state.shutdown.cancelled() => return encoded(&page.messages).map(Answer::from),
        }
    }
}

async fn blob_get(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let result = async {
        state.check_ip(client_ip(&state, req.headers(), peer))?;
        let bytes = read_body(&state, req, 1_024).await?;
        let get = BlobGet::from_bytes(&bytes).map_err(|e| ApiError::malformed(&e))?;
        let floor = page_floor(&state);
        let mut room = state.answers.take(floor, floor)?;
        let claim = BlobClaim {
            message: blob_claim_message(&state.relay_id, &get.blob_id),
            signature: get.claim,
        };
        let chunk = state
            .store
            .blob_get(get.blob_id, get.index, claim, now_ms())
            .await?;
        let bytes = chunk.to_bytes();
        room.shrink_to(bytes.len());
        Ok(Answer {
            bytes,
            room: Some(room),
        }
        .into_response())
    }
    .await;
    state.answer("blob_get", started, result)
}

async fn info(State(state): State<Arc<AppState>>) -> Response {
    let info = RelayInfo {
        version: PROTOCOL_VERSION,
        relay_id: state.relay_id,
        server_time_ms: now_ms(),
        min_timestamp_ms: state.replay.min_timestamp_ms(),
        create_requires_token: !state.create_token_hashes.is_empty(),
        name: state.config.name.clone(),
        limits: state.config.limits.to_wire(),
    };
    binary(info.to_bytes()).into_response()
}

/// What a browser shows for the https form of an invitation link
/// (`docs/spec/inbox-v1.md` §2). The page is the same for every id and
/// never touches the blob: fetching it would consume a read-once
/// invitation. The link's secret is in the fragment, which browsers do not
/// send; the script only shows the full address back to its reader.
async fn invitation_page() -> Response {
    const PAGE: &str = "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>\
<title>kith invitation</title><h1>You are invited to talk on kith</h1>\
<p>This link is a one-time invitation. Open it with kith:</p>\
<pre id=cmd>kith accept 'kith:&lt;this page's address&gt;'</pre>\
<p>It works once; whoever accepts it first is connected.</p>\
<script>document.getElementById('cmd').textContent=\"kith accept 'kith:\"+location.href+\"'\";</script>\n";
    static_page(PAGE)
}

/// What a browser shows for the https form of a contact address
/// (`docs/spec/address-v1.md` §2): like the invitation page, the same for
/// every address, touching nothing.
async fn address_page() -> Response {
    const PAGE: &str = "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>\
<title>kith contact address</title><h1>A contact address on kith</h1>\
<p>Whoever shared this address accepts contact requests through it. Open it with kith:</p>\
<pre id=cmd>kith accept 'kith:&lt;this page's address&gt;'</pre>\
<p>Your request shows only the name and note you give it; they decide whether to talk.</p>\
<script>document.getElementById('cmd').textContent=\"kith accept 'kith:\"+location.href+\"'\";</script>\n";
    static_page(PAGE)
}

pub(crate) fn static_page(page: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "no-store"),
            (axum::http::header::REFERRER_POLICY, "no-referrer"),
        ],
        page,
    )
        .into_response()
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    if state.shutdown.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    state
        .metrics
        .replay_nonces
        .set(i64::try_from(state.replay.len()).unwrap_or(i64::MAX));
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found(State(state): State<Arc<AppState>>) -> Response {
    ApiError::new(ErrorCode::NOT_FOUND, "no such path")
        .into_response(now_ms(), state.replay.min_timestamp_ms())
}

async fn method_not_allowed(State(state): State<Arc<AppState>>) -> Response {
    ApiError::new(
        ErrorCode::METHOD_NOT_ALLOWED,
        "this path does not take that method",
    )
    .into_response(now_ms(), state.replay.min_timestamp_ms())
}
