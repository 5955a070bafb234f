//! From received bytes to a [`VerifiedRequest`] (`docs/spec/relay.md`,
//! "Request processing").
//!
//! The checks run cheapest first, and none of them consults the store, so
//! their cost does not depend on whether the named channel exists:
//!
//! 1. decode (`malformed`);
//! 2. relay id (`wrong_relay`);
//! 3. timestamp window (`stale_timestamp`);
//! 4. Ed25519 signature (`unauthorized`), batched with concurrent requests
//!    by the [`Verifier`](super::verifier::Verifier);
//! 5. per-key rate limit (`rate_limited`);
//! 6. nonce (`replayed`).
//!
//! Whether the signer may do what it asks is decided afterwards, by the store,
//! in the same transaction as the operation.

use super::AppState;
use super::error::ApiError;
use super::replay::Freshness;
use ed25519_dalek::{Signature, VerifyingKey};
use kith_wire::relay::PublicKey;
use kith_wire::relay::request::{RequestBody, SignedRequest};
use kith_wire::relay::response::ErrorCode;
use std::collections::HashMap;
use std::sync::Mutex;

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

/// A request split into its decoded body, the exact signed bytes and the
/// signature: not yet checked.
#[derive(Debug)]
pub(crate) struct UnverifiedRequest<'a> {
    pub(crate) body: RequestBody,
    signed: &'a [u8],
    signature: kith_wire::relay::Signature,
}

impl<'a> UnverifiedRequest<'a> {
    /// Decodes received bytes.
    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self, ApiError> {
        let (body, signed, signature) =
            SignedRequest::split(bytes).map_err(|e| ApiError::malformed(&e))?;
        Ok(Self {
            body,
            signed,
            signature,
        })
    }
}

/// Checks a signed request received at `now_ms`.
pub(crate) async fn verify(
    state: &AppState,
    request: UnverifiedRequest<'_>,
    now_ms: u64,
) -> Result<VerifiedRequest, ApiError> {
    let UnverifiedRequest {
        body,
        signed,
        signature,
    } = request;
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
    let key = state
        .keys
        .get(&body.signer)
        .ok_or_else(ApiError::unauthorized)?;
    let genuine = state
        .verifier
        .verify(
            RequestBody::signed_message(signed),
            Signature::from_bytes(&signature.0),
            key,
        )
        .await;
    if !genuine {
        return Err(ApiError::unauthorized());
    }
    state
        .rate
        .check_key(&body.signer)
        .map_err(ApiError::rate_limited)?;
    let freshness = if state.shared_nonces {
        let limits = &state.config.limits;
        let forget_at = now_ms
            .saturating_add(u64::from(limits.timestamp_max_age_ms))
            .saturating_add(u64::from(limits.timestamp_max_future_ms));
        match state.store.remember_nonce(body.nonce.0, forget_at).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Freshness::Replayed),
            Err(e) => {
                tracing::warn!(error = %e, "could not record a nonce");
                Err(Freshness::Full)
            }
        }
    } else {
        state.replay.check_nonce(&body.nonce, now_ms)
    };
    match freshness {
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

/// Whether `key` may be registered on a channel: a valid Ed25519 point that
/// is not of small order (for which signatures prove nothing).
pub(crate) fn acceptable_key(key: &PublicKey) -> bool {
    decompress(key).is_some()
}

fn decompress(key: &PublicKey) -> Option<VerifyingKey> {
    VerifyingKey::from_bytes(&key.0)
        .ok()
        .filter(|k| !k.is_weak())
}

const KEY_SHARDS: usize = 16;
const KEYS_PER_SHARD: usize = 1_024;

/// Recently seen signer keys, decompressed: a channel's keys sign request
/// after request, and decompressing one costs about 5 µs. Only acceptable
/// keys are kept; a full shard is simply emptied.
#[derive(Debug)]
pub(crate) struct KeyCache {
    shards: Vec<Mutex<HashMap<[u8; 32], VerifyingKey>>>,
}

impl KeyCache {
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..KEY_SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// The key, if it is acceptable.
    pub(crate) fn get(&self, key: &PublicKey) -> Option<VerifyingKey> {
        let shard = self.shards.get(usize::from(key.0[0]) % KEY_SHARDS)?;
        if let Some(k) = shard.lock().ok()?.get(&key.0) {
            return Some(*k);
        }
        let decompressed = decompress(key)?;
        if let Ok(mut map) = shard.lock() {
            if map.len() >= KEYS_PER_SHARD {
                map.clear();
            }
            map.insert(key.0, decompressed);
        }
        Some(decompressed)
    }
}
