//! The glue between the chat model, the connection task, the outbox and the views.
//!
//! [`Client`] is a bundle of cheap `Copy` handles (signals and a stored channel sender), given to
//! the views by context: they read its signals and call its methods for user actions. Every
//! change to the model goes through [`Client::change`], which also writes the outbox diff to
//! `localStorage` and forwards the frames the model wants sent to the connection task.

use std::collections::HashSet;

use futures::channel::mpsc::{self, UnboundedSender};
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{
    ClientId, ClientMsg, ErrorCode, MessageText, RoomInfo, RoomName, ServerMsg, Username,
};

use crate::chat::Chat;
use crate::conn::{self, Command, ConnEvent, ConnState};
use crate::outbox::{self, OutboxEntry};
use crate::{api, browser};

/// How long to wait before resending after an `internal` refusal, or a `rate_limited` one that
/// says no time.
const RATE_LIMIT_RETRY_MS: u32 = 3_000;

/// The logged-in chat session as the views see it.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    /// The chat model.
    pub chat: RwSignal<Chat>,
    /// The connection badge state.
    pub conn: RwSignal<ConnState>,
    /// The rooms that exist (from `GET /api/rooms`), sorted by name.
    pub rooms: RwSignal<Vec<RoomInfo>>,
    /// The connection task's inbox; `None` until [`Client::connect`] (and in component tests,
    /// which drive the model directly).
    cmds: StoredValue<Option<UnboundedSender<Command>>>,
    /// A resend after `rate_limited` is scheduled (so a burst of errors schedules one).
    retry_scheduled: StoredValue<bool>,
}

impl Client {
    /// A client for `me` with `general` open and `outbox` restored as pending; not connected.
    pub fn new(me: Username, outbox: Vec<OutboxEntry>) -> Self {
        let general =
            RoomName::parse(shared::DEFAULT_ROOM).expect("the default room name is valid");
        let mut chat = Chat::new(me, general);
        chat.restore(outbox);
        Self {
            chat: RwSignal::new(chat),
            conn: RwSignal::new(ConnState::Connecting),
            rooms: RwSignal::new(Vec::new()),
            cmds: StoredValue::new(None),
            retry_scheduled: StoredValue::new(false),
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
        spawn_local(conn::run(url, rx, move |ev| {
            self.handle(ev, on_session_end)
        }));
    }

    /// Ends the connection task (logout, or leaving the chat screen).
    pub fn stop(self) {
        self.command(Command::Stop);
    }

    /// Skips the reconnect wait (the window's `online` event).
    pub fn reconnect_now(self) {
        self.command(Command::ReconnectNow);
    }

    /// Reads `GET /api/rooms` into [`Client::rooms`].
    pub fn refresh_rooms(self) {
        spawn_local(async move {
            match api::rooms().await {
                Ok(mut list) => {
                    list.sort_by(|a, b| a.name.cmp(&b.name));
                    self.rooms.try_set(list);
                }
                Err(err) => {
                    self.chat
                        .try_update(|c| c.set_error(format!("Could not load the rooms: {err}")));
                }
            }
        });
    }

    /// Creates a room and opens it. The error text is for the new-room form.
    pub async fn create_room(self, name: RoomName) -> Result<(), String> {
        match api::create_room(name.as_str()).await {
            Ok(info) => {
                self.rooms.try_update(|list| {
                    if !list.iter().any(|r| r.name == info.name) {
                        list.push(info);
                        list.sort_by(|a, b| a.name.cmp(&b.name));
                    }
                });
                self.open_room(name);
                Ok(())
            }
            Err(api::Failure::Http { status: 409, .. }) => {
                // It exists already: just go there.
                self.open_room(name);
                Ok(())
            }
            Err(err) => Err(err.to_string()),
        }
    }

    /// Puts a room on screen (joining it if new).
    pub fn open_room(self, name: RoomName) {
        self.change(|c| c.open(name));
    }

    /// Sends a message to the room on screen: shown at once as pending, kept in the outbox until
    /// the server confirms it.
    pub fn send_text(self, text: MessageText) {
        let client_id = browser::new_client_id();
        let now = browser::now_ms();
        self.change(|c| c.compose(text, client_id, now));
    }

    /// Loads the page before the oldest message of the room on screen.
    pub fn load_older(self) {
        self.change(Chat::load_older);
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
            ConnEvent::Frame(ServerMsg::Pong { .. }) => {}
            ConnEvent::Frame(ServerMsg::Hello { user, .. }) => {
                let me = self.chat.try_with_untracked(|c| c.me().clone());
                if me.is_some_and(|me| !me.as_str().eq_ignore_ascii_case(user.as_str())) {
                    // The cookie now belongs to someone else (a login in another tab): this
                    // screen must not go on sending as that user.
                    self.stop();
                    on_session_end.run(Some(
                        "You logged in as another user in another tab. Log in again.".into(),
                    ));
                    return;
                }
                self.change(Chat::connected);
            }
            ConnEvent::Frame(msg) => {
                let wait = match &msg {
                    ServerMsg::Error {
                        code: ErrorCode::RateLimited,
                        retry_after_ms,
                        ..
                    } => Some(retry_after_ms.map_or(RATE_LIMIT_RETRY_MS, |ms| {
                        u32::try_from(ms).unwrap_or(u32::MAX)
                    })),
                    ServerMsg::Error {
                        code: ErrorCode::Internal,
                        client_id: Some(_),
                        ..
                    } => Some(RATE_LIMIT_RETRY_MS),
                    _ => None,
                };
                self.change(|c| c.apply(msg));
                if let Some(wait) = wait {
                    self.schedule_resend(wait);
                }
            }
            ConnEvent::Disconnected { reached_hello, .. } => {
                self.chat.try_update(Chat::disconnected);
                if !reached_hello {
                    // A socket refused before `hello` may mean the session expired: ask.
                    spawn_local(async move {
                        if let Ok(None) = api::me().await {
                            self.stop();
                            on_session_end
                                .run(Some("Your session has ended. Log in again.".into()));
                        }
                    });
                }
            }
            ConnEvent::SessionEnded => {
                on_session_end.run(Some("Your session has ended. Log in again.".into()));
            }
        }
    }

    /// Runs a model change, persists the outbox difference, sends what the change asks for.
    pub fn change(self, f: impl FnOnce(&mut Chat) -> Vec<ClientMsg>) {
        let Some((me, out, added, removed)) = self.chat.try_update(|c| {
            let before = c.outbox();
            let out = f(c);
            let after = c.outbox();
            let before_ids: HashSet<&ClientId> = before.iter().map(|e| &e.client_id).collect();
            let after_ids: HashSet<&ClientId> = after.iter().map(|e| &e.client_id).collect();
            let added: Vec<OutboxEntry> = after
                .iter()
                .filter(|e| !before_ids.contains(&e.client_id))
                .cloned()
                .collect();
            let removed: Vec<ClientId> = before
                .iter()
                .filter(|e| !after_ids.contains(&e.client_id))
                .map(|e| e.client_id.clone())
                .collect();
            (c.me().clone(), out, added, removed)
        }) else {
            return;
        };
        outbox::update(&me, &added, &removed);
        for msg in out {
            self.command(Command::Send(msg));
        }
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
