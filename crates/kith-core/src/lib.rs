//! # kith-core
//!
//! The client engine: a profile in one SQLite file, conversations of type
//! `PairV1` started through `InboxV1` invitations or double opt-in
//! introductions, `GroupV1` groups on one channel, channels that move,
//! rotate and refuse blocked contacts, an outbox that retries the same
//! bytes until a relay takes them, and inbox sync from cursors.
//! It never prints: the `kith` binary presents what it returns.
//!
//! ```text
//!   kith (CLI) ──▶ Engine ──▶ store (SQLite: conversations, MLS state,
//!                    │                 messages, outbox, cursors)
//!                    ├──▶ kith-crypto (MLS sessions, sealing, padding)
//!                    └──▶ kith-relay client (channels, blobs, WebSocket)
//! ```
//!
//! ```
//! let id = kith_core::conversation_id(&kith_wire::relay::WriteId([1; 32]));
//! assert_eq!(id.len(), 32); // 16 bytes, hex
//! ```

mod config;
mod engine;
mod error;
mod group;
mod home;
mod intro;
mod link;
mod moving;
mod recognition;
mod store;
mod watch;

pub use config::{
    Clock, Config, DRAIN_LIMIT, ManualClock, ROTATE_INTERVAL, SystemClock, UPDATE_INTERVAL,
};
pub use engine::{
    Accepted, ChannelInfo, ConversationInfo, ConversationView, Engine, INVITATION_CONTEXT,
    INVITATION_TTL, IntegrityEvent, Invite, MessageView, Notice, SyncReport, conversation_id,
    safety_number,
};
pub use error::{CoreError, Result};
pub use group::{GROUP_INVITATION_CONTEXT, GroupChange, MemberView};
pub use intro::{INTRODUCTION_TTL, IntroductionView, recognition_tag};
pub use link::InviteLink;
pub use moving::MoveReport;
pub use watch::MAX_BACKOFF;
