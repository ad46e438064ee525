//! The one error type at the HTTP edge. Client-facing variants carry a message for people; the
//! unexpected is logged with its details and answered with a bare 500.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::chat::ChatError;
use crate::limits::RetryAfter;
use crate::store::StoreError;

/// An HTTP error answer. Its body is always [`shared::ApiError`] JSON.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request broke a rule; the message says which.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid session, or wrong credentials.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403: authenticated or not, this is not allowed (e.g. a foreign Origin).
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404: no such endpoint.
    #[error("Not found.")]
    NotFound,
    /// 409: the name is taken.
    #[error("{0}")]
    Conflict(String),
    /// 429: over a rate limit or quota; `Retry-After` says when to try again.
    #[error("Too many requests; try again in {} s.", .0.secs())]
    RateLimited(RetryAfter),
    /// 429 without a time: a quota that waiting does not refill (say, rooms per user).
    #[error("{0}")]
    Quota(String),
    /// 413: an upload is larger than the server takes.
    #[error("{0}")]
    TooLarge(String),
    /// 413: an upload would take its uploader over their quota.
    #[error("{0}")]
    OverQuota(String),
    /// 415: an upload's content is not what it claims to be.
    #[error("{0}")]
    UnsupportedType(String),
    /// 422: an image that cannot be decoded, or is too large to decode safely.
    #[error("{0}")]
    BadImage(String),
    /// 503: the server is at capacity for this kind of work; `Retry-After` says when to retry.
    #[error("The server is busy; try again in {} s.", .0.secs())]
    Unavailable(RetryAfter),
    /// 500: something failed on our side. The details are logged, never sent.
    #[error("internal error")]
    Internal(String),
    /// A refusal by the chat's rules: the status follows its code, and the body carries the
    /// code an `error` frame would.
    #[error("{0}")]
    Chat(#[from] ChatError),
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::Chat(e) => match e {
                ChatError::Invalid(_) | ChatError::TooLong(_) => {
                    (StatusCode::BAD_REQUEST, "bad_request")
                }
                ChatError::Filtered(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bad_request"),
                ChatError::NoSuchRoom
                | ChatError::NoSuchMessage
                | ChatError::NoSuchUser(_)
                | ChatError::NoSuchFile => (StatusCode::NOT_FOUND, "not_found"),
                ChatError::NotJoined
                | ChatError::Forbidden(_)
                | ChatError::Banned(_)
                | ChatError::Muted(_) => (StatusCode::FORBIDDEN, "forbidden"),
                ChatError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
                ChatError::RateLimited(_) | ChatError::Quota(_) | ChatError::SlowMode(_) => {
                    (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
                }
                ChatError::Internal(details) => {
                    tracing::error!(%details, "request failed");
                    (StatusCode::INTERNAL_SERVER_ERROR, "internal")
                }
            },
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::RateLimited(_) | ApiError::Quota(_) => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
            }
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::OverQuota(_) => (StatusCode::PAYLOAD_TOO_LARGE, "over_quota"),
            ApiError::UnsupportedType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_type")
            }
            ApiError::BadImage(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bad_image"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(details) => {
                tracing::error!(%details, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let retry = match &self {
            ApiError::RateLimited(wait) | ApiError::Unavailable(wait) => Some(*wait),
            ApiError::Chat(e) => e.retry_after(),
            _ => None,
        };
        let body = shared::ApiError {
            code: match &self {
                ApiError::Chat(e) => Some(e.code()),
                _ => None,
            },
            error: code.into(),
            message: self.to_string(),
            retry_after_ms: retry.map(RetryAfter::millis),
        };
        let mut res = (status, Json(body)).into_response();
        if let Some(wait) = retry {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait.secs()));
        }
        res
    }
}

/// `axum::Json`, but a malformed body is answered with [`ApiError`]'s JSON shape.
#[derive(Debug, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct AppJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}
