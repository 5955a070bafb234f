//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`.
//!
//! ```text
//!  async callers ──Job──▶ bounded queue ──▶ writer thread
//!                                           BEGIN IMMEDIATE
//!                                             SAVEPOINT; job 1; RELEASE
//!                                             SAVEPOINT; job 2; RELEASE …
//!                                           COMMIT  (one fsync for the batch)
//!                                           publish events, answer every job
//!  async callers ──spawn_blocking──▶ reader pool (N read-only connections)
//! ```
//!
//! Group commit: while one batch is being committed, new writes queue up and
//! go into the next batch, so the fsync cost is shared by every write that
//! arrived meanwhile. A job that fails rolls back only its own savepoint.

use super::{
    AUTH_COLUMNS, Admission, Authorized, BlobClaim, BlobRow, ChannelKey, DirectoryRow,
    DirectorySummary, EntryChange, EventSink, LIVE_MESSAGES, LiveMessages, MemberRow, NewBlob,
    NewChannel, NewDirectory, Quotas, ReadPage, Search, SigningKeyRow, Store, StoreError,
    StoreEvent, StoreStats, SweepStats, admission_from, blob_hash, channel_created, channel_grants,
    fixed, key_status, page, random_32, rights_from, signing_key_row, to_i64, to_u64,
};
use async_trait::async_trait;
use kith_wire::dir::Entry;
use kith_wire::relay::response::{
    Acked, Appended, BlobChunk, BlobCreated, ChannelCreated, ChannelStatus, Messages, StoredMessage,
};
use kith_wire::relay::{BlobId, ChannelRef, KeyGrant, PublicKey, ReadId, RelayId, Rights, WriteId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Numbered migrations; `PRAGMA user_version` records the last one applied.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../migrations/sqlite/0002_nonces.sql")),
    (
        3,
        include_str!("../../migrations/sqlite/0003_blob_claims.sql"),
    ),
    (
        4,
        include_str!("../../migrations/sqlite/0004_blob_files.sql"),
    ),
    (
        5,
        include_str!("../../migrations/sqlite/0005_directories.sql"),
    ),
];

/// WAL pages after which a commit also checkpoints (16 MiB).
const WAL_CHECKPOINT_PAGES: i64 = 4_096;

/// Rows deleted per sweep job, so that a large expiry never stalls writers.
const SWEEP_BATCH: i64 = 5_000;

/// How to open a [`SqliteStore`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The database file; created with its directory if missing.
    pub path: PathBuf,
    /// Quotas to enforce.
    pub quotas: Quotas,
    /// Read-only connections for reads.
    pub read_connections: usize,
    /// Capacity of the writer's queue; callers wait when it is full.
    pub write_queue: usize,
    /// Most jobs in one transaction.
    pub max_batch: usize,
}

/// A write waiting for the writer thread: `run` inside the batch's
/// transaction, then `finish` once the batch's fate is known.
trait WriteJob: Send {
    /// Runs the operation; `false` rolls back its savepoint.
    fn run(&mut self, conn: &Connection, events: &mut Vec<StoreEvent>) -> bool;
    /// Answers the caller: the operation's result if the batch committed.
    fn finish(self: Box<Self>, committed: Result<(), StoreError>);
}

type Job = Box<dyn WriteJob>;

struct TypedJob<T, F> {
    op: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: Option<oneshot::Sender<Result<T, StoreError>>>,
}

impl<T, F> WriteJob for TypedJob<T, F>
where
    T: Send,
    F: FnOnce(&Connection, &mut Vec<StoreEvent>) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection, events: &mut Vec<StoreEvent>) -> bool {
        let Some(op) = self.op.take() else {
            return false;
        };
        let result = op(conn, events);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(mut self: Box<Self>, committed: Result<(), StoreError>) {
        let answer = match (committed, self.result.take()) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::Engine("the operation did not run".into())),
        };
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(answer);
        }
    }
}

/// The SQLite implementation of [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

struct Inner {
    path: PathBuf,
    /// Where blob chunks are kept, one file per blob (`<db>-blobs`).
    blob_dir: PathBuf,
    relay_id: RelayId,
    quotas: Quotas,
    writer: RwLock<Option<mpsc::Sender<Job>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    reader_permits: Semaphore,
}

fn engine(e: rusqlite::Error) -> StoreError {
    StoreError::Engine(e.to_string())
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        engine(e)
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // temp_store = MEMORY keeps the savepoint sub-journal (the old contents
    // of each page a job changes) in memory; on disk, a batch's sub-journal
    // spills to a temporary file at 64 KiB and costs a write per page.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;",
    )?;
    // The bundled SQLite has STAT4, which re-prepares a statement whenever a
    // parameter in a range condition changes (every `expires_at > ?now`). Our
    // plans do not depend on those values: keep the first plan.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let newest = MIGRATIONS.last().map_or(0, |(n, _)| *n);
    if current > newest {
        return Err(StoreError::Corrupt(
            "the database was written by a newer kith-relay",
        ));
    }
    for (number, sql) in MIGRATIONS.iter().filter(|(n, _)| *n > current) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", number)?;
        tx.commit()?;
        tracing::info!(migration = number, "applied SQLite migration");
    }
    Ok(())
}

fn load_or_create_relay_id(conn: &Connection) -> Result<RelayId, StoreError> {
    let existing: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM relay_meta WHERE name = 'relay_id'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(bytes) = existing {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| StoreError::Corrupt("relay_id is not 32 bytes"))?;
        return Ok(RelayId(arr));
    }
    let id = random_32()?;
    conn.execute(
        "INSERT INTO relay_meta (name, value) VALUES ('relay_id', ?1)",
        params![&id[..]],
    )?;
    Ok(RelayId(id))
}

/// Looks up the channel and the signer's rights in one query, so that an
/// unknown channel, an unknown key and a missing right cost the same and
/// answer the same.
fn authorize(
    conn: &Connection,
    channel: ChannelRef,
    key: &PublicKey,
    need: Rights,
    now_ms: u64,
) -> Result<Authorized, StoreError> {
    let (column, id) = match &channel {
        ChannelRef::Write(w) => ("write_id", &w.0),
        ChannelRef::Read(r) => ("read_id", &r.0),
    };
    let sql = format!(
        "SELECT {AUTH_COLUMNS} FROM channels c \
         JOIN channel_keys k ON k.channel_id = c.id AND k.key = ?2 \
         WHERE c.{column} = ?1 AND c.expires_at > ?3"
    );
    let row = conn
        .prepare_cached(&sql)?
        .query_row(params![&id[..], &key.0[..], to_i64(now_ms)?], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, u8>(1)?,
                [
                    r.get::<_, i64>(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                ],
            ))
        })
        .optional()?;
    let Some((id, rights, counters)) = row else {
        return Err(StoreError::Unauthorized);
    };
    Authorized::from_columns(id, i64::from(rights), counters, need)
}

