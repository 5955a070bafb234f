//! What the engine is told rather than finds out: intervals, trust, and the
//! clock. Library code reads no environment variable; the `kith` binary
//! maps its `KITH_*` settings into a [`Config`], and tests pass a
//! [`ManualClock`] instead of sleeping.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The engine's source of time, in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now_ms(&self) -> u64;
}

/// The machine's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, millis)
    }
}

/// A clock that moves only when told: weekly rotations, updates and
/// expiries are tested by advancing it.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock at the wall clock's current time (so that relays, which
    /// check request timestamps against their own clock, agree with it).
    pub fn starting_now() -> Arc<Self> {
        Arc::new(Self(AtomicU64::new(SystemClock.now_ms())))
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(millis(by), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// How often a group member refreshes its leaf when nothing else made it
/// commit (group-v1.md §10).
pub const UPDATE_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often the channels a user hosts get new ids (pair-v1.md §8.3).
pub const ROTATE_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest an old channel is kept after a move, for contacts that have
/// not synced yet (pair-v1.md §8.3).
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30 * 24 * 3600);

/// An engine's settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub group_update_interval: Duration,
    pub rotate_interval: Duration,
    pub drain_limit: Duration,
    /// PEM certificates trusted besides Mozilla's roots (a relay with a
    /// private authority).
    pub ca_file: Option<PathBuf>,
    /// The local address connections to relays come from (a machine with
    /// several; `None`: the system chooses).
    pub source_address: Option<std::net::IpAddr>,
    /// How long to wait for another process using the profile.
    pub lock_wait: Duration,
    /// Largest group commit sent inside its channel message; a larger one
    /// travels as a blob the message names (group-v1.md §6.5). Tests lower
    /// it to take that path with small groups.
    pub inline_commit_limit: usize,
    /// What this user's kith shows and does, advertised to every
    /// conversation (content-v1.md §8.1). Tests narrow it to stand for an
    /// older client; an application adds its media types.
    pub capabilities: kith_content::kind::Capabilities,
    pub clock: Arc<dyn Clock>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            group_update_interval: UPDATE_INTERVAL,
            rotate_interval: ROTATE_INTERVAL,
            drain_limit: DRAIN_LIMIT,
            ca_file: None,
            source_address: None,
            lock_wait: Duration::from_secs(10),
            inline_commit_limit: usize::MAX,
            capabilities: kith_content::kind::Capabilities::this_version(),
            clock: Arc::new(SystemClock),
        }
    }
}

impl Config {
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}

/// A duration in the protocol's unit (milliseconds), saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
