//! Per-IP and per-key token buckets (GCRA, via `governor`).
//!
//! The per-IP limit applies before anything is decoded; the per-key limit
//! only after the signature is verified, so that nobody can spend another
//! key's budget by naming it. Contact addresses (channels a key may write
//! but not read) have a third: per address and source IP, so that one
//! source cannot flood an address that many people use. Entries published
//! in public directories have a fourth, per source IP: anyone may publish
//! there, with a key made on the spot, so keys bound nothing.

use super::config::RateLimitConfig;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use kith_wire::relay::PublicKey;
use std::collections::HashSet;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::RwLock;
use std::time::Duration;

/// Most contact addresses remembered as such (then the set starts again:
/// an address forgotten is limited again from its next request on).
const MAX_ADDRESSES: usize = 65_536;

/// Both limiters; `None` when rate limiting is off.
#[derive(Debug)]
pub(crate) struct RateLimits {
    inner: Option<Limiters>,
}

#[derive(Debug)]
struct Limiters {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_key: DefaultKeyedRateLimiter<[u8; 32]>,
    per_address_source: DefaultKeyedRateLimiter<([u8; 32], IpAddr)>,
    per_publish_source: DefaultKeyedRateLimiter<IpAddr>,
    /// Write ids of channels written to by a key without `READ`.
    addresses: RwLock<HashSet<[u8; 32]>>,
    clock: DefaultClock,
}

fn quota(per_sec: u32, burst: u32) -> Quota {
    let one = NonZeroU32::MIN;
    Quota::per_second(NonZeroU32::new(per_sec).unwrap_or(one))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(one))
}

fn hourly(per_hour: u32, burst: u32) -> Quota {
    let one = NonZeroU32::MIN;
    let per_hour = per_hour.max(1);
    Quota::with_period(Duration::from_secs(3600) / per_hour)
        .unwrap_or_else(|| Quota::per_hour(one))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(one))
}

impl RateLimits {
    pub(crate) fn new(config: &RateLimitConfig) -> Self {
        Self {
            inner: config.enabled.then(|| Limiters {
                per_ip: RateLimiter::keyed(quota(config.per_ip_per_sec, config.per_ip_burst)),
                per_key: RateLimiter::keyed(quota(config.per_key_per_sec, config.per_key_burst)),
                per_address_source: RateLimiter::keyed(hourly(
                    config.address_per_source_per_hour,
                    config.address_per_source_burst,
                )),
                per_publish_source: RateLimiter::keyed(hourly(
                    config.directory_publish_per_source_per_hour,
                    config.directory_publish_per_source_burst,
                )),
                addresses: RwLock::new(HashSet::new()),
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

    /// Before an append to `write_id` from `ip`: `Err(wait)` if the channel
    /// is known as a contact address and `ip` is over its limit there.
    pub(crate) fn check_address(&self, write_id: &[u8; 32], ip: IpAddr) -> Result<(), Duration> {
        let Some(l) = &self.inner else { return Ok(()) };
        // Every append asks: readers share the lock, only a new address writes.
        let known = l.addresses.read().is_ok_and(|set| set.contains(write_id));
        if !known {
            return Ok(());
        }
        l.per_address_source
            .check_key(&(*write_id, ip))
            .map_err(|not_until| not_until.wait_time_from(l.clock.now()))
    }

    /// After an append to `write_id` from `ip` by a key without `READ`:
    /// the channel is a contact address, and this request counts.
    pub(crate) fn appended_to_address(&self, write_id: &[u8; 32], ip: IpAddr) {
        let Some(l) = &self.inner else { return };
        let known = l.addresses.read().is_ok_and(|set| set.contains(write_id));
        let newly = !known
            && l.addresses.write().is_ok_and(|mut set| {
                if set.len() >= MAX_ADDRESSES && !set.contains(write_id) {
                    set.clear();
                }
                set.insert(*write_id)
            });
        if newly {
            // Checked before only once known: the first one counts now.
            let _ = l.per_address_source.check_key(&(*write_id, ip));
        }
    }

    /// `Err(wait)` if `ip` published too many entries in public
    /// directories lately.
    pub(crate) fn check_publish(&self, ip: IpAddr) -> Result<(), Duration> {
        let Some(l) = &self.inner else { return Ok(()) };
        l.per_publish_source
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(l.clock.now()))
    }

    /// Forgets addresses and keys whose buckets are full again (memory bound).
    pub(crate) fn forget_idle(&self) {
        if let Some(l) = &self.inner {
            l.per_address_source.retain_recent();
            l.per_address_source.shrink_to_fit();
            l.per_publish_source.retain_recent();
            l.per_publish_source.shrink_to_fit();
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
            ..RateLimitConfig::default()
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
    fn an_address_limits_each_source_once_known() {
        let r = RateLimits::new(&RateLimitConfig {
            address_per_source_per_hour: 1,
            address_per_source_burst: 2,
            ..RateLimitConfig::default()
        });
        let (address, other) = ([7; 32], [8; 32]);
        let (ip, ip2): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        // Not known as an address: nothing limits it.
        assert!((0..10).all(|_| r.check_address(&address, ip).is_ok()));
        r.appended_to_address(&address, ip); // the first request counts
        assert!(r.check_address(&address, ip).is_ok());
        assert!(r.check_address(&address, ip).is_err());
        // Another source, and another address, have their own buckets.
        assert!(r.check_address(&address, ip2).is_ok());
        assert!(r.check_address(&other, ip).is_ok());
    }

    #[test]
    fn public_entries_are_limited_per_source() {
        let r = RateLimits::new(&RateLimitConfig {
            directory_publish_per_source_per_hour: 1,
            directory_publish_per_source_burst: 3,
            ..RateLimitConfig::default()
        });
        let (ip, ip2): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        assert!((0..3).all(|_| r.check_publish(ip).is_ok()));
        assert!(r.check_publish(ip).is_err());
        assert!(r.check_publish(ip2).is_ok());
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
