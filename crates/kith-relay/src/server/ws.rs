//! The WebSocket (`docs/spec/relay.md`, "WebSocket"): push, and requests.
//!
//! One task per connection. Each subscription keeps the sequence number of
//! the last message sent; pushes from the [`Hub`](super::hub::Hub) that fit
//! right after it are sent as they come, and anything else (a gap, a lagged
//! queue, a new subscription) is filled from the store. So delivery is in
//! order, without gaps, and memory per connection is bounded.
//!
//! Signed requests run concurrently (up to `MAX_IN_FLIGHT` per connection;
//! beyond that the connection stops reading, which pushes back on the
//! client). Frames are fed to the socket as they are ready and flushed once
//! per wake-up, so a burst of answers and pushes shares a system call.

use super::AppState;
use super::api::client_ip;
use super::api::{execute, execute_bound, read_page};
use super::auth::{self, UnverifiedRequest};
use super::budget::Room;
use super::error::ApiError;
use super::hub::{Push, SubFlags, Subscriber};
use crate::store::ChannelKey;
use crate::time::now_ms;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, SplitSink};
use futures_util::{FutureExt, SinkExt, StreamExt};
use kith_wire::Codec;
use kith_wire::relay::push::{ClientFrame, MAX_SUBSCRIBE_REQUEST, ServerFrame};
use kith_wire::relay::request::{Bind, OP_TAG_OFFSET, Operation};
use kith_wire::relay::response::{ErrorBody, ErrorCode, KeyBound};
use kith_wire::relay::{PublicKey, ReadId};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

/// Pushes queued per connection before subscriptions are marked lagged.
const PUSH_QUEUE: usize = 256;
/// Largest frame a client may send: a request with a full payload.
const MAX_CLIENT_FRAME: usize = kith_wire::relay::request::MAX_SIGNED_REQUEST as usize + 64;
/// Initial read buffer: enough for the common small frames; grows on demand.
const READ_BUFFER: usize = 4_096;
/// Requests executing at once per connection.
const MAX_IN_FLIGHT: usize = 64;
const PING_EVERY: Duration = Duration::from_secs(30);
const IDLE_LIMIT: Duration = Duration::from_secs(75);

pub(crate) async fn upgrade(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(_) => {
            // A plain GET, or a CGI relay (which cannot upgrade).
            return ApiError::new(ErrorCode::MALFORMED, "a WebSocket upgrade is expected here")
                .into_response(now_ms(), state.replay.min_timestamp_ms());
        }
    };
    let ip = client_ip(&state, &headers, peer);
    if let Err(wait) = state.rate.check_ip(ip) {
        return ApiError::rate_limited(wait)
            .into_response(now_ms(), state.replay.min_timestamp_ms());
    }
    if state.shutdown.is_cancelled() {
        return ApiError::unavailable("the relay is shutting down")
            .into_response(now_ms(), state.replay.min_timestamp_ms());
    }
    let token = state.tasks.token();
    ws.read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        .on_upgrade(move |socket| async move {
            serve(state, socket, ip).await;
            drop(token);
        })
}

struct Sub {
    channel: ChannelKey,
    read_id: ReadId,
    key: PublicKey,
    last_sent: u64,
    flags: Arc<SubFlags>,
}

/// Why a connection stops.
#[derive(Debug)]
enum Stop {
    /// The socket failed or the peer left.
    Gone,
}

/// An answer, already encoded (its body dropped), and the room it holds in
/// the answer budget until written.
type InFlight = BoxFuture<'static, (Vec<u8>, Option<Room>)>;

struct Connection {
    state: Arc<AppState>,
    id: u64,
    ip: IpAddr,
    sink: SplitSink<WebSocket, Message>,
    subs: HashMap<u32, Sub>,
    push_tx: mpsc::Sender<Push>,
    wake: Arc<Notify>,
    in_flight: FuturesUnordered<InFlight>,
    /// Room of answers fed to the socket and not yet flushed.
    held: Vec<Room>,
    /// Keys bound to this connection, by `key_ref` (relay.md §8).
    bound: Vec<PublicKey>,
}

