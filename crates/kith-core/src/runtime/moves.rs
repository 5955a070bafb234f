//! Moving relay, rotating channels, blocking (pair-v1.md §8, §10;
//! group-v1.md §11).

use kith_relay_client::{ChannelOptions, public_key};
use kith_wire::conv::{ChannelGrant, ChannelMove, PairFrame};
use kith_wire::relay::{ChannelRef, KeyGrant, PublicKey, Rights};
use rusqlite::params;

use crate::config::millis;
use crate::conv::group::find_blocked_members;
use crate::error::{CoreError, Result};
use crate::runtime::{Engine, base_url};
use crate::store;
use crate::store::{
    ChannelRole, ChannelRow, ConversationKind, ConversationState, QueueOptions, contact_name,
    encrypt_in, insert_channel, ms, queue_with,
};
use crate::views::{MoveReport, SyncReport};

/// Most keys registered with the channel's creation; the rest by `add_key`.
const GRANTS_AT_CREATION: usize = 63;

impl Engine {
    /// Moves every conversation whose channel this user hosts to the relay
    /// at `to`, and makes it this profile's relay.
    pub async fn move_to(&mut self, to: &str) -> Result<MoveReport> {
        let client = self.relay(to)?;
        client.info().await?;
        let to = base_url(&client);
        let mut report = MoveReport::default();
        for id in self.hosted_conversations()? {
            match self.move_conversation(&id, &to).await {
                Ok(warnings) => {
                    report.moved.push(id);
                    report.warnings.extend(warnings);
                }
                Err(e) => report
                    .errors
                    .push(format!("{}: {e}", contact_name(&self.db, &id)?)),
            }
        }
        self.db
            .execute("UPDATE profile SET relay_url = ?1 WHERE id = 1", [&to])?;
        Ok(report)
    }

