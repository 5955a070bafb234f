//! One WebSocket to a relay: subscriptions and signed requests.
//!
//! ```text
//!  Session::call ──ClientFrame──▶ ┌─────────────┐ ──▶ socket
//!  (many at once)   ◀─answer by id│ socket task │ ◀── socket
//!  Session::next ◀──pushes────────└─────────────┘
//! ```
//!
//! A session that subscribes must keep calling [`Session::next`]: pushes are
//! queued (bounded), and while the queue is full the socket is not read, so
//! answers to calls wait too.

use super::{ClientError, RelayClient, append_op, retry_once};
use ed25519_dalek::SigningKey;
use futures_util::{SinkExt, StreamExt};
use kith_wire::Codec;
use kith_wire::relay::push::{ClientFrame, ServerFrame};
use kith_wire::relay::request::{Bind, BlobPut, Operation, Subscribe};
use kith_wire::relay::response::{Appended, KeyBound};
use kith_wire::relay::{BlobId, ReadId, WriteId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

const PUSH_QUEUE: usize = 1_024;
const OUTGOING_QUEUE: usize = 256;

type Pending = Arc<Mutex<HashMap<u32, oneshot::Sender<ServerFrame>>>>;

fn ws_error(e: tokio_tungstenite::tungstenite::Error) -> ClientError {
    ClientError::WebSocket(Box::new(e))
}

/// A TCP connection to `url`'s host from the local address `source`.
async fn connect_from(
    url: &url::Url,
    source: std::net::IpAddr,
) -> Result<tokio::net::TcpStream, ClientError> {
    let io = |e: std::io::Error| ws_error(e.into());
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    let mut last = None;
    for addr in tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(io)?
        .filter(|a| a.is_ipv4() == source.is_ipv4())
    {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        }
        .map_err(io)?;
        socket
            .bind(std::net::SocketAddr::new(source, 0))
            .map_err(io)?;
        match socket.connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(io(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            format!("no address of {host} of the family of {source}"),
        )
    })))
}

fn closed() -> ClientError {
    ClientError::Closed
}

/// A WebSocket to a relay. For each subscription, [`Session::next`] yields a
/// `Subscribed` (or `Closed` if refused), then the channel's messages in
/// sequence order. [`Session::call`] sends any other signed request over the
/// same connection; calls may run concurrently, and a [`Requester`] makes
/// them from other tasks while one reads the pushes.
#[derive(Debug)]
pub struct Session {
    requester: Requester,
    pushes: mpsc::Receiver<ServerFrame>,
    task: JoinHandle<()>,
}

/// The sending half of a [`Session`]: cheap to clone, usable from any task.
#[derive(Debug, Clone)]
pub struct Requester {
    client: RelayClient,
    outgoing: mpsc::Sender<ClientFrame>,
    pending: Pending,
    next_id: Arc<AtomicU32>,
}

impl Session {
    pub(super) async fn connect(client: RelayClient) -> Result<Self, ClientError> {
        // Requests are signed for the relay's id: learn it before connecting.
        client.cached_info().await?;
        let url = client.websocket_url()?;
        let connector = Some(tokio_tungstenite::Connector::Rustls(client.trust.config()));
        let (socket, _) = match client.source {
            None => {
                tokio_tungstenite::connect_async_tls_with_config(
                    url.as_str(),
                    None,
                    true,
                    connector,
                )
                .await
            }
            Some(source) => {
                let stream = connect_from(&url, source).await?;
                tokio_tungstenite::client_async_tls_with_config(
                    url.as_str(),
                    stream,
                    None,
                    connector,
                )
                .await
            }
        }
        .map_err(ws_error)?;
        let (outgoing, outgoing_rx) = mpsc::channel(OUTGOING_QUEUE);
        let (pushes_tx, pushes) = mpsc::channel(PUSH_QUEUE);
        let pending: Pending = Arc::default();
        let task = tokio::spawn(run_socket(socket, outgoing_rx, pushes_tx, pending.clone()));
        Ok(Self {
            requester: Requester {
                client,
                outgoing,
                pending,
                next_id: Arc::new(AtomicU32::new(1)),
            },
            pushes,
            task,
        })
    }

