//! Where a relay keeps channels and blobs.
//!
//! [`Store`] is the boundary between the protocol (which authenticates and
//! validates requests) and a storage engine. Its contract, which every
//! implementation must keep and `tests/store.rs` checks:
//!
//! - **Durable answers.** A method that changes state returns only after the
//!   change is committed to stable storage.
//! - **Authorization inside the store.** Every channel operation names the
//!   channel and the signing key; the store checks the key's rights in the
//!   same transaction as the change, and answers [`StoreError::Unauthorized`]
//!   alike for an unknown channel, an unknown key and a missing right.
//! - **Events in commit order.** After a commit the store hands the
//!   [`EventSink`] what changed (new messages, revoked keys, closed
//!   channels), in the order the changes were committed.
//!
//! `SqliteStore` is the embedded default; `PostgresStore` lets several
//! relay processes share one database.

mod directory;
mod postgres;
mod sqlite;

pub use directory::{
    Admission, DirectoryRow, DirectorySummary, EntryChange, MemberRow, NewDirectory, Search,
    SigningKeyRow,
};

pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::{SqliteOptions, SqliteStore, backup_sqlite};

use async_trait::async_trait;
use kith_wire::dir::Entry;
use kith_wire::relay::request::BlobCreate;
use kith_wire::relay::response::{
    Acked, Appended, BlobChunk, BlobCreated, ChannelCreated, ChannelStatus, KeyStatus, Messages,
    StoredMessage,
};
use kith_wire::relay::{BlobId, ChannelRef, KeyGrant, PublicKey, ReadId, RelayId, Rights, WriteId};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use thiserror::Error;

/// A store's internal name for a channel; never sent on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelKey(pub i64);

/// Quotas a store enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Most messages retained per channel.
    pub max_channel_messages: u32,
    /// Most payload bytes retained per channel.
    pub max_channel_bytes: u64,
    /// Most blob bytes per channel.
    pub max_channel_blob_bytes: u64,
    /// Most keys per channel.
    pub max_channel_keys: u32,
    /// Most chunks per blob.
    pub max_blob_chunks: u32,
}

/// A new channel, validated by the protocol layer.
#[derive(Debug, Clone)]
pub struct NewChannel {
    /// The owner's key; registered with every right.
    pub owner: PublicKey,
    /// Further keys.
    pub grants: Vec<KeyGrant>,
    /// Message TTL in milliseconds.
    pub message_ttl_ms: u64,
    /// Channel idle TTL in milliseconds.
    pub channel_ttl_ms: u64,
    /// The relay's clock.
    pub now_ms: u64,
}

/// A blob to reserve, validated by the protocol layer.
#[derive(Debug, Clone, Copy)]
pub struct NewBlob {
    /// The request, with `ttl_secs` already resolved to a non-zero value.
    pub spec: BlobCreate,
    /// The signer, who needs the write right on the channel.
    pub key: PublicKey,
    /// The relay's clock.
    pub now_ms: u64,
}

/// A page of messages and the channel they came from.
#[derive(Debug, Clone)]
pub struct ReadPage {
    /// The channel.
    pub channel: ChannelKey,
    /// The messages.
    pub messages: Messages,
}

/// What a store reports after a commit.
#[derive(Debug, Clone)]
pub enum StoreEvent {
    /// A message was appended.
    Appended {
        /// The channel.
        channel: ChannelKey,
        /// The message.
        message: Arc<StoredMessage>,
    },
    /// A key lost its read right (revoked, or re-granted without it).
    ReaderRemoved {
        /// The channel.
        channel: ChannelKey,
        /// The key.
        key: PublicKey,
    },
    /// The channel was deleted or expired.
    ChannelClosed {
        /// The channel.
        channel: ChannelKey,
    },
}

/// Receives a store's events, right after each commit.
pub trait EventSink: Send + Sync + 'static {
    /// Called with the events of one commit, in order. Must not block.
    fn publish(&self, events: &[StoreEvent]);

    /// Events may have been missed (a store shared with other processes
    /// lost its notification connection): every subscriber should re-read
    /// from the store.
    fn resync(&self) {}

    /// Called after each commit with the number of writes it carried and
    /// how long the transaction took, sync included (for metrics).
    fn committed(&self, _writes: usize, _took: std::time::Duration) {}
}

