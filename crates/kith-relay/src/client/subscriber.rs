//! One WebSocket to a relay, carrying any number of subscriptions.

use super::{ClientError, RelayClient};
use ed25519_dalek::SigningKey;
use futures_util::{SinkExt, StreamExt};
use kith_wire::Codec;
use kith_wire::relay::ReadId;
use kith_wire::relay::push::{ClientFrame, ServerFrame};
use kith_wire::relay::request::{Operation, Subscribe};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

fn ws_error(e: tokio_tungstenite::tungstenite::Error) -> ClientError {
    ClientError::WebSocket(Box::new(e))
}

/// A WebSocket subscribed to channels. Frames arrive through
/// [`Subscriber::next`]: for each subscription, a `Subscribed` (or `Closed`
/// if refused), then its messages in sequence order.
#[derive(Debug)]
pub struct Subscriber {
    client: RelayClient,
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_sub: u32,
}

impl Subscriber {
    pub(super) async fn connect(client: RelayClient) -> Result<Self, ClientError> {
        // The info is needed to sign subscriptions; fetch it before connecting.
        client.cached_info().await?;
        let url = client.websocket_url()?;
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .map_err(ws_error)?;
        Ok(Self {
            client,
            socket,
            next_sub: 1,
        })
    }

    /// Subscribes to a channel from `after_seq`; returns the subscription's
    /// number, which the relay's frames carry.
    pub async fn subscribe(
        &mut self,
        key: &SigningKey,
        read_id: ReadId,
        after_seq: u64,
    ) -> Result<u32, ClientError> {
        let sub = self.next_sub;
        self.next_sub = self.next_sub.wrapping_add(1).max(1);
        let request = self
            .client
            .sign(key, Operation::Subscribe(Subscribe { read_id, after_seq }))
            .await?;
        self.send(&ClientFrame::Subscribe { sub, request }).await?;
        Ok(sub)
    }

    /// Ends a subscription.
    pub async fn unsubscribe(&mut self, sub: u32) -> Result<(), ClientError> {
        self.send(&ClientFrame::Unsubscribe { sub }).await
    }

    async fn send(&mut self, frame: &ClientFrame) -> Result<(), ClientError> {
        self.socket
            .send(Message::Binary(frame.to_bytes().into()))
            .await
            .map_err(ws_error)
    }

    /// The next frame from the relay; `None` once the connection is closed.
    pub async fn next(&mut self) -> Option<Result<ServerFrame, ClientError>> {
        loop {
            match self.socket.next().await? {
                Ok(Message::Binary(bytes)) => {
                    return Some(ServerFrame::from_bytes(&bytes).map_err(ClientError::from));
                }
                Ok(Message::Close(_)) => return None,
                Ok(_) => continue,
                Err(e) => return Some(Err(ws_error(e))),
            }
        }
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
