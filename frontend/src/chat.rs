//! The chat model: every room this client follows, as plain data, and the reducer that turns
//! server frames and user actions into changes plus the frames to send.
//!
//! Each method returns the [`ClientMsg`]s it wants sent instead of sending them, so the model
//! needs no socket and is tested natively; [`crate::client`] keeps it in a signal, feeds it
//! frames from the connection task, and forwards what it returns.
//!
//! Rooms stay joined once opened (switching rooms does not leave the old one), so their
//! timelines keep up and unread counts can be shown for them.
//!
//! # Refused messages
//! A `send` refused for a transient reason ([`retryable`]) stays pending and is resent after a
//! pause, up to [`crate::timeline::MAX_TRANSIENT_ERRORS`] refusals in a row; then it shows as
//! failed with a retry, which makes it pending again with the same `client_id`. A refusal for a
//! reason that would recur (the text breaks a rule) shows as failed with a discard only.
//!
//! # Answers without a request id
//! `history` answers and `error` frames without a `client_id` do not say which request they
//! answer. The server handles one connection's frames in order and writes a join's catch-up
//! before it reads the next frame, so an `error` for a joined room while its catch-up is still
//! expected is the catch-up's, and any other one answers a `history` request.

use std::collections::BTreeMap;
use std::sync::Arc;

use shared::{ClientId, ClientMsg, ErrorCode, MessageText, RoomName, ServerMsg, Username};

use crate::outbox::OutboxEntry;
use crate::timeline::{Entry, HistoryRange, HistoryState, Outgoing, Timeline};

/// Where this connection stands with a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JoinState {
    /// Not joined on the current connection (or no connection).
    #[default]
    Idle,
    /// A `join` was sent; its `joined` has not arrived.
    Joining,
    /// The server confirmed the join on this connection.
    Joined,
}

/// One followed room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Room {
    /// Its messages.
    pub timeline: Timeline,
    /// Who is online in it, sorted (from `joined`, then `presence`).
    pub online: Vec<Username>,
    /// Its state on the current connection.
    pub join: JoinState,
    /// Messages by others that arrived while another room was open.
    pub unread: u32,
}

/// Everything the chat screen shows, for one logged-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    /// The logged-in user.
    me: Username,
    /// The room on screen.
    current: RoomName,
    /// Every followed room; always holds `current`.
    rooms: BTreeMap<RoomName, Room>,
    /// A connection is up (after `hello`, until it drops).
    connected: bool,
    /// The latest problem to show above the composer.
    error: Option<String>,
}

impl Chat {
    /// A model with `current` open and nothing loaded yet.
    pub fn new(me: Username, current: RoomName) -> Self {
        let mut rooms = BTreeMap::new();
        rooms.insert(current.clone(), Room::default());
        Self {
            me,
            current,
            rooms,
            connected: false,
            error: None,
        }
    }

    /// The logged-in user.
    pub fn me(&self) -> &Username {
        &self.me
    }

    /// The room on screen.
    pub fn current(&self) -> &RoomName {
        &self.current
    }

    /// A followed room.
    pub fn room(&self, name: &RoomName) -> Option<&Room> {
        self.rooms.get(name)
    }

    /// The followed rooms' names.
    pub fn room_names(&self) -> impl Iterator<Item = &RoomName> {
        self.rooms.keys()
    }

    /// The rows of the room on screen.
    pub fn current_entries(&self) -> Vec<Entry> {
        self.rooms
            .get(&self.current)
            .map(|r| r.timeline.entries(&self.me))
            .unwrap_or_default()
    }

    /// The top-of-list state of the room on screen.
    pub fn current_history(&self) -> HistoryState {
        self.rooms
            .get(&self.current)
            .map(|r| r.timeline.history_state())
            .unwrap_or(HistoryState::NotLoaded)
    }

    /// Who is online in the room on screen.
    pub fn current_online(&self) -> Vec<Username> {
        self.rooms
            .get(&self.current)
            .map(|r| r.online.clone())
            .unwrap_or_default()
    }

    /// Unread count of a room (0 for rooms not followed).
    pub fn unread(&self, name: &RoomName) -> u32 {
        self.rooms.get(name).map_or(0, |r| r.unread)
    }

    /// The latest problem to show, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Hides the problem shown.
    pub fn clear_error(&mut self) {
        self.error = None;
    }