/// What a periodic sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// Expired channels deleted.
    pub channels: u64,
    /// Expired messages deleted.
    pub messages: u64,
    /// Expired blobs deleted.
    pub blobs: u64,
}

/// Totals for operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Live channels.
    pub channels: u64,
    /// Retained messages.
    pub messages: u64,
    /// Retained payload bytes.
    pub message_bytes: u64,
    /// Blobs.
    pub blobs: u64,
    /// Reserved blob bytes.
    pub blob_bytes: u64,
}

/// Why a store refused or failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Unknown or expired channel, unknown key, or a missing right.
    #[error("unauthorized")]
    Unauthorized,
    /// A quota is full.
    #[error("{0} quota exceeded")]
    QuotaExceeded(&'static str),
    /// No such blob or chunk.
    #[error("not found")]
    NotFound,
    /// The request conflicts with current state.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// A field is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The store is closing.
    #[error("the store is shutting down")]
    Closed,
    /// The engine failed.
    #[error("storage engine: {0}")]
    Engine(String),
    /// Stored data is not what this version expects.
    #[error("stored data is invalid: {0}")]
    Corrupt(&'static str),
}

/// A relay's storage. See the module documentation for the contract.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// The relay's identity, created with the store.
    fn relay_id(&self) -> RelayId;

    /// Creates a channel with fresh random ids.
    async fn create_channel(&self, new: NewChannel) -> Result<ChannelCreated, StoreError>;

    /// Appends a message; `key` needs the write right. With `after_seq`,
    /// only if the channel's last sequence number is that one, else
    /// [`StoreError::Conflict`] and nothing changes.
    async fn append(
        &self,
        write_id: WriteId,
        key: PublicKey,
        payload: Vec<u8>,
        after_seq: Option<u64>,
        now_ms: u64,
    ) -> Result<Appended, StoreError> {
        self.append_expiring(write_id, key, payload, after_seq, None, now_ms)
            .await
    }

    /// [`Store::append`] of a message kept `ttl_ms` at most (relay.md
    /// §5.2b); `None` keeps it the channel's message TTL.
    async fn append_expiring(
        &self,
        write_id: WriteId,
        key: PublicKey,
        payload: Vec<u8>,
        after_seq: Option<u64>,
        ttl_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<Appended, StoreError> {
        Ok(self
            .append_as(write_id, key, payload, after_seq, ttl_ms, now_ms)
            .await?
            .0)
    }

    /// [`Store::append_expiring`], answering the signer's rights too: a
    /// key that may write but not read is a contact address's (its
    /// appends are limited per source, address-v1.md §5).
    async fn append_as(
        &self,
        write_id: WriteId,
        key: PublicKey,
        payload: Vec<u8>,
        after_seq: Option<u64>,
        ttl_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<(Appended, Rights), StoreError>;

    /// Messages after `after_seq`, at most `max_messages` and (beyond the
    /// first) `max_bytes` of payload; `key` needs the read right.
    async fn read(
        &self,
        read_id: ReadId,
        key: PublicKey,
        after_seq: u64,
        max_messages: u16,
        max_bytes: u32,
        now_ms: u64,
    ) -> Result<ReadPage, StoreError>;

    /// Moves `key`'s acknowledgement cursor forward and drops messages every
    /// reader has acknowledged.
    async fn ack(
        &self,
        read_id: ReadId,
        key: PublicKey,
        seq: u64,
        now_ms: u64,
    ) -> Result<Acked, StoreError>;

    /// Registers `grant` (or replaces its rights); `admin` needs the admin
    /// right.
    async fn add_key(
        &self,
        write_id: WriteId,
        admin: PublicKey,
        grant: KeyGrant,
        now_ms: u64,
    ) -> Result<(), StoreError>;

    /// Removes `key`; refuses to remove the last admin key.
    async fn revoke_key(
        &self,
        write_id: WriteId,
        admin: PublicKey,
        key: PublicKey,
        now_ms: u64,
    ) -> Result<(), StoreError>;

    /// Deletes the channel, its messages, keys and blobs.
    async fn delete_channel(
        &self,
        write_id: WriteId,
        admin: PublicKey,
        now_ms: u64,
    ) -> Result<(), StoreError>;

    /// The channel's status as `key` may see it (any right).
    async fn status(
        &self,
        channel: ChannelRef,
        key: PublicKey,
        now_ms: u64,
    ) -> Result<ChannelStatus, StoreError>;

    /// Checks that `key` may read the channel, for a subscription.
    async fn authorize_reader(
        &self,
        read_id: ReadId,
        key: PublicKey,
        now_ms: u64,
    ) -> Result<(ChannelKey, u64), StoreError>;

    /// Reserves a blob owned by a channel.
    async fn blob_create(&self, new: NewBlob) -> Result<BlobCreated, StoreError>;

    /// Stores one chunk; putting the same bytes again succeeds.
    async fn blob_put(
        &self,
        write_id: WriteId,
        key: PublicKey,
        blob_id: BlobId,
        index: u32,
        data: Vec<u8>,
        now_ms: u64,
    ) -> Result<(), StoreError>;

    /// Fetches one chunk; a read-once blob is deleted in the same step, so
    /// that exactly one of several concurrent fetches succeeds.
    async fn blob_get(
        &self,
        blob_id: BlobId,
        index: u32,
        claim: BlobClaim,
        now_ms: u64,
    ) -> Result<BlobChunk, StoreError>;

    /// Deletes a blob of the channel.
    async fn blob_delete(
        &self,
        write_id: WriteId,
        key: PublicKey,
        blob_id: BlobId,
        now_ms: u64,
    ) -> Result<(), StoreError>;

    /// Records a request nonce until `expires_at_ms`; `false` if it is
    /// already recorded (a replay). Used where several processes serve one
    /// relay (PostgreSQL, CGI), so that a replay is refused whichever
    /// process receives it; a single process remembers nonces in memory.
    async fn remember_nonce(&self, nonce: [u8; 16], expires_at_ms: u64)
    -> Result<bool, StoreError>;

    /// Deletes what has expired.
    async fn sweep(&self, now_ms: u64) -> Result<SweepStats, StoreError>;

    /// Totals.
    async fn stats(&self) -> Result<StoreStats, StoreError>;

    /// Creates a directory; [`StoreError::Conflict`] if the name is taken.
    async fn dir_create(&self, new: NewDirectory) -> Result<(), StoreError>;

    /// A directory with its secrets, its signing keys valid at or after
    /// `now_ms` and its revocation list.
    async fn dir_load(&self, name: &str, now_ms: u64) -> Result<Option<DirectoryRow>, StoreError>;

    /// Adds a signing key (rotation).
    async fn dir_add_key(&self, name: &str, key: SigningKeyRow) -> Result<(), StoreError>;

    /// Records a one-time enrolment, by the hash of its secret; answers the
    /// admission's number.
    async fn dir_admit(
        &self,
        name: &str,
        secret_hash: [u8; 32],
        admission: Admission,
        now_ms: u64,
    ) -> Result<u64, StoreError>;

    /// Uses an enrolment for `member`, once: [`StoreError::Unauthorized`]
    /// for an unknown, used, removed or expired one, or a key that is
    /// already a member.
    async fn dir_enrol(
        &self,
        name: &str,
        secret_hash: [u8; 32],
        member: [u8; 32],
        now_ms: u64,
    ) -> Result<Admission, StoreError>;

    /// `member`'s admission, if it is enrolled, not removed and valid at
    /// `now_ms`.
    async fn dir_member(
        &self,
        name: &str,
        member: [u8; 32],
        now_ms: u64,
    ) -> Result<Option<Admission>, StoreError>;

    /// Sets or removes `member`'s entry.
    async fn dir_publish(
        &self,
        name: &str,
        member: [u8; 32],
        entry: EntryChange,
        now_ms: u64,
    ) -> Result<(), StoreError>;

    /// Removes `member`'s entry and marks its admission removed.
    async fn dir_leave(&self, name: &str, member: [u8; 32], now_ms: u64) -> Result<(), StoreError>;

    /// Removes the admission numbered `id` (and its entry); `false` if
    /// there is none.
    async fn dir_remove(&self, name: &str, id: u64, now_ms: u64) -> Result<bool, StoreError>;

    /// Entries matching a search, newest first.
    async fn dir_search(&self, search: Search) -> Result<Vec<Entry>, StoreError>;

    /// A directory's admissions, for its operator.
    async fn dir_members(&self, name: &str) -> Result<Vec<MemberRow>, StoreError>;

    /// Every directory, for the operator.
    async fn dir_list(&self) -> Result<Vec<DirectorySummary>, StoreError>;

    /// Finishes pending writes and releases the engine.
    async fn close(&self);
}

/// Domain separation for the stored hash of a blob id.
const BLOB_ID_HASH_CONTEXT: &[u8] = b"kith relay blob id v1\0";

pub(crate) fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::InvalidArgument("value out of range"))
}

