//! # kith-relay
//!
//! The kith relay: it stores **channels** (append-only, sequenced logs of
//! opaque padded ciphertext) and **blobs** (encrypted invitation payloads and
//! attachment chunks), and pushes new messages to subscribers. It never has
//! a key that could decrypt anything it stores. The protocol is specified in
//! `docs/spec/relay.md`; the wire types are in `kith-wire`.
//!
//! ```text
//!  kith-relay-client                     relay (feature "server")
//!  ┌──────────────┐  HTTP POST /v1/…   ┌─────────────────────────────────┐
//!  │ RelayClient  │ ─────────────────▶ │ api: verify ▸ authorize ▸ store │
//!  │  signs with  │ ◀───────────────── │        │                        │
//!  │  channel keys│   GET /v1/ws       │        ▼ commit (group, fsync)  │
//!  │ Session      │ ◀═══════════════▶  │ hub ◀─ events ── Store (SQLite  │
//!  └──────────────┘   pushes           │   or PostgreSQL, NOTIFY across  │
//!                   (HTTPS/WSS: rustls)│   processes)                    │
//!                                      └─────────────────────────────────┘
//! ```
//!
//! Run one with `kith-relay serve` (or as a CGI program, `kith-relay cgi`);
//! embed one with [`server::start`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use kith_relay_client::{RelayClient, generate_key};
//! use kith_relay::server::{self, config::Config};
//!
//! let config = Config { listen: "127.0.0.1:0".parse()?, db: "relay.db".into(), ..Config::default() };
//! let relay = server::start(config.finish()?).await?;
//!
//! let client = RelayClient::new(&relay.url())?;
//! let owner = generate_key()?;
//! let channel = client.create_channel(&owner, Default::default()).await?;
//! let sent = client.append(&owner, channel.write_id, &[0u8; 256]).await?;
//! let read = client.read(&owner, channel.read_id, 0, 10, std::time::Duration::ZERO).await?;
//! assert_eq!(read.items[0].seq, sent.seq);
//! relay.shutdown().await;
//! # Ok(()) }
//! ```

#[cfg(feature = "server")]
pub mod directory;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod store;
pub mod time;
