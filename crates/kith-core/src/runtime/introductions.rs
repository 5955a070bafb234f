//! Introductions (docs/spec/introduction-v1.md): introducing, answering,
//! and creating the introduced conversation's channel.

use kith_crypto::mls::{IdentityKey, Session, key_package};
use kith_crypto::seal::SealKey;
use kith_wire::Codec;
use kith_wire::conv::{Envelope, IntroStep, PairFrame};
use kith_wire::relay::to_hex;
use rusqlite::params;
use zeroize::Zeroizing;

use crate::conv::intro::{
    CHANNEL_LABEL, answer_tags, decline, made_view, received_view, shown_name, step, ttl_ms,
};
use crate::error::{CoreError, Result, check_name};
use crate::ids::{conversation_id, random};
use crate::runtime::Engine;
use crate::store;
use crate::store::{
    ChannelRole, ConversationKind, ConversationState, IntroReceived, NewPair, PairChannel,
    envelope_payload, ms, start_pair,
};
use crate::views::IntroductionView;

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
        name.map(check_name).transpose()?;
        let id = self.find_introduction(prefix)?;
        let (via, state, expires_at): (String, IntroReceived, i64) = self.db.query_row(
            "SELECT via, state, expires_at FROM introductions WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let now = self.now();
        if state != IntroReceived::Pending || u64::try_from(expires_at).unwrap_or(0) < now {
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
            let shared = self.create_shared_channel(&relay_url, None).await?;
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
            let at = self.now();
            let tx = self.db.transaction()?;
            start_pair(
                &tx,
                &NewPair {
                    id: &conv,
                    contact_name: &peer_name,
                    my_name: &my_name,
                    identity: &identity,
                    snapshot: &snapshot,
                    introduced_by: Some(&introducer),
                    persona: None,
                    channels: &[PairChannel {
                        grant: &shared.grant,
                        key: shared.owner.to_bytes(),
                        owner: true,
                        preferred: true,
                    }],
                    queued: &[envelope_payload(&Envelope::Mls(ct))?],
                    at,
                },
            )?;
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
