//! Contact addresses (docs/spec/address-v1.md): a link many people can use
//! to ask this user for a conversation, the requests that arrive on it,
//! and sending a request to someone else's address.

use std::time::Duration;

use kith_crypto::boxed::{BoxKey, seal_to};
use kith_crypto::mls::{IdentityKey, key_package};
use kith_crypto::seal::SealKey;
use kith_relay_client::{ChannelOptions, ClientError, generate_key, public_key};
use kith_wire::Codec;
use kith_wire::conv::{ContactRequest, Envelope, Invitation, MAX_REQUEST_NOTE};
use kith_wire::relay::response::ErrorCode;
use kith_wire::relay::{KeyGrant, Rights, WriteId};
use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use crate::config::millis;
use crate::conv::address::{REQUEST_CONTEXT, request_row, request_view};
use crate::error::{CoreError, Result, check_len, check_name};
use crate::ids::conversation_id;
use crate::link::{AddressLink, address_guest_key};
use crate::runtime::personas::identity_for;
use crate::runtime::{Engine, base_url};
use crate::store::{SharedChannel, envelope_payload, insert_channel, ms};
use crate::views::{Accepted, AddressView, RequestView, duration_words};

/// How long a contact request can be accepted (and its key package used).
pub const REQUEST_TTL: Duration = Duration::from_secs(30 * 86_400);

