//! Invitations, 1:1 conversations, sending, reading, listing.
//! Specs: `docs/spec/inbox-v1.md`, `docs/spec/pair-v1.md`.

use std::time::Duration;

use ed25519_dalek::SigningKey;

use kith_content::show::{SUBJECT, Shown, markdown_to_plain};
use kith_content::{
    CONTENT_V1, Content, Disposition, ExtensionName, ExtensionValue, MARKDOWN, MAX_CONTENT,
    MessageId, PLAIN_TEXT, Part, PartBody, Semantics,
};
use kith_crypto::mls::{IdentityKey, Session, key_package};
use kith_crypto::padding::{pad, unpad};
use kith_crypto::seal::SealKey;
use kith_relay_client::{ChannelOptions, generate_key, public_key};
use kith_wire::Codec;
use kith_wire::conv::{ChannelGrant, Envelope, GroupInvitation, Invitation, PairFrame};
use kith_wire::relay::response::ErrorCode;
use kith_wire::relay::{KeyGrant, Rights, SIZE_BUCKETS, WriteId, to_hex};
use rusqlite::params;
use zeroize::Zeroizing;

use crate::config::millis;

/// What the sender keeps of a frame it sends.
enum Outgoing {
    Message {
        shown: Shown,
        content: Content,
    },
    Reaction {
        reaction: store::Reaction,
        view: MessageView,
    },
    /// An edit (`text`) or a delete (`None`) of this user's message.
    Change {
        target: [u8; 32],
        text: Option<String>,
        view: MessageView,
    },
}

/// A stored message that a reply, reaction, edit or delete names.
struct FoundMessage {
    /// Its ContentV1 id (content-v1.md §5).
    content_id: [u8; 32],
    text: String,
    /// Its writer's identity key; `None` from before authors were kept.
    author: Option<Vec<u8>>,
    /// Its frame id, as `read` shows it.
    message_id: Vec<u8>,
    sent_at: u64,
}

/// Longest mail subject, in bytes of UTF-8.
const MAX_SUBJECT: u32 = 1_000;
use crate::conv::group::GROUP_INVITATION_CONTEXT;
use crate::conv::inbox::{INVITATION_CONTEXT, INVITATION_TTL};
use crate::error::{CoreError, Result, check_len, check_name};
use crate::ids::{conversation_id, random, safety_number};
use crate::link::{InviteLink, claim_key};
use crate::runtime::sync::not_found;
use crate::runtime::{Engine, base_url};
use crate::store;
use crate::store::{
    ConversationState, NewPair, PairChannel, QueueOptions, SharedChannel, contact_name, encrypt_in,
    envelope_payload, insert_channel, ms, queue_with, start_pair,
};
use crate::views::{
    Accepted, ChannelInfo, ConversationInfo, ConversationView, IntegrityEvent, Invite, MessageView,
};

impl Engine {
    /// Creates a one-time invitation on `relay` (or the profile's relay),
    /// showing `name` (or the profile's name) to whoever accepts it.
    pub async fn invite(&mut self, relay: Option<&str>, name: Option<&str>) -> Result<Invite> {
        name.map(check_name).transpose()?;
        let profile = self.profile()?;
        let my_name = name.map_or_else(|| profile.name.clone(), str::to_string);
        let relay_url = relay
            .map(str::to_string)
            .or(profile.relay_url)
            .ok_or(CoreError::NoRelay)?;
        let SharedChannel { owner, grant } = self.create_shared_channel(&relay_url, None).await?;
        let identity = IdentityKey::generate()?;
        let (kp, pending) = key_package(&identity)?;
        let expires_at = self.now().saturating_add(millis(INVITATION_TTL));
        let id = conversation_id(&grant.write_id);
        let now = ms(self.now());
        // Stored before the blob exists: a Welcome can only arrive once the
        // link is out, and then the channel must already be ours to read.
        let at = self.now();
        let tx = self.db.transaction()?;
        tx.execute(
            "INSERT INTO conversations (id, kind, state, my_name, identity, pending_kp, created_at, last_activity, expires_at) \
             VALUES (?1, 'pair', 'invited', ?2, ?3, ?4, ?5, ?5, ?6)",
            params![id, my_name, identity.to_bytes().as_slice(), pending.to_bytes().as_slice(), now, ms(expires_at)],
        )?;
        insert_channel(&tx, &id, &grant, &owner.to_bytes(), true, true, at)?;
        tx.commit()?;

        let (relay_url, write_id) = (grant.relay_url.clone(), grant.write_id);
        let invitation = Invitation {
            channel: grant,
            key_package: kp,
            display_name: my_name,
            expires_at_ms: expires_at,
        };
        let link = self
            .publish_invitation(
                relay_url,
                &owner,
                write_id,
                SealKey::generate()?,
                INVITATION_CONTEXT,
                &Zeroizing::new(invitation.to_bytes()),
                INVITATION_TTL,
            )
            .await?;
        Ok(Invite::new(&link, id, expires_at))
    }

