//! The web UI: a page, a script and a style sheet, embedded in the binary
//! (`web/`; no build step, no framework: plain ES modules that build the
//! page with DOM calls only, so no string from a peer is ever parsed as
//! markup — ARCHITECTURE.md says why). Every answer carries a
//! Content-Security-Policy without inline scripts.

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::AppState;

const INDEX: &str = include_str!("../web/index.html");
const APP: &str = include_str!("../web/app.js");
const STYLE: &str = include_str!("../web/style.css");

/// Scripts and styles from this origin only, none inline; pictures from
/// here (file previews), `data:` (QR codes the daemon drew) and `blob:`;
/// nothing framed, no form posted elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { page(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/assets/app.js",
            get(|| async { page(APP, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/assets/style.css",
            get(|| async { page(STYLE, "text/css; charset=utf-8") }),
        )
        .route("/login", get(login))
}

fn page(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
pub(crate) struct Login {
    token: String,
}

/// `/login?token=…` (the address `kith up` prints): sets the cookie the
/// browser then sends with every call, and opens the UI.
async fn login(State(s): State<AppState>, Query(q): Query<Login>) -> Response {
    if !crate::auth::token_matches(&q.token, &s.token) {
        return (
            StatusCode::UNAUTHORIZED,
            "This is not this daemon's token: open the address `kith up` printed.",
        )
            .into_response();
    }
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/",
        crate::auth::COOKIE,
        s.token
    );
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// What every answer on TCP carries.
pub(crate) async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    /// The page is built with DOM calls only: nothing in the UI's code
    /// parses a string as markup or code.
    #[test]
    fn the_ui_never_parses_strings_as_markup() {
        for (name, source) in [("app.js", super::APP), ("index.html", super::INDEX)] {
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "setTimeout(\"",
                "DOMParser",
                "createContextualFragment",
            ] {
                assert!(!source.contains(banned), "{name} uses {banned}");
            }
        }
        assert!(!super::INDEX.contains("<script>"), "an inline script");
        assert!(!super::INDEX.contains("style="), "an inline style");
    }
}
