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

mod channels;
mod config;
mod conv;
mod error;
mod home;
mod ids;
mod link;
mod recognition;
mod runtime;
mod store;
mod views;

pub use config::{
    Clock, Config, DRAIN_LIMIT, ManualClock, ROTATE_INTERVAL, SystemClock, UPDATE_INTERVAL,
};
pub use conv::group::GROUP_INVITATION_CONTEXT;
pub use conv::inbox::{INVITATION_CONTEXT, INVITATION_TTL};
pub use conv::intro::{INTRODUCTION_TTL, recognition_tag};
pub use error::{CoreError, Result};
pub use ids::{conversation_id, safety_number};
pub use link::InviteLink;
pub use runtime::Engine;
pub use runtime::watch::MAX_BACKOFF;
pub use views::{
    Accepted, ChannelInfo, ConversationInfo, ConversationView, GroupChange, IntegrityEvent,
    IntroductionView, Invite, MemberView, MessageView, MoveReport, Notice, SyncReport,
};