    /// A handle that sends over this session from another task.
    pub fn requester(&self) -> Requester {
        self.requester.clone()
    }

    /// See [`Requester::subscribe`].
    pub async fn subscribe(
        &self,
        key: &SigningKey,
        read_id: ReadId,
        after_seq: u64,
    ) -> Result<u32, ClientError> {
        self.requester.subscribe(key, read_id, after_seq).await
    }

    /// See [`Requester::unsubscribe`].
    pub async fn unsubscribe(&self, sub: u32) -> Result<(), ClientError> {
        self.requester.unsubscribe(sub).await
    }

    /// See [`Requester::call`].
    pub async fn call(&self, key: &SigningKey, op: Operation) -> Result<Vec<u8>, ClientError> {
        self.requester.call(key, op).await
    }

    /// See [`Requester::send_signed`].
    pub async fn send_signed(&self, request: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        self.requester.send_signed(request).await
    }

    /// See [`Requester::append`].
    pub async fn append(
        &self,
        key: &SigningKey,
        write_id: WriteId,
        payload: &[u8],
    ) -> Result<Appended, ClientError> {
        self.requester.append(key, write_id, payload).await
    }

    /// See [`Requester::bind`].
    pub async fn bind(&self, key: &SigningKey) -> Result<u32, ClientError> {
        self.requester.bind(key).await
    }

    /// See [`Requester::append_bound`].
    pub async fn append_bound(
        &self,
        key_ref: u32,
        write_id: WriteId,
        payload: &[u8],
    ) -> Result<Appended, ClientError> {
        self.requester
            .append_bound(key_ref, write_id, payload)
            .await
    }

    /// The next push (`Subscribed`, `Message` or `Closed`); `None` once the
    /// connection is gone.
    pub async fn next(&mut self) -> Option<ServerFrame> {
        self.pushes.recv().await
    }

    /// Closes the connection (once every [`Requester`] is dropped too).
    pub async fn close(self) {
        drop(self.requester);
        let _ = self.task.await;
    }
}

impl Requester {
    async fn send(&self, frame: ClientFrame) -> Result<(), ClientError> {
        self.outgoing.send(frame).await.map_err(|_| closed())
    }

    /// Subscribes to a channel from `after_seq`; returns the subscription's
    /// number, which the relay's frames carry.
    pub async fn subscribe(
        &self,
        key: &SigningKey,
        read_id: ReadId,
        after_seq: u64,
    ) -> Result<u32, ClientError> {
        let sub = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = self
            .client
            .sign(key, Operation::Subscribe(Subscribe { read_id, after_seq }))
            .await?;
        self.send(ClientFrame::Subscribe { sub, request }).await?;
        Ok(sub)
    }

    /// Ends a subscription.
    pub async fn unsubscribe(&self, sub: u32) -> Result<(), ClientError> {
        self.send(ClientFrame::Unsubscribe { sub }).await
    }

    /// Sends one signed request and waits for its answer's body; retried
    /// once, re-signed, on `stale_timestamp` or `wrong_relay`.
    pub async fn call(&self, key: &SigningKey, op: Operation) -> Result<Vec<u8>, ClientError> {
        retry_once(&self.client, || self.call_once(key, op.clone())).await
    }

    async fn call_once(&self, key: &SigningKey, op: Operation) -> Result<Vec<u8>, ClientError> {
        let request = self.client.sign(key, op).await?;
        self.send_signed(request).await
    }

    /// Sends an already signed request (see [`RelayClient::sign`]) and waits
    /// for its answer's body. No retry: a retry must be signed afresh.
    pub async fn send_signed(&self, request: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        self.ask(|id| ClientFrame::Request { id, request }).await
    }

