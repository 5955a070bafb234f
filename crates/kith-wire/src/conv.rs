//! The bytes of conversations: what a client puts inside a relay message
//! (after padding) and inside MLS application data. Specified in
//! `docs/spec/inbox-v1.md`, `docs/spec/pair-v1.md` and
//! `docs/spec/group-v1.md`; each type names the struct it implements.

use crate::codec::{Codec, DecodeError, Reader, Writer};
use crate::relay::{ReadId, RelayId, WriteId};
use zeroize::Zeroize;

/// Version byte of every structure in this module.
pub const VERSION: u8 = 1;
/// Longest display name, in bytes of UTF-8.
pub const MAX_NAME: u32 = 256;
/// Longest relay URL.
pub const MAX_URL: u32 = 2048;
/// Longest text of one message.
pub const MAX_TEXT: u32 = 200_000;
/// Longest MLS message carried by an envelope.
pub const MAX_MLS: u32 = 262_144;

/// `opaque field<1..max>`: like `opaque<0..max>`, but empty is refused.
fn nonempty_opaque(
    r: &mut Reader<'_>,
    max: u32,
    what: &'static str,
) -> Result<Vec<u8>, DecodeError> {
    let bytes = r.opaque(max, what)?.to_vec();
    if bytes.is_empty() {
        return Err(DecodeError::Invalid {
            what,
            reason: "empty",
        });
    }
    Ok(bytes)
}

/// `opaque relay_url<1..2048>`, UTF-8.
fn relay_url(r: &mut Reader<'_>, what: &'static str) -> Result<String, DecodeError> {
    let url = r.string(MAX_URL, what)?;
    if url.is_empty() {
        return Err(DecodeError::Invalid {
            what,
            reason: "empty",
        });
    }
    Ok(url)
}

/// `opaque key_package<1..65536>`.
fn key_package(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<u8>, DecodeError> {
    nonempty_opaque(r, 65_536, what)
}

fn version(r: &mut Reader<'_>, what: &'static str) -> Result<(), DecodeError> {
    match r.u8(what)? {
        VERSION => Ok(()),
        tag => Err(DecodeError::UnknownTag { what, tag }),
    }
}

/// `Envelope` (inbox-v1.md §3, pair-v1.md §3): one relay message, before
/// padding.
///
/// ```text
/// struct { u8 version = 1; u8 kind; opaque body<0..262144>; } Envelope;
/// kind 1 = welcome (InboxV1 Hello: an MLS Welcome), 2 = mls (an MLS message),
///      3 = join request, 4 = group welcome (group-v1.md §6: sealed
///      JoinRequest / GroupWelcome on a group invitation's inbox channel),
///      5 = mls blob (group-v1.md §6.5: an MlsBlobRef naming a group
///      commit too large for one message), 6 = contact request
///      (address-v1.md §3: a ContactRequest sealed to an address's key)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// An MLS Welcome: the first message of a conversation.
    Welcome(Vec<u8>),
    /// Any other MLS message of the conversation's group.
    Mls(Vec<u8>),
    /// A sealed [`JoinRequest`].
    JoinRequest(Vec<u8>),
    /// A sealed [`GroupWelcome`].
    GroupWelcome(Vec<u8>),
    /// A group commit too large for one message, stored as a blob.
    MlsBlob(MlsBlobRef),
    /// A [`ContactRequest`] sealed to a contact address's key.
    ContactRequest(Vec<u8>),
}

impl Codec for Envelope {
    fn encode(&self, w: &mut Writer) {
        w.u8(VERSION);
        let (kind, body) = match self {
            Self::Welcome(b) => (1, b.as_slice()),
            Self::Mls(b) => (2, b.as_slice()),
            Self::JoinRequest(b) => (3, b.as_slice()),
            Self::GroupWelcome(b) => (4, b.as_slice()),
            Self::ContactRequest(b) => (6, b.as_slice()),
            Self::MlsBlob(reference) => {
                w.u8(5);
                w.opaque(&reference.to_bytes());
                return;
            }
        };
        w.u8(kind);
        w.opaque(body);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        version(r, "envelope.version")?;
        let kind = r.u8("envelope.kind")?;
        let body = r.opaque(MAX_MLS, "envelope.body")?.to_vec();
        match kind {
            1 => Ok(Self::Welcome(body)),
            2 => Ok(Self::Mls(body)),
            3 => Ok(Self::JoinRequest(body)),
            4 => Ok(Self::GroupWelcome(body)),
            5 => Ok(Self::MlsBlob(MlsBlobRef::from_bytes(&body)?)),
            6 => Ok(Self::ContactRequest(body)),
            tag => Err(DecodeError::UnknownTag {
                what: "envelope.kind",
                tag,
            }),
        }
    }
}

