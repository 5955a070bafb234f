//! Files (`docs/spec/files-v1.md`): sending one as chunks of a relay blob
//! and then a message naming it, and downloading one; both resume where
//! they stopped. The file is never whole in memory: a few chunks are.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};
use kith_content::Content;
use kith_content::kind::Kind;
use kith_content::show::Shown;
use kith_files::{Attachment, CHUNK, FileHasher, FileKey, PLAIN, padded_chunks, safe_name};
use kith_wire::relay::{BlobId, to_hex};
use rusqlite::{OptionalExtension, params};

use crate::error::{CoreError, Result};
use crate::ids::random;
use crate::runtime::Engine;
use crate::store::{self, ChannelRole, ms};
use crate::views::{MessageView, describe};

/// Chunks in flight at once, each way.
const IN_FLIGHT: usize = 8;
/// How long the relay keeps a file's blob (at most what it allows).
const BLOB_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// How far a transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done_bytes: u64,
    pub total_bytes: u64,
    /// Chunks already there when this run started (a resumed transfer).
    pub resumed_chunks: u32,
    /// Chunks this run moved.
    pub moved_chunks: u32,
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CoreError {
    let context = context.into();
    move |source| CoreError::Io { context, source }
}

fn file_error(name: &str) -> impl FnOnce(kith_files::FileError) -> CoreError + '_ {
    move |e| CoreError::File(format!("{name}: {e}"))
}

/// A media type from a file name's extension, for the receiver's preview.
fn guess_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("pdf") => "application/pdf",
        Some("txt" | "md") => "text/plain",
        Some("mp4") => "video/mp4",
        Some("mp3") => "audio/mpeg",
        Some("ogg" | "opus") => "audio/ogg",
        Some("zip") => "application/zip",
        _ => "application/octet-stream",
    }
}

/// Reads chunk `index`'s file bytes (fewer at the end, none past it).
fn read_piece(file: &std::fs::File, size: u64, index: u32) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt as _;
    let start = u64::from(index) * PLAIN as u64;
    let len = size.saturating_sub(start).min(PLAIN as u64);
    let mut piece = vec![0u8; usize::try_from(len).unwrap_or(0)];
    file.read_exact_at(&mut piece, start)?;
    Ok(piece)
}

/// Runs `work` on a blocking thread (the cipher, file reads), so that
/// several chunks are worked on at once beside the network.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| CoreError::File(format!("a worker thread failed: {e}")))?
}

/// Work done on every piece of a file in order (hashing, writing), on a
/// thread of its own so that it overlaps the network and the cipher.
struct InOrder<S> {
    pieces: tokio::sync::mpsc::Sender<Vec<u8>>,
    done: tokio::task::JoinHandle<Result<S>>,
}

impl<S: Send + 'static> InOrder<S> {
    /// Runs `first` on `state`, then `each` on every piece pushed.
    fn start(
        mut state: S,
        first: impl FnOnce(&mut S) -> Result<()> + Send + 'static,
        mut each: impl FnMut(&mut S, &[u8]) -> Result<()> + Send + 'static,
    ) -> Self {
        let (pieces, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(IN_FLIGHT);
        let done = tokio::task::spawn_blocking(move || {
            first(&mut state)?;
            while let Some(piece) = rx.blocking_recv() {
                each(&mut state, &piece)?;
            }
            Ok(state)
        });
        Self { pieces, done }
    }

    /// Hands on the next piece; a failure of the work is returned here.
    async fn push(&mut self, piece: Vec<u8>) -> Result<()> {
        if self.pieces.send(piece).await.is_ok() {
            return Ok(());
        }
        // The worker stopped: it failed, and says why.
        match (&mut self.done).await {
            Ok(Err(e)) => Err(e),
            Ok(Ok(_)) => Err(CoreError::File("a worker thread stopped".into())),
            Err(e) => Err(CoreError::File(format!("a worker thread failed: {e}"))),
        }
    }

    /// Waits for the work on every piece pushed, and returns the state.
    async fn finish(self) -> Result<S> {
        drop(self.pieces);
        self.done
            .await
            .map_err(|e| CoreError::File(format!("a worker thread failed: {e}")))?
    }
}

