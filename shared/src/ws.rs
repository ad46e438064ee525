//! WebSocket frames. Every frame is one JSON text message: an object whose `"type"` field names
//! the variant (`snake_case`), with the variant's fields beside it.
//!
//! The ordering contract: within a room, the server assigns each stored event the next `seq`
//! (1, 2, 3, ... with no holes) and delivers `message` frames to a connection in increasing `seq`
//! order, without duplicates. A client that remembers the highest `seq` it has seen can ask for
//! exactly what it missed with `join { since }`.
//!
//! Requests and answers: every client frame may carry a `req` number of the client's choosing,
//! and the answer to it (`joined`, `left`, `history`, `ack`, `pong` or `error`) carries the same
//! `req`, so a client never has to guess which request an answer belongs to.
//!
//! The log holds every kind of change, not only messages: edits, deletions and reactions are
//! events with their own `seq`, delivered as `message` frames whose `kind` says what they are
//! (see [`EventKind`]), so that a client that was away gets every change exactly once, in order,
//! by the same catch-up. A `history` page instead holds messages as they are now (edits applied,
//! deleted ones blanked, reactions counted): see [`ServerMsg::History`].
//!
//! Growing the protocol: new frame types and error codes may appear in any release. A client
//! reads an unknown `type` as [`ServerMsg::Unknown`] and an unknown code as
//! [`ErrorCode::Unknown`], and must carry on (ignore the frame; treat the error as a generic
//! failure of the request it answers). `hello` says which [`PROTOCOL_VERSION`] the server speaks.

use serde::{Deserialize, Serialize};

use crate::api::{InviteInfo, RoomInfo};
use crate::values::{ClientId, DisplayName, RoomId, Username};

/// The version of this protocol, sent in `hello`. It grows when frames change in a way an older
/// client should know about; additions that old clients can ignore do not need it. Version 3
/// added event kinds other than `message` to the log.
pub const PROTOCOL_VERSION: u32 = 3;

/// A frame from the client: a request, and the optional `req` that its answer will carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientFrame {
    /// Any number the client chooses; echoed in the answer. Clients that send none get answers
    /// without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req: Option<u64>,
    /// The request itself (its `type` and fields sit beside `req` in the JSON object).
    #[serde(flatten)]
    pub msg: ClientMsg,
}

impl From<ClientMsg> for ClientFrame {
    fn from(msg: ClientMsg) -> Self {
        Self { req: None, msg }
    }
}

/// The request id of a frame that could not be parsed as a [`ClientFrame`], if it has one, so
/// that even the `bad_frame` error can be matched to its request.
#[derive(Debug, Default, Deserialize)]
pub struct ReqOnly {
    /// The frame's `req`, if it is a number.
    #[serde(default)]
    pub req: Option<u64>,
}

