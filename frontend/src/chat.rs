//! The chat model: every room this client follows, as plain data, and the reducer that turns
//! server frames and user actions into changes plus the frames to send.
//!
//! Each method returns the [`ClientFrame`]s it wants sent instead of sending them, so the model
//! needs no socket and is tested natively; [`crate::client`] keeps it in a signal, feeds it
//! frames from the connection task, and forwards what it returns.
//!
//! Rooms are keyed by their [`RoomId`]; their names (for people) come from the room list and
//! are kept beside. Rooms stay joined once opened (switching rooms does not leave the old one),
//! so their timelines keep up and unread counts can be shown for them.
//!
//! # Refused messages
//! A `send` refused for a transient reason ([`retryable`]) stays pending and is resent after a
//! pause, up to [`crate::timeline::MAX_TRANSIENT_ERRORS`] refusals in a row; then it shows as
//! failed with a retry, which makes it pending again with the same `client_id`. A refusal for
//! any other reason (the text breaks a rule, or a code this client does not know) shows as
//! failed with a discard only. A join refused for good (the room is gone, forbidden, or an
//! unknown code) fails the room's pending messages with a retry, so none waits forever.
//!
//! # Request ids
//! Every frame this model sends carries a fresh `req`, and the model remembers what each one
//! asked for until it is answered (or the connection drops). The server echoes it in the
//! answer, so a `history` page is known to be a join's first page or the answer to a `history`
//! request, and an `error` is known to refuse a given join, catch-up, `history` or `send` (even
//! without a `client_id`). Answers without a `req` (or with one this model does not know) fall
//! back to the ordering rules: the server handles one connection's frames in order and writes a
//! join's catch-up before it reads the next frame, so an `error` for a joined room while its
//! catch-up is still expected is the catch-up's, and any other one answers a `history` request.
//!
//! # Messages from the previous release
//! Outbox entries stored by the previous release name their room instead of giving its id
//! ([`OutboxRoom::Name`]). `general` is [`DEFAULT_ROOM_ID`]; any other name is resolved by exact
//! name once the room list is known ([`Chat::set_room_list`]), then sent as usual. Entries whose
//! room is not in the list are kept ([`Chat::unresolved`]): still in the outbox, shown apart,
//! resolved again with every new room list, and dropped only when the user discards them.

use std::sync::Arc;

use shared::{
    ClientFrame, ClientId, ClientMsg, DEFAULT_ROOM, DEFAULT_ROOM_ID, DisplayName, ErrorCode,
    EventKind, InviteInfo, MessageEvent, MessageText, Presence, Removal, Role, RoomId, RoomInfo,
    RoomKind, RoomName, ServerMsg, Username,
};

use crate::map::Map;
use crate::outbox::{OutboxEntry, OutboxRoom};
use crate::timeline::{Act, Entry, HistoryState, Kept, Me, Outgoing, Timeline};

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
    /// Unread messages by others (the server's count, kept up live).
    pub unread: u32,
    /// Of those, how many mention the user.
    pub mentions: u32,
    /// The user's read position (the highest `seq` read).
    pub read_seq: u64,
    /// Who is typing: handle, display name, until when (ms since the Unix epoch).
    pub typing: Vec<(Username, DisplayName, i64)>,
    /// Who of `online` is away, sorted.
    pub away: Vec<Username>,
    /// The user is no longer a member (left elsewhere, kicked or banned): not joined again after
    /// a reconnect, until the user opens it again.
    pub removed: bool,
}

/// Something that happened to the user in a room, shown as a notice until dismissed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Local counter: keys the notice.
    pub n: u64,
    /// The room.
    pub room: RoomId,
    /// What the screen called the room when it happened.
    pub room_title: String,
    /// What happened.
    pub kind: AlertKind,
}

/// What an [`Alert`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertKind {
    /// The membership ended.
    Removed {
        /// Why.
        reason: Removal,
        /// Who did it (kick, ban).
        by: Option<Username>,
        /// The reason they gave.
        message: Option<String>,
    },
    /// The user may not post until `until` (ms since the Unix epoch).
    Muted {
        /// Until when.
        until: i64,
        /// The reason given.
        reason: Option<String>,
    },
    /// The mute was lifted.
    Unmuted,
}

/// What a request still waiting for its answer asked for, by its `req`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `join`: answered by `joined` and then a `history` page, a catch-up or an `error`.
    Join {
        /// The room.
        room: RoomId,
    },
    /// `leave`.
    Leave {
        /// The room.
        room: RoomId,
    },
    /// `send`, or a change (`edit`, `delete`, `react`), answered by `ack`.
    Send {
        /// The room.
        room: RoomId,
        /// The message.
        client_id: ClientId,
    },
    /// `history` (an older page, or a gap fill).
    History {
        /// The room.
        room: RoomId,
    },
}

impl Request {
    /// What `msg` asks for; `None` for frames whose answers need no bookkeeping (`ping`).
    pub fn of(msg: &ClientMsg) -> Option<Self> {
        match msg {
            ClientMsg::Join { room, .. } => Some(Request::Join { room: *room }),
            ClientMsg::Leave { room } => Some(Request::Leave { room: *room }),
            ClientMsg::Send {
                room, client_id, ..
            }
            | ClientMsg::Edit {
                room, client_id, ..
            }
            | ClientMsg::Delete {
                room, client_id, ..
            }
            | ClientMsg::React {
                room, client_id, ..
            } => Some(Request::Send {
                room: *room,
                client_id: client_id.clone(),
            }),
            ClientMsg::History { room, .. } => Some(Request::History { room: *room }),
            _ => None,
        }
    }
}

/// Everything the chat screen shows, for one logged-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    /// The logged-in user.
    me: Me,
    /// The room on screen.
    current: RoomId,
    /// Every followed room; always holds `current`.
    rooms: Map<RoomId, Room>,
    /// The names of the rooms known (from the room list).
    names: Map<RoomId, RoomName>,
    /// The display names of the users seen (authors of messages).
    people: Map<Username, DisplayName>,
    /// Outbox entries of the previous release whose room name is not (yet) in the room list.
    unresolved: Vec<OutboxEntry>,
    /// The last `req` given out.
    last_req: u64,
    /// The requests sent on this connection whose answer has not arrived, by `req`.
    in_flight: Map<u64, Request>,
    /// A connection is up (after `hello`, until it drops).
    connected: bool,
    /// The latest problem to show above the composer.
    error: Option<String>,
    /// What the server said about each room the user may see (room list, `room` frames).
    infos: Map<RoomId, RoomInfo>,
    /// Invitations waiting for an answer.
    invites: Vec<InviteInfo>,
    /// Rooms the user is muted in: until when (ms since the Unix epoch; kept unsigned, the
    /// type of the other maps by room, so that one map type is compiled for all of them).
    muted: Map<RoomId, u64>,
    /// Slow mode: the last wait the server asked for in a room (ms), until a message there is
    /// confirmed.
    slow_wait: Map<RoomId, u64>,
    /// Notices about the user's memberships, oldest first.
    alerts: Vec<Alert>,
    /// Counter for [`Alert::n`].
    next_alert: u64,
    /// Grows with each `members` frame, by room: a member list on screen reads the list again.
    members_rev: Map<RoomId, u64>,
    /// The page is visible (the user can be reading the room on screen).
    visible: bool,
    /// The newest message of the room on screen is in view (its list is scrolled to the
    /// bottom): with `visible`, what arrives there is read as it arrives.
    at_bottom: bool,
    /// Notifications to show (a mention, or a direct message, while the page is hidden).
    notes: Vec<Note>,
    /// A stretch of the room on screen far back in its history, shown instead of its live
    /// timeline.
    window: Option<Window>,
}

/// A stretch of a room's history around one message too far back to load page by page (a
/// search result, a reply's original), read over HTTP and shown instead of the live timeline
/// until the user goes back to the latest messages. The live timeline keeps following the room
/// meanwhile; changes to the messages shown apply here too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The room.
    pub room: RoomId,
    /// The message it was opened around.
    pub around: u64,
    /// Its messages (pages before and after `around`, and further pages either way).
    timeline: Timeline,
    /// Messages newer than the last one held exist.
    has_newer: bool,
    /// A page of newer messages is on its way.
    newer_in_flight: bool,
}

/// A browser notification to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The room.
    pub room: RoomId,
    /// Its title: who, where.
    pub title: String,
    /// The message's text.
    pub body: String,
}

/// Rooms joined automatically (the user's memberships) at most, beside the ones opened.
pub const AUTO_FOLLOW_MAX: usize = 30;

impl Chat {
    /// A model with `current` open and nothing loaded yet.
    pub fn new(me: Me, current: RoomId) -> Self {
        let mut rooms = Map::new();
        rooms.insert(current, Room::default());
        let mut names = Map::new();
        if let Ok(general) = RoomName::parse(DEFAULT_ROOM) {
            names.insert(DEFAULT_ROOM_ID, general);
        }
        Self {
            me,
            current,
            rooms,
            names,
            people: Map::new(),
            unresolved: Vec::new(),
            last_req: 0,
            in_flight: Map::new(),
            connected: false,
            error: None,
            infos: Map::new(),
            invites: Vec::new(),
            muted: Map::new(),
            slow_wait: Map::new(),
            alerts: Vec::new(),
            next_alert: 0,
            members_rev: Map::new(),
            visible: true,
            at_bottom: true,
            notes: Vec::new(),
            window: None,
        }
    }

    /// The window of the room on screen, if one is open.
    pub fn window(&self) -> Option<&Window> {
        self.window.as_ref().filter(|w| w.room == self.current)
    }

    /// Opens a window of the room on screen around message `around` (loading: its pages come
    /// with [`Chat::window_loaded`]).
    pub fn open_window(&mut self, around: u64) {
        let mut timeline = Timeline::default();
        timeline.expect_first_page();
        if let Some(live) = self.rooms.get(&self.current) {
            timeline.copy_quotes(&live.timeline);
        }
        self.window = Some(Window {
            room: self.current,
            around,
            timeline,
            has_newer: false,
            newer_in_flight: false,
        });
    }

    /// Goes back to the live timeline.
    pub fn close_window(&mut self) {
        self.window = None;
    }

    /// The open window of `room` around `around`, if it is still the one on screen.
    fn window_mut(&mut self, room: RoomId, around: u64) -> Option<&mut Window> {
        self.window
            .as_mut()
            .filter(|w| w.room == room && w.around == around)
    }

    /// The first pages of a window: the messages up to and including `around` (`older_more`:
    /// older ones exist) and those after it (`newer_more`: newer ones exist).
    pub fn window_loaded(
        &mut self,
        room: RoomId,
        around: u64,
        older: (Vec<MessageEvent>, bool),
        newer: (Vec<MessageEvent>, bool),
    ) {
        let me = self.me.clone();
        if let Some(w) = self.window_mut(room, around) {
            w.timeline.apply_page(older.0, older.1, true, &me);
            w.timeline.extend_newer(newer.0, &me);
            w.has_newer = newer.1;
        }
    }

    /// Starts loading the page before the window's oldest message: the `before` to ask with.
    pub fn window_request_older(&mut self) -> Option<(RoomId, u64, u64)> {
        let w = self.window.as_mut().filter(|w| w.room == self.current)?;
        Some((w.room, w.around, w.timeline.request_older()?))
    }

    /// Starts loading the page after the window's newest message: the `after` to ask with.
    pub fn window_request_newer(&mut self) -> Option<(RoomId, u64, u64)> {
        let w = self.window.as_mut().filter(|w| w.room == self.current)?;
        if !w.has_newer || w.newer_in_flight || !w.timeline.is_loaded() {
            return None;
        }
        w.newer_in_flight = true;
        Some((w.room, w.around, w.timeline.newest_seq()))
    }

    /// A page of a window arrived (`newer`: after its newest message, else before its oldest);
    /// `None`: the request failed (it may be asked again).
    pub fn window_page(
        &mut self,
        room: RoomId,
        around: u64,
        newer: bool,
        page: Option<(Vec<MessageEvent>, bool)>,
    ) {
        let me = self.me.clone();
        let Some(w) = self.window_mut(room, around) else {
            return;
        };
        match (newer, page) {
            (true, Some((_, false))) => {
                // Read down to the newest message: the live timeline takes over (it holds the
                // newest messages, and follows the room).
                self.window = None;
            }
            (true, Some((page, true))) => {
                w.newer_in_flight = false;
                w.timeline.extend_newer(page, &me);
            }
            (true, None) => w.newer_in_flight = false,
            (false, Some((page, more))) => w.timeline.apply_page(page, more, false, &me),
            (false, None) => w.timeline.history_failed(),
        }
    }

    /// Whether newer messages than those of the open window exist.
    pub fn window_has_newer(&self) -> bool {
        self.window().is_some_and(|w| w.has_newer)
    }

    /// The logged-in user's handle.
    pub fn me(&self) -> &Username {
        &self.me.user
    }

    /// The logged-in user's display name.
    pub fn my_name(&self) -> &DisplayName {
        &self.me.name
    }

    /// Records the logged-in user's display name (as `hello` says it now).
    pub fn set_my_name(&mut self, name: DisplayName) {
        self.me.name = name;
    }

