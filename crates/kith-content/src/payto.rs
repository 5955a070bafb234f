//! `payto:` URIs (RFC 8905) as a payment request carries them
//! (content-v1.md §7.10): a target (`iban/DE75…`), an amount
//! (`EUR:12.50`), a receiver's name and a message. kith moves no money;
//! it carries the URI to the person's payment app.

use crate::kind::MAX_PAYMENT_TEXT;

/// Longest `payto:` URI carried.
pub const MAX_PAYTO: usize = 2_048;

/// Why a `payto:` URI was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaytoError {
    #[error("not a payto URI (it starts payto://TYPE/…)")]
    NotPayto,
    #[error("the amount is CURRENCY:VALUE, like EUR:12.50")]
    Amount,
    #[error("the payment target has a character a URI cannot carry: {0:?}")]
    Target(char),
    #[error("{0} is longer than {MAX_PAYMENT_TEXT} bytes")]
    TooLong(&'static str),
    #[error("a %-escape in the URI is not UTF-8")]
    Escape,
}

/// A payment request's URI, read into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaytoUri {
    /// The target type (`iban`, `upi`, `bitcoin`, …), lowercased.
    pub target_type: String,
    /// The rest of the target (`DE75512108001245126199`), as written.
    pub target: String,
    pub amount: Option<Amount>,
    pub receiver_name: Option<String>,
    /// A note for the payment (`message=`).
    pub message: Option<String>,
}

/// `CURRENCY:VALUE` (RFC 8905 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount {
    /// Letters, uppercased (`EUR`, or a longer code like `BTC`).
    pub currency: String,
    /// Digits with at most one `.` and 8 decimals, as written.
    pub value: String,
}

impl Amount {
    pub fn parse(s: &str) -> Result<Self, PaytoError> {
        let (currency, value) = s.split_once(':').ok_or(PaytoError::Amount)?;
        let ok_currency =
            (1..=12).contains(&currency.len()) && currency.chars().all(|c| c.is_ascii_alphabetic());
        let (int, frac) = value.split_once('.').unwrap_or((value, ""));
        let ok_value = (1..=18).contains(&int.len())
            && int.chars().all(|c| c.is_ascii_digit())
            && frac.len() <= 8
            && frac.chars().all(|c| c.is_ascii_digit())
            && !(value.contains('.') && frac.is_empty());
        if !ok_currency || !ok_value {
            return Err(PaytoError::Amount);
        }
        Ok(Self {
            currency: currency.to_ascii_uppercase(),
            value: value.to_owned(),
        })
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.value, self.currency)
    }
}

impl PaytoUri {
    /// A request to pay `target` (`TYPE/…`, with or without `payto://`).
    pub fn new(
        target: &str,
        amount: Option<&str>,
        message: Option<&str>,
        receiver_name: Option<&str>,
    ) -> Result<Self, PaytoError> {
        let bare = target.strip_prefix("payto://").unwrap_or(target);
        let mut uri = Self::parse(&format!("payto://{bare}"))?;
        if let Some(a) = amount {
            uri.amount = Some(Amount::parse(a)?);
        }
        for (field, value, name) in [
            (&mut uri.message, message, "the note"),
            (&mut uri.receiver_name, receiver_name, "the receiver's name"),
        ] {
            if let Some(v) = value {
                if v.len() > MAX_PAYMENT_TEXT {
                    return Err(PaytoError::TooLong(name));
                }
                *field = Some(v.to_owned());
            }
        }
        Ok(uri)
    }

