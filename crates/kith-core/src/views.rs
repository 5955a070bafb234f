//! What the engine returns to a user interface: conversations, messages,
//! notices, reports. Their JSON (serde) is the CLI's `--json` output,
//! documented and versioned in `docs/cli-json.md`.

use serde::Serialize;

use crate::link::InviteLink;

/// The profile: who this user is by default, and where it is hosted.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileView {
    /// The name shown to new contacts unless another is given.
    pub name: String,
    /// The relay that hosts this user's invitations and channels, if any.
    pub relay: Option<String>,
}

/// A conversation as `kith list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationView {
    pub id: String,
    /// `pair` or `group`.
    pub kind: String,
    pub name: String,
    /// `invited` (waiting for the link to be accepted), `joining` (a group
    /// link accepted, waiting for an admin), `active`, `leaving` (left a
    /// group; waiting for a commit that takes this member out), or `closed`
    /// (left or removed from a group).
    pub state: String,
    pub unread: u64,
    pub last_activity: u64,
    /// The name this user shows to the contact.
    pub my_name: String,
    pub integrity_events: u64,
    /// The contact who introduced this one (the name they showed you).
    pub introduced_by: Option<String>,
    /// You blocked this contact.
    pub blocked: bool,
}

/// One message as `kith read` shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MessageView {
    pub id: String,
    pub conversation: String,
    /// `me`, or the contact's name.
    pub from: String,
    pub outgoing: bool,
    pub sent_at: u64,
    pub received_at: u64,
    /// The text, or for a kind of content this version does not know, the
    /// plain text its sender gave for it.
    pub text: String,
    /// The sender marked the message as one only a newer kith can show as
    /// meant: `text` is its fallback.
    pub needs_newer: bool,
    /// A mail's subject; `text` is its body.
    pub subject: Option<String>,
    /// The message this one replies to, quoted; `None` if it is not a
    /// reply, or the message is not here (deleted, or from before joining).
    pub reply_to: Option<Quote>,
    /// Reactions to this message, counted (`read` fills them in).
    pub reactions: Vec<ReactionCount>,
    /// Its author changed it after sending.
    pub edited: bool,
    /// Its author deleted it for everyone: `text` is empty.
    pub deleted: bool,
    /// When it disappears (ms since the Unix epoch), if a timer was set.
    pub expires_at: Option<u64>,
    /// Of this user's message: how many members have it, and read it.
    pub receipts: Option<Receipts>,
    /// A change of the conversation's disappearing timer, in seconds (0:
    /// off); `text` says it in words.
    pub timer: Option<u32>,
    pub payment: Option<PaymentView>,
    pub call: Option<CallView>,
    /// An application's part, carried as it came; `text` is its fallback.
    pub app: Option<AppView>,
    /// A file (files-v1.md); `kith download` fetches it.
    pub file: Option<FileView>,
}

/// A file a message names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileView {
    /// Its name as its sender gave it (saved under a safe form of it).
    pub name: String,
    pub size: u64,
    pub content_type: String,
    pub caption: String,
    /// Where this user's copy is: sent from, or downloaded to.
    pub saved: Option<String>,
}

/// Delivered and read receipts for one of this user's messages, out of
/// the other members (1 in a 1:1 conversation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Receipts {
    pub delivered: u64,
    pub read: u64,
    pub of: u64,
}

/// A payment request (content-v1.md §7.10), or a status of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentView {
    /// The `payto:` URI, to open in a payment app; of a status, the
    /// request's.
    pub uri: String,
    /// `12.50 EUR to iban/DE75… “dinner”`.
    pub description: String,
    /// `requested`, `paid` or `declined`.
    pub state: String,
    /// A status's reference (a transaction id), if given.
    pub reference: Option<String>,
    /// Of a status: the id of the request it answers.
    pub request: Option<String>,
}

/// A call with what a WebRTC peer needs to set it up: the descriptions and
/// candidates its signalling carried (content-v1.md §7.11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallSession {
    pub call: CallView,
    /// The caller's SDP offer.
    pub offer: Option<String>,
    /// The answer, once answered.
    pub answer: Option<String>,
    /// ICE candidates sent after the descriptions, both sides', in order.
    pub candidates: Vec<String>,
}