/// Syncs a download to disk while it goes on, so that the disk works
/// beside the network and the cipher and the sync before the rename finds
/// little left to write (a 1 GiB file otherwise waits seconds for it).
#[derive(Default)]
struct Flusher {
    unsynced: usize,
    running: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Flusher {
    /// Written bytes after which a sync starts in the background.
    const EVERY: usize = 64 << 20;

    fn wrote(&mut self, out: &std::fs::File, bytes: usize) -> Result<()> {
        self.unsynced += bytes;
        let idle = self.running.as_ref().is_none_or(|r| r.is_finished());
        if self.unsynced < Self::EVERY || !idle {
            return Ok(());
        }
        self.finish()?;
        let file = out.try_clone().map_err(io("syncing the partial file"))?;
        self.running = Some(std::thread::spawn(move || file.sync_data()));
        self.unsynced = 0;
        Ok(())
    }

    /// Waits for the sync running, if any.
    fn finish(&mut self) -> Result<()> {
        match self.running.take().map(std::thread::JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(io("syncing the partial file")(e)),
            Some(Err(_)) => Err(CoreError::File("a sync thread failed".into())),
        }
    }
}

/// The connection an upload records its progress on, its own so that the
/// chunks can move while the engine does other work (the daemon). Its
/// commits are not synced to disk (SQLite's `synchronous = NORMAL` in WAL
/// mode, for this connection only): a killed process loses none of them, a
/// power cut only the last few, and chunks sent again are taken by the
/// relay as the same bytes.
fn progress_db(home: &Path) -> Result<rusqlite::Connection> {
    let db = rusqlite::Connection::open(crate::home::db_path(home))?;
    db.pragma_update(None, "synchronous", "NORMAL")?;
    db.busy_timeout(Duration::from_secs(10))?;
    Ok(db)
}

/// How chunks reach the relay: over a WebSocket with the channel key bound
/// to it (no signature per chunk, relay.md §8) where that is safe and the
/// relay speaks WebSocket, else as signed HTTP requests (a CGI relay).
enum Putter {
    Bound {
        requester: kith_relay_client::Requester,
        key_ref: u32,
        _session: Box<kith_relay_client::Session>,
    },
    Signed(kith_relay_client::RelayClient),
}

impl Putter {
    async fn open(
        client: &kith_relay_client::RelayClient,
        key: &ed25519_dalek::SigningKey,
    ) -> Self {
        if client.binding_is_safe()
            && let Ok(session) = client.session().await
        {
            let requester = session.requester();
            if let Ok(key_ref) = requester.bind(key).await {
                return Self::Bound {
                    requester,
                    key_ref,
                    _session: Box::new(session),
                };
            }
        }
        Self::Signed(client.clone())
    }

