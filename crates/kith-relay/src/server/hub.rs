//! Fan-out of committed messages to subscribers and long-poll waiters.
//!
//! ```text
//! store writer ──publish(events)──▶ Hub ──try_send──▶ connection queue (bounded)
//!                                    │                   └─ full: mark the
//!                                    │                      subscription lagged;
//!                                    │                      the connection re-reads
//!                                    │                      from the store
//!                                    └──notify_waiters──▶ long-poll reads
//! ```
//!
//! A push is only a shortcut: every subscription keeps a cursor and can
//! always recover from the store, so a slow reader costs bounded memory and
//! never loses a message.

use crate::store::{ChannelKey, EventSink, StoreEvent};
use kith_wire::relay::PublicKey;
use kith_wire::relay::response::{ErrorCode, StoredMessage};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};

/// What a connection receives for one of its subscriptions.
#[derive(Debug)]
pub(crate) enum Push {
    /// A committed message.
    Message {
        sub: u32,
        message: Arc<StoredMessage>,
    },
    /// The subscription ended.
    Closed { sub: u32, code: ErrorCode },
}

/// State a subscription shares between the hub and its connection.
#[derive(Debug, Default)]
pub(crate) struct SubFlags {
    /// Pushes were dropped because the connection's queue was full.
    pub(crate) lagged: AtomicBool,
    /// Non-zero: the subscription was closed with this error code.
    pub(crate) closed: AtomicU16,
}

/// One subscription as the hub sees it.
#[derive(Debug)]
pub(crate) struct Subscriber {
    pub(crate) conn: u64,
    pub(crate) sub: u32,
    pub(crate) key: PublicKey,
    pub(crate) tx: mpsc::Sender<Push>,
    pub(crate) flags: Arc<SubFlags>,
    /// Wakes the connection when a flag changes.
    pub(crate) wake: Arc<Notify>,
}

impl Subscriber {
    fn close(&self, code: ErrorCode) {
        self.flags.closed.store(code.0, Ordering::Release);
        if self
            .tx
            .try_send(Push::Closed {
                sub: self.sub,
                code,
            })
            .is_err()
        {
            self.wake.notify_one();
        }
    }
}

#[derive(Debug, Default)]
struct Topic {
    subscribers: Vec<Subscriber>,
    waiters: Arc<Notify>,
}

/// Routes store events to connections.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    topics: Mutex<HashMap<ChannelKey, Topic>>,
}

impl Hub {
    /// Registers a subscription; pushes start with the next commit.
    pub(crate) fn subscribe(&self, channel: ChannelKey, subscriber: Subscriber) {
        if let Ok(mut topics) = self.topics.lock() {
            topics
                .entry(channel)
                .or_default()
                .subscribers
                .push(subscriber);
        }
    }

    /// Removes a subscription.
    pub(crate) fn unsubscribe(&self, channel: ChannelKey, conn: u64, sub: u32) {
        if let Ok(mut topics) = self.topics.lock()
            && let Some(topic) = topics.get_mut(&channel)
        {
            topic
                .subscribers
                .retain(|s| !(s.conn == conn && s.sub == sub));
            Self::drop_if_unused(&mut topics, channel);
        }
    }

    /// A handle that long-poll readers wait on; notified on every commit to
    /// the channel. Release it with [`Hub::unwatch`].
    pub(crate) fn watch(&self, channel: ChannelKey) -> Option<Arc<Notify>> {
        let mut topics = self.topics.lock().ok()?;
        Some(topics.entry(channel).or_default().waiters.clone())
    }

    /// Releases a handle from [`Hub::watch`].
    pub(crate) fn unwatch(&self, channel: ChannelKey, handle: Arc<Notify>) {
        drop(handle);
        if let Ok(mut topics) = self.topics.lock() {
            Self::drop_if_unused(&mut topics, channel);
        }
    }

    fn drop_if_unused(topics: &mut HashMap<ChannelKey, Topic>, channel: ChannelKey) {
        if topics
            .get(&channel)
            .is_some_and(|t| t.subscribers.is_empty() && Arc::strong_count(&t.waiters) == 1)
        {
            topics.remove(&channel);
        }
    }

    /// Events may have been missed: every subscription re-reads from the
    /// store, every long-poll looks again.
    pub(crate) fn resync(&self) {
        let Ok(topics) = self.topics.lock() else {
            return;
        };
        for topic in topics.values() {
            topic.waiters.notify_waiters();
            for s in &topic.subscribers {
                s.flags.lagged.store(true, Ordering::Release);
                s.wake.notify_one();
            }
        }
    }

