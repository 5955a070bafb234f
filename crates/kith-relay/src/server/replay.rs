//! Replay protection: a request is accepted only if its timestamp is inside
//! the window and its nonce has not been accepted before.
//!
//! Nonces are remembered only as long as a request carrying them could still
//! pass the timestamp check: `max_age + max_future` after they were first
//! seen. They are kept in generations (one set per `GENERATION_MS` of
//! arrival time) so that forgetting is dropping a whole set, and memory is
//! bounded by the request rate over that span.
//!
//! The memory is lost on restart, so a restarted relay also refuses every
//! timestamp below its start time plus `max_future` (published as
//! `min_timestamp_ms`): anything signed before the restart is then refused by
//! the timestamp check alone.

use kith_wire::relay::Nonce;
use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

const SHARDS: usize = 16;
const GENERATION_MS: u64 = 10_000;

/// Why a request's freshness was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// Timestamp outside the window.
    Stale,
    /// Nonce seen before.
    Replayed,
    /// Too many nonces remembered; the relay is overloaded.
    Full,
}

#[derive(Debug)]
struct Shard {
    /// (generation number, nonces first seen in it), oldest first.
    generations: VecDeque<(u64, HashSet<[u8; 16]>)>,
    entries: usize,
}

/// Remembers recent nonces.
#[derive(Debug)]
pub(crate) struct ReplayGuard {
    shards: Vec<Mutex<Shard>>,
    max_age_ms: u64,
    max_future_ms: u64,
    min_timestamp_ms: u64,
    max_entries_per_shard: usize,
}

impl ReplayGuard {
    /// A guard for a relay that started at `started_ms`; `None` for one
    /// whose nonces live in the store, which forgets nothing on restart and
    /// so has no minimum (`min_timestamp_ms` is 0, relay.md §6).
    pub(crate) fn new(
        started_ms: Option<u64>,
        max_age_ms: u64,
        max_future_ms: u64,
        max_entries: usize,
    ) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        generations: VecDeque::new(),
                        entries: 0,
                    })
                })
                .collect(),
            max_age_ms,
            max_future_ms,
            min_timestamp_ms: started_ms.map_or(0, |t| t.saturating_add(max_future_ms)),
            max_entries_per_shard: (max_entries / SHARDS).max(1),
        }
    }

    /// The lowest timestamp accepted.
    pub(crate) fn min_timestamp_ms(&self) -> u64 {
        self.min_timestamp_ms
    }

    /// Checks the timestamp only (cheap, before the signature is checked).
    pub(crate) fn check_timestamp(&self, timestamp_ms: u64, now_ms: u64) -> Result<(), Freshness> {
        let oldest = now_ms
            .saturating_sub(self.max_age_ms)
            .max(self.min_timestamp_ms);
        let newest = now_ms.saturating_add(self.max_future_ms);
        if timestamp_ms < oldest || timestamp_ms > newest {
            return Err(Freshness::Stale);
        }
        Ok(())
    }

    /// Records the nonce, refusing it if already recorded.
    pub(crate) fn check_nonce(&self, nonce: &Nonce, now_ms: u64) -> Result<(), Freshness> {
        let shard_index = usize::from(nonce.0[0]) % SHARDS;
        let Some(shard) = self.shards.get(shard_index) else {
            return Err(Freshness::Full);
        };
        let mut shard = shard.lock().map_err(|_| Freshness::Full)?;
        let generation = now_ms / GENERATION_MS;
        // Keep every generation that may hold a nonce still inside the window.
        let keep = (self.max_age_ms + self.max_future_ms) / GENERATION_MS + 1;
        while let Some((g, set)) = shard.generations.front() {
            if g + keep < generation {
                let dropped = set.len();
                shard.generations.pop_front();
                shard.entries -= dropped;
            } else {
                break;
            }
        }
        if shard
            .generations
            .iter()
            .any(|(_, set)| set.contains(&nonce.0))
        {
            return Err(Freshness::Replayed);
        }
        if shard.entries >= self.max_entries_per_shard {
            return Err(Freshness::Full);
        }
        if shard
            .generations
            .back()
            .is_none_or(|(g, _)| *g != generation)
        {
            shard.generations.push_back((generation, HashSet::new()));
        }
        if let Some((_, set)) = shard.generations.back_mut() {
            set.insert(nonce.0);
            shard.entries += 1;
        }
        Ok(())
    }

    /// Nonces currently remembered.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.lock().ok().map(|s| s.entries))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: u64 = 1_000_000_000;

    fn guard() -> ReplayGuard {
        ReplayGuard::new(Some(START), 60_000, 10_000, 1_000_000)
    }

    #[test]
    fn timestamps_before_start_plus_future_are_refused() {
        let g = guard();
        let now = START + 1_000;
        assert_eq!(g.check_timestamp(START, now), Err(Freshness::Stale));
        assert_eq!(g.check_timestamp(START + 10_000, now), Ok(()));
        assert_eq!(g.check_timestamp(now + 10_001, now), Err(Freshness::Stale));
    }

    #[test]
    fn old_timestamps_are_refused() {
        let g = guard();
        let now = START + 1_000_000;
        assert_eq!(g.check_timestamp(now - 60_001, now), Err(Freshness::Stale));
        assert_eq!(g.check_timestamp(now - 60_000, now), Ok(()));
    }

    #[test]
    fn nonce_refused_until_it_could_no_longer_pass_the_window() {
        let g = guard();
        let n = Nonce([9; 16]);
        let now = START + 100_000;
        assert_eq!(g.check_nonce(&n, now), Ok(()));
        assert_eq!(g.check_nonce(&n, now), Err(Freshness::Replayed));
        // Still remembered at the end of the window…
        assert_eq!(g.check_nonce(&n, now + 70_000), Err(Freshness::Replayed));
        // …and forgotten once no timestamp it could carry is acceptable.
        assert_eq!(g.check_nonce(&n, now + 70_000 + 2 * GENERATION_MS), Ok(()));
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn memory_is_bounded() {
        let g = ReplayGuard::new(Some(START), 60_000, 10_000, 32);
        let mut refused = 0;
        for i in 0..100u8 {
            let mut n = [0u8; 16];
            n[0] = i;
            n[1] = 1;
            if g.check_nonce(&Nonce(n), START) == Err(Freshness::Full) {
                refused += 1;
            }
        }
        assert!(refused > 0);
        assert!(g.len() <= 32);
    }
}
