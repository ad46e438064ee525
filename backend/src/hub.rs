//! The hub: which connection is in which room, who is online, and the fan-out of events.
//!
//! Each connection owns a bounded queue of [`Outbound`] frames; the hub only ever `try_send`s
//! into it, so a slow connection can never stall the fan-out (which runs in the
//! [`crate::events::Dispatcher`], in `seq` order per room). A connection whose queue is full is not skipped silently:
//! it is closed with [`close_code::LAGGING`] and reconnects with `join { since }` to catch up from
//! the store. Each event is encoded to JSON once and the bytes are shared by every recipient.
//!
//! Locks are `std` mutexes held for short, non-awaiting sections: one per room for membership
//! and fan-out (rooms do not contend with each other), and one map lookup for the room itself.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use axum::extract::ws::Utf8Bytes;
use shared::{MessageEvent, Presence, RoomId, ServerMsg, Username, close_code};

use crate::bus::{Bus, Note};
use crate::store::UserId;
use std::time::Instant;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// Identifies one WebSocket connection for the life of the process.
pub type ConnId = u64;

/// A session, by the SHA-256 of its token.
type SessionKey = [u8; 32];
/// The open connections of one session.
type SessionConns = HashMap<ConnId, Arc<ConnControl>>;

/// A frame encoded once and shared by every recipient.
#[derive(Debug)]
pub struct Encoded {
    /// For a stored room event, its room and `seq`, so that a connection can drop what it
    /// already delivered; `None` for frames outside the log (presence).
    pub event: Option<(RoomId, u64)>,
    /// Set on the `removed` frame: the connection forgets the room as it writes it.
    pub leave: Option<RoomId>,
    /// The JSON frame.
    pub frame: Utf8Bytes,
}

/// What the hub puts in a connection's queue: one pointer, so that a queue's first block of
/// slots (allocated with every connection) stays small.
pub type Outbound = Arc<Encoded>;

/// A frame outside the log.
fn plain(frame: Utf8Bytes) -> Outbound {
    Arc::new(Encoded {
        event: None,
        leave: None,
        frame,
    })
}

/// Why a connection is being closed from outside its own task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// The session ended (logout).
    SessionEnded,
    /// The connection's queue overflowed.
    Lagging,
}

impl Kick {
    /// The WebSocket close code and reason that tell the client what to do.
    pub fn close(self) -> (u16, &'static str) {
        match self {
            Kick::SessionEnded => (close_code::SESSION_ENDED, "session ended"),
            Kick::Lagging => (close_code::LAGGING, "too slow: reconnect and resume"),
        }
    }
}

/// The handle through which anyone can stop a connection. Its task watches `token`; when it is
/// cancelled, `kick` says why (unset means the server is shutting down).
#[derive(Debug)]
pub struct ConnControl {
    /// Cancelled to stop the connection. A child of the server's shutdown token.
    pub token: CancellationToken,
    /// The first reason given; later ones are ignored.
    pub kick: OnceLock<Kick>,
}

impl ConnControl {
    /// Stops the connection for `why` (the first reason given wins).
    pub fn kick(&self, why: Kick) {
        if self.kick.set(why).is_ok() && why == Kick::Lagging {
            crate::metrics::get().lagging_kicks.inc();
        }
        self.token.cancel();
    }
}

/// A connection as its user's.
struct UserConn {
    tx: mpsc::Sender<Outbound>,
    control: Arc<ConnControl>,
    /// Its person is away (idle, or the app hidden), as this connection says.
    away: bool,
}

/// The open connections of one user, and their handle.
#[derive(Default)]
struct UserConns {
    name: Option<Username>,
    conns: HashMap<ConnId, UserConn>,
}

impl UserConns {
    /// Whether every connection says its person is away (and there is one).
    fn away(&self) -> bool {
        !self.conns.is_empty() && self.conns.values().all(|c| c.away)
    }
}

/// A connection as a room member.
struct Member {
    user: Username,
    tx: mpsc::Sender<Outbound>,
    control: Arc<ConnControl>,
    /// Set once the queue overflowed: the connection is closing, so stop feeding it.
    lagged: bool,
}

