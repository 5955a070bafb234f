//! PairV1 (docs/spec/pair-v1.md): an active 1:1 conversation on its
//! channels. Exactly two members for good (§7): every proposal and commit
//! is refused before anything processes it.

use kith_crypto::mls::{IdentityKey, Incoming, key_package};
use kith_wire::Codec;

use kith_crypto::mls::verify_signature;
use kith_wire::conv::{Envelope, LinkProof, PairFrame};
use kith_wire::dir::Attestation;
use rusqlite::{Transaction, params};

use super::{Arrived, ConversationType, Effects, Handoff, Moment, PageSession};
use crate::channels::receive_move;

use crate::error::{OpenError, Result, refused};
use crate::store::{
    ChannelRow, ConversationState, Received, check_content, ms, queue_frame, receive_message,
    record_integrity_event, store_capabilities,
};

/// The PairV1 logic for one page of one channel.
pub(crate) struct PairV1 {
    moment: Moment,
    session: PageSession,
}

/// A PairV1 message, opened.
pub(crate) struct OpenedPair<'a> {
    channel: &'a ChannelRow,
    seq: u64,
    frame: PairFrame,
    /// The contact's identity key, which MLS authenticated.
    author: Vec<u8>,
}

impl PairV1 {
    pub(crate) fn new(moment: Moment) -> Self {
        Self {
            moment,
            session: PageSession::default(),
        }
    }
}

impl ConversationType for PairV1 {
    type Input<'a> = Arrived<'a>;
    type Opened<'a> = OpenedPair<'a>;

    fn open<'a>(
        &mut self,
        tx: &Transaction<'_>,
        input: Self::Input<'a>,
    ) -> std::result::Result<Self::Opened<'a>, OpenError> {
        let Arrived {
            channel,
            seq,
            envelope,
            state,
        } = input;
        let message = match envelope {
            Envelope::Mls(message) if state == ConversationState::Active => message,
            Envelope::Welcome(_) => {
                return Err(refused("a second Welcome for a conversation already joined").into());
            }
            _ => return Err(refused("a group message in a 1:1 conversation").into()),
        };
        // A 1:1 conversation has exactly two members, for good (pair-v1.md
        // §7): a proposal or commit is refused before anything processes it.
        if !kith_crypto::mls::is_private_application(&message) {
            return Err(
                refused("a change of members in a 1:1 conversation (it has exactly two)").into(),
            );
        }
        let session = self.session.get(tx, &channel.conversation_id)?;
        let incoming = session.process(&message).map_err(refused);
        // A message that failed left the state as it was; one that opened
        // moved it on (kept for the page, written once).
        let (plaintext, author) = match incoming {
            Ok(Incoming::Application { plaintext, sender }) => {
                let author = session
                    .member(sender)
                    .map(|m| m.identity_key)
                    .unwrap_or_default();
                (plaintext, author)
            }
            Ok(_) => {
                self.session.moved();
                return Err(refused("an MLS message a 1:1 conversation does not use").into());
            }
            Err(e) => return Err(e.into()),
        };
        self.session.moved();
        let frame = match PairFrame::from_bytes(&plaintext).map_err(refused)? {
            PairFrame::MemberTags(_) => {
                return Err(refused("a group's frame in a 1:1 conversation").into());
            }
            frame => frame,
        };
        check_content(&frame).map_err(refused)?;
        if let PairFrame::Link(proof) = &frame {
            check_link(proof, &author).map_err(refused)?;
        }
        if let PairFrame::Attestation(a) = &frame {
            check_attestation(a, &author, self.moment.now).map_err(refused)?;
        }
        Ok(OpenedPair {
            channel,
            seq,
            frame,
            author,
        })
    }

    fn apply(
        &mut self,
        tx: &Transaction<'_>,
        opened: OpenedPair<'_>,
        fx: &mut Effects,
    ) -> Result<()> {
        let OpenedPair {
            channel,
            seq,
            frame,
            author,
        } = opened;
        let conv = channel.conversation_id.as_str();
        let Moment { now, drain, .. } = self.moment;
        if let Some(message) =
            Received::from_frame(&frame, None, &author, conv, (&self.moment.caps, now))
        {
            return receive_message(tx, conv, message, now, &mut fx.report);
        }
        // A control frame's handling may read the session's state.
        self.session.save(tx)?;
        match frame {
            PairFrame::Text { .. } | PairFrame::Content(_) | PairFrame::MemberTags(_) => {}
            PairFrame::Capabilities {
                media_types,
                features,
            } => store_capabilities(tx, conv, &author, &media_types, &features)?,
            PairFrame::Profile { display_name } => {
                tx.execute(
                    "UPDATE conversations SET contact_name = ?2 WHERE id = ?1",
                    params![conv, display_name],
                )?;
            }
            PairFrame::Channel(grant) => {
                tx.execute(
                    "INSERT OR IGNORE INTO channels (conversation_id, relay_url, relay_id, write_id, read_id, key, owner, preferred) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0)",
                    params![conv, grant.relay_url, grant.relay_id.0, grant.write_id.0, grant.read_id.0, grant.key],
                )?;
            }
            PairFrame::KeyPackage(kp) => {
                tx.execute(
                    "UPDATE conversations SET contact_kp = ?2 WHERE id = ?1",
                    params![conv, kp],
                )?;
            }
            PairFrame::Move(moved) => {
                if moved.key.is_some() {
                    receive_move(tx, conv, channel, seq, &moved, now, drain)?;
                } else {
                    record_integrity_event(
                        tx,
                        conv,
                        now,
                        "an address update without a key for you was ignored".into(),
                        &mut fx.report,
                    )?;
                }
            }
            PairFrame::Introduction(intro) => fx.handoffs.push(Handoff::Introduction {
                via: conv.to_string(),
                intro,
            }),
            PairFrame::GroupInvite(invite) => fx.handoffs.push(Handoff::GroupInvitation {
                via: conv.to_string(),
                invite: Box::new(invite),
            }),
            PairFrame::Attestation(a) => record_attestation(tx, conv, false, &a, now)?,
            PairFrame::Link(proof) => {
                tx.execute(
                    "INSERT OR REPLACE INTO links (conversation_id, other_identity, outgoing, proof, at) \
                     VALUES (?1, ?2, 0, ?3, ?4)",
                    params![conv, proof.key_b.as_slice(), proof.to_bytes(), ms(now)],
                )?;
            }
        }
        Ok(())
    }

    fn finish(&mut self, tx: &Transaction<'_>) -> Result<()> {
        self.session.save(tx)
    }

    /// Gives every contact without one a spare key package (a fresh
    /// identity), so that they can add this user to a group at once
    /// (group-v1.md §6.1).
    fn tick(&mut self, tx: &Transaction<'_>, _: &mut Effects) -> Result<()> {
        show_attestations(tx, self.moment.now)?;
        // A conversation started from a persona joins groups with its key
        // too; any other with a fresh one.
        let waiting: Vec<(String, Option<Vec<u8>>)> = tx
            .prepare(
                "SELECT id, CASE WHEN persona_id IS NULL THEN NULL ELSE identity END FROM conversations \
                 WHERE kind = 'pair' AND state = 'active' AND blocked = 0 AND spare_kp IS NULL",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, persona) in waiting {
            let identity = match persona {
                Some(key) => IdentityKey::from_bytes(&zeroize::Zeroizing::new(key))?,
                None => IdentityKey::generate()?,
            };
            let (kp, pending) = key_package(&identity)?;
            queue_frame(tx, &id, &PairFrame::KeyPackage(kp), self.moment.now)?;
            tx.execute(
                "UPDATE conversations SET spare_identity = ?2, spare_kp = ?3 WHERE id = ?1",
                params![
                    id,
                    identity.to_bytes().as_slice(),
                    pending.to_bytes().as_slice()
                ],
            )?;
        }
        Ok(())
    }
}

