//! Invitations, 1:1 conversations, sending, reading, listing.
//! Specs: `docs/spec/inbox-v1.md`, `docs/spec/pair-v1.md`.

use std::time::Duration;

use ed25519_dalek::SigningKey;

use kith_crypto::mls::{IdentityKey, Session, key_package};
use kith_crypto::padding::{pad, unpad};
use kith_crypto::seal::SealKey;
use kith_relay_client::{ChannelOptions, generate_key, public_key};
use kith_wire::Codec;
use kith_wire::conv::{ChannelGrant, Envelope, GroupInvitation, Invitation, PairFrame};
use kith_wire::relay::response::ErrorCode;
use kith_wire::relay::{KeyGrant, Rights, SIZE_BUCKETS, WriteId, from_hex_vec, to_hex};
use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use crate::config::millis;

use crate::conv::group::GROUP_INVITATION_CONTEXT;
use crate::conv::inbox::{INVITATION_CONTEXT, INVITATION_TTL};
use crate::error::{CoreError, Result, check_name};
use crate::ids::{conversation_id, safety_number};
use crate::link::{InviteLink, claim_key};
use crate::runtime::personas::identity_for;
use crate::runtime::sync::not_found;
use crate::runtime::{Engine, base_url};
use crate::store;
use crate::store::{
    NewPair, PairChannel, SharedChannel, contact_name, envelope_payload, insert_channel, ms,
    start_pair,
};
use crate::views::{
    Accepted, ChannelInfo, ConversationInfo, ConversationView, IntegrityEvent, Invite, MessageView,
};

impl Engine {
    /// Creates a one-time invitation on `relay` (or the profile's relay),
    /// showing `name` (or the profile's name) to whoever accepts it.
    pub async fn invite(&mut self, relay: Option<&str>, name: Option<&str>) -> Result<Invite> {
        self.invite_as(relay, name, None).await
    }

    /// [`Self::invite`] from a persona: the conversation uses its key.
    pub async fn invite_as(
        &mut self,
        relay: Option<&str>,
        name: Option<&str>,
        persona: Option<&str>,
    ) -> Result<Invite> {
        name.map(check_name).transpose()?;
        let profile = self.profile()?;
        let new = identity_for(&self.db, persona)?;
        let my_name = new.shown(name, &profile.name);
        let relay_url = profile.host(relay)?;
        let SharedChannel { owner, grant } = self.create_shared_channel(&relay_url, None).await?;
        let identity = new.key;
        let (kp, pending) = key_package(&identity)?;
        let expires_at = self.now().saturating_add(millis(INVITATION_TTL));
        let id = conversation_id(&grant.write_id);
        let now = ms(self.now());
        // Stored before the blob exists: a Welcome can only arrive once the
        // link is out, and then the channel must already be ours to read.
        let at = self.now();
        let tx = self.db.transaction()?;
        tx.execute(
            "INSERT INTO conversations (id, kind, state, my_name, identity, pending_kp, created_at, last_activity, expires_at, persona_id) \
             VALUES (?1, 'pair', 'invited', ?2, ?3, ?4, ?5, ?5, ?6, ?7)",
            params![id, my_name, identity.to_bytes().as_slice(), pending.to_bytes().as_slice(), now, ms(expires_at), new.persona],
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
        let link = self
            .publish_invitation(
                relay_url,
                &owner,
                write_id,
                SealKey::generate()?,
                INVITATION_CONTEXT,
                &Zeroizing::new(invitation.to_bytes()),
                INVITATION_TTL,
            )
            .await?;
        Ok(Invite::new(&link, id, expires_at))
    }

    /// Puts an invitation behind a one-time link (inbox-v1.md §2, group-v1.md
    /// §6.2): `plaintext` sealed with `seal_key` for `context` and padded, as
    /// a read-once blob on the channel `write_id` that `owner` made at
    /// `relay_url`, claimable only with the key the link's secret derives.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn publish_invitation(
        &mut self,
        relay_url: String,
        owner: &SigningKey,
        write_id: WriteId,
        seal_key: SealKey,
        context: &[u8],
        plaintext: &[u8],
        ttl: Duration,
    ) -> Result<InviteLink> {
        let blob = pad(&seal_key.seal(context, plaintext)?, &SIZE_BUCKETS)?;
        let chunk_size =
            u32::try_from(blob.len()).map_err(|_| CoreError::Corrupt("blob size".into()))?;
        let client = self.relay(&relay_url)?;
        let created = client
            .blob_create(
                owner,
                write_id,
                chunk_size,
                1,
                Some(ttl),
                Some(public_key(&claim_key(&seal_key)?)),
            )
            .await?;
        client
            .blob_put(owner, write_id, created.blob_id, 0, &blob)
            .await?;
        Ok(InviteLink {
            relay_url,
            blob_id: created.blob_id,
            key: seal_key,
        })
    }

