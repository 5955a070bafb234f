//! The engine: every user operation, on top of the store, the relay client
//! and kith-crypto. Specs: `docs/spec/inbox-v1.md`, `docs/spec/pair-v1.md`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use kith_crypto::mls::{
    GroupSnapshot, IdentityKey, Incoming, PendingKeyPackage, Session, key_package,
};
use kith_crypto::padding::{pad, unpad};
use kith_crypto::seal::SealKey;
use kith_relay_client::{
    ChannelOptions, ClientError, RelayClient, Trust, generate_key, public_key,
};
use kith_wire::Codec;
use kith_wire::conv::{ChannelGrant, Envelope, GroupInvitation, Invitation, PairFrame};
use kith_wire::relay::response::{ErrorCode, StoredMessage};
use kith_wire::relay::{KeyGrant, Rights, SIZE_BUCKETS, WriteId, to_hex};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::config::{Config, millis};
use crate::error::{CoreError, OpenError, Result, check_len, refused};
use crate::group::{GROUP_INVITATION_CONTEXT, GroupOutcome, apply_group, join_from_pair};
use crate::home::{self, ProfileLock};
use crate::link::InviteLink;
use crate::store::{self, ChannelRole, ChannelRow, ConversationKind, ConversationState, ms};

/// The context string sealed invitations are bound to (inbox-v1.md §2).
pub const INVITATION_CONTEXT: &[u8] = b"kith invitation v1";
/// How long an invitation can be accepted.
pub const INVITATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Messages asked for per read: the relay's default cap, so a page is one
/// request and one local commit.
const READ_BATCH: u16 = 256;
/// Times a group entry is tried at a channel's head before it waits for
/// the next sync (others kept getting there first).
const HEAD_ATTEMPTS: usize = 8;
/// Rounds of a sync that read channels which appeared in the round before.
const SYNC_ROUNDS: usize = 4;

/// A conversation as `kith list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationView {
    pub id: String,
    /// `pair` or `group`.
    pub kind: String,
    pub name: String,
    /// `invited` (waiting for the link to be accepted), `joining` (a group
    /// link accepted, waiting for an admin), `active`, `leaving` (left a
    /// group; waiting for a commit that takes this member out), or `closed`
    /// (left or removed from a group).
    pub state: String,
    pub unread: u64,
    pub last_activity: u64,
    /// The name this user shows to the contact.
    pub my_name: String,
    pub integrity_events: u64,
    /// The contact who introduced this one (the name they showed you).
    pub introduced_by: Option<String>,
    /// You blocked this contact.
    pub blocked: bool,
}

/// One message as `kith read` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    pub id: String,
    pub conversation: String,
    /// `me`, or the contact's name.
    pub from: String,
    pub outgoing: bool,
    pub sent_at: u64,
    pub received_at: u64,
    /// The text, or for a kind of content this version does not know, the
    /// plain text its sender gave for it.
    pub text: String,
    /// The sender marked the message as one only a newer kith can show as
    /// meant: `text` is its fallback.
    pub needs_newer: bool,
}

/// A message that failed authentication (or could not be read) and was
/// not shown.
#[derive(Debug, Clone, Serialize)]
pub struct IntegrityEvent {
    pub conversation: String,
    pub at: u64,
    pub detail: String,
}

/// `kith info`: what identifies a conversation, for checking it with the
/// contact in person, and where it lives.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationInfo {
    pub conversation: ConversationView,
    /// This user's identity key in this conversation (hex).
    pub my_identity: String,
    /// The other members' identity keys (hex).
    pub member_identities: Vec<String>,
    /// The same for both members of a 1:1 conversation: compare it in
    /// person to be sure nobody (an introducer included) stands between.
    pub safety_number: Option<String>,
    pub channels: Vec<ChannelInfo>,
}

/// One channel of a conversation.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelInfo {
    pub relay_url: String,
    pub write_id: String,
    pub read_id: String,
    /// This user's capability key on it (public, hex).
    pub my_key: String,
    /// Hosted (created) by this user.
    pub hosted: bool,
    /// `conv`, `retiring` (being drained after a move), `inbox`, `inbox-done`.
    pub role: String,
    pub preferred: bool,
}

/// Something that happened to a conversation, worth a line.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub conversation: String,
    pub text: String,
}

/// A new invitation.
#[derive(Debug, Clone, Serialize)]
pub struct Invite {
    /// The `kith:` link.
    pub link: String,
    /// The same link for a browser or another app.
    pub web_link: String,
    pub conversation: String,
    pub expires_at: u64,
}

/// What a sync brought.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SyncReport {
    pub messages: Vec<MessageView>,
    /// Conversations whose invitation was accepted during this sync.
    pub connected: Vec<ConversationView>,
    pub integrity_events: Vec<IntegrityEvent>,
    /// Things to tell the user that are neither messages nor attacks (such
    /// as being removed from a group).
    pub notices: Vec<Notice>,
    /// Introductions offered to this user, or answered, during this sync.
    pub introductions: Vec<crate::intro::IntroductionView>,
    /// Relays or channels that could not be synced this time.
    pub errors: Vec<String>,
    /// Groups a contact added this user to (shown in `connected`).
    #[serde(skip)]
    pub(crate) joined_groups: Vec<String>,
}

impl SyncReport {
    /// Whether there is nothing to tell.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
            && self.connected.is_empty()
            && self.integrity_events.is_empty()
            && self.introductions.is_empty()
            && self.notices.is_empty()
            && self.errors.is_empty()
    }

    /// Adds what another report holds (earlier events first).
    pub(crate) fn absorb(&mut self, mut earlier: SyncReport) {
        earlier.messages.append(&mut self.messages);
        earlier.connected.append(&mut self.connected);
        earlier.integrity_events.append(&mut self.integrity_events);
        earlier.notices.append(&mut self.notices);
        earlier.introductions.append(&mut self.introductions);
        earlier.errors.append(&mut self.errors);
        earlier.joined_groups.append(&mut self.joined_groups);
        *self = earlier;
    }
}

/// The result of accepting an invitation.
#[derive(Debug, Serialize)]
pub struct Accepted {
    pub conversation: ConversationView,
    /// Things that did not work but did not stop the acceptance.
    pub warnings: Vec<String>,
}

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
}

impl Drop for Engine {
    fn drop(&mut self) {
        if !self.watching {
            // Whatever this process changed, a `watch` of the profile in
            // another one picks up now.
            home::poke_watch(&self.home);
        }
    }
}

/// A name shown to others (a profile's, a conversation's, a group's).
pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(CoreError::Empty("name"));
    }
    check_len("name", name, kith_wire::conv::MAX_NAME)
}

pub(crate) fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| CoreError::Randomness(e.to_string()))?;
    Ok(b)
}

/// The relay's base URL as stored and put in links: no trailing slash.
pub(crate) fn base_url(client: &RelayClient) -> String {
    client.url().as_str().trim_end_matches('/').to_string()
}

/// A channel this user created on its relay: the owner key it keeps, and
/// the grant (channel and READ|WRITE key) it gives the contact.
pub(crate) struct SharedChannel {
    pub(crate) owner: SigningKey,
    pub(crate) grant: ChannelGrant,
}

pub(crate) fn insert_channel(
    db: &Connection,
    conv: &str,
    channel: &ChannelGrant,
    key: &[u8; 32],
    owner: bool,
    preferred: bool,
    now: u64,
) -> Result<()> {
    db.execute(
        "INSERT INTO channels (conversation_id, relay_url, relay_id, write_id, read_id, key, owner, preferred, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            conv,
            channel.relay_url,
            channel.relay_id.0,
            channel.write_id.0,
            channel.read_id.0,
            key,
            owner,
            preferred,
            ms(now)
        ],
    )?;
    Ok(())
}

