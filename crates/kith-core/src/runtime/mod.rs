//! The runtime: the [`Engine`] owns the profile (its lock and database),
//! does all network I/O (relays, WebSockets), and drives the conversation
//! types of [`crate::conv`]. One module per group of user operations.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use kith_crypto::mls::Session;
use kith_relay_client::{RelayClient, Trust};
use rusqlite::{Connection, OptionalExtension, params};

use crate::config::Config;
use crate::error::{CoreError, Result, check_name};
use crate::home::ProfileLock;
use crate::store::{load_session, ms};
use crate::views::{ConversationView, SyncReport};
use crate::{home, store};

pub(crate) mod addresses;
mod content;
mod conversations;
pub(crate) mod directories;
pub(crate) mod events;
pub(crate) mod files;
mod groups;
mod introductions;
mod moves;
pub(crate) mod personas;
pub(crate) mod sync;
pub(crate) mod watch;

/// A profile: its store and the relays it talks to.
#[derive(Debug)]
pub struct Engine {
    home: PathBuf,
    pub(crate) db: Connection,
    pub(crate) lock: ProfileLock,
    pub(crate) config: Config,
    /// Built on the first connection: a bad CA file must not stop `list`.
    trust: Option<Trust>,
    relays: HashMap<String, RelayClient>,
    /// Capability keys of removed group members, revoked after the sync
    /// that processed their removal: (group, key).
    pub(crate) revocations: Vec<(String, [u8; 32])>,
    /// What channels read outside a sync brought (catching up before a
    /// send): stored already, and reported by the next sync.
    pub(crate) carry: SyncReport,
    /// Relays `watch` knows to be down: skipped (quietly) by syncs and the
    /// outbox until they answer again.
    pub(crate) unreachable: BTreeSet<String>,
    /// This engine runs `watch` (it does not poke itself).
    pub(crate) watching: bool,
    /// The database's change count when opened: a process that changed
    /// nothing does not wake a `watch`.
    changes_at_open: u64,
}

impl Drop for Engine {
    fn drop(&mut self) {
        if !self.watching && self.db.total_changes() > self.changes_at_open {
            // Whatever this process changed, a `watch` of the profile in
            // another one picks up now.
            home::poke_watch(&self.home);
        }
    }
}

/// The relay's base URL as stored and put in links: no trailing slash.
pub(crate) fn base_url(client: &RelayClient) -> String {
    client.url().as_str().trim_end_matches('/').to_string()
}

impl Engine {
    /// Creates a profile in `home`. With a relay, the relay is checked and
    /// becomes where this user's invitations and channels live.
    pub async fn init(
        home: &Path,
        name: &str,
        relay: Option<&str>,
        config: Config,
    ) -> Result<Self> {
        check_name(name)?;
        home::create(home)?;
        let lock = ProfileLock::acquire(home, config.lock_wait).await?;
        home::create_db_file(home)?;
        let db = store::open(&home::db_path(home))?;
        if store::profile(&db)?.is_some() {
            return Err(CoreError::ProfileExists(home.display().to_string()));
        }
        let mut engine = Self::with(home, db, lock, config);
        let relay = match relay {
            Some(url) => {
                let client = engine.relay(url)?;
                client.info().await?;
                Some(client.url().as_str().trim_end_matches('/').to_string())
            }
            None => None,
        };
        engine.db.execute(
            "INSERT INTO profile (id, name, relay_url, created_at) VALUES (1, ?1, ?2, ?3)",
            params![name, relay, ms(engine.now())],
        )?;
        Ok(engine)
    }

    /// Opens the profile in `home`, waiting up to `config.lock_wait` for
    /// another process that has it open.
    pub async fn open(home: &Path, config: Config) -> Result<Self> {
        let path = home::db_path(home);
        if !path.exists() {
            return Err(CoreError::NoProfile(home.display().to_string()));
        }
        let lock = ProfileLock::acquire(home, config.lock_wait).await?;
        // Profiles made before files were private become private now.
        home::make_private(home)?;
        let db = store::open(&path)?;
        if store::profile(&db)?.is_none() {
            return Err(CoreError::NoProfile(home.display().to_string()));
        }
        Ok(Self::with(home, db, lock, config))
    }

