//! Directories (docs/spec/directory-v1.md) from a member's side: joining
//! (pinning the root key, enrolling for an attestation), publishing an
//! entry that leads to a contact address made for it, searching, leaving,
//! and the attestations shown in conversations.
//!
//! ```text
//!  join  ── GET /v1/dir/{name} (pin root) ── enrol (secret) ──▶ Attestation
//!  publish ── address_create(persona) ── publish(entry) ──▶ others' searches
//!  search ── search(query) ──▶ entries ── kith accept <address> ──▶ request
//!  a conversation of the persona ── PairFrame::Attestation ──▶ the contact
//! ```
//!
//! The member key is always a persona's identity key: the persona joined
//! as, or one named after the directory and made for it. So a
//! relationship started from the directory's entry uses the key the
//! attestation names, and the contact can check that it does.

use kith_crypto::mls::verify_signature;
use kith_relay_client::{ClientError, generate_key};
use kith_wire::Codec;
use kith_wire::conv::PairFrame;
use kith_wire::dir::{
    Attestation, DirectoryInfo, DirectoryOp, DirectoryRequest, Entry, MAX_ENTRY_TEXT, MAX_QUERY,
    SearchResults,
};
use kith_wire::relay::response::ErrorCode;
use kith_wire::relay::to_hex;
use rusqlite::{OptionalExtension, params};

use crate::attestation::{Standing, check};
use crate::conv::pair::record_attestation;
use crate::error::{CoreError, Result, check_len, check_name};
use crate::link::DirectoryLink;
use crate::runtime::Engine;
use crate::runtime::personas::{identity_for, own_identity};
use crate::store::{ConversationKind, ConversationState, ms, queue_frame};
use crate::views::{AttestationView, DirectoryView, EntryView};

/// A directory this user joined, as stored.
struct Joined {
    id: i64,
    name: String,
    relay_url: String,
    root: [u8; 32],
    persona: String,
    attestation: Option<Attestation>,
    address_id: Option<String>,
}

const JOINED_COLUMNS: &str =
    "d.id, d.name, d.relay_url, d.root, p.name, d.attestation, d.address_id";

fn joined_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Joined, Option<Vec<u8>>, Vec<u8>)> {
    Ok((
        Joined {
            id: r.get(0)?,
            name: r.get(1)?,
            relay_url: r.get(2)?,
            root: [0; 32],
            persona: r.get(4)?,
            attestation: None,
            address_id: r.get(6)?,
        },
        r.get(5)?,
        r.get(3)?,
    ))
}

fn finish_joined((mut j, attestation, root): (Joined, Option<Vec<u8>>, Vec<u8>)) -> Result<Joined> {
    j.root = root
        .try_into()
        .map_err(|_| CoreError::Corrupt("a directory's root key".into()))?;
    j.attestation = attestation
        .map(|a| Attestation::from_bytes(&a))
        .transpose()?;
    Ok(j)
}

/// `valid`, `expired`, `revoked` or `not_yet_valid`.
fn standing_word(standing: Standing, revoked: bool) -> &'static str {
    match standing {
        _ if revoked => "revoked",
        Standing::Valid => "valid",
        Standing::Expired => "expired",
        Standing::NotYetValid => "not_yet_valid",
    }
}

/// `info`, checked: the directory asked for, signed by its root (the
/// pinned one, once pinned).
fn verified(info: DirectoryInfo, name: &str, pinned: Option<&[u8; 32]>) -> Result<DirectoryInfo> {
    if info.name != name {
        return Err(CoreError::BadDirectory(
            "the relay answered for another directory".into(),
        ));
    }
    if pinned.is_some_and(|root| *root != info.root) {
        return Err(CoreError::BadDirectory(format!(
            "its root key changed since you joined (now {}…): this is not the directory you joined",
            to_hex(info.root.get(..8).unwrap_or_default())
        )));
    }
    verify_signature(&info.root, &info.signed(), &info.root_signature)
        .map_err(|_| CoreError::BadDirectory("its root key did not sign it".into()))?;
    Ok(info)
}

