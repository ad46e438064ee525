//! A property test of the permission rules: many random actions (create, invite, join, leave,
//! kick, ban, send, edit, delete, react, open a direct room) by random people over public,
//! private and direct rooms.
//! A model says what each action must answer; after each action, every connection's frames are
//! checked: nobody receives a message of a room their connection was not in when it was sent,
//! nor any frame of a room they were never allowed to see.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::json;
use shared::{ClientFrame, ClientMsg, RoomId, ServerMsg};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::chaos::Rng;
use crate::helpers::{GENERAL, Session, TestApp, spawn_app};

const PEOPLE: usize = 4;
const ACTIONS: usize = 250;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Public,
    Private,
    Direct,
}

struct RoomModel {
    kind: Kind,
    owner: Option<usize>,
    members: BTreeSet<usize>,
    invited: BTreeSet<usize>,
    banned: BTreeSet<usize>,
}

#[derive(Debug, Clone)]
struct MessageModel {
    author: usize,
    deleted: bool,
    reactions: BTreeSet<(usize, &'static str)>,
}

/// One person: their session, their socket's writer, and the frames their socket received.
struct Person {
    session: Session,
    tx: futures::stream::SplitSink<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        Message,
    >,
    frames: mpsc::UnboundedReceiver<ServerMsg>,
    /// Rooms this person's connection has joined (and not been removed from).
    joined: HashSet<RoomId>,
    /// Rooms this person was ever allowed to see (member, invited, or public).
    ever_seen: HashSet<RoomId>,
}

struct World {
    app: TestApp,
    people: Vec<Person>,
    rooms: BTreeMap<RoomId, RoomModel>,
    /// For each stored event, which people's connections were in its room when it was sent.
    recipients: HashMap<(RoomId, u64), BTreeSet<usize>>,
    /// Each stored message: its author, whether it was deleted, and its reactions.
    messages: BTreeMap<(RoomId, u64), MessageModel>,
    next_req: u64,
    violations: Vec<String>,
}

impl World {
    fn visible(&self, person: usize, room: RoomId) -> bool {
        let r = &self.rooms[&room];
        r.kind == Kind::Public || r.members.contains(&person) || r.invited.contains(&person)
    }

    fn allow(&mut self, person: usize, room: RoomId) {
        self.people[person].ever_seen.insert(room);
    }

    /// Checks one frame a person's socket received.
    fn check(&mut self, person: usize, frame: &ServerMsg) {
        let room = match frame {
            ServerMsg::Message(m) => {
                let ok = self
                    .recipients
                    .get(&(m.room, m.seq))
                    .is_some_and(|who| who.contains(&person));
                if !ok {
                    self.violations.push(format!(
                        "person {person} got message {} of room {} (sent while they were not in it)",
                        m.seq, m.room
                    ));
                }
                return;
            }
            ServerMsg::History { room, .. }
            | ServerMsg::Presence { room, .. }
            | ServerMsg::Members { room }
            | ServerMsg::Removed { room, .. }
            | ServerMsg::Joined { room, .. } => *room,
            ServerMsg::Room { room } => room.id,
            ServerMsg::Invited { invite } => invite.room.id,
            _ => return,
        };
        let public = self
            .rooms
            .get(&room)
            .is_some_and(|r| r.kind == Kind::Public);
        if !public && !self.people[person].ever_seen.contains(&room) {
            self.violations.push(format!(
                "person {person} got a frame of room {room}, which they were never allowed to see: {frame:?}"
            ));
        }
    }

    /// Checks every frame that has arrived, waiting briefly for stragglers.
    async fn drain(&mut self) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        for p in 0..self.people.len() {
            while let Ok(frame) = self.people[p].frames.try_recv() {
                self.check(p, &frame);
                if let ServerMsg::Removed { room, .. } = frame {
                    self.people[p].joined.remove(&room);
                }
            }
        }
    }

