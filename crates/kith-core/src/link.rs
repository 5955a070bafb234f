//! One-time invitation links (`docs/spec/inbox-v1.md` §2) and contact
//! addresses (`docs/spec/address-v1.md` §2).
//!
//! ```text
//! https form:  <relay URL>/i/<blob id, base64url>#<seal key, base64url>
//!              <relay URL>/a/<write id, base64url>#<base64url(secret || box public key)>
//! kith form:   kith:<https form>
//! ```
//!
//! The fragment (after `#`) is never sent to a server by browsers or by
//! kith: the relay holding the blob cannot open it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kith_crypto::seal::SealKey;
use kith_wire::relay::{BlobId, WriteId};

use crate::error::{CoreError, Result};

/// What the link's secret derives the claim key from (inbox-v1.md §2).
const CLAIM_CONTEXT: &[u8] = b"kith invitation claim v1";

/// The key that claims (and so consumes) the read-once blob behind a link
/// sealed with `secret`: the relay stores its public half, and consumes the
/// blob only for a fetch signed by it. Whoever lacks the fragment (a typo,
/// a log line, a link preview) uses nothing up.
pub(crate) fn claim_key(secret: &SealKey) -> Result<ed25519_dalek::SigningKey> {
    let seed = secret.derive(CLAIM_CONTEXT)?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

/// A parsed invitation link.
#[derive(Debug)]
pub struct InviteLink {
    pub relay_url: String,
    pub blob_id: BlobId,
    pub key: SealKey,
}

impl InviteLink {
    /// The https (or http, for a relay without TLS) form.
    pub fn web(&self) -> String {
        format!(
            "{}/i/{}#{}",
            self.relay_url.trim_end_matches('/'),
            URL_SAFE_NO_PAD.encode(self.blob_id.0),
            URL_SAFE_NO_PAD.encode(self.key.as_bytes())
        )
    }

    /// The `kith:` form, which opens the app.
    pub fn kith(&self) -> String {
        format!("kith:{}", self.web())
    }

    pub fn parse(link: &str) -> Result<Self> {
        let (relay_url, blob, fragment) = split(link, "/i/", "no '/i/' part")?;
        let blob_id = decode32(blob).ok_or(CoreError::BadLink("malformed invitation id"))?;
        let key = decode32(fragment).ok_or(CoreError::BadLink("malformed key"))?;
        Ok(Self {
            relay_url: relay_url.to_string(),
            blob_id: BlobId(blob_id),
            key: SealKey::from_bytes(key),
        })
    }
}

/// What an address's secret derives its guest key's seed from
/// (address-v1.md §2).
const ADDRESS_KEY_CONTEXT: &[u8] = b"kith address key v1";

/// A parsed contact address link: where requests go, the key that may
/// write them there (derived from `secret`), and the key they are sealed
/// to.
#[derive(Debug)]
pub struct AddressLink {
    pub relay_url: String,
    pub write_id: WriteId,
    pub secret: SealKey,
    pub box_public: [u8; 32],
}

impl AddressLink {
    /// The https (or http) form.
    pub fn web(&self) -> String {
        let mut fragment = [0u8; 64];
        fragment[..32].copy_from_slice(self.secret.as_bytes());
        fragment[32..].copy_from_slice(&self.box_public);
        format!(
            "{}/a/{}#{}",
            self.relay_url.trim_end_matches('/'),
            URL_SAFE_NO_PAD.encode(self.write_id.0),
            URL_SAFE_NO_PAD.encode(fragment)
        )
    }

    /// The `kith:` form.
    pub fn kith(&self) -> String {
        format!("kith:{}", self.web())
    }

    /// Whether `link` has an address's shape (`/a/`), as opposed to an
    /// invitation's.
    pub fn is_address(link: &str) -> bool {
        link.split_once('#')
            .is_some_and(|(rest, _)| rest.rsplit_once("/a/").is_some())
    }

    pub fn parse(link: &str) -> Result<Self> {
        let (relay_url, write_id, fragment) = split(link, "/a/", "no '/a/' part")?;
        let write_id = decode32(write_id).ok_or(CoreError::BadLink("malformed address id"))?;
        let fragment: [u8; 64] = URL_SAFE_NO_PAD
            .decode(fragment)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(CoreError::BadLink("malformed key"))?;
        let (secret, box_public) = fragment.split_at(32);
        Ok(Self {
            relay_url: relay_url.to_string(),
            write_id: WriteId(write_id),
            secret: SealKey::from_bytes(secret.try_into().unwrap_or([0; 32])),
            box_public: box_public.try_into().unwrap_or([0; 32]),
        })
    }

    /// The key every requester writes with: it may append, not read.
    pub fn guest_key(&self) -> Result<ed25519_dalek::SigningKey> {
        address_guest_key(&self.secret)
    }
}

/// The guest key of the address whose link holds `secret`.
pub(crate) fn address_guest_key(secret: &SealKey) -> Result<ed25519_dalek::SigningKey> {
    let seed = secret.derive(ADDRESS_KEY_CONTEXT)?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

/// A directory's link (directory-v1.md §2): `<relay>/d/<name>`, with
/// `#<enrolment secret>` for a one-time enrolment in a members-only one.
#[derive(Debug)]
pub struct DirectoryLink {
    pub relay_url: String,
    pub name: String,
    pub secret: Option<zeroize::Zeroizing<[u8; 32]>>,
}

impl DirectoryLink {
    /// Whether `link` has a directory link's shape (`/d/`).
    pub fn is_directory(link: &str) -> bool {
        let link = link.trim();
        let web = link.strip_prefix("kith:").unwrap_or(link);
        web.split('#')
            .next()
            .is_some_and(|rest| rest.rsplit_once("/d/").is_some())
    }

    pub fn parse(link: &str) -> Result<Self> {
        let link = link.trim();
        let web = link.strip_prefix("kith:").unwrap_or(link);
        let (rest, fragment) = web.split_once('#').unwrap_or((web, ""));
        let (relay_url, name) = rest
            .rsplit_once("/d/")
            .ok_or(CoreError::BadLink("no '/d/' part"))?;
        if !(relay_url.starts_with("https://") || relay_url.starts_with("http://")) {
            return Err(CoreError::BadLink(
                "the relay address must start with https:// or http://",
            ));
        }
        if !kith_wire::dir::valid_directory_name(name) {
            return Err(CoreError::BadLink("malformed directory name"));
        }
        let secret = match fragment {
            "" => None,
            f => Some(zeroize::Zeroizing::new(
                decode32(f).ok_or(CoreError::BadLink("malformed enrolment secret"))?,
            )),
        };
        Ok(Self {
            relay_url: relay_url.to_string(),
            name: name.to_string(),
            secret,
        })
    }

    /// The link without its secret: `<relay>/d/<name>`.
    pub fn public(relay_url: &str, name: &str) -> String {
        format!("{}/d/{name}", relay_url.trim_end_matches('/'))
    }
}

/// A link's relay URL, the id after `part`, and the fragment: either form
/// (`kith:` or the web one), surrounding whitespace ignored.
fn split<'a>(
    link: &'a str,
    part: &str,
    missing: &'static str,
) -> Result<(&'a str, &'a str, &'a str)> {
    let link = link.trim();
    let web = link.strip_prefix("kith:").unwrap_or(link);
    let (rest, fragment) = web
        .split_once('#')
        .ok_or(CoreError::BadLink("no key after '#'"))?;
    let (relay_url, id) = rest.rsplit_once(part).ok_or(CoreError::BadLink(missing))?;
    if !(relay_url.starts_with("https://") || relay_url.starts_with("http://")) {
        return Err(CoreError::BadLink(
            "the relay address must start with https:// or http://",
        ));
    }
    Ok((relay_url, id, fragment))
}

fn decode32(s: &str) -> Option<[u8; 32]> {
    URL_SAFE_NO_PAD.decode(s).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_links_parse_with_and_without_a_secret() {
        let secret = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let l = DirectoryLink::parse(&format!(
            " kith:https://r.example/kith/d/school-27#{secret} "
        ))
        .unwrap();
        assert_eq!(
            (l.relay_url.as_str(), l.name.as_str()),
            ("https://r.example/kith", "school-27")
        );
        assert_eq!(l.secret.as_deref(), Some(&[7u8; 32]));
        let public = DirectoryLink::parse("http://127.0.0.1:9/d/club").unwrap();
        assert!(public.secret.is_none());
        assert!(DirectoryLink::is_directory("http://r/d/club"));
        assert!(!DirectoryLink::is_directory("http://r/a/xyz#abc"));
        for bad in [
            "http://r/d/School",
            "ftp://r/d/club",
            "http://r/d/club#short",
            "http://r/x",
        ] {
            assert!(DirectoryLink::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn both_forms_parse_back() {
        let link = InviteLink {
            relay_url: "http://127.0.0.1:7070".into(),
            blob_id: BlobId([3; 32]),
            key: SealKey::from_bytes([9; 32]),
        };
        for text in [link.web(), link.kith(), format!("  {}\n", link.kith())] {
            let parsed = InviteLink::parse(&text).unwrap();
            assert_eq!(parsed.relay_url, link.relay_url);
            assert_eq!(parsed.blob_id, link.blob_id);
            assert_eq!(parsed.key, link.key);
        }
        assert!(link.web().starts_with("http://127.0.0.1:7070/i/"));
    }

    #[test]
    fn an_address_parses_back_and_is_told_from_an_invitation() {
        let link = AddressLink {
            relay_url: "https://relay.example/kith".into(),
            write_id: WriteId([4; 32]),
            secret: SealKey::from_bytes([5; 32]),
            box_public: [6; 32],
        };
        for text in [link.web(), link.kith(), format!(" {}\n", link.kith())] {
            assert!(AddressLink::is_address(&text));
            let parsed = AddressLink::parse(&text).unwrap();
            assert_eq!(parsed.relay_url, link.relay_url);
            assert_eq!(parsed.write_id, link.write_id);
            assert_eq!(parsed.secret, link.secret);
            assert_eq!(parsed.box_public, link.box_public);
        }
        let invite = InviteLink {
            relay_url: "http://x".into(),
            blob_id: BlobId([3; 32]),
            key: SealKey::from_bytes([9; 32]),
        };
        assert!(!AddressLink::is_address(&invite.kith()));
        // A fragment of an invitation's length is not an address's.
        let short = format!(
            "http://x/a/{}#{}",
            URL_SAFE_NO_PAD.encode([1; 32]),
            URL_SAFE_NO_PAD.encode([2; 32])
        );
        assert!(AddressLink::parse(&short).is_err());
        assert!(AddressLink::parse("http://x/a/#").is_err());
    }

    #[test]
    fn refuses_malformed_links() {
        for bad in [
            "",
            "kith:",
            "http://x/i/AAAA",
            "ftp://x/i/AAAA#BBBB",
            "http://x/j/AAAA#BBBB",
            "http://x/i/AAAA#BBBB",
        ] {
            assert!(InviteLink::parse(bad).is_err(), "{bad}");
        }
    }
}
