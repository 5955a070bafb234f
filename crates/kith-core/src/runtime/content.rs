//! Sending what people say (content-v1.md §7): texts, mail, replies,
//! reactions, edits and deletes, timers, payments, calls, application
//! parts; the capabilities each conversation is told (§8.1) and the
//! receipts this user owes (§7.8). What a kind looks like is decided in
//! `kith-content`; this module stores, encrypts and queues it.

use kith_content::kind::{
    self, CallSignal, CallStep, Kind, Need, PaymentState, ReceiptStatus, feature,
};
use kith_content::payto::PaytoUri;
use kith_content::show::{SUBJECT, Shown, markdown_to_plain};
use kith_content::{
    CONTENT_V1, Content, Disposition, Expiration, ExtensionName, ExtensionValue, MARKDOWN,
    MAX_CONTENT, MessageId, PLAIN_TEXT, Part,
};
use kith_wire::Codec;
use kith_wire::conv::PairFrame;
use kith_wire::relay::to_hex;
use rusqlite::{OptionalExtension, params};

use crate::error::{CoreError, Result, check_len};
use crate::ids::random;
use crate::runtime::Engine;
use crate::store;
use crate::store::{ConversationState, Extra, QueueOptions, encrypt_in, ms, queue_with};
use crate::views::{CallView, MessageView, PaymentView};

/// What the sender keeps of a frame it sends.
enum Outgoing {
    /// A message shown as one: text, mail, reply, timer, payment, app part.
    Message {
        shown: Shown,
        content: Content,
        kind: Kind,
    },
    Reaction {
        reaction: store::Reaction,
        view: MessageView,
    },
    /// An edit (`text`) or a delete (`None`) of this user's message.
    Change {
        target: [u8; 32],
        text: Option<String>,
        view: MessageView,
    },
    Call(CallSignal),
    /// Capabilities and receipts: nothing is kept but the sending.
    Control,
}

/// A stored message that a reply, reaction, edit, delete or payment
/// status names.
pub(crate) struct FoundMessage {
    /// Its ContentV1 id (content-v1.md §5).
    content_id: [u8; 32],
    text: String,
    /// Its writer's identity key; `None` from before authors were kept.
    author: Option<Vec<u8>>,
    /// Its frame id, as `read` shows it.
    pub(crate) message_id: Vec<u8>,
    sent_at: u64,
}

/// Longest mail subject, in bytes of UTF-8.
const MAX_SUBJECT: u32 = 1_000;
/// Longest disappearing timer: a year.
pub(crate) const MAX_TIMER: u32 = 365 * 24 * 3600;
/// Groups larger than this get no receipts: each member's receipt goes to
/// every member, so their cost grows with the square of the group.
const MAX_RECEIPT_GROUP: u64 = store::SMALL_GROUP as u64;
/// Longest application part.
const MAX_APP_DATA: usize = 100_000;

impl Engine {
    /// Sends a text message. It is stored and queued first, so a relay that
    /// cannot be reached loses nothing: the next send or sync retries.
    /// With a disappearing timer set it goes as ContentV1, which carries
    /// the expiry (content-v1.md §7.9); otherwise as a text frame.
    pub async fn send(&mut self, conv: &str, text: &str) -> Result<MessageView> {
        if text.is_empty() {
            return Err(CoreError::Empty("message"));
        }
        check_len("message", text, kith_wire::conv::MAX_TEXT)?;
        let id = self.resolve(conv)?;
        let shown = Shown {
            text: text.to_string(),
            subject: None,
        };
        if self.timer(&id)? > 0 {
            let content = Content::new(
                random()?,
                Part::single(Disposition::RENDER, PLAIN_TEXT, text.as_bytes()),
            );
            return self
                .send_content(&id, content, false, text.to_string(), Kind::Message, shown)
                .await;
        }
        let message_id: [u8; 16] = random()?;
        let sent_at = self.now();
        let frame = PairFrame::Text {
            message_id,
            sent_at_ms: sent_at,
            text: text.to_string(),
        };
        let content = Content::of_text(message_id, text);
        let outgoing = Outgoing::Message {
            shown,
            content,
            kind: Kind::Message,
        };
        self.send_frame(&id, message_id, sent_at, frame, outgoing)
            .await
    }

