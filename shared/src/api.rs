//! JSON bodies of the HTTP endpoints under `/api`.
//!
//! Request bodies carry plain strings rather than the validated newtypes, so that the server can
//! answer a broken field with a 400 whose message names the rule (the newtypes' parse errors)
//! instead of a generic deserialization error.

use serde::{Deserialize, Serialize};

use crate::values::{ClientId, DisplayName, RoomId, RoomName, Username};
pub use crate::ws::Attachment;
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
    /// `public` (the default) or `private`.
    #[serde(default)]
    pub kind: RoomKind,
    /// Its topic, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

/// One room in `GET /api/rooms` (and the answer of `POST /api/rooms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// The room's stable id: what frames and endpoints address it by.
    pub id: RoomId,
    /// The room's name, for people. For a direct room, its people's names at its creation; show
    /// `direct` (without yourself) instead.
    pub name: RoomName,
    /// Public, private or direct.
    #[serde(default)]
    pub kind: RoomKind,
    /// Its topic (empty when none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub topic: String,
    /// Slow mode: members may post once per this many seconds (0: off).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub slow_mode_secs: u32,
    /// Your role in it, if you are a member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// For a direct room, its people (handles, you included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub direct: Vec<Username>,
    /// The room's highest `seq` (0 when empty).
    pub last_seq: u64,
    /// How many users are online in it right now.
    pub online: u32,
    /// For a member: the highest `seq` they have read (see the `read` frame).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub read_seq: u64,
    /// For a member: messages by others above `read_seq`, deleted ones not counted (capped at
    /// [`crate::UNREAD_CAP`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unread: u32,
    /// For a member: how many of those mention them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mentions: u32,
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// Body of `POST /api/rooms/{id}/messages`: the HTTP twin of the `send` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostMessage {
    /// The client's own id for the message; resending it never stores a second one. May be
    /// given instead as the `Idempotency-Key` header; without either, a retry may store the
    /// message twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    /// The text, 1 to 4000 characters.
    pub text: String,
    /// The `seq` of the message this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
    /// Ids of the sender's unsent uploads to this room (see the `send` frame).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<u64>,
}

/// One hit of `GET /api/search`: the message as it is now, and where it is, to show it in
/// context (load the room's history around `message.seq`) and jump to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The room's name (the message's `room` is its id).
    pub room_name: RoomName,
    /// The message, with its `room`, `seq`, text, author and attachments.
    pub message: MessageEvent,
}

/// Answer of `GET /api/search`: hits ranked (the whole query as a phrase first, then every
/// word anywhere), newest first within a rank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchPage {
    /// The hits of this page.
    pub hits: Vec<SearchHit>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Body of `PATCH /api/rooms/{id}/messages/{seq}`: the HTTP twin of the `edit` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditMessage {
    /// The new text, 1 to 4000 characters.
    pub text: String,
}

/// Body of `POST /api/rooms/{id}/messages/{seq}/reactions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewReaction {
    /// The emoji (see [`crate::Emoji::parse`]).
    pub emoji: String,
}

/// Body of `POST /api/rooms/{id}/read`: the HTTP twin of the `read` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadMarker {
    /// The highest `seq` read; absent: the room's newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// Answer of `POST /api/rooms/{id}/read`: what the `read` frame says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadState {
    /// The room.
    pub room: RoomId,
    /// The highest `seq` read.
    pub seq: u64,
    /// Unread messages by others.
    pub unread: u32,
    /// Of those, how many mention you.
    pub mentions: u32,
}

/// Answer of `GET /api/rooms/{id}/events?since=N`: the log after `since`, every kind, in
/// order (the long-poll twin of a socket's live events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsPage {
    /// The room.
    pub room: RoomId,
    /// The events with `seq > since`, oldest first (none if the wait ran out).
    pub events: Vec<MessageEvent>,
    /// Ask again with this as `since`.
    pub next: u64,
    /// Whether more events are ready (ask again at once).
    pub more: bool,
}

/// Answer of `POST /api/rooms/{id}/messages` and of the other changes to messages: what the
/// `ack` frame says (`id` and `seq` 0 when the change had nothing to do).
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
    /// Whether more messages exist past the page: older ones (a page `before` a `seq`, the
    /// default), or newer ones (a page `after` a `seq`).
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
    /// `conflict`, `rate_limited` (429), `unavailable` (503), `request_timeout`, `internal`, and
    /// for uploads `too_large` and `over_quota` (413), `unsupported_type` (415) and `bad_image` (422).
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

