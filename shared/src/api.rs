//! JSON bodies of the HTTP endpoints under `/api`.
//!
//! Request bodies carry plain strings rather than the validated newtypes, so that the server can
//! answer a broken field with a 400 whose message names the rule (the newtypes' parse errors)
//! instead of a generic deserialization error.

use serde::{Deserialize, Serialize};

use crate::values::{RoomName, Username};

/// Body of `POST /api/register` and `POST /api/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// See [`crate::Username::parse`] for the rules.
    pub username: String,
    /// See [`crate::Password::parse`] for the rules.
    pub password: String,
}

/// Answer of `POST /api/register` and `POST /api/login`. The same token is also set as the
/// HttpOnly session cookie; non-browser clients send it as `Authorization: Bearer <token>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionResponse {
    /// Who is logged in.
    pub username: Username,
    /// The session token.
    pub token: String,
    /// When the session ends, in milliseconds since the Unix epoch.
    pub expires_at: i64,
}

/// Answer of `GET /api/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeResponse {
    /// Who the session belongs to.
    pub username: Username,
}

/// Body of `POST /api/rooms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRoom {
    /// See [`crate::RoomName::parse`] for the rules.
    pub name: String,
}

/// One room in `GET /api/rooms` (and the answer of `POST /api/rooms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// The room's name.
    pub name: RoomName,
    /// The room's highest message `seq` (0 when empty).
    pub last_seq: u64,
    /// How many users are online in it right now.
    pub online: u32,
}

/// The body of every HTTP error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong, for programs: `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `rate_limited` (429), `unavailable` (503), `request_timeout` or `internal`.
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
    /// With `rate_limited` and `unavailable`: how long to wait before trying again, in
    /// milliseconds (the `Retry-After` header says the same in whole seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}