/// `ChannelGrant` (pair-v1.md §4): a channel on some relay and a capability
/// key that may read and write it. `key` is an Ed25519 seed: a secret.
///
/// ```text
/// struct { opaque relay_url<1..2048>; RelayId relay_id; WriteId write_id;
///          ReadId read_id; opaque key[32]; } ChannelGrant;
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelGrant {
    pub relay_url: String,
    pub relay_id: RelayId,
    pub write_id: WriteId,
    pub read_id: ReadId,
    pub key: [u8; 32],
}

impl std::fmt::Debug for ChannelGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelGrant")
            .field("relay_url", &self.relay_url)
            .field("write_id", &self.write_id)
            .field("read_id", &self.read_id)
            .field("key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl Drop for ChannelGrant {
    fn drop(&mut self) {
        // A capability: do not leave it in freed memory.
        self.key.zeroize();
    }
}

impl Codec for ChannelGrant {
    fn encode(&self, w: &mut Writer) {
        w.string(&self.relay_url);
        self.relay_id.encode(w);
        self.write_id.encode(w);
        self.read_id.encode(w);
        w.raw(&self.key);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let relay_url = relay_url(r, "channel_grant.relay_url")?;
        Ok(Self {
            relay_url,
            relay_id: RelayId::decode(r)?,
            write_id: WriteId::decode(r)?,
            read_id: ReadId::decode(r)?,
            key: r.array("channel_grant.key")?,
        })
    }
}

/// `Invitation` (inbox-v1.md §2): what a one-time link's blob holds, sealed.
///
/// ```text
/// struct { u8 version = 1; ChannelGrant channel; opaque key_package<1..65536>;
///          opaque display_name<0..256>; u64 expires_at_ms; } Invitation;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub channel: ChannelGrant,
    pub key_package: Vec<u8>,
    pub display_name: String,
    pub expires_at_ms: u64,
}

impl Codec for Invitation {
    fn encode(&self, w: &mut Writer) {
        w.u8(VERSION);
        self.channel.encode(w);
        w.opaque(&self.key_package);
        w.string(&self.display_name);
        w.u64(self.expires_at_ms);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        version(r, "invitation.version")?;
        let channel = ChannelGrant::decode(r)?;
        let key_package = key_package(r, "invitation.key_package")?;
        Ok(Self {
            channel,
            key_package,
            display_name: r.string(MAX_NAME, "invitation.display_name")?,
            expires_at_ms: r.u64("invitation.expires_at_ms")?,
        })
    }
}

/// The most bytes of a contact request's note.
pub const MAX_REQUEST_NOTE: u32 = 1024;

/// `ContactRequest` (address-v1.md §3): what someone who opened a contact
/// address sends its owner, sealed to the address's key. It is an
/// [`Invitation`] the owner may accept, with a note.
///
/// ```text
/// struct { u8 version = 1; ChannelGrant channel; opaque key_package<1..65536>;
///          opaque display_name<0..256>; opaque note<0..1024>;
///          u64 expires_at_ms; } ContactRequest;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRequest {
    pub channel: ChannelGrant,
    pub key_package: Vec<u8>,
    pub display_name: String,
    pub note: String,
    pub expires_at_ms: u64,
}

impl Codec for ContactRequest {
    fn encode(&self, w: &mut Writer) {
        w.u8(VERSION);
        self.channel.encode(w);
        w.opaque(&self.key_package);
        w.string(&self.display_name);
        w.string(&self.note);
        w.u64(self.expires_at_ms);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        version(r, "contact_request.version")?;
        let channel = ChannelGrant::decode(r)?;
        let key_package = key_package(r, "contact_request.key_package")?;
        Ok(Self {
            channel,
            key_package,
            display_name: r.string(MAX_NAME, "contact_request.display_name")?,
            note: r.string(MAX_REQUEST_NOTE, "contact_request.note")?,
            expires_at_ms: r.u64("contact_request.expires_at_ms")?,
        })
    }
}