/// A call (content-v1.md §7.11), as the history shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallView {
    /// The call's id (hex).
    pub id: String,
    /// `ringing`, `active`, `ended`, `missed` or `declined`.
    pub state: String,
    pub video: bool,
    pub outgoing: bool,
    pub started_at: u64,
    /// From the answer to the end; `None` unless it was answered and ended.
    pub duration_ms: Option<u64>,
}

/// An application's part (content-v1.md §7.12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppView {
    pub content_type: String,
    /// The part's bytes, hex.
    pub data: String,
}

/// A message quoted by a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quote {
    /// The quoted message's id, as `read` shows it.
    pub id: String,
    pub from: String,
    /// Its first line, shortened.
    pub text: String,
}

/// How many members reacted to a message with one reaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReactionCount {
    pub reaction: String,
    pub count: u64,
    /// This user is one of them.
    pub mine: bool,
}

/// A message that failed authentication (or could not be read) and was
/// not shown.
#[derive(Debug, Clone, Serialize)]
pub struct IntegrityEvent {
    pub conversation: String,
    pub at: u64,
    pub detail: String,
}

/// `kith info`: what identifies a conversation, for checking it with the
/// contact in person, and where it lives.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationInfo {
    pub conversation: ConversationView,
    /// This user's identity key in this conversation (hex).
    pub my_identity: String,
    /// The other members' identity keys (hex).
    pub member_identities: Vec<String>,
    /// The same for both members of a 1:1 conversation: compare it in
    /// person to be sure nobody (an introducer included) stands between.
    pub safety_number: Option<String>,
    pub channels: Vec<ChannelInfo>,
    /// The persona this conversation was started from, if any.
    pub persona: Option<String>,
    /// Relationships revealed as one person's, either way.
    pub links: Vec<LinkView>,
    /// Directories' attestations shown in this conversation, either way.
    pub attestations: Vec<AttestationView>,
}

/// A directory's attestation shown in a conversation (directory-v1.md §4).
#[derive(Debug, Clone, Serialize)]
pub struct AttestationView {
    /// `true`: this user showed its own; `false`: the contact showed theirs.
    pub outgoing: bool,
    /// The directory's name ("school").
    pub directory: String,
    /// What it says ("current student").
    pub statement: String,
    pub valid_from: u64,
    pub valid_until: u64,
    /// `valid`, `expired`, `revoked` or `not_yet_valid`, now.
    pub standing: String,
    /// The first 16 hex digits of the directory's root key: what people
    /// compare to know it is the directory they mean.
    pub root: String,
    /// Whether this user joined the directory with that root key.
    pub known: bool,
}

/// A directory this user joined (`kith directory list`).
#[derive(Debug, Clone, Serialize)]
pub struct DirectoryView {
    pub name: String,
    pub relay: String,
    /// `<relay>/d/<name>`, without any enrolment secret.
    pub link: String,
    pub members_only: bool,
    /// The first 16 hex digits of its root key.
    pub root: String,
    /// The persona whose key is the member key.
    pub persona: String,
    /// The attestation's statement and end, for a members-only directory.
    pub statement: Option<String>,
    pub valid_until: Option<u64>,
    /// `valid`, `expired`, `revoked` or `not_yet_valid`, when attested.
    pub standing: Option<String>,
    /// The entry this user published, if any.
    pub entry: Option<EntryView>,
}

/// A directory entry: a search result, or what this user published.
#[derive(Debug, Clone, Serialize)]
pub struct EntryView {
    pub display_name: String,
    pub text: String,
    /// The contact address link a request goes to.
    pub address: String,
}

/// A link between two relationships (pair-v1.md §12).
#[derive(Debug, Clone, Serialize)]
pub struct LinkView {
    /// `true`: this user revealed that it is also `identity`; `false`:
    /// the contact revealed that they are also `identity`.
    pub outgoing: bool,
    /// The other identity key (hex).
    pub identity: String,
    /// The conversation where that key is, if this user has it.
    pub conversation: Option<String>,
    pub name: Option<String>,
    pub at: u64,
}

/// A persona (`kith persona`).
#[derive(Debug, Clone, Serialize)]
pub struct PersonaView {
    /// This user's name for it (`--persona NAME`).
    pub name: String,
    /// The name its relationships see.
    pub display_name: String,
    /// Its identity key (hex): what everyone in its context knows.
    pub identity: String,
    /// Conversations started from it.
    pub conversations: u64,
}

