//! Messages as they arrive, integrity events and unread counts.

use std::collections::BTreeMap;

use kith_content::kind::{CallSignal, Capabilities, Kind, PaymentState, ReceiptStatus, feature};
use kith_content::show::show_for;
use kith_content::{CONTENT_V1, Content, MessageId};
use kith_wire::conv::PairFrame;
use kith_wire::relay::to_hex;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::error::Result;
use crate::store::{contact_name, ms};
use crate::views::{
    AppView, IntegrityEvent, MessageView, Notice, PaymentView, Quote, ReactionCount, SyncReport,
};

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
    /// What it is for, as far as this user's kith processes it: a kind
    /// it does not is a [`Kind::Message`] shown by its fallback.
    pub(crate) kind: Kind,
    /// When it disappears (content-v1.md §7.9), ms since the epoch.
    pub(crate) expires_at: Option<u64>,
}

/// A reaction to a message, or (`emoji: None`) one taken back.
pub(crate) struct Reaction {
    pub(crate) target: [u8; 32],
    pub(crate) emoji: Option<String>,
}

impl Received {
    /// A text (tag 1) or content (tag 8) frame as a message, sent by the
    /// member whose identity key is `author` in `conv`, received at `now`
    /// by a kith that shows and does `caps`; `None` for a control frame.
    pub(crate) fn from_frame(
        frame: &PairFrame,
        sender: Option<String>,
        author: &[u8],
        conv: &str,
        (caps, now): (&Capabilities, u64),
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
            kind: Kind::Message,
            expires_at: None,
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
                let mut unmet = false;
                if let Some(content) = &content {
                    received.content_id = Some(content.id(author, conv.as_bytes()).0);
                    received.reply_to = content.in_reply_to.map(|id| id.0);
                    let kind = Kind::of(content);
                    unmet = !kind.need().is_none_or(|need| caps.meets(&need));
                    // An application's part is kept for the application
                    // even where this kith shows only its fallback.
                    if !unmet || matches!(kind, Kind::App { .. }) {
                        received.kind = kind;
                    }
                    if caps.has(feature::TIMERS)
                        && let Some(x) = content.expires
                    {
                        let secs = u64::from(x.time).saturating_mul(1000);
                        received.expires_at = Some(if x.relative {
                            // From when it was sent, but never from a
                            // time after it arrived (a clock ahead).
                            c.sent_at_ms.min(now).saturating_add(secs)
                        } else {
                            secs
                        });
                    }
                }
                // A kind this kith does not process is read as the
                // sender's sentence for it, never as its bare parts (a
                // reaction's emoji alone would mislead).
                let known = !unmet || matches!(received.kind, Kind::App { .. });
                match content
                    .as_ref()
                    .filter(|_| known)
                    .and_then(|c| show_for(c, caps))
                {
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

/// What a stored message is beyond its text (migration 0012's columns).
#[derive(Default)]
pub(crate) struct Extra {
    /// `timer`, `payment`, `payment-status`, `call`, `app`; `None` for
    /// text, mail and replies.
    pub(crate) kind: Option<&'static str>,
    pub(crate) data: Option<Vec<u8>>,
    pub(crate) data_type: Option<String>,
    pub(crate) state: Option<&'static str>,
}

impl Extra {
    /// The extra of a message of `kind` (`None` for kinds not stored as
    /// messages of their own).
    pub(crate) fn of(kind: &Kind) -> Self {
        match kind {
            Kind::Timer { seconds } => Self {
                kind: Some("timer"),
                data: Some(seconds.to_be_bytes().to_vec()),
                ..Self::default()
            },
            Kind::PaymentRequest(uri) => Self {
                kind: Some("payment"),
                data: Some(uri.uri().into_bytes()),
                state: Some(PaymentState::Requested.as_str()),
                ..Self::default()
            },
            Kind::PaymentStatus {
                state, reference, ..
            } => Self {
                kind: Some("payment-status"),
                data: Some(reference.clone().into_bytes()),
                state: Some(state.as_str()),
                ..Self::default()
            },
            Kind::Attachment(_) => Self {
                kind: Some("file"),
                ..Self::default()
            },
            Kind::App { content_type, data } => Self {
                kind: Some("app"),
                data: Some(data.clone()),
                data_type: Some(content_type.clone()),
                ..Self::default()
            },
            _ => Self::default(),
        }
    }
}

/// What a disappearing timer says, in words.
pub(crate) fn timer_text(from: &str, seconds: u32) -> String {
    if seconds == 0 {
        format!("{from} turned off disappearing messages")
    } else {
        format!(
            "{from} set messages to disappear after {}",
            crate::views::duration_words(u64::from(seconds))
        )
    }
}

/// Stores an incoming message and reports it; a `message_id` already stored
/// is not shown again. A reaction is kept with the message it is about.
pub(crate) fn receive_message(
    tx: &Transaction<'_>,
    conv: &str,
    mut message: Received,
    now: u64,
    report: &mut SyncReport,
) -> Result<()> {
    let from = match &message.sender {
        Some(name) => name.clone(),
        None => contact_name(tx, conv)?,
    };
    let kind = std::mem::replace(&mut message.kind, Kind::Message);
    let mut attachment = None;
    let notice = |report: &mut SyncReport, text: String| {
        report.notices.push(Notice {
            conversation: conv.to_string(),
            text,
        });
    };
    match kind {
        Kind::Reaction { target, emoji } => {
            let reaction = Reaction {
                target: target.0,
                emoji,
            };
            set_reaction(tx, conv, &reaction, &message.author, message.sent_at_ms)?;
            let about = quote(tx, conv, &reaction.target)?
                .map(|q| format!(" to \u{201c}{}\u{201d}", q.text))
                .unwrap_or_default();
            let text = match &reaction.emoji {
                Some(emoji) => format!("{from} reacted {emoji}{about}"),
                None => format!("{from} took back a reaction{about}"),
            };
            notice(report, text);
            return Ok(());
        }
        Kind::Edit { target } | Kind::Delete { target } => {
            let deletes = matches!(kind, Kind::Delete { .. });
            return receive_change(tx, conv, &message, target.0, deletes, (&from, now), report);
        }
        Kind::Receipt { status, messages } => {
            return record_receipts(tx, conv, &message.author, status, &messages);
        }
        Kind::Call(signal) => {
            if let Some(text) = apply_call(tx, conv, false, &signal, message.sent_at_ms, now)? {
                notice(report, format!("{from}: {text}"));
            }
            return Ok(());
        }
        Kind::Timer { seconds } => {
            tx.prepare_cached("UPDATE conversations SET timer = ?2 WHERE id = ?1")?
                .execute(params![conv, seconds])?;
            message.text = timer_text(&from, seconds);
        }
        Kind::PaymentRequest(ref uri) => {
            message.text = format!("payment request: {}", uri.describe());
        }
        Kind::PaymentStatus {
            request,
            state,
            ref reference,
        } => {
            set_payment_state(tx, conv, &request, state)?;
            message.text = payment_status_text(tx, conv, &request, state, reference)?;
        }
        Kind::Attachment(ref part) => {
            // Read once: its description, its row and its view.
            attachment = kith_files::Attachment::from_part(part).ok();
            if let Some(a) = &attachment {
                message.text = crate::views::describe(a);
            }
        }
        Kind::App { .. } | Kind::Message => {}
    }
    let extra = Extra::of(&kind);
    let message_id = message.message_id;
    let Some(mut view) = insert_received(tx, conv, message, extra, (&from, now), report)? else {
        return Ok(());
    };
    fill_kind(tx, conv, &mut view, &kind)?;
    if let Some(a) = &attachment {
        store_attachment(tx, conv, &message_id, a)?;
        view.file = Some(crate::views::file_view(a, None));
    }
    report.messages.push(view);
    Ok(())
}

/// A payment status in words: `paid “12.50 EUR to …” (ref)`.
fn payment_status_text(
    db: &Connection,
    conv: &str,
    request: &MessageId,
    state: PaymentState,
    reference: &str,
) -> Result<String> {
    let about = payment_of(db, conv, &request.0)?
        .map(|p| format!(" \u{201c}{}\u{201d}", p.description))
        .unwrap_or_default();
    let reference = if reference.is_empty() {
        String::new()
    } else {
        format!(" (reference: {reference})")
    };
    Ok(format!(
        "{} the payment request{about}{reference}",
        state.as_str()
    ))
}

/// Sets a view's payment, timer or app fields from what it is (a file's
/// comes from its parsed attachment, where it is stored).
pub(crate) fn fill_kind(
    db: &Connection,
    conv: &str,
    view: &mut MessageView,
    kind: &Kind,
) -> Result<()> {
    match kind {
        Kind::Timer { seconds } => view.timer = Some(*seconds),
        Kind::PaymentRequest(uri) => {
            view.payment = Some(PaymentView {
                uri: uri.uri(),
                description: uri.describe(),
                state: PaymentState::Requested.as_str().into(),
                reference: None,
                request: None,
            });
        }
        Kind::PaymentStatus {
            request,
            state,
            reference,
        } => {
            view.payment = Some(payment_status_view(
                db,
                conv,
                &request.0,
                state.as_str(),
                reference,
            )?);
        }
        Kind::App { content_type, data } => {
            view.app = Some(AppView {
                content_type: content_type.clone(),
                data: to_hex(data),
            });
        }
        _ => {}
    }
    Ok(())
}

/// A stored message's columns beyond its text, as `read` finds them.
pub(crate) struct StoredKind {
    pub(crate) content_id: Option<Vec<u8>>,
    pub(crate) reply_to: Option<Vec<u8>>,
    pub(crate) kind: Option<String>,
    pub(crate) data: Option<Vec<u8>>,
    pub(crate) data_type: Option<String>,
    pub(crate) state: Option<String>,
}

/// Fills in what `read` shows beyond a message's row: the quoted message,
/// reactions, this user's receipts (out of `others` members), and the
/// payment, call, timer or app part it is.
pub(crate) fn complete_view(
    db: &Connection,
    conv: &str,
    me: &[u8],
    others: u64,
    view: &mut MessageView,
    stored: &StoredKind,
) -> Result<()> {
    if let Some(target) = &stored.reply_to {
        view.reply_to = quote(db, conv, target)?;
    }
    if let Some(content_id) = &stored.content_id {
        view.reactions = reactions_to(db, conv, content_id, me)?;
        if view.outgoing && stored.kind.is_none() {
            let (delivered, read): (i64, i64) = db
                .prepare_cached(
                    "SELECT COUNT(*), COALESCE(SUM(status >= 2), 0) FROM receipts \
                     WHERE conversation_id = ?1 AND target = ?2",
                )?
                .query_row(params![conv, content_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            view.receipts = Some(crate::views::Receipts {
                delivered: u64::try_from(delivered).unwrap_or(0),
                read: u64::try_from(read).unwrap_or(0),
                of: others,
            });
        }
    }
    let data = stored.data.as_deref().unwrap_or_default();
    match stored.kind.as_deref() {
        Some("timer") => {
            view.timer = <[u8; 4]>::try_from(data).ok().map(u32::from_be_bytes);
        }
        Some("payment") => {
            if let Some(content_id) = &stored.content_id {
                view.payment = payment_of(db, conv, content_id)?;
            }
        }
        Some("payment-status") => {
            let request = stored.reply_to.as_deref().unwrap_or_default();
            view.payment = Some(payment_status_view(
                db,
                conv,
                request,
                stored.state.as_deref().unwrap_or_default(),
                &String::from_utf8_lossy(data),
            )?);
        }
        Some("app") => {
            view.app = Some(AppView {
                content_type: stored.data_type.clone().unwrap_or_default(),
                data: to_hex(data),
            });
        }
        Some("call") => {
            view.call = call_view(db, conv, data)?;
        }
        Some("file") => {
            if let Some(id) = kith_wire::relay::from_hex_vec(&view.id) {
                let saved: Option<String> = db
                    .prepare_cached(
                        "SELECT path FROM files WHERE conversation_id = ?1 AND message_id = ?2",
                    )?
                    .query_row(params![conv, id], |r| r.get(0))
                    .optional()?
                    .flatten();
                view.file = attachment(db, conv, &id)?.map(|a| crate::views::file_view(&a, saved));
            }
        }
        _ => {}
    }
    Ok(())
}

/// A `calls` row as the history shows it; the columns are [`CALL_COLUMNS`].
const CALL_COLUMNS: &str = "call_id, state, video, outgoing, started_at, answered_at, ended_at";

fn call_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<crate::views::CallView> {
    let state: String = r.get(1)?;
    let answered: Option<i64> = r.get(5)?;
    let ended: Option<i64> = r.get(6)?;
    Ok(crate::views::CallView {
        id: to_hex(&r.get::<_, Vec<u8>>(0)?),
        duration_ms: match (answered, ended) {
            (Some(a), Some(e)) if state == "ended" => u64::try_from(e - a).ok(),
            _ => None,
        },
        state,
        video: r.get(2)?,
        outgoing: r.get(3)?,
        started_at: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
    })
}

/// The call `call_id` of `conv`, as the history shows it.
pub(crate) fn call_view(
    db: &Connection,
    conv: &str,
    call_id: &[u8],
) -> Result<Option<crate::views::CallView>> {
    Ok(db
        .prepare_cached(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE conversation_id = ?1 AND call_id = ?2"
        ))?
        .query_row(params![conv, call_id], call_from_row)
        .optional()?)
}

/// The calls of `conv`, newest first.
pub(crate) fn calls(db: &Connection, conv: &str) -> Result<Vec<crate::views::CallView>> {
    let mut stmt = db.prepare_cached(&format!(
        "SELECT {CALL_COLUMNS} FROM calls WHERE conversation_id = ?1 ORDER BY started_at DESC"
    ))?;
    let rows = stmt.query_map([conv], call_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// An answer to the payment request with ContentV1 id `request`: the
/// request as it stands (empty if it is not here), with the answer's state,
/// reference and the request's id.
fn payment_status_view(
    db: &Connection,
    conv: &str,
    request: &[u8],
    state: &str,
    reference: &str,
) -> Result<PaymentView> {
    let mut payment = payment_of(db, conv, request)?.unwrap_or(PaymentView {
        uri: String::new(),
        description: String::new(),
        state: String::new(),
        reference: None,
        request: None,
    });
    payment.state = state.to_owned();
    payment.reference = (!reference.is_empty()).then(|| reference.to_owned());
    payment.request = message_id_of(db, conv, request)?;
    Ok(payment)
}

/// The frame id (as `read` shows it) of the message with ContentV1 id
/// `target`.
fn message_id_of(db: &Connection, conv: &str, target: &[u8]) -> Result<Option<String>> {
    let id: Option<Vec<u8>> = db
        .prepare_cached(
            "SELECT message_id FROM messages WHERE conversation_id = ?1 AND content_id = ?2",
        )?
        .query_row(params![conv, target], |r| r.get(0))
        .optional()?;
    Ok(id.map(|id| to_hex(&id)))
}

/// The payment request with ContentV1 id `request`, as it stands.
pub(crate) fn payment_of(
    db: &Connection,
    conv: &str,
    request: &[u8],
) -> Result<Option<PaymentView>> {
    let row: Option<(Vec<u8>, Option<String>)> = db
        .prepare_cached(
            "SELECT data, state FROM messages \
             WHERE conversation_id = ?1 AND content_id = ?2 AND kind = 'payment'",
        )?
        .query_row(params![conv, request], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((uri, state)) = row else {
        return Ok(None);
    };
    let uri = String::from_utf8_lossy(&uri).into_owned();
    let description = kith_content::payto::PaytoUri::parse(&uri)
        .map(|p| p.describe())
        .unwrap_or_default();
    Ok(Some(PaymentView {
        uri,
        description,
        state: state.unwrap_or_else(|| "requested".into()),
        reference: None,
        request: None,
    }))
}

/// Records that a payment request was paid or declined.
pub(crate) fn set_payment_state(
    db: &Connection,
    conv: &str,
    request: &MessageId,
    state: PaymentState,
) -> Result<()> {
    db.prepare_cached(
        "UPDATE messages SET state = ?3 WHERE conversation_id = ?1 AND content_id = ?2 AND kind = 'payment'",
    )?
    .execute(params![conv, request.0, state.as_str()])?;
    Ok(())
}

/// An edit or delete as it arrives: applied now if its message is here and
/// `author` wrote it, kept for later if not here yet, refused otherwise.
fn receive_change(
    tx: &Transaction<'_>,
    conv: &str,
    message: &Received,
    target: [u8; 32],
    deletes: bool,
    (from, now): (&str, u64),
    report: &mut SyncReport,
) -> Result<()> {
    let change = if deletes {
        Change::Delete
    } else {
        Change::Edit {
            text: &message.text,
            subject: message.subject.as_deref(),
        }
    };
    match change_message(tx, conv, &target, &message.author, change)? {
        Changed::Done => {
            report.purged |= deletes;
            let what = if deletes { "deleted" } else { "edited" };
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
                (!deletes).then_some(&message.text),
                message.subject,
                deletes,
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
    Ok(())
}

/// Stores a message that is shown as one (text, mail, reply, timer,
/// payment, app part), applies changes that came before it, and owes a
/// delivered receipt for it; `None` if it was stored already.
fn insert_received(
    tx: &Transaction<'_>,
    conv: &str,
    message: Received,
    extra: Extra,
    (from, now): (&str, u64),
    report: &mut SyncReport,
) -> Result<Option<MessageView>> {
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO messages (conversation_id, message_id, outgoing, sent_at, received_at, text, sender, needs_newer, subject, content_id, reply_to, author, \
                                             kind, data, data_type, state, expires_at) \
             VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
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
            message.author,
            extra.kind,
            extra.data,
            extra.data_type,
            extra.state,
            message.expires_at.map(ms),
        ])?;
    if inserted != 1 {
        return Ok(None);
    }
    let (mut text, mut subject, mut edited, mut deleted) =
        (message.text, message.subject, false, false);
    if let Some(content_id) = &message.content_id {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO receipts_due (conversation_id, target, status) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![conv, content_id, ReceiptStatus::Delivered as u8])?;
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
    Ok(Some(MessageView {
        id: to_hex(&message.message_id),
        conversation: conv.to_string(),
        from: from.to_string(),
        outgoing: false,
        sent_at: message.sent_at_ms,
        received_at: now,
        text,
        needs_newer: message.needs_newer,
        subject,
        reply_to,
        edited,
        deleted,
        expires_at: message.expires_at,
        ..MessageView::default()
    }))
}

/// Records `member`'s receipt for `messages`: the best status each has
/// reached (read is also delivered).
pub(crate) fn record_receipts(
    tx: &Connection,
    conv: &str,
    member: &[u8],
    status: ReceiptStatus,
    messages: &[MessageId],
) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO receipts (conversation_id, target, member, status) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (conversation_id, target, member) DO UPDATE SET status = MAX(status, excluded.status)",
    )?;
    for id in messages {
        stmt.execute(params![conv, id.0, member, status as u8])?;
    }
    Ok(())
}

/// Keeps what it takes to fetch and open a file message's file.
pub(crate) fn store_attachment(
    tx: &Connection,
    conv: &str,
    message_id: &[u8],
    a: &kith_files::Attachment,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO files (conversation_id, message_id, relay_url, blob_id, file_key, nonce, size, hash, \
                                      filename, content_type, caption, expires) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        conv,
        message_id,
        a.relay_url,
        a.blob_id,
        a.key.key().as_slice(),
        a.key.nonce().as_slice(),
        ms(a.size),
        a.hash,
        a.filename,
        a.content_type,
        a.caption,
        a.expires
    ])?;
    Ok(())
}

/// The file of message `message_id`, if it names one.
pub(crate) fn attachment(
    db: &Connection,
    conv: &str,
    message_id: &[u8],
) -> Result<Option<kith_files::Attachment>> {
    type Row = (
        String,
        Vec<u8>,
        Vec<u8>,
        Vec<u8>,
        i64,
        Vec<u8>,
        String,
        String,
        String,
        u32,
    );
    let row: Option<Row> = db
        .prepare_cached(
            "SELECT relay_url, blob_id, file_key, nonce, size, hash, filename, content_type, caption, expires \
             FROM files WHERE conversation_id = ?1 AND message_id = ?2",
        )?
        .query_row(params![conv, message_id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
            ))
        })
        .optional()?;
    let Some((
        relay_url,
        blob_id,
        key,
        nonce,
        size,
        hash,
        filename,
        content_type,
        caption,
        expires,
    )) = row
    else {
        return Ok(None);
    };
    let corrupt = |what: &str| crate::error::CoreError::Corrupt(format!("a file's {what}"));
    Ok(Some(kith_files::Attachment {
        relay_url,
        blob_id: blob_id.try_into().map_err(|_| corrupt("blob id"))?,
        key: kith_files::FileKey::from_parts(&key, &nonce).map_err(|_| corrupt("key"))?,
        size: u64::try_from(size).map_err(|_| corrupt("size"))?,
        hash: hash.try_into().map_err(|_| corrupt("hash"))?,
        filename,
        content_type,
        caption,
        expires,
    }))
}

/// A member's capabilities as a searchable string: every media type and
/// feature between spaces.
pub(crate) fn capability_tokens(caps: &Capabilities) -> String {
    let mut tokens = String::from(" ");
    for t in caps.media_types().iter().chain(caps.features()) {
        tokens.push_str(t);
        tokens.push(' ');
    }
    tokens
}

/// Keeps what `member` advertised (content-v1.md §8.1), replacing what it
/// said before. In a group of at most [`SMALL_GROUP`] members, a member
/// heard from for the first time (one who just joined) is told this
/// user's capabilities in turn: it joined after they were sent.
pub(crate) fn store_capabilities(
    tx: &Connection,
    conv: &str,
    member: &[u8],
    media_types: &[String],
    features: &[String],
) -> Result<()> {
    let caps = Capabilities::new(media_types, features);
    let known: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM capabilities WHERE conversation_id = ?1 AND member = ?2)",
        )?
        .query_row(params![conv, member], |r| r.get(0))?;
    tx.prepare_cached(
        "INSERT INTO capabilities (conversation_id, member, tokens) VALUES (?1, ?2, ?3) \
         ON CONFLICT (conversation_id, member) DO UPDATE SET tokens = excluded.tokens",
    )?
    .execute(params![conv, member, capability_tokens(&caps)])?;
    if !known {
        tx.prepare_cached(
            "UPDATE conversations SET caps_sent = NULL WHERE id = ?1 AND kind = 'group' \
             AND (SELECT COUNT(*) FROM group_members WHERE conversation_id = ?1) <= ?2",
        )?
        .execute(params![conv, SMALL_GROUP])?;
    }
    Ok(())
}