/// `PairFrame` (pair-v1.md §4): the plaintext of one MLS application
/// message in a 1:1 conversation.
///
/// ```text
/// struct { u8 version = 1; u8 tag; select (tag) {
///   case 1 text:    opaque message_id[16]; u64 sent_at_ms; opaque text<0..200000>;
///   case 2 profile: opaque display_name<0..256>;
///   case 3 channel: ChannelGrant grant;
///   case 4 key_package: opaque key_package<1..65536>;
///   case 5 group_invite: GroupWelcome invite;
///   case 6 channel_move: ChannelMove move;
///   case 7 introduction: Introduction introduction;
///   case 8 content: opaque message_id[16]; u64 sent_at_ms; u16 content_type;
///                   bool critical; opaque fallback<0..200000>; opaque body<0..262144>;
///   case 9 member_tags: opaque tags[32]<0..1024>;
///   case 10 capabilities: opaque media_types<1..255><0..64>;
///                         opaque features<1..255><0..64>;
///   case 11 link: LinkProof proof;
///   case 12 attestation: Attestation attestation;   /* directory-v1.md §4 */
/// } } PairFrame;
/// ```
///
/// Tags 1 and 8 are content (what people see); the others are control.
/// GroupV1 uses tags 1, 2, 6, 8, 9 and 10 only (group-v1.md §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairFrame {
    /// A text message; `message_id` is chosen by the sender and is what
    /// receivers de-duplicate on.
    Text {
        message_id: [u8; 16],
        sent_at_ms: u64,
        text: String,
    },
    /// The name the sender shows to this contact.
    Profile { display_name: String },
    /// Another channel of this conversation, hosted by the sender's relay.
    Channel(ChannelGrant),
    /// A key package, with a fresh identity, that the receiver may use once
    /// to add the sender to a group (group-v1.md §6).
    KeyPackage(Vec<u8>),
    /// The receiver was added to a group with its spare key package.
    GroupInvite(GroupWelcome),
    /// The sender moved a channel it hosts (a move, a rotation, an unblock).
    Move(ChannelMove),
    /// A step of a double opt-in introduction (introduction-v1.md).
    Introduction(Introduction),
    /// Content of a kind named by `content_type` (pair-v1.md §4.1), with
    /// the plain text a receiver that does not know the kind shows instead.
    Content(Content),
    /// A group member's recognition tags, sent once it joined
    /// (group-v1.md §7.1).
    MemberTags(Vec<[u8; 32]>),
    /// What the sender shows and does (content-v1.md §8.1), sent again
    /// whenever that changes.
    Capabilities {
        media_types: Vec<String>,
        features: Vec<String>,
    },
    /// The sender reveals that another of its identity keys is its own
    /// (pair-v1.md §12).
    Link(LinkProof),
    /// The sender shows a directory's attestation about its identity key
    /// (directory-v1.md §4).
    Attestation(crate::dir::Attestation),
}

/// `LinkProof` (pair-v1.md §12): two identity keys (Ed25519) of one
/// person, each signing the statement that both are theirs.
///
/// ```text
/// struct { opaque key_a[32]; opaque key_b[32]; u64 made_at_ms;
///          opaque signature_a[64]; opaque signature_b[64]; } LinkProof;
/// signed = "kith link v1" || 0x00 || key_a || key_b || made_at_ms (u64)
/// ```
///
/// `key_a` is the sender's key in the conversation that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkProof {
    pub key_a: [u8; 32],
    pub key_b: [u8; 32],
    pub made_at_ms: u64,
    pub signature_a: [u8; 64],
    pub signature_b: [u8; 64],
}

impl LinkProof {
    /// What both keys sign.
    pub fn statement(key_a: &[u8; 32], key_b: &[u8; 32], made_at_ms: u64) -> Vec<u8> {
        let mut m = Vec::with_capacity(13 + 72);
        m.extend_from_slice(b"kith link v1\0");
        m.extend_from_slice(key_a);
        m.extend_from_slice(key_b);
        m.extend_from_slice(&made_at_ms.to_be_bytes());
        m
    }
}

impl Codec for LinkProof {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.key_a);
        w.raw(&self.key_b);
        w.u64(self.made_at_ms);
        w.raw(&self.signature_a);
        w.raw(&self.signature_b);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            key_a: r.array("link.key_a")?,
            key_b: r.array("link.key_b")?,
            made_at_ms: r.u64("link.made_at_ms")?,
            signature_a: r.array("link.signature_a")?,
            signature_b: r.array("link.signature_b")?,
        })
    }
}

/// Most media types, or features, one member advertises.
pub const MAX_CAPABILITIES: u32 = 64;
/// Longest advertised media type or feature.
pub const MAX_CAPABILITY: u32 = 255;

