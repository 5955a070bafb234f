//! GroupV1 (docs/spec/group-v1.md): a group on one channel, its link
//! inboxes, and Welcomes handed off by 1:1 conversations.

use kith_content::kind::Capabilities;
use kith_crypto::mls::{
    CommitSummary, IdentityKey, Incoming, PendingKeyPackage, Session, message_epoch,
};
use kith_crypto::seal::SealKey;
use kith_wire::Codec;
use kith_wire::conv::{
    ChannelGrant, CommitKeys, Envelope, GroupState, GroupStateRef, GroupWelcome, JoinRequest,
    MemberEntry, PairFrame,
};
use kith_wire::relay::to_hex;
use rusqlite::{OptionalExtension, Transaction, params};
use zeroize::Zeroizing;

use super::{Arrived, ConversationType, Effects, Moment, PageSession};
use crate::channels::receive_move;
use crate::error::{CoreError, OpenError, Result, refused};
use crate::ids::{conversation_id, random};
use crate::store::{
    ChannelRole, ChannelRow, ConversationState, GroupExit, QueueOptions, Received, check_content,
    close_group, contact_name, encrypt_in, envelope_payload, insert_channel, load_session, ms,
    queue_frame, queue_with, receive_message, store_capabilities,
};
use crate::views::{Notice, SyncReport};
use crate::{recognition, store};

/// Seal contexts (group-v1.md §6, §7).
pub const GROUP_INVITATION_CONTEXT: &[u8] = b"kith group invitation v1";

pub(crate) const JOIN_REQUEST_CONTEXT: &[u8] = b"kith group join request v1";

const GROUP_WELCOME_CONTEXT: &[u8] = b"kith group welcome v1";

const COMMIT_KEYS_LABEL: &str = "kith commit keys v1";

const COMMIT_KEYS_CONTEXT: &[u8] = b"kith commit keys v1";

/// Seal context of a published group state (§6.3).
const GROUP_STATE_CONTEXT: &[u8] = b"kith group state v1";

/// What one message on a group's channel (or inbox) turned out to be.
pub(crate) enum GroupOutcome {
    /// A commit that lost its epoch's race, or a message for a past epoch
    /// that no longer opens: dropped without an integrity event.
    Stale,
    Message {
        sender_key: Vec<u8>,
        frame: PairFrame,
    },
    Commit {
        summary: CommitSummary,
        epoch_before: u64,
        keys: CommitKeys,
        admin: bool,
    },
    Proposal,
    /// A commit on a retired channel after the move: not applied.
    Void {
        /// The epoch of this member's own commit, when it was ours.
        own_epoch: Option<u64>,
    },
    JoinRequest(JoinRequest),
    /// A Welcome on a link's inbox: the join completes once the group's
    /// state it names is fetched (§6.3).
    Welcomed(GroupWelcome),
}

/// What applying a group outcome asks of the caller after its transaction.
#[derive(Debug, Default)]
pub(crate) struct GroupApplied {
    pub(crate) joined: bool,
    /// Capability keys of removed members, to revoke at the relay.
    pub(crate) revoke: Vec<[u8; 32]>,
}

pub(crate) fn seal_keys(session: &Session, keys: &CommitKeys) -> Result<Vec<u8>> {
    let secret = session.export(COMMIT_KEYS_LABEL)?;
    Ok(SealKey::from_bytes(*secret).seal(COMMIT_KEYS_CONTEXT, &keys.to_bytes())?)
}

fn grant_for(channel: &ChannelRow, key: [u8; 32]) -> ChannelGrant {
    ChannelGrant {
        relay_url: channel.relay_url.clone(),
        relay_id: channel.relay_id,
        write_id: channel.write_id,
        read_id: channel.read_id,
        key,
    }
}

pub(crate) fn group_channel(tx: &rusqlite::Connection, conv: &str) -> Result<ChannelRow> {
    store::channels_with_role(tx, conv, ChannelRole::Conv)?
        .into_iter()
        .next()
        .ok_or_else(|| CoreError::Corrupt(format!("group {conv} has no channel")))
}

pub(crate) fn member_name(
    tx: &rusqlite::Connection,
    conv: &str,
    identity: &[u8],
) -> Result<String> {
    let name: Option<String> = tx
        .query_row(
            "SELECT display_name FROM group_members WHERE conversation_id = ?1 AND identity_key = ?2",
            params![conv, identity],
            |r| r.get(0),
        )
        .optional()?;
    Ok(name
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("member {}", to_hex(identity.get(..4).unwrap_or(identity)))))
}