/// Shows, once, in every active 1:1 conversation of a persona, the
/// attestations of the directories it joined (directory-v1.md §4).
fn show_attestations(tx: &Transaction<'_>, now: u64) -> Result<()> {
    let due: Vec<(String, Vec<u8>)> = tx
        .prepare(
            "SELECT c.id, d.attestation FROM conversations c JOIN directories d ON d.persona_id = c.persona_id \
             WHERE c.kind = 'pair' AND c.state = 'active' AND c.blocked = 0 AND d.attestation IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM conversation_attestations x WHERE x.conversation_id = c.id \
                             AND x.outgoing = 1 AND x.root = d.root AND x.directory = d.name)",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (conv, bytes) in due {
        let a = Attestation::from_bytes(&bytes)?;
        queue_frame(tx, &conv, &PairFrame::Attestation(a.clone()), now)?;
        record_attestation(tx, &conv, true, &a, now)?;
    }
    Ok(())
}

/// Records `a` as shown in `conv`: by this user (`outgoing`) or to it.
pub(crate) fn record_attestation(
    tx: &Transaction<'_>,
    conv: &str,
    outgoing: bool,
    a: &Attestation,
    now: u64,
) -> Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO conversation_attestations (conversation_id, outgoing, root, directory, attestation, at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![conv, outgoing, a.root.as_slice(), a.directory, a.to_bytes(), ms(now)],
    )?;
    Ok(())
}

