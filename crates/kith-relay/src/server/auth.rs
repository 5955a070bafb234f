//! From received bytes to a [`VerifiedRequest`] (`docs/spec/relay.md`,
//! "Request processing").
//!
//! The checks run cheapest first, and none of them consults the store, so
//! their cost does not depend on whether the named channel exists:
//!
//! 1. decode (`malformed`);
//! 2. relay id (`wrong_relay`);
//! 3. timestamp window (`stale_timestamp`);
//! 4. Ed25519 signature (`unauthorized`);
//! 5. per-key rate limit (`rate_limited`);
//! 6. nonce (`replayed`).
//!
//! Whether the signer may do what it asks is decided afterwards, by the store,
//! in the same transaction as the operation.

use super::AppState;
use super::error::ApiError;
use super::replay::Freshness;
use ed25519_dalek::{Signature, VerifyingKey};
use kith_wire::relay::request::{RequestBody, SignedRequest};
use kith_wire::relay::response::ErrorCode;

/// A request whose signature, freshness and relay id have been checked.
/// Only [`verify`] makes one.
#[derive(Debug)]
pub(crate) struct VerifiedRequest {
    body: RequestBody,
}

impl VerifiedRequest {
    pub(crate) fn body(&self) -> &RequestBody {
        &self.body
    }

    pub(crate) fn into_body(self) -> RequestBody {
        self.body
    }
}

/// Checks a signed request received at `now_ms`.
pub(crate) fn verify(
    state: &AppState,
    bytes: &[u8],
    now_ms: u64,
) -> Result<VerifiedRequest, ApiError> {
    let (body, signed, signature) =
        SignedRequest::split(bytes).map_err(|e| ApiError::malformed(&e))?;
    if body.relay_id != state.relay_id {
        return Err(ApiError::new(
            ErrorCode::WRONG_RELAY,
            "the request was signed for another relay",
        ));
    }
    if state
        .replay
        .check_timestamp(body.timestamp_ms, now_ms)
        .is_err()
    {
        return Err(ApiError::new(
            ErrorCode::STALE_TIMESTAMP,
            "the request timestamp is outside the accepted window; correct the clock \
             with server_time_ms and min_timestamp_ms",
        ));
    }
    let key = VerifyingKey::from_bytes(&body.signer.0).map_err(|_| ApiError::unauthorized())?;
    key.verify_strict(
        &RequestBody::signed_message(signed),
        &Signature::from_bytes(&signature.0),
    )
    .map_err(|_| ApiError::unauthorized())?;
    state
        .rate
        .check_key(&body.signer)
        .map_err(ApiError::rate_limited)?;
    match state.replay.check_nonce(&body.nonce, now_ms) {
        Ok(()) => {}
        Err(Freshness::Replayed) => {
            return Err(ApiError::new(
                ErrorCode::REPLAYED,
                "this request was already received",
            ));
        }
        Err(Freshness::Full | Freshness::Stale) => {
            return Err(ApiError::unavailable("the relay is overloaded"));
        }
    }
    Ok(VerifiedRequest { body })
}
