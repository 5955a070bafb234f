//! Who may use the TCP listener: a request must name this daemon as its
//! `Host` (no DNS rebinding), come from no page but the daemon's own
//! (`Origin`, no CSRF), and carry the token — `Authorization: Bearer` for
//! programs, or the cookie `/login?token=` sets for the browser. The Unix
//! socket needs none of this: it is 0600 in the profile's 0700 directory.

use std::path::{Path, PathBuf};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq as _;

use crate::error::ApiError;

const TOKEN_FILE: &str = "daemon.token";
pub(crate) const COOKIE: &str = "kith_token";

/// The token in `home/daemon.token`, made (32 random bytes, hex, 0600) the
/// first time. It stays across restarts, so that a bot keeps working.
pub fn token(home: &Path) -> Result<String, ApiError> {
    let path = token_path(home);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let t = existing.trim();
        if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(t.to_string());
        }
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Local(format!("no randomness: {e}")))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    crate::write_private(&path, format!("{token}\n").as_bytes())?;
    Ok(token)
}

pub fn token_path(home: &Path) -> PathBuf {
    home.join(TOKEN_FILE)
}

/// What a TCP request is checked against.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    pub(crate) token: String,
    /// `127.0.0.1:PORT`, `localhost:PORT`, `[::1]:PORT`.
    pub(crate) hosts: Vec<String>,
    /// `http://` and each host.
    pub(crate) origins: Vec<String>,
}

impl Guard {
    pub(crate) fn new(token: String, port: u16) -> Self {
        let hosts: Vec<String> = ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .map(|h| format!("{h}:{port}"))
            .collect();
        let origins = hosts.iter().map(|h| format!("http://{h}")).collect();
        Self {
            token,
            hosts,
            origins,
        }
    }

    fn check(&self, method: &Method, path: &str, headers: &HeaderMap) -> Result<(), ApiError> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return Err(ApiError::Forbidden(format!(
                "this daemon answers only as {} (Host was {:?})",
                self.hosts.first().map_or("", String::as_str),
                crate::error::one_line(host)
            )));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
                return Err(ApiError::Forbidden(format!(
                    "requests from other sites are refused (Origin was {:?})",
                    crate::error::one_line(origin)
                )));
            }
        } else if !matches!(*method, Method::GET | Method::HEAD)
            && headers.get(header::COOKIE).is_some()
            && bearer(headers).is_none()
        {
            // A browser sends Origin with every POST; a cookie without one
            // is a form from somewhere else or a very old browser.
            return Err(ApiError::Forbidden(
                "a browser request without Origin is refused".into(),
            ));
        }
        // The UI's page and assets load before the cookie exists; they
        // hold nothing.
        if is_public(path) {
            return Ok(());
        }
        let given = bearer(headers).or_else(|| cookie(headers));
        match given {
            Some(t) if token_matches(t, &self.token) => Ok(()),
            _ => Err(ApiError::Unauthorized),
        }
    }
}

/// Whether `given` is the daemon's token, compared in constant time.
pub(crate) fn token_matches(given: &str, token: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(token.as_bytes()))
}

/// Paths anyone who may reach the daemon gets: the web UI's shell and
/// assets (what they show comes from the API), and the login.
fn is_public(path: &str) -> bool {
    path == "/" || path == "/login" || path.starts_with("/assets/")
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

pub(crate) async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    match guard.check(request.method(), request.uri().path(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) => axum::response::IntoResponse::into_response(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn only_this_host_this_origin_and_the_token_pass() {
        let g = Guard::new("t0k".into(), 4242);
        let ok = |m: Method, h: &[(&'static str, &str)]| {
            g.check(&m, "/api/v1/conversations", &headers(h)).is_ok()
        };
        assert!(ok(
            Method::GET,
            &[("host", "127.0.0.1:4242"), ("authorization", "Bearer t0k")]
        ));
        assert!(ok(
            Method::GET,
            &[
                ("host", "localhost:4242"),
                ("cookie", "a=b; kith_token=t0k")
            ]
        ));
        assert!(ok(
            Method::POST,
            &[
                ("host", "127.0.0.1:4242"),
                ("origin", "http://127.0.0.1:4242"),
                ("cookie", "kith_token=t0k")
            ]
        ));
        // DNS rebinding: evil.example resolving to 127.0.0.1.
        assert!(!ok(
            Method::GET,
            &[
                ("host", "evil.example:4242"),
                ("authorization", "Bearer t0k")
            ]
        ));
        assert!(!ok(
            Method::GET,
            &[("host", "127.0.0.1:4243"), ("authorization", "Bearer t0k")]
        ));
        // CSRF: another site's page posting with the cookie.
        assert!(!ok(
            Method::POST,
            &[
                ("host", "127.0.0.1:4242"),
                ("origin", "http://evil.example"),
                ("cookie", "kith_token=t0k")
            ]
        ));
        assert!(!ok(
            Method::POST,
            &[("host", "127.0.0.1:4242"), ("cookie", "kith_token=t0k")]
        ));
        assert!(!ok(
            Method::GET,
            &[("host", "127.0.0.1:4242"), ("authorization", "Bearer nope")]
        ));
        assert!(!ok(Method::GET, &[("host", "127.0.0.1:4242")]));
        assert!(
            g.check(&Method::GET, "/", &headers(&[("host", "127.0.0.1:4242")]))
                .is_ok()
        );
        assert!(
            g.check(&Method::GET, "/", &headers(&[("host", "evil.example")]))
                .is_err()
        );
    }
}