/// An admission from its columns (statement, valid_from, valid_until).
pub(crate) fn admission_from(
    (statement, from, until): (String, i64, i64),
) -> Result<Admission, StoreError> {
    Ok(Admission {
        statement,
        valid_from_ms: to_u64(from)?,
        valid_until_ms: to_u64(until)?,
    })
}

/// A stored key or signature of a fixed length.
pub(crate) fn fixed<const N: usize>(bytes: Vec<u8>) -> Result<[u8; N], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("a stored key of the wrong length"))
}

/// A signing key from its columns (key, secret, valid_from, valid_until,
/// root_signature).
pub(crate) fn signing_key_row(
    (key, secret, from, until, signature): (Vec<u8>, Vec<u8>, i64, i64, Vec<u8>),
) -> Result<SigningKeyRow, StoreError> {
    Ok(SigningKeyRow {
        secret: zeroize::Zeroizing::new(fixed(secret)?),
        key: kith_wire::dir::DirectoryKey {
            key: fixed(key)?,
            valid_from_ms: to_u64(from)?,
            valid_until_ms: to_u64(until)?,
            root_signature: fixed(signature)?,
        },
    })
}

pub(crate) fn to_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt("negative counter"))
}

pub(crate) fn random_32() -> Result<[u8; 32], StoreError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| StoreError::Engine(format!("randomness: {e}")))?;
    Ok(b)
}

