//! Messages as they arrive, integrity events and unread counts.

use std::collections::BTreeMap;

use kith_content::show::show;
use kith_content::{CONTENT_V1, Content, Disposition, PartBody};
use kith_wire::conv::PairFrame;
use kith_wire::relay::to_hex;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::error::Result;
use crate::store::{contact_name, ms};
use crate::views::{IntegrityEvent, MessageView, Notice, Quote, ReactionCount, SyncReport};

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
    /// The sender's identity key in this conversation.
    pub(crate) author: Vec<u8>,
    /// Its ContentV1 id (content-v1.md §5); `None` for a content type
    /// this version does not know.
    pub(crate) content_id: Option<[u8; 32]>,
    /// The message it replies to (content-v1.md §7.5).
    pub(crate) reply_to: Option<[u8; 32]>,
    /// A reaction (content-v1.md §7.6): kept with the message it is about,
    /// not shown as a message.
    pub(crate) reaction: Option<Reaction>,
    /// An edit or delete (content-v1.md §7.7): the message it changes.
    pub(crate) replaces: Option<[u8; 32]>,
    /// A delete: the message it replaces is emptied.
    pub(crate) deletes: bool,
}

/// A reaction to a message, or (`emoji: None`) one taken back.
pub(crate) struct Reaction {
    pub(crate) target: [u8; 32],
    pub(crate) emoji: Option<String>,
}

/// Longest reaction, in bytes of UTF-8 (a few emoji).
pub(crate) const MAX_REACTION: usize = 64;

impl Received {
    /// A text (tag 1) or content (tag 8) frame as a message, sent by the
    /// member whose identity key is `author` in `conv`; `None` for a
    /// control frame.
    pub(crate) fn from_frame(
        frame: &PairFrame,
        sender: Option<String>,
        author: &[u8],
        conv: &str,
    ) -> Option<Self> {
        let mut received = Self {
            message_id: [0; 16],
            sent_at_ms: 0,
            text: String::new(),
            sender,
            needs_newer: false,
            subject: None,
            author: author.to_vec(),
            content_id: None,
            reply_to: None,
            reaction: None,
            replaces: None,
            deletes: false,
        };
        match frame {
            PairFrame::Text {
                message_id,
                sent_at_ms,
                text,
            } => {
                received.message_id = *message_id;
                received.sent_at_ms = *sent_at_ms;
                received.text = text.clone();
                received.content_id = Some(
                    Content::of_text(*message_id, text)
                        .id(author, conv.as_bytes())
                        .0,
                );
            }
            // ContentV1 as far as this version shows it; anything else as
            // its fallback (pair-v1.md §4.1, content-v1.md §8).
            PairFrame::Content(c) => {
                received.message_id = c.message_id;
                received.sent_at_ms = c.sent_at_ms;
                let content = (c.content_type == CONTENT_V1)
                    .then(|| Content::from_cbor(&c.body).ok())
                    .flatten();
                if let Some(content) = &content {
                    received.content_id = Some(content.id(author, conv.as_bytes()).0);
                    received.reply_to = content.in_reply_to.map(|id| id.0);
                    received.reaction = reaction(content);
                    received.replaces = content.replaces.map(|id| id.0);
                    received.deletes =
                        content.replaces.is_some() && content.part.body == PartBody::Null;
                }
                match content.as_ref().and_then(show) {
                    Some(shown) => {
                        received.text = shown.text;
                        received.subject = shown.subject;
                    }
                    None => {
                        received.text = c.fallback.clone();
                        received.needs_newer = c.critical;
                    }
                }
            }
            _ => return None,
        }
        Some(received)
    }
}