/// A request from the client to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// Subscribe this connection to a room (and become a member of it).
    ///
    /// Without `since`, the server answers `joined` then one `history` frame with the newest
    /// messages. With `since`, it answers `joined` then every `message` with `seq > since`, in
    /// order: the catch-up after a reconnect.
    Join {
        /// The room to join.
        room: RoomId,
        /// The highest `seq` this client already has for the room.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
    },
    /// Unsubscribe this connection from a room.
    Leave {
        /// The room to leave.
        room: RoomId,
    },
    /// Post a message to a room this connection has joined.
    ///
    /// `text` is checked by the server with [`crate::MessageText::parse`]. `client_id` makes the
    /// send idempotent: resending the same id never stores a second message.
    Send {
        /// The room to post to.
        room: RoomId,
        /// The client's own id for this message.
        client_id: ClientId,
        /// The text, 1 to 4000 characters (Markdown source, see docs/protocol.md).
        text: String,
        /// The `seq` of the message this one answers, in the same room.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<u64>,
        /// Ids of files uploaded to this room by the sender (`POST /api/rooms/{id}/files`) and
        /// not yet sent, at most [`crate::MAX_ATTACHMENTS`]. With attachments, `text` may be
        /// empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<u64>,
    },
    /// Replace the text of your own message (by its `seq`). Answered by `ack`; the room sees an
    /// `edit` event. The room's filters apply to the new text.
    Edit {
        /// The room.
        room: RoomId,
        /// The client's own id for this change; resending it never applies it twice.
        client_id: ClientId,
        /// The `seq` of the message to change.
        target: u64,
        /// The new text, 1 to 4000 characters.
        text: String,
    },
    /// Delete a message: your own, or anyone's if you moderate the room. Its text is erased from
    /// the server. Answered by `ack`; the room sees a `delete` event.
    Delete {
        /// The room.
        room: RoomId,
        /// The client's own id for this change.
        client_id: ClientId,
        /// The `seq` of the message to delete.
        target: u64,
    },
    /// Add (`on: true`, the default) or remove your reaction to a message. Answered by `ack`
    /// (with `seq` 0 when nothing changed: the reaction was already so); the room sees a `react`
    /// or `unreact` event.
    React {
        /// The room.
        room: RoomId,
        /// The client's own id for this change.
        client_id: ClientId,
        /// The `seq` of the message.
        target: u64,
        /// The reaction (see [`crate::Emoji::parse`]).
        emoji: String,
        /// Add it (`true`) or take it back (`false`).
        #[serde(default = "yes")]
        on: bool,
    },
    /// You have read the room up to `seq`. The read position only moves forward; every
    /// connection of yours gets a `read` frame with the new unread counts. No answer otherwise
    /// (an `error` if refused).
    Read {
        /// The room.
        room: RoomId,
        /// The highest `seq` you have read.
        seq: u64,
    },
    /// You are typing in a room (`on: true`, the default; renew every [`crate::TYPING_RENEW_MS`])
    /// or stopped (`on: false`). Not stored; no answer.
    Typing {
        /// The room.
        room: RoomId,
        /// Typing or not.
        #[serde(default = "yes")]
        on: bool,
    },
    /// This connection's person is active (`online`) or away (idle, or the tab hidden). A person
    /// is away when every connection of theirs says so. No answer.
    Presence {
        /// `online` or `away`.
        status: Presence,
    },
    /// Ask for a page of older messages: those with `seq < before`, newest last.
    History {
        /// The room to read.
        room: RoomId,
        /// Only messages with a `seq` below this one.
        before: u64,
        /// How many at most (default and maximum: [`crate::HISTORY_PAGE`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Application-level heartbeat: the server answers `pong` with the same `id`.
    Ping {
        /// Any number; echoed back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
}

fn yes() -> bool {
    true
}

/// One event of a room's log as delivered to clients: a message, or a change to one.
///
/// Which fields are set depends on the `kind`:
/// - `message`: `text`, and `reply_to` and `mentions` when it has them. In a `history` page, or
///   when read again later, it also says how it is now: `edited`, `deleted` (then `text` is
///   empty), `reactions`.
/// - `edit`: `target` (the message's `seq`), the new `text` and its `mentions`. `ts` is when it
///   was edited.
/// - `delete`: `target`. `author` is who deleted it (the author, or a moderator).
/// - `react` and `unreact`: `target` and `emoji`; `author` is who reacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageEvent {
    /// The room it was posted in.
    pub room: RoomId,
    /// Its position in the room: 1 for the first event, then +1 each, with no holes.
    pub seq: u64,
    /// What it is (absent: `message`).
    #[serde(default, skip_serializing_if = "EventKind::is_message")]
    pub kind: EventKind,
    /// Its id, unique across the server.
    pub id: u64,
    /// Who wrote it (their login handle).
    pub author: Username,
    /// The author's display name (as it is now, or was when the message went out live).
    pub author_name: DisplayName,
    /// The text, exactly as sent (Markdown source): render it with the rules in
    /// docs/protocol.md, never as HTML. Empty for kinds without text and deleted messages.
    #[serde(default)]
    pub text: String,
    /// When the server stored it, in milliseconds since the Unix epoch (UTC).
    pub ts: i64,
    /// The id its author's client gave it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    /// For a change: the `seq` of the message it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<u64>,
    /// For a message: the `seq` of the message it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
    /// For a reaction: the emoji.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    /// For a message or an edit: the room's members its text mentions (`@handle`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<Username>,
    /// For a message read back: when it was last edited (ms since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited: Option<i64>,
    /// For a message read back: when it was deleted (its text is gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<i64>,
    /// For a message read back: its reactions, each with who reacted, in the order they first
    /// appeared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
    /// For a message: the files it carries, in the order they were sent (gone when the message
    /// is deleted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

/// A file carried by a message: enough to show it (an image's box can be reserved before it
/// loads) and to fetch it from `GET /api/files/{id}` (and `/api/files/{id}/thumbnail`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The file's id.
    pub id: u64,
    /// Its name as the uploader gave it (for display and the download's file name only).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its type, from its content (magic bytes), never from its name.
    pub mime: String,
    /// For an image: its width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// For an image: its height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Whether `/api/files/{id}/thumbnail` exists (images only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub thumbnail: bool,
}

