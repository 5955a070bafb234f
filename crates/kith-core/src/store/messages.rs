//! Messages as they arrive, integrity events and unread counts.

use std::collections::BTreeMap;

use kith_content::show::show;
use kith_content::{CONTENT_V1, Content};
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
    /// A mail's subject (content-v1.md §7.4).
    pub(crate) subject: Option<String>,
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
                subject: None,
            }),
            // ContentV1 as far as this version shows it; anything else as
            // its fallback (pair-v1.md §4.1, content-v1.md §8).
            PairFrame::Content(c) => {
                let shown = (c.content_type == CONTENT_V1)
                    .then(|| Content::from_cbor(&c.body).ok())
                    .flatten()
                    .and_then(|content| show(&content));
                Some(match shown {
                    Some(shown) => Self {
                        message_id: c.message_id,
                        sent_at_ms: c.sent_at_ms,
                        text: shown.text,
                        sender,
                        needs_newer: false,
                        subject: shown.subject,
                    },
                    None => Self {
                        message_id: c.message_id,
                        sent_at_ms: c.sent_at_ms,
                        text: c.fallback.clone(),
                        sender,
                        needs_newer: c.critical,
                        subject: None,
                    },
                })
            }
            _ => None,
        }
    }
}

/// Refuses a ContentV1 frame whose body is not one deterministic,
/// well-formed message (content-v1.md §4): it is an integrity event, like
/// any malformed frame. Other content types are shown by their fallback.
pub(crate) fn check_content(
    frame: &PairFrame,
) -> std::result::Result<(), kith_content::DecodeError> {
    match frame {
        PairFrame::Content(c) if c.content_type == CONTENT_V1 => {
            Content::from_cbor(&c.body).map(|_| ())
        }
        _ => Ok(()),
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
            "INSERT OR IGNORE INTO messages (conversation_id, message_id, outgoing, sent_at, received_at, text, sender, needs_newer, subject) \
             VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            conv,
            message.message_id,
            ms(message.sent_at_ms),
            ms(now),
            message.text,
            message.sender,
            message.needs_newer,
            message.subject
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
            subject: message.subject,
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
