//! Conversation and channel rows.

use ed25519_dalek::SigningKey;
use kith_crypto::mls::{GroupSnapshot, IdentityKey};
use kith_wire::conv::ChannelGrant;
use rusqlite::{Connection, params};

use crate::error::Result;
use crate::store::{ConversationState, ms};

/// A channel this user created on its relay: the owner key it keeps, and
/// the grant (channel and READ|WRITE key) it gives the contact.
pub(crate) struct SharedChannel {
    pub(crate) owner: SigningKey,
    pub(crate) grant: ChannelGrant,
}

pub(crate) fn insert_channel(
    db: &Connection,
    conv: &str,
    channel: &ChannelGrant,
    key: &[u8; 32],
    owner: bool,
    preferred: bool,
    now: u64,
) -> Result<()> {
    db.execute(
        "INSERT INTO channels (conversation_id, relay_url, relay_id, write_id, read_id, key, owner, preferred, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            conv,
            channel.relay_url,
            channel.relay_id.0,
            channel.write_id.0,
            channel.read_id.0,
            key,
            owner,
            preferred,
            ms(now)
        ],
    )?;
    Ok(())
}

/// A connected 1:1 conversation about to be stored.
pub(crate) struct NewPair<'a> {
    pub(crate) id: &'a str,
    /// The name the contact shows (from the invitation, or the introducer).
    pub(crate) contact_name: &'a str,
    pub(crate) my_name: &'a str,
    pub(crate) identity: &'a IdentityKey,
    pub(crate) snapshot: &'a GroupSnapshot,
    pub(crate) now: i64,
    pub(crate) introduced_by: Option<&'a str>,
}

/// Stores a 1:1 conversation whose MLS group exists (accepted, or made by
/// an introduction).
pub(crate) fn insert_active_pair(db: &Connection, pair: &NewPair<'_>) -> Result<()> {
    db.execute(
        "INSERT INTO conversations (id, kind, state, contact_name, my_name, identity, mls_state, created_at, last_activity, introduced_by) \
         VALUES (?1, 'pair', 'active', ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
        params![
            pair.id,
            pair.contact_name,
            pair.my_name,
            pair.identity.to_bytes().as_slice(),
            pair.snapshot.to_bytes().as_slice(),
            pair.now,
            pair.introduced_by
        ],
    )?;
    Ok(())
}

pub(crate) fn contact_name(db: &Connection, id: &str) -> Result<String> {
    Ok(db
        .prepare_cached(
            "SELECT COALESCE(local_name, contact_name, 'contact') FROM conversations WHERE id = ?1",
        )?
        .query_row([id], |r| r.get(0))?)
}

/// What opening a conversation's message needs from its row, read once.
pub(crate) struct OpenRow {
    pub(crate) state: ConversationState,
    pub(crate) pending: Option<Vec<u8>>,
    pub(crate) identity: IdentityKey,
    pub(crate) mls_state: Option<Vec<u8>>,
}
