//! The glue between the chat model, the connection task, the outbox and the views.
//!
//! [`Client`] is a bundle of cheap `Copy` handles (signals and a stored channel sender), given to
//! the views by context: they read its signals and call its methods for user actions. Every
//! change to the model goes through [`Client::change`], which also writes the outbox diff to
//! `localStorage` and forwards the frames the model wants sent to the connection task.

use std::sync::Arc;

use futures::channel::mpsc::{self, UnboundedSender};
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{
    ClientFrame, ClientId, ClientMsg, DisplayName, MeResponse, MessageText, Presence, RoomId,
    RoomInfo, RoomKind, RoomName, ServerMsg, Username,
};

use crate::chat::Chat;
use crate::components::{Stored, Var};
use crate::conn::{self, Command, ConnEvent, ConnState};
use crate::i18n::{fill, t};
use crate::outbox::{self, OutboxEntry};
use crate::timeline::{Act, Me, Outgoing};
use crate::{api, browser, cache};

/// How long to wait before resending after an `internal` refusal, or a `rate_limited` one that
/// says no time.
const RATE_LIMIT_RETRY_MS: u64 = 3_000;

/// How long after a change the offline cache is written.
const CACHE_DELAY_MS: u32 = 1_000;

/// The logged-in chat session as the views see it.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    /// The chat model.
    pub chat: RwSignal<Chat>,
    /// The connection badge state.
    pub conn: RwSignal<ConnState>,
    /// The connection task's inbox; `None` until [`Client::connect`] (and in component tests,
    /// which drive the model directly).
    cmds: Stored<Option<UnboundedSender<Command>>>,
    /// A resend after `rate_limited` is scheduled (so a burst of errors schedules one).
    retry_scheduled: Stored<bool>,
    /// A write of the offline cache is scheduled (so a burst of changes writes it once).
    cache_scheduled: Stored<bool>,
    /// The message the composer answers (its `seq`).
    pub reply: Var<Option<u64>>,
    /// The message being edited in place (its `seq`).
    pub editing: Var<Option<u64>>,
    /// The message to scroll to and highlight (a reply's original).
    pub jump: Var<Option<u64>>,
    /// Where each room's list was scrolled to when left (absent: at the bottom).
    pub scroll: Stored<Vec<(RoomId, i32)>>,
    /// The image viewer is open, on [`Client::viewed`].
    pub viewer_open: Var<bool>,
    /// The image the viewer shows.
    pub viewed: Stored<Option<Viewed>>,
    /// Small state of the session: the room a `typing` was last announced in and when, whether
    /// `away` was announced, a `read` waits to be sent, quotes asked for.
    misc: Stored<Misc>,
}

/// An image opened in the viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewed {
    /// The file's id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its dimensions (upright).
    pub width: u32,
    pub height: u32,
}

/// See [`Client::misc`].
#[derive(Debug, Default)]
struct Misc {
    typing: Option<(RoomId, i64)>,
    away: bool,
    /// The room whose newest message was seen, while its `read` waits for the throttle.
    read_pending: Option<RoomId>,
    quotes: Vec<(RoomId, u64)>,
}

impl Client {
    /// A client for `me` (shown as `display_name`) with `general` open and `outbox` restored as
    /// pending; not connected.
    pub fn new(me: Username, display_name: DisplayName, outbox: Vec<OutboxEntry>) -> Self {
        let kept = cache::load(me.as_str());
        let mut chat = Chat::new(Me::new(me, display_name), shared::DEFAULT_ROOM_ID);
        if let Some(k) = kept {
            chat.restore_kept(&k.rooms, k.current, k.kept);
        }
        chat.restore(outbox);
        Self {
            chat: RwSignal::new(chat),
            conn: RwSignal::new(ConnState::Connecting),
            cmds: Stored::new(None),
            retry_scheduled: Stored::new(false),
            cache_scheduled: Stored::new(false),
            reply: Var::new(None),
            editing: Var::new(None),
            jump: Var::new(None),
            scroll: Stored::new(Vec::new()),
            viewer_open: Var::new(false),
            viewed: Stored::new(None),
            misc: Stored::new(Misc::default()),
        }
    }