/// One room's live state.
#[derive(Default)]
struct RoomState {
    members: HashMap<ConnId, Member>,
    /// Connections per online user. A user is online in the room while this is > 0.
    online: BTreeMap<Username, usize>,
    /// The lowest `seq` a join read since the dispatcher last looked (see [`Hub::joined_at`]).
    floor: Option<u64>,
}

impl RoomState {
    /// Queues `out` for every member but `except`; a full queue kicks its connection.
    fn broadcast(&mut self, out: &Outbound, except: Option<ConnId>) {
        self.broadcast_but(out, |id, _| Some(id) == except);
    }

    /// Queues `out` for every member that `skip` does not name; a full queue kicks its
    /// connection.
    fn broadcast_but(&mut self, out: &Outbound, skip: impl Fn(ConnId, &Member) -> bool) {
        for (id, member) in &mut self.members {
            if member.lagged || skip(*id, member) {
                continue;
            }
            match member.tx.try_send(out.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    member.lagged = true;
                    member.control.kick(Kick::Lagging);
                }
                // The connection is gone; its own clean-up removes it.
                Err(mpsc::error::TrySendError::Closed(_)) => member.lagged = true,
            }
        }
    }
}

/// Live membership and fan-out for every room.
#[derive(Default)]
pub struct Hub {
    /// Rooms with at least one member ever since start. Entries are small and never removed.
    rooms: RwLock<HashMap<RoomId, Arc<Mutex<RoomState>>>>,
    /// Open connections per session, so that logging out closes them.
    sessions: Mutex<HashMap<SessionKey, SessionConns>>,
    /// Open connections per user, for the frames addressed to a person (invitations, removals)
    /// or to everyone (a new public room).
    users: Mutex<HashMap<UserId, UserConns>>,
    /// Users whose every connection says they are away.
    away: Mutex<HashSet<Username>>,
    /// Each delivered event's room and `seq`, for long polls waiting for news.
    news: OnceLock<broadcast::Sender<(RoomId, u64)>>,
    /// Source of [`ConnId`]s.
    next_id: AtomicU64,
    /// The bus to the other nodes, if there are any.
    bus: OnceLock<Arc<Bus>>,
    /// Who the other nodes say is online where.
    remote: Mutex<Remote>,
}

/// What one other node said of who is online where, and when it was last heard.
struct RemoteNode {
    seen: Instant,
    rooms: HashMap<RoomId, HashSet<Username>>,
}

/// The other nodes' presence views (see [`crate::bus`]).
#[derive(Default)]
struct Remote {
    nodes: HashMap<u64, RemoteNode>,
}

impl Remote {
    /// Whether another node has `user` online in `room`.
    fn online(&self, room: RoomId, user: &Username) -> bool {
        self.nodes
            .values()
            .any(|n| n.rooms.get(&room).is_some_and(|users| users.contains(user)))
    }

    /// Whether a node other than `node` has `user` online in `room`.
    fn online_except(&self, node: u64, room: RoomId, user: &Username) -> bool {
        self.nodes.iter().any(|(id, n)| {
            *id != node && n.rooms.get(&room).is_some_and(|users| users.contains(user))
        })
    }

    /// Who is online in `room` on other nodes.
    fn names(&self, room: RoomId) -> impl Iterator<Item = &Username> {
        self.nodes
            .values()
            .filter_map(move |n| n.rooms.get(&room))
            .flatten()
    }
}

/// Queues a frame for a connection; a full queue closes it as lagging.
fn offer(conn: &UserConn, out: &Outbound) {
    if let Err(mpsc::error::TrySendError::Full(_)) = conn.tx.try_send(Arc::clone(out)) {
        conn.control.kick(Kick::Lagging);
    }
}