/// A connected 1:1 conversation about to be stored.
pub(crate) struct NewPair<'a> {
    pub(crate) id: &'a str,
    /// The name the contact shows (from the invitation, or the introducer).
    pub(crate) contact_name: &'a str,
    pub(crate) my_name: &'a str,
    pub(crate) identity: &'a IdentityKey,
    pub(crate) snapshot: &'a GroupSnapshot,
    pub(crate) now: i64,
    pub(crate) introduced_by: Option<&'a str>,
}

/// Stores a 1:1 conversation whose MLS group exists (accepted, or made by
/// an introduction).
pub(crate) fn insert_active_pair(db: &Connection, pair: &NewPair<'_>) -> Result<()> {
    db.execute(
        "INSERT INTO conversations (id, kind, state, contact_name, my_name, identity, mls_state, created_at, last_activity, introduced_by) \
         VALUES (?1, 'pair', 'active', ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
        params![
            pair.id,
            pair.contact_name,
            pair.my_name,
            pair.identity.to_bytes().as_slice(),
            pair.snapshot.to_bytes().as_slice(),
            pair.now,
            pair.introduced_by
        ],
    )?;
    Ok(())
}

pub(crate) fn contact_name(db: &Connection, id: &str) -> Result<String> {
    Ok(db
        .prepare_cached(
            "SELECT COALESCE(local_name, contact_name, 'contact') FROM conversations WHERE id = ?1",
        )?
        .query_row([id], |r| r.get(0))?)
}

/// A frame encrypted in a conversation.
pub(crate) struct Sealed {
    /// The padded envelope, as the relay stores it.
    pub(crate) payload: Vec<u8>,
    /// The MLS epoch it was encrypted in.
    pub(crate) epoch: u64,
}

/// Encrypts `frame` in `conv` inside `tx`: the MLS state is loaded,
/// advanced and stored in the same transaction as whatever the caller
/// writes with the payload, so no other write can come between.
pub(crate) fn encrypt_in(tx: &Transaction<'_>, conv: &str, frame: &PairFrame) -> Result<Sealed> {
    let mut session = load_session(tx, conv)?;
    let ct = session.encrypt(&Zeroizing::new(frame.to_bytes()))?;
    tx.execute(
        "UPDATE conversations SET mls_state = ?2 WHERE id = ?1",
        params![conv, session.snapshot()?.to_bytes().as_slice()],
    )?;
    Ok(Sealed {
        payload: envelope_payload(&Envelope::Mls(ct))?,
        epoch: session.epoch(),
    })
}

/// Encrypts a frame in a conversation and queues it, in `tx`.
pub(crate) fn queue_frame(
    tx: &Transaction<'_>,
    conv: &str,
    frame: &PairFrame,
    now: u64,
) -> Result<()> {
    let sealed = encrypt_in(tx, conv, frame)?;
    queue(tx, conv, &sealed.payload, now)
}

