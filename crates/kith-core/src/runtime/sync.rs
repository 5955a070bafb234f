//! Reading channels page by page (each page one transaction through the
//! conversation types), the outbox, and settling after a sync.

use crate::channels::gone;

use crate::conv::address::AddressV1;
use crate::conv::group::{GroupInput, GroupV1};
use crate::conv::inbox::InboxV1;

use crate::conv::intro::{IntroductionV1, Step};
use crate::conv::pair::PairV1;

use crate::conv::{Arrived, ConversationType, Effects, Handoff, Moment};
use std::collections::BTreeSet;
use std::time::Duration;

use kith_crypto::padding::unpad;
use kith_relay_client::ClientError;
use kith_wire::Codec;
use kith_wire::conv::{Envelope, MlsBlobRef, PairFrame};
use kith_wire::relay::BlobId;
use kith_wire::relay::response::{ErrorCode, StoredMessage};
use rusqlite::{OptionalExtension, Transaction, params};
use sha2::{Digest, Sha256};

use crate::error::{CoreError, OpenError, Result, refused};
use crate::ids::digest;
use crate::runtime::Engine;
use crate::runtime::groups::BlobSpan;
use crate::store;
use crate::store::{
    ChannelRole, ChannelRow, ConversationKind, ConversationState, contact_name, count_unread,
    encrypt_in, ms, record_integrity_event,
};
use crate::views::SyncReport;

/// Messages asked for per read: the relay's default cap, so a page is one
/// request and one local commit.
const READ_BATCH: u16 = 256;

/// Times a group entry is tried at a channel's head before it waits for
/// the next sync (others kept getting there first).
const HEAD_ATTEMPTS: usize = 8;

/// Rounds of a sync that read channels which appeared in the round before.
const SYNC_ROUNDS: usize = 4;

/// Most commits one member builds for one sync (each one read back before
/// the next; group-v1.md §6.4).
const STAGE_ROUNDS: usize = 64;

pub(crate) fn not_found(e: &ClientError) -> bool {
    e.code() == Some(ErrorCode::NOT_FOUND)
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
    /// A disappearing message: the relay keeps it no longer than this.
    ttl: Option<Duration>,
}

/// Whether `e`, from reading or writing a conversation's channel, means
/// this member lost it: the relay answers `unauthorized` alike for a
/// revoked key and a deleted channel (relay.md §4).
fn lost(channel: &ChannelRow, e: &ClientError) -> bool {
    channel.role == ChannelRole::Conv && e.code() == Some(ErrorCode::UNAUTHORIZED)
}

/// The conversation types a page's messages go to.
struct Types {
    inbox: InboxV1,
    pair: PairV1,
    group: GroupV1,
    intro: IntroductionV1,
    address: AddressV1,
}

impl Types {
    fn new(moment: Moment) -> Self {
        Self {
            inbox: InboxV1::new(moment.clone()),
            pair: PairV1::new(moment.clone()),
            group: GroupV1::new(moment.clone()),
            intro: IntroductionV1::new(moment.clone()),
            address: AddressV1::new(moment),
        }
    }
}

/// Opens a message with its type and applies it; `Err` before anything
/// was applied.
pub(super) fn open_and_apply<T: ConversationType>(
    kind: &mut T,
    tx: &Transaction<'_>,
    input: T::Input<'_>,
    fx: &mut Effects,
) -> std::result::Result<(), OpenError> {
    let opened = kind.open(tx, input)?;
    kind.apply(tx, opened, fx)?;
    Ok(())
}

