//! Helpers shared by the relay's process-level tests.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use ed25519_dalek::SigningKey;
use kith_relay::client::{ChannelOptions, ClientError, RelayClient, generate_key, public_key};
use kith_testkit::{RelayOptions, RelayProcess};
use kith_wire::relay::response::{ChannelCreated, ErrorCode};
use kith_wire::relay::{KeyGrant, Rights};

/// A relay from this crate's binary, rate limits off unless the test sets them.
pub fn relay(options: RelayOptions) -> RelayProcess {
    RelayProcess::start(options.binary(env!("CARGO_BIN_EXE_kith-relay"))).expect("relay starts")
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
