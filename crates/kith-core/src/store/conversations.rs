//! Conversation and channel rows.

use ed25519_dalek::SigningKey;
use kith_crypto::mls::{GroupSnapshot, IdentityKey};
use kith_wire::conv::ChannelGrant;
use rusqlite::{Connection, Transaction, params};

use crate::error::Result;
use crate::store::{ConversationState, ms, queue};
use crate::views::Notice;

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
    pub(crate) introduced_by: Option<&'a str>,
    /// The persona whose key `identity` is, if any.
    pub(crate) persona: Option<i64>,
    pub(crate) channels: &'a [PairChannel<'a>],
    /// Payloads to send first, in order (a Welcome, the profile).
    pub(crate) queued: &'a [Vec<u8>],
    pub(crate) at: u64,
}

/// One of a new conversation's channels, with the key this side uses.
pub(crate) struct PairChannel<'a> {
    pub(crate) grant: &'a ChannelGrant,
    pub(crate) key: [u8; 32],
    /// This side created it (and may delete it).
    pub(crate) owner: bool,
    /// This side sends on it.
    pub(crate) preferred: bool,
}

/// Stores a 1:1 conversation whose MLS group exists (accepted, or made by
/// an introduction): its row, its channels, and its first payloads queued.
pub(crate) fn start_pair(tx: &Transaction<'_>, pair: &NewPair<'_>) -> Result<()> {
    tx.execute(
        "INSERT INTO conversations (id, kind, state, contact_name, my_name, identity, mls_state, created_at, last_activity, introduced_by, persona_id) \
         VALUES (?1, 'pair', 'active', ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)",
        params![
            pair.id,
            pair.contact_name,
            pair.my_name,
            pair.identity.to_bytes().as_slice(),
            pair.snapshot.to_bytes().as_slice(),
            ms(pair.at),
            pair.introduced_by,
            pair.persona
        ],
    )?;
    for c in pair.channels {
        insert_channel(tx, pair.id, c.grant, &c.key, c.owner, c.preferred, pair.at)?;
    }
    for payload in pair.queued {
        queue(tx, pair.id, payload, pair.at)?;
    }
    Ok(())
}

pub(crate) fn contact_name(db: &Connection, id: &str) -> Result<String> {
    Ok(db
        .prepare_cached(
            "SELECT COALESCE(local_name, contact_name, 'contact') FROM conversations WHERE id = ?1",
        )?
        .query_row([id], |r| r.get(0))?)
}

/// Why this member is out of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupExit {
    /// A commit removed this member (its own leave, or an admin).
    Committed,
    /// The group's channel refuses this member (removed, or deleted).
    Refused,
}

/// Closes a group this member is out of, in `tx`, keeping its history:
/// what waits in the outbox for it can never be delivered and is dropped,
/// and the user is told once (group-v1.md §9). `None` if it was closed
/// already.
pub(crate) fn close_group(
    tx: &Transaction<'_>,
    conv: &str,
    exit: GroupExit,
) -> Result<Option<Notice>> {
    let (name, state): (String, ConversationState) = tx.query_row(
        "SELECT COALESCE(local_name, contact_name, 'a group'), state FROM conversations \
         WHERE id = ?1 AND kind = 'group'",
        [conv],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if state == ConversationState::Closed {
        return Ok(None);
    }
    let left = state == ConversationState::Leaving;
    let (reason, mut text) = match (left, exit) {
        (true, _) => ("you left", format!("you are out of {name}, as you asked")),
        (false, GroupExit::Committed) => (
            "an admin removed you",
            format!("you were removed from {name}"),
        ),
        (false, GroupExit::Refused) => (
            "the relay no longer lets you read this group",
            format!(
                "{name}: its relay no longer lets you in (you were removed, or the group was deleted)"
            ),
        ),
    };
    let undelivered: i64 = tx.query_row(
        "SELECT COUNT(*) FROM outbox WHERE conversation_id = ?1 AND frame IS NOT NULL",
        [conv],
        |r| r.get(0),
    )?;
    tx.execute(
        "UPDATE conversations SET state = 'closed', closed_reason = ?2 WHERE id = ?1",
        params![conv, reason],
    )?;
    tx.execute("DELETE FROM outbox WHERE conversation_id = ?1", [conv])?;
    tx.execute("DELETE FROM group_ops WHERE conversation_id = ?1", [conv])?;
    if undelivered > 0 {
        text.push_str(&format!(
            "; {undelivered} message(s) you sent could not be delivered and stay only here"
        ));
    }
    Ok(Some(Notice {
        conversation: conv.to_string(),
        text,
    }))
}