    /// Binds `key` to this connection (relay.md §8, "Bound keys"): its later
    /// operations here, by the returned `key_ref`, need no signature. Only
    /// as safe as the connection: bind over TLS, or to a relay on this
    /// machine.
    pub async fn bind(&self, key: &SigningKey) -> Result<u32, ClientError> {
        let body = self.call(key, Operation::Bind(Bind)).await?;
        Ok(KeyBound::from_bytes(&body)?.key_ref)
    }

    /// Sends an operation by a key bound to this connection and waits for
    /// its answer's body.
    pub async fn send_bound(&self, key_ref: u32, op: &Operation) -> Result<Vec<u8>, ClientError> {
        let operation = op.to_bytes();
        self.ask(|id| ClientFrame::Bound {
            id,
            key_ref,
            operation,
        })
        .await
    }

    /// Appends a payload by a bound key.
    pub async fn append_bound(
        &self,
        key_ref: u32,
        write_id: WriteId,
        payload: &[u8],
    ) -> Result<Appended, ClientError> {
        let body = self
            .send_bound(key_ref, &append_op(write_id, payload))
            .await?;
        Ok(Appended::from_bytes(&body)?)
    }

    /// Stores one chunk of a blob by a bound key.
    pub async fn blob_put_bound(
        &self,
        key_ref: u32,
        write_id: WriteId,
        blob_id: BlobId,
        index: u32,
        data: Vec<u8>,
    ) -> Result<(), ClientError> {
        let op = Operation::BlobPut(BlobPut {
            write_id,
            blob_id,
            index,
            data,
        });
        self.send_bound(key_ref, &op).await.map(drop)
    }

    /// Sends the frame `frame(id)` makes and waits for the answer with that
    /// id.
    async fn ask(&self, frame: impl FnOnce(u32) -> ClientFrame) -> Result<Vec<u8>, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(id, tx);
        }
        if let Err(e) = self.send(frame(id)).await {
            if let Ok(mut p) = self.pending.lock() {
                p.remove(&id);
            }
            return Err(e);
        }
        match rx.await.map_err(|_| closed())? {
            ServerFrame::Response { body, .. } => Ok(body),
            ServerFrame::Failed { error, .. } => Err(self.client.relay_error(error)),
            _ => Err(closed()),
        }
    }

    /// Appends a payload over this connection.
    pub async fn append(
        &self,
        key: &SigningKey,
        write_id: WriteId,
        payload: &[u8],
    ) -> Result<Appended, ClientError> {
        let op = append_op(write_id, payload);
        Ok(Appended::from_bytes(&self.call(key, op).await?)?)
    }
}

async fn run_socket(
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    mut outgoing: mpsc::Receiver<ClientFrame>,
    pushes: mpsc::Sender<ServerFrame>,
    pending: Pending,
) {
    let (mut sink, mut stream) = socket.split();
    loop {
        tokio::select! {
            frame = outgoing.recv() => {
                let Some(frame) = frame else {
                    let _ = sink.close().await;
                    break;
                };
                // Send everything queued with one flush.
                let mut ok = sink.feed(Message::Binary(frame.to_bytes().into())).await.is_ok();
                while ok {
                    match outgoing.try_recv() {
                        Ok(f) => ok = sink.feed(Message::Binary(f.to_bytes().into())).await.is_ok(),
                        Err(_) => break,
                    }
                }
                if !ok || sink.flush().await.is_err() {
                    break;
                }
            }
            message = stream.next() => {
                let bytes = match message {
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                let Ok(frame) = ServerFrame::from_bytes(&bytes) else {
                    break;
                };
                match frame {
                    ServerFrame::Response { id, .. } | ServerFrame::Failed { id, .. } => {
                        let waiter = pending.lock().ok().and_then(|mut p| p.remove(&id));
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(frame);
                        }
                    }
                    push => {
                        if pushes.send(push).await.is_err() {
                            // Nobody reads pushes any more; answers still flow.
                        }
                    }
                }
            }
        }
    }
    // Dropping the waiters tells every pending call the connection is gone.
    if let Ok(mut p) = pending.lock() {
        p.clear();
    }
}