/// Encodes a server frame. Serializing these types cannot fail (no maps with non-string keys,
/// no custom serializers that error), so a failure is a bug worth a loud log, not a panic.
pub fn encode(msg: &ServerMsg) -> Utf8Bytes {
    match serde_json::to_string(msg) {
        Ok(json) => Utf8Bytes::from(json),
        Err(e) => {
            tracing::error!(error = %e, "failed to encode a server frame");
            Utf8Bytes::from_static(
                "{\"type\":\"error\",\"code\":\"internal\",\"message\":\"encoding failed\"}",
            )
        }
    }
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    fn room(&self, id: RoomId) -> Arc<Mutex<RoomState>> {
        if let Some(room) = self
            .rooms
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
        {
            return Arc::clone(room);
        }
        let mut rooms = self.rooms.write().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(rooms.entry(id).or_default())
    }

    /// Every room's live state, taken out of the map's lock.
    fn all_rooms(&self) -> Vec<(RoomId, Arc<Mutex<RoomState>>)> {
        self.rooms
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(id, state)| (*id, Arc::clone(state)))
            .collect()
    }

    /// A receiver of the news of delivered events: (room, `seq`).
    pub fn news(&self) -> broadcast::Receiver<(RoomId, u64)> {
        self.news_sender().subscribe()
    }

    fn news_sender(&self) -> &broadcast::Sender<(RoomId, u64)> {
        self.news.get_or_init(|| broadcast::channel(1024).0)
    }

    /// Registers a new connection of `session`, returning its id and control handle. The token
    /// is a child of `shutdown`, so stopping the server stops every connection.
    pub fn connect(
        &self,
        session: [u8; 32],
        user: UserId,
        name: &Username,
        tx: mpsc::Sender<Outbound>,
        shutdown: &CancellationToken,
    ) -> (ConnId, Arc<ConnControl>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let control = Arc::new(ConnControl {
            token: shutdown.child_token(),
            kick: OnceLock::new(),
        });
        let back = {
            let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
            let conns = users.entry(user).or_default();
            conns.name.get_or_insert_with(|| name.clone());
            let was_away = conns.away();
            conns.conns.insert(
                id,
                UserConn {
                    tx,
                    control: Arc::clone(&control),
                    away: false,
                },
            );
            was_away
        };
        if back {
            self.set_away(name, false);
        }
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(session)
            .or_default()
            .insert(id, Arc::clone(&control));
        (id, control)
    }

    /// Forgets a closed connection.
    pub fn disconnect(&self, session: [u8; 32], user: UserId, id: ConnId) {
        let changed = {
            let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
            match users.get_mut(&user) {
                Some(conns) => {
                    let was_away = conns.away();
                    conns.conns.remove(&id);
                    let now_away = conns.away();
                    let name = conns.name.clone();
                    if conns.conns.is_empty() {
                        users.remove(&user);
                    }
                    name.filter(|_| was_away != now_away)
                        .map(|name| (name, now_away))
                }
                None => None,
            }
        };
        if let Some((name, away)) = changed {
            self.set_away(&name, away);
        }
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(conns) = sessions.get_mut(&session) {
            conns.remove(&id);
            if conns.is_empty() {
                sessions.remove(&session);
            }
        }
    }

    /// Closes every connection of a session (it was logged out), on every node.
    pub fn end_session(&self, session: [u8; 32]) {
        self.end_session_here(session);
        self.publish(|| Note::EndSession {
            session: hex(&session),
        });
    }

    /// Each person with a connection in a room on this node: room, user id, handle.
    pub fn local_memberships(&self) -> Vec<(RoomId, UserId, Username)> {
        let ids: HashMap<Username, UserId> = self
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|(id, conns)| Some((conns.name.clone()?, *id)))
            .collect();
        let mut out = Vec::new();
        for (room, state) in self.all_rooms() {
            let state = state.lock().unwrap_or_else(PoisonError::into_inner);
            for name in state.online.keys() {
                if let Some(id) = ids.get(name) {
                    out.push((room, *id, name.clone()));
                }
            }
        }
        out
    }

    /// Ends a person's presence in a room on this node only (they are no longer a member, and
    /// the note that said so was lost), sending `notice` to their connections here.
    pub fn remove_here_with(
        &self,
        room: RoomId,
        user: UserId,
        name: &Username,
        notice: &ServerMsg,
    ) {
        self.remove_here(room, user, name, encode(notice));
    }

    /// The sessions with a connection on this node.
    pub fn session_keys(&self) -> Vec<[u8; 32]> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
    }

    /// Closes every connection of a session on this node.
    pub fn end_session_here(&self, session: [u8; 32]) {
        let conns = self
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&session);
        for control in conns.into_iter().flat_map(|c| c.into_values()) {
            control.kick(Kick::SessionEnded);
        }
    }

    /// Records what a connection says of its person (away or not). When that changes whether
    /// the person is away (every connection of theirs says so), the rooms they are online in
    /// are told.
    pub fn set_status(&self, user: UserId, id: ConnId, away: bool) {
        let changed = {
            let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(conns) = users.get_mut(&user) else {
                return;
            };
            let was_away = conns.away();
            if let Some(conn) = conns.conns.get_mut(&id) {
                conn.away = away;
            }
            let now_away = conns.away();
            conns
                .name
                .clone()
                .filter(|_| was_away != now_away)
                .map(|name| (name, now_away))
        };
        if let Some((name, away)) = changed {
            self.set_away(&name, away);
        }
    }

    /// Records whether a person is away and tells every room they are online in.
    fn set_away(&self, name: &Username, away: bool) {
        {
            let mut set = self.away.lock().unwrap_or_else(PoisonError::into_inner);
            let changed = if away {
                set.insert(name.clone())
            } else {
                set.remove(name)
            };
            if !changed {
                return;
            }
        }
        let rooms = self.all_rooms();
        for (room, state) in rooms {
            let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.online.contains_key(name) {
                let frame = plain(encode(&ServerMsg::Presence {
                    room,
                    user: name.clone(),
                    online: true,
                    status: Some(if away {
                        Presence::Away
                    } else {
                        Presence::Online
                    }),
                }));
                state.broadcast(&frame, None);
            }
        }
    }

    /// Who of `online` is away.
    pub fn away_among(&self, online: &[Username]) -> Vec<Username> {
        let set = self.away.lock().unwrap_or_else(PoisonError::into_inner);
        online
            .iter()
            .filter(|u| set.contains(*u))
            .cloned()
            .collect()
    }

    /// Adds a connection to a room's fan-out. Returns who is online there now (the joiner
    /// included). If the user was not online in the room before, the other members get a
    /// `presence` frame.
    pub fn join(
        &self,
        room: RoomId,
        id: ConnId,
        user: &Username,
        tx: mpsc::Sender<Outbound>,
        control: Arc<ConnControl>,
    ) -> Vec<Username> {
        let room_state = self.room(room);
        let mut state = room_state.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = state.members.insert(
            id,
            Member {
                user: user.clone(),
                tx,
                control,
                lagged: false,
            },
        );
        let mut came = false;
        if previous.is_none() {
            let count = state.online.entry(user.clone()).or_insert(0);
            *count += 1;
            came = *count == 1;
        }
        let remote = self.remote.lock().unwrap_or_else(PoisonError::into_inner);
        if came && !remote.online(room, user) {
            let frame = plain(encode(&ServerMsg::Presence {
                room,
                user: user.clone(),
                online: true,
                status: None,
            }));
            state.broadcast(&frame, Some(id));
        }
        let mut online: Vec<Username> = state.online.keys().cloned().collect();
        online.extend(remote.names(room).cloned());
        drop(remote);
        drop(state);
        online.sort_unstable();
        online.dedup();
        if came {
            self.publish(|| Note::Presence {
                room,
                user: user.clone(),
                online: true,
            });
        }
        online
    }

    /// Removes a connection from a room. If it was the user's last one there, the remaining
    /// members get a `presence` frame.
    pub fn leave(&self, room: RoomId, id: ConnId) {
        let room_state = self.room(room);
        let mut state = room_state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(member) = state.members.remove(&id) else {
            return;
        };
        let gone = match state.online.get_mut(&member.user) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            _ => {
                state.online.remove(&member.user);
                true
            }
        };
        if gone {
            self.gone_offline(room, &mut state, member.user);
        }
    }

    /// Someone's last connection in a room on this node went: the members here see them go
    /// offline unless another node has them online, and the other nodes are told.
    fn gone_offline(&self, room: RoomId, state: &mut RoomState, user: Username) {
        let elsewhere = self
            .remote
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .online(room, &user);
        if !elsewhere {
            let frame = plain(encode(&ServerMsg::Presence {
                room,
                user: user.clone(),
                online: false,
                status: None,
            }));
            state.broadcast(&frame, None);
        }
        self.publish(|| Note::Presence {
            room,
            user,
            online: false,
        });
    }

    /// How many users are online in a room.
    pub fn online_count(&self, room: RoomId) -> u32 {
        let rooms = self.rooms.read().unwrap_or_else(PoisonError::into_inner);
        let mut names: HashSet<Username> = rooms.get(&room).map_or_else(HashSet::new, |r| {
            r.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .online
                .keys()
                .cloned()
                .collect()
        });
        drop(rooms);
        let remote = self.remote.lock().unwrap_or_else(PoisonError::into_inner);
        names.extend(remote.names(room).cloned());
        u32::try_from(names.len()).unwrap_or(u32::MAX)
    }

    /// Sends a frame to every connection of a user. A connection whose queue is full is closed
    /// as lagging, as for room events: it reconnects and reads the state again, so a notice is
    /// never silently lost (a missed `removed` would leave it thinking it is still in a room).
    pub fn to_user(&self, user: UserId, msg: &ServerMsg) {
        let out = plain(encode(msg));
        self.to_user_outbound(user, &out);
        self.publish(|| Note::ToUser {
            user,
            frame: out.frame.to_string(),
        });
    }

    fn to_user_outbound(&self, user: UserId, out: &Outbound) {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        for conn in users.get(&user).into_iter().flat_map(|u| u.conns.values()) {
            offer(conn, out);
        }
    }

    /// Sends a frame to every open connection (a new public room).
    pub fn to_all(&self, msg: &ServerMsg) {
        let out = plain(encode(msg));
        self.to_all_here(&out);
        self.publish(|| Note::ToAll {
            frame: out.frame.to_string(),
        });
    }

    fn to_all_here(&self, out: &Outbound) {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        for conn in users.values().flat_map(|u| u.conns.values()) {
            offer(conn, out);
        }
    }

    /// A room's live state, if anyone joined it since start.
    fn joined_room(&self, room: RoomId) -> Option<Arc<Mutex<RoomState>>> {
        self.rooms
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&room)
            .cloned()
    }

    /// Sends a frame to every connection that joined a room.
    pub fn to_room(&self, room: RoomId, msg: &ServerMsg) {
        let out = plain(encode(msg));
        self.to_room_here(room, None, &out);
        self.publish(|| Note::ToRoom {
            room,
            except: None,
            frame: out.frame.to_string(),
        });
    }

    fn to_room_here(&self, room: RoomId, except: Option<&Username>, out: &Outbound) {
        if let Some(state) = self.joined_room(room) {
            state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .broadcast_but(out, |_, member| Some(&member.user) == except);
        }
    }

    /// Sends a frame to every connection that joined a room, except those of `user` (who
    /// knows already: their own typing).
    pub fn to_room_but(&self, room: RoomId, user: &Username, msg: &ServerMsg) {
        let out = plain(encode(msg));
        self.to_room_here(room, Some(user), &out);
        self.publish(|| Note::ToRoom {
            room,
            except: Some(user.clone()),
            frame: out.frame.to_string(),
        });
    }

    /// Ends a user's presence in a room at once (they left, or were kicked or banned): their
    /// connections stop receiving its frames, the others see them go offline, and each of their
    /// connections gets `notice` (a `removed` frame), on which it forgets the room.
    pub fn remove_from_room(
        &self,
        room: RoomId,
        user: UserId,
        name: &Username,
        notice: &ServerMsg,
    ) {
        let frame = encode(notice);
        self.remove_here(room, user, name, frame.clone());
        self.publish(|| Note::Remove {
            room,
            user,
            name: name.clone(),
            frame: frame.to_string(),
        });
    }

    fn remove_here(&self, room: RoomId, user: UserId, name: &Username, frame: Utf8Bytes) {
        if let Some(state) = self.joined_room(room) {
            let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
            let before = state.members.len();
            state.members.retain(|_, m| &m.user != name);
            if state.members.len() != before && state.online.remove(name).is_some() {
                self.gone_offline(room, &mut state, name.clone());
            }
        }
        let out = Arc::new(Encoded {
            event: None,
            leave: Some(room),
            frame,
        });
        self.to_user_outbound(user, &out);
    }

    /// Whether a user has a connection in a room.
    pub fn is_online(&self, room: RoomId, name: &Username) -> bool {
        let here = {
            let rooms = self.rooms.read().unwrap_or_else(PoisonError::into_inner);
            rooms.get(&room).is_some_and(|r| {
                r.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .online
                    .contains_key(name)
            })
        };
        here || self
            .remote
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .online(room, name)
    }

    /// Fans a committed event out to the room's connections. Called by the
    /// [`crate::events::Dispatcher`] in `seq` order per room.
    pub fn deliver(&self, event: &MessageEvent) {
        let out = Arc::new(Encoded {
            event: Some((event.room, event.seq)),
            leave: None,
            frame: encode(&ServerMsg::Message(Box::new(event.clone()))),
        });
        // Rooms nobody has joined since start have no state, and need none.
        if let Some(room) = self.joined_room(event.room) {
            room.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .broadcast(&out, None);
        }
        // Nobody waiting is not an error.
        let _ = self.news_sender().send((event.room, event.seq));
    }
}