/// Deletes messages that every current reader has acknowledged. A channel
/// without readers keeps its messages until they expire.
fn drop_acknowledged(conn: &Connection, channel_id: i64) -> Result<(), StoreError> {
    let min: Option<i64> = conn
        .prepare_cached(
            "SELECT MIN(acked_seq) FROM channel_keys WHERE channel_id = ?1 AND (rights & 1) != 0",
        )?
        .query_row(params![channel_id], |r| r.get(0))?;
    let Some(min) = min else { return Ok(()) };
    let (count, bytes): (i64, i64) = conn
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(length(payload)), 0) FROM messages \
             WHERE channel_id = ?1 AND seq <= ?2",
        )?
        .query_row(params![channel_id, min], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if count == 0 {
        return Ok(());
    }
    conn.prepare_cached("DELETE FROM messages WHERE channel_id = ?1 AND seq <= ?2")?
        .execute(params![channel_id, min])?;
    conn.prepare_cached(
        "UPDATE channels SET message_count = message_count - ?2, \
         message_bytes = message_bytes - ?3 WHERE id = ?1",
    )?
    .execute(params![channel_id, count, bytes])?;
    Ok(())
}

fn touch(conn: &Connection, channel_id: i64, now_ms: u64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE channels SET expires_at = ?2 + channel_ttl_ms WHERE id = ?1")?
        .execute(params![channel_id, to_i64(now_ms)?])?;
    Ok(())
}

fn touch_if_due(conn: &Connection, a: &Authorized, now_ms: u64) -> Result<(), StoreError> {
    if a.touch_due(now_ms) {
        touch(conn, a.id, now_ms)?;
    }
    Ok(())
}

/// Refuses a change that would leave the channel without an admin key.
fn keep_an_admin(conn: &Connection, channel_id: i64) -> Result<(), StoreError> {
    let admins: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM channel_keys WHERE channel_id = ?1 AND (rights & 4) != 0",
        )?
        .query_row(params![channel_id], |r| r.get(0))?;
    if admins <= 1 {
        return Err(StoreError::Conflict(
            "a channel keeps at least one admin key",
        ));
    }
    Ok(())
}

/// A key lost the read right: its subscriptions end, and what only it still
/// had to acknowledge can go.
fn reader_removed(
    conn: &Connection,
    events: &mut Vec<StoreEvent>,
    channel_id: i64,
    key: PublicKey,
) -> Result<(), StoreError> {
    events.push(StoreEvent::ReaderRemoved {
        channel: ChannelKey(channel_id),
        key,
    });
    drop_acknowledged(conn, channel_id)
}

fn key_rights(
    conn: &Connection,
    channel_id: i64,
    key: &PublicKey,
) -> Result<Option<Rights>, StoreError> {
    let bits: Option<u8> = conn
        .prepare_cached("SELECT rights FROM channel_keys WHERE channel_id = ?1 AND key = ?2")?
        .query_row(params![channel_id, &key.0[..]], |r| r.get(0))
        .optional()?;
    bits.map(|b| rights_from(i64::from(b))).transpose()
}

/// The blob row for an id, if it exists and has not expired.
fn find_blob(conn: &Connection, blob_id: &BlobId, now_ms: u64) -> Result<BlobRow, StoreError> {
    conn.prepare_cached(
        "SELECT id, channel_id, chunk_size, chunk_count, read_once, claim_key, in_file FROM blobs \
         WHERE id_hash = ?1 AND expires_at > ?2",
    )?
    .query_row(params![&blob_hash(blob_id)[..], to_i64(now_ms)?], blob_row)
    .optional()?
    .ok_or(StoreError::NotFound)
}

/// The blob `blob_id` of the channel `write_id` names, if `key` may write
/// there (an unknown blob, or another channel's, is `NotFound`).
fn writable_blob(
    conn: &Connection,
    write_id: WriteId,
    key: &PublicKey,
    blob_id: &BlobId,
    now_ms: u64,
) -> Result<BlobRow, StoreError> {
    let a = authorize(
        conn,
        ChannelRef::Write(write_id),
        key,
        Rights::WRITE,
        now_ms,
    )?;
    let blob = find_blob(conn, blob_id, now_ms)?;
    if blob.channel_id != a.id {
        return Err(StoreError::NotFound);
    }
    Ok(blob)
}

/// A `BlobRow` from `SELECT id, channel_id, chunk_size, chunk_count,
/// read_once, claim_key, in_file`.
fn blob_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BlobRow> {
    Ok(BlobRow {
        id: r.get(0)?,
        channel_id: r.get(1)?,
        chunk_size: r.get(2)?,
        chunk_count: r.get(3)?,
        read_once: r.get(4)?,
        claim_key: r.get(5)?,
        in_file: r.get(6)?,
    })
}

/// Where the chunks of blob `blob_id` are kept when they are in a file.
fn blob_file(dir: &Path, blob_id: &BlobId) -> PathBuf {
    dir.join(kith_wire::relay::to_hex(&blob_hash(blob_id)))
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> StoreError {
    StoreError::Engine(format!("{what} {}: {e}", path.display()))
}

fn chunk(
    conn: &Connection,
    dir: &Path,
    blob_id: &BlobId,
    blob: &BlobRow,
    index: u32,
) -> Result<BlobChunk, StoreError> {
    let data = if blob.in_file {
        let stored: bool = conn
            .prepare_cached("SELECT stored FROM blob_file_chunks WHERE blob_id = ?1 AND idx = ?2")?
            .query_row(params![blob.id, index], |r| r.get(0))
            .optional()?
            .unwrap_or(false);
        if !stored {
            return Err(StoreError::NotFound);
        }
        read_chunk_file(&blob_file(dir, blob_id), blob, index)?
    } else {
        conn.prepare_cached("SELECT data FROM blob_chunks WHERE blob_id = ?1 AND idx = ?2")?
            .query_row(params![blob.id, index], |r| r.get(0))
            .optional()?
            .ok_or(StoreError::NotFound)?
    };
    Ok(BlobChunk {
        chunk_count: blob.chunk_count,
        data,
    })
}

/// Chunk `index` of `blob` from its file (blocking I/O).
fn read_chunk_file(path: &Path, blob: &BlobRow, index: u32) -> Result<Vec<u8>, StoreError> {
    use std::os::unix::fs::FileExt as _;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        // Deleted while this read began.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StoreError::NotFound),
        Err(e) => return Err(io_error("opening", path, &e)),
    };
    let mut data = vec![0u8; blob.chunk_size as usize];
    file.read_exact_at(&mut data, u64::from(index) * u64::from(blob.chunk_size))
        .map_err(|e| io_error("reading", path, &e))?;
    Ok(data)
}

