//! Recognition tags: how a client tells that someone who appears under a
//! fresh key (the other side of an introduction, a new group member) is a
//! contact it already has, without anyone else learning it
//! (introduction-v1.md §5, group-v1.md §7.1).
//!
//! Both members of a 1:1 conversation derive the same recognition secret
//! from it (an MLS exporter secret). A tag is an HMAC of that secret over a
//! context that names the occasion (an introduction's id, a group member's
//! identity key); only the two members of that conversation can compute
//! it. Tags are published padded with random ones to a multiple of 16 and
//! sorted, so that their number says little.

use hmac::{Hmac, Mac};
use kith_crypto::mls::IdentityKey;
use rusqlite::Connection;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{CoreError, Result};
use crate::ids::random;
use crate::store::open_session;

/// The exporter label of a conversation's recognition secret.
const RECOGNITION_LABEL: &str = "kith recognition v1";
/// Published tag lists are padded to a multiple of this.
pub(crate) const TAG_BUCKET: usize = 16;

/// A 1:1 conversation's recognition secret, with whether its contact is
/// blocked.
pub(crate) struct PairSecret {
    pub(crate) conversation: String,
    pub(crate) secret: Zeroizing<[u8; 32]>,
    pub(crate) blocked: bool,
}

/// HMAC-SHA256(secret, context || subject).
pub(crate) fn tag(secret: &[u8; 32], context: &[u8], subject: &[u8]) -> Result<[u8; 32]> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .map_err(|_| CoreError::Corrupt("recognition secret".into()))?;
    mac.update(context);
    mac.update(subject);
    Ok(mac.finalize().into_bytes().into())
}

/// The recognition secret of every connected 1:1 conversation but
/// `except` (`blocked_only`: of blocked contacts only).
pub(crate) fn pair_secrets(
    db: &Connection,
    except: Option<&str>,
    blocked_only: bool,
) -> Result<Vec<PairSecret>> {
    let mut stmt = db.prepare(
        "SELECT id, identity, mls_state, blocked FROM conversations \
         WHERE kind = 'pair' AND mls_state IS NOT NULL AND (?1 IS NULL OR id != ?1) \
           AND (?2 = 0 OR blocked = 1)",
    )?;
    type Row = (String, Vec<u8>, Option<Vec<u8>>, bool);
    let rows: Vec<Row> = stmt
        .query_map(rusqlite::params![except, blocked_only], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut secrets = Vec::with_capacity(rows.len());
    for (conversation, identity, state, blocked) in rows {
        let session = open_session(&IdentityKey::from_bytes(&Zeroizing::new(identity))?, state)?;
        secrets.push(PairSecret {
            conversation,
            secret: session.export(RECOGNITION_LABEL)?,
            blocked,
        });
    }
    Ok(secrets)
}

/// Real tags padded with random ones to a multiple of [`TAG_BUCKET`] (at
/// least one bucket), sorted so the padding cannot be told apart.
pub(crate) fn padded(mut tags: Vec<[u8; 32]>) -> Result<Vec<[u8; 32]>> {
    while tags.is_empty() || !tags.len().is_multiple_of(TAG_BUCKET) {
        tags.push(random()?);
    }
    tags.sort_unstable();
    Ok(tags)
}

/// The context of a group member's tags (group-v1.md §7.1).
const MEMBER_TAG_CONTEXT: &[u8] = b"kith member tag v1";

/// The tags this user publishes as the group member `member_key`.
pub(crate) fn own_member_tags(db: &Connection, member_key: &[u8]) -> Result<Vec<[u8; 32]>> {
    let tags = pair_secrets(db, None, false)?
        .iter()
        .map(|p| tag(&p.secret, MEMBER_TAG_CONTEXT, member_key))
        .collect::<Result<Vec<_>>>()?;
    padded(tags)
}

/// The blocked contact (its 1:1 conversation) that the group member
/// `member_key` with `tags` is, if any.
pub(crate) fn blocked_member(
    db: &Connection,
    member_key: &[u8],
    tags: &[[u8; 32]],
) -> Result<Option<String>> {
    if tags.is_empty() {
        return Ok(None);
    }
    for pair in pair_secrets(db, None, true)? {
        if tags.contains(&tag(&pair.secret, MEMBER_TAG_CONTEXT, member_key)?) {
            return Ok(Some(pair.conversation));
        }
    }
    Ok(None)
}