    /// Sends a frame with a fresh `req` and waits for the answer to it, checking the frames that
    /// come before it.
    async fn ask(&mut self, person: usize, msg: ClientMsg) -> ServerMsg {
        self.next_req += 1;
        let req = self.next_req;
        let text = serde_json::to_string(&ClientFrame {
            req: Some(req),
            msg,
        })
        .expect("encodes");
        self.people[person]
            .tx
            .send(Message::text(text))
            .await
            .expect("sent");
        loop {
            let frame =
                tokio::time::timeout(Duration::from_secs(10), self.people[person].frames.recv())
                    .await
                    .expect("an answer in time")
                    .expect("socket open");
            let answers = match &frame {
                ServerMsg::Joined { req: r, .. } | ServerMsg::Error { req: r, .. } => {
                    *r == Some(req)
                }
                _ => false,
            };
            self.check(person, &frame);
            if answers {
                return frame;
            }
        }
    }

    fn expect(&mut self, what: &str, got: StatusCode, want: StatusCode, body: &serde_json::Value) {
        if got != want {
            self.violations.push(format!(
                "{what}: answered {got} where the model says {want}: {body}"
            ));
        }
    }
}

async fn person(app: &TestApp, name: &str) -> Person {
    let session = app.register(name).await;
    let ws = app.ws(&session).await;
    let (tx, mut rx) = ws.stream.split();
    let (frames_tx, frames) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = rx.next().await {
            if let Message::Text(text) = msg {
                let frame: ServerMsg = serde_json::from_str(text.as_str()).expect("a server frame");
                if frames_tx.send(frame).is_err() {
                    return;
                }
            }
        }
    });
    Person {
        session,
        tx,
        frames,
        joined: HashSet::new(),
        ever_seen: HashSet::from([GENERAL]),
    }
}

