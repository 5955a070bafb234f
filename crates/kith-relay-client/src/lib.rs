//! A client for the relay protocol (`docs/spec/relay.md`).
//!
//! [`RelayClient`] signs each request with the channel key it is given,
//! keeps its clock in step with the relay's (from `server_time_ms` in every
//! answer), and retries once when the relay says the timestamp was stale.
//! It sends requests over HTTP; a [`Session`] holds one WebSocket that
//! carries subscriptions and requests.

mod session;
mod tls;

pub use tls::{Trust, install_crypto_provider};

pub use session::{Requester, Session};

use ed25519_dalek::{Signer, SigningKey};
use kith_wire::relay::request::{
    Ack, AddKey, Append, AppendAfter, AppendExpiring, BlobCreate, BlobDelete, BlobGet, BlobPut,
    CreateChannel, DeleteChannel, Operation, Read, RequestBody, RevokeKey, Status,
    blob_claim_message,
};
use kith_wire::relay::response::{
    Acked, Appended, BlobChunk, BlobCreated, ChannelCreated, ChannelStatus, ErrorBody, ErrorCode,
    Messages, RelayInfo,
};
use kith_wire::relay::{
    BlobId, ChannelRef, KeyGrant, Nonce, PROTOCOL_VERSION, PublicKey, ReadId, RelayId, Signature,
    WriteId,
};
use kith_wire::{Codec, DecodeError};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use url::Url;

/// Timeout for a request that does not wait on purpose.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a relay request failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The relay refused or failed the request.
    #[error("the relay answered {code}: {message}")]
    Relay {
        /// The error code.
        code: ErrorCode,
        /// The relay's explanation.
        message: String,
        /// How long the relay asked to wait, if it did.
        retry_after: Option<Duration>,
    },
    /// The relay could not be reached or the connection broke.
    #[error("cannot reach the relay at {url}: {}", root_cause(error))]
    Transport {
        /// The URL.
        url: String,
        /// Why.
        /// Why. Not a `source`: its chain is summed up in the message,
        /// which would otherwise repeat it (error sending request …).
        error: reqwest::Error,
    },
    /// The relay's answer could not be decoded.
    #[error("the relay sent an answer that cannot be decoded: {0}")]
    Decode(#[from] DecodeError),
    /// Something other than a relay answered (a proxy error page, say).
    #[error("unexpected answer from {url}: HTTP {status}")]
    UnexpectedStatus {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The relay URL is not usable.
    #[error("invalid relay URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why.
        reason: String,
    },
    /// The WebSocket failed.
    #[error("WebSocket: {0}")]
    WebSocket(Box<tokio_tungstenite::tungstenite::Error>),
    /// The WebSocket ended before the relay answered (the relay stopped,
    /// or the network went).
    #[error("the connection to the relay ended before it answered")]
    Closed,
    /// The system's random number generator failed.
    #[error("randomness unavailable: {0}")]
    Randomness(String),
    /// The TLS configuration could not be built (a bad CA file).
    #[error("TLS: {0}")]
    Tls(String),
}

/// `2026-12-01 08:47` (UTC) from milliseconds since the epoch: how the
/// programs show a time.
pub fn utc_minute(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// One line from an error and its causes, each said once: wrapped errors
/// often repeat their source in their own message ("cannot reach the relay
/// …: connection refused", then "connection refused" again). Programs use
/// it for what they print.
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut cause = Some(error);
    while let Some(e) = cause {
        let part = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !part.is_empty() && !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        cause = e.source();
    }
    text
}

/// The innermost cause of an HTTP failure ("Connection refused (os error
/// 111)", "operation timed out"), which is what a person can act on.
fn root_cause(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "no answer in time".into();
    }
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