fn capability_list(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<String>, DecodeError> {
    r.vec(MAX_CAPABILITIES, what, |r| {
        let s = r.string(MAX_CAPABILITY, what)?;
        if s.is_empty() {
            return Err(DecodeError::Invalid {
                what,
                reason: "an empty media type or feature",
            });
        }
        Ok(s)
    })
}

/// The most bytes of a content frame's body.
pub const MAX_CONTENT_BODY: u32 = 262_144;

/// A content frame (pair-v1.md §4.1): how later kinds of content (rich
/// text, mail, files, reactions, …) travel, so that a receiver that does
/// not know a kind shows its `fallback` rather than refusing the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// Chosen by the sender; what receivers de-duplicate on.
    pub message_id: [u8; 16],
    pub sent_at_ms: u64,
    /// What `body` is; the registry is in pair-v1.md §4.1.
    pub content_type: u16,
    /// Only a receiver that knows `content_type` may show this message as
    /// meant; one that does not shows `fallback` marked as needing a newer
    /// kith.
    pub critical: bool,
    /// Plain text for a receiver that does not know `content_type`.
    pub fallback: String,
    pub body: Vec<u8>,
}

impl Codec for PairFrame {
    fn encode(&self, w: &mut Writer) {
        w.u8(VERSION);
        match self {
            Self::Text {
                message_id,
                sent_at_ms,
                text,
            } => {
                w.u8(1);
                w.raw(message_id);
                w.u64(*sent_at_ms);
                w.string(text);
            }
            Self::Profile { display_name } => {
                w.u8(2);
                w.string(display_name);
            }
            Self::Channel(grant) => {
                w.u8(3);
                grant.encode(w);
            }
            Self::KeyPackage(kp) => {
                w.u8(4);
                w.opaque(kp);
            }
            Self::GroupInvite(invite) => {
                w.u8(5);
                invite.encode(w);
            }
            Self::Move(m) => {
                w.u8(6);
                m.encode(w);
            }
            Self::Introduction(i) => {
                w.u8(7);
                i.encode(w);
            }
            Self::Content(c) => {
                w.u8(8);
                w.raw(&c.message_id);
                w.u64(c.sent_at_ms);
                w.u16(c.content_type);
                w.bool(c.critical);
                w.string(&c.fallback);
                w.opaque(&c.body);
            }
            Self::MemberTags(tags) => {
                w.u8(9);
                w.vec(tags, |w, t| w.raw(t));
            }
            Self::Capabilities {
                media_types,
                features,
            } => {
                w.u8(10);
                w.vec(media_types, |w, t| w.string(t));
                w.vec(features, |w, t| w.string(t));
            }
            Self::Link(proof) => {
                w.u8(11);
                proof.encode(w);
            }
            Self::Attestation(attestation) => {
                w.u8(12);
                attestation.encode(w);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        version(r, "pair_frame.version")?;
        match r.u8("pair_frame.tag")? {
            1 => Ok(Self::Text {
                message_id: r.array("pair_frame.message_id")?,
                sent_at_ms: r.u64("pair_frame.sent_at_ms")?,
                text: r.string(MAX_TEXT, "pair_frame.text")?,
            }),
            2 => Ok(Self::Profile {
                display_name: r.string(MAX_NAME, "pair_frame.display_name")?,
            }),
            3 => Ok(Self::Channel(ChannelGrant::decode(r)?)),
            4 => Ok(Self::KeyPackage(key_package(r, "pair_frame.key_package")?)),
            5 => Ok(Self::GroupInvite(GroupWelcome::decode(r)?)),
            6 => Ok(Self::Move(ChannelMove::decode(r)?)),
            7 => Ok(Self::Introduction(Introduction::decode(r)?)),
            8 => Ok(Self::Content(Content {
                message_id: r.array("content.message_id")?,
                sent_at_ms: r.u64("content.sent_at_ms")?,
                content_type: r.u16("content.content_type")?,
                critical: r.bool("content.critical")?,
                fallback: r.string(MAX_TEXT, "content.fallback")?,
                body: r.opaque(MAX_CONTENT_BODY, "content.body")?.to_vec(),
            })),
            9 => Ok(Self::MemberTags(member_tags(r, "pair_frame.member_tags")?)),
            10 => Ok(Self::Capabilities {
                media_types: capability_list(r, "capabilities.media_types")?,
                features: capability_list(r, "capabilities.features")?,
            }),
            11 => Ok(Self::Link(LinkProof::decode(r)?)),
            12 => Ok(Self::Attestation(crate::dir::Attestation::decode(r)?)),
            tag => Err(DecodeError::UnknownTag {
                what: "pair_frame.tag",
                tag,
            }),
        }
    }
}

/// Version of [`GroupWelcome`]: 2 since the ratchet tree and roster moved
/// out of it into [`GroupState`] (group-v1.md §6.3).
pub const GROUP_WELCOME_VERSION: u8 = 2;

/// `GroupWelcome` (group-v1.md §6): how a new member learns its group — its
/// own MLS Welcome, the group's channel with the member's own capability
/// key, the group's name, where the group's state for this epoch is
/// published, and where on the channel the member starts reading.
///
/// ```text
/// struct { u8 version = 2; opaque group_name<0..256>; ChannelGrant channel;
///          opaque welcome<1..262144>; GroupStateRef state; u64 from_seq; } GroupWelcome;
/// ```
///
/// `from_seq` is the channel sequence number of the commit that adds the
/// member: it reads what comes after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupWelcome {
    pub group_name: String,
    pub channel: ChannelGrant,
    pub welcome: Vec<u8>,
    pub state: GroupStateRef,
    pub from_seq: u64,
}

impl Codec for GroupWelcome {
    fn encode(&self, w: &mut Writer) {
        w.u8(GROUP_WELCOME_VERSION);
        w.string(&self.group_name);
        self.channel.encode(w);
        w.opaque(&self.welcome);
        self.state.encode(w);
        w.u64(self.from_seq);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8("group_welcome.version")? {
            GROUP_WELCOME_VERSION => {}
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "group_welcome.version",
                    tag,
                });
            }
        }
        Ok(Self {
            group_name: r.string(MAX_NAME, "group_welcome.group_name")?,
            channel: ChannelGrant::decode(r)?,
            welcome: nonempty_opaque(r, MAX_MLS, "group_welcome.welcome")?,
            state: GroupStateRef::decode(r)?,
            from_seq: r.u64("group_welcome.from_seq")?,
        })
    }
}

