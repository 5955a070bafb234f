//! Signed requests (`docs/spec/relay.md`, "Requests").
//!
//! ```text
//! SignedRequest = RequestBody || signature[64]
//! signature     = Ed25519(signer, REQUEST_SIGNATURE_CONTEXT || RequestBody)
//! ```
//!
//! A relay verifies the signature over the exact bytes it received, so
//! [`SignedRequest::split`] hands back the signed prefix together with the
//! decoded body.

use super::{
    BlobId, ChannelRef, KeyGrant, MAX_PAYLOAD, Nonce, PROTOCOL_VERSION, PublicKey, ReadId, RelayId,
    Signature, WriteId,
};
use crate::codec::{Codec, DecodeError, Reader, Writer};

/// Longest encoded `SignedRequest` (a full payload plus the envelope).
pub const MAX_SIGNED_REQUEST: u32 = MAX_PAYLOAD + 1_024;

/// Most keys a channel can be created with.
pub const MAX_CREATE_GRANTS: u32 = 64;
/// Longest channel-creation token.
pub const MAX_CREATE_TOKEN: u32 = 256;

/// `create_channel` (tag 1). The signer becomes the channel's owner with every
/// right; `grants` registers further keys in the same step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateChannel {
    /// Seconds an unacknowledged message is kept; 0 means the relay default.
    pub message_ttl_secs: u32,
    /// Seconds the channel lives without activity; 0 means the relay default.
    pub channel_ttl_secs: u32,
    /// Keys to register besides the owner's.
    pub grants: Vec<KeyGrant>,
    /// A token the relay's operator handed out, if it requires one.
    pub create_token: Vec<u8>,
}

/// `append` (tag 2): add one padded ciphertext to a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Append {
    /// The channel.
    pub write_id: WriteId,
    /// Opaque ciphertext; its length must be a size bucket.
    pub payload: Vec<u8>,
}

/// `append_after` (tag 13): `append`, only if the channel's last sequence
/// number is still `after_seq` (relay.md §5.2a). A group member sends with
/// it, so nothing it sends lands after a commit it has not processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendAfter {
    /// The channel.
    pub write_id: WriteId,
    /// The last sequence number the sender has read.
    pub after_seq: u64,
    /// Opaque ciphertext; its length must be a size bucket.
    pub payload: Vec<u8>,
}

/// `append_expiring` (tag 15): `append` (or, with `after_seq`,
/// `append_after`) of a message that the relay deletes `ttl_secs` after it
/// arrives, or sooner if the channel's message TTL is shorter (relay.md
/// §5.2b): how disappearing messages leave the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendExpiring {
    /// The channel.
    pub write_id: WriteId,
    /// Only if the channel's last sequence number is still this one.
    pub after_seq: Option<u64>,
    /// Seconds the relay keeps the message; at least 1.
    pub ttl_secs: u32,
    /// Opaque ciphertext; its length must be a size bucket.
    pub payload: Vec<u8>,
}

/// `read` (tag 3): messages after a cursor, optionally waiting (long-poll).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    /// The channel.
    pub read_id: ReadId,
    /// Return messages with a sequence number above this.
    pub after_seq: u64,
    /// At most this many messages (capped by the relay).
    pub max_messages: u16,
    /// If none is available, wait up to this long for one (capped).
    pub wait_ms: u32,
}

/// `ack` (tag 4): the signer has processed every message up to `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The channel.
    pub read_id: ReadId,
    /// The highest processed sequence number.
    pub seq: u64,
}

/// `add_key` (tag 5), admin only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddKey {
    /// The channel.
    pub write_id: WriteId,
    /// The key and its rights; replaces the rights of a key already present.
    pub grant: KeyGrant,
}

/// `revoke_key` (tag 6), admin only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevokeKey {
    /// The channel.
    pub write_id: WriteId,
    /// The key to remove.
    pub key: PublicKey,
}

/// `delete_channel` (tag 7), admin only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeleteChannel {
    /// The channel.
    pub write_id: WriteId,
}

/// `status` (tag 8): the channel's counters, as seen by the signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The channel, by either id.
    pub channel: ChannelRef,
}

/// `subscribe` (tag 9): only valid inside a WebSocket `Subscribe` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribe {
    /// The channel.
    pub read_id: ReadId,
    /// Push every message with a sequence number above this.
    pub after_seq: u64,
}

