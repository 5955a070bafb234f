//! Error answers: an HTTP status and an encoded `ErrorBody`.

use crate::store::StoreError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kith_wire::Codec;
use kith_wire::DecodeError;
use kith_wire::relay::response::{ErrorBody, ErrorCode};
use std::borrow::Cow;
use std::time::Duration;

/// A refusal or failure, before the relay's clock is attached.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) code: ErrorCode,
    pub(crate) message: Cow<'static, str>,
    pub(crate) retry_after: Option<Duration>,
}

impl ApiError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The one answer for unknown channels, unknown keys, missing rights, bad
    /// signatures and bad creation tokens.
    pub(crate) fn unauthorized() -> Self {
        Self::new(ErrorCode::UNAUTHORIZED, "unauthorized")
    }

    pub(crate) fn malformed(e: &DecodeError) -> Self {
        Self::new(ErrorCode::MALFORMED, format!("malformed request: {e}"))
    }

    pub(crate) fn rate_limited(wait: Duration) -> Self {
        Self {
            retry_after: Some(wait),
            ..Self::new(ErrorCode::RATE_LIMITED, "too many requests")
        }
    }

    pub(crate) fn unavailable(message: &'static str) -> Self {
        Self {
            retry_after: Some(Duration::from_secs(1)),
            ..Self::new(ErrorCode::UNAVAILABLE, message)
        }
    }

    /// The response, stamped with the relay's clock.
    pub(crate) fn into_response(self, server_time_ms: u64, min_timestamp_ms: u64) -> Response {
        let retry_after_ms = self
            .retry_after
            .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1))
            .unwrap_or(0);
        let body = ErrorBody {
            code: self.code,
            server_time_ms,
            min_timestamp_ms,
            retry_after_ms,
            message: self.message.into_owned(),
        };
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, binary(body.to_bytes())).into_response();
        if retry_after_ms > 0 {
            let secs = retry_after_ms.div_ceil(1000);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.code == ErrorCode::TIMEOUT {
            // The rest of the body may still come: the connection cannot
            // carry another request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unauthorized => Self::unauthorized(),
            StoreError::QuotaExceeded(which) => Self::new(
                ErrorCode::QUOTA_EXCEEDED,
                format!("the channel's {which} quota is full"),
            ),
            StoreError::NotFound => Self::new(ErrorCode::NOT_FOUND, "not found"),
            StoreError::Conflict(why) => Self::new(ErrorCode::CONFLICT, why),
            StoreError::InvalidArgument(why) => Self::new(ErrorCode::INVALID_ARGUMENT, why),
            StoreError::Closed => Self::unavailable("the relay is shutting down"),
            other => {
                tracing::error!(error = %other, "store failure");
                Self::new(ErrorCode::INTERNAL, "internal error")
            }
        }
    }
}

/// A binary (`application/octet-stream`) body.
pub(crate) fn binary(bytes: Vec<u8>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )],
        bytes,
    )
}
