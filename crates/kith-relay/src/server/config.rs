//! Relay configuration: defaults, then a TOML file, then `KITH_RELAY_*`
//! environment variables (nested keys joined by `__`, e.g.
//! `KITH_RELAY_LIMITS__MAX_PAYLOAD`), then command-line flags.

use crate::store::Quotas;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use kith_wire::relay::response::Limits;
use kith_wire::relay::{MAX_PAYLOAD, is_bucket_size};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a configuration could not be loaded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file or variable could not be parsed.
    #[error("configuration: {0}")]
    Parse(Box<figment::Error>),
    /// A value is outside what the relay supports.
    #[error("configuration: {0}")]
    Invalid(String),
    /// No data directory could be determined for the default database path.
    #[error("no data directory found; pass --db")]
    NoDataDir,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Per-channel and per-request limits (published in `RelayInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest message payload / blob chunk; a size bucket.
    pub max_payload: u32,
    /// Most retained messages per channel.
    pub max_channel_messages: u32,
    /// Most retained payload bytes per channel.
    pub max_channel_bytes: u64,
    /// Most blob bytes per channel.
    pub max_channel_blob_bytes: u64,
    /// Most keys per channel.
    pub max_channel_keys: u32,
    /// Default message TTL.
    pub default_message_ttl_secs: u32,
    /// Longest message TTL.
    pub max_message_ttl_secs: u32,
    /// Default channel idle TTL.
    pub default_channel_ttl_secs: u32,
    /// Longest channel idle TTL.
    pub max_channel_ttl_secs: u32,
    /// Default blob TTL.
    pub default_blob_ttl_secs: u32,
    /// Longest blob TTL.
    pub max_blob_ttl_secs: u32,
    /// Most chunks per blob.
    pub max_blob_chunks: u32,
    /// Longest long-poll wait.
    pub max_wait_ms: u32,
    /// Most messages per read.
    pub max_read_messages: u16,
    /// Most payload bytes per read.
    pub max_read_bytes: u32,
    /// Oldest accepted request timestamp, relative to now.
    pub timestamp_max_age_ms: u32,
    /// Newest accepted request timestamp, relative to now.
    pub timestamp_max_future_ms: u32,
    /// Most subscriptions per WebSocket connection.
    pub max_subscriptions: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        const DAY: u32 = 86_400;
        Self {
            max_payload: MAX_PAYLOAD,
            max_channel_messages: 10_000,
            max_channel_bytes: 64 << 20,
            max_channel_blob_bytes: 4 << 30,
            max_channel_keys: 10_000,
            default_message_ttl_secs: 30 * DAY,
            max_message_ttl_secs: 90 * DAY,
            default_channel_ttl_secs: 90 * DAY,
            max_channel_ttl_secs: 365 * DAY,
            default_blob_ttl_secs: 7 * DAY,
            max_blob_ttl_secs: 30 * DAY,
            max_blob_chunks: 16_384,
            max_wait_ms: 25_000,
            max_read_messages: 256,
            max_read_bytes: 4 << 20,
            timestamp_max_age_ms: 60_000,
            timestamp_max_future_ms: 10_000,
            max_subscriptions: 1_024,
        }
    }
}

impl LimitsConfig {
    /// The wire form.
    pub fn to_wire(&self) -> Limits {
        Limits {
            max_payload: self.max_payload,
            max_channel_messages: self.max_channel_messages,
            max_channel_bytes: self.max_channel_bytes,
            max_channel_blob_bytes: self.max_channel_blob_bytes,
            max_channel_keys: self.max_channel_keys,
            default_message_ttl_secs: self.default_message_ttl_secs,
            max_message_ttl_secs: self.max_message_ttl_secs,
            default_channel_ttl_secs: self.default_channel_ttl_secs,
            max_channel_ttl_secs: self.max_channel_ttl_secs,
            default_blob_ttl_secs: self.default_blob_ttl_secs,
            max_blob_ttl_secs: self.max_blob_ttl_secs,
            max_blob_chunks: self.max_blob_chunks,
            max_wait_ms: self.max_wait_ms,
            max_read_messages: self.max_read_messages,
            max_read_bytes: self.max_read_bytes,
            timestamp_max_age_ms: self.timestamp_max_age_ms,
            timestamp_max_future_ms: self.timestamp_max_future_ms,
            max_subscriptions: self.max_subscriptions,
        }
    }

    /// What the store enforces.
    pub fn quotas(&self) -> Quotas {
        Quotas {
            max_channel_messages: self.max_channel_messages,
            max_channel_bytes: self.max_channel_bytes,
            max_channel_blob_bytes: self.max_channel_blob_bytes,
            max_channel_keys: self.max_channel_keys,
            max_blob_chunks: self.max_blob_chunks,
        }
    }
}

/// Token-bucket rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Whether limits apply at all.
    pub enabled: bool,
    /// Sustained requests per second from one IP address.
    pub per_ip_per_sec: u32,
    /// Burst from one IP address.
    pub per_ip_burst: u32,
    /// Sustained requests per second signed by one key.
    pub per_key_per_sec: u32,
    /// Burst signed by one key.
    pub per_key_burst: u32,
    /// Contact requests one IP address may append to one contact address
    /// per hour (appends by a key that may write but not read: a drop box,
    /// address-v1.md §5).
    pub address_per_source_per_hour: u32,
    /// Burst of contact requests from one IP address to one address.
    pub address_per_source_burst: u32,
    /// Entries one IP address may publish in public directories per hour
    /// (directory-v1.md §3).
    pub directory_publish_per_source_per_hour: u32,
    /// Burst of such entries.
    pub directory_publish_per_source_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            per_ip_per_sec: 500,
            per_ip_burst: 1_000,
            per_key_per_sec: 100,
            per_key_burst: 400,
            address_per_source_per_hour: 20,
            address_per_source_burst: 5,
            directory_publish_per_source_per_hour: 20,
            directory_publish_per_source_burst: 10,
        }
    }
}

/// Directories this relay runs (directory-v1.md); they are made with
/// `kith-relay directory create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DirectoryConfig {
    /// Whether the relay answers directory requests at all.
    pub enabled: bool,
    /// The relay's address as people reach it, for enrolment links
    /// (`kith-relay directory admit`); empty: `http://<listen>`.
    pub public_url: String,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            public_url: String::new(),
        }
    }
}