/// What a store keeps instead of a blob id: finding a blob needs the id,
/// and the database alone does not give it away.
pub(crate) fn blob_hash(id: &BlobId) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(BLOB_ID_HASH_CONTEXT);
    h.update(id.0);
    h.finalize().into()
}

/// A new channel's keys: the owner with every right, then the grants
/// (rights of repeated keys OR-ed), within the key quota.
pub(crate) fn channel_grants(
    new: &NewChannel,
    quotas: &Quotas,
) -> Result<Vec<KeyGrant>, StoreError> {
    let mut grants: Vec<KeyGrant> = Vec::with_capacity(new.grants.len() + 1);
    grants.push(KeyGrant {
        key: new.owner,
        rights: Rights::ALL,
    });
    for g in &new.grants {
        match grants.iter_mut().find(|e| e.key == g.key) {
            Some(existing) => existing.rights = existing.rights | g.rights,
            None => grants.push(*g),
        }
    }
    if grants.len() > quotas.max_channel_keys as usize {
        return Err(StoreError::QuotaExceeded("keys"));
    }
    Ok(grants)
}

/// Whether a used channel's expiry should be pushed forward: only once half
/// its idle TTL has passed, so that a busy channel does not rewrite its row
/// on every request.
pub(crate) fn touch_due(expires_at: u64, channel_ttl_ms: u64, now_ms: u64) -> bool {
    expires_at.saturating_sub(now_ms) < channel_ttl_ms / 2
}

/// What both stores select to authorize a request: the channel row joined
/// with the signer's key row (aliases `c` and `k`).
/// `append_after`'s condition (relay.md §5.2a), checked after the rights
/// (a stranger learns nothing about the channel's head).
pub(crate) fn check_head(last_seq: u64, after_seq: Option<u64>) -> Result<(), StoreError> {
    match after_seq {
        Some(after) if after != last_seq => Err(StoreError::Conflict(
            "the channel has messages after after_seq: read them first",
        )),
        _ => Ok(()),
    }
}