impl ClientError {
    /// The relay's error code, if the relay answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Relay { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A new random Ed25519 key (a channel owner or capability key).
pub fn generate_key() -> Result<SigningKey, ClientError> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|e| ClientError::Randomness(e.to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The wire form of a key's public half.
pub fn public_key(key: &SigningKey) -> PublicKey {
    PublicKey(key.verifying_key().to_bytes())
}

/// The `append` operation for a payload.
pub(crate) fn append_op(write_id: WriteId, payload: &[u8]) -> Operation {
    Operation::Append(Append {
        write_id,
        payload: payload.to_vec(),
    })
}

/// Signs `body` with `key`: the encoded `SignedRequest`.
pub fn sign_request(body: &RequestBody, key: &SigningKey) -> Vec<u8> {
    let mut bytes = body.to_bytes();
    let signature = key.sign(&RequestBody::signed_message(&bytes));
    bytes.extend_from_slice(&Signature(signature.to_bytes()).0);
    bytes
}

/// Options for a new channel.
#[derive(Debug, Clone, Default)]
pub struct ChannelOptions {
    /// How long unacknowledged messages are kept (relay default if `None`).
    pub message_ttl: Option<Duration>,
    /// How long the channel lives unused (relay default if `None`).
    pub channel_ttl: Option<Duration>,
    /// Keys to register besides the owner's.
    pub grants: Vec<KeyGrant>,
    /// The operator's token, for relays that require one.
    pub create_token: Option<Vec<u8>>,
}

fn secs(d: Option<Duration>) -> u32 {
    d.map_or(0, |d| u32::try_from(d.as_secs().max(1)).unwrap_or(u32::MAX))
}

#[derive(Debug, Default)]
struct Clock {
    info: Mutex<Option<RelayInfo>>,
    offset_ms: AtomicI64,
    min_timestamp_ms: AtomicU64,
}

/// Milliseconds since the Unix epoch on this machine's clock.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Clock {
    fn learn(&self, server_time_ms: u64, min_timestamp_ms: u64) {
        let offset = i64::try_from(server_time_ms)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(now_ms()).unwrap_or(i64::MAX));
        self.offset_ms.store(offset, Ordering::Relaxed);
        self.min_timestamp_ms
            .fetch_max(min_timestamp_ms, Ordering::Relaxed);
    }

    fn timestamp(&self) -> u64 {
        let now = now_ms().saturating_add_signed(self.offset_ms.load(Ordering::Relaxed));
        now.max(self.min_timestamp_ms.load(Ordering::Relaxed))
    }
}

/// A connection to one relay. Cheap to clone; clones share the connection
/// pool and the clock correction.
#[derive(Debug, Clone)]
pub struct RelayClient {
    http: reqwest::Client,
    base: Url,
    clock: Arc<Clock>,
    trust: Trust,
    source: Option<std::net::IpAddr>,
}

