//! One-time invitation links (`docs/spec/inbox-v1.md` §2).
//!
//! ```text
//! https form:  <relay URL>/i/<blob id, base64url>#<seal key, base64url>
//! kith form:   kith:<https form>
//! ```
//!
//! The fragment (after `#`) is never sent to a server by browsers or by
//! kith: the relay holding the blob cannot open it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kith_crypto::seal::SealKey;
use kith_wire::relay::BlobId;

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
        let link = link.trim();
        let web = link.strip_prefix("kith:").unwrap_or(link);
        let (rest, fragment) = web
            .split_once('#')
            .ok_or(CoreError::BadLink("no key after '#'"))?;
        let (relay_url, blob) = rest
            .rsplit_once("/i/")
            .ok_or(CoreError::BadLink("no '/i/' part"))?;
        if !(relay_url.starts_with("https://") || relay_url.starts_with("http://")) {
            return Err(CoreError::BadLink(
                "the relay address must start with https:// or http://",
            ));
        }
        let blob_id = decode32(blob).ok_or(CoreError::BadLink("malformed invitation id"))?;
        let key = decode32(fragment).ok_or(CoreError::BadLink("malformed key"))?;
        Ok(Self {
            relay_url: relay_url.to_string(),
            blob_id: BlobId(blob_id),
            key: SealKey::from_bytes(key),
        })
    }
}

fn decode32(s: &str) -> Option<[u8; 32]> {
    URL_SAFE_NO_PAD.decode(s).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
