//! Accounts and sessions: registration, login, logout, and resolving a request to its user.
//!
//! Passwords are hashed with argon2id on a bounded pool of threads (see [`crate::password`]);
//! login and registration are rate-limited per address, and login per username. A session
//! is a random 256-bit token; the store keeps only its SHA-256, so a leaked database does not
//! leak usable sessions. Browsers hold the token in an HttpOnly, SameSite=Strict cookie; other
//! clients send it as `Authorization: Bearer <token>`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use axum::extract::{FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use shared::{
    Credentials, DisplayName, MeResponse, NewAccount, Password, SESSION_COOKIE, SessionResponse,
    Username,
};

use crate::error::{ApiError, AppJson};
use crate::limits::RetryAfter;
use crate::password::HashError;
use crate::startup::AppState;
use crate::store::{SessionRecord, StoreError, UserId, now_ms};

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// Their id.
    pub id: UserId,
    /// Their login handle.
    pub username: Username,
    /// The name others see.
    pub display_name: DisplayName,
    /// Whether they administer the server.
    pub is_admin: bool,
    /// The SHA-256 of the session token: identifies the session without holding the secret.
    pub session: [u8; 32],
    /// When the session ends (ms since the Unix epoch): open sockets close then.
    pub expires_at: i64,
}

/// Sessions already resolved, so that an upgrade or API call does not read the store each time,
/// and the sessions revoked recently, so that revocation is final.
///
/// # Why revocations are remembered
/// A cache miss reads the store, then caches what it read. A logout can run between the two: if
/// the read was taken before the session's row was deleted, caching it afterwards would bring the
/// session back to life (and it did, in most trials, before this design). So a logout first
/// records the session as revoked here, then deletes the row; a cache fill is refused for a
/// revoked session, and sockets check the mark after they register (see [`crate::ws`]).
///
/// A revocation is kept until its row is deleted and [`Self::KEEP_REVOKED`] has passed. Forgetting
/// one raises `floor`: a read that started before a forgotten revocation (its ticket is below
/// `floor`) is not cached but read again, and the new read can no longer see the deleted row. So
/// the guarantee does not depend on how long reads take.
///
/// With several server nodes sharing one store, a node's logout reaches the others' caches over
/// the bus (`crate::bus`) and is recorded the same way there; a node whose bus was down forgets
/// its cached sessions and checks the sessions of its open sockets against the store (see
/// `crate::startup`). A `std` mutex: held only for map operations, never across `.await`.
#[derive(Debug, Default)]
pub struct SessionCache {
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    live: HashMap<[u8; 32], SessionRecord>,
    revoked: HashMap<[u8; 32], Revocation>,
    /// Counts revocations; a read's ticket is its value when the read started.
    epoch: u64,
    /// Reads with a ticket below this may have missed a forgotten revocation.
    floor: u64,
}

#[derive(Debug, Clone, Copy)]
struct Revocation {
    /// The epoch of this revocation's last step: the revocation itself, then its delete.
    epoch: u64,
    /// When its row was deleted from the store (`None`: not yet).
    deleted: Option<std::time::Instant>,
}

/// What the cache knows of a session.
#[derive(Debug)]
enum Cached {
    /// Live (expiry still to be checked).
    Live(SessionRecord),
    /// Revoked: refuse.
    Revoked,
    /// Not known: read the store, then [`SessionCache::fill`] with this ticket.
    Unknown(u64),
}

/// The outcome of caching a store read.
#[derive(Debug, PartialEq, Eq)]
enum Fill {
    /// Cached.
    Cached,
    /// The session was revoked meanwhile.
    Revoked,
    /// The read may predate a revocation that is no longer remembered: read again.
    Stale,
}