    /// Starts the connection task (once). `on_session_end` runs when the server ends the
    /// session (close code 4001, or a socket refused for lack of a valid session).
    pub fn connect(self, on_session_end: Callback<Option<String>>) {
        if self.cmds.try_with_value(Option::is_some).unwrap_or(true) {
            return;
        }
        let Some(url) = conn::page_ws_url() else {
            return;
        };
        let (tx, rx) = mpsc::unbounded();
        self.cmds.set_value(Some(tx));
        // Untracked: a new `req` changes nothing on screen.
        let next_req = move || self.chat.try_update_untracked(Chat::take_req).unwrap_or(0);
        spawn_local(conn::run(
            url,
            rx,
            move |ev| self.handle(ev, on_session_end),
            next_req,
        ));
    }

    /// Ends the connection task (logout, or leaving the chat screen).
    pub fn stop(self) {
        self.command(Command::Stop);
    }

    /// Skips the reconnect wait (the window's `online` event, the "Reconnect now" button).
    pub fn reconnect_now(self) {
        self.command(Command::ReconnectNow);
    }

    /// Reads `GET /api/rooms` into the model (which follows the rooms the user is a member of,
    /// and sends the previous release's outbox entries whose room it names), then the
    /// invitations.
    pub fn refresh_rooms(self) {
        spawn_local(async move {
            match api::rooms().await {
                Ok(list) => self.set_rooms(list),
                // Unreachable: the connection banner says so already (and the rooms kept
                // from last time are shown).
                Err(err) if err.status().is_none() => {}
                Err(err) => {
                    self.chat.try_update(|c| {
                        c.set_error(fill(
                            t().could_not_load_rooms,
                            &[("error", &err.to_string())],
                        ))
                    });
                }
            }
            if let Ok(invites) = api::invites().await {
                self.chat.try_update(|c| c.set_invites(invites));
            }
        });
    }

    /// Puts a room list in the model.
    pub fn set_rooms(self, list: Vec<RoomInfo>) {
        self.change(|c| c.set_room_list(&list));
    }

    /// Records a room the server told about (and follows it if the user is a member).
    pub fn add_room(self, info: &RoomInfo) {
        self.change(|c| c.add_room(info));
    }

    /// Creates a room (public or private) and opens it; returns it. The error text is for the
    /// new-room form.
    pub async fn create_room(self, name: RoomName, kind: RoomKind) -> Result<RoomInfo, String> {
        match api::create_room(name.as_str(), kind).await {
            Ok(info) => {
                self.add_room(&info);
                self.open_room(info.id);
                Ok(info)
            }
            Err(api::Failure::Http { status: 409, .. }) => {
                // It exists already (names are unique without regard to case): find it in a
                // fresh list and go there.
                let list = api::rooms().await.map_err(|e| e.to_string())?;
                let found = list.iter().find(|r| r.name.key() == name.key()).cloned();
                self.set_rooms(list);
                match found {
                    Some(info) => {
                        self.open_room(info.id);
                        Ok(info)
                    }
                    None => Err(fill(t().room_exists_hidden, &[("name", name.as_str())])),
                }
            }
            Err(err) => Err(err.to_string()),
        }
    }

    /// Puts a room on screen (joining it if new).
    pub fn open_room(self, id: RoomId) {
        self.flush_read();
        // An edit in place belongs to the room it was opened in.
        self.editing.set(None);
        self.change(|c| c.open(id));
    }

    /// Opens (or reopens) the direct conversation with these people and puts it on screen.
    pub async fn open_direct(
        self,
        people: Vec<(Username, DisplayName)>,
    ) -> Result<RoomInfo, String> {
        let handles = people.iter().map(|(u, _)| u.to_string()).collect();
        self.chat.try_update(|c| c.learn_people(people));
        let info = api::direct(handles).await.map_err(|e| e.to_string())?;
        self.add_room(&info);
        self.open_room(info.id);
        Ok(info)
    }

    /// Accepts an invitation: joins the room and opens it.
    pub fn accept_invite(self, room: RoomId) {
        self.open_room(room);
    }