impl MessageEvent {
    /// A plain message, as stored by a `send` (the other fields empty).
    pub fn message(
        room: RoomId,
        seq: u64,
        id: u64,
        author: Username,
        author_name: DisplayName,
        text: String,
        ts: i64,
    ) -> Self {
        Self {
            room,
            seq,
            kind: EventKind::Message,
            id,
            author,
            author_name,
            text,
            ts,
            client_id: None,
            target: None,
            reply_to: None,
            emoji: None,
            mentions: Vec::new(),
            edited: None,
            deleted: None,
            reactions: Vec::new(),
            attachments: Vec::new(),
        }
    }

    /// Whether it is a message (not a change to one).
    pub fn is_message(&self) -> bool {
        self.kind == EventKind::Message
    }
}

/// What an event of the log is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A message.
    #[default]
    Message,
    /// A new text for the message `target`.
    Edit,
    /// The message `target` was deleted.
    Delete,
    /// `author` reacted to `target` with `emoji`.
    React,
    /// `author` took back their `emoji` reaction to `target`.
    Unreact,
    /// A kind this client does not know (from a newer server): skip it (its `seq` still counts).
    #[serde(other)]
    Unknown,
}

impl EventKind {
    /// Whether it is [`EventKind::Message`].
    pub fn is_message(&self) -> bool {
        *self == EventKind::Message
    }

    /// Its name on the wire (and in the store).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Message => "message",
            EventKind::Edit => "edit",
            EventKind::Delete => "delete",
            EventKind::React => "react",
            EventKind::Unreact => "unreact",
            EventKind::Unknown => "unknown",
        }
    }
}

/// One reaction on a message, and who reacted with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    /// The emoji.
    pub emoji: String,
    /// Who reacted, in the order they did.
    pub users: Vec<Username>,
}

/// Whether a person is around.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Connected and active.
    #[default]
    Online,
    /// Connected, but idle or with the app hidden.
    Away,
    /// Not connected.
    Offline,
    /// A state this client does not know: treat it as online.
    #[serde(other)]
    Unknown,
}