    async fn put(
        &self,
        channel: &store::ChannelRow,
        blob_id: BlobId,
        index: u32,
        sealed: Vec<u8>,
    ) -> Result<()> {
        match self {
            Self::Bound {
                requester, key_ref, ..
            } => {
                requester
                    .blob_put_bound(*key_ref, channel.write_id, blob_id, index, sealed)
                    .await?
            }
            Self::Signed(client) => {
                client
                    .blob_put(&channel.key, channel.write_id, blob_id, index, &sealed)
                    .await?
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Upload {
    id: i64,
    relay_url: String,
    channel_id: i64,
    blob_id: [u8; 32],
    key: FileKey,
    chunk_count: u32,
    done: u32,
    expires: u32,
}

/// A file being sent: what the engine prepared (the upload recorded, the
/// relay and channel chosen). Its chunks move in [`FileSend::transfer`],
/// which needs no engine; [`Engine::finish_file`] then sends the message.
pub struct FileSend {
    conversation: String,
    name: String,
    display: String,
    canonical: String,
    caption: String,
    size: u64,
    file: std::sync::Arc<std::fs::File>,
    upload: Upload,
    client: kith_relay_client::RelayClient,
    channel: store::ChannelRow,
    db: rusqlite::Connection,
}

impl std::fmt::Debug for FileSend {
    // Keys stay out of it (the channel's and the file's).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSend")
            .field("conversation", &self.conversation)
            .field("name", &self.name)
            .field("size", &self.size)
            .field("chunks_done", &self.upload.done)
            .finish_non_exhaustive()
    }
}

/// A file whose chunks are all on the relay, hashed.
#[derive(Debug)]
pub struct FileSent {
    conversation: String,
    canonical: String,
    upload_id: i64,
    attachment: Attachment,
}

impl FileSend {
    /// Moves the chunks the relay does not have yet, a few at once,
    /// recording each; returns the file hashed. Needs no engine: the
    /// daemon runs it while the engine goes on with other work.
    pub async fn transfer(self, mut progress: impl FnMut(Progress)) -> Result<FileSent> {
        let Self {
            conversation,
            name,
            display,
            canonical,
            caption,
            size,
            file,
            mut upload,
            client,
            channel,
            db,
        } = self;
        let resumed = upload.done;
        // What was sent before is hashed again from the file, on the
        // hashing thread like the rest.
        let prefix = {
            let file = file.clone();
            let display = display.clone();
            move |hasher: &mut FileHasher| -> Result<()> {
                for i in 0..resumed {
                    hasher.update(
                        &read_piece(&file, size, i).map_err(io(format!("reading {display}")))?,
                    );
                }
                Ok(())
            }
        };
        let mut hashing = InOrder::start(FileHasher::new(), prefix, |hasher, piece| {
            hasher.update(piece);
            Ok(())
        });
        let total = size;
        let done_bytes = |chunks: u32| (u64::from(chunks) * PLAIN as u64).min(total);
        progress(Progress {
            done_bytes: done_bytes(resumed),
            total_bytes: total,
            resumed_chunks: resumed,
            moved_chunks: 0,
        });
        let putter = Putter::open(&client, &channel.key).await;
        let blob_id = BlobId(upload.blob_id);
        let count = upload.chunk_count;
        let mut puts = stream::iter(resumed..count)
            .map(|i| {
                let (putter, channel, file, key, display) = (
                    &putter,
                    &channel,
                    file.clone(),
                    upload.key.clone(),
                    display.clone(),
                );
                async move {
                    // Reading and sealing run off the I/O thread, several
                    // chunks at once.
                    let (piece, sealed) = off_thread(move || {
                        let piece =
                            read_piece(&file, size, i).map_err(io(format!("reading {display}")))?;
                        let sealed = key
                            .seal_chunk(i, count, &piece)
                            .map_err(file_error(&display))?;
                        Ok((piece, sealed))
                    })
                    .await?;
                    putter.put(channel, blob_id, i, sealed).await?;
                    Ok::<_, CoreError>(piece)
                }
            })
            .buffered(IN_FLIGHT);
        while let Some(piece) = puts.try_next().await? {
            hashing.push(piece).await?;
            upload.done += 1;
            db.execute(
                "UPDATE uploads SET done = ?2 WHERE id = ?1",
                params![upload.id, upload.done],
            )?;
            progress(Progress {
                done_bytes: done_bytes(upload.done),
                total_bytes: total,
                resumed_chunks: resumed,
                moved_chunks: upload.done - resumed,
            });
        }
        drop(puts);
        let hasher = hashing.finish().await?;
        let attachment = Attachment {
            relay_url: upload.relay_url.clone(),
            blob_id: upload.blob_id,
            key: upload.key.clone(),
            size,
            hash: hasher.finish(),
            content_type: guess_type(&name).to_string(),
            filename: name,
            caption,
            expires: upload.expires,
        };
        Ok(FileSent {
            conversation,
            canonical,
            upload_id: upload.id,
            attachment,
        })
    }
}

impl Engine {
    /// Sends the file at `path` (files-v1.md): encrypted with a fresh key,
    /// padded to a bucket, stored as a blob on the conversation's relay a
    /// few chunks at a time, then named by a message. Run again after an
    /// interruption, it sends only the chunks the relay does not have.
    pub async fn send_file(
        &mut self,
        conv: &str,
        path: &Path,
        caption: Option<&str>,
        progress: impl FnMut(Progress),
    ) -> Result<MessageView> {
        let send = self.prepare_file(conv, path, caption).await?;
        let sent = send.transfer(progress).await?;
        self.finish_file(sent).await
    }

    /// The first part of [`Engine::send_file`]: the file opened, its
    /// upload found (to resume) or started on the relay.
    pub async fn prepare_file(
        &mut self,
        conv: &str,
        path: &Path,
        caption: Option<&str>,
    ) -> Result<FileSend> {
        let id = self.resolve(conv)?;
        self.check_sendable(&id)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let display = path.display().to_string();
        let file = std::fs::File::open(path).map_err(io(format!("cannot open {display}")))?;
        let meta = file
            .metadata()
            .map_err(io(format!("cannot read {display}")))?;
        if !meta.is_file() {
            return Err(CoreError::File(format!("{display} is not a file")));
        }
        let size = meta.len();
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, crate::config::millis);
        let chunk_count = padded_chunks(size).map_err(file_error(&display))?;
        let caption = caption.unwrap_or_default();
        let canonical = std::fs::canonicalize(path)
            .map_err(io(format!("cannot read {display}")))?
            .to_string_lossy()
            .into_owned();
        let upload = match self.find_upload(&id, &canonical, size, modified)? {
            Some(u) => u,
            None => {
                self.start_upload(&id, &canonical, size, modified, chunk_count, caption)
                    .await?
            }
        };
        let client = self.relay(&upload.relay_url)?;
        let channel = store::channel(&self.db, upload.channel_id)?
            .ok_or_else(|| CoreError::File("the conversation's channel is gone".into()))?;
        Ok(FileSend {
            conversation: id,
            name,
            display,
            canonical,
            caption: caption.to_string(),
            size,
            file: std::sync::Arc::new(file),
            upload,
            client,
            channel,
            db: progress_db(&self.home)?,
        })
    }

    /// The last part of [`Engine::send_file`]: the message that names the
    /// file, sent once every chunk is on the relay.
    pub async fn finish_file(&mut self, sent: FileSent) -> Result<MessageView> {
        let view = self
            .send_attachment(&sent.conversation, &sent.attachment, Some(&sent.canonical))
            .await?;
        self.db
            .execute("DELETE FROM uploads WHERE id = ?1", [sent.upload_id])?;
        Ok(view)
    }

    fn find_upload(
        &self,
        id: &str,
        path: &str,
        size: u64,
        modified: u64,
    ) -> Result<Option<Upload>> {
        let row = self
            .db
            .query_row(
                "SELECT id, relay_url, channel_id, blob_id, file_key, nonce, chunk_count, done, expires \
                 FROM uploads WHERE conversation_id = ?1 AND path = ?2 AND size = ?3 AND modified = ?4",
                params![id, path, ms(size), ms(modified)],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                        r.get::<_, Vec<u8>>(4)?,
                        r.get::<_, Vec<u8>>(5)?,
                        r.get::<_, u32>(6)?,
                        r.get::<_, u32>(7)?,
                        r.get::<_, u32>(8)?,
                    ))
                },
            )
            .optional()?;
        let Some((row_id, relay_url, channel_id, blob_id, key, nonce, chunk_count, done, expires)) =
            row
        else {
            return Ok(None);
        };
        // A blob the relay dropped (expired) cannot be resumed.
        if u64::from(expires) * 1000 <= self.now() {
            self.db
                .execute("DELETE FROM uploads WHERE id = ?1", [row_id])?;
            return Ok(None);
        }
        Ok(Some(Upload {
            id: row_id,
            relay_url,
            channel_id,
            blob_id: blob_id
                .try_into()
                .map_err(|_| CoreError::Corrupt("an upload's blob id".into()))?,
            key: FileKey::from_parts(&key, &nonce)
                .map_err(|e| CoreError::Corrupt(e.to_string()))?,
            chunk_count,
            done,
            expires,
        }))
    }

