//! What a relay answers (`docs/spec/relay.md`, "Responses" and "Errors").

use super::{BlobId, KeyGrant, MAX_PAYLOAD, PROTOCOL_VERSION, ReadId, RelayId, Rights, WriteId};
use crate::codec::{Codec, DecodeError, Reader, Writer};
use std::fmt;

/// Most messages one `read` or one push batch can carry.
pub const MAX_READ_MESSAGES: u32 = 1_000;
/// Most keys a `ChannelStatus` lists.
pub const MAX_STATUS_KEYS: u32 = 100_000;
/// Longest error message.
pub const MAX_ERROR_MESSAGE: u32 = 1_024;
/// Longest relay name.
pub const MAX_RELAY_NAME: u32 = 256;

/// A relay's limits, published in [`RelayInfo`] so that clients can stay
/// within them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message payload and blob chunk accepted (a size bucket).
    pub max_payload: u32,
    /// Most messages retained in one channel.
    pub max_channel_messages: u32,
    /// Most payload bytes retained in one channel.
    pub max_channel_bytes: u64,
    /// Most blob bytes one channel may own.
    pub max_channel_blob_bytes: u64,
    /// Most keys registered on one channel.
    pub max_channel_keys: u32,
    /// Message TTL used when a channel asks for 0.
    pub default_message_ttl_secs: u32,
    /// Longest message TTL.
    pub max_message_ttl_secs: u32,
    /// Channel idle TTL used when a channel asks for 0.
    pub default_channel_ttl_secs: u32,
    /// Longest channel idle TTL.
    pub max_channel_ttl_secs: u32,
    /// Blob TTL used when a blob asks for 0.
    pub default_blob_ttl_secs: u32,
    /// Longest blob TTL.
    pub max_blob_ttl_secs: u32,
    /// Most chunks in one blob.
    pub max_blob_chunks: u32,
    /// Longest long-poll wait.
    pub max_wait_ms: u32,
    /// Most messages in one read answer.
    pub max_read_messages: u16,
    /// Most payload bytes in one read answer (at least one message is always
    /// returned when available).
    pub max_read_bytes: u32,
    /// How far in the past a request timestamp may be.
    pub timestamp_max_age_ms: u32,
    /// How far in the future a request timestamp may be.
    pub timestamp_max_future_ms: u32,
    /// Most subscriptions on one WebSocket connection.
    pub max_subscriptions: u32,
}

impl Codec for Limits {
    fn encode(&self, w: &mut Writer) {
        w.u32(self.max_payload);
        w.u32(self.max_channel_messages);
        w.u64(self.max_channel_bytes);
        w.u64(self.max_channel_blob_bytes);
        w.u32(self.max_channel_keys);
        w.u32(self.default_message_ttl_secs);
        w.u32(self.max_message_ttl_secs);
        w.u32(self.default_channel_ttl_secs);
        w.u32(self.max_channel_ttl_secs);
        w.u32(self.default_blob_ttl_secs);
        w.u32(self.max_blob_ttl_secs);
        w.u32(self.max_blob_chunks);
        w.u32(self.max_wait_ms);
        w.u16(self.max_read_messages);
        w.u32(self.max_read_bytes);
        w.u32(self.timestamp_max_age_ms);
        w.u32(self.timestamp_max_future_ms);
        w.u32(self.max_subscriptions);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            max_payload: r.u32("max_payload")?,
            max_channel_messages: r.u32("max_channel_messages")?,
            max_channel_bytes: r.u64("max_channel_bytes")?,
            max_channel_blob_bytes: r.u64("max_channel_blob_bytes")?,
            max_channel_keys: r.u32("max_channel_keys")?,
            default_message_ttl_secs: r.u32("default_message_ttl_secs")?,
            max_message_ttl_secs: r.u32("max_message_ttl_secs")?,
            default_channel_ttl_secs: r.u32("default_channel_ttl_secs")?,
            max_channel_ttl_secs: r.u32("max_channel_ttl_secs")?,
            default_blob_ttl_secs: r.u32("default_blob_ttl_secs")?,
            max_blob_ttl_secs: r.u32("max_blob_ttl_secs")?,
            max_blob_chunks: r.u32("max_blob_chunks")?,
            max_wait_ms: r.u32("max_wait_ms")?,
            max_read_messages: r.u16("max_read_messages")?,
            max_read_bytes: r.u32("max_read_bytes")?,
            timestamp_max_age_ms: r.u32("timestamp_max_age_ms")?,
            timestamp_max_future_ms: r.u32("timestamp_max_future_ms")?,
            max_subscriptions: r.u32("max_subscriptions")?,
        })
    }
}

