//! `watch`: the engine kept running. One WebSocket per relay carries a
//! subscription for every channel the profile reads; a push is handled for
//! its channel alone (no full sync per message), and nothing polls while
//! idle: the only timer is the reconnection of a relay that went away and a
//! housekeeping sync every few minutes (rotations, updates, drains).
//!
//! ```text
//!  relay A ══ws══▶ link task ─┐                 ┌─▶ handle pushed messages
//!  relay B ══ws══▶ link task ─┼─▶ events (mpsc) ┤   (then settle, report)
//!                  (backoff)  │                 └─▶ reconnect / resubscribe
//!             timer ──────────┘
//! ```
//!
//! A relay that cannot be reached is said once; reconnection backs off
//! with jitter up to [`MAX_BACKOFF`], and is tried at once for every
//! relay when any relay answers again (the network came back).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use kith_relay_client::Requester;
use kith_wire::relay::push::ServerFrame;
use kith_wire::relay::request::{Ack, Operation};
use kith_wire::relay::response::StoredMessage;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::Result;
use crate::runtime::Engine;
use crate::store::{self, ChannelRow};
use crate::views::Notice;
use crate::views::{Live, SyncReport};

/// The longest wait between two attempts to reach a relay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Housekeeping while idle: a full sync (rotations, updates, drains,
/// anything a push could not carry).
const HOUSEKEEPING: Duration = Duration::from_secs(600);
/// How long `watch` waits for a command in another process to finish.
const RELOCK_WAIT: Duration = Duration::from_secs(300);
const EVENT_QUEUE: usize = 1024;
/// How long receipts (and capabilities) wait after a message arrives, so
/// that a burst of messages costs one receipt, sent while nothing else
/// waits (content-v1.md §7.8).
const OWED_DELAY: Duration = Duration::from_millis(500);

/// The wait before attempt `failures + 1` to reach a relay: doubling from
/// [`FIRST_BACKOFF`] to [`MAX_BACKOFF`], less a random part of up to a
/// quarter so that many clients do not come back in step.
pub(crate) fn backoff(failures: u32, random: u16) -> Duration {
    let base = FIRST_BACKOFF
        .saturating_mul(1u32 << failures.min(16))
        .min(MAX_BACKOFF);
    let jitter = base / 4 * u32::from(random) / u32::from(u16::MAX);
    base - jitter
}

/// Work the daemon hands the running engine: it gets the engine to
/// itself until its future ends. The closure crosses threads; the future
/// runs on the engine's.
pub type Job = Box<
    dyn for<'a> FnOnce(
            &'a mut Engine,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>
        + Send,
>;

/// The next job, or `None` once every sender is gone; never, without jobs.
async fn next_job(jobs: &mut Option<mpsc::Receiver<Job>>) -> Option<Job> {
    match jobs {
        Some(jobs) => jobs.recv().await,
        None => std::future::pending().await,
    }
}

enum Event {
    Frame { relay: String, frame: ServerFrame },
    Gone { relay: String },
}

/// One relay as `watch` sees it.
enum Link {
    Up {
        requester: Requester,
        task: JoinHandle<()>,
        /// Subscription number → channel row id.
        subs: HashMap<u32, i64>,
    },
    Down {
        failures: u32,
        retry_at: Instant,
    },
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Link::Up { task, .. } = self {
            task.abort();
        }
    }
}

/// The socket another process pokes after changing the profile (a new
/// conversation, a queued message): `watch` then looks at once.
struct Poked {
    #[cfg(unix)]
    socket: Option<(tokio::net::UnixDatagram, std::path::PathBuf)>,
}

