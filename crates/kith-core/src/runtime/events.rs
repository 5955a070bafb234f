//! The event log: every change to the profile that a user interface shows,
//! in commit order, from a cursor (docs/api.md, "Events"). Triggers write
//! it in the same transaction as the change (migration 0016), so no code
//! path can change a message without its event, and a reader that comes
//! back with its cursor gets each event once. An entry names what changed;
//! [`Engine::events`] adds what it is now.

use kith_wire::relay::from_hex_vec;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::conv::intro::{made_view, received_view};
use crate::error::Result;
use crate::runtime::Engine;
use crate::store::{self, ms};
use crate::views::{CallView, ConversationView, IntroductionView, MessageView, RequestView};

/// How long the log keeps an event: a client away longer starts again from
/// the conversations as they are (the page says `gap`).
pub const EVENT_RETENTION: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// One event, with what it names as it is when read.
#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    /// Its place in the log: the cursor to read on from.
    pub seq: u64,
    /// `message` (new), `message-changed` (edited, deleted, reacted to,
    /// receipts, file saved), `message-removed` (disappeared, or its
    /// conversation deleted), `conversation` (new or changed: name, state,
    /// unread count…), `conversation-removed`, `members` (a group's),
    /// `call`, `introduction`, `integrity` (a message refused), `request`
    /// (a contact request arrived) or `request-removed` (answered or
    /// expired).
    pub kind: String,
    /// When it was committed (ms since the Unix epoch).
    pub at: u64,
    /// The conversation's id, where it concerns one.
    pub conversation: Option<String>,
    /// The message's, call's, introduction's or request's id.
    pub id: Option<String>,
    /// `message`, `message-changed`: the message now (absent if it is gone
    /// since).
    pub message: Option<MessageView>,
    /// `conversation`, `members`, `integrity`: the conversation now.
    pub state: Option<ConversationView>,
    pub call: Option<CallView>,
    pub introduction: Option<IntroductionView>,
    /// `request`: the request now (absent if answered since).
    pub request: Option<RequestView>,
}

/// A page of the log.
#[derive(Debug, Clone, Serialize)]
pub struct EventPage {
    pub events: Vec<EventView>,
    /// The cursor to ask from next: the last event's `seq`, or the one
    /// asked from if there was none.
    pub cursor: u64,
    /// Events after the cursor asked from were dropped (older than the
    /// log keeps): reload conversations before going on.
    pub gap: bool,
}

impl Engine {
    /// Up to `limit` events after `cursor` (0: from the start of the log).
    pub fn events(&self, cursor: u64, limit: usize) -> Result<EventPage> {
        let limit = i64::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
        let after = i64::try_from(cursor).unwrap_or(i64::MAX);
        type Row = (i64, String, i64, Option<String>, Option<String>);
        let rows: Vec<Row> = {
            let mut stmt = self.db.prepare_cached(
                "SELECT seq, kind, at, conversation_id, ref FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        // A cursor behind the oldest event kept (but not 0, "from the
        // start") missed what was pruned.
        let oldest: Option<i64> = self
            .db
            .query_row("SELECT MIN(seq) FROM events", [], |r| r.get(0))
            .optional()?
            .flatten();
        let gap = cursor > 0 && oldest.is_some_and(|o| o > after.saturating_add(1));
        let mut events = Vec::with_capacity(rows.len());
        let mut next = cursor;
        for (seq, kind, at, conversation, id) in rows {
            next = u64::try_from(seq).unwrap_or(next);
            events.push(self.event_view(seq, kind, at, conversation, id)?);
        }
        Ok(EventPage {
            events,
            cursor: next,
            gap,
        })
    }

    /// The newest event's cursor (0 if the log is empty): where a client
    /// that wants only what happens from now on starts.
    pub fn events_head(&self) -> Result<u64> {
        let seq: Option<i64> = self
            .db
            .query_row("SELECT MAX(seq) FROM events", [], |r| r.get(0))?;
        Ok(seq.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
    }

    /// Drops events older than [`EVENT_RETENTION`]. By the system's clock,
    /// not the engine's: the triggers stamp events with SQLite's.
    pub(crate) fn prune_events(&self) -> Result<()> {
        let keep = crate::config::millis(EVENT_RETENTION);
        let now = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
        )
        .unwrap_or(0);
        self.db.execute(
            "DELETE FROM events WHERE at < ?1",
            [ms(now.saturating_sub(keep))],
        )?;
        Ok(())
    }

    fn event_view(
        &self,
        seq: i64,
        kind: String,
        at: i64,
        conversation: Option<String>,
        id: Option<String>,
    ) -> Result<EventView> {
        let mut view = EventView {
            seq: u64::try_from(seq).unwrap_or(0),
            at: u64::try_from(at).unwrap_or(0),
            message: None,
            state: None,
            call: None,
            introduction: None,
            request: None,
            kind,
            conversation,
            id,
        };
        let conv = view.conversation.clone().unwrap_or_default();
        let id = view.id.clone().unwrap_or_default();
        match view.kind.as_str() {
            "message" | "message-changed" => view.message = self.message(&conv, &id)?,
            "conversation" | "members" | "integrity" => {
                view.state = match self.view(&conv) {
                    Ok(v) => Some(v),
                    Err(crate::error::CoreError::NoSuchConversation(_)) => None,
                    Err(e) => return Err(e),
                };
            }
            "call" => {
                if let Some(call_id) = from_hex_vec(&id) {
                    view.call = store::call_view(&self.db, &conv, &call_id)?;
                }
            }
            "introduction" => {
                if let Some(bytes) = from_hex_vec(&id)
                    && let Ok(intro) = <[u8; 16]>::try_from(bytes.as_slice())
                {
                    view.introduction = match received_view(&self.db, &intro, self.now())? {
                        Some(v) => Some(v),
                        None => made_view(&self.db, &intro)?,
                    };
                }
            }
            "request" => {
                if let Ok(n) = id.parse::<i64>() {
                    view.request = crate::conv::address::request_view(&self.db, n)?;
                }
            }
            _ => {}
        }
        Ok(view)
    }
}
