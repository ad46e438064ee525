//! What an operator and a load balancer read: `/healthz`, `/readyz` and `/metrics`.
//!
//! - `GET /healthz`: 200 while the process serves HTTP at all (liveness).
//! - `GET /readyz`: 200 when the store answers a read within a second and the server is not
//!   draining; 503 otherwise, with the reason (readiness: a balancer sends no new clients).
//!   With a bus (`--redis`) that is down, 200 with `ready, degraded: bus down`: the node still
//!   serves its people, and reads the others' events from the store.
//! - `GET /metrics`: the Prometheus text format (see [`crate::metrics`]), for clients on a
//!   loopback address, or anyone with `Authorization: Bearer <--metrics-token>`.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::metrics;
use crate::serve::client_addr;
use crate::startup::AppState;

/// How long `/readyz` waits for the store.
const STORE_PROBE: Duration = Duration::from_secs(1);

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.draining.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response();
    }
    // Any read will do: the answer is not the point, that the store gives one is.
    let probe = shared::Username::parse("readyz").expect("a valid handle");
    match tokio::time::timeout(STORE_PROBE, state.store.find_user(probe)).await {
        // Without the bus, a node still serves its own people (and the store repairs what the
        // others wrote, a second late): ready, but degraded, so a balancer keeps it.
        Ok(Ok(_)) => match &state.bus {
            Some(bus) if !bus.is_up() => {
                (StatusCode::OK, "ready, degraded: bus down\n").into_response()
            }
            _ => (StatusCode::OK, "ready\n").into_response(),
        },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the store failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store too slow\n").into_response(),
    }
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>, req: axum::extract::Request) -> Response {
    if !may_read_metrics(&state, req.headers(), req.extensions()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let m = metrics::get();
    m.http_connections
        .set(i64::try_from(state.connections.get()).unwrap_or(i64::MAX));
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        m.render(),
    )
        .into_response()
}

fn may_read_metrics(
    state: &AppState,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    allowed(
        state.config.metrics_token.as_deref(),
        given,
        client_addr(extensions).map(|a| a.ip()),
    )
}

/// Whether a client at `client` with this `Authorization` header may read the metrics when the
/// server's token is `token`: from a loopback address always, from elsewhere with the token.
fn allowed(token: Option<&str>, authorization: Option<&str>, client: Option<IpAddr>) -> bool {
    let bearer = authorization.and_then(|v| v.strip_prefix("Bearer "));
    let token_ok = matches!((token, bearer), (Some(t), Some(b)) if constant_time_eq(b.as_bytes(), t.as_bytes()));
    token_ok || client.is_some_and(|ip| ip.is_loopback())
}

/// Compares two secrets in a time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::{allowed, constant_time_eq};

    #[test]
    fn metrics_are_for_loopback_or_the_token_holder() {
        let here = Some("127.0.0.1".parse().expect("ip"));
        let afar = Some("203.0.113.9".parse().expect("ip"));
        assert!(allowed(None, None, here));
        assert!(!allowed(None, None, afar));
        assert!(!allowed(None, Some("Bearer anything"), afar));
        assert!(allowed(Some("s3cret"), Some("Bearer s3cret"), afar));
        assert!(!allowed(Some("s3cret"), Some("Bearer s3cre"), afar));
        assert!(!allowed(Some("s3cret"), Some("s3cret"), afar));
        assert!(!allowed(Some("s3cret"), None, None));
        assert!(allowed(Some("s3cret"), Some("Bearer wrong"), here));
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cret", b"s3cret!"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