/// The hub's side of the bus between nodes (see [`crate::bus`]).
impl Hub {
    /// Connects the hub to the other nodes: from now on what it sends to people is also
    /// published, and presence includes theirs.
    pub fn attach_bus(&self, bus: Arc<Bus>) {
        let _ = self.bus.set(bus);
    }

    /// Publishes a note if there is a bus; `note` is only built then.
    pub fn publish(&self, note: impl FnOnce() -> Note) {
        if let Some(bus) = self.bus.get() {
            bus.publish(note());
        }
    }

    /// Applies what another node did to its people. Other notes are not the hub's and are
    /// ignored here.
    pub fn apply(&self, node: u64, note: Note) {
        match note {
            Note::ToUser { user, frame } => {
                self.to_user_outbound(user, &plain(Utf8Bytes::from(frame)));
            }
            Note::ToAll { frame } => self.to_all_here(&plain(Utf8Bytes::from(frame))),
            Note::ToRoom {
                room,
                except,
                frame,
            } => self.to_room_here(room, except.as_ref(), &plain(Utf8Bytes::from(frame))),
            Note::Remove {
                room,
                user,
                name,
                frame,
            } => self.remove_here(room, user, &name, Utf8Bytes::from(frame)),
            Note::EndSession { session } => {
                if let Some(session) = session_from_hex(&session) {
                    self.end_session_here(session);
                }
            }
            Note::Presence { room, user, online } => {
                let changed = {
                    let mut remote = self.remote.lock().unwrap_or_else(PoisonError::into_inner);
                    let before = remote.online(room, &user);
                    let view = remote.nodes.entry(node).or_insert_with(|| RemoteNode {
                        seen: Instant::now(),
                        rooms: HashMap::new(),
                    });
                    view.seen = Instant::now();
                    if online {
                        view.rooms.entry(room).or_default().insert(user.clone());
                    } else if let Some(users) = view.rooms.get_mut(&room) {
                        users.remove(&user);
                        if users.is_empty() {
                            view.rooms.remove(&room);
                        }
                    }
                    before != remote.online(room, &user)
                };
                if changed {
                    self.announce_remote(room, &user);
                }
            }
            Note::Heartbeat { rooms } => {
                let view = RemoteNode {
                    seen: Instant::now(),
                    rooms: rooms
                        .into_iter()
                        .map(|(room, users)| (room, users.into_iter().collect()))
                        .collect(),
                };
                self.replace_view(node, Some(view));
            }
            Note::Events { .. } | Note::Epoch { .. } | Note::Rules { .. } | Note::Lost => {}
        }
    }

