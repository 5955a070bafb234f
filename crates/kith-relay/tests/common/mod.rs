//! Helpers shared by the relay's process-level tests.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use kith_relay_client::{ChannelOptions, ClientError, RelayClient, generate_key, public_key};
use kith_testkit::{RelayOptions, RelayProcess};
use kith_wire::relay::response::{ChannelCreated, ErrorCode};
use kith_wire::relay::{KeyGrant, Rights};

/// Which store a test binary's relays use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    /// `KITH_TEST_POSTGRES_URL`, a schema per relay.
    Postgres,
}

/// A relay from this crate's binary on the test binary's store
/// (`crate::STORE`), rate limits off unless the test sets them.
pub fn relay(options: RelayOptions) -> RelayProcess {
    // Tests also make raw requests with reqwest's own client.
    kith_relay_client::install_crypto_provider();
    let options = match crate::STORE {
        Store::Sqlite => options,
        Store::Postgres => on_postgres(options, &kith_testkit::unique_schema()),
    };
    RelayProcess::start(options.binary(env!("CARGO_BIN_EXE_kith-relay"))).expect("relay starts")
}

/// Two processes of one relay: one PostgreSQL schema, rate limits off.
pub fn two_processes_on_postgres() -> (RelayProcess, RelayProcess) {
    let schema = kith_testkit::unique_schema();
    let start = || {
        RelayProcess::start(
            on_postgres(unlimited(), &schema).binary(env!("CARGO_BIN_EXE_kith-relay")),
        )
        .expect("relay starts")
    };
    (start(), start())
}

/// `options` on the test server's PostgreSQL, in `schema`.
fn on_postgres(options: RelayOptions, schema: &str) -> RelayOptions {
    let url = kith_testkit::postgres_url().expect("KITH_TEST_POSTGRES_URL is set");
    static CLEAN: std::sync::Once = std::sync::Once::new();
    CLEAN.call_once(|| drop_stale_schemas(&url));
    options.postgres(&url, schema)
}

pub fn unlimited() -> RelayOptions {
    RelayOptions::default().unlimited()
}

pub fn client(relay: &RelayProcess) -> RelayClient {
    RelayClient::new(relay.url()).unwrap()
}

/// A payload of a size bucket, filled with `fill`.
pub fn payload(fill: u8, size: usize) -> Vec<u8> {
    vec![fill; size]
}

/// A channel with an owner (every right), a writer and a reader key.
pub struct Channel {
    pub owner: SigningKey,
    pub writer: SigningKey,
    pub reader: SigningKey,
    pub created: ChannelCreated,
}

pub async fn channel(client: &RelayClient, options: ChannelOptions) -> Channel {
    let owner = generate_key().unwrap();
    let writer = generate_key().unwrap();
    let reader = generate_key().unwrap();
    let mut options = options;
    options.grants.push(KeyGrant {
        key: public_key(&writer),
        rights: Rights::WRITE,
    });
    options.grants.push(KeyGrant {
        key: public_key(&reader),
        rights: Rights::READ,
    });
    let created = client.create_channel(&owner, options).await.unwrap();
    Channel {
        owner,
        writer,
        reader,
        created,
    }
}

/// The relay error code of a failed call.
pub fn code<T: std::fmt::Debug>(result: Result<T, ClientError>) -> ErrorCode {
    match result {
        Err(e) => e.code().unwrap_or_else(|| panic!("not a relay error: {e}")),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

/// Drops the schemas of earlier test runs (named `kith_test_<pid>_…` by
/// `kith_testkit::unique_schema`) whose process is gone.
fn drop_stale_schemas(url: &str) {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            let rows = client
                .query(
                    "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'kith\\_test\\_%'",
                    &[],
                )
                .await
                .unwrap();
            for row in rows {
                let name: String = row.get(0);
                let pid = name.split('_').nth(2).unwrap_or_default();
                if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .await;
                }
            }
        });
    })
    .join()
    .unwrap();
}

/// A metric's value from the relay's `/metrics` (summed over its labels).
pub async fn metric(url: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls `metric` until `holds` is true of it; panics after `within`.
pub async fn wait_for_metric(url: &str, name: &str, within: Duration, holds: impl Fn(f64) -> bool) {
    let deadline = Instant::now() + within;
    loop {
        let value = metric(url, name).await;
        if holds(value) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} stayed at {value}");
        tokio::time::sleep(POLL).await;
    }
}

/// Until a long-poll read is waiting on the relay at `url` (an append from
/// then on wakes it).
pub async fn wait_for_long_poll(url: &str) {
    wait_for_metric(url, "kith_relay_long_polls", Duration::from_secs(30), |n| {
        n >= 1.0
    })
    .await;
}

/// Polls `check` until it gives `Some`; panics with `what` after `within`.
/// For what takes time on the relay (an expiry, a sweep): the test waits for
/// the outcome, however slow the machine.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} did not happen");
        tokio::time::sleep(POLL).await;
    }
}

const POLL: Duration = Duration::from_millis(50);

/// Until `counter` holds more than `n` (acknowledged appends, say).
pub async fn wait_for_count(what: &str, n: usize, count: impl Fn() -> usize) {
    eventually(what, Duration::from_secs(60), || {
        let reached = count() > n;
        async move { reached.then_some(()) }
    })
    .await;
}