/// A reaction's target and emoji (content-v1.md §7.6), if `content` is one.
fn reaction(content: &Content) -> Option<Reaction> {
    let target = content.in_reply_to?.0;
    if content.part.disposition != Disposition::REACTION {
        return None;
    }
    let emoji = match &content.part.body {
        PartBody::Null => None,
        PartBody::Single { content, .. } => {
            let emoji = std::str::from_utf8(content).ok()?;
            if emoji.is_empty() || emoji.len() > MAX_REACTION {
                return None;
            }
            Some(emoji.to_owned())
        }
        _ => return None,
    };
    Some(Reaction { target, emoji })
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
/// is not shown again. A reaction is kept with the message it is about.
pub(crate) fn receive_message(
    tx: &Transaction<'_>,
    conv: &str,
    message: Received,
    now: u64,
    report: &mut SyncReport,
) -> Result<()> {
    let from = match &message.sender {
        Some(name) => name.clone(),
        None => contact_name(tx, conv)?,
    };
    if let Some(reaction) = message.reaction {
        set_reaction(tx, conv, &reaction, &message.author, message.sent_at_ms)?;
        let about = quote(tx, conv, &reaction.target)?
            .map(|q| format!(" to \u{201c}{}\u{201d}", q.text))
            .unwrap_or_default();
        let text = match &reaction.emoji {
            Some(emoji) => format!("{from} reacted {emoji}{about}"),
            None => format!("{from} took back a reaction{about}"),
        };
        report.notices.push(Notice {
            conversation: conv.to_string(),
            text,
        });
        return Ok(());
    }
    if let Some(target) = message.replaces {
        let change = if message.deletes {
            Change::Delete
        } else {
            Change::Edit {
                text: &message.text,
                subject: message.subject.as_deref(),
            }
        };
        match change_message(tx, conv, &target, &message.author, change)? {
            Changed::Done => {
                report.purged |= message.deletes;
                let what = if message.deletes { "deleted" } else { "edited" };
                report.notices.push(Notice {
                    conversation: conv.to_string(),
                    text: format!("{from} {what} a message"),
                });
            }
            // Not here yet: kept until it arrives.
            Changed::Missing => {
                tx.prepare_cached(
                    "INSERT INTO pending_changes (conversation_id, target, author, text, subject, deletes, received_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    conv,
                    target,
                    message.author,
                    (!message.deletes).then_some(&message.text),
                    message.subject,
                    message.deletes,
                    ms(now)
                ])?;
            }
            Changed::NotAuthor => {
                record_integrity_event(
                    tx,
                    conv,
                    now,
                    format!("{from} tried to change a message someone else wrote"),
                    report,
                )?;
            }
        }
        return Ok(());
    }
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO messages (conversation_id, message_id, outgoing, sent_at, received_at, text, sender, needs_newer, subject, content_id, reply_to, author) \
             VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            conv,
            message.message_id,
            ms(message.sent_at_ms),
            ms(now),
            message.text,
            message.sender,
            message.needs_newer,
            message.subject,
            message.content_id,
            message.reply_to,
            message.author
        ])?;
    if inserted == 1 {
        let (mut text, mut subject, mut edited, mut deleted) =
            (message.text, message.subject, false, false);
        if let Some(content_id) = &message.content_id {
            // Changes that came first, in the order they came.
            type Pending = (Vec<u8>, Option<String>, Option<String>, bool);
            let pending: Vec<Pending> = tx
                .prepare_cached(
                    "DELETE FROM pending_changes WHERE conversation_id = ?1 AND target = ?2 \
                     RETURNING author, text, subject, deletes",
                )?
                .query_map(params![conv, content_id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            for (author, new_text, new_subject, deletes) in pending {
                let change = if deletes {
                    Change::Delete
                } else {
                    Change::Edit {
                        text: new_text.as_deref().unwrap_or_default(),
                        subject: new_subject.as_deref(),
                    }
                };
                if let Changed::NotAuthor = change_message(tx, conv, content_id, &author, change)? {
                    record_integrity_event(
                        tx,
                        conv,
                        now,
                        "a change to a message by someone who did not write it".into(),
                        report,
                    )?;
                    continue;
                }
                if deletes {
                    (text, subject, deleted) = (String::new(), None, true);
                    report.purged = true;
                } else if !deleted {
                    text = new_text.unwrap_or_default();
                    subject = new_subject.or(subject);
                    edited = true;
                }
            }
        }
        let reply_to = match &message.reply_to {
            Some(target) => quote(tx, conv, target)?,
            None => None,
        };
        // The conversation's unread count follows from the report: one
        // update per page ([`count_unread`]), not a rewrite of its row
        // (MLS state included) per message.
        report.messages.push(MessageView {
            id: to_hex(&message.message_id),
            conversation: conv.to_string(),
            from,
            outgoing: false,
            sent_at: message.sent_at_ms,
            received_at: now,
            text,
            needs_newer: message.needs_newer,
            subject,
            reply_to,
            reactions: Vec::new(),
            edited,
            deleted,
        });
    }
    Ok(())
}

/// What an edit or delete does to the message it names.
pub(crate) enum Change<'a> {
    Edit {
        text: &'a str,
        subject: Option<&'a str>,
    },
    /// Its text and subject emptied (overwritten on disk: the profile has
    /// `secure_delete`), its reactions dropped.
    Delete,
}

pub(crate) enum Changed {
    Done,
    Missing,
    /// The message is someone else's: refused.
    NotAuthor,
}