async fn serve(state: Arc<AppState>, socket: WebSocket, ip: IpAddr) {
    let (sink, mut stream) = socket.split();
    let (push_tx, mut push_rx) = mpsc::channel(PUSH_QUEUE);
    let mut conn = Connection {
        id: state.next_connection_id(),
        state: state.clone(),
        ip,
        sink,
        subs: HashMap::new(),
        push_tx,
        wake: Arc::new(Notify::new()),
        in_flight: FuturesUnordered::new(),
        held: Vec::new(),
        bound: Vec::new(),
    };
    state.metrics.websocket_connections.inc();
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_heard = Instant::now();
    let wake = conn.wake.clone();
    loop {
        let reading = conn.in_flight.len() < MAX_IN_FLIGHT;
        let step = tokio::select! {
            () = state.shutdown.cancelled() => {
                conn.close_socket(close_code::AWAY, "relay shutting down").await;
                break;
            }
            Some(answer) = conn.in_flight.next(), if !conn.in_flight.is_empty() => {
                conn.feed_answer(answer).await
            }
            frame = stream.next(), if reading => {
                last_heard = Instant::now();
                match frame {
                    Some(Ok(Message::Binary(bytes))) => conn.client_frame(&bytes).await,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
                    Some(Ok(Message::Text(_))) => {
                        conn.close_socket(close_code::UNSUPPORTED, "binary frames only").await;
                        break;
                    }
                    Some(Err(e)) => {
                        // Tungstenite reports a frame over the limit as
                        // "Message too long"; anything else is a protocol
                        // error. Either way the client is told why.
                        let (code, reason) = if e.to_string().contains("too long") {
                            (close_code::SIZE, "frame too large")
                        } else {
                            (close_code::PROTOCOL, "protocol error")
                        };
                        conn.close_socket(code, reason).await;
                        break;
                    }
                    Some(Ok(Message::Close(_))) | None => break,
                }
            }
            Some(push) = push_rx.recv() => conn.deliver(push).await,
            () = wake.notified() => conn.check_flags().await,
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_LIMIT {
                    conn.close_socket(close_code::AWAY, "idle").await;
                    break;
                }
                conn.feed(Message::Ping(Default::default())).await
            }
        };
        if step.is_err() || conn.drain_ready(&mut push_rx).await.is_err() {
            break;
        }
    }
    conn.unsubscribe_all();
    state.metrics.websocket_connections.dec();
}

impl Connection {
    /// Queues a frame; [`Connection::drain_ready`] flushes.
    async fn feed(&mut self, message: Message) -> Result<(), Stop> {
        self.sink.feed(message).await.map_err(|_| Stop::Gone)
    }

    async fn feed_frame(&mut self, frame: &ServerFrame) -> Result<(), Stop> {
        self.feed(Message::Binary(frame.to_bytes().into())).await
    }

    async fn feed_answer(&mut self, (frame, room): (Vec<u8>, Option<Room>)) -> Result<(), Stop> {
        self.feed(Message::Binary(frame.into())).await?;
        self.held.extend(room);
        Ok(())
    }

    /// Writes out what was fed, then gives back the room it held.
    async fn flush(&mut self) -> Result<(), Stop> {
        self.sink.flush().await.map_err(|_| Stop::Gone)?;
        self.held.clear();
        Ok(())
    }

    /// Feeds whatever else is ready without waiting (answers, pushes), then
    /// flushes once.
    async fn drain_ready(&mut self, push_rx: &mut mpsc::Receiver<Push>) -> Result<(), Stop> {
        loop {
            if let Some(Some(answer)) = self.in_flight.next().now_or_never() {
                self.feed_answer(answer).await?;
                continue;
            }
            if let Ok(push) = push_rx.try_recv() {
                self.deliver(push).await?;
                continue;
            }
            break;
        }
        self.flush().await
    }

