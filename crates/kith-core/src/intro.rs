//! Double opt-in introductions (docs/spec/introduction-v1.md).
//!
//! ```text
//!  A (creates)            introducer                 B (joins)
//!     ◀── Offer ───────────── │ ──────────── Offer ──▶
//!     ─── Answer(kp, tags) ─▶ │ ◀─ Answer(kp, tags) ──
//!     ◀── Matched(B's) ────── │ ──── Matched(A's) ───▶   both accepted
//!  new group, channel         │
//!     ─── Welcome(sealed) ──▶ │ ──── Welcome(sealed) ─▶  B joins, opens the
//!                                                        channel: A ⇄ B direct
//! ```
//!
//! The introducer passes key packages and the Welcome, never a key of the
//! new conversation: its channel is sealed with a secret of the new group.

use std::time::Duration;

use kith_crypto::mls::{IdentityKey, PendingKeyPackage, Session, key_package};
use kith_crypto::seal::SealKey;
use kith_wire::Codec;
use kith_wire::conv::{ChannelGrant, Envelope, IntroStep, Introduction, PairFrame};
use kith_wire::relay::to_hex;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

use zeroize::Zeroizing;

use crate::config::millis;
use crate::engine::{
    Engine, NewPair, SyncReport, contact_name, conversation_id, envelope_payload,
    insert_active_pair, insert_channel, queue, random, record_integrity_event,
};
use crate::error::{CoreError, Result};
use crate::recognition;
use crate::store::{self, ChannelRole, ConversationKind, ConversationState, ms};

/// How long an introduction can be answered.
pub const INTRODUCTION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// The exporter label and seal context of the new conversation's channel.
const CHANNEL_LABEL: &str = "kith introduction channel v1";
const TAG_CONTEXT: &[u8] = b"kith introduction tag v1";

/// An introduction as `kith introductions` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct IntroductionView {
    /// Hex of the introduction id; a unique prefix is enough to answer.
    pub id: String,
    /// `received` (offered to this user) or `made` (by this user).
    pub role: String,
    /// Who introduces: a contact's name, or `me`.
    pub introducer: String,
    /// Whom this user would meet (received), or whom it introduced (made).
    pub peer: String,
    pub note: String,
    /// Received: `pending`, `accepted`, `declined`, `matched`, `connected`,
    /// `refused` (someone you blocked) or `closed` (the other side said no).
    /// Made: `open`, `matched`, `connected` or `closed`, with each side's
    /// answer.
    pub state: String,
    /// The new conversation, once connected.
    pub conversation: Option<String>,
}

/// A conversation's recognition tag for one introduction
/// (introduction-v1.md §5): both members of a conversation compute the
/// same one, nobody else can.
pub fn recognition_tag(secret: &[u8; 32], intro_id: &[u8; 16]) -> Result<[u8; 32]> {
    recognition::tag(secret, TAG_CONTEXT, intro_id)
}

/// This user's tag for every 1:1 conversation but `except`, with whether
/// that contact is blocked.
fn own_tags(
    db: &Connection,
    intro_id: &[u8; 16],
    except: &str,
) -> Result<Vec<([u8; 32], String, bool)>> {
    recognition::pair_secrets(db, Some(except), false)?
        .into_iter()
        .map(|p| {
            Ok((
                recognition_tag(&p.secret, intro_id)?,
                p.conversation,
                p.blocked,
            ))
        })
        .collect()
}

/// The tags an answer carries: ours, padded with random ones.
fn answer_tags(db: &Connection, intro_id: &[u8; 16], via: &str) -> Result<Vec<[u8; 32]>> {
    recognition::padded(
        own_tags(db, intro_id, via)?
            .into_iter()
            .map(|t| t.0)
            .collect(),
    )
}

fn encode_tags(tags: &[[u8; 32]]) -> Vec<u8> {
    tags.concat()
}

fn decode_tags(bytes: &[u8]) -> Vec<[u8; 32]> {
    bytes
        .chunks_exact(32)
        .filter_map(|c| <[u8; 32]>::try_from(c).ok())
        .collect()
}

fn step(
    tx: &Transaction<'_>,
    conv: &str,
    intro_id: [u8; 16],
    step: IntroStep,
    now: u64,
) -> Result<()> {
    crate::engine::queue_frame(
        tx,
        conv,
        &PairFrame::Introduction(Introduction { intro_id, step }),
        now,
    )
}