    /// Accepts an invitation link: fetches (and so consumes) its blob,
    /// creates the conversation's MLS group and sends the Welcome.
    pub async fn accept(&mut self, link: &str, name: Option<&str>) -> Result<Accepted> {
        self.accept_as(link, name, None).await
    }

    /// [`Self::accept`] from a persona: the conversation (or group
    /// membership) uses its key.
    pub async fn accept_as(
        &mut self,
        link: &str,
        name: Option<&str>,
        persona: Option<&str>,
    ) -> Result<Accepted> {
        name.map(check_name).transpose()?;
        let link = InviteLink::parse(link)?;
        let client = self.relay(&link.relay_url)?;
        let chunk = match client
            .blob_claim(link.blob_id, &claim_key(&link.key)?)
            .await
        {
            Ok(chunk) => chunk,
            Err(e) if not_found(&e) => return Err(CoreError::InvitationUnavailable),
            Err(e) if e.code() == Some(ErrorCode::UNAUTHORIZED) => {
                // The relay refused the claim and kept the invitation.
                return Err(CoreError::BadInvitation(
                    "the key in the link does not fit this invitation (a character changed?); \
                     it is still usable with the right link"
                        .into(),
                ));
            }
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
                conversation: self
                    .accept_group(invitation, &link.key, name, persona)
                    .await?,
                warnings: Vec::new(),
            });
        };
        let invitation = Invitation::from_bytes(&plaintext)
            .map_err(|e| CoreError::BadInvitation(e.to_string()))?;
        self.accept_invitation(&invitation, name, persona).await
    }

    /// Starts the conversation an invitation offers (inbox-v1.md §3 from
    /// step 3): from a link, or a contact request this user accepts
    /// (address-v1.md §4).
    pub(crate) async fn accept_invitation(
        &mut self,
        invitation: &Invitation,
        name: Option<&str>,
        persona: Option<&str>,
    ) -> Result<Accepted> {
        let profile = self.profile()?;
        let new = identity_for(&self.db, persona)?;
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

        let identity = new.key.clone();
        let (mut session, welcome) = Session::create(&identity, &[&invitation.key_package])?;
        let my_name = new.shown(name, &profile.name);

        let mut warnings = Vec::new();
        let mut frames = vec![PairFrame::Profile {
            display_name: my_name.clone(),
        }];
        let mut own_channel = None;
        if let Some(own_url) = profile.relay_url.as_deref().filter(|u| *u != relay_url) {
            match self.create_shared_channel(own_url, None).await {
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
        let mut channels = vec![PairChannel {
            grant,
            key: grant.key,
            owner: false,
            preferred: true,
        }];
        if let Some(shared) = &own_channel {
            channels.push(PairChannel {
                grant: &shared.grant,
                key: shared.owner.to_bytes(),
                owner: true,
                preferred: false,
            });
        }
        let at = self.now();
        let tx = self.db.transaction()?;
        start_pair(
            &tx,
            &NewPair {
                id: &id,
                contact_name: &invitation.display_name,
                my_name: &my_name,
                identity: &identity,
                snapshot: &snapshot,
                introduced_by: None,
                persona: new.persona,
                channels: &channels,
                queued: &payloads,
                at,
            },
        )?;
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
    /// READ|WRITE capability key for the contact; with a `ttl`, the channel
    /// and its messages expire (an invitation's inbox).
    pub(crate) async fn create_shared_channel(
        &mut self,
        url: &str,
        ttl: Option<Duration>,
    ) -> Result<SharedChannel> {
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
                    message_ttl: ttl,
                    channel_ttl: ttl,
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

    pub(crate) fn is_group(&self, id: &str) -> Result<bool> {
        Ok(self.db.query_row(
            "SELECT kind = 'group' FROM conversations WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?)
    }

    /// The profile's name and relay.
    pub fn profile_view(&self) -> Result<crate::views::ProfileView> {
        let profile = self.profile()?;
        Ok(crate::views::ProfileView {
            name: profile.name,
            relay: profile.relay_url,
        })
    }

    /// Conversations, newest activity first.
    pub fn list(&self) -> Result<Vec<ConversationView>> {
        let mut stmt = self.db.prepare(
            "SELECT c.id, COALESCE(c.local_name, c.contact_name, \
                      CASE c.state WHEN 'invited' THEN '(invitation not yet accepted)' ELSE 'contact' END), \
                    c.state, c.unread, c.last_activity, c.my_name, \
                    (SELECT COUNT(*) FROM integrity_events e WHERE e.conversation_id = c.id), c.kind, \
                    c.introduced_by, c.blocked \
             FROM conversations c WHERE c.kind != 'address' ORDER BY c.last_activity DESC, c.id",
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
    /// the order they were stored); marks them read.
    pub fn read(&mut self, conv: &str) -> Result<Vec<MessageView>> {
        let id = self.resolve(conv)?;
        self.purge_expired()?;
        let messages = self.load_messages(&id, Which::All)?;
        self.mark_read(&id)?;
        Ok(messages)
    }

    /// A page of the conversation's messages, in the order `read` shows
    /// them: the last `limit` before the message `before` (by its full
    /// id), or the last `limit` of all. Marks nothing read, so
    /// that a window scrolling back through 10,000 messages loads only what
    /// it shows (docs/api.md).
    pub fn messages(
        &mut self,
        conv: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<MessageView>> {
        let id = self.resolve(conv)?;
        self.purge_expired()?;
        let before = match before {
            None => None,
            Some(message) => {
                let bytes = from_hex_vec(message)
                    .ok_or_else(|| CoreError::NoSuchMessage(message.to_string()))?;
                let at = self
                    .db
                    .query_row(
                        "SELECT sent_at, seq FROM messages WHERE conversation_id = ?1 AND message_id = ?2",
                        params![id, bytes],
                        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                    )
                    .optional()?
                    .ok_or_else(|| CoreError::NoSuchMessage(message.to_string()))?;
                Some(at)
            }
        };
        let limit = i64::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
        let mut page = self.load_messages(&id, Which::Last { before, limit })?;
        page.reverse();
        Ok(page)
    }

    /// One message of a conversation by its full id, as `read` shows it;
    /// `None` if it is not (or no longer) there.
    pub fn message(&self, conv_id: &str, message_id: &str) -> Result<Option<MessageView>> {
        let Some(bytes) = from_hex_vec(message_id) else {
            return Ok(None);
        };
        if self.find_by_id(conv_id)?.is_none() {
            return Ok(None);
        }
        Ok(self.load_messages(conv_id, Which::One(bytes))?.pop())
    }

    /// Marks every message of the conversation read, owing read receipts
    /// for them (sent by the next sync, or at once by the caller:
    /// [`Engine::flush_receipts`]).
    pub fn mark_read(&mut self, conv: &str) -> Result<()> {
        let id = self.resolve(conv)?;
        let now = self.now();
        let tx = self.db.transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO receipts_due (conversation_id, target, status) \
             SELECT conversation_id, content_id, 2 FROM messages \
             WHERE conversation_id = ?1 AND outgoing = 0 AND read_at IS NULL AND content_id IS NOT NULL",
            [&id],
        )?;
        tx.execute(
            "UPDATE messages SET read_at = ?2 WHERE conversation_id = ?1 AND outgoing = 0 AND read_at IS NULL",
            params![id, ms(now)],
        )?;
        tx.execute(
            "UPDATE conversations SET unread = 0 WHERE id = ?1 AND unread != 0",
            [&id],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn load_messages(&self, id: &str, which: Which) -> Result<Vec<MessageView>> {
        let name = contact_name(&self.db, id)?;
        let me = self.my_key(id)?;
        let others: u64 = if self.is_group(id)? {
            self.db.query_row(
                "SELECT COUNT(*) FROM group_members WHERE conversation_id = ?1 AND identity_key != ?2",
                params![id, me],
                |r| r.get::<_, i64>(0),
            )?
            .try_into()
            .unwrap_or(0)
        } else {
            1
        };
        const COLUMNS: &str = "SELECT message_id, outgoing, sent_at, received_at, text, sender, \
             needs_newer, subject, content_id, reply_to, edited, deleted, kind, data, data_type, \
             state, expires_at FROM messages WHERE conversation_id = ?1";
        let rows: Vec<(MessageView, store::StoredKind)> = {
            let (sql, args): (String, Vec<rusqlite::types::Value>) = match which {
                Which::All => (format!("{COLUMNS} ORDER BY sent_at, seq"), vec![]),
                Which::One(bytes) => (
                    format!("{COLUMNS} AND message_id = ?2"),
                    vec![rusqlite::types::Value::Blob(bytes)],
                ),
                Which::Last {
                    before: None,
                    limit,
                } => (
                    format!("{COLUMNS} ORDER BY sent_at DESC, seq DESC LIMIT ?2"),
                    vec![limit.into()],
                ),
                Which::Last {
                    before: Some((sent_at, seq)),
                    limit,
                } => (
                    format!(
                        "{COLUMNS} AND (sent_at, seq) < (?3, ?4) ORDER BY sent_at DESC, seq DESC LIMIT ?2"
                    ),
                    vec![limit.into(), sent_at.into(), seq.into()],
                ),
            };
            let mut stmt = self.db.prepare_cached(&sql)?;
            let mut all: Vec<rusqlite::types::Value> = vec![id.to_string().into()];
            all.extend(args);
            let rows = stmt.query_map(rusqlite::params_from_iter(all), |r| {
                let outgoing: bool = r.get(1)?;
                let view = MessageView {
                    id: to_hex(&r.get::<_, Vec<u8>>(0)?),
                    conversation: id.to_string(),
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
                    subject: r.get(7)?,
                    edited: r.get(10)?,
                    deleted: r.get(11)?,
                    expires_at: r
                        .get::<_, Option<i64>>(16)?
                        .and_then(|t| u64::try_from(t).ok()),
                    ..MessageView::default()
                };
                let stored = store::StoredKind {
                    content_id: r.get(8)?,
                    reply_to: r.get(9)?,
                    kind: r.get(12)?,
                    data: r.get(13)?,
                    data_type: r.get(14)?,
                    state: r.get(15)?,
                };
                Ok((view, stored))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        let mut messages = Vec::with_capacity(rows.len());
        for (mut view, stored) in rows {
            store::complete_view(&self.db, id, &me, others, &mut view, &stored)?;
            messages.push(view);
        }
        Ok(messages)
    }

    /// Deletes messages whose disappearing timer ran out (content-v1.md
    /// §7.9), everywhere in the profile, and leaves no copy in the log.
    pub fn purge_expired(&mut self) -> Result<()> {
        let now = self.now();
        let tx = self.db.transaction()?;
        let purged = store::purge_expired(&tx, now)?;
        tx.commit()?;
        if purged {
            store::purge_log(&self.db)?;
            self.remove_gone_copies()?;
        }
        Ok(())
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
            persona: self.db.query_row(
                "SELECT p.name FROM conversations c LEFT JOIN personas p ON p.id = c.persona_id WHERE c.id = ?1",
                [&id],
                |r| r.get(0),
            )?,
            links: self.links(&id)?,
            attestations: self.attestations(&id)?,
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

/// Which of a conversation's messages [`Engine::load_messages`] loads.
enum Which {
    All,
    One(Vec<u8>),
    /// The last `limit`, before (sent_at, seq) if given, newest first.
    Last {
        before: Option<(i64, i64)>,
        limit: i64,
    },
}
