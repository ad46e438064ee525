//! Browser-facing protections on every answer and every state-changing request.
//!
//! - **Security headers** on the app and the API: a Content-Security-Policy the wasm client runs
//!   under (scripts only from this origin, plus the one inline loader trunk writes into
//!   `index.html`, allowed by its hash; `wasm-unsafe-eval` to compile the module; no plugins, no
//!   framing), `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` and
//!   `Referrer-Policy: no-referrer`; over TLS, `Strict-Transport-Security` too.
//! - **Cross-site writes are refused.** A `POST` (or any method but `GET`/`HEAD`/`OPTIONS`)
//!   under `/api` with an `Origin` that is not allowed gets 403, as the WebSocket upgrade does; one
//!   without an `Origin` that relies on the session cookie gets 403 too (browsers always send an
//!   `Origin` on such requests, so a cookie without one cannot be told from a forgery; programs
//!   send `Authorization: Bearer`).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::http::header::ORIGIN;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::auth::{TokenSource, request_token};
use crate::error::ApiError;
use crate::origin::Origin;
use crate::startup::AppState;

/// Longest `Origin` value written to the log.
const LOGGED_ORIGIN: usize = 120;

/// The Content-Security-Policy, kept in step with the built client's `index.html`.
pub struct Csp {
    index: PathBuf,
    /// The policy for the `index.html` last seen, by its modification time.
    cached: Mutex<Option<(Option<SystemTime>, HeaderValue)>>,
}

impl Csp {
    /// The policy for the client in `static_dir`.
    pub fn new(static_dir: &Path) -> Self {
        Self {
            index: static_dir.join("index.html"),
            cached: Mutex::new(None),
        }
    }

    /// The header value; recomputed only when `index.html` changed (a rebuild of the client).
    pub fn value(&self) -> HeaderValue {
        let modified = std::fs::metadata(&self.index)
            .and_then(|m| m.modified())
            .ok();
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, value)) = cached.as_ref()
            && *at == modified
        {
            return value.clone();
        }
        let html = std::fs::read_to_string(&self.index).unwrap_or_default();
        let value = HeaderValue::from_str(&policy(&inline_script_hashes(&html)))
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
        *cached = Some((modified, value.clone()));
        value
    }
}

/// The policy, allowing the inline scripts with these hashes (`sha256-...`).
fn policy(hashes: &[String]) -> String {
    let scripts: String = hashes.iter().map(|h| format!(" '{h}'")).collect();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{scripts}; \
         style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The CSP hashes of the inline `<script>` elements of a page (those without `src`).
fn inline_script_hashes(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        rest = &rest[start..];
        let Some(open_end) = rest.find('>') else {
            break;
        };
        let tag = &rest[..open_end];
        let body = &rest[open_end + 1..];
        let Some(close) = body.find("</script>") else {
            break;
        };
        if !tag.contains(" src=") {
            let digest = Sha256::digest(&body.as_bytes()[..close]);
            out.push(format!(
                "sha256-{}",
                base64::engine::general_purpose::STANDARD.encode(digest)
            ));
        }
        rest = &body[close..];
    }
    out
}

/// Adds the security headers to every answer that does not set its own.
pub async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, state.csp.value());
    }
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    // Served over TLS: browsers keep to HTTPS for this host for a year.
    if state.config.tls() {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    res
}

/// Whether an `Origin` header value is one of the allowed origins.
pub fn origin_allowed(state: &AppState, origin: &HeaderValue) -> bool {
    origin
        .to_str()
        .ok()
        .and_then(|o| o.parse::<Origin>().ok())
        .is_some_and(|o| state.origins.contains(&o))
}

/// An `Origin` value as it may be logged: truncated, so a 60 KB header is not logged whole.
pub fn loggable(origin: &HeaderValue) -> String {
    let text = String::from_utf8_lossy(origin.as_bytes());
    match text.char_indices().nth(LOGGED_ORIGIN) {
        Some((cut, _)) => format!("{}... ({} bytes)", &text[..cut], origin.len()),
        None => text.into_owned(),
    }
}

/// Refuses state-changing API requests from other sites (see the module docs).
pub async fn same_origin_writes(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let headers = req.headers();
    match headers.get(ORIGIN) {
        Some(origin) if !origin_allowed(&state, origin) => {
            tracing::info!(origin = %loggable(origin), path = %req.uri().path(), "refused a cross-site request");
            return ApiError::Forbidden("Requests from other sites are not allowed.")
                .into_response();
        }
        Some(_) => {}
        None => {
            if matches!(request_token(headers), Some((_, TokenSource::Cookie))) {
                return ApiError::Forbidden(
                    "A request with the session cookie must carry its Origin; programs send Authorization: Bearer <token>.",
                )
                .into_response();
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_hashed_and_external_ones_skipped() {
        let html =
            r#"<head><script src="/a.js"></script><script type="module">init()</script></head>"#;
        let hashes = inline_script_hashes(html);
        assert_eq!(hashes.len(), 1);
        let expected = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"init()"));
        assert_eq!(hashes[0], format!("sha256-{expected}"));
        assert!(policy(&hashes).contains(&format!("'sha256-{expected}'")));
    }

    #[test]
    fn long_origins_are_truncated_for_the_log() {
        let long = HeaderValue::from_str(&"a".repeat(60_000)).expect("header");
        assert!(loggable(&long).len() < 200);
        let short = HeaderValue::from_static("http://x");
        assert_eq!(loggable(&short), "http://x");
    }
}