    fn with(home: &Path, db: Connection, lock: ProfileLock, config: Config) -> Self {
        Self {
            changes_at_open: db.total_changes(),
            home: home.to_path_buf(),
            db,
            lock,
            config,
            trust: None,
            relays: HashMap::new(),
            revocations: Vec::new(),
            carry: SyncReport::default(),
            unreachable: BTreeSet::new(),
            watching: false,
        }
    }

    /// The time now, by the engine's clock.
    pub(crate) fn now(&self) -> u64 {
        self.config.now_ms()
    }

    /// What a page of messages is handled with.
    pub(crate) fn moment(&self, now: u64) -> crate::conv::Moment {
        crate::conv::Moment {
            now,
            drain: crate::config::millis(self.config.drain_limit),
            caps: std::sync::Arc::new(self.config.capabilities.clone()),
        }
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    pub(crate) fn profile(&self) -> Result<store::Profile> {
        store::profile(&self.db)?
            .ok_or_else(|| CoreError::NoProfile(self.home.display().to_string()))
    }

    pub(crate) fn relay(&mut self, url: &str) -> Result<RelayClient> {
        let key = url.trim_end_matches('/').to_string();
        if let Some(c) = self.relays.get(&key) {
            return Ok(c.clone());
        }
        let trust = match &self.trust {
            Some(trust) => trust.clone(),
            None => {
                let trust = Trust::with_ca_file(self.config.ca_file.as_deref())?;
                self.trust = Some(trust.clone());
                trust
            }
        };
        let client = RelayClient::with_source(&key, trust, self.config.source_address)?;
        self.relays.insert(key, client.clone());
        Ok(client)
    }

    pub(crate) fn load(&self, id: &str) -> Result<Session> {
        load_session(&self.db, id)
    }

    pub(crate) fn find_by_id(&self, id: &str) -> Result<Option<String>> {
        Ok(self
            .db
            .query_row("SELECT id FROM conversations WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// A conversation by id, unique id prefix, or name.
    pub fn resolve(&self, conv: &str) -> Result<String> {
        // Addresses are conversations only to the sync (AddressV1).
        let exact: Option<String> = self
            .db
            .query_row(
                "SELECT id FROM conversations WHERE id = ?1 AND kind != 'address'",
                [conv],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = exact {
            return Ok(id);
        }
        let mut stmt = self.db.prepare(
            "SELECT id FROM conversations WHERE kind != 'address' AND id LIKE ?1 || '%' ESCAPE '\\' \
             UNION SELECT id FROM conversations WHERE kind != 'address' \
               AND lower(COALESCE(local_name, contact_name)) = lower(?2)",
        )?;
        let escaped = store::like_prefix(conv);
        let ids: Vec<String> = stmt
            .query_map(params![escaped, conv], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        match ids.as_slice() {
            [] => Err(CoreError::NoSuchConversation(conv.to_string())),
            [one] => Ok(one.clone()),
            many => Err(CoreError::Ambiguous(conv.to_string(), many.join(", "))),
        }
    }

    pub(crate) fn view(&self, id: &str) -> Result<ConversationView> {
        self.list()?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| CoreError::NoSuchConversation(id.to_string()))
    }
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::net::UnixDatagram;

    use super::*;

    /// A `watch` is woken by a process that changed the profile, not by
    /// one that only looked at it.
    #[tokio::test]
    async fn only_a_change_wakes_a_watch() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("alex");
        drop(
            Engine::init(&home, "Alex", None, Config::default())
                .await
                .unwrap(),
        );
        let watch = UnixDatagram::bind(home::watch_socket(&home)).unwrap();
        watch.set_nonblocking(true).unwrap();
        let woken = || watch.recv(&mut [0; 8]).is_ok();

        let engine = Engine::open(&home, Config::default()).await.unwrap();
        engine.list().unwrap();
        drop(engine);
        assert!(!woken());

        let engine = Engine::open(&home, Config::default()).await.unwrap();
        engine
            .db
            .execute("UPDATE profile SET name = 'Alex B'", [])
            .unwrap();
        drop(engine);
        assert!(woken());
    }
}