/// What kind of room a room is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// Listed for everyone; anyone may join.
    #[default]
    Public,
    /// Invisible to non-members; joined by invitation only.
    Private,
    /// A direct conversation between 2 to [`crate::DIRECT_MAX_MEMBERS`] people, reopened (not
    /// duplicated) when the same people write again.
    Direct,
    /// A kind this client does not know (from a newer server).
    #[serde(other)]
    Unknown,
}

/// A member's role in a room. Server admins may do everything a room's owner may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An ordinary member.
    Member,
    /// May kick, ban, mute, set slow mode, the topic and the room's filters, and read the audit
    /// log.
    Moderator,
    /// The room's creator: a moderator who also appoints moderators.
    Owner,
    /// A role this client does not know (from a newer server): treat it as a member's.
    #[serde(other)]
    Unknown,
}

/// One member of a room, in `GET /api/rooms/{id}/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Their handle.
    pub user: Username,
    /// Their display name.
    pub display_name: DisplayName,
    /// Their role in the room.
    pub role: Role,
    /// Whether they have a connection in the room now.
    pub online: bool,
    /// Until when they may not post (ms since the Unix epoch), if muted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<i64>,
}

/// A person, in search results of `GET /api/users?q=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// Their handle.
    pub user: Username,
    /// Their display name.
    pub display_name: DisplayName,
}

/// Body of `POST /api/direct`: the other people of a direct conversation, by handle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDirect {
    /// 1 to 9 handles (the caller is added).
    pub users: Vec<String>,
}

/// Body of the moderation endpoints that name a person (invite, kick, ban, mute, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ModAction {
    /// The person acted on, by handle.
    pub user: String,
    /// Why, for the audit log and the person concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a mute: how long, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u32>,
    /// For a role change: the new role (`moderator` or `member`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

/// Body of `PATCH /api/rooms/{id}`: what a moderator may change about a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RoomSettings {
    /// The topic (at most 500 characters; empty clears it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Slow mode: members may post once per this many seconds (0 turns it off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_mode_secs: Option<u32>,
}

/// How a filter rule's pattern is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterKind {
    /// A word or phrase, matched as a whole word ignoring case (in Chinese and Japanese text,
    /// which has no spaces, wherever it occurs).
    Keyword,
    /// A regular expression (the syntax of Rust's `regex` crate; linear time).
    Regex,
    /// A kind this client does not know (from a newer server).
    #[serde(other)]
    Unknown,
}

/// What a filter rule does to a message it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterAction {
    /// Refuse the message, naming the rule.
    Refuse,
    /// Let it through with the matched text replaced by `*`.
    Mask,
    /// An action this client does not know (from a newer server).
    #[serde(other)]
    Unknown,
}

/// Body of `POST /api/rooms/{id}/filters` and `POST /api/filters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewFilter {
    /// Keyword or regular expression.
    pub kind: FilterKind,
    /// The keyword or expression (at most 200 characters).
    pub pattern: String,
    /// Refuse or mask.
    pub action: FilterAction,
}

/// A stored filter rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterRule {
    /// Its id.
    pub id: i64,
    /// The room it applies to; none for a server-wide rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomId>,
    /// Keyword or regular expression.
    pub kind: FilterKind,
    /// The pattern.
    pub pattern: String,
    /// Refuse or mask.
    pub action: FilterAction,
    /// Who added it.
    pub created_by: Username,
    /// When (ms since the Unix epoch).
    pub ts: i64,
}

/// One line of a room's audit log (`GET /api/rooms/{id}/audit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Its id; pages go backwards with `before=<id>`.
    pub id: i64,
    /// The room.
    pub room: RoomId,
    /// Who acted.
    pub actor: Username,
    /// What they did: `kick`, `ban`, `unban`, `mute`, `unmute`, `role`, `slow_mode`, `topic`,
    /// `filter_add`, `filter_remove`, `invite`.
    pub action: String,
    /// Whom it concerned, if a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Username>,
    /// The reason given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Details (the new role, the mute's length, the filter's pattern, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When (ms since the Unix epoch).
    pub ts: i64,
}

/// A pending invitation, in `GET /api/invites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteInfo {
    /// The room (visible to the invitee while the invitation stands).
    pub room: RoomInfo,
    /// Who invited.
    pub by: Username,
    /// Their display name.
    pub by_name: DisplayName,
    /// When (ms since the Unix epoch).
    pub ts: i64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