    /// Shows a problem.
    pub fn set_error(&mut self, message: impl Into<String>) {
        self.error = Some(message.into());
    }

    /// Every unconfirmed message that may still be sent (pending, or failed with a retry), as
    /// the outbox stores it. A stored message comes back pending after a reload, which resends
    /// it: harmless even if it was stored, since the server deduplicates by `client_id`.
    pub fn outbox(&self) -> Vec<OutboxEntry> {
        self.rooms
            .iter()
            .flat_map(|(name, room)| {
                room.timeline.resendable().map(move |o| OutboxEntry {
                    room: name.clone(),
                    client_id: o.client_id.clone(),
                    text: o.text.to_string(),
                    created_ms: o.created_ms,
                })
            })
            .collect()
    }

    /// Puts messages from a stored outbox back as pending; their rooms are followed (and so
    /// joined, which resends them) from now on.
    pub fn restore(&mut self, entries: Vec<OutboxEntry>) {
        for e in entries {
            self.rooms
                .entry(e.room)
                .or_default()
                .timeline
                .push_outgoing(Outgoing::new(e.client_id, e.text.into(), e.created_ms));
        }
    }

    /// A connection is up (its `hello` arrived): join every followed room, catching up from
    /// where each one stands.
    pub fn connected(&mut self) -> Vec<ClientMsg> {
        self.connected = true;
        self.error = None;
        self.rooms
            .iter_mut()
            .map(|(name, room)| join(name, room))
            .collect()
    }

    /// The connection dropped: nothing is joined, nobody is known to be online.
    pub fn disconnected(&mut self) {
        self.connected = false;
        for room in self.rooms.values_mut() {
            room.join = JoinState::Idle;
            room.online.clear();
            room.timeline.connection_lost();
        }
    }

    /// Puts `name` on screen, following (and joining) it if it is new.
    pub fn open(&mut self, name: RoomName) -> Vec<ClientMsg> {
        self.current = name.clone();
        let connected = self.connected;
        let room = self.rooms.entry(name.clone()).or_default();
        room.unread = 0;
        if connected && room.join == JoinState::Idle {
            vec![join(&name, room)]
        } else {
            Vec::new()
        }
    }

    /// Adds a message written by the user to the room on screen, pending. It is sent at once if
    /// the room is joined, else when the join completes.
    pub fn compose(
        &mut self,
        text: MessageText,
        client_id: ClientId,
        now_ms: i64,
    ) -> Vec<ClientMsg> {
        let Some(room) = self.rooms.get_mut(&self.current) else {
            return Vec::new();
        };
        let text: Arc<str> = text.into_inner().into();
        room.timeline
            .push_outgoing(Outgoing::new(client_id.clone(), Arc::clone(&text), now_ms));
        if room.join == JoinState::Joined {
            vec![ClientMsg::Send {
                room: self.current.clone(),
                client_id,
                text: text.to_string(),
            }]
        } else {
            Vec::new()
        }
    }

    /// Asks for the page before the oldest message of the room on screen, if there is one and
    /// none is on its way.
    pub fn load_older(&mut self) -> Vec<ClientMsg> {
        let Some(room) = self.rooms.get_mut(&self.current) else {
            return Vec::new();
        };
        if room.join != JoinState::Joined {
            return Vec::new();
        }
        match room.timeline.request_older() {
            Some(before) => vec![ClientMsg::History {
                room: self.current.clone(),
                before,
                limit: Some(shared::HISTORY_PAGE),
            }],
            None => Vec::new(),
        }
    }

    /// Makes a failed, retryable message pending again with the same `client_id`: sent at once
    /// if its room is joined, else after the next join (it stays in the outbox meanwhile).
    pub fn retry(&mut self, client_id: &ClientId) -> Vec<ClientMsg> {
        for (name, room) in &mut self.rooms {
            if let Some(o) = room.timeline.retry(client_id) {
                return if room.join == JoinState::Joined {
                    vec![ClientMsg::Send {
                        room: name.clone(),
                        client_id: o.client_id.clone(),
                        text: o.text.to_string(),
                    }]
                } else {
                    Vec::new()
                };
            }
        }
        Vec::new()
    }