/// A frame from the server to the client. (Read by a hand-written `Deserialize` that makes one
/// pass over the object: see `shared/src/decode.rs`.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The first frame on every connection.
    Hello {
        /// Who the connection is authenticated as.
        user: Username,
        /// Their display name.
        display_name: DisplayName,
        /// The [`PROTOCOL_VERSION`] the server speaks.
        protocol: u32,
        /// The server pings at this interval; a client should treat this long plus a margin
        /// without any frame as a dead connection (send `ping` to provoke one).
        heartbeat_ms: u64,
    },
    /// The answer to `join`.
    Joined {
        /// The request's `req`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        req: Option<u64>,
        /// The room joined.
        room: RoomId,
        /// The room's highest `seq` when the join was handled.
        last_seq: u64,
        /// Users with at least one connection in the room, sorted.
        online: Vec<Username>,
        /// Those of `online` who are away, sorted.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        away: Vec<Username>,
    },
    /// The answer to `leave`.
    Left {
        /// The request's `req`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        req: Option<u64>,
        /// The room left.
        room: RoomId,
    },
    /// A message stored in a room this connection has joined (live, or during catch-up).
    /// (Boxed: an event is several times the size of every other frame.)
    Message(Box<MessageEvent>),
    /// A page of older messages, sorted by `seq` ascending: the answer to `history`, and the
    /// newest page after a `join` without `since`.
    ///
    /// It holds messages only (`kind` `message`), each as it is now: changes made to them are
    /// already applied, so a client need not load the edits, deletions and reactions between
    /// them. Pages follow each other by message: ask for the next with `before` set to the
    /// first `seq` of this one.
    History {
        /// The request's `req`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        req: Option<u64>,
        /// The room read.
        room: RoomId,
        /// The messages, oldest first.
        messages: Vec<MessageEvent>,
        /// Whether messages older than the first of this page exist.
        has_more: bool,
    },
    /// The server stored (or had already stored) the message or change sent with this
    /// `client_id`. For a change that had nothing to do (a reaction already there, a message
    /// already deleted, an edit to the same text), `id` and `seq` are 0.
    Ack {
        /// The request's `req`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        req: Option<u64>,
        /// The room it was stored in.
        room: RoomId,
        /// The client's id for the message.
        client_id: ClientId,
        /// The message's server id.
        id: u64,
        /// The message's `seq` in the room.
        seq: u64,
        /// When it was stored (ms since the Unix epoch).
        ts: i64,
    },
    /// A user came online in a room (their first connection joined it), went offline (their
    /// last connection left it), or went away or came back.
    Presence {
        /// The room.
        room: RoomId,
        /// The user.
        user: Username,
        /// `true` while they have a connection in the room, `false` when they left.
        online: bool,
        /// `away` when online but idle; absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<Presence>,
    },
    /// Your read position in a room moved (from this or another of your connections), with the
    /// counts that are now unread.
    Read {
        /// The room.
        room: RoomId,
        /// The highest `seq` you have read.
        seq: u64,
        /// Messages by others above `seq`, deleted ones not counted (capped at
        /// [`crate::UNREAD_CAP`]).
        unread: u32,
        /// Of those, how many mention you.
        mentions: u32,
    },
    /// Someone started (`on: true`) or stopped typing in a room. Ephemeral: never stored, and
    /// a client forgets it after [`crate::TYPING_TTL_MS`] unless renewed.
    Typing {
        /// The room.
        room: RoomId,
        /// Who.
        user: Username,
        /// Their display name.
        display_name: DisplayName,
        /// Typing or stopped.
        on: bool,
    },
    /// The answer to `ping`.
    Pong {
        /// The request's `req`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        req: Option<u64>,
        /// The `id` of the ping.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// A request could not be served. The connection stays open.
    Error {
        /// The request's `req`, when the failed request carried one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        req: Option<u64>,
        /// What went wrong, for programs.
        code: ErrorCode,
        /// What went wrong, for people.
        message: String,
        /// The `client_id` of the `send` that failed, if it was one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<ClientId>,
        /// The room concerned, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<RoomId>,
        /// With `rate_limited`: how long to wait before sending the request again, in
        /// milliseconds. A client resends on its own after this long.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// A room you may see appeared (created, or you were added to it) or changed (its topic,
    /// slow mode, or your role): replace what you show of it.
    Room {
        /// The room as it is now, from your point of view.
        room: RoomInfo,
    },
    /// You are no longer a member of a room (you left it elsewhere, or were kicked or banned).
    /// Its frames stop at once; a private room disappears from your list.
    Removed {
        /// The room.
        room: RoomId,
        /// Why.
        reason: Removal,
        /// Who did it, for a kick or ban.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<Username>,
        /// The reason they gave.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// You were invited to a room: accept by joining it, or decline.
    Invited {
        /// The invitation.
        invite: InviteInfo,
    },
    /// You were muted in a room (`until` set) or unmuted (`until` absent).
    Muted {
        /// The room.
        room: RoomId,
        /// Until when you may not post (ms since the Unix epoch).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<i64>,
        /// The reason given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A room's members or their roles changed: fetch `GET /api/rooms/{id}/members` again.
    Members {
        /// The room.
        room: RoomId,
    },
    /// A frame of a type this client does not know (from a newer server). Ignore it.
    Unknown,
}

/// Why a membership ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Removal {
    /// You left.
    Left,
    /// A moderator removed you; you may join again if the room is public.
    Kicked,
    /// A moderator banned you; you cannot join again.
    Banned,
    /// A reason this client does not know.
    #[serde(other)]
    Unknown,
}

/// Machine-readable reasons in an `error` frame (and, as `code`, in HTTP error bodies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not JSON, not an object with a known `type`, or missed a field.
    BadFrame,
    /// A field broke its rules (for example an empty message).
    Invalid,
    /// The message text is longer than [`crate::MAX_MESSAGE_CHARS`].
    TooLong,
    /// The room does not exist, or is not visible to this user.
    NoSuchRoom,
    /// No message has that `seq` in the room (or it was deleted, or it is not a message).
    NoSuchMessage,
    /// The connection has not joined that room.
    NotJoined,
    /// The user may not do this.
    Forbidden,
    /// A name is taken.
    Conflict,
    /// The user is banned from that room.
    Banned,
    /// The user is muted in that room (the message says until when).
    Muted,
    /// Slow mode: wait `retry_after_ms` before posting in that room again.
    SlowMode,
    /// A filter rule of the room or the server refused the message (the message names it).
    Filtered,
    /// No user has that handle.
    NoSuchUser,
    /// Too many requests; slow down.
    RateLimited,
    /// No file has that id, or it is not the sender's unsent upload to that room.
    NoSuchFile,
    /// The server failed; the request may be retried.
    Internal,
    /// A code this client does not know (from a newer server): treat it as a failure of the
    /// request it answers.
    #[serde(other)]
    Unknown,
}

/// WebSocket close codes the server uses, beside the standard ones (1000 normal, 1001 going away
/// when the server shuts down, 1009 message too big).
pub mod close_code {
    /// The session ended (logout or expiry): log in again before reconnecting.
    pub const SESSION_ENDED: u16 = 4001;
    /// The connection fell too far behind (its outgoing queue filled up). Reconnect and join with
    /// `since` to catch up from the store: nothing is lost.
    pub const LAGGING: u16 = 4008;
    /// The peer stopped answering heartbeats.
    pub const TIMEOUT: u16 = 4009;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ClientFrame, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn client_frames_are_tagged_by_type_and_may_carry_a_request_id() {
        let join = parse(r#"{"type":"join","room":1}"#).expect("join parses");
        assert_eq!(
            join,
            ClientFrame {
                req: None,
                msg: ClientMsg::Join {
                    room: RoomId(1),
                    since: None
                }
            }
        );
        let send = ClientFrame {
            req: Some(7),
            msg: ClientMsg::Send {
                room: RoomId(3),
                client_id: ClientId::parse("c1").expect("valid"),
                text: "hi".into(),
                reply_to: None,
                attachments: Vec::new(),
            },
        };
        let json = serde_json::to_string(&send).expect("serializes");
        assert_eq!(
            json,
            r#"{"req":7,"type":"send","room":3,"client_id":"c1","text":"hi"}"#
        );
        assert_eq!(parse(&json).expect("parses back"), send);
    }

    #[test]
    fn a_send_may_carry_attachments_and_frames_without_them_still_parse() {
        let send =
            parse(r#"{"type":"send","room":3,"client_id":"c1","text":"","attachments":[4,5]}"#)
                .expect("parses");
        assert!(
            matches!(send.msg, ClientMsg::Send { ref attachments, .. } if *attachments == [4, 5])
        );
        let old = parse(r#"{"type":"send","room":3,"client_id":"c1","text":"hi"}"#).expect("old");
        assert!(
            matches!(old.msg, ClientMsg::Send { ref attachments, .. } if attachments.is_empty())
        );
    }

    #[test]
    fn unknown_types_and_invalid_values_are_rejected() {
        assert!(parse(r#"{"type":"nuke"}"#).is_err());
        assert!(parse(r#"{"type":"join","room":"general"}"#).is_err());
        assert!(parse(r#"{"type":"join","room":-1}"#).is_err());
        assert!(parse(r#"{"room":1}"#).is_err());
        // The request id of a broken frame can still be read, to answer it.
        let req: ReqOnly = serde_json::from_str(r#"{"type":"nuke","req":9}"#).expect("object");
        assert_eq!(req.req, Some(9));
    }

    #[test]
    fn message_frames_flatten_the_event() {
        let msg = ServerMsg::Message(Box::new(MessageEvent::message(
            RoomId(1),
            7,
            42,
            Username::parse("alice").expect("valid"),
            DisplayName::parse("爱丽丝").expect("valid"),
            "<b>hi</b>".into(),
            1_700_000_000_000,
        )));
        let json = serde_json::to_string(&msg).expect("serializes");
        assert_eq!(
            json,
            r#"{"type":"message","room":1,"seq":7,"id":42,"author":"alice","author_name":"爱丽丝","text":"<b>hi</b>","ts":1700000000000}"#
        );
        let back: ServerMsg = serde_json::from_str(&json).expect("parses back");
        assert_eq!(back, msg);
    }

    #[test]
    fn changes_ride_the_log_as_message_frames_with_a_kind() {
        let mut edit = MessageEvent::message(
            RoomId(1),
            9,
            50,
            Username::parse("alice").expect("valid"),
            DisplayName::parse("Alice").expect("valid"),
            "fixed".into(),
            1_700_000_000_500,
        );
        edit.kind = EventKind::Edit;
        edit.target = Some(7);
        let json =
            serde_json::to_string(&ServerMsg::Message(Box::new(edit.clone()))).expect("serializes");
        assert_eq!(
            json,
            r#"{"type":"message","room":1,"seq":9,"kind":"edit","id":50,"author":"alice","author_name":"Alice","text":"fixed","ts":1700000000500,"target":7}"#
        );
        assert_eq!(
            serde_json::from_str::<ServerMsg>(&json).expect("parses"),
            ServerMsg::Message(Box::new(edit))
        );
        // A kind from a newer server still parses, so its seq is counted.
        let future: ServerMsg = serde_json::from_str(
            r#"{"type":"message","room":1,"seq":10,"kind":"pin","id":51,"author":"bob","author_name":"Bob","ts":1}"#,
        )
        .expect("tolerated");
        assert!(matches!(
            future,
            ServerMsg::Message(event) if event.kind == EventKind::Unknown && event.seq == 10
        ));
        // A reaction is added unless it says otherwise.
        let react = parse(r#"{"type":"react","room":1,"client_id":"r1","target":7,"emoji":"👍"}"#)
            .expect("parses");
        assert!(matches!(react.msg, ClientMsg::React { on: true, .. }));
    }

    #[test]
    fn error_codes_are_snake_case_and_answers_carry_the_request_id() {
        let err = ServerMsg::Error {
            req: Some(4),
            code: ErrorCode::NotJoined,
            message: "join first".into(),
            client_id: None,
            room: None,
            retry_after_ms: None,
        };
        assert_eq!(
            serde_json::to_string(&err).expect("serializes"),
            r#"{"type":"error","req":4,"code":"not_joined","message":"join first"}"#
        );
    }

    #[test]
    fn frames_and_codes_from_a_newer_server_are_read_as_unknown() {
        let frame: ServerMsg =
            serde_json::from_str(r#"{"type":"hologram","room":1,"depth":3}"#).expect("tolerated");
        assert_eq!(frame, ServerMsg::Unknown);
        let err: ServerMsg = serde_json::from_str(
            r#"{"type":"error","req":2,"code":"quantum_flux","message":"?","future_field":true}"#,
        )
        .expect("tolerated");
        assert!(matches!(
            err,
            ServerMsg::Error {
                req: Some(2),
                code: ErrorCode::Unknown,
                ..
            }
        ));
        // New fields on known frames are ignored too.
        let pong: ServerMsg =
            serde_json::from_str(r#"{"type":"pong","id":1,"later":[1,2]}"#).expect("tolerated");
        assert_eq!(
            pong,
            ServerMsg::Pong {
                req: None,
                id: Some(1)
            }
        );
    }
}
