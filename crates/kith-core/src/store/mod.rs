//! The profile's SQLite file, its one writer: opening, migrations, typed
//! rows (kinds, states and roles as enums, never strings built into SQL);
//! one submodule per kind of row.

use std::path::Path;

use ed25519_dalek::SigningKey;
use kith_wire::relay::{ReadId, RelayId, WriteId};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::{CoreError, Result};

mod conversations;
mod messages;
mod outbox;
mod sessions;

pub(crate) use conversations::*;
pub(crate) use messages::*;
pub(crate) use outbox::*;
pub(crate) use sessions::*;

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_groups.sql"),
    include_str!("../../migrations/0003_relationships.sql"),
    include_str!("../../migrations/0004_engine.sql"),
    include_str!("../../migrations/0005_state_version.sql"),
    include_str!("../../migrations/0006_large_groups.sql"),
    include_str!("../../migrations/0007_channels_by_role.sql"),
    include_str!("../../migrations/0008_content.sql"),
    include_str!("../../migrations/0009_replies_reactions.sql"),
    include_str!("../../migrations/0010_edits.sql"),
    include_str!("../../migrations/0011_pending_changes.sql"),
    include_str!("../../migrations/0012_kinds.sql"),
    include_str!("../../migrations/0013_files.sql"),
    include_str!("../../migrations/0014_file_copies.sql"),
    include_str!("../../migrations/0015_auto_download.sql"),
    include_str!("../../migrations/0016_events.sql"),
    include_str!("../../migrations/0017_addresses.sql"),
    include_str!("../../migrations/0018_personas.sql"),
    include_str!("../../migrations/0019_directories.sql"),
];

pub(crate) fn open(path: &Path) -> Result<Connection> {
    let mut db = Connection::open(path)?;
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "FULL")?;
    db.pragma_update(None, "foreign_keys", true)?;
    // Deleted rows (used key packages, retired channels, deleted
    // conversations) are overwritten, not left in free pages.
    db.pragma_update(None, "secure_delete", true)?;
    db.busy_timeout(std::time::Duration::from_secs(10))?;
    // Every transaction takes the write lock when it begins, so a read made
    // inside it (MLS state, say) cannot be overtaken by another writer
    // before the write that depends on it.
    db.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    migrate(&mut db)?;
    Ok(db)
}

fn migrate(db: &mut Connection) -> Result<()> {
    let tx = db.transaction()?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if version > known {
        return Err(CoreError::Corrupt(format!(
            "the store is from a newer kith (schema {version}, this one knows {known})"
        )));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        tx.execute_batch(sql)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )?;
    }
    tx.commit()?;
    Ok(())
}

#[derive(Debug, Clone)]
pub(crate) struct Profile {
    pub(crate) name: String,
    pub(crate) relay_url: Option<String>,
}

impl Profile {
    /// The relay that hosts something new: `relay` if given, else the
    /// profile's.
    pub(crate) fn host(&self, relay: Option<&str>) -> Result<String> {
        relay
            .or(self.relay_url.as_deref())
            .map(str::to_string)
            .ok_or(CoreError::NoRelay)
    }
}

/// `text` for a `LIKE ?1 || '%' ESCAPE '\'` prefix match: its own `\`,
/// `%` and `_` match only themselves.
pub(crate) fn like_prefix(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub(crate) fn profile(db: &Connection) -> Result<Option<Profile>> {
    Ok(db
        .query_row(
            "SELECT name, relay_url FROM profile WHERE id = 1",
            [],
            |r| {
                Ok(Profile {
                    name: r.get(0)?,
                    relay_url: r.get(1)?,
                })
            },
        )
        .optional()?)
}

/// Defines a unit enum stored as fixed text in one column, with its SQL
/// conversions: an unknown text is an error, never a default.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub(crate) fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                match value.as_str()? {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(rusqlite::types::FromSqlError::InvalidType),
                }
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }
    };
}

text_enum! {
    /// A conversation's type (`conversations.kind`).
    ConversationKind {
        /// PairV1 (started by InboxV1 or IntroductionV1).
        Pair = "pair",
        /// GroupV1.
        Group = "group",
        /// A contact address of this user's (AddressV1): never listed.
        Address = "address",
    }
}

text_enum! {
    /// Where a conversation is in its life (`conversations.state`).
    ConversationState {
        /// An invitation made, not yet accepted.
        Invited = "invited",
        /// A group link accepted, waiting for an admin's Welcome.
        Joining = "joining",
        Active = "active",
        /// Left a group; waiting for the commit that takes this member out.
        Leaving = "leaving",
        /// Left or removed from a group: read no more, history kept.
        Closed = "closed",
    }
}

text_enum! {
    /// A change a group member waits to commit (`group_ops.kind`).
    GroupOpKind {
        /// Add a contact (their key package) or a link's joiner.
        Add = "add",
        /// Remove a member.
        Remove = "remove",
        /// Replace the admin list.
        Admins = "admins",
        /// A leaf update, or carrying out others' proposals.
        Update = "update",
    }
}

text_enum! {
    /// An introduction offered to this user (`introductions.state`,
    /// introduction-v1.md §7).
    IntroReceived {
        Pending = "pending",
        Accepted = "accepted",
        Declined = "declined",
        Ignored = "ignored",
        /// Both sides accepted; the conversation is being made.
        Matched = "matched",
        Connected = "connected",
        /// Refused here (the other side is someone this user blocked).
        Refused = "refused",
        Closed = "closed",
    }
}

