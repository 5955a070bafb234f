//! Group operations (docs/spec/group-v1.md): create, add, remove, admins,
//! leave, links, and staging this member's commits.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use kith_crypto::mls::{
    Changes, IdentityKey, Session, decode_admins, encode_admins, key_package, key_package_identity,
};
use kith_crypto::seal::SealKey;
use kith_relay_client::{ChannelOptions, public_key};
use kith_wire::Codec;
use kith_wire::conv::{
    ChannelGrant, CommitKeys, Envelope, GroupInvitation, GroupState, GroupStateRef, GroupWelcome,
    JoinRequest, MemberEntry, MlsBlobRef,
};
use kith_wire::relay::{BlobId, KeyGrant, MAX_PAYLOAD, PublicKey, Rights, bucket_for, to_hex};
use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::config::millis;
use crate::conv::Effects;
use crate::conv::group::{
    GROUP_INVITATION_CONTEXT, GroupInput, GroupV1, JOIN_REQUEST_CONTEXT, group_channel,
    group_roster, is_blocked_member, member_name, propose_leave, seal_keys, seal_state, split_tags,
    upsert_member,
};
use crate::conv::inbox::INVITATION_TTL;
use crate::error::{CoreError, OpenError, Result, check_name, refused};
use crate::ids::{conversation_id, random};
use crate::runtime::personas::identity_for;
use crate::runtime::sync::{not_found, open_and_apply};
use crate::runtime::{Engine, base_url};
use crate::store::{
    ChannelRole, ChannelRow, ConversationKind, ConversationState, GroupExit, GroupOpKind,
    QueueOptions, SharedChannel, close_group, envelope_payload, insert_channel, load_versioned, ms,
    queue_with, record_integrity_event, store_versioned,
};
use crate::views::{ConversationView, GroupChange, Invite, MemberView, Notice, SyncReport};
use crate::{recognition, store};

/// Syncs a group command waits through for its commit to be taken.
const DRIVE_ROUNDS: usize = 12;

/// The most the adds of one commit may weigh (key packages and member
/// entries): half the largest size bucket, so a commit always fits with
/// room to spare (group-v1.md §6.4).
const COMMIT_ADD_BUDGET: usize = 128 * 1024;

/// How long a published group state stays on the relay: as long as a
/// group link.
const STATE_TTL: std::time::Duration = INVITATION_TTL;

/// Where a group's blob is on its relay (group-v1.md §6.3).
pub(crate) struct BlobSpan {
    pub(crate) blob_id: BlobId,
    pub(crate) chunk_size: u32,
    pub(crate) chunk_count: u32,
    pub(crate) length: u32,
}

/// What adding one member weighs in a commit: its key package in the
/// proposal, and its entry (name, keys, tags) in the sealed `CommitKeys`.
fn add_weight(op: &Op) -> usize {
    let entry = op.member_name.as_ref().map_or(0, String::len)
        + op.tags.as_ref().map_or(0, Vec::len)
        + 2 * 32
        + 16;
    op.key_package.as_ref().map_or(0, Vec::len) + entry
}

/// A change this member asked for (a `group_ops` row).
#[derive(Debug)]
struct Op {
    id: i64,
    kind: GroupOpKind,
    key_package: Option<Vec<u8>>,
    capability_seed: Option<[u8; 32]>,
    member_name: Option<String>,
    target: Option<Vec<u8>>,
    /// A link joiner's recognition tags (§7.1), concatenated.
    tags: Option<Vec<u8>>,
}

/// Column values of a new `group_ops` row.
#[derive(Default)]
struct OpInsert {
    key_package: Option<Vec<u8>>,
    capability_seed: Option<Vec<u8>>,
    member_name: Option<String>,
    deliver_to: Option<String>,
    inbox_channel: Option<i64>,
    target: Option<Vec<u8>>,
}

impl Engine {
    /// Creates a group hosted on `relay` (default: this profile's relay),
    /// with this user as its only member and admin.
    pub async fn group_create(
        &mut self,
        name: &str,
        relay: Option<&str>,
    ) -> Result<ConversationView> {
        self.group_create_as(name, relay, None).await
    }

    /// [`Self::group_create`] from a persona: this user's membership uses
    /// its key and name.
    pub async fn group_create_as(
        &mut self,
        name: &str,
        relay: Option<&str>,
        persona: Option<&str>,
    ) -> Result<ConversationView> {
        check_name(name)?;
        let profile = self.profile()?;
        let new = identity_for(&self.db, persona)?;
        let my_name = new.shown(None, &profile.name);
        let relay_url = profile.host(relay)?;
        let client = self.relay(&relay_url)?;
        let info = client.info().await?;
        let owner = kith_relay_client::generate_key()?;
        let created = client
            .create_channel(&owner, ChannelOptions::default())
            .await?;
        let grant = ChannelGrant {
            relay_url: base_url(&client),
            relay_id: info.relay_id,
            write_id: created.write_id,
            read_id: created.read_id,
            key: owner.to_bytes(),
        };
        let identity = new.key;
        let mut session = Session::create_group(&identity)?;
        let snapshot = session.snapshot()?;
        let id = conversation_id(&grant.write_id);
        let now = ms(self.now());
        let at = self.now();
        let tx = self.db.transaction()?;
        tx.execute(
            "INSERT INTO conversations (id, kind, state, contact_name, my_name, identity, mls_state, created_at, last_activity, last_commit, persona_id) \
             VALUES (?1, 'group', 'active', ?2, ?3, ?4, ?5, ?6, ?6, ?6, ?7)",
            params![id, name, my_name, identity.to_bytes().as_slice(), snapshot.to_bytes().as_slice(), now, new.persona],
        )?;
        insert_channel(&tx, &id, &grant, &grant.key, true, true, at)?;
        let tags = recognition::own_member_tags(&tx, identity.public())?;
        upsert_member(
            &tx,
            &id,
            &MemberEntry {
                identity_key: identity.public().to_vec(),
                display_name: my_name,
                capability_key: public_key(&owner).0,
                tags,
            },
        )?;
        tx.commit()?;
        self.view(&id)
    }

    fn group_id(&self, group: &str) -> Result<String> {
        let id = self.resolve(group)?;
        let (kind, state): (ConversationKind, ConversationState) = self.db.query_row(
            "SELECT kind, state FROM conversations WHERE id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if kind != ConversationKind::Group {
            return Err(CoreError::NotAGroup(group.to_string()));
        }
        match state {
            ConversationState::Active => Ok(id),
            ConversationState::Joining => Err(CoreError::NotYetConnected),
            _ => Err(CoreError::GroupClosed(group.to_string())),
        }
    }

    fn require_admin(&self, id: &str) -> Result<Session> {
        let session = self.load(id)?;
        let me = self.own_identity(id)?;
        if !session.admins().unwrap_or_default().contains(&me) {
            return Err(CoreError::NotAdmin);
        }
        Ok(session)
    }