    /// Channels with a subscriber or waiter (for tests and metrics).
    #[cfg(test)]
    pub(crate) fn topic_count(&self) -> usize {
        self.topics.lock().map(|t| t.len()).unwrap_or(0)
    }
}

impl EventSink for Hub {
    fn publish(&self, events: &[StoreEvent]) {
        let Ok(mut topics) = self.topics.lock() else {
            return;
        };
        for event in events {
            match event {
                StoreEvent::Appended { channel, message } => {
                    let Some(topic) = topics.get(channel) else {
                        continue;
                    };
                    topic.waiters.notify_waiters();
                    for s in &topic.subscribers {
                        let push = Push::Message {
                            sub: s.sub,
                            message: message.clone(),
                        };
                        if let Err(mpsc::error::TrySendError::Full(_)) = s.tx.try_send(push) {
                            s.flags.lagged.store(true, Ordering::Release);
                            s.wake.notify_one();
                        }
                    }
                }
                StoreEvent::ReaderRemoved { channel, key } => {
                    if let Some(topic) = topics.get_mut(channel) {
                        topic.subscribers.retain(|s| {
                            let revoked = s.key == *key;
                            if revoked {
                                s.close(ErrorCode::UNAUTHORIZED);
                            }
                            !revoked
                        });
                        Self::drop_if_unused(&mut topics, *channel);
                    }
                }
                StoreEvent::ChannelClosed { channel } => {
                    if let Some(topic) = topics.remove(channel) {
                        topic.waiters.notify_waiters();
                        for s in &topic.subscribers {
                            s.close(ErrorCode::UNAUTHORIZED);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriber(conn: u64, key: u8, cap: usize) -> (Subscriber, mpsc::Receiver<Push>) {
        let (tx, rx) = mpsc::channel(cap);
        (
            Subscriber {
                conn,
                sub: 1,
                key: PublicKey([key; 32]),
                tx,
                flags: Arc::default(),
                wake: Arc::default(),
            },
            rx,
        )
    }

    fn appended(channel: i64, seq: u64) -> StoreEvent {
        StoreEvent::Appended {
            channel: ChannelKey(channel),
            message: Arc::new(StoredMessage {
                seq,
                received_at_ms: 0,
                payload: vec![],
            }),
        }
    }

    #[test]
    fn pushes_in_order_and_marks_lag_when_full() {
        let hub = Hub::default();
        let (s, mut rx) = subscriber(1, 1, 2);
        let flags = s.flags.clone();
        hub.subscribe(ChannelKey(7), s);
        hub.publish(&[
            appended(7, 1),
            appended(7, 2),
            appended(7, 3),
            appended(8, 1),
        ]);
        let seqs: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|p| match p {
                Push::Message { message, .. } => message.seq,
                Push::Closed { .. } => 0,
            })
            .collect();
        assert_eq!(seqs, vec![1, 2]);
        assert!(flags.lagged.load(Ordering::Acquire));
    }

    #[test]
    fn revoking_a_reader_closes_only_its_subscriptions() {
        let hub = Hub::default();
        let (a, mut rx_a) = subscriber(1, 1, 4);
        let (b, mut rx_b) = subscriber(2, 2, 4);
        hub.subscribe(ChannelKey(7), a);
        hub.subscribe(ChannelKey(7), b);
        hub.publish(&[StoreEvent::ReaderRemoved {
            channel: ChannelKey(7),
            key: PublicKey([1; 32]),
        }]);
        assert!(matches!(rx_a.try_recv(), Ok(Push::Closed { .. })));
        assert!(rx_b.try_recv().is_err());
        hub.publish(&[appended(7, 1)]);
        assert!(rx_a.try_recv().is_err());
        assert!(matches!(rx_b.try_recv(), Ok(Push::Message { .. })));
    }

    #[test]
    fn topics_are_dropped_when_unused() {
        let hub = Hub::default();
        let w = hub.watch(ChannelKey(3)).unwrap();
        assert_eq!(hub.topic_count(), 1);
        hub.unwatch(ChannelKey(3), w);
        assert_eq!(hub.topic_count(), 0);
        let (s, _rx) = subscriber(1, 1, 1);
        hub.subscribe(ChannelKey(3), s);
        hub.unsubscribe(ChannelKey(3), 1, 1);
        assert_eq!(hub.topic_count(), 0);
    }
}
