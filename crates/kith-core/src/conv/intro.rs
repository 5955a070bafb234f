//! IntroductionV1 (docs/spec/introduction-v1.md): introduction steps
//! handed off by the 1:1 conversations they travel in.

use crate::config::millis;
use crate::error::CoreError;

use crate::error::{OpenError, Result};
use std::time::Duration;

use kith_crypto::mls::{IdentityKey, PendingKeyPackage, Session};
use kith_crypto::seal::SealKey;
use kith_wire::Codec;
use kith_wire::conv::{ChannelGrant, Envelope, IntroStep, Introduction, PairFrame};
use kith_wire::relay::to_hex;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use zeroize::Zeroizing;

use super::{ConversationType, Effects, Moment};
use crate::ids::conversation_id;
use crate::store::{
    IntroAnswer, IntroMade, IntroReceived, NewPair, PairChannel, contact_name, envelope_payload,
    ms, queue_frame, record_integrity_event, start_pair,
};
use crate::views::{IntroductionView, SyncReport};
use crate::{recognition, store};

/// How long an introduction can be answered.
pub const INTRODUCTION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The exporter label and seal context of the new conversation's channel.
pub(crate) const CHANNEL_LABEL: &str = "kith introduction channel v1";

const TAG_CONTEXT: &[u8] = b"kith introduction tag v1";

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
pub(crate) fn answer_tags(
    db: &Connection,
    intro_id: &[u8; 16],
    via: &str,
) -> Result<Vec<[u8; 32]>> {
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

pub(crate) fn step(
    tx: &Transaction<'_>,
    conv: &str,
    intro_id: [u8; 16],
    step: IntroStep,
    now: u64,
) -> Result<()> {
    queue_frame(
        tx,
        conv,
        &PairFrame::Introduction(Introduction { intro_id, step }),
        now,
    )
}

/// The name a contact shows this user (not a local rename, which stays
/// private).
pub(crate) fn shown_name(db: &Connection, conv: &str) -> Result<String> {
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
            let state: Option<IntroReceived> = tx
                .query_row(
                    "SELECT state FROM introductions WHERE id = ?1 AND via = ?2",
                    params![id, via],
                    |r| r.get(0),
                )
                .optional()?;
            if state != Some(IntroReceived::Accepted) {
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

pub(crate) fn ttl_ms() -> u64 {
    millis(INTRODUCTION_TTL)
}

pub(crate) fn decline(tx: &Transaction<'_>, via: &str, id: [u8; 16], now: u64) -> Result<()> {
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
    type Row = (String, String, IntroAnswer, IntroAnswer, IntroMade);
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
        if state == IntroMade::Closed {
            return Ok(());
        }
        let sql = if side_a {
            "UPDATE introductions_made SET a_state = 'declined', state = 'closed' WHERE id = ?1"
        } else {
            "UPDATE introductions_made SET b_state = 'declined', state = 'closed' WHERE id = ?1"
        };
        tx.execute(sql, [id])?;
        if other_state != IntroAnswer::Declined {
            step(tx, other, id, IntroStep::Closed, now)?;
        }
    } else if state == IntroMade::Open {
        let sql = if side_a {
            "UPDATE introductions_made SET a_state = 'accepted', a_kp = ?2, a_tags = ?3 WHERE id = ?1"
        } else {
            "UPDATE introductions_made SET b_state = 'accepted', b_kp = ?2, b_tags = ?3 WHERE id = ?1"
        };
        tx.execute(sql, params![id, key_package, encode_tags(tags)])?;
        type Answers = (
            IntroAnswer,
            IntroAnswer,
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
        if let (true, Some(a_kp), Some(b_kp)) = (
            a_state == IntroAnswer::Accepted && b_state == IntroAnswer::Accepted,
            a_kp,
            b_kp,
        ) {
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
    start_pair(
        tx,
        &NewPair {
            id: &conv,
            contact_name: &peer_name,
            my_name: &my_name,
            identity: &identity,
            snapshot: &snapshot,
            introduced_by: Some(&introducer),
            persona: None,
            channels: &[PairChannel {
                grant: &grant,
                key: grant.key,
                owner: false,
                preferred: true,
            }],
            queued: &[envelope_payload(&Envelope::Mls(ct)).map_err(e)?],
            at: now,
        },
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

pub(crate) fn received_view(
    db: &Connection,
    id: &[u8; 16],
    now: u64,
) -> Result<Option<IntroductionView>> {
    Ok(db
        .query_row(
            "SELECT i.via, i.peer_name, i.note, i.state, i.conversation, i.expires_at FROM introductions i WHERE i.id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, IntroReceived>(3)?,
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
                state: if expired
                    && matches!(state, IntroReceived::Pending | IntroReceived::Accepted)
                {
                    "expired".into()
                } else {
                    state.to_string()
                },
                conversation,
            }
        }))
}

pub(crate) fn made_view(db: &Connection, id: &[u8; 16]) -> Result<Option<IntroductionView>> {
    type Row = (String, String, String, IntroAnswer, IntroAnswer, IntroMade);
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

/// The IntroductionV1 logic (introduction-v1.md): steps arrive already
/// opened, inside the 1:1 conversations they travel in.
pub(crate) struct IntroductionV1 {
    moment: Moment,
}

/// An introduction step and the 1:1 conversation it came through.
pub(crate) struct Step {
    pub(crate) via: String,
    pub(crate) intro: Introduction,
}

impl IntroductionV1 {
    pub(crate) fn new(moment: Moment) -> Self {
        Self { moment }
    }
}

impl ConversationType for IntroductionV1 {
    type Input<'a> = Step;
    type Opened<'a> = Step;

    /// A step was authenticated by the 1:1 conversation it came through;
    /// whether it fits the introduction's state is decided when applied
    /// (§3, §7: a step that does not is recorded as an integrity event).
    fn open<'a>(
        &mut self,
        _: &Transaction<'_>,
        step: Self::Input<'a>,
    ) -> std::result::Result<Self::Opened<'a>, OpenError> {
        Ok(step)
    }

    fn apply(&mut self, tx: &Transaction<'_>, step: Step, fx: &mut Effects) -> Result<()> {
        receive(tx, &step.via, step.intro, self.moment.now, &mut fx.report)
    }
}