/// Everything `kith-relay serve` needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The SQLite database file, or a `postgres://` URL for the shared
    /// PostgreSQL store. Empty means `<data dir>/kith-relay/relay.db`.
    pub db: PathBuf,
    /// PostgreSQL: the schema to use (created if missing); empty: the
    /// connection's default `search_path`.
    pub postgres_schema: String,
    /// PostgreSQL: most connections of this process.
    pub postgres_pool: usize,
    /// TLS certificate chain (PEM); with `tls_key`, the relay serves HTTPS.
    pub tls_cert: PathBuf,
    /// TLS private key (PEM).
    pub tls_key: PathBuf,
    /// A name shown to clients.
    pub name: String,
    /// Most simultaneous TCP connections (WebSockets included).
    pub max_connections: usize,
    /// Seconds a request's body may take to arrive, from its headers on;
    /// then the answer is `timeout` (408) and the connection closes.
    pub body_timeout_secs: u64,
    /// Seconds a write to a client may make no progress (it stopped
    /// reading) before its connection is closed, WebSockets included.
    pub write_timeout_secs: u64,
    /// MiB of answers (read pages, blob chunks) on their way to clients;
    /// beyond it pages get shorter, then reads are refused `unavailable`.
    pub answer_memory_mib: u32,
    /// If non-empty, `create_channel` needs one of these tokens.
    pub create_tokens: Vec<String>,
    /// Take the client address from `X-Forwarded-For` (behind a proxy).
    pub trust_forwarded_for: bool,
    /// Seconds between expiry sweeps.
    pub sweep_interval_secs: u64,
    /// Read-only database connections.
    pub read_connections: usize,
    /// Writes queued for the writer before callers wait.
    pub write_queue: usize,
    /// Most writes per transaction.
    pub max_batch: usize,
    /// Seconds to let requests finish on shutdown.
    pub shutdown_grace_secs: u64,
    /// Log format.
    pub log_format: LogFormat,
    /// Limits.
    pub limits: LimitsConfig,
    /// Rate limits.
    pub rate_limit: RateLimitConfig,
    /// Directories.
    pub directory: DirectoryConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            db: PathBuf::new(),
            postgres_schema: String::new(),
            postgres_pool: 16,
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            name: String::new(),
            max_connections: 10_000,
            body_timeout_secs: 30,
            write_timeout_secs: 30,
            answer_memory_mib: 32,
            create_tokens: Vec::new(),
            trust_forwarded_for: false,
            sweep_interval_secs: 60,
            read_connections: 4,
            write_queue: 8_192,
            max_batch: 2_048,
            shutdown_grace_secs: 10,
            log_format: LogFormat::Text,
            limits: LimitsConfig::default(),
            rate_limit: RateLimitConfig::default(),
            directory: DirectoryConfig::default(),
        }
    }
}

