//! WebSocket push (`docs/spec/relay.md`, "Push").
//!
//! One task per connection. Each subscription keeps the sequence number of
//! the last message sent; pushes from the [`Hub`](super::hub::Hub) that fit
//! right after it are sent as they come, and anything else (a gap, a lagged
//! queue, a new subscription) is filled from the store. So delivery is in
//! order, without gaps, and memory per connection is bounded.

use super::AppState;
use super::api::client_ip;
use super::auth;
use super::error::ApiError;
use super::hub::{Push, SubFlags, Subscriber};
use crate::store::ChannelKey;
use crate::time::now_ms;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use kith_wire::Codec;
use kith_wire::relay::push::{ClientFrame, ServerFrame};
use kith_wire::relay::request::Operation;
use kith_wire::relay::response::{ErrorBody, ErrorCode};
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
/// Largest frame a client may send (a `Subscribe` is about 200 bytes).
const MAX_CLIENT_FRAME: usize = 4_096;
const PING_EVERY: Duration = Duration::from_secs(30);
const IDLE_LIMIT: Duration = Duration::from_secs(75);

pub(crate) async fn upgrade(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
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
    ws.read_buffer_size(MAX_CLIENT_FRAME)
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

struct Connection {
    state: Arc<AppState>,
    id: u64,
    ip: IpAddr,
    sink: SplitSink<WebSocket, Message>,
    subs: HashMap<u32, Sub>,
    push_tx: mpsc::Sender<Push>,
    wake: Arc<Notify>,
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
    };
    state.metrics.websocket_connections.inc();
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_heard = Instant::now();
    let wake = conn.wake.clone();
    loop {
        let step = tokio::select! {
            () = state.shutdown.cancelled() => {
                conn.close_socket(close_code::AWAY, "relay shutting down").await;
                break;
            }
            frame = stream.next() => {
                last_heard = Instant::now();
                match frame {
                    Some(Ok(Message::Binary(bytes))) => conn.client_frame(&bytes).await,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
                    Some(Ok(Message::Text(_))) => {
                        conn.close_socket(close_code::UNSUPPORTED, "binary frames only").await;
                        break;
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                }
            }
            Some(push) = push_rx.recv() => conn.deliver(push).await,
            () = wake.notified() => conn.check_flags().await,
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_LIMIT {
                    conn.close_socket(close_code::AWAY, "idle").await;
                    break;
                }
                conn.send(Message::Ping(Default::default())).await
            }
        };
        if step.is_err() {
            break;
        }
    }
    conn.unsubscribe_all();
    state.metrics.websocket_connections.dec();
}

impl Connection {
    async fn send(&mut self, message: Message) -> Result<(), Stop> {
        self.sink.send(message).await.map_err(|_| Stop::Gone)
    }

    async fn send_frame(&mut self, frame: &ServerFrame) -> Result<(), Stop> {
        self.send(Message::Binary(frame.to_bytes().into())).await
    }

    async fn close_socket(&mut self, code: u16, reason: &'static str) {
        let _ = self
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
    }

    fn error_body(&self, e: ApiError) -> ErrorBody {
        ErrorBody {
            code: e.code,
            server_time_ms: now_ms(),
            min_timestamp_ms: self.state.replay.min_timestamp_ms(),
            retry_after_ms: e
                .retry_after
                .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX))
                .unwrap_or(0),
            message: e.message.into_owned(),
        }
    }

    async fn refuse(&mut self, sub: u32, e: ApiError) -> Result<(), Stop> {
        let error = self.error_body(e);
        self.send_frame(&ServerFrame::Closed { sub, error }).await
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
        }
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
        let verified = match auth::verify(&self.state, request, now) {
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
        self.send_frame(&ServerFrame::Subscribed { sub, last_seq })
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
            let page = self
                .state
                .store
                .read(
                    s.read_id,
                    s.key,
                    s.last_sent,
                    limits.max_read_messages,
                    limits.max_read_bytes,
                    now_ms(),
                )
                .await;
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    self.remove(sub);
                    return self.refuse(sub, e.into()).await;
                }
            };
            let last_seq = page.messages.last_seq;
            let got = page.messages.items.len();
            for message in &page.messages.items {
                let frame = ServerFrame::encode_message(sub, message);
                self.send(Message::Binary(frame.into())).await?;
                self.state.metrics.pushed_messages.inc();
                if let Some(s) = self.subs.get_mut(&sub) {
                    s.last_sent = message.seq;
                }
            }
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
                self.send(Message::Binary(frame.into())).await?;
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