impl SessionCache {
    /// Entries kept at most; past it the cache starts over (sessions are re-read on demand).
    const MAX: usize = 100_000;
    /// How long a revocation is remembered after its row was deleted.
    const KEEP_REVOKED: Duration = Duration::from_secs(300);

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, session: &[u8; 32]) -> Cached {
        let inner = self.lock();
        if inner.revoked.contains_key(session) {
            return Cached::Revoked;
        }
        match inner.live.get(session) {
            Some(record) => Cached::Live(record.clone()),
            None => Cached::Unknown(inner.epoch),
        }
    }

    fn fill(&self, session: [u8; 32], record: SessionRecord, ticket: u64) -> Fill {
        let mut inner = self.lock();
        if inner.revoked.contains_key(&session) {
            return Fill::Revoked;
        }
        if ticket < inner.floor {
            return Fill::Stale;
        }
        if inner.live.len() >= Self::MAX {
            inner.live.clear();
        }
        inner.live.insert(session, record);
        Fill::Cached
    }

    /// Forgets a live session without revoking it (it expired: the store refuses it too).
    fn forget(&self, session: &[u8; 32]) {
        self.lock().live.remove(session);
    }

    /// Marks a session revoked, before its row is deleted. From now on it is refused on every
    /// path of this process.
    pub fn revoke(&self, session: [u8; 32]) {
        let mut inner = self.lock();
        inner.epoch += 1;
        let epoch = inner.epoch;
        inner.live.remove(&session);
        inner.revoked.insert(
            session,
            Revocation {
                epoch,
                deleted: None,
            },
        );
    }

    /// Records that a revoked session's row is deleted, so the mark may be forgotten later.
    /// This is a new epoch: a read with an older ticket may have started before the delete and
    /// seen the row, so once the mark is forgotten such a read is re-done, never cached.
    pub fn revoked_deleted(&self, session: &[u8; 32]) {
        let mut inner = self.lock();
        inner.epoch += 1;
        let epoch = inner.epoch;
        if let Some(r) = inner.revoked.get_mut(session) {
            r.epoch = epoch;
            r.deleted = Some(std::time::Instant::now());
        }
    }

    /// Forgets revocations whose rows were deleted [`Self::KEEP_REVOKED`] ago (run periodically).
    pub fn prune(&self) {
        let mut inner = self.lock();
        let now = std::time::Instant::now();
        let mut floor = inner.floor;
        inner.revoked.retain(|_, r| {
            let keep = r
                .deleted
                .is_none_or(|at| now.duration_since(at) < Self::KEEP_REVOKED);
            if !keep {
                floor = floor.max(r.epoch);
            }
            keep
        });
        inner.floor = floor;
    }

    /// Forgets every cached live session (they are read from the store again on their next
    /// use): a node that may have missed other nodes' logouts (its bus was down) does this.
    pub fn forget_live(&self) {
        self.lock().live.clear();
    }

    /// Whether a session is known to be revoked.
    pub fn is_revoked(&self, session: &[u8; 32]) -> bool {
        self.lock().revoked.contains_key(session)
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
    resolve(state, hash_token(token)).await
}

/// Resolves a session (by its token's hash) to its user: from the cache, or from the store.
pub async fn resolve(state: &AppState, session: [u8; 32]) -> Result<AuthUser, ApiError> {
    const INVALID: ApiError = ApiError::Unauthorized("invalid session");
    let mut attempts = 0;
    let record = loop {
        let ticket = match state.sessions.get(&session) {
            Cached::Live(record) => break record,
            Cached::Revoked => return Err(INVALID),
            Cached::Unknown(ticket) => ticket,
        };
        let record = state.store.find_session(session).await?.ok_or(INVALID)?;
        match state.sessions.fill(session, record.clone(), ticket) {
            Fill::Cached => break record,
            Fill::Revoked => return Err(INVALID),
            // Read again: this read started before a revocation that is no longer
            // remembered, and the next one starts after its row was deleted.
            Fill::Stale if attempts == 0 => attempts += 1,
            Fill::Stale => return Err(ApiError::Unavailable(RetryAfter(Duration::from_secs(1)))),
        }
    };
    if record.expires_at <= now_ms() {
        state.sessions.forget(&session);
        // The row is of no use any more; delete it now rather than wait for the sweep.
        let store = Arc::clone(&state.store);
        tokio::spawn(async move {
            if let Err(e) = store.delete_session(session).await {
                tracing::warn!(error = %e, "cannot delete an expired session");
            }
        });
        return Err(ApiError::Unauthorized("session expired"));
    }
    Ok(AuthUser {
        id: record.user_id,
        username: record.username,
        display_name: record.display_name,
        is_admin: record.is_admin,
        session,
        expires_at: record.expires_at,
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

impl From<HashError> for ApiError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => ApiError::Unavailable(RetryAfter(Duration::from_secs(1))),
            other => ApiError::Internal(other.to_string()),
        }
    }
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
    let secure = if state.config.cookies_secure() {
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
    display_name: DisplayName,
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
        display_name,
        token,
        expires_at,
    };
    Ok((status, [(SET_COOKIE, cookie)], AppJson(body)).into_response())
}

/// Refuses a login or registration from `addr` over its rate limit, slowly (see [`tarpit`]).
async fn check_auth_rate(state: &AppState, addr: IpAddr) -> Result<(), ApiError> {
    match state.limits.auth_attempt(addr) {
        Ok(()) => Ok(()),
        Err(wait) => Err(tarpit(ApiError::RateLimited(wait)).await),
    }
}

/// The longest a refusal of a login or registration is held back.
const TARPIT: Duration = Duration::from_secs(1);