    /// Declines an invitation.
    pub fn decline_invite(self, room: RoomId) {
        self.chat.try_update(|c| c.drop_invite(room));
        spawn_local(async move {
            if let Err(err) = api::decline(room).await {
                self.chat.try_update(|c| {
                    c.set_error(fill(t().could_not_decline, &[("error", &err.to_string())]))
                });
            }
        });
    }

    /// Hides a membership notice.
    pub fn dismiss_alert(self, n: u64) {
        self.chat.try_update(|c| c.dismiss_alert(n));
    }

    /// Sends a message to the room on screen: shown at once as pending, kept in the outbox until
    /// the server confirms it.
    pub fn send_text(self, text: MessageText) {
        let reply_to = self.reply.get_untracked();
        self.reply.set(None);
        self.typing(false);
        self.close_window_if_open();
        self.act(Act::Send { reply_to }, text.into_inner().into());
    }

    /// Sends a message with files (uploaded to the room on screen already) and perhaps text
    /// (empty, or checked with [`MessageText::parse`] by the caller), like [`Client::send_text`].
    pub fn send_files(self, text: String, files: Vec<shared::Attachment>) {
        let reply_to = self.reply.get_untracked();
        self.reply.set(None);
        self.typing(false);
        self.close_window_if_open();
        let mut o = Outgoing::act(
            browser::new_client_id(),
            text.into(),
            browser::now_ms(),
            Act::Send { reply_to },
        );
        o.files = files;
        self.change(|c| c.send_outgoing(o));
    }

    /// Sends a change to a message of the room on screen (or a message): shown at once, kept in
    /// the outbox until the server confirms it.
    pub fn act(self, act: Act, text: Arc<str>) {
        let client_id = browser::new_client_id();
        let now = browser::now_ms();
        self.change(|c| c.act(act, text, client_id, now));
    }

    /// Edits a message in place with new text.
    pub fn edit(self, target: u64, text: MessageText) {
        self.editing.set(None);
        self.act(Act::Edit { target }, text.into_inner().into());
    }

    /// Adds or takes back the user's reaction.
    pub fn react(self, target: u64, emoji: &str, on: bool) {
        let emoji = emoji.into();
        self.act(Act::React { target, emoji, on }, "".into());
    }

    /// The user is typing in the room on screen (`true`), or stopped / sent / cleared (`false`):
    /// announces it once, renews it every [`shared::TYPING_RENEW_MS`] while typing goes on.
    pub fn typing(self, on: bool) {
        let Some(room) = self.chat.try_with_untracked(Chat::current) else {
            return;
        };
        let now = browser::now_ms();
        let renew = i64::try_from(shared::TYPING_RENEW_MS).unwrap_or(3_000);
        let mut send = Vec::new();
        self.misc.update_value(|m| match (on, m.typing) {
            (true, Some((r, at))) if r == room && now - at < renew => {}
            (true, last) => {
                if let Some((r, _)) = last.filter(|(r, _)| *r != room) {
                    send.push(ClientMsg::Typing { room: r, on: false });
                }
                send.push(ClientMsg::Typing { room, on: true });
                m.typing = Some((room, now));
            }
            (false, Some((r, _))) => {
                send.push(ClientMsg::Typing { room: r, on: false });
                m.typing = None;
            }
            (false, None) => {}
        });
        for msg in send {
            self.command(Command::Send(ClientFrame { req: None, msg }));
        }
    }

    /// Announces the user away (idle, or the page hidden for a while) or back.
    pub fn set_away(self, away: bool) {
        let changed = self
            .misc
            .try_update_value(|m| std::mem::replace(&mut m.away, away) != away)
            .unwrap_or(false);
        if changed {
            self.send_presence(away);
        }
    }

    fn send_presence(self, away: bool) {
        let status = if away {
            Presence::Away
        } else {
            Presence::Online
        };
        let msg = ClientMsg::Presence { status };
        self.command(Command::Send(ClientFrame { req: None, msg }));
    }

    /// Records whether the page is visible. Hidden, a pending `read` goes out first.
    pub fn set_visible(self, visible: bool) {
        if !visible {
            self.flush_read();
            self.write_cache();
        }
        self.chat.try_update_untracked(|c| c.set_visible(visible));
        if visible {
            self.read_newest();
        }
    }

