//! Reading [`ServerMsg`] frames: one flat pass over the JSON object.
//!
//! serde's derive for an internally tagged enum (`#[serde(tag = "type")]`) first buffers the
//! whole object in a generic in-memory tree, then deserializes the variant from that tree, which
//! doubles the deserialization code of every type inside a frame. In the browser client that
//! was the largest single piece of the download. This reads every field a frame can have into
//! one struct instead, straight from the input, and then builds the variant its `type` names.
//! A few fields mean different things in different frames (`room` is an id in most and a room
//! object in `room`; `online`, `mentions` and `reason` likewise), and read as whichever they are.
//!
//! The behaviour is the derive's: unknown fields are ignored, an unknown `type` gives
//! [`ServerMsg::Unknown`], a missing field is an error that names it.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::api::{InviteInfo, RoomInfo};
use crate::values::{ClientId, DisplayName, RoomId, Username};
use crate::ws::{
    Attachment, ErrorCode, EventKind, MessageEvent, Presence, Reaction, Removal, ServerMsg,
};

/// `room`: an id, or (in the `room` frame) a room.
enum RoomField {
    Id(RoomId),
    Info(Box<RoomInfo>),
}

/// `online` (a flag, or a list of people), `mentions` (a count, or a list of people).
enum FlagCountOrPeople {
    Flag(bool),
    Count(u64),
    People(Vec<Username>),
}

struct RoomVisitor;

impl<'de> Visitor<'de> for RoomVisitor {
    type Value = RoomField;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a room id or a room")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RoomField, E> {
        Ok(RoomField::Id(RoomId(v)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RoomField, A::Error> {
        RoomInfo::deserialize(de::value::MapAccessDeserializer::new(map))
            .map(|info| RoomField::Info(Box::new(info)))
    }
}

impl<'de> Deserialize<'de> for RoomField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RoomVisitor)
    }
}

struct MixedVisitor;

