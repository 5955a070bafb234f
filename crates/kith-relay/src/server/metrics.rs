//! Prometheus metrics, served as text on `GET /metrics`.
//!
//! Labels never carry ids or keys: only the operation and the answer code.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) op: &'static str,
    pub(crate) code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OpLabels {
    pub(crate) op: &'static str,
}

/// Every metric the relay exports.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) request_seconds: Family<OpLabels, Histogram>,
    pub(crate) appended_bytes: Counter,
    pub(crate) pushed_messages: Counter,
    pub(crate) websocket_connections: Gauge,
    pub(crate) subscriptions: Gauge,
    pub(crate) connections: Gauge,
    pub(crate) connections_refused: Counter,
    pub(crate) write_timeouts: Counter,
    pub(crate) long_polls: Gauge,
    pub(crate) replay_nonces: Gauge,
    pub(crate) verify_batch_size: Histogram,
    pub(crate) commit_seconds: Histogram,
    pub(crate) commit_writes: Histogram,
    pub(crate) resident_memory_bytes: Gauge,
    pub(crate) cpu_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("kith_relay");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by operation and answer code",
            requests.clone(),
        );
        let request_seconds = Family::<OpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
        });
        registry.register(
            "request_seconds",
            "Time to answer a request, by operation",
            request_seconds.clone(),
        );
        let appended_bytes = Counter::default();
        registry.register(
            "appended_bytes",
            "Payload bytes appended to channels",
            appended_bytes.clone(),
        );
        let pushed_messages = Counter::default();
        registry.register(
            "pushed_messages",
            "Messages sent to WebSocket subscribers",
            pushed_messages.clone(),
        );
        let websocket_connections = Gauge::default();
        registry.register(
            "websocket_connections",
            "Open WebSocket connections",
            websocket_connections.clone(),
        );
        let subscriptions = Gauge::default();
        registry.register(
            "subscriptions",
            "Active channel subscriptions",
            subscriptions.clone(),
        );
        let connections = Gauge::default();
        registry.register("connections", "Open TCP connections", connections.clone());
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "TCP connections closed at once because max_connections was reached",
            connections_refused.clone(),
        );
        let write_timeouts = Counter::default();
        registry.register(
            "write_timeouts",
            "Connections closed because the client stopped reading",
            write_timeouts.clone(),
        );
        let long_polls = Gauge::default();
        registry.register(
            "long_polls",
            "Reads waiting for a message to arrive",
            long_polls.clone(),
        );
        let replay_nonces = Gauge::default();
        registry.register(
            "replay_nonces",
            "Nonces remembered for replay protection",
            replay_nonces.clone(),
        );
        let verify_batch_size = Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0]);
        registry.register(
            "verify_batch_size",
            "Signatures verified together",
            verify_batch_size.clone(),
        );
        let commit_seconds = Histogram::new(exponential_buckets(0.000_1, 2.0, 14));
        registry.register(
            "commit_seconds",
            "Time to commit one batch of writes, sync included",
            commit_seconds.clone(),
        );
        let commit_writes = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        registry.register(
            "commit_writes",
            "Writes committed together (group commit)",
            commit_writes.clone(),
        );
        let resident_memory_bytes = Gauge::default();
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of the relay process",
            resident_memory_bytes.clone(),
        );
        let cpu_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "process_cpu_seconds",
            "CPU time (user and system) used by the relay process",
            cpu_seconds.clone(),
        );
        Self {
            registry,
            cpu_seconds,
            requests,
            request_seconds,
            appended_bytes,
            pushed_messages,
            websocket_connections,
            subscriptions,
            connections,
            connections_refused,
            write_timeouts,
            long_polls,
            replay_nonces,
            verify_batch_size,
            commit_seconds,
            commit_writes,
            resident_memory_bytes,
        }
    }

    /// The text exposition format.
    pub(crate) fn render(&self) -> String {
        if let Some(rss) = resident_memory_bytes() {
            self.resident_memory_bytes
                .set(i64::try_from(rss).unwrap_or(i64::MAX));
        }
        if let Some(cpu) = cpu_seconds() {
            self.cpu_seconds.set(cpu);
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Resident set size from `/proc/self/status` (Linux); `None` elsewhere.
pub(crate) fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// User plus system CPU time from `/proc/self/stat` (Linux); `None`
/// elsewhere. Ticks are 100 per second on every Linux this runs on
/// (`USER_HZ`, fixed by the kernel ABI).
pub(crate) fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
