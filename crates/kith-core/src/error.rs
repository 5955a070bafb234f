use kith_relay_client::ClientError;
use thiserror::Error;

/// What the engine reports. Messages are written for the person using
/// kith: the CLI prints them as they are.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CoreError {
    #[error("no profile in {0}: run `kith init --name NAME` first")]
    NoProfile(String),
    #[error("a profile already exists in {0}")]
    ProfileExists(String),
    #[error("no relay to host this: give --relay URL, or set one with `kith init --relay URL`")]
    NoRelay,
    #[error("not a kith invitation link: {0}")]
    BadLink(&'static str),
    #[error("this invitation was already used or has expired")]
    InvitationUnavailable,
    #[error("this invitation cannot be opened: {0}")]
    BadInvitation(String),
    #[error("this invitation is your own")]
    OwnInvitation,
    #[error("this contact address was deleted by its owner, or has expired")]
    AddressGone,
    #[error(
        "this contact address takes no more requests from your network for now; try again in {0}"
    )]
    AddressBusy(String),
    #[error("no contact address of yours matches {0:?}")]
    NoSuchAddress(String),
    #[error("no contact request has the id {0:?} (`kith requests` lists them)")]
    NoSuchRequest(String),
    #[error("no persona is named {0:?} (`kith persona list`)")]
    NoSuchPersona(String),
    #[error("a persona named {0:?} exists already")]
    PersonaExists(String),
    #[error(
        "the persona {0:?} is your member key in the directory {1:?}: leave it first (`kith directory leave`)"
    )]
    PersonaInUse(String, String),
    #[error("these two conversations already show one identity: there is nothing to link")]
    AlreadyLinked,
    #[error("no directory you joined matches {0:?} (`kith directory list`)")]
    NoSuchDirectory(String),
    #[error("you already joined the directory {0:?}")]
    DirectoryJoined(String),
    #[error(
        "{0:?} is a members-only directory: join it with the enrolment link its administrator gives you"
    )]
    MembersOnly(String),
    #[error(
        "the directory {0:?} refused: you are not a member, or your membership ended or was removed"
    )]
    NotAMember(String),
    #[error("this enrolment link was already used, has expired, or was withdrawn")]
    EnrolmentRefused,
    #[error("the directory's answer does not verify: {0}")]
    BadDirectory(String),
    #[error("no conversation matches {0:?}")]
    NoSuchConversation(String),
    #[error("{0:?} matches several conversations: {1}")]
    Ambiguous(String, String),
    #[error("the conversation is waiting for the invitation to be accepted")]
    NotYetConnected,
    #[error("{0:?} is not a group")]
    NotAGroup(String),
    #[error("you are no longer in {0:?} (you left, or an admin removed you)")]
    GroupClosed(String),
    #[error("only an admin of the group can do this")]
    NotAdmin,
    #[error("no member of the group matches {0:?}")]
    NoSuchMember(String),
    #[error("no message of this conversation has the id {0}")]
    NoSuchMessage(String),
    #[error("only the person who wrote a message can edit or delete it")]
    NotAuthor,
    #[error("payment request: {0}")]
    BadPayment(String),
    #[error("{0:?} is not an application's media type (type/subtype, not text/* or kith's own)")]
    BadContentType(String),
    #[error("{0}'s kith does not take calls (yet)")]
    CannotCall(String),
    #[error("no call of this conversation has the id {0}")]
    NoSuchCall(String),
    #[error("{0}")]
    File(String),
    #[error("{0:?} is not a connected 1:1 conversation")]
    NotAContact(String),
    #[error("to remove yourself, use `kith group leave`")]
    RemoveSelf,
    #[error(
        "a group needs an admin: make another member admin first (`kith group admins GROUP add MEMBER`)"
    )]
    LastAdmin,
    #[error(
        "not delivered: {0}'s relay refuses your messages (they blocked you, or deleted the conversation)"
    )]
    Refused(String),
    #[error("you blocked {0:?}: `kith unblock` first")]
    Blocked(String),
    #[error("no introduction matches {0:?}")]
    NoSuchIntroduction(String),
    #[error("this introduction was already answered, or has expired")]
    IntroductionClosed,
    #[error("cannot introduce a conversation to itself, or a group")]
    BadIntroduction,
    #[error("message saved and queued, but no relay accepted it yet: {0}")]
    Queued(String),
    #[error(transparent)]
    Relay(#[from] ClientError),
    #[error("crypto: {0}")]
    Crypto(#[from] kith_crypto::CryptoError),
    #[error("local store: {0}")]
    Store(#[from] rusqlite::Error),
    #[error("local store is damaged: {0}")]
    Corrupt(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0} is a file, not a profile directory")]
    NotADirectory(String),
    #[error(
        "another kith process is using the profile in {0}; try again when it is done (or stop it)"
    )]
    ProfileBusy(String),
    #[error(
        "a conversation's state changed while this change was being made; nothing was sent, try again"
    )]
    StateMoved,
    #[error("the {what} is {len} bytes; the most kith carries is {max} bytes")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("the {0} is empty")]
    Empty(&'static str),
    #[error("randomness unavailable: {0}")]
    Randomness(String),
}