/// Enrols `key` with an enrolment secret; the attestation, checked
/// against the directory's root.
async fn enrol(
    client: &kith_relay_client::RelayClient,
    key: &ed25519_dalek::SigningKey,
    info: &DirectoryInfo,
    secret: [u8; 32],
    now: u64,
) -> Result<Attestation> {
    let request = DirectoryRequest {
        directory: info.name.clone(),
        op: DirectoryOp::Enrol { secret },
    };
    let answer = client
        .directory(key, request)
        .await
        .map_err(|e| match e.code() {
            Some(ErrorCode::UNAUTHORIZED) => CoreError::EnrolmentRefused,
            _ => refusal(&info.name, e),
        })?;
    let a = Attestation::from_bytes(&answer)?;
    if a.member != key.verifying_key().to_bytes() || a.directory != info.name {
        return Err(CoreError::BadDirectory(
            "its attestation is for someone else".into(),
        ));
    }
    check(&a, Some(&info.root), now).map_err(|e| CoreError::BadDirectory(e.to_string()))?;
    Ok(a)
}

/// A relay's refusal of a directory request, in the member's words.
fn refusal(name: &str, e: ClientError) -> CoreError {
    match e.code() {
        Some(ErrorCode::UNAUTHORIZED) => CoreError::NotAMember(name.to_string()),
        Some(ErrorCode::NOT_FOUND) => {
            CoreError::BadDirectory(format!("the relay has no directory named {name:?}"))
        }
        _ => e.into(),
    }
}

fn revoked_list(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.chunks_exact(32)
}

