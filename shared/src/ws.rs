//! WebSocket frames. Every frame is one JSON text message: an object whose `"type"` field names
//! the variant (`snake_case`), with the variant's fields beside it.
//!
//! The ordering contract: within a room, the server assigns each stored message the next `seq`
//! (1, 2, 3, ... with no holes) and delivers `message` frames to a connection in increasing `seq`
//! order, without duplicates. A client that remembers the highest `seq` it has seen can ask for
//! exactly what it missed with `join { since }`.

use serde::{Deserialize, Serialize};

use crate::values::{ClientId, RoomName, Username};

/// A frame from the client to the server.
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
        room: RoomName,
        /// The highest `seq` this client already has for the room.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
    },
    /// Unsubscribe this connection from a room.
    Leave {
        /// The room to leave.
        room: RoomName,
    },
    /// Post a message to a room this connection has joined.
    ///
    /// `text` is checked by the server with [`crate::MessageText::parse`]. `client_id` makes the
    /// send idempotent: resending the same id never stores a second message.
    Send {
        /// The room to post to.
        room: RoomName,
        /// The client's own id for this message.
        client_id: ClientId,
        /// The text, 1 to 4000 characters.
        text: String,
    },
    /// Ask for a page of older messages: those with `seq < before`, newest last.
    History {
        /// The room to read.
        room: RoomName,
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

/// One stored chat message as delivered to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageEvent {
    /// The room it was posted in.
    pub room: RoomName,
    /// Its position in the room: 1 for the first message, then +1 each, with no holes.
    pub seq: u64,
    /// Its id, unique across the server.
    pub id: u64,
    /// Who wrote it.
    pub author: Username,
    /// The text, exactly as sent. Render it as text, never as HTML.
    pub text: String,
    /// When the server stored it, in milliseconds since the Unix epoch (UTC).
    pub ts: i64,
    /// The id its author's client gave it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
}

/// A frame from the server to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The first frame on every connection.
    Hello {
        /// Who the connection is authenticated as.
        user: Username,
        /// The server pings at this interval; a client should treat this long plus a margin
        /// without any frame as a dead connection (send `ping` to provoke one).
        heartbeat_ms: u64,
    },
    /// The answer to `join`.
    Joined {
        /// The room joined.
        room: RoomName,
        /// The room's highest `seq` when the join was handled.
        last_seq: u64,
        /// Users with at least one connection in the room, sorted.
        online: Vec<Username>,
    },
    /// The answer to `leave`.
    Left {
        /// The room left.
        room: RoomName,
    },
    /// A message stored in a room this connection has joined (live, or during catch-up).
    Message(MessageEvent),
    /// A page of older messages, sorted by `seq` ascending.
    History {
        /// The room read.
        room: RoomName,
        /// The messages, oldest first.
        messages: Vec<MessageEvent>,
        /// Whether messages older than the first of this page exist.
        has_more: bool,
    },
    /// The server stored (or had already stored) the message sent with this `client_id`.
    Ack {
        /// The room it was stored in.
        room: RoomName,
        /// The client's id for the message.
        client_id: ClientId,
        /// The message's server id.
        id: u64,
        /// The message's `seq` in the room.
        seq: u64,
        /// When it was stored (ms since the Unix epoch).
        ts: i64,
    },
    /// A user came online in a room (their first connection joined it) or went offline (their
    /// last connection left it).
    Presence {
        /// The room.
        room: RoomName,
        /// The user.
        user: Username,
        /// `true` when they arrived, `false` when they left.
        online: bool,
    },
    /// The answer to `ping`.
    Pong {
        /// The `id` of the ping.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// A request could not be served. The connection stays open.
    Error {
        /// What went wrong, for programs.
        code: ErrorCode,
        /// What went wrong, for people.
        message: String,
        /// The `client_id` of the `send` that failed, if it was one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<ClientId>,
        /// The room concerned, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        /// With `rate_limited`: how long to wait before sending the request again, in
        /// milliseconds. A client resends on its own after this long.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

/// Machine-readable reasons in an `error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not JSON, not an object with a known `type`, or missed a field.
    BadFrame,
    /// A field broke its rules (for example an empty message).
    Invalid,
    /// The message text is longer than [`crate::MAX_MESSAGE_CHARS`].
    TooLong,
    /// The room does not exist.
    NoSuchRoom,
    /// The connection has not joined that room.
    NotJoined,
    /// Too many requests; slow down.
    RateLimited,
    /// The server failed; the request may be retried.
    Internal,
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

    #[test]
    fn client_frames_are_tagged_by_type() {
        let join: ClientMsg =
            serde_json::from_str(r#"{"type":"join","room":"general"}"#).expect("join parses");
        assert_eq!(
            join,
            ClientMsg::Join {
                room: RoomName::parse("general").expect("valid"),
                since: None
            }
        );
        let send = ClientMsg::Send {
            room: RoomName::parse("general").expect("valid"),
            client_id: ClientId::parse("c1").expect("valid"),
            text: "hi".into(),
        };
        let json = serde_json::to_string(&send).expect("serializes");
        assert_eq!(
            json,
            r#"{"type":"send","room":"general","client_id":"c1","text":"hi"}"#
        );
    }

    #[test]
    fn unknown_types_and_invalid_values_are_rejected() {
        assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"nuke"}"#).is_err());
        assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"join","room":"No Caps"}"#).is_err());
        assert!(serde_json::from_str::<ClientMsg>(r#"{"room":"general"}"#).is_err());
    }

    #[test]
    fn message_frames_flatten_the_event() {
        let msg = ServerMsg::Message(MessageEvent {
            room: RoomName::parse("general").expect("valid"),
            seq: 7,
            id: 42,
            author: Username::parse("alice").expect("valid"),
            text: "<b>hi</b>".into(),
            ts: 1_700_000_000_000,
            client_id: None,
        });
        let json = serde_json::to_string(&msg).expect("serializes");
        assert_eq!(
            json,
            r#"{"type":"message","room":"general","seq":7,"id":42,"author":"alice","text":"<b>hi</b>","ts":1700000000000}"#
        );
        let back: ServerMsg = serde_json::from_str(&json).expect("parses back");
        assert_eq!(back, msg);
    }

    #[test]
    fn error_codes_are_snake_case() {
        let err = ServerMsg::Error {
            code: ErrorCode::NotJoined,
            message: "join first".into(),
            client_id: None,
            room: None,
            retry_after_ms: None,
        };
        assert_eq!(
            serde_json::to_string(&err).expect("serializes"),
            r#"{"type":"error","code":"not_joined","message":"join first"}"#
        );
    }
}