/// `GET /v1/info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayInfo {
    /// [`PROTOCOL_VERSION`].
    pub version: u8,
    /// What requests must sign.
    pub relay_id: RelayId,
    /// The relay's clock, Unix milliseconds.
    pub server_time_ms: u64,
    /// Requests must carry a timestamp at or above this (see the spec's
    /// "Replay protection").
    pub min_timestamp_ms: u64,
    /// Whether `create_channel` needs a token from the operator.
    pub create_requires_token: bool,
    /// A name the operator chose; informational.
    pub name: String,
    /// The relay's limits.
    pub limits: Limits,
}

impl Codec for RelayInfo {
    fn encode(&self, w: &mut Writer) {
        w.u8(self.version);
        self.relay_id.encode(w);
        w.u64(self.server_time_ms);
        w.u64(self.min_timestamp_ms);
        w.bool(self.create_requires_token);
        w.string(&self.name);
        self.limits.encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8("version")?;
        if version != PROTOCOL_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                found: version,
                supported: PROTOCOL_VERSION,
            });
        }
        Ok(Self {
            version,
            relay_id: RelayId::decode(r)?,
            server_time_ms: r.u64("server_time_ms")?,
            min_timestamp_ms: r.u64("min_timestamp_ms")?,
            create_requires_token: r.bool("create_requires_token")?,
            name: r.string(MAX_RELAY_NAME, "name")?,
            limits: Limits::decode(r)?,
        })
    }
}

/// Answer to `create_channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelCreated {
    /// The new channel's write id.
    pub write_id: WriteId,
    /// The new channel's read id.
    pub read_id: ReadId,
    /// The message TTL in force.
    pub message_ttl_secs: u32,
    /// The channel idle TTL in force.
    pub channel_ttl_secs: u32,
    /// When the channel expires unless used, Unix milliseconds.
    pub expires_at_ms: u64,
}

impl Codec for ChannelCreated {
    fn encode(&self, w: &mut Writer) {
        self.write_id.encode(w);
        self.read_id.encode(w);
        w.u32(self.message_ttl_secs);
        w.u32(self.channel_ttl_secs);
        w.u64(self.expires_at_ms);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            write_id: WriteId::decode(r)?,
            read_id: ReadId::decode(r)?,
            message_ttl_secs: r.u32("message_ttl_secs")?,
            channel_ttl_secs: r.u32("channel_ttl_secs")?,
            expires_at_ms: r.u64("expires_at_ms")?,
        })
    }
}

/// Answer to `append`: the message is durable under this sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Relay-assigned, strictly increasing per channel, starting at 1.
    pub seq: u64,
    /// The relay's clock when it accepted the message.
    pub received_at_ms: u64,
}

impl Codec for Appended {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.seq);
        w.u64(self.received_at_ms);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            seq: r.u64("seq")?,
            received_at_ms: r.u64("received_at_ms")?,
        })
    }
}

/// Answer to `bind`: the number that names the key in `Bound` frames on
/// this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyBound {
    /// Given by the relay, unique on the connection.
    pub key_ref: u32,
}

impl Codec for KeyBound {
    fn encode(&self, w: &mut Writer) {
        w.u32(self.key_ref);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            key_ref: r.u32("key_ref")?,
        })
    }
}

/// One message as stored by a relay.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its sequence number.
    pub seq: u64,
    /// When the relay accepted it.
    pub received_at_ms: u64,
    /// The ciphertext as appended.
    pub payload: Vec<u8>,
}

impl fmt::Debug for StoredMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredMessage")
            .field("seq", &self.seq)
            .field("received_at_ms", &self.received_at_ms)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl Codec for StoredMessage {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.seq);
        w.u64(self.received_at_ms);
        w.opaque(&self.payload);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            seq: r.u64("seq")?,
            received_at_ms: r.u64("received_at_ms")?,
            payload: r.opaque(MAX_PAYLOAD, "payload")?.to_vec(),
        })
    }
}

/// Answer to `read`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Messages {
    /// The channel's highest sequence number so far; more messages are
    /// waiting when it is above the last item's.
    pub last_seq: u64,
    /// Messages in increasing sequence order.
    pub items: Vec<StoredMessage>,
}