/// `blob_create` (tag 10): reserve a blob owned by a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobCreate {
    /// The owning channel.
    pub write_id: WriteId,
    /// Size of every chunk: a size bucket, and [`super::CHUNK_SIZE`] when
    /// `chunk_count > 1`.
    pub chunk_size: u32,
    /// Number of chunks, at least 1.
    pub chunk_count: u32,
    /// Seconds until the blob expires; 0 means the relay default.
    pub ttl_secs: u32,
    /// Deleted by the first successful fetch; single-chunk blobs only.
    pub read_once: bool,
    /// For a read-once blob, the key whose signature a fetch must carry to
    /// consume it ([`blob_claim_message`]); `None` for any other blob.
    pub claim_key: Option<PublicKey>,
}

/// `blob_put` (tag 11): upload one chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobPut {
    /// The owning channel.
    pub write_id: WriteId,
    /// The blob.
    pub blob_id: BlobId,
    /// Chunk index, below the blob's chunk count.
    pub index: u32,
    /// Exactly the blob's chunk size.
    pub data: Vec<u8>,
}

/// `blob_delete` (tag 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobDelete {
    /// The owning channel.
    pub write_id: WriteId,
    /// The blob.
    pub blob_id: BlobId,
}

/// `bind` (tag 14): binds the signer's key to this WebSocket connection,
/// so that later requests by it on the connection need no signature
/// (relay.md §8, "Bound keys"). Only valid in a WebSocket `Request` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bind;

/// What a signed request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Tag 1.
    CreateChannel(CreateChannel),
    /// Tag 2.
    Append(Append),
    /// Tag 3.
    Read(Read),
    /// Tag 4.
    Ack(Ack),
    /// Tag 5.
    AddKey(AddKey),
    /// Tag 6.
    RevokeKey(RevokeKey),
    /// Tag 7.
    DeleteChannel(DeleteChannel),
    /// Tag 8.
    Status(Status),
    /// Tag 9.
    Subscribe(Subscribe),
    /// Tag 10.
    BlobCreate(BlobCreate),
    /// Tag 11.
    BlobPut(BlobPut),
    /// Tag 12.
    BlobDelete(BlobDelete),
    /// Tag 13.
    AppendAfter(AppendAfter),
    /// Tag 14.
    Bind(Bind),
    /// Tag 15.
    AppendExpiring(AppendExpiring),
    /// Tag 16: a directory's operation (directory-v1.md §6), signed by a
    /// member key.
    Directory(crate::dir::DirectoryRequest),
}

impl Operation {
    /// The operation's tag on the wire.
    pub fn tag(&self) -> u8 {
        match self {
            Self::CreateChannel(_) => 1,
            Self::Append(_) => 2,
            Self::Read(_) => 3,
            Self::Ack(_) => 4,
            Self::AddKey(_) => 5,
            Self::RevokeKey(_) => 6,
            Self::DeleteChannel(_) => 7,
            Self::Status(_) => 8,
            Self::Subscribe(_) => 9,
            Self::BlobCreate(_) => 10,
            Self::BlobPut(_) => 11,
            Self::BlobDelete(_) => 12,
            Self::AppendAfter(_) => 13,
            Self::Bind(_) => 14,
            Self::AppendExpiring(_) => 15,
            Self::Directory(_) => 16,
        }
    }

    /// The HTTP path that carries this operation; `None` for `subscribe`
    /// and `bind`, which travel over the WebSocket only.
    pub fn path(&self) -> Option<&'static str> {
        Some(match self {
            Self::CreateChannel(_) => "/v1/channel/create",
            Self::Append(_) => "/v1/channel/append",
            Self::Read(_) => "/v1/channel/read",
            Self::Ack(_) => "/v1/channel/ack",
            Self::AddKey(_) => "/v1/channel/key/add",
            Self::RevokeKey(_) => "/v1/channel/key/revoke",
            Self::DeleteChannel(_) => "/v1/channel/delete",
            Self::Status(_) => "/v1/channel/status",
            Self::Subscribe(_) => return None,
            Self::BlobCreate(_) => "/v1/blob/create",
            Self::BlobPut(_) => "/v1/blob/put",
            Self::BlobDelete(_) => "/v1/blob/delete",
            Self::AppendAfter(_) => "/v1/channel/append-after",
            Self::Bind(_) => return None,
            Self::AppendExpiring(_) => "/v1/channel/append-expiring",
            Self::Directory(_) => "/v1/dir/request",
        })
    }
}