    /// Reserves the blob on the conversation's relay (refused there at
    /// once if it cannot fit) and records the upload.
    async fn start_upload(
        &mut self,
        id: &str,
        path: &str,
        size: u64,
        modified: u64,
        chunk_count: u32,
        caption: &str,
    ) -> Result<Upload> {
        let channel = store::channels_with_role(&self.db, id, ChannelRole::Conv)?
            .into_iter()
            .find(|c| !self.unreachable.contains(&c.relay_url))
            .ok_or_else(|| CoreError::File("no relay of this conversation is reachable".into()))?;
        let client = self.relay(&channel.relay_url)?;
        let max_ttl = client
            .cached_info()
            .await
            .map(|i| Duration::from_secs(u64::from(i.limits.max_blob_ttl_secs)))
            .unwrap_or(BLOB_TTL);
        let created = client
            .blob_create(
                &channel.key,
                channel.write_id,
                CHUNK,
                chunk_count,
                Some(BLOB_TTL.min(max_ttl)),
                None,
            )
            .await?;
        let key = FileKey::generate().map_err(|e| CoreError::Randomness(e.to_string()))?;
        let expires = u32::try_from(created.expires_at_ms / 1000).unwrap_or(u32::MAX);
        self.db.execute(
            "INSERT INTO uploads (conversation_id, path, size, modified, relay_url, channel_id, blob_id, file_key, nonce, \
                                  chunk_count, caption, expires, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                id,
                path,
                ms(size),
                ms(modified),
                channel.relay_url,
                channel.id,
                created.blob_id.0,
                key.key().as_slice(),
                key.nonce().as_slice(),
                chunk_count,
                caption,
                expires,
                ms(self.now())
            ],
        )?;
        Ok(Upload {
            id: self.db.last_insert_rowid(),
            relay_url: channel.relay_url,
            channel_id: channel.id,
            blob_id: created.blob_id.0,
            key,
            chunk_count,
            done: 0,
            expires,
        })
    }

    /// Sends the message naming a stored file (files-v1.md §4).
    async fn send_attachment(
        &mut self,
        id: &str,
        attachment: &Attachment,
        path: Option<&str>,
    ) -> Result<MessageView> {
        let described = describe(attachment);
        let part = attachment.to_part();
        let kith_content::PartBody::External(external) = &part.body else {
            return Err(CoreError::Corrupt("an attachment's part".into()));
        };
        let external = external.clone();
        let content = Content::new(random()?, part);
        let fallback = format!("{described} (this kith cannot download files)");
        let shown = Shown {
            text: described,
            subject: None,
        };
        let mut view = self
            .send_content(
                id,
                content,
                false,
                fallback,
                Kind::Attachment(external),
                shown,
            )
            .await?;
        if let Some(path) = path {
            self.db.execute(
                "UPDATE files SET path = ?3 WHERE conversation_id = ?1 AND message_id = ?2",
                params![id, kith_wire::relay::from_hex_vec(&view.id), path],
            )?;
            if let Some(file) = &mut view.file {
                file.saved = Some(path.to_string());
            }
        }
        Ok(view)
    }

    /// Downloads the file of message `message` into `dir`: every chunk
    /// fetched, checked and decrypted, the whole checked against its hash,
    /// written to a temporary file and renamed into place. Run again after
    /// an interruption, it fetches only what it does not have.
    pub async fn download(
        &mut self,
        conv: &str,
        message: &str,
        dir: &Path,
        progress: impl FnMut(Progress),
    ) -> Result<PathBuf> {
        let id = self.resolve(conv)?;
        let message_id = self.find_message(&id, message)?.message_id;
        self.download_file(&id, &message_id, dir, progress).await
    }

    /// Files in a conversation of at most `max` bytes are downloaded as
    /// they arrive, into [`Engine::downloads_dir`] (files-v1.md §8);
    /// `None` turns that off.
    pub fn set_auto_download(&mut self, conv: &str, max: Option<u64>) -> Result<()> {
        let id = self.resolve(conv)?;
        self.db.execute(
            "UPDATE conversations SET auto_download_max = ?2 WHERE id = ?1",
            params![id, max.map(ms)],
        )?;
        Ok(())
    }

    /// Where automatic downloads are saved: `downloads` in the profile.
    pub fn downloads_dir(&self) -> PathBuf {
        self.home.join("downloads")
    }

    /// Downloads the files that arrived in conversations with automatic
    /// download, up to each one's size; returns one line per failure. A
    /// file refused (altered, expired) is not tried again; one whose relay
    /// could not be reached is, next time.
    pub(crate) async fn auto_download(&mut self) -> Vec<String> {
        let due: rusqlite::Result<Vec<(String, Vec<u8>, String)>> = self
            .db
            .prepare(
                "SELECT f.conversation_id, f.message_id, f.filename FROM files f \
                 JOIN conversations c ON c.id = f.conversation_id \
                 WHERE c.auto_download_max IS NOT NULL AND f.size <= c.auto_download_max \
                   AND f.path IS NULL AND f.downloaded = 0 AND f.gone = 0 AND f.auto_tried = 0",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            });
        let due = match due {
            Ok(due) => due,
            Err(e) => return vec![format!("automatic downloads: {e}")],
        };
        let dir = self.downloads_dir();
        if !due.is_empty()
            && let Err(e) = std::fs::create_dir_all(&dir)
        {
            return vec![format!(
                "automatic downloads: cannot create {}: {e}",
                dir.display()
            )];
        }
        let mut errors = Vec::new();
        for (id, message_id, filename) in due {
            match self.download_file(&id, &message_id, &dir, |_| {}).await {
                Ok(_) => {}
                Err(e) => {
                    if matches!(e, CoreError::File(_))
                        && let Err(e) = self.db.execute(
                            "UPDATE files SET auto_tried = 1 \
                             WHERE conversation_id = ?1 AND message_id = ?2",
                            params![id, message_id],
                        )
                    {
                        errors.push(format!("automatic downloads: {e}"));
                    }
                    errors.push(format!("downloading {}: {e}", safe_name(&filename)));
                }
            }
        }
        errors
    }

    async fn download_file(
        &mut self,
        id: &str,
        message_id: &[u8],
        dir: &Path,
        progress: impl FnMut(Progress),
    ) -> Result<PathBuf> {
        let fetch = self.prepare_fetch(id, message_id, dir)?;
        let fetched = fetch.fetch(progress).await?;
        self.finish_download(fetched)
    }

    /// The first part of [`Engine::download`]: what the message names,
    /// and the relay it is on.
    pub fn prepare_download(&mut self, conv: &str, message: &str, dir: &Path) -> Result<FileFetch> {
        let id = self.resolve(conv)?;
        let message_id = self.find_message(&id, message)?.message_id;
        self.prepare_fetch(&id, &message_id, dir)
    }

    fn prepare_fetch(&mut self, id: &str, message_id: &[u8], dir: &Path) -> Result<FileFetch> {
        let attachment = store::attachment(&self.db, id, message_id)?.ok_or_else(|| {
            CoreError::NoSuchMessage(format!("{} (it has no file)", to_hex(message_id)))
        })?;
        let client = self.relay(&attachment.relay_url)?;
        Ok(FileFetch {
            conversation: id.to_string(),
            message_id: message_id.to_vec(),
            dir: dir.to_path_buf(),
            attachment,
            client,
        })
    }

    /// The last part of [`Engine::download`]: the copy recorded as this
    /// user's (previews, deletion with the message).
    pub fn finish_download(&mut self, fetched: FileFetched) -> Result<PathBuf> {
        self.db.execute(
            "UPDATE files SET path = ?3, downloaded = 1 WHERE conversation_id = ?1 AND message_id = ?2",
            params![
                fetched.conversation,
                fetched.message_id,
                fetched.path.to_string_lossy()
            ],
        )?;
        Ok(fetched.path)
    }

    /// Removes the copies kith downloaded of files whose messages were
    /// deleted for everyone or disappeared (files-v1.md §7). A file a
    /// user sent from is never touched.
    pub(crate) fn remove_gone_copies(&mut self) -> Result<()> {
        let copies: Vec<(String, Vec<u8>, String)> = self
            .db
            .prepare(
                "SELECT conversation_id, message_id, path FROM files \
                 WHERE gone = 1 AND downloaded = 1 AND path IS NOT NULL",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (conv, message_id, path) in copies {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(format!("removing {path}"))(e)),
            }
            self.db.execute(
                "UPDATE files SET downloaded = 0, path = NULL WHERE conversation_id = ?1 AND message_id = ?2",
                params![conv, message_id],
            )?;
        }
        Ok(())
    }

    /// Deletes the blobs of gone files from their relays, then forgets
    /// them. Best effort: any member may (they all write to the channel);
    /// a relay that cannot be reached lets the blob expire.
    pub(crate) async fn clean_files(&mut self) -> Result<()> {
        self.remove_gone_copies()?;
        let gone: Vec<(String, Vec<u8>, String, Vec<u8>)> = self
            .db
            .prepare(
                "SELECT conversation_id, message_id, relay_url, blob_id FROM files WHERE gone = 1",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (conv, message_id, relay_url, blob_id) in gone {
            let channel = store::channels_with_role(&self.db, &conv, ChannelRole::Conv)?
                .into_iter()
                .find(|c| c.relay_url.trim_end_matches('/') == relay_url.trim_end_matches('/'));
            if let (Some(channel), Ok(blob_id)) = (channel, <[u8; 32]>::try_from(blob_id)) {
                let client = self.relay(&channel.relay_url)?;
                let _ = client
                    .blob_delete(&channel.key, channel.write_id, BlobId(blob_id))
                    .await;
            }
            self.db.execute(
                "DELETE FROM files WHERE conversation_id = ?1 AND message_id = ?2",
                params![conv, message_id],
            )?;
        }
        Ok(())
    }
}