impl<'de> Visitor<'de> for MixedVisitor {
    type Value = FlagCountOrPeople;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a flag, a count or a list of people")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<FlagCountOrPeople, E> {
        Ok(FlagCountOrPeople::Flag(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<FlagCountOrPeople, E> {
        Ok(FlagCountOrPeople::Count(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FlagCountOrPeople, A::Error> {
        let mut people = Vec::new();
        while let Some(p) = seq.next_element()? {
            people.push(p);
        }
        Ok(FlagCountOrPeople::People(people))
    }
}

impl<'de> Deserialize<'de> for FlagCountOrPeople {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MixedVisitor)
    }
}

/// Every field of every frame.
#[derive(serde::Deserialize)]
struct Flat {
    #[serde(rename = "type")]
    frame: String,
    req: Option<u64>,
    room: Option<RoomField>,
    // hello
    user: Option<Username>,
    display_name: Option<DisplayName>,
    protocol: Option<u32>,
    heartbeat_ms: Option<u64>,
    // joined, presence
    last_seq: Option<u64>,
    online: Option<FlagCountOrPeople>,
    #[serde(default)]
    away: Vec<Username>,
    status: Option<Presence>,
    // message
    seq: Option<u64>,
    #[serde(default)]
    kind: EventKind,
    id: Option<u64>,
    author: Option<Username>,
    author_name: Option<DisplayName>,
    #[serde(default)]
    text: String,
    ts: Option<i64>,
    client_id: Option<ClientId>,
    target: Option<u64>,
    reply_to: Option<u64>,
    emoji: Option<String>,
    mentions: Option<FlagCountOrPeople>,
    edited: Option<i64>,
    deleted: Option<i64>,
    #[serde(default)]
    reactions: Vec<Reaction>,
    #[serde(default)]
    attachments: Vec<Attachment>,
    // history
    messages: Option<Vec<MessageEvent>>,
    has_more: Option<bool>,
    // error
    code: Option<ErrorCode>,
    message: Option<String>,
    retry_after_ms: Option<u64>,
    // removed, invited, muted, read, typing
    reason: Option<String>,
    by: Option<Username>,
    invite: Option<Box<InviteInfo>>,
    until: Option<i64>,
    unread: Option<u32>,
    on: Option<bool>,
}

fn need<T, E: de::Error>(value: Option<T>, field: &'static str) -> Result<T, E> {
    value.ok_or_else(|| E::missing_field(field))
}

fn people<E: de::Error>(
    v: Option<FlagCountOrPeople>,
    field: &'static str,
) -> Result<Vec<Username>, E> {
    match v {
        None => Ok(Vec::new()),
        Some(FlagCountOrPeople::People(p)) => Ok(p),
        Some(_) => Err(E::invalid_type(de::Unexpected::Other("not a list"), &field)),
    }
}

fn count<E: de::Error>(v: Option<FlagCountOrPeople>, field: &'static str) -> Result<u64, E> {
    match v {
        Some(FlagCountOrPeople::Count(n)) => Ok(n),
        None => Err(E::missing_field(field)),
        Some(_) => Err(E::invalid_type(
            de::Unexpected::Other("not a count"),
            &field,
        )),
    }
}

impl Flat {
    fn room_id<E: de::Error>(&mut self) -> Result<RoomId, E> {
        match self.room.take() {
            Some(RoomField::Id(id)) => Ok(id),
            Some(RoomField::Info(_)) => Err(E::invalid_type(de::Unexpected::Map, &"a room id")),
            None => Err(E::missing_field("room")),
        }
    }

    fn into_msg<E: de::Error>(mut self) -> Result<ServerMsg, E> {
        let req = self.req;
        Ok(match self.frame.as_str() {
            "hello" => ServerMsg::Hello {
                user: need(self.user, "user")?,
                display_name: need(self.display_name, "display_name")?,
                protocol: need(self.protocol, "protocol")?,
                heartbeat_ms: need(self.heartbeat_ms, "heartbeat_ms")?,
            },
            "joined" => ServerMsg::Joined {
                req,
                room: self.room_id()?,
                last_seq: need(self.last_seq, "last_seq")?,
                online: people(Some(need(self.online, "online")?), "online")?,
                away: self.away,
            },
            "left" => ServerMsg::Left {
                req,
                room: self.room_id()?,
            },
            "message" => {
                let room = self.room_id()?;
                ServerMsg::Message(Box::new(MessageEvent {
                    room,
                    seq: need(self.seq, "seq")?,
                    kind: self.kind,
                    id: need(self.id, "id")?,
                    author: need(self.author, "author")?,
                    author_name: need(self.author_name, "author_name")?,
                    text: self.text,
                    ts: need(self.ts, "ts")?,
                    client_id: self.client_id,
                    target: self.target,
                    reply_to: self.reply_to,
                    emoji: self.emoji,
                    mentions: people(self.mentions, "mentions")?,
                    edited: self.edited,
                    deleted: self.deleted,
                    reactions: self.reactions,
                    attachments: self.attachments,
                }))
            }
            "history" => ServerMsg::History {
                req,
                room: self.room_id()?,
                messages: need(self.messages, "messages")?,
                has_more: need(self.has_more, "has_more")?,
            },
            "ack" => ServerMsg::Ack {
                req,
                room: self.room_id()?,
                client_id: need(self.client_id, "client_id")?,
                id: need(self.id, "id")?,
                seq: need(self.seq, "seq")?,
                ts: need(self.ts, "ts")?,
            },
            "presence" => ServerMsg::Presence {
                room: self.room_id()?,
                user: need(self.user, "user")?,
                online: match need(self.online, "online")? {
                    FlagCountOrPeople::Flag(b) => b,
                    _ => return Err(E::invalid_type(de::Unexpected::Seq, &"a flag")),
                },
                status: self.status,
            },
            "read" => ServerMsg::Read {
                room: self.room_id()?,
                seq: need(self.seq, "seq")?,
                unread: need(self.unread, "unread")?,
                mentions: u32::try_from(count(self.mentions, "mentions")?).unwrap_or(u32::MAX),
            },
            "typing" => ServerMsg::Typing {
                room: self.room_id()?,
                user: need(self.user, "user")?,
                display_name: need(self.display_name, "display_name")?,
                on: need(self.on, "on")?,
            },
            "pong" => ServerMsg::Pong { req, id: self.id },
            "error" => ServerMsg::Error {
                req,
                code: need(self.code, "code")?,
                message: need(self.message, "message")?,
                client_id: self.client_id,
                room: match self.room {
                    Some(RoomField::Id(id)) => Some(id),
                    _ => None,
                },
                retry_after_ms: self.retry_after_ms,
            },
            "room" => match self.room {
                Some(RoomField::Info(info)) => ServerMsg::Room { room: *info },
                _ => return Err(E::missing_field("room")),
            },
            "removed" => ServerMsg::Removed {
                room: self.room_id()?,
                reason: match need(self.reason, "reason")?.as_str() {
                    "left" => Removal::Left,
                    "kicked" => Removal::Kicked,
                    "banned" => Removal::Banned,
                    _ => Removal::Unknown,
                },
                by: self.by,
                message: self.message,
            },
            "invited" => ServerMsg::Invited {
                invite: *need(self.invite, "invite")?,
            },
            "muted" => ServerMsg::Muted {
                room: self.room_id()?,
                until: self.until,
                reason: self.reason,
            },
            "members" => ServerMsg::Members {
                room: self.room_id()?,
            },
            _ => ServerMsg::Unknown,
        })
    }
}

impl<'de> Deserialize<'de> for ServerMsg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Flat::deserialize(d)?.into_msg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RoomKind;

    fn user(s: &str) -> Username {
        Username::parse(s).expect("valid")
    }

    fn room_info() -> RoomInfo {
        RoomInfo {
            id: RoomId(7),
            name: crate::RoomName::parse("技术讨论").expect("valid"),
            kind: RoomKind::Private,
            topic: "Rust".into(),
            slow_mode_secs: 5,
            role: Some(crate::Role::Owner),
            direct: Vec::new(),
            last_seq: 12,
            online: 2,
            read_seq: 10,
            unread: 2,
            mentions: 1,
        }
    }

    #[test]
    fn every_frame_reads_back_as_it_was_written() {
        let mut event = MessageEvent::message(
            RoomId(1),
            9,
            90,
            user("alice"),
            DisplayName::parse("爱丽丝").expect("valid"),
            "hi @bob".into(),
            5,
        );
        event.mentions = vec![user("bob")];
        event.reply_to = Some(3);
        event.reactions = vec![Reaction {
            emoji: "👍".into(),
            users: vec![user("bob")],
        }];
        event.attachments = vec![
            Attachment {
                id: 3,
                name: "猫.png".into(),
                size: 1234,
                mime: "image/png".into(),
                width: Some(640),
                height: Some(480),
                thumbnail: true,
            },
            Attachment {
                id: 4,
                name: "report.pdf".into(),
                size: 99,
                mime: "application/pdf".into(),
                width: None,
                height: None,
                thumbnail: false,
            },
        ];
        let mut edit = event.clone();
        edit.kind = EventKind::Edit;
        edit.attachments = Vec::new();
        edit.target = Some(9);
        let frames = vec![
            ServerMsg::Hello {
                user: user("alice"),
                display_name: DisplayName::parse("Alice").expect("valid"),
                protocol: 3,
                heartbeat_ms: 20_000,
            },
            ServerMsg::Joined {
                req: Some(1),
                room: RoomId(1),
                last_seq: 9,
                online: vec![user("alice"), user("bob")],
                away: vec![user("bob")],
            },
            ServerMsg::Left {
                req: None,
                room: RoomId(1),
            },
            ServerMsg::Message(Box::new(event.clone())),
            ServerMsg::Message(Box::new(edit)),
            ServerMsg::History {
                req: Some(2),
                room: RoomId(1),
                messages: vec![event],
                has_more: true,
            },
            ServerMsg::Ack {
                req: Some(3),
                room: RoomId(1),
                client_id: ClientId::parse("c-1").expect("valid"),
                id: 0,
                seq: 0,
                ts: 6,
            },
            ServerMsg::Presence {
                room: RoomId(1),
                user: user("bob"),
                online: true,
                status: Some(Presence::Away),
            },
            ServerMsg::Read {
                room: RoomId(1),
                seq: 9,
                unread: 3,
                mentions: 1,
            },
            ServerMsg::Typing {
                room: RoomId(1),
                user: user("bob"),
                display_name: DisplayName::parse("Bob").expect("valid"),
                on: false,
            },
            ServerMsg::Pong {
                req: None,
                id: Some(4),
            },
            ServerMsg::Error {
                req: Some(5),
                code: ErrorCode::NoSuchMessage,
                message: "No such message.".into(),
                client_id: None,
                room: Some(RoomId(1)),
                retry_after_ms: Some(10),
            },
            ServerMsg::Room { room: room_info() },
            ServerMsg::Removed {
                room: RoomId(7),
                reason: Removal::Banned,
                by: Some(user("alice")),
                message: Some("spam".into()),
            },
            ServerMsg::Invited {
                invite: InviteInfo {
                    room: room_info(),
                    by: user("alice"),
                    by_name: DisplayName::parse("Alice").expect("valid"),
                    ts: 8,
                },
            },
            ServerMsg::Muted {
                room: RoomId(7),
                until: Some(99),
                reason: Some("cool down".into()),
            },
            ServerMsg::Members { room: RoomId(7) },
        ];
        for frame in frames {
            let json = serde_json::to_string(&frame).expect("serializes");
            let back: ServerMsg = serde_json::from_str(&json).expect("reads back");
            assert_eq!(back, frame, "{json}");
        }
    }

    #[test]
    fn broken_frames_are_refused_with_the_missing_field_named() {
        let err = serde_json::from_str::<ServerMsg>(r#"{"type":"ack","room":1,"seq":2}"#)
            .expect_err("incomplete");
        assert!(err.to_string().contains("client_id"), "{err}");
        assert!(serde_json::from_str::<ServerMsg>(r#"{"room":1}"#).is_err());
        assert!(serde_json::from_str::<ServerMsg>(r#"{"type":"joined","room":"x"}"#).is_err());
        // A reason this client does not know still reads.
        let removed: ServerMsg =
            serde_json::from_str(r#"{"type":"removed","room":1,"reason":"archived"}"#)
                .expect("tolerated");
        assert!(matches!(
            removed,
            ServerMsg::Removed {
                reason: Removal::Unknown,
                ..
            }
        ));
    }
}
