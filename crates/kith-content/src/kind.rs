//! What a message is for (content-v1.md §7) and what a member can show
//! and do (§8): the kinds beyond text and mail — reactions, edits,
//! deletes, receipts, timers, payments, calls, application parts — read
//! from a [`Content`], built into one, and the [`Capabilities`] that
//! decide whether a sender adds a plain alternative or marks a message
//! critical. No I/O: the engine stores and sends what this decides.

use crate::{Content, Disposition, MessageId, PLAIN_TEXT, Part, PartBody, Semantics};

/// A payment request: an RFC 8905 `payto:` URI (§7.10).
pub const PAYTO: &str = "application/vnd.kith.payto";
/// What became of a payment request: `paid` or `declined` (§7.10).
pub const PAYMENT_STATUS: &str = "application/vnd.kith.payment-status";
/// Delivered and read receipts (§7.8).
pub const RECEIPT: &str = "application/vnd.kith.receipt";
/// A conversation's disappearing-message timer (§7.9).
pub const TIMER: &str = "application/vnd.kith.timer";
/// A step of a call's signalling (§7.11).
pub const CALL: &str = "application/vnd.kith.call";

/// Features a member advertises (§8.1), beyond the media types it shows.
pub mod feature {
    pub const REACTIONS: &str = "reactions";
    pub const EDITS: &str = "edits";
    pub const DELETES: &str = "deletes";
    pub const RECEIPTS: &str = "receipts";
    pub const TIMERS: &str = "timers";
    pub const PAYMENTS: &str = "payments";
    pub const CALLS: &str = "calls";
    pub const FILES: &str = "files";
}

/// Most media types or features one member advertises.
pub const MAX_CAPABILITIES: usize = 64;
/// Longest advertised media type or feature.
pub const MAX_CAPABILITY: usize = 255;
/// Most messages one receipt names.
pub const MAX_RECEIPT_IDS: usize = 1_000;
/// Longest reaction, in bytes of UTF-8 (a few emoji).
pub const MAX_REACTION: usize = 64;
/// Longest call signal payload (an SDP or an ICE candidate).
pub const MAX_CALL_PAYLOAD: usize = 65_536;
/// Longest payment reference or note.
pub const MAX_PAYMENT_TEXT: usize = 1_000;

/// What a member shows (media types, compared without parameters) and
/// does (features), as it advertises them (§8.1). Both lists are sorted
/// and without repeats, so equal sets have one encoding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capabilities {
    media_types: Vec<String>,
    features: Vec<String>,
}

impl Capabilities {
    /// What this version of kith shows and does.
    pub fn this_version() -> Self {
        Self::new(
            ["text/plain", "text/markdown", PAYTO, PAYMENT_STATUS, CALL],
            [
                feature::REACTIONS,
                feature::EDITS,
                feature::DELETES,
                feature::RECEIPTS,
                feature::TIMERS,
                feature::PAYMENTS,
                feature::CALLS,
                feature::FILES,
            ],
        )
    }

    /// Plain text and nothing else: what a kith before ContentV1 could
    /// show (and what tests use to stand for an older client).
    pub fn plain_text() -> Self {
        Self::new(["text/plain"], [""; 0])
    }

    /// A set from lists as received: media types lowercased without
    /// parameters, empty and over-long entries dropped, sorted, at most
    /// [`MAX_CAPABILITIES`] of each.
    pub fn new<M, F>(media_types: M, features: F) -> Self
    where
        M: IntoIterator,
        M::Item: AsRef<str>,
        F: IntoIterator,
        F::Item: AsRef<str>,
    {
        fn clean<I>(items: I, lower: fn(&str) -> String) -> Vec<String>
        where
            I: IntoIterator,
            I::Item: AsRef<str>,
        {
            let mut v: Vec<String> = items
                .into_iter()
                .map(|s| lower(s.as_ref()))
                .filter(|s| !s.is_empty() && s.len() <= MAX_CAPABILITY)
                .collect();
            v.sort();
            v.dedup();
            v.truncate(MAX_CAPABILITIES);
            v
        }
        Self {
            media_types: clean(media_types, media_type),
            features: clean(features, |s| s.trim().to_owned()),
        }
    }

    /// Adds an application's media type (§7.12), so that peers send its
    /// parts without a plain alternative.
    pub fn with_app_type(self, content_type: &str) -> Self {
        let mut media = self.media_types;
        media.push(content_type.to_owned());
        Self::new(media, self.features)
    }

