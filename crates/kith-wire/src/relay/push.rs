//! WebSocket frames on `GET /v1/ws` (`docs/spec/relay.md`, "WebSocket").
//!
//! One connection carries many subscriptions, each named by a number the
//! client picks and each authorized by its own signed `subscribe` request,
//! and any number of other signed requests, each named by a request id.

use super::request::MAX_SIGNED_REQUEST;
use super::response::{ErrorBody, StoredMessage};
use crate::codec::{Codec, DecodeError, Reader, Writer};

/// Longest signed request inside a `Subscribe` frame.
pub const MAX_SUBSCRIBE_REQUEST: u32 = 1_024;

/// Longest answer body inside a `Response` frame.
pub const MAX_RESPONSE_BODY: u32 = 64 << 20;

/// A frame from client to relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// Tag 1: start a subscription.
    Subscribe {
        /// The client's number for this subscription, unique per connection.
        sub: u32,
        /// An encoded `SignedRequest` whose operation is `subscribe`.
        request: Vec<u8>,
    },
    /// Tag 2: end a subscription; the relay sends nothing back.
    Unsubscribe {
        /// The subscription.
        sub: u32,
    },
    /// Tag 3: any signed request but `subscribe`, answered by a `Response`
    /// or `Failed` frame with the same id. Requests on one connection may be
    /// answered in any order.
    Request {
        /// The client's number for this request.
        id: u32,
        /// An encoded `SignedRequest`.
        request: Vec<u8>,
    },
    /// Tag 4: an operation by a key bound to this connection (relay.md §8,
    /// "Bound keys"), without a signature; answered as a `Request`.
    Bound {
        /// The client's number for this request.
        id: u32,
        /// The number the relay gave the key when it was bound.
        key_ref: u32,
        /// An encoded `Operation`: any but `subscribe` and `bind`.
        operation: Vec<u8>,
    },
}

impl Codec for ClientFrame {
    fn encode(&self, w: &mut Writer) {
        match self {
            Self::Subscribe { sub, request } => {
                w.u8(1);
                w.u32(*sub);
                w.opaque(request);
            }
            Self::Unsubscribe { sub } => {
                w.u8(2);
                w.u32(*sub);
            }
            Self::Request { id, request } => {
                w.u8(3);
                w.u32(*id);
                w.opaque(request);
            }
            Self::Bound {
                id,
                key_ref,
                operation,
            } => {
                w.u8(4);
                w.u32(*id);
                w.u32(*key_ref);
                w.opaque(operation);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8("client_frame")? {
            1 => Ok(Self::Subscribe {
                sub: r.u32("sub")?,
                request: r.opaque(MAX_SUBSCRIBE_REQUEST, "request")?.to_vec(),
            }),
            2 => Ok(Self::Unsubscribe { sub: r.u32("sub")? }),
            3 => Ok(Self::Request {
                id: r.u32("id")?,
                request: r.opaque(MAX_SIGNED_REQUEST, "request")?.to_vec(),
            }),
            4 => Ok(Self::Bound {
                id: r.u32("id")?,
                key_ref: r.u32("key_ref")?,
                operation: r.opaque(MAX_SIGNED_REQUEST, "operation")?.to_vec(),
            }),
            tag => Err(DecodeError::UnknownTag {
                what: "client_frame",
                tag,
            }),
        }
    }
}

/// A frame from relay to client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFrame {
    /// Tag 1: the subscription is active; messages above the requested cursor
    /// follow in order, first those already stored, then new ones.
    Subscribed {
        /// The subscription.
        sub: u32,
        /// The channel's highest sequence number when it started.
        last_seq: u64,
    },
    /// Tag 2: one message.
    Message {
        /// The subscription.
        sub: u32,
        /// The message.
        message: StoredMessage,
    },
    /// Tag 3: the subscription was refused or has ended (key revoked, channel
    /// deleted or expired, relay shutting down).
    Closed {
        /// The subscription.
        sub: u32,
        /// Why.
        error: ErrorBody,
    },
    /// Tag 4: a request succeeded; `body` is what the HTTP path would answer.
    Response {
        /// The request.
        id: u32,
        /// The answer's encoding (empty for operations without one).
        body: Vec<u8>,
    },
    /// Tag 5: a request failed.
    Failed {
        /// The request.
        id: u32,
        /// Why.
        error: ErrorBody,
    },
}

impl ServerFrame {
    /// The encoding of `Message { sub, message }` without building the frame
    /// (one stored message is pushed to many subscriptions).
    pub fn encode_message(sub: u32, message: &StoredMessage) -> Vec<u8> {
        let mut w = Writer::with_capacity(32 + message.payload.len());
        w.u8(2);
        w.u32(sub);
        message.encode(&mut w);
        w.into_bytes()
    }
}

impl Codec for ServerFrame {
    fn encode(&self, w: &mut Writer) {
        match self {
            Self::Subscribed { sub, last_seq } => {
                w.u8(1);
                w.u32(*sub);
                w.u64(*last_seq);
            }
            Self::Message { sub, message } => {
                w.u8(2);
                w.u32(*sub);
                message.encode(w);
            }
            Self::Closed { sub, error } => {
                w.u8(3);
                w.u32(*sub);
                error.encode(w);
            }
            Self::Response { id, body } => {
                w.u8(4);
                w.u32(*id);
                w.opaque(body);
            }
            Self::Failed { id, error } => {
                w.u8(5);
                w.u32(*id);
                error.encode(w);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8("server_frame")? {
            1 => Ok(Self::Subscribed {
                sub: r.u32("sub")?,
                last_seq: r.u64("last_seq")?,
            }),
            2 => Ok(Self::Message {
                sub: r.u32("sub")?,
                message: StoredMessage::decode(r)?,
            }),
            3 => Ok(Self::Closed {
                sub: r.u32("sub")?,
                error: ErrorBody::decode(r)?,
            }),
            4 => Ok(Self::Response {
                id: r.u32("id")?,
                body: r.opaque(MAX_RESPONSE_BODY, "body")?.to_vec(),
            }),
            5 => Ok(Self::Failed {
                id: r.u32("id")?,
                error: ErrorBody::decode(r)?,
            }),
            tag => Err(DecodeError::UnknownTag {
                what: "server_frame",
                tag,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_message_matches_the_frame() {
        let message = StoredMessage {
            seq: 9,
            received_at_ms: 1,
            payload: vec![1, 2, 3],
        };
        let frame = ServerFrame::Message {
            sub: 4,
            message: message.clone(),
        };
        assert_eq!(ServerFrame::encode_message(4, &message), frame.to_bytes());
    }
}