    /// Sends a mail: a subject and a markdown body (content-v1.md §7.4),
    /// with a plain-text alternative unless every member shows markdown.
    pub async fn send_mail(
        &mut self,
        conv: &str,
        subject: &str,
        body: &str,
    ) -> Result<MessageView> {
        if subject.trim().is_empty() {
            return Err(CoreError::Empty("subject"));
        }
        if body.trim().is_empty() {
            return Err(CoreError::Empty("mail body"));
        }
        check_len("subject", subject, MAX_SUBJECT)?;
        let id = self.resolve(conv)?;
        let plain = markdown_to_plain(body);
        let attach = !self.peers_meet(&id, &Need::MediaType("text/markdown".into()))?;
        let markdown = Part::single(Disposition::RENDER, MARKDOWN, body.as_bytes());
        let mut content = Content::new(random()?, kind::with_plain(markdown, &plain, attach));
        content.extensions.insert(
            ExtensionName::Text(SUBJECT.into()),
            ExtensionValue::Text(subject.into()),
        );
        if content.to_cbor().len() > MAX_CONTENT {
            return Err(CoreError::TooLong {
                what: "mail body",
                max: if attach { MAX_CONTENT / 2 } else { MAX_CONTENT },
                len: body.len(),
            });
        }
        let shown = Shown {
            text: plain.clone(),
            subject: Some(subject.to_string()),
        };
        let fallback = format!("Subject: {subject}\n\n{plain}");
        self.send_content(&id, content, false, fallback, Kind::Message, shown)
            .await
    }

    /// Replies to a message (content-v1.md §7.5): a text naming it.
    pub async fn send_reply(&mut self, conv: &str, to: &str, text: &str) -> Result<MessageView> {
        if text.is_empty() {
            return Err(CoreError::Empty("message"));
        }
        check_len("message", text, kith_wire::conv::MAX_TEXT / 2)?;
        let id = self.resolve(conv)?;
        let target = self.find_message(&id, to)?;
        let mut content = Content::new(
            random()?,
            Part::single(Disposition::RENDER, PLAIN_TEXT, text.as_bytes()),
        );
        content.in_reply_to = Some(MessageId(target.content_id));
        let first_line = store::first_line(&target.text);
        let fallback = format!("\u{21aa} \u{201c}{first_line}\u{201d}\n{text}");
        let shown = Shown {
            text: text.to_string(),
            subject: None,
        };
        self.send_content(&id, content, false, fallback, Kind::Message, shown)
            .await
    }

    /// Edits this user's message `message` to `text` (content-v1.md §7.7):
    /// every member shows the new text, marked edited.
    pub async fn edit(&mut self, conv: &str, message: &str, text: &str) -> Result<MessageView> {
        if text.is_empty() {
            return Err(CoreError::Empty("message"));
        }
        check_len("message", text, kith_wire::conv::MAX_TEXT / 2)?;
        self.change(conv, message, Some(text)).await
    }

    /// Deletes this user's message `message` for everyone (content-v1.md
    /// §7.7): every member's kith empties it (overwriting it on disk) and
    /// shows that it was deleted.
    pub async fn delete_for_everyone(&mut self, conv: &str, message: &str) -> Result<()> {
        self.change(conv, message, None).await?;
        // A file goes with its message: the blob, and any copy downloaded.
        self.clean_files().await
    }

    async fn change(
        &mut self,
        conv: &str,
        message: &str,
        text: Option<&str>,
    ) -> Result<MessageView> {
        let id = self.resolve(conv)?;
        let target = self.find_message(&id, message)?;
        if target.author != Some(self.my_key(&id)?) {
            return Err(CoreError::NotAuthor);
        }
        let first_line = store::first_line(&target.text);
        let mut content = Content::new(
            random()?,
            match text {
                Some(t) => Part::single(Disposition::RENDER, PLAIN_TEXT, t.as_bytes()),
                None => Part::null(Disposition::RENDER),
            },
        );
        content.replaces = Some(MessageId(target.content_id));
        // Critical where every member processes it: shown as a plain
        // message, an edit or a delete would read as something new said
        // (content-v1.md §7.2). A member that cannot gets it as a plain
        // message that says what happened.
        let need = Need::Feature(if text.is_some() {
            feature::EDITS
        } else {
            feature::DELETES
        });
        let critical = self.peers_meet(&id, &need)?;
        let fallback = match text {
            Some(t) => format!("edited \u{201c}{first_line}\u{201d} to: {t}"),
            None => format!("deleted \u{201c}{first_line}\u{201d}"),
        };
        let (message_id, sent_at, frame) = self.content_frame(&content, critical, fallback)?;
        let view = MessageView {
            id: to_hex(&target.message_id),
            conversation: id.clone(),
            from: "me".into(),
            outgoing: true,
            sent_at: target.sent_at,
            received_at: sent_at,
            text: text.unwrap_or_default().to_string(),
            edited: text.is_some(),
            deleted: text.is_none(),
            ..MessageView::default()
        };
        let outgoing = Outgoing::Change {
            target: target.content_id,
            text: text.map(str::to_string),
            view,
        };
        self.send_frame(&id, message_id, sent_at, frame, outgoing)
            .await
    }

