//! # kith-wire
//!
//! The bytes kith puts on the wire, and nothing else: no I/O, no keys, no
//! clocks. Every type has one canonical encoding ([`Codec`]), which is what
//! signatures are computed over, and every decoder is strict and bounded so
//! that hostile input gives an error, never a panic or an outsized
//! allocation.
//!
//! ```text
//!                 kith-wire
//!   ┌──────────────────────────────────────────┐
//!   │ codec      Reader / Writer / Codec       │
//!   │ relay      ids, Rights, SIZE_BUCKETS     │
//!   │   request  RequestBody ─┐                │
//!   │            SignedRequest = body ‖ sig    │
//!   │   response RelayInfo, Messages, Error…   │
//!   │   push     ClientFrame / ServerFrame     │
//!   └──────────────────────────────────────────┘
//!        ▲ encode/decode            ▲ encode/decode
//!   kith-relay (server)       kith-relay client, kith-core
//! ```
//!
//! The protocol these types implement is specified in `docs/spec/relay.md`;
//! each type's documentation names the part of the spec it implements.
//!
//! ```
//! use kith_wire::Codec;
//! use kith_wire::relay::{WriteId, request::{Append, Operation}};
//!
//! let op = Operation::Append(Append { write_id: WriteId([7; 32]), payload: vec![0; 256] });
//! let bytes = op.to_bytes();
//! assert_eq!(bytes[0], 2); // the tag of `append`
//! assert_eq!(Operation::from_bytes(&bytes).unwrap(), op);
//! // Trailing bytes are refused: there is exactly one encoding per value.
//! let mut longer = bytes.clone();
//! longer.push(0);
//! assert!(Operation::from_bytes(&longer).is_err());
//! ```

pub mod codec;
pub mod conv;
pub mod dir;
pub mod relay;

pub use codec::{Codec, DecodeError, Reader, Writer};