/// One channel of a conversation.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelInfo {
    pub relay_url: String,
    pub write_id: String,
    pub read_id: String,
    /// This user's capability key on it (public, hex).
    pub my_key: String,
    /// Hosted (created) by this user.
    pub hosted: bool,
    /// `conv`, `retiring` (being drained after a move), `inbox`, `inbox-done`.
    pub role: String,
    pub preferred: bool,
}

/// Something that happened to a conversation, worth a line.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub conversation: String,
    pub text: String,
}

/// A new invitation.
#[derive(Debug, Clone, Serialize)]
pub struct Invite {
    /// The `kith:` link.
    pub link: String,
    /// The same link for a browser or another app.
    pub web_link: String,
    pub conversation: String,
    pub expires_at: u64,
}

impl Invite {
    pub(crate) fn new(link: &InviteLink, conversation: String, expires_at: u64) -> Self {
        Self {
            link: link.kith(),
            web_link: link.web(),
            conversation,
            expires_at,
        }
    }
}

/// What a running `watch` follows, said once when it is live.
#[derive(Debug, Clone, Serialize)]
pub struct Live {
    /// Channels read (of every conversation).
    pub channels: usize,
    /// Relays subscribed over a WebSocket.
    pub relays: usize,
    /// Relays that could not be reached (retried with a backoff).
    pub unreachable: usize,
}

/// What a sync brought.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SyncReport {
    pub messages: Vec<MessageView>,
    /// Conversations whose invitation was accepted during this sync.
    pub connected: Vec<ConversationView>,
    pub integrity_events: Vec<IntegrityEvent>,
    /// Things to tell the user that are neither messages nor attacks (such
    /// as being removed from a group).
    pub notices: Vec<Notice>,
    /// Introductions offered to this user, or answered, during this sync.
    pub introductions: Vec<IntroductionView>,
    /// Contact requests that arrived on this user's addresses.
    pub requests: Vec<RequestView>,
    /// Relays or channels that could not be synced this time.
    pub errors: Vec<String>,
    /// Groups a contact added this user to (shown in `connected`).
    #[serde(skip)]
    pub(crate) joined_groups: Vec<String>,
    /// A message was deleted for everyone in this page: the write-ahead
    /// log, which may still hold its text, is emptied after the commit.
    #[serde(skip)]
    pub(crate) purged: bool,
}

impl SyncReport {
    /// Whether there is nothing to tell.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
            && self.connected.is_empty()
            && self.integrity_events.is_empty()
            && self.introductions.is_empty()
            && self.requests.is_empty()
            && self.notices.is_empty()
            && self.errors.is_empty()
    }

    /// Adds what another report holds (earlier events first).
    pub(crate) fn absorb(&mut self, mut earlier: SyncReport) {
        earlier.messages.append(&mut self.messages);
        earlier.connected.append(&mut self.connected);
        earlier.integrity_events.append(&mut self.integrity_events);
        earlier.notices.append(&mut self.notices);
        earlier.introductions.append(&mut self.introductions);
        earlier.requests.append(&mut self.requests);
        earlier.errors.append(&mut self.errors);
        earlier.joined_groups.append(&mut self.joined_groups);
        *self = earlier;
    }
}

/// The result of accepting an invitation.
#[derive(Debug, Serialize)]
pub struct Accepted {
    pub conversation: ConversationView,
    /// Things that did not work but did not stop the acceptance.
    pub warnings: Vec<String>,
}

/// A member as `kith group members` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub name: String,
    /// The first 8 bytes of the member's identity key in this group, hex.
    pub id: String,
    pub admin: bool,
    pub me: bool,
    /// A contact this user blocked (group-v1.md §7.1): not shown.
    pub blocked: bool,
}

/// What a group command did.
#[derive(Debug, Serialize)]
pub struct GroupChange {
    pub group: ConversationView,
    /// Whether the change is in the group now (its commit was taken by the
    /// channel); if not, it is queued and the next sync goes on with it.
    pub done: bool,
    pub warnings: Vec<String>,
}