/// `GroupStateRef` (group-v1.md §6.3): a blob on the group channel's relay
/// holding one epoch's [`GroupState`], sealed with `key` (context
/// `"kith group state v1"`). `key` is a secret.
///
/// ```text
/// struct { opaque blob_id[32]; u32 chunk_size; u32 chunk_count;
///          u32 length; opaque key[32]; } GroupStateRef;
/// ```
///
/// The blob is `chunk_count` chunks of `chunk_size` bytes (a size bucket;
/// 262,144 when there is more than one chunk); its first `length` bytes
/// are the sealed state, the rest zeros.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupStateRef {
    pub blob_id: [u8; 32],
    pub chunk_size: u32,
    pub chunk_count: u32,
    pub length: u32,
    pub key: [u8; 32],
}

/// Most chunks a group's state blob may take (64 MiB).
pub const MAX_STATE_CHUNKS: u32 = 256;

impl std::fmt::Debug for GroupStateRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupStateRef")
            .field("chunk_size", &self.chunk_size)
            .field("chunk_count", &self.chunk_count)
            .field("length", &self.length)
            .field("key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl Drop for GroupStateRef {
    fn drop(&mut self) {
        self.key.zeroize();
        self.blob_id.zeroize();
    }
}

impl Codec for GroupStateRef {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.blob_id);
        w.u32(self.chunk_size);
        w.u32(self.chunk_count);
        w.u32(self.length);
        w.raw(&self.key);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let span = BlobSpan::decode(r, "group_state_ref", MAX_STATE_CHUNKS)?;
        Ok(Self {
            blob_id: span.blob_id,
            chunk_size: span.chunk_size,
            chunk_count: span.chunk_count,
            length: span.length,
            key: r.array("group_state_ref.key")?,
        })
    }
}

/// Where a blob's bytes are (group-v1.md §6.3): `chunk_count` chunks of
/// `chunk_size` bytes (a size bucket; 262,144 when there is more than one
/// chunk) whose first `length` bytes are the content, the rest zeros.
/// Shared by the references to a group's state and to a large commit.
struct BlobSpan {
    blob_id: [u8; 32],
    chunk_size: u32,
    chunk_count: u32,
    length: u32,
}

impl BlobSpan {
    fn decode(
        r: &mut Reader<'_>,
        what: &'static str,
        max_chunks: u32,
    ) -> Result<Self, DecodeError> {
        let blob_id = r.array(what)?;
        let chunk_size = r.u32(what)?;
        let chunk_count = r.u32(what)?;
        let length = r.u32(what)?;
        let invalid = |reason| DecodeError::Invalid { what, reason };
        if !crate::relay::SIZE_BUCKETS.contains(&chunk_size) {
            return Err(invalid("chunk_size is not a size bucket"));
        }
        if chunk_count == 0 || chunk_count > max_chunks {
            return Err(invalid("chunk_count out of range"));
        }
        if chunk_count > 1 && chunk_size != crate::relay::MAX_PAYLOAD {
            return Err(invalid("a blob of several chunks uses the largest bucket"));
        }
        if length == 0 || u64::from(length) > u64::from(chunk_size) * u64::from(chunk_count) {
            return Err(invalid("length does not fit the chunks"));
        }
        Ok(Self {
            blob_id,
            chunk_size,
            chunk_count,
            length,
        })
    }
}