pub(crate) const AUTH_COLUMNS: &str = "c.id, k.rights, k.acked_seq, c.last_seq, c.message_count, \
    c.message_bytes, c.blob_bytes, c.key_count, c.message_ttl_ms, c.channel_ttl_ms, c.expires_at";

/// A channel row joined with the signer's key row ([`AUTH_COLUMNS`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Authorized {
    pub(crate) id: i64,
    pub(crate) rights: Rights,
    pub(crate) acked_seq: u64,
    pub(crate) last_seq: u64,
    pub(crate) message_count: u64,
    pub(crate) message_bytes: u64,
    pub(crate) blob_bytes: u64,
    pub(crate) key_count: u64,
    pub(crate) message_ttl_ms: u64,
    pub(crate) channel_ttl_ms: u64,
    pub(crate) expires_at: u64,
}

impl Authorized {
    /// From the [`AUTH_COLUMNS`] of a row: the channel id, the key's rights
    /// and the nine counters in order. A missing right is
    /// [`StoreError::Unauthorized`], like an unknown channel or key.
    pub(crate) fn from_columns(
        id: i64,
        rights_bits: i64,
        counters: [i64; 9],
        need: Rights,
    ) -> Result<Self, StoreError> {
        let rights = rights_from(rights_bits)?;
        if !rights.contains(need) {
            return Err(StoreError::Unauthorized);
        }
        let [acked, last, count, bytes, blob, keys, mttl, cttl, exp] = counters.map(to_u64);
        Ok(Self {
            id,
            rights,
            acked_seq: acked?,
            last_seq: last?,
            message_count: count?,
            message_bytes: bytes?,
            blob_bytes: blob?,
            key_count: keys?,
            message_ttl_ms: mttl?,
            channel_ttl_ms: cttl?,
            expires_at: exp?,
        })
    }

    /// Whether this use should push the channel's expiry forward.
    pub(crate) fn touch_due(&self, now_ms: u64) -> bool {
        touch_due(self.expires_at, self.channel_ttl_ms, now_ms)
    }

    /// The channel's status at `now_ms`: its unexpired messages (expired
    /// ones are gone for every purpose, swept or not), (for an admin) its
    /// keys, and the expiry this request pushes it to if it is due.
    pub(crate) fn status(
        &self,
        live: LiveMessages,
        keys: Option<Vec<KeyStatus>>,
        now_ms: u64,
    ) -> Result<ChannelStatus, StoreError> {
        Ok(ChannelStatus {
            last_seq: self.last_seq,
            first_seq: live.first_seq.map(to_u64).transpose()?.unwrap_or(0),
            message_count: u32::try_from(live.count).unwrap_or(u32::MAX),
            message_bytes: to_u64(live.bytes)?,
            blob_bytes: self.blob_bytes,
            rights: self.rights,
            acked_seq: self.acked_seq,
            expires_at_ms: if self.touch_due(now_ms) {
                now_ms.saturating_add(self.channel_ttl_ms)
            } else {
                self.expires_at
            },
            message_ttl_secs: secs(self.message_ttl_ms),
            channel_ttl_secs: secs(self.channel_ttl_ms),
            keys,
        })
    }
}

/// A fetch's proof that it may consume a read-once blob (relay.md §5.2):
/// the claim message for this relay and blob, and the signature it carries.
#[derive(Debug, Clone)]
pub struct BlobClaim {
    pub message: Vec<u8>,
    pub signature: Option<kith_wire::relay::Signature>,
}

impl BlobClaim {
    /// Whether this fetch may consume `blob`: a read-once blob with a claim
    /// key needs a valid signature by it (`unauthorized` otherwise, and the
    /// blob stays). Blobs made before claims existed need none.
    pub(crate) fn allows(&self, blob: &BlobRow) -> Result<(), StoreError> {
        let Some(key) = blob.claim_key.as_deref() else {
            return Ok(());
        };
        let key = <[u8; 32]>::try_from(key)
            .ok()
            .and_then(|k| ed25519_dalek::VerifyingKey::from_bytes(&k).ok())
            .ok_or(StoreError::Corrupt("claim key"))?;
        let signature = self.signature.ok_or(StoreError::Unauthorized)?;
        key.verify_strict(
            &self.message,
            &ed25519_dalek::Signature::from_bytes(&signature.0),
        )
        .map_err(|_| StoreError::Unauthorized)
    }
}