/// Holds a refusal back for up to [`TARPIT`] (the rest of the wait goes in `retry_after_ms`).
///
/// An HTTP/1.1 connection cannot ask again before it is answered, so a flood of refused
/// attempts then costs the server a sleeping timer per connection instead of a request
/// handled as fast as the attacker can send them: measured, a single address sent 46,000
/// refused logins a second without it, which slowed everyone else's messages.
async fn tarpit(refusal: ApiError) -> ApiError {
    let (ApiError::RateLimited(wait) | ApiError::Unavailable(wait)) = &refusal else {
        return refusal;
    };
    // Jittered, so that a crowd of refused connections does not come back in step.
    let jitter = f64::from(OsRng.next_u32() % 1000) / 2000.0 + 0.5;
    let hold = wait.0.min(TARPIT).mul_f64(jitter);
    tokio::time::sleep(hold).await;
    let rest = RetryAfter(wait.0.saturating_sub(hold).max(Duration::from_millis(1)));
    match refusal {
        ApiError::RateLimited(_) => ApiError::RateLimited(rest),
        _ => ApiError::Unavailable(rest),
    }
}

/// `POST /api/register`: creates an account and logs it in.
///
/// A taken name is answered 409 (the form needs to say so), which tells whether an account
/// exists; the per-address rate limit keeps that from listing accounts quickly.
#[tracing::instrument(skip_all, fields(username = %account.username))]
pub async fn register(
    State(state): State<AppState>,
    ClientIp(addr): ClientIp,
    AppJson(account): AppJson<NewAccount>,
) -> Result<Response, ApiError> {
    check_auth_rate(&state, addr).await?;
    let (username, password) = parse_credentials(Credentials {
        username: account.username,
        password: account.password,
    })?;
    let display_name = match account.display_name {
        Some(raw) => DisplayName::parse(raw).map_err(|e| ApiError::BadRequest(e.to_string()))?,
        None => DisplayName::from(&username),
    };
    let hash = match state.hasher.hash(password.as_str()).await {
        Ok(hash) => hash,
        Err(e) => return Err(tarpit(e.into()).await),
    };
    let id = match state
        .store
        .create_user(username.clone(), display_name.clone(), hash)
        .await
    {
        Ok(id) => id,
        Err(StoreError::Conflict) => {
            return Err(ApiError::Conflict(format!(
                "The username {username} is taken."
            )));
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(user_id = id, %addr, "registered");
    start_session(&state, StatusCode::CREATED, id, username, display_name).await
}

/// `POST /api/login`: checks the password and opens a session. Failed attempts are logged
/// (name and address, never the password) as an audit trail.
#[tracing::instrument(skip_all, fields(username = %credentials.username))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(addr): ClientIp,
    AppJson(credentials): AppJson<Credentials>,
) -> Result<Response, ApiError> {
    check_auth_rate(&state, addr).await?;
    let (username, password) = parse_credentials(credentials)?;
    if let Err(wait) = state
        .limits
        .login_attempt(&username.as_str().to_ascii_lowercase())
    {
        tracing::warn!(%addr, "login refused: too many attempts for this username");
        return Err(tarpit(ApiError::RateLimited(wait)).await);
    }
    let user = state.store.find_user(username.clone()).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let ok = match state.hasher.verify(password.as_str(), hash).await {
        Ok(ok) => ok,
        Err(e) => return Err(tarpit(e.into()).await),
    };
    match user {
        Some(user) if ok => {
            start_session(
                &state,
                StatusCode::OK,
                user.id,
                user.username,
                user.display_name,
            )
            .await
        }
        Some(_) => {
            tracing::warn!(%addr, "failed login: wrong password");
            Err(ApiError::Unauthorized("Wrong username or password."))
        }
        None => {
            tracing::warn!(%addr, "failed login: no such user");
            Err(ApiError::Unauthorized("Wrong username or password."))
        }
    }
}

/// `POST /api/logout`: ends the session and closes its WebSockets. Always clears the cookie.
///
/// The order matters (see [`SessionCache`]): mark revoked, close the sockets, delete the row,
/// then let the mark age out.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Only a live session is revoked: a made-up token costs no mark and no write.
    if let Some((token, _)) = request_token(&headers)
        && let Ok(user) = authenticate(&state, &token).await
    {
        let session = user.session;
        state.sessions.revoke(session);
        state.hub.end_session(session);
        state.store.delete_session(session).await?;
        state.sessions.revoked_deleted(&session);
    }
    let cookie = session_cookie(&state, "", Duration::ZERO)?;
    Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, cookie)]).into_response())
}

/// `GET /api/me`: who the session belongs to.
pub async fn me(user: AuthUser) -> AppJson<MeResponse> {
    AppJson(MeResponse {
        username: user.username,
        display_name: user.display_name,
    })
}

/// The client's IP address, as the accept loop recorded it (unspecified if it did not, which
/// only happens when the router is driven without [`crate::serve`]).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            crate::serve::client_addr(&parts.extensions)
                .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip()),
        ))
    }
}