    pub fn media_types(&self) -> &[String] {
        &self.media_types
    }

    pub fn features(&self) -> &[String] {
        &self.features
    }

    /// Whether parts of `content_type` (parameters ignored) are shown.
    pub fn shows(&self, content_type: &str) -> bool {
        self.media_types
            .binary_search(&media_type(content_type))
            .is_ok()
    }

    pub fn has(&self, feature: &str) -> bool {
        self.features
            .binary_search_by(|f| f.as_str().cmp(feature))
            .is_ok()
    }

    /// Whether this member can process a message that needs `need`.
    pub fn meets(&self, need: &Need) -> bool {
        match need {
            Need::Feature(f) => self.has(f),
            Need::MediaType(t) => self.shows(t),
        }
    }
}

/// A media type without parameters, lowercased: `text/plain;charset=utf-8`
/// is `text/plain`.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// What a receiver needs to process a kind of message as meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    Feature(&'static str),
    MediaType(String),
}

/// A delivered or read receipt's status (§7.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReceiptStatus {
    Delivered = 1,
    Read = 2,
}

/// A payment request's state as the conversation knows it (§7.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentState {
    Requested,
    Paid,
    Declined,
}

impl PaymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Paid => "paid",
            Self::Declined => "declined",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "requested" => Some(Self::Requested),
            "paid" => Some(Self::Paid),
            "declined" => Some(Self::Declined),
            _ => None,
        }
    }
}

/// A step of a call (§7.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStep {
    /// The caller rings, with its SDP offer.
    Offer = 1,
    /// The callee accepts, with its SDP answer.
    Answer = 2,
    /// One ICE candidate, from either side.
    Candidate = 3,
    /// Either side ends the call (before an answer: a missed call).
    Hangup = 4,
    /// The callee refuses it.
    Decline = 5,
}

impl CallStep {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::Offer,
            2 => Self::Answer,
            3 => Self::Candidate,
            4 => Self::Hangup,
            5 => Self::Decline,
            _ => return None,
        })
    }
}

/// One call signal: `call_id[16] || step u8 || video u8 || payload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSignal {
    pub call_id: [u8; 16],
    pub step: CallStep,
    pub video: bool,
    /// The SDP of an offer or answer, an ICE candidate, or empty.
    pub payload: String,
}

impl CallSignal {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(18 + self.payload.len());
        out.extend_from_slice(&self.call_id);
        out.push(self.step as u8);
        out.push(u8::from(self.video));
        out.extend_from_slice(self.payload.as_bytes());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (call_id, rest) = bytes.split_first_chunk::<16>()?;
        let (&[step, video], payload) = rest.split_first_chunk::<2>()?;
        if payload.len() > MAX_CALL_PAYLOAD || video > 1 {
            return None;
        }
        Some(Self {
            call_id: *call_id,
            step: CallStep::from_u8(step)?,
            video: video == 1,
            payload: std::str::from_utf8(payload).ok()?.to_owned(),
        })
    }
}

/// What a message is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Text, mail or a reply: shown as [`crate::show::show`] says.
    Message,
    /// A reaction to `target`, or (`None`) one taken back (§7.6).
    Reaction {
        target: MessageId,
        emoji: Option<String>,
    },
    /// New text for `target` (§7.7).
    Edit {
        target: MessageId,
    },
    /// `target` deleted for everyone (§7.7).
    Delete {
        target: MessageId,
    },
    Receipt {
        status: ReceiptStatus,
        messages: Vec<MessageId>,
    },
    /// The conversation's disappearing timer, in seconds; 0 is off.
    Timer {
        seconds: u32,
    },
    PaymentRequest(crate::payto::PaytoUri),
    PaymentStatus {
        request: MessageId,
        state: PaymentState,
        reference: String,
    },
    Call(CallSignal),
    /// A part of an application's media type, carried as it is.
    App {
        content_type: String,
        data: Vec<u8>,
    },
    /// A file stored elsewhere, encrypted (files-v1.md): an external part
    /// with disposition attachment.
    Attachment(Box<crate::ExternalPart>),
}

