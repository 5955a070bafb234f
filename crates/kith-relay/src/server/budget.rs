//! Memory for answers on their way to clients (`docs/spec/relay.md`,
//! "Limits"). A read, a subscription's catch-up page and a blob chunk take
//! room from one budget before they are read from the store, and give it
//! back once written to the socket; so clients that stop reading hold at
//! most the budget between them, however many they are.
//!
//! ```text
//!  take(floor, want) ──▶ Room (floor … want bytes) ──▶ store read of room.bytes()
//!        │ waits for the floor, at most `wait`                  │
//!        ▼                                                      ▼
//!  `unavailable` (retry)                   shrink_to(answer) ──▶ dropped once written
//! ```

use std::sync::Arc;
use std::time::Duration;

use kith_wire::relay::response::ErrorCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

/// The longest an answer waits for room before the client is told to retry.
pub(crate) const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// Room is counted in KiB: a semaphore's permits are fewer than its bytes.
const UNIT: usize = 1024;

#[derive(Debug)]
pub(crate) struct AnswerBudget {
    room: Arc<Semaphore>,
    wait: Duration,
}

/// Room taken for one answer; given back when dropped.
#[derive(Debug)]
pub(crate) struct Room {
    permit: OwnedSemaphorePermit,
}

impl AnswerBudget {
    /// A budget of `mib` MiB; an answer waits at most `wait` for room.
    pub(crate) fn new(mib: u32, wait: Duration) -> Self {
        Self {
            room: Arc::new(Semaphore::new(mib as usize * 1024 * 1024 / UNIT)),
            wait,
        }
    }

    /// Room for an answer of at least `floor` bytes (one message) and up to
    /// `want` (a full page): waits for the floor, and takes more only if it
    /// is free now, so a busy relay answers with shorter pages rather than
    /// later.
    pub(crate) async fn take(&self, floor: usize, want: usize) -> Result<Room, ApiError> {
        let floor = units(floor).max(1);
        let want = units(want).max(floor);
        let acquired =
            tokio::time::timeout(self.wait, self.room.clone().acquire_many_owned(floor)).await;
        let mut permit = match acquired {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) | Err(_) => {
                return Err(ApiError {
                    retry_after: Some(Duration::from_secs(1)),
                    ..ApiError::new(
                        ErrorCode::UNAVAILABLE,
                        "the relay is busy sending answers; retry",
                    )
                });
            }
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
    use futures_util::FutureExt;

    #[tokio::test]
    async fn room_is_given_back_when_an_answer_is_smaller_or_written() {
        let budget = AnswerBudget::new(1, Duration::from_millis(50));
        let mut room = budget.take(100_000, 600_000).await.unwrap();
        assert_eq!(room.bytes(), 600_000_usize.div_ceil(UNIT) * UNIT);
        room.shrink_to(3_000);
        assert_eq!(budget.free(), 1024 * 1024 - 3 * UNIT);
        drop(room);
        assert_eq!(budget.free(), 1024 * 1024);
    }

    #[tokio::test]
    async fn a_busy_budget_gives_shorter_pages_and_then_waits() {
        let budget = AnswerBudget::new(1, Duration::from_millis(50));
        let first = budget.take(100_000, 900_000).await.unwrap();
        // What is left is less than wanted but more than the floor.
        let second = budget.take(100_000, 900_000).await.unwrap();
        assert!(second.bytes() < 900_000 && second.bytes() >= 100_000);
        assert_eq!(budget.free(), 0);
        // Nothing left: the third waits until room comes back.
        let third = budget.take(1, 1);
        tokio::pin!(third);
        assert!(third.as_mut().now_or_never().is_none());
        drop(first);
        assert!(third.await.is_ok());
        drop(second);
    }

    #[tokio::test]
    async fn an_answer_that_finds_no_room_is_told_to_retry() {
        let budget = AnswerBudget::new(1, Duration::from_millis(50));
        let _all = budget.take(1024 * 1024, 1024 * 1024).await.unwrap();
        let e = budget.take(1, 1).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::UNAVAILABLE);
    }
}