text_enum! {
    /// An introduction this user made (`introductions_made.state`).
    IntroMade {
        Open = "open",
        Matched = "matched",
        Connected = "connected",
        Closed = "closed",
    }
}

text_enum! {
    /// One side's answer to an introduction this user made
    /// (`introductions_made.a_state`, `b_state`).
    IntroAnswer {
        Offered = "offered",
        Accepted = "accepted",
        Declined = "declined",
    }
}

text_enum! {
    /// What a channel is to its conversation (`channels.role`).
    ChannelRole {
        /// A channel the conversation's messages are read from and written to.
        Conv = "conv",
        /// A group link's channel, where a join request and its Welcome pass.
        Inbox = "inbox",
        /// A group link's channel that was answered: no longer read.
        InboxDone = "inbox-done",
        /// A channel being drained after a move: read, never written.
        Retiring = "retiring",
        /// A contact address's channel: requests arrive there.
        Address = "address",
    }
}

/// One relay channel of a conversation, with our capability key on it.
pub(crate) struct ChannelRow {
    pub(crate) id: i64,
    pub(crate) conversation_id: String,
    pub(crate) relay_url: String,
    pub(crate) relay_id: RelayId,
    pub(crate) write_id: WriteId,
    pub(crate) read_id: ReadId,
    pub(crate) key: SigningKey,
    pub(crate) owner: bool,
    pub(crate) cursor: u64,
    pub(crate) role: ChannelRole,
    pub(crate) seal_key: Option<[u8; 32]>,
    /// A channel being retired: the sequence number of the move frame on it.
    pub(crate) retire_seq: Option<u64>,
    /// A channel being retired: deleted (or forgotten) at this time at the latest.
    pub(crate) retire_after: Option<u64>,
}

impl std::fmt::Debug for ChannelRow {
    // The capability key and the seal key are secrets: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelRow")
            .field("id", &self.id)
            .field("conversation_id", &self.conversation_id)
            .field("relay_url", &self.relay_url)
            .field("write_id", &self.write_id)
            .field("read_id", &self.read_id)
            .field("key", &"[redacted]")
            .field("owner", &self.owner)
            .field("cursor", &self.cursor)
            .field("role", &self.role)
            .field("seal_key", &self.seal_key.map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

fn array32(row: &Row<'_>, i: usize) -> rusqlite::Result<[u8; 32]> {
    let bytes: Vec<u8> = row.get(i)?;
    bytes.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Blob,
            "expected 32 bytes".into(),
        )
    })
}

/// `SELECT` of a [`ChannelRow`]'s columns, then the rest of the query: one
/// literal, so no SQL is ever assembled at run time.
macro_rules! select_channels {
    ($rest:literal) => {
        concat!(
            "SELECT id, conversation_id, relay_url, relay_id, write_id, read_id, key, owner, cursor, \
             role, seal_key, retire_seq, retire_after FROM channels ",
            $rest
        )
    };
}

pub(crate) fn channel_row(r: &Row<'_>) -> rusqlite::Result<ChannelRow> {
    Ok(ChannelRow {
        id: r.get(0)?,
        conversation_id: r.get(1)?,
        relay_url: r.get(2)?,
        relay_id: RelayId(array32(r, 3)?),
        write_id: WriteId(array32(r, 4)?),
        read_id: ReadId(array32(r, 5)?),
        key: SigningKey::from_bytes(&array32(r, 6)?),
        owner: r.get(7)?,
        cursor: u64::try_from(r.get::<_, i64>(8)?).unwrap_or(0),
        role: r.get(9)?,
        seal_key: match r.get::<_, Option<Vec<u8>>>(10)? {
            Some(_) => Some(array32(r, 10)?),
            None => None,
        },
        retire_seq: r
            .get::<_, Option<i64>>(11)?
            .and_then(|s| u64::try_from(s).ok()),
        retire_after: r
            .get::<_, Option<i64>>(12)?
            .and_then(|s| u64::try_from(s).ok()),
    })
}

pub(crate) fn channels(db: &Connection, conversation: Option<&str>) -> Result<Vec<ChannelRow>> {
    let sql = select_channels!(
        "WHERE ?1 IS NULL OR conversation_id = ?1 \
         ORDER BY conversation_id, preferred DESC, id"
    );
    let mut stmt = db.prepare(sql)?;
    let rows = stmt.query_map(params![conversation], channel_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A conversation's channels with `role`, preferred first: a group's own
/// channel without reading its link inboxes, which may be thousands.
pub(crate) fn channels_with_role(
    db: &Connection,
    conversation: &str,
    role: ChannelRole,
) -> Result<Vec<ChannelRow>> {
    let sql =
        select_channels!("WHERE conversation_id = ?1 AND role = ?2 ORDER BY preferred DESC, id");
    let mut stmt = db.prepare_cached(sql)?;
    let rows = stmt.query_map(params![conversation, role], channel_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn channel(db: &Connection, id: i64) -> Result<Option<ChannelRow>> {
    let sql = select_channels!("WHERE id = ?1");
    Ok(db
        .prepare_cached(sql)?
        .query_row([id], channel_row)
        .optional()?)
}

/// The channels a sync reads: those of conversations not closed, except
/// group-link inboxes already answered.
pub(crate) fn readable_channels(db: &Connection) -> Result<Vec<ChannelRow>> {
    let sql = select_channels!(
        "WHERE role != 'inbox-done' AND conversation_id IN \
         (SELECT id FROM conversations WHERE state != 'closed' AND blocked = 0) \
         ORDER BY conversation_id, preferred DESC, id"
    );
    let mut stmt = db.prepare(sql)?;
    let rows = stmt.query_map([], channel_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