    /// Conversations (connected, not blocked) with a channel this user
    /// hosts and writes to.
    fn hosted_conversations(&self) -> Result<Vec<String>> {
        let mut stmt = self.db.prepare(
            "SELECT DISTINCT c.id FROM conversations c JOIN channels ch ON ch.conversation_id = c.id \
             WHERE c.state = 'active' AND c.blocked = 0 AND ch.owner = 1 AND ch.role = 'conv' ORDER BY c.id",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Replaces the channels this user hosts for `conv` by one new channel
    /// on `to` (a move, a rotation, an unblock). Returns warnings: the
    /// address update is queued when no channel takes it at once.
    pub(crate) async fn move_conversation(&mut self, conv: &str, to: &str) -> Result<Vec<String>> {
        let old: Vec<ChannelRow> = store::channels(&self.db, Some(conv))?
            .into_iter()
            .filter(|c| c.owner && c.role == ChannelRole::Conv)
            .collect();
        let Some(first) = old.first() else {
            return Ok(Vec::new());
        };
        let kind: ConversationKind = self.db.query_row(
            "SELECT kind FROM conversations WHERE id = ?1",
            [conv],
            |r| r.get(0),
        )?;
        // `grant`: the new channel with this user's key on it; `guest_seed`:
        // the contact's new key (1:1 only).
        let (grant, guest_seed) = if kind == ConversationKind::Group {
            // Every member keeps its capability key: the new channel
            // registers them all, admins with every right (group-v1.md §11).
            let client = self.relay(to)?;
            let info = client.info().await?;
            let my_key = first.key.clone();
            let mut grants = self.group_grants(conv, &public_key(&my_key))?;
            let later = grants.split_off(grants.len().min(GRANTS_AT_CREATION));
            let created = client
                .create_channel(
                    &my_key,
                    ChannelOptions {
                        grants,
                        ..ChannelOptions::default()
                    },
                )
                .await?;
            for grant in later {
                client.add_key(&my_key, created.write_id, grant).await?;
            }
            let grant = ChannelGrant {
                relay_url: base_url(&client),
                relay_id: info.relay_id,
                write_id: created.write_id,
                read_id: created.read_id,
                key: my_key.to_bytes(),
            };
            (grant, None)
        } else {
            let shared = self.create_shared_channel(to, None).await?;
            let grant = ChannelGrant {
                relay_url: shared.grant.relay_url.clone(),
                relay_id: shared.grant.relay_id,
                write_id: shared.grant.write_id,
                read_id: shared.grant.read_id,
                key: shared.owner.to_bytes(),
            };
            (grant, Some(shared.grant.key))
        };
        let frame = PairFrame::Move(ChannelMove {
            relay_url: grant.relay_url.clone(),
            relay_id: grant.relay_id,
            write_id: grant.write_id,
            read_id: grant.read_id,
            key: guest_seed,
            retire: old.iter().map(|c| c.write_id).collect(),
        });
        self.prepare_send(conv).await?;
        let now = self.now();
        let tx = self.db.transaction()?;
        let payload = encrypt_in(&tx, conv, &frame)?.payload;
        insert_channel(&tx, conv, &grant, &grant.key, true, true, now)?;
        let new_id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE channels SET preferred = 0 WHERE conversation_id = ?1 AND id != ?2",
            params![conv, new_id],
        )?;
        let retire_after = ms(now.saturating_add(millis(self.config.drain_limit)));
        for channel in &old {
            tx.execute(
                "UPDATE channels SET role = 'retiring', retire_after = ?2 WHERE id = ?1",
                params![channel.id, retire_after],
            )?;
        }
        // The update goes to every channel the contacts read now: each old
        // one (whose drain waits for it to be read there) and each channel
        // a contact hosts (the path left when the old relay is down).
        // Copies are one payload: receivers process it once.
        for channel in store::channels(&tx, Some(conv))? {
            if channel.id != new_id
                && matches!(channel.role, ChannelRole::Conv | ChannelRole::Retiring)
            {
                queue_with(
                    &tx,
                    conv,
                    &payload,
                    &QueueOptions {
                        channel: Some(channel.id),
                        ..QueueOptions::default()
                    },
                    now,
                )?;
            }
        }
        tx.commit()?;
        let mut warnings = Vec::new();
        if let Err(e) = self.flush_outbox(Some(conv)).await {
            warnings.push(e.to_string());
        }
        let waiting: i64 = self.db.query_row(
            "SELECT COUNT(*) FROM outbox WHERE conversation_id = ?1",
            [conv],
            |r| r.get(0),
        )?;
        if waiting > 0 {
            warnings.push(format!(
                "{}: the address update is queued for a relay that could not be reached, and is sent \
                 on a later sync (contacts that host a channel of their own were told through it)",
                contact_name(&self.db, conv)?
            ));
        }
        Ok(warnings)
    }

    /// The keys a moved group channel registers: every member's but ours.
    fn group_grants(&self, conv: &str, mine: &PublicKey) -> Result<Vec<KeyGrant>> {
        let admins = self.load(conv)?.admins().unwrap_or_default();
        let mut stmt = self.db.prepare(
            "SELECT identity_key, capability_key FROM group_members WHERE conversation_id = ?1",
        )?;
        let rows = stmt.query_map([conv], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut grants = Vec::new();
        for row in rows {
            let (identity, key) = row?;
            let Ok(key) = <[u8; 32]>::try_from(key.as_slice()) else {
                continue;
            };
            if key == mine.0 {
                continue;
            }
            grants.push(KeyGrant {
                key: PublicKey(key),
                rights: if admins.contains(&identity) {
                    Rights::ALL
                } else {
                    Rights::READ | Rights::WRITE
                },
            });
        }
        Ok(grants)
    }

    /// After a sync: deletes the old channels every reader has drained,
    /// forgets those past the drain limit, and rotates channels that are
    /// due (pair-v1.md §8.3).
    pub(crate) async fn maintain_channels(&mut self, report: &mut SyncReport) -> Result<()> {
        let now = self.now();
        let retiring: Vec<ChannelRow> = store::channels(&self.db, None)?
            .into_iter()
            .filter(|c| c.role == ChannelRole::Retiring)
            .collect();
        for channel in retiring {
            let expired = channel.retire_after.is_some_and(|t| now >= t);
            let drained = channel.owner
                && match channel.retire_seq {
                    Some(seq) => self.drained(&channel, seq).await.unwrap_or(false),
                    None => false,
                };
            if drained {
                // Whatever a contact wrote before reading the move was
                // written before its acknowledgement: read it, then delete.
                let mut joined = Vec::new();
                if let Err(e) = self.sync_channel(&channel, report, &mut joined).await {
                    report
                        .errors
                        .push(format!("draining {}: {e}", channel.relay_url));
                    continue;
                }
            }
            if drained || expired {
                if channel.owner {
                    let client = self.relay(&channel.relay_url)?;
                    if let Err(e) = client.delete_channel(&channel.key, channel.write_id).await {
                        if !drained {
                            report.errors.push(format!(
                                "an old channel on {} is left to expire: {e}",
                                channel.relay_url
                            ));
                        } else {
                            continue;
                        }
                    }
                }
                self.db
                    .execute("DELETE FROM channels WHERE id = ?1", [channel.id])?;
            }
        }
        self.rotate_due(report).await;
        Ok(())
    }

    /// Whether every other reader of a channel being retired has read past
    /// the move frame.
    async fn drained(&mut self, channel: &ChannelRow, move_seq: u64) -> Result<bool> {
        let client = self.relay(&channel.relay_url)?;
        let status = client
            .status(&channel.key, ChannelRef::Write(channel.write_id))
            .await?;
        let mine = public_key(&channel.key);
        Ok(status.keys.unwrap_or_default().iter().all(|k| {
            k.grant.key == mine || !k.grant.rights.contains(Rights::READ) || k.acked_seq >= move_seq
        }))
    }

    /// Moves to fresh ids, on the same relay, every hosted channel older
    /// than the rotation interval whose previous move has drained.
    async fn rotate_due(&mut self, report: &mut SyncReport) {
        let Ok(due) = self.rotation_due() else {
            return;
        };
        for (conv, relay_url) in due {
            // Boxed: a move encrypts, which may sync a group, which rotates.
            if let Err(e) = Box::pin(self.move_conversation(&conv, &relay_url)).await {
                report
                    .errors
                    .push(format!("rotating a channel on {relay_url}: {e}"));
            }
        }
    }

    fn rotation_due(&self) -> Result<Vec<(String, String)>> {
        let before = ms(self
            .now()
            .saturating_sub(millis(self.config.rotate_interval)));
        let mut stmt = self.db.prepare(
            "SELECT ch.conversation_id, ch.relay_url FROM channels ch JOIN conversations c ON c.id = ch.conversation_id \
             WHERE ch.owner = 1 AND ch.role = 'conv' AND ch.created_at <= ?1 AND c.state = 'active' AND c.blocked = 0 \
               AND NOT EXISTS (SELECT 1 FROM channels r WHERE r.conversation_id = ch.conversation_id \
                               AND r.owner = 1 AND r.role = 'retiring') \
             GROUP BY ch.conversation_id",
        )?;
        let rows = stmt.query_map([before], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Blocks a contact: on every channel this user hosts for the
    /// conversation the contact's key loses its write right, so the relay
    /// refuses what they send; nothing of theirs is read any more, nothing
    /// is sent to them (pair-v1.md §9).
    pub async fn block(&mut self, conv: &str) -> Result<Vec<String>> {
        let id = self.resolve(conv)?;
        self.require_pair(&id, conv)?;
        self.db
            .execute("UPDATE conversations SET blocked = 1 WHERE id = ?1", [&id])?;
        self.db
            .execute("DELETE FROM outbox WHERE conversation_id = ?1", [&id])?;
        let mut warnings = self.recheck_group_members()?;
        let hosted: Vec<ChannelRow> = store::channels(&self.db, Some(&id))?
            .into_iter()
            .filter(|c| c.owner)
            .collect();
        if hosted.is_empty() {
            warnings.push(
                "you host no channel of this conversation, so no relay of yours can refuse them: \
                 their messages are no longer read"
                    .into(),
            );
        }
        for channel in hosted {
            if let Err(e) = self.read_only_for_others(&channel).await {
                warnings.push(format!(
                    "{} could not be told to refuse them yet ({e}); `kith block` again to retry",
                    channel.relay_url
                ));
            }
        }
        Ok(warnings)
    }

    /// Leaves every other key on a hosted channel with the read right only.
    async fn read_only_for_others(&mut self, channel: &ChannelRow) -> Result<()> {
        let client = self.relay(&channel.relay_url)?;
        let status = client
            .status(&channel.key, ChannelRef::Write(channel.write_id))
            .await?;
        let mine = public_key(&channel.key);
        for key in status.keys.unwrap_or_default() {
            if key.grant.key != mine && key.grant.rights.contains(Rights::WRITE) {
                client
                    .add_key(
                        &channel.key,
                        channel.write_id,
                        KeyGrant {
                            key: key.grant.key,
                            rights: Rights::READ,
                        },
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Unblocks a contact. The channels they could no longer write are not
    /// reopened: the conversation moves to a fresh channel, announced on
    /// the old one (which they can still read).
    pub async fn unblock(&mut self, conv: &str) -> Result<Vec<String>> {
        let id = self.resolve(conv)?;
        self.require_pair(&id, conv)?;
        self.db
            .execute("UPDATE conversations SET blocked = 0 WHERE id = ?1", [&id])?;
        self.recheck_group_members()?;
        let relay: Option<String> = store::channels(&self.db, Some(&id))?
            .into_iter()
            .find(|c| c.owner && c.role == ChannelRole::Conv)
            .map(|c| c.relay_url);
        match relay {
            Some(url) => self.move_conversation(&id, &url).await,
            None => Ok(Vec::new()),
        }
    }

    /// After a block or an unblock: which group members are blocked
    /// contacts (group-v1.md §7.1). Returns what to tell the user.
    fn recheck_group_members(&mut self) -> Result<Vec<String>> {
        let groups = self.conversation_ids(
            "SELECT id FROM conversations WHERE kind = 'group' AND state != 'closed'",
        )?;
        let tx = self.db.transaction()?;
        let mut found = Vec::new();
        for group in groups {
            found.extend(
                find_blocked_members(&tx, &group)?
                    .into_iter()
                    .map(|n| n.text),
            );
        }
        tx.commit()?;
        Ok(found)
    }

    fn require_pair(&self, id: &str, conv: &str) -> Result<()> {
        let (kind, state): (ConversationKind, ConversationState) = self.db.query_row(
            "SELECT kind, state FROM conversations WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if kind != ConversationKind::Pair || state != ConversationState::Active {
            return Err(CoreError::NotAContact(conv.to_string()));
        }
        Ok(())
    }
}