/// An introduction as `kith introductions` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct IntroductionView {
    /// Hex of the introduction id; a unique prefix is enough to answer.
    pub id: String,
    /// `received` (offered to this user) or `made` (by this user).
    pub role: String,
    /// Who introduces: a contact's name, or `me`.
    pub introducer: String,
    /// Whom this user would meet (received), or whom it introduced (made).
    pub peer: String,
    pub note: String,
    /// Received: `pending`, `accepted`, `declined`, `matched`, `connected`,
    /// `refused` (someone you blocked) or `closed` (the other side said no).
    /// Made: `open`, `matched`, `connected` or `closed`, with each side's
    /// answer.
    pub state: String,
    /// The new conversation, once connected.
    pub conversation: Option<String>,
}

/// A contact request that arrived on one of this user's addresses
/// (`kith requests`).
#[derive(Debug, Clone, Serialize)]
pub struct RequestView {
    /// What `kith requests accept|decline` takes.
    pub id: u64,
    /// The address's id.
    pub address: String,
    /// The owner's label for the address, if it has one.
    pub address_label: Option<String>,
    /// The name the requester chose to show.
    pub name: String,
    /// The requester's note (may be empty).
    pub note: String,
    pub received_at: u64,
    /// After this the request cannot be accepted.
    pub expires_at: u64,
}

/// A contact address of this user's (`kith address`).
#[derive(Debug, Clone, Serialize)]
pub struct AddressView {
    pub id: String,
    pub label: Option<String>,
    /// The `kith:` form of the link; the https form is this without `kith:`.
    pub link: String,
    /// The name shown to those whose requests this user accepts.
    pub my_name: String,
    pub relay: String,
    pub created_at: u64,
    /// Requests waiting for an answer.
    pub requests: u64,
}

/// What `kith move` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct MoveReport {
    /// Conversations now hosted on the new relay.
    pub moved: Vec<String>,
    /// Conversations that could not be moved, and why.
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// A duration in words, in its largest whole unit: `1 hour`, `90
/// seconds`, `2 weeks` (rounded down to that unit when it is not whole
/// and over a day).
pub fn duration_words(secs: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (604_800, "week"),
        (86_400, "day"),
        (3_600, "hour"),
        (60, "minute"),
        (1, "second"),
    ];
    let (size, name) = UNITS
        .iter()
        .copied()
        .find(|(size, _)| secs >= *size && (secs.is_multiple_of(*size) || *size >= 86_400))
        .unwrap_or((1, "second"));
    let n = secs / size;
    if n == 1 {
        format!("1 {name}")
    } else {
        format!("{n} {name}s")
    }
}

/// `beach.jpg (2.1 MB) — the beach`.
pub(crate) fn describe(a: &kith_files::Attachment) -> String {
    let mut s = format!("file: {} ({})", a.filename, size_words(a.size));
    if !a.caption.is_empty() {
        s.push_str(" \u{2014} ");
        s.push_str(&a.caption);
    }
    s
}

/// A size for people: `812 bytes`, `2.1 MB`, `1.0 GB` (powers of 1,000).
pub fn size_words(size: u64) -> String {
    let units = [(1_000_000_000, "GB"), (1_000_000, "MB"), (1_000, "kB")];
    for (unit, name) in units {
        if size >= unit {
            return format!("{:.1} {name}", size as f64 / unit as f64);
        }
    }
    format!("{size} bytes")
}

/// A file message's file, as `read` shows it.
pub(crate) fn file_view(a: &kith_files::Attachment, saved: Option<String>) -> FileView {
    FileView {
        name: a.filename.clone(),
        size: a.size,
        content_type: a.content_type.clone(),
        caption: a.caption.clone(),
        saved,
    }
}

#[cfg(test)]
mod tests {
    use super::duration_words;

    #[test]
    fn durations_read_in_their_largest_whole_unit() {
        assert_eq!(duration_words(3600), "1 hour");
        assert_eq!(duration_words(90), "90 seconds");
        assert_eq!(duration_words(300), "5 minutes");
        assert_eq!(duration_words(14 * 86_400), "2 weeks");
        assert_eq!(duration_words(86_400 + 5), "1 day");
        assert_eq!(duration_words(0), "0 seconds");
        assert_eq!(super::size_words(812), "812 bytes");
        assert_eq!(super::size_words(2_100_000), "2.1 MB");
    }
}
