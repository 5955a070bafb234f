use thiserror::Error;

/// Everything that can go wrong in kith-crypto. MLS errors keep mls-rs's
/// message; none of them carries secret material.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("the system's random number generator failed: {0}")]
    Randomness(String),
    #[error("MLS {operation}: {detail}")]
    Mls {
        operation: &'static str,
        detail: String,
    },
    #[error("not an MLS {expected}")]
    UnexpectedMessage { expected: &'static str },
    #[error("sealed data failed authentication (wrong key or altered)")]
    Unseal,
    #[error("padded payload is malformed: {0}")]
    Padding(&'static str),
    #[error("payload of {len} bytes is larger than the largest size bucket ({max})")]
    TooLarge { len: usize, max: usize },
    #[error("stored state is malformed: {0}")]
    Decode(#[from] kith_wire::DecodeError),
    #[error("{0}")]
    Invalid(&'static str),
}

impl CryptoError {
    pub(crate) fn mls(operation: &'static str) -> impl FnOnce(mls_rs::error::MlsError) -> Self {
        move |e| Self::Mls {
            operation,
            detail: e.to_string(),
        }
    }
}

pub(crate) fn random<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| CryptoError::Randomness(e.to_string()))?;
    Ok(bytes)
}
