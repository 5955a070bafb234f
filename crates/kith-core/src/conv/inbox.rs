//! InboxV1 (docs/spec/inbox-v1.md): an invitation waiting for its Welcome.
//! The one message it takes makes the 1:1 conversation active (PairV1).

use std::time::Duration;

use kith_crypto::mls::{IdentityKey, PendingKeyPackage, Session};
use kith_wire::conv::Envelope;

use rusqlite::{Transaction, params};
use zeroize::Zeroizing;

use super::{Arrived, ConversationType, Effects, Moment};
use crate::error::{CoreError, OpenError, Result, refused};
use crate::store::{ConversationState, ms};

/// The context string sealed invitations are bound to (inbox-v1.md §2).
pub const INVITATION_CONTEXT: &[u8] = b"kith invitation v1";

/// How long an invitation can be accepted.
pub const INVITATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The InboxV1 logic for one page of one channel.
pub(crate) struct InboxV1 {
    moment: Moment,
}

/// A Welcome that opened: the new session's state.
pub(crate) struct Joined {
    conversation: String,
    snapshot: Zeroizing<Vec<u8>>,
}

impl InboxV1 {
    pub(crate) fn new(moment: Moment) -> Self {
        Self { moment }
    }
}

impl ConversationType for InboxV1 {
    type Input<'a> = Arrived<'a>;
    type Opened<'a> = Joined;

    fn open<'a>(
        &mut self,
        tx: &Transaction<'_>,
        input: Self::Input<'a>,
    ) -> std::result::Result<Self::Opened<'a>, OpenError> {
        let welcome = match input.envelope {
            Envelope::Welcome(welcome) if input.state == ConversationState::Invited => welcome,
            Envelope::Mls(_) => return Err(refused("an MLS message before the Welcome").into()),
            _ => return Err(refused("a message an invitation does not take").into()),
        };
        let conv = input.channel.conversation_id.as_str();
        let (pending, identity): (Option<Vec<u8>>, Vec<u8>) = tx.query_row(
            "SELECT pending_kp, identity FROM conversations WHERE id = ?1",
            [conv],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let identity =
            IdentityKey::from_bytes(&Zeroizing::new(identity)).map_err(CoreError::from)?;
        let pending = pending
            .ok_or_else(|| CoreError::Corrupt("an invitation without its key package".into()))?;
        let pending =
            PendingKeyPackage::from_bytes(&Zeroizing::new(pending)).map_err(CoreError::from)?;
        let mut session = Session::join(&identity, &pending, &welcome).map_err(refused)?;
        if session.members().len() != 2 {
            return Err(refused("a 1:1 Welcome must make a group of two").into());
        }
        Ok(Joined {
            conversation: conv.to_string(),
            snapshot: session.snapshot().map_err(CoreError::from)?.to_bytes(),
        })
    }

    fn apply(&mut self, tx: &Transaction<'_>, joined: Joined, fx: &mut Effects) -> Result<()> {
        tx.execute(
            "UPDATE conversations SET state = 'active', mls_state = ?2, pending_kp = NULL, expires_at = NULL, \
             last_activity = ?3 WHERE id = ?1",
            params![joined.conversation, joined.snapshot.as_slice(), ms(self.moment.now)],
        )?;
        fx.joined.push(joined.conversation);
        Ok(())
    }
}
