//! The chat protocol: every frame and HTTP body that crosses the wire, as typed values.
//!
//! Both the server (`backend`) and the browser client (`frontend`) compile against this crate, so
//! a change to the protocol that one side does not follow is a compile error. It has no server or
//! browser dependencies: only `serde`.
//!
//! # Layout
//! - [`values`]: newtypes that parse untrusted input once ([`Username`], [`Password`],
//!   [`RoomName`], [`DisplayName`], [`MessageText`], [`ClientId`], [`Emoji`], and the [`RoomId`]) with the limits both sides enforce: the client
//!   for instant feedback, the server for enforcement.
//! - [`ws`]: the WebSocket frames, [`ClientMsg`] (client to server) and [`ServerMsg`] (server to
//!   client), internally tagged by a `"type"` field.
//! - [`api`]: the JSON bodies of the HTTP endpoints under `/api`.
//!
//! `docs/protocol.md` at the repository root documents all of it for people who write other
//! clients; it changes in the same commit as this crate.

pub mod api;
mod decode;
pub mod values;
pub mod ws;

pub use api::{
    ApiError, AuditEntry, Credentials, EditMessage, EventsPage, FilterAction, FilterKind,
    FilterRule, HistoryPage, InviteInfo, JoinedRoom, MeResponse, MemberInfo, ModAction, NewAccount,
    NewDirect, NewFilter, NewReaction, NewRoom, PostMessage, Posted, ReadMarker, ReadState, Role,
    RoomInfo, RoomKind, RoomSettings, SearchHit, SearchPage, SessionResponse, UserInfo,
};
pub use values::{
    ClientId, DisplayName, Emoji, MAX_MENTIONS, MessageText, Password, RoomId, RoomName, Username,
    ValueError, mentioned_handles,
};
pub use ws::{
    Attachment, ClientFrame, ClientMsg, ErrorCode, EventKind, MessageEvent, PROTOCOL_VERSION,
    Presence, Reaction, Removal, ReqOnly, ServerMsg, close_code,
};

/// Longest message text, in characters (Unicode scalar values).
pub const MAX_MESSAGE_CHARS: usize = 4_000;

/// Largest WebSocket message (and frame) the server accepts, in bytes. A larger one closes the
/// connection with close code 1009 (message too big).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// How many messages a history page holds at most, and how many a join shows.
pub const HISTORY_PAGE: u32 = 50;

/// The most events a `join { since }` replays. A client further behind (or with a `since` above
/// the room's last `seq`) gets the newest page instead, as for a join without `since`, and loads
/// older messages with `history`.
pub const CATCH_UP_MAX: u64 = 1_000;

/// The most different reactions one message can carry (a person may add any of them; a new
/// one beyond this many is refused).
pub const MAX_REACTIONS: usize = 20;

/// How long a `typing` notice lasts, in milliseconds, unless renewed. A client that keeps typing
/// renews it every [`TYPING_RENEW_MS`]; the server announces `typing` with `on: false` when it
/// lapses (a client that vanished stops "typing" within this long).
pub const TYPING_TTL_MS: u64 = 6_000;
/// How often a client that keeps typing renews its notice, in milliseconds.
pub const TYPING_RENEW_MS: u64 = 3_000;

/// Unread and mention counts stop at this many (a client shows `999+`).
pub const UNREAD_CAP: u32 = 1_000;

/// The longest a `GET /api/rooms/{id}/events` long poll waits for news, in seconds (below the
/// 30 s limit of every HTTP request, so that proxies with the common 30 s idle timeout pass it).
pub const LONG_POLL_MAX_SECS: u64 = 25;

/// The most rooms one `GET /api/rooms` page holds (and its default size).
pub const ROOMS_PAGE_MAX: u32 = 200;

/// The most people in a direct conversation, its creator included.
pub const DIRECT_MAX_MEMBERS: usize = 10;

/// The longest room topic, in characters.
pub const TOPIC_MAX_CHARS: usize = 500;

/// The most files one message carries.
pub const MAX_ATTACHMENTS: usize = 10;

/// The longest search query, in characters.
pub const SEARCH_MAX_CHARS: usize = 200;

/// The most hits one search page holds (and its default size).
pub const SEARCH_PAGE_MAX: u32 = 50;

/// The room every user can join from the start: its name, and its id (it is the first room of
/// every database).
pub const DEFAULT_ROOM: &str = "general";
/// The id of [`DEFAULT_ROOM`].
pub const DEFAULT_ROOM_ID: RoomId = RoomId(1);

/// Name of the cookie that holds the session token in browsers.
pub const SESSION_COOKIE: &str = "chat_session";
