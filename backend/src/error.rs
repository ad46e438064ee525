//! The one error type at the HTTP edge. Client-facing variants carry a message for people; the
//! unexpected is logged with its details and answered with a bare 500.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

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
    /// 409: the name is taken.
    #[error("{0}")]
    Conflict(String),
    /// 500: something failed on our side. The details are logged, never sent.
    #[error("internal error")]
    Internal(String),
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
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Internal(details) => {
                tracing::error!(%details, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let body = shared::ApiError {
            error: code.into(),
            message: self.to_string(),
        };
        (status, Json(body)).into_response()
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