impl Kind {
    /// Reads what `content` is for. A rich part that does not parse is a
    /// [`Kind::Message`]: its plain alternative or the frame's fallback is
    /// shown, as for a part this version does not know.
    pub fn of(content: &Content) -> Self {
        if let Some(target) = content.replaces {
            return match content.part.body {
                PartBody::Null => Self::Delete { target },
                _ => Self::Edit { target },
            };
        }
        if content.part.disposition == Disposition::REACTION {
            return content
                .in_reply_to
                .and_then(|target| reaction(&content.part).map(|emoji| (target, emoji)))
                .map_or(Self::Message, |(target, emoji)| Self::Reaction {
                    target,
                    emoji,
                });
        }
        if let PartBody::External(x) = &content.part.body
            && content.part.disposition == Disposition::ATTACHMENT
        {
            return Self::Attachment(x.clone());
        }
        let Some((content_type, data)) = primary(&content.part) else {
            return Self::Message;
        };
        let parsed = match media_type(content_type).as_str() {
            t if t.starts_with("text/") => None,
            RECEIPT => receipt(data),
            TIMER => <[u8; 4]>::try_from(data).ok().map(|b| Self::Timer {
                seconds: u32::from_be_bytes(b),
            }),
            PAYTO => std::str::from_utf8(data)
                .ok()
                .and_then(|uri| crate::payto::PaytoUri::parse(uri).ok())
                .map(Self::PaymentRequest),
            PAYMENT_STATUS => content
                .in_reply_to
                .and_then(|request| payment_status(data).map(|(s, r)| (request, s, r)))
                .map(|(request, state, reference)| Self::PaymentStatus {
                    request,
                    state,
                    reference,
                }),
            CALL => CallSignal::from_bytes(data).map(Self::Call),
            t if t.starts_with("application/vnd.kith.") => None,
            _ => Some(Self::App {
                content_type: content_type.to_owned(),
                data: data.to_vec(),
            }),
        };
        parsed.unwrap_or(Self::Message)
    }

    /// What a receiver needs to process it; `None` for a message any
    /// receiver shows (by its plain alternative or fallback).
    pub fn need(&self) -> Option<Need> {
        Some(Need::Feature(match self {
            Self::Message => return None,
            Self::Reaction { .. } => feature::REACTIONS,
            Self::Edit { .. } => feature::EDITS,
            Self::Delete { .. } => feature::DELETES,
            Self::Receipt { .. } => feature::RECEIPTS,
            Self::Timer { .. } => feature::TIMERS,
            Self::PaymentRequest(_) | Self::PaymentStatus { .. } => feature::PAYMENTS,
            Self::Call(_) => feature::CALLS,
            Self::Attachment(_) => feature::FILES,
            Self::App { content_type, .. } => {
                return Some(Need::MediaType(media_type(content_type)));
            }
        }))
    }
}

/// The part that says what a message is: a single part, or a
/// `chooseOne`'s first (the sender's preferred) alternative.
fn primary(part: &Part) -> Option<(&str, &[u8])> {
    match &part.body {
        PartBody::Single {
            content_type,
            content,
        } => Some((content_type, content)),
        PartBody::Multi {
            semantics: Semantics::ChooseOne,
            parts,
        } => parts.first().and_then(|p| match &p.body {
            PartBody::Single {
                content_type,
                content,
            } => Some((content_type.as_str(), content.as_slice())),
            _ => None,
        }),
        _ => None,
    }
}

fn reaction(part: &Part) -> Option<Option<String>> {
    match &part.body {
        PartBody::Null => Some(None),
        PartBody::Single { content, .. } => {
            let emoji = std::str::from_utf8(content).ok()?;
            (!emoji.is_empty() && emoji.len() <= MAX_REACTION).then(|| Some(emoji.to_owned()))
        }
        _ => None,
    }
}

fn receipt(data: &[u8]) -> Option<Kind> {
    let (&status, ids) = data.split_first()?;
    let status = match status {
        1 => ReceiptStatus::Delivered,
        2 => ReceiptStatus::Read,
        _ => return None,
    };
    if ids.is_empty() || ids.len() % 32 != 0 || ids.len() / 32 > MAX_RECEIPT_IDS {
        return None;
    }
    let messages = ids
        .chunks_exact(32)
        .filter_map(|c| <[u8; 32]>::try_from(c).ok().map(MessageId))
        .collect();
    Some(Kind::Receipt { status, messages })
}

