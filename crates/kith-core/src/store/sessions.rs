use crate::error::CoreError;
use crate::error::Result;
use crate::store::envelope_payload;
use crate::store::queue;
use kith_crypto::mls::GroupSnapshot;
use kith_crypto::mls::IdentityKey;
use kith_crypto::mls::Session;
use kith_wire::Codec;
use kith_wire::conv::Envelope;
use kith_wire::conv::PairFrame;
use rusqlite::Connection;
use rusqlite::Transaction;
use rusqlite::params;
use zeroize::Zeroizing;

/// A frame encrypted in a conversation.
pub(crate) struct Sealed {
    /// The padded envelope, as the relay stores it.
    pub(crate) payload: Vec<u8>,
    /// The MLS epoch it was encrypted in.
    pub(crate) epoch: u64,
}

/// Encrypts `frame` in `conv` inside `tx`: the MLS state is loaded,
/// advanced and stored in the same transaction as whatever the caller
/// writes with the payload, so no other write can come between.
pub(crate) fn encrypt_in(tx: &Transaction<'_>, conv: &str, frame: &PairFrame) -> Result<Sealed> {
    let mut session = load_session(tx, conv)?;
    let ct = session.encrypt(&Zeroizing::new(frame.to_bytes()))?;
    tx.execute(
        "UPDATE conversations SET mls_state = ?2 WHERE id = ?1",
        params![conv, session.snapshot()?.to_bytes().as_slice()],
    )?;
    Ok(Sealed {
        payload: envelope_payload(&Envelope::Mls(ct))?,
        epoch: session.epoch(),
    })
}

/// Encrypts a frame in a conversation and queues it, in `tx`.
pub(crate) fn queue_frame(
    tx: &Transaction<'_>,
    conv: &str,
    frame: &PairFrame,
    now: u64,
) -> Result<()> {
    let sealed = encrypt_in(tx, conv, frame)?;
    queue(tx, conv, &sealed.payload, now)
}

/// A conversation's MLS session as stored (in `db`, a transaction's view
/// when it is one).
pub(crate) fn load_session(db: &Connection, conv: &str) -> Result<Session> {
    let (identity, state): (Vec<u8>, Option<Vec<u8>>) = db.query_row(
        "SELECT identity, mls_state FROM conversations WHERE id = ?1",
        [conv],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    open_session(&IdentityKey::from_bytes(&Zeroizing::new(identity))?, state)
}

/// A session read outside the transaction that will write it, with the
/// version of the state it was read from.
pub(crate) struct Versioned {
    pub(crate) session: Session,
    version: i64,
}

/// Reads `conv`'s session to be written later with [`store_versioned`].
pub(crate) fn load_versioned(db: &Connection, conv: &str) -> Result<Versioned> {
    let version: i64 = db.query_row(
        "SELECT mls_version FROM conversations WHERE id = ?1",
        [conv],
        |r| r.get(0),
    )?;
    Ok(Versioned {
        session: load_session(db, conv)?,
        version,
    })
}

/// Writes a session read with [`load_versioned`], in `tx`, only if no other
/// write came between (migration 0005); otherwise a local failure, and the
/// caller's transaction commits nothing.
pub(crate) fn store_versioned(
    tx: &Transaction<'_>,
    conv: &str,
    read: &mut Versioned,
) -> Result<()> {
    let written = tx.execute(
        "UPDATE conversations SET mls_state = ?2 WHERE id = ?1 AND mls_version = ?3",
        params![
            conv,
            read.session.snapshot()?.to_bytes().as_slice(),
            read.version
        ],
    )?;
    if written == 0 {
        return Err(CoreError::StateMoved);
    }
    Ok(())
}

/// The conversation's MLS session from its stored identity and state.
pub(crate) fn open_session(identity: &IdentityKey, state: Option<Vec<u8>>) -> Result<Session> {
    let state = Zeroizing::new(state.ok_or(CoreError::NotYetConnected)?);
    Ok(Session::load(identity, GroupSnapshot::from_bytes(&state)?)?)
}