/// `name`, or `name (2)`, … : the first that does not exist in `dir`.
fn free_name(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, format!(".{e}")),
        _ => (name, String::new()),
    };
    (2..)
        .map(|n| dir.join(format!("{stem} ({n}){ext}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// A file being downloaded: what the message names and its relay. Its
/// chunks move in [`FileFetch::fetch`], which needs no engine.
pub struct FileFetch {
    conversation: String,
    message_id: Vec<u8>,
    dir: PathBuf,
    attachment: Attachment,
    client: kith_relay_client::RelayClient,
}

impl std::fmt::Debug for FileFetch {
    // The file's key stays out of it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileFetch")
            .field("conversation", &self.conversation)
            .field("size", &self.attachment.size)
            .finish_non_exhaustive()
    }
}

/// A file downloaded, checked and saved.
#[derive(Debug)]
pub struct FileFetched {
    conversation: String,
    message_id: Vec<u8>,
    path: PathBuf,
}

impl FileFetch {
    /// Fetches every chunk the partial file does not hold, checks and
    /// decrypts each, checks the whole against its hash, and renames the
    /// file into place; a file that does not check out is removed.
    pub async fn fetch(self, mut progress: impl FnMut(Progress)) -> Result<FileFetched> {
        let Self {
            conversation,
            message_id,
            dir,
            attachment,
            client,
        } = self;
        let dir = dir.as_path();
        let name = safe_name(&attachment.filename);

        let count = attachment.chunk_count().map_err(file_error(&name))?;
        let temp = dir.join(format!(
            ".{name}.{}.kith-part",
            to_hex(&attachment.blob_id[..8])
        ));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&temp)
            .map_err(io(format!("cannot write in {}", dir.display())))?;
        // Only whole chunks count as done; what they hold was checked.
        let have = out
            .metadata()
            .map_err(io("reading the partial file"))?
            .len();
        let size = attachment.size;
        let resumed = u32::try_from(have / PLAIN as u64).unwrap_or(0).min(count);
        let kept = (u64::from(resumed) * PLAIN as u64).min(size);
        out.set_len(kept).map_err(io("resuming the partial file"))?;
        progress(Progress {
            done_bytes: kept,
            total_bytes: size,
            resumed_chunks: resumed,
            moved_chunks: 0,
        });
        // The writing thread hashes what is already there, then writes and
        // hashes every chunk in order.
        let temp_shown = temp.display().to_string();
        let mut writing = InOrder::start(
            (out, FileHasher::new(), Flusher::default()),
            move |(out, hasher, _)| {
                std::io::copy(&mut (&*out).take(kept), hasher)
                    .map_err(io("resuming the partial file"))?;
                out.seek(SeekFrom::Start(kept))
                    .map_err(io("resuming the partial file"))?;
                Ok(())
            },
            move |(out, hasher, flusher), bytes| {
                out.write_all(bytes)
                    .map_err(io(format!("writing {temp_shown}")))?;
                hasher.update(bytes);
                flusher.wrote(out, bytes.len())
            },
        );
        let blob_id = BlobId(attachment.blob_id);
        // Every chunk is fetched, padding too: the relay sees the bucket,
        // never which chunks hold the file (files-v1.md §6).
        let mut gets = stream::iter(resumed..count)
            .map(|i| {
                let (client, key, name) = (&client, attachment.key.clone(), name.clone());
                async move {
                    let chunk = client.blob_get(blob_id, i).await.map_err(|e| {
                        if e.code() == Some(kith_wire::relay::response::ErrorCode::NOT_FOUND) {
                            CoreError::File(format!(
                                "{name}: the relay no longer has it (expired or deleted)"
                            ))
                        } else {
                            e.into()
                        }
                    })?;
                    if chunk.chunk_count != count {
                        return Err(CoreError::File(format!(
                            "{name}: the relay's copy is not the file the message names"
                        )));
                    }
                    // Decryption runs off the I/O thread, several chunks at
                    // once.
                    off_thread(move || {
                        key.open_chunk(i, count, &chunk.data)
                            .map_err(file_error(&name))
                    })
                    .await
                }
            })
            .buffered(IN_FLIGHT);
        let mut written = kept;
        let mut moved = 0;
        while let Some(mut plain) = gets.try_next().await? {
            let take = usize::try_from(size.saturating_sub(written).min(PLAIN as u64)).unwrap_or(0);
            plain.truncate(take);
            if !plain.is_empty() {
                writing.push(plain).await?;
            }
            written += take as u64;
            moved += 1;
            progress(Progress {
                done_bytes: written,
                total_bytes: size,
                resumed_chunks: resumed,
                moved_chunks: moved,
            });
        }
        drop(gets);
        let (out, hasher, mut flusher) = writing.finish().await?;
        flusher.finish()?;
        let hash = hasher.finish();
        if hash != attachment.hash {
            drop(out);
            let _ = std::fs::remove_file(&temp);
            return Err(CoreError::File(format!(
                "{name}: the downloaded bytes do not match the file's hash; nothing was saved"
            )));
        }
        out.sync_all()
            .map_err(io(format!("writing {}", temp.display())))?;
        drop(out);
        let target = free_name(dir, &name);
        std::fs::rename(&temp, &target).map_err(io(format!("saving {}", target.display())))?;
        Ok(FileFetched {
            conversation,
            message_id,
            path: target,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_do_not_overwrite_and_sizes_read_well() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(free_name(dir.path(), "a.txt"), dir.path().join("a.txt"));
        std::fs::write(dir.path().join("a.txt"), b"x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(free_name(dir.path(), "a.txt"), dir.path().join("a (2).txt"));
        assert_eq!(guess_type("X.JPG"), "image/jpeg");
    }
}