    /// Records whether the list of the room on screen shows its newest message (scrolled to the
    /// bottom); if so, the room is read up to there.
    pub fn set_at_bottom(self, at_bottom: bool) {
        self.chat
            .try_update_untracked(|c| c.set_at_bottom(at_bottom));
        if at_bottom {
            self.read_newest();
        }
    }

    /// The newest message of the room on screen is on screen: once the page is visible, the
    /// room is marked read up to there (at most a few times a second; a pending `read` is
    /// flushed when the room is left or the page hidden, see [`Client::flush_read`]).
    pub fn read_newest(self) {
        let Some((id, reading)) = self.chat.try_with_untracked(|c| (c.current(), c.reading()))
        else {
            return;
        };
        if !reading || browser::hidden() {
            return;
        }
        let Some(before) = self.misc.try_update_value(|m| m.read_pending.replace(id)) else {
            return;
        };
        match before {
            // A timer is running (it sends for `id` now); another room's read goes out at once.
            Some(r) if r != id => self.mark_seen(r),
            Some(_) => {}
            None => spawn_local(async move {
                gloo_timers::future::TimeoutFuture::new(300).await;
                self.flush_read();
            }),
        }
    }

    /// Sends the pending `read` now (leaving the room, hiding or leaving the page).
    pub fn flush_read(self) {
        if let Some(Some(id)) = self.misc.try_update_value(|m| m.read_pending.take()) {
            self.mark_seen(id);
        }
    }

    fn mark_seen(self, id: RoomId) {
        self.change(|c| {
            let seq = c.room(id).map_or(0, |r| r.timeline.delivered_high());
            c.mark_read(id, seq)
        });
    }

    /// "Mark as read" for one room (`None`: "mark all as read"), over HTTP (the room need not
    /// be followed). Counted as read at once; the server's `read` frames then say the counts.
    pub fn mark_read(self, id: Option<RoomId>) {
        self.chat.try_update(|c| c.clear_unread(id));
        spawn_local(async move {
            if let Err(e) = api::mark_read(id).await {
                self.fail_with(e);
            }
        });
    }

    fn fail_with(self, err: api::Failure) {
        self.chat.try_update(|c| c.set_error(err.to_string()));
    }

    /// Fetches (once) the message a reply answers, when it is not loaded, for its quote.
    pub fn fetch_quote(self, room: RoomId, seq: u64) {
        let first = self
            .misc
            .try_update_value(|m| {
                let first = !m.quotes.contains(&(room, seq));
                if first {
                    m.quotes.push((room, seq));
                }
                first
            })
            .unwrap_or(false);
        if first {
            spawn_local(async move {
                if let Ok(ev) = api::message(room, seq).await {
                    self.chat.try_update(|c| c.set_quote(ev));
                }
            });
        }
    }

    /// Opens the image viewer on an image.
    pub fn view_image(self, image: Viewed) {
        self.viewed.set_value(Some(image));
        self.viewer_open.set(true);
    }

    /// Loads the page before the oldest message of the room on screen (of its window, when one
    /// is open).
    pub fn load_older(self) {
        let asked = self.chat.try_update(Chat::window_request_older).flatten();
        if let Some((room, around, before)) = asked {
            self.window_fetch(room, around, before, false);
        } else if self.chat.try_with_untracked(|c| c.window().is_none()) == Some(true) {
            self.change(Chat::load_older);
        }
    }

    /// Loads the page after the newest message of the open window, if newer ones exist.
    pub fn load_newer(self) {
        if let Some(Some((room, around, after))) = self.chat.try_update(Chat::window_request_newer)
        {
            self.window_fetch(room, around, after, true);
        }
    }

    fn window_fetch(self, room: RoomId, around: u64, seq: u64, newer: bool) {
        spawn_local(async move {
            let page = api::messages_page(room, seq, newer, shared::HISTORY_PAGE)
                .await
                .ok();
            let closed = self
                .chat
                .try_update(|c| {
                    c.window_page(room, around, newer, page);
                    c.window().is_none()
                })
                .unwrap_or(false);
            if closed {
                // Read down to the newest: the live timeline, at its bottom.
                self.scroll
                    .try_update_value(|m| m.retain(|(r, _)| *r != room));
            }
        });
    }

