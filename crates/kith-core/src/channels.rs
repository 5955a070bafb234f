//! Channels shared by every conversation type: a move or rotation
//! announced in a conversation (pair-v1.md §8, group-v1.md §11), and
//! which relay answers mean a channel is gone.

use kith_wire::conv::{ChannelGrant, ChannelMove};
use kith_wire::relay::response::ErrorCode;
use rusqlite::{Transaction, params};

use crate::error::{CoreError, Result};
use crate::store;
use crate::store::{ChannelRole, ChannelRow, ms};

/// Whether a relay error means the channel is gone for this key (deleted,
/// expired or revoked: relay.md §9 answers them alike).
pub(crate) fn gone(e: &CoreError) -> bool {
    matches!(e, CoreError::Relay(e)
        if matches!(e.code(), Some(ErrorCode::UNAUTHORIZED | ErrorCode::NOT_FOUND)))
}

/// A received `ChannelMove`, in the message's transaction: the new channel
/// becomes the one written to, the ones it retires are read until their
/// host deletes them. Only channels the sender hosts can be retired.
pub(crate) fn receive_move(
    tx: &Transaction<'_>,
    conv: &str,
    arrived_on: &ChannelRow,
    seq: u64,
    moved: &ChannelMove,
    now: u64,
    drain_limit_ms: u64,
) -> Result<()> {
    let key = match moved.key {
        Some(seed) => seed,
        // A group member keeps its own key (group-v1.md §11).
        None => store::channels_with_role(tx, conv, ChannelRole::Conv)?
            .into_iter()
            .next()
            .map_or(arrived_on.key.to_bytes(), |c| c.key.to_bytes()),
    };
    let grant = ChannelGrant {
        relay_url: moved.relay_url.clone(),
        relay_id: moved.relay_id,
        write_id: moved.write_id,
        read_id: moved.read_id,
        key,
    };
    let inserted = tx.execute(
        "INSERT OR IGNORE INTO channels (conversation_id, relay_url, relay_id, write_id, read_id, key, owner, preferred, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 1, ?7)",
        params![conv, grant.relay_url, grant.relay_id.0, grant.write_id.0, grant.read_id.0, grant.key, ms(now)],
    )?;
    if inserted == 0 {
        return Ok(());
    }
    let new_id = tx.last_insert_rowid();
    tx.execute(
        "UPDATE channels SET preferred = 0 WHERE conversation_id = ?1 AND id != ?2",
        params![conv, new_id],
    )?;
    let retire_after = ms(now.saturating_add(drain_limit_ms));
    for write_id in &moved.retire {
        tx.execute(
            "UPDATE channels SET role = 'retiring', retire_after = ?3, \
                 retire_seq = CASE WHEN id = ?4 THEN ?5 ELSE retire_seq END \
             WHERE conversation_id = ?1 AND write_id = ?2 AND owner = 0 AND role = 'conv'",
            params![conv, write_id.0, retire_after, arrived_on.id, ms(seq)],
        )?;
    }
    Ok(())
}