    /// Replaces what a node said (`None`: forgets the node) and tells the members here of every
    /// person that changed between online and offline because of it.
    fn replace_view(&self, node: u64, view: Option<RemoteNode>) {
        let changed: Vec<(RoomId, Username)> = {
            let mut remote = self.remote.lock().unwrap_or_else(PoisonError::into_inner);
            let old = match view {
                Some(view) => remote.nodes.insert(node, view),
                None => remote.nodes.remove(&node),
            };
            let new = remote.nodes.get(&node);
            let empty = HashSet::new();
            fn users<'a>(
                n: Option<&'a RemoteNode>,
                room: &RoomId,
                empty: &'a HashSet<Username>,
            ) -> &'a HashSet<Username> {
                n.and_then(|n| n.rooms.get(room)).unwrap_or(empty)
            }
            let rooms: HashSet<RoomId> = old
                .iter()
                .chain(new)
                .flat_map(|n| n.rooms.keys().copied())
                .collect();
            // A person who came or went on that node is news here only if no other node has
            // them online (announce_remote then also skips those online on this node).
            let mut changed = Vec::new();
            for room in rooms {
                for user in users(old.as_ref(), &room, &empty)
                    .symmetric_difference(users(new, &room, &empty))
                {
                    if !remote.online_except(node, room, user) {
                        changed.push((room, user.clone()));
                    }
                }
            }
            changed
        };
        for (room, user) in changed {
            self.announce_remote(room, &user);
        }
    }

    /// Tells the members here whether `user` is online in `room` now, unless they are online
    /// on this node (then nothing changed for the members here).
    fn announce_remote(&self, room: RoomId, user: &Username) {
        let Some(state) = self.joined_room(room) else {
            return;
        };
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.online.contains_key(user) {
            return;
        }
        let online = self
            .remote
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .online(room, user);
        let frame = plain(encode(&ServerMsg::Presence {
            room,
            user: user.clone(),
            online,
            status: None,
        }));
        state.broadcast(&frame, None);
    }

    /// Forgets the nodes not heard for `expiry`: their people go offline here. True if there
    /// was one.
    pub fn expire_nodes(&self, expiry: std::time::Duration) -> bool {
        let silent: Vec<u64> = self
            .remote
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .nodes
            .iter()
            .filter(|(_, n)| n.seen.elapsed() > expiry)
            .map(|(id, _)| *id)
            .collect();
        let any = !silent.is_empty();
        for node in silent {
            tracing::warn!(
                node = format_args!("{node:016x}"),
                "a node went silent; its people are offline"
            );
            self.replace_view(node, None);
        }
        any
    }

    /// Who is online in which room on this node, for the heartbeat.
    pub fn view(&self) -> Vec<(RoomId, Vec<Username>)> {
        let rooms = self.all_rooms();
        rooms
            .into_iter()
            .filter_map(|(room, state)| {
                let state = state.lock().unwrap_or_else(PoisonError::into_inner);
                (!state.online.is_empty()).then(|| (room, state.online.keys().cloned().collect()))
            })
            .collect()
    }

    /// The rooms with a connection on this node, and for each the lowest `seq` a join read
    /// since the dispatcher last asked (see [`Hub::joined_at`]).
    pub fn watched(&self) -> Vec<(RoomId, Option<u64>)> {
        let rooms = self.all_rooms();
        rooms
            .into_iter()
            .filter_map(|(room, state)| {
                let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
                let floor = state.floor.take();
                (!state.members.is_empty()).then_some((room, floor))
            })
            .collect()
    }

    /// Records that a join read the room up to `seq`: live delivery must start no later than
    /// the next one. The dispatcher uses it for a room it has no order for yet.
    pub fn joined_at(&self, room: RoomId, seq: u64) {
        let state = self.room(room);
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        state.floor = Some(state.floor.map_or(seq, |f| f.min(seq)));
    }

    /// Takes the lowest `seq` recorded by [`Hub::joined_at`] for a room.
    pub fn take_floor(&self, room: RoomId) -> Option<u64> {
        self.joined_room(room).and_then(|state| {
            state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .floor
                .take()
        })
    }
}