/// Most chunks a commit blob may take (16 MiB).
pub const MAX_COMMIT_CHUNKS: u32 = 64;

/// `MlsBlobRef` (group-v1.md §6.5): a group commit too large for one relay
/// message, stored as a blob on the group's channel. The commit is an MLS
/// `PrivateMessage`, so the blob needs no sealing of its own; `sha256`
/// binds the message to its bytes.
///
/// ```text
/// struct { opaque blob_id[32]; u32 chunk_size; u32 chunk_count;
///          u32 length; opaque sha256[32]; } MlsBlobRef;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlsBlobRef {
    pub blob_id: [u8; 32],
    pub chunk_size: u32,
    pub chunk_count: u32,
    pub length: u32,
    pub sha256: [u8; 32],
}

impl Codec for MlsBlobRef {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.blob_id);
        w.u32(self.chunk_size);
        w.u32(self.chunk_count);
        w.u32(self.length);
        w.raw(&self.sha256);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let span = BlobSpan::decode(r, "mls_blob_ref", MAX_COMMIT_CHUNKS)?;
        Ok(Self {
            blob_id: span.blob_id,
            chunk_size: span.chunk_size,
            chunk_count: span.chunk_count,
            length: span.length,
            sha256: r.array("mls_blob_ref.sha256")?,
        })
    }
}

/// Longest ratchet tree a [`GroupState`] carries.
pub const MAX_TREE: u32 = 64 << 20;

/// `GroupState` (group-v1.md §6.3): what a member joining in one epoch
/// needs beside its Welcome, published once for all of them — the MLS
/// ratchet tree of the epoch and what the admin knows of the members.
///
/// ```text
/// struct { u8 version = 1; opaque ratchet_tree<1..67108864>;
///          MemberEntry roster<0..100000>; } GroupState;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    pub ratchet_tree: Vec<u8>,
    pub roster: Vec<MemberEntry>,
}

impl Codec for GroupState {
    fn encode(&self, w: &mut Writer) {
        w.u8(VERSION);
        w.opaque(&self.ratchet_tree);
        w.vec(&self.roster, |w, m| m.encode(w));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        version(r, "group_state.version")?;
        Ok(Self {
            ratchet_tree: nonempty_opaque(r, MAX_TREE, "group_state.ratchet_tree")?,
            roster: r.vec(MAX_MEMBERS, "group_state.roster", MemberEntry::decode)?,
        })
    }
}

/// `GroupInvitation` (group-v1.md §6): the sealed blob behind a group's
/// one-time link. `inbox` is a channel on which the accepter asks to join
/// and the admin answers.
///
/// ```text
/// struct { u8 version = 1; ChannelGrant inbox; opaque group_name<0..256>;
///          opaque inviter_name<0..256>; u64 expires_at_ms; } GroupInvitation;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInvitation {
    pub inbox: ChannelGrant,
    pub group_name: String,
    pub inviter_name: String,
    pub expires_at_ms: u64,
}

impl Codec for GroupInvitation {
    fn encode(&self, w: &mut Writer) {
        w.u8(VERSION);
        self.inbox.encode(w);
        w.string(&self.group_name);
        w.string(&self.inviter_name);
        w.u64(self.expires_at_ms);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        version(r, "group_invitation.version")?;
        Ok(Self {
            inbox: ChannelGrant::decode(r)?,
            group_name: r.string(MAX_NAME, "group_invitation.group_name")?,
            inviter_name: r.string(MAX_NAME, "group_invitation.inviter_name")?,
            expires_at_ms: r.u64("group_invitation.expires_at_ms")?,
        })
    }
}

/// Version of [`JoinRequest`]: 2 since it carries the joiner's recognition
/// tags (group-v1.md §7.1).
pub const JOIN_REQUEST_VERSION: u8 = 2;

/// `JoinRequest` (group-v1.md §6.2): what someone who opened a group's link
/// writes on its inbox, sealed — a key package, the name they show, and
/// their recognition tags for the member key of that key package.
///
/// ```text
/// struct { u8 version = 2; opaque key_package<1..65536>;
///          opaque display_name<0..256>; opaque tags[32]<0..1024>; } JoinRequest;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    pub key_package: Vec<u8>,
    pub display_name: String,
    pub tags: Vec<[u8; 32]>,
}