/// Removes the files of blobs that no longer exist (deleted, expired, or
/// gone with their channel): a blob's row goes first, in a transaction, and
/// its file after, here. Returns how many were removed.
fn remove_orphan_files(conn: &Connection, dir: &Path) -> Result<u64, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_error("listing", dir, &e)),
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id_hash) = name.to_str().and_then(kith_wire::relay::from_hex_vec) else {
            continue;
        };
        let exists = conn
            .prepare_cached("SELECT 1 FROM blobs WHERE id_hash = ?1")?
            .query_row(params![id_hash], |_| Ok(()))
            .optional()?
            .is_some();
        if !exists && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// What putting a chunk into a blob's file takes, once it is claimed.
enum ChunkClaim {
    /// The chunk is in the file already: the same bytes succeed, other
    /// bytes are a conflict.
    Compare(Vec<u8>),
    /// The bytes are to be written (and synced), then marked stored.
    Write(Vec<u8>),
}

fn delete_blob(conn: &Connection, blob: &BlobRow) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM blobs WHERE id = ?1")?
        .execute(params![blob.id])?;
    conn.prepare_cached("UPDATE channels SET blob_bytes = blob_bytes - ?2 WHERE id = ?1")?
        .execute(params![blob.channel_id, blob.reserved_bytes()])?;
    Ok(())
}

/// The directory of blob files beside the database at `db`.
fn blob_dir(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push("-blobs");
    db.with_file_name(name)
}

/// Copies a SQLite store, consistently, while a relay may be writing to it
/// (`VACUUM INTO`: one read transaction, so the copy is the database as of
/// one commit). `to` must not exist.
pub fn backup_sqlite(db: &Path, to: &Path) -> Result<(), StoreError> {
    if to.exists() {
        return Err(StoreError::InvalidArgument(
            "the backup file already exists",
        ));
    }
    if !db.exists() {
        return Err(StoreError::InvalidArgument("no database at that path"));
    }
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let target = to
        .to_str()
        .ok_or(StoreError::InvalidArgument("the backup path is not UTF-8"))?;
    conn.execute("VACUUM INTO ?1", params![target])?;
    // Then the blob files: every chunk the copied database counts as
    // stored was synced to its file before it was counted, so it is there.
    let (from_dir, to_dir) = (blob_dir(db), blob_dir(to));
    std::fs::create_dir_all(&to_dir).map_err(|e| io_error("creating", &to_dir, &e))?;
    let entries = match std::fs::read_dir(&from_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error("listing", &from_dir, &e)),
    };
    for entry in entries.flatten() {
        let target = to_dir.join(entry.file_name());
        match std::fs::copy(entry.path(), &target) {
            Ok(_) => {}
            // Deleted meanwhile: its blob is gone after the copied commit.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("copying to", &target, &e)),
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the store and starts its
    /// writer thread. `sink` receives events after each commit.
    pub fn open(options: SqliteOptions, sink: Arc<dyn EventSink>) -> Result<Self, StoreError> {
        if let Some(dir) = options.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Engine(format!("creating {}: {e}", dir.display())))?;
        }
        let mut writer_conn = open_connection(&options.path)?;
        migrate(&mut writer_conn)?;
        let blob_dir = blob_dir(&options.path);
        std::fs::create_dir_all(&blob_dir).map_err(|e| io_error("creating", &blob_dir, &e))?;
        let relay_id = load_or_create_relay_id(&writer_conn)?;
        // The writer checkpoints between batches, when nothing else is being
        // appended, so every checkpoint completes and the WAL starts over (a
        // checkpointer racing a busy writer never catches up, and the WAL grows
        // without bound). A larger threshold than SQLite's 1,000 pages copies
        // hot pages (channel rows, index tails) fewer times.
        writer_conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;

        let read_connections = options.read_connections.max(1);
        let mut readers = Vec::with_capacity(read_connections);
        for _ in 0..read_connections {
            let conn = open_connection(&options.path)?;
            conn.pragma_update(None, "query_only", true)?;
            readers.push(conn);
        }

        let (tx, rx) = mpsc::channel::<Job>(options.write_queue.max(1));
        let max_batch = options.max_batch.max(1);
        let thread = std::thread::Builder::new()
            .name("kith-store-writer".into())
            .spawn(move || writer_loop(writer_conn, rx, max_batch, sink))
            .map_err(|e| StoreError::Engine(format!("starting the writer thread: {e}")))?;

        Ok(Self {
            inner: Arc::new(Inner {
                blob_dir,
                path: options.path,
                relay_id,
                quotas: options.quotas,
                writer: RwLock::new(Some(tx)),
                writer_thread: Mutex::new(Some(thread)),
                readers: Mutex::new(readers),
                reader_permits: Semaphore::new(read_connections),
            }),
        })
    }

    fn writer(&self) -> Result<mpsc::Sender<Job>, StoreError> {
        self.inner
            .writer
            .read()
            .map_err(|_| StoreError::Closed)?
            .clone()
            .ok_or(StoreError::Closed)
    }

    /// Runs `op` inside the writer's next transaction and answers once that
    /// transaction is committed.
    async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut Vec<StoreEvent>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel();
        let job: Job = Box::new(TypedJob {
            op: Some(op),
            result: None,
            reply: Some(reply_tx),
        });
        self.writer()?
            .send(job)
            .await
            .map_err(|_| StoreError::Closed)?;
        reply_rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues a write whose answer nobody waits for (e.g. keeping a read-only
    /// channel alive). Dropped when the queue is full.
    fn write_detached<F>(&self, op: F)
    where
        F: FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    {
        let job: Job = Box::new(TypedJob {
            op: Some(move |conn: &Connection, _: &mut Vec<StoreEvent>| op(conn)),
            result: None,
            reply: None,
        });
        if let Ok(w) = self.writer() {
            let _ = w.try_send(job);
        }
    }

    /// Runs `op` on a pooled read-only connection.
    async fn read_with<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let _permit = self
            .inner
            .reader_permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner
                .readers
                .lock()
                .map_err(|_| StoreError::Closed)?
                .pop()
                .ok_or(StoreError::Closed)?;
            let result = op(&conn);
            if let Ok(mut pool) = inner.readers.lock() {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Engine(format!("reader task: {e}")))?
    }

    /// Removes a deleted blob's file at once (the sweep would later).
    fn remove_blob_file(&self, blob_id: &BlobId) {
        let path = blob_file(&self.inner.blob_dir, blob_id);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(error = %e, path = %path.display(), "removing a blob file"),
        }
    }

    /// Keeps a channel that is only read from alive (see [`Authorized::touch_due`]);
    /// reads run on read-only connections, so this queues a write.
    fn touch_if_due(&self, auth: &Authorized, now_ms: u64) {
        if auth.touch_due(now_ms) {
            let id = auth.id;
            self.write_detached(move |conn| touch(conn, id, now_ms));
        }
    }
}

