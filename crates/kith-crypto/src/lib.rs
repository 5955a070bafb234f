//! # kith-crypto
//!
//! The cryptography of a kith client, and none of its I/O: a fresh MLS
//! identity key per relationship, MLS sessions (RFC 9420, through `mls-rs`)
//! whose state the caller persists transactionally, sealing with one-time
//! secrets (invitation blobs), and padding to the relay's size buckets.
//!
//! ```text
//!  IdentityKey ──key_package──▶ (KeyPackage bytes, PendingKeyPackage)
//!       │                                   │ Welcome
//!       └──Session::create ──Welcome──▶ Session::join
//!             Session ⇄ encrypt / process ⇄ Session
//!             Session::commit(add, remove) ─▶ StagedCommit (pending until
//!                 the channel orders it; then process / apply_pending)
//!             Session::snapshot ─▶ GroupSnapshot ─▶ (caller's store)
//!  SealKey::seal / open        padding::pad / unpad
//!  BoxKey::public ─▶ boxed::seal_to (anyone) ─▶ BoxKey::open (its holder)
//! ```
//!
//! ```
//! use kith_crypto::mls::{IdentityKey, Session, Incoming, key_package};
//!
//! let alex = IdentityKey::generate()?;
//! let blair = IdentityKey::generate()?;
//! let (kp, pending) = key_package(&alex)?;          // Alex's invitation carries kp
//! let (mut b, welcome) = Session::create(&blair, &[&kp])?;
//! let mut a = Session::join(&alex, &pending, &welcome)?;
//! let ct = b.encrypt(b"hi")?;
//! match a.process(&ct)? {
//!     Incoming::Application { plaintext, .. } => assert_eq!(plaintext.as_slice(), b"hi"),
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), kith_crypto::CryptoError>(())
//! ```

pub mod boxed;
mod error;
pub mod mls;
pub mod padding;
pub mod seal;

pub use error::CryptoError;