    /// Reads `payto://TYPE/TARGET?amount=…&receiver-name=…&message=…`;
    /// other options are ignored.
    pub fn parse(uri: &str) -> Result<Self, PaytoError> {
        if uri.len() > MAX_PAYTO {
            return Err(PaytoError::TooLong("the payto URI"));
        }
        let scheme = uri.get(..8).ok_or(PaytoError::NotPayto)?;
        if !scheme.eq_ignore_ascii_case("payto://") {
            return Err(PaytoError::NotPayto);
        }
        let rest = uri.get(8..).unwrap_or_default();
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (target_type, target) = path.split_once('/').unwrap_or((path, ""));
        if target_type.is_empty()
            || !target_type
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(PaytoError::NotPayto);
        }
        if let Some(bad) = target.chars().find(|c| !uri_char(*c)) {
            return Err(PaytoError::Target(bad));
        }
        let mut out = Self {
            target_type: target_type.to_ascii_lowercase(),
            target: target.to_owned(),
            amount: None,
            receiver_name: None,
            message: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value)?;
            if value.len() > MAX_PAYMENT_TEXT {
                return Err(PaytoError::TooLong("an option"));
            }
            match key {
                "amount" => out.amount = Some(Amount::parse(&value)?),
                "receiver-name" => out.receiver_name = Some(value),
                "message" => out.message = Some(value),
                _ => {}
            }
        }
        Ok(out)
    }

    /// The URI, written the one way kith writes it.
    pub fn uri(&self) -> String {
        let mut uri = format!("payto://{}/{}", self.target_type, self.target);
        let mut sep = '?';
        let options = [
            (
                "amount",
                self.amount
                    .as_ref()
                    .map(|a| format!("{}:{}", a.currency, a.value)),
            ),
            ("receiver-name", self.receiver_name.clone()),
            ("message", self.message.clone()),
        ];
        for (key, value) in options {
            if let Some(v) = value {
                uri.push(sep);
                uri.push_str(key);
                uri.push('=');
                uri.push_str(&percent_encode(&v));
                sep = '&';
            }
        }
        uri
    }

    /// One line for a person: `12.50 EUR to iban/DE75… (“dinner”)`.
    pub fn describe(&self) -> String {
        let mut s = match &self.amount {
            Some(a) => format!("{a} to "),
            None => String::new(),
        };
        match &self.receiver_name {
            Some(name) => s.push_str(&format!("{name} ({}/{})", self.target_type, self.target)),
            None => s.push_str(&format!("{}/{}", self.target_type, self.target)),
        }
        if let Some(m) = &self.message {
            s.push_str(&format!(" \u{201c}{m}\u{201d}"));
        }
        s
    }
}

/// RFC 3986 unreserved characters and the sub-delimiters a path keeps.
fn uri_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~/:@!$'()*+,;%".contains(c)
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Result<String, PaytoError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or(PaytoError::Escape)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| PaytoError::Escape)?);
            i += 3;
        } else {
            out.push(if b == b'+' { b' ' } else { b });
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PaytoError::Escape)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_request_round_trips_through_its_uri() {
        let p = PaytoUri::new(
            "iban/DE75512108001245126199",
            Some("eur:12.50"),
            Some("dinner & drinks"),
            Some("Blair"),
        )
        .unwrap();
        let uri = p.uri();
        assert_eq!(
            uri,
            "payto://iban/DE75512108001245126199?amount=EUR:12.50&receiver-name=Blair&message=dinner%20%26%20drinks"
        );
        assert_eq!(PaytoUri::parse(&uri).unwrap(), p);
        assert_eq!(
            p.describe(),
            "12.50 EUR to Blair (iban/DE75512108001245126199) \u{201c}dinner & drinks\u{201d}"
        );
    }

    #[test]
    fn bad_uris_are_refused() {
        assert_eq!(PaytoUri::parse("https://x"), Err(PaytoError::NotPayto));
        assert_eq!(PaytoUri::parse("payto:///x"), Err(PaytoError::NotPayto));
        assert_eq!(
            PaytoUri::new("iban/X", Some("12"), None, None),
            Err(PaytoError::Amount)
        );
        assert_eq!(
            PaytoUri::new("iban/X", Some("EUR:1."), None, None),
            Err(PaytoError::Amount)
        );
        assert_eq!(
            PaytoUri::parse("payto://iban/X?message=%ff"),
            Err(PaytoError::Escape)
        );
        assert_eq!(
            PaytoUri::parse("payto://iban/a b"),
            Err(PaytoError::Target(' '))
        );
        assert!(PaytoUri::parse("payto://iban/X?message=%e").is_err());
    }
}
