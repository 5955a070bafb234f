//! Per-IP and per-key token buckets (GCRA, via `governor`).
//!
//! The per-IP limit applies before anything is decoded; the per-key limit
//! only after the signature is verified, so that nobody can spend another
//! key's budget by naming it.

use super::config::RateLimitConfig;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use kith_wire::relay::PublicKey;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// Both limiters; `None` when rate limiting is off.
#[derive(Debug)]
pub(crate) struct RateLimits {
    inner: Option<Limiters>,
}

#[derive(Debug)]
struct Limiters {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_key: DefaultKeyedRateLimiter<[u8; 32]>,
    clock: DefaultClock,
}

fn quota(per_sec: u32, burst: u32) -> Quota {
    let one = NonZeroU32::MIN;
    Quota::per_second(NonZeroU32::new(per_sec).unwrap_or(one))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(one))
}

impl RateLimits {
    pub(crate) fn new(config: &RateLimitConfig) -> Self {
        Self {
            inner: config.enabled.then(|| Limiters {
                per_ip: RateLimiter::keyed(quota(config.per_ip_per_sec, config.per_ip_burst)),
                per_key: RateLimiter::keyed(quota(config.per_key_per_sec, config.per_key_burst)),
                clock: DefaultClock::default(),
            }),
        }
    }

    /// `Err(wait)` if the address is over its limit.
    pub(crate) fn check_ip(&self, ip: IpAddr) -> Result<(), Duration> {
        let Some(l) = &self.inner else { return Ok(()) };
        l.per_ip
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(l.clock.now()))
    }

    /// `Err(wait)` if the key is over its limit.
    pub(crate) fn check_key(&self, key: &PublicKey) -> Result<(), Duration> {
        let Some(l) = &self.inner else { return Ok(()) };
        l.per_key
            .check_key(&key.0)
            .map_err(|not_until| not_until.wait_time_from(l.clock.now()))
    }

    /// Forgets addresses and keys whose buckets are full again (memory bound).
    pub(crate) fn forget_idle(&self) {
        if let Some(l) = &self.inner {
            l.per_ip.retain_recent();
            l.per_ip.shrink_to_fit();
            l.per_key.retain_recent();
            l.per_key.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refusal() {
        let r = RateLimits::new(&RateLimitConfig {
            enabled: true,
            per_ip_per_sec: 1,
            per_ip_burst: 3,
            per_key_per_sec: 1,
            per_key_burst: 1,
        });
        let ip: IpAddr = [10, 0, 0, 1].into();
        assert!((0..3).all(|_| r.check_ip(ip).is_ok()));
        let wait = r.check_ip(ip).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        // Another address has its own bucket.
        assert!(r.check_ip([10, 0, 0, 2].into()).is_ok());
        let k = PublicKey([1; 32]);
        assert!(r.check_key(&k).is_ok());
        assert!(r.check_key(&k).is_err());
    }

    #[test]
    fn disabled_never_limits() {
        let r = RateLimits::new(&RateLimitConfig {
            enabled: false,
            ..RateLimitConfig::default()
        });
        assert!((0..10_000).all(|_| r.check_ip([10, 0, 0, 1].into()).is_ok()));
    }
}