impl Engine {
    /// Creates a contact address on `relay` (or the profile's relay):
    /// `label` is this user's name for it, `name` the name shown to those
    /// whose requests are accepted (else the profile's).
    pub async fn address_create(
        &mut self,
        label: Option<&str>,
        relay: Option<&str>,
        name: Option<&str>,
        persona: Option<&str>,
    ) -> Result<AddressView> {
        label.map(check_name).transpose()?;
        name.map(check_name).transpose()?;
        let profile = self.profile()?;
        let new = identity_for(&self.db, persona)?;
        let my_name = new.shown(name, &profile.name);
        let relay_url = profile.host(relay)?;
        let client = self.relay(&relay_url)?;
        let info = client.info().await?;
        let owner = generate_key()?;
        let secret = SealKey::generate()?;
        let box_key = BoxKey::generate()?;
        let guest = address_guest_key(&secret)?;
        // Requesters may append, never read: they cannot see each other.
        // The channel lives as long as the relay allows, pushed on by every
        // read of its owner.
        let created = client
            .create_channel(
                &owner,
                ChannelOptions {
                    grants: vec![KeyGrant {
                        key: public_key(&guest),
                        rights: Rights::WRITE,
                    }],
                    channel_ttl: Some(Duration::from_secs(info.limits.max_channel_ttl_secs.into())),
                    ..ChannelOptions::default()
                },
            )
            .await?;
        let grant = kith_wire::conv::ChannelGrant {
            relay_url: base_url(&client),
            relay_id: info.relay_id,
            write_id: created.write_id,
            read_id: created.read_id,
            key: owner.to_bytes(),
        };
        let id = conversation_id(&grant.write_id);
        let now = self.now();
        let tx = self.db.transaction()?;
        tx.execute(
            "INSERT INTO conversations (id, kind, state, contact_name, my_name, identity, created_at, last_activity) \
             VALUES (?1, 'address', 'active', ?2, ?3, ?4, ?5, ?5)",
            params![id, label, my_name, IdentityKey::generate()?.to_bytes().as_slice(), ms(now)],
        )?;
        insert_channel(&tx, &id, &grant, &owner.to_bytes(), true, true, now)?;
        tx.execute(
            "UPDATE channels SET role = 'address' WHERE conversation_id = ?1",
            [&id],
        )?;
        tx.execute(
            "INSERT INTO addresses (conversation_id, label, secret, box_key, created_at, persona_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                id,
                label,
                secret.as_bytes().as_slice(),
                box_key.to_bytes().as_slice(),
                ms(now),
                new.persona
            ],
        )?;
        tx.commit()?;
        self.address_view(&id)?
            .ok_or_else(|| CoreError::Corrupt("an address just stored".into()))
    }

    /// This user's contact addresses, newest first.
    pub fn addresses(&self) -> Result<Vec<AddressView>> {
        let ids: Vec<String> = self
            .db
            .prepare(
                "SELECT conversation_id FROM addresses ORDER BY created_at DESC, conversation_id",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut views = Vec::with_capacity(ids.len());
        for id in ids {
            views.extend(self.address_view(&id)?);
        }
        Ok(views)
    }

    pub(crate) fn address_view(&self, id: &str) -> Result<Option<AddressView>> {
        type Row = (
            Option<String>,
            Vec<u8>,
            Vec<u8>,
            String,
            i64,
            String,
            Vec<u8>,
            i64,
        );
        let row: Option<Row> = self
            .db
            .query_row(
                "SELECT a.label, a.secret, a.box_key, c.my_name, a.created_at, ch.relay_url, ch.write_id, \
                        (SELECT COUNT(*) FROM contact_requests r WHERE r.address_id = a.conversation_id \
                           AND r.expires_at > ?2) \
                 FROM addresses a JOIN conversations c ON c.id = a.conversation_id \
                 JOIN channels ch ON ch.conversation_id = a.conversation_id \
                 WHERE a.conversation_id = ?1",
                params![id, ms(self.now())],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                },
            )
            .optional()?;
        let Some((label, secret, box_key, my_name, created_at, relay, write_id, requests)) = row
        else {
            return Ok(None);
        };
        let (secret, box_key) = (Zeroizing::new(secret), Zeroizing::new(box_key));
        let bytes32 = |b: &[u8]| -> Result<[u8; 32]> {
            b.try_into()
                .map_err(|_| CoreError::Corrupt("an address's keys".into()))
        };
        let link = AddressLink {
            relay_url: relay.clone(),
            write_id: WriteId(bytes32(&write_id)?),
            secret: SealKey::from_bytes(bytes32(&secret)?),
            box_public: BoxKey::from_bytes(bytes32(&box_key)?).public(),
        };
        Ok(Some(AddressView {
            id: id.to_string(),
            label,
            link: link.kith(),
            my_name,
            relay,
            created_at: u64::try_from(created_at).unwrap_or(0),
            requests: u64::try_from(requests).unwrap_or(0),
        }))
    }

    /// An address by id, unique id prefix or label.
    pub fn resolve_address(&self, which: &str) -> Result<String> {
        let escaped = crate::store::like_prefix(which);
        let ids: Vec<String> = self
            .db
            .prepare(
                "SELECT conversation_id FROM addresses WHERE conversation_id LIKE ?1 || '%' ESCAPE '\\' \
                 UNION SELECT conversation_id FROM addresses WHERE lower(label) = lower(?2)",
            )?
            .query_map(params![escaped, which], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        match ids.as_slice() {
            [one] if !which.is_empty() => Ok(one.clone()),
            [_, _, ..] => Err(CoreError::Ambiguous(which.to_string(), ids.join(", "))),
            _ => Err(CoreError::NoSuchAddress(which.to_string())),
        }
    }

    /// Deletes an address: its relay deletes the channel, so further
    /// requests are refused, and its waiting requests are dropped here.
    pub async fn address_delete(&mut self, which: &str) -> Result<()> {
        let id = self.resolve_address(which)?;
        for channel in crate::store::channels(&self.db, Some(&id))? {
            let client = self.relay(&channel.relay_url)?;
            match client.delete_channel(&channel.key, channel.write_id).await {
                // Already gone (expired): nothing left to refuse with.
                Err(e) if e.code() == Some(ErrorCode::UNAUTHORIZED) => {}
                other => other?,
            }
        }
        self.db
            .execute("DELETE FROM conversations WHERE id = ?1", [&id])?;
        Ok(())
    }

    /// Contact requests waiting for an answer, oldest first.
    pub fn requests(&self) -> Result<Vec<RequestView>> {
        Ok(self
            .db
            .prepare(
                "SELECT r.id, r.address_id, a.label, r.display_name, r.note, r.received_at, r.expires_at \
                 FROM contact_requests r JOIN addresses a ON a.conversation_id = r.address_id \
                 WHERE r.expires_at > ?1 ORDER BY r.id",
            )?
            .query_map([ms(self.now())], request_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn request_id(&self, id: &str) -> Result<i64> {
        let n: i64 = id
            .trim()
            .parse()
            .map_err(|_| CoreError::NoSuchRequest(id.to_string()))?;
        match request_view(&self.db, n)? {
            Some(r) if r.expires_at > self.now() => Ok(n),
            _ => Err(CoreError::NoSuchRequest(id.to_string())),
        }
    }

    /// Accepts a contact request: the conversation starts as if this user
    /// had opened the requester's invitation (inbox-v1.md §3), showing
    /// `name` (else the address's name for this user).
    pub async fn request_accept(&mut self, id: &str, name: Option<&str>) -> Result<Accepted> {
        name.map(check_name).transpose()?;
        let n = self.request_id(id)?;
        let (bytes, my_name, persona): (Vec<u8>, String, Option<String>) = self.db.query_row(
            "SELECT r.request, c.my_name, p.name FROM contact_requests r \
             JOIN conversations c ON c.id = r.address_id \
             JOIN addresses a ON a.conversation_id = r.address_id \
             LEFT JOIN personas p ON p.id = a.persona_id WHERE r.id = ?1",
            [n],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let request = ContactRequest::from_bytes(&Zeroizing::new(bytes))?;
        let invitation = Invitation {
            channel: request.channel,
            key_package: request.key_package,
            display_name: request.display_name,
            expires_at_ms: request.expires_at_ms,
        };
        let result = self
            .accept_invitation(
                &invitation,
                Some(name.unwrap_or(&my_name)),
                persona.as_deref(),
            )
            .await;
        // Answered, or no longer answerable; a relay out of reach keeps it.
        if !matches!(result, Err(CoreError::Relay(_) | CoreError::Io { .. })) {
            self.db
                .execute("DELETE FROM contact_requests WHERE id = ?1", [n])?;
        }
        result
    }

    /// Declines a contact request: it is forgotten, and nothing is sent
    /// (the requester learns nothing; theirs expires).
    pub fn request_decline(&mut self, id: &str) -> Result<()> {
        let n = self.request_id(id)?;
        self.db
            .execute("DELETE FROM contact_requests WHERE id = ?1", [n])?;
        Ok(())
    }

    /// Sends a contact request to the address `link` (address-v1.md §3),
    /// showing `name` (else the profile's) and `note`. The conversation
    /// waits, as an invitation does, until the owner accepts.
    pub async fn request_contact(
        &mut self,
        link: &str,
        name: Option<&str>,
        note: &str,
        persona: Option<&str>,
    ) -> Result<Accepted> {
        name.map(check_name).transpose()?;
        check_len("note", note, MAX_REQUEST_NOTE)?;
        let link = AddressLink::parse(link)?;
        let own: bool = self.db.query_row(
            "SELECT EXISTS (SELECT 1 FROM channels WHERE role = 'address' AND write_id = ?1)",
            [link.write_id.0.as_slice()],
            |r| r.get(0),
        )?;
        if own {
            return Err(CoreError::OwnInvitation);
        }
        let profile = self.profile()?;
        let new = identity_for(&self.db, persona)?;
        let my_name = new.shown(name, &profile.name);
        // The conversation's channel: on this user's relay, or else on the
        // address's (whose owner reads it anyway).
        let host = profile
            .relay_url
            .clone()
            .unwrap_or_else(|| link.relay_url.clone());
        let SharedChannel { owner, grant } = self.create_shared_channel(&host, None).await?;
        let identity = new.key;
        let (kp, pending) = key_package(&identity)?;
        let expires_at = self.now().saturating_add(millis(REQUEST_TTL));
        let id = conversation_id(&grant.write_id);
        let now = self.now();
        let tx = self.db.transaction()?;
        tx.execute(
            "INSERT INTO conversations (id, kind, state, my_name, identity, pending_kp, created_at, last_activity, expires_at, persona_id) \
             VALUES (?1, 'pair', 'invited', ?2, ?3, ?4, ?5, ?5, ?6, ?7)",
            params![id, my_name, identity.to_bytes().as_slice(), pending.to_bytes().as_slice(), ms(now), ms(expires_at), new.persona],
        )?;
        insert_channel(&tx, &id, &grant, &owner.to_bytes(), true, true, now)?;
        tx.commit()?;

        let request = ContactRequest {
            channel: grant,
            key_package: kp,
            display_name: my_name,
            note: note.to_string(),
            expires_at_ms: expires_at,
        };
        let boxed = seal_to(
            &link.box_public,
            REQUEST_CONTEXT,
            &Zeroizing::new(request.to_bytes()),
        )?;
        let payload = envelope_payload(&Envelope::ContactRequest(boxed))?;
        let sent = self
            .relay(&link.relay_url)?
            .append(&link.guest_key()?, link.write_id, &payload)
            .await;
        if let Err(e) = sent {
            // Nothing was asked: the waiting conversation goes.
            self.db
                .execute("DELETE FROM conversations WHERE id = ?1", [&id])?;
            let client = self.relay(&host)?;
            let _ = client
                .delete_channel(&owner, request.channel.write_id)
                .await;
            return Err(address_error(e));
        }
        Ok(Accepted {
            conversation: self.view(&id)?,
            warnings: Vec::new(),
        })
    }
}

/// What a refused request means to the person sending it.
fn address_error(e: ClientError) -> CoreError {
    match &e {
        ClientError::Relay {
            code, retry_after, ..
        } => match *code {
            ErrorCode::UNAUTHORIZED => CoreError::AddressGone,
            ErrorCode::RATE_LIMITED => CoreError::AddressBusy(duration_words(
                retry_after.map_or(60, |d| d.as_secs().max(1)),
            )),
            _ => e.into(),
        },
        _ => e.into(),
    }
}
