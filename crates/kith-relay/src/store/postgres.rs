//! The shared store: PostgreSQL, for several relay processes on one
//! database.
//!
//! ```text
//!  relay process A                                   relay process B
//!   request ─▶ pool ─▶ BEGIN; authorize (row lock); change;
//!                      pg_notify('kith_relay', event); COMMIT
//!   own events ─▶ own hub              PostgreSQL ──NOTIFY (at commit, in
//!                                                   commit order)──▶ listener
//!                                                   ─▶ B's hub (message re-read
//!                                                   by channel and seq)
//! ```
//!
//! Each operation is one transaction at READ COMMITTED. Writes lock the
//! channel row (`FOR UPDATE`) while they authorize, so appends to one
//! channel are numbered one after another whichever process takes them.
//! A commit returns once PostgreSQL has flushed it (`synchronous_commit`
//! on, the server default), so an answer still means "on disk".
//! Notifications are a shortcut like every push (`server::hub`): when the
//! listener loses its connection it reconnects and tells every subscriber
//! to re-read from the store.

use super::{
    AUTH_COLUMNS, Admission, Authorized, BlobClaim, BlobRow, ChannelKey, DirectoryRow,
    DirectorySummary, EntryChange, EventSink, LIVE_MESSAGES, LiveMessages, MemberRow, NewBlob,
    NewChannel, NewDirectory, Quotas, ReadPage, Search, SigningKeyRow, Store, StoreError,
    StoreEvent, StoreStats, SweepStats, admission_from, blob_hash, channel_created, channel_grants,
    fixed, key_status, page, random_32, rights_from, signing_key_row, to_i64, to_u64,
};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::StreamExt;
use kith_wire::dir::Entry;
use kith_wire::relay::response::{
    Acked, Appended, BlobChunk, BlobCreated, ChannelCreated, ChannelStatus, Messages, StoredMessage,
};
use kith_wire::relay::{BlobId, ChannelRef, KeyGrant, PublicKey, ReadId, RelayId, Rights, WriteId};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};

/// Numbered migrations, recorded in `kith_schema`.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (2, include_str!("../../migrations/postgres/0002_nonces.sql")),
    (
        3,
        include_str!("../../migrations/postgres/0003_blob_claims.sql"),
    ),
    (
        4,
        include_str!("../../migrations/postgres/0004_directories.sql"),
    ),
];
/// The notification channel every relay process listens on.
const NOTIFY_CHANNEL: &str = "kith_relay";
/// Largest payload carried inside a notification (hex: twice the size).
const INLINE_PAYLOAD: usize = 3_900;
/// Rows deleted per sweep transaction.
const SWEEP_BATCH: i64 = 5_000;
/// Serializes migrations of concurrent processes (`pg_advisory_xact_lock`).
const MIGRATION_LOCK: i64 = 0x6b69_7468;

/// How to open a [`PostgresStore`].
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// `postgres://user@host:port/database`.
    pub url: String,
    /// A schema to use (created if missing) instead of the default
    /// `search_path`: several relays, or test runs, in one database.
    pub schema: Option<String>,
    /// Quotas to enforce.
    pub quotas: Quotas,
    /// Most database connections of this process.
    pub pool_size: usize,
}

/// The PostgreSQL implementation of [`Store`].
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.inner.schema)
            .finish_non_exhaustive()
    }
}

struct Inner {
    pool: Pool,
    schema: Option<String>,
    relay_id: RelayId,
    quotas: Quotas,
    /// Tags this process's notifications, which its listener skips.
    origin: u64,
    sink: Arc<dyn EventSink>,
    listener: Mutex<Option<JoinHandle<()>>>,
}

fn engine(e: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(e.to_string())
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The server's own message ("too many clients", "permission
        // denied…") is in the source, not in the error's Display.
        match e.as_db_error() {
            Some(db) => engine(format!("{e}: {db}")),
            None => engine(e),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        engine(e)
    }
}

fn valid_schema(schema: &str) -> Result<(), StoreError> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !schema.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidArgument(
            "a schema name is 1-63 of a-z, 0-9 and _, not starting with a digit",
        ))
    }
}

fn pg_config(options: &PostgresOptions) -> Result<tokio_postgres::Config, StoreError> {
    let mut config: tokio_postgres::Config = options.url.parse().map_err(engine)?;
    if let Some(schema) = &options.schema {
        valid_schema(schema)?;
        config.options(format!("-c search_path={schema}"));
    }
    config.application_name("kith-relay");
    Ok(config)
}

/// The statement for `sql`, prepared once per connection (deadpool's
/// cache): the server parses and plans each query once, not per request.
async fn stmt(db: &impl GenericClient, sql: &str) -> Result<tokio_postgres::Statement, StoreError> {
    Ok(db.prepare_cached(sql).await?)
}

async fn insert_directory_key(
    db: &impl GenericClient,
    name: &str,
    k: &SigningKeyRow,
) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO directory_keys (directory, key, secret, valid_from, valid_until, root_signature) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &name,
            &&k.key.key[..],
            &&k.secret[..],
            &to_i64(k.key.valid_from_ms)?,
            &to_i64(k.key.valid_until_ms)?,
            &&k.key.root_signature[..],
        ],
    )
    .await?;
    Ok(())
}

/// Looks up the channel and the signer's rights in one query (unknown
/// channel, unknown key and missing right answer alike); `lock` takes the
/// channel row for the rest of the transaction.
async fn authorize(
    db: &impl GenericClient,
    channel: ChannelRef,
    key: &PublicKey,
    need: Rights,
    now_ms: u64,
    lock: bool,
) -> Result<Authorized, StoreError> {
    let (column, id) = match &channel {
        ChannelRef::Write(w) => ("write_id", &w.0),
        ChannelRef::Read(r) => ("read_id", &r.0),
    };
    let sql = format!(
        "SELECT {AUTH_COLUMNS} FROM channels c \
         JOIN channel_keys k ON k.channel_id = c.id AND k.key = $2 \
         WHERE c.{column} = $1 AND c.expires_at > $3{}",
        if lock { " FOR UPDATE OF c" } else { "" }
    );
    let row = db
        .query_opt(
            &stmt(db, &sql).await?,
            &[&&id[..], &&key.0[..], &to_i64(now_ms)?],
        )
        .await?
        .ok_or(StoreError::Unauthorized)?;
    let mut counters = [0i64; 9];
    for (i, c) in counters.iter_mut().enumerate() {
        *c = row.try_get(i + 2)?;
    }
    Authorized::from_columns(
        row.try_get(0)?,
        i64::from(row.try_get::<_, i16>(1)?),
        counters,
        need,
    )
}