/// Groups up to this size tell each new member their capabilities (and
/// send receipts); in larger ones a member not heard from is taken for an
/// older kith, which costs only a plain alternative's bytes.
pub(crate) const SMALL_GROUP: i64 = 32;

/// How long a call rings before it counts as missed.
pub(crate) const RING_TIMEOUT_MS: u64 = 60_000;
/// Most ICE candidates kept for one call.
const MAX_CANDIDATES: i64 = 64;

/// A call's row in words, as the history shows it.
pub(crate) fn call_text(
    state: &str,
    outgoing: bool,
    video: bool,
    duration_ms: Option<u64>,
) -> String {
    let call = if video { "video call" } else { "call" };
    match (state, outgoing) {
        ("ringing", true) => format!("calling ({call})"),
        ("ringing", false) => format!("incoming {call}"),
        ("active", _) => format!("{call} in progress"),
        ("missed", true) => format!("{call}, no answer"),
        ("missed", false) => format!("missed {call}"),
        ("declined", true) => format!("{call}, declined"),
        ("declined", false) => format!("declined {call}"),
        _ => match duration_ms {
            Some(d) => format!("{call}, {}", crate::views::duration_words(d / 1000)),
            None => format!("{call}, ended"),
        },
    }
}

/// Applies a call signal (content-v1.md §7.11) sent by this user
/// (`outgoing`) or the other side at `sent_at`: the call's row and its
/// line in the conversation. Returns what to tell the user, if anything.
pub(crate) fn apply_call(
    tx: &Connection,
    conv: &str,
    outgoing: bool,
    signal: &CallSignal,
    sent_at: u64,
    now: u64,
) -> Result<Option<String>> {
    use kith_content::kind::CallStep;
    let id = signal.call_id.as_slice();
    let known: Option<(String, bool, bool, Option<i64>)> = tx
        .prepare_cached(
            "SELECT state, outgoing, video, answered_at FROM calls WHERE conversation_id = ?1 AND call_id = ?2",
        )?
        .query_row(params![conv, id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let (new_state, tell): (&str, Option<String>) = match (signal.step, &known) {
        (CallStep::Offer, None) => {
            let state = if !outgoing && now.saturating_sub(sent_at) > RING_TIMEOUT_MS {
                "missed"
            } else {
                "ringing"
            };
            tx.prepare_cached(
                "INSERT INTO calls (conversation_id, call_id, outgoing, video, state, started_at, offer) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![conv, id, outgoing, signal.video, state, ms(sent_at), signal.payload])?;
            let text = call_text(state, outgoing, signal.video, None);
            tx.prepare_cached(
                "INSERT OR IGNORE INTO messages (conversation_id, message_id, outgoing, sent_at, received_at, text, kind, data, state) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'call', ?2, ?7)",
            )?
            .execute(params![conv, id, outgoing, ms(sent_at), ms(now), text, state])?;
            return Ok((!outgoing).then(|| {
                if state == "missed" {
                    text
                } else {
                    format!(
                        "is calling ({})",
                        if signal.video { "video" } else { "audio" }
                    )
                }
            }));
        }
        (_, None) | (CallStep::Offer, Some(_)) => return Ok(None),
        (CallStep::Candidate, Some(_)) => {
            tx.prepare_cached(
                "UPDATE calls SET candidates = candidates || ?3 || char(10) \
                 WHERE conversation_id = ?1 AND call_id = ?2 \
                 AND length(candidates) - length(replace(candidates, char(10), '')) < ?4",
            )?
            .execute(params![conv, id, signal.payload, MAX_CANDIDATES])?;
            return Ok(None);
        }
        (CallStep::Answer, Some((state, ..))) if state == "ringing" => {
            tx.prepare_cached(
                "UPDATE calls SET state = 'active', answered_at = ?3, answer = ?4 WHERE conversation_id = ?1 AND call_id = ?2",
            )?
            .execute(params![conv, id, ms(sent_at), signal.payload])?;
            ("active", (!outgoing).then(|| "answered".to_string()))
        }
        (CallStep::Decline, Some((state, ..))) if state == "ringing" => (
            "declined",
            (!outgoing).then(|| "declined the call".to_string()),
        ),
        (CallStep::Hangup, Some((state, call_out, ..))) if state == "ringing" => {
            let tell = (!outgoing && !call_out).then(|| "missed call".to_string());
            ("missed", tell)
        }
        (CallStep::Hangup, Some((state, ..))) if state == "active" => {
            ("ended", (!outgoing).then(|| "hung up".to_string()))
        }
        _ => return Ok(None),
    };
    let Some((_, call_out, video, answered_at)) = known else {
        return Ok(None);
    };
    let answered = if new_state == "active" {
        Some(sent_at)
    } else {
        answered_at.and_then(|a| u64::try_from(a).ok())
    };
    let duration = (new_state == "ended")
        .then(|| answered.map(|a| sent_at.saturating_sub(a)))
        .flatten();
    if new_state != "active" {
        tx.prepare_cached(
            "UPDATE calls SET state = ?3, ended_at = ?4 WHERE conversation_id = ?1 AND call_id = ?2",
        )?
        .execute(params![conv, id, new_state, ms(sent_at)])?;
    }
    tx.prepare_cached(
        "UPDATE messages SET state = ?3, text = ?4 WHERE conversation_id = ?1 AND message_id = ?2 AND kind = 'call'",
    )?
    .execute(params![conv, id, new_state, call_text(new_state, call_out, video, duration)])?;
    Ok(tell)
}

/// Deletes every message whose timer ran out (content-v1.md §7.9), with
/// its reactions and receipts, overwriting it on disk; calls that rang
/// unanswered too long become missed. Returns whether anything was
/// deleted (the caller then empties the write-ahead log: [`purge_log`]).
pub(crate) fn purge_expired(tx: &Connection, now: u64) -> Result<bool> {
    let gone: Vec<(String, Option<Vec<u8>>, Vec<u8>)> = tx
        .prepare_cached(
            "DELETE FROM messages WHERE expires_at IS NOT NULL AND expires_at <= ?1 \
             RETURNING conversation_id, content_id, message_id",
        )?
        .query_map([ms(now)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (conv, content_id, message_id) in &gone {
        tx.prepare_cached(
            "UPDATE files SET gone = 1 WHERE conversation_id = ?1 AND message_id = ?2",
        )?
        .execute(params![conv, message_id])?;
        let Some(target) = content_id else { continue };
        for table in ["reactions", "receipts", "receipts_due"] {
            tx.prepare_cached(&format!(
                "DELETE FROM {table} WHERE conversation_id = ?1 AND target = ?2"
            ))?
            .execute(params![conv, target])?;
        }
    }
    let stale: Vec<(String, Vec<u8>, bool, bool)> = tx
        .prepare_cached(
            "UPDATE calls SET state = 'missed', ended_at = started_at + ?2 \
             WHERE state = 'ringing' AND started_at + ?2 < ?1 RETURNING conversation_id, call_id, outgoing, video",
        )?
        .query_map(params![ms(now), ms(RING_TIMEOUT_MS)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (conv, id, outgoing, video) in stale {
        tx.prepare_cached(
            "UPDATE messages SET state = 'missed', text = ?3 WHERE conversation_id = ?1 AND message_id = ?2 AND kind = 'call'",
        )?
        .execute(params![conv, id, call_text("missed", outgoing, video, None)])?;
    }
    Ok(!gone.is_empty())
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
            // Its file goes too (files-v1.md §7): the runtime removes the
            // downloaded copy and the blob.
            tx.prepare_cached(
                "UPDATE files SET gone = 1 WHERE conversation_id = ?1 AND message_id IN \
                 (SELECT message_id FROM messages WHERE conversation_id = ?1 AND content_id = ?2)",
            )?
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