/// Refuses an attestation unless it names the key MLS authenticated as its
/// sender (so it cannot be passed on) and its signatures verify; an
/// expired one is kept, and shown as expired.
pub(crate) fn check_attestation(
    a: &Attestation,
    author: &[u8],
    now: u64,
) -> std::result::Result<(), String> {
    if a.member.as_slice() != author {
        return Err("an attestation about a key that is not the sender's here".into());
    }
    crate::attestation::check(a, None, now)
        .map(drop)
        .map_err(|e| format!("an attestation that does not verify: {e}"))
}

/// Checks a link proof that arrived in a 1:1 conversation from `author`
/// (pair-v1.md §12): it names the author's key in this conversation, and
/// both keys signed it.
pub(crate) fn check_link(proof: &LinkProof, author: &[u8]) -> std::result::Result<(), String> {
    if proof.key_a.as_slice() != author {
        return Err("a link proof for a key that is not the sender's here".into());
    }
    if proof.key_a == proof.key_b {
        return Err("a link proof of a key to itself".into());
    }
    let statement = LinkProof::statement(&proof.key_a, &proof.key_b, proof.made_at_ms);
    verify_signature(&proof.key_a, &statement, &proof.signature_a)
        .and_then(|()| verify_signature(&proof.key_b, &statement, &proof.signature_b))
        .map_err(|_| "a link proof whose signatures do not verify".to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use kith_crypto::mls::IdentityKey;

    fn proof(a: &IdentityKey, b: &IdentityKey, signer_b: &IdentityKey) -> LinkProof {
        let key = |k: &IdentityKey| -> [u8; 32] { k.public().try_into().unwrap() };
        let statement = LinkProof::statement(&key(a), &key(b), 7);
        LinkProof {
            key_a: key(a),
            key_b: key(b),
            made_at_ms: 7,
            signature_a: a.sign(&statement).unwrap().try_into().unwrap(),
            signature_b: signer_b.sign(&statement).unwrap().try_into().unwrap(),
        }
    }

    /// An attestation by a directory whose root and signing keys are `root`
    /// and `signing`, about `member`, valid from 2,000 to 5,000.
    fn attestation(root: &IdentityKey, signing: &IdentityKey, member: &IdentityKey) -> Attestation {
        use kith_wire::dir::DirectoryKey;
        let key = |k: &IdentityKey| -> [u8; 32] { k.public().try_into().unwrap() };
        let (from, until) = (1_000, 10_000);
        let root_signature = root
            .sign(&DirectoryKey::signed("school", &key(signing), from, until))
            .unwrap()
            .try_into()
            .unwrap();
        let mut a = Attestation {
            directory: "school".into(),
            root: key(root),
            signing: DirectoryKey {
                key: key(signing),
                valid_from_ms: from,
                valid_until_ms: until,
                root_signature,
            },
            member: key(member),
            statement: "current student".into(),
            valid_from_ms: 2_000,
            valid_until_ms: 5_000,
            signature: [0; 64],
        };
        a.signature = signing.sign(&a.signed()).unwrap().try_into().unwrap();
        a
    }

    #[test]
    fn an_attestation_must_name_its_sender_and_verify() {
        let [root, signing, emery, alex] = [(); 4].map(|()| IdentityKey::generate().unwrap());
        let good = attestation(&root, &signing, &emery);
        assert!(check_attestation(&good, emery.public(), 3_000).is_ok());
        // Kept once expired: the receiver shows it as such.
        assert!(check_attestation(&good, emery.public(), 9_000).is_ok());
        // Passed on by someone else: refused.
        assert!(check_attestation(&good, alex.public(), 3_000).is_err());
        // A statement changed after signing: refused.
        let mut changed = good.clone();
        changed.statement = "teacher".into();
        assert!(check_attestation(&changed, emery.public(), 3_000).is_err());
        // A signing key the root did not sign: refused.
        let forged = attestation(&alex, &signing, &emery);
        let mut mixed = good;
        mixed.signing = forged.signing;
        assert!(check_attestation(&mixed, emery.public(), 3_000).is_err());
    }

    #[test]
    fn a_link_needs_the_senders_key_and_both_signatures() {
        let (a, b, c) = (
            IdentityKey::generate().unwrap(),
            IdentityKey::generate().unwrap(),
            IdentityKey::generate().unwrap(),
        );
        let good = proof(&a, &b, &b);
        assert!(check_link(&good, a.public()).is_ok());
        // Sent by someone else than key_a: refused.
        assert!(check_link(&good, c.public()).is_err());
        // Claiming a key one does not hold: its signature is missing.
        assert!(check_link(&proof(&a, &b, &c), a.public()).is_err());
        // A changed date breaks both signatures.
        let mut moved = good.clone();
        moved.made_at_ms = 8;
        assert!(check_link(&moved, a.public()).is_err());
        // A key linked to itself says nothing.
        assert!(check_link(&proof(&a, &a, &a), a.public()).is_err());
    }
}