impl Codec for JoinRequest {
    fn encode(&self, w: &mut Writer) {
        w.u8(JOIN_REQUEST_VERSION);
        w.opaque(&self.key_package);
        w.string(&self.display_name);
        w.vec(&self.tags, |w, t| w.raw(t));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8("join_request.version")? {
            JOIN_REQUEST_VERSION => {}
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "join_request.version",
                    tag,
                });
            }
        }
        Ok(Self {
            key_package: key_package(r, "join_request.key_package")?,
            display_name: r.string(MAX_NAME, "join_request.display_name")?,
            tags: member_tags(r, "join_request.tags")?,
        })
    }
}

/// Most members a roster or a commit's key list may name.
pub const MAX_MEMBERS: u32 = 100_000;

/// `MemberEntry` (group-v1.md §7): a member by MLS identity key, the name
/// it is known by, its capability key on the group's channel, and the
/// recognition tags it published (group-v1.md §7.1; empty until it did).
///
/// ```text
/// struct { opaque identity_key<1..256>; opaque display_name<0..256>;
///          opaque capability_key[32]; opaque tags[32]<0..1024>; } MemberEntry;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEntry {
    pub identity_key: Vec<u8>,
    pub display_name: String,
    pub capability_key: [u8; 32],
    pub tags: Vec<[u8; 32]>,
}

/// Most recognition tags one group member publishes (group-v1.md §7.1).
pub const MAX_MEMBER_TAGS: u32 = 1024;

fn member_tags(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<[u8; 32]>, DecodeError> {
    r.vec(MAX_MEMBER_TAGS, what, |r| r.array(what))
}

impl Codec for MemberEntry {
    fn encode(&self, w: &mut Writer) {
        w.opaque(&self.identity_key);
        w.string(&self.display_name);
        w.raw(&self.capability_key);
        w.vec(&self.tags, |w, t| w.raw(t));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            identity_key: nonempty_opaque(r, 256, "member_entry.identity_key")?,
            display_name: r.string(MAX_NAME, "member_entry.display_name")?,
            capability_key: r.array("member_entry.capability_key")?,
            tags: member_tags(r, "member_entry.tags")?,
        })
    }
}

/// `CommitKeys` (group-v1.md §7): sealed into a commit's authenticated
/// data — the entries of the members the commit adds, and the new
/// capability rights of admins it names.
///
/// ```text
/// struct { u8 version = 1; MemberEntry added<0..100000>; } CommitKeys;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitKeys {
    pub added: Vec<MemberEntry>,
}

impl Codec for CommitKeys {
    fn encode(&self, w: &mut Writer) {
        w.u8(VERSION);
        w.vec(&self.added, |w, m| m.encode(w));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        version(r, "commit_keys.version")?;
        Ok(Self {
            added: r.vec(MAX_MEMBERS, "commit_keys.added", MemberEntry::decode)?,
        })
    }
}

/// Most channels one move may retire.
pub const MAX_RETIRED: u32 = 64;

/// `ChannelMove` (pair-v1.md §8, group-v1.md §11): the sender now hosts the
/// conversation on a new channel; the channels in `retire` will be deleted
/// once drained. `key` is a fresh capability seed for the receiver (1:1);
/// absent, the receiver keeps the key it has (groups, where the host
/// registers every member's public key on the new channel).
///
/// ```text
/// struct { opaque relay_url<1..2048>; RelayId relay_id; WriteId write_id;
///          ReadId read_id; optional<opaque key[32]> key;
///          WriteId retire<0..64>; } ChannelMove;
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelMove {
    pub relay_url: String,
    pub relay_id: RelayId,
    pub write_id: WriteId,
    pub read_id: ReadId,
    pub key: Option<[u8; 32]>,
    pub retire: Vec<WriteId>,
}

impl std::fmt::Debug for ChannelMove {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelMove")
            .field("relay_url", &self.relay_url)
            .field("write_id", &self.write_id)
            .field("read_id", &self.read_id)
            .field("key", &self.key.map(|_| "[redacted]"))
            .field("retire", &self.retire)
            .finish()
    }
}

impl Drop for ChannelMove {
    fn drop(&mut self) {
        if let Some(key) = self.key.as_mut() {
            key.zeroize();
        }
    }
}

impl Codec for ChannelMove {
    fn encode(&self, w: &mut Writer) {
        w.string(&self.relay_url);
        self.relay_id.encode(w);
        self.write_id.encode(w);
        self.read_id.encode(w);
        w.optional(self.key.as_ref(), |w, k| w.raw(k));
        w.vec(&self.retire, |w, id| id.encode(w));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let relay_url = relay_url(r, "channel_move.relay_url")?;
        Ok(Self {
            relay_url,
            relay_id: RelayId::decode(r)?,
            write_id: WriteId::decode(r)?,
            read_id: ReadId::decode(r)?,
            key: r.optional("channel_move.key", |r| r.array("channel_move.key"))?,
            retire: r.vec(MAX_RETIRED, "channel_move.retire", WriteId::decode)?,
        })
    }
}