    /// Reacts to a message with `emoji` (content-v1.md §7.6), replacing
    /// this user's reaction to it; `None` takes it back.
    pub async fn react(&mut self, conv: &str, to: &str, emoji: Option<&str>) -> Result<()> {
        if let Some(e) = emoji {
            if e.trim().is_empty() {
                return Err(CoreError::Empty("reaction"));
            }
            check_len("reaction", e, kind::MAX_REACTION as u32)?;
        }
        let id = self.resolve(conv)?;
        let target = self.find_message(&id, to)?;
        let first_line = store::first_line(&target.text);
        let mut content = Content::new(
            random()?,
            match emoji {
                Some(e) => Part::single(Disposition::REACTION, PLAIN_TEXT, e.as_bytes()),
                None => Part::null(Disposition::REACTION),
            },
        );
        content.in_reply_to = Some(MessageId(target.content_id));
        // Taking a reaction back is critical where every member knows
        // reactions: shown as a plain message it would read as something
        // said (content-v1.md §7.2).
        let (fallback, critical) = match emoji {
            Some(e) => (
                format!("reacted {e} to \u{201c}{first_line}\u{201d}"),
                false,
            ),
            None => (
                format!("took back a reaction to \u{201c}{first_line}\u{201d}"),
                self.peers_meet(&id, &Need::Feature(feature::REACTIONS))?,
            ),
        };
        let (message_id, sent_at, frame) = self.content_frame(&content, critical, fallback)?;
        let reaction = store::Reaction {
            target: target.content_id,
            emoji: emoji.map(str::to_string),
        };
        let view = MessageView {
            id: to_hex(&message_id),
            conversation: id.clone(),
            from: "me".into(),
            outgoing: true,
            sent_at,
            received_at: sent_at,
            ..MessageView::default()
        };
        let outgoing = Outgoing::Reaction { reaction, view };
        self.send_frame(&id, message_id, sent_at, frame, outgoing)
            .await?;
        Ok(())
    }

    /// Sets the conversation's disappearing timer (content-v1.md §7.9):
    /// messages sent after it disappear `seconds` after they were sent,
    /// from every member's kith and from the relay; 0 turns it off.
    pub async fn set_timer(&mut self, conv: &str, seconds: u32) -> Result<MessageView> {
        if seconds > MAX_TIMER {
            return Err(CoreError::TooLong {
                what: "timer (in seconds)",
                len: seconds as usize,
                max: MAX_TIMER as usize,
            });
        }
        let id = self.resolve(conv)?;
        let attach = !self.peers_meet(&id, &Need::Feature(feature::TIMERS))?;
        let words = store::timer_text("", seconds).trim_start().to_string();
        let content = Content::new(
            random()?,
            kind::with_plain(kind::timer_part(seconds), &words, attach),
        );
        let shown = Shown {
            text: store::timer_text("you", seconds),
            subject: None,
        };
        // Only a kith that knows timers enforces it: the fallback says so.
        let fallback = format!("{words} (your kith does not make messages disappear)");
        self.send_content(
            &id,
            content,
            false,
            fallback,
            Kind::Timer { seconds },
            shown,
        )
        .await
    }

    /// Turns this user's receipts in a conversation on or off (content-v1.md
    /// §7.8). Off, it sends none; what others send is still shown.
    pub fn set_receipts(&mut self, conv: &str, on: bool) -> Result<()> {
        let id = self.resolve(conv)?;
        self.db.execute(
            "UPDATE conversations SET receipts = ?2 WHERE id = ?1",
            params![id, on],
        )?;
        if !on {
            self.db
                .execute("DELETE FROM receipts_due WHERE conversation_id = ?1", [&id])?;
        }
        Ok(())
    }

    /// Asks for a payment (content-v1.md §7.10): a `payto:` URI (RFC 8905)
    /// with an amount and a note, for the other side's payment app.
    pub async fn request_payment(
        &mut self,
        conv: &str,
        target: &str,
        amount: Option<&str>,
        note: Option<&str>,
    ) -> Result<MessageView> {
        let uri = PaytoUri::new(target, amount, note, None)
            .map_err(|e| CoreError::BadPayment(e.to_string()))?;
        let id = self.resolve(conv)?;
        let describe = uri.describe();
        let attach = !self.peers_meet(&id, &Need::Feature(feature::PAYMENTS))?;
        let plain = format!("a payment request: {describe} ({})", uri.uri());
        let part = Part::single(Disposition::RENDER, kind::PAYTO, uri.uri().as_bytes());
        let content = Content::new(random()?, kind::with_plain(part, &plain, attach));
        let shown = Shown {
            text: format!("payment request: {describe}"),
            subject: None,
        };
        self.send_content(&id, content, false, plain, Kind::PaymentRequest(uri), shown)
            .await
    }

