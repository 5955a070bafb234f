//! Personas and links between relationships (docs/spec/pair-v1.md §12).
//!
//! By default every relationship has an identity key of its own, so that
//! nothing links two of them. A persona is one key this user chooses to
//! share among the relationships of one context ("School"): those started
//! from it (invitations, accepted links, addresses, groups) use its key,
//! so people in that context know one person. `link` reveals, by the
//! user's explicit choice, that two relationships are one person's.

use kith_crypto::mls::IdentityKey;
use kith_wire::Codec;
use kith_wire::conv::{LinkProof, PairFrame};
use kith_wire::relay::to_hex;
use rusqlite::{Connection, OptionalExtension, params};
use zeroize::Zeroizing;

use crate::error::{CoreError, Result, check_name};
use crate::runtime::Engine;
use crate::store::{ConversationKind, ConversationState, load_session, ms, queue_frame};
use crate::views::{LinkView, PersonaView};

/// The identity a new relationship starts with: a persona's (copied into
/// the conversation) or a fresh one.
pub(crate) struct NewIdentity {
    pub(crate) key: IdentityKey,
    pub(crate) persona: Option<i64>,
    /// The persona's display name, the default name shown.
    pub(crate) display_name: Option<String>,
}

impl NewIdentity {
    /// `name` if given, else the persona's display name, else `profile`.
    pub(crate) fn shown(&self, name: Option<&str>, profile: &str) -> String {
        name.or(self.display_name.as_deref())
            .unwrap_or(profile)
            .to_string()
    }
}