/// The name a contact shows this user (not a local rename, which stays
/// private).
fn shown_name(db: &Connection, conv: &str) -> Result<String> {
    Ok(db.query_row(
        "SELECT COALESCE(contact_name, local_name, 'a contact') FROM conversations WHERE id = ?1",
        [conv],
        |r| r.get(0),
    )?)
}

/// An introduction step from the conversation `via`, in the message's
/// transaction.
pub(crate) fn receive(
    tx: &Transaction<'_>,
    via: &str,
    intro: Introduction,
    now: u64,
    report: &mut SyncReport,
) -> Result<()> {
    let id = intro.intro_id;
    match intro.step {
        IntroStep::Offer {
            peer_name,
            note,
            creates,
            expires_at_ms,
        } => {
            let ignored: bool = tx.query_row(
                "SELECT ignore_introductions FROM conversations WHERE id = ?1",
                [via],
                |r| r.get(0),
            )?;
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO introductions (id, via, peer_name, note, creates, state, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![id, via, peer_name, note, creates, if ignored { "ignored" } else { "pending" },
                        ms(now), ms(expires_at_ms.min(now.saturating_add(ttl_ms())))],
            )?;
            if inserted == 1 {
                if ignored {
                    decline(tx, via, id, now)?;
                } else if let Some(view) = received_view(tx, &id, now)? {
                    report.introductions.push(view);
                }
            }
        }
        IntroStep::Answer { key_package, tags } => {
            answered(tx, via, id, key_package, &tags, now, report)?;
        }
        IntroStep::Matched {
            peer_key_package,
            peer_tags,
        } => {
            let state: Option<String> = tx
                .query_row(
                    "SELECT state FROM introductions WHERE id = ?1 AND via = ?2",
                    params![id, via],
                    |r| r.get(0),
                )
                .optional()?;
            if state.as_deref() != Some("accepted") {
                return Ok(());
            }
            let blocked = own_tags(tx, &id, via)?
                .into_iter()
                .any(|(t, _, blocked)| blocked && peer_tags.contains(&t));
            if blocked {
                // Someone this user blocked: refused, and to the introducer
                // it looks like any decline.
                tx.execute(
                    "UPDATE introductions SET state = 'refused', identity = NULL, pending_kp = NULL WHERE id = ?1",
                    [id],
                )?;
                decline(tx, via, id, now)?;
            } else {
                tx.execute(
                    "UPDATE introductions SET state = 'matched', peer_kp = ?2 WHERE id = ?1",
                    params![id, peer_key_package],
                )?;
            }
            if let Some(view) = received_view(tx, &id, now)? {
                report.introductions.push(view);
            }
        }
        IntroStep::Welcome {
            welcome,
            sealed_channel,
        } => {
            // The introducer forwards the creator's Welcome to the joiner.
            let forward_to: Option<String> = tx
                .query_row(
                    "SELECT conv_b FROM introductions_made WHERE id = ?1 AND conv_a = ?2 AND state = 'matched'",
                    params![id, via],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(conv_b) = forward_to {
                step(
                    tx,
                    &conv_b,
                    id,
                    IntroStep::Welcome {
                        welcome,
                        sealed_channel,
                    },
                    now,
                )?;
                tx.execute(
                    "UPDATE introductions_made SET state = 'connected' WHERE id = ?1",
                    [id],
                )?;
                return Ok(());
            }
            match join(tx, via, id, &welcome, &sealed_channel, now) {
                Ok(Some(conv)) => report.joined_groups.push(conv),
                Ok(None) => {}
                Err(detail) => {
                    tx.execute(
                        "UPDATE introductions SET state = 'closed' WHERE id = ?1",
                        [id],
                    )?;
                    record_integrity_event(
                        tx,
                        via,
                        now,
                        format!("an introduction's welcome could not be used: {detail}"),
                        report,
                    )?;
                }
            }
        }
        IntroStep::Closed => {
            let conversation: Option<Option<String>> = tx
                .query_row(
                    "SELECT conversation FROM introductions WHERE id = ?1 AND via = ?2 \
                     AND state IN ('pending', 'accepted', 'matched', 'connected')",
                    params![id, via],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(conversation) = conversation else {
                return Ok(());
            };
            // The other side refused after this one created the
            // conversation: it will never be joined.
            if let Some(conv) = conversation {
                tx.execute(
                    "DELETE FROM conversations WHERE id = ?1 AND state = 'active' \
                     AND NOT EXISTS (SELECT 1 FROM messages WHERE conversation_id = ?1 AND outgoing = 0)",
                    [conv],
                )?;
            }
            tx.execute(
                "UPDATE introductions SET state = 'closed', identity = NULL, pending_kp = NULL, conversation = NULL \
                 WHERE id = ?1",
                [id],
            )?;
            if let Some(view) = received_view(tx, &id, now)? {
                report.introductions.push(view);
            }
        }
    }
    Ok(())
}

fn ttl_ms() -> u64 {
    millis(INTRODUCTION_TTL)
}

fn decline(tx: &Transaction<'_>, via: &str, id: [u8; 16], now: u64) -> Result<()> {
    step(
        tx,
        via,
        id,
        IntroStep::Answer {
            key_package: Vec::new(),
            tags: Vec::new(),
        },
        now,
    )
}

/// The introducer records one side's answer; once both accepted, each gets
/// the other's; a decline closes the introduction for the other side.
fn answered(
    tx: &Transaction<'_>,
    via: &str,
    id: [u8; 16],
    key_package: Vec<u8>,
    tags: &[[u8; 32]],
    now: u64,
    report: &mut SyncReport,
) -> Result<()> {
    type Row = (String, String, String, String, String);
    let row: Option<Row> = tx
        .query_row(
            "SELECT conv_a, conv_b, a_state, b_state, state FROM introductions_made WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let Some((conv_a, conv_b, a_state, b_state, state)) = row else {
        return Ok(());
    };
    let (side_a, other, other_state) = if via == conv_a {
        (true, conv_b.as_str(), b_state)
    } else if via == conv_b {
        (false, conv_a.as_str(), a_state)
    } else {
        return Ok(());
    };
    if key_package.is_empty() {
        // A side may refuse even after the Welcome passed (someone it
        // blocked): the creator then drops the conversation it made.
        if !matches!(state.as_str(), "open" | "matched" | "connected") {
            return Ok(());
        }
        let sql = if side_a {
            "UPDATE introductions_made SET a_state = 'declined', state = 'closed' WHERE id = ?1"
        } else {
            "UPDATE introductions_made SET b_state = 'declined', state = 'closed' WHERE id = ?1"
        };
        tx.execute(sql, [id])?;
        if other_state != "declined" {
            step(tx, other, id, IntroStep::Closed, now)?;
        }
    } else if state == "open" {
        let sql = if side_a {
            "UPDATE introductions_made SET a_state = 'accepted', a_kp = ?2, a_tags = ?3 WHERE id = ?1"
        } else {
            "UPDATE introductions_made SET b_state = 'accepted', b_kp = ?2, b_tags = ?3 WHERE id = ?1"
        };
        tx.execute(sql, params![id, key_package, encode_tags(tags)])?;
        type Answers = (
            String,
            String,
            Option<Vec<u8>>,
            Option<Vec<u8>>,
            Option<Vec<u8>>,
            Option<Vec<u8>>,
        );
        let (a_state, b_state, a_kp, a_tags, b_kp, b_tags): Answers = tx.query_row(
            "SELECT a_state, b_state, a_kp, a_tags, b_kp, b_tags FROM introductions_made WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )?;
        if let (true, Some(a_kp), Some(b_kp)) =
            (a_state == "accepted" && b_state == "accepted", a_kp, b_kp)
        {
            step(
                tx,
                &conv_a,
                id,
                IntroStep::Matched {
                    peer_key_package: b_kp,
                    peer_tags: decode_tags(&b_tags.unwrap_or_default()),
                },
                now,
            )?;
            step(
                tx,
                &conv_b,
                id,
                IntroStep::Matched {
                    peer_key_package: a_kp,
                    peer_tags: decode_tags(&a_tags.unwrap_or_default()),
                },
                now,
            )?;
            tx.execute(
                "UPDATE introductions_made SET state = 'matched', a_kp = NULL, b_kp = NULL, a_tags = NULL, b_tags = NULL \
                 WHERE id = ?1",
                [id],
            )?;
        }
    }
    if let Some(view) = made_view(tx, &id)? {
        report.introductions.push(view);
    }
    Ok(())
}

/// The joiner's side of the Welcome: the new conversation, on the channel
/// the creator sealed for it. `Ok(None)`: not an introduction waiting for it.
fn join(
    tx: &Transaction<'_>,
    via: &str,
    id: [u8; 16],
    welcome: &[u8],
    sealed_channel: &[u8],
    now: u64,
) -> Result<Option<String>, String> {
    type Row = (String, Option<String>, Option<Vec<u8>>, Option<Vec<u8>>);
    let row: Option<Row> = tx
        .query_row(
            "SELECT peer_name, my_name, identity, pending_kp FROM introductions \
             WHERE id = ?1 AND via = ?2 AND creates = 0 AND state = 'matched'",
            params![id, via],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()
        .map_err(|e| e.to_string())?;
    let Some((peer_name, my_name, Some(identity), Some(pending))) = row else {
        return Ok(None);
    };
    let e = |e: CoreError| e.to_string();
    let identity = IdentityKey::from_bytes(&Zeroizing::new(identity)).map_err(|e| e.to_string())?;
    let pending =
        PendingKeyPackage::from_bytes(&Zeroizing::new(pending)).map_err(|e| e.to_string())?;
    let mut session = Session::join(&identity, &pending, welcome).map_err(|e| e.to_string())?;
    if session.members().len() != 2 {
        return Err("an introduction's Welcome must make a group of two".into());
    }
    let key = session.export(CHANNEL_LABEL).map_err(|e| e.to_string())?;
    let grant_bytes = SealKey::from_bytes(*key)
        .open(CHANNEL_LABEL.as_bytes(), sealed_channel)
        .map_err(|_| "the channel does not open with the new conversation's secret".to_string())?;
    let grant = ChannelGrant::from_bytes(&grant_bytes).map_err(|e| e.to_string())?;
    let conv = conversation_id(&grant.write_id);
    let my_name = match my_name {
        Some(n) => n,
        None => store::profile(tx)
            .map_err(e)?
            .map(|p| p.name)
            .unwrap_or_default(),
    };
    let introducer = shown_name(tx, via).map_err(e)?;
    let profile = PairFrame::Profile {
        display_name: my_name.clone(),
    };
    let ct = session
        .encrypt(&Zeroizing::new(profile.to_bytes()))
        .map_err(|e| e.to_string())?;
    let snapshot = session.snapshot().map_err(|e| e.to_string())?;
    insert_active_pair(
        tx,
        &NewPair {
            id: &conv,
            contact_name: &peer_name,
            my_name: &my_name,
            identity: &identity,
            snapshot: &snapshot,
            now: ms(now),
            introduced_by: Some(&introducer),
        },
    )
    .map_err(e)?;
    insert_channel(tx, &conv, &grant, &grant.key, false, true, now).map_err(e)?;
    queue(
        tx,
        &conv,
        &envelope_payload(&Envelope::Mls(ct)).map_err(e)?,
        now,
    )
    .map_err(e)?;
    tx.execute(
        "UPDATE introductions SET state = 'connected', conversation = ?2, identity = NULL, pending_kp = NULL \
         WHERE id = ?1",
        params![id, conv],
    )
    .map_err(|e| e.to_string())?;
    Ok(Some(conv))
}

fn received_view(db: &Connection, id: &[u8; 16], now: u64) -> Result<Option<IntroductionView>> {
    Ok(db
        .query_row(
            "SELECT i.via, i.peer_name, i.note, i.state, i.conversation, i.expires_at FROM introductions i WHERE i.id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            },
        )
        .optional()?
        .map(|(via, peer, note, state, conversation, expires_at)| {
            let expired = u64::try_from(expires_at).unwrap_or(0) < now;
            IntroductionView {
                id: to_hex(id),
                role: "received".into(),
                introducer: contact_name(db, &via).unwrap_or_default(),
                peer,
                note,
                state: if expired && matches!(state.as_str(), "pending" | "accepted") {
                    "expired".into()
                } else {
                    state
                },
                conversation,
            }
        }))
}

fn made_view(db: &Connection, id: &[u8; 16]) -> Result<Option<IntroductionView>> {
    type Row = (String, String, String, String, String, String);
    let row: Option<Row> = db
        .query_row(
            "SELECT conv_a, conv_b, note, a_state, b_state, state FROM introductions_made WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .optional()?;
    let Some((a, b, note, a_state, b_state, state)) = row else {
        return Ok(None);
    };
    let (a, b) = (contact_name(db, &a)?, contact_name(db, &b)?);
    Ok(Some(IntroductionView {
        id: to_hex(id),
        role: "made".into(),
        introducer: "me".into(),
        peer: format!("{a} and {b}"),
        note,
        state: format!("{state} ({a}: {a_state}, {b}: {b_state})"),
        conversation: None,
    }))
}

impl Engine {
    /// Offers `a` and `b` (1:1 conversations) to each other. They are
    /// connected, on keys this user never holds, only if both accept.
    pub async fn introduce(&mut self, a: &str, b: &str, note: &str) -> Result<IntroductionView> {
        crate::error::check_len("note", note, kith_wire::conv::MAX_NOTE)?;
        let conv_a = self.resolve(a)?;
        let conv_b = self.resolve(b)?;
        if conv_a == conv_b {
            return Err(CoreError::BadIntroduction);
        }
        for (id, given) in [(&conv_a, a), (&conv_b, b)] {
            let (kind, state, blocked): (ConversationKind, ConversationState, bool) =
                self.db.query_row(
                    "SELECT kind, state, blocked FROM conversations WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
            if kind != ConversationKind::Pair {
                return Err(CoreError::BadIntroduction);
            }
            if state != ConversationState::Active {
                return Err(CoreError::NotAContact(given.to_string()));
            }
            if blocked {
                return Err(CoreError::Blocked(given.to_string()));
            }
        }
        let id: [u8; 16] = random()?;
        let now = self.now();
        let expires_at = now.saturating_add(ttl_ms());
        let (name_a, name_b) = (
            shown_name(&self.db, &conv_a)?,
            shown_name(&self.db, &conv_b)?,
        );
        let tx = self.db.transaction()?;
        tx.execute(
            "INSERT INTO introductions_made (id, conv_a, conv_b, note, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, conv_a, conv_b, note, ms(now), ms(expires_at)],
        )?;
        for (to, peer_name, creates) in [(&conv_a, &name_b, true), (&conv_b, &name_a, false)] {
            step(
                &tx,
                to,
                id,
                IntroStep::Offer {
                    peer_name: peer_name.clone(),
                    note: note.to_string(),
                    creates,
                    expires_at_ms: expires_at,
                },
                now,
            )?;
        }
        tx.commit()?;
        let view = made_view(&self.db, &id)?.ok_or(CoreError::BadIntroduction)?;
        self.flush_outbox(None)
            .await
            .map_err(|e| CoreError::Queued(e.to_string()))?;
        Ok(view)
    }

    /// Introductions offered to this user, and made by it; newest first.
    pub fn introductions(&self) -> Result<Vec<IntroductionView>> {
        let mut out = Vec::new();
        let ids: Vec<(Vec<u8>, bool)> = {
            let mut stmt = self.db.prepare(
                "SELECT id, 1, created_at FROM introductions WHERE state != 'ignored' \
                 UNION ALL SELECT id, 0, created_at FROM introductions_made ORDER BY 3 DESC",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for (id, received) in ids {
            let Ok(id) = <[u8; 16]>::try_from(id.as_slice()) else {
                continue;
            };
            let view = if received {
                received_view(&self.db, &id, self.now())?
            } else {
                made_view(&self.db, &id)?
            };
            out.extend(view);
        }
        Ok(out)
    }

    /// Accepts (showing `name`, or the profile's name) or declines an
    /// introduction offered to this user.
    pub async fn answer_introduction(
        &mut self,
        prefix: &str,
        accept: bool,
        name: Option<&str>,
    ) -> Result<IntroductionView> {
        name.map(crate::engine::check_name).transpose()?;
        let id = self.find_introduction(prefix)?;
        let (via, state, expires_at): (String, String, i64) = self.db.query_row(
            "SELECT via, state, expires_at FROM introductions WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let now = self.now();
        if state != "pending" || u64::try_from(expires_at).unwrap_or(0) < now {
            return Err(CoreError::IntroductionClosed);
        }
        let tx = self.db.transaction()?;
        if accept {
            let identity = IdentityKey::generate()?;
            let (kp, pending) = key_package(&identity)?;
            let my_name = match name {
                Some(n) => n.to_string(),
                None => store::profile(&tx)?.map(|p| p.name).unwrap_or_default(),
            };
            let tags = answer_tags(&tx, &id, &via)?;
            tx.execute(
                "UPDATE introductions SET state = 'accepted', my_name = ?2, identity = ?3, pending_kp = ?4 WHERE id = ?1",
                params![id, my_name, identity.to_bytes().as_slice(), pending.to_bytes().as_slice()],
            )?;
            step(
                &tx,
                &via,
                id,
                IntroStep::Answer {
                    key_package: kp,
                    tags,
                },
                now,
            )?;
        } else {
            tx.execute(
                "UPDATE introductions SET state = 'declined' WHERE id = ?1",
                [id],
            )?;
            decline(&tx, &via, id, now)?;
        }
        tx.commit()?;
        self.flush_outbox(Some(&via))
            .await
            .map_err(|e| CoreError::Queued(e.to_string()))?;
        received_view(&self.db, &id, self.now())?
            .ok_or_else(|| CoreError::NoSuchIntroduction(prefix.into()))
    }

    fn find_introduction(&self, prefix: &str) -> Result<[u8; 16]> {
        let prefix = prefix.to_ascii_lowercase();
        let mut stmt = self.db.prepare("SELECT id FROM introductions")?;
        let ids: Vec<Vec<u8>> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let matching: Vec<[u8; 16]> = ids
            .iter()
            .filter(|id| !prefix.is_empty() && to_hex(id).starts_with(&prefix))
            .filter_map(|id| <[u8; 16]>::try_from(id.as_slice()).ok())
            .collect();
        match matching.as_slice() {
            [one] => Ok(*one),
            [] => Err(CoreError::NoSuchIntroduction(prefix)),
            _ => Err(CoreError::Ambiguous(prefix, "several introductions".into())),
        }
    }

    /// Whether introductions arriving through `conv` are declined without
    /// being shown.
    pub fn ignore_introductions(&mut self, conv: &str, ignore: bool) -> Result<()> {
        let id = self.resolve(conv)?;
        self.db.execute(
            "UPDATE conversations SET ignore_introductions = ?2 WHERE id = ?1",
            params![id, ignore],
        )?;
        Ok(())
    }

    /// The creator's side, after a sync brought `Matched`: the new group,
    /// a channel on this user's relay, the Welcome and sealed channel back
    /// through the introducer.
    pub(crate) async fn create_introduced(&mut self) -> Result<Vec<String>> {
        type Row = (Vec<u8>, String, String, Option<String>, Vec<u8>, Vec<u8>);
        let rows: Vec<Row> = {
            let mut stmt = self.db.prepare(
                "SELECT id, via, peer_name, my_name, identity, peer_kp FROM introductions \
                 WHERE state = 'matched' AND creates = 1 AND identity IS NOT NULL AND peer_kp IS NOT NULL",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut created = Vec::new();
        for (id, via, peer_name, my_name, identity, peer_kp) in rows {
            let Ok(id) = <[u8; 16]>::try_from(id.as_slice()) else {
                continue;
            };
            let relay_url = match self.profile()?.relay_url {
                Some(url) => url,
                // Without a relay of one's own: the relay of the
                // conversation with the introducer.
                None => store::channels(&self.db, Some(&via))?
                    .into_iter()
                    .find(|c| c.role == ChannelRole::Conv)
                    .map(|c| c.relay_url)
                    .ok_or(CoreError::NoRelay)?,
            };
            let shared = self.create_shared_channel(&relay_url).await?;
            let identity = IdentityKey::from_bytes(&Zeroizing::new(identity))?;
            let (mut session, welcome) = Session::create(&identity, &[&peer_kp])?;
            let key = session.export(CHANNEL_LABEL)?;
            let sealed_channel = SealKey::from_bytes(*key).seal(
                CHANNEL_LABEL.as_bytes(),
                &Zeroizing::new(shared.grant.to_bytes()),
            )?;
            let my_name = my_name.unwrap_or(self.profile()?.name);
            let profile = PairFrame::Profile {
                display_name: my_name.clone(),
            };
            let ct = session.encrypt(&Zeroizing::new(profile.to_bytes()))?;
            let snapshot = session.snapshot()?;
            let conv = conversation_id(&shared.grant.write_id);
            let introducer = shown_name(&self.db, &via)?;
            let now = ms(self.now());
            let at = self.now();
            let tx = self.db.transaction()?;
            insert_active_pair(
                &tx,
                &NewPair {
                    id: &conv,
                    contact_name: &peer_name,
                    my_name: &my_name,
                    identity: &identity,
                    snapshot: &snapshot,
                    now,
                    introduced_by: Some(&introducer),
                },
            )?;
            insert_channel(
                &tx,
                &conv,
                &shared.grant,
                &shared.owner.to_bytes(),
                true,
                true,
                at,
            )?;
            queue(&tx, &conv, &envelope_payload(&Envelope::Mls(ct))?, at)?;
            step(
                &tx,
                &via,
                id,
                IntroStep::Welcome {
                    welcome,
                    sealed_channel,
                },
                at,
            )?;
            tx.execute(
                "UPDATE introductions SET state = 'connected', conversation = ?2, identity = NULL, peer_kp = NULL \
                 WHERE id = ?1",
                params![id, conv],
            )?;
            tx.commit()?;
            created.push(conv);
        }
        Ok(created)
    }
}