    /// Answers a payment request: paid (with the payment's reference,
    /// if any) or declined.
    pub async fn answer_payment(
        &mut self,
        conv: &str,
        request: &str,
        state: PaymentState,
        reference: Option<&str>,
    ) -> Result<MessageView> {
        let reference = reference.unwrap_or_default();
        check_len("reference", reference, kind::MAX_PAYMENT_TEXT as u32)?;
        if reference.contains('\n') {
            return Err(CoreError::BadPayment("a reference is one line".into()));
        }
        let id = self.resolve(conv)?;
        let target = self.find_message(&id, request)?;
        let Some(payment) = store::payment_of(&self.db, &id, &target.content_id)? else {
            return Err(CoreError::NoSuchMessage(format!(
                "{request} (it is not a payment request)"
            )));
        };
        let request_id = MessageId(target.content_id);
        let attach = !self.peers_meet(&id, &Need::Feature(feature::PAYMENTS))?;
        let text = {
            let reference = if reference.is_empty() {
                String::new()
            } else {
                format!(" (reference: {reference})")
            };
            format!(
                "{} the payment request \u{201c}{}\u{201d}{reference}",
                state.as_str(),
                payment.description
            )
        };
        let part = kind::payment_status_part(state, reference);
        let mut content = Content::new(random()?, kind::with_plain(part, &text, attach));
        content.in_reply_to = Some(request_id);
        let shown = Shown {
            text: text.clone(),
            subject: None,
        };
        let kind = Kind::PaymentStatus {
            request: request_id,
            state,
            reference: reference.to_string(),
        };
        self.send_content(&id, content, false, text, kind, shown)
            .await
    }

    /// The payment request `message`, as it stands.
    pub fn payment(&self, conv: &str, message: &str) -> Result<PaymentView> {
        let id = self.resolve(conv)?;
        let target = self.find_message(&id, message)?;
        store::payment_of(&self.db, &id, &target.content_id)?.ok_or_else(|| {
            CoreError::NoSuchMessage(format!("{message} (it is not a payment request)"))
        })
    }

