//! AddressV1 (docs/spec/address-v1.md): a contact address of this user's.
//! What arrives on its channel is a contact request sealed to the
//! address's key; an opened one is kept until the user accepts it (then it
//! is an InboxV1 invitation this user accepts) or declines it.

use kith_crypto::boxed::BoxKey;
use kith_wire::Codec;
use kith_wire::conv::{ContactRequest, Envelope};
use rusqlite::{OptionalExtension, Transaction, params};
use zeroize::Zeroizing;

use super::{Arrived, ConversationType, Effects, Moment};
use crate::error::{CoreError, OpenError, Result, refused};
use crate::ids::digest;
use crate::store::ms;
use crate::views::RequestView;

/// The context a contact request is sealed for (address-v1.md §3).
pub const REQUEST_CONTEXT: &[u8] = b"kith contact request v1";

/// The AddressV1 logic for one page of one address channel.
pub(crate) struct AddressV1 {
    moment: Moment,
}

impl AddressV1 {
    pub(crate) fn new(moment: Moment) -> Self {
        Self { moment }
    }
}

/// A request that opened, for the address `address`.
pub(crate) struct Opened {
    address: String,
    request: ContactRequest,
    bytes: Zeroizing<Vec<u8>>,
}

impl ConversationType for AddressV1 {
    type Input<'a> = Arrived<'a>;
    type Opened<'a> = Opened;

    fn open<'a>(
        &mut self,
        tx: &Transaction<'_>,
        input: Self::Input<'a>,
    ) -> std::result::Result<Self::Opened<'a>, OpenError> {
        let Envelope::ContactRequest(boxed) = input.envelope else {
            return Err(refused("an address takes contact requests only").into());
        };
        let address = input.channel.conversation_id.clone();
        let key: Vec<u8> = tx
            .prepare_cached("SELECT box_key FROM addresses WHERE conversation_id = ?1")?
            .query_row([&address], |r| r.get(0))?;
        let key = Zeroizing::new(key);
        let key = BoxKey::from_bytes(
            key.as_slice()
                .try_into()
                .map_err(|_| CoreError::Corrupt("an address key".into()))?,
        );
        let bytes = key.open(REQUEST_CONTEXT, &boxed).map_err(refused)?;
        let request = ContactRequest::from_bytes(&bytes).map_err(refused)?;
        if request.expires_at_ms < self.moment.now {
            return Err(refused("a contact request that has expired").into());
        }
        Ok(Opened {
            address,
            request,
            bytes,
        })
    }

    fn apply(&mut self, tx: &Transaction<'_>, opened: Opened, fx: &mut Effects) -> Result<()> {
        let Opened {
            address,
            request,
            bytes,
        } = opened;
        // The same request copied again (a retry, a replay) is kept once.
        let added = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO contact_requests \
                 (address_id, received_at, display_name, note, expires_at, request, digest) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                address,
                ms(self.moment.now),
                request.display_name,
                request.note,
                ms(request.expires_at_ms),
                bytes.as_slice(),
                digest(&bytes),
            ])?;
        if added == 1 {
            let id = tx.last_insert_rowid();
            if let Some(view) = request_view(tx, id)? {
                fx.report.requests.push(view);
            }
        }
        Ok(())
    }

    /// Requests past their expiry can no longer be accepted: forgotten.
    fn tick(&mut self, tx: &Transaction<'_>, _: &mut Effects) -> Result<()> {
        tx.prepare_cached("DELETE FROM contact_requests WHERE expires_at <= ?1")?
            .execute([ms(self.moment.now)])?;
        Ok(())
    }
}

/// A request as `kith requests` shows it.
pub(crate) fn request_view(db: &rusqlite::Connection, id: i64) -> Result<Option<RequestView>> {
    Ok(db
        .prepare_cached(
            "SELECT r.id, r.address_id, a.label, r.display_name, r.note, r.received_at, r.expires_at \
             FROM contact_requests r JOIN addresses a ON a.conversation_id = r.address_id \
             WHERE r.id = ?1",
        )?
        .query_row([id], request_row)
        .optional()?)
}

pub(crate) fn request_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RequestView> {
    Ok(RequestView {
        id: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
        address: r.get(1)?,
        address_label: r.get(2)?,
        name: r.get(3)?,
        note: r.get(4)?,
        received_at: u64::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
        expires_at: u64::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
    })
}
