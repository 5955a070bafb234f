//! The bytes of conversations: what a client puts inside a relay message
//! (after padding) and inside MLS application data. Specified in
//! `docs/spec/inbox-v1.md` and `docs/spec/pair-v1.md`; each type names the
//! struct it implements.

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
/// kind 1 = welcome (InboxV1 Hello: an MLS Welcome), 2 = mls (an MLS message)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// An MLS Welcome: the first message of a conversation.
    Welcome(Vec<u8>),
    /// Any other MLS message of the conversation's group.
    Mls(Vec<u8>),
}

impl Codec for Envelope {
    fn encode(&self, w: &mut Writer) {
        w.u8(VERSION);
        let (kind, body) = match self {
            Self::Welcome(b) => (1, b),
            Self::Mls(b) => (2, b),
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
        let relay_url = r.string(MAX_URL, "channel_grant.relay_url")?;
        if relay_url.is_empty() {
            return Err(DecodeError::Invalid {
                what: "channel_grant.relay_url",
                reason: "empty",
            });
        }
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
        let key_package = r.opaque(65_536, "invitation.key_package")?.to_vec();
        if key_package.is_empty() {
            return Err(DecodeError::Invalid {
                what: "invitation.key_package",
                reason: "empty",
            });
        }
        Ok(Self {
            channel,
            key_package,
            display_name: r.string(MAX_NAME, "invitation.display_name")?,
            expires_at_ms: r.u64("invitation.expires_at_ms")?,
        })
    }
}

/// `PairFrame` (pair-v1.md §5): the plaintext of one MLS application
/// message in a 1:1 conversation.
///
/// ```text
/// struct { u8 version = 1; u8 tag; select (tag) {
///   case 1 text:    opaque message_id[16]; u64 sent_at_ms; opaque text<0..200000>;
///   case 2 profile: opaque display_name<0..256>;
///   case 3 channel: ChannelGrant grant;
/// } } PairFrame;
/// ```
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
            tag => Err(DecodeError::UnknownTag {
                what: "pair_frame.tag",
                tag,
            }),
        }
    }
}
