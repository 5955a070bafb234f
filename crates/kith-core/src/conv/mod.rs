//! Conversation types (docs/spec/README.md §1): one module each, turning
//! stored messages into store writes and [`Effects`] inside a transaction
//! the runtime holds. They do no other I/O and never import each other: a
//! frame one type carries for another (an introduction or a group
//! invitation inside a 1:1 conversation) leaves as a [`Handoff`], and the
//! runtime gives it to its type in the same transaction.
//!
//! ```text
//!   runtime (sync, push, outbox, timers: all network I/O)
//!     │ one page of one channel, one store transaction
//!     ▼
//!   open(input) ──▶ Refused: recorded as an integrity event, skipped
//!     │           └▶ Local:   the page stops, nothing is acknowledged
//!     ▼ Opened
//!   apply(opened) ──▶ rows (messages, outbox, MLS state) + Effects
//!                        events · joined · revocations · handoffs
//! ```
//!
//! | type            | module    | input                                      |
//! |-----------------|-----------|--------------------------------------------|
//! | InboxV1         | `inbox`   | the Welcome on an invitation's channel     |
//! | PairV1          | `pair`    | MLS messages of an active 1:1 conversation |
//! | GroupV1         | `group`   | a group's channel and link inbox; a group invitation handed off by a 1:1 |
//! | IntroductionV1  | `intro`   | an introduction step handed off by a 1:1   |
//! | AddressV1       | `address` | contact requests on an address's channel   |

pub(crate) mod address;
pub(crate) mod group;
pub(crate) mod inbox;
pub(crate) mod intro;
pub(crate) mod pair;

use kith_crypto::mls::{IdentityKey, Session};
use kith_wire::conv::{Envelope, GroupWelcome, Introduction};
use rusqlite::{Transaction, params};
use zeroize::Zeroizing;

use crate::error::{CoreError, OpenError, Result};
use crate::store::{ChannelRow, ConversationState, open_session};
use crate::views::SyncReport;

/// One conversation type's protocol logic.
pub(crate) trait ConversationType {
    /// What arrives for this type.
    type Input<'a>;
    /// A message opened and checked, not yet applied.
    type Opened<'a>;

    /// Opens a message without changing the store: a protocol refusal
    /// (recorded by the runtime, then skipped), a local failure (nothing is
    /// recorded or acknowledged; read again later), or an opened message.
    fn open<'a>(
        &mut self,
        tx: &Transaction<'_>,
        input: Self::Input<'a>,
    ) -> std::result::Result<Self::Opened<'a>, OpenError>;

    /// Applies an opened message in the transaction that also moves its
    /// channel's cursor: stage, then the runtime commits.
    fn apply(
        &mut self,
        tx: &Transaction<'_>,
        opened: Self::Opened<'_>,
        fx: &mut Effects,
    ) -> Result<()>;

    /// After the last message of a page: writes what was kept across it.
    fn finish(&mut self, _tx: &Transaction<'_>) -> Result<()> {
        Ok(())
    }

    /// What falls due with time and needs no relay (runtime settles after
    /// a sync), each conversation of this type in `tx`.
    fn tick(&mut self, _tx: &Transaction<'_>, _fx: &mut Effects) -> Result<()> {
        Ok(())
    }
}

/// A conversation's MLS session kept across a page by the type that opened
/// it: loaded once and written once, at the end of the page or before the
/// type does something that reads the stored state, rather than decoded
/// and encoded again for every message (a large group's state is
/// megabytes). A local failure drops it with the page's transaction.
#[derive(Default)]
pub(crate) struct PageSession {
    open: Option<(String, Session)>,
    dirty: bool,
}

impl PageSession {
    /// `conv`'s session, read from the store the first time (writing the
    /// one held before, if it was another conversation's).
    pub(crate) fn get(&mut self, tx: &Transaction<'_>, conv: &str) -> Result<&mut Session> {
        if self.open.as_ref().is_none_or(|(open, _)| open != conv) {
            self.save(tx)?;
            let (identity, state): (Vec<u8>, Option<Vec<u8>>) = tx
                .prepare_cached("SELECT identity, mls_state FROM conversations WHERE id = ?1")?
                .query_row([conv], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let identity = IdentityKey::from_bytes(&Zeroizing::new(identity))?;
            self.open = Some((conv.to_string(), open_session(&identity, state)?));
            self.dirty = false;
        }
        match &mut self.open {
            Some((_, session)) => Ok(session),
            None => Err(CoreError::Corrupt("no session".into())),
        }
    }

    /// The held session moved on: it is written by the next [`Self::save`].
    pub(crate) fn moved(&mut self) {
        self.dirty = true;
    }

    /// Writes the held session, if it moved on.
    pub(crate) fn save(&mut self, tx: &Transaction<'_>) -> Result<()> {
        if let (true, Some((conv, session))) = (self.dirty, &mut self.open) {
            tx.prepare_cached("UPDATE conversations SET mls_state = ?2 WHERE id = ?1")?
                .execute(params![
                    conv.as_str(),
                    session.snapshot()?.to_bytes().as_slice()
                ])?;
        }
        self.dirty = false;
        Ok(())
    }
}

/// The instant a page is handled at, the configured drain limit of a
/// move (group-v1.md §11, pair-v1.md §8), and what this user's kith shows
/// and does (content-v1.md §8): read once per page.
#[derive(Debug, Clone)]
pub(crate) struct Moment {
    pub(crate) now: u64,
    pub(crate) drain: u64,
    pub(crate) caps: std::sync::Arc<kith_content::kind::Capabilities>,
}

/// A message read from a channel, with its conversation's state.
pub(crate) struct Arrived<'a> {
    pub(crate) channel: &'a ChannelRow,
    pub(crate) seq: u64,
    pub(crate) envelope: Envelope,
    pub(crate) state: ConversationState,
}

/// What applying messages asks of the runtime, beyond the rows written.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// Messages, notices, integrity events for the user.
    pub(crate) report: SyncReport,
    /// Conversations that became active: their channels are read at once.
    pub(crate) joined: Vec<String>,
    /// Relay operations: capability keys of removed group members, to
    /// revoke on the conversation's channels.
    pub(crate) revoke: Vec<(String, [u8; 32])>,
    /// Frames for another type, applied in the same transaction.
    pub(crate) handoffs: Vec<Handoff>,
}

/// A frame a 1:1 conversation carried for another conversation type.
#[derive(Debug)]
pub(crate) enum Handoff {
    /// An introduction step (IntroductionV1).
    Introduction { via: String, intro: Introduction },
    /// A Welcome into a group, sent to this contact (GroupV1 §6.1).
    GroupInvitation {
        via: String,
        invite: Box<GroupWelcome>,
    },
}