/// Deletes messages every current reader has acknowledged.
async fn drop_acknowledged(tx: &Transaction<'_>, channel_id: i64) -> Result<(), StoreError> {
    let min: Option<i64> = tx
        .query_one(
            &stmt(
                tx,
                "SELECT MIN(acked_seq) FROM channel_keys \
                 WHERE channel_id = $1 AND (rights & 1) <> 0",
            )
            .await?,
            &[&channel_id],
        )
        .await?
        .try_get(0)?;
    let Some(min) = min else { return Ok(()) };
    let row = tx
        .query_one(
            &stmt(
                tx,
                "WITH gone AS (DELETE FROM messages WHERE channel_id = $1 AND seq <= $2 \
                           RETURNING octet_length(payload) AS len) \
             SELECT COUNT(*), COALESCE(SUM(len), 0)::BIGINT FROM gone",
            )
            .await?,
            &[&channel_id, &min],
        )
        .await?;
    let (count, bytes): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    if count > 0 {
        tx.execute(
            &stmt(
                tx,
                "UPDATE channels SET message_count = message_count - $2, \
             message_bytes = message_bytes - $3 WHERE id = $1",
            )
            .await?,
            &[&channel_id, &count, &bytes],
        )
        .await?;
    }
    Ok(())
}

/// A key lost the read right: its subscriptions end, and what only it
/// still had to acknowledge can go.
async fn reader_removed(
    tx: &Transaction<'_>,
    events: &mut Vec<StoreEvent>,
    channel_id: i64,
    key: PublicKey,
) -> Result<(), StoreError> {
    events.push(StoreEvent::ReaderRemoved {
        channel: ChannelKey(channel_id),
        key,
    });
    drop_acknowledged(tx, channel_id).await
}

async fn touch_if_due(
    db: &impl GenericClient,
    a: &Authorized,
    now_ms: u64,
) -> Result<(), StoreError> {
    if a.touch_due(now_ms) {
        db.execute(
            &stmt(
                db,
                "UPDATE channels SET expires_at = $2 + channel_ttl_ms WHERE id = $1",
            )
            .await?,
            &[&a.id, &to_i64(now_ms)?],
        )
        .await?;
    }
    Ok(())
}

async fn keep_an_admin(tx: &Transaction<'_>, channel_id: i64) -> Result<(), StoreError> {
    let admins: i64 = tx
        .query_one(
            &stmt(
                tx,
                "SELECT COUNT(*) FROM channel_keys WHERE channel_id = $1 AND (rights & 4) <> 0",
            )
            .await?,
            &[&channel_id],
        )
        .await?
        .try_get(0)?;
    if admins <= 1 {
        return Err(StoreError::Conflict(
            "a channel keeps at least one admin key",
        ));
    }
    Ok(())
}

async fn key_rights(
    tx: &Transaction<'_>,
    channel_id: i64,
    key: &PublicKey,
) -> Result<Option<Rights>, StoreError> {
    tx.query_opt(
        &stmt(
            tx,
            "SELECT rights FROM channel_keys WHERE channel_id = $1 AND key = $2",
        )
        .await?,
        &[&channel_id, &&key.0[..]],
    )
    .await?
    .map(|r| rights_from(i64::from(r.try_get::<_, i16>(0)?)))
    .transpose()
}