    /// Puts an invitation behind a one-time link (inbox-v1.md §2, group-v1.md
    /// §6.2): `plaintext` sealed with `seal_key` for `context` and padded, as
    /// a read-once blob on the channel `write_id` that `owner` made at
    /// `relay_url`, claimable only with the key the link's secret derives.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn publish_invitation(
        &mut self,
        relay_url: String,
        owner: &SigningKey,
        write_id: WriteId,
        seal_key: SealKey,
        context: &[u8],
        plaintext: &[u8],
        ttl: Duration,
    ) -> Result<InviteLink> {
        let blob = pad(&seal_key.seal(context, plaintext)?, &SIZE_BUCKETS)?;
        let chunk_size =
            u32::try_from(blob.len()).map_err(|_| CoreError::Corrupt("blob size".into()))?;
        let client = self.relay(&relay_url)?;
        let created = client
            .blob_create(
                owner,
                write_id,
                chunk_size,
                1,
                Some(ttl),
                Some(public_key(&claim_key(&seal_key)?)),
            )
            .await?;
        client
            .blob_put(owner, write_id, created.blob_id, 0, &blob)
            .await?;
        Ok(InviteLink {
            relay_url,
            blob_id: created.blob_id,
            key: seal_key,
        })
    }

    /// Accepts an invitation link: fetches (and so consumes) its blob,
    /// creates the conversation's MLS group and sends the Welcome.
    pub async fn accept(&mut self, link: &str, name: Option<&str>) -> Result<Accepted> {
        name.map(check_name).transpose()?;
        let profile = self.profile()?;
        let link = InviteLink::parse(link)?;
        let client = self.relay(&link.relay_url)?;
        let chunk = match client
            .blob_claim(link.blob_id, &claim_key(&link.key)?)
            .await
        {
            Ok(chunk) => chunk,
            Err(e) if not_found(&e) => return Err(CoreError::InvitationUnavailable),
            Err(e) if e.code() == Some(ErrorCode::UNAUTHORIZED) => {
                // The relay refused the claim and kept the invitation.
                return Err(CoreError::BadInvitation(
                    "the key in the link does not fit this invitation (a character changed?); \
                     it is still usable with the right link"
                        .into(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        let sealed = unpad(&chunk.data).map_err(|e| CoreError::BadInvitation(e.to_string()))?;
        let Ok(plaintext) = link.key.open(INVITATION_CONTEXT, sealed) else {
            // The seal's context tells a group link from a 1:1 one.
            let plaintext = link
                .key
                .open(GROUP_INVITATION_CONTEXT, sealed)
                .map_err(|_| {
                    CoreError::BadInvitation("the key in the link does not open it".into())
                })?;
            let invitation = GroupInvitation::from_bytes(&plaintext)
                .map_err(|e| CoreError::BadInvitation(e.to_string()))?;
            return Ok(Accepted {
                conversation: self.accept_group(invitation, &link.key, name).await?,
                warnings: Vec::new(),
            });
        };
        let invitation = Invitation::from_bytes(&plaintext)
            .map_err(|e| CoreError::BadInvitation(e.to_string()))?;
        if invitation.expires_at_ms < self.now() {
            return Err(CoreError::InvitationUnavailable);
        }
        let id = conversation_id(&invitation.channel.write_id);
        if self.find_by_id(&id)?.is_some() {
            return Err(CoreError::OwnInvitation);
        }
        let grant = &invitation.channel;
        let inviter_relay = self.relay(&grant.relay_url)?;
        if inviter_relay.info().await?.relay_id != grant.relay_id {
            return Err(CoreError::BadInvitation(
                "the relay is not the one the invitation names".into(),
            ));
        }
        let relay_url = base_url(&inviter_relay);

        let identity = IdentityKey::generate()?;
        let (mut session, welcome) = Session::create(&identity, &[&invitation.key_package])?;
        let my_name = name.map_or(profile.name.clone(), str::to_string);

        let mut warnings = Vec::new();
        let mut frames = vec![PairFrame::Profile {
            display_name: my_name.clone(),
        }];
        let mut own_channel = None;
        if let Some(own_url) = profile.relay_url.as_deref().filter(|u| *u != relay_url) {
            match self.create_shared_channel(own_url, None).await {
                Ok(shared) => {
                    frames.push(PairFrame::Channel(shared.grant.clone()));
                    own_channel = Some(shared);
                }
                Err(e) => warnings.push(format!("no channel on your relay {own_url}: {e}")),
            }
        }
        let mut payloads = vec![envelope_payload(&Envelope::Welcome(welcome))?];
        for frame in &frames {
            let ct = session.encrypt(&Zeroizing::new(frame.to_bytes()))?;
            payloads.push(envelope_payload(&Envelope::Mls(ct))?);
        }
        let snapshot = session.snapshot()?;
        let mut channels = vec![PairChannel {
            grant,
            key: grant.key,
            owner: false,
            preferred: true,
        }];
        if let Some(shared) = &own_channel {
            channels.push(PairChannel {
                grant: &shared.grant,
                key: shared.owner.to_bytes(),
                owner: true,
                preferred: false,
            });
        }
        let at = self.now();
        let tx = self.db.transaction()?;
        start_pair(
            &tx,
            &NewPair {
                id: &id,
                contact_name: &invitation.display_name,
                my_name: &my_name,
                identity: &identity,
                snapshot: &snapshot,
                introduced_by: None,
                channels: &channels,
                queued: &payloads,
                at,
            },
        )?;
        tx.commit()?;
        if let Err(e) = self.flush_outbox(Some(&id)).await {
            warnings.push(format!(
                "the reply is queued and will be sent on the next sync: {e}"
            ));
        }
        let conversation = self.view(&id)?;
        Ok(Accepted {
            conversation,
            warnings,
        })
    }

    /// A channel on the relay at `url` for a conversation, with a
    /// READ|WRITE capability key for the contact; with a `ttl`, the channel
    /// and its messages expire (an invitation's inbox).
    pub(crate) async fn create_shared_channel(
        &mut self,
        url: &str,
        ttl: Option<Duration>,
    ) -> Result<SharedChannel> {
        let client = self.relay(url)?;
        let info = client.info().await?;
        let owner = generate_key()?;
        let guest = generate_key()?;
        let created = client
            .create_channel(
                &owner,
                ChannelOptions {
                    grants: vec![KeyGrant {
                        key: public_key(&guest),
                        rights: Rights::READ | Rights::WRITE,
                    }],
                    message_ttl: ttl,
                    channel_ttl: ttl,
                    ..ChannelOptions::default()
                },
            )
            .await?;
        let grant = ChannelGrant {
            relay_url: base_url(&client),
            relay_id: info.relay_id,
            write_id: created.write_id,
            read_id: created.read_id,
            key: guest.to_bytes(),
        };
        Ok(SharedChannel { owner, grant })
    }

    /// Sends a text message. It is stored and queued first, so a relay that
    /// cannot be reached loses nothing: the next send or sync retries.
    pub async fn send(&mut self, conv: &str, text: &str) -> Result<MessageView> {
        if text.is_empty() {
            return Err(CoreError::Empty("message"));
        }
        check_len("message", text, kith_wire::conv::MAX_TEXT)?;
        let message_id: [u8; 16] = random()?;
        let sent_at = self.now();
        let frame = PairFrame::Text {
            message_id,
            sent_at_ms: sent_at,
            text: text.to_string(),
        };
        let shown = Shown {
            text: text.to_string(),
            subject: None,
        };
        let content = Content::of_text(message_id, text);
        self.send_frame(
            conv,
            message_id,
            sent_at,
            frame,
            Outgoing::Message { shown, content },
        )
        .await
    }

    /// Sends a mail: a subject and a markdown body (content-v1.md §7.4),
    /// with a plain-text alternative and fallback for receivers that show
    /// no markdown (§8).
    pub async fn send_mail(
        &mut self,
        conv: &str,
        subject: &str,
        body: &str,
    ) -> Result<MessageView> {
        if subject.trim().is_empty() {
            return Err(CoreError::Empty("subject"));
        }
        if body.trim().is_empty() {
            return Err(CoreError::Empty("mail body"));
        }
        check_len("subject", subject, MAX_SUBJECT)?;
        let plain = markdown_to_plain(body);
        let mut content = Content::new(
            random()?,
            Part {
                disposition: Disposition::RENDER,
                language: String::new(),
                body: PartBody::Multi {
                    semantics: Semantics::ChooseOne,
                    parts: vec![
                        Part::single(Disposition::RENDER, MARKDOWN, body.as_bytes()),
                        Part::single(Disposition::RENDER, PLAIN_TEXT, plain.as_bytes()),
                    ],
                },
            },
        );
        content.extensions.insert(
            ExtensionName::Text(SUBJECT.into()),
            ExtensionValue::Text(subject.into()),
        );
        let encoded = content.to_cbor();
        if encoded.len() > MAX_CONTENT {
            // The body goes twice (markdown and plain): say the room left.
            return Err(CoreError::TooLong {
                what: "mail body",
                max: MAX_CONTENT / 2,
                len: body.len(),
            });
        }
        let (message_id, sent_at, frame) =
            self.content_frame(encoded, false, format!("Subject: {subject}\n\n{plain}"))?;
        let shown = Shown {
            text: plain,
            subject: Some(subject.to_string()),
        };
        self.send_frame(
            conv,
            message_id,
            sent_at,
            frame,
            Outgoing::Message { shown, content },
        )
        .await
    }

    /// Stores, encrypts and queues a frame, then sends it. `outgoing` is
    /// what this user keeps of it: a message (with the content it stands
    /// for, whose id replies and reactions name), or a reaction.
    async fn send_frame(
        &mut self,
        conv: &str,
        message_id: [u8; 16],
        sent_at: u64,
        frame: PairFrame,
        outgoing: Outgoing,
    ) -> Result<MessageView> {
        let id = self.resolve(conv)?;
        let (state, blocked): (ConversationState, bool) = self.db.query_row(
            "SELECT state, blocked FROM conversations WHERE id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        match state {
            ConversationState::Closed | ConversationState::Leaving => {
                return Err(CoreError::GroupClosed(conv.to_string()));
            }
            ConversationState::Invited | ConversationState::Joining => {
                return Err(CoreError::NotYetConnected);
            }
            _ if blocked => return Err(CoreError::Blocked(conv.to_string())),
            _ => {}
        }
        let me = self.my_key(&id)?;
        let group = self.prepare_send(&id).await?;
        let at = self.now();
        let tx = self.db.transaction()?;
        // Loaded, encrypted and stored in one transaction (pair-v1.md §12).
        let sealed = encrypt_in(&tx, &id, &frame)?;
        tx.execute(
            "UPDATE conversations SET last_activity = ?2 WHERE id = ?1",
            params![id, ms(sent_at)],
        )?;
        let view = match &outgoing {
            Outgoing::Message { shown, content } => {
                let content_id = content.id(&me, id.as_bytes()).0;
                let reply_to = content.in_reply_to.map(|t| t.0);
                tx.execute(
                    "INSERT INTO messages (conversation_id, message_id, outgoing, sent_at, received_at, text, subject, content_id, reply_to, author) \
                     VALUES (?1, ?2, 1, ?3, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![id, message_id, ms(sent_at), shown.text, shown.subject, content_id, reply_to, me],
                )?;
                MessageView {
                    id: to_hex(&message_id),
                    conversation: id.clone(),
                    from: "me".into(),
                    outgoing: true,
                    sent_at,
                    received_at: sent_at,
                    text: shown.text.clone(),
                    needs_newer: false,
                    subject: shown.subject.clone(),
                    reply_to: match reply_to {
                        Some(target) => store::quote(&tx, &id, &target)?,
                        None => None,
                    },
                    reactions: Vec::new(),
                    edited: false,
                    deleted: false,
                }
            }
            Outgoing::Reaction { reaction, view } => {
                store::set_reaction(&tx, &id, reaction, &me, sent_at)?;
                view.clone()
            }
            Outgoing::Change { target, text, view } => {
                let change = match text {
                    Some(text) => store::Change::Edit {
                        text,
                        subject: None,
                    },
                    None => store::Change::Delete,
                };
                store::change_message(&tx, &id, target, &me, change)?;
                view.clone()
            }
        };
        let options = QueueOptions {
            epoch: group.then_some(sealed.epoch),
            frame: group.then(|| frame.to_bytes()),
            ..QueueOptions::default()
        };
        queue_with(&tx, &id, &sealed.payload, &options, at)?;
        tx.commit()?;
        match self.flush_outbox(Some(&id)).await {
            Ok(()) => {}
            Err(e @ CoreError::Refused(_)) => {
                // Never delivered: not kept as if it had been.
                match &outgoing {
                    Outgoing::Message { .. } => {
                        self.db.execute(
                            "DELETE FROM messages WHERE conversation_id = ?1 AND message_id = ?2",
                            params![id, message_id],
                        )?;
                    }
                    Outgoing::Reaction { reaction, .. } => {
                        self.db.execute(
                            "DELETE FROM reactions WHERE conversation_id = ?1 AND target = ?2 AND sender_key = ?3",
                            params![id, reaction.target, me],
                        )?;
                    }
                    // The change stays here: the relay no longer takes
                    // this user's messages (blocked or removed), and a
                    // delete is still what the user asked of this copy.
                    Outgoing::Change { .. } => {}
                }
                return Err(e);
            }
            Err(e) => return Err(CoreError::Queued(e.to_string())),
        }
        if matches!(outgoing, Outgoing::Change { text: None, .. }) {
            store::purge_log(&self.db)?;
        }
        Ok(view)
    }

    /// This user's identity key in a conversation.
    fn my_key(&self, id: &str) -> Result<Vec<u8>> {
        let identity: Vec<u8> = self.db.query_row(
            "SELECT identity FROM conversations WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?;
        Ok(IdentityKey::from_bytes(&Zeroizing::new(identity))?
            .public()
            .to_vec())
    }

    /// A ContentV1 frame of `body`, with a fresh frame id and the time it
    /// is sent.
    fn content_frame(
        &self,
        body: Vec<u8>,
        critical: bool,
        fallback: String,
    ) -> Result<([u8; 16], u64, PairFrame)> {
        let message_id: [u8; 16] = random()?;
        let sent_at = self.now();
        let frame = PairFrame::Content(kith_wire::conv::Content {
            message_id,
            sent_at_ms: sent_at,
            content_type: CONTENT_V1,
            critical,
            fallback,
            body,
        });
        Ok((message_id, sent_at, frame))
    }

    /// The message `message` (its id as `read` shows it, or a prefix of
    /// it) in `id`.
    fn find_message(&self, id: &str, message: &str) -> Result<FoundMessage> {
        let prefix = message.trim().to_ascii_lowercase();
        if prefix.is_empty() || prefix.len() > 32 || !prefix.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Err(CoreError::NoSuchMessage(message.to_string()));
        }
        // The ids a prefix covers are one range of the (conversation,
        // message_id) index: the prefix filled with 0s up to with fs.
        let bound = |fill: char| -> Vec<u8> {
            let full: String = prefix
                .chars()
                .chain(std::iter::repeat(fill))
                .take(32)
                .collect();
            (0..16)
                .filter_map(|i| {
                    full.get(2 * i..2 * i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect()
        };
        let mut stmt = self.db.prepare_cached(
            "SELECT content_id, text, author, message_id, sent_at FROM messages \
             WHERE conversation_id = ?1 AND message_id BETWEEN ?2 AND ?3 LIMIT 2",
        )?;
        type Row = (Option<Vec<u8>>, String, Option<Vec<u8>>, Vec<u8>, i64);
        let mut found: Vec<Row> = stmt
            .query_map(params![id, bound('0'), bound('f')], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        match found.as_mut_slice() {
            [(Some(content_id), text, author, message_id, sent_at)] => Ok(FoundMessage {
                content_id: <[u8; 32]>::try_from(content_id.as_slice())
                    .map_err(|_| CoreError::Corrupt("a message's content id".into()))?,
                text: std::mem::take(text),
                author: author.take(),
                message_id: std::mem::take(message_id),
                sent_at: u64::try_from(*sent_at).unwrap_or(0),
            }),
            [(None, ..)] => Err(CoreError::NoSuchMessage(format!(
                "{message} (from before this version; it cannot be replied or reacted to)"
            ))),
            [] => Err(CoreError::NoSuchMessage(message.to_string())),
            _ => Err(CoreError::NoSuchMessage(format!(
                "{message} (more than one message starts so; give more of its id)"
            ))),
        }
    }

    /// Replies to a message (content-v1.md §7.5): a text naming it.
    pub async fn send_reply(&mut self, conv: &str, to: &str, text: &str) -> Result<MessageView> {
        if text.is_empty() {
            return Err(CoreError::Empty("message"));
        }
        check_len("message", text, kith_wire::conv::MAX_TEXT / 2)?;
        let id = self.resolve(conv)?;
        let target = self.find_message(&id, to)?;
        let mut content = Content::of_text(random()?, text);
        content.in_reply_to = Some(MessageId(target.content_id));
        let first_line = store::first_line(&target.text);
        let (message_id, sent_at, frame) = self.content_frame(
            content.to_cbor(),
            false,
            format!("\u{21aa} \u{201c}{first_line}\u{201d}\n{text}"),
        )?;
        let shown = Shown {
            text: text.to_string(),
            subject: None,
        };
        self.send_frame(
            &id,
            message_id,
            sent_at,
            frame,
            Outgoing::Message { shown, content },
        )
        .await
    }

    /// Edits this user's message `message` to `text` (content-v1.md §7.7):
    /// every member shows the new text, marked edited.
    pub async fn edit(&mut self, conv: &str, message: &str, text: &str) -> Result<MessageView> {
        if text.is_empty() {
            return Err(CoreError::Empty("message"));
        }
        check_len("message", text, kith_wire::conv::MAX_TEXT / 2)?;
        self.change(conv, message, Some(text)).await
    }

    /// Deletes this user's message `message` for everyone (content-v1.md
    /// §7.7): every member's kith empties it (overwriting it on disk) and
    /// shows that it was deleted.
    pub async fn delete_for_everyone(&mut self, conv: &str, message: &str) -> Result<()> {
        self.change(conv, message, None).await?;
        Ok(())
    }

    async fn change(
        &mut self,
        conv: &str,
        message: &str,
        text: Option<&str>,
    ) -> Result<MessageView> {
        let id = self.resolve(conv)?;
        let target = self.find_message(&id, message)?;
        if target.author != Some(self.my_key(&id)?) {
            return Err(CoreError::NotAuthor);
        }
        let first_line = store::first_line(&target.text);
        let mut content = Content::new(
            random()?,
            match text {
                Some(t) => Part::single(Disposition::RENDER, PLAIN_TEXT, t.as_bytes()),
                None => Part::null(Disposition::RENDER),
            },
        );
        content.replaces = Some(MessageId(target.content_id));
        // Critical: shown as a plain message, an edit or a delete would
        // read as something new said (content-v1.md §7.2).
        let fallback = match text {
            Some(t) => format!("edited \u{201c}{first_line}\u{201d} to: {t}"),
            None => format!("deleted \u{201c}{first_line}\u{201d}"),
        };
        let (message_id, sent_at, frame) = self.content_frame(content.to_cbor(), true, fallback)?;
        let view = MessageView {
            id: to_hex(&target.message_id),
            conversation: id.clone(),
            from: "me".into(),
            outgoing: true,
            sent_at: target.sent_at,
            received_at: sent_at,
            text: text.unwrap_or_default().to_string(),
            needs_newer: false,
            subject: None,
            reply_to: None,
            reactions: Vec::new(),
            edited: text.is_some(),
            deleted: text.is_none(),
        };
        self.send_frame(
            &id,
            message_id,
            sent_at,
            frame,
            Outgoing::Change {
                target: target.content_id,
                text: text.map(str::to_string),
                view,
            },
        )
        .await
    }

    /// Reacts to a message with `emoji` (content-v1.md §7.6), replacing
    /// this user's reaction to it; `None` takes it back.
    pub async fn react(&mut self, conv: &str, to: &str, emoji: Option<&str>) -> Result<()> {
        if let Some(e) = emoji {
            if e.trim().is_empty() {
                return Err(CoreError::Empty("reaction"));
            }
            check_len("reaction", e, store::MAX_REACTION as u32)?;
        }
        let id = self.resolve(conv)?;
        let target = self.find_message(&id, to)?;
        let first_line = store::first_line(&target.text);
        let mut content = Content::new(
            random()?,
            match emoji {
                Some(e) => Part::single(Disposition::REACTION, PLAIN_TEXT, e.as_bytes()),
                None => Part::null(Disposition::REACTION),
            },
        );
        content.in_reply_to = Some(MessageId(target.content_id));
        // Taking a reaction back is critical: shown as a plain message it
        // would read as something said (content-v1.md §7.2).
        let (fallback, critical) = match emoji {
            Some(e) => (
                format!("reacted {e} to \u{201c}{first_line}\u{201d}"),
                false,
            ),
            None => (
                format!("took back a reaction to \u{201c}{first_line}\u{201d}"),
                true,
            ),
        };
        let (message_id, sent_at, frame) =
            self.content_frame(content.to_cbor(), critical, fallback)?;
        let reaction = store::Reaction {
            target: target.content_id,
            emoji: emoji.map(str::to_string),
        };
        let view = MessageView {
            id: to_hex(&message_id),
            conversation: id.clone(),
            from: "me".into(),
            outgoing: true,
            sent_at,
            received_at: sent_at,
            text: String::new(),
            needs_newer: false,
            subject: None,
            reply_to: None,
            reactions: Vec::new(),
            edited: false,
            deleted: false,
        };
        self.send_frame(
            &id,
            message_id,
            sent_at,
            frame,
            Outgoing::Reaction { reaction, view },
        )
        .await?;
        Ok(())
    }

    pub(crate) fn is_group(&self, id: &str) -> Result<bool> {
        Ok(self.db.query_row(
            "SELECT kind = 'group' FROM conversations WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?)
    }

    /// Conversations, newest activity first.
    pub fn list(&self) -> Result<Vec<ConversationView>> {
        let mut stmt = self.db.prepare(
            "SELECT c.id, COALESCE(c.local_name, c.contact_name, \
                      CASE c.state WHEN 'invited' THEN '(invitation not yet accepted)' ELSE 'contact' END), \
                    c.state, c.unread, c.last_activity, c.my_name, \
                    (SELECT COUNT(*) FROM integrity_events e WHERE e.conversation_id = c.id), c.kind, \
                    c.introduced_by, c.blocked \
             FROM conversations c ORDER BY c.last_activity DESC, c.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ConversationView {
                id: r.get(0)?,
                name: r.get(1)?,
                state: r.get(2)?,
                unread: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                last_activity: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                my_name: r.get(5)?,
                integrity_events: u64::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
                kind: r.get(7)?,
                introduced_by: r.get(8)?,
                blocked: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The conversation's messages by the time their senders sent them (ties:
    /// the order they were stored); marks
    /// them read.
    pub fn read(&mut self, conv: &str) -> Result<Vec<MessageView>> {
        let id = self.resolve(conv)?;
        let name = contact_name(&self.db, &id)?;
        let me = self.my_key(&id)?;
        type Row = (MessageView, Option<Vec<u8>>, Option<Vec<u8>>);
        let rows: Vec<Row> = {
            let mut stmt = self.db.prepare(
                "SELECT message_id, outgoing, sent_at, received_at, text, sender, needs_newer, subject, \
                        content_id, reply_to, edited, deleted FROM messages \
                 WHERE conversation_id = ?1 ORDER BY sent_at, seq",
            )?;
            let rows = stmt.query_map([&id], |r| {
                let outgoing: bool = r.get(1)?;
                let view = MessageView {
                    id: to_hex(&r.get::<_, Vec<u8>>(0)?),
                    conversation: id.clone(),
                    from: if outgoing {
                        "me".to_string()
                    } else {
                        r.get::<_, Option<String>>(5)?
                            .unwrap_or_else(|| name.clone())
                    },
                    outgoing,
                    sent_at: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    received_at: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                    text: r.get(4)?,
                    needs_newer: r.get(6)?,
                    subject: r.get(7)?,
                    reply_to: None,
                    reactions: Vec::new(),
                    edited: r.get(10)?,
                    deleted: r.get(11)?,
                };
                Ok((view, r.get(8)?, r.get(9)?))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        let mut messages = Vec::with_capacity(rows.len());
        for (mut view, content_id, reply_to) in rows {
            if let Some(target) = reply_to {
                view.reply_to = store::quote(&self.db, &id, &target)?;
            }
            if let Some(content_id) = content_id {
                view.reactions = store::reactions_to(&self.db, &id, &content_id, &me)?;
            }
            messages.push(view);
        }
        self.db
            .execute("UPDATE conversations SET unread = 0 WHERE id = ?1", [&id])?;
        Ok(messages)
    }

    /// Identity keys, safety number and channels of a conversation.
    pub fn info(&self, conv: &str) -> Result<ConversationInfo> {
        let id = self.resolve(conv)?;
        let conversation = self.view(&id)?;
        let identity: Vec<u8> = self.db.query_row(
            "SELECT identity FROM conversations WHERE id = ?1",
            [&id],
            |r| r.get(0),
        )?;
        let mine = IdentityKey::from_bytes(&Zeroizing::new(identity))?
            .public()
            .to_vec();
        let members: Vec<Vec<u8>> = match self.load(&id) {
            Ok(session) => session
                .members()
                .into_iter()
                .map(|m| m.identity_key)
                .filter(|k| *k != mine)
                .collect(),
            Err(CoreError::NotYetConnected) => Vec::new(),
            Err(e) => return Err(e),
        };
        let safety_number = match members.as_slice() {
            [theirs] if conversation.kind == "pair" => Some(safety_number(&mine, theirs)),
            _ => None,
        };
        let preferred: Vec<(i64, bool)> = {
            let mut stmt = self
                .db
                .prepare("SELECT id, preferred FROM channels WHERE conversation_id = ?1")?;
            let rows = stmt.query_map([&id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let channels = store::channels(&self.db, Some(&id))?
            .into_iter()
            .map(|c| ChannelInfo {
                relay_url: c.relay_url.clone(),
                write_id: to_hex(&c.write_id.0),
                read_id: to_hex(&c.read_id.0),
                my_key: to_hex(&public_key(&c.key).0),
                hosted: c.owner,
                role: c.role.to_string(),
                preferred: preferred.iter().any(|p| p.0 == c.id && p.1),
            })
            .collect();
        Ok(ConversationInfo {
            conversation,
            my_identity: to_hex(&mine),
            member_identities: members.iter().map(|k| to_hex(k)).collect(),
            safety_number,
            channels,
        })
    }

    /// Integrity events of a conversation, oldest first.
    pub fn integrity_events(&self, conv: &str) -> Result<Vec<IntegrityEvent>> {
        let id = self.resolve(conv)?;
        let mut stmt = self.db.prepare(
            "SELECT at, detail FROM integrity_events WHERE conversation_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([&id], |r| {
            Ok(IntegrityEvent {
                conversation: id.clone(),
                at: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                detail: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Renames a conversation locally; the contact never learns it.
    pub fn rename(&mut self, conv: &str, name: &str) -> Result<ConversationView> {
        check_name(name)?;
        let id = self.resolve(conv)?;
        self.db.execute(
            "UPDATE conversations SET local_name = ?2 WHERE id = ?1",
            params![id, name],
        )?;
        self.view(&id)
    }

    /// Deletes a conversation here, and the channels this user hosts for it
    /// on relays (best effort: a relay that cannot be reached lets them
    /// expire).
    pub async fn delete(&mut self, conv: &str) -> Result<Vec<String>> {
        let id = self.resolve(conv)?;
        let mut warnings = Vec::new();
        for channel in store::channels(&self.db, Some(&id))?
            .into_iter()
            .filter(|c| c.owner)
        {
            let client = self.relay(&channel.relay_url)?;
            if let Err(e) = client.delete_channel(&channel.key, channel.write_id).await {
                warnings.push(format!(
                    "channel on {} left to expire: {e}",
                    channel.relay_url
                ));
            }
        }
        self.db
            .execute("DELETE FROM conversations WHERE id = ?1", [&id])?;
        Ok(warnings)
    }
}