impl Codec for Operation {
    fn encode(&self, w: &mut Writer) {
        w.u8(self.tag());
        match self {
            Self::CreateChannel(op) => {
                w.u32(op.message_ttl_secs);
                w.u32(op.channel_ttl_secs);
                w.vec(&op.grants, |w, g| g.encode(w));
                w.opaque(&op.create_token);
            }
            Self::Append(op) => {
                op.write_id.encode(w);
                w.opaque(&op.payload);
            }
            Self::Read(op) => {
                op.read_id.encode(w);
                w.u64(op.after_seq);
                w.u16(op.max_messages);
                w.u32(op.wait_ms);
            }
            Self::Ack(op) => {
                op.read_id.encode(w);
                w.u64(op.seq);
            }
            Self::AddKey(op) => {
                op.write_id.encode(w);
                op.grant.encode(w);
            }
            Self::RevokeKey(op) => {
                op.write_id.encode(w);
                op.key.encode(w);
            }
            Self::DeleteChannel(op) => op.write_id.encode(w),
            Self::Status(op) => op.channel.encode(w),
            Self::Subscribe(op) => {
                op.read_id.encode(w);
                w.u64(op.after_seq);
            }
            Self::BlobCreate(op) => {
                op.write_id.encode(w);
                w.u32(op.chunk_size);
                w.u32(op.chunk_count);
                w.u32(op.ttl_secs);
                w.bool(op.read_once);
                w.opaque(op.claim_key.as_ref().map_or(&[][..], |k| &k.0[..]));
            }
            Self::BlobPut(op) => {
                op.write_id.encode(w);
                op.blob_id.encode(w);
                w.u32(op.index);
                w.opaque(&op.data);
            }
            Self::BlobDelete(op) => {
                op.write_id.encode(w);
                op.blob_id.encode(w);
            }
            Self::AppendAfter(op) => {
                op.write_id.encode(w);
                w.u64(op.after_seq);
                w.opaque(&op.payload);
            }
            Self::Bind(Bind) => {}
            Self::AppendExpiring(op) => {
                op.write_id.encode(w);
                w.optional(op.after_seq.as_ref(), |w, s| w.u64(*s));
                w.u32(op.ttl_secs);
                w.opaque(&op.payload);
            }
            Self::Directory(op) => op.encode(w),
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8("operation")? {
            1 => Self::CreateChannel(CreateChannel {
                message_ttl_secs: r.u32("message_ttl_secs")?,
                channel_ttl_secs: r.u32("channel_ttl_secs")?,
                grants: r.vec(MAX_CREATE_GRANTS, "grants", KeyGrant::decode)?,
                create_token: r.opaque(MAX_CREATE_TOKEN, "create_token")?.to_vec(),
            }),
            2 => Self::Append(Append {
                write_id: WriteId::decode(r)?,
                payload: r.opaque(MAX_PAYLOAD, "payload")?.to_vec(),
            }),
            3 => Self::Read(Read {
                read_id: ReadId::decode(r)?,
                after_seq: r.u64("after_seq")?,
                max_messages: r.u16("max_messages")?,
                wait_ms: r.u32("wait_ms")?,
            }),
            4 => Self::Ack(Ack {
                read_id: ReadId::decode(r)?,
                seq: r.u64("seq")?,
            }),
            5 => Self::AddKey(AddKey {
                write_id: WriteId::decode(r)?,
                grant: KeyGrant::decode(r)?,
            }),
            6 => Self::RevokeKey(RevokeKey {
                write_id: WriteId::decode(r)?,
                key: PublicKey::decode(r)?,
            }),
            7 => Self::DeleteChannel(DeleteChannel {
                write_id: WriteId::decode(r)?,
            }),
            8 => Self::Status(Status {
                channel: ChannelRef::decode(r)?,
            }),
            9 => Self::Subscribe(Subscribe {
                read_id: ReadId::decode(r)?,
                after_seq: r.u64("after_seq")?,
            }),
            10 => Self::BlobCreate(BlobCreate {
                write_id: WriteId::decode(r)?,
                chunk_size: r.u32("chunk_size")?,
                chunk_count: r.u32("chunk_count")?,
                ttl_secs: r.u32("ttl_secs")?,
                read_once: r.bool("read_once")?,
                claim_key: optional_fixed::<32>(r, "claim_key")?.map(PublicKey),
            }),
            11 => Self::BlobPut(BlobPut {
                write_id: WriteId::decode(r)?,
                blob_id: BlobId::decode(r)?,
                index: r.u32("index")?,
                data: r.opaque(MAX_PAYLOAD, "data")?.to_vec(),
            }),
            12 => Self::BlobDelete(BlobDelete {
                write_id: WriteId::decode(r)?,
                blob_id: BlobId::decode(r)?,
            }),
            13 => Self::AppendAfter(AppendAfter {
                write_id: WriteId::decode(r)?,
                after_seq: r.u64("after_seq")?,
                payload: r.opaque(MAX_PAYLOAD, "payload")?.to_vec(),
            }),
            14 => Self::Bind(Bind),
            15 => Self::AppendExpiring(AppendExpiring {
                write_id: WriteId::decode(r)?,
                after_seq: r.optional("after_seq", |r| r.u64("after_seq"))?,
                ttl_secs: match r.u32("ttl_secs")? {
                    0 => {
                        return Err(DecodeError::Invalid {
                            what: "ttl_secs",
                            reason: "a message that expires at once",
                        });
                    }
                    t => t,
                },
                payload: r.opaque(MAX_PAYLOAD, "payload")?.to_vec(),
            }),
            16 => Self::Directory(crate::dir::DirectoryRequest::decode(r)?),
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "operation",
                    tag,
                });
            }
        })
    }
}