    async fn close_socket(&mut self, code: u16, reason: &'static str) {
        let _ = self
            .sink
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
    }

    async fn refuse(&mut self, sub: u32, e: ApiError) -> Result<(), Stop> {
        let error = error_body(&self.state, e);
        self.feed_frame(&ServerFrame::Closed { sub, error }).await
    }

    async fn client_frame(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        let frame = match ClientFrame::from_bytes(bytes) {
            Ok(f) => f,
            Err(_) => {
                self.close_socket(close_code::INVALID, "malformed frame")
                    .await;
                return Err(Stop::Gone);
            }
        };
        match frame {
            ClientFrame::Subscribe { sub, request } => self.subscribe(sub, &request).await,
            ClientFrame::Unsubscribe { sub } => {
                self.remove(sub);
                Ok(())
            }
            ClientFrame::Request { id, request }
                if request.get(OP_TAG_OFFSET) == Some(&Operation::Bind(Bind).tag()) =>
            {
                self.bind(id, &request).await
            }
            ClientFrame::Request { id, request } => {
                self.request(id, request);
                Ok(())
            }
            ClientFrame::Bound {
                id,
                key_ref,
                operation,
            } => {
                self.bound_request(id, key_ref, operation);
                Ok(())
            }
        }
    }

    /// Binds the signer of a `bind` request to this connection (relay.md
    /// §8, "Bound keys"), once its request has passed §4.3 like any other;
    /// answered with the key's `key_ref`. Done before the next frame is
    /// read, so a `Bound` frame sent after the answer always finds it.
    async fn bind(&mut self, id: u32, request: &[u8]) -> Result<(), Stop> {
        let started = std::time::Instant::now();
        let result = match self.state.check_ip(self.ip) {
            Ok(()) => self.verify_bind(request).await,
            Err(e) => Err(e),
        };
        let code = result.as_ref().map_or_else(|e| e.code.name(), |_| "ok");
        self.state.record("bind", code, started);
        let frame = match result {
            Ok(key_ref) => ServerFrame::Response {
                id,
                body: KeyBound { key_ref }.to_bytes(),
            },
            Err(e) => ServerFrame::Failed {
                id,
                error: error_body(&self.state, e),
            },
        };
        self.feed_frame(&frame).await
    }

    async fn verify_bind(&mut self, request: &[u8]) -> Result<u32, ApiError> {
        if request.len() > MAX_SUBSCRIBE_REQUEST as usize {
            return Err(ApiError::new(
                ErrorCode::TOO_LARGE,
                "a bind request is too large",
            ));
        }
        let request = UnverifiedRequest::decode(request)?;
        let signer = auth::verify(&self.state, request, now_ms())
            .await?
            .body()
            .signer;
        if let Some(at) = self.bound.iter().position(|k| *k == signer) {
            return Ok(u32::try_from(at).unwrap_or(u32::MAX));
        }
        if self.bound.len() >= self.state.config.limits.max_subscriptions as usize {
            return Err(ApiError::new(
                ErrorCode::QUOTA_EXCEEDED,
                "this connection has bound as many keys as it may",
            ));
        }
        self.bound.push(signer);
        Ok(u32::try_from(self.bound.len() - 1).unwrap_or(u32::MAX))
    }

    /// Starts an operation by a bound key; answered like a request.
    fn bound_request(&mut self, id: u32, key_ref: u32, operation: Vec<u8>) {
        let state = self.state.clone();
        let ip = self.ip;
        let signer = usize::try_from(key_ref)
            .ok()
            .and_then(|at| self.bound.get(at))
            .copied();
        self.in_flight.push(Box::pin(async move {
            let started = std::time::Instant::now();
            let (op, result) = match (state.check_ip(ip), signer) {
                (Err(e), _) => ("rate_limited", Err(e)),
                // As any key the relay does not know: nothing more said.
                (Ok(()), None) => ("bound", Err(ApiError::unauthorized())),
                (Ok(()), Some(signer)) => execute_bound(&state, signer, &operation, ip).await,
            };
            answer_frame(&state, id, op, result, started)
        }));
    }