/// One message from a channel, inside `tx` with the channel's cursor: the
/// conversation's type opens and applies it, then what it handed off to
/// other types is applied.
fn handle(
    tx: &Transaction<'_>,
    channel: &ChannelRow,
    item: &StoredMessage,
    large: Option<LargeCommit>,
    types: &mut Types,
    fx: &mut Effects,
    now: u64,
) -> Result<()> {
    let conv = channel.conversation_id.as_str();
    let digest = digest(&item.payload);
    let seen: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM seen WHERE conversation_id = ?1 AND digest = ?2)",
        )?
        .query_row(params![conv, digest], |r| r.get(0))?;
    if !seen {
        match dispatch(tx, channel, item, large, types, fx) {
            Ok(()) => {}
            Err(OpenError::Refused(refusal)) => {
                let detail = format!(
                    "message {} on {} refused: {refusal}",
                    item.seq, channel.relay_url
                );
                record_integrity_event(tx, conv, now, detail, &mut fx.report)?;
            }
            // Nothing recorded, nothing acknowledged: read again later.
            Err(OpenError::Local(e)) => return Err(e),
        }
        for handoff in std::mem::take(&mut fx.handoffs) {
            let (via, what, done) = match handoff {
                Handoff::Introduction { via, intro } => {
                    let step = Step {
                        via: via.clone(),
                        intro,
                    };
                    let done = open_and_apply(&mut types.intro, tx, step, fx);
                    (via, "an introduction", done)
                }
                Handoff::GroupInvitation { via, invite } => {
                    let input = GroupInput::Invitation {
                        via: via.clone(),
                        invite,
                    };
                    let done = open_and_apply(&mut types.group, tx, input, fx);
                    (via, "a group invitation", done)
                }
            };
            match done {
                Ok(()) => {}
                Err(OpenError::Refused(refusal)) => {
                    let detail = format!("{what} could not be used: {refusal}");
                    record_integrity_event(tx, &via, now, detail, &mut fx.report)?;
                }
                Err(OpenError::Local(e)) => return Err(e),
            }
        }
    }
    tx.prepare_cached("INSERT OR IGNORE INTO seen (conversation_id, digest) VALUES (?1, ?2)")?
        .execute(params![conv, digest])?;
    tx.prepare_cached("UPDATE channels SET cursor = MAX(cursor, ?2) WHERE id = ?1")?
        .execute(params![channel.id, ms(item.seq)])?;
    Ok(())
}

/// A large group commit fetched from its blob, or why it cannot be used.
type LargeCommit = std::result::Result<Vec<u8>, String>;

/// The blob a message names in place of a commit too large for it
/// (group-v1.md §6.5); only the kind byte is looked at for others.
pub(crate) fn commit_blob(item: &StoredMessage) -> Option<MlsBlobRef> {
    let bytes = unpad(&item.payload).ok()?;
    // `Envelope`: version, then kind; 5 is a commit's blob.
    if bytes.get(1) != Some(&5) {
        return None;
    }
    match Envelope::from_bytes(bytes) {
        Ok(Envelope::MlsBlob(reference)) => Some(reference),
        _ => None,
    }
}