    /// Shows the room on screen around message `seq`, far back in its history: a window of
    /// the pages before and after it, read over HTTP, instead of the live timeline (until
    /// [`Client::close_window`]). If they cannot be read, the live timeline comes back.
    pub fn open_window(self, seq: u64) {
        let Some(room) = self.chat.try_with_untracked(Chat::current) else {
            return;
        };
        self.chat.try_update(|c| c.open_window(seq));
        spawn_local(async move {
            let half = shared::HISTORY_PAGE / 2;
            let (older, newer) = futures::join!(
                api::messages_page(room, seq + 1, false, half),
                api::messages_page(room, seq, true, half)
            );
            self.chat.try_update(|c| match (older, newer) {
                (Ok(older), Ok(newer)) => c.window_loaded(room, seq, older, newer),
                (Err(e), _) | (_, Err(e)) => {
                    if c.window().is_some_and(|w| w.around == seq) {
                        c.close_window();
                        c.set_error(e.to_string());
                    }
                }
            });
        });
    }

    /// Back to the live timeline if a window is open (what follows happens there: a message
    /// sent shows where it goes, at the bottom; the last message of one's own is edited there).
    pub fn close_window_if_open(self) {
        if self.chat.try_with_untracked(|c| c.window().is_some()) == Some(true) {
            self.close_window();
        }
    }

    /// Leaves the window for the live timeline, at its newest messages.
    pub fn close_window(self) {
        if let Some(room) = self.chat.try_with_untracked(Chat::current) {
            self.scroll
                .try_update_value(|m| m.retain(|(r, _)| *r != room));
        }
        self.chat.try_update(Chat::close_window);
    }

    /// Puts a failed message back to pending with the same `client_id` and sends it (at once
    /// if its room is joined, else after the next join).
    pub fn retry(self, client_id: ClientId) {
        self.change(|c| c.retry(&client_id));
    }

    /// Asks again for the missing messages `from..=to` of the room on screen.
    pub fn retry_gap(self, from: u64, to: u64) {
        self.change(|c| c.retry_gap(from, to));
    }

    /// Drops a failed message.
    pub fn discard(self, client_id: ClientId) {
        self.change(|c| {
            c.discard(&client_id);
            Vec::new()
        });
    }

    /// Hides the error banner.
    pub fn clear_error(self) {
        self.chat.try_update(Chat::clear_error);
    }

    /// Applies one event from the connection task.
    pub fn handle(self, ev: ConnEvent, on_session_end: Callback<Option<String>>) {
        match ev {
            ConnEvent::State(state) => {
                self.conn.try_set(state);
            }
            // Nothing to do for a pong, nor for a frame type from a newer server.
            ConnEvent::Frame(ServerMsg::Pong { .. } | ServerMsg::Unknown) => {}
            ConnEvent::Frame(ServerMsg::Hello {
                user, display_name, ..
            }) => {
                let me = self.chat.try_with_untracked(|c| c.me().clone());
                if me.is_some_and(|me| !me.as_str().eq_ignore_ascii_case(user.as_str())) {
                    // The cookie now belongs to someone else (a login in another tab): this
                    // screen must not go on sending as that user.
                    self.stop();
                    on_session_end.run(Some(t().other_user_tab.into()));
                    return;
                }
                self.change(|c| {
                    c.set_my_name(display_name);
                    c.connected()
                });
                if self.misc.try_with_value(|m| m.away) == Some(true) {
                    self.send_presence(true);
                }
            }
            ConnEvent::Frame(ServerMsg::Typing {
                room,
                user,
                display_name,
                on,
            }) => {
                let now = browser::now_ms();
                self.chat
                    .try_update(|c| c.set_typing(room, user, display_name, on, now));
            }
            ConnEvent::Frame(msg) => {
                let wait = self
                    .chat
                    .try_with_untracked(|c| c.resend_after(&msg, RATE_LIMIT_RETRY_MS))
                    .flatten()
                    .map(|ms| u32::try_from(ms).unwrap_or(u32::MAX));
                self.change(|c| c.apply(msg));
                if let Some(wait) = wait {
                    self.schedule_resend(wait);
                }
                for note in self
                    .chat
                    .try_update_untracked(Chat::take_notes)
                    .unwrap_or_default()
                {
                    browser::notify(&note.title, &note.body);
                }
            }
            ConnEvent::Disconnected { reached_hello, .. } => {
                self.chat.try_update(Chat::disconnected);
                if !reached_hello {
                    // A socket refused before `hello` may mean the session expired: ask.
                    spawn_local(async move {
                        if let Ok(None) = api::me().await {
                            self.stop();
                            on_session_end.run(Some(t().session_ended.into()));
                        }
                    });
                }
            }
            ConnEvent::SessionEnded => {
                on_session_end.run(Some(t().session_ended.into()));
            }
        }
    }