    /// Starts a request; its answer is sent when it completes.
    fn request(&mut self, id: u32, request: Vec<u8>) {
        let state = self.state.clone();
        let ip = self.ip;
        self.in_flight.push(Box::pin(async move {
            let started = std::time::Instant::now();
            let (op, result) = match state.check_ip(ip) {
                Ok(()) => execute(&state, &request, None, ip).await,
                Err(e) => ("rate_limited", Err(e)),
            };
            answer_frame(&state, id, op, result, started)
        }));
    }

    async fn subscribe(&mut self, sub: u32, request: &[u8]) -> Result<(), Stop> {
        if self.subs.contains_key(&sub) {
            return self
                .refuse(
                    sub,
                    ApiError::new(ErrorCode::CONFLICT, "subscription number in use"),
                )
                .await;
        }
        if self.subs.len() >= self.state.config.limits.max_subscriptions as usize {
            return self
                .refuse(
                    sub,
                    ApiError::new(
                        ErrorCode::QUOTA_EXCEEDED,
                        "too many subscriptions on this connection",
                    ),
                )
                .await;
        }
        if let Err(wait) = self.state.rate.check_ip(self.ip) {
            return self.refuse(sub, ApiError::rate_limited(wait)).await;
        }
        let now = now_ms();
        let verified = match UnverifiedRequest::decode(request) {
            Ok(r) => auth::verify(&self.state, r, now).await,
            Err(e) => Err(e),
        };
        let verified = match verified {
            Ok(v) => v,
            Err(e) => return self.refuse(sub, e).await,
        };
        let key = verified.body().signer;
        let Operation::Subscribe(op) = verified.body().op else {
            return self
                .refuse(
                    sub,
                    ApiError::new(ErrorCode::MALFORMED, "expected a subscribe request"),
                )
                .await;
        };
        let (channel, last_seq) = match self
            .state
            .store
            .authorize_reader(op.read_id, key, now)
            .await
        {
            Ok(found) => found,
            Err(e) => return self.refuse(sub, e.into()).await,
        };
        let flags = Arc::new(SubFlags::default());
        // Register before reading the backlog: a message committed in
        // between is then pushed, and skipped if the backlog had it.
        self.state.hub.subscribe(
            channel,
            Subscriber {
                conn: self.id,
                sub,
                key,
                tx: self.push_tx.clone(),
                flags: flags.clone(),
                wake: self.wake.clone(),
            },
        );
        self.state.metrics.subscriptions.inc();
        self.subs.insert(
            sub,
            Sub {
                channel,
                read_id: op.read_id,
                key,
                last_sent: op.after_seq,
                flags,
            },
        );
        self.feed_frame(&ServerFrame::Subscribed { sub, last_seq })
            .await?;
        self.catch_up(sub).await
    }

    /// Sends everything stored after the subscription's cursor.
    async fn catch_up(&mut self, sub: u32) -> Result<(), Stop> {
        let limits = self.state.config.limits;
        loop {
            let Some(s) = self.subs.get(&sub) else {
                return Ok(());
            };
            let (read_id, key, after) = (s.read_id, s.key, s.last_sent);
            if !self.held.is_empty() {
                // The pages already fed give their room back first, so a
                // long catch-up does not find the budget full of itself.
                self.flush().await?;
            }
            let page = read_page(
                &self.state,
                read_id,
                key,
                after,
                limits.max_read_messages,
                2,
                now_ms(),
            )
            .await;
            let (page, room) = match page {
                Ok(p) => p,
                Err(e) => {
                    self.remove(sub);
                    return self.refuse(sub, e).await;
                }
            };
            let last_seq = page.messages.last_seq;
            let got = page.messages.items.len();
            for message in &page.messages.items {
                let frame = ServerFrame::encode_message(sub, message);
                self.feed(Message::Binary(frame.into())).await?;
                self.state.metrics.pushed_messages.inc();
                if let Some(s) = self.subs.get_mut(&sub) {
                    s.last_sent = message.seq;
                }
            }
            self.held.push(room);
            let Some(s) = self.subs.get_mut(&sub) else {
                return Ok(());
            };
            if got == 0 {
                // Whatever lies between was acknowledged away or expired.
                s.last_sent = s.last_sent.max(last_seq);
                return Ok(());
            }
            if s.last_sent >= last_seq {
                return Ok(());
            }
        }
    }

