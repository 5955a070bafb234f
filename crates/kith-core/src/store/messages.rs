//! Messages as they arrive, integrity events and unread counts.

use std::collections::BTreeMap;

use kith_wire::conv::PairFrame;
use kith_wire::relay::to_hex;
use rusqlite::{Transaction, params};

use crate::error::Result;
use crate::store::{contact_name, ms};
use crate::views::{IntegrityEvent, MessageView, SyncReport};

/// Records a message that was refused, and reports it (pair-v1.md §6).
pub(crate) fn record_integrity_event(
    tx: &Transaction<'_>,
    conv: &str,
    now: u64,
    detail: String,
    report: &mut SyncReport,
) -> Result<()> {
    tx.execute(
        "INSERT INTO integrity_events (conversation_id, at, detail) VALUES (?1, ?2, ?3)",
        params![conv, ms(now), detail],
    )?;
    report.integrity_events.push(IntegrityEvent {
        conversation: conv.to_string(),
        at: now,
        detail,
    });
    Ok(())
}

/// A message as it arrived, to be stored once.
pub(crate) struct Received {
    pub(crate) message_id: [u8; 16],
    pub(crate) sent_at_ms: u64,
    /// What is shown: the text, or a content frame's fallback.
    pub(crate) text: String,
    /// A group member's name; `None` in a 1:1 conversation, where the
    /// contact's current name is shown.
    pub(crate) sender: Option<String>,
    /// A critical content frame of a kind this version does not know.
    pub(crate) needs_newer: bool,
}

impl Received {
    /// A text (tag 1) or content (tag 8) frame as a message; `None` for a
    /// control frame.
    pub(crate) fn from_frame(frame: &PairFrame, sender: Option<String>) -> Option<Self> {
        match frame {
            PairFrame::Text {
                message_id,
                sent_at_ms,
                text,
            } => Some(Self {
                message_id: *message_id,
                sent_at_ms: *sent_at_ms,
                text: text.clone(),
                sender,
                needs_newer: false,
            }),
            // No content type is known in this version (pair-v1.md §4.1):
            // every one is shown as its fallback.
            PairFrame::Content(c) => Some(Self {
                message_id: c.message_id,
                sent_at_ms: c.sent_at_ms,
                text: c.fallback.clone(),
                sender,
                needs_newer: c.critical,
            }),
            _ => None,
        }
    }
}

/// Stores an incoming message and reports it; a `message_id` already stored
/// is not shown again.
pub(crate) fn receive_message(
    tx: &Transaction<'_>,
    conv: &str,
    message: Received,
    now: u64,
    report: &mut SyncReport,
) -> Result<()> {
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO messages (conversation_id, message_id, outgoing, sent_at, received_at, text, sender, needs_newer) \
             VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            conv,
            message.message_id,
            ms(message.sent_at_ms),
            ms(now),
            message.text,
            message.sender,
            message.needs_newer
        ])?;
    if inserted == 1 {
        // The conversation's unread count follows from the report: one
        // update per page ([`count_unread`]), not a rewrite of its row
        // (MLS state included) per message.
        report.messages.push(MessageView {
            id: to_hex(&message.message_id),
            conversation: conv.to_string(),
            from: match message.sender {
                Some(name) => name,
                None => contact_name(tx, conv)?,
            },
            outgoing: false,
            sent_at: message.sent_at_ms,
            received_at: now,
            text: message.text,
            needs_newer: message.needs_newer,
        });
    }
    Ok(())
}

/// Counts the messages a page added (`report.messages` from `from` on) as
/// unread in their conversations, in `tx`.
pub(crate) fn count_unread(
    tx: &Transaction<'_>,
    report: &SyncReport,
    from: usize,
    now: u64,
) -> Result<()> {
    let mut added: BTreeMap<&str, i64> = BTreeMap::new();
    for m in report.messages.get(from..).unwrap_or_default() {
        *added.entry(m.conversation.as_str()).or_default() += 1;
    }
    for (conv, n) in added {
        tx.prepare_cached(
            "UPDATE conversations SET unread = unread + ?2, last_activity = ?3 WHERE id = ?1",
        )?
        .execute(params![conv, n, ms(now)])?;
    }
    Ok(())
}