impl Poked {
    fn listen(home: &std::path::Path) -> Self {
        #[cfg(unix)]
        {
            let path = crate::home::watch_socket(home);
            // A socket left by a watch that was killed.
            let _ = std::fs::remove_file(&path);
            let socket = tokio::net::UnixDatagram::bind(&path).ok();
            if socket.is_some() {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
            }
            Self {
                socket: socket.map(|s| (s, path)),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = home;
            Self {}
        }
    }

    /// Waits for a poke (for ever, where there is no socket).
    async fn wait(&self) {
        #[cfg(unix)]
        if let Some((socket, _)) = &self.socket {
            let mut buf = [0u8; 16];
            let _ = socket.recv(&mut buf).await;
            // Several pokes in a row are one.
            while socket.try_recv(&mut buf).is_ok() {}
            return;
        }
        std::future::pending::<()>().await;
    }
}

impl Drop for Poked {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some((_, path)) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn random_u16() -> u16 {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    u16::from_le_bytes(b)
}

impl Engine {
    /// Syncs, then keeps every channel subscribed and handles what is
    /// pushed as it arrives. `on_live` is called once, when the first sync
    /// is done and every reachable relay is subscribed (what is sent from
    /// then on arrives as it is pushed); `on_report` gets every report with
    /// something in it and returns `false` to stop.
    pub async fn watch(
        &mut self,
        on_live: impl FnOnce(&Live),
        on_report: impl FnMut(&SyncReport) -> bool,
    ) -> Result<()> {
        self.run(None, None, on_live, on_report).await
    }

    /// What `watch` does, and between pushes runs the `jobs` it is given
    /// (the daemon's API calls and commands, one at a time, each with the
    /// engine to itself), keeping the profile's lock throughout. After each
    /// round `head` holds the newest event's cursor, so that readers of the
    /// event log know when to look. Returns when every job sender is gone.
    pub async fn serve(
        &mut self,
        jobs: mpsc::Receiver<Job>,
        head: &tokio::sync::watch::Sender<u64>,
        on_live: impl FnOnce(&Live),
        on_report: impl FnMut(&SyncReport) -> bool,
    ) -> Result<()> {
        self.run(Some(jobs), Some(head), on_live, on_report).await
    }