    async fn deliver(&mut self, push: Push) -> Result<(), Stop> {
        match push {
            Push::Message { sub, message } => {
                let Some(s) = self.subs.get_mut(&sub) else {
                    return Ok(());
                };
                if message.seq <= s.last_sent {
                    return Ok(());
                }
                if message.seq != s.last_sent + 1 {
                    return self.catch_up(sub).await;
                }
                s.last_sent = message.seq;
                let frame = ServerFrame::encode_message(sub, &message);
                self.feed(Message::Binary(frame.into())).await?;
                self.state.metrics.pushed_messages.inc();
                Ok(())
            }
            Push::Closed { sub, code } => self.closed_by_relay(sub, code).await,
        }
    }

    async fn closed_by_relay(&mut self, sub: u32, code: ErrorCode) -> Result<(), Stop> {
        if self.subs.contains_key(&sub) {
            self.remove(sub);
            let e = if code == ErrorCode::UNAUTHORIZED {
                ApiError::unauthorized()
            } else {
                ApiError::new(code, "subscription ended")
            };
            self.refuse(sub, e).await?;
        }
        Ok(())
    }

    /// Acts on what the hub could not queue: closures and lag.
    async fn check_flags(&mut self) -> Result<(), Stop> {
        let mut closed = Vec::new();
        let mut lagged = Vec::new();
        for (sub, s) in &self.subs {
            let code = s.flags.closed.load(Ordering::Acquire);
            if code != 0 {
                closed.push((*sub, ErrorCode(code)));
            } else if s.flags.lagged.swap(false, Ordering::AcqRel) {
                lagged.push(*sub);
            }
        }
        for (sub, code) in closed {
            self.closed_by_relay(sub, code).await?;
        }
        for sub in lagged {
            self.catch_up(sub).await?;
        }
        Ok(())
    }

    fn remove(&mut self, sub: u32) {
        if let Some(s) = self.subs.remove(&sub) {
            self.state.hub.unsubscribe(s.channel, self.id, sub);
            self.state.metrics.subscriptions.dec();
        }
    }

    fn unsubscribe_all(&mut self) {
        let subs: Vec<u32> = self.subs.keys().copied().collect();
        for sub in subs {
            self.remove(sub);
        }
    }
}

/// A request's answer as its frame, recorded in the metrics.
fn answer_frame(
    state: &AppState,
    id: u32,
    op: &'static str,
    result: Result<super::api::Answer, ApiError>,
    started: std::time::Instant,
) -> (Vec<u8>, Option<Room>) {
    let code = result.as_ref().map_or_else(|e| e.code.name(), |_| "ok");
    state.record(op, code, started);
    match result {
        Ok(answer) => {
            let frame = ServerFrame::Response {
                id,
                body: answer.bytes,
            };
            (frame.to_bytes(), answer.room)
        }
        Err(e) => {
            let frame = ServerFrame::Failed {
                id,
                error: error_body(state, e),
            };
            (frame.to_bytes(), None)
        }
    }
}

fn error_body(state: &AppState, e: ApiError) -> ErrorBody {
    ErrorBody {
        code: e.code,
        server_time_ms: now_ms(),
        min_timestamp_ms: state.replay.min_timestamp_ms(),
        retry_after_ms: e
            .retry_after
            .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX))
            .unwrap_or(0),
        message: e.message.into_owned(),
    }
}
