//! The crash-safety suite (`suite/crash.rs`) on the PostgreSQL store named
//! by `KITH_TEST_POSTGRES_URL`: the relay is killed with SIGKILL while
//! writers send; every acknowledged append survives, exactly once, in order.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[cfg(kith_postgres_tests)]
mod common;

#[cfg(kith_postgres_tests)]
const STORE: common::Store = common::Store::Postgres;

#[cfg(kith_postgres_tests)]
include!("suite/crash.rs");

#[cfg(not(kith_postgres_tests))]
#[test]
fn crash_suite_on_postgresql() {
    assert!(kith_testkit::postgres_url().is_none());
}