fn writer_loop(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    sink: Arc<dyn EventSink>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    let mut events: Vec<StoreEvent> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let committed = run_batch(&mut conn, &mut batch, &mut events);
        if let Err(e) = &committed {
            tracing::error!(error = %e, jobs = batch.len(), "write batch failed");
        } else {
            sink.committed(batch.len(), started.elapsed());
            sink.publish(&events);
        }
        events.clear();
        for job in batch.drain(..) {
            job.finish(match &committed {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Engine(e.to_string())),
            });
        }
    }
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
        tracing::warn!(error = %e, "final WAL checkpoint failed");
    }
}

/// Runs every job of the batch in one transaction, each in its own savepoint
/// (cached statements: this runs for every write).
fn run_batch(
    conn: &mut Connection,
    batch: &mut [Job],
    events: &mut Vec<StoreEvent>,
) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut job_events = Vec::new();
    for job in batch.iter_mut() {
        tx.prepare_cached("SAVEPOINT job")?.execute([])?;
        if job.run(&tx, &mut job_events) {
            tx.prepare_cached("RELEASE job")?.execute([])?;
            events.append(&mut job_events);
        } else {
            tx.prepare_cached("ROLLBACK TO job")?.execute([])?;
            tx.prepare_cached("RELEASE job")?.execute([])?;
            job_events.clear();
        }
    }
    tx.commit()
}