/// A conversation's MLS session as stored (in `db`, a transaction's view
/// when it is one).
pub(crate) fn load_session(db: &Connection, conv: &str) -> Result<Session> {
    let (identity, state): (Vec<u8>, Option<Vec<u8>>) = db.query_row(
        "SELECT identity, mls_state FROM conversations WHERE id = ?1",
        [conv],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    open_session(&IdentityKey::from_bytes(&Zeroizing::new(identity))?, state)
}

/// The conversation's MLS session from its stored identity and state.
pub(crate) fn open_session(identity: &IdentityKey, state: Option<Vec<u8>>) -> Result<Session> {
    let state = Zeroizing::new(state.ok_or(CoreError::NotYetConnected)?);
    Ok(Session::load(identity, GroupSnapshot::from_bytes(&state)?)?)
}

/// The safety number of a 1:1 conversation (pair-v1.md §10): the same for
/// both members, from their two identity keys.
pub fn safety_number(a: &[u8], b: &[u8]) -> String {
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    let digest = Sha256::new()
        .chain_update(b"kith safety number v1\0")
        .chain_update(first)
        .chain_update(second)
        .finalize();
    digest
        .get(..15)
        .unwrap_or_default()
        .chunks(3)
        .map(|c| {
            let n = c.iter().fold(0u32, |n, b| n << 8 | u32::from(*b));
            format!("{:07}", n % 10_000_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `conversation_id` (pair-v1.md §2): from the first channel's write id,
/// which both sides know from the invitation.
pub fn conversation_id(first_write_id: &WriteId) -> String {
    let mut h = Sha256::new();
    h.update(b"kith conversation id v1\0");
    h.update(first_write_id.0);
    to_hex(h.finalize().get(..16).unwrap_or_default())
}

fn digest(payload: &[u8]) -> Vec<u8> {
    Sha256::digest(payload).to_vec()
}

pub(crate) fn envelope_payload(envelope: &Envelope) -> Result<Vec<u8>> {
    Ok(pad(&envelope.to_bytes(), &SIZE_BUCKETS)?)
}

fn not_found(e: &ClientError) -> bool {
    e.code() == Some(ErrorCode::NOT_FOUND)
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
        let client = RelayClient::with_trust(&key, trust)?;
        self.relays.insert(key, client.clone());
        Ok(client)
    }

    /// Creates a one-time invitation on `relay` (or the profile's relay),
    /// showing `name` (or the profile's name) to whoever accepts it.
    pub async fn invite(&mut self, relay: Option<&str>, name: Option<&str>) -> Result<Invite> {
        name.map(check_name).transpose()?;
        let profile = self.profile()?;
        let my_name = name.map_or_else(|| profile.name.clone(), str::to_string);
        let relay_url = relay
            .map(str::to_string)
            .or(profile.relay_url)
            .ok_or(CoreError::NoRelay)?;
        let client = self.relay(&relay_url)?;
        let SharedChannel { owner, grant } = self.create_shared_channel(&relay_url).await?;
        let identity = IdentityKey::generate()?;
        let (kp, pending) = key_package(&identity)?;
        let expires_at = self.now().saturating_add(millis(INVITATION_TTL));
        let id = conversation_id(&grant.write_id);
        let now = ms(self.now());
        // Stored before the blob exists: a Welcome can only arrive once the
        // link is out, and then the channel must already be ours to read.
        let at = self.now();
        let tx = self.db.transaction()?;
        tx.execute(
            "INSERT INTO conversations (id, kind, state, my_name, identity, pending_kp, created_at, last_activity, expires_at) \
             VALUES (?1, 'pair', 'invited', ?2, ?3, ?4, ?5, ?5, ?6)",
            params![id, my_name, identity.to_bytes().as_slice(), pending.to_bytes().as_slice(), now, ms(expires_at)],
        )?;
        insert_channel(&tx, &id, &grant, &owner.to_bytes(), true, true, at)?;
        tx.commit()?;

        let (relay_url, write_id) = (grant.relay_url.clone(), grant.write_id);
        let invitation = Invitation {
            channel: grant,
            key_package: kp,
            display_name: my_name,
            expires_at_ms: expires_at,
        };
        let seal_key = SealKey::generate()?;
        let plaintext = Zeroizing::new(invitation.to_bytes());
        let blob = pad(
            &seal_key.seal(INVITATION_CONTEXT, &plaintext)?,
            &SIZE_BUCKETS,
        )?;
        let chunk_size =
            u32::try_from(blob.len()).map_err(|_| CoreError::Corrupt("blob size".into()))?;
        let created_blob = client
            .blob_create(&owner, write_id, chunk_size, 1, Some(INVITATION_TTL), true)
            .await?;
        client
            .blob_put(&owner, write_id, created_blob.blob_id, 0, &blob)
            .await?;
        let link = InviteLink {
            relay_url,
            blob_id: created_blob.blob_id,
            key: seal_key,
        };
        Ok(Invite {
            link: link.kith(),
            web_link: link.web(),
            conversation: id,
            expires_at,
        })
    }

    /// Accepts an invitation link: fetches (and so consumes) its blob,
    /// creates the conversation's MLS group and sends the Welcome.
    pub async fn accept(&mut self, link: &str, name: Option<&str>) -> Result<Accepted> {
        name.map(check_name).transpose()?;
        let profile = self.profile()?;
        let link = InviteLink::parse(link)?;
        let client = self.relay(&link.relay_url)?;
        let chunk = match client.blob_get(link.blob_id, 0).await {
            Ok(chunk) => chunk,
            Err(e) if not_found(&e) => return Err(CoreError::InvitationUnavailable),
            Err(e) => return Err(e.into()),
        };
        let sealed = unpad(&chunk.data).map_err(|e| CoreError::BadInvitation(e.to_string()))?;
        let Ok(plaintext) = link.key.open(INVITATION_CONTEXT, sealed) else {
            // The seal's context tells a group link from a 1:1 one.
            let plaintext = link
                .key
                .open(GROUP_INVITATION_CONTEXT, sealed)
                .map_err(|_| {
                    CoreError::BadInvitation("the key in the link does not open it".into())
                })?;
            let invitation = GroupInvitation::from_bytes(&plaintext)
                .map_err(|e| CoreError::BadInvitation(e.to_string()))?;
            return Ok(Accepted {
                conversation: self.accept_group(invitation, &link.key, name).await?,
                warnings: Vec::new(),
            });
        };
        let invitation = Invitation::from_bytes(&plaintext)
            .map_err(|e| CoreError::BadInvitation(e.to_string()))?;
        if invitation.expires_at_ms < self.now() {
            return Err(CoreError::InvitationUnavailable);
        }
        let id = conversation_id(&invitation.channel.write_id);
        if self.find_by_id(&id)?.is_some() {
            return Err(CoreError::OwnInvitation);
        }
        let grant = &invitation.channel;
        let inviter_relay = self.relay(&grant.relay_url)?;
        if inviter_relay.info().await?.relay_id != grant.relay_id {
            return Err(CoreError::BadInvitation(
                "the relay is not the one the invitation names".into(),
            ));
        }
        let relay_url = base_url(&inviter_relay);

        let identity = IdentityKey::generate()?;
        let (mut session, welcome) = Session::create(&identity, &[&invitation.key_package])?;
        let my_name = name.map_or(profile.name.clone(), str::to_string);

        let mut warnings = Vec::new();
        let mut frames = vec![PairFrame::Profile {
            display_name: my_name.clone(),
        }];
        let mut own_channel = None;
        if let Some(own_url) = profile.relay_url.as_deref().filter(|u| *u != relay_url) {
            match self.create_shared_channel(own_url).await {
                Ok(shared) => {
                    frames.push(PairFrame::Channel(shared.grant.clone()));
                    own_channel = Some(shared);
                }
                Err(e) => warnings.push(format!("no channel on your relay {own_url}: {e}")),
            }
        }
        let mut payloads = vec![envelope_payload(&Envelope::Welcome(welcome))?];
        for frame in &frames {
            let ct = session.encrypt(&Zeroizing::new(frame.to_bytes()))?;
            payloads.push(envelope_payload(&Envelope::Mls(ct))?);
        }
        let snapshot = session.snapshot()?;
        let now = ms(self.now());
        let at = self.now();
        let tx = self.db.transaction()?;
        insert_active_pair(
            &tx,
            &NewPair {
                id: &id,
                contact_name: &invitation.display_name,
                my_name: &my_name,
                identity: &identity,
                snapshot: &snapshot,
                now,
                introduced_by: None,
            },
        )?;
        insert_channel(&tx, &id, grant, &grant.key, false, true, at)?;
        if let Some(shared) = &own_channel {
            insert_channel(
                &tx,
                &id,
                &shared.grant,
                &shared.owner.to_bytes(),
                true,
                false,
                at,
            )?;
        }
        for payload in &payloads {
            queue(&tx, &id, payload, at)?;
        }
        tx.commit()?;
        if let Err(e) = self.flush_outbox(Some(&id)).await {
            warnings.push(format!(
                "the reply is queued and will be sent on the next sync: {e}"
            ));
        }
        let conversation = self.view(&id)?;
        Ok(Accepted {
            conversation,
            warnings,
        })
    }

    /// A channel on the relay at `url` for a conversation, with a
    /// READ|WRITE capability key for the contact.
    pub(crate) async fn create_shared_channel(&mut self, url: &str) -> Result<SharedChannel> {
        let client = self.relay(url)?;
        let info = client.info().await?;
        let owner = generate_key()?;
        let guest = generate_key()?;
        let created = client
            .create_channel(
                &owner,
                ChannelOptions {
                    grants: vec![KeyGrant {
                        key: public_key(&guest),
                        rights: Rights::READ | Rights::WRITE,
                    }],
                    ..ChannelOptions::default()
                },
            )
            .await?;
        let grant = ChannelGrant {
            relay_url: base_url(&client),
            relay_id: info.relay_id,
            write_id: created.write_id,
            read_id: created.read_id,
            key: guest.to_bytes(),
        };
        Ok(SharedChannel { owner, grant })
    }

    pub(crate) fn load(&self, id: &str) -> Result<Session> {
        load_session(&self.db, id)
    }

    /// Sends a text message. It is stored and queued first, so a relay that
    /// cannot be reached loses nothing: the next send or sync retries.
    pub async fn send(&mut self, conv: &str, text: &str) -> Result<MessageView> {
        if text.is_empty() {
            return Err(CoreError::Empty("message"));
        }
        check_len("message", text, kith_wire::conv::MAX_TEXT)?;
        let id = self.resolve(conv)?;
        let (state, blocked): (ConversationState, bool) = self.db.query_row(
            "SELECT state, blocked FROM conversations WHERE id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        match state {
            ConversationState::Closed | ConversationState::Leaving => {
                return Err(CoreError::GroupClosed(conv.to_string()));
            }
            ConversationState::Invited | ConversationState::Joining => {
                return Err(CoreError::NotYetConnected);
            }
            _ if blocked => return Err(CoreError::Blocked(conv.to_string())),
            _ => {}
        }
        let message_id: [u8; 16] = random()?;
        let sent_at = self.now();
        let frame = PairFrame::Text {
            message_id,
            sent_at_ms: sent_at,
            text: text.to_string(),
        };
        let group = self.prepare_send(&id).await?;
        let at = self.now();
        let tx = self.db.transaction()?;
        // Loaded, encrypted and stored in one transaction (pair-v1.md §12).
        let sealed = encrypt_in(&tx, &id, &frame)?;
        tx.execute(
            "UPDATE conversations SET last_activity = ?2 WHERE id = ?1",
            params![id, ms(sent_at)],
        )?;
        tx.execute(
            "INSERT INTO messages (conversation_id, message_id, outgoing, sent_at, received_at, text) \
             VALUES (?1, ?2, 1, ?3, ?3, ?4)",
            params![id, message_id, ms(sent_at), text],
        )?;
        let options = QueueOptions {
            epoch: group.then_some(sealed.epoch),
            frame: group.then(|| frame.to_bytes()),
            ..QueueOptions::default()
        };
        queue_with(&tx, &id, &sealed.payload, &options, at)?;
        tx.commit()?;
        match self.flush_outbox(Some(&id)).await {
            Ok(()) => {}
            Err(e @ CoreError::Refused(_)) => {
                // Never delivered: not kept as if it had been.
                self.db.execute(
                    "DELETE FROM messages WHERE conversation_id = ?1 AND message_id = ?2",
                    params![id, message_id],
                )?;
                return Err(e);
            }
            Err(e) => return Err(CoreError::Queued(e.to_string())),
        }
        Ok(MessageView {
            id: to_hex(&message_id),
            conversation: id,
            from: "me".into(),
            outgoing: true,
            sent_at,
            received_at: sent_at,
            text: text.to_string(),
            needs_newer: false,
        })
    }

    /// Makes a conversation ready to encrypt in: a group is read to its
    /// channel's head first (a member never sends in an epoch the channel
    /// has left, group-v1.md §8), and commits what MLS requires before
    /// application data. Returns whether it is a group.
    pub(crate) async fn prepare_send(&mut self, id: &str) -> Result<bool> {
        let kind: ConversationKind =
            self.db
                .query_row("SELECT kind FROM conversations WHERE id = ?1", [id], |r| {
                    r.get(0)
                })?;
        if kind != ConversationKind::Group {
            return Ok(false);
        }
        match self.catch_up(id).await {
            // A relay out of reach: the message is made in the epoch this
            // member knows and queued; sending it at the head later makes
            // it again if the group moved on meanwhile.
            Ok(()) | Err(CoreError::Relay(_)) => {}
            Err(e) => return Err(e),
        }
        self.prepare_group_send(id).await?;
        Ok(true)
    }

    /// Reads a conversation's channels to their heads. What arrives is
    /// stored, and reported by the next sync.
    pub(crate) async fn catch_up(&mut self, id: &str) -> Result<()> {
        let mut carry = std::mem::take(&mut self.carry);
        let mut result = Ok(());
        for channel in store::readable_channels(&self.db)?
            .into_iter()
            .filter(|c| c.conversation_id == id)
        {
            let mut joined = Vec::new();
            result = self.sync_channel(&channel, &mut carry, &mut joined).await;
            carry.joined_groups.append(&mut joined);
            if let Err(CoreError::Relay(e)) = &result
                && let Some(notice) = self.lost_group_channel(&channel, e)?
            {
                carry.notices.push(notice);
                result = Err(CoreError::GroupClosed(contact_name(&self.db, id)?));
            }
            if result.is_err() {
                break;
            }
        }
        self.carry = carry;
        result
    }

    fn is_group(&self, id: &str) -> Result<bool> {
        Ok(self.db.query_row(
            "SELECT kind = 'group' FROM conversations WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?)
    }

    /// Sends what is queued, oldest first, each to the conversation's
    /// preferred channel and then the others. Stops a conversation at its
    /// first message that no channel takes, to keep the order; an entry for
    /// one channel only (an inbox, an address update) does not hold back
    /// the rest. A message every channel refuses as unauthorized can never
    /// be delivered (the contact blocked this user, or deleted the
    /// conversation): it is dropped and reported as [`CoreError::Refused`].
    /// A group's entries go to its channel's head only ([`Self::send_at_head`]).
    pub(crate) async fn flush_outbox(&mut self, conv: Option<&str>) -> Result<()> {
        let entries: Vec<OutboxEntry> = {
            let mut stmt = self.db.prepare(
                "SELECT o.id, o.conversation_id, o.payload, o.channel_id, o.commit_epoch, o.epoch, \
                        o.frame, c.kind = 'group' FROM outbox o JOIN conversations c ON c.id = o.conversation_id \
                 WHERE (?1 IS NULL OR o.conversation_id = ?1) AND c.blocked = 0 AND c.state != 'closed' \
                 ORDER BY o.id",
            )?;
            let rows = stmt.query_map(params![conv], |r| {
                Ok(OutboxEntry {
                    id: r.get(0)?,
                    conversation: r.get(1)?,
                    payload: r.get(2)?,
                    only_channel: r.get(3)?,
                    commit_epoch: r
                        .get::<_, Option<i64>>(4)?
                        .and_then(|e| u64::try_from(e).ok()),
                    epoch: r
                        .get::<_, Option<i64>>(5)?
                        .and_then(|e| u64::try_from(e).ok()),
                    frame: r.get(6)?,
                    group: r.get(7)?,
                })
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut blocked = BTreeSet::new();
        let mut first_error = None;
        for entry in entries {
            if blocked.contains(&entry.conversation) {
                continue;
            }
            if entry.group && entry.only_channel.is_none() {
                let down = store::channels(&self.db, Some(&entry.conversation))?
                    .iter()
                    .any(|c| {
                        c.role == ChannelRole::Conv && self.unreachable.contains(&c.relay_url)
                    });
                if down {
                    // Its relay is known to be down: wait quietly.
                    blocked.insert(entry.conversation.clone());
                    continue;
                }
                if let Err(e) = self.send_at_head(&entry).await {
                    self.db.execute(
                        "UPDATE outbox SET attempts = attempts + 1 WHERE id = ?1",
                        [entry.id],
                    )?;
                    blocked.insert(entry.conversation.clone());
                    first_error.get_or_insert(e);
                }
                continue;
            }
            let channels: Vec<ChannelRow> = store::channels(&self.db, Some(&entry.conversation))?
                .into_iter()
                .filter(|c| match entry.only_channel {
                    Some(id) => c.id == id,
                    None => c.role == ChannelRole::Conv,
                })
                .collect();
            let channels: Vec<ChannelRow> = channels
                .into_iter()
                .filter(|c| !self.unreachable.contains(&c.relay_url))
                .collect();
            if channels.is_empty() {
                // Every path is a relay known to be down: wait quietly.
                if entry.only_channel.is_none() {
                    blocked.insert(entry.conversation.clone());
                }
                continue;
            }
            let mut last_error = None;
            let mut sent = false;
            let mut refusals = 0;
            for channel in &channels {
                let client = self.relay(&channel.relay_url)?;
                match client
                    .append(&channel.key, channel.write_id, &entry.payload)
                    .await
                {
                    Ok(appended) => {
                        if channel.owner && channel.role == ChannelRole::Retiring {
                            // The address update on a channel being drained:
                            // the drain ends once every reader is past it.
                            self.db.execute(
                                "UPDATE channels SET retire_seq = MAX(COALESCE(retire_seq, 0), ?2) WHERE id = ?1",
                                params![channel.id, ms(appended.seq)],
                            )?;
                        }
                        sent = true;
                        break;
                    }
                    Err(e) => {
                        if e.code() == Some(ErrorCode::UNAUTHORIZED) {
                            refusals += 1;
                        }
                        last_error = Some(e);
                    }
                }
            }
            let refused = !sent
                && entry.only_channel.is_none()
                && refusals == channels.len()
                && refusals > 0
                && !entry.group;
            if sent || refused {
                self.db
                    .execute("DELETE FROM outbox WHERE id = ?1", [entry.id])?;
            } else {
                self.db.execute(
                    "UPDATE outbox SET attempts = attempts + 1 WHERE id = ?1",
                    [entry.id],
                )?;
                if entry.only_channel.is_none() {
                    blocked.insert(entry.conversation.clone());
                }
            }
            // An address update for a retired channel waits quietly for its
            // relay to come back: the contacts had other paths.
            let retiring = channels.iter().all(|c| c.role == ChannelRole::Retiring);
            if !sent && !retiring && first_error.is_none() {
                first_error = if refused {
                    Some(CoreError::Refused(contact_name(
                        &self.db,
                        &entry.conversation,
                    )?))
                } else {
                    last_error.map(CoreError::from)
                };
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Appends a group's queued message, proposal or commit at the head of
    /// its channel (relay.md §5.2a, group-v1.md §8): while another message
    /// got there first, the channel is read, and an entry made in an epoch
    /// the group has since left is made again (a message, from its frame)
    /// or dropped (a commit or proposal: what it carried is built again).
    async fn send_at_head(&mut self, entry: &OutboxEntry) -> Result<()> {
        let mut payload = entry.payload.clone();
        let mut epoch = entry.epoch;
        for _ in 0..HEAD_ATTEMPTS {
            let queued: bool = self.db.query_row(
                "SELECT EXISTS (SELECT 1 FROM outbox WHERE id = ?1)",
                [entry.id],
                |r| r.get(0),
            )?;
            if !queued {
                // What was read meanwhile made it void (a commit that lost).
                return Ok(());
            }
            let session = self.load(&entry.conversation)?;
            let now_epoch = session.epoch();
            if entry.commit_epoch.is_some_and(|e| e != now_epoch)
                || (entry.frame.is_none() && epoch.is_some_and(|e| e != now_epoch))
            {
                // A commit that lost its epoch's race (its changes are
                // built again), or a proposal for an epoch gone.
                self.db
                    .execute("DELETE FROM outbox WHERE id = ?1", [entry.id])?;
                return Ok(());
            }
            if let (Some(frame), Some(made_in)) = (&entry.frame, epoch)
                && made_in != now_epoch
            {
                if session.commit_required() {
                    return Err(CoreError::Queued(
                        "the group has a change waiting to be committed first".into(),
                    ));
                }
                let frame = PairFrame::from_bytes(frame)?;
                let tx = self.db.transaction()?;
                let sealed = encrypt_in(&tx, &entry.conversation, &frame)?;
                tx.execute(
                    "UPDATE outbox SET payload = ?2, epoch = ?3 WHERE id = ?1",
                    params![entry.id, sealed.payload, ms(sealed.epoch)],
                )?;
                tx.execute(
                    "INSERT OR IGNORE INTO seen (conversation_id, digest) VALUES (?1, ?2)",
                    params![entry.conversation, digest(&sealed.payload)],
                )?;
                tx.commit()?;
                payload = sealed.payload;
                epoch = Some(sealed.epoch);
            }
            let Some(channel) = store::channels(&self.db, Some(&entry.conversation))?
                .into_iter()
                .find(|c| c.role == ChannelRole::Conv)
            else {
                return Err(CoreError::Corrupt("a group without a channel".into()));
            };
            let client = self.relay(&channel.relay_url)?;
            match client
                .append_after(&channel.key, channel.write_id, channel.cursor, &payload)
                .await
            {
                Ok(appended) => {
                    let tx = self.db.transaction()?;
                    tx.execute("DELETE FROM outbox WHERE id = ?1", [entry.id])?;
                    if entry.commit_epoch.is_none() && appended.seq == channel.cursor + 1 {
                        // Nothing came between: the channel's head is our own
                        // message, already seen. A commit is not skipped: it
                        // takes effect when read back.
                        tx.execute(
                            "UPDATE channels SET cursor = MAX(cursor, ?2) WHERE id = ?1",
                            params![channel.id, ms(appended.seq)],
                        )?;
                    }
                    tx.commit()?;
                    return Ok(());
                }
                Err(e) if e.code() == Some(ErrorCode::UNAUTHORIZED) => {
                    // Removed from the group (or it was deleted): nothing
                    // queued for it can ever be delivered.
                    let notice = self.close_lost_group(&entry.conversation)?;
                    self.carry.notices.extend(notice);
                    return Ok(());
                }
                Err(e) if e.code() == Some(ErrorCode::CONFLICT) => {
                    // Someone got there first: read what they sent.
                    let mut carry = std::mem::take(&mut self.carry);
                    let mut joined = Vec::new();
                    let read = self.sync_channel(&channel, &mut carry, &mut joined).await;
                    carry.joined_groups.append(&mut joined);
                    self.carry = carry;
                    read?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(CoreError::Queued(
            "the group's channel kept moving; the message is sent on the next sync".into(),
        ))
    }

    /// Sends the outbox, then reads every channel from its cursor.
    pub async fn sync(&mut self) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        if let Err(e) = self.flush_outbox(None).await {
            report.errors.push(format!("sending queued messages: {e}"));
        }
        let mut joined = Vec::new();
        // Channels that appear while reading (a group joined, a contact's
        // relay, a move) are read in the same sync, a few rounds at most.
        let mut done = BTreeSet::new();
        for _ in 0..SYNC_ROUNDS {
            let fresh: Vec<ChannelRow> = store::readable_channels(&self.db)?
                .into_iter()
                .filter(|c| !done.contains(&c.id))
                .collect();
            if fresh.is_empty() {
                break;
            }
            for channel in fresh {
                done.insert(channel.id);
                if !self.unreachable.contains(&channel.relay_url) {
                    self.sync_one(&channel, &mut report, &mut joined).await?;
                }
            }
        }
        self.finish_report(&mut report, joined).await?;
        Ok(report)
    }

    /// After messages were handled: what catching up and sending brought
    /// since, views of the conversations that became active, and the
    /// follow-up work (commits, Welcomes, introductions, the outbox).
    pub(crate) async fn finish_report(
        &mut self,
        report: &mut SyncReport,
        mut joined: Vec<String>,
    ) -> Result<()> {
        report.absorb(std::mem::take(&mut self.carry));
        // Views are made last: the contact's name arrives after the Welcome.
        joined.append(&mut report.joined_groups);
        joined.dedup();
        for id in joined {
            report.connected.push(self.view(&id)?);
        }
        if let Err(e) = self.settle(report).await {
            report.errors.push(e.to_string());
        }
        Ok(())
    }

    /// Reads one channel for a sync; what goes wrong is reported.
    async fn sync_one(
        &mut self,
        channel: &ChannelRow,
        report: &mut SyncReport,
        joined: &mut Vec<String>,
    ) -> Result<()> {
        match self.sync_channel(channel, report, joined).await {
            Ok(()) => {}
            // A channel being retired: its host deletes it once drained,
            // and a relay that is gone for good must not nag every sync.
            Err(e) if channel.role == ChannelRole::Retiring => {
                if !channel.owner && crate::moving::gone(&e) {
                    self.db
                        .execute("DELETE FROM channels WHERE id = ?1", [channel.id])?;
                }
            }
            Err(CoreError::Relay(e))
                if channel.role == ChannelRole::Conv
                    && e.code() == Some(ErrorCode::UNAUTHORIZED)
                    && self.is_group(&channel.conversation_id)? =>
            {
                report.notices.extend(self.lost_group_channel(channel, &e)?);
            }
            // A local failure stops this channel where it is, with
            // nothing acknowledged; the others go on.
            Err(e) => report
                .errors
                .push(format!("reading {}: {e}", channel.relay_url)),
        }
        Ok(())
    }

    pub(crate) async fn sync_channel(
        &mut self,
        channel: &ChannelRow,
        report: &mut SyncReport,
        joined: &mut Vec<String>,
    ) -> Result<()> {
        let client = self.relay(&channel.relay_url)?;
        if client.cached_info().await?.relay_id != channel.relay_id {
            return Err(CoreError::Corrupt(format!(
                "the relay at {} is not the relay this channel was created on",
                channel.relay_url
            )));
        }
        let mut cursor = channel.cursor;
        loop {
            let batch = client
                .read(
                    &channel.key,
                    channel.read_id,
                    cursor,
                    READ_BATCH,
                    Duration::ZERO,
                )
                .await?;
            let Some(last) = batch.items.last().map(|m| m.seq) else {
                break;
            };
            if !self.handle_items(channel.id, &batch.items, report, joined)? {
                return Ok(());
            }
            cursor = last;
            client.ack(&channel.key, channel.read_id, cursor).await?;
            if batch.last_seq <= cursor {
                break;
            }
        }
        Ok(())
    }

    /// Messages of one channel, in order, in one transaction (one commit
    /// and one fsync for the page, not one per message); `false` if the
    /// channel is gone (a move in the batch deleted it). A local failure
    /// keeps what was handled before it and stops there.
    pub(crate) fn handle_items(
        &mut self,
        channel_id: i64,
        items: &[StoredMessage],
        report: &mut SyncReport,
        joined: &mut Vec<String>,
    ) -> Result<bool> {
        let now = self.now();
        let drain = millis(self.config.drain_limit);
        let mut revocations = Vec::new();
        let tx = self.db.transaction()?;
        let mut cache = PairCache::default();
        let first_new = report.messages.len();
        let mut result = Ok(true);
        for item in items {
            // Fresh each time: a move in this batch changes the row.
            let Some(channel) = store::channel(&tx, channel_id)? else {
                result = Ok(false);
                break;
            };
            match handle(&tx, &channel, item, (now, drain), &mut cache, report) {
                Ok(handled) => {
                    if handled.joined {
                        joined.push(channel.conversation_id.clone());
                    }
                    revocations.extend(
                        handled
                            .revoke
                            .into_iter()
                            .map(|k| (channel.conversation_id.clone(), k)),
                    );
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        cache.save(&tx)?;
        count_unread(&tx, report, first_new, now)?;
        tx.commit()?;
        self.revocations.extend(revocations);
        result
    }

    /// Decrypts without changing the store: an outcome to apply, a refusal
    /// to record, or a local failure that stops the sync.
    fn open_message(
        db: &Connection,
        channel: &ChannelRow,
        seq: u64,
        payload: &[u8],
        cache: &mut PairCache,
    ) -> Result<Outcome, OpenError> {
        let conv = channel.conversation_id.as_str();
        let bytes = unpad(payload).map_err(refused)?;
        let envelope = Envelope::from_bytes(bytes).map_err(refused)?;
        let (kind, state): (ConversationKind, ConversationState) = db
            .prepare_cached("SELECT kind, state FROM conversations WHERE id = ?1")?
            .query_row([conv], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if let (ConversationKind::Pair, ConversationState::Active, Envelope::Mls(message)) =
            (kind, state, &envelope)
            && cache.holds(conv)
        {
            // The page's session is already open: no row or state to read.
            return open_pair_mls(cache, conv, None, message);
        }
        type Row = (Option<Vec<u8>>, Vec<u8>, Option<Vec<u8>>);
        let (pending, identity, mls_state): Row = db.query_row(
            "SELECT pending_kp, identity, mls_state FROM conversations WHERE id = ?1",
            [conv],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let identity =
            IdentityKey::from_bytes(&Zeroizing::new(identity)).map_err(CoreError::from)?;
        if kind == ConversationKind::Group {
            let row = OpenRow {
                state,
                pending,
                identity,
                mls_state,
            };
            return Engine::open_group_message(channel, seq, envelope, row).map(Outcome::Group);
        }
        match envelope {
            Envelope::Welcome(welcome) => {
                let pending = match (state, pending) {
                    (ConversationState::Invited, Some(p)) => {
                        PendingKeyPackage::from_bytes(&Zeroizing::new(p))
                            .map_err(CoreError::from)?
                    }
                    _ => {
                        return Err(
                            refused("a second Welcome for a conversation already joined").into(),
                        );
                    }
                };
                let mut session = Session::join(&identity, &pending, &welcome).map_err(refused)?;
                if session.members().len() != 2 {
                    return Err(refused("a 1:1 Welcome must make a group of two").into());
                }
                Ok(Outcome::Joined(
                    session.snapshot().map_err(CoreError::from)?,
                ))
            }
            Envelope::Mls(message) => {
                if state != ConversationState::Active {
                    return Err(refused("an MLS message before the Welcome").into());
                }
                open_pair_mls(cache, conv, Some((&identity, mls_state)), &message)
            }
            _ => Err(refused("a group message in a 1:1 conversation").into()),
        }
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
        if let Some(id) = self.find_by_id(conv)? {
            return Ok(id);
        }
        let mut stmt = self.db.prepare(
            "SELECT id FROM conversations WHERE id LIKE ?1 || '%' ESCAPE '\\' \
             UNION SELECT id FROM conversations WHERE lower(COALESCE(local_name, contact_name)) = lower(?2)",
        )?;
        let escaped = conv
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
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

    /// Conversations, newest activity first.
    pub fn list(&self) -> Result<Vec<ConversationView>> {
        let mut stmt = self.db.prepare(
            "SELECT c.id, COALESCE(c.local_name, c.contact_name, \
                      CASE c.state WHEN 'invited' THEN '(invitation not yet accepted)' ELSE 'contact' END), \
                    c.state, c.unread, c.last_activity, c.my_name, \
                    (SELECT COUNT(*) FROM integrity_events e WHERE e.conversation_id = c.id), c.kind, \
                    c.introduced_by, c.blocked \
             FROM conversations c ORDER BY c.last_activity DESC, c.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ConversationView {
                id: r.get(0)?,
                name: r.get(1)?,
                state: r.get(2)?,
                unread: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                last_activity: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                my_name: r.get(5)?,
                integrity_events: u64::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
                kind: r.get(7)?,
                introduced_by: r.get(8)?,
                blocked: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The conversation's messages by the time their senders sent them (ties:
    /// the order they were stored); marks
    /// them read.
    pub fn read(&mut self, conv: &str) -> Result<Vec<MessageView>> {
        let id = self.resolve(conv)?;
        let name = contact_name(&self.db, &id)?;
        let messages = {
            let mut stmt = self.db.prepare(
                "SELECT message_id, outgoing, sent_at, received_at, text, sender, needs_newer FROM messages \
                 WHERE conversation_id = ?1 ORDER BY sent_at, seq",
            )?;
            let rows = stmt.query_map([&id], |r| {
                let outgoing: bool = r.get(1)?;
                Ok(MessageView {
                    id: to_hex(&r.get::<_, Vec<u8>>(0)?),
                    conversation: id.clone(),
                    from: if outgoing {
                        "me".to_string()
                    } else {
                        r.get::<_, Option<String>>(5)?
                            .unwrap_or_else(|| name.clone())
                    },
                    outgoing,
                    sent_at: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    received_at: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                    text: r.get(4)?,
                    needs_newer: r.get(6)?,
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        self.db
            .execute("UPDATE conversations SET unread = 0 WHERE id = ?1", [&id])?;
        Ok(messages)
    }

    /// Identity keys, safety number and channels of a conversation.
    pub fn info(&self, conv: &str) -> Result<ConversationInfo> {
        let id = self.resolve(conv)?;
        let conversation = self.view(&id)?;
        let identity: Vec<u8> = self.db.query_row(
            "SELECT identity FROM conversations WHERE id = ?1",
            [&id],
            |r| r.get(0),
        )?;
        let mine = IdentityKey::from_bytes(&Zeroizing::new(identity))?
            .public()
            .to_vec();
        let members: Vec<Vec<u8>> = match self.load(&id) {
            Ok(session) => session
                .members()
                .into_iter()
                .map(|m| m.identity_key)
                .filter(|k| *k != mine)
                .collect(),
            Err(CoreError::NotYetConnected) => Vec::new(),
            Err(e) => return Err(e),
        };
        let safety_number = match members.as_slice() {
            [theirs] if conversation.kind == "pair" => Some(safety_number(&mine, theirs)),
            _ => None,
        };
        let preferred: Vec<(i64, bool)> = {
            let mut stmt = self
                .db
                .prepare("SELECT id, preferred FROM channels WHERE conversation_id = ?1")?;
            let rows = stmt.query_map([&id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let channels = store::channels(&self.db, Some(&id))?
            .into_iter()
            .map(|c| ChannelInfo {
                relay_url: c.relay_url.clone(),
                write_id: to_hex(&c.write_id.0),
                read_id: to_hex(&c.read_id.0),
                my_key: to_hex(&public_key(&c.key).0),
                hosted: c.owner,
                role: c.role.to_string(),
                preferred: preferred.iter().any(|p| p.0 == c.id && p.1),
            })
            .collect();
        Ok(ConversationInfo {
            conversation,
            my_identity: to_hex(&mine),
            member_identities: members.iter().map(|k| to_hex(k)).collect(),
            safety_number,
            channels,
        })
    }

    /// Integrity events of a conversation, oldest first.
    pub fn integrity_events(&self, conv: &str) -> Result<Vec<IntegrityEvent>> {
        let id = self.resolve(conv)?;
        let mut stmt = self.db.prepare(
            "SELECT at, detail FROM integrity_events WHERE conversation_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([&id], |r| {
            Ok(IntegrityEvent {
                conversation: id.clone(),
                at: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                detail: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Renames a conversation locally; the contact never learns it.
    pub fn rename(&mut self, conv: &str, name: &str) -> Result<ConversationView> {
        check_name(name)?;
        let id = self.resolve(conv)?;
        self.db.execute(
            "UPDATE conversations SET local_name = ?2 WHERE id = ?1",
            params![id, name],
        )?;
        self.view(&id)
    }

    /// Deletes a conversation here, and the channels this user hosts for it
    /// on relays (best effort: a relay that cannot be reached lets them
    /// expire).
    pub async fn delete(&mut self, conv: &str) -> Result<Vec<String>> {
        let id = self.resolve(conv)?;
        let mut warnings = Vec::new();
        for channel in store::channels(&self.db, Some(&id))?
            .into_iter()
            .filter(|c| c.owner)
        {
            let client = self.relay(&channel.relay_url)?;
            if let Err(e) = client.delete_channel(&channel.key, channel.write_id).await {
                warnings.push(format!(
                    "channel on {} left to expire: {e}",
                    channel.relay_url
                ));
            }
        }
        self.db
            .execute("DELETE FROM conversations WHERE id = ?1", [&id])?;
        Ok(warnings)
    }
}

pub(crate) fn queue(tx: &Transaction<'_>, conv: &str, payload: &[u8], now: u64) -> Result<()> {
    queue_with(tx, conv, payload, &QueueOptions::default(), now)
}

/// One queued payload (an `outbox` row).
#[derive(Debug)]
struct OutboxEntry {
    id: i64,
    conversation: String,
    payload: Vec<u8>,
    only_channel: Option<i64>,
    commit_epoch: Option<u64>,
    epoch: Option<u64>,
    frame: Option<Vec<u8>>,
    group: bool,
}

/// How an outbox entry is sent.
#[derive(Debug, Default)]
pub(crate) struct QueueOptions {
    /// A commit must come back and be processed: do not mark it seen.
    pub(crate) commit_epoch: Option<u64>,
    /// Send to this channel only (a group link's inbox).
    pub(crate) channel: Option<i64>,
    /// A group's message or proposal: the epoch it was made in.
    pub(crate) epoch: Option<u64>,
    /// A group's message: its frame, to encrypt again in a later epoch.
    pub(crate) frame: Option<Vec<u8>>,
}

pub(crate) fn queue_with(
    tx: &Transaction<'_>,
    conv: &str,
    payload: &[u8],
    options: &QueueOptions,
    now: u64,
) -> Result<()> {
    tx.execute(
        "INSERT INTO outbox (conversation_id, payload, created_at, channel_id, commit_epoch, epoch, frame) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            conv,
            payload,
            ms(now),
            options.channel,
            options.commit_epoch.map(ms),
            options.epoch.map(ms),
            options.frame
        ],
    )?;
    if options.commit_epoch.is_none() {
        // Our own payloads come back when we read the channel: skip them there.
        tx.execute(
            "INSERT OR IGNORE INTO seen (conversation_id, digest) VALUES (?1, ?2)",
            params![conv, digest(payload)],
        )?;
    }
    Ok(())
}

/// Records a message that was refused, and reports it (pair-v1.md §6).
pub(crate) fn record_integrity_event(
    tx: &Transaction<'_>,
    conv: &str,
    now: u64,
    detail: String,
    report: &mut SyncReport,
) -> Result<()> {
    tx.execute(
        "INSERT INTO integrity_events (conversation_id, at, detail) VALUES (?1, ?2, ?3)",
        params![conv, ms(now), detail],
    )?;
    report.integrity_events.push(IntegrityEvent {
        conversation: conv.to_string(),
        at: now,
        detail,
    });
    Ok(())
}

/// A message as it arrived, to be stored once.
pub(crate) struct Received {
    pub(crate) message_id: [u8; 16],
    pub(crate) sent_at_ms: u64,
    /// What is shown: the text, or a content frame's fallback.
    pub(crate) text: String,
    /// A group member's name; `None` in a 1:1 conversation, where the
    /// contact's current name is shown.
    pub(crate) sender: Option<String>,
    /// A critical content frame of a kind this version does not know.
    pub(crate) needs_newer: bool,
}

impl Received {
    /// A text (tag 1) or content (tag 8) frame as a message; `None` for a
    /// control frame.
    pub(crate) fn from_frame(frame: &PairFrame, sender: Option<String>) -> Option<Self> {
        match frame {
            PairFrame::Text {
                message_id,
                sent_at_ms,
                text,
            } => Some(Self {
                message_id: *message_id,
                sent_at_ms: *sent_at_ms,
                text: text.clone(),
                sender,
                needs_newer: false,
            }),
            // No content type is known in this version (pair-v1.md §4.1):
            // every one is shown as its fallback.
            PairFrame::Content(c) => Some(Self {
                message_id: c.message_id,
                sent_at_ms: c.sent_at_ms,
                text: c.fallback.clone(),
                sender,
                needs_newer: c.critical,
            }),
            _ => None,
        }
    }
}

/// Stores an incoming message and reports it; a `message_id` already stored
/// is not shown again.
pub(crate) fn receive_message(
    tx: &Transaction<'_>,
    conv: &str,
    message: Received,
    now: u64,
    report: &mut SyncReport,
) -> Result<()> {
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO messages (conversation_id, message_id, outgoing, sent_at, received_at, text, sender, needs_newer) \
             VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            conv,
            message.message_id,
            ms(message.sent_at_ms),
            ms(now),
            message.text,
            message.sender,
            message.needs_newer
        ])?;
    if inserted == 1 {
        // The conversation's unread count follows from the report: one
        // update per page ([`count_unread`]), not a rewrite of its row
        // (MLS state included) per message.
        report.messages.push(MessageView {
            id: to_hex(&message.message_id),
            conversation: conv.to_string(),
            from: match message.sender {
                Some(name) => name,
                None => contact_name(tx, conv)?,
            },
            outgoing: false,
            sent_at: message.sent_at_ms,
            received_at: now,
            text: message.text,
            needs_newer: message.needs_newer,
        });
    }
    Ok(())
}

/// Counts the messages a page added (`report.messages` from `from` on) as
/// unread in their conversations, in `tx`.
fn count_unread(tx: &Transaction<'_>, report: &SyncReport, from: usize, now: u64) -> Result<()> {
    let mut added: BTreeMap<&str, i64> = BTreeMap::new();
    for m in report.messages.get(from..).unwrap_or_default() {
        *added.entry(m.conversation.as_str()).or_default() += 1;
    }
    for (conv, n) in added {
        tx.prepare_cached(
            "UPDATE conversations SET unread = unread + ?2, last_activity = ?3 WHERE id = ?1",
        )?
        .execute(params![conv, n, ms(now)])?;
    }
    Ok(())
}

/// What opening a conversation's message needs from its row, read once.
pub(crate) struct OpenRow {
    pub(crate) state: ConversationState,
    pub(crate) pending: Option<Vec<u8>>,
    pub(crate) identity: IdentityKey,
    pub(crate) mls_state: Option<Vec<u8>>,
}

/// What a message did, to be applied in its transaction.
enum Outcome {
    Nothing,
    Joined(GroupSnapshot),
    /// A 1:1 message opened; its session's new state is in the page's
    /// [`PairCache`].
    Processed {
        frame: Option<PairFrame>,
    },
    Group(GroupOutcome),
}

/// A 1:1 conversation's MLS session kept across one page of its channel:
/// loaded once and its state written once, at the end of the page or
/// before a control frame is applied (whose handling may read it), rather
/// than decoded and encoded again for every message.
#[derive(Default)]
pub(crate) struct PairCache {
    open: Option<(String, Session)>,
    dirty: bool,
}

impl PairCache {
    fn holds(&self, conv: &str) -> bool {
        self.open.as_ref().is_some_and(|(open, _)| open == conv)
    }

    /// The page's session of `conv`, opened from `stored` the first time.
    fn session(
        &mut self,
        conv: &str,
        stored: Option<(&IdentityKey, Option<Vec<u8>>)>,
    ) -> Result<&mut Session> {
        if !self.holds(conv) {
            let (identity, state) =
                stored.ok_or_else(|| CoreError::Corrupt("no stored session".into()))?;
            // A page is one channel, so one conversation.
            self.open = Some((conv.to_string(), open_session(identity, state)?));
            self.dirty = false;
        }
        match &mut self.open {
            Some((_, session)) => Ok(session),
            None => Err(CoreError::Corrupt("no session".into())),
        }
    }

    /// Writes the kept state, if it moved on.
    fn save(&mut self, tx: &Transaction<'_>) -> Result<()> {
        if let (true, Some((conv, session))) = (self.dirty, &mut self.open) {
            tx.execute(
                "UPDATE conversations SET mls_state = ?2 WHERE id = ?1",
                params![conv.as_str(), session.snapshot()?.to_bytes().as_slice()],
            )?;
        }
        self.dirty = false;
        Ok(())
    }
}

/// Opens an MLS message of a 1:1 conversation with the page's session
/// (loaded from `stored` if it is not open yet).
fn open_pair_mls(
    cache: &mut PairCache,
    conv: &str,
    stored: Option<(&IdentityKey, Option<Vec<u8>>)>,
    message: &[u8],
) -> Result<Outcome, OpenError> {
    // A 1:1 conversation has exactly two members, for good (pair-v1.md
    // §7): a proposal or commit is refused before anything processes it.
    if !kith_crypto::mls::is_private_application(message) {
        return Err(
            refused("a change of members in a 1:1 conversation (it has exactly two)").into(),
        );
    }
    let session = cache.session(conv, stored)?;
    let incoming = session.process(message).map_err(refused)?;
    // A message that failed left the state as it was; one that opened
    // moved it on (kept for the page, written once).
    cache.dirty = true;
    let frame = match incoming {
        Incoming::Application { plaintext, .. } => {
            match PairFrame::from_bytes(&plaintext).map_err(refused)? {
                PairFrame::MemberTags(_) => {
                    return Err(refused("a group's frame in a 1:1 conversation").into());
                }
                frame => frame,
            }
        }
        _ => return Err(refused("an MLS message a 1:1 conversation does not use").into()),
    };
    Ok(Outcome::Processed { frame: Some(frame) })
}

/// What handling one message asks of the caller.
struct Handled {
    /// A conversation became active (a Welcome).
    joined: bool,
    /// Capability keys of removed group members, to revoke at the relay.
    revoke: Vec<[u8; 32]>,
}

/// One message from a channel, inside `tx` with the channel's cursor.
fn handle(
    tx: &Transaction<'_>,
    channel: &ChannelRow,
    item: &StoredMessage,
    (now, drain): (u64, u64),
    cache: &mut PairCache,
    report: &mut SyncReport,
) -> Result<Handled> {
    let conv = channel.conversation_id.as_str();
    let digest = digest(&item.payload);
    let seen: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM seen WHERE conversation_id = ?1 AND digest = ?2)",
        )?
        .query_row(params![conv, digest], |r| r.get(0))?;
    let outcome = if seen {
        Ok(Outcome::Nothing)
    } else {
        match Engine::open_message(tx, channel, item.seq, &item.payload, cache) {
            Ok(outcome) => Ok(outcome),
            Err(OpenError::Refused(refusal)) => Err(refusal),
            // Nothing recorded, nothing acknowledged: read again later.
            Err(OpenError::Local(e)) => return Err(e),
        }
    };
    let mut handled = Handled {
        joined: false,
        revoke: Vec::new(),
    };
    match outcome {
        Ok(Outcome::Group(outcome)) => {
            let applied = apply_group(tx, channel, item.seq, outcome, (now, drain), report)?;
            handled.revoke = applied.revoke;
            handled.joined = applied.joined;
        }
        Ok(outcome) => {
            let content = match &outcome {
                Outcome::Processed { frame } => frame
                    .as_ref()
                    .is_some_and(|f| matches!(f, PairFrame::Text { .. } | PairFrame::Content(_))),
                _ => false,
            };
            if !content {
                cache.save(tx)?;
            }
            handled.joined = apply(tx, channel, item.seq, outcome, (now, drain), report)?;
        }
        Err(detail) => {
            let detail = format!(
                "message {} on {} refused: {detail}",
                item.seq, channel.relay_url
            );
            record_integrity_event(tx, conv, now, detail, report)?;
        }
    }
    tx.prepare_cached("INSERT OR IGNORE INTO seen (conversation_id, digest) VALUES (?1, ?2)")?
        .execute(params![conv, digest])?;
    tx.prepare_cached("UPDATE channels SET cursor = MAX(cursor, ?2) WHERE id = ?1")?
        .execute(params![channel.id, ms(item.seq)])?;
    Ok(handled)
}

/// Returns whether the conversation became active.
fn apply(
    tx: &Transaction<'_>,
    channel: &ChannelRow,
    seq: u64,
    outcome: Outcome,
    (now, drain): (u64, u64),
    report: &mut SyncReport,
) -> Result<bool> {
    let conv = channel.conversation_id.as_str();
    match outcome {
        Outcome::Nothing | Outcome::Group(_) => {}
        Outcome::Joined(snapshot) => {
            tx.execute(
                "UPDATE conversations SET state = 'active', mls_state = ?2, pending_kp = NULL, expires_at = NULL, \
                 last_activity = ?3 WHERE id = ?1",
                params![conv, snapshot.to_bytes().as_slice(), ms(now)],
            )?;
            return Ok(true);
        }
        Outcome::Processed { frame } => {
            if let Some(message) = frame.as_ref().and_then(|f| Received::from_frame(f, None)) {
                receive_message(tx, conv, message, now, report)?;
                return Ok(false);
            }
            match frame {
                Some(PairFrame::Text { .. } | PairFrame::Content(_) | PairFrame::MemberTags(_)) => {
                }
                Some(PairFrame::Profile { display_name }) => {
                    tx.execute(
                        "UPDATE conversations SET contact_name = ?2 WHERE id = ?1",
                        params![conv, display_name],
                    )?;
                }
                Some(PairFrame::Channel(grant)) => {
                    tx.execute(
                        "INSERT OR IGNORE INTO channels (conversation_id, relay_url, relay_id, write_id, read_id, key, owner, preferred) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0)",
                        params![conv, grant.relay_url, grant.relay_id.0, grant.write_id.0, grant.read_id.0, grant.key],
                    )?;
                }
                Some(PairFrame::KeyPackage(kp)) => {
                    tx.execute(
                        "UPDATE conversations SET contact_kp = ?2 WHERE id = ?1",
                        params![conv, kp],
                    )?;
                }
                Some(PairFrame::Move(moved)) => {
                    if moved.key.is_some() {
                        crate::moving::receive_move(tx, conv, channel, seq, &moved, now, drain)?;
                    } else {
                        record_integrity_event(
                            tx,
                            conv,
                            now,
                            "an address update without a key for you was ignored".into(),
                            report,
                        )?;
                    }
                }
                Some(PairFrame::Introduction(intro)) => {
                    crate::intro::receive(tx, conv, intro, now, report)?;
                }
                Some(PairFrame::GroupInvite(invite)) => {
                    match join_from_pair(tx, conv, &invite, now) {
                        Ok((group, notices)) => {
                            report.joined_groups.push(group);
                            report.notices.extend(notices);
                        }
                        Err(OpenError::Refused(detail)) => record_integrity_event(
                            tx,
                            conv,
                            now,
                            format!("a group invitation could not be used: {detail}"),
                            report,
                        )?,
                        Err(OpenError::Local(e)) => return Err(e),
                    }
                }
                None => {}
            }
        }
    }
    Ok(false)
}
