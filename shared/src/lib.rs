//! The chat protocol: every frame and HTTP body that crosses the wire, as typed values.
//!
//! Both the server (`backend`) and the browser client (`frontend`) compile against this crate, so
//! a change to the protocol that one side does not follow is a compile error. It has no server or
//! browser dependencies: only `serde`.
//!
//! # Layout
//! - [`values`]: newtypes that parse untrusted input once ([`Username`], [`Password`],
//!   [`RoomName`], [`DisplayName`], [`MessageText`], [`ClientId`], and the [`RoomId`]) with the limits both sides enforce: the client
//!   for instant feedback, the server for enforcement.
//! - [`ws`]: the WebSocket frames, [`ClientMsg`] (client to server) and [`ServerMsg`] (server to
//!   client), internally tagged by a `"type"` field.
//! - [`api`]: the JSON bodies of the HTTP endpoints under `/api`.
//!
//! `docs/protocol.md` at the repository root documents all of it for people who write other
//! clients; it changes in the same commit as this crate.

pub mod api;
pub mod values;
pub mod ws;

pub use api::{
    ApiError, AuditEntry, Credentials, FilterAction, FilterKind, FilterRule, HistoryPage,
    InviteInfo, JoinedRoom, MeResponse, MemberInfo, ModAction, NewAccount, NewDirect, NewFilter,
    NewRoom, PostMessage, Posted, Role, RoomInfo, RoomKind, RoomSettings, SessionResponse,
    UserInfo,
};
pub use values::{
    ClientId, DisplayName, MessageText, Password, RoomId, RoomName, Username, ValueError,
};
pub use ws::{
    ClientFrame, ClientMsg, ErrorCode, MessageEvent, PROTOCOL_VERSION, Removal, ReqOnly, ServerMsg,
    close_code,
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

/// The most rooms one `GET /api/rooms` page holds (and its default size).
pub const ROOMS_PAGE_MAX: u32 = 200;

/// The most people in a direct conversation, its creator included.
pub const DIRECT_MAX_MEMBERS: usize = 10;

/// The longest room topic, in characters.
pub const TOPIC_MAX_CHARS: usize = 500;

/// The room every user can join from the start: its name, and its id (it is the first room of
/// every database).
pub const DEFAULT_ROOM: &str = "general";
/// The id of [`DEFAULT_ROOM`].
pub const DEFAULT_ROOM_ID: RoomId = RoomId(1);

/// Name of the cookie that holds the session token in browsers.
pub const SESSION_COOKIE: &str = "chat_session";