impl Codec for Messages {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.last_seq);
        w.vec(&self.items, |w, m| m.encode(w));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            last_seq: r.u64("last_seq")?,
            items: r.vec(MAX_READ_MESSAGES, "items", StoredMessage::decode)?,
        })
    }
}

/// Answer to `ack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    /// The signer's acknowledgement cursor after the request.
    pub acked_seq: u64,
}

impl Codec for Acked {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.acked_seq);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            acked_seq: r.u64("acked_seq")?,
        })
    }
}

/// A key registered on a channel, as an admin sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyStatus {
    /// The key and its rights.
    pub grant: KeyGrant,
    /// Its acknowledgement cursor (meaningful for readers).
    pub acked_seq: u64,
}

impl Codec for KeyStatus {
    fn encode(&self, w: &mut Writer) {
        self.grant.encode(w);
        w.u64(self.acked_seq);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            grant: KeyGrant::decode(r)?,
            acked_seq: r.u64("acked_seq")?,
        })
    }
}

/// Answer to `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelStatus {
    /// Highest sequence number assigned (0 before the first message).
    pub last_seq: u64,
    /// Lowest sequence number still retained (0 when none is).
    pub first_seq: u64,
    /// Messages retained.
    pub message_count: u32,
    /// Payload bytes retained.
    pub message_bytes: u64,
    /// Bytes of blobs the channel owns.
    pub blob_bytes: u64,
    /// The signer's rights.
    pub rights: Rights,
    /// The signer's acknowledgement cursor.
    pub acked_seq: u64,
    /// When the channel expires unless used.
    pub expires_at_ms: u64,
    /// Message TTL in force.
    pub message_ttl_secs: u32,
    /// Channel idle TTL in force.
    pub channel_ttl_secs: u32,
    /// Every registered key; only for a signer with the admin right.
    pub keys: Option<Vec<KeyStatus>>,
}

impl Codec for ChannelStatus {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.last_seq);
        w.u64(self.first_seq);
        w.u32(self.message_count);
        w.u64(self.message_bytes);
        w.u64(self.blob_bytes);
        self.rights.encode(w);
        w.u64(self.acked_seq);
        w.u64(self.expires_at_ms);
        w.u32(self.message_ttl_secs);
        w.u32(self.channel_ttl_secs);
        w.optional(self.keys.as_ref(), |w, keys| {
            w.vec(keys, |w, k| k.encode(w));
        });
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            last_seq: r.u64("last_seq")?,
            first_seq: r.u64("first_seq")?,
            message_count: r.u32("message_count")?,
            message_bytes: r.u64("message_bytes")?,
            blob_bytes: r.u64("blob_bytes")?,
            rights: Rights::decode(r)?,
            acked_seq: r.u64("acked_seq")?,
            expires_at_ms: r.u64("expires_at_ms")?,
            message_ttl_secs: r.u32("message_ttl_secs")?,
            channel_ttl_secs: r.u32("channel_ttl_secs")?,
            keys: r.optional("keys", |r| {
                r.vec(MAX_STATUS_KEYS, "keys", KeyStatus::decode)
            })?,
        })
    }
}

/// Answer to `blob_create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobCreated {
    /// The new blob's id; the relay keeps only its hash, so this is the only
    /// time it is seen.
    pub blob_id: BlobId,
    /// When the blob expires.
    pub expires_at_ms: u64,
}

impl Codec for BlobCreated {
    fn encode(&self, w: &mut Writer) {
        self.blob_id.encode(w);
        w.u64(self.expires_at_ms);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            blob_id: BlobId::decode(r)?,
            expires_at_ms: r.u64("expires_at_ms")?,
        })
    }
}

/// Answer to `blob_get`.
#[derive(Clone, PartialEq, Eq)]
pub struct BlobChunk {
    /// How many chunks the blob has.
    pub chunk_count: u32,
    /// This chunk's bytes.
    pub data: Vec<u8>,
}

impl fmt::Debug for BlobChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobChunk")
            .field("chunk_count", &self.chunk_count)
            .field("data_len", &self.data.len())
            .finish()
    }
}

impl Codec for BlobChunk {
    fn encode(&self, w: &mut Writer) {
        w.u32(self.chunk_count);
        w.opaque(&self.data);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            chunk_count: r.u32("chunk_count")?,
            data: r.opaque(MAX_PAYLOAD, "data")?.to_vec(),
        })
    }
}