    async fn run(
        &mut self,
        mut jobs: Option<mpsc::Receiver<Job>>,
        head: Option<&tokio::sync::watch::Sender<u64>>,
        on_live: impl FnOnce(&Live),
        mut on_report: impl FnMut(&SyncReport) -> bool,
    ) -> Result<()> {
        let serving = jobs.is_some();
        let mut on_live = Some(on_live);
        let (events_tx, mut events) = mpsc::channel::<Event>(EVENT_QUEUE);
        let mut links: BTreeMap<String, Link> = BTreeMap::new();
        self.watching = true;
        let poked = Poked::listen(self.home());
        let mut housekeeping = Instant::now();
        let mut owed: Option<Instant> = None;
        loop {
            // Relays first, so that a sync skips those that are down
            // (said once, by the link) and pushes of what it reads are
            // already subscribed; then again for the channels it found.
            let mut report = SyncReport::default();
            self.link_relays(&mut links, &events_tx, &mut report)
                .await?;
            if Instant::now() >= housekeeping {
                report.absorb(self.sync().await?);
                housekeeping = Instant::now() + HOUSEKEEPING;
                self.link_relays(&mut links, &events_tx, &mut report)
                    .await?;
            }
            if !report.is_empty() && !on_report(&report) {
                return Ok(());
            }
            if let Some(on_live) = on_live.take() {
                on_live(&Live {
                    channels: store::readable_channels(&self.db)?.len(),
                    relays: links
                        .values()
                        .filter(|l| matches!(l, Link::Up { .. }))
                        .count(),
                    unreachable: links
                        .values()
                        .filter(|l| matches!(l, Link::Down { .. }))
                        .count(),
                });
            }

            let wake = links
                .values()
                .filter_map(|l| match l {
                    Link::Down { retry_at, .. } => Some(*retry_at),
                    Link::Up { .. } => None,
                })
                .fold(housekeeping, Instant::min);
            let wake = owed.map_or(wake, |at| wake.min(at));
            if let Some(head) = head {
                // Readers wake only when there is something new.
                let newest = self.events_head()?;
                head.send_if_modified(|h| std::mem::replace(h, newest) != newest);
            }
            // Another process may use the profile meanwhile (a `send` in
            // another terminal); a daemon keeps it: others go through it.
            if !serving {
                self.lock.release();
            }
            let (first, was_poked, job) = tokio::select! {
                event = events.recv() => (event, false, None),
                () = poked.wait() => (None, true, None),
                () = tokio::time::sleep_until(wake) => (None, false, None),
                job = next_job(&mut jobs) => match job {
                    Some(job) => (None, false, Some(job)),
                    None => return Ok(()),
                },
            };
            if !serving {
                self.lock.relock(RELOCK_WAIT).await?;
            }
            if let Some(job) = job {
                job(self).await;
            }
            if was_poked {
                // Another process changed the profile: look at everything.
                housekeeping = Instant::now();
            }
            let mut batch: Vec<Event> = first.into_iter().collect();
            while let Ok(event) = events.try_recv() {
                batch.push(event);
            }
            let mut report = SyncReport::default();
            self.handle_events(batch, &mut links, &mut report).await?;
            if !report.is_empty() && !on_report(&report) {
                return Ok(());
            }
            if !report.messages.is_empty() || !report.connected.is_empty() {
                owed.get_or_insert_with(|| Instant::now() + OWED_DELAY);
            }
            // Later, once quiet: receipts never delay a message.
            if owed.is_some_and(|at| Instant::now() >= at) {
                owed = None;
                let errors = self.send_owed().await;
                if !errors.is_empty() {
                    let report = SyncReport {
                        errors,
                        ..SyncReport::default()
                    };
                    if !on_report(&report) {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Connects every relay with a readable channel that is not connected
    /// (when its retry time has come) and subscribes every readable channel
    /// not yet subscribed; drops subscriptions of channels no longer read.
    async fn link_relays(
        &mut self,
        links: &mut BTreeMap<String, Link>,
        events: &mpsc::Sender<Event>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let channels = store::readable_channels(&self.db)?;
        let mut by_relay: BTreeMap<String, Vec<&ChannelRow>> = BTreeMap::new();
        for c in &channels {
            by_relay.entry(c.relay_url.clone()).or_default().push(c);
        }
        links.retain(|url, _| by_relay.contains_key(url));
        let now = Instant::now();
        let mut came_back = false;
        for (url, list) in &by_relay {
            let due = match links.get(url) {
                None => true,
                Some(Link::Down { retry_at, .. }) => *retry_at <= now,
                Some(Link::Up { .. }) => false,
            };
            if due {
                match self.connect(url, events).await {
                    Ok(link) => {
                        if matches!(links.get(url), Some(Link::Down { .. })) {
                            report.notices.push(Notice {
                                conversation: String::new(),
                                text: format!("the relay at {url} is reachable again"),
                            });
                            came_back = true;
                        }
                        self.unreachable.remove(url);
                        links.insert(url.clone(), link);
                    }
                    Err(e) => {
                        let failures = match links.get(url) {
                            Some(Link::Down { failures, .. }) => failures.saturating_add(1),
                            _ => {
                                report.errors.push(format!(
                                    "{e}; kith keeps trying, at most a minute apart"
                                ));
                                0
                            }
                        };
                        self.unreachable.insert(url.clone());
                        links.insert(
                            url.clone(),
                            Link::Down {
                                failures,
                                retry_at: now + backoff(failures, random_u16()),
                            },
                        );
                    }
                }
            }
            if let Some(Link::Up {
                requester, subs, ..
            }) = links.get_mut(url)
            {
                let wanted: BTreeSet<i64> = list.iter().map(|c| c.id).collect();
                let stale: Vec<u32> = subs
                    .iter()
                    .filter(|(_, id)| !wanted.contains(id))
                    .map(|(sub, _)| *sub)
                    .collect();
                for sub in stale {
                    subs.remove(&sub);
                    let _ = requester.unsubscribe(sub).await;
                }
                let have: BTreeSet<i64> = subs.values().copied().collect();
                for c in list.iter().filter(|c| !have.contains(&c.id)) {
                    if let Ok(sub) = requester.subscribe(&c.key, c.read_id, c.cursor).await {
                        subs.insert(sub, c.id);
                    }
                }
            }
        }
        if came_back {
            // The network is back: try every other relay now too.
            for link in links.values_mut() {
                if let Link::Down { retry_at, .. } = link {
                    *retry_at = now;
                }
            }
        }
        Ok(())
    }

    async fn connect(&mut self, url: &str, events: &mpsc::Sender<Event>) -> Result<Link> {
        let client = self.relay(url)?;
        let mut session = client.session().await?;
        let requester = session.requester();
        let events = events.clone();
        let relay = url.to_string();
        let task = tokio::spawn(async move {
            while let Some(frame) = session.next().await {
                let event = Event::Frame {
                    relay: relay.clone(),
                    frame,
                };
                if events.send(event).await.is_err() {
                    return;
                }
            }
            let _ = events.send(Event::Gone { relay }).await;
        });
        Ok(Link::Up {
            requester,
            task,
            subs: HashMap::new(),
        })
    }

    /// Handles what the relays pushed: each channel's new messages in
    /// order, acknowledged over the same WebSocket; then the engine's
    /// follow-up work (commits, Welcomes, introductions, the outbox).
    async fn handle_events(
        &mut self,
        batch: Vec<Event>,
        links: &mut BTreeMap<String, Link>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let mut pushed: BTreeMap<i64, Vec<StoredMessage>> = BTreeMap::new();
        let mut gone = false;
        for event in batch {
            match event {
                Event::Frame {
                    relay,
                    frame: ServerFrame::Message { sub, message },
                } => {
                    if let Some(Link::Up { subs, .. }) = links.get(&relay)
                        && let Some(channel) = subs.get(&sub)
                    {
                        pushed.entry(*channel).or_default().push(message);
                    }
                }
                Event::Frame {
                    relay,
                    frame: ServerFrame::Closed { sub, .. },
                } => {
                    // Revoked, deleted, or the relay is stopping: a sync
                    // tells which (a removed member's group closes there).
                    if let Some(Link::Up { subs, .. }) = links.get_mut(&relay) {
                        subs.remove(&sub);
                    }
                    gone = true;
                }
                Event::Frame { .. } => {}
                Event::Gone { relay } => {
                    // Connected again at once; if that fails, it is said.
                    links.remove(&relay);
                }
            }
        }
        if gone {
            let full = self.sync().await?;
            report.absorb(full);
            return Ok(());
        }
        if pushed.is_empty() {
            return Ok(());
        }
        let mut joined = Vec::new();
        for (channel_id, messages) in pushed {
            let Some(channel) = store::channel(&self.db, channel_id)? else {
                continue;
            };
            let fresh: Vec<StoredMessage> = messages
                .into_iter()
                .filter(|m| m.seq > channel.cursor)
                .collect();
            let Some(last) = fresh.last().map(|m| m.seq) else {
                continue;
            };
            self.handle_fetched(&channel, &fresh, report, &mut joined)
                .await?;
            if let Some(Link::Up { requester, .. }) = links.get(&channel.relay_url) {
                let ack = Operation::Ack(Ack {
                    read_id: channel.read_id,
                    seq: last,
                });
                if let Err(e) = requester.call(&channel.key, ack).await {
                    report
                        .errors
                        .push(format!("acknowledging on {}: {e}", channel.relay_url));
                }
            }
        }
        self.finish_report(report, joined).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute_with_jitter_below() {
        assert_eq!(backoff(0, 0), Duration::from_millis(500));
        assert_eq!(backoff(1, 0), Duration::from_secs(1));
        assert_eq!(backoff(3, 0), Duration::from_secs(4));
        assert_eq!(backoff(7, 0), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX, 0), MAX_BACKOFF);
        assert_eq!(backoff(7, u16::MAX), MAX_BACKOFF - MAX_BACKOFF / 4);
        for failures in 0..20 {
            for random in [0, 1, 1000, u16::MAX] {
                let wait = backoff(failures, random);
                assert!(wait >= FIRST_BACKOFF * 3 / 4 && wait <= MAX_BACKOFF);
            }
        }
    }
}
