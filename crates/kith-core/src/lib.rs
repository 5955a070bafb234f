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
//!   kith (CLI) ──▶ runtime::Engine   owns the profile; all network I/O:
//!                    │               commands, sync, outbox, watch, timers
//!                    │ a page of a channel, one store transaction
//!                    ▼
//!                  conv::{inbox, pair, group, intro}   ConversationType:
//!                    │   open ─▶ refusal | local failure | opened
//!                    │   apply ─▶ rows + Effects (events, joined,
//!                    │            revocations, handoffs between types)
//!                    ▼
//!                  channels, recognition ─▶ store (SQLite: typed rows,
//!                    outbox, MLS sessions) ─▶ kith-crypto (MLS, sealing)
//!   kith-relay-client: the relays' HTTP and WebSocket, used by the runtime
//! ```
//!
//! ```
//! let id = kith_core::conversation_id(&kith_wire::relay::WriteId([1; 32]));
//! assert_eq!(id.len(), 32); // 16 bytes, hex
//! ```

pub mod attestation;
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
#[cfg(test)]
mod testing;
mod views;

// Lets `testing.rs` name this crate as the integration tests do.
#[cfg(test)]
extern crate self as kith_core;

pub use config::{
    Clock, Config, DRAIN_LIMIT, ManualClock, ROTATE_INTERVAL, SystemClock, UPDATE_INTERVAL,
};
pub use conv::address::REQUEST_CONTEXT;
pub use conv::group::GROUP_INVITATION_CONTEXT;
pub use conv::inbox::{INVITATION_CONTEXT, INVITATION_TTL};
pub use conv::intro::{INTRODUCTION_TTL, recognition_tag};
pub use error::{CoreError, Result};
pub use ids::{conversation_id, safety_number};
pub use link::{AddressLink, DirectoryLink, InviteLink};
pub use runtime::Engine;
pub use runtime::addresses::REQUEST_TTL;
pub use runtime::events::{EVENT_RETENTION, EventPage, EventView};
pub use runtime::files::{FileFetch, FileFetched, FileSend, FileSent, Progress};
pub use runtime::watch::{Job, MAX_BACKOFF};
pub use views::{
    Accepted, AddressView, AppView, AttestationView, CallSession, CallView, ChannelInfo,
    ConversationInfo, ConversationView, DirectoryView, EntryView, FileView, GroupChange,
    IntegrityEvent, IntroductionView, Invite, LinkView, Live, MemberView, MessageView, MoveReport,
    Notice, PaymentView, PersonaView, ProfileView, Quote, ReactionCount, Receipts, RequestView,
    SyncReport, duration_words, size_words,
};

/// The layering ARCHITECTURE.md draws, checked on the sources: conversation
/// types never import each other or the runtime, and the layers below them
/// import neither.
#[cfg(test)]
mod layering {
    const TYPES: &[(&str, &str)] = &[
        ("inbox", include_str!("conv/inbox.rs")),
        ("address", include_str!("conv/address.rs")),
        ("pair", include_str!("conv/pair.rs")),
        ("group", include_str!("conv/group.rs")),
        ("intro", include_str!("conv/intro.rs")),
    ];
    const BELOW: &[(&str, &str)] = &[
        ("attestation", include_str!("attestation.rs")),
        ("channels", include_str!("channels.rs")),
        ("ids", include_str!("ids.rs")),
        ("recognition", include_str!("recognition.rs")),
        ("views", include_str!("views.rs")),
        ("store", include_str!("store/mod.rs")),
        (
            "store/conversations",
            include_str!("store/conversations.rs"),
        ),
        ("store/messages", include_str!("store/messages.rs")),
        ("store/outbox", include_str!("store/outbox.rs")),
        ("store/sessions", include_str!("store/sessions.rs")),
    ];

    fn code(source: &str) -> impl Iterator<Item = &str> {
        source
            .lines()
            .map(str::trim_start)
            .filter(|l| !l.starts_with("//"))
    }

    #[test]
    fn conversation_types_never_import_each_other_or_the_runtime() {
        for (name, source) in TYPES {
            for line in code(source) {
                assert!(!line.contains("crate::runtime"), "{name}: {line}");
                assert!(!line.contains("crate::conv::"), "{name}: {line}");
                for (other, _) in TYPES {
                    assert!(!line.contains(&format!("super::{other}")), "{name}: {line}");
                }
            }
        }
    }

    #[test]
    fn the_layers_below_the_types_import_neither_types_nor_runtime() {
        for (name, source) in BELOW {
            for line in code(source) {
                assert!(!line.contains("crate::conv"), "{name}: {line}");
                assert!(!line.contains("crate::runtime"), "{name}: {line}");
            }
        }
    }
}