impl Config {
    /// Defaults, then `file` (if given; it must exist), then environment
    /// variables prefixed `KITH_RELAY_`.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            fig = fig.merge(Toml::file(file));
        }
        // KITH_RELAY_CONFIG names the file itself (read by the binary).
        fig = fig.merge(Env::prefixed("KITH_RELAY_").ignore(&["config"]).split("__"));
        let config: Config = fig.extract().map_err(|e| ConfigError::Parse(Box::new(e)))?;
        Ok(config)
    }

    /// The PostgreSQL URL, when `db` names one.
    pub fn postgres_url(&self) -> Option<&str> {
        self.db
            .to_str()
            .filter(|db| db.starts_with("postgres://") || db.starts_with("postgresql://"))
    }

    /// Fills in the default database path and checks every value.
    pub fn finish(mut self) -> Result<Self, ConfigError> {
        if self.db.as_os_str().is_empty() {
            let dirs = directories::ProjectDirs::from("", "", "kith-relay")
                .ok_or(ConfigError::NoDataDir)?;
            self.db = dirs.data_dir().join("relay.db");
        }
        self.validate()?;
        Ok(self)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if !is_bucket_size(l.max_payload as usize) {
            return bad("limits.max_payload must be one of the size buckets (256 … 262144)");
        }
        if l.default_message_ttl_secs == 0 || l.default_message_ttl_secs > l.max_message_ttl_secs {
            return bad("limits.default_message_ttl_secs must be in 1..=max_message_ttl_secs");
        }
        if l.default_channel_ttl_secs == 0 || l.default_channel_ttl_secs > l.max_channel_ttl_secs {
            return bad("limits.default_channel_ttl_secs must be in 1..=max_channel_ttl_secs");
        }
        if l.default_blob_ttl_secs == 0 || l.default_blob_ttl_secs > l.max_blob_ttl_secs {
            return bad("limits.default_blob_ttl_secs must be in 1..=max_blob_ttl_secs");
        }
        if l.max_read_messages == 0 || u32::from(l.max_read_messages) > 1_000 {
            return bad("limits.max_read_messages must be in 1..=1000");
        }
        if l.max_channel_keys == 0 || l.max_blob_chunks == 0 {
            return bad("limits.max_channel_keys and max_blob_chunks must be positive");
        }
        if l.timestamp_max_age_ms < 1_000 {
            return bad("limits.timestamp_max_age_ms must be at least 1000");
        }
        if self.body_timeout_secs == 0 || self.write_timeout_secs == 0 {
            return bad("body_timeout_secs and write_timeout_secs must be positive");
        }
        if (self.answer_memory_mib as usize) * 1024 * 1024 < 2 * (l.max_payload as usize + 64) {
            return bad("answer_memory_mib must hold at least two messages of limits.max_payload");
        }
        if self.max_connections == 0 {
            return bad("max_connections must be positive");
        }
        if self.sweep_interval_secs == 0 {
            return bad("sweep_interval_secs must be positive");
        }
        let r = &self.rate_limit;
        if r.enabled
            && (r.per_ip_per_sec == 0
                || r.per_ip_burst == 0
                || r.per_key_per_sec == 0
                || r.per_key_burst == 0
                || r.address_per_source_per_hour == 0
                || r.address_per_source_burst == 0
                || r.directory_publish_per_source_per_hour == 0
                || r.directory_publish_per_source_burst == 0)
        {
            return bad("rate limits must be positive (or set rate_limit.enabled = false)");
        }
        if self.postgres_pool == 0 {
            return bad("postgres_pool must be positive");
        }
        if self.name.len() > 256 {
            return bad("name is longer than 256 bytes");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = Config {
            db: "x.db".into(),
            ..Config::default()
        };
        c.finish().unwrap();
    }

    #[test]
    fn file_then_env() {
        let dir = std::env::temp_dir().join(format!("kith-relay-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("relay.toml");
        std::fs::write(
            &file,
            "name = \"club\"\nlisten = \"127.0.0.1:0\"\n[limits]\nmax_payload = 65536\n",
        )
        .unwrap();
        let c = Config::load(Some(&file)).unwrap();
        assert_eq!(c.name, "club");
        assert_eq!(c.limits.max_payload, 65_536);
        assert_eq!(c.listen.port(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_values_refused() {
        let dir = std::env::temp_dir().join(format!("kith-relay-config2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("relay.toml");
        std::fs::write(&file, "lissten = \"127.0.0.1:0\"\n").unwrap();
        assert!(Config::load(Some(&file)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();

        let c = Config {
            db: "x.db".into(),
            limits: LimitsConfig {
                max_payload: 1000,
                ..LimitsConfig::default()
            },
            ..Config::default()
        };
        assert!(c.finish().is_err());
    }
}