/// A session key in hex, for the bus.
fn hex(bytes: &[u8; 32]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A session key from its hex form on the bus (the reverse of `hex`).
pub fn session_from_hex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERAL: RoomId = shared::DEFAULT_ROOM_ID;
    fn user(s: &str) -> Username {
        Username::parse(s).expect("valid user")
    }
    fn event(seq: u64) -> MessageEvent {
        MessageEvent::message(
            GENERAL,
            seq,
            seq,
            user("alice"),
            shared::DisplayName::parse("alice").expect("valid"),
            format!("m{seq}"),
            0,
        )
    }

    #[test]
    fn a_full_queue_kicks_the_connection_instead_of_skipping_it() {
        let hub = Hub::new();
        let shutdown = CancellationToken::new();
        let (id, control) = hub.connect([1; 32], 1, &user("tester"), mpsc::channel(1).0, &shutdown);
        let (tx, mut rx) = mpsc::channel(2);
        hub.join(GENERAL, id, &user("bob"), tx, Arc::clone(&control));
        for seq in 1..=3 {
            hub.deliver(&event(seq));
        }
        assert!(control.token.is_cancelled());
        assert_eq!(control.kick.get(), Some(&Kick::Lagging));
        let mut seqs = Vec::new();
        while let Ok(out) = rx.try_recv() {
            seqs.extend(out.event.as_ref().map(|(_, seq)| *seq));
        }
        assert_eq!(seqs, vec![1, 2]);
    }

    /// The presence frames (user, online) a receiver holds.
    fn presences(rx: &mut mpsc::Receiver<Outbound>) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        while let Ok(frame) = rx.try_recv() {
            if let Ok(ServerMsg::Presence { user, online, .. }) =
                serde_json::from_str::<ServerMsg>(frame.frame.as_str())
            {
                out.push((user.as_str().to_owned(), online));
            }
        }
        out
    }

    #[test]
    fn people_on_other_nodes_come_online_and_go_offline_when_their_node_falls_silent() {
        let hub = Hub::new();
        let shutdown = CancellationToken::new();
        let (tx, mut rx) = mpsc::channel(16);
        let (id, control) = hub.connect([1; 32], 1, &user("bob"), tx.clone(), &shutdown);
        hub.join(GENERAL, id, &user("bob"), tx, control);
        // Node 7 says alice is online in the room; a heartbeat that repeats it changes nothing.
        hub.apply(
            7,
            Note::Presence {
                room: GENERAL,
                user: user("alice"),
                online: true,
            },
        );
        hub.apply(
            7,
            Note::Heartbeat {
                rooms: vec![(GENERAL, vec![user("alice")])],
            },
        );
        assert_eq!(presences(&mut rx), vec![("alice".to_owned(), true)]);
        assert!(hub.is_online(GENERAL, &user("alice")));
        assert_eq!(hub.online_count(GENERAL), 2);
        // Node 7 goes silent: alice goes offline here.
        assert!(hub.expire_nodes(std::time::Duration::ZERO));
        assert_eq!(presences(&mut rx), vec![("alice".to_owned(), false)]);
        assert!(!hub.is_online(GENERAL, &user("alice")));
    }

    #[test]
    fn presence_is_announced_once_per_user_not_per_connection() {
        let hub = Hub::new();
        let shutdown = CancellationToken::new();
        let room = GENERAL;
        let (watcher, wc) = hub.connect([1; 32], 1, &user("tester"), mpsc::channel(1).0, &shutdown);
        let (wtx, mut wrx) = mpsc::channel(16);
        hub.join(room, watcher, &user("watcher"), wtx, wc);

        let (a, ac) = hub.connect([2; 32], 1, &user("tester"), mpsc::channel(1).0, &shutdown);
        let (b, bc) = hub.connect([2; 32], 1, &user("tester"), mpsc::channel(1).0, &shutdown);
        let (atx, _arx) = mpsc::channel(16);
        let (btx, _brx) = mpsc::channel(16);
        let online = hub.join(room, a, &user("alice"), atx, ac);
        assert_eq!(online, vec![user("alice"), user("watcher")]);
        hub.join(room, b, &user("alice"), btx, bc);
        hub.leave(room, a);
        hub.leave(room, b);

        let mut frames = Vec::new();
        while let Ok(out) = wrx.try_recv() {
            assert!(out.event.is_none());
            frames.push(out.frame.as_str().to_owned());
        }
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert!(frames[0].contains("\"online\":true"));
        assert!(frames[1].contains("\"online\":false"));
        assert_eq!(hub.online_count(room), 1);
    }

    #[test]
    fn ending_a_session_kicks_all_its_connections() {
        let hub = Hub::new();
        let shutdown = CancellationToken::new();
        let (_, c1) = hub.connect([7; 32], 1, &user("tester"), mpsc::channel(1).0, &shutdown);
        let (_, c2) = hub.connect([7; 32], 1, &user("tester"), mpsc::channel(1).0, &shutdown);
        let (_, other) = hub.connect([8; 32], 1, &user("tester"), mpsc::channel(1).0, &shutdown);
        hub.end_session([7; 32]);
        assert_eq!(c1.kick.get(), Some(&Kick::SessionEnded));
        assert!(c2.token.is_cancelled());
        assert!(!other.token.is_cancelled());
    }
}