    /// Sends an application's part (content-v1.md §7.12): bytes of its
    /// media type, with the sentence a person sees instead.
    pub async fn send_app(
        &mut self,
        conv: &str,
        content_type: &str,
        data: &[u8],
        fallback: &str,
    ) -> Result<MessageView> {
        let media = kind::media_type(content_type);
        let (top, sub) = media.split_once('/').unwrap_or_default();
        let token = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
        };
        if !token(top) || !token(sub) || top == "text" || media.starts_with("application/vnd.kith.")
        {
            return Err(CoreError::BadContentType(content_type.to_string()));
        }
        if fallback.trim().is_empty() {
            return Err(CoreError::Empty("fallback text"));
        }
        check_len("fallback text", fallback, kind::MAX_PAYMENT_TEXT as u32)?;
        if data.len() > MAX_APP_DATA {
            return Err(CoreError::TooLong {
                what: "application data",
                len: data.len(),
                max: MAX_APP_DATA,
            });
        }
        let id = self.resolve(conv)?;
        let attach = !self.peers_meet(&id, &Need::MediaType(media))?;
        let part = Part::single(Disposition::RENDER, content_type, data);
        let content = Content::new(random()?, kind::with_plain(part, fallback, attach));
        let shown = Shown {
            text: fallback.to_string(),
            subject: None,
        };
        let kind = Kind::App {
            content_type: content_type.to_string(),
            data: data.to_vec(),
        };
        self.send_content(&id, content, false, fallback.to_string(), kind, shown)
            .await
    }

    /// Rings the other side of a 1:1 conversation (content-v1.md §7.11)
    /// with an SDP offer; the call's id names it afterwards.
    pub async fn call(&mut self, conv: &str, video: bool, offer: &str) -> Result<CallView> {
        let id = self.resolve(conv)?;
        if self.is_group(&id)? {
            return Err(CoreError::NotAContact(conv.to_string()));
        }
        if !self.peers_meet(&id, &Need::Feature(feature::CALLS))? {
            return Err(CoreError::CannotCall(self.view(&id)?.name));
        }
        let signal = CallSignal {
            call_id: random()?,
            step: CallStep::Offer,
            video,
            payload: offer.to_string(),
        };
        self.send_call(&id, signal).await
    }

    /// A step of a call after its offer: answer, ICE candidate, hang up,
    /// decline. `call` is its id (or a prefix of it).
    pub async fn call_step(
        &mut self,
        conv: &str,
        call: &str,
        step: CallStep,
        payload: &str,
    ) -> Result<CallView> {
        let id = self.resolve(conv)?;
        let (found, call_id) = self.find_call(&id, call)?;
        let signal = CallSignal {
            call_id,
            step,
            video: found.video,
            payload: payload.to_string(),
        };
        self.send_call(&id, signal).await
    }

    async fn send_call(&mut self, id: &str, signal: CallSignal) -> Result<CallView> {
        if signal.payload.len() > kind::MAX_CALL_PAYLOAD {
            return Err(CoreError::TooLong {
                what: "call description",
                len: signal.payload.len(),
                max: kind::MAX_CALL_PAYLOAD,
            });
        }
        let content = Content::new(random()?, kind::call_part(&signal));
        let fallback = match signal.step {
            CallStep::Offer => "is calling you (a kith that can take calls answers)",
            CallStep::Answer => "answered the call",
            CallStep::Candidate => "call setup",
            CallStep::Hangup => "ended the call",
            CallStep::Decline => "declined the call",
        };
        // Only sent where the other side takes calls: never shown raw.
        let (message_id, sent_at, frame) = self.content_frame(&content, true, fallback.into())?;
        let call_id = to_hex(&signal.call_id);
        self.send_frame(id, message_id, sent_at, frame, Outgoing::Call(signal))
            .await?;
        self.calls(id)?
            .into_iter()
            .find(|c| c.id == call_id)
            .ok_or_else(|| CoreError::NoSuchCall(call_id))
    }

    /// A call with its offer, answer and candidates (its id, or a prefix).
    pub fn call_session(&self, conv: &str, call: &str) -> Result<crate::views::CallSession> {
        let id = self.resolve(conv)?;
        let (found, call_id) = self.find_call(&id, call)?;
        let (offer, answer, candidates): (Option<String>, Option<String>, String) =
            self.db.query_row(
                "SELECT offer, answer, candidates FROM calls WHERE conversation_id = ?1 AND call_id = ?2",
                params![id, call_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
        Ok(crate::views::CallSession {
            call: found,
            offer,
            answer,
            candidates: candidates
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }

    /// The one call of conversation `id` whose id starts with `call`, and
    /// its id as bytes.
    fn find_call(&self, id: &str, call: &str) -> Result<(CallView, [u8; 16])> {
        let prefix = call.trim().to_ascii_lowercase();
        let mut found: Vec<CallView> = self
            .calls(id)?
            .into_iter()
            .filter(|c| !prefix.is_empty() && c.id.starts_with(&prefix))
            .collect();
        let (Some(found), None) = (found.pop(), found.pop()) else {
            return Err(CoreError::NoSuchCall(call.to_string()));
        };
        let call_id = kith_wire::relay::from_hex(&found.id)
            .ok_or_else(|| CoreError::Corrupt("a call id".into()))?;
        Ok((found, call_id))
    }

    /// The conversation's calls, newest first.
    pub fn calls(&self, conv: &str) -> Result<Vec<CallView>> {
        let id = self.resolve(conv)?;
        store::calls(&self.db, &id)
    }

    /// Tells every conversation whose members have not heard it what this
    /// user's kith shows and does (content-v1.md §8.1): once, and again
    /// whenever that changes (a new version, an application's types). Not
    /// in a group of more than [`store::SMALL_GROUP`]: there no member can
    /// hear from every other (joiners are not told), so it would change
    /// nothing a sender does, and a thousand frames slow every join.
    pub async fn advertise_capabilities(&mut self) -> Result<()> {
        let caps = self.config.capabilities.clone();
        let tokens = store::capability_tokens(&caps);
        let due: Vec<String> = self
            .db
            .prepare(
                "SELECT id FROM conversations c WHERE state = 'active' AND blocked = 0 AND kind != 'address' \
                 AND (caps_sent IS NULL OR caps_sent != ?1) \
                 AND (kind = 'pair' OR \
                      (SELECT COUNT(*) FROM group_members m WHERE m.conversation_id = c.id) <= ?2)",
            )?
            .query_map(params![tokens, store::SMALL_GROUP], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for id in due {
            let frame = PairFrame::Capabilities {
                media_types: caps.media_types().to_vec(),
                features: caps.features().to_vec(),
            };
            let (message_id, sent_at) = (random()?, self.now());
            match self
                .send_frame(&id, message_id, sent_at, frame, Outgoing::Control)
                .await
            {
                // Queued counts: the outbox sends it with what follows.
                Ok(_) | Err(CoreError::Queued(_)) => {
                    self.db.execute(
                        "UPDATE conversations SET caps_sent = ?2 WHERE id = ?1",
                        params![id, tokens],
                    )?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends the receipts this user owes (content-v1.md §7.8): one per
    /// conversation and status, for the messages that arrived or were
    /// read since. None for a conversation this user blocked or turned
    /// receipts off in, a group of more than [`MAX_RECEIPT_GROUP`], or
    /// members whose kith does not take receipts.
    pub async fn flush_receipts(&mut self) -> Result<()> {
        let due: Vec<(String, u8)> = self
            .db
            .prepare("SELECT DISTINCT conversation_id, status FROM receipts_due")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, status) in due {
            let targets: Vec<MessageId> = self
                .db
                .prepare(
                    "DELETE FROM receipts_due WHERE conversation_id = ?1 AND status = ?2 \
                     RETURNING target",
                )?
                .query_map(params![id, status], |r| r.get::<_, Vec<u8>>(0))?
                .filter_map(|t| t.ok().and_then(|t| t.try_into().ok()).map(MessageId))
                .collect();
            let (on, blocked, state, members): (bool, bool, ConversationState, i64) =
                self.db.query_row(
                    "SELECT receipts, blocked, state, \
                            (SELECT COUNT(*) FROM group_members m WHERE m.conversation_id = c.id) \
                     FROM conversations c WHERE id = ?1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )?;
            if !on
                || blocked
                || state != ConversationState::Active
                || u64::try_from(members).unwrap_or(u64::MAX) > MAX_RECEIPT_GROUP
                || targets.is_empty()
                || !self.peers_meet(&id, &Need::Feature(feature::RECEIPTS))?
            {
                continue;
            }
            let status = if status == ReceiptStatus::Read as u8 {
                ReceiptStatus::Read
            } else {
                ReceiptStatus::Delivered
            };
            for chunk in targets.chunks(kind::MAX_RECEIPT_IDS) {
                let content = Content::new(random()?, kind::receipt_part(status, chunk));
                let (message_id, sent_at, frame) =
                    self.content_frame(&content, true, "a receipt".into())?;
                match self
                    .send_frame(&id, message_id, sent_at, frame, Outgoing::Control)
                    .await
                {
                    Ok(_) | Err(CoreError::Queued(_) | CoreError::Refused(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// The conversation's disappearing timer, in seconds (0: off).
    pub(crate) fn timer(&self, id: &str) -> Result<u32> {
        Ok(self
            .db
            .query_row("SELECT timer FROM conversations WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?
            .unwrap_or(0))
    }

    /// Whether every other member is known to process what `need` names
    /// (content-v1.md §8.2): a member that never advertised is taken for
    /// an older kith.
    pub(crate) fn peers_meet(&self, id: &str, need: &Need) -> Result<bool> {
        let token = match need {
            Need::Feature(f) => format!(" {f} "),
            Need::MediaType(t) => format!(" {t} "),
        };
        let me = self.my_key(id)?;
        let sql = if self.is_group(id)? {
            "SELECT NOT EXISTS (SELECT 1 FROM group_members m LEFT JOIN capabilities c \
               ON c.conversation_id = m.conversation_id AND c.member = m.identity_key \
             WHERE m.conversation_id = ?1 AND m.identity_key != ?2 \
               AND (c.tokens IS NULL OR instr(c.tokens, ?3) = 0))"
        } else {
            "SELECT EXISTS (SELECT 1 FROM capabilities WHERE conversation_id = ?1 \
               AND member != ?2 AND instr(tokens, ?3) > 0)"
        };
        Ok(self
            .db
            .query_row(sql, params![id, me, token], |r| r.get(0))?)
    }

    /// Sends a ContentV1 message shown as one, with the conversation's
    /// timer (content-v1.md §7.9) when one is set.
    pub(crate) async fn send_content(
        &mut self,
        id: &str,
        mut content: Content,
        critical: bool,
        fallback: String,
        kind: Kind,
        shown: Shown,
    ) -> Result<MessageView> {
        let timer = self.timer(id)?;
        if timer > 0 && !matches!(kind, Kind::Timer { .. }) {
            content.expires = Some(Expiration {
                relative: true,
                time: timer,
            });
        }
        let (message_id, sent_at, frame) = self.content_frame(&content, critical, fallback)?;
        let outgoing = Outgoing::Message {
            shown,
            content,
            kind,
        };
        self.send_frame(id, message_id, sent_at, frame, outgoing)
            .await
    }

    /// Stores, encrypts and queues a frame, then sends it. `outgoing` is
    /// what this user keeps of it.
    async fn send_frame(
        &mut self,
        id: &str,
        message_id: [u8; 16],
        sent_at: u64,
        frame: PairFrame,
        outgoing: Outgoing,
    ) -> Result<MessageView> {
        self.check_sendable(id)?;
        let me = self.my_key(id)?;
        let group = self.prepare_send(id).await?;
        let at = self.now();
        let tx = self.db.transaction()?;
        // Loaded, encrypted and stored in one transaction (pair-v1.md §12).
        let sealed = encrypt_in(&tx, id, &frame)?;
        let mut ttl_secs = None;
        let view = match &outgoing {
            Outgoing::Message {
                shown,
                content,
                kind,
            } => {
                tx.execute(
                    "UPDATE conversations SET last_activity = ?2 WHERE id = ?1",
                    params![id, ms(sent_at)],
                )?;
                let content_id = content.id(&me, id.as_bytes()).0;
                let reply_to = content.in_reply_to.map(|t| t.0);
                let expires_at = content.expires.map(|x| {
                    ttl_secs = Some(x.time);
                    sent_at.saturating_add(u64::from(x.time) * 1000)
                });
                let extra = Extra::of(kind);
                tx.execute(
                    "INSERT INTO messages (conversation_id, message_id, outgoing, sent_at, received_at, text, subject, content_id, reply_to, author, \
                                           kind, data, data_type, state, expires_at) \
                     VALUES (?1, ?2, 1, ?3, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    params![id, message_id, ms(sent_at), shown.text, shown.subject, content_id, reply_to, me,
                            extra.kind, extra.data, extra.data_type, extra.state, expires_at.map(ms)],
                )?;
                match kind {
                    Kind::Timer { seconds } => {
                        tx.execute(
                            "UPDATE conversations SET timer = ?2 WHERE id = ?1",
                            params![id, seconds],
                        )?;
                    }
                    Kind::PaymentStatus { request, state, .. } => {
                        store::set_payment_state(&tx, id, request, *state)?;
                    }
                    _ => {}
                }
                let attachment = match kind {
                    Kind::Attachment(part) => {
                        let a = kith_files::Attachment::from_part(part)
                            .map_err(|e| CoreError::File(e.to_string()))?;
                        store::store_attachment(&tx, id, &message_id, &a)?;
                        Some(a)
                    }
                    _ => None,
                };
                let mut view = MessageView {
                    id: to_hex(&message_id),
                    conversation: id.to_string(),
                    from: "me".into(),
                    outgoing: true,
                    sent_at,
                    received_at: sent_at,
                    text: shown.text.clone(),
                    subject: shown.subject.clone(),
                    reply_to: match reply_to {
                        Some(target) => store::quote(&tx, id, &target)?,
                        None => None,
                    },
                    expires_at,
                    ..MessageView::default()
                };
                store::fill_kind(&tx, id, &mut view, kind)?;
                view.file = attachment.map(|a| crate::views::file_view(&a, None));
                view
            }
            Outgoing::Reaction { reaction, view } => {
                store::set_reaction(&tx, id, reaction, &me, sent_at)?;
                view.clone()
            }
            Outgoing::Change { target, text, view } => {
                let change = match text {
                    Some(text) => store::Change::Edit {
                        text,
                        subject: None,
                    },
                    None => store::Change::Delete,
                };
                store::change_message(&tx, id, target, &me, change)?;
                view.clone()
            }
            Outgoing::Call(signal) => {
                store::apply_call(&tx, id, true, signal, sent_at, at)?;
                MessageView::default()
            }
            Outgoing::Control => MessageView::default(),
        };
        let options = QueueOptions {
            epoch: group.then_some(sealed.epoch),
            frame: group.then(|| frame.to_bytes()),
            ttl_secs,
            ..QueueOptions::default()
        };
        queue_with(&tx, id, &sealed.payload, &options, at)?;
        tx.commit()?;
        match self.flush_outbox(Some(id)).await {
            Ok(()) => {}
            Err(e @ CoreError::Refused(_)) => {
                // Never delivered: not kept as if it had been.
                match &outgoing {
                    Outgoing::Message { .. } => {
                        self.db.execute(
                            "DELETE FROM messages WHERE conversation_id = ?1 AND message_id = ?2",
                            params![id, message_id],
                        )?;
                    }
                    Outgoing::Reaction { reaction, .. } => {
                        self.db.execute(
                            "DELETE FROM reactions WHERE conversation_id = ?1 AND target = ?2 AND sender_key = ?3",
                            params![id, reaction.target, me],
                        )?;
                    }
                    // The change stays here: the relay no longer takes
                    // this user's messages (blocked or removed), and a
                    // delete is still what the user asked of this copy.
                    Outgoing::Change { .. } | Outgoing::Call(_) | Outgoing::Control => {}
                }
                return Err(e);
            }
            Err(e) => return Err(CoreError::Queued(e.to_string())),
        }
        if matches!(outgoing, Outgoing::Change { text: None, .. }) {
            store::purge_log(&self.db)?;
        }
        Ok(view)
    }

    /// Refuses, before anything is stored or sent, a conversation this
    /// user cannot send to: not yet connected, left, or blocked.
    pub(crate) fn check_sendable(&self, id: &str) -> Result<()> {
        let (state, blocked): (ConversationState, bool) = self.db.query_row(
            "SELECT state, blocked FROM conversations WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        match state {
            ConversationState::Closed | ConversationState::Leaving => {
                Err(CoreError::GroupClosed(self.view(id)?.name))
            }
            ConversationState::Invited | ConversationState::Joining => {
                Err(CoreError::NotYetConnected)
            }
            _ if blocked => Err(CoreError::Blocked(self.view(id)?.name)),
            _ => Ok(()),
        }
    }

    /// This user's identity key in a conversation.
    pub(crate) fn my_key(&self, id: &str) -> Result<Vec<u8>> {
        let identity: Vec<u8> = self.db.query_row(
            "SELECT identity FROM conversations WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?;
        Ok(
            kith_crypto::mls::IdentityKey::from_bytes(&zeroize::Zeroizing::new(identity))?
                .public()
                .to_vec(),
        )
    }

    /// A ContentV1 frame of `content`, with a fresh frame id and the time
    /// it is sent.
    fn content_frame(
        &self,
        content: &Content,
        critical: bool,
        fallback: String,
    ) -> Result<([u8; 16], u64, PairFrame)> {
        let message_id: [u8; 16] = random()?;
        let sent_at = self.now();
        let frame = PairFrame::Content(kith_wire::conv::Content {
            message_id,
            sent_at_ms: sent_at,
            content_type: CONTENT_V1,
            critical,
            fallback,
            body: content.to_cbor(),
        });
        Ok((message_id, sent_at, frame))
    }

    /// The message `message` (its id as `read` shows it, or a prefix of
    /// it) in `id`.
    pub(crate) fn find_message(&self, id: &str, message: &str) -> Result<FoundMessage> {
        let prefix = message.trim().to_ascii_lowercase();
        if prefix.is_empty() || prefix.len() > 32 || !prefix.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Err(CoreError::NoSuchMessage(message.to_string()));
        }
        // The ids a prefix covers are one range of the (conversation,
        // message_id) index: the prefix filled with 0s up to with fs.
        let bound = |fill: char| -> Vec<u8> {
            let full: String = prefix
                .chars()
                .chain(std::iter::repeat(fill))
                .take(32)
                .collect();
            (0..16)
                .filter_map(|i| {
                    full.get(2 * i..2 * i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect()
        };
        let mut stmt = self.db.prepare_cached(
            "SELECT content_id, text, author, message_id, sent_at FROM messages \
             WHERE conversation_id = ?1 AND message_id BETWEEN ?2 AND ?3 LIMIT 2",
        )?;
        type Row = (Option<Vec<u8>>, String, Option<Vec<u8>>, Vec<u8>, i64);
        let mut found: Vec<Row> = stmt
            .query_map(params![id, bound('0'), bound('f')], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        match found.as_mut_slice() {
            [(Some(content_id), text, author, message_id, sent_at)] => Ok(FoundMessage {
                content_id: <[u8; 32]>::try_from(content_id.as_slice())
                    .map_err(|_| CoreError::Corrupt("a message's content id".into()))?,
                text: std::mem::take(text),
                author: author.take(),
                message_id: std::mem::take(message_id),
                sent_at: u64::try_from(*sent_at).unwrap_or(0),
            }),
            [(None, ..)] => Err(CoreError::NoSuchMessage(format!(
                "{message} (from before this version, or a call; it cannot be replied or reacted to)"
            ))),
            [] => Err(CoreError::NoSuchMessage(message.to_string())),
            _ => Err(CoreError::NoSuchMessage(format!(
                "{message} (more than one message starts so; give more of its id)"
            ))),
        }
    }
}