#[tokio::test]
async fn no_connection_ever_receives_a_frame_of_a_room_its_user_may_not_see() {
    let app = spawn_app().await;
    // The first account is a server admin, who outranks owners: it takes no part.
    app.register("admin").await;
    let mut people = Vec::new();
    for i in 0..PEOPLE {
        people.push(person(&app, &format!("user{i}")).await);
    }
    let mut world = World {
        app,
        people,
        rooms: BTreeMap::from([(
            GENERAL,
            RoomModel {
                kind: Kind::Public,
                owner: None,
                members: BTreeSet::new(),
                invited: BTreeSet::new(),
                banned: BTreeSet::new(),
            },
        )]),
        recipients: HashMap::new(),
        messages: BTreeMap::new(),
        next_req: 0,
        violations: Vec::new(),
    };
    let seed = std::env::var("CHAT_PROPERTY_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0xC0FFEE);
    let mut rng = Rng::new(seed);
    let mut created = 0;
    for step in 0..ACTIONS {
        let who = rng.range(0, PEOPLE as u64) as usize;
        let other = (who + rng.range(1, PEOPLE as u64) as usize) % PEOPLE;
        // Half the time a room the person is in, so that sends and leaves do happen.
        let rooms: Vec<RoomId> = if rng.range(0, 2) == 0 {
            world
                .rooms
                .iter()
                .filter(|(_, r)| r.members.contains(&who))
                .map(|(id, _)| *id)
                .collect()
        } else {
            Vec::new()
        };
        let rooms = if rooms.is_empty() {
            world.rooms.keys().copied().collect()
        } else {
            rooms
        };
        let room = rooms[rng.range(0, rooms.len() as u64) as usize];
        let session = world.people[who].session.clone();
        match rng.range(0, 13) {
            0 => {
                created += 1;
                let private = rng.range(0, 2) == 0;
                let kind = if private { "private" } else { "public" };
                let id = world
                    .app
                    .create_room_of(&session, &format!("room {created}"), kind)
                    .await;
                world.rooms.insert(
                    id,
                    RoomModel {
                        kind: if private { Kind::Private } else { Kind::Public },
                        owner: Some(who),
                        members: BTreeSet::from([who]),
                        invited: BTreeSet::new(),
                        banned: BTreeSet::new(),
                    },
                );
                world.allow(who, id);
            }
            1 => {
                let (status, body) = world
                    .app
                    .post_as(
                        &session,
                        "/api/direct",
                        json!({"users": [format!("user{other}")]}),
                    )
                    .await;
                world.expect("direct", status, StatusCode::OK, &body);
                let id = RoomId(body["id"].as_u64().expect("id"));
                // Created, or reopened with anyone who had left it added back.
                world
                    .rooms
                    .entry(id)
                    .or_insert(RoomModel {
                        kind: Kind::Direct,
                        owner: None,
                        members: BTreeSet::new(),
                        invited: BTreeSet::new(),
                        banned: BTreeSet::new(),
                    })
                    .members
                    .extend([who, other]);
                world.allow(who, id);
                world.allow(other, id);
            }
            2 => {
                let r = &world.rooms[&room];
                let want = if !world.visible(who, room) {
                    StatusCode::NOT_FOUND
                } else if !r.members.contains(&who) {
                    StatusCode::FORBIDDEN
                } else if r.kind == Kind::Direct {
                    StatusCode::BAD_REQUEST
                } else if r.banned.contains(&other) {
                    StatusCode::FORBIDDEN
                } else if r.members.contains(&other) {
                    StatusCode::CONFLICT
                } else {
                    StatusCode::NO_CONTENT
                };
                let (status, body) = world
                    .app
                    .post_as(
                        &session,
                        &format!("/api/rooms/{room}/invite"),
                        json!({"user": format!("user{other}")}),
                    )
                    .await;
                world.expect("invite", status, want, &body);
                if status == StatusCode::NO_CONTENT {
                    world
                        .rooms
                        .get_mut(&room)
                        .expect("room")
                        .invited
                        .insert(other);
                    world.allow(other, room);
                }
            }
            3 | 4 => {
                let r = &world.rooms[&room];
                let may = !r.banned.contains(&who)
                    && (r.kind == Kind::Public
                        || r.members.contains(&who)
                        || r.invited.contains(&who));
                let answer = world.ask(who, ClientMsg::Join { room, since: None }).await;
                let joined = matches!(answer, ServerMsg::Joined { .. });
                if joined != may {
                    world.violations.push(format!(
                        "step {step}: user{who} join {room}: {answer:?}, the model says {may}"
                    ));
                }
                if joined {
                    let r = world.rooms.get_mut(&room).expect("room");
                    r.members.insert(who);
                    r.invited.remove(&who);
                    world.people[who].joined.insert(room);
                    world.allow(who, room);
                }
            }
            5 => {
                let member = world.rooms[&room].members.contains(&who);
                let want = if member {
                    StatusCode::NO_CONTENT
                } else if world.visible(who, room) {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::NOT_FOUND
                };
                let (status, body) = world
                    .app
                    .post_as(&session, &format!("/api/rooms/{room}/leave"), json!({}))
                    .await;
                world.expect("leave", status, want, &body);
                if status == StatusCode::NO_CONTENT {
                    let r = world.rooms.get_mut(&room).expect("room");
                    r.members.remove(&who);
                    // An owner who leaves gives the room up: back, they are a member.
                    if r.owner == Some(who) {
                        r.owner = None;
                    }
                    world.people[who].joined.remove(&room);
                }
            }
            6 => {
                // The owner kicks or bans someone (never themselves).
                let Some(owner) = world.rooms[&room].owner else {
                    continue;
                };
                if owner == other {
                    continue;
                }
                let ban = rng.range(0, 2) == 0;
                let owner_session = world.people[owner].session.clone();
                let r = &world.rooms[&room];
                let want = if !r.members.contains(&owner) {
                    if world.visible(owner, room) {
                        StatusCode::FORBIDDEN
                    } else {
                        StatusCode::NOT_FOUND
                    }
                } else if ban || r.members.contains(&other) {
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::BAD_REQUEST
                };
                let what = if ban { "ban" } else { "kick" };
                let (status, body) = world
                    .app
                    .post_as(
                        &owner_session,
                        &format!("/api/rooms/{room}/{what}"),
                        json!({"user": format!("user{other}")}),
                    )
                    .await;
                world.expect(what, status, want, &body);
                if status == StatusCode::NO_CONTENT {
                    let r = world.rooms.get_mut(&room).expect("room");
                    r.members.remove(&other);
                    if ban {
                        r.banned.insert(other);
                        r.invited.remove(&other);
                    }
                    world.people[other].joined.remove(&room);
                }
            }
            10..=12 => {
                // A change to a message of the room: edit, delete or react.
                let targets: Vec<u64> = world
                    .messages
                    .range((room, 0)..=(room, u64::MAX))
                    .map(|((_, seq), _)| *seq)
                    .collect();
                if targets.is_empty() {
                    continue;
                }
                let target = targets[rng.range(0, targets.len() as u64) as usize];
                let m = world.messages[&(room, target)].clone();
                let r = &world.rooms[&room];
                let member = r.members.contains(&who);
                let moderator = r.owner == Some(who) && member;
                let path = format!("/api/rooms/{room}/messages/{target}");
                let emoji = ["👍", "🎉"][rng.range(0, 2) as usize];
                let op = rng.range(0, 3);
                let (what, (status, body)) = match op {
                    0 => (
                        "edit",
                        world
                            .app
                            .call(
                                reqwest::Method::PATCH,
                                &path,
                                &session,
                                Some(json!({ "text": format!("edited at {step}") })),
                            )
                            .await,
                    ),
                    1 => (
                        "delete",
                        world
                            .app
                            .call(reqwest::Method::DELETE, &path, &session, None)
                            .await,
                    ),
                    _ => (
                        "react",
                        world
                            .app
                            .post_as(
                                &session,
                                &format!("{path}/reactions"),
                                json!({ "emoji": emoji }),
                            )
                            .await,
                    ),
                };
                let want = if !world.visible(who, room) {
                    StatusCode::NOT_FOUND
                } else if !member {
                    StatusCode::FORBIDDEN
                } else {
                    match op {
                        // Only the author edits a live message.
                        0 if m.deleted => StatusCode::NOT_FOUND,
                        0 if m.author != who => StatusCode::FORBIDDEN,
                        0 => StatusCode::CREATED,
                        // The author or a moderator deletes; again changes nothing.
                        1 if m.author != who && !moderator => StatusCode::FORBIDDEN,
                        1 if m.deleted => StatusCode::OK,
                        1 => StatusCode::CREATED,
                        // Anyone in the room reacts to a live message, once.
                        _ if m.deleted => StatusCode::NOT_FOUND,
                        _ if m.reactions.contains(&(who, emoji)) => StatusCode::OK,
                        _ => StatusCode::CREATED,
                    }
                };
                world.expect(what, status, want, &body);
                if status == StatusCode::CREATED {
                    let seq = body["seq"].as_u64().expect("seq");
                    let inside: BTreeSet<usize> = (0..PEOPLE)
                        .filter(|p| world.people[*p].joined.contains(&room))
                        .collect();
                    world.recipients.insert((room, seq), inside);
                    let m = world.messages.get_mut(&(room, target)).expect("message");
                    match op {
                        1 => {
                            m.deleted = true;
                            m.reactions.clear();
                        }
                        2 => {
                            m.reactions.insert((who, emoji));
                        }
                        _ => {}
                    }
                }
            }
            _ => {
                let member = world.rooms[&room].members.contains(&who);
                let (status, body) = world
                    .app
                    .post_as(
                        &session,
                        &format!("/api/rooms/{room}/messages"),
                        json!({"client_id": format!("s{step}"), "text": format!("step {step}")}),
                    )
                    .await;
                let want = if member {
                    StatusCode::CREATED
                } else if world.visible(who, room) {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::NOT_FOUND
                };
                world.expect("send", status, want, &body);
                if status == StatusCode::CREATED {
                    let seq = body["seq"].as_u64().expect("seq");
                    let inside: BTreeSet<usize> = (0..PEOPLE)
                        .filter(|p| world.people[*p].joined.contains(&room))
                        .collect();
                    world.recipients.insert((room, seq), inside);
                    world.messages.insert(
                        (room, seq),
                        MessageModel {
                            author: who,
                            deleted: false,
                            reactions: BTreeSet::new(),
                        },
                    );
                }
            }
        }
        world.drain().await;
        assert!(
            world.violations.is_empty(),
            "seed {seed:#x}, step {step}: {:#?}",
            world.violations
        );
    }
    let sent = world.messages.len();
    assert!(sent > 20, "the run exercised sends ({sent})");
    let changes = world.recipients.len() - sent;
    assert!(changes > 10, "and changes to messages ({changes})");
    assert!(
        world.messages.values().any(|m| m.deleted),
        "some of them deletions"
    );
    assert!(world.rooms.len() > 5, "and rooms ({})", world.rooms.len());
}