    /// The name a user is shown by: the own display name, the one their latest message carried,
    /// or else their handle.
    pub fn display_name(&self, user: &Username) -> DisplayName {
        if user == &self.me.user {
            return self.me.name.clone();
        }
        self.people
            .get(user)
            .cloned()
            .unwrap_or_else(|| DisplayName::from(user))
    }

    /// The room on screen.
    pub fn current(&self) -> RoomId {
        self.current
    }

    /// A followed room.
    pub fn room(&self, id: RoomId) -> Option<&Room> {
        self.rooms.get(&id)
    }

    /// The followed rooms' ids.
    pub fn room_ids(&self) -> impl Iterator<Item = RoomId> + '_ {
        self.rooms.keys().copied()
    }

    /// A room's name, when the room list (or the default room) told it.
    pub fn room_name(&self, id: RoomId) -> Option<&RoomName> {
        self.names.get(&id)
    }

    /// What the screen calls a room: its name, or `room <id>` while its name is unknown; for a
    /// direct conversation, the other people's names.
    pub fn room_label(&self, id: RoomId) -> String {
        if let Some(info) = self.infos.get(&id)
            && info.kind == RoomKind::Direct
        {
            return self.direct_label(info);
        }
        self.names
            .get(&id)
            .map_or_else(|| format!("room {id}"), |n| n.to_string())
    }

    /// The title of a room: `#name`, or the people of a direct conversation.
    pub fn room_title(&self, id: RoomId) -> String {
        if self.is_direct(id) {
            self.room_label(id)
        } else {
            format!("#{}", self.room_label(id))
        }
    }

    /// Whether a room is a direct conversation.
    pub fn is_direct(&self, id: RoomId) -> bool {
        self.infos
            .get(&id)
            .is_some_and(|i| i.kind == RoomKind::Direct)
    }

    /// The other people of a direct conversation, by the names they are known by: the display
    /// names seen (messages, searches, member lists), else read from the room's name (the
    /// people's display names at its creation, sorted, joined by ", "), else their handles.
    pub fn direct_label(&self, info: &RoomInfo) -> String {
        let others: Vec<&Username> = info.direct.iter().filter(|u| **u != self.me.user).collect();
        if others.is_empty() {
            return info.name.to_string();
        }
        if others.iter().all(|u| self.people.contains_key(*u)) {
            let names: Vec<String> = others
                .iter()
                .map(|u| self.display_name(u).to_string())
                .collect();
            return names.join(", ");
        }
        let mut parts: Vec<&str> = info.name.as_str().split(", ").collect();
        if parts.len() == info.direct.len()
            && let Some(at) = parts.iter().position(|p| *p == self.me.name.as_str())
        {
            parts.remove(at);
            return parts.join(", ");
        }
        let names: Vec<String> = others
            .iter()
            .map(|u| self.display_name(u).to_string())
            .collect();
        names.join(", ")
    }

    /// Records the display names of people seen outside messages (searches, member lists).
    pub fn learn_people(&mut self, people: impl IntoIterator<Item = (Username, DisplayName)>) {
        for (user, name) in people {
            if user != self.me.user {
                self.people.insert(user, name);
            }
        }
    }

    /// What the server said about a room, if it is known.
    pub fn info(&self, id: RoomId) -> Option<&RoomInfo> {
        self.infos.get(&id)
    }

    /// Every room known from the room list and `room` frames.
    pub fn infos(&self) -> impl Iterator<Item = &RoomInfo> {
        self.infos.values()
    }

    /// The user's role in a room, if a member.
    pub fn role(&self, id: RoomId) -> Option<Role> {
        self.infos.get(&id).and_then(|i| i.role)
    }

    /// Invitations waiting for an answer.
    pub fn invites(&self) -> &[InviteInfo] {
        &self.invites
    }

    /// Replaces the invitations (from `GET /api/invites`), dropping those for rooms joined.
    pub fn set_invites(&mut self, invites: Vec<InviteInfo>) {
        self.invites = invites;
        let member: Vec<RoomId> = self
            .infos
            .values()
            .filter(|i| i.role.is_some())
            .map(|i| i.id)
            .collect();
        self.invites.retain(|i| !member.contains(&i.room.id));
    }

    /// Forgets an invitation (declined).
    pub fn drop_invite(&mut self, room: RoomId) {
        self.invites.retain(|i| i.room.id != room);
    }

    /// Until when the user is muted in a room (ms since the Unix epoch), if they are.
    pub fn muted_until(&self, id: RoomId) -> Option<i64> {
        self.muted
            .get(&id)
            .map(|&t| i64::try_from(t).unwrap_or(i64::MAX))
    }

    /// Records the user's own mute (as a member list tells it).
    pub fn set_muted(&mut self, id: RoomId, until: Option<i64>) {
        match until {
            Some(until) => self.muted.insert(id, until.max(0).unsigned_abs()),
            None => self.muted.remove(&id),
        };
    }

    /// The last slow-mode wait the server asked for in a room, in ms.
    pub fn slow_wait(&self, id: RoomId) -> Option<u64> {
        self.slow_wait.get(&id).copied()
    }

    /// Notices about the user's memberships.
    pub fn alerts(&self) -> &[Alert] {
        &self.alerts
    }

    /// Hides a notice.
    pub fn dismiss_alert(&mut self, n: u64) {
        self.alerts.retain(|a| a.n != n);
    }

    fn push_alert(&mut self, room: RoomId, kind: AlertKind) {
        self.next_alert += 1;
        let room_title = self.room_title(room);
        self.alerts.push(Alert {
            n: self.next_alert,
            room,
            room_title,
            kind,
        });
    }

    /// How many `members` frames arrived for a room.
    pub fn members_rev(&self, id: RoomId) -> u64 {
        self.members_rev.get(&id).copied().unwrap_or(0)
    }

    /// The rows of the room on screen (of its window, when one is open).
    pub fn current_entries(&self) -> Vec<Entry> {
        if let Some(w) = self.window() {
            return w.timeline.entries(&self.me);
        }
        self.rooms
            .get(&self.current)
            .map(|r| r.timeline.entries(&self.me))
            .unwrap_or_default()
    }

    /// The top-of-list state of the room on screen (of its window, when one is open).
    pub fn current_history(&self) -> HistoryState {
        if let Some(w) = self.window() {
            return w.timeline.history_state();
        }
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
    pub fn unread(&self, id: RoomId) -> u32 {
        self.rooms.get(&id).map_or(0, |r| r.unread)
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

    /// Outbox entries of the previous release whose room was not found in the room list: kept
    /// (in the outbox too), not sent, until their room shows up or the user discards them.
    pub fn unresolved(&self) -> &[OutboxEntry] {
        &self.unresolved
    }

    /// The requests sent on this connection and not answered yet, by `req`.
    pub fn in_flight(&self) -> &Map<u64, Request> {
        &self.in_flight
    }

    /// A fresh request id, for a frame sent outside this model (the connection's `ping`s).
    pub fn take_req(&mut self) -> u64 {
        self.last_req = self.last_req.wrapping_add(1);
        self.last_req
    }

    /// Every unconfirmed message that may still be sent (pending, or failed with a retry), as
    /// the outbox stores it, and the unresolved ones of the previous release. A stored message
    /// comes back pending after a reload, which resends it: harmless even if it was stored,
    /// since the server deduplicates by `client_id`.
    pub fn outbox(&self) -> Vec<OutboxEntry> {
        self.rooms
            .iter()
            .flat_map(|(id, room)| room.timeline.resendable().map(move |o| entry_of(*id, o)))
            .chain(self.unresolved.iter().cloned())
            .collect()
    }

    /// Puts messages from a stored outbox back as pending; their rooms are followed (and so
    /// joined, which resends them) from now on. An entry of the previous release goes to the
    /// room of its name if that is known (`general` always is), else waits in
    /// [`Chat::unresolved`] for [`Chat::set_room_list`].
    pub fn restore(&mut self, entries: Vec<OutboxEntry>) {
        for e in entries {
            match self.resolve(&e.room) {
                Some(id) => {
                    self.push_restored(id, e);
                }
                None => self.unresolved.push(e),
            }
        }
    }

    /// The room an outbox entry goes to, if known.
    fn resolve(&self, room: &OutboxRoom) -> Option<RoomId> {
        match room {
            OutboxRoom::Id(id) => Some(*id),
            OutboxRoom::Name(name) if name == DEFAULT_ROOM => Some(DEFAULT_ROOM_ID),
            OutboxRoom::Name(name) => self
                .names
                .iter()
                .find(|(_, n)| n.as_str() == name)
                .map(|(id, _)| *id),
        }
    }

    /// Adds a restored entry to its room (followed from now on); returns the frames that send
    /// it now that it is known (a join, or the send itself in a joined room).
    fn push_restored(&mut self, id: RoomId, e: OutboxEntry) -> Vec<ClientMsg> {
        let connected = self.connected;
        let room = self.rooms.get_or_default(id);
        let target = e.target.unwrap_or(0);
        let act = match e.kind {
            EventKind::Edit => Act::Edit { target },
            EventKind::Delete => Act::Delete { target },
            EventKind::React => Act::React {
                target,
                emoji: e.emoji.unwrap_or_default().into(),
                on: e.on.unwrap_or(true),
            },
            _ => Act::Send {
                reply_to: e.reply_to,
            },
        };
        let mut o = Outgoing::act(e.client_id, e.text.into(), e.created_ms, act);
        o.files = e.attachments;
        let out = match room.join {
            JoinState::Idle if connected => vec![join(id, room)],
            JoinState::Joined => vec![send_frame(id, &o)],
            JoinState::Idle | JoinState::Joining => Vec::new(),
        };
        room.timeline.push_outgoing(o);
        out
    }

    /// Records the rooms that exist (`GET /api/rooms`): their names, for the screen; and the
    /// rooms of the previous release's outbox entries, found by exact name, which are sent from
    /// now on (returned: the joins or sends that does).
    pub fn set_room_list(&mut self, list: &[RoomInfo]) -> Vec<ClientFrame> {
        for info in list {
            self.names.insert(info.id, info.name.clone());
            self.infos.insert(info.id, info.clone());
            let current = self.current == info.id;
            if let Some(r) = self.rooms.get_mut(&info.id) {
                r.unread = info.unread;
                r.mentions = info.mentions;
                r.read_seq = info.read_seq;
                if current && info.unread > 0 {
                    r.timeline.set_unread_after(Some(info.read_seq));
                }
            }
        }
        let mut out = self.follow_memberships();
        for e in std::mem::take(&mut self.unresolved) {
            match self.resolve(&e.room) {
                Some(id) => out.extend(self.push_restored(id, e)),
                None => self.unresolved.push(e),
            }
        }
        self.stamp(out)
    }

    /// Records one room (just created, or as a `room` frame tells it now); a room the user is
    /// a member of is followed (joined) from now on. Returns the frames that joins it.
    pub fn add_room(&mut self, info: &RoomInfo) -> Vec<ClientFrame> {
        let out = self.record_room(info);
        self.stamp(out)
    }

    fn record_room(&mut self, info: &RoomInfo) -> Vec<ClientMsg> {
        self.names.insert(info.id, info.name.clone());
        let mut info = info.clone();
        // A `room` frame sent to a whole room (a topic or slow mode change) carries no role: it
        // does not end a membership (`removed` does), so the role known stays.
        if info.role.is_none() {
            info.role = self.infos.get(&info.id).and_then(|i| i.role);
        }
        let info = &info;
        self.infos.insert(info.id, info.clone());
        if info.role.is_some() {
            self.invites.retain(|i| i.room.id != info.id);
        }
        self.follow_memberships()
    }

    /// Follows the rooms the user is a member of and does not follow yet (up to
    /// [`AUTO_FOLLOW_MAX`] in all), so that their messages and unread counts keep up.
    fn follow_memberships(&mut self) -> Vec<ClientMsg> {
        let connected = self.connected;
        let mut out = Vec::new();
        let members: Vec<RoomId> = self
            .infos
            .values()
            .filter(|i| i.role.is_some() && !self.rooms.contains_key(&i.id))
            .map(|i| i.id)
            .collect();
        for id in members {
            if self.rooms.len() >= AUTO_FOLLOW_MAX {
                break;
            }
            let room = self
                .rooms
                .get_or_insert_with(id, || new_room(self.infos.get(&id)));
            if connected {
                out.push(join(id, room));
            }
        }
        out
    }

    /// A connection is up (its `hello` arrived): join every followed room, catching up from
    /// where each one stands.
    pub fn connected(&mut self) -> Vec<ClientFrame> {
        self.connected = true;
        self.error = None;
        let out = self
            .rooms
            .iter_mut()
            .filter(|(_, room)| !room.removed)
            .map(|(id, room)| join(*id, room))
            .collect();
        self.stamp(out)
    }

    /// The connection dropped: nothing is joined, nobody is known to be online, no request
    /// will be answered.
    pub fn disconnected(&mut self) {
        self.connected = false;
        self.in_flight.clear();
        for room in self.rooms.values_mut() {
            room.join = JoinState::Idle;
            room.online.clear();
            room.timeline.connection_lost();
        }
    }

    /// What the offline cache keeps: the room list, the room on screen, and the newest
    /// `per_room` messages of each followed room whose first page arrived.
    pub fn kept(&self, per_room: usize) -> (Vec<RoomInfo>, RoomId, Vec<(RoomId, Kept)>) {
        let rooms = self.infos.values().cloned().collect();
        let kept = self
            .rooms
            .iter()
            .filter(|(_, r)| !r.removed)
            .filter_map(|(id, r)| Some((*id, r.timeline.kept(*id, per_room)?)))
            .collect();
        (rooms, self.current, kept)
    }

    /// Starts from what the offline cache kept, before the room list and the connection: the
    /// rooms and their newest messages show at once (also without the network), and the
    /// first joins ask only for what followed (see [`Timeline::restore_kept`]).
    pub fn restore_kept(&mut self, rooms: &[RoomInfo], current: RoomId, kept: Vec<(RoomId, Kept)>) {
        // Not connected: the joins these would send go out with `connected` instead.
        let _ = self.set_room_list(rooms);
        let me = &self.me;
        for (id, k) in kept {
            if let Some(r) = self.rooms.get_mut(&id) {
                r.timeline.restore_kept(k, me);
            }
        }
        if self.rooms.contains_key(&current) {
            let _ = self.open(current);
        }
    }

    /// Puts room `id` on screen, following (and joining) it if it is new.
    pub fn open(&mut self, id: RoomId) -> Vec<ClientFrame> {
        if self.current != id {
            self.window = None;
        }
        self.current = id;
        let connected = self.connected;
        let room = self
            .rooms
            .get_or_insert_with(id, || new_room(self.infos.get(&id)));
        room.removed = false;
        room.timeline
            .set_unread_after((room.unread > 0).then_some(room.read_seq));
        let out = if connected && room.join == JoinState::Idle {
            vec![join(id, room)]
        } else {
            Vec::new()
        };
        self.stamp(out)
    }

    /// Adds a message written by the user to the room on screen, pending. It is sent at once if
    /// the room is joined, else when the join completes.
    pub fn compose(
        &mut self,
        text: MessageText,
        client_id: ClientId,
        now_ms: i64,
    ) -> Vec<ClientFrame> {
        let act = Act::Send { reply_to: None };
        self.act(act, text.into_inner().into(), client_id, now_ms)
    }

    /// Adds a message or a change made by the user in the room on screen, pending (and kept in
    /// the outbox until confirmed): sent at once if the room is joined, else when the join
    /// completes. `text` is the message's or the edit's (checked by the caller).
    pub fn act(
        &mut self,
        act: Act,
        text: Arc<str>,
        client_id: ClientId,
        now_ms: i64,
    ) -> Vec<ClientFrame> {
        self.send_outgoing(Outgoing::act(client_id, text, now_ms, act))
    }

    /// Adds an outgoing message or change (see [`Chat::act`]); a message may carry files
    /// uploaded to the room on screen ([`Outgoing::files`]).
    pub fn send_outgoing(&mut self, o: Outgoing) -> Vec<ClientFrame> {
        let current = self.current;
        let Some(room) = self.rooms.get_mut(&current) else {
            return Vec::new();
        };
        let out = if room.join == JoinState::Joined {
            vec![send_frame(current, &o)]
        } else {
            Vec::new()
        };
        room.timeline.push_outgoing(o);
        self.stamp(out)
    }

    /// The user has seen room `id` up to `seq` (its newest message is on screen): sends `read`
    /// when that moves the read position forward, and counts the room as read meanwhile.
    pub fn mark_read(&mut self, id: RoomId, seq: u64) -> Vec<ClientFrame> {
        let Some(r) = self.rooms.get_mut(&id) else {
            return Vec::new();
        };
        if seq <= r.read_seq || r.join != JoinState::Joined {
            return Vec::new();
        }
        r.read_seq = seq;
        r.unread = 0;
        r.mentions = 0;
        self.stamp(vec![ClientMsg::Read { room: id, seq }])
    }

    /// Records a read position and the counts above it (a `read` frame, or the answer of a
    /// "mark as read").
    pub fn set_read(&mut self, id: RoomId, seq: u64, unread: u32, mentions: u32) {
        if let Some(info) = self.infos.get_mut(&id) {
            info.read_seq = seq;
            info.unread = unread;
            info.mentions = mentions;
        }
        if let Some(r) = self.rooms.get_mut(&id) {
            r.read_seq = seq;
            r.unread = unread;
            r.mentions = mentions;
        }
    }

    /// Counts room `id` (`None`: every room) as read, until the server's `read` frames tell.
    pub fn clear_unread(&mut self, id: Option<RoomId>) {
        let hit = |r: &RoomId| id.is_none_or(|id| id == *r);
        for (_, i) in self.infos.iter_mut().filter(|(r, _)| hit(r)) {
            (i.unread, i.mentions) = (0, 0);
        }
        for (_, r) in self.rooms.iter_mut().filter(|(r, _)| hit(r)) {
            (r.unread, r.mentions) = (0, 0);
        }
    }

    /// Unread mentions of the user in a room.
    pub fn mentions(&self, id: RoomId) -> u32 {
        match self.rooms.get(&id) {
            Some(r) => r.mentions,
            None => self.infos.get(&id).map_or(0, |i| i.mentions),
        }
    }

    /// Unread messages in every room the user is in (the page title's count).
    pub fn total_unread(&self) -> u32 {
        let listed = self
            .infos
            .values()
            .filter(|i| i.role.is_some())
            .map(|i| i.id);
        let followed = self
            .rooms
            .keys()
            .copied()
            .filter(|id| !self.infos.contains_key(id));
        listed.chain(followed).map(|id| self.unread(id)).sum()
    }

    /// Records whether the page is visible (hidden, nobody reads the room on screen).
    pub fn set_visible(&mut self, visible: bool) {
        self.visible = visible;
    }

    /// Records whether the newest message of the room on screen is in view (the list is
    /// scrolled to the bottom). Scrolled up, what arrives counts as unread, as on the server.
    pub fn set_at_bottom(&mut self, at_bottom: bool) {
        self.at_bottom = at_bottom;
    }

    /// Whether the user sees the newest message of the room on screen (page visible, list at
    /// the bottom): what arrives there is read, and `read` may be sent for it.
    pub fn reading(&self) -> bool {
        self.visible && self.at_bottom && self.window().is_none()
    }

    /// Takes the notifications to show.
    pub fn take_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.notes)
    }

    /// Records a `typing` frame at time `now`.
    pub fn set_typing(
        &mut self,
        id: RoomId,
        user: Username,
        name: DisplayName,
        on: bool,
        now: i64,
    ) {
        if user == self.me.user {
            return;
        }
        let Some(r) = self.rooms.get_mut(&id) else {
            return;
        };
        r.typing.retain(|(u, _, _)| *u != user);
        if on {
            let ttl = i64::try_from(shared::TYPING_TTL_MS).unwrap_or(6_000);
            r.typing.push((user, name, now + ttl));
        }
    }

    /// Who is typing in the room on screen at time `now`.
    pub fn typists(&self, now: i64) -> Vec<DisplayName> {
        self.rooms.get(&self.current).map_or(Vec::new(), |r| {
            r.typing
                .iter()
                .filter(|(_, _, until)| *until > now)
                .map(|(_, n, _)| n.clone())
                .collect()
        })
    }

    /// Who of the room on screen's online people is away.
    pub fn current_away(&self) -> Vec<Username> {
        self.rooms
            .get(&self.current)
            .map(|r| r.away.clone())
            .unwrap_or_default()
    }

    /// Records the start of a message (fetched for a reply's quote).
    pub fn set_quote(&mut self, ev: MessageEvent) {
        if let Some(w) = self.window.as_mut().filter(|w| w.room == ev.room) {
            w.timeline.set_quote(ev.clone());
        }
        if let Some(r) = self.rooms.get_mut(&ev.room) {
            r.timeline.set_quote(ev);
        }
    }

    /// The message `seq` of the room on screen, from its window when one is open and holds it,
    /// else from its live timeline.
    pub fn current_message(&self, seq: u64) -> Option<&crate::timeline::Message> {
        self.window()
            .and_then(|w| w.timeline.message(seq))
            .or_else(|| self.room(self.current)?.timeline.message(seq))
    }

    /// Asks for the page before the oldest message of the room on screen, if there is one and
    /// none is on its way.
    pub fn load_older(&mut self) -> Vec<ClientFrame> {
        let current = self.current;
        let Some(room) = self.rooms.get_mut(&current) else {
            return Vec::new();
        };
        if room.join != JoinState::Joined {
            return Vec::new();
        }
        let out = match room.timeline.request_older() {
            Some(before) => vec![ClientMsg::History {
                room: current,
                before,
                limit: Some(shared::HISTORY_PAGE),
            }],
            None => Vec::new(),
        };
        self.stamp(out)
    }

    /// Makes a failed, retryable message pending again with the same `client_id`: sent at once
    /// if its room is joined, else after the next join (it stays in the outbox meanwhile; a
    /// room whose join was refused is joined again).
    pub fn retry(&mut self, client_id: &ClientId) -> Vec<ClientFrame> {
        let connected = self.connected;
        let mut out = Vec::new();
        for (id, room) in self.rooms.iter_mut() {
            if let Some(o) = room.timeline.retry(client_id) {
                match room.join {
                    JoinState::Joined => out.push(send_frame(*id, o)),
                    JoinState::Idle if connected => out.push(join(*id, room)),
                    JoinState::Idle | JoinState::Joining => {}
                }
                break;
            }
        }
        self.stamp(out)
    }

    /// Asks again for the missing events of the room on screen (a gap's retry): a `join`
    /// with `since`, whose catch-up replays them. Offline this does nothing: the next join
    /// asks from the same place.
    pub fn retry_gap(&mut self, _from: u64, _to: u64) -> Vec<ClientFrame> {
        let id = self.current;
        let out = match self.rooms.get_mut(&id) {
            Some(r) if r.join == JoinState::Joined => {
                if r.timeline.refill() {
                    fill(id, r)
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        };
        self.stamp(out)
    }

    /// Drops a failed message (or an unresolved one of the previous release).
    pub fn discard(&mut self, client_id: &ClientId) {
        let before = self.unresolved.len();
        self.unresolved.retain(|e| &e.client_id != client_id);
        if self.unresolved.len() != before {
            return;
        }
        for room in self.rooms.values_mut() {
            if room.timeline.discard(client_id) {
                return;
            }
        }
    }

    /// The `send` frames of every pending message in joined rooms (after a rate limit).
    pub fn resend_pending(&mut self) -> Vec<ClientFrame> {
        let out = self.pending_sends();
        self.stamp(out)
    }

    fn pending_sends(&self) -> Vec<ClientMsg> {
        self.rooms
            .iter()
            .filter(|(_, r)| r.join == JoinState::Joined)
            .flat_map(|(id, r)| sends(*id, &r.timeline))
            .collect()
    }

    /// What to send again once a rate limit's wait is over: the pending messages of joined
    /// rooms, and the joins that were refused while joining.
    pub fn after_rate_limit(&mut self) -> Vec<ClientFrame> {
        let mut out = self.pending_sends();
        if self.connected {
            for (id, r) in self.rooms.iter_mut() {
                if r.join == JoinState::Joining {
                    out.push(join(*id, r));
                }
            }
        }
        self.stamp(out)
    }

    /// How long to wait before [`Chat::after_rate_limit`] after this frame (read before it is
    /// applied), if it asks for a resend: any `rate_limited` (after its `retry_after_ms`, or
    /// `default_ms`), and an `internal` refusal of a `send`.
    pub fn resend_after(&self, msg: &ServerMsg, default_ms: u64) -> Option<u64> {
        match msg {
            ServerMsg::Error {
                code: ErrorCode::RateLimited | ErrorCode::SlowMode,
                retry_after_ms,
                ..
            } => Some(retry_after_ms.unwrap_or(default_ms)),
            ServerMsg::Error {
                code: ErrorCode::Internal,
                client_id,
                req,
                ..
            } => {
                let a_send = client_id.is_some()
                    || req
                        .and_then(|q| self.in_flight.get(&q))
                        .is_some_and(|r| matches!(r, Request::Send { .. }));
                a_send.then_some(default_ms)
            }
            _ => None,
        }
    }

    /// Gives every frame a fresh `req` and remembers what it asks for.
    fn stamp(&mut self, msgs: Vec<ClientMsg>) -> Vec<ClientFrame> {
        msgs.into_iter()
            .map(|msg| {
                let req = self.take_req();
                if let Some(r) = Request::of(&msg) {
                    self.in_flight.insert(req, r);
                }
                ClientFrame {
                    req: Some(req),
                    msg,
                }
            })
            .collect()
    }

    /// Applies one server frame; returns the frames to send in answer.
    pub fn apply(&mut self, msg: ServerMsg) -> Vec<ClientFrame> {
        let out = self.apply_msg(msg);
        self.stamp(out)
    }

    fn apply_msg(&mut self, msg: ServerMsg) -> Vec<ClientMsg> {
        match msg {
            ServerMsg::Hello { .. } => Vec::new(),
            ServerMsg::Pong { req, .. } => {
                if let Some(req) = req {
                    self.in_flight.remove(&req);
                }
                Vec::new()
            }
            ServerMsg::Joined {
                room,
                online,
                away,
                last_seq,
                ..
            } => {
                // The join's request stays in flight: its page, catch-up error or `history`
                // page follows with the same `req`.
                if let Some(info) = self.infos.get_mut(&room)
                    && info.role.is_none()
                {
                    info.role = Some(Role::Member);
                }
                self.invites.retain(|i| i.room.id != room);
                let r = self.rooms.get_or_default(room);
                r.join = JoinState::Joined;
                r.removed = false;
                r.online = online;
                sort_by_key(&mut r.online, |u| (0, u.as_str().to_owned(), 0));
                r.away = away;
                r.timeline.joined(last_seq);
                // The room is joined on this connection only now: resend what waits for it.
                sends(room, &r.timeline)
            }
            ServerMsg::Left { req, room } => {
                if let Some(req) = req {
                    self.in_flight.remove(&req);
                }
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.join = JoinState::Idle;
                }
                Vec::new()
            }
            ServerMsg::Message(ev) => {
                let id = ev.room;
                let by_other = ev.author != self.me.user;
                let reading = id == self.current && self.reading();
                let direct = self.is_direct(id);
                if by_other {
                    self.people
                        .insert(ev.author.clone(), ev.author_name.clone());
                }
                let mentions_me = ev.mentions.contains(&self.me.user);
                let (seq, is_message) = (ev.seq, ev.is_message());
                let note = (!self.visible && by_other && (mentions_me || direct)).then(|| Note {
                    room: id,
                    title: if direct {
                        ev.author_name.to_string()
                    } else {
                        format!("{} in {}", ev.author_name, self.room_title(id))
                    },
                    body: ev.text.clone(),
                });
                if let Some(w) = self.window.as_mut().filter(|w| w.room == id) {
                    if is_message {
                        // The window no longer reaches the newest message.
                        w.has_newer = true;
                    } else {
                        w.timeline.apply_change(&ev, &self.me);
                    }
                }
                let r = self.rooms.get_or_default(id);
                let inserted = r.timeline.insert_live(*ev, &self.me);
                if inserted.is_new && is_message && by_other && seq > r.read_seq {
                    if !reading {
                        r.unread = r.unread.saturating_add(1);
                        r.mentions = r.mentions.saturating_add(u32::from(mentions_me));
                    }
                    self.notes.extend(note);
                }
                if inserted.fill {
                    fill(id, r)
                } else {
                    Vec::new()
                }
            }
            ServerMsg::History {
                req,
                room,
                messages,
                has_more,
            } => {
                // Known by its `req`: the answer to a join (first page, or the newest page
                // instead of a catch-up) or to a `history` request.
                let answers_join = match req.and_then(|q| self.in_flight.remove(&q)) {
                    Some(Request::Join { .. }) => Some(true),
                    Some(Request::History { .. }) => Some(false),
                    _ => None,
                };
                for m in &messages {
                    if m.author != self.me.user {
                        self.people.insert(m.author.clone(), m.author_name.clone());
                    }
                }
                let me = &self.me;
                let timeline = &mut self.rooms.get_or_default(room).timeline;
                match answers_join {
                    Some(answers_join) => timeline.apply_page(messages, has_more, answers_join, me),
                    None => timeline.apply_history(messages, has_more, me),
                }
                Vec::new()
            }
            ServerMsg::Ack {
                req,
                room,
                client_id,
                id,
                seq,
                ts,
            } => {
                if let Some(req) = req {
                    self.in_flight.remove(&req);
                }
                let me = &self.me;
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.timeline.ack(&client_id, seq, id, ts, me);
                }
                self.slow_wait.remove(&room);
                Vec::new()
            }
            // Presence changes the online list only: arrivals and departures are not timeline
            // events (a few reloads would fill everyone's timeline with them).
            ServerMsg::Presence {
                room,
                user,
                online,
                status,
            } => {
                let Some(r) = self.rooms.get_mut(&room) else {
                    return Vec::new();
                };
                r.away.retain(|u| *u != user);
                if online && status == Some(Presence::Away) {
                    r.away.push(user.clone());
                }
                let pos = r.online.binary_search_by(|u| u.as_str().cmp(user.as_str()));
                match (pos, online) {
                    (Err(at), true) => r.online.insert(at, user),
                    (Ok(at), false) => {
                        r.online.remove(at);
                    }
                    _ => {}
                }
                Vec::new()
            }
            ServerMsg::Read {
                room,
                seq,
                unread,
                mentions,
            } => {
                self.set_read(room, seq, unread, mentions);
                Vec::new()
            }
            ServerMsg::Error {
                req,
                code,
                message,
                client_id,
                room,
                retry_after_ms,
            } => {
                if code == ErrorCode::SlowMode {
                    let in_room = room.or_else(|| {
                        req.and_then(|q| match self.in_flight.get(&q) {
                            Some(Request::Send { room, .. }) => Some(*room),
                            _ => None,
                        })
                    });
                    if let Some(id) = in_room {
                        self.slow_wait.insert(id, retry_after_ms.unwrap_or(1_000));
                    }
                }
                self.apply_error_frame(req, code, message, client_id, room)
            }
            ServerMsg::Room { room } => self.record_room(&room),
            ServerMsg::Removed {
                room,
                reason,
                by,
                message,
            } => self.removed(room, reason, by, message),
            ServerMsg::Invited { invite } => {
                let id = invite.room.id;
                self.names.insert(id, invite.room.name.clone());
                self.invites.retain(|i| i.room.id != id);
                self.invites.push(invite);
                Vec::new()
            }
            ServerMsg::Muted {
                room,
                until,
                reason,
            } => {
                match until {
                    Some(until) => {
                        self.muted.insert(room, until.max(0).unsigned_abs());
                        self.push_alert(room, AlertKind::Muted { until, reason });
                    }
                    None => {
                        self.muted.remove(&room);
                        self.push_alert(room, AlertKind::Unmuted);
                    }
                }
                Vec::new()
            }
            ServerMsg::Members { room } => {
                *self.members_rev.get_or_default(room) += 1;
                Vec::new()
            }
            // `Unknown` (a frame type from a newer server), and any type this client does not
            // handle: ignored, as the protocol asks.
            _ => Vec::new(),
        }
    }

    /// The user is no longer a member of a room: it is not joined again, its unsent messages
    /// fail (kept for a retry), a private or direct room leaves the list, and a notice says why.
    /// When it was on screen, `general` opens instead.
    fn removed(
        &mut self,
        room: RoomId,
        reason: Removal,
        by: Option<Username>,
        message: Option<String>,
    ) -> Vec<ClientMsg> {
        let kind = AlertKind::Removed {
            reason,
            by,
            message,
        };
        self.push_alert(room, kind);
        let t = crate::i18n::t();
        let why = match reason {
            Removal::Banned => t.not_sent_banned,
            Removal::Kicked => t.not_sent_removed,
            Removal::Left | Removal::Unknown => t.not_sent_not_member,
        };
        if let Some(r) = self.rooms.get_mut(&room) {
            r.join = JoinState::Idle;
            r.removed = true;
            r.online.clear();
            let pending: Vec<ClientId> =
                r.timeline.pending().map(|o| o.client_id.clone()).collect();
            for cid in pending {
                r.timeline.fail(&cid, why, true);
            }
        }
        self.muted.remove(&room);
        match self.infos.get_mut(&room) {
            Some(info) if info.kind == RoomKind::Public => info.role = None,
            Some(_) => {
                self.infos.remove(&room);
            }
            None => {}
        }
        let mut out = Vec::new();
        if self.current == room && room != DEFAULT_ROOM_ID {
            self.current = DEFAULT_ROOM_ID;
            let connected = self.connected;
            let general = self.rooms.get_or_default(DEFAULT_ROOM_ID);
            if connected && general.join == JoinState::Idle && !general.removed {
                out.push(join(DEFAULT_ROOM_ID, general));
            }
        }
        // A room the user was removed from and that is not on screen is no longer followed
        // (unless messages written there wait for a retry).
        if self.current != room
            && self
                .rooms
                .get(&room)
                .is_some_and(|r| r.timeline.resendable().next().is_none())
        {
            self.rooms.remove(&room);
        }
        out
    }

    fn apply_error_frame(
        &mut self,
        req: Option<u64>,
        code: ErrorCode,
        message: String,
        client_id: Option<ClientId>,
        room: Option<RoomId>,
    ) -> Vec<ClientMsg> {
        // Shown to the person: in their language (the server speaks English).
        let message = crate::i18n::error_text(code, &message);
        match req.and_then(|q| self.in_flight.remove(&q)) {
            Some(Request::Send {
                room: sent_to,
                client_id: sent,
            }) => self.send_refused(code, message, client_id.unwrap_or(sent), Some(sent_to)),
            Some(Request::Join { room: joined }) => self.join_refused(code, message, joined),
            Some(Request::History { room: read }) => self.history_refused(code, message, read),
            Some(Request::Leave { .. }) => {
                self.error = Some(message);
                Vec::new()
            }
            None => self.apply_error(code, message, client_id, room),
        }
    }

    /// A `send` was refused.
    fn send_refused(
        &mut self,
        code: ErrorCode,
        message: String,
        cid: ClientId,
        room: Option<RoomId>,
    ) -> Vec<ClientMsg> {
        match code {
            // Asked to slow down, with a time: the message stays pending and is sent again after
            // the wait (see `Client::schedule_resend`). Not a failure: waiting is all it takes.
            ErrorCode::RateLimited => {
                self.error = Some(message);
                Vec::new()
            }
            // Slow mode: the same, with a hint by the composer instead of an error.
            ErrorCode::SlowMode => Vec::new(),
            // Not joined (for example the join raced a server restart): join again, which
            // resends the pending messages and asks for the missing ones when it completes.
            ErrorCode::NotJoined => self.rejoin(room),
            // Transient: the message stays pending and the caller resends it later, until it
            // has been refused too often; then it fails, with a retry.
            code if retryable(code) => {
                let reason = message.as_str();
                match room.and_then(|id| self.rooms.get_mut(&id)) {
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
            // The server will never take this message (or refused it for a reason this client
            // does not know): show it as failed, stop resending it.
            _ => {
                let reason = message.as_str();
                let in_room = room
                    .and_then(|id| self.rooms.get_mut(&id))
                    .is_some_and(|r| r.timeline.fail(&cid, reason, false));
                let failed = in_room
                    || self
                        .rooms
                        .values_mut()
                        .any(|r| r.timeline.fail(&cid, reason, false));
                if !failed {
                    self.error = Some(message);
                }
                Vec::new()
            }
        }
    }

    /// Joins a room again after `not_joined`, unless a join is on its way.
    fn rejoin(&mut self, room: Option<RoomId>) -> Vec<ClientMsg> {
        let connected = self.connected;
        match room.and_then(|id| self.rooms.get_mut(&id).map(|r| (id, r))) {
            Some((id, r)) if r.join != JoinState::Joining && connected => vec![join(id, r)],
            _ => Vec::new(),
        }
    }

    /// A `join` was refused, or (after its `joined`) its catch-up failed.
    fn join_refused(&mut self, code: ErrorCode, message: String, id: RoomId) -> Vec<ClientMsg> {
        self.error = Some(message.clone());
        let Some(r) = self.rooms.get_mut(&id) else {
            return Vec::new();
        };
        match r.join {
            JoinState::Joined => {
                r.timeline.catch_up_failed();
                Vec::new()
            }
            // Asked to slow down, or the server failed: joined again after the wait.
            JoinState::Joining if retryable(code) => Vec::new(),
            JoinState::Joining | JoinState::Idle => {
                // Refused for good (the room is gone, forbidden, or a reason this client does
                // not know): nothing waits for this join any more. Pending messages fail with
                // a retry, which joins again; they stay in the outbox.
                r.join = JoinState::Idle;
                let pending: Vec<ClientId> =
                    r.timeline.pending().map(|o| o.client_id.clone()).collect();
                for cid in pending {
                    r.timeline.fail(&cid, &message, true);
                }
                Vec::new()
            }
        }
    }

    /// A `history` request was refused.
    fn history_refused(&mut self, code: ErrorCode, message: String, id: RoomId) -> Vec<ClientMsg> {
        if let Some(r) = self.rooms.get_mut(&id) {
            r.timeline.history_failed();
        }
        if code == ErrorCode::NotJoined {
            return self.rejoin(Some(id));
        }
        self.error = Some(message);
        Vec::new()
    }

    /// An `error` whose request is not known (no `req`): told apart by its fields and the
    /// order in which the server answers.
    fn apply_error(
        &mut self,
        code: ErrorCode,
        message: String,
        client_id: Option<ClientId>,
        room: Option<RoomId>,
    ) -> Vec<ClientMsg> {
        if let Some(cid) = client_id {
            return self.send_refused(code, message, cid, room);
        }
        if code == ErrorCode::NotJoined {
            // The answer to a `history` request.
            if let Some(r) = room.and_then(|id| self.rooms.get_mut(&id)) {
                r.timeline.history_failed();
            }
            return self.rejoin(room);
        }
        self.error = Some(message);
        let Some(id) = room else {
            return Vec::new();
        };
        let Some(r) = self.rooms.get_mut(&id) else {
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
                r.timeline.catch_up_failed();
                Vec::new()
            }
            JoinState::Joined => {
                r.timeline.history_failed();
                Vec::new()
            }
        }
    }
}

