use kith_relay::client::ClientError;
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
    #[error("{0:?} is not a connected 1:1 conversation")]
    NotAContact(String),
    #[error(
        "{0:?} has not yet sent the key package needed to add them: sync, or ask them to run `kith sync`"
    )]
    NoKeyPackage(String),
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
    #[error("relay: {0}")]
    Relay(#[from] ClientError),
    #[error("crypto: {0}")]
    Crypto(#[from] kith_crypto::CryptoError),
    #[error("local store: {0}")]
    Store(#[from] rusqlite::Error),
    #[error("local store is damaged: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("randomness unavailable: {0}")]
    Randomness(String),
}

impl From<kith_wire::DecodeError> for CoreError {
    fn from(e: kith_wire::DecodeError) -> Self {
        Self::Corrupt(e.to_string())
    }
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;