impl RelayClient {
    /// A client for the relay at `url` (`http://host:port`, optionally with a
    /// path prefix) that trusts Mozilla's roots. Nothing is sent until the
    /// first request.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        Self::with_trust(url, Trust::mozilla_roots()?)
    }

    /// The same, trusting what `trust` says (a private authority).
    pub fn with_trust(url: &str, trust: Trust) -> Result<Self, ClientError> {
        Self::with_source(url, trust, None)
    }

    /// The same, connecting from the local address `source` when given
    /// (a machine with several addresses; HTTP and WebSocket alike).
    pub fn with_source(
        url: &str,
        trust: Trust,
        source: Option<std::net::IpAddr>,
    ) -> Result<Self, ClientError> {
        let invalid = |reason: &str| ClientError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let mut base = Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if base.cannot_be_a_base() || base.host().is_none() {
            return Err(invalid("no host"));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*trust.config()).clone())
            .timeout(REQUEST_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(60))
            .local_address(source)
            .build()
            .map_err(|e| ClientError::Transport {
                url: url.to_owned(),
                error: e,
            })?;
        Ok(Self {
            http,
            base,
            clock: Arc::default(),
            trust,
            source,
        })
    }

    /// The relay's base URL.
    pub fn url(&self) -> &Url {
        &self.base
    }

    fn endpoint(&self, path: &str) -> Result<Url, ClientError> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ClientError::InvalidUrl {
                url: self.base.to_string(),
                reason: e.to_string(),
            })
    }

    fn transport(&self, url: &Url, error: reqwest::Error) -> ClientError {
        ClientError::Transport {
            url: url.to_string(),
            error,
        }
    }

    /// Fetches the relay's info (identity, limits, clock).
    pub async fn info(&self) -> Result<RelayInfo, ClientError> {
        let info = RelayInfo::from_bytes(&self.get("/v1/info").await?)?;
        self.clock.learn(info.server_time_ms, info.min_timestamp_ms);
        if let Ok(mut cached) = self.clock.info.lock() {
            *cached = Some(info.clone());
        }
        Ok(info)
    }

    /// The relay's info as last fetched, fetching it if never fetched.
    pub async fn cached_info(&self) -> Result<RelayInfo, ClientError> {
        let cached = self.clock.info.lock().ok().and_then(|i| i.clone());
        match cached {
            Some(info) => Ok(info),
            None => self.info().await,
        }
    }

    /// Builds and signs a request for this relay.
    pub async fn sign(&self, key: &SigningKey, op: Operation) -> Result<Vec<u8>, ClientError> {
        let relay_id: RelayId = self.cached_info().await?.relay_id;
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| ClientError::Randomness(e.to_string()))?;
        let body = RequestBody {
            version: PROTOCOL_VERSION,
            relay_id,
            timestamp_ms: self.clock.timestamp(),
            nonce: Nonce(nonce),
            signer: public_key(key),
            op,
        };
        Ok(sign_request(&body, key))
    }

    /// `GET` of a path; the body of a success, or the relay's error.
    async fn get(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let url = self.endpoint(path)?;
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| self.transport(&url, e))?;
        self.answer(&url, response).await
    }

    /// Posts raw bytes to a path; the body of a success, or the relay's error.
    pub async fn post(
        &self,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, ClientError> {
        let url = self.endpoint(path)?;
        let response = self
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport(&url, e))?;
        self.answer(&url, response).await
    }

    async fn answer(&self, url: &Url, response: reqwest::Response) -> Result<Vec<u8>, ClientError> {
        let status = response.status();
        let body = response.bytes().await.map_err(|e| self.transport(url, e))?;
        if status.is_success() {
            return Ok(body.to_vec());
        }
        match ErrorBody::from_bytes(&body) {
            Ok(e) => Err(self.relay_error(e)),
            Err(_) => Err(ClientError::UnexpectedStatus {
                url: url.to_string(),
                status: status.as_u16(),
            }),
        }
    }

    /// The error for a relay's error answer, correcting the clock from it.
    fn relay_error(&self, e: ErrorBody) -> ClientError {
        self.clock.learn(e.server_time_ms, e.min_timestamp_ms);
        ClientError::Relay {
            code: e.code,
            message: e.message,
            retry_after: (e.retry_after_ms > 0)
                .then(|| Duration::from_millis(u64::from(e.retry_after_ms))),
        }
    }

    /// Signs and posts `op`, retrying once (see [`retry_once`]).
    async fn call(
        &self,
        key: &SigningKey,
        op: Operation,
        timeout: Duration,
    ) -> Result<Vec<u8>, ClientError> {
        let path = op.path().unwrap_or("/v1/ws");
        retry_once(self, || async {
            let bytes = self.sign(key, op.clone()).await?;
            self.post(path, bytes, timeout).await
        })
        .await
    }

    async fn call_decode<T: Codec>(
        &self,
        key: &SigningKey,
        op: Operation,
    ) -> Result<T, ClientError> {
        let body = self.call(key, op, REQUEST_TIMEOUT).await?;
        Ok(T::from_bytes(&body)?)
    }

    async fn call_empty(&self, key: &SigningKey, op: Operation) -> Result<(), ClientError> {
        self.call(key, op, REQUEST_TIMEOUT).await.map(drop)
    }

    /// A directory's signed description (`GET /v1/dir/{name}`,
    /// directory-v1.md §6). Its root signature is the caller's to check
    /// against the pinned root.
    pub async fn directory_info(
        &self,
        name: &str,
    ) -> Result<kith_wire::dir::DirectoryInfo, ClientError> {
        if !kith_wire::dir::valid_directory_name(name) {
            return Err(ClientError::InvalidUrl {
                url: name.to_owned(),
                reason: "not a directory name".to_owned(),
            });
        }
        let body = self.get(&format!("/v1/dir/{name}")).await?;
        Ok(kith_wire::dir::DirectoryInfo::from_bytes(&body)?)
    }

    /// A directory operation signed by the member key; the answer's bytes
    /// (an `Attestation` for `enrol`, `SearchResults` for `search`, empty
    /// otherwise).
    pub async fn directory(
        &self,
        member: &SigningKey,
        request: kith_wire::dir::DirectoryRequest,
    ) -> Result<Vec<u8>, ClientError> {
        self.call(member, Operation::Directory(request), REQUEST_TIMEOUT)
            .await
    }

    /// Creates a channel owned by `owner`.
    pub async fn create_channel(
        &self,
        owner: &SigningKey,
        options: ChannelOptions,
    ) -> Result<ChannelCreated, ClientError> {
        let op = Operation::CreateChannel(CreateChannel {
            message_ttl_secs: secs(options.message_ttl),
            channel_ttl_secs: secs(options.channel_ttl),
            grants: options.grants,
            create_token: options.create_token.unwrap_or_default(),
        });
        self.call_decode(owner, op).await
    }

    /// Appends a payload (already padded to a size bucket).
    pub async fn append(
        &self,
        key: &SigningKey,
        write_id: WriteId,
        payload: &[u8],
    ) -> Result<Appended, ClientError> {
        self.call_decode(key, append_op(write_id, payload)).await
    }

    /// Appends only if the channel's last sequence number is still
    /// `after_seq`; otherwise the relay answers `conflict` and nothing is
    /// stored (relay.md §5.2a).
    pub async fn append_after(
        &self,
        key: &SigningKey,
        write_id: WriteId,
        after_seq: u64,
        payload: &[u8],
    ) -> Result<Appended, ClientError> {
        let op = Operation::AppendAfter(AppendAfter {
            write_id,
            after_seq,
            payload: payload.to_vec(),
        });
        self.call_decode(key, op).await
    }

    /// Appends a message the relay keeps at most `ttl` (relay.md §5.2b),
    /// only after `after_seq` when given: a disappearing message.
    pub async fn append_expiring(
        &self,
        key: &SigningKey,
        write_id: WriteId,
        after_seq: Option<u64>,
        ttl: Duration,
        payload: &[u8],
    ) -> Result<Appended, ClientError> {
        let op = Operation::AppendExpiring(AppendExpiring {
            write_id,
            after_seq,
            ttl_secs: u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX).max(1),
            payload: payload.to_vec(),
        });
        self.call_decode(key, op).await
    }

    /// Messages after `after_seq`; with a non-zero `wait`, waits up to that
    /// long for one to arrive (long-poll).
    pub async fn read(
        &self,
        key: &SigningKey,
        read_id: ReadId,
        after_seq: u64,
        max_messages: u16,
        wait: Duration,
    ) -> Result<Messages, ClientError> {
        let op = Operation::Read(Read {
            read_id,
            after_seq,
            max_messages,
            wait_ms: u32::try_from(wait.as_millis()).unwrap_or(u32::MAX),
        });
        let body = self.call(key, op, REQUEST_TIMEOUT + wait).await?;
        Ok(Messages::from_bytes(&body)?)
    }

    /// Acknowledges every message up to `seq`.
    pub async fn ack(
        &self,
        key: &SigningKey,
        read_id: ReadId,
        seq: u64,
    ) -> Result<Acked, ClientError> {
        self.call_decode(key, Operation::Ack(Ack { read_id, seq }))
            .await
    }

    /// Registers a key on a channel (`admin` needs the admin right).
    pub async fn add_key(
        &self,
        admin: &SigningKey,
        write_id: WriteId,
        grant: KeyGrant,
    ) -> Result<(), ClientError> {
        self.call_empty(admin, Operation::AddKey(AddKey { write_id, grant }))
            .await
    }

    /// Revokes a key: its next request on the channel is refused.
    pub async fn revoke_key(
        &self,
        admin: &SigningKey,
        write_id: WriteId,
        key: PublicKey,
    ) -> Result<(), ClientError> {
        self.call_empty(admin, Operation::RevokeKey(RevokeKey { write_id, key }))
            .await
    }

    /// Deletes a channel and everything in it.
    pub async fn delete_channel(
        &self,
        admin: &SigningKey,
        write_id: WriteId,
    ) -> Result<(), ClientError> {
        self.call_empty(admin, Operation::DeleteChannel(DeleteChannel { write_id }))
            .await
    }

    /// The channel's counters as `key` may see them.
    pub async fn status(
        &self,
        key: &SigningKey,
        channel: ChannelRef,
    ) -> Result<ChannelStatus, ClientError> {
        self.call_decode(key, Operation::Status(Status { channel }))
            .await
    }

    /// Reserves a blob owned by the channel. With `read_once`, the blob is
    /// deleted by the first fetch claimed with that key's secret
    /// ([`RelayClient::blob_claim`]); fetches without it consume nothing.
    pub async fn blob_create(
        &self,
        key: &SigningKey,
        write_id: WriteId,
        chunk_size: u32,
        chunk_count: u32,
        ttl: Option<Duration>,
        read_once: Option<PublicKey>,
    ) -> Result<BlobCreated, ClientError> {
        let op = Operation::BlobCreate(BlobCreate {
            write_id,
            chunk_size,
            chunk_count,
            ttl_secs: secs(ttl),
            read_once: read_once.is_some(),
            claim_key: read_once,
        });
        self.call_decode(key, op).await
    }

    /// Uploads one chunk.
    pub async fn blob_put(
        &self,
        key: &SigningKey,
        write_id: WriteId,
        blob_id: BlobId,
        index: u32,
        data: &[u8],
    ) -> Result<(), ClientError> {
        let op = Operation::BlobPut(BlobPut {
            write_id,
            blob_id,
            index,
            data: data.to_vec(),
        });
        self.call_empty(key, op).await
    }

    /// Fetches one chunk; the blob id is the only credential.
    pub async fn blob_get(&self, blob_id: BlobId, index: u32) -> Result<BlobChunk, ClientError> {
        self.fetch_blob(BlobGet {
            blob_id,
            index,
            claim: None,
        })
        .await
    }

    /// Fetches, and so consumes, a read-once blob: the fetch carries a
    /// signature by `claim` (the key derived from the link's secret), so
    /// that nobody without the secret can use the blob up (relay.md §5.2).
    pub async fn blob_claim(
        &self,
        blob_id: BlobId,
        claim: &SigningKey,
    ) -> Result<BlobChunk, ClientError> {
        let relay_id = self.cached_info().await?.relay_id;
        let signature = claim.sign(&blob_claim_message(&relay_id, &blob_id));
        self.fetch_blob(BlobGet {
            blob_id,
            index: 0,
            claim: Some(Signature(signature.to_bytes())),
        })
        .await
    }

    async fn fetch_blob(&self, get: BlobGet) -> Result<BlobChunk, ClientError> {
        let body = self
            .post("/v1/blob/get", get.to_bytes(), REQUEST_TIMEOUT)
            .await?;
        Ok(BlobChunk::from_bytes(&body)?)
    }

    /// Deletes a blob.
    pub async fn blob_delete(
        &self,
        key: &SigningKey,
        write_id: WriteId,
        blob_id: BlobId,
    ) -> Result<(), ClientError> {
        self.call_empty(key, Operation::BlobDelete(BlobDelete { write_id, blob_id }))
            .await
    }

    /// Opens a WebSocket for subscriptions and requests.
    pub async fn session(&self) -> Result<Session, ClientError> {
        Session::connect(self.clone()).await
    }

    /// Whether binding a key to a WebSocket to this relay is safe
    /// (relay.md §8, "Bound keys"): the connection is TLS, or never leaves
    /// this machine.
    pub fn binding_is_safe(&self) -> bool {
        match self.base.host() {
            _ if self.base.scheme() == "https" => true,
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            None => false,
        }
    }

    fn websocket_url(&self) -> Result<Url, ClientError> {
        let mut url = self.endpoint("/v1/ws")?;
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme)
            .map_err(|()| ClientError::InvalidUrl {
                url: url.to_string(),
                reason: "cannot derive the WebSocket URL".into(),
            })?;
        Ok(url)
    }
}

/// Runs `attempt`; when the relay answers `stale_timestamp` (the clock has
/// been corrected from that answer) or `wrong_relay` (the relay's info is
/// fetched again), runs it once more, which signs afresh.
pub(crate) async fn retry_once<F, Fut>(
    client: &RelayClient,
    attempt: F,
) -> Result<Vec<u8>, ClientError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u8>, ClientError>>,
{
    match attempt().await {
        Err(e) if e.code() == Some(ErrorCode::STALE_TIMESTAMP) => attempt().await,
        Err(e) if e.code() == Some(ErrorCode::WRONG_RELAY) => {
            client.info().await?;
            attempt().await
        }
        other => other,
    }
}