impl Engine {
    /// Joins the directory of `link`: pins its root key and, for a
    /// members-only directory, enrols with the link's one-time secret and
    /// keeps the attestation. The member key is `persona`'s, or that of a
    /// persona named after the directory (made if missing).
    pub async fn directory_join(
        &mut self,
        link: &str,
        persona: Option<&str>,
    ) -> Result<DirectoryView> {
        let link = DirectoryLink::parse(link)?;
        let name = link.name.clone();
        let known: bool = self.db.query_row(
            "SELECT EXISTS (SELECT 1 FROM directories WHERE relay_url = ?1 AND name = ?2)",
            params![link.relay_url, name],
            |r| r.get(0),
        )?;
        if known {
            return Err(CoreError::DirectoryJoined(name));
        }
        let client = self.relay(&link.relay_url)?;
        let info = client
            .directory_info(&name)
            .await
            .map_err(|e| refusal(&name, e))?;
        let info = verified(info, &name, None)?;
        if info.members_only && link.secret.is_none() {
            return Err(CoreError::MembersOnly(name));
        }
        let (persona, made) = match persona {
            Some(p) => (p.to_string(), false),
            None => match identity_for(&self.db, Some(&name)) {
                Ok(_) => (name.clone(), false),
                Err(CoreError::NoSuchPersona(_)) => {
                    self.persona_create(&name, None)?;
                    (name.clone(), true)
                }
                Err(e) => return Err(e),
            },
        };
        let identity = identity_for(&self.db, Some(&persona))?;
        let key = identity.key.ed25519()?;
        let attestation = match (&link.secret, info.members_only) {
            (Some(secret), true) => {
                let enrolled = enrol(&client, &key, &info, **secret, self.now()).await;
                // A persona made for this directory goes with a failed
                // enrolment: nothing was joined.
                if enrolled.is_err() && made {
                    self.persona_delete(&persona)?;
                }
                Some(enrolled?.to_bytes())
            }
            _ => None,
        };
        self.db.execute(
            "INSERT INTO directories (name, relay_url, root, members_only, persona_id, attestation, revoked, joined_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                name,
                link.relay_url,
                info.root.as_slice(),
                info.members_only,
                identity.persona,
                attestation,
                // Fetched before enrolling: the key this enrolment just
                // admitted is no longer revoked, whatever it said then.
                info.revoked
                    .iter()
                    .filter(|k| k.as_slice() != key.verifying_key().as_bytes())
                    .flatten()
                    .copied()
                    .collect::<Vec<u8>>(),
                ms(self.now())
            ],
        )?;
        let id = self.db.last_insert_rowid();
        self.directory_view(id)
    }

    /// The directories this user joined.
    pub fn directories(&self) -> Result<Vec<DirectoryView>> {
        let ids: Vec<i64> = self
            .db
            .prepare("SELECT id FROM directories ORDER BY name, relay_url")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        ids.into_iter().map(|id| self.directory_view(id)).collect()
    }

    fn directory_view(&self, id: i64) -> Result<DirectoryView> {
        type Row = (
            (Joined, Option<Vec<u8>>, Vec<u8>),
            bool,
            Vec<u8>,
            Option<String>,
            Option<String>,
        );
        let row: Row = self.db.query_row(
            &format!(
                "SELECT {JOINED_COLUMNS}, d.members_only, d.revoked, d.entry_name, d.entry_text \
                 FROM directories d JOIN personas p ON p.id = d.persona_id WHERE d.id = ?1"
            ),
            [id],
            |r| Ok((joined_row(r)?, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?)),
        )?;
        let (joined, members_only, revoked, entry_name, entry_text) = row;
        let j = finish_joined(joined)?;
        let now = self.now();
        let address = match &j.address_id {
            Some(a) => self.address_view(a)?.map(|v| web_form(&v.link)),
            None => None,
        };
        let standing = j.attestation.as_ref().map(|a| {
            let revoked = revoked_list(&revoked).any(|k| k == a.member);
            check(a, Some(&j.root), now).map_or("invalid", |s| standing_word(s, revoked))
        });
        Ok(DirectoryView {
            link: DirectoryLink::public(&j.relay_url, &j.name),
            name: j.name,
            relay: j.relay_url,
            members_only,
            root: to_hex(j.root.get(..8).unwrap_or_default()),
            persona: j.persona,
            statement: j.attestation.as_ref().map(|a| a.statement.clone()),
            valid_until: j.attestation.as_ref().map(|a| a.valid_until_ms),
            standing: standing.map(str::to_string),
            entry: match (entry_name, address) {
                (Some(display_name), Some(address)) => Some(EntryView {
                    display_name,
                    text: entry_text.unwrap_or_default(),
                    address,
                }),
                _ => None,
            },
        })
    }

    /// A joined directory by name (any case) or by link.
    fn joined(&self, which: &str) -> Result<Joined> {
        let (relay, name) = match DirectoryLink::parse(which) {
            Ok(link) => (Some(link.relay_url), link.name),
            Err(_) => (None, which.to_lowercase()),
        };
        let rows = self
            .db
            .prepare(&format!(
                "SELECT {JOINED_COLUMNS} FROM directories d JOIN personas p ON p.id = d.persona_id \
                 WHERE d.name = ?1 AND (?2 IS NULL OR d.relay_url = ?2)"
            ))?
            .query_map(params![name, relay], joined_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut rows = rows.into_iter();
        match (rows.next(), rows.next()) {
            (Some(one), None) => finish_joined(one),
            (Some(_), Some(_)) => Err(CoreError::Ambiguous(
                which.to_string(),
                "directories of that name on several relays; give its link".into(),
            )),
            _ => Err(CoreError::NoSuchDirectory(which.to_string())),
        }
    }

    fn member_key(&self, j: &Joined) -> Result<ed25519_dalek::SigningKey> {
        Ok(identity_for(&self.db, Some(&j.persona))?.key.ed25519()?)
    }

    /// Publishes (or replaces) this user's entry in a joined directory: a
    /// display name (else the persona's), a short text, and a contact
    /// address made for this directory (once) on the profile's relay.
    pub async fn directory_publish(
        &mut self,
        which: &str,
        display_name: Option<&str>,
        text: &str,
    ) -> Result<DirectoryView> {
        let j = self.joined(which)?;
        display_name.map(check_name).transpose()?;
        check_len("entry text", text, MAX_ENTRY_TEXT)?;
        let shown = match display_name {
            Some(n) => n.to_string(),
            None => identity_for(&self.db, Some(&j.persona))?
                .display_name
                .unwrap_or_default(),
        };
        let existing = match &j.address_id {
            Some(id) => self.address_view(id)?,
            None => None,
        };
        let address = match existing {
            Some(a) => a,
            None => {
                let label = format!("directory {}", j.name);
                let made = self
                    .address_create(Some(&label), None, Some(&shown), Some(&j.persona))
                    .await?;
                self.db.execute(
                    "UPDATE directories SET address_id = ?2 WHERE id = ?1",
                    params![j.id, made.id],
                )?;
                made
            }
        };
        let entry = Entry {
            display_name: shown.clone(),
            text: text.to_string(),
            address: web_form(&address.link),
        };
        let key = self.member_key(&j)?;
        let client = self.relay(&j.relay_url)?;
        client
            .directory(
                &key,
                DirectoryRequest {
                    directory: j.name.clone(),
                    op: DirectoryOp::Publish(entry),
                },
            )
            .await
            .map_err(|e| refusal(&j.name, e))?;
        self.db.execute(
            "UPDATE directories SET entry_name = ?2, entry_text = ?3 WHERE id = ?1",
            params![j.id, shown, text],
        )?;
        self.directory_view(j.id)
    }

    /// Removes this user's entry, and deletes the contact address made for
    /// it: whoever found it can no longer ask.
    pub async fn directory_unpublish(&mut self, which: &str) -> Result<DirectoryView> {
        let j = self.joined(which)?;
        let key = self.member_key(&j)?;
        let client = self.relay(&j.relay_url)?;
        let request = DirectoryRequest {
            directory: j.name.clone(),
            op: DirectoryOp::Unpublish,
        };
        client
            .directory(&key, request)
            .await
            .map_err(|e| refusal(&j.name, e))?;
        self.forget_entry(&j).await?;
        self.directory_view(j.id)
    }

    async fn forget_entry(&mut self, j: &Joined) -> Result<()> {
        if let Some(address) = &j.address_id {
            match self.address_delete(address).await {
                Ok(()) | Err(CoreError::NoSuchAddress(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.db.execute(
            "UPDATE directories SET entry_name = NULL, entry_text = NULL, address_id = NULL WHERE id = ?1",
            [j.id],
        )?;
        Ok(())
    }

    /// Leaves a directory: the entry and its address go, and (members-only)
    /// the membership ends. The persona and its relationships stay.
    pub async fn directory_leave(&mut self, which: &str) -> Result<()> {
        let j = self.joined(which)?;
        let key = self.member_key(&j)?;
        let client = self.relay(&j.relay_url)?;
        let request = DirectoryRequest {
            directory: j.name.clone(),
            op: DirectoryOp::Leave,
        };
        match client.directory(&key, request).await {
            // A directory that no longer knows the member: left already.
            Err(e) if e.code() == Some(ErrorCode::UNAUTHORIZED) => {}
            other => {
                other.map_err(|e| refusal(&j.name, e))?;
            }
        }
        self.forget_entry(&j).await?;
        self.db
            .execute("DELETE FROM directories WHERE id = ?1", [j.id])?;
        Ok(())
    }

    /// Searches a joined directory (as its member), or any directory by
    /// its link with a key made for this one search (a public directory
    /// answers anyone; a members-only one refuses).
    pub async fn directory_search(&mut self, which: &str, query: &str) -> Result<Vec<EntryView>> {
        check_len("query", query, MAX_QUERY)?;
        let (client, key, name) = match self.joined(which) {
            Ok(j) => {
                let client = self.relay(&j.relay_url)?;
                // The revocation list travels with the directory's
                // description; a search is online anyway.
                let info = client
                    .directory_info(&j.name)
                    .await
                    .map_err(|e| refusal(&j.name, e))?;
                let info = verified(info, &j.name, Some(&j.root))?;
                self.db.execute(
                    "UPDATE directories SET revoked = ?2 WHERE id = ?1",
                    params![j.id, info.revoked.concat()],
                )?;
                (client, self.member_key(&j)?, j.name)
            }
            Err(CoreError::NoSuchDirectory(_)) if DirectoryLink::is_directory(which) => {
                let link = DirectoryLink::parse(which)?;
                (self.relay(&link.relay_url)?, generate_key()?, link.name)
            }
            Err(e) => return Err(e),
        };
        let request = DirectoryRequest {
            directory: name.clone(),
            op: DirectoryOp::Search {
                query: query.to_string(),
            },
        };
        let answer = client
            .directory(&key, request)
            .await
            .map_err(|e| refusal(&name, e))?;
        Ok(SearchResults::from_bytes(&answer)?
            .items
            .into_iter()
            .map(|e| EntryView {
                display_name: e.display_name,
                text: e.text,
                address: e.address,
            })
            .collect())
    }

    /// Shows this user's attestation from a joined directory in a 1:1
    /// conversation (done by itself in conversations of the persona it
    /// joined as).
    pub async fn directory_show(&mut self, which: &str, conv: &str) -> Result<Vec<String>> {
        let j = self.joined(which)?;
        let id = self.resolve(conv)?;
        let (kind, state): (ConversationKind, ConversationState) = self.db.query_row(
            "SELECT kind, state FROM conversations WHERE id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if kind != ConversationKind::Pair || state != ConversationState::Active {
            return Err(CoreError::NotAContact(id));
        }
        let a = j.attestation.ok_or_else(|| {
            CoreError::BadDirectory(format!(
                "{} is a public directory: it attests nothing",
                j.name
            ))
        })?;
        if own_identity(&self.db, &id)?.public() != a.member {
            return Err(CoreError::BadDirectory(format!(
                "this conversation does not use the key you joined {} with (persona {}): \
                 showing the attestation here would not verify, and would link the two",
                j.name, j.persona
            )));
        }
        let now = self.now();
        let tx = self.db.transaction()?;
        queue_frame(&tx, &id, &PairFrame::Attestation(a.clone()), now)?;
        record_attestation(&tx, &id, true, &a, now)?;
        tx.commit()?;
        let mut warnings = Vec::new();
        if let Err(e) = self.flush_outbox(Some(&id)).await {
            warnings.push(format!("queued; sent on the next sync: {e}"));
        }
        Ok(warnings)
    }

    /// The attestations shown in `conv`, either way, with where each
    /// stands now.
    pub(crate) fn attestations(&self, conv: &str) -> Result<Vec<AttestationView>> {
        let rows: Vec<(bool, Vec<u8>)> = self
            .db
            .prepare(
                "SELECT outgoing, attestation FROM conversation_attestations \
                 WHERE conversation_id = ?1 ORDER BY outgoing, at",
            )?
            .query_map([conv], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let now = self.now();
        let mut views = Vec::with_capacity(rows.len());
        for (outgoing, bytes) in rows {
            let a = Attestation::from_bytes(&bytes)?;
            let pinned: Option<Vec<u8>> = self
                .db
                .query_row(
                    "SELECT revoked FROM directories WHERE root = ?1 AND name = ?2",
                    params![a.root.as_slice(), a.directory],
                    |r| r.get(0),
                )
                .optional()?;
            let revoked = pinned
                .as_deref()
                .is_some_and(|list| revoked_list(list).any(|k| k == a.member));
            let Ok(standing) = check(&a, None, now) else {
                continue;
            };
            views.push(AttestationView {
                outgoing,
                directory: a.directory,
                statement: a.statement,
                valid_from: a.valid_from_ms,
                valid_until: a.valid_until_ms,
                standing: standing_word(standing, revoked).to_string(),
                root: to_hex(a.root.get(..8).unwrap_or_default()),
                known: pinned.is_some(),
            });
        }
        Ok(views)
    }
}

/// An address link's https form (entries carry it without `kith:`).
fn web_form(link: &str) -> String {
    link.strip_prefix("kith:").unwrap_or(link).to_string()
}