/// The identity for a relationship started from `persona` (by name), or a
/// fresh one.
pub(crate) fn identity_for(db: &Connection, persona: Option<&str>) -> Result<NewIdentity> {
    let Some(name) = persona else {
        return Ok(NewIdentity {
            key: IdentityKey::generate()?,
            persona: None,
            display_name: None,
        });
    };
    let row: Option<(i64, String, Vec<u8>)> = db
        .query_row(
            "SELECT id, display_name, identity FROM personas WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let (id, display_name, key) = row.ok_or_else(|| CoreError::NoSuchPersona(name.to_string()))?;
    Ok(NewIdentity {
        key: IdentityKey::from_bytes(&Zeroizing::new(key))?,
        persona: Some(id),
        display_name: Some(display_name),
    })
}

/// The other member's identity key in a 1:1 conversation, once connected.
fn peer_identity(db: &Connection, conv: &str) -> Result<Option<Vec<u8>>> {
    let mine = own_identity(db, conv)?;
    let session = match load_session(db, conv) {
        Ok(s) => s,
        Err(CoreError::NotYetConnected) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(session
        .members()
        .into_iter()
        .map(|m| m.identity_key)
        .find(|k| *k != mine.public()))
}

pub(crate) fn own_identity(db: &Connection, conv: &str) -> Result<IdentityKey> {
    let bytes: Vec<u8> = db.query_row(
        "SELECT identity FROM conversations WHERE id = ?1",
        [conv],
        |r| r.get(0),
    )?;
    Ok(IdentityKey::from_bytes(&Zeroizing::new(bytes))?)
}

impl Engine {
    /// Makes a persona: an identity key to share among the relationships
    /// of one context, showing `display_name` (else the profile's name).
    pub fn persona_create(
        &mut self,
        name: &str,
        display_name: Option<&str>,
    ) -> Result<PersonaView> {
        check_name(name)?;
        display_name.map(check_name).transpose()?;
        let profile = self.profile()?;
        let shown = display_name.unwrap_or(&profile.name);
        let taken: bool = self.db.query_row(
            "SELECT EXISTS (SELECT 1 FROM personas WHERE name = ?1)",
            [name],
            |r| r.get(0),
        )?;
        if taken {
            return Err(CoreError::PersonaExists(name.to_string()));
        }
        let key = IdentityKey::generate()?;
        self.db.execute(
            "INSERT INTO personas (name, display_name, identity, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![name, shown, key.to_bytes().as_slice(), ms(self.now())],
        )?;
        self.personas()?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| CoreError::Corrupt("a persona just made".into()))
    }

    /// This user's personas.
    pub fn personas(&self) -> Result<Vec<PersonaView>> {
        let rows: Vec<(String, String, Vec<u8>, i64)> = self
            .db
            .prepare(
                "SELECT p.name, p.display_name, p.identity, \
                   (SELECT COUNT(*) FROM conversations c WHERE c.persona_id = p.id) \
                 FROM personas p ORDER BY p.name",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        rows.into_iter()
            .map(|(name, display_name, key, used)| {
                let key = IdentityKey::from_bytes(&Zeroizing::new(key))?;
                Ok(PersonaView {
                    name,
                    display_name,
                    identity: to_hex(key.public()),
                    conversations: u64::try_from(used).unwrap_or(0),
                })
            })
            .collect()
    }

    /// Forgets a persona: no new relationship can start from it; those
    /// that did keep its key.
    pub fn persona_delete(&mut self, name: &str) -> Result<()> {
        // A directory's member key: forgetting it would strand the
        // membership (no way left to search, unlist or leave).
        let directory: Option<String> = self
            .db
            .query_row(
                "SELECT d.name FROM directories d JOIN personas p ON p.id = d.persona_id \
                 WHERE p.name = ?1 ORDER BY d.name LIMIT 1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(directory) = directory {
            return Err(CoreError::PersonaInUse(name.to_string(), directory));
        }
        let n = self
            .db
            .execute("DELETE FROM personas WHERE name = ?1", [name])?;
        if n == 0 {
            return Err(CoreError::NoSuchPersona(name.to_string()));
        }
        Ok(())
    }

    /// Reveals to the contact of `conv` that this user is also the one in
    /// `with` (pair-v1.md §12): a proof signed by both identity keys.
    pub async fn link(&mut self, conv: &str, with: &str) -> Result<Vec<String>> {
        let (id, other) = (self.resolve(conv)?, self.resolve(with)?);
        for c in [&id, &other] {
            let (kind, state): (ConversationKind, ConversationState) = self.db.query_row(
                "SELECT kind, state FROM conversations WHERE id = ?1",
                [c],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if kind != ConversationKind::Pair || state != ConversationState::Active {
                return Err(CoreError::NotAContact(c.clone()));
            }
        }
        let (a, b) = (
            own_identity(&self.db, &id)?,
            own_identity(&self.db, &other)?,
        );
        if id == other || a.public() == b.public() {
            return Err(CoreError::AlreadyLinked);
        }
        let key = |k: &IdentityKey| -> Result<[u8; 32]> {
            k.public()
                .try_into()
                .map_err(|_| CoreError::Corrupt("an identity key that is not Ed25519".into()))
        };
        let (key_a, key_b) = (key(&a)?, key(&b)?);
        let made_at_ms = self.now();
        let statement = LinkProof::statement(&key_a, &key_b, made_at_ms);
        let signature = |k: &IdentityKey| -> Result<[u8; 64]> {
            k.sign(&statement)?
                .try_into()
                .map_err(|_| CoreError::Corrupt("a signature that is not Ed25519".into()))
        };
        let proof = LinkProof {
            key_a,
            key_b,
            made_at_ms,
            signature_a: signature(&a)?,
            signature_b: signature(&b)?,
        };
        let now = self.now();
        let tx = self.db.transaction()?;
        queue_frame(&tx, &id, &PairFrame::Link(proof.clone()), now)?;
        tx.execute(
            "INSERT OR REPLACE INTO links (conversation_id, other_identity, outgoing, proof, at) \
             VALUES (?1, ?2, 1, ?3, ?4)",
            params![id, key_b.as_slice(), proof.to_bytes(), ms(now)],
        )?;
        tx.commit()?;
        let mut warnings = Vec::new();
        if let Err(e) = self.flush_outbox(Some(&id)).await {
            warnings.push(format!("queued; sent on the next sync: {e}"));
        }
        Ok(warnings)
    }

    /// What was revealed in `conv`, either way, with the other
    /// relationship where this user knows it.
    pub(crate) fn links(&self, conv: &str) -> Result<Vec<LinkView>> {
        let rows: Vec<(Vec<u8>, bool, i64)> = self
            .db
            .prepare(
                "SELECT other_identity, outgoing, at FROM links WHERE conversation_id = ?1 ORDER BY at",
            )?
            .query_map([conv], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut views = Vec::with_capacity(rows.len());
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let pairs: Vec<String> = self
            .db
            .prepare("SELECT id FROM conversations WHERE kind = 'pair' AND state = 'active'")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for (other, outgoing, at) in rows {
            // Mine: the conversation whose key it is. Theirs: the one where
            // the contact has that key, if this user has one.
            let mut known = None;
            for c in pairs.iter().filter(|c| *c != conv) {
                let key = if outgoing {
                    Some(own_identity(&self.db, c)?.public().to_vec())
                } else {
                    peer_identity(&self.db, c)?
                };
                if key.as_deref() == Some(other.as_slice()) {
                    known = Some(self.view(c)?);
                    break;
                }
            }
            views.push(LinkView {
                outgoing,
                identity: to_hex(&other),
                conversation: known.as_ref().map(|v| v.id.clone()),
                name: known.map(|v| v.name),
                at: u64::try_from(at).unwrap_or(0),
            });
        }
        Ok(views)
    }
}