/// What the client sorts lists by: a rank, a text, a number. Every list is sorted through
/// [`sort_by_key`] with this one key type, so the sort is compiled once for the whole client.
pub type SortKey = (u8, String, u64);

/// Sorts `v` by `key`, keeping equal items in their order (like `sort_by_key`), with one
/// compiled sort of `(SortKey, index)` pairs for every item type.
pub fn sort_by_key<T>(v: &mut Vec<T>, key: impl Fn(&T) -> SortKey) {
    let mut keys: Vec<(SortKey, usize)> = v.iter().map(key).zip(0..).collect();
    // Indexes are distinct: the unstable sort of the pairs is a stable sort of the items.
    keys.sort_unstable();
    let mut items: Vec<Option<T>> = std::mem::take(v).into_iter().map(Some).collect();
    v.extend(keys.iter().filter_map(|(_, i)| items[*i].take()));
}

/// Whether a `send` refused with `code` may succeed if sent again unchanged, with the same
/// `client_id`: only when the server failed (`internal`) or asked to slow down
/// (`rate_limited`). The other refusals would recur: `invalid` and `too_long` judge the text
/// itself (which the composer already checked, so client and server disagree on the rules),
/// `bad_frame` the frame, `no_such_room` and `forbidden` the room, `conflict` a name; a code this
/// client does not know is a failure it cannot reason about. For those the message offers only
/// "Discard"; its text stays on screen, so it can be copied and rewritten. (`not_joined` is
/// handled by joining again and never fails a message.)
pub fn retryable(code: ErrorCode) -> bool {
    // Every other code, including those added after this client, is a failure.
    matches!(
        code,
        ErrorCode::Internal | ErrorCode::RateLimited | ErrorCode::SlowMode | ErrorCode::NotJoined
    )
}