async fn find_blob(
    db: &impl GenericClient,
    blob_id: &BlobId,
    now_ms: u64,
    lock: bool,
) -> Result<BlobRow, StoreError> {
    let sql = format!(
        "SELECT id, channel_id, chunk_size, chunk_count, read_once, claim_key FROM blobs \
         WHERE id_hash = $1 AND expires_at > $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row = db
        .query_opt(
            &stmt(db, &sql).await?,
            &[&&blob_hash(blob_id)[..], &to_i64(now_ms)?],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    blob_row(&row)
}

/// A `BlobRow` from `SELECT id, channel_id, chunk_size, chunk_count, read_once, claim_key`.
fn blob_row(row: &tokio_postgres::Row) -> Result<BlobRow, StoreError> {
    let int = |i: usize| -> Result<u32, StoreError> {
        u32::try_from(row.try_get::<_, i32>(i)?).map_err(|_| StoreError::Corrupt("blob size"))
    };
    Ok(BlobRow {
        id: row.try_get(0)?,
        channel_id: row.try_get(1)?,
        chunk_size: int(2)?,
        chunk_count: int(3)?,
        read_once: row.try_get(4)?,
        claim_key: row.try_get(5)?,
        in_file: false,
    })
}

async fn chunk(
    db: &impl GenericClient,
    blob: &BlobRow,
    index: u32,
) -> Result<BlobChunk, StoreError> {
    let index = i32::try_from(index).map_err(|_| StoreError::NotFound)?;
    let data: Vec<u8> = db
        .query_opt(
            &stmt(
                db,
                "SELECT data FROM blob_chunks WHERE blob_id = $1 AND idx = $2",
            )
            .await?,
            &[&blob.id, &index],
        )
        .await?
        .ok_or(StoreError::NotFound)?
        .try_get(0)?;
    Ok(BlobChunk {
        chunk_count: blob.chunk_count,
        data,
    })
}

async fn delete_blob(tx: &Transaction<'_>, blob: &BlobRow) -> Result<(), StoreError> {
    tx.execute(
        &stmt(tx, "DELETE FROM blobs WHERE id = $1").await?,
        &[&blob.id],
    )
    .await?;
    tx.execute(
        &stmt(
            tx,
            "UPDATE channels SET blob_bytes = blob_bytes - $2 WHERE id = $1",
        )
        .await?,
        &[&blob.channel_id, &blob.reserved_bytes()],
    )
    .await?;
    Ok(())
}

/// The text of one event's notification: `origin kind channel [detail]`.
fn notification(origin: u64, event: &StoreEvent) -> String {
    match event {
        // Small messages travel in the notification itself (hex; NOTIFY
        // takes up to 8,000 bytes), so other processes push them without a
        // query; larger ones are read back by channel and sequence number.
        StoreEvent::Appended { channel, message } => {
            let inline = if message.payload.len() <= INLINE_PAYLOAD {
                kith_wire::relay::to_hex(&message.payload)
            } else {
                "-".to_owned()
            };
            format!(
                "{origin} a {} {} {} {inline}",
                channel.0, message.seq, message.received_at_ms
            )
        }
        StoreEvent::ReaderRemoved { channel, key } => {
            format!(
                "{origin} r {} {}",
                channel.0,
                kith_wire::relay::to_hex(&key.0)
            )
        }
        StoreEvent::ChannelClosed { channel } => format!("{origin} c {}", channel.0),
    }
}

/// Runs the body in one transaction (`tx`: the transaction, `events`: what
/// to publish once it commits) and commits it; an error rolls it back.
macro_rules! in_transaction {
    ($store:expr, |$tx:ident, $events:pat_param| $body:block) => {{
        let started = std::time::Instant::now();
        let mut object = $store.inner.pool.get().await?;
        let transaction = object.transaction().await?;
        let mut published: Vec<StoreEvent> = Vec::new();
        let value = {
            let $tx = &transaction;
            let $events = &mut published;
            let result: Result<_, StoreError> = async { $body }.await;
            result?
        };
        $store.commit(transaction, published, started).await?;
        Ok::<_, StoreError>(value)
    }};
}

impl PostgresStore {
    /// Connects, creates the schema if asked, applies migrations (one
    /// process at a time) and starts listening for other processes' events.
    pub async fn open(
        options: PostgresOptions,
        sink: Arc<dyn EventSink>,
    ) -> Result<Self, StoreError> {
        let config = pg_config(&options)?;
        if let Some(schema) = &options.schema {
            let mut plain: tokio_postgres::Config = options.url.parse().map_err(engine)?;
            plain.application_name("kith-relay");
            let (client, connection) = plain.connect(NoTls).await?;
            let driver = tokio::spawn(connection);
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await?;
            drop(client);
            let _ = driver.await;
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(engine)?;
        let relay_id = {
            let mut object = pool.get().await?;
            let client: &mut tokio_postgres::Client = &mut object;
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS kith_schema (version INTEGER NOT NULL)")
                .await?;
            let version: i32 = tx
                .query_one("SELECT COALESCE(MAX(version), 0) FROM kith_schema", &[])
                .await?
                .try_get(0)?;
            let known = MIGRATIONS.last().map_or(0, |m| m.0);
            if version > known {
                return Err(StoreError::Corrupt(
                    "the database is from a newer kith-relay",
                ));
            }
            for (n, sql) in MIGRATIONS.iter().filter(|m| m.0 > version) {
                tx.batch_execute(sql).await?;
                tx.execute("INSERT INTO kith_schema (version) VALUES ($1)", &[n])
                    .await?;
            }
            tx.execute(
                "INSERT INTO relay_meta (name, value) VALUES ('relay_id', $1) \
                 ON CONFLICT (name) DO NOTHING",
                &[&&random_32()?[..]],
            )
            .await?;
            let id: Vec<u8> = tx
                .query_one("SELECT value FROM relay_meta WHERE name = 'relay_id'", &[])
                .await?
                .try_get(0)?;
            tx.commit().await?;
            RelayId(
                id.try_into()
                    .map_err(|_| StoreError::Corrupt("relay_id is not 32 bytes"))?,
            )
        };
        let origin = u64::from_be_bytes(
            random_32()?
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .unwrap_or_default(),
        );
        let store = Self {
            inner: Arc::new(Inner {
                pool,
                schema: options.schema,
                relay_id,
                quotas: options.quotas,
                origin,
                sink,
                listener: Mutex::new(None),
            }),
        };
        let listener = tokio::spawn(listen(config, Arc::downgrade(&store.inner)));
        if let Ok(mut slot) = store.inner.listener.lock() {
            *slot = Some(listener);
        }
        Ok(store)
    }

    /// Commits a transaction built by [`in_transaction!`]: the events go to
    /// the other processes with the commit (NOTIFY), then to this one.
    async fn commit(
        &self,
        tx: Transaction<'_>,
        events: Vec<StoreEvent>,
        started: std::time::Instant,
    ) -> Result<(), StoreError> {
        for event in &events {
            tx.execute(
                &stmt(&tx, "SELECT pg_notify($1, $2)").await?,
                &[&NOTIFY_CHANNEL, &notification(self.inner.origin, event)],
            )
            .await?;
        }
        tx.commit().await?;
        self.inner.sink.committed(1, started.elapsed());
        if !events.is_empty() {
            self.inner.sink.publish(&events);
        }
        Ok(())
    }

    /// Pushes a channel's expiry forward after a read, without holding up
    /// the answer.
    fn touch_later(&self, a: Authorized, now_ms: u64) {
        if !a.touch_due(now_ms) {
            return;
        }
        let pool = self.inner.pool.clone();
        tokio::spawn(async move {
            if let Ok(client) = pool.get().await {
                let _ = touch_if_due(&client, &a, now_ms).await;
            }
        });
    }
}

/// Listens for other processes' events and hands them to this process's
/// sink; reconnects (and asks subscribers to re-read) when the connection
/// drops, until the store is closed.
async fn listen(config: tokio_postgres::Config, inner: std::sync::Weak<Inner>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Ok((client, mut connection)) = config.connect(NoTls).await else {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            if inner.strong_count() == 0 {
                return;
            }
            continue;
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<tokio_postgres::Notification>(4096);
        let driver = tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(Ok(message)) = messages.next().await {
                if let AsyncMessage::Notification(n) = message
                    && tx.send(n).await.is_err()
                {
                    break;
                }
            }
        });
        if client
            .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
            .await
            .is_ok()
        {
            backoff = Duration::from_millis(100);
            // Anything committed while we were not listening is only in
            // the store: every subscription re-reads.
            match inner.upgrade() {
                Some(inner) => inner.sink.resync(),
                None => return,
            }
            while let Some(n) = rx.recv().await {
                let Some(inner) = inner.upgrade() else {
                    return;
                };
                if let Err(e) = relay_notification(&inner, n.payload()).await {
                    tracing::warn!(
                        error = %e,
                        "a notification from another relay process was lost"
                    );
                    inner.sink.resync();
                }
            }
        }
        driver.abort();
        if inner.strong_count() == 0 {
            return;
        }
        tracing::warn!("lost the PostgreSQL notification connection; reconnecting");
        tokio::time::sleep(backoff).await;
    }
}

async fn relay_notification(inner: &Inner, payload: &str) -> Result<(), StoreError> {
    let mut parts = payload.split(' ');
    let (Some(origin), Some(kind), Some(channel)) = (parts.next(), parts.next(), parts.next())
    else {
        return Ok(());
    };
    if origin.parse::<u64>().ok() == Some(inner.origin) {
        return Ok(());
    }
    let channel: i64 = channel.parse().map_err(engine)?;
    let event = match (kind, parts.next()) {
        ("a", Some(seq)) => {
            let seq: i64 = seq.parse().map_err(engine)?;
            let received_at: Option<u64> = parts.next().and_then(|t| t.parse().ok());
            let inline = parts.next().and_then(kith_wire::relay::from_hex_vec);
            if let (Some(received_at_ms), Some(payload)) = (received_at, inline) {
                inner.sink.publish(&[StoreEvent::Appended {
                    channel: ChannelKey(channel),
                    message: Arc::new(StoredMessage {
                        seq: to_u64(seq)?,
                        received_at_ms,
                        payload,
                    }),
                }]);
                return Ok(());
            }
            let client = inner.pool.get().await?;
            let Some(row) = client
                .query_opt(
                    "SELECT received_at, payload FROM messages WHERE channel_id = $1 AND seq = $2",
                    &[&channel, &seq],
                )
                .await?
            else {
                // Acknowledged by every reader, or expired, already.
                return Ok(());
            };
            StoreEvent::Appended {
                channel: ChannelKey(channel),
                message: Arc::new(StoredMessage {
                    seq: to_u64(seq)?,
                    received_at_ms: to_u64(row.try_get(0)?)?,
                    payload: row.try_get(1)?,
                }),
            }
        }
        ("r", Some(key)) => StoreEvent::ReaderRemoved {
            channel: ChannelKey(channel),
            key: PublicKey(
                kith_wire::relay::from_hex::<32>(key).ok_or(StoreError::Corrupt("notification"))?,
            ),
        },
        ("c", None) => StoreEvent::ChannelClosed {
            channel: ChannelKey(channel),
        },
        _ => return Ok(()),
    };
    inner.sink.publish(&[event]);
    Ok(())
}

#[async_trait]
impl Store for PostgresStore {
    fn relay_id(&self) -> RelayId {
        self.inner.relay_id
    }

    async fn create_channel(&self, new: NewChannel) -> Result<ChannelCreated, StoreError> {
        let quotas = self.inner.quotas;
        in_transaction!(self, |tx, _| {
            let grants = channel_grants(&new, &quotas)?;
            let created = channel_created(&new, random_32()?, random_32()?);
            let id: i64 = tx
                .query_one(
                    &stmt(
                        tx,
                        "INSERT INTO channels (write_id, read_id, created_at, expires_at, \
                         channel_ttl_ms, message_ttl_ms, key_count) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    )
                    .await?,
                    &[
                        &&created.write_id.0[..],
                        &&created.read_id.0[..],
                        &to_i64(new.now_ms)?,
                        &to_i64(created.expires_at_ms)?,
                        &to_i64(new.channel_ttl_ms)?,
                        &to_i64(new.message_ttl_ms)?,
                        &(grants.len() as i64),
                    ],
                )
                .await?
                .try_get(0)?;
            for g in &grants {
                tx.execute(
                    &stmt(
                        tx,
                        "INSERT INTO channel_keys (channel_id, key, rights, acked_seq) \
                 VALUES ($1, $2, $3, 0)",
                    )
                    .await?,
                    &[&id, &&g.key.0[..], &i16::from(g.rights.bits())],
                )
                .await?;
            }
            Ok(created)
        })
    }

    async fn append_as(
        &self,
        write_id: WriteId,
        key: PublicKey,
        payload: Vec<u8>,
        after_seq: Option<u64>,
        ttl_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<(Appended, Rights), StoreError> {
        let quotas = self.inner.quotas;
        in_transaction!(self, |tx, events| {
            let a = authorize(
                tx,
                ChannelRef::Write(write_id),
                &key,
                Rights::WRITE,
                now_ms,
                true,
            )
            .await?;
            super::check_head(a.last_seq, after_seq)?;
            let size = payload.len() as u64;
            if a.message_count >= u64::from(quotas.max_channel_messages) {
                return Err(StoreError::QuotaExceeded("messages"));
            }
            if a.message_bytes.saturating_add(size) > quotas.max_channel_bytes {
                return Err(StoreError::QuotaExceeded("bytes"));
            }
            let seq = a.last_seq + 1;
            let ttl = ttl_ms.map_or(a.message_ttl_ms, |t| t.min(a.message_ttl_ms));
            let expires = now_ms.saturating_add(ttl);
            tx.execute(
                &stmt(
                    tx,
                    "INSERT INTO messages (channel_id, seq, received_at, expires_at, payload) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .await?,
                &[
                    &a.id,
                    &to_i64(seq)?,
                    &to_i64(now_ms)?,
                    &to_i64(expires)?,
                    &payload,
                ],
            )
            .await?;
            let touch = a.touch_due(now_ms);
            tx.execute(
                &stmt(
                    tx,
                    "UPDATE channels SET last_seq = $2, message_count = message_count + 1, \
                     message_bytes = message_bytes + $3, \
                     expires_at = CASE WHEN $4 THEN $5 + channel_ttl_ms ELSE expires_at END \
                     WHERE id = $1",
                )
                .await?,
                &[
                    &a.id,
                    &to_i64(seq)?,
                    &to_i64(size)?,
                    &touch,
                    &to_i64(now_ms)?,
                ],
            )
            .await?;
            events.push(StoreEvent::Appended {
                channel: ChannelKey(a.id),
                message: Arc::new(StoredMessage {
                    seq,
                    received_at_ms: now_ms,
                    payload,
                }),
            });
            Ok((
                Appended {
                    seq,
                    received_at_ms: now_ms,
                },
                a.rights,
            ))
        })
    }

    async fn read(
        &self,
        read_id: ReadId,
        key: PublicKey,
        after_seq: u64,
        max_messages: u16,
        max_bytes: u32,
        now_ms: u64,
    ) -> Result<ReadPage, StoreError> {
        let client = self.inner.pool.get().await?;
        let a = authorize(
            &client,
            ChannelRef::Read(read_id),
            &key,
            Rights::READ,
            now_ms,
            false,
        )
        .await?;
        let rows = client
            .query(
                &stmt(
                    &client,
                    "SELECT seq, received_at, payload FROM messages \
                 WHERE channel_id = $1 AND seq > $2 AND expires_at > $3 ORDER BY seq LIMIT $4",
                )
                .await?,
                &[
                    &a.id,
                    &to_i64(after_seq)?,
                    &to_i64(now_ms)?,
                    &i64::from(max_messages.max(1)),
                ],
            )
            .await?;
        let items = page(
            rows.iter().map(|row| {
                Ok(StoredMessage {
                    seq: to_u64(row.try_get(0)?)?,
                    received_at_ms: to_u64(row.try_get(1)?)?,
                    payload: row.try_get(2)?,
                })
            }),
            max_bytes,
        )?;
        drop(client);
        self.touch_later(a, now_ms);
        Ok(ReadPage {
            channel: ChannelKey(a.id),
            messages: Messages {
                last_seq: a.last_seq,
                items,
            },
        })
    }

    async fn ack(
        &self,
        read_id: ReadId,
        key: PublicKey,
        seq: u64,
        now_ms: u64,
    ) -> Result<Acked, StoreError> {
        in_transaction!(self, |tx, _| {
            let a = authorize(
                tx,
                ChannelRef::Read(read_id),
                &key,
                Rights::READ,
                now_ms,
                true,
            )
            .await?;
            if seq > a.last_seq {
                return Err(StoreError::InvalidArgument(
                    "cannot acknowledge beyond the channel's last message",
                ));
            }
            if seq > a.acked_seq {
                tx.execute(
                    &stmt(
                        tx,
                        "UPDATE channel_keys SET acked_seq = $3 WHERE channel_id = $1 AND key = $2",
                    )
                    .await?,
                    &[&a.id, &&key.0[..], &to_i64(seq)?],
                )
                .await?;
                drop_acknowledged(tx, a.id).await?;
                touch_if_due(tx, &a, now_ms).await?;
            }
            Ok(Acked {
                acked_seq: seq.max(a.acked_seq),
            })
        })
    }

    async fn add_key(
        &self,
        write_id: WriteId,
        admin: PublicKey,
        grant: KeyGrant,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let quotas = self.inner.quotas;
        in_transaction!(self, |tx, events| {
            let a = authorize(
                tx,
                ChannelRef::Write(write_id),
                &admin,
                Rights::ADMIN,
                now_ms,
                true,
            )
            .await?;
            let new_reader_cursor = to_i64(a.last_seq)?;
            let bits = i16::from(grant.rights.bits());
            match key_rights(tx, a.id, &grant.key).await? {
                None => {
                    if a.key_count >= u64::from(quotas.max_channel_keys) {
                        return Err(StoreError::QuotaExceeded("keys"));
                    }
                    tx.execute(
                        &stmt(
                            tx,
                            "INSERT INTO channel_keys (channel_id, key, rights, acked_seq) \
                 VALUES ($1, $2, $3, $4)",
                        )
                        .await?,
                        &[&a.id, &&grant.key.0[..], &bits, &new_reader_cursor],
                    )
                    .await?;
                    tx.execute(
                        &stmt(
                            tx,
                            "UPDATE channels SET key_count = key_count + 1 WHERE id = $1",
                        )
                        .await?,
                        &[&a.id],
                    )
                    .await?;
                }
                Some(old) => {
                    if old.contains(Rights::ADMIN) && !grant.rights.contains(Rights::ADMIN) {
                        keep_an_admin(tx, a.id).await?;
                    }
                    // A key that gains the read right starts at the
                    // current end, like a new reader.
                    let cursor = (!old.contains(Rights::READ)).then_some(new_reader_cursor);
                    tx.execute(
                        &stmt(
                            tx,
                            "UPDATE channel_keys SET rights = $3, \
                             acked_seq = COALESCE($4, acked_seq) WHERE channel_id = $1 AND key = $2",
                        )
                        .await?,
                        &[&a.id, &&grant.key.0[..], &bits, &cursor],
                    )
                    .await?;
                    if old.contains(Rights::READ) && !grant.rights.contains(Rights::READ) {
                        reader_removed(tx, events, a.id, grant.key).await?;
                    }
                }
            }
            touch_if_due(tx, &a, now_ms).await
        })
    }

    async fn revoke_key(
        &self,
        write_id: WriteId,
        admin: PublicKey,
        key: PublicKey,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        in_transaction!(self, |tx, events| {
            let a = authorize(
                tx,
                ChannelRef::Write(write_id),
                &admin,
                Rights::ADMIN,
                now_ms,
                true,
            )
            .await?;
            let Some(old) = key_rights(tx, a.id, &key).await? else {
                return Ok(());
            };
            if old.contains(Rights::ADMIN) {
                keep_an_admin(tx, a.id).await?;
            }
            tx.execute(
                &stmt(
                    tx,
                    "DELETE FROM channel_keys WHERE channel_id = $1 AND key = $2",
                )
                .await?,
                &[&a.id, &&key.0[..]],
            )
            .await?;
            tx.execute(
                &stmt(
                    tx,
                    "UPDATE channels SET key_count = key_count - 1 WHERE id = $1",
                )
                .await?,
                &[&a.id],
            )
            .await?;
            if old.contains(Rights::READ) {
                reader_removed(tx, events, a.id, key).await?;
            }
            touch_if_due(tx, &a, now_ms).await
        })
    }

    async fn delete_channel(
        &self,
        write_id: WriteId,
        admin: PublicKey,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        in_transaction!(self, |tx, events| {
            let a = authorize(
                tx,
                ChannelRef::Write(write_id),
                &admin,
                Rights::ADMIN,
                now_ms,
                true,
            )
            .await?;
            tx.execute(
                &stmt(tx, "DELETE FROM channels WHERE id = $1").await?,
                &[&a.id],
            )
            .await?;
            events.push(StoreEvent::ChannelClosed {
                channel: ChannelKey(a.id),
            });
            Ok(())
        })
    }

    async fn status(
        &self,
        channel: ChannelRef,
        key: PublicKey,
        now_ms: u64,
    ) -> Result<ChannelStatus, StoreError> {
        let client = self.inner.pool.get().await?;
        let a = authorize(&client, channel, &key, Rights::NONE, now_ms, false).await?;
        let row = client
            .query_one(
                &stmt(&client, LIVE_MESSAGES).await?,
                &[&a.id, &to_i64(now_ms)?],
            )
            .await?;
        let live = LiveMessages {
            first_seq: row.try_get(0)?,
            count: row.try_get(1)?,
            bytes: row.try_get(2)?,
        };
        let keys = if a.rights.contains(Rights::ADMIN) {
            let rows = client
                .query(
                    &stmt(
                        &client,
                        "SELECT key, rights, acked_seq FROM channel_keys \
                 WHERE channel_id = $1 ORDER BY key",
                    )
                    .await?,
                    &[&a.id],
                )
                .await?;
            let mut keys = Vec::with_capacity(rows.len());
            for row in rows {
                keys.push(key_status(
                    row.try_get(0)?,
                    i64::from(row.try_get::<_, i16>(1)?),
                    row.try_get(2)?,
                )?);
            }
            Some(keys)
        } else {
            None
        };
        drop(client);
        self.touch_later(a, now_ms);
        a.status(live, keys, now_ms)
    }

    async fn authorize_reader(
        &self,
        read_id: ReadId,
        key: PublicKey,
        now_ms: u64,
    ) -> Result<(ChannelKey, u64), StoreError> {
        let client = self.inner.pool.get().await?;
        let a = authorize(
            &client,
            ChannelRef::Read(read_id),
            &key,
            Rights::READ,
            now_ms,
            false,
        )
        .await?;
        drop(client);
        self.touch_later(a, now_ms);
        Ok((ChannelKey(a.id), a.last_seq))
    }

    async fn blob_create(&self, new: NewBlob) -> Result<BlobCreated, StoreError> {
        let quotas = self.inner.quotas;
        in_transaction!(self, |tx, _| {
            let spec = new.spec;
            let a = authorize(
                tx,
                ChannelRef::Write(spec.write_id),
                &new.key,
                Rights::WRITE,
                new.now_ms,
                true,
            )
            .await?;
            if spec.chunk_count > quotas.max_blob_chunks {
                return Err(StoreError::QuotaExceeded("blob chunks"));
            }
            let bytes = u64::from(spec.chunk_size) * u64::from(spec.chunk_count);
            if a.blob_bytes.saturating_add(bytes) > quotas.max_channel_blob_bytes {
                return Err(StoreError::QuotaExceeded("blob bytes"));
            }
            let int =
                |v: u32| i32::try_from(v).map_err(|_| StoreError::InvalidArgument("blob size"));
            let blob_id = BlobId(random_32()?);
            let expires_at = new
                .now_ms
                .saturating_add(u64::from(spec.ttl_secs).saturating_mul(1000));
            tx.execute(
                &stmt(
                    tx,
                    "INSERT INTO blobs (id_hash, channel_id, chunk_size, chunk_count, read_once, \
                     created_at, expires_at, claim_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .await?,
                &[
                    &&blob_hash(&blob_id)[..],
                    &a.id,
                    &int(spec.chunk_size)?,
                    &int(spec.chunk_count)?,
                    &spec.read_once,
                    &to_i64(new.now_ms)?,
                    &to_i64(expires_at)?,
                    &spec.claim_key.map(|k| k.0.to_vec()),
                ],
            )
            .await?;
            tx.execute(
                &stmt(
                    tx,
                    "UPDATE channels SET blob_bytes = blob_bytes + $2 WHERE id = $1",
                )
                .await?,
                &[&a.id, &to_i64(bytes)?],
            )
            .await?;
            touch_if_due(tx, &a, new.now_ms).await?;
            Ok(BlobCreated {
                blob_id,
                expires_at_ms: expires_at,
            })
        })
    }

    async fn blob_put(
        &self,
        write_id: WriteId,
        key: PublicKey,
        blob_id: BlobId,
        index: u32,
        data: Vec<u8>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        in_transaction!(self, |tx, _| {
            let a = authorize(
                tx,
                ChannelRef::Write(write_id),
                &key,
                Rights::WRITE,
                now_ms,
                true,
            )
            .await?;
            let blob = find_blob(tx, &blob_id, now_ms, true).await?;
            if blob.channel_id != a.id {
                return Err(StoreError::NotFound);
            }
            blob.check_chunk(index, data.len())?;
            let idx = i32::try_from(index).map_err(|_| StoreError::NotFound)?;
            let existing = tx
                .query_opt(
                    &stmt(
                        tx,
                        "SELECT data FROM blob_chunks WHERE blob_id = $1 AND idx = $2",
                    )
                    .await?,
                    &[&blob.id, &idx],
                )
                .await?;
            match existing {
                Some(row) if row.try_get::<_, &[u8]>(0)? == data.as_slice() => Ok(()),
                Some(_) => Err(StoreError::Conflict(
                    "chunk already written with other bytes",
                )),
                None => {
                    tx.execute(
                        &stmt(
                            tx,
                            "INSERT INTO blob_chunks (blob_id, idx, data) VALUES ($1, $2, $3)",
                        )
                        .await?,
                        &[&blob.id, &idx, &data],
                    )
                    .await?;
                    Ok(())
                }
            }
        })
    }

    async fn blob_get(
        &self,
        blob_id: BlobId,
        index: u32,
        claim: BlobClaim,
        now_ms: u64,
    ) -> Result<BlobChunk, StoreError> {
        {
            let client = self.inner.pool.get().await?;
            let blob = find_blob(&client, &blob_id, now_ms, false).await?;
            if !blob.read_once {
                return chunk(&client, &blob, index).await;
            }
            // Checked before the write: a wrong claim costs no transaction.
            claim.allows(&blob)?;
        }
        // Read-once: the row lock lets exactly one concurrent fetch find it.
        in_transaction!(self, |tx, _| {
            let blob = find_blob(tx, &blob_id, now_ms, true).await?;
            claim.allows(&blob)?;
            let c = chunk(tx, &blob, index).await?;
            delete_blob(tx, &blob).await?;
            Ok(c)
        })
    }

    async fn blob_delete(
        &self,
        write_id: WriteId,
        key: PublicKey,
        blob_id: BlobId,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        in_transaction!(self, |tx, _| {
            let a = authorize(
                tx,
                ChannelRef::Write(write_id),
                &key,
                Rights::WRITE,
                now_ms,
                true,
            )
            .await?;
            let blob = find_blob(tx, &blob_id, now_ms, true).await?;
            if blob.channel_id != a.id {
                return Err(StoreError::NotFound);
            }
            delete_blob(tx, &blob).await
        })
    }

    async fn remember_nonce(
        &self,
        nonce: [u8; 16],
        expires_at_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut object = self.inner.pool.get().await?;
        let tx = object.transaction().await?;
        // Visible to every process at once, but not waited for on disk: a
        // second flush per request would halve the write rate, and losing
        // the last moment of nonces needs a database crash inside the
        // 70-second window of the requests they belong to.
        tx.batch_execute("SET LOCAL synchronous_commit TO OFF")
            .await?;
        let added = tx
            .execute(
                &stmt(
                    &tx,
                    "INSERT INTO nonces (nonce, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .await?,
                &[&&nonce[..], &to_i64(expires_at_ms)?],
            )
            .await?;
        tx.commit().await?;
        Ok(added == 1)
    }

    async fn sweep(&self, now_ms: u64) -> Result<SweepStats, StoreError> {
        let now = to_i64(now_ms)?;
        let mut total = SweepStats::default();
        loop {
            let pass: SweepStats =
                in_transaction!(self, |tx, events| { sweep_pass(tx, events, now).await })?;
            total.channels += pass.channels;
            total.messages += pass.messages;
            total.blobs += pass.blobs;
            if pass == SweepStats::default() {
                return Ok(total);
            }
        }
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let client = self.inner.pool.get().await?;
        let row = client
            .query_one(
                &stmt(
                    &client,
                    "SELECT COUNT(*), COALESCE(SUM(message_count), 0)::BIGINT, \
                 COALESCE(SUM(message_bytes), 0)::BIGINT, COALESCE(SUM(blob_bytes), 0)::BIGINT, \
                 (SELECT COUNT(*) FROM blobs) FROM channels",
                )
                .await?,
                &[],
            )
            .await?;
        let n = |i: usize| -> Result<u64, StoreError> { to_u64(row.try_get(i)?) };
        Ok(StoreStats {
            channels: n(0)?,
            messages: n(1)?,
            message_bytes: n(2)?,
            blobs: n(4)?,
            blob_bytes: n(3)?,
        })
    }

    async fn dir_create(&self, new: NewDirectory) -> Result<(), StoreError> {
        let mut object = self.inner.pool.get().await?;
        let tx = object.transaction().await?;
        let added = tx
            .execute(
                "INSERT INTO directories (name, members_only, root_secret, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[
                    &new.name,
                    &new.members_only,
                    &&new.root_secret[..],
                    &to_i64(new.now_ms)?,
                ],
            )
            .await?;
        if added == 0 {
            return Err(StoreError::Conflict("a directory of that name exists"));
        }
        insert_directory_key(&tx, &new.name, &new.signing).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn dir_load(&self, name: &str, now_ms: u64) -> Result<Option<DirectoryRow>, StoreError> {
        let client = self.inner.pool.get().await?;
        let Some(row) = client
            .query_opt(
                &stmt(
                    &client,
                    "SELECT members_only, root_secret FROM directories WHERE name = $1",
                )
                .await?,
                &[&name],
            )
            .await?
        else {
            return Ok(None);
        };
        let now = to_i64(now_ms)?;
        let keys = client
            .query(
                &stmt(
                    &client,
                    "SELECT key, secret, valid_from, valid_until, root_signature FROM directory_keys \
                     WHERE directory = $1 AND valid_until > $2 ORDER BY valid_from, key",
                )
                .await?,
                &[&name, &now],
            )
            .await?
            .into_iter()
            .map(|r| {
                signing_key_row((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let revoked = client
            .query(
                &stmt(
                    &client,
                    "SELECT member FROM directory_members WHERE directory = $1 \
                     AND removed_at IS NOT NULL AND member IS NOT NULL AND valid_until > $2 \
                     ORDER BY member",
                )
                .await?,
                &[&name, &now],
            )
            .await?
            .into_iter()
            .map(|r| fixed(r.try_get(0)?))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(DirectoryRow {
            name: name.to_string(),
            members_only: row.try_get(0)?,
            root_secret: zeroize::Zeroizing::new(fixed(row.try_get(1)?)?),
            keys,
            revoked,
        }))
    }

    async fn dir_add_key(&self, name: &str, key: SigningKeyRow) -> Result<(), StoreError> {
        let client = self.inner.pool.get().await?;
        insert_directory_key(&client, name, &key).await
    }

    async fn dir_admit(
        &self,
        name: &str,
        secret_hash: [u8; 32],
        admission: Admission,
        now_ms: u64,
    ) -> Result<u64, StoreError> {
        let client = self.inner.pool.get().await?;
        let row = client
            .query_one(
                "INSERT INTO directory_members \
                 (directory, secret_hash, statement, valid_from, valid_until, admitted_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[
                    &name,
                    &&secret_hash[..],
                    &admission.statement,
                    &to_i64(admission.valid_from_ms)?,
                    &to_i64(admission.valid_until_ms)?,
                    &to_i64(now_ms)?,
                ],
            )
            .await?;
        to_u64(row.try_get(0)?)
    }

    async fn dir_enrol(
        &self,
        name: &str,
        secret_hash: [u8; 32],
        member: [u8; 32],
        now_ms: u64,
    ) -> Result<Admission, StoreError> {
        let mut object = self.inner.pool.get().await?;
        let tx = object.transaction().await?;
        let now = to_i64(now_ms)?;
        // A new admission supersedes the key's ended or removed one.
        tx.execute(
            &stmt(
                &tx,
                "DELETE FROM directory_members WHERE directory = $1 AND member = $2 \
                 AND (removed_at IS NOT NULL OR valid_until <= $3)",
            )
            .await?,
            &[&name, &&member[..], &now],
        )
        .await?;
        // The UNIQUE (directory, member) constraint refuses a key that is
        // already a member, whichever process enrols it.
        let row = tx
            .query_opt(
                &stmt(
                    &tx,
                    "UPDATE directory_members SET member = $3, enrolled_at = $4 \
                     WHERE directory = $1 AND secret_hash = $2 AND member IS NULL \
                     AND removed_at IS NULL AND valid_until > $4 \
                     AND NOT EXISTS (SELECT 1 FROM directory_members o \
                                     WHERE o.directory = $1 AND o.member = $3) \
                     RETURNING statement, valid_from, valid_until",
                )
                .await?,
                &[&name, &&secret_hash[..], &&member[..], &now],
            )
            .await;
        let admission = match row {
            Ok(Some(r)) => admission_from((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))?,
            Ok(None) => return Err(StoreError::Unauthorized),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                return Err(StoreError::Unauthorized);
            }
            Err(e) => return Err(e.into()),
        };
        tx.commit().await?;
        Ok(admission)
    }

    async fn dir_member(
        &self,
        name: &str,
        member: [u8; 32],
        now_ms: u64,
    ) -> Result<Option<Admission>, StoreError> {
        let client = self.inner.pool.get().await?;
        client
            .query_opt(
                &stmt(
                    &client,
                    "SELECT statement, valid_from, valid_until FROM directory_members \
                     WHERE directory = $1 AND member = $2 AND removed_at IS NULL \
                     AND valid_from <= $3 AND valid_until > $3",
                )
                .await?,
                &[&name, &&member[..], &to_i64(now_ms)?],
            )
            .await?
            .map(|r| admission_from((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .transpose()
    }

    async fn dir_publish(
        &self,
        name: &str,
        member: [u8; 32],
        entry: EntryChange,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let mut object = self.inner.pool.get().await?;
        let tx = object.transaction().await?;
        // Replaced, not updated: a new id keeps "newest first" the order
        // of ids.
        tx.execute(
            &stmt(
                &tx,
                "DELETE FROM directory_entries WHERE directory = $1 AND member = $2",
            )
            .await?,
            &[&name, &&member[..]],
        )
        .await?;
        if let Some(e) = entry {
            tx.execute(
                &stmt(
                    &tx,
                    "INSERT INTO directory_entries \
                     (directory, member, display_name, text, address, published_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .await?,
                &[
                    &name,
                    &&member[..],
                    &e.display_name,
                    &e.text,
                    &e.address,
                    &to_i64(now_ms)?,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn dir_leave(&self, name: &str, member: [u8; 32], now_ms: u64) -> Result<(), StoreError> {
        let mut object = self.inner.pool.get().await?;
        let tx = object.transaction().await?;
        tx.execute(
            "DELETE FROM directory_entries WHERE directory = $1 AND member = $2",
            &[&name, &&member[..]],
        )
        .await?;
        tx.execute(
            "UPDATE directory_members SET removed_at = $3 \
             WHERE directory = $1 AND member = $2 AND removed_at IS NULL",
            &[&name, &&member[..], &to_i64(now_ms)?],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn dir_remove(&self, name: &str, id: u64, now_ms: u64) -> Result<bool, StoreError> {
        let mut object = self.inner.pool.get().await?;
        let tx = object.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "UPDATE directory_members SET removed_at = $3 \
                 WHERE directory = $1 AND id = $2 AND removed_at IS NULL RETURNING member",
                &[&name, &to_i64(id)?, &to_i64(now_ms)?],
            )
            .await?
        else {
            return Ok(false);
        };
        if let Some(member) = row.try_get::<_, Option<Vec<u8>>>(0)? {
            tx.execute(
                "DELETE FROM directory_entries WHERE directory = $1 AND member = $2",
                &[&name, &member],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn dir_search(&self, search: Search) -> Result<Vec<Entry>, StoreError> {
        let client = self.inner.pool.get().await?;
        // A word is letters and digits only, so it is safe inside
        // to_tsquery; ':*' matches it as a prefix.
        let matching = search
            .words
            .iter()
            .map(|w| format!("{w}:*"))
            .collect::<Vec<_>>()
            .join(" & ");
        let rows = client
            .query(
                &stmt(
                    &client,
                    "SELECT e.display_name, e.text, e.address FROM directory_entries e \
                     WHERE e.directory = $1 AND ($2 = '' OR e.words @@ to_tsquery('simple', $2)) \
                     AND (NOT $3 OR EXISTS (SELECT 1 FROM directory_members m \
                          WHERE m.directory = e.directory AND m.member = e.member \
                          AND m.removed_at IS NULL AND m.valid_from <= $4 AND m.valid_until > $4)) \
                     ORDER BY e.id DESC LIMIT $5",
                )
                .await?,
                &[
                    &search.directory,
                    &matching,
                    &search.members_only,
                    &to_i64(search.now_ms)?,
                    &i64::from(search.limit),
                ],
            )
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Entry {
                    display_name: r.try_get(0)?,
                    text: r.try_get(1)?,
                    address: r.try_get(2)?,
                })
            })
            .collect()
    }

    async fn dir_members(&self, name: &str) -> Result<Vec<MemberRow>, StoreError> {
        let client = self.inner.pool.get().await?;
        client
            .query(
                "SELECT m.id, m.statement, m.valid_from, m.valid_until, m.member IS NOT NULL, \
                 m.removed_at IS NOT NULL, e.display_name FROM directory_members m \
                 LEFT JOIN directory_entries e ON e.directory = m.directory AND e.member = m.member \
                 WHERE m.directory = $1 ORDER BY m.id",
                &[&name],
            )
            .await?
            .into_iter()
            .map(|r| {
                Ok(MemberRow {
                    id: to_u64(r.try_get(0)?)?,
                    admission: admission_from((r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))?,
                    enrolled: r.try_get(4)?,
                    removed: r.try_get(5)?,
                    entry_name: r.try_get(6)?,
                })
            })
            .collect()
    }

    async fn dir_list(&self) -> Result<Vec<DirectorySummary>, StoreError> {
        let client = self.inner.pool.get().await?;
        client
            .query(
                "SELECT d.name, d.members_only, \
                 (SELECT COUNT(*) FROM directory_members m WHERE m.directory = d.name \
                  AND m.member IS NOT NULL AND m.removed_at IS NULL), \
                 (SELECT COUNT(*) FROM directory_entries e WHERE e.directory = d.name) \
                 FROM directories d ORDER BY d.name",
                &[],
            )
            .await?
            .into_iter()
            .map(|r| {
                Ok(DirectorySummary {
                    name: r.try_get(0)?,
                    members_only: r.try_get(1)?,
                    members: to_u64(r.try_get(2)?)?,
                    entries: to_u64(r.try_get(3)?)?,
                })
            })
            .collect()
    }

    async fn close(&self) {
        let listener = self.inner.listener.lock().ok().and_then(|mut l| l.take());
        if let Some(listener) = listener {
            listener.abort();
            let _ = listener.await;
        }
        self.inner.pool.close();
    }
}

/// One bounded pass of expiry: expired channels, then blobs, then messages.
async fn sweep_pass(
    tx: &Transaction<'_>,
    events: &mut Vec<StoreEvent>,
    now: i64,
) -> Result<SweepStats, StoreError> {
    let mut stats = SweepStats::default();
    let channels = tx
        .query(
            &stmt(
                tx,
                "DELETE FROM channels WHERE id IN \
             (SELECT id FROM channels WHERE expires_at <= $1 LIMIT $2) RETURNING id",
            )
            .await?,
            &[&now, &SWEEP_BATCH],
        )
        .await?;
    for row in channels {
        events.push(StoreEvent::ChannelClosed {
            channel: ChannelKey(row.try_get(0)?),
        });
        stats.channels += 1;
    }
    let blobs = tx
        .query(
            &stmt(
                tx,
                "SELECT id, channel_id, chunk_size, chunk_count, read_once, claim_key FROM blobs \
             WHERE expires_at <= $1 LIMIT $2",
            )
            .await?,
            &[&now, &SWEEP_BATCH],
        )
        .await?;
    for row in blobs {
        delete_blob(tx, &blob_row(&row)?).await?;
        stats.blobs += 1;
    }
    let gone = tx
        .query(
            &stmt(
                tx,
                "WITH gone AS (DELETE FROM messages WHERE (channel_id, seq) IN \
                 (SELECT channel_id, seq FROM messages WHERE expires_at <= $1 LIMIT $2) \
                 RETURNING channel_id, octet_length(payload) AS len) \
             SELECT channel_id, COUNT(*), SUM(len)::BIGINT FROM gone GROUP BY channel_id",
            )
            .await?,
            &[&now, &SWEEP_BATCH],
        )
        .await?;
    for row in gone {
        let (channel, count, bytes): (i64, i64, i64) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        tx.execute(
            &stmt(
                tx,
                "UPDATE channels SET message_count = message_count - $2, \
             message_bytes = message_bytes - $3 WHERE id = $1",
            )
            .await?,
            &[&channel, &count, &bytes],
        )
        .await?;
        stats.messages += to_u64(count)?;
    }
    tx.execute(
        &stmt(
            tx,
            "DELETE FROM nonces WHERE nonce IN \
         (SELECT nonce FROM nonces WHERE expires_at <= $1 LIMIT $2)",
        )
        .await?,
        &[&now, &SWEEP_BATCH],
    )
    .await?;
    // Admissions past their end: their entries (unlisted since) and the
    // rows (revocation no longer needed; expiry says it).
    tx.execute(
        &stmt(
            tx,
            "DELETE FROM directory_entries WHERE id IN (SELECT e.id FROM directory_entries e \
             JOIN directory_members m ON m.directory = e.directory AND m.member = e.member \
             WHERE m.valid_until <= $1 LIMIT $2)",
        )
        .await?,
        &[&now, &SWEEP_BATCH],
    )
    .await?;
    tx.execute(
        &stmt(
            tx,
            "DELETE FROM directory_members WHERE id IN \
             (SELECT id FROM directory_members WHERE valid_until <= $1 LIMIT $2)",
        )
        .await?,
        &[&now, &SWEEP_BATCH],
    )
    .await?;
    Ok(stats)
}