    fn own_identity(&self, id: &str) -> Result<Vec<u8>> {
        let bytes: Vec<u8> = self.db.query_row(
            "SELECT identity FROM conversations WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?;
        Ok(IdentityKey::from_bytes(&Zeroizing::new(bytes))?
            .public()
            .to_vec())
    }

    /// The group's members, admins marked.
    pub fn group_members(&self, group: &str) -> Result<Vec<MemberView>> {
        let id = self.group_id(group)?;
        let session = self.load(&id)?;
        let admins = session.admins().unwrap_or_default();
        let own = session.own_index();
        session
            .members()
            .into_iter()
            .map(|m| {
                Ok(MemberView {
                    name: if m.index == own {
                        "me".to_string()
                    } else {
                        member_name(&self.db, &id, &m.identity_key)?
                    },
                    id: to_hex(m.identity_key.get(..8).unwrap_or(&m.identity_key)),
                    admin: admins.contains(&m.identity_key),
                    me: m.index == own,
                    blocked: is_blocked_member(&self.db, &id, &m.identity_key)?,
                })
            })
            .collect()
    }

    /// A member of the group by name (case-insensitive) or id prefix.
    fn find_member(&self, id: &str, who: &str) -> Result<Vec<u8>> {
        if who == "me" {
            return self.own_identity(id);
        }
        let session = self.load(id)?;
        let mut found = Vec::new();
        for m in session.members() {
            let name = member_name(&self.db, id, &m.identity_key)?;
            if name.eq_ignore_ascii_case(who)
                || to_hex(&m.identity_key).starts_with(&who.to_lowercase())
            {
                found.push((name, m.identity_key));
            }
        }
        match found.len() {
            1 => Ok(found.remove(0).1),
            0 => Err(CoreError::NoSuchMember(who.to_string())),
            _ => Err(CoreError::Ambiguous(
                who.to_string(),
                found
                    .into_iter()
                    .map(|(n, k)| format!("{n} ({})", to_hex(k.get(..8).unwrap_or(&k))))
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }

    fn insert_op(
        &self,
        id: &str,
        kind: GroupOpKind,
        fill: impl FnOnce(&mut OpInsert),
    ) -> Result<i64> {
        let mut op = OpInsert::default();
        fill(&mut op);
        self.db.execute(
            "INSERT INTO group_ops (conversation_id, kind, key_package, capability_seed, member_name, deliver_to, inbox_channel, target, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![id, kind, op.key_package, op.capability_seed, op.member_name, op.deliver_to, op.inbox_channel, op.target, ms(self.now())],
        )?;
        Ok(self.db.last_insert_rowid())
    }

    /// Adds a contact (a 1:1 conversation) to the group, with the spare key
    /// package the contact gave for this (a fresh identity of theirs).
    pub async fn group_add(&mut self, group: &str, contact: &str) -> Result<GroupChange> {
        let id = self.group_id(group)?;
        self.require_admin(&id)?;
        let pair = self.resolve(contact)?;
        let (kind, state, kp, name): (
            ConversationKind,
            ConversationState,
            Option<Vec<u8>>,
            Option<String>,
        ) = self.db.query_row(
            "SELECT kind, state, contact_kp, COALESCE(local_name, contact_name) FROM conversations WHERE id = ?1",
            [&pair],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        if kind != ConversationKind::Pair || state != ConversationState::Active {
            return Err(CoreError::NotAContact(contact.to_string()));
        }
        let blocked: bool = self.db.query_row(
            "SELECT blocked FROM conversations WHERE id = ?1",
            [&pair],
            |r| r.get(0),
        )?;
        if blocked {
            return Err(CoreError::Blocked(contact.to_string()));
        }
        let seed: [u8; 32] = random()?;
        let tx = self.db.transaction()?;
        tx.execute(
            "UPDATE conversations SET contact_kp = NULL WHERE id = ?1",
            [&pair],
        )?;
        tx.commit()?;
        let waiting = kp.is_none();
        let op = self.insert_op(&id, GroupOpKind::Add, |o| {
            o.key_package = kp;
            o.capability_seed = Some(seed.to_vec());
            o.member_name = name;
            o.deliver_to = Some(pair);
        })?;
        if waiting {
            // Their spare key package comes with their next sync; the add
            // is made then, by whichever sync (or watch) of ours sees it.
            return Ok(GroupChange {
                group: self.view(&id)?,
                done: false,
                warnings: vec![format!(
                    "{contact} has not yet sent the key package needed to add them: they are added \
                     as soon as it arrives (after their next sync)"
                )],
            });
        }
        self.drive(&id, op).await
    }

    /// Removes a member: their capability key is revoked at the relay in
    /// the same step, and the commit locks them out of what follows.
    pub async fn group_remove(&mut self, group: &str, member: &str) -> Result<GroupChange> {
        let id = self.group_id(group)?;
        let session = self.require_admin(&id)?;
        let target = self.find_member(&id, member)?;
        if session
            .members()
            .iter()
            .any(|m| m.index == session.own_index() && m.identity_key == target)
        {
            return Err(CoreError::RemoveSelf);
        }
        let op = self.insert_op(&id, GroupOpKind::Remove, |o| o.target = Some(target))?;
        self.drive(&id, op).await
    }

    /// Makes a member an admin (`add`) or takes it back (`remove`).
    pub async fn group_set_admin(
        &mut self,
        group: &str,
        member: &str,
        admin: bool,
    ) -> Result<GroupChange> {
        let id = self.group_id(group)?;
        let session = self.require_admin(&id)?;
        let target = self.find_member(&id, member)?;
        let mut admins = session.admins().unwrap_or_default();
        admins.retain(|a| *a != target);
        if admin {
            admins.push(target);
        }
        if admins.is_empty() {
            return Err(CoreError::LastAdmin);
        }
        let op = self.insert_op(&id, GroupOpKind::Admins, |o| {
            o.target = Some(encode_admins(&admins))
        })?;
        self.drive(&id, op).await
    }

    /// Leaves the group: a proposal to remove this member, which the next
    /// member to commit carries out (and an admin revokes the key).
    pub async fn group_leave(&mut self, group: &str) -> Result<ConversationView> {
        let id = self.group_id(group)?;
        // The proposal must be for the epoch the channel is in.
        self.catch_up(&id).await?;
        let session = self.load(&id)?;
        let me = self.own_identity(&id)?;
        let admins = session.admins().unwrap_or_default();
        let members = session.members();
        let other_admins = admins
            .iter()
            .filter(|a| **a != me && members.iter().any(|m| m.identity_key == **a))
            .count();
        if members.len() > 1 && admins.contains(&me) && other_admins == 0 {
            return Err(CoreError::LastAdmin);
        }
        if members.len() > 1 {
            let at = self.now();
            let tx = self.db.transaction()?;
            propose_leave(&tx, &id, at)?;
            tx.execute("DELETE FROM group_ops WHERE conversation_id = ?1", [&id])?;
            tx.commit()?;
            self.flush_outbox(Some(&id))
                .await
                .map_err(|e| CoreError::Queued(e.to_string()))?;
        } else {
            self.db.execute(
                "UPDATE conversations SET state = 'closed', closed_reason = 'you left' WHERE id = ?1",
                [&id],
            )?;
            let channel = group_channel(&self.db, &id)?;
            let client = self.relay(&channel.relay_url)?;
            let _ = client.delete_channel(&channel.key, channel.write_id).await;
        }
        self.view(&id)
    }

    /// A one-time link that lets whoever opens it ask to join; this admin's
    /// next sync adds them.
    pub async fn group_invite(&mut self, group: &str) -> Result<Invite> {
        let id = self.group_id(group)?;
        self.require_admin(&id)?;
        let (group_name, my_name): (String, String) = self.db.query_row(
            "SELECT COALESCE(contact_name, ''), my_name FROM conversations WHERE id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let host = group_channel(&self.db, &id)?;
        let ttl = INVITATION_TTL;
        let SharedChannel {
            owner,
            grant: inbox,
        } = self
            .create_shared_channel(&host.relay_url, Some(ttl))
            .await?;
        let write_id = inbox.write_id;
        let seal_key = SealKey::generate()?;
        let expires_at = self.now().saturating_add(millis(ttl));
        insert_channel(
            &self.db,
            &id,
            &inbox,
            &owner.to_bytes(),
            true,
            false,
            self.now(),
        )?;
        self.db.execute(
            "UPDATE channels SET role = 'inbox', seal_key = ?2 WHERE id = ?1",
            params![self.db.last_insert_rowid(), seal_key.as_bytes()],
        )?;
        let invitation = GroupInvitation {
            inbox,
            group_name,
            inviter_name: my_name,
            expires_at_ms: expires_at,
        };
        let link = self
            .publish_invitation(
                host.relay_url,
                &owner,
                write_id,
                seal_key,
                GROUP_INVITATION_CONTEXT,
                &Zeroizing::new(invitation.to_bytes()),
                ttl,
            )
            .await?;
        Ok(Invite::new(&link, id, expires_at))
    }

    /// Accepts a group link (called by `accept` once the blob opened as a
    /// group invitation): asks to join on the link's inbox channel.
    pub(crate) async fn accept_group(
        &mut self,
        invitation: GroupInvitation,
        seal_key: &SealKey,
        name: Option<&str>,
        persona: Option<&str>,
    ) -> Result<ConversationView> {
        let profile = self.profile()?;
        let new = identity_for(&self.db, persona)?;
        if invitation.expires_at_ms < self.now() {
            return Err(CoreError::InvitationUnavailable);
        }
        let id = conversation_id(&invitation.inbox.write_id);
        if self.find_by_id(&id)?.is_some() {
            return Err(CoreError::OwnInvitation);
        }
        let inbox_client = self.relay(&invitation.inbox.relay_url)?;
        if inbox_client.info().await?.relay_id != invitation.inbox.relay_id {
            return Err(CoreError::BadInvitation(
                "the relay is not the one the invitation names".into(),
            ));
        }
        let my_name = new.shown(name, &profile.name);
        let identity = new.key;
        let (kp, pending) = key_package(&identity)?;
        let request = JoinRequest {
            key_package: kp,
            display_name: my_name.clone(),
            tags: recognition::own_member_tags(&self.db, identity.public())?,
        };
        let sealed = seal_key.seal(JOIN_REQUEST_CONTEXT, &request.to_bytes())?;
        let payload = envelope_payload(&Envelope::JoinRequest(sealed))?;
        let now = ms(self.now());
        let at = self.now();
        let tx = self.db.transaction()?;
        tx.execute(
            "INSERT INTO conversations (id, kind, state, contact_name, my_name, identity, pending_kp, created_at, last_activity, expires_at, persona_id) \
             VALUES (?1, 'group', 'joining', ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)",
            params![id, invitation.group_name, my_name, identity.to_bytes().as_slice(), pending.to_bytes().as_slice(), now, ms(invitation.expires_at_ms), new.persona],
        )?;
        insert_channel(
            &tx,
            &id,
            &invitation.inbox,
            &invitation.inbox.key,
            false,
            true,
            at,
        )?;
        let inbox_id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE channels SET role = 'inbox', seal_key = ?2 WHERE id = ?1",
            params![inbox_id, seal_key.as_bytes()],
        )?;
        queue_with(
            &tx,
            &id,
            &payload,
            &QueueOptions {
                channel: Some(inbox_id),
                ..QueueOptions::default()
            },
            at,
        )?;
        tx.commit()?;
        if let Err(e) = self.flush_outbox(Some(&id)).await {
            return Err(CoreError::Queued(e.to_string()));
        }
        self.view(&id)
    }

    /// Syncs until this user's change `op` is in the group, or a few rounds
    /// have passed (then it stays queued for later syncs).
    async fn drive(&mut self, id: &str, op: i64) -> Result<GroupChange> {
        let mut warnings = Vec::new();
        for round in 0..DRIVE_ROUNDS {
            let report = self.sync().await?;
            warnings.extend(report.errors);
            let pending: bool = self.db.query_row(
                "SELECT EXISTS (SELECT 1 FROM group_ops WHERE id = ?1)",
                [op],
                |r| r.get(0),
            )?;
            if !pending {
                // The sync that confirmed the change also sent the Welcome
                // it unlocked (settle flushes the outbox).
                return Ok(GroupChange {
                    group: self.view(id)?,
                    done: true,
                    warnings,
                });
            }
            if round > 2 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        warnings.dedup();
        Ok(GroupChange {
            group: self.view(id)?,
            done: false,
            warnings,
        })
    }

    pub(super) async fn revoke(&mut self, conv: &str, key: [u8; 32]) -> Result<()> {
        let channel = group_channel(&self.db, conv)?;
        let client = self.relay(&channel.relay_url)?;
        // Revoking a key already revoked (by the admin who removed them)
        // succeeds (relay.md §5).
        client
            .revoke_key(&channel.key, channel.write_id, PublicKey(key))
            .await?;
        // And on a channel being retired after a move, best effort: it is
        // deleted soon anyway.
        for old in store::channels(&self.db, Some(conv))?
            .into_iter()
            .filter(|c| c.role == ChannelRole::Retiring)
        {
            let client = self.relay(&old.relay_url)?;
            let _ = client
                .revoke_key(&old.key, old.write_id, PublicKey(key))
                .await;
        }
        Ok(())
    }

    /// Builds one commit for this member's waiting changes (and a due leaf
    /// update, and proposals an admin should carry out). `force` commits
    /// pending proposals even for a non-admin (needed before sending).
    pub(crate) async fn stage(&mut self, id: &str, force: bool) -> Result<()> {
        // Read here, written after the relay calls below: only if no other
        // write came between.
        let mut read = load_versioned(&self.db, id)?;
        let session = &mut read.session;
        if session.has_pending_commit() {
            return Ok(());
        }
        self.fill_waiting_adds(id)?;
        let ops = self.unstaged_ops(id)?;
        let last_commit: Option<i64> = self.db.query_row(
            "SELECT last_commit FROM conversations WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?;
        let me = self.own_identity(id)?;
        let mut admins = session.admins().unwrap_or_default();
        let admin = admins.contains(&me);
        let due = last_commit
            .and_then(|t| u64::try_from(t).ok())
            .is_none_or(|t| {
                self.now().saturating_sub(t) >= millis(self.config.group_update_interval)
            });
        let proposals = session.commit_required() && (admin || force);
        if ops.is_empty() && !due && !proposals {
            return Ok(());
        }
        let channel = group_channel(&self.db, id)?;
        let client = self.relay(&channel.relay_url)?;
        let members = session.members();
        let mut add: Vec<Vec<u8>> = Vec::new();
        let mut remove = Vec::new();
        let mut keys = CommitKeys::default();
        let mut admins_changed = false;
        let mut used = Vec::new();
        // The adds' ops, in the order of `add`, and what they weigh in the
        // commit (group-v1.md §6.4).
        let mut add_ops = Vec::new();
        let mut add_bytes = 0;
        for op in ops {
            if op.kind != GroupOpKind::Update && !admin {
                self.db
                    .execute("DELETE FROM group_ops WHERE id = ?1", [op.id])?;
                return Err(CoreError::NotAdmin);
            }
            match op.kind {
                GroupOpKind::Add => {
                    // What does not fit this commit waits for the next one.
                    let weight = add_weight(&op);
                    if !add.is_empty() && add_bytes + weight > COMMIT_ADD_BUDGET {
                        continue;
                    }
                    let (Some(kp), Some(seed)) = (op.key_package, op.capability_seed) else {
                        return Err(CoreError::Corrupt("an add without a key package".into()));
                    };
                    add_bytes += weight;
                    add_ops.push(op.id);
                    let capability = public_key(&SigningKey::from_bytes(&seed));
                    // Registered before the commit exists: a Welcome must
                    // never name a channel the new member cannot read.
                    client
                        .add_key(
                            &channel.key,
                            channel.write_id,
                            KeyGrant {
                                key: capability,
                                rights: Rights::READ | Rights::WRITE,
                            },
                        )
                        .await?;
                    keys.added.push(MemberEntry {
                        identity_key: key_package_identity(&kp)?,
                        display_name: op.member_name.unwrap_or_default(),
                        capability_key: capability.0,
                        // A link joiner's, from its request; a contact
                        // publishes its own (§7.1).
                        tags: split_tags(op.tags.as_deref().unwrap_or_default()),
                    });
                    add.push(kp);
                }
                GroupOpKind::Remove => {
                    let target = op.target.unwrap_or_default();
                    let Some(member) = members.iter().find(|m| m.identity_key == target) else {
                        // Gone already (left, or removed by another admin).
                        self.db
                            .execute("DELETE FROM group_ops WHERE id = ?1", [op.id])?;
                        continue;
                    };
                    // Revoked first, so the removed member cannot read the
                    // commit or anything after it.
                    if let Some(cap) = self.capability_of(id, &target)? {
                        client
                            .revoke_key(&channel.key, channel.write_id, PublicKey(cap))
                            .await?;
                    }
                    if admins.contains(&target) {
                        admins.retain(|a| *a != target);
                        admins_changed = true;
                    }
                    remove.push(member.index);
                }
                GroupOpKind::Admins => {
                    let wanted = decode_admins(op.target.as_deref().unwrap_or_default())?;
                    for member in &members {
                        let Some(cap) = self.capability_of(id, &member.identity_key)? else {
                            continue;
                        };
                        let was = admins.contains(&member.identity_key);
                        let will = wanted.contains(&member.identity_key);
                        if was != will {
                            let rights = if will {
                                Rights::ALL
                            } else {
                                Rights::READ | Rights::WRITE
                            };
                            client
                                .add_key(
                                    &channel.key,
                                    channel.write_id,
                                    KeyGrant {
                                        key: PublicKey(cap),
                                        rights,
                                    },
                                )
                                .await?;
                        }
                    }
                    admins = wanted;
                    admins_changed = true;
                }
                GroupOpKind::Update => {}
            }
            used.push(op.id);
        }
        let add_refs: Vec<&[u8]> = add.iter().map(Vec::as_slice).collect();
        let authenticated_data = seal_keys(session, &keys)?;
        let epoch = session.epoch();
        let mut staged = session.commit_with(Changes {
            add: &add_refs,
            remove: &remove,
            admins: admins_changed.then_some(admins.as_slice()),
            authenticated_data,
        })?;
        // The new members' tree and roster, published once for all of them
        // (§6.3), before the commit exists.
        let state = if add.is_empty() {
            None
        } else {
            let ratchet_tree = staged
                .tree
                .take()
                .ok_or_else(|| CoreError::Corrupt("a group commit without its tree".into()))?;
            let removed: Vec<&[u8]> = members
                .iter()
                .filter(|m| remove.contains(&m.index))
                .map(|m| m.identity_key.as_slice())
                .collect();
            let mut roster = group_roster(&self.db, id)?;
            roster.retain(|m| !removed.contains(&m.identity_key.as_slice()));
            roster.extend(keys.added.iter().cloned());
            let (key, sealed) = seal_state(&GroupState {
                ratchet_tree,
                roster,
            })?;
            Some(self.publish_state(&channel, key, &sealed).await?.to_bytes())
        };
        let payload = self.commit_payload(&channel, staged.commit).await?;
        let at = self.now();
        let tx = self.db.transaction()?;
        store_versioned(&tx, id, &mut read)?;
        for op in &used {
            let welcome = add_ops
                .iter()
                .position(|a| a == op)
                .and_then(|i| staged.welcomes.get(i));
            let state = welcome.and(state.as_ref());
            tx.execute(
                "UPDATE group_ops SET epoch = ?2, welcome = ?3, state_ref = ?4 WHERE id = ?1",
                params![op, ms(epoch), welcome, state],
            )?;
        }
        if used.is_empty() {
            // A bare update or carried-out proposals: tracked like any
            // change, so a lost race builds it again.
            tx.execute(
                "INSERT INTO group_ops (conversation_id, kind, epoch, created_at) VALUES (?1, 'update', ?2, ?3)",
                params![id, ms(epoch), ms(at)],
            )?;
        }
        queue_with(
            &tx,
            id,
            &payload,
            &QueueOptions {
                commit_epoch: Some(epoch),
                ..QueueOptions::default()
            },
            at,
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A commit as it goes on the channel: in the message itself or, when
    /// it does not fit the largest size bucket (a removal's path in a large
    /// group formed by adds), as a blob the message names (group-v1.md
    /// §6.5). The blob lives as long as the channel keeps its messages.
    async fn commit_payload(&mut self, channel: &ChannelRow, commit: Vec<u8>) -> Result<Vec<u8>> {
        let inline = Envelope::Mls(commit);
        if let Envelope::Mls(commit) = &inline
            && commit.len() <= self.config.inline_commit_limit
            && let Ok(payload) = envelope_payload(&inline)
        {
            return Ok(payload);
        }
        let Envelope::Mls(commit) = inline else {
            return Err(CoreError::Corrupt("a commit envelope changed kind".into()));
        };
        let limits = self.relay(&channel.relay_url)?.cached_info().await?.limits;
        let ttl = limits
            .default_message_ttl_secs
            .min(limits.max_blob_ttl_secs);
        let span = self
            .publish_blob(channel, &commit, Duration::from_secs(ttl.into()))
            .await?;
        envelope_payload(&Envelope::MlsBlob(MlsBlobRef {
            blob_id: span.blob_id.0,
            chunk_size: span.chunk_size,
            chunk_count: span.chunk_count,
            length: span.length,
            sha256: Sha256::digest(&commit).into(),
        }))
    }

    /// Publishes a group's sealed state as a blob on its channel (group-v1.md
    /// §6.3).
    async fn publish_state(
        &mut self,
        channel: &ChannelRow,
        key: [u8; 32],
        sealed: &[u8],
    ) -> Result<GroupStateRef> {
        let span = self.publish_blob(channel, sealed, STATE_TTL).await?;
        Ok(GroupStateRef {
            blob_id: span.blob_id.0,
            chunk_size: span.chunk_size,
            chunk_count: span.chunk_count,
            length: span.length,
            key,
        })
    }

    /// Stores `bytes` as a blob on a group's channel: one chunk of the
    /// smallest size bucket that holds it, or chunks of the largest, the
    /// last zero-filled (group-v1.md §6.3).
    async fn publish_blob(
        &mut self,
        channel: &ChannelRow,
        bytes: &[u8],
        ttl: Duration,
    ) -> Result<BlobSpan> {
        let length = u32::try_from(bytes.len())
            .map_err(|_| CoreError::Corrupt("a group blob over 4 GiB".into()))?;
        let (chunk_size, chunk_count) = match bucket_for(bytes.len()) {
            Some(bucket) => (bucket, 1),
            None => (MAX_PAYLOAD, length.div_ceil(MAX_PAYLOAD)),
        };
        let client = self.relay(&channel.relay_url)?;
        let created = client
            .blob_create(
                &channel.key,
                channel.write_id,
                chunk_size,
                chunk_count,
                Some(ttl),
                None,
            )
            .await?;
        let size = usize::try_from(chunk_size).unwrap_or(usize::MAX);
        for (index, chunk) in (0u32..).zip(bytes.chunks(size)) {
            let mut data = chunk.to_vec();
            data.resize(size, 0);
            client
                .blob_put(
                    &channel.key,
                    channel.write_id,
                    created.blob_id,
                    index,
                    &data,
                )
                .await?;
        }
        Ok(BlobSpan {
            blob_id: created.blob_id,
            chunk_size,
            chunk_count,
            length,
        })
    }

    /// The first `length` bytes of the blob a group names, from `relay_url`.
    pub(crate) async fn fetch_blob(&mut self, relay_url: &str, span: &BlobSpan) -> Result<Vec<u8>> {
        let client = self.relay(relay_url)?;
        let mut bytes = Vec::new();
        for index in 0..span.chunk_count {
            let chunk = client.blob_get(span.blob_id, index).await?;
            bytes.extend_from_slice(&chunk.data);
        }
        bytes.truncate(usize::try_from(span.length).unwrap_or(usize::MAX));
        Ok(bytes)
    }

    /// The sealed group state a Welcome names, from the group's relay.
    async fn fetch_state(&mut self, welcome: &GroupWelcome) -> Result<Vec<u8>> {
        let state = &welcome.state;
        let span = BlobSpan {
            blob_id: BlobId(state.blob_id),
            chunk_size: state.chunk_size,
            chunk_count: state.chunk_count,
            length: state.length,
        };
        self.fetch_blob(&welcome.channel.relay_url, &span).await
    }

    /// Completes the joins whose Welcome has arrived: fetches the group's
    /// state each names and joins with it (group-v1.md §6.3). Returns the
    /// groups joined; their channels are read next.
    pub(crate) async fn complete_joins(&mut self, report: &mut SyncReport) -> Result<Vec<String>> {
        let waiting: Vec<(String, Vec<u8>)> = {
            let mut stmt = self.db.prepare(
                "SELECT id, pending_welcome FROM conversations \
                 WHERE kind = 'group' AND state = 'joining' AND pending_welcome IS NOT NULL",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut joined = Vec::new();
        for (conv, welcome) in waiting {
            let welcome = GroupWelcome::from_bytes(&welcome)?;
            let input = match self.fetch_state(&welcome).await {
                Ok(sealed) => Ok(GroupInput::State {
                    conv: conv.clone(),
                    sealed,
                }),
                // Expired or never published: this Welcome can never be used.
                Err(CoreError::Relay(e)) if not_found(&e) => {
                    Err(refused("the group's state is not on its relay"))
                }
                Err(e) => {
                    report
                        .errors
                        .push(format!("{}: joining: {e}", welcome.group_name));
                    continue;
                }
            };
            let now = self.now();
            let mut group = GroupV1::new(self.moment(now));
            let mut fx = Effects::default();
            let tx = self.db.transaction()?;
            let done = match input {
                Ok(input) => open_and_apply(&mut group, &tx, input, &mut fx),
                Err(refusal) => Err(OpenError::Refused(refusal)),
            };
            match done {
                Ok(()) => {}
                Err(OpenError::Refused(refusal)) => {
                    record_integrity_event(
                        &tx,
                        &conv,
                        now,
                        format!("a group Welcome could not be used: {refusal}"),
                        &mut fx.report,
                    )?;
                    tx.execute(
                        "UPDATE conversations SET state = 'closed', pending_welcome = NULL, \
                         closed_reason = 'the invitation could not be completed' WHERE id = ?1",
                        [&conv],
                    )?;
                }
                Err(OpenError::Local(e)) => return Err(e),
            }
            tx.commit()?;
            joined.append(&mut fx.joined);
            fx.report.absorb(std::mem::take(report));
            *report = fx.report;
        }
        Ok(joined)
    }

    /// Gives waiting adds of contacts the key package that has arrived
    /// from them since (group-v1.md §6.1).
    fn fill_waiting_adds(&mut self, id: &str) -> Result<()> {
        let waiting: Vec<(i64, String)> = {
            let mut stmt = self.db.prepare(
                "SELECT id, deliver_to FROM group_ops WHERE conversation_id = ?1 AND kind = 'add' \
                 AND key_package IS NULL AND deliver_to IS NOT NULL",
            )?;
            let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for (op, pair) in waiting {
            let tx = self.db.transaction()?;
            let kp: Option<Vec<u8>> = tx.query_row(
                "SELECT contact_kp FROM conversations WHERE id = ?1",
                [&pair],
                |r| r.get(0),
            )?;
            if let Some(kp) = kp {
                tx.execute(
                    "UPDATE group_ops SET key_package = ?2 WHERE id = ?1",
                    params![op, kp],
                )?;
                tx.execute(
                    "UPDATE conversations SET contact_kp = NULL WHERE id = ?1",
                    [&pair],
                )?;
            }
            tx.commit()?;
        }
        Ok(())
    }

    fn unstaged_ops(&self, id: &str) -> Result<Vec<Op>> {
        let mut stmt = self.db.prepare(
            "SELECT id, kind, key_package, capability_seed, member_name, target, tags FROM group_ops \
             WHERE conversation_id = ?1 AND epoch IS NULL \
               AND NOT (kind = 'add' AND key_package IS NULL) ORDER BY id",
        )?;
        let rows = stmt.query_map([id], |r| {
            let seed: Option<Vec<u8>> = r.get(3)?;
            Ok(Op {
                id: r.get(0)?,
                kind: r.get(1)?,
                key_package: r.get(2)?,
                capability_seed: seed.and_then(|s| <[u8; 32]>::try_from(s.as_slice()).ok()),
                member_name: r.get(4)?,
                target: r.get(5)?,
                tags: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn capability_of(&self, id: &str, identity: &[u8]) -> Result<Option<[u8; 32]>> {
        let key: Option<Vec<u8>> = self
            .db
            .query_row(
                "SELECT capability_key FROM group_members WHERE conversation_id = ?1 AND identity_key = ?2",
                params![id, identity],
                |r| r.get(0),
            )
            .optional()?;
        Ok(key.and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok()))
    }

    /// The ids a fixed query (`SELECT id FROM conversations …`) gives.
    pub(crate) fn conversation_ids(&self, sql: &'static str) -> Result<Vec<String>> {
        let mut stmt = self.db.prepare(sql)?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Closes a group whose channel refuses this member (the relay answers
    /// `unauthorized` alike for a revoked key and a deleted channel,
    /// relay.md §4).
    pub(crate) fn close_lost_group(&mut self, conv: &str) -> Result<Option<Notice>> {
        let tx = self.db.transaction()?;
        let notice = close_group(&tx, conv, GroupExit::Refused)?;
        tx.commit()?;
        Ok(notice)
    }

    /// Sends a text to a group: proposals waiting for a commit are carried
    /// out first (MLS allows no application message before).
    pub(crate) async fn prepare_group_send(&mut self, id: &str) -> Result<()> {
        if !self.load(id)?.commit_required() {
            return Ok(());
        }
        self.stage(id, true).await?;
        for _ in 0..DRIVE_ROUNDS {
            self.sync().await?;
            if !self.load(id)?.commit_required() {
                return Ok(());
            }
        }
        Err(CoreError::Queued(
            "the group has a change waiting to be committed; try again".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::store::encrypt_in;
    use crate::testing::meet;
    use kith_testkit::{RelayOptions, RelayProcess};
    use kith_wire::conv::PairFrame;

    async fn person(dir: &std::path::Path, name: &str, relay: Option<&str>) -> Engine {
        Engine::init(&dir.join(name), name, relay, crate::Config::default())
            .await
            .unwrap()
    }

    /// Alex, on `relay`, who has met each of `names` (people without a
    /// relay); with Alex's conversation with each.
    async fn alex_with<const N: usize>(
        dir: &std::path::Path,
        relay: &str,
        names: [&str; N],
    ) -> (Engine, [(Engine, String); N]) {
        let mut alex = person(dir, "Alex", Some(relay)).await;
        let mut guests = Vec::new();
        for name in names {
            let mut guest = person(dir, name, None).await;
            let (on_alex, _) = meet(&mut alex, &mut guest).await;
            guests.push((guest, on_alex));
        }
        (alex, guests.try_into().unwrap())
    }

    /// Alex's group "Crew" with Blair (made admin) and Dani, added from
    /// the 1:1 conversations `ab` and `ad`; everyone synced.
    async fn crew(alex: &mut Engine, blair: &mut Engine, dani: &mut Engine, ab: &str, ad: &str) {
        alex.group_create("Crew", None).await.unwrap();
        assert!(alex.group_add("Crew", ab).await.unwrap().done);
        assert!(alex.group_add("Crew", ad).await.unwrap().done);
        blair.sync().await.unwrap();
        dani.sync().await.unwrap();
        assert!(
            alex.group_set_admin("Crew", "Blair", true)
                .await
                .unwrap()
                .done
        );
        blair.sync().await.unwrap();
        dani.sync().await.unwrap();
    }

    fn epoch(e: &Engine, group: &str) -> u64 {
        e.load(&e.resolve(group).unwrap()).unwrap().epoch()
    }

    fn mls_state(e: &Engine, conv: &str) -> Vec<u8> {
        e.db.query_row(
            "SELECT mls_state FROM conversations WHERE id = ?1",
            [conv],
            |r| r.get(0),
        )
        .unwrap()
    }

    /// A state read before another write (here a message sent) is never
    /// written over the newer one: the write fails as a local failure and
    /// the stored state stays the newer one (issue 12, finding 5).
    #[tokio::test]
    async fn a_state_read_before_another_write_is_not_written_over_it() {
        let dir = tempfile::tempdir().unwrap();
        let relay = RelayProcess::start(RelayOptions::default().unlimited()).unwrap();
        let (mut alex, [(_blair, ab)]) = alex_with(dir.path(), relay.url(), ["Blair"]).await;

        let mut stale = load_versioned(&alex.db, &ab).unwrap();
        alex.send(&ab, "hi").await.unwrap();
        let newer = mls_state(&alex, &ab);
        let tx = alex.db.transaction().unwrap();
        assert!(matches!(
            store_versioned(&tx, &ab, &mut stale),
            Err(CoreError::StateMoved)
        ));
        drop(tx);
        assert_eq!(mls_state(&alex, &ab), newer);

        let mut fresh = load_versioned(&alex.db, &ab).unwrap();
        let tx = alex.db.transaction().unwrap();
        store_versioned(&tx, &ab, &mut fresh).unwrap();
        tx.commit().unwrap();
    }

    /// A message made in one epoch and not yet taken when a commit lands
    /// (the race between reading to the head and appending): the relay
    /// refuses it behind the head, the sender reads the commit, encrypts
    /// the message again in the new epoch, and the member that commit
    /// added reads it; nobody sees it twice.
    #[tokio::test]
    async fn a_message_overtaken_by_a_commit_is_sent_again_in_the_new_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let relay = RelayProcess::start(RelayOptions::default().unlimited()).unwrap();
        let (mut alex, [(mut blair, ab), (mut dani, ad)]) =
            alex_with(dir.path(), relay.url(), ["Blair", "Dani"]).await;
        alex.group_create("Crew", None).await.unwrap();
        assert!(alex.group_add("Crew", &ab).await.unwrap().done);
        blair.sync().await.unwrap();
        let crew_b = blair.resolve("Crew").unwrap();
        let before = epoch(&blair, "Crew");

        // Blair's message is made and queued at the head she read ...
        let frame = PairFrame::Text {
            message_id: [7; 16],
            sent_at_ms: blair.now(),
            text: "made before Dani came".into(),
        };
        let tx = blair.db.transaction().unwrap();
        let sealed = encrypt_in(&tx, &crew_b, &frame).unwrap();
        let options = QueueOptions {
            epoch: Some(sealed.epoch),
            frame: Some(frame.to_bytes()),
            ..QueueOptions::default()
        };
        queue_with(&tx, &crew_b, &sealed.payload, &options, 0).unwrap();
        tx.commit().unwrap();
        // ... and Alex's commit adding Dani gets to the channel first.
        assert!(alex.group_add("Crew", &ad).await.unwrap().done);
        blair.flush_outbox(Some(&crew_b)).await.unwrap();
        assert_eq!(epoch(&blair, "Crew"), before + 1, "Blair read the commit");

        dani.sync().await.unwrap();
        alex.sync().await.unwrap();
        for e in [&mut dani, &mut alex] {
            let texts: Vec<String> = e
                .read("Crew")
                .unwrap()
                .into_iter()
                .map(|m| m.text)
                .collect();
            assert_eq!(texts, ["made before Dani came"]);
            assert!(e.integrity_events("Crew").unwrap().is_empty());
        }
    }

    /// Leaving completes even when an admin's commit, built before the
    /// leave proposal arrived, takes the proposal's epoch: the leaving
    /// member proposes again in the next epoch, and the admin's next sync
    /// carries it out (finding 2: the race behind a leave that never ended).
    #[tokio::test]
    async fn a_leave_overtaken_by_another_commit_still_completes() {
        let dir = tempfile::tempdir().unwrap();
        let relay = RelayProcess::start(RelayOptions::default().unlimited()).unwrap();
        let (mut alex, [(mut blair, ab), (mut dani, ad)]) =
            alex_with(dir.path(), relay.url(), ["Blair", "Dani"]).await;
        crew(&mut alex, &mut blair, &mut dani, &ab, &ad).await;
        let crew_a = alex.resolve("Crew").unwrap();

        // Alex builds a commit (Blair is no longer admin) at the epoch ...
        let me = alex.own_identity(&crew_a).unwrap();
        alex.insert_op(&crew_a, GroupOpKind::Admins, |o| {
            o.target = Some(encode_admins(&[me]))
        })
        .unwrap();
        alex.stage(&crew_a, false).await.unwrap();
        // ... Blair leaves at that epoch, and Alex's commit lands after.
        let left = blair.group_leave("Crew").await.unwrap();
        assert_eq!(left.state, "leaving");
        alex.flush_outbox(Some(&crew_a)).await.unwrap();

        for _ in 0..3 {
            blair.sync().await.unwrap();
            alex.sync().await.unwrap();
            dani.sync().await.unwrap();
        }
        let names: Vec<String> = alex
            .group_members("Crew")
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(!names.contains(&"Blair".to_string()), "{names:?}");
        assert_eq!(dani.group_members("Crew").unwrap().len(), 2);
        assert_eq!(
            blair.view(&blair.resolve("Crew").unwrap()).unwrap().state,
            "closed"
        );
        for e in [&alex, &dani] {
            assert!(e.integrity_events("Crew").unwrap().is_empty());
        }
    }

    /// Two admins build commits for the same epoch before either sees the
    /// other's: the channel's order decides, the loser builds its change
    /// again on the new epoch, and everyone ends in one state.
    #[tokio::test]
    async fn concurrent_commits_from_two_admins_converge() {
        let dir = tempfile::tempdir().unwrap();
        let relay = RelayProcess::start(RelayOptions::default().unlimited()).unwrap();
        let (mut alex, [(mut blair, ab), (mut charlie, ac), (mut dani, ad)]) =
            alex_with(dir.path(), relay.url(), ["Blair", "Charlie", "Dani"]).await;
        crew(&mut alex, &mut blair, &mut dani, &ab, &ad).await;
        let start = epoch(&alex, "Crew");
        assert_eq!(epoch(&blair, "Crew"), start);

        // Both stage at the same epoch; Blair's reaches the channel first.
        let crew_a = alex.resolve("Crew").unwrap();
        let crew_b = blair.resolve("Crew").unwrap();
        let kp: Vec<u8> = alex
            .db
            .query_row(
                "SELECT contact_kp FROM conversations WHERE id = ?1",
                [&ac],
                |r| r.get(0),
            )
            .unwrap();
        let seed: [u8; 32] = random().unwrap();
        let add = alex
            .insert_op(&crew_a, GroupOpKind::Add, |o| {
                o.key_package = Some(kp);
                o.capability_seed = Some(seed.to_vec());
                o.member_name = Some("Charlie".into());
                o.deliver_to = Some(ac.clone());
            })
            .unwrap();
        let dani_key = blair.find_member(&crew_b, "Dani").unwrap();
        let remove = blair
            .insert_op(&crew_b, GroupOpKind::Remove, |o| o.target = Some(dani_key))
            .unwrap();
        blair.stage(&crew_b, false).await.unwrap();
        alex.stage(&crew_a, false).await.unwrap();
        blair.flush_outbox(Some(&crew_b)).await.unwrap();
        alex.flush_outbox(Some(&crew_a)).await.unwrap();

        // Alex's commit was behind the head: he read Blair's first, his add
        // went back to waiting, and his next sync builds it again on the
        // new epoch and reads it back, done.
        let pending: bool = alex
            .db
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM group_ops WHERE id = ?1 AND epoch IS NULL)",
                [add],
                |r| r.get(0),
            )
            .unwrap();
        assert!(pending, "the add waits to be built again");
        assert_eq!(epoch(&alex, "Crew"), start + 1);
        alex.sync().await.unwrap();
        assert_eq!(epoch(&alex, "Crew"), start + 2, "rebuilt on the new epoch");
        for _ in 0..3 {
            alex.sync().await.unwrap();
            blair.sync().await.unwrap();
            charlie.sync().await.unwrap();
        }
        let done = |e: &Engine, op: i64| -> bool {
            e.db.query_row(
                "SELECT NOT EXISTS (SELECT 1 FROM group_ops WHERE id = ?1)",
                [op],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert!(done(&alex, add) && done(&blair, remove));
        let ids = |e: &Engine| -> Vec<String> {
            let mut v: Vec<String> = e
                .group_members("Crew")
                .unwrap()
                .into_iter()
                .map(|m| m.id)
                .collect();
            v.sort();
            v
        };
        assert_eq!(ids(&alex).len(), 3);
        assert_eq!(ids(&alex), ids(&blair));
        assert_eq!(ids(&alex), ids(&charlie));
        assert_eq!(epoch(&alex, "Crew"), epoch(&blair, "Crew"));
        assert_eq!(epoch(&alex, "Crew"), epoch(&charlie, "Crew"));
        // Nobody saw an integrity event: a lost commit is not an attack.
        for e in [&alex, &blair, &charlie] {
            assert!(e.integrity_events("Crew").unwrap().is_empty());
        }
    }

    /// A member who has not seen a move commits on the old channel after
    /// the move frame: every member voids that commit alike, the committer
    /// builds it again on the new channel, and all end in one state.
    #[tokio::test]
    async fn a_commit_left_on_the_old_channel_after_a_move_is_void_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let relay_a = RelayProcess::start(RelayOptions::default().unlimited()).unwrap();
        let relay_b = RelayProcess::start(RelayOptions::default().unlimited()).unwrap();
        let (mut alex, [(mut blair, ab), (mut dani, ad)]) =
            alex_with(dir.path(), relay_a.url(), ["Blair", "Dani"]).await;
        crew(&mut alex, &mut blair, &mut dani, &ab, &ad).await;

        let moved = alex.move_to(relay_b.url()).await.unwrap();
        assert_eq!(moved.moved.len(), 3, "{moved:?}");
        // Blair, unaware, removes Dani with a commit sent to the old channel.
        let crew_b = blair.resolve("Crew").unwrap();
        let dani_key = blair.find_member(&crew_b, "Dani").unwrap();
        let remove = blair
            .insert_op(&crew_b, GroupOpKind::Remove, |o| o.target = Some(dani_key))
            .unwrap();
        let before = epoch(&blair, "Crew");
        blair.stage(&crew_b, false).await.unwrap();
        // kith appends a group's commits only at the channel's head, which
        // would have shown Blair the move first; an older or modified
        // client appends without that condition.
        let payload: Vec<u8> = blair
            .db
            .query_row(
                "SELECT payload FROM outbox WHERE conversation_id = ?1 AND commit_epoch IS NOT NULL",
                [&crew_b],
                |r| r.get(0),
            )
            .unwrap();
        let old = group_channel(&blair.db, &crew_b).unwrap();
        kith_relay_client::RelayClient::new(&old.relay_url)
            .unwrap()
            .append(&old.key, old.write_id, &payload)
            .await
            .unwrap();

        // Alex reads it after the move frame: void, nothing changes.
        alex.sync().await.unwrap();
        assert_eq!(epoch(&alex, "Crew"), before);
        // Blair reads the move, finds its commit void, builds it again on
        // the new channel; then everyone takes it from there.
        for _ in 0..3 {
            blair.sync().await.unwrap();
            alex.sync().await.unwrap();
            dani.sync().await.unwrap();
        }
        let done: bool = blair
            .db
            .query_row(
                "SELECT NOT EXISTS (SELECT 1 FROM group_ops WHERE id = ?1)",
                [remove],
                |r| r.get(0),
            )
            .unwrap();
        assert!(done, "the removal was carried out on the new channel");
        assert_eq!(epoch(&alex, "Crew"), epoch(&blair, "Crew"));
        assert!(epoch(&alex, "Crew") > before);
        assert_eq!(alex.group_members("Crew").unwrap().len(), 2);
        assert_eq!(
            dani.view(&dani.resolve("Crew").unwrap()).unwrap().state,
            "closed"
        );
        for e in [&alex, &blair] {
            assert!(e.integrity_events("Crew").unwrap().is_empty());
            let channels = store::channels(&e.db, Some(&e.resolve("Crew").unwrap())).unwrap();
            assert!(
                channels
                    .iter()
                    .all(|c| c.relay_url == relay_b.url().trim_end_matches('/'))
            );
        }
    }

    /// A commit too large for one message travels as a blob the message
    /// names (group-v1.md §6.5): with Alex's limit at zero, every commit
    /// he makes does, and the group works as always — adds, messages, a
    /// removal. A reference whose blob is not the bytes it names is an
    /// integrity event, and the group goes on.
    #[tokio::test]
    async fn a_commit_too_large_for_a_message_travels_as_a_blob() {
        let dir = tempfile::tempdir().unwrap();
        let relay = RelayProcess::start(RelayOptions::default().unlimited()).unwrap();
        let (mut alex, [(mut blair, ab), (mut dani, ad)]) =
            alex_with(dir.path(), relay.url(), ["Blair", "Dani"]).await;
        alex.config.inline_commit_limit = 0;
        alex.group_create("Crew", None).await.unwrap();
        assert!(alex.group_add("Crew", &ab).await.unwrap().done);
        assert!(alex.group_add("Crew", &ad).await.unwrap().done);

        let crew_a = alex.resolve("Crew").unwrap();
        let channel = group_channel(&alex.db, &crew_a).unwrap();
        let client = alex.relay(&channel.relay_url).unwrap();
        let on_channel = client
            .read(&channel.key, channel.read_id, 0, 256, Duration::ZERO)
            .await
            .unwrap();
        let refs: Vec<MlsBlobRef> = on_channel
            .items
            .iter()
            .filter_map(crate::runtime::sync::commit_blob)
            .collect();
        assert_eq!(refs.len(), 2, "each add is a blob the channel names");
        blair.sync().await.unwrap();
        dani.sync().await.unwrap();

        blair.send("Crew", "hello crew").await.unwrap();
        for e in [&mut alex, &mut dani] {
            e.sync().await.unwrap();
            assert!(
                e.read("Crew")
                    .unwrap()
                    .iter()
                    .any(|m| m.text == "hello crew")
            );
        }

        // Blair, a member, names a real blob with the wrong digest.
        let crew_b = blair.resolve("Crew").unwrap();
        let on_blair = group_channel(&blair.db, &crew_b).unwrap();
        let mut forged = refs[0].clone();
        forged.sha256[0] ^= 1;
        blair
            .relay(&on_blair.relay_url)
            .unwrap()
            .append(
                &on_blair.key,
                on_blair.write_id,
                &envelope_payload(&Envelope::MlsBlob(forged)).unwrap(),
            )
            .await
            .unwrap();
        alex.sync().await.unwrap();
        let events = alex.integrity_events("Crew").unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(
            events[0].detail.contains("does not match its reference"),
            "{events:?}"
        );

        assert!(alex.group_remove("Crew", "Dani").await.unwrap().done);
        blair.sync().await.unwrap();
        dani.sync().await.unwrap();
        let state = |e: &Engine| {
            e.list()
                .unwrap()
                .into_iter()
                .find(|c| c.name == "Crew")
                .unwrap()
                .state
        };
        assert_eq!(state(&dani), "closed");
        alex.sync().await.unwrap();
        assert_eq!(epoch(&alex, "Crew"), epoch(&blair, "Crew"));
        blair.send("Crew", "after Dani").await.unwrap();
        alex.sync().await.unwrap();
        assert!(
            alex.read("Crew")
                .unwrap()
                .iter()
                .any(|m| m.text == "after Dani")
        );
    }
}