/// Gives a message to its conversation's type (docs/spec/README.md §1).
fn dispatch(
    tx: &Transaction<'_>,
    channel: &ChannelRow,
    item: &StoredMessage,
    large: Option<LargeCommit>,
    types: &mut Types,
    fx: &mut Effects,
) -> std::result::Result<(), OpenError> {
    let bytes = unpad(&item.payload).map_err(refused)?;
    let envelope = match (Envelope::from_bytes(bytes).map_err(refused)?, large) {
        (Envelope::MlsBlob(_), Some(Ok(commit))) => Envelope::Mls(commit),
        (Envelope::MlsBlob(_), Some(Err(why))) => return Err(refused(why).into()),
        (envelope, _) => envelope,
    };
    let (kind, state): (ConversationKind, ConversationState) = tx
        .prepare_cached("SELECT kind, state FROM conversations WHERE id = ?1")?
        .query_row([&channel.conversation_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let arrived = Arrived {
        channel,
        seq: item.seq,
        envelope,
        state,
    };
    match (kind, state) {
        (ConversationKind::Group, _) => {
            open_and_apply(&mut types.group, tx, GroupInput::Channel(arrived), fx)
        }
        (ConversationKind::Pair, ConversationState::Invited) => {
            open_and_apply(&mut types.inbox, tx, arrived, fx)
        }
        (ConversationKind::Pair, _) => open_and_apply(&mut types.pair, tx, arrived, fx),
        (ConversationKind::Address, _) => open_and_apply(&mut types.address, tx, arrived, fx),
    }
}

impl Engine {
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
                && lost(&channel, e)
                && let Some(notice) = self.close_lost_group(id)?
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
                        o.frame, c.kind = 'group', o.ttl_secs FROM outbox o JOIN conversations c ON c.id = o.conversation_id \
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
                    ttl: r
                        .get::<_, Option<u32>>(8)?
                        .map(|s| Duration::from_secs(s.into())),
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
                let down =
                    store::channels_with_role(&self.db, &entry.conversation, ChannelRole::Conv)?
                        .iter()
                        .any(|c| self.unreachable.contains(&c.relay_url));
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
            // One row or the conversation's own channels: never all of a
            // group's link inboxes for each entry.
            let channels: Vec<ChannelRow> = match entry.only_channel {
                Some(id) => store::channel(&self.db, id)?
                    .into_iter()
                    .filter(|c| c.conversation_id == entry.conversation)
                    .collect(),
                None => {
                    store::channels_with_role(&self.db, &entry.conversation, ChannelRole::Conv)?
                }
            };
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
                let result = match entry.ttl {
                    Some(ttl) => {
                        client
                            .append_expiring(
                                &channel.key,
                                channel.write_id,
                                None,
                                ttl,
                                &entry.payload,
                            )
                            .await
                    }
                    None => {
                        client
                            .append(&channel.key, channel.write_id, &entry.payload)
                            .await
                    }
                };
                match result {
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
            let Some(channel) =
                store::channels_with_role(&self.db, &entry.conversation, ChannelRole::Conv)?
                    .into_iter()
                    .next()
            else {
                return Err(CoreError::Corrupt("a group without a channel".into()));
            };
            let client = self.relay(&channel.relay_url)?;
            let (key, write_id, after) = (&channel.key, channel.write_id, channel.cursor);
            let sent = match entry.ttl {
                Some(ttl) => {
                    client
                        .append_expiring(key, write_id, Some(after), ttl, &payload)
                        .await
                }
                None => client.append_after(key, write_id, after, &payload).await,
            };
            match sent {
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
        self.prune_events()?;
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
            // A Welcome read this round: its group's channel is read in
            // the next.
            joined.extend(self.complete_joins(&mut report).await?);
        }
        self.finish_report(&mut report, joined).await?;
        // Boxed: sending to a group may sync first (a commit it needs).
        report.errors.extend(Box::pin(self.send_owed()).await);
        Ok(report)
    }

    /// What this user owes its conversations once a sync is done: its
    /// capabilities where they were not heard (content-v1.md §8.1), and
    /// receipts (§7.8). Returns what failed.
    pub(crate) async fn send_owed(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        if let Err(e) = self.advertise_capabilities().await {
            errors.push(format!("telling what this kith shows: {e}"));
        }
        if let Err(e) = self.flush_receipts().await {
            errors.push(format!("sending receipts: {e}"));
        }
        if let Err(e) = self.clean_files().await {
            errors.push(format!("removing deleted files: {e}"));
        }
        errors.extend(self.auto_download().await);
        errors
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
        joined.extend(self.complete_joins(report).await?);
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
                if !channel.owner && gone(&e) {
                    self.db
                        .execute("DELETE FROM channels WHERE id = ?1", [channel.id])?;
                }
            }
            Err(CoreError::Relay(e))
                if lost(channel, &e) && self.is_group(&channel.conversation_id)? =>
            {
                report
                    .notices
                    .extend(self.close_lost_group(&channel.conversation_id)?);
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
            if !self
                .handle_fetched(channel, &batch.items, report, joined)
                .await?
            {
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

    /// Messages of one channel, in order: runs of them a page at a time
    /// ([`Self::handle_items`]); a group commit stored as a blob
    /// (group-v1.md §6.5) is fetched first and handled on its own, so one
    /// such blob at most is in memory. `false` if the channel is gone.
    pub(crate) async fn handle_fetched(
        &mut self,
        channel: &ChannelRow,
        items: &[StoredMessage],
        report: &mut SyncReport,
        joined: &mut Vec<String>,
    ) -> Result<bool> {
        let group = matches!(channel.role, ChannelRole::Conv | ChannelRole::Retiring)
            && self
                .db
                .prepare_cached("SELECT kind FROM conversations WHERE id = ?1")?
                .query_row([&channel.conversation_id], |r| r.get(0))
                .optional()?
                == Some(ConversationKind::Group);
        let mut rest = items;
        while let Some((at, reference)) = rest
            .iter()
            .enumerate()
            .find_map(|(at, item)| commit_blob(item).filter(|_| group).map(|r| (at, r)))
        {
            let (before, from) = rest.split_at(at);
            if !before.is_empty() && !self.handle_items(channel.id, before, None, report, joined)? {
                return Ok(false);
            }
            let Some((item, after)) = from.split_first() else {
                break;
            };
            let commit = self.fetch_commit(&channel.relay_url, &reference).await?;
            if !self.handle_items(
                channel.id,
                std::slice::from_ref(item),
                Some(commit),
                report,
                joined,
            )? {
                return Ok(false);
            }
            rest = after;
        }
        if rest.is_empty() {
            return Ok(true);
        }
        self.handle_items(channel.id, rest, None, report, joined)
    }

    /// The commit a channel message names (group-v1.md §6.5); `Ok(Err)` is
    /// a refusal (gone, or not the bytes named), `Err` a local failure
    /// (the relay could not be asked: read it again later).
    async fn fetch_commit(
        &mut self,
        relay_url: &str,
        reference: &MlsBlobRef,
    ) -> Result<LargeCommit> {
        let span = BlobSpan {
            blob_id: BlobId(reference.blob_id),
            chunk_size: reference.chunk_size,
            chunk_count: reference.chunk_count,
            length: reference.length,
        };
        let commit = match self.fetch_blob(relay_url, &span).await {
            Ok(commit) => commit,
            Err(CoreError::Relay(e)) if not_found(&e) => {
                return Ok(Err("the blob of a large commit is gone".into()));
            }
            Err(e) => return Err(e),
        };
        if <[u8; 32]>::from(Sha256::digest(&commit)) != reference.sha256 {
            return Ok(Err(
                "a large commit's blob does not match its reference".into()
            ));
        }
        Ok(Ok(commit))
    }

    /// Messages of one channel, in order, in one transaction (one commit
    /// and one fsync for the page, not one per message); `false` if the
    /// channel is gone (a move in the batch deleted it). A local failure
    /// undoes the whole page. `large` is the fetched commit of a page of
    /// one message that names a blob.
    pub(crate) fn handle_items(
        &mut self,
        channel_id: i64,
        items: &[StoredMessage],
        mut large: Option<LargeCommit>,
        report: &mut SyncReport,
        joined: &mut Vec<String>,
    ) -> Result<bool> {
        let now = self.now();
        let moment = self.moment(now);
        let mut types = Types::new(moment);
        let mut fx = Effects::default();
        let tx = self.db.transaction()?;
        let mut result = true;
        for item in items {
            // Fresh each time: a move in this batch changes the row.
            let Some(channel) = store::channel(&tx, channel_id)? else {
                result = false;
                break;
            };
            // A local failure rolls the page back (`tx` dropped uncommitted,
            // the kept sessions with it): nothing of it was applied or
            // acknowledged, and it is read again later.
            handle(&tx, &channel, item, large.take(), &mut types, &mut fx, now)?;
        }
        types.pair.finish(&tx)?;
        types.group.finish(&tx)?;
        count_unread(&tx, &fx.report, 0, now)?;
        tx.commit()?;
        if fx.report.purged {
            store::purge_log(&self.db)?;
        }
        self.revocations.extend(fx.revoke);
        joined.extend(fx.joined);
        fx.report.absorb(std::mem::take(report));
        *report = fx.report;
        Ok(result)
    }

    /// After a sync: revokes the keys of removed members (admins), builds
    /// the commit for this member's waiting changes, offers spare key
    /// packages to contacts, and sends it all.
    pub(crate) async fn settle(&mut self, report: &mut SyncReport) -> Result<()> {
        for (conv, key) in std::mem::take(&mut self.revocations) {
            if let Err(e) = self.revoke(&conv, key).await {
                report
                    .errors
                    .push(format!("revoking a removed member's key: {e}"));
            }
        }
        self.stage_groups(report).await?;
        self.tick(report)?;
        match self.create_introduced().await {
            Ok(created) => {
                for id in created {
                    report.connected.push(self.view(&id)?);
                }
            }
            Err(e) => report.errors.push(format!("introductions: {e}")),
        }
        if let Err(e) = self.maintain_channels(report).await {
            report.errors.push(format!("moving channels: {e}"));
        }
        if let Err(e) = self.flush_outbox(None).await {
            report.errors.push(format!("sending queued messages: {e}"));
        }
        // A commit of ours that the channel took is confirmed by reading it
        // back; doing that now sends the Welcomes it unlocked in this sync,
        // not the next one. Changes that did not fit one commit get the
        // next one then (group-v1.md §6.4), as long as that makes progress.
        let mut before = usize::MAX;
        for _ in 0..STAGE_ROUNDS {
            self.read_back_own_commits(report).await?;
            let waiting = self.waiting_changes()?;
            if waiting == 0 || waiting >= before {
                break;
            }
            before = waiting;
            self.stage_groups(report).await?;
            if let Err(e) = self.flush_outbox(None).await {
                report.errors.push(format!("sending queued messages: {e}"));
            }
        }
        self.purge_expired()?;
        let mut carried = std::mem::take(&mut self.carry);
        carried.absorb(std::mem::take(report));
        *report = carried;
        Ok(())
    }

    /// Every conversation type's timers, in one transaction.
    fn tick(&mut self, report: &mut SyncReport) -> Result<()> {
        let mut types = Types::new(self.moment(self.now()));
        let mut fx = Effects::default();
        let tx = self.db.transaction()?;
        types.inbox.tick(&tx, &mut fx)?;
        types.pair.tick(&tx, &mut fx)?;
        types.group.tick(&tx, &mut fx)?;
        types.intro.tick(&tx, &mut fx)?;
        types.address.tick(&tx, &mut fx)?;
        tx.commit()?;
        self.revocations.extend(fx.revoke);
        fx.report.absorb(std::mem::take(report));
        *report = fx.report;
        Ok(())
    }

    /// Builds a commit for every group with changes waiting (or a due
    /// update); what goes wrong is reported per group.
    async fn stage_groups(&mut self, report: &mut SyncReport) -> Result<()> {
        for id in self.conversation_ids(
            "SELECT id FROM conversations WHERE kind = 'group' AND state = 'active'",
        )? {
            if let Err(e) = self.stage(&id, false).await {
                report
                    .errors
                    .push(format!("{}: {e}", contact_name(&self.db, &id)?));
            }
        }
        Ok(())
    }

    /// Reads back this member's commits that the channel took, and sends
    /// the Welcomes they unlocked.
    async fn read_back_own_commits(&mut self, report: &mut SyncReport) -> Result<()> {
        for id in self.conversation_ids(
            "SELECT id FROM conversations WHERE kind = 'group' AND state = 'active' AND id IN \
             (SELECT conversation_id FROM group_ops WHERE epoch IS NOT NULL) AND id NOT IN \
             (SELECT conversation_id FROM outbox WHERE commit_epoch IS NOT NULL)",
        )? {
            if let Err(e) = self.catch_up(&id).await {
                report.errors.push(format!("reading back a change: {e}"));
            }
            // The Welcomes go through the new members' inboxes and 1:1
            // conversations.
            if let Err(e) = self.flush_outbox(None).await {
                report.errors.push(format!("sending queued messages: {e}"));
            }
        }
        Ok(())
    }

    /// How many of this member's group changes wait for a commit.
    fn waiting_changes(&self) -> Result<usize> {
        let n: i64 = self.db.query_row(
            "SELECT COUNT(*) FROM group_ops o JOIN conversations c ON c.id = o.conversation_id \
             WHERE c.kind = 'group' AND c.state = 'active' AND o.epoch IS NULL \
             AND NOT (o.kind = 'add' AND o.key_package IS NULL)",
            [],
            |r| r.get(0),
        )?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}