/// The `join` that fills a hole in a joined room's forward stream: its catch-up replays every
/// event from the hole on (the room stays joined meanwhile).
fn fill(id: RoomId, room: &Room) -> Vec<ClientMsg> {
    vec![ClientMsg::Join {
        room: id,
        since: room.timeline.since(),
    }]
}

/// A room followed from now on, with the counts the room list told.
fn new_room(info: Option<&RoomInfo>) -> Room {
    let mut r = Room::default();
    if let Some(i) = info {
        r.unread = i.unread;
        r.mentions = i.mentions;
        r.read_seq = i.read_seq;
    }
    r
}

/// The frame that sends an outgoing message or change.
fn send_frame(id: RoomId, o: &Outgoing) -> ClientMsg {
    let (room, client_id) = (id, o.client_id.clone());
    match &o.act {
        Act::Send { reply_to } => ClientMsg::Send {
            room,
            client_id,
            text: o.text.to_string(),
            reply_to: *reply_to,
            attachments: o.files.iter().map(|f| f.id).collect(),
        },
        Act::Edit { target } => ClientMsg::Edit {
            room,
            client_id,
            target: *target,
            text: o.text.to_string(),
        },
        Act::Delete { target } => ClientMsg::Delete {
            room,
            client_id,
            target: *target,
        },
        Act::React { target, emoji, on } => ClientMsg::React {
            room,
            client_id,
            target: *target,
            emoji: emoji.to_string(),
            on: *on,
        },
    }
}