    /// Asks again for the missing messages of a gap of the room on screen (overlapping
    /// `from..=to`). Offline this does nothing: every gap is asked for after the next join.
    pub fn retry_gap(&mut self, from: u64, to: u64) -> Vec<ClientMsg> {
        let name = self.current.clone();
        match self.rooms.get_mut(&name) {
            Some(r) if r.join == JoinState::Joined => {
                history_frames(&name, r.timeline.refill(from, to))
            }
            _ => Vec::new(),
        }
    }

    /// Drops a failed message from its room.
    pub fn discard(&mut self, client_id: &ClientId) {
        for room in self.rooms.values_mut() {
            if room.timeline.discard(client_id) {
                return;
            }
        }
    }

    /// The `send` frames of every pending message in joined rooms (after a rate limit).
    pub fn resend_pending(&self) -> Vec<ClientMsg> {
        self.rooms
            .iter()
            .filter(|(_, r)| r.join == JoinState::Joined)
            .flat_map(|(name, r)| sends(name, &r.timeline))
            .collect()
    }

    /// What to send again once a rate limit's wait is over: the pending messages of joined
    /// rooms, and the joins that were refused while joining.
    pub fn after_rate_limit(&mut self) -> Vec<ClientMsg> {
        let mut out = self.resend_pending();
        if self.connected {
            for (name, r) in &mut self.rooms {
                if r.join == JoinState::Joining {
                    out.push(join(name, r));
                }
            }
        }
        out
    }

    /// Applies one server frame; returns the frames to send in answer.
    pub fn apply(&mut self, msg: ServerMsg) -> Vec<ClientMsg> {
        match msg {
            ServerMsg::Hello { .. } | ServerMsg::Pong { .. } => Vec::new(),
            ServerMsg::Joined {
                room,
                online,
                last_seq,
            } => {
                let r = self.rooms.entry(room.clone()).or_default();
                r.join = JoinState::Joined;
                r.online = online;
                r.online.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                // The room is joined on this connection only now: resend what waits for it, and
                // ask again for the messages still missing.
                let mut out = sends(&room, &r.timeline);
                out.extend(history_frames(&room, r.timeline.joined(last_seq)));
                out
            }
            ServerMsg::Left { room } => {
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.join = JoinState::Idle;
                }
                Vec::new()
            }
            ServerMsg::Message(ev) => {
                let name = ev.room.clone();
                let by_other = ev.author != self.me;
                let is_current = name == self.current;
                let r = self.rooms.entry(name.clone()).or_default();
                let inserted = r.timeline.insert_live(ev, &self.me);
                if inserted.is_new && by_other && !is_current {
                    r.unread += 1;
                }
                history_frames(&name, inserted.gaps)
            }
            ServerMsg::History {
                room,
                messages,
                has_more,
            } => {
                let me = &self.me;
                let fills = self
                    .rooms
                    .entry(room.clone())
                    .or_default()
                    .timeline
                    .apply_history(messages, has_more, me);
                history_frames(&room, fills)
            }
            ServerMsg::Ack {
                room,
                client_id,
                id,
                seq,
                ts,
            } => {
                let me = &self.me;
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.timeline.ack(&client_id, seq, id, ts, me);
                }
                Vec::new()
            }
            ServerMsg::Presence { room, user, online } => {
                let is_me = user == self.me;
                let r = self.rooms.entry(room).or_default();
                let pos = r.online.binary_search_by(|u| u.as_str().cmp(user.as_str()));
                let changed = match (pos, online) {
                    (Err(at), true) => {
                        r.online.insert(at, user.clone());
                        true
                    }
                    (Ok(at), false) => {
                        r.online.remove(at);
                        true
                    }
                    _ => false,
                };
                if changed && !is_me {
                    r.timeline.push_notice(user, online);
                }
                Vec::new()
            }
            ServerMsg::Error {
                code,
                message,
                client_id,
                room,
                ..
            } => self.apply_error(code, message, client_id, room),
        }
    }

    fn apply_error(
        &mut self,
        code: ErrorCode,
        message: String,
        client_id: Option<ClientId>,
        room: Option<RoomName>,
    ) -> Vec<ClientMsg> {
        match (code, client_id) {
            // Asked to slow down, with a time: the message stays pending and is sent again after
            // the wait (see `Client::schedule_resend`). Not a failure: waiting is all it takes.
            (ErrorCode::RateLimited, Some(_)) => {
                self.error = Some(message);
                Vec::new()
            }
            // Not joined (for example the join raced a server restart): join again, which
            // resends the pending messages and asks for the missing ones when it completes.
            (ErrorCode::NotJoined, client_id) => {
                let mut out = Vec::new();
                if let Some(name) = room
                    && let Some(r) = self.rooms.get_mut(&name)
                {
                    if r.join != JoinState::Joining && self.connected {
                        out.push(join(&name, r));
                    }
                    if client_id.is_none() {
                        // The answer to a `history` request.
                        r.timeline.history_failed();
                    }
                }
                out
            }
            // Transient: the message stays pending and the caller resends it later, until it
            // has been refused too often; then it fails, with a retry.
            (code, Some(cid)) if retryable(code) => {
                let reason = message.as_str();
                match room.as_ref().and_then(|n| self.rooms.get_mut(n)) {
                    Some(r) => {
                        r.timeline.transient_error(&cid, reason);
                    }
                    None => {
                        let _ = self
                            .rooms
                            .values_mut()
                            .any(|r| r.timeline.transient_error(&cid, reason));
                    }
                }
                self.error = Some(message);
                Vec::new()
            }
            // The server will never take this message: show it as failed, stop resending it.
            (_, Some(cid)) => {
                let reason = message.as_str();
                let failed = match room.as_ref().and_then(|n| self.rooms.get_mut(n)) {
                    Some(r) => r.timeline.fail(&cid, reason, false),
                    None => self
                        .rooms
                        .values_mut()
                        .any(|r| r.timeline.fail(&cid, reason, false)),
                };
                if !failed {
                    self.error = Some(message);
                }
                Vec::new()
            }
            (_, None) => {
                self.error = Some(message);
                let Some(name) = room else {
                    return Vec::new();
                };
                let Some(r) = self.rooms.get_mut(&name) else {
                    return Vec::new();
                };
                match r.join {
                    // The join itself was refused.
                    JoinState::Joining | JoinState::Idle => {
                        if code == ErrorCode::NoSuchRoom {
                            r.join = JoinState::Idle;
                        }
                        Vec::new()
                    }
                    JoinState::Joined if r.timeline.is_catching_up() => {
                        history_frames(&name, r.timeline.catch_up_failed())
                    }
                    JoinState::Joined => {
                        r.timeline.history_failed();
                        Vec::new()
                    }
                }
            }
        }
    }
}

