//! Crash safety: "accepted" means durable. Writers append over HTTP and over
//! WebSockets while the relay is killed with SIGKILL; after a restart every
//! message that got a success answer is readable, exactly once, in order.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

const STORE: common::Store = common::Store::Sqlite;

include!("suite/crash.rs");