/// Empties the write-ahead log into the database after a delete, so that
/// no older copy of a deleted message's page stays on disk (the database
/// file itself overwrites freed bytes: `secure_delete`).
pub(crate) fn purge_log(db: &Connection) -> Result<()> {
    db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

/// Edits or deletes the message with ContentV1 id `target`, if `author`
/// wrote it (content-v1.md §7.7).
pub(crate) fn change_message(
    tx: &Connection,
    conv: &str,
    target: &[u8],
    author: &[u8],
    change: Change<'_>,
) -> Result<Changed> {
    let written_by: Option<Option<Vec<u8>>> = tx
        .prepare_cached(
            "SELECT author FROM messages WHERE conversation_id = ?1 AND content_id = ?2",
        )?
        .query_row(params![conv, target], |r| r.get(0))
        .optional()?;
    match written_by {
        None => return Ok(Changed::Missing),
        Some(by) if by.as_deref() != Some(author) => return Ok(Changed::NotAuthor),
        Some(_) => {}
    }
    match change {
        Change::Edit { text, subject } => {
            tx.prepare_cached(
                "UPDATE messages SET text = ?3, subject = COALESCE(?4, subject), edited = 1 \
                 WHERE conversation_id = ?1 AND content_id = ?2 AND deleted = 0",
            )?
            .execute(params![conv, target, text, subject])?;
        }
        Change::Delete => {
            tx.prepare_cached(
                "UPDATE messages SET text = '', subject = NULL, deleted = 1 \
                 WHERE conversation_id = ?1 AND content_id = ?2",
            )?
            .execute(params![conv, target])?;
            tx.prepare_cached("DELETE FROM reactions WHERE conversation_id = ?1 AND target = ?2")?
                .execute(params![conv, target])?;
        }
    }
    Ok(Changed::Done)
}

/// Records `author`'s reaction to a message, replacing the one it had
/// (one per member and message), or takes it back.
pub(crate) fn set_reaction(
    tx: &Connection,
    conv: &str,
    reaction: &Reaction,
    author: &[u8],
    sent_at: u64,
) -> Result<()> {
    tx.prepare_cached(
        "DELETE FROM reactions WHERE conversation_id = ?1 AND target = ?2 AND sender_key = ?3",
    )?
    .execute(params![conv, reaction.target, author])?;
    if let Some(emoji) = &reaction.emoji {
        tx.prepare_cached(
            "INSERT INTO reactions (conversation_id, target, sender_key, reaction, sent_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![conv, reaction.target, author, emoji, ms(sent_at)])?;
    }
    Ok(())
}

/// Longest quote of a replied-to message, in characters.
const QUOTE_CHARS: usize = 80;

/// The message with ContentV1 id `target` in `conv`, quoted.
pub(crate) fn quote(db: &Connection, conv: &str, target: &[u8]) -> Result<Option<Quote>> {
    let row: Option<(Vec<u8>, bool, Option<String>, String)> = db
        .prepare_cached(
            "SELECT message_id, outgoing, sender, text FROM messages \
             WHERE conversation_id = ?1 AND content_id = ?2",
        )?
        .query_row(params![conv, target], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let Some((message_id, outgoing, sender, text)) = row else {
        return Ok(None);
    };
    let from = if outgoing {
        "me".to_string()
    } else {
        match sender {
            Some(name) => name,
            None => contact_name(db, conv)?,
        }
    };
    Ok(Some(Quote {
        id: to_hex(&message_id),
        from,
        text: first_line(&text),
    }))
}

/// A message's first line, shortened to a quote (`…` when cut).
pub(crate) fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let mut short: String = line.chars().take(QUOTE_CHARS).collect();
    if short.len() < text.len() {
        short.push('\u{2026}');
    }
    short
}

/// The reactions to the message with ContentV1 id `target`, counted by
/// reaction, most first; `mine` if `me` (this user's identity key in the
/// conversation) gave it.
pub(crate) fn reactions_to(
    db: &Connection,
    conv: &str,
    target: &[u8],
    me: &[u8],
) -> Result<Vec<ReactionCount>> {
    let mut stmt = db.prepare_cached(
        "SELECT reaction, COUNT(*), MAX(sender_key = ?3) FROM reactions \
         WHERE conversation_id = ?1 AND target = ?2 GROUP BY reaction \
         ORDER BY COUNT(*) DESC, MIN(sent_at)",
    )?;
    let rows = stmt.query_map(params![conv, target, me], |r| {
        Ok(ReactionCount {
            reaction: r.get(0)?,
            count: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
            mine: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
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