/// An error code. Unknown codes decode as themselves, so that a client can
/// report a newer relay's error without failing to decode it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u16);

macro_rules! error_codes {
    ($($(#[$m:meta])* $name:ident = $code:literal, $status:literal, $text:literal;)*) => {
        impl ErrorCode {
            $($(#[$m])* pub const $name: Self = Self($code);)*

            /// The HTTP status that carries this code.
            pub fn http_status(self) -> u16 {
                match self.0 {
                    $($code => $status,)*
                    _ => 500,
                }
            }

            /// The code's name in the spec.
            pub fn name(self) -> &'static str {
                match self.0 {
                    $($code => $text,)*
                    _ => "unknown",
                }
            }
        }
    };
}

error_codes! {
    /// The request could not be decoded, or its operation does not belong
    /// on this path.
    MALFORMED = 1, 400, "malformed";
    /// Unknown channel, unknown key, missing right, bad signature or bad
    /// creation token: deliberately indistinguishable.
    UNAUTHORIZED = 2, 401, "unauthorized";
    /// The request names another relay.
    WRONG_RELAY = 3, 421, "wrong_relay";
    /// The timestamp is outside the accepted window.
    STALE_TIMESTAMP = 4, 400, "stale_timestamp";
    /// The nonce was already used.
    REPLAYED = 5, 409, "replayed";
    /// The body is larger than the path allows.
    TOO_LARGE = 6, 413, "too_large";
    /// A payload or chunk length is not an allowed size.
    BAD_SIZE = 7, 422, "bad_size";
    /// The channel's message, byte, key or blob quota is full.
    QUOTA_EXCEEDED = 8, 507, "quota_exceeded";
    /// Too many requests from this address or key.
    RATE_LIMITED = 9, 429, "rate_limited";
    /// No such blob or chunk (also: expired, or already read once).
    NOT_FOUND = 10, 404, "not_found";
    /// The request conflicts with the current state.
    CONFLICT = 11, 409, "conflict";
    /// The relay is shutting down or overloaded; retry later.
    UNAVAILABLE = 12, 503, "unavailable";
    /// A fault in the relay.
    INTERNAL = 13, 500, "internal";
    /// A field is outside its allowed range.
    INVALID_ARGUMENT = 14, 422, "invalid_argument";
    /// The request's body did not arrive within the relay's body timeout.
    TIMEOUT = 15, 408, "timeout";
    /// The path does not take this HTTP method.
    METHOD_NOT_ALLOWED = 16, 405, "method_not_allowed";
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// What went wrong.
    pub code: ErrorCode,
    /// The relay's clock, so that a client can correct its own.
    pub server_time_ms: u64,
    /// Requests must carry a timestamp at or above this.
    pub min_timestamp_ms: u64,
    /// For `rate_limited` and `unavailable`: wait at least this long.
    pub retry_after_ms: u32,
    /// A human-readable explanation.
    pub message: String,
}

impl Codec for ErrorBody {
    fn encode(&self, w: &mut Writer) {
        w.u16(self.code.0);
        w.u64(self.server_time_ms);
        w.u64(self.min_timestamp_ms);
        w.u32(self.retry_after_ms);
        w.string(&self.message);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            code: ErrorCode(r.u16("code")?),
            server_time_ms: r.u64("server_time_ms")?,
            min_timestamp_ms: r.u64("min_timestamp_ms")?,
            retry_after_ms: r.u32("retry_after_ms")?,
            message: r.string(MAX_ERROR_MESSAGE, "message")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_map_to_statuses() {
        assert_eq!(ErrorCode::UNAUTHORIZED.http_status(), 401);
        assert_eq!(ErrorCode::QUOTA_EXCEEDED.http_status(), 507);
        assert_eq!(ErrorCode(999).http_status(), 500);
        assert_eq!(ErrorCode(999).name(), "unknown");
        assert_eq!(format!("{:?}", ErrorCode::REPLAYED), "replayed(5)");
    }

    #[test]
    fn unknown_error_code_round_trips() {
        let e = ErrorBody {
            code: ErrorCode(4242),
            server_time_ms: 1,
            min_timestamp_ms: 0,
            retry_after_ms: 0,
            message: "from the future".into(),
        };
        assert_eq!(ErrorBody::from_bytes(&e.to_bytes()), Ok(e));
    }
}