fn payment_status(data: &[u8]) -> Option<(PaymentState, String)> {
    let text = std::str::from_utf8(data).ok()?;
    let (state, reference) = text.split_once('\n').unwrap_or((text, ""));
    let state = match PaymentState::parse(state)? {
        PaymentState::Requested => return None,
        s => s,
    };
    (reference.len() <= MAX_PAYMENT_TEXT).then(|| (state, reference.to_owned()))
}

/// `part`, or a `chooseOne` of it and `plain` as `text/plain` when a
/// receiver may not show `part` (§8.2).
pub fn with_plain(part: Part, plain: &str, attach: bool) -> Part {
    if !attach {
        return part;
    }
    Part {
        disposition: part.disposition,
        language: String::new(),
        body: PartBody::Multi {
            semantics: Semantics::ChooseOne,
            parts: vec![
                part,
                Part::single(Disposition::RENDER, PLAIN_TEXT, plain.as_bytes()),
            ],
        },
    }
}

/// A receipt's part (§7.8).
pub fn receipt_part(status: ReceiptStatus, messages: &[MessageId]) -> Part {
    let mut data = Vec::with_capacity(1 + 32 * messages.len());
    data.push(status as u8);
    for id in messages.iter().take(MAX_RECEIPT_IDS) {
        data.extend_from_slice(&id.0);
    }
    Part::single(Disposition::SESSION, RECEIPT, &data)
}

/// A timer's part (§7.9).
pub fn timer_part(seconds: u32) -> Part {
    Part::single(Disposition::SESSION, TIMER, &seconds.to_be_bytes())
}

/// A payment status's part (§7.10).
pub fn payment_status_part(state: PaymentState, reference: &str) -> Part {
    let text = if reference.is_empty() {
        state.as_str().to_owned()
    } else {
        format!("{}\n{reference}", state.as_str())
    };
    Part::single(Disposition::RENDER, PAYMENT_STATUS, text.as_bytes())
}

/// A call signal's part (§7.11).
pub fn call_part(signal: &CallSignal) -> Part {
    Part::single(Disposition::SESSION, CALL, &signal.to_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn kinds_read_back_from_what_builds_them() {
        let target = MessageId([7; 32]);
        let mut c = Content::new([1; 16], receipt_part(ReceiptStatus::Read, &[target]));
        assert_eq!(
            Kind::of(&c),
            Kind::Receipt {
                status: ReceiptStatus::Read,
                messages: vec![target]
            }
        );
        c.part = with_plain(timer_part(3600), "set a timer", true);
        assert_eq!(Kind::of(&c), Kind::Timer { seconds: 3600 });
        c.part = payment_status_part(PaymentState::Paid, "ref 42");
        assert_eq!(Kind::of(&c), Kind::Message, "a status needs its request");
        c.in_reply_to = Some(target);
        assert_eq!(
            Kind::of(&c),
            Kind::PaymentStatus {
                request: target,
                state: PaymentState::Paid,
                reference: "ref 42".into()
            }
        );
        let signal = CallSignal {
            call_id: [9; 16],
            step: CallStep::Offer,
            video: true,
            payload: "v=0".into(),
        };
        c.part = call_part(&signal);
        assert_eq!(Kind::of(&c), Kind::Call(signal));
        c.part = Part::single(Disposition::RENDER, "application/vnd.chess+json", b"{}");
        assert_eq!(
            Kind::of(&c).need(),
            Some(Need::MediaType("application/vnd.chess+json".into()))
        );
        // Rich parts that do not parse are messages, shown by their fallback.
        c.part = Part::single(Disposition::SESSION, RECEIPT, &[3]);
        assert_eq!(Kind::of(&c), Kind::Message);
        c.part = Part::single(Disposition::SESSION, CALL, &[0; 17]);
        assert_eq!(Kind::of(&c), Kind::Message);
    }

    #[test]
    fn capabilities_compare_media_types_without_parameters() {
        let caps = Capabilities::this_version().with_app_type("Application/X-Game; v=2");
        assert!(caps.shows("text/markdown;charset=utf-8"));
        assert!(caps.shows("application/x-game"));
        assert!(caps.has(feature::REACTIONS));
        let plain = Capabilities::plain_text();
        assert!(!plain.shows("text/markdown"));
        assert!(!plain.meets(&Need::Feature(feature::EDITS)));
        assert_eq!(
            Capabilities::new(["b/x", "a/y", "a/y", ""], ["z", "z"]),
            Capabilities::new(["a/y", "b/x"], ["z"])
        );
    }
}