/// An outgoing message or change as the outbox stores it.
fn entry_of(id: RoomId, o: &Outgoing) -> OutboxEntry {
    let mut e = OutboxEntry::message(
        OutboxRoom::Id(id),
        o.client_id.clone(),
        o.text.to_string(),
        o.created_ms,
    );
    match &o.act {
        Act::Send { reply_to } => {
            e.reply_to = *reply_to;
            e.attachments = o.files.clone();
        }
        Act::Edit { target } => {
            e.kind = EventKind::Edit;
            e.target = Some(*target);
        }
        Act::Delete { target } => {
            e.kind = EventKind::Delete;
            e.target = Some(*target);
        }
        Act::React { target, emoji, on } => {
            e.kind = EventKind::React;
            e.target = Some(*target);
            e.emoji = Some(emoji.to_string());
            e.on = Some(*on);
        }
    }
    e
}

/// The `join` for a room, catching up from its timeline's position.
fn join(id: RoomId, room: &mut Room) -> ClientMsg {
    room.join = JoinState::Joining;
    let since = room.timeline.since();
    if since.is_none() {
        room.timeline.expect_first_page();
    }
    ClientMsg::Join { room: id, since }
}

/// The `send` frames of a room's pending messages, oldest first, with their original ids.
fn sends(id: RoomId, timeline: &Timeline) -> Vec<ClientMsg> {
    timeline.pending().map(|o| send_frame(id, o)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorting_by_key_orders_by_rank_text_number_and_keeps_ties_in_order() {
        let mut v = vec![
            (2u8, "b", 1u64),
            (1, "z", 0),
            (2, "a", 9),
            (2, "b", 0),
            (1, "z", 0),
        ];
        let mut tagged: Vec<_> = v.drain(..).zip(0..).collect();
        sort_by_key(&mut tagged, |((r, t, n), _)| (*r, (*t).to_owned(), *n));
        let order: Vec<usize> = tagged.iter().map(|(_, i)| *i).collect();
        assert_eq!(order, vec![1, 4, 2, 3, 0]);
    }
    use crate::timeline::Delivery;
    use shared::MessageEvent;
    use std::ops::{Deref, DerefMut};

    /// The model under test, its answers stripped of their `req`: most tests check what is
    /// sent; the request ids have tests of their own (which use `.0`).
    #[derive(Debug)]
    struct M(Chat);

    impl Deref for M {
        type Target = Chat;
        fn deref(&self) -> &Chat {
            &self.0
        }
    }

    impl DerefMut for M {
        fn deref_mut(&mut self) -> &mut Chat {
            &mut self.0
        }
    }

    fn strip(frames: Vec<ClientFrame>) -> Vec<ClientMsg> {
        frames.into_iter().map(|f| f.msg).collect()
    }

    impl M {
        fn new(me: Username, current: RoomId) -> Self {
            M(Chat::new(Me::from(me), current))
        }
        fn apply(&mut self, msg: ServerMsg) -> Vec<ClientMsg> {
            strip(self.0.apply(msg))
        }
        fn connected(&mut self) -> Vec<ClientMsg> {
            strip(self.0.connected())
        }
        fn open(&mut self, id: RoomId) -> Vec<ClientMsg> {
            strip(self.0.open(id))
        }
        fn compose(&mut self, text: MessageText, client_id: ClientId, now: i64) -> Vec<ClientMsg> {
            strip(self.0.compose(text, client_id, now))
        }
        fn load_older(&mut self) -> Vec<ClientMsg> {
            strip(self.0.load_older())
        }
        fn retry(&mut self, client_id: &ClientId) -> Vec<ClientMsg> {
            strip(self.0.retry(client_id))
        }
        fn retry_gap(&mut self, from: u64, to: u64) -> Vec<ClientMsg> {
            strip(self.0.retry_gap(from, to))
        }
        fn resend_pending(&mut self) -> Vec<ClientMsg> {
            strip(self.0.resend_pending())
        }
        fn after_rate_limit(&mut self) -> Vec<ClientMsg> {
            strip(self.0.after_rate_limit())
        }
        fn set_room_list(&mut self, list: &[RoomInfo]) -> Vec<ClientMsg> {
            strip(self.0.set_room_list(list))
        }
    }

    fn user(n: &str) -> Username {
        Username::parse(n).expect("valid")
    }
    /// The test rooms' ids.
    fn room(n: &str) -> RoomId {
        match n {
            "general" => DEFAULT_ROOM_ID,
            "random" => RoomId(2),
            "rust-2024" => RoomId(7),
            "技术讨论" => RoomId(8),
            other => panic!("no test room {other}"),
        }
    }
    /// A room as `GET /api/rooms` lists it (built from JSON: fields the client does not read
    /// keep their defaults).
    fn info(n: &str) -> RoomInfo {
        serde_json::from_value(serde_json::json!({
            "id": room(n),
            "name": n,
            "last_seq": 0,
            "online": 0,
        }))
        .expect("a valid room")
    }
    fn cid(n: &str) -> ClientId {
        ClientId::parse(n).expect("valid")
    }
    fn msg(r: &str, seq: u64, author: &str, client_id: Option<&str>) -> ServerMsg {
        let mut ev = MessageEvent::message(
            room(r),
            seq,
            seq,
            user(author),
            DisplayName::parse(format!("{author} name")).expect("valid"),
            format!("m{seq}"),
            0,
        );
        ev.client_id = client_id.map(cid);
        ServerMsg::Message(Box::new(ev))
    }
    fn joined(r: &str, online: &[&str]) -> ServerMsg {
        ServerMsg::Joined {
            req: None,
            room: room(r),
            last_seq: 0,
            online: online.iter().map(|u| user(u)).collect(),
            away: Vec::new(),
        }
    }
    fn history(r: &str, seqs: std::ops::RangeInclusive<u64>, has_more: bool) -> ServerMsg {
        ServerMsg::History {
            req: None,
            room: room(r),
            messages: seqs
                .map(|s| match msg(r, s, "bob", None) {
                    ServerMsg::Message(ev) => *ev,
                    _ => unreachable!("msg builds a message"),
                })
                .collect(),
            has_more,
        }
    }
    /// The first page of an empty room.
    fn no_history(r: &str) -> ServerMsg {
        ServerMsg::History {
            req: None,
            room: room(r),
            messages: Vec::new(),
            has_more: false,
        }
    }
    fn text(t: &str) -> MessageText {
        MessageText::parse(t).expect("valid")
    }

    /// A model connected, with `general` joined and `upto` messages loaded.
    fn ready(upto: u64) -> M {
        let mut c = M::new(user("alice"), room("general"));
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
        let mut c = M::new(user("alice"), room("general"));
        assert!(c.compose(text("hi"), cid("c1"), 1).is_empty());
        assert_eq!(c.outbox().len(), 1);
        c.connected();
        let out = c.apply(joined("general", &["alice"]));
        assert_eq!(
            out,
            vec![ClientMsg::Send {
                room: room("general"),
                client_id: cid("c1"),
                text: "hi".into(),
                reply_to: None,
                attachments: Vec::new(),
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
        let mut c = M::new(user("alice"), room("general"));
        c.restore(vec![OutboxEntry::message(
            OutboxRoom::Id(room("random")),
            cid("c9"),
            "later".into(),
            3,
        )]);
        let joins = c.connected();
        assert_eq!(joins.len(), 2);
        let out = c.apply(joined("random", &[]));
        assert!(
            matches!(&out[..], [ClientMsg::Send { client_id, .. }] if client_id.as_str() == "c9")
        );
    }

    #[test]
    fn a_restored_message_with_files_is_sent_with_their_ids_and_stays_in_the_outbox_with_them() {
        let mut c = M::new(user("alice"), room("general"));
        let mut e = OutboxEntry::message(OutboxRoom::Id(room("general")), cid("f1"), "".into(), 3);
        e.attachments = serde_json::from_str(
            r#"[{"id":5,"name":"a.png","size":1,"mime":"image/png"},{"id":6,"name":"b","size":2,"mime":"application/zip"}]"#,
        )
        .expect("attachments");
        c.restore(vec![e.clone()]);
        assert_eq!(c.outbox(), vec![e]);
        c.connected();
        let out = c.apply(joined("general", &[]));
        assert!(
            matches!(&out[..], [ClientMsg::Send { attachments, text, .. }] if *attachments == [5, 6] && text.is_empty()),
            "{out:?}"
        );
    }

    #[test]
    fn presence_updates_the_online_list_and_never_the_timeline() {
        let mut c = ready(2);
        c.apply(ServerMsg::Presence {
            room: room("general"),
            user: user("carol"),
            online: true,
            status: None,
        });
        c.apply(ServerMsg::Presence {
            room: room("general"),
            user: user("carol"),
            online: true,
            status: None,
        });
        assert_eq!(
            c.current_online(),
            vec![user("alice"), user("bob"), user("carol")]
        );
        c.apply(ServerMsg::Presence {
            room: room("general"),
            user: user("bob"),
            online: false,
            status: None,
        });
        assert_eq!(c.current_online(), vec![user("alice"), user("carol")]);
        let notices = c
            .current_entries()
            .into_iter()
            .filter(|e| matches!(e, Entry::Notice(_)))
            .count();
        assert_eq!(
            notices, 0,
            "arrivals and departures stay out of the timeline"
        );
    }

    #[test]
    fn a_refused_message_fails_and_leaves_the_outbox() {
        let mut c = ready(0);
        c.compose(text("bad"), cid("c1"), 1);
        c.apply(ServerMsg::Error {
            req: None,
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
            req: None,
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
                req: None,
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
    fn messages_in_other_rooms_count_as_unread_until_read() {
        let mut c = ready(0);
        c.open(room("random"));
        c.apply(joined("random", &[]));
        c.apply(no_history("random"));
        c.open(room("general"));
        c.apply(msg("random", 1, "bob", None));
        c.apply(msg("random", 1, "bob", None));
        c.apply(msg("random", 2, "alice", None));
        assert_eq!(c.unread(room("random")), 1);
        assert!(c.open(room("random")).is_empty(), "already joined");
        assert_eq!(
            c.unread(room("random")),
            1,
            "until its newest message is seen"
        );
        assert_eq!(c.0.mark_read(room("random"), 2).len(), 1);
        assert_eq!(c.unread(room("random")), 0);
    }

    #[test]
    fn loading_older_asks_before_the_lowest_seq() {
        let mut c = M::new(user("alice"), room("general"));
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

    fn page(seqs: std::ops::RangeInclusive<u64>) -> Vec<MessageEvent> {
        seqs.filter_map(|s| match msg("general", s, "bob", None) {
            ServerMsg::Message(ev) => Some(*ev),
            _ => None,
        })
        .collect()
    }

    fn seqs(entries: &[Entry]) -> Vec<u64> {
        entries
            .iter()
            .filter_map(|e| match e {
                Entry::Message { seq, .. } => *seq,
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_window_far_back_shows_its_pages_follows_changes_and_leaves_the_live_log_alone() {
        let mut c = M::new(user("alice"), room("general"));
        c.connected();
        c.apply(joined_at("general", 10_000));
        c.apply(history("general", 9_951..=10_000, true));
        c.open_window(500);
        assert_eq!(c.current_history(), HistoryState::Loading);
        assert!(!c.reading(), "a window is not the newest messages");
        // Its first pages: up to 500, and after it.
        c.window_loaded(
            room("general"),
            500,
            (page(476..=500), true),
            (page(501..=525), true),
        );
        assert_eq!(seqs(&c.current_entries()), (476..=525).collect::<Vec<_>>());
        assert_eq!(c.current_history(), HistoryState::More);
        // Further pages, each once at a time.
        assert_eq!(c.window_request_older(), Some((room("general"), 500, 476)));
        assert_eq!(c.window_request_older(), None, "already on its way");
        c.window_page(room("general"), 500, false, Some((page(426..=475), false)));
        assert_eq!(c.current_history(), HistoryState::Beginning);
        assert_eq!(c.window_request_newer(), Some((room("general"), 500, 525)));
        assert_eq!(c.window_request_newer(), None, "already on its way");
        c.window_page(room("general"), 500, true, Some((page(526..=575), true)));
        assert!(c.window_has_newer());
        assert_eq!(seqs(&c.current_entries()).len(), 150);
        // A page that comes back for an older window is dropped.
        c.window_page(room("general"), 7, true, Some((page(900..=901), false)));
        assert!(!seqs(&c.current_entries()).contains(&900));
        // Live: an edit of a message in the window shows in it; a new message means newer
        // ones exist again; the live timeline takes both as usual.
        c.apply(change(10_001, EventKind::Edit, 500, "bob", "changed"));
        c.apply(msg("general", 10_002, "bob", None));
        let w = c.window().expect("open");
        let shown = w.timeline.message(500).expect("held");
        assert_eq!(&*shown.text, "changed");
        assert!(c.window_has_newer());
        assert!(w.timeline.gaps().is_empty(), "no hole is shown in a window");
        // Back to the latest: the live rows, unread counting as before.
        c.close_window();
        assert_eq!(
            seqs(&c.current_entries()).last().copied(),
            Some(10_002),
            "the live timeline kept up"
        );
        assert!(c.reading());
        // Another room closes a window.
        c.open_window(9);
        c.open(room("random"));
        c.open(room("general"));
        assert!(c.window().is_none());
        // Read down to the newest message, a window gives way to the live timeline.
        c.open_window(9_900);
        c.window_loaded(
            room("general"),
            9_900,
            (page(9_876..=9_900), true),
            (page(9_901..=9_925), true),
        );
        assert_eq!(
            c.window_request_newer(),
            Some((room("general"), 9_900, 9_925))
        );
        c.window_page(
            room("general"),
            9_900,
            true,
            Some((page(9_926..=9_975), false)),
        );
        assert!(c.window().is_none(), "the newest reached");
        assert!(c.reading());
    }

    #[test]
    fn not_joined_errors_rejoin_once() {
        let mut c = ready(1);
        let err = ServerMsg::Error {
            req: None,
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
            req: None,
            room: room(r),
            last_seq,
            online: vec![user("alice")],
            away: Vec::new(),
        }
    }

    fn internal(client_id: Option<&str>) -> ServerMsg {
        ServerMsg::Error {
            req: None,
            code: ErrorCode::Internal,
            message: "Try again.".into(),
            client_id: client_id.map(cid),
            room: Some(room("general")),
            retry_after_ms: None,
        }
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
    fn failed_transiently() -> M {
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
                text: "x".into(),
                reply_to: None,
                attachments: Vec::new(),
            }]
        );
        assert_eq!(states(&c), vec!["pending"]);
        // The first attempt had been stored after all: the server acks the original.
        c.apply(ServerMsg::Ack {
            req: None,
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
            req: None,
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

    // -----------------------------------------------------------------------------------------
    // Protocol 3: every kind of change in the log, holes filled by catch-up, read markers

    fn change(seq: u64, kind: EventKind, target: u64, author: &str, text: &str) -> ServerMsg {
        let ServerMsg::Message(mut ev) = msg("general", seq, author, None) else {
            unreachable!("msg builds a message")
        };
        ev.kind = kind;
        ev.target = Some(target);
        ev.text = text.into();
        if matches!(kind, EventKind::React | EventKind::Unreact) {
            ev.emoji = Some(text.into());
            ev.text.clear();
        }
        ServerMsg::Message(ev)
    }

    fn since(r: &str, seq: u64) -> ClientMsg {
        ClientMsg::Join {
            room: room(r),
            since: Some(seq),
        }
    }

    #[test]
    fn a_live_hole_is_filled_by_a_join_since_not_by_history() {
        let mut c = ready(5);
        assert_eq!(
            c.apply(msg("general", 9, "bob", None)),
            vec![since("general", 5)]
        );
        assert!(
            c.apply(msg("general", 10, "bob", None)).is_empty(),
            "asked once"
        );
        assert_eq!(gaps(&c), vec![(6, 8, true)]);
        c.apply(joined_at("general", 10));
        c.apply(change(6, EventKind::Edit, 1, "bob", "new"));
        for s in 7..=10 {
            c.apply(msg("general", s, "bob", None));
        }
        assert!(gaps(&c).is_empty());
        assert_eq!(
            c.current_entries().len(),
            9,
            "no duplicates, no row for the edit"
        );
        assert_eq!(
            c.room(room("general")).map(|r| r.timeline.since()),
            Some(Some(10))
        );
    }

    /// The texts of the room on screen, oldest first.
    fn shown_texts(c: &Chat) -> Vec<String> {
        c.current_entries()
            .iter()
            .filter_map(|e| match e {
                Entry::Message { text, .. } => Some(text.to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn what_the_offline_cache_kept_shows_at_once_and_the_join_asks_only_for_what_followed() {
        let mut c = ready(5);
        c.apply(change(6, EventKind::Edit, 4, "bob", "m4, edited"));
        let (rooms, current, kept) = c.kept(3);

        // A new page load, before any connection.
        let mut d = M::new(user("alice"), room("general"));
        d.0.restore_kept(&rooms, current, kept);
        assert_eq!(shown_texts(&d), ["m3", "m4, edited", "m5"]);
        assert_eq!(d.connected(), vec![since("general", 6)]);
        d.apply(joined_at("general", 7));
        d.apply(msg("general", 7, "bob", None));
        assert_eq!(shown_texts(&d), ["m3", "m4, edited", "m5", "m7"]);
        assert!(gaps(&d).is_empty());
        // Older messages than the kept ones load by scrolling, as after a first page.
        assert!(matches!(
            d.load_older().as_slice(),
            [ClientMsg::History { before: 3, .. }]
        ));
    }

    #[test]
    fn nothing_is_kept_of_a_room_whose_first_page_has_not_arrived() {
        let mut c = M::new(user("alice"), room("general"));
        let (_, _, kept) = c.kept(100);
        assert!(kept.is_empty());
        c.connected();
        let (_, _, kept) = c.kept(100);
        assert!(kept.is_empty());
    }

    #[test]
    fn a_fill_that_fails_shows_the_gap_and_its_retry_asks_again() {
        let mut c = ready(3);
        let fill = c.0.apply(msg("general", 6, "bob", None));
        assert_eq!(strip(fill.clone()), vec![since("general", 3)]);
        c.apply(ServerMsg::Error {
            req: fill[0].req,
            code: ErrorCode::Internal,
            message: "Try again.".into(),
            client_id: None,
            room: Some(room("general")),
            retry_after_ms: None,
        });
        assert_eq!(gaps(&c), vec![(4, 5, false)]);
        assert_eq!(c.retry_gap(4, 5), vec![since("general", 3)]);
        assert_eq!(gaps(&c), vec![(4, 5, true)]);
        // Offline, the next join asks from the hole.
        c.disconnected();
        assert_eq!(c.connected(), vec![since("general", 3)]);
    }

    #[test]
    fn a_join_from_far_behind_answered_with_the_newest_page_starts_over_from_it() {
        let mut c = ready(10);
        c.disconnected();
        assert_eq!(c.connected(), vec![since("general", 10)]);
        let top = 10 + shared::CATCH_UP_MAX + 500;
        c.apply(joined_at("general", top));
        let req = c.in_flight().keys().next().copied();
        let ServerMsg::History { messages, .. } = history("general", top - 49..=top, true) else {
            unreachable!()
        };
        c.apply(ServerMsg::History {
            req,
            room: room("general"),
            messages,
            has_more: true,
        });
        assert_eq!(c.current_entries().len(), 50);
        assert!(gaps(&c).is_empty());
        assert_eq!(c.current_history(), HistoryState::More);
    }

    #[test]
    fn edits_deletions_and_reactions_are_sent_kept_and_confirmed() {
        let mut c = ready(2);
        let out =
            c.0.act(Act::Edit { target: 1 }, "fixed".into(), cid("e1"), 5);
        assert_eq!(
            strip(out),
            vec![ClientMsg::Edit {
                room: room("general"),
                client_id: cid("e1"),
                target: 1,
                text: "fixed".into()
            }]
        );
        let react = Act::React {
            target: 2,
            emoji: "👍".into(),
            on: true,
        };
        c.0.act(react, "".into(), cid("r1"), 5);
        c.0.act(Act::Delete { target: 2 }, "".into(), cid("d1"), 5);
        let kinds: Vec<EventKind> = c.outbox().iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![EventKind::Edit, EventKind::React, EventKind::Delete]
        );
        // After a reload they come back and are sent again, with their ids.
        let mut again = M::new(user("alice"), room("general"));
        again.restore(crate::outbox::decode(&crate::outbox::encode(&c.outbox())));
        again.connected();
        let sent = again.apply(joined("general", &[]));
        assert!(
            matches!(&sent[1], ClientMsg::React { client_id, on: true, .. } if client_id.as_str() == "r1")
        );
        assert!(matches!(&sent[2], ClientMsg::Delete { target: 2, .. }));
        // "Nothing to do" is a success too.
        for id in ["e1", "r1", "d1"] {
            c.apply(ServerMsg::Ack {
                req: None,
                room: room("general"),
                client_id: cid(id),
                id: 0,
                seq: 0,
                ts: 0,
            });
        }
        assert!(c.outbox().is_empty());
        assert_eq!(c.current_entries().len(), 2);
    }

    #[test]
    fn a_refused_change_is_dropped_and_says_why() {
        let mut c = ready(1);
        c.0.act(Act::Delete { target: 1 }, "".into(), cid("d1"), 5);
        c.apply(ServerMsg::Error {
            req: None,
            code: ErrorCode::NoSuchMessage,
            message: "No such message.".into(),
            client_id: Some(cid("d1")),
            room: Some(room("general")),
            retry_after_ms: None,
        });
        assert!(c.outbox().is_empty());
        assert_eq!(c.error(), Some("No such message."));
    }

    #[test]
    fn messages_arriving_while_scrolled_up_count_as_unread_until_read() {
        let mut c = ready(1);
        c.0.set_at_bottom(false);
        assert!(!c.0.reading());
        c.apply(msg("general", 2, "bob", None));
        assert_eq!((c.unread(room("general")), c.total_unread()), (1, 1));
        // Back at the bottom: still unread until `read` goes out, as on the server.
        c.0.set_at_bottom(true);
        assert!(c.0.reading());
        assert_eq!(c.unread(room("general")), 1);
        let sent: Vec<_> =
            c.0.mark_read(room("general"), 2)
                .into_iter()
                .map(|f| f.msg)
                .collect();
        assert_eq!(
            sent,
            vec![ClientMsg::Read {
                room: room("general"),
                seq: 2
            }]
        );
        assert_eq!(c.unread(room("general")), 0);
        // At the bottom but hidden: counted too.
        c.set_visible(false);
        c.apply(msg("general", 3, "bob", None));
        assert_eq!(c.unread(room("general")), 1);
    }

    #[test]
    fn a_direct_message_notification_is_titled_by_its_sender_only() {
        let mut c = ready(0);
        let mut dm = info("random");
        dm.kind = RoomKind::Direct;
        dm.direct = vec![user("alice"), user("bob")];
        c.set_room_list(&[info("general"), dm]);
        c.set_visible(false);
        let mut m = msg("general", 1, "bob", None);
        if let ServerMsg::Message(ev) = &mut m {
            ev.mentions = vec![user("alice")];
        }
        c.apply(m);
        c.apply(msg("random", 1, "bob", None));
        let titles: Vec<String> = c.take_notes().into_iter().map(|n| n.title).collect();
        assert_eq!(titles, vec!["bob name in #general", "bob name"]);
    }

    #[test]
    fn unread_and_mentions_count_messages_by_others_only_and_read_frames_set_them() {
        let mut c = ready(0);
        c.set_room_list(&[info("general"), info("random")]);
        c.open(room("random"));
        c.apply(joined("random", &[]));
        c.apply(no_history("random"));
        c.open(room("general"));
        let mut mention = msg("random", 1, "bob", None);
        if let ServerMsg::Message(ev) = &mut mention {
            ev.mentions = vec![user("alice")];
        }
        c.apply(mention);
        c.apply(msg("random", 1, "bob", None));
        c.apply(msg("random", 2, "alice", None));
        let ServerMsg::Message(mut edit) = change(3, EventKind::Edit, 1, "bob", "x") else {
            unreachable!()
        };
        edit.room = room("random");
        c.apply(ServerMsg::Message(edit));
        assert_eq!(
            (c.unread(room("random")), c.mentions(room("random"))),
            (1, 1)
        );
        assert_eq!(c.total_unread(), 1);
        // The room on screen, page visible: read as it arrives. Hidden: counted, and notified.
        c.apply(msg("general", 1, "bob", None));
        assert_eq!(c.unread(room("general")), 0);
        c.set_visible(false);
        let mut m = msg("general", 2, "bob", None);
        if let ServerMsg::Message(ev) = &mut m {
            ev.mentions = vec![user("alice")];
        }
        c.apply(m);
        assert_eq!(c.unread(room("general")), 1);
        assert_eq!(c.take_notes().len(), 1);
        // Read elsewhere: the server's counts win.
        c.apply(ServerMsg::Read {
            room: room("random"),
            seq: 3,
            unread: 0,
            mentions: 0,
        });
        assert_eq!(c.unread(room("random")), 0);
        // Read here: `read` goes out once, forward only.
        assert_eq!(
            c.0.mark_read(room("general"), 2)
                .into_iter()
                .map(|f| f.msg)
                .collect::<Vec<_>>(),
            vec![ClientMsg::Read {
                room: room("general"),
                seq: 2
            }]
        );
        assert!(c.0.mark_read(room("general"), 2).is_empty());
        assert_eq!(c.total_unread(), 0);
    }

    #[test]
    fn the_divider_marks_the_first_unread_message_when_the_room_is_opened() {
        let mut c = ready(0);
        let mut list = info("random");
        list.read_seq = 2;
        list.unread = 2;
        list.role = Some(Role::Member);
        c.set_room_list(&[info("general"), list]);
        c.open(room("random"));
        c.apply(joined("random", &[]));
        c.apply(history("random", 1..=4, false));
        let keys: Vec<String> = c.current_entries().iter().map(Entry::key).collect();
        assert_eq!(keys[2], "unread");
    }

    #[test]
    fn typing_expires_and_away_people_are_known() {
        let mut c = ready(0);
        let name = DisplayName::parse("Bob").expect("valid");
        c.set_typing(room("general"), user("bob"), name.clone(), true, 1_000);
        assert_eq!(c.typists(2_000), vec![name.clone()]);
        assert!(
            c.typists(1_000 + 6_001).is_empty(),
            "forgotten after the TTL"
        );
        c.set_typing(room("general"), user("bob"), name, false, 2_000);
        assert!(c.typists(2_000).is_empty());
        c.apply(ServerMsg::Presence {
            room: room("general"),
            user: user("bob"),
            online: true,
            status: Some(Presence::Away),
        });
        assert_eq!(c.current_away(), vec![user("bob")]);
        c.apply(ServerMsg::Presence {
            room: room("general"),
            user: user("bob"),
            online: true,
            status: None,
        });
        assert!(c.current_away().is_empty());
    }

    // -----------------------------------------------------------------------------------------
    // Upgrades, newer servers, request ids

    /// An outbox exactly as the previous release stored it (its `OutboxEntry` held a
    /// `RoomName`), under `chat.outbox.v1.alice`.
    const PREVIOUS_RELEASE_OUTBOX: &str = r#"[{"room":"general","client_id":"0b9f2c1e-6a54-4c55-9d7e-2f1d3c4b5a69","text":"hello from before","created_ms":1700000000000},{"room":"rust-2024","client_id":"a1","text":"in rust","created_ms":1700000000001},{"room":"gone","client_id":"a2","text":"nowhere","created_ms":1700000000002}]"#;

    fn send(r: &str, client_id: &str, text: &str) -> ClientMsg {
        ClientMsg::Send {
            room: room(r),
            client_id: cid(client_id),
            text: text.into(),
            reply_to: None,
            attachments: Vec::new(),
        }
    }

    fn ids(entries: &[OutboxEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.client_id.as_str()).collect()
    }

    #[test]
    fn the_previous_releases_outbox_is_resent_to_the_rooms_it_names() {
        let mut c = M::new(user("alice"), room("general"));
        c.restore(crate::outbox::decode(PREVIOUS_RELEASE_OUTBOX));
        // `general` is known from the start; the other names wait for the room list.
        assert_eq!(ids(c.unresolved()), vec!["a1", "a2"]);
        assert_eq!(c.outbox().len(), 3, "all of them stay in the outbox");
        assert_eq!(
            c.connected(),
            vec![ClientMsg::Join {
                room: DEFAULT_ROOM_ID,
                since: None
            }]
        );
        assert_eq!(
            c.apply(joined("general", &["alice"])),
            vec![send(
                "general",
                "0b9f2c1e-6a54-4c55-9d7e-2f1d3c4b5a69",
                "hello from before"
            )]
        );

        // The room list names `rust-2024`: its message goes there, by id.
        let out = c.set_room_list(&[info("general"), info("random"), info("rust-2024")]);
        assert_eq!(
            out,
            vec![ClientMsg::Join {
                room: RoomId(7),
                since: None
            }]
        );
        assert_eq!(
            c.apply(joined("rust-2024", &["alice"])),
            vec![send("rust-2024", "a1", "in rust")]
        );
        assert_eq!(c.room_label(RoomId(7)), "rust-2024");

        // `gone` is in no list: kept (in the outbox too), not sent, not dropped.
        assert_eq!(c.unresolved().len(), 1);
        assert_eq!(c.unresolved()[0].room, OutboxRoom::Name("gone".into()));
        assert!(ids(&c.outbox()).contains(&"a2"));
        assert!(c.resend_pending().iter().all(|m| !matches!(
            m,
            ClientMsg::Send { client_id, .. } if client_id.as_str() == "a2"
        )));
        // Confirmations empty the outbox of the resolved ones only.
        c.apply(ServerMsg::Ack {
            req: None,
            room: RoomId(7),
            client_id: cid("a1"),
            id: 9,
            seq: 1,
            ts: 1,
        });
        let mut ev = MessageEvent::message(
            DEFAULT_ROOM_ID,
            1,
            8,
            user("alice"),
            DisplayName::parse("Alice").expect("valid"),
            "hello from before".into(),
            1,
        );
        ev.client_id = Some(cid("0b9f2c1e-6a54-4c55-9d7e-2f1d3c4b5a69"));
        c.apply(ServerMsg::Message(Box::new(ev)));
        assert_eq!(ids(&c.outbox()), vec!["a2"]);
        // Discarding is the user's call.
        c.discard(&cid("a2"));
        assert!(c.outbox().is_empty());
    }

    #[test]
    fn a_legacy_entry_resolved_before_the_connection_is_joined_with_the_rest() {
        let mut c = M::new(user("alice"), room("general"));
        c.restore(crate::outbox::decode(PREVIOUS_RELEASE_OUTBOX));
        assert!(
            c.set_room_list(&[info("rust-2024"), info("技术讨论")])
                .is_empty()
        );
        assert_eq!(ids(c.unresolved()), vec!["a2"]);
        let joins: Vec<RoomId> = c
            .connected()
            .into_iter()
            .filter_map(|m| match m {
                ClientMsg::Join { room, .. } => Some(room),
                _ => None,
            })
            .collect();
        assert_eq!(joins, vec![DEFAULT_ROOM_ID, RoomId(7)]);
        // Names match exactly, as stored: a later list holding it resolves the last one.
        let mut gone = info("random");
        gone.id = RoomId(99);
        gone.name = RoomName::parse("Gone").expect("valid");
        assert!(c.set_room_list(&[gone.clone()]).is_empty());
        gone.name = RoomName::parse("gone").expect("valid");
        assert_eq!(
            c.set_room_list(&[gone]),
            vec![ClientMsg::Join {
                room: RoomId(99),
                since: None
            }]
        );
        assert!(c.unresolved().is_empty());
    }

    #[test]
    fn new_entries_are_stored_by_room_id() {
        let mut c = ready(0);
        c.open(room("random"));
        c.compose(text("hi"), cid("c1"), 5);
        assert_eq!(
            c.outbox(),
            vec![OutboxEntry::message(
                OutboxRoom::Id(RoomId(2)),
                cid("c1"),
                "hi".into(),
                5,
            )]
        );
    }

    #[test]
    fn a_frame_of_an_unknown_type_is_ignored() {
        let mut c = ready(2);
        c.compose(text("waiting"), cid("c1"), 1);
        let before = c.0.clone();
        let frame: ServerMsg =
            serde_json::from_str(r#"{"type":"pinned","room":1,"user":"bob","until":5}"#)
                .expect("tolerated");
        assert_eq!(frame, ServerMsg::Unknown);
        assert!(c.0.apply(frame).is_empty());
        assert_eq!(c.0, before, "nothing changed");
    }

    #[test]
    fn an_unknown_error_code_on_a_send_fails_the_message_instead_of_leaving_it_pending() {
        for with_client_id in [true, false] {
            let mut c = ready(0);
            let sent = c.0.compose(text("x"), cid("c1"), 1);
            let [ClientFrame { req: Some(req), .. }] = sent[..] else {
                panic!("one send with a req: {sent:?}");
            };
            let cid_field = if with_client_id {
                r#","client_id":"c1""#
            } else {
                ""
            };
            let frame: ServerMsg = serde_json::from_str(&format!(
                r#"{{"type":"error","req":{req},"code":"quota_exceeded","message":"Over quota."{cid_field},"room":1}}"#
            ))
            .expect("tolerated");
            assert!(matches!(
                frame,
                ServerMsg::Error {
                    code: ErrorCode::Unknown,
                    ..
                }
            ));
            assert_eq!(c.0.resend_after(&frame, 3_000), None, "not a transient one");
            assert!(c.apply(frame).is_empty());
            assert_eq!(
                states(&c),
                vec!["failed"],
                "client_id given: {with_client_id}"
            );
            assert!(c.resend_pending().is_empty());
            assert!(c.after_rate_limit().is_empty());
            assert!(c.outbox().is_empty(), "refused like an invalid message");
            assert!(!c.in_flight().contains_key(&req), "answered");
        }
    }

    #[test]
    fn new_error_codes_are_failures_and_internal_ones_are_still_retried() {
        for code in [
            ErrorCode::Forbidden,
            ErrorCode::Conflict,
            ErrorCode::Unknown,
        ] {
            assert!(!retryable(code));
            let mut c = ready(0);
            c.compose(text("x"), cid("c1"), 1);
            c.apply(ServerMsg::Error {
                req: None,
                code,
                message: "no".into(),
                client_id: Some(cid("c1")),
                room: Some(room("general")),
                retry_after_ms: None,
            });
            assert_eq!(states(&c), vec!["failed"], "{code:?}");
        }
        // `internal` without a client_id, known as a send's answer by its req: resent later.
        let mut c = ready(0);
        let sent = c.0.compose(text("x"), cid("c1"), 1);
        let err = ServerMsg::Error {
            req: sent[0].req,
            code: ErrorCode::Internal,
            message: "Try again.".into(),
            client_id: None,
            room: None,
            retry_after_ms: None,
        };
        assert_eq!(c.0.resend_after(&err, 3_000), Some(3_000));
        c.apply(err);
        assert_eq!(states(&c), vec!["pending"]);
        assert_eq!(c.after_rate_limit(), vec![send("general", "c1", "x")]);
    }

    #[test]
    fn every_frame_gets_a_fresh_req_and_answers_settle_it() {
        let mut c = M::new(user("alice"), room("general"));
        c.0.open(room("random"));
        let joins = c.0.connected();
        let reqs: Vec<Option<u64>> = joins.iter().map(|f| f.req).collect();
        assert_eq!(reqs.len(), 2);
        assert!(reqs.iter().all(Option::is_some));
        assert_ne!(reqs[0], reqs[1]);
        let ping = c.0.take_req();
        assert!(
            reqs.iter().all(|r| *r != Some(ping)),
            "pings share the counter"
        );
        assert_eq!(c.in_flight().len(), 2);
        // The JSON carries it beside the type.
        let json = serde_json::to_string(&joins[0]).expect("serializes");
        assert_eq!(
            json,
            format!(
                r#"{{"req":{},"type":"join","room":1}}"#,
                reqs[0].expect("req")
            )
        );
        // A join is settled by its page; a send by its ack; a dropped connection forgets all.
        c.apply(ServerMsg::Joined {
            req: reqs[0],
            room: room("general"),
            last_seq: 0,
            online: vec![user("alice")],
            away: Vec::new(),
        });
        assert_eq!(c.in_flight().len(), 2, "its page is still to come");
        c.apply(ServerMsg::History {
            req: reqs[0],
            room: room("general"),
            messages: Vec::new(),
            has_more: false,
        });
        assert_eq!(c.in_flight().len(), 1);
        assert!(c.0.open(room("general")).is_empty(), "joined already");
        let sent = c.0.compose(text("x"), cid("c1"), 1);
        assert_eq!(c.in_flight().len(), 2);
        c.apply(ServerMsg::Ack {
            req: sent[0].req,
            room: room("general"),
            client_id: cid("c1"),
            id: 1,
            seq: 1,
            ts: 1,
        });
        assert_eq!(c.in_flight().len(), 1);
        c.disconnected();
        assert!(c.in_flight().is_empty());
    }

    /// `general` loaded up to 3, then seq 6 arrived live on a new connection: the request for
    /// 4..=5 (returned) is on its way, and so is the join (its req, returned).
    #[test]
    fn a_join_refused_for_good_fails_its_pending_messages_with_a_retry() {
        let mut c = M::new(user("alice"), room("general"));
        c.0.open(room("random"));
        c.compose(text("hi"), cid("c1"), 1);
        let joins = c.0.connected();
        let random_join = joins
            .iter()
            .find(|f| matches!(f.msg, ClientMsg::Join { room: r, .. } if r == room("random")))
            .and_then(|f| f.req);
        c.apply(ServerMsg::Error {
            req: random_join,
            code: ErrorCode::Forbidden,
            message: "Not allowed here.".into(),
            client_id: None,
            room: None,
            retry_after_ms: None,
        });
        assert_eq!(states(&c), vec!["failed"]);
        assert_eq!(c.outbox().len(), 1, "kept for a retry");
        assert_eq!(c.error(), Some("Not allowed here."));
        // Retry joins again; the join sends it.
        assert_eq!(
            c.retry(&cid("c1")),
            vec![ClientMsg::Join {
                room: room("random"),
                since: None
            }]
        );
        assert_eq!(
            c.apply(joined("random", &["alice"])),
            vec![send("random", "c1", "hi")]
        );
    }

    #[test]
    fn authors_are_shown_by_display_name() {
        let mut c = ready(0);
        c.apply(msg("general", 1, "bob", None));
        c.set_my_name(DisplayName::parse("Alice A.").expect("valid"));
        c.compose(text("mine"), cid("c1"), 1);
        let authors: Vec<(String, String)> = c
            .current_entries()
            .into_iter()
            .filter_map(|e| match e {
                Entry::Message {
                    author,
                    author_name,
                    ..
                } => Some((author.to_string(), author_name.to_string())),
                _ => None,
            })
            .collect();
        assert_eq!(
            authors,
            vec![
                ("bob".into(), "bob name".into()),
                ("alice".into(), "Alice A.".into())
            ]
        );
        assert_eq!(c.display_name(&user("bob")).as_str(), "bob name");
        assert_eq!(c.display_name(&user("carol")).as_str(), "carol");
    }

    /// A room as a `room` frame tells it, with the user's role and, for a direct room, people.
    fn room_info(id: u64, name: &str, kind: &str, role: Option<&str>, direct: &[&str]) -> RoomInfo {
        serde_json::from_value(serde_json::json!({
            "id": id,
            "name": name,
            "kind": kind,
            "role": role,
            "direct": direct,
            "last_seq": 0,
            "online": 0,
        }))
        .expect("a valid room")
    }

    #[test]
    fn a_room_frame_adds_the_room_and_a_membership_is_followed_at_once() {
        let mut c = ready(0);
        // Someone else's public room: listed, not joined.
        assert!(
            c.apply(ServerMsg::Room {
                room: room_info(5, "plaza", "public", None, &[]),
            })
            .is_empty()
        );
        assert_eq!(c.room_label(RoomId(5)), "plaza");
        assert!(c.room(RoomId(5)).is_none(), "not followed");
        // A direct conversation someone opened with alice: followed (joined) at once, and named
        // after the other people.
        let out = c.apply(ServerMsg::Room {
            room: room_info(
                6,
                "alice, Bob B.",
                "direct",
                Some("member"),
                &["alice", "bob"],
            ),
        });
        assert_eq!(
            out,
            vec![ClientMsg::Join {
                room: RoomId(6),
                since: None
            }]
        );
        assert_eq!(c.room_label(RoomId(6)), "Bob B.");
        assert_eq!(c.room_title(RoomId(6)), "Bob B.");
        assert_eq!(c.room_title(RoomId(5)), "#plaza");
        c.learn_people([(user("bob"), DisplayName::parse("鲍勃").expect("valid"))]);
        assert_eq!(c.room_label(RoomId(6)), "鲍勃");
        // A frame sent to a whole room (a topic change) carries no role: the role known stays.
        c.apply(ServerMsg::Room {
            room: room_info(7, "rust-2024", "public", Some("owner"), &[]),
        });
        let mut topic = room_info(7, "rust-2024", "public", None, &[]);
        topic.topic = "Editions".into();
        c.apply(ServerMsg::Room { room: topic });
        assert_eq!(c.role(RoomId(7)), Some(Role::Owner));
        assert_eq!(
            c.info(RoomId(7)).map(|i| i.topic.as_str()),
            Some("Editions")
        );
    }

    #[test]
    fn a_ban_fails_what_waits_drops_a_private_room_and_goes_back_to_general() {
        let mut c = ready(0);
        c.apply(ServerMsg::Room {
            room: room_info(9, "inner", "private", Some("member"), &[]),
        });
        c.open(RoomId(9));
        c.apply(ServerMsg::Joined {
            req: None,
            room: RoomId(9),
            last_seq: 0,
            online: vec![user("alice")],
            away: Vec::new(),
        });
        c.compose(text("one more"), cid("c1"), 1);
        c.apply(ServerMsg::Removed {
            room: RoomId(9),
            reason: Removal::Banned,
            by: Some(user("bob")),
            message: Some("spam".into()),
        });
        assert_eq!(c.current(), DEFAULT_ROOM_ID);
        assert!(
            c.info(RoomId(9)).is_none(),
            "a private room leaves the list"
        );
        let [alert] = c.alerts() else {
            panic!("one notice: {:?}", c.alerts());
        };
        let alert = alert.clone();
        assert_eq!(alert.room_title, "#inner");
        assert_eq!(
            alert.kind,
            AlertKind::Removed {
                reason: Removal::Banned,
                by: Some(user("bob")),
                message: Some("spam".into()),
            }
        );
        // Its unsent message is kept, failed; the room is not joined again on a reconnect.
        assert_eq!(c.outbox().len(), 1);
        c.disconnected();
        let joins = c.connected();
        assert_eq!(
            joins,
            vec![ClientMsg::Join {
                room: DEFAULT_ROOM_ID,
                since: Some(0)
            }]
        );
        c.dismiss_alert(alert.n);
        assert!(c.alerts().is_empty());
    }

    #[test]
    fn a_kick_from_a_public_room_keeps_it_listed_but_not_joined() {
        let mut c = ready(0);
        c.apply(ServerMsg::Room {
            room: room_info(5, "plaza", "public", Some("member"), &[]),
        });
        c.apply(ServerMsg::Removed {
            room: RoomId(5),
            reason: Removal::Kicked,
            by: Some(user("bob")),
            message: None,
        });
        assert_eq!(c.info(RoomId(5)).map(|i| i.role), Some(None));
        assert!(c.room(RoomId(5)).is_none(), "no longer followed");
        // Opening it again joins again.
        assert_eq!(
            c.open(RoomId(5)),
            vec![ClientMsg::Join {
                room: RoomId(5),
                since: None
            }]
        );
    }

    #[test]
    fn an_invitation_is_listed_until_the_room_is_joined() {
        let mut c = ready(0);
        let invite: InviteInfo = serde_json::from_value(serde_json::json!({
            "room": {"id": 9, "name": "inner", "kind": "private", "last_seq": 0, "online": 1},
            "by": "bob",
            "by_name": "Bob",
            "ts": 1,
        }))
        .expect("valid");
        c.apply(ServerMsg::Invited { invite });
        assert_eq!(c.invites().len(), 1);
        assert_eq!(c.room_label(RoomId(9)), "inner");
        c.open(RoomId(9));
        c.apply(ServerMsg::Joined {
            req: None,
            room: RoomId(9),
            last_seq: 0,
            online: vec![user("alice")],
            away: Vec::new(),
        });
        assert!(c.invites().is_empty());
    }

    #[test]
    fn members_frames_are_counted_per_room() {
        let mut c = ready(0);
        assert_eq!(c.members_rev(RoomId(2)), 0);
        c.apply(ServerMsg::Members { room: RoomId(2) });
        assert_eq!(c.members_rev(RoomId(2)), 1);
        assert_eq!(c.members_rev(DEFAULT_ROOM_ID), 0);
    }

    #[test]
    fn a_mute_is_known_and_announced_and_lifted() {
        let mut c = ready(0);
        c.apply(ServerMsg::Muted {
            room: DEFAULT_ROOM_ID,
            until: Some(5_000),
            reason: Some("calm down".into()),
        });
        assert_eq!(c.muted_until(DEFAULT_ROOM_ID), Some(5_000));
        c.apply(ServerMsg::Muted {
            room: DEFAULT_ROOM_ID,
            until: None,
            reason: None,
        });
        assert_eq!(c.muted_until(DEFAULT_ROOM_ID), None);
        let kinds: Vec<&AlertKind> = c.alerts().iter().map(|a| &a.kind).collect();
        assert_eq!(
            kinds,
            vec![
                &AlertKind::Muted {
                    until: 5_000,
                    reason: Some("calm down".into())
                },
                &AlertKind::Unmuted
            ]
        );
    }

    #[test]
    fn slow_mode_keeps_the_message_pending_and_resends_it_after_the_wait() {
        let mut c = ready(0);
        let sent = c.0.compose(text("hi"), cid("c1"), 1);
        let err = ServerMsg::Error {
            req: sent[0].req,
            code: ErrorCode::SlowMode,
            message: "Slow mode: wait 4 s.".into(),
            client_id: Some(cid("c1")),
            room: Some(DEFAULT_ROOM_ID),
            retry_after_ms: Some(3_500),
        };
        assert_eq!(c.0.resend_after(&err, 3_000), Some(3_500));
        c.apply(err);
        assert_eq!(states(&c), vec!["pending"]);
        assert_eq!(c.slow_wait(DEFAULT_ROOM_ID), Some(3_500));
        assert_eq!(c.error(), None, "a hint, not an error");
        assert_eq!(c.after_rate_limit(), vec![send("general", "c1", "hi")]);
        c.apply(ServerMsg::Ack {
            req: None,
            room: DEFAULT_ROOM_ID,
            client_id: cid("c1"),
            id: 1,
            seq: 1,
            ts: 1,
        });
        assert_eq!(c.slow_wait(DEFAULT_ROOM_ID), None);
    }

    #[test]
    fn refusals_by_the_rules_of_a_room_fail_the_message_with_the_servers_words() {
        for code in [ErrorCode::Filtered, ErrorCode::Muted, ErrorCode::Banned] {
            let mut c = ready(0);
            c.compose(text("rhubarb"), cid("c1"), 1);
            c.apply(ServerMsg::Error {
                req: None,
                code,
                message: "The message was refused by the filter rule \"rhubarb\".".into(),
                client_id: Some(cid("c1")),
                room: Some(DEFAULT_ROOM_ID),
                retry_after_ms: None,
            });
            assert_eq!(states(&c), vec!["failed"], "{code:?}");
            assert!(c.outbox().is_empty());
        }
    }

    #[test]
    fn the_room_list_follows_the_rooms_the_user_is_a_member_of() {
        let mut c = ready(0);
        let mut joined = info("random");
        joined.role = Some(Role::Member);
        let out = c.set_room_list(&[info("general"), joined, info("rust-2024")]);
        assert_eq!(
            out,
            vec![ClientMsg::Join {
                room: room("random"),
                since: None
            }]
        );
        assert_eq!(c.current(), DEFAULT_ROOM_ID, "the room on screen stays");
    }
}
