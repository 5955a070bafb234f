//! The outbox: payloads queued in the transaction that made them, sent
//! by the runtime until a relay takes them.

use kith_crypto::padding::pad;
use kith_wire::Codec;
use kith_wire::conv::Envelope;
use kith_wire::relay::SIZE_BUCKETS;
use rusqlite::{Transaction, params};

use crate::error::Result;
use crate::ids::digest;
use crate::store::ms;

pub(crate) fn envelope_payload(envelope: &Envelope) -> Result<Vec<u8>> {
    Ok(pad(&envelope.to_bytes(), &SIZE_BUCKETS)?)
}

pub(crate) fn queue(tx: &Transaction<'_>, conv: &str, payload: &[u8], now: u64) -> Result<()> {
    queue_with(tx, conv, payload, &QueueOptions::default(), now)
}

/// How an outbox entry is sent.
#[derive(Debug, Default)]
pub(crate) struct QueueOptions {
    /// A commit must come back and be processed: do not mark it seen.
    pub(crate) commit_epoch: Option<u64>,
    /// Send to this channel only (a group link's inbox).
    pub(crate) channel: Option<i64>,
    /// A group's message or proposal: the epoch it was made in.
    pub(crate) epoch: Option<u64>,
    /// A group's message: its frame, to encrypt again in a later epoch.
    pub(crate) frame: Option<Vec<u8>>,
    /// A disappearing message: seconds the relay may keep it.
    pub(crate) ttl_secs: Option<u32>,
}

pub(crate) fn queue_with(
    tx: &Transaction<'_>,
    conv: &str,
    payload: &[u8],
    options: &QueueOptions,
    now: u64,
) -> Result<()> {
    tx.execute(
        "INSERT INTO outbox (conversation_id, payload, created_at, channel_id, commit_epoch, epoch, frame, ttl_secs) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            conv,
            payload,
            ms(now),
            options.channel,
            options.commit_epoch.map(ms),
            options.epoch.map(ms),
            options.frame,
            options.ttl_secs
        ],
    )?;
    if options.commit_epoch.is_none() {
        // Our own payloads come back when we read the channel: skip them there.
        tx.execute(
            "INSERT OR IGNORE INTO seen (conversation_id, digest) VALUES (?1, ?2)",
            params![conv, digest(payload)],
        )?;
    }
    Ok(())
}
