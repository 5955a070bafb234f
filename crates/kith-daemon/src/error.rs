//! What the API answers when a call fails: an HTTP status and one JSON
//! object, `{"error": {"code": "...", "message": "..."}}`, with the same
//! codes as the CLI's `--json` errors (docs/cli-json.md).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kith_core::CoreError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The engine refused or failed: its code says which.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The request itself is wrong (a missing field, a bad value).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// No valid token (or cookie) with a request on the TCP listener.
    #[error(
        "a valid token is needed: open the address `kith up` printed, or send Authorization: Bearer TOKEN (the token is in daemon.token in the profile)"
    )]
    Unauthorized,
    /// A foreign Origin or Host: another site, or DNS rebinding.
    #[error("{0}")]
    Forbidden(String),
    #[error("too many event streams are open")]
    Busy,
    /// The engine is gone (the daemon is stopping).
    #[error("the daemon is stopping")]
    Stopped,
    /// A local failure outside the engine (a thread, a file).
    #[error("{0}")]
    Local(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Core(e) => e.code(),
            Self::BadRequest(_) => "bad_request",
            Self::NotFound(_) => "not_found",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::Busy => "busy",
            Self::Stopped => "stopped",
            Self::Local(_) => "local",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Core(e) => match e {
                CoreError::NoSuchConversation(_)
                | CoreError::NoSuchMessage(_)
                | CoreError::NoSuchMember(_)
                | CoreError::NoSuchCall(_)
                | CoreError::NoSuchIntroduction(_)
                | CoreError::NoSuchAddress(_)
                | CoreError::NoSuchRequest(_)
                | CoreError::NoSuchPersona(_)
                | CoreError::NoSuchDirectory(_) => StatusCode::NOT_FOUND,
                CoreError::PersonaExists(_)
                | CoreError::PersonaInUse(..)
                | CoreError::DirectoryJoined(_) => StatusCode::CONFLICT,
                CoreError::NotAMember(_) | CoreError::EnrolmentRefused => StatusCode::FORBIDDEN,
                CoreError::AddressBusy(_) => StatusCode::TOO_MANY_REQUESTS,
                CoreError::Relay(_) | CoreError::Queued(_) => StatusCode::BAD_GATEWAY,
                CoreError::Store(_)
                | CoreError::Corrupt(_)
                | CoreError::Io { .. }
                | CoreError::Randomness(_)
                | CoreError::Crypto(_) => StatusCode::INTERNAL_SERVER_ERROR,
                CoreError::ProfileBusy(_) | CoreError::StateMoved => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            },
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Busy => StatusCode::TOO_MANY_REQUESTS,
            Self::Stopped => StatusCode::SERVICE_UNAVAILABLE,
            Self::Local(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.code(), "message": one_line(&self.to_string()) }
        });
        (self.status(), Json(body)).into_response()
    }
}

/// Messages can quote what a peer sent: one line, no control characters.
pub(crate) fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