impl CoreError {
    /// A stable, machine-readable name for the error (`--json` output and
    /// the local API; docs/cli-json.md lists them).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoProfile(_) => "no_profile",
            Self::ProfileExists(_) => "profile_exists",
            Self::NotADirectory(_) => "not_a_directory",
            Self::ProfileBusy(_) => "profile_busy",
            Self::StateMoved => "state_moved",
            Self::NoRelay => "no_relay",
            Self::BadLink(_) => "bad_link",
            Self::InvitationUnavailable => "invitation_unavailable",
            Self::BadInvitation(_) => "bad_invitation",
            Self::OwnInvitation => "own_invitation",
            Self::AddressGone => "address_gone",
            Self::AddressBusy(_) => "address_busy",
            Self::NoSuchAddress(_) => "no_such_address",
            Self::NoSuchRequest(_) => "no_such_request",
            Self::NoSuchPersona(_) => "no_such_persona",
            Self::PersonaExists(_) => "persona_exists",
            Self::PersonaInUse(..) => "persona_in_use",
            Self::AlreadyLinked => "already_linked",
            Self::NoSuchDirectory(_) => "no_such_directory",
            Self::DirectoryJoined(_) => "directory_joined",
            Self::MembersOnly(_) => "members_only",
            Self::NotAMember(_) => "not_a_member",
            Self::EnrolmentRefused => "enrolment_refused",
            Self::BadDirectory(_) => "bad_directory",
            Self::NoSuchConversation(_) => "no_such_conversation",
            Self::Ambiguous(..) => "ambiguous",
            Self::NotYetConnected => "not_yet_connected",
            Self::NotAGroup(_) => "not_a_group",
            Self::GroupClosed(_) => "group_closed",
            Self::NotAdmin => "not_admin",
            Self::NoSuchMember(_) => "no_such_member",
            Self::NoSuchMessage(_) => "no_such_message",
            Self::NotAuthor => "not_author",
            Self::BadPayment(_) => "bad_payment",
            Self::BadContentType(_) => "bad_content_type",
            Self::CannotCall(_) => "cannot_call",
            Self::NoSuchCall(_) => "no_such_call",
            Self::File(_) => "file",
            Self::NotAContact(_) => "not_a_contact",
            Self::RemoveSelf => "remove_self",
            Self::LastAdmin => "last_admin",
            Self::Refused(_) => "refused",
            Self::Blocked(_) => "blocked",
            Self::NoSuchIntroduction(_) => "no_such_introduction",
            Self::IntroductionClosed => "introduction_closed",
            Self::BadIntroduction => "bad_introduction",
            Self::Queued(_) => "queued",
            Self::TooLong { .. } => "too_long",
            Self::Empty(_) => "empty",
            Self::Relay(_) => "relay",
            Self::Crypto(_) => "crypto",
            Self::Store(_) | Self::Corrupt(_) => "store",
            Self::Io { .. } => "io",
            Self::Randomness(_) => "randomness",
        }
    }
}

/// Refuses text (a message, a name, a note) that a peer's decoder would
/// refuse, before anything is encrypted or stored.
pub(crate) fn check_len(what: &'static str, text: &str, max: u32) -> Result<()> {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    if text.len() > max {
        return Err(CoreError::TooLong {
            what,
            len: text.len(),
            max,
        });
    }
    Ok(())
}

impl From<kith_wire::DecodeError> for CoreError {
    fn from(e: kith_wire::DecodeError) -> Self {
        Self::Corrupt(e.to_string())
    }
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;

/// A peer's message that the protocol refuses: it is recorded as an
/// integrity event and skipped, never shown.
#[derive(Debug, Error)]
#[error("{0}")]
pub(crate) struct Refusal(pub(crate) String);

/// Marks a peer-caused failure as a refusal.
pub(crate) fn refused(e: impl std::fmt::Display) -> Refusal {
    Refusal(e.to_string())
}

/// Why a message from a channel could not be opened. Only a refusal is
/// recorded and skipped; a local failure (the store, our own stored state)
/// aborts the sync with nothing recorded, acknowledged or dropped, and the
/// message is read again next time (pair-v1.md §6). There is no `From` for
/// other error types: each failure says which it is.
#[derive(Debug, Error)]
pub(crate) enum OpenError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Local(#[from] CoreError),
}

impl From<rusqlite::Error> for OpenError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Local(e.into())
    }
}

/// A name shown to others (a profile's, a conversation's, a group's).
pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(CoreError::Empty("name"));
    }
    check_len("name", name, kith_wire::conv::MAX_NAME)
}