/// Whether a `send` refused with `code` may succeed if sent again unchanged, with the same
/// `client_id`: only when the server failed (`internal`) or asked to slow down
/// (`rate_limited`). The other refusals would recur: `invalid` and `too_long` judge the text
/// itself (which the composer already checked, so client and server disagree on the rules),
/// `bad_frame` the frame, `no_such_room` the room. For those the message offers only "Discard";
/// its text stays on screen, so it can be copied and rewritten. (`not_joined` is handled by
/// joining again and never fails a message.)
pub fn retryable(code: ErrorCode) -> bool {
    match code {
        ErrorCode::Internal | ErrorCode::RateLimited | ErrorCode::NotJoined => true,
        ErrorCode::BadFrame | ErrorCode::Invalid | ErrorCode::TooLong | ErrorCode::NoSuchRoom => {
            false
        }
    }
}

/// The `history` frames of gap-filling requests.
fn history_frames(name: &RoomName, ranges: Vec<HistoryRange>) -> Vec<ClientMsg> {
    ranges
        .into_iter()
        .map(|g| ClientMsg::History {
            room: name.clone(),
            before: g.before,
            limit: Some(g.limit),
        })
        .collect()
}

/// The `join` for a room, catching up from its timeline's position.
fn join(name: &RoomName, room: &mut Room) -> ClientMsg {
    room.join = JoinState::Joining;
    let since = room.timeline.since();
    if since.is_none() {
        room.timeline.expect_first_page();
    }
    ClientMsg::Join {
        room: name.clone(),
        since,
    }
}

