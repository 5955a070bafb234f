//! Memory for answers on their way to clients (`docs/spec/relay.md`, §3
//! "Clients that stall"). A read, a subscription's catch-up page and a blob
//! chunk take room from one budget before they are read from the store,
//! and give it back once written to the socket; so clients that stop
//! reading hold at most the budget between them, however many they are.
//!
//! ```text
//!  take(floor, want) ──▶ Room (floor … want bytes) ──▶ store read of room.bytes()
//!        │ no room for the floor                                │
//!        ▼                                                      ▼
//!  `unavailable` at once (retry)           shrink_to(answer) ──▶ dropped once written
//! ```
//!
//! A request that finds no room is refused at once rather than queued: a
//! waiting request holds a few KiB, and a thousand clients pipelining
//! requests they never read would otherwise pile up 20,000 of them
//! (measured: 117 MB with a 10 s wait, 75 MB refusing at once).

use std::sync::Arc;
use std::time::Duration;

use kith_wire::relay::response::ErrorCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

/// Room is counted in KiB: a semaphore's permits are fewer than its bytes.
const UNIT: usize = 1024;

#[derive(Debug)]
pub(crate) struct AnswerBudget {
    room: Arc<Semaphore>,
}

/// Room taken for one answer; given back when dropped.
#[derive(Debug)]
pub(crate) struct Room {
    permit: OwnedSemaphorePermit,
}

impl AnswerBudget {
    /// A budget of `mib` MiB.
    pub(crate) fn new(mib: u32) -> Self {
        Self {
            room: Arc::new(Semaphore::new(mib as usize * 1024 * 1024 / UNIT)),
        }
    }

    /// Room for an answer of at least `floor` bytes (one message) and up to
    /// `want` (a full page), as much as is free now: a busy relay answers
    /// with shorter pages, and one without room for a single message tells
    /// the client to retry.
    pub(crate) fn take(&self, floor: usize, want: usize) -> Result<Room, ApiError> {
        let floor = units(floor).max(1);
        let want = units(want).max(floor);
        let Ok(mut permit) = self.room.clone().try_acquire_many_owned(floor) else {
            return Err(ApiError {
                retry_after: Some(Duration::from_secs(1)),
                ..ApiError::new(
                    ErrorCode::UNAVAILABLE,
                    "the relay is busy sending answers; retry",
                )
            });
        };
        let more = (want - floor).min(u32::try_from(self.room.available_permits()).unwrap_or(0));
        if more > 0
            && let Ok(extra) = self.room.clone().try_acquire_many_owned(more)
        {
            permit.merge(extra);
        }
        Ok(Room { permit })
    }

    /// Room free now, in bytes.
    #[cfg(test)]
    fn free(&self) -> usize {
        self.room.available_permits() * UNIT
    }
}

impl Room {
    /// The most bytes this answer may take.
    pub(crate) fn bytes(&self) -> usize {
        self.permit.num_permits() * UNIT
    }

    /// Gives back what an answer of `used` bytes does not need.
    pub(crate) fn shrink_to(&mut self, used: usize) {
        let keep = units(used).max(1) as usize;
        let held = self.permit.num_permits();
        if held > keep {
            drop(self.permit.split(held - keep));
        }
    }
}

fn units(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn room_is_given_back_when_an_answer_is_smaller_or_written() {
        let budget = AnswerBudget::new(1);
        let mut room = budget.take(100_000, 600_000).unwrap();
        assert_eq!(room.bytes(), 600_000_usize.div_ceil(UNIT) * UNIT);
        room.shrink_to(3_000);
        assert_eq!(budget.free(), 1024 * 1024 - 3 * UNIT);
        drop(room);
        assert_eq!(budget.free(), 1024 * 1024);
    }

    #[test]
    fn a_busy_budget_gives_shorter_pages_then_asks_to_retry() {
        let budget = AnswerBudget::new(1);
        let first = budget.take(100_000, 900_000).unwrap();
        // What is left is less than wanted but more than the floor.
        let second = budget.take(100_000, 900_000).unwrap();
        assert!(second.bytes() < 900_000 && second.bytes() >= 100_000);
        assert_eq!(budget.free(), 0);
        // Nothing left: refused at once, with a time to retry.
        let e = budget.take(1, 1).unwrap_err();
        assert_eq!(e.code, ErrorCode::UNAVAILABLE);
        assert!(e.retry_after.is_some());
        // Room comes back as answers are written.
        drop(first);
        assert!(budget.take(1, 1).is_ok());
        drop(second);
    }
}