/// Longest note an introducer adds.
pub const MAX_NOTE: u32 = 4096;
/// Most recognition tags one answer carries.
pub const MAX_TAGS: u32 = 4096;

/// `Introduction` (introduction-v1.md §2): one step of a double opt-in
/// introduction, all steps of one introduction sharing `intro_id`.
///
/// ```text
/// struct {
///     opaque intro_id[16];
///     u8 step;
///     select (step) {
///         case 1 offer:   opaque peer_name<0..256>; opaque note<0..4096>;
///                         bool creates; u64 expires_at_ms;
///         case 2 answer:  opaque key_package<0..65536>;   /* empty: declined */
///                         opaque tags[32]<0..4096>;
///         case 3 matched: opaque peer_key_package<1..65536>;
///                         opaque peer_tags[32]<0..4096>;
///         case 4 welcome: opaque welcome<1..262144>; opaque sealed_channel<1..4096>;
///         case 5 closed:  struct {};
///     };
/// } Introduction;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introduction {
    pub intro_id: [u8; 16],
    pub step: IntroStep,
}

/// The steps of an [`Introduction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntroStep {
    /// Introducer → each side: would you like to meet `peer_name`?
    Offer {
        peer_name: String,
        note: String,
        /// This side creates the new conversation once both accept.
        creates: bool,
        expires_at_ms: u64,
    },
    /// Side → introducer: a key package for the new conversation and
    /// recognition tags (accept), or nothing (decline).
    Answer {
        key_package: Vec<u8>,
        tags: Vec<[u8; 32]>,
    },
    /// Introducer → each side, once both accepted: the other side's answer.
    Matched {
        peer_key_package: Vec<u8>,
        peer_tags: Vec<[u8; 32]>,
    },
    /// Creator → introducer → joiner: the new conversation's MLS Welcome and
    /// its channel, sealed with a secret of the new group.
    Welcome {
        welcome: Vec<u8>,
        sealed_channel: Vec<u8>,
    },
    /// The introduction will not happen (declined, refused or expired).
    Closed,
}

impl Codec for Introduction {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.intro_id);
        match &self.step {
            IntroStep::Offer {
                peer_name,
                note,
                creates,
                expires_at_ms,
            } => {
                w.u8(1);
                w.string(peer_name);
                w.string(note);
                w.bool(*creates);
                w.u64(*expires_at_ms);
            }
            IntroStep::Answer { key_package, tags } => {
                w.u8(2);
                w.opaque(key_package);
                w.vec(tags, |w, t| w.raw(t));
            }
            IntroStep::Matched {
                peer_key_package,
                peer_tags,
            } => {
                w.u8(3);
                w.opaque(peer_key_package);
                w.vec(peer_tags, |w, t| w.raw(t));
            }
            IntroStep::Welcome {
                welcome,
                sealed_channel,
            } => {
                w.u8(4);
                w.opaque(welcome);
                w.opaque(sealed_channel);
            }
            IntroStep::Closed => w.u8(5),
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let intro_id = r.array("introduction.intro_id")?;
        let tag = |r: &mut Reader<'_>| r.array("introduction.tag");
        let step = match r.u8("introduction.step")? {
            1 => IntroStep::Offer {
                peer_name: r.string(MAX_NAME, "introduction.peer_name")?,
                note: r.string(MAX_NOTE, "introduction.note")?,
                creates: r.bool("introduction.creates")?,
                expires_at_ms: r.u64("introduction.expires_at_ms")?,
            },
            2 => IntroStep::Answer {
                key_package: r.opaque(65_536, "introduction.key_package")?.to_vec(),
                tags: r.vec(MAX_TAGS, "introduction.tags", tag)?,
            },
            3 => IntroStep::Matched {
                peer_key_package: key_package(r, "introduction.peer_key_package")?,
                peer_tags: r.vec(MAX_TAGS, "introduction.peer_tags", tag)?,
            },
            4 => IntroStep::Welcome {
                welcome: nonempty_opaque(r, MAX_MLS, "introduction.welcome")?,
                sealed_channel: nonempty_opaque(r, 4096, "introduction.sealed_channel")?,
            },
            5 => IntroStep::Closed,
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "introduction.step",
                    tag,
                });
            }
        };
        Ok(Self { intro_id, step })
    }
}