/// The `send` frames of a room's pending messages, oldest first, with their original ids.
fn sends(name: &RoomName, timeline: &Timeline) -> Vec<ClientMsg> {
    timeline
        .pending()
        .map(|o| ClientMsg::Send {
            room: name.clone(),
            client_id: o.client_id.clone(),
            text: o.text.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::Delivery;
    use shared::MessageEvent;

    fn user(n: &str) -> Username {
        Username::parse(n).expect("valid")
    }
    fn room(n: &str) -> RoomName {
        RoomName::parse(n).expect("valid")
    }
    fn cid(n: &str) -> ClientId {
        ClientId::parse(n).expect("valid")
    }
    fn msg(r: &str, seq: u64, author: &str, client_id: Option<&str>) -> ServerMsg {
        ServerMsg::Message(MessageEvent {
            room: room(r),
            seq,
            id: seq,
            author: user(author),
            text: format!("m{seq}"),
            ts: 0,
            client_id: client_id.map(cid),
        })
    }
    fn joined(r: &str, online: &[&str]) -> ServerMsg {
        ServerMsg::Joined {
            room: room(r),
            last_seq: 0,
            online: online.iter().map(|u| user(u)).collect(),
        }
    }
    fn history(r: &str, seqs: std::ops::RangeInclusive<u64>, has_more: bool) -> ServerMsg {
        ServerMsg::History {
            room: room(r),
            messages: seqs
                .map(|s| match msg(r, s, "bob", None) {
                    ServerMsg::Message(ev) => ev,
                    _ => unreachable!("msg builds a message"),
                })
                .collect(),
            has_more,
        }
    }
    /// The first page of an empty room.
    fn no_history(r: &str) -> ServerMsg {
        ServerMsg::History {
            room: room(r),
            messages: Vec::new(),
            has_more: false,
        }
    }
    fn text(t: &str) -> MessageText {
        MessageText::parse(t).expect("valid")
    }

    /// A model connected, with `general` joined and `upto` messages loaded.
    fn ready(upto: u64) -> Chat {
        let mut c = Chat::new(user("alice"), room("general"));
        let joins = c.connected();
        assert_eq!(
            joins,
            vec![ClientMsg::Join {
                room: room("general"),
                since: None
            }]
        );
        assert!(c.apply(joined("general", &["alice", "bob"])).is_empty());
        c.apply(history("general", 1..=upto, false));
        c
    }

    #[test]
    fn a_reconnect_rejoins_every_room_from_where_it_stands() {
        let mut c = ready(3);
        c.open(room("random"));
        c.apply(joined("random", &[]));
        c.apply(no_history("random"));
        c.apply(msg("general", 4, "bob", None));
        c.disconnected();
        assert!(c.current_online().is_empty());
        let joins = c.connected();
        assert_eq!(
            joins,
            vec![
                ClientMsg::Join {
                    room: room("general"),
                    since: Some(4)
                },
                ClientMsg::Join {
                    room: room("random"),
                    since: Some(0)
                },
            ]
        );
    }

    #[test]
    fn composing_while_offline_sends_after_the_join_with_the_same_id() {
        let mut c = Chat::new(user("alice"), room("general"));
        assert!(c.compose(text("hi"), cid("c1"), 1).is_empty());
        assert_eq!(c.outbox().len(), 1);
        c.connected();
        let out = c.apply(joined("general", &["alice"]));
        assert_eq!(
            out,
            vec![ClientMsg::Send {
                room: room("general"),
                client_id: cid("c1"),
                text: "hi".into()
            }]
        );
        // Confirmation empties the outbox.
        c.apply(no_history("general"));
        c.apply(msg("general", 1, "alice", Some("c1")));
        assert!(c.outbox().is_empty());
        assert_eq!(c.current_entries().len(), 1);
    }

    #[test]
    fn composing_while_joined_sends_at_once() {
        let mut c = ready(0);
        let out = c.compose(text("yo"), cid("c2"), 1);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn a_restored_outbox_is_pending_and_its_rooms_are_joined() {
        let mut c = Chat::new(user("alice"), room("general"));
        c.restore(vec![OutboxEntry {
            room: room("random"),
            client_id: cid("c9"),
            text: "later".into(),
            created_ms: 3,
        }]);
        let joins = c.connected();
        assert_eq!(joins.len(), 2);
        let out = c.apply(joined("random", &[]));
        assert!(
            matches!(&out[..], [ClientMsg::Send { client_id, .. }] if client_id.as_str() == "c9")
        );
    }

    #[test]
    fn presence_updates_the_online_list_and_adds_notices_once() {
        let mut c = ready(2);
        c.apply(ServerMsg::Presence {
            room: room("general"),
            user: user("carol"),
            online: true,
        });
        c.apply(ServerMsg::Presence {
            room: room("general"),
            user: user("carol"),
            online: true,
        });
        assert_eq!(
            c.current_online(),
            vec![user("alice"), user("bob"), user("carol")]
        );
        c.apply(ServerMsg::Presence {
            room: room("general"),
            user: user("bob"),
            online: false,
        });
        assert_eq!(c.current_online(), vec![user("alice"), user("carol")]);
        let notices = c
            .current_entries()
            .into_iter()
            .filter(|e| matches!(e, Entry::Notice(_)))
            .count();
        assert_eq!(notices, 2);
    }

    #[test]
    fn a_refused_message_fails_and_leaves_the_outbox() {
        let mut c = ready(0);
        c.compose(text("bad"), cid("c1"), 1);
        c.apply(ServerMsg::Error {
            code: ErrorCode::Invalid,
            message: "nope".into(),
            client_id: Some(cid("c1")),
            room: Some(room("general")),
            retry_after_ms: None,
        });
        assert!(c.outbox().is_empty());
        assert!(matches!(
            &c.current_entries()[..],
            [Entry::Message { delivery: Delivery::Failed { reason, retryable: false }, .. }]
                if &**reason == "nope"
        ));
        assert!(c.resend_pending().is_empty());
    }

    #[test]
    fn a_rate_limited_message_stays_pending() {
        let mut c = ready(0);
        c.compose(text("fast"), cid("c1"), 1);
        c.apply(ServerMsg::Error {
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
            client_id: Some(cid("c1")),
            room: Some(room("general")),
            retry_after_ms: None,
        });
        assert_eq!(c.outbox().len(), 1);
        assert_eq!(c.resend_pending().len(), 1);
        assert_eq!(c.error(), Some("slow down"));
        // However often the server says "wait", the message waits; it never turns failed.
        for _ in 0..(crate::timeline::MAX_TRANSIENT_ERRORS * 3) {
            c.apply(ServerMsg::Error {
                code: ErrorCode::RateLimited,
                message: "slow down".into(),
                client_id: Some(cid("c1")),
                room: Some(room("general")),
                retry_after_ms: Some(200),
            });
        }
        assert_eq!(c.after_rate_limit().len(), 1, "still pending, sent again");
    }

    #[test]
    fn messages_in_other_rooms_count_as_unread_until_opened() {
        let mut c = ready(0);
        c.open(room("random"));
        c.apply(joined("random", &[]));
        c.apply(no_history("random"));
        c.open(room("general"));
        c.apply(msg("random", 1, "bob", None));
        c.apply(msg("random", 1, "bob", None));
        c.apply(msg("random", 2, "alice", None));
        assert_eq!(c.unread(&room("random")), 1);
        assert!(c.open(room("random")).is_empty(), "already joined");
        assert_eq!(c.unread(&room("random")), 0);
    }

    #[test]
    fn a_live_gap_is_requested_from_history() {
        let mut c = ready(5);
        let out = c.apply(msg("general", 9, "bob", None));
        assert_eq!(
            out,
            vec![ClientMsg::History {
                room: room("general"),
                before: 9,
                limit: Some(3)
            }]
        );
    }

    #[test]
    fn loading_older_asks_before_the_lowest_seq() {
        let mut c = Chat::new(user("alice"), room("general"));
        c.connected();
        c.apply(joined("general", &[]));
        c.apply(history("general", 51..=100, true));
        assert_eq!(
            c.load_older(),
            vec![ClientMsg::History {
                room: room("general"),
                before: 51,
                limit: Some(50)
            }]
        );
        assert!(c.load_older().is_empty(), "already on its way");
        assert_eq!(c.current_history(), HistoryState::Loading);
    }

    #[test]
    fn not_joined_errors_rejoin_once() {
        let mut c = ready(1);
        let err = ServerMsg::Error {
            code: ErrorCode::NotJoined,
            message: "join first".into(),
            client_id: None,
            room: Some(room("general")),
            retry_after_ms: None,
        };
        assert_eq!(c.apply(err.clone()).len(), 1);
        assert!(c.apply(err).is_empty(), "a join is already on its way");
    }

    fn joined_at(r: &str, last_seq: u64) -> ServerMsg {
        ServerMsg::Joined {
            room: room(r),
            last_seq,
            online: vec![user("alice")],
        }
    }

    fn history_req(before: u64, limit: u32) -> ClientMsg {
        ClientMsg::History {
            room: room("general"),
            before,
            limit: Some(limit),
        }
    }

    fn internal(client_id: Option<&str>) -> ServerMsg {
        ServerMsg::Error {
            code: ErrorCode::Internal,
            message: "Try again.".into(),
            client_id: client_id.map(cid),
            room: Some(room("general")),
            retry_after_ms: None,
        }
    }

    #[test]
    fn a_join_answered_with_the_newest_page_instead_of_a_catch_up_shows_the_hole_and_fills_it() {
        // Away for longer than the server replays (CATCH_UP_MAX): it answers `join { since: 10 }`
        // with `joined` and the newest page, as for a fresh join.
        let mut c = ready(10);
        c.disconnected();
        let joins = c.connected();
        assert_eq!(
            joins,
            vec![ClientMsg::Join {
                room: room("general"),
                since: Some(10)
            }]
        );
        let top = 10 + shared::CATCH_UP_MAX + 500;
        c.apply(joined_at("general", top));
        let fills = c.apply(history("general", top - 49..=top, true));
        // Nothing shown twice, the newest page shown, and the hole asked for page by page from
        // just below that page (a bounded number of requests at once).
        let seqs: Vec<u64> = c
            .current_entries()
            .into_iter()
            .filter_map(|e| match e {
                Entry::Message { seq: Some(seq), .. } => Some(seq),
                _ => None,
            })
            .collect();
        let mut sorted = seqs.clone();
        sorted.dedup();
        assert_eq!(seqs, sorted);
        assert!(seqs.contains(&10) && seqs.contains(&top));
        assert!(
            !fills.is_empty(),
            "the hole is asked for: {:?} {fills:?}",
            gaps(&c)
        );
        assert!(fills.len() <= crate::timeline::MAX_FILL_PAGES);
        assert!(matches!(fills[0], ClientMsg::History { before, .. } if before == top - 49));
        // Until it is filled, the hole shows as a gap between what was held and the page.
        assert!(
            gaps(&c)
                .iter()
                .any(|&(from, to, _)| from == 11 && to == top - 50),
            "{:?}",
            gaps(&c)
        );
    }

    fn gaps(c: &Chat) -> Vec<(u64, u64, bool)> {
        c.current_entries()
            .into_iter()
            .filter_map(|e| match e {
                Entry::Gap(g) => Some((g.from, g.to, g.loading)),
                _ => None,
            })
            .collect()
    }

    fn states(c: &Chat) -> Vec<&'static str> {
        c.current_entries()
            .iter()
            .filter_map(|e| match e {
                Entry::Message { delivery, .. } => Some(delivery.as_str()),
                _ => None,
            })
            .collect()
    }

    /// A model with `c1` ("x") refused for a transient reason until it failed.
    fn failed_transiently() -> Chat {
        let mut c = ready(0);
        c.compose(text("x"), cid("c1"), 1);
        for _ in 0..crate::timeline::MAX_TRANSIENT_ERRORS {
            assert_eq!(states(&c), vec!["pending"]);
            c.apply(internal(Some("c1")));
        }
        assert_eq!(states(&c), vec!["failed"]);
        c
    }

    #[test]
    fn only_transient_refusals_are_retryable() {
        assert!(retryable(ErrorCode::Internal));
        assert!(retryable(ErrorCode::RateLimited));
        assert!(!retryable(ErrorCode::TooLong));
        assert!(!retryable(ErrorCode::Invalid));
        assert!(!retryable(ErrorCode::BadFrame));
        assert!(!retryable(ErrorCode::NoSuchRoom));
    }

    #[test]
    fn a_message_refused_too_often_fails_and_retry_sends_it_again_with_the_same_id() {
        let mut c = failed_transiently();
        assert!(c.resend_pending().is_empty(), "no more automatic resends");
        assert_eq!(c.outbox().len(), 1, "still kept in the outbox");
        assert!(matches!(
            &c.current_entries()[..],
            [Entry::Message {
                delivery: Delivery::Failed {
                    retryable: true,
                    ..
                },
                ..
            }]
        ));
        let out = c.retry(&cid("c1"));
        assert_eq!(
            out,
            vec![ClientMsg::Send {
                room: room("general"),
                client_id: cid("c1"),
                text: "x".into()
            }]
        );
        assert_eq!(states(&c), vec!["pending"]);
        // The first attempt had been stored after all: the server acks the original.
        c.apply(ServerMsg::Ack {
            room: room("general"),
            client_id: cid("c1"),
            id: 1,
            seq: 1,
            ts: 1,
        });
        c.apply(msg("general", 1, "alice", Some("c1")));
        assert_eq!(states(&c), vec!["sent"]);
        assert!(c.outbox().is_empty());
    }

    #[test]
    fn a_message_retried_offline_stays_pending_until_the_join() {
        let mut c = failed_transiently();
        c.disconnected();
        assert!(c.retry(&cid("c1")).is_empty());
        assert_eq!(states(&c), vec!["pending"]);
        assert_eq!(c.outbox().len(), 1);
        c.connected();
        let out = c.apply(joined_at("general", 0));
        assert!(
            matches!(&out[..], [ClientMsg::Send { client_id, .. }] if client_id.as_str() == "c1")
        );
    }

    #[test]
    fn a_permanently_refused_message_cannot_be_retried() {
        let mut c = ready(0);
        c.compose(text("x"), cid("c1"), 1);
        c.apply(ServerMsg::Error {
            code: ErrorCode::TooLong,
            message: "too long".into(),
            client_id: Some(cid("c1")),
            room: Some(room("general")),
            retry_after_ms: None,
        });
        assert!(c.retry(&cid("c1")).is_empty());
        assert_eq!(states(&c), vec!["failed"]);
        assert!(c.outbox().is_empty());
    }

    #[test]
    fn a_gap_history_cannot_fill_is_shown_and_can_be_asked_again() {
        let mut c = ready(3);
        assert_eq!(
            c.apply(msg("general", 7, "bob", None)),
            vec![history_req(7, 3)]
        );
        assert_eq!(gaps(&c), vec![(4, 6, true)]);
        assert!(c.apply(history("general", 4..=4, true)).is_empty());
        assert_eq!(gaps(&c), vec![(5, 6, false)]);
        assert_eq!(c.retry_gap(5, 6), vec![history_req(7, 2)]);
        assert_eq!(gaps(&c), vec![(5, 6, true)]);
        c.apply(history("general", 5..=6, true));
        assert!(gaps(&c).is_empty());
    }

    #[test]
    fn an_error_answering_a_gap_request_shows_the_gap() {
        let mut c = ready(3);
        c.apply(msg("general", 6, "bob", None));
        assert!(c.apply(internal(None)).is_empty());
        assert_eq!(gaps(&c), vec![(4, 5, false)]);
        assert_eq!(c.error(), Some("Try again."));
        // Offline, asking again waits for the join, which asks for every gap.
        c.disconnected();
        assert!(c.retry_gap(4, 5).is_empty());
        c.connected();
        let out = c.apply(joined_at("general", 6));
        assert_eq!(out, vec![history_req(6, 2)]);
    }

    #[test]
    fn a_catch_up_error_asks_history_for_the_rest_and_shows_what_stays_missing() {
        let mut c = ready(5);
        c.disconnected();
        c.connected();
        assert!(c.apply(joined_at("general", 9)).is_empty());
        c.apply(msg("general", 6, "bob", None));
        assert!(gaps(&c).is_empty(), "7..=9 are on their way");
        assert_eq!(c.apply(internal(None)), vec![history_req(10, 3)]);
        assert_eq!(gaps(&c), vec![(7, 9, true)]);
        assert!(c.apply(internal(None)).is_empty());
        assert_eq!(gaps(&c), vec![(7, 9, false)]);
    }

    #[test]
    fn a_catch_up_short_of_last_seq_is_a_gap_at_the_next_page() {
        let mut c = ready(5);
        c.disconnected();
        c.connected();
        c.apply(joined_at("general", 9));
        c.apply(msg("general", 6, "bob", None));
        // Older messages were asked for; the answer comes after the (short) catch-up.
        c.apply(ServerMsg::History {
            room: room("general"),
            messages: Vec::new(),
            has_more: false,
        });
        assert_eq!(gaps(&c), vec![(7, 9, true)]);
    }

    #[test]
    fn a_first_page_short_of_last_seq_asks_for_the_rest() {
        let mut c = Chat::new(user("alice"), room("general"));
        c.connected();
        assert!(c.apply(joined_at("general", 5)).is_empty());
        assert_eq!(
            c.apply(history("general", 1..=3, false)),
            vec![history_req(6, 2)]
        );
        assert_eq!(gaps(&c), vec![(4, 5, true)]);
    }
}
