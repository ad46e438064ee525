//! Accounts and sessions: registration, login, logout, and resolving a request to its user.
//!
//! Passwords are hashed with argon2id (on the blocking pool: it is deliberately slow). A session
//! is a random 256-bit token; the store keeps only its SHA-256, so a leaked database does not
//! leak usable sessions. Browsers hold the token in an HttpOnly, SameSite=Strict cookie; other
//! clients send it as `Authorization: Bearer <token>`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use shared::{Credentials, MeResponse, Password, SESSION_COOKIE, SessionResponse, Username};

use crate::error::{ApiError, AppJson};
use crate::startup::AppState;
use crate::store::{SessionRecord, StoreError, UserId, now_ms};

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// Their id.
    pub id: UserId,
    /// Their name.
    pub username: Username,
    /// The SHA-256 of the session token: identifies the session without holding the secret.
    pub session: [u8; 32],
}

/// Sessions already resolved, so that an upgrade or API call does not read the store each time.
///
/// Only live sessions are cached; logout removes its entry before deleting the row, and expiry is
/// checked on every use. With several server nodes sharing one store, a logout on one node would
/// need to reach the others' caches (through the same channel as the fan-out); with one node
/// there is nothing to share. A `std` mutex: held only for a map operation, never across `.await`.
#[derive(Debug, Default)]
pub struct SessionCache {
    entries: Mutex<HashMap<[u8; 32], SessionRecord>>,
}

impl SessionCache {
    /// Entries kept at most; past it the cache starts over (sessions are re-read on demand).
    const MAX: usize = 100_000;

    fn get(&self, session: &[u8; 32]) -> Option<SessionRecord> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(session)
            .cloned()
    }

    fn insert(&self, session: [u8; 32], record: SessionRecord) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= Self::MAX {
            entries.clear();
        }
        entries.insert(session, record);
    }

    fn remove(&self, session: &[u8; 32]) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(session);
    }
}

/// Where a request's token came from. The WebSocket upgrade treats them differently: a cookie
/// is only trusted together with an allowed `Origin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer`.
    Bearer,
    /// The session cookie.
    Cookie,
}

/// The session token in a request: the bearer header wins over the cookie.
pub fn request_token(headers: &HeaderMap) -> Option<(String, TokenSource)> {
    if let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some(token) = value.strip_prefix("Bearer ")
    {
        return Some((token.trim().to_owned(), TokenSource::Bearer));
    }
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, token)| (token.to_owned(), TokenSource::Cookie))
}

/// The SHA-256 of a token.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Resolves a token to its user, if the session exists and has not expired.
pub async fn authenticate(state: &AppState, token: &str) -> Result<AuthUser, ApiError> {
    // A token is 64 hex digits; anything else cannot be one and costs no lookup.
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::Unauthorized("invalid session"));
    }
    let session = hash_token(token);
    let record = match state.sessions.get(&session) {
        Some(record) => record,
        None => {
            let record = state
                .store
                .find_session(session)
                .await?
                .ok_or(ApiError::Unauthorized("invalid session"))?;
            state.sessions.insert(session, record.clone());
            record
        }
    };
    if record.expires_at <= now_ms() {
        state.sessions.remove(&session);
        return Err(ApiError::Unauthorized("session expired"));
    }
    Ok(AuthUser {
        id: record.user_id,
        username: record.username,
        session,
    })
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (token, _) =
            request_token(&parts.headers).ok_or(ApiError::Unauthorized("not logged in"))?;
        authenticate(state, &token).await
    }
}

fn parse_credentials(c: Credentials) -> Result<(Username, Password), ApiError> {
    let username = Username::parse(c.username).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let password = Password::parse(c.password).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok((username, password))
}

fn hasher() -> Argon2<'static> {
    // argon2id, 19 MiB, 2 passes, 1 lane: OWASP's recommended minimum.
    Argon2::default()
}

async fn hash_password(password: Password) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.as_str().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("hashing failed: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

/// Checks a password against a stored hash; `None` checks against a fixed dummy hash so that an
/// unknown username takes as long to refuse as a wrong password.
async fn verify_password(password: Password, hash: Option<String>) -> Result<bool, ApiError> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    tokio::task::spawn_blocking(move || {
        let hash = match hash {
            Some(h) => h,
            None => DUMMY
                .get_or_init(|| {
                    let salt = SaltString::generate(&mut OsRng);
                    hasher()
                        .hash_password(b"not a real password", &salt)
                        .map(|h| h.to_string())
                        .unwrap_or_default()
                })
                .clone(),
        };
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        hasher()
            .verify_password(password.as_str().as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn session_cookie(
    state: &AppState,
    token: &str,
    max_age: Duration,
) -> Result<HeaderValue, ApiError> {
    let secure = if state.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        max_age.as_secs()
    ))
    .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Opens a session for `user` and answers with the token in the body and in the cookie.
async fn start_session(
    state: &AppState,
    status: StatusCode,
    user_id: UserId,
    username: Username,
) -> Result<Response, ApiError> {
    let token = new_token();
    let ttl = state.config.session_ttl();
    let expires_at = now_ms().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    state
        .store
        .create_session(hash_token(&token), user_id, expires_at)
        .await?;
    let cookie = session_cookie(state, &token, ttl)?;
    let body = SessionResponse {
        username,
        token,
        expires_at,
    };
    Ok((status, [(SET_COOKIE, cookie)], AppJson(body)).into_response())
}

/// `POST /api/register`: creates an account and logs it in.
#[tracing::instrument(skip_all, fields(username = %credentials.username))]
pub async fn register(
    State(state): State<AppState>,
    AppJson(credentials): AppJson<Credentials>,
) -> Result<Response, ApiError> {
    let (username, password) = parse_credentials(credentials)?;
    let hash = hash_password(password).await?;
    let id = match state.store.create_user(username.clone(), hash).await {
        Ok(id) => id,
        Err(StoreError::Conflict) => {
            return Err(ApiError::Conflict(format!(
                "The username {username} is taken."
            )));
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(user_id = id, "registered");
    start_session(&state, StatusCode::CREATED, id, username).await
}

/// `POST /api/login`: checks the password and opens a session.
#[tracing::instrument(skip_all, fields(username = %credentials.username))]
pub async fn login(
    State(state): State<AppState>,
    AppJson(credentials): AppJson<Credentials>,
) -> Result<Response, ApiError> {
    let (username, password) = parse_credentials(credentials)?;
    let user = state.store.find_user(username).await?;
    let ok = verify_password(password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    match user {
        Some(user) if ok => start_session(&state, StatusCode::OK, user.id, user.username).await,
        _ => Err(ApiError::Unauthorized("Wrong username or password.")),
    }
}

/// `POST /api/logout`: ends the session and closes its WebSockets. Always clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some((token, _)) = request_token(&headers) {
        let session = hash_token(&token);
        state.sessions.remove(&session);
        state.store.delete_session(session).await?;
        state.hub.end_session(session);
    }
    let cookie = session_cookie(&state, "", Duration::ZERO)?;
    Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, cookie)]).into_response())
}

/// `GET /api/me`: who the session belongs to.
pub async fn me(user: AuthUser) -> AppJson<MeResponse> {
    AppJson(MeResponse {
        username: user.username,
    })
}