/// Stores a member as an entry names it; tags only when the entry has
/// some (an admin's commit adds a member before it published its own).
pub(crate) fn upsert_member(
    tx: &rusqlite::Connection,
    conv: &str,
    entry: &MemberEntry,
) -> Result<()> {
    let tags = (!entry.tags.is_empty()).then(|| entry.tags.concat());
    tx.execute(
        "INSERT INTO group_members (conversation_id, identity_key, display_name, capability_key, tags) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (conversation_id, identity_key) DO UPDATE SET \
         display_name = excluded.display_name, capability_key = excluded.capability_key, \
         tags = COALESCE(excluded.tags, tags)",
        params![
            conv,
            entry.identity_key,
            entry.display_name,
            entry.capability_key,
            tags
        ],
    )?;
    Ok(())
}

pub(crate) fn is_blocked_member(
    tx: &rusqlite::Connection,
    conv: &str,
    member: &[u8],
) -> Result<bool> {
    Ok(tx
        .query_row(
            "SELECT blocked_as IS NOT NULL FROM group_members WHERE conversation_id = ?1 AND identity_key = ?2",
            params![conv, member],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(false))
}

pub(crate) fn split_tags(bytes: &[u8]) -> Vec<[u8; 32]> {
    bytes
        .chunks_exact(32)
        .filter_map(|c| <[u8; 32]>::try_from(c).ok())
        .collect()
}

/// Looks, in `tx`, for members of `conv` who are contacts this user
/// blocked (group-v1.md §7.1): marks each found, and returns a notice for
/// each newly found one. Their messages in the group are not shown.
pub(crate) fn find_blocked_members(tx: &rusqlite::Connection, conv: &str) -> Result<Vec<Notice>> {
    type Row = (Vec<u8>, String, Option<Vec<u8>>, Option<String>);
    let rows: Vec<Row> = {
        let mut stmt = tx.prepare(
            "SELECT identity_key, display_name, tags, blocked_as FROM group_members \
             WHERE conversation_id = ?1",
        )?;
        let rows = stmt.query_map([conv], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let identity: Vec<u8> = tx.query_row(
        "SELECT identity FROM conversations WHERE id = ?1",
        [conv],
        |r| r.get(0),
    )?;
    let me = IdentityKey::from_bytes(&Zeroizing::new(identity))?;
    let mut notices = Vec::new();
    for (key, name, tags, was) in rows {
        if key == me.public() {
            // Our own tags name every contact of ours, blocked ones too.
            continue;
        }
        let found = match &tags {
            Some(tags) => recognition::blocked_member(tx, &key, &split_tags(tags))?,
            None => None,
        };
        if found == was {
            continue;
        }
        tx.execute(
            "UPDATE group_members SET blocked_as = ?3 WHERE conversation_id = ?1 AND identity_key = ?2",
            params![conv, key, found],
        )?;
        if let Some(pair) = found {
            let group = contact_name(tx, conv)?;
            let contact = contact_name(tx, &pair)?;
            notices.push(Notice {
                conversation: conv.to_string(),
                text: format!(
                    "{group}: the member shown as \"{name}\" is {contact}, whom you blocked; \
                     their messages in this group are hidden"
                ),
            });
        }
    }
    Ok(notices)
}

/// After joining `conv` as `member_key`: this user's own tags go into its
/// member row and to the group, and the roster is checked for contacts it
/// blocked.
fn announce_tags(
    tx: &Transaction<'_>,
    conv: &str,
    member_key: &[u8],
    now: u64,
) -> Result<Vec<Notice>> {
    let tags = recognition::own_member_tags(tx, member_key)?;
    tx.execute(
        "UPDATE group_members SET tags = ?3 WHERE conversation_id = ?1 AND identity_key = ?2",
        params![conv, member_key, tags.concat()],
    )?;
    let frame = PairFrame::MemberTags(tags);
    let sealed = encrypt_in(tx, conv, &frame)?;
    queue_with(
        tx,
        conv,
        &sealed.payload,
        &QueueOptions {
            epoch: Some(sealed.epoch),
            frame: Some(frame.to_bytes()),
            ..QueueOptions::default()
        },
        now,
    )?;
    find_blocked_members(tx, conv)
}

/// What opening a group message needs from its row. `session` is the
/// group's session kept for the page, when the message is one for it.
pub(crate) struct OpenRow<'s> {
    pub(crate) state: ConversationState,
    pub(crate) pending: Option<Vec<u8>>,
    pub(crate) identity: IdentityKey,
    pub(crate) session: Option<&'s mut Session>,
}

/// Whether a message of this kind, on this channel, in this state, is
/// processed by the group's MLS session.
fn for_session(envelope: &Envelope, channel: &ChannelRow, state: ConversationState) -> bool {
    matches!(envelope, Envelope::Mls(_))
        && matches!(channel.role, ChannelRole::Conv | ChannelRole::Retiring)
        && matches!(
            state,
            ConversationState::Active | ConversationState::Leaving
        )
}

/// Reads one group message: nothing is written to the store; the page's
/// session moves on when the message opens.
pub(crate) fn open_group_message(
    channel: &ChannelRow,
    seq: u64,
    envelope: Envelope,
    row: OpenRow<'_>,
) -> std::result::Result<GroupOutcome, OpenError> {
    let OpenRow {
        state,
        pending,
        identity,
        session,
    } = row;
    let seal = || {
        channel
            .seal_key
            .map(SealKey::from_bytes)
            .ok_or_else(|| CoreError::Corrupt("an inbox channel without a seal key".into()))
    };
    match (envelope, session) {
        (Envelope::JoinRequest(sealed), _)
            if channel.role == ChannelRole::Inbox && channel.owner =>
        {
            let plain = seal()?
                .open(JOIN_REQUEST_CONTEXT, &sealed)
                .map_err(refused)?;
            Ok(GroupOutcome::JoinRequest(
                JoinRequest::from_bytes(&plain).map_err(refused)?,
            ))
        }
        (Envelope::GroupWelcome(sealed), _)
            if channel.role == ChannelRole::Inbox && state == ConversationState::Joining =>
        {
            let plain = seal()?
                .open(GROUP_WELCOME_CONTEXT, &sealed)
                .map_err(refused)?;
            if pending.is_none() {
                return Err(refused("no key package waits for this Welcome").into());
            }
            Ok(GroupOutcome::Welcomed(
                GroupWelcome::from_bytes(&plain).map_err(refused)?,
            ))
        }
        (Envelope::Mls(message), Some(session)) => {
            open_in_session(channel, seq, &message, state, &identity, session)
        }
        _ => Err(refused(format!(
            "a message this {} channel does not carry",
            channel.role
        ))
        .into()),
    }
}

/// An MLS message on the group's channel, processed by its session.
fn open_in_session(
    channel: &ChannelRow,
    seq: u64,
    message: &[u8],
    state: ConversationState,
    identity: &IdentityKey,
    session: &mut Session,
) -> std::result::Result<GroupOutcome, OpenError> {
    let epoch_before = session.epoch();
    let secret = session.export(COMMIT_KEYS_LABEL).map_err(CoreError::from)?;
    // A commit sent to the old channel after the move is void for every
    // member (§11): processed to learn whose it was, then undone. Rare, so
    // the state before it is encoded only then.
    let after_move = channel.retire_seq.is_some_and(|moved_at| seq > moved_at)
        && !kith_crypto::mls::is_private_application(message);
    let before = if after_move {
        Some(session.snapshot().map_err(CoreError::from)?)
    } else {
        None
    };
    let incoming = match session.process(message) {
        Ok(incoming) => incoming,
        Err(_) if message_epoch(message).is_some_and(|e| e < epoch_before) => {
            return Ok(GroupOutcome::Stale);
        }
        Err(e) => return Err(refused(e).into()),
    };
    if let (Incoming::Commit(summary), Some(before)) = (&incoming, before) {
        // Its committer builds the change again.
        *session = Session::load(identity, before).map_err(CoreError::from)?;
        session.discard_pending();
        return Ok(GroupOutcome::Void {
            own_epoch: summary.own.then_some(epoch_before),
        });
    }
    let admin = session
        .admins()
        .unwrap_or_default()
        .contains(&identity.public().to_vec());
    match incoming {
        // A member on its way out reads only for the commit that removes
        // it.
        Incoming::Application { .. } if state == ConversationState::Leaving => {
            Ok(GroupOutcome::Proposal)
        }
        Incoming::Application { sender, plaintext } => {
            let frame = PairFrame::from_bytes(&plaintext).map_err(refused)?;
            check_content(&frame).map_err(refused)?;
            let sender_key = session
                .member(sender)
                .map(|m| m.identity_key)
                .unwrap_or_default();
            match &frame {
                PairFrame::Text { .. }
                | PairFrame::Content(_)
                | PairFrame::Profile { .. }
                | PairFrame::MemberTags(_)
                | PairFrame::Capabilities { .. } => {}
                PairFrame::Move(moved)
                    if moved.key.is_none()
                        && session.admins().unwrap_or_default().contains(&sender_key) => {}
                PairFrame::Move(_) => {
                    return Err(refused("a group move by a member who is not an admin").into());
                }
                _ => return Err(refused("a frame a group does not carry").into()),
            }
            Ok(GroupOutcome::Message { sender_key, frame })
        }
        Incoming::Commit(summary) => {
            let keys = if summary.authenticated_data.is_empty() {
                CommitKeys::default()
            } else {
                let plain = SealKey::from_bytes(*secret)
                    .open(COMMIT_KEYS_CONTEXT, &summary.authenticated_data)
                    .map_err(|e| refused(format!("commit keys: {e}")))?;
                CommitKeys::from_bytes(&plain).map_err(refused)?
            };
            Ok(GroupOutcome::Commit {
                summary,
                epoch_before,
                keys,
                admin,
            })
        }
        Incoming::Proposal => Ok(GroupOutcome::Proposal),
        _ => Err(refused("an MLS message a group does not use").into()),
    }
}

/// Proposes this member's removal in the group's current epoch, in `tx`
/// (group-v1.md §9). The group is `leaving` until a commit removes the
/// member; a proposal its epoch left behind is made again by the next sync.
pub(crate) fn propose_leave(tx: &Transaction<'_>, conv: &str, now: u64) -> Result<()> {
    let mut session = load_session(tx, conv)?;
    let proposal = session.propose_leave()?;
    let epoch = session.epoch();
    tx.execute(
        "UPDATE conversations SET mls_state = ?2, state = 'leaving', closed_reason = 'you left', \
         leave_epoch = ?3 WHERE id = ?1",
        params![conv, session.snapshot()?.to_bytes().as_slice(), ms(epoch)],
    )?;
    queue_with(
        tx,
        conv,
        &envelope_payload(&Envelope::Mls(proposal))?,
        &QueueOptions {
            epoch: Some(epoch),
            ..QueueOptions::default()
        },
        now,
    )
}

/// Applies a group outcome inside the message's transaction.
pub(crate) fn apply_group(
    tx: &Transaction<'_>,
    channel: &ChannelRow,
    seq: u64,
    outcome: GroupOutcome,
    (now, drain, caps): (u64, u64, &Capabilities),
    report: &mut SyncReport,
) -> Result<GroupApplied> {
    let conv = channel.conversation_id.as_str();
    let mut applied = GroupApplied::default();
    match outcome {
        GroupOutcome::Stale | GroupOutcome::Proposal => {}
        GroupOutcome::Void { own_epoch } => {
            if let Some(epoch) = own_epoch {
                tx.execute(
                    "UPDATE group_ops SET epoch = NULL, welcome = NULL WHERE conversation_id = ?1 AND epoch = ?2",
                    params![conv, ms(epoch)],
                )?;
                // Never to be sent again (it was, on the old channel).
                tx.execute(
                    "DELETE FROM outbox WHERE conversation_id = ?1 AND commit_epoch = ?2",
                    params![conv, ms(epoch)],
                )?;
            }
        }
        GroupOutcome::Message { sender_key, frame } => {
            match frame {
                PairFrame::Text { .. } | PairFrame::Content(_)
                    if is_blocked_member(tx, conv, &sender_key)? =>
                {
                    // Someone this user blocked (§7.1): not shown.
                }
                PairFrame::Text { .. } | PairFrame::Content(_) => {
                    let from = member_name(tx, conv, &sender_key)?;
                    if let Some(message) =
                        Received::from_frame(&frame, Some(from), &sender_key, conv, (caps, now))
                    {
                        receive_message(tx, conv, message, now, report)?;
                    }
                }
                PairFrame::Profile { display_name } => {
                    tx.execute(
                        "UPDATE group_members SET display_name = ?3 WHERE conversation_id = ?1 AND identity_key = ?2",
                        params![conv, sender_key, display_name],
                    )?;
                }
                PairFrame::Move(moved) => {
                    receive_move(tx, conv, channel, seq, &moved, now, drain)?;
                }
                PairFrame::MemberTags(tags) => {
                    tx.execute(
                        "UPDATE group_members SET tags = ?3 WHERE conversation_id = ?1 AND identity_key = ?2",
                        params![conv, sender_key, tags.concat()],
                    )?;
                    report.notices.extend(find_blocked_members(tx, conv)?);
                }
                PairFrame::Capabilities {
                    media_types,
                    features,
                } => store_capabilities(tx, conv, &sender_key, &media_types, &features)?,
                _ => {}
            }
        }
        GroupOutcome::Commit {
            summary,
            epoch_before,
            keys,
            admin,
        } => {
            let mut tagged = false;
            for entry in &keys.added {
                if summary
                    .added
                    .iter()
                    .any(|m| m.identity_key == entry.identity_key)
                {
                    upsert_member(tx, conv, entry)?;
                    tagged |= !entry.tags.is_empty();
                }
            }
            // Members added with the tags their JoinRequest carried
            // (§7.1): one of them may be someone this user blocked.
            if tagged && !summary.removed_self {
                report.notices.extend(find_blocked_members(tx, conv)?);
            }
            for gone in &summary.removed {
                let key: Option<Vec<u8>> = tx
                    .query_row(
                        "DELETE FROM group_members WHERE conversation_id = ?1 AND identity_key = ?2 RETURNING capability_key",
                        params![conv, gone.identity_key],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(key) = key.and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
                    && admin
                    && !summary.removed_self
                {
                    applied.revoke.push(key);
                }
            }
            if summary.removed_self {
                report
                    .notices
                    .extend(close_group(tx, conv, GroupExit::Committed)?);
            } else if summary.own {
                deliver_welcomes(tx, conv, epoch_before, seq, now)?;
                tx.execute(
                    "DELETE FROM group_ops WHERE conversation_id = ?1 AND epoch = ?2",
                    params![conv, ms(epoch_before)],
                )?;
                tx.execute(
                    "UPDATE conversations SET last_commit = ?2 WHERE id = ?1",
                    params![conv, ms(now)],
                )?;
            } else {
                // Another commit took this epoch: ours (if any) is built again.
                tx.execute(
                    "UPDATE group_ops SET epoch = NULL, welcome = NULL WHERE conversation_id = ?1 AND epoch = ?2",
                    params![conv, ms(epoch_before)],
                )?;
                tx.execute(
                    "DELETE FROM group_ops WHERE conversation_id = ?1 AND kind = 'update' AND epoch IS NULL",
                    [conv],
                )?;
                tx.execute(
                    "DELETE FROM outbox WHERE conversation_id = ?1 AND commit_epoch = ?2",
                    params![conv, ms(epoch_before)],
                )?;
            }
        }
        GroupOutcome::JoinRequest(request) => {
            let answered: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM group_ops WHERE inbox_channel = ?1)",
                [channel.id],
                |r| r.get(0),
            )?;
            if !answered {
                let seed: [u8; 32] = random()?;
                tx.execute(
                    "INSERT INTO group_ops (conversation_id, kind, key_package, capability_seed, member_name, inbox_channel, tags, created_at) \
                     VALUES (?1, 'add', ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![conv, request.key_package, seed.as_slice(), request.display_name, channel.id, request.tags.concat(), ms(now)],
                )?;
            }
        }
        GroupOutcome::Welcomed(welcome) => {
            tx.execute(
                "UPDATE conversations SET pending_welcome = ?2, contact_name = ?3, last_activity = ?4 \
                 WHERE id = ?1",
                params![conv, welcome.to_bytes(), welcome.group_name, ms(now)],
            )?;
            tx.execute(
                "UPDATE channels SET role = 'inbox-done' WHERE id = ?1",
                [channel.id],
            )?;
        }
    }
    Ok(applied)
}

/// Sends the Welcome of each member this member's commit at `epoch`
/// added: through the 1:1 conversation it came from, or sealed on the
/// group link's inbox.
fn deliver_welcomes(
    tx: &Transaction<'_>,
    conv: &str,
    epoch: u64,
    seq: u64,
    now: u64,
) -> Result<()> {
    type Row = (
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Option<String>,
        Option<i64>,
    );
    let adds: Vec<Row> = {
        let mut stmt = tx.prepare(
            "SELECT welcome, state_ref, capability_seed, deliver_to, inbox_channel FROM group_ops \
             WHERE conversation_id = ?1 AND epoch = ?2 AND kind = 'add'",
        )?;
        let rows = stmt.query_map(params![conv, ms(epoch)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    if adds.is_empty() {
        return Ok(());
    }
    let channel = group_channel(tx, conv)?;
    let group_name: String = tx.query_row(
        "SELECT COALESCE(contact_name, '') FROM conversations WHERE id = ?1",
        [conv],
        |r| r.get(0),
    )?;
    for (welcome, state, seed, pair, inbox) in adds {
        let (Some(welcome), Some(state), Some(seed)) = (welcome, state, seed) else {
            continue;
        };
        let seed = <[u8; 32]>::try_from(seed.as_slice())
            .map_err(|_| CoreError::Corrupt("capability seed".into()))?;
        let invite = GroupWelcome {
            group_name: group_name.clone(),
            channel: grant_for(&channel, seed),
            welcome,
            state: GroupStateRef::from_bytes(&state)?,
            from_seq: seq,
        };
        if let Some(pair) = pair {
            queue_frame(tx, &pair, &PairFrame::GroupInvite(invite), now)?;
        } else if let Some(inbox) = inbox {
            let seal_key: Option<Vec<u8>> = tx.query_row(
                "SELECT seal_key FROM channels WHERE id = ?1",
                [inbox],
                |r| r.get(0),
            )?;
            let seal_key = seal_key
                .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
                .map(SealKey::from_bytes)
                .ok_or_else(|| CoreError::Corrupt("inbox without a seal key".into()))?;
            let sealed =
                seal_key.seal(GROUP_WELCOME_CONTEXT, &Zeroizing::new(invite.to_bytes()))?;
            queue_with(
                tx,
                conv,
                &envelope_payload(&Envelope::GroupWelcome(sealed))?,
                &QueueOptions {
                    channel: Some(inbox),
                    ..QueueOptions::default()
                },
                now,
            )?;
            tx.execute(
                "UPDATE channels SET role = 'inbox-done' WHERE id = ?1",
                [inbox],
            )?;
        }
    }
    Ok(())
}

/// The GroupV1 logic for one page of one channel (group-v1.md).
pub(crate) struct GroupV1 {
    moment: Moment,
    session: PageSession,
}

/// What arrives for a group.
pub(crate) enum GroupInput<'a> {
    /// A message on the group's channel or on one of its link inboxes.
    Channel(Arrived<'a>),
    /// A Welcome sent to this user through the 1:1 conversation `via`
    /// (§6.1), answering the spare key package offered there.
    Invitation {
        via: String,
        invite: Box<GroupWelcome>,
    },
    /// The group's state a waiting Welcome names, fetched by the runtime
    /// from the group's relay (§6.3): still sealed.
    State { conv: String, sealed: Vec<u8> },
}

/// A group message, opened.
pub(crate) enum OpenedGroup<'a> {
    Channel {
        channel: &'a ChannelRow,
        seq: u64,
        outcome: GroupOutcome,
    },
    Invitation {
        via: String,
        invite: Box<GroupWelcome>,
        identity: Zeroizing<Vec<u8>>,
        pending: Zeroizing<Vec<u8>>,
    },
    Joined {
        conv: String,
        welcome: GroupWelcome,
        roster: Vec<MemberEntry>,
        identity: IdentityKey,
        snapshot: Zeroizing<Vec<u8>>,
    },
}

/// What this member knows of the group's members: names, capability keys,
/// recognition tags.
pub(crate) fn group_roster(db: &rusqlite::Connection, conv: &str) -> Result<Vec<MemberEntry>> {
    let mut stmt = db.prepare(
        "SELECT identity_key, display_name, capability_key, tags FROM group_members WHERE conversation_id = ?1",
    )?;
    let rows = stmt.query_map([conv], |r| {
        let cap: Vec<u8> = r.get(2)?;
        Ok(MemberEntry {
            identity_key: r.get(0)?,
            display_name: r.get(1)?,
            capability_key: <[u8; 32]>::try_from(cap.as_slice()).unwrap_or([0; 32]),
            tags: split_tags(&r.get::<_, Option<Vec<u8>>>(3)?.unwrap_or_default()),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Seals one epoch's state for the members a commit adds (§6.3): returns
/// the key and the sealed bytes, to be published as a blob.
pub(crate) fn seal_state(state: &GroupState) -> Result<([u8; 32], Vec<u8>)> {
    let key: [u8; 32] = random()?;
    let sealed = SealKey::from_bytes(key).seal(GROUP_STATE_CONTEXT, &state.to_bytes())?;
    Ok((key, sealed))
}

impl GroupV1 {
    pub(crate) fn new(moment: Moment) -> Self {
        Self {
            moment,
            session: PageSession::default(),
        }
    }
}

impl ConversationType for GroupV1 {
    type Input<'a> = GroupInput<'a>;
    type Opened<'a> = OpenedGroup<'a>;

    fn open<'a>(
        &mut self,
        tx: &Transaction<'_>,
        input: Self::Input<'a>,
    ) -> std::result::Result<Self::Opened<'a>, OpenError> {
        match input {
            GroupInput::Channel(Arrived {
                channel,
                seq,
                envelope,
                state,
            }) => {
                let conv = channel.conversation_id.as_str();
                let (pending, identity): (Option<Vec<u8>>, Vec<u8>) = tx
                    .prepare_cached("SELECT pending_kp, identity FROM conversations WHERE id = ?1")?
                    .query_row([conv], |r| Ok((r.get(0)?, r.get(1)?)))?;
                let identity =
                    IdentityKey::from_bytes(&Zeroizing::new(identity)).map_err(CoreError::from)?;
                let session = if for_session(&envelope, channel, state) {
                    Some(self.session.get(tx, conv)?)
                } else {
                    None
                };
                let uses_session = session.is_some();
                let row = OpenRow {
                    state,
                    pending,
                    identity,
                    session,
                };
                let opened = open_group_message(channel, seq, envelope, row);
                // The kept session is the truth from now on, refused or not
                // (a message refused after MLS opened it still used up its
                // key).
                if uses_session {
                    self.session.moved();
                }
                let outcome = opened?;
                Ok(OpenedGroup::Channel {
                    channel,
                    seq,
                    outcome,
                })
            }
            GroupInput::Invitation { via, invite } => {
                let (identity, pending): (Option<Vec<u8>>, Option<Vec<u8>>) = tx.query_row(
                    "SELECT spare_identity, spare_kp FROM conversations WHERE id = ?1",
                    [&via],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let (Some(identity), Some(pending)) = (identity, pending) else {
                    return Err(refused(
                        "a group invitation without a spare key package to answer it",
                    )
                    .into());
                };
                Ok(OpenedGroup::Invitation {
                    via,
                    invite,
                    identity: Zeroizing::new(identity),
                    pending: Zeroizing::new(pending),
                })
            }
            GroupInput::State { conv, sealed } => {
                type Row = (Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>);
                let (identity, pending, welcome): Row = tx.query_row(
                    "SELECT identity, pending_kp, pending_welcome FROM conversations WHERE id = ?1",
                    [&conv],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
                let (Some(pending), Some(welcome)) = (pending, welcome) else {
                    return Err(CoreError::Corrupt("no Welcome waits for this state".into()).into());
                };
                let welcome = GroupWelcome::from_bytes(&welcome).map_err(CoreError::from)?;
                let identity =
                    IdentityKey::from_bytes(&Zeroizing::new(identity)).map_err(CoreError::from)?;
                let pending = PendingKeyPackage::from_bytes(&Zeroizing::new(pending))
                    .map_err(CoreError::from)?;
                let plain = SealKey::from_bytes(welcome.state.key)
                    .open(GROUP_STATE_CONTEXT, &sealed)
                    .map_err(|e| refused(format!("the group's state: {e}")))?;
                let state = GroupState::from_bytes(&plain).map_err(refused)?;
                let mut session =
                    Session::join_group(&identity, &pending, &welcome.welcome, &state.ratchet_tree)
                        .map_err(refused)?;
                if session.admins().is_none() {
                    return Err(refused("a group Welcome without an admin list").into());
                }
                let snapshot = session.snapshot().map_err(CoreError::from)?.to_bytes();
                Ok(OpenedGroup::Joined {
                    conv,
                    welcome,
                    roster: state.roster,
                    identity,
                    snapshot,
                })
            }
        }
    }

    fn apply(
        &mut self,
        tx: &Transaction<'_>,
        opened: OpenedGroup<'_>,
        fx: &mut Effects,
    ) -> Result<()> {
        let Moment { now, drain, .. } = self.moment;
        match opened {
            OpenedGroup::Channel {
                channel,
                seq,
                outcome,
            } => {
                let at = (now, drain, &*self.moment.caps);
                let applied = apply_group(tx, channel, seq, outcome, at, &mut fx.report)?;
                if applied.joined {
                    fx.joined.push(channel.conversation_id.clone());
                }
                fx.revoke.extend(
                    applied
                        .revoke
                        .into_iter()
                        .map(|key| (channel.conversation_id.clone(), key)),
                );
            }
            OpenedGroup::Invitation {
                via,
                invite,
                identity,
                pending,
            } => wait_for_state(tx, &via, &invite, &identity, &pending, now)?,
            OpenedGroup::Joined {
                conv,
                welcome,
                roster,
                identity,
                snapshot,
            } => {
                tx.execute(
                    "UPDATE conversations SET state = 'active', mls_state = ?2, pending_kp = NULL, \
                     pending_welcome = NULL, expires_at = NULL, contact_name = ?3, last_activity = ?4, \
                     last_commit = ?4 WHERE id = ?1",
                    params![conv, snapshot.as_slice(), welcome.group_name, ms(now)],
                )?;
                insert_channel(
                    tx,
                    &conv,
                    &welcome.channel,
                    &welcome.channel.key,
                    false,
                    true,
                    now,
                )?;
                // The commit that added this member and what came before it
                // are not for it (§6.3).
                tx.execute(
                    "UPDATE channels SET cursor = ?3 WHERE conversation_id = ?1 AND write_id = ?2",
                    params![conv, welcome.channel.write_id.0, ms(welcome.from_seq)],
                )?;
                for entry in &roster {
                    upsert_member(tx, &conv, entry)?;
                }
                // A link joiner's tags came with the commit that added it;
                // a contact added through a 1:1 conversation publishes its
                // own (§7.1).
                let tagged = roster
                    .iter()
                    .any(|m| m.identity_key == identity.public() && !m.tags.is_empty());
                let notices = if tagged {
                    find_blocked_members(tx, &conv)?
                } else {
                    announce_tags(tx, &conv, identity.public(), now)?
                };
                fx.report.notices.extend(notices);
                fx.joined.push(conv);
            }
        }
        Ok(())
    }

    fn finish(&mut self, tx: &Transaction<'_>) -> Result<()> {
        self.session.save(tx)
    }

    /// A member on its way out proposes its removal again in every new
    /// epoch until a commit carries it out (§9).
    fn tick(&mut self, tx: &Transaction<'_>, _: &mut Effects) -> Result<()> {
        let leaving: Vec<(String, Option<i64>)> = tx
            .prepare(
                "SELECT id, leave_epoch FROM conversations WHERE kind = 'group' AND state = 'leaving'",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, leave_epoch) in leaving {
            if leave_epoch.and_then(|e| u64::try_from(e).ok())
                == Some(load_session(tx, &id)?.epoch())
            {
                continue;
            }
            propose_leave(tx, &id, self.moment.now)?;
        }
        Ok(())
    }
}

/// A Welcome sent through the 1:1 conversation `pair` (§6.1): the group
/// conversation is made, `joining` with the spare identity and key package
/// it answers, until the runtime has fetched the group's state it names.
fn wait_for_state(
    tx: &Transaction<'_>,
    pair: &str,
    invite: &GroupWelcome,
    identity: &[u8],
    pending: &[u8],
    now: u64,
) -> Result<()> {
    // A contact met through a persona adds this user as that persona.
    let (my_name, persona): (String, Option<i64>) = tx.query_row(
        "SELECT my_name, persona_id FROM conversations WHERE id = ?1",
        [pair],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let id = conversation_id(&invite.channel.write_id);
    tx.execute(
        "INSERT INTO conversations (id, kind, state, contact_name, my_name, identity, pending_kp, \
         pending_welcome, created_at, last_activity, persona_id) \
         VALUES (?1, 'group', 'joining', ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
        params![
            id,
            invite.group_name,
            my_name,
            identity,
            pending,
            invite.to_bytes(),
            ms(now),
            persona
        ],
    )?;
    tx.execute(
        "UPDATE conversations SET spare_identity = NULL, spare_kp = NULL WHERE id = ?1",
        [pair],
    )?;
    Ok(())
}