    /// Runs a model change, persists the outbox difference, sends what the change asks for.
    pub fn change(self, f: impl FnOnce(&mut Chat) -> Vec<ClientFrame>) {
        let Some((me, out, added, removed)) = self.chat.try_update(|c| {
            let before = c.outbox();
            let out = f(c);
            let after = c.outbox();
            // Outboxes hold tens of entries: a scan is cheaper in code than a hash set.
            let has = |list: &[OutboxEntry], id: &ClientId| list.iter().any(|e| e.client_id == *id);
            let added: Vec<OutboxEntry> = after
                .iter()
                .filter(|e| !has(&before, &e.client_id))
                .cloned()
                .collect();
            let removed: Vec<ClientId> = before
                .iter()
                .filter(|e| !has(&after, &e.client_id))
                .map(|e| e.client_id.clone())
                .collect();
            (c.me().clone(), out, added, removed)
        }) else {
            return;
        };
        outbox::update(&me, &added, &removed);
        for frame in out {
            self.command(Command::Send(frame));
        }
        self.schedule_cache();
    }

    /// Writes the offline cache a moment from now (once for a burst of changes).
    fn schedule_cache(self) {
        if self.cache_scheduled.try_get_value().unwrap_or(true) {
            return;
        }
        self.cache_scheduled.try_set_value(true);
        spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(CACHE_DELAY_MS).await;
            if self.cache_scheduled.try_set_value(false).is_some() {
                return;
            }
            self.write_cache();
        });
    }

    /// Writes the offline cache now (see [`crate::cache`]).
    pub fn write_cache(self) {
        let Some(snapshot) = self.chat.try_with_untracked(|c| {
            let (rooms, current, kept) = c.kept(cache::PER_ROOM);
            cache::Snapshot {
                me: MeResponse {
                    username: c.me().clone(),
                    display_name: c.my_name().clone(),
                },
                rooms,
                current,
                kept,
            }
        }) else {
            return;
        };
        cache::save(snapshot);
    }

    /// Sends the pending messages (and refused joins) again after `wait_ms`, as the server
    /// asked; one timer at a time.
    fn schedule_resend(self, wait_ms: u32) {
        if self.retry_scheduled.try_get_value().unwrap_or(true) {
            return;
        }
        self.retry_scheduled.try_set_value(true);
        spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(wait_ms.clamp(100, 60_000)).await;
            if self.retry_scheduled.try_set_value(false).is_some() {
                // Disposed: the chat screen is gone.
                return;
            }
            self.change(Chat::after_rate_limit);
        });
    }

    /// Drops every unsent message of the previous release whose room was not found.
    pub fn discard_unresolved(self) {
        self.change(|c| {
            let ids: Vec<ClientId> = c.unresolved().iter().map(|e| e.client_id.clone()).collect();
            for id in &ids {
                c.discard(id);
            }
            Vec::new()
        });
    }

    fn command(self, cmd: Command) {
        // `try_`: this also runs from cleanup, when the handles may already be disposed.
        self.cmds.try_with_value(|tx| {
            if let Some(tx) = tx {
                // Fails only after the task ended (logout), when there is nothing left to do.
                let _ = tx.unbounded_send(cmd);
            }
        });
    }
}