/// Stores a chunk of a blob kept in the database (made before blobs moved
/// to files): the same bytes again succeed, other bytes are a conflict.
fn put_chunk_row(
    conn: &Connection,
    blob: &BlobRow,
    index: u32,
    data: &[u8],
) -> Result<(), StoreError> {
    let existing: Option<Vec<u8>> = conn
        .prepare_cached("SELECT data FROM blob_chunks WHERE blob_id = ?1 AND idx = ?2")?
        .query_row(params![blob.id, index], |r| r.get(0))
        .optional()?;
    match existing {
        Some(old) if old == data => Ok(()),
        Some(_) => Err(StoreError::Conflict(
            "chunk already written with other bytes",
        )),
        None => {
            conn.prepare_cached(
                "INSERT INTO blob_chunks (blob_id, idx, data) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![blob.id, index, data])?;
            Ok(())
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn relay_id(&self) -> RelayId {
        self.inner.relay_id
    }

    async fn create_channel(&self, new: NewChannel) -> Result<ChannelCreated, StoreError> {
        let quotas = self.inner.quotas;
        self.write(move |conn, _| {
            let grants = channel_grants(&new, &quotas)?;
            let now = to_i64(new.now_ms)?;
            let created = channel_created(&new, random_32()?, random_32()?);
            conn.prepare_cached(
                "INSERT INTO channels (write_id, read_id, created_at, expires_at, channel_ttl_ms, \
                 message_ttl_ms, key_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                &created.write_id.0[..],
                &created.read_id.0[..],
                now,
                to_i64(created.expires_at_ms)?,
                to_i64(new.channel_ttl_ms)?,
                to_i64(new.message_ttl_ms)?,
                grants.len() as i64,
            ])?;
            let channel_id = conn.last_insert_rowid();
            let mut insert = conn.prepare_cached(
                "INSERT INTO channel_keys (channel_id, key, rights, acked_seq) VALUES (?1, ?2, ?3, 0)",
            )?;
            for g in &grants {
                insert.execute(params![channel_id, &g.key.0[..], g.rights.bits()])?;
            }
            Ok(created)
        })
        .await
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
        self.write(move |conn, events| {
            let a = authorize(
                conn,
                ChannelRef::Write(write_id),
                &key,
                Rights::WRITE,
                now_ms,
            )?;
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
            conn.prepare_cached(
                "INSERT INTO messages (channel_id, seq, received_at, expires_at, payload) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                a.id,
                to_i64(seq)?,
                to_i64(now_ms)?,
                to_i64(expires)?,
                &payload
            ])?;
            conn.prepare_cached(
                "UPDATE channels SET last_seq = ?2, message_count = message_count + 1, \
                 message_bytes = message_bytes + ?3 WHERE id = ?1",
            )?
            .execute(params![a.id, to_i64(seq)?, to_i64(size)?])?;
            touch_if_due(conn, &a, now_ms)?;
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
        .await
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
        let (auth, page) = self
            .read_with(move |conn| {
                let a = authorize(conn, ChannelRef::Read(read_id), &key, Rights::READ, now_ms)?;
                let mut stmt = conn.prepare_cached(
                    "SELECT seq, received_at, payload FROM messages \
                     WHERE channel_id = ?1 AND seq > ?2 AND expires_at > ?3 \
                     ORDER BY seq LIMIT ?4",
                )?;
                let rows = stmt.query_map(
                    params![
                        a.id,
                        to_i64(after_seq)?,
                        to_i64(now_ms)?,
                        i64::from(max_messages.max(1))
                    ],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )?;
                let items = page(
                    rows.map(|row| {
                        let (seq, received_at, payload): (i64, i64, Vec<u8>) = row?;
                        Ok(StoredMessage {
                            seq: to_u64(seq)?,
                            received_at_ms: to_u64(received_at)?,
                            payload,
                        })
                    }),
                    max_bytes,
                )?;
                Ok((
                    a,
                    ReadPage {
                        channel: ChannelKey(a.id),
                        messages: Messages {
                            last_seq: a.last_seq,
                            items,
                        },
                    },
                ))
            })
            .await?;
        self.touch_if_due(&auth, now_ms);
        Ok(page)
    }

    async fn ack(
        &self,
        read_id: ReadId,
        key: PublicKey,
        seq: u64,
        now_ms: u64,
    ) -> Result<Acked, StoreError> {
        self.write(move |conn, _| {
            let a = authorize(conn, ChannelRef::Read(read_id), &key, Rights::READ, now_ms)?;
            if seq > a.last_seq {
                return Err(StoreError::InvalidArgument(
                    "cannot acknowledge beyond the channel's last message",
                ));
            }
            if seq > a.acked_seq {
                conn.prepare_cached(
                    "UPDATE channel_keys SET acked_seq = ?3 WHERE channel_id = ?1 AND key = ?2",
                )?
                .execute(params![a.id, &key.0[..], to_i64(seq)?])?;
                drop_acknowledged(conn, a.id)?;
                touch_if_due(conn, &a, now_ms)?;
            }
            Ok(Acked {
                acked_seq: seq.max(a.acked_seq),
            })
        })
        .await
    }

    async fn add_key(
        &self,
        write_id: WriteId,
        admin: PublicKey,
        grant: KeyGrant,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let quotas = self.inner.quotas;
        self.write(move |conn, events| {
            let a = authorize(
                conn,
                ChannelRef::Write(write_id),
                &admin,
                Rights::ADMIN,
                now_ms,
            )?;
            let new_reader_cursor = to_i64(a.last_seq)?;
            match key_rights(conn, a.id, &grant.key)? {
                None => {
                    if a.key_count >= u64::from(quotas.max_channel_keys) {
                        return Err(StoreError::QuotaExceeded("keys"));
                    }
                    conn.prepare_cached(
                        "INSERT INTO channel_keys (channel_id, key, rights, acked_seq) \
                         VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![
                        a.id,
                        &grant.key.0[..],
                        grant.rights.bits(),
                        new_reader_cursor
                    ])?;
                    conn.prepare_cached(
                        "UPDATE channels SET key_count = key_count + 1 WHERE id = ?1",
                    )?
                    .execute(params![a.id])?;
                }
                Some(old) => {
                    if old.contains(Rights::ADMIN) && !grant.rights.contains(Rights::ADMIN) {
                        keep_an_admin(conn, a.id)?;
                    }
                    // A key that gains the read right starts at the current end,
                    // like a new reader; one that keeps it keeps its cursor.
                    let cursor = (!old.contains(Rights::READ)).then_some(new_reader_cursor);
                    conn.prepare_cached(
                        "UPDATE channel_keys SET rights = ?3, acked_seq = COALESCE(?4, acked_seq) \
                         WHERE channel_id = ?1 AND key = ?2",
                    )?
                    .execute(params![
                        a.id,
                        &grant.key.0[..],
                        grant.rights.bits(),
                        cursor
                    ])?;
                    if old.contains(Rights::READ) && !grant.rights.contains(Rights::READ) {
                        reader_removed(conn, events, a.id, grant.key)?;
                    }
                }
            }
            touch_if_due(conn, &a, now_ms)?;
            Ok(())
        })
        .await
    }

    async fn revoke_key(
        &self,
        write_id: WriteId,
        admin: PublicKey,
        key: PublicKey,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.write(move |conn, events| {
            let a = authorize(
                conn,
                ChannelRef::Write(write_id),
                &admin,
                Rights::ADMIN,
                now_ms,
            )?;
            let Some(old) = key_rights(conn, a.id, &key)? else {
                return Ok(());
            };
            if old.contains(Rights::ADMIN) {
                keep_an_admin(conn, a.id)?;
            }
            conn.prepare_cached("DELETE FROM channel_keys WHERE channel_id = ?1 AND key = ?2")?
                .execute(params![a.id, &key.0[..]])?;
            conn.prepare_cached("UPDATE channels SET key_count = key_count - 1 WHERE id = ?1")?
                .execute(params![a.id])?;
            if old.contains(Rights::READ) {
                reader_removed(conn, events, a.id, key)?;
            }
            touch_if_due(conn, &a, now_ms)?;
            Ok(())
        })
        .await
    }

    async fn delete_channel(
        &self,
        write_id: WriteId,
        admin: PublicKey,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.write(move |conn, events| {
            let a = authorize(
                conn,
                ChannelRef::Write(write_id),
                &admin,
                Rights::ADMIN,
                now_ms,
            )?;
            conn.prepare_cached("DELETE FROM channels WHERE id = ?1")?
                .execute(params![a.id])?;
            events.push(StoreEvent::ChannelClosed {
                channel: ChannelKey(a.id),
            });
            Ok(())
        })
        .await
    }

    async fn status(
        &self,
        channel: ChannelRef,
        key: PublicKey,
        now_ms: u64,
    ) -> Result<ChannelStatus, StoreError> {
        let (auth, status) = self
            .read_with(move |conn| {
                let a = authorize(conn, channel, &key, Rights::NONE, now_ms)?;
                // SQLite reads `$1`, `$2` as numbered parameters too.
                let live = conn.prepare_cached(LIVE_MESSAGES)?.query_row(
                    params![a.id, to_i64(now_ms)?],
                    |r| {
                        Ok(LiveMessages {
                            first_seq: r.get(0)?,
                            count: r.get(1)?,
                            bytes: r.get(2)?,
                        })
                    },
                )?;
                let keys = if a.rights.contains(Rights::ADMIN) {
                    let mut stmt = conn.prepare_cached(
                        "SELECT key, rights, acked_seq FROM channel_keys WHERE channel_id = ?1 \
                         ORDER BY key",
                    )?;
                    let mut rows = stmt.query(params![a.id])?;
                    let mut keys = Vec::new();
                    while let Some(row) = rows.next()? {
                        let k: Vec<u8> = row.get(0)?;
                        keys.push(key_status(&k, row.get(1)?, row.get(2)?)?);
                    }
                    Some(keys)
                } else {
                    None
                };
                Ok((a, a.status(live, keys, now_ms)?))
            })
            .await?;
        self.touch_if_due(&auth, now_ms);
        Ok(status)
    }

    async fn authorize_reader(
        &self,
        read_id: ReadId,
        key: PublicKey,
        now_ms: u64,
    ) -> Result<(ChannelKey, u64), StoreError> {
        let auth = self
            .read_with(move |conn| {
                authorize(conn, ChannelRef::Read(read_id), &key, Rights::READ, now_ms)
            })
            .await?;
        self.touch_if_due(&auth, now_ms);
        Ok((ChannelKey(auth.id), auth.last_seq))
    }

    async fn blob_create(&self, new: NewBlob) -> Result<BlobCreated, StoreError> {
        let quotas = self.inner.quotas;
        self.write(move |conn, _| {
            let spec = new.spec;
            let a = authorize(
                conn,
                ChannelRef::Write(spec.write_id),
                &new.key,
                Rights::WRITE,
                new.now_ms,
            )?;
            if spec.chunk_count > quotas.max_blob_chunks {
                return Err(StoreError::QuotaExceeded("blob chunks"));
            }
            let bytes = u64::from(spec.chunk_size) * u64::from(spec.chunk_count);
            if a.blob_bytes.saturating_add(bytes) > quotas.max_channel_blob_bytes {
                return Err(StoreError::QuotaExceeded("blob bytes"));
            }
            let blob_id = BlobId(random_32()?);
            let expires_at = new
                .now_ms
                .saturating_add(u64::from(spec.ttl_secs).saturating_mul(1000));
            conn.prepare_cached(
                "INSERT INTO blobs (id_hash, channel_id, chunk_size, chunk_count, read_once, \
                 created_at, expires_at, claim_key, in_file) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1)",
            )?
            .execute(params![
                &blob_hash(&blob_id)[..],
                a.id,
                spec.chunk_size,
                spec.chunk_count,
                spec.read_once,
                to_i64(new.now_ms)?,
                to_i64(expires_at)?,
                spec.claim_key.map(|k| k.0.to_vec()),
            ])?;
            conn.prepare_cached("UPDATE channels SET blob_bytes = blob_bytes + ?2 WHERE id = ?1")?
                .execute(params![a.id, to_i64(bytes)?])?;
            touch_if_due(conn, &a, new.now_ms)?;
            Ok(BlobCreated {
                blob_id,
                expires_at_ms: expires_at,
            })
        })
        .await
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
        // Stage, then commit: the chunk is claimed, its bytes written and
        // synced, and only then marked stored, so a chunk the relay
        // answered for survives a crash, and one it did not is never served
        // half written. No digest: bytes already stored are compared as
        // they are (a retry), which costs less than hashing every chunk.
        let claimed = self
            .write(move |conn, _| {
                let blob = writable_blob(conn, write_id, &key, &blob_id, now_ms)?;
                blob.check_chunk(index, data.len())?;
                if !blob.in_file {
                    put_chunk_row(conn, &blob, index, &data)?;
                    return Ok(None);
                }
                let stored: Option<bool> = conn
                    .prepare_cached(
                        "SELECT stored FROM blob_file_chunks WHERE blob_id = ?1 AND idx = ?2",
                    )?
                    .query_row(params![blob.id, index], |r| r.get(0))
                    .optional()?;
                let claim = match stored {
                    Some(true) => ChunkClaim::Compare(data),
                    // Claimed by a put that has not finished (or never
                    // will: the relay stopped): this one writes it too.
                    Some(false) => ChunkClaim::Write(data),
                    None => {
                        conn.prepare_cached(
                            "INSERT INTO blob_file_chunks (blob_id, idx, stored) VALUES (?1, ?2, 0)",
                        )?
                        .execute(params![blob.id, index])?;
                        ChunkClaim::Write(data)
                    }
                };
                Ok(Some((claim, blob)))
            })
            .await?;
        let Some((claim, blob)) = claimed else {
            return Ok(());
        };
        let path = blob_file(&self.inner.blob_dir, &blob_id);
        let blob_row_id = blob.id;
        let written = tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::FileExt as _;
            match claim {
                ChunkClaim::Compare(data) => {
                    if read_chunk_file(&path, &blob, index)? == data {
                        Ok(false)
                    } else {
                        Err(StoreError::Conflict(
                            "chunk already written with other bytes",
                        ))
                    }
                }
                ChunkClaim::Write(data) => {
                    let file = std::fs::OpenOptions::new()
                        .create(true)
                        .truncate(false)
                        .write(true)
                        .open(&path)
                        .map_err(|e| io_error("opening", &path, &e))?;
                    file.write_all_at(&data, u64::from(index) * u64::from(blob.chunk_size))
                        .map_err(|e| io_error("writing", &path, &e))?;
                    file.sync_data()
                        .map_err(|e| io_error("syncing", &path, &e))?;
                    Ok(true)
                }
            }
        })
        .await
        .map_err(|e| StoreError::Engine(format!("blob writer task: {e}")))??;
        if !written {
            return Ok(());
        }
        self.write(move |conn, _| {
            conn.prepare_cached(
                "UPDATE blob_file_chunks SET stored = 1 WHERE blob_id = ?1 AND idx = ?2",
            )?
            .execute(params![blob_row_id, index])?;
            Ok(())
        })
        .await
    }

    async fn blob_get(
        &self,
        blob_id: BlobId,
        index: u32,
        claim: BlobClaim,
        now_ms: u64,
    ) -> Result<BlobChunk, StoreError> {
        let claim = Arc::new(claim);
        let check = claim.clone();
        let dir = self.inner.blob_dir.clone();
        let (read_once, found) = self
            .read_with(move |conn| {
                let blob = find_blob(conn, &blob_id, now_ms)?;
                if blob.read_once {
                    // Checked before the writer is asked: a wrong claim
                    // costs the relay no write.
                    check.allows(&blob)?;
                    Ok((true, None))
                } else {
                    chunk(conn, &dir, &blob_id, &blob, index).map(|c| (false, Some(c)))
                }
            })
            .await?;
        if let (false, Some(chunk)) = (read_once, found) {
            return Ok(chunk);
        }
        // Read-once: fetch and delete in one writer transaction, so two
        // concurrent fetches cannot both succeed.
        let dir = self.inner.blob_dir.clone();
        let c = self
            .write(move |conn, _| {
                let blob = find_blob(conn, &blob_id, now_ms)?;
                claim.allows(&blob)?;
                let c = chunk(conn, &dir, &blob_id, &blob, index)?;
                delete_blob(conn, &blob)?;
                Ok(c)
            })
            .await?;
        self.remove_blob_file(&blob_id);
        Ok(c)
    }

    async fn blob_delete(
        &self,
        write_id: WriteId,
        key: PublicKey,
        blob_id: BlobId,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.write(move |conn, _| {
            let blob = writable_blob(conn, write_id, &key, &blob_id, now_ms)?;
            delete_blob(conn, &blob)
        })
        .await?;
        self.remove_blob_file(&blob_id);
        Ok(())
    }

    async fn remember_nonce(
        &self,
        nonce: [u8; 16],
        expires_at_ms: u64,
    ) -> Result<bool, StoreError> {
        self.write(move |conn, _| {
            let added = conn
                .prepare_cached(
                    "INSERT INTO nonces (nonce, expires_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                )?
                .execute(params![&nonce[..], to_i64(expires_at_ms)?])?;
            Ok(added == 1)
        })
        .await
    }

    async fn sweep(&self, now_ms: u64) -> Result<SweepStats, StoreError> {
        let mut total = SweepStats::default();
        loop {
            let pass = self
                .write(move |conn, events| sweep_pass(conn, events, now_ms))
                .await?;
            total.channels += pass.channels;
            total.messages += pass.messages;
            total.blobs += pass.blobs;
            if pass == SweepStats::default() {
                let dir = self.inner.blob_dir.clone();
                let removed = self
                    .read_with(move |conn| remove_orphan_files(conn, &dir))
                    .await?;
                if removed > 0 {
                    tracing::debug!(removed, "removed the files of gone blobs");
                }
                return Ok(total);
            }
        }
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.read_with(|conn| {
            let (channels, messages, message_bytes, blob_bytes): (i64, i64, i64, i64) = conn
                .query_row(
                    "SELECT COUNT(*), COALESCE(SUM(message_count), 0), \
                     COALESCE(SUM(message_bytes), 0), COALESCE(SUM(blob_bytes), 0) FROM channels",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )?;
            let blobs: i64 = conn.query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get(0))?;
            Ok(StoreStats {
                channels: to_u64(channels)?,
                messages: to_u64(messages)?,
                message_bytes: to_u64(message_bytes)?,
                blobs: to_u64(blobs)?,
                blob_bytes: to_u64(blob_bytes)?,
            })
        })
        .await
    }

    async fn dir_create(&self, new: NewDirectory) -> Result<(), StoreError> {
        self.write(move |conn, _| {
            let added = conn.execute(
                "INSERT INTO directories (name, members_only, root_secret, created_at) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                params![
                    new.name,
                    new.members_only,
                    &new.root_secret[..],
                    to_i64(new.now_ms)?
                ],
            )?;
            if added == 0 {
                return Err(StoreError::Conflict("a directory of that name exists"));
            }
            insert_directory_key(conn, &new.name, &new.signing)
        })
        .await
    }

    async fn dir_load(&self, name: &str, now_ms: u64) -> Result<Option<DirectoryRow>, StoreError> {
        let name = name.to_string();
        self.read_with(move |conn| {
            let Some((members_only, root)) = conn
                .prepare_cached("SELECT members_only, root_secret FROM directories WHERE name = ?1")?
                .query_row([&name], |r| Ok((r.get::<_, bool>(0)?, r.get::<_, Vec<u8>>(1)?)))
                .optional()?
            else {
                return Ok(None);
            };
            let now = to_i64(now_ms)?;
            let keys = conn
                .prepare_cached(
                    "SELECT key, secret, valid_from, valid_until, root_signature FROM directory_keys \
                     WHERE directory = ?1 AND valid_until > ?2 ORDER BY valid_from, key",
                )?
                .query_map(params![name, now], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .map(|row| signing_key_row(row?))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let revoked = conn
                .prepare_cached(
                    "SELECT member FROM directory_members WHERE directory = ?1 \
                     AND removed_at IS NOT NULL AND member IS NOT NULL AND valid_until > ?2 \
                     ORDER BY member",
                )?
                .query_map(params![name, now], |r| r.get::<_, Vec<u8>>(0))?
                .map(|k| fixed(k?))
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(Some(DirectoryRow {
                name,
                members_only,
                root_secret: zeroize::Zeroizing::new(fixed(root)?),
                keys,
                revoked,
            }))
        })
        .await
    }

    async fn dir_add_key(&self, name: &str, key: SigningKeyRow) -> Result<(), StoreError> {
        let name = name.to_string();
        self.write(move |conn, _| insert_directory_key(conn, &name, &key))
            .await
    }

    async fn dir_admit(
        &self,
        name: &str,
        secret_hash: [u8; 32],
        admission: Admission,
        now_ms: u64,
    ) -> Result<u64, StoreError> {
        let name = name.to_string();
        self.write(move |conn, _| {
            conn.execute(
                "INSERT INTO directory_members \
                 (directory, secret_hash, statement, valid_from, valid_until, admitted_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    name,
                    &secret_hash[..],
                    admission.statement,
                    to_i64(admission.valid_from_ms)?,
                    to_i64(admission.valid_until_ms)?,
                    to_i64(now_ms)?
                ],
            )?;
            to_u64(conn.last_insert_rowid())
        })
        .await
    }

    async fn dir_enrol(
        &self,
        name: &str,
        secret_hash: [u8; 32],
        member: [u8; 32],
        now_ms: u64,
    ) -> Result<Admission, StoreError> {
        let name = name.to_string();
        self.write(move |conn, _| {
            let now = to_i64(now_ms)?;
            // A new admission supersedes the key's ended or removed one.
            conn.prepare_cached(
                "DELETE FROM directory_members WHERE directory = ?1 AND member = ?2 \
                 AND (removed_at IS NOT NULL OR valid_until <= ?3)",
            )?
            .execute(params![name, &member[..], now])?;
            let taken: bool = conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM directory_members WHERE directory = ?1 AND member = ?2)",
                )?
                .query_row(params![name, &member[..]], |r| r.get(0))?;
            if taken {
                return Err(StoreError::Unauthorized);
            }
            let admission = conn
                .prepare_cached(
                    "UPDATE directory_members SET member = ?3, enrolled_at = ?4 \
                     WHERE directory = ?1 AND secret_hash = ?2 AND member IS NULL \
                     AND removed_at IS NULL AND valid_until > ?4 \
                     RETURNING statement, valid_from, valid_until",
                )?
                .query_row(params![name, &secret_hash[..], &member[..], now], admission_row)
                .optional()?;
            admission.ok_or(StoreError::Unauthorized)?
        })
        .await
    }

    async fn dir_member(
        &self,
        name: &str,
        member: [u8; 32],
        now_ms: u64,
    ) -> Result<Option<Admission>, StoreError> {
        let name = name.to_string();
        self.read_with(move |conn| {
            conn.prepare_cached(
                "SELECT statement, valid_from, valid_until FROM directory_members \
                 WHERE directory = ?1 AND member = ?2 AND removed_at IS NULL \
                 AND valid_from <= ?3 AND valid_until > ?3",
            )?
            .query_row(params![name, &member[..], to_i64(now_ms)?], admission_row)
            .optional()?
            .transpose()
        })
        .await
    }

    async fn dir_publish(
        &self,
        name: &str,
        member: [u8; 32],
        entry: EntryChange,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let name = name.to_string();
        self.write(move |conn, _| {
            // Replaced, not updated: a new row id keeps "newest first" the
            // order of row ids, which the search index walks backwards.
            conn.prepare_cached(
                "DELETE FROM directory_entries WHERE directory = ?1 AND member = ?2",
            )?
            .execute(params![name, &member[..]])?;
            if let Some(e) = entry {
                conn.prepare_cached(
                    "INSERT INTO directory_entries \
                     (directory, member, display_name, text, address, published_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    name,
                    &member[..],
                    e.display_name,
                    e.text,
                    e.address,
                    to_i64(now_ms)?
                ])?;
            }
            Ok(())
        })
        .await
    }

    async fn dir_leave(&self, name: &str, member: [u8; 32], now_ms: u64) -> Result<(), StoreError> {
        let name = name.to_string();
        self.write(move |conn, _| {
            conn.execute(
                "DELETE FROM directory_entries WHERE directory = ?1 AND member = ?2",
                params![name, &member[..]],
            )?;
            conn.execute(
                "UPDATE directory_members SET removed_at = ?3 \
                 WHERE directory = ?1 AND member = ?2 AND removed_at IS NULL",
                params![name, &member[..], to_i64(now_ms)?],
            )?;
            Ok(())
        })
        .await
    }

    async fn dir_remove(&self, name: &str, id: u64, now_ms: u64) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.write(move |conn, _| {
            let member: Option<Option<Vec<u8>>> = conn
                .query_row(
                    "UPDATE directory_members SET removed_at = ?3 \
                     WHERE directory = ?1 AND id = ?2 AND removed_at IS NULL RETURNING member",
                    params![name, to_i64(id)?, to_i64(now_ms)?],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(member) = member else {
                return Ok(false);
            };
            if let Some(member) = member {
                conn.execute(
                    "DELETE FROM directory_entries WHERE directory = ?1 AND member = ?2",
                    params![name, member],
                )?;
            }
            Ok(true)
        })
        .await
    }

    async fn dir_search(&self, search: Search) -> Result<Vec<Entry>, StoreError> {
        self.read_with(move |conn| {
            let now = to_i64(search.now_ms)?;
            let member_ok = "(?3 = 0 OR EXISTS (SELECT 1 FROM directory_members m \
                 WHERE m.directory = e.directory AND m.member = e.member AND m.removed_at IS NULL \
                 AND m.valid_from <= ?4 AND m.valid_until > ?4))";
            let entry = |r: &rusqlite::Row<'_>| {
                Ok(Entry {
                    display_name: r.get(0)?,
                    text: r.get(1)?,
                    address: r.get(2)?,
                })
            };
            let rows = if search.words.is_empty() {
                conn.prepare_cached(&format!(
                    "SELECT e.display_name, e.text, e.address FROM directory_entries e \
                     WHERE e.directory = ?1 AND ?2 = '' AND {member_ok} \
                     ORDER BY e.id DESC LIMIT ?5"
                ))?
                .query_map(
                    params![search.directory, "", search.members_only, now, search.limit],
                    entry,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?
            } else {
                // Each word quoted (a word is letters and digits, so it holds
                // no quote) and matched as a prefix; FTS5 ANDs them.
                let matching = search
                    .words
                    .iter()
                    .map(|w| format!("\"{w}\"*"))
                    .collect::<Vec<_>>()
                    .join(" ");
                conn.prepare_cached(&format!(
                    "SELECT e.display_name, e.text, e.address FROM directory_search s \
                     JOIN directory_entries e ON e.id = s.rowid \
                     WHERE directory_search MATCH ?2 AND e.directory = ?1 AND {member_ok} \
                     ORDER BY s.rowid DESC LIMIT ?5"
                ))?
                .query_map(
                    params![
                        search.directory,
                        matching,
                        search.members_only,
                        now,
                        search.limit
                    ],
                    entry,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?
            };
            Ok(rows)
        })
        .await
    }

    async fn dir_members(&self, name: &str) -> Result<Vec<MemberRow>, StoreError> {
        let name = name.to_string();
        self.read_with(move |conn| {
            conn.prepare_cached(
                "SELECT m.id, m.statement, m.valid_from, m.valid_until, m.member IS NOT NULL, \
                 m.removed_at IS NOT NULL, e.display_name FROM directory_members m \
                 LEFT JOIN directory_entries e ON e.directory = m.directory AND e.member = m.member \
                 WHERE m.directory = ?1 ORDER BY m.id",
            )?
            .query_map([&name], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    (r.get(1)?, r.get(2)?, r.get(3)?),
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?
            .map(|row| {
                let (id, admission, enrolled, removed, entry_name) = row?;
                Ok(MemberRow {
                    id: to_u64(id)?,
                    admission: admission_from(admission)?,
                    enrolled,
                    removed,
                    entry_name,
                })
            })
            .collect()
        })
        .await
    }

    async fn dir_list(&self) -> Result<Vec<DirectorySummary>, StoreError> {
        self.read_with(move |conn| {
            conn.prepare_cached(
                "SELECT d.name, d.members_only, \
                 (SELECT COUNT(*) FROM directory_members m WHERE m.directory = d.name \
                  AND m.member IS NOT NULL AND m.removed_at IS NULL), \
                 (SELECT COUNT(*) FROM directory_entries e WHERE e.directory = d.name) \
                 FROM directories d ORDER BY d.name",
            )?
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?
            .map(|row| {
                let (name, members_only, members, entries) = row?;
                Ok(DirectorySummary {
                    name,
                    members_only,
                    members: to_u64(members)?,
                    entries: to_u64(entries)?,
                })
            })
            .collect()
        })
        .await
    }

    async fn close(&self) {
        if let Ok(mut w) = self.inner.writer.write() {
            w.take();
        }
        let thread = self
            .inner
            .writer_thread
            .lock()
            .ok()
            .and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

fn insert_directory_key(
    conn: &Connection,
    name: &str,
    k: &SigningKeyRow,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO directory_keys (directory, key, secret, valid_from, valid_until, root_signature) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            name,
            &k.key.key[..],
            &k.secret[..],
            to_i64(k.key.valid_from_ms)?,
            to_i64(k.key.valid_until_ms)?,
            &k.key.root_signature[..]
        ],
    )?;
    Ok(())
}

fn admission_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Admission, StoreError>> {
    Ok(admission_from((r.get(0)?, r.get(1)?, r.get(2)?)))
}

/// One bounded pass of expiry: expired channels, then blobs, then messages.
fn sweep_pass(
    conn: &Connection,
    events: &mut Vec<StoreEvent>,
    now_ms: u64,
) -> Result<SweepStats, StoreError> {
    let now = to_i64(now_ms)?;
    let mut stats = SweepStats::default();

    let channels: Vec<i64> = conn
        .prepare_cached("SELECT id FROM channels WHERE expires_at <= ?1 LIMIT ?2")?
        .query_map(params![now, SWEEP_BATCH], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in channels {
        conn.prepare_cached("DELETE FROM channels WHERE id = ?1")?
            .execute(params![id])?;
        events.push(StoreEvent::ChannelClosed {
            channel: ChannelKey(id),
        });
        stats.channels += 1;
    }

    let blobs: Vec<BlobRow> = conn
        .prepare_cached(
            "SELECT id, channel_id, chunk_size, chunk_count, read_once, claim_key, in_file \
             FROM blobs WHERE expires_at <= ?1 LIMIT ?2",
        )?
        .query_map(params![now, SWEEP_BATCH], blob_row)?
        .collect::<Result<_, _>>()?;
    for blob in &blobs {
        delete_blob(conn, blob)?;
        stats.blobs += 1;
    }

    let expired: Vec<(i64, i64, i64)> = conn
        .prepare_cached(
            "SELECT rowid, channel_id, length(payload) FROM messages WHERE expires_at <= ?1 LIMIT ?2",
        )?
        .query_map(params![now, SWEEP_BATCH], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut per_channel: std::collections::BTreeMap<i64, (i64, i64)> = Default::default();
    for (rowid, channel, len) in &expired {
        conn.prepare_cached("DELETE FROM messages WHERE rowid = ?1")?
            .execute(params![rowid])?;
        let e = per_channel.entry(*channel).or_default();
        e.0 += 1;
        e.1 += len;
    }
    for (channel, (count, bytes)) in per_channel {
        conn.prepare_cached(
            "UPDATE channels SET message_count = message_count - ?2, \
             message_bytes = message_bytes - ?3 WHERE id = ?1",
        )?
        .execute(params![channel, count, bytes])?;
    }
    stats.messages = expired.len() as u64;
    conn.prepare_cached(
        "DELETE FROM nonces WHERE nonce IN (SELECT nonce FROM nonces WHERE expires_at <= ?1 LIMIT ?2)",
    )?
    .execute(params![now, SWEEP_BATCH])?;
    // Admissions past their end: their entries (unlisted since) and the
    // rows (revocation no longer needed; expiry says it).
    conn.prepare_cached(
        "DELETE FROM directory_entries WHERE id IN (SELECT e.id FROM directory_entries e \
         JOIN directory_members m ON m.directory = e.directory AND m.member = e.member \
         WHERE m.valid_until <= ?1 LIMIT ?2)",
    )?
    .execute(params![now, SWEEP_BATCH])?;
    conn.prepare_cached(
        "DELETE FROM directory_members WHERE id IN \
         (SELECT id FROM directory_members WHERE valid_until <= ?1 LIMIT ?2)",
    )?
    .execute(params![now, SWEEP_BATCH])?;
    Ok(stats)
}
