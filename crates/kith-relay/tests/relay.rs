//! End-to-end tests of the relay protocol against the real `kith-relay`
//! binary on port 0 (one process per test), on the SQLite store. The same
//! suite runs on PostgreSQL in `relay_postgres.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

const STORE: common::Store = common::Store::Sqlite;

include!("suite/relay.rs");