/// The signed part of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBody {
    /// Always [`PROTOCOL_VERSION`].
    pub version: u8,
    /// The relay this request is meant for.
    pub relay_id: RelayId,
    /// The signer's clock, Unix milliseconds (corrected by the relay's
    /// `server_time_ms`).
    pub timestamp_ms: u64,
    /// Random; a relay refuses a nonce it has already accepted.
    pub nonce: Nonce,
    /// The key that signs; must be registered on the channel (the owner key
    /// for `create_channel`).
    pub signer: PublicKey,
    /// What is asked.
    pub op: Operation,
}

impl Codec for RequestBody {
    fn encode(&self, w: &mut Writer) {
        w.u8(self.version);
        self.relay_id.encode(w);
        w.u64(self.timestamp_ms);
        self.nonce.encode(w);
        self.signer.encode(w);
        self.op.encode(w);
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
            timestamp_ms: r.u64("timestamp_ms")?,
            nonce: Nonce::decode(r)?,
            signer: PublicKey::decode(r)?,
            op: Operation::decode(r)?,
        })
    }
}

/// Where a `SignedRequest`'s operation tag is: after the version, relay id,
/// timestamp, nonce and signer. A relay reads it before decoding, to apply
/// the operation's size limit first (relay.md §4.3).
pub const OP_TAG_OFFSET: usize = 1 + 32 + 8 + 16 + 32;

/// Whether the operation with this tag carries a payload (`append`,
/// `blob_put`, `append_after`), and so may be up to [`MAX_SIGNED_REQUEST`]
/// bytes; every other signed request is at most 8,192.
pub fn carries_payload(tag: u8) -> bool {
    matches!(tag, 2 | 11 | 13 | 15)
}

impl RequestBody {
    /// The exact bytes the signer signs: the context string, then the body.
    pub fn signed_message(encoded_body: &[u8]) -> Vec<u8> {
        let mut m = Vec::with_capacity(super::REQUEST_SIGNATURE_CONTEXT.len() + encoded_body.len());
        m.extend_from_slice(super::REQUEST_SIGNATURE_CONTEXT);
        m.extend_from_slice(encoded_body);
        m
    }
}

/// A request with its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The signed part.
    pub body: RequestBody,
    /// Ed25519 over [`RequestBody::signed_message`].
    pub signature: Signature,
}

impl SignedRequest {
    /// Splits received bytes into the decoded body, the exact encoded body
    /// that was signed, and the signature.
    pub fn split(bytes: &[u8]) -> Result<(RequestBody, &[u8], Signature), DecodeError> {
        let Some(body_len) = bytes.len().checked_sub(Signature::LEN) else {
            return Err(DecodeError::Truncated {
                what: "signed_request",
                at: bytes.len(),
                needed: Signature::LEN - bytes.len(),
            });
        };
        let (encoded_body, sig) = bytes.split_at(body_len);
        let body = RequestBody::from_bytes(encoded_body)?;
        let signature = Signature::from_bytes(sig)?;
        Ok((body, encoded_body, signature))
    }
}

impl Codec for SignedRequest {
    fn encode(&self, w: &mut Writer) {
        self.body.encode(w);
        self.signature.encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            body: RequestBody::decode(r)?,
            signature: Signature::decode(r)?,
        })
    }
}

