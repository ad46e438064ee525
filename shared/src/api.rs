//! JSON bodies of the HTTP endpoints under `/api`.
//!
//! Request bodies carry plain strings rather than the validated newtypes, so that the server can
//! answer a broken field with a 400 whose message names the rule (the newtypes' parse errors)
//! instead of a generic deserialization error.

use serde::{Deserialize, Serialize};

use crate::values::{ClientId, DisplayName, RoomId, RoomName, Username};
use crate::ws::{ErrorCode, MessageEvent};

/// Body of `POST /api/register` and `POST /api/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// See [`crate::Username::parse`] for the rules.
    pub username: String,
    /// See [`crate::Password::parse`] for the rules.
    pub password: String,
}

/// Body of `POST /api/register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAccount {
    /// The login handle: see [`crate::Username::parse`] for the rules.
    pub username: String,
    /// See [`crate::Password::parse`] for the rules.
    pub password: String,
    /// The name shown to others (see [`crate::DisplayName::parse`]); the handle when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// Answer of `POST /api/register` and `POST /api/login`. The same token is also set as the
/// HttpOnly session cookie; non-browser clients send it as `Authorization: Bearer <token>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionResponse {
    /// Who is logged in.
    pub username: Username,
    /// Their display name.
    pub display_name: DisplayName,
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
    /// Their display name.
    pub display_name: DisplayName,
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
    /// The room's stable id: what frames and endpoints address it by.
    pub id: RoomId,
    /// The room's name, for people.
    pub name: RoomName,
    /// The room's highest message `seq` (0 when empty).
    pub last_seq: u64,
    /// How many users are online in it right now.
    pub online: u32,
}

/// Body of `POST /api/rooms/{id}/messages`: the HTTP twin of the `send` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostMessage {
    /// The client's own id for the message; resending it never stores a second one.
    pub client_id: ClientId,
    /// The text, 1 to 4000 characters.
    pub text: String,
}

/// Answer of `POST /api/rooms/{id}/messages`: what the `ack` frame says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    /// The room it was stored in.
    pub room: RoomId,
    /// The client's id for the message.
    pub client_id: ClientId,
    /// The message's server id.
    pub id: u64,
    /// Its `seq` in the room.
    pub seq: u64,
    /// When it was stored (ms since the Unix epoch).
    pub ts: i64,
}

/// Answer of `GET /api/rooms/{id}/messages`: what the `history` frame says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    /// The room read.
    pub room: RoomId,
    /// The messages, oldest first.
    pub messages: Vec<MessageEvent>,
    /// Whether older messages exist.
    pub has_more: bool,
}

/// Answer of `POST /api/rooms/{id}/join`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinedRoom {
    /// The room joined.
    pub room: RoomId,
    /// Its highest `seq` now.
    pub last_seq: u64,
}

/// The body of every HTTP error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong, for programs: `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `rate_limited` (429), `unavailable` (503), `request_timeout` or `internal`.
    pub error: String,
    /// For errors of the chat's rules, the same code an `error` frame would carry (the request
    /// failed for the same reason over either transport).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    /// What went wrong, for people.
    pub message: String,
    /// With `rate_limited` and `unavailable`: how long to wait before trying again, in
    /// milliseconds (the `Retry-After` header says the same in whole seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}