/// A channel's unexpired messages, as `status` reports them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LiveMessages {
    pub(crate) first_seq: Option<i64>,
    pub(crate) count: i64,
    pub(crate) bytes: i64,
}

/// Selects [`LiveMessages`] for `channel_id = $1/?1` at `expires_at > $2/?2`.
pub(crate) const LIVE_MESSAGES: &str = "SELECT MIN(seq), COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) \
     FROM messages WHERE channel_id = $1 AND expires_at > $2";

/// Rights as stored (bit 0 read, 1 write, 2 admin).
pub(crate) fn rights_from(bits: i64) -> Result<Rights, StoreError> {
    u8::try_from(bits)
        .ok()
        .and_then(Rights::from_bits)
        .ok_or(StoreError::Corrupt("rights"))
}

fn secs(ms: u64) -> u32 {
    u32::try_from(ms / 1000).unwrap_or(u32::MAX)
}

/// The answer to `create_channel` once the row is in.
pub(crate) fn channel_created(
    new: &NewChannel,
    write_id: [u8; 32],
    read_id: [u8; 32],
) -> ChannelCreated {
    ChannelCreated {
        write_id: WriteId(write_id),
        read_id: ReadId(read_id),
        message_ttl_secs: secs(new.message_ttl_ms),
        channel_ttl_secs: secs(new.channel_ttl_ms),
        expires_at_ms: new.now_ms.saturating_add(new.channel_ttl_ms),
    }
}

/// A read's page: messages in order, at most `max_bytes` of payload after
/// the first.
pub(crate) fn page(
    rows: impl IntoIterator<Item = Result<StoredMessage, StoreError>>,
    max_bytes: u32,
) -> Result<Vec<StoredMessage>, StoreError> {
    let mut items = Vec::new();
    let mut total = 0u64;
    for row in rows {
        let message = row?;
        total += message.payload.len() as u64;
        if !items.is_empty() && total > u64::from(max_bytes) {
            break;
        }
        items.push(message);
    }
    Ok(items)
}

/// A blob as both stores keep it.
pub(crate) struct BlobRow {
    pub(crate) id: i64,
    pub(crate) channel_id: i64,
    pub(crate) chunk_size: u32,
    pub(crate) chunk_count: u32,
    pub(crate) read_once: bool,
    /// The key that must sign a fetch that consumes this read-once blob.
    pub(crate) claim_key: Option<Vec<u8>>,
    /// The chunks' bytes are in a file beside the database (SQLite), not
    /// in it.
    pub(crate) in_file: bool,
}

impl BlobRow {
    /// Checks a chunk put at `index` with `len` bytes (relay.md §5.2).
    pub(crate) fn check_chunk(&self, index: u32, len: usize) -> Result<(), StoreError> {
        if index >= self.chunk_count {
            return Err(StoreError::InvalidArgument("chunk index beyond the blob"));
        }
        if len != self.chunk_size as usize {
            return Err(StoreError::InvalidArgument(
                "a chunk must be exactly the blob's chunk size",
            ));
        }
        Ok(())
    }

    /// The bytes the blob reserves on its channel.
    pub(crate) fn reserved_bytes(&self) -> i64 {
        i64::from(self.chunk_size) * i64::from(self.chunk_count)
    }
}

/// One row of a channel's key list, as stored.
pub(crate) fn key_status(
    key: &[u8],
    rights_bits: i64,
    acked_seq: i64,
) -> Result<KeyStatus, StoreError> {
    Ok(KeyStatus {
        grant: KeyGrant {
            key: PublicKey(
                key.try_into()
                    .map_err(|_| StoreError::Corrupt("key length"))?,
            ),
            rights: rights_from(rights_bits)?,
        },
        acked_seq: to_u64(acked_seq)?,
    })
}