/// `POST /v1/blob/get` (unsigned): the blob id is the capability; a
/// read-once blob is consumed only with a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobGet {
    /// The blob.
    pub blob_id: BlobId,
    /// Chunk index.
    pub index: u32,
    /// For a read-once blob: the signature of [`blob_claim_message`] by the
    /// blob's claim key.
    pub claim: Option<Signature>,
}

impl Codec for BlobGet {
    fn encode(&self, w: &mut Writer) {
        self.blob_id.encode(w);
        w.u32(self.index);
        w.opaque(self.claim.as_ref().map_or(&[][..], |s| &s.0[..]));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            blob_id: BlobId::decode(r)?,
            index: r.u32("index")?,
            claim: optional_fixed::<64>(r, "claim")?.map(Signature),
        })
    }
}

/// What the claim key of a read-once blob signs to consume it (relay.md
/// §5.2): the context string, 0x00, the relay's id and the blob's id.
pub fn blob_claim_message(relay_id: &RelayId, blob_id: &BlobId) -> Vec<u8> {
    let mut m = Vec::with_capacity(BLOB_CLAIM_CONTEXT.len() + 1 + 64);
    m.extend_from_slice(BLOB_CLAIM_CONTEXT);
    m.push(0);
    m.extend_from_slice(&relay_id.0);
    m.extend_from_slice(&blob_id.0);
    m
}

const BLOB_CLAIM_CONTEXT: &[u8] = b"kith relay blob claim v1";

/// `opaque field<0..N>` that is either empty or exactly `N` bytes.
fn optional_fixed<const N: usize>(
    r: &mut Reader<'_>,
    what: &'static str,
) -> Result<Option<[u8; N]>, DecodeError> {
    let bytes = r.opaque(N as u32, what)?;
    if bytes.is_empty() {
        return Ok(None);
    }
    <[u8; N]>::try_from(bytes)
        .map(Some)
        .map_err(|_| DecodeError::Invalid {
            what,
            reason: "neither empty nor of its fixed length",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(op: Operation) -> RequestBody {
        RequestBody {
            version: PROTOCOL_VERSION,
            relay_id: RelayId([1; 32]),
            timestamp_ms: 1_700_000_000_000,
            nonce: Nonce([2; 16]),
            signer: PublicKey([3; 32]),
            op,
        }
    }

    #[test]
    fn split_returns_the_signed_prefix() {
        let req = SignedRequest {
            body: body(Operation::DeleteChannel(DeleteChannel {
                write_id: WriteId([4; 32]),
            })),
            signature: Signature([5; 64]),
        };
        let bytes = req.to_bytes();
        let (decoded, signed, sig) = SignedRequest::split(&bytes).unwrap();
        assert_eq!(decoded, req.body);
        assert_eq!(signed, &req.body.to_bytes()[..]);
        assert_eq!(sig, req.signature);
    }

    #[test]
    fn the_operation_tag_is_where_a_relay_peeks_for_it() {
        let append = body(Operation::Append(Append {
            write_id: WriteId([4; 32]),
            payload: vec![0; 256],
        }))
        .to_bytes();
        let delete = body(Operation::DeleteChannel(DeleteChannel {
            write_id: WriteId([4; 32]),
        }))
        .to_bytes();
        assert_eq!(append.get(OP_TAG_OFFSET), Some(&2));
        assert_eq!(delete.get(OP_TAG_OFFSET), Some(&7));
        assert!(carries_payload(2) && !carries_payload(7));
    }

    #[test]
    fn other_versions_are_refused() {
        let mut bytes = body(Operation::DeleteChannel(DeleteChannel {
            write_id: WriteId([4; 32]),
        }))
        .to_bytes();
        bytes[0] = 2;
        assert_eq!(
            RequestBody::from_bytes(&bytes),
            Err(DecodeError::UnsupportedVersion {
                found: 2,
                supported: 1
            })
        );
    }

    #[test]
    fn oversized_payload_refused() {
        let mut w = Writer::new();
        w.u8(2);
        WriteId([0; 32]).encode(&mut w);
        w.u32(MAX_PAYLOAD + 1);
        assert!(matches!(
            Operation::from_bytes(&w.into_bytes()),
            Err(DecodeError::TooLong { .. })
        ));
    }

    #[test]
    fn short_input_is_truncated_not_a_panic() {
        assert!(SignedRequest::split(&[0; 10]).is_err());
    }
}
