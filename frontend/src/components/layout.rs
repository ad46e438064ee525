//! The chat screen: [`ChatPage`] starts the session's machinery (connection task, room list,
//! `online` listener) and [`ChatLayout`] lays the screen out from the [`Client`] in context, so
//! tests can mount the layout with a client that has no connection.
//!
//! Test ids: `chat`, `sidebar-toggle` (menu button on narrow screens), `room-title`,
//! `room-topic`, `room-slow-mode`, `members-toggle` (shows the member panel, see
//! [`crate::components::MemberPanel`]), `chat-error` (banner) with `chat-error-close`,
//! `room-notice` (what happened to the user's membership: `data-kind` = `banned` | `kicked` |
//! `left` | `muted` | `unmuted`, `data-room-id`) with `room-notice-text` and `room-notice-close`, `conn-banner` (while
//! waiting to reconnect) with `reconnect-now`, `unresolved-outbox` (messages written with the
//! previous release for a room that was not found: `data-count`) with `unresolved-discard`,
//! `typing` ("alice is typing…"), `notify-enable` (asks for the permission to notify, shown
//! until it is answered), `mark-read` (the room on screen, while it has unread messages).
//!
//! The page title says the unread total and the room: `(3) #general — Chat`. The page's
//! visibility and the user's activity are told to the [`Client`]: hidden for a minute or idle
//! for five, the user is away.

use std::time::Duration;

use leptos::ev;
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{ClientId, DisplayName, MessageText, Removal, Username};

use crate::browser;
use crate::chat::{Alert, AlertKind};
use crate::client::Client;
use crate::components::{
    Composer, ConnBadge, MemberPanel, MessageList, Sidebar, click, dyn_opt, dyn_text, dyn_view,
    memo_fn, text_line,
};
use crate::conn::ConnState;
use crate::{api, outbox};

/// The screen's words.
mod text {
    pub const PEOPLE: &str = "People";
    pub const DISMISS: &str = "Dismiss";
    pub const RECONNECT_NOW: &str = "Reconnect now";
    pub fn slow_mode(secs: u32) -> String {
        format!("Slow mode: one message per {secs} s")
    }
    pub fn slow_wait(secs: u64) -> String {
        format!("Slow mode: {secs} s before your next message is sent")
    }
    pub fn muted(room: &str, time: &str) -> String {
        format!("You are muted in {room} until {time}.")
    }
    pub fn disconnected(in_secs: Option<u32>, offline: bool) -> String {
        let base = if offline {
            "You are offline."
        } else {
            "Disconnected from the server."
        };
        match in_secs {
            Some(s) => format!("{base} Trying again in {s} s."),
            None => format!("{base} Reconnecting…"),
        }
    }
    pub fn removed(reason: shared::Removal, room: &str, by: Option<&str>) -> String {
        use shared::Removal;
        let by = by.map(|b| format!(" by {b}")).unwrap_or_default();
        match reason {
            Removal::Banned => format!("You were banned from {room}{by}"),
            Removal::Kicked => format!("You were removed from {room}{by}"),
            Removal::Left => format!("You left {room}"),
            Removal::Unknown => format!("You are no longer a member of {room}{by}"),
        }
    }
    pub fn muted_notice(room: &str, time: &str) -> String {
        format!("You are muted in {room} until {time}")
    }
    pub fn unmuted(room: &str) -> String {
        format!("You may post in {room} again.")
    }
    /// A notice with the reason given, if any.
    pub fn with_reason(line: String, reason: Option<&str>) -> String {
        match reason {
            Some(r) if !r.is_empty() => format!("{line}: {r}"),
            _ => format!("{line}."),
        }
    }
}

/// The words and kind of a membership notice.
fn alert_text(a: &Alert, now: i64) -> (&'static str, String) {
    match &a.kind {
        AlertKind::Removed {
            reason,
            by,
            message,
        } => {
            let kind = match reason {
                Removal::Banned => "banned",
                Removal::Kicked => "kicked",
                Removal::Left | Removal::Unknown => "left",
            };
            let line = text::removed(*reason, &a.room_title, by.as_ref().map(Username::as_str));
            (kind, text::with_reason(line, message.as_deref()))
        }
        AlertKind::Muted { until, reason } => {
            let time = browser::local_time(*until, now).short;
            let line = text::muted_notice(&a.room_title, &time);
            ("muted", text::with_reason(line, reason.as_deref()))
        }
        AlertKind::Unmuted => ("unmuted", text::unmuted(&a.room_title)),
    }
}

/// The chat screen for a logged-in user, connected to the server.
#[component]
pub fn ChatPage(
    /// Who is logged in.
    user: Username,
    /// Their display name.
    display_name: DisplayName,
    /// Called when the session ends (logout: `None`; expiry: a notice for the login screen).
    on_session_end: Callback<Option<String>>,
) -> impl IntoView {
    let client = Client::new(user.clone(), display_name, outbox::load(&user));
    provide_context(client);
    client.connect(on_session_end);
    client.refresh_rooms();
    // The browser says the network is back: retry now instead of at the end of the backoff.
    let online = window_event_listener(ev::online, move |_| client.reconnect_now());
    // Away after a minute hidden or five idle; back at once.
    let last_input = StoredValue::new(browser::now_ms());
    let hidden_since = StoredValue::new(browser::hidden().then(browser::now_ms));
    let active = move || {
        last_input.set_value(browser::now_ms());
        client.set_away(false);
    };
    let keys = window_event_listener(ev::keydown, move |_| active());
    let pointer = window_event_listener(ev::pointerdown, move |_| active());
    // Leaving the page: a `read` waiting for its throttle goes out now.
    let pagehide = window_event_listener(ev::pagehide, move |_| client.flush_read());
    let visibility = window_event_listener(ev::visibilitychange, move |_| {
        let hidden = browser::hidden();
        hidden_since.set_value(hidden.then(browser::now_ms));
        client.set_visible(!hidden);
        if !hidden {
            client.set_away(false);
        }
    });
    client.set_visible(!browser::hidden());
    let idle = set_interval_with_handle(
        move || {
            let now = browser::now_ms();
            let hidden_long = hidden_since
                .try_get_value()
                .flatten()
                .is_some_and(|t| now - t >= 60_000);
            let idle_long = last_input
                .try_get_value()
                .is_some_and(|t| now - t >= 300_000);
            if hidden_long || idle_long {
                client.set_away(true);
            }
        },
        Duration::from_secs(5),
    )
    .ok();
    on_cleanup(move || {
        online.remove();
        keys.remove();
        pointer.remove();
        visibility.remove();
        pagehide.remove();
        if let Some(idle) = idle {
            idle.clear();
        }
        client.stop();
    });
    let on_logout = Callback::new(move |()| {
        client.stop();
        spawn_local(async move {
            if let Err(err) = api::logout().await {
                leptos::logging::warn!("logout failed: {err}");
            }
            on_session_end.run(None);
        });
    });
    view! { <ChatLayout on_logout /> }
}

/// Sidebar, header (room, connection badge), error banner, message list and composer.
#[component]
pub fn ChatLayout(
    /// Called when the user logs out.
    on_logout: Callback<()>,
) -> impl IntoView {
    let client = expect_context::<Client>();
    let me = client.chat.with_untracked(|c| c.me().clone());
    let sidebar_open = RwSignal::new(false);
    let members_open = RwSignal::new(false);
    let current = Memo::new(memo_fn(move |_| client.chat.with(|c| c.current())));
    let label = Memo::new(memo_fn(move |_| {
        client.chat.with(|c| c.room_label(c.current()))
    }));
    let title = Memo::new(memo_fn(move |_| {
        client.chat.with(|c| c.room_title(c.current()))
    }));
    let topic = Memo::new(memo_fn(move |_| {
        client.chat.with(|c| {
            c.info(c.current())
                .map(|i| (i.topic.clone(), i.slow_mode_secs))
                .unwrap_or_default()
        })
    }));
    // A clock for what expires (mutes), good to a few seconds.
    let now = RwSignal::new(browser::now_ms());
    // Each tick also writes the page title: unread total, room (a second late at most; cheaper
    // than an effect of its own).
    let tick = move || {
        now.try_set(browser::now_ms());
        if let Some((n, room)) = client
            .chat
            .try_with_untracked(|c| (c.total_unread(), c.room_title(c.current())))
        {
            let n = if n > 0 {
                format!("({}) ", count_text(n))
            } else {
                String::new()
            };
            document().set_title(&format!("{n}{room} — Chat"));
        }
    };
    tick();
    if let Ok(tick) = set_interval_with_handle(tick, Duration::from_secs(1)) {
        on_cleanup(move || tick.clear());
    }
    let typing = Memo::new(memo_fn(move |_| {
        let now = now.get();
        let names = client.chat.with(|c| c.typists(now));
        match &names[..] {
            [] => None,
            [a] => Some(format!("{a} is typing…")),
            [a, b] => Some(format!("{a} and {b} are typing…")),
            _ => Some("Several people are typing…".to_owned()),
        }
    }));
    // Offered until the browser's permission is asked for.
    let notify = RwSignal::new(browser::notify_permission() == "default");
    let unread_here = Memo::new(memo_fn(move |_| {
        client.chat.with(|c| c.unread(c.current()) > 0)
    }));
    let muted = Memo::new(memo_fn(move |_| {
        let now = now.get();
        client.chat.with(|c| {
            c.muted_until(c.current())
                .filter(|&until| until > now)
                .map(|until| {
                    text::muted(
                        &c.room_title(c.current()),
                        &browser::local_time(until, now).short,
                    )
                })
        })
    }));
    let slow_hint = Memo::new(memo_fn(move |_| {
        client.chat.with(|c| {
            c.slow_wait(c.current())
                .map(|ms| text::slow_wait(ms.div_ceil(1000)))
        })
    }));
    let alerts = Memo::new(memo_fn(move |_| client.chat.with(|c| c.alerts().to_vec())));
    let waiting = Memo::new(memo_fn(move |_| match client.conn.get() {
        ConnState::Reconnecting { in_secs } => Some((Some(in_secs), false)),
        ConnState::Offline { in_secs } => Some((Some(in_secs), true)),
        _ => None,
    }));
    let unresolved = Memo::new(memo_fn(move |_| {
        client.chat.with(|c| {
            let mut rooms: Vec<String> = c
                .unresolved()
                .iter()
                .filter_map(|e| match &e.room {
                    crate::outbox::OutboxRoom::Name(n) => Some(format!("#{n}")),
                    crate::outbox::OutboxRoom::Id(_) => None,
                })
                .collect();
            rooms.sort();
            rooms.dedup();
            (c.unresolved().len(), rooms.join(", "))
        })
    }));
    let entries = Memo::new(memo_fn(move |_| client.chat.with(|c| c.current_entries())));
    let history = Memo::new(memo_fn(move |_| client.chat.with(|c| c.current_history())));
    let error = Memo::new(memo_fn(move |_| {
        client.chat.with(|c| c.error().map(str::to_owned))
    }));
    let on_send = Callback::new(move |text: MessageText| client.send_text(text));
    let on_load_older = Callback::new(move |()| client.load_older());
    let on_discard = Callback::new(move |cid: ClientId| client.discard(cid));
    let on_retry = Callback::new(move |cid: ClientId| client.retry(cid));
    let on_retry_gap = Callback::new(move |(from, to): (u64, u64)| client.retry_gap(from, to));

    view! {
        <div class="chat" data-testid="chat">
            <Sidebar open=sidebar_open on_logout />
            <div
                class="scrim"
                class:open=move || sidebar_open.get()
                on:click=click(move |_| sidebar_open.set(false))
            ></div>
            <section class="main">
                <header class="topbar">
                    <button
                        class="menu"
                        data-testid="sidebar-toggle"
                        aria-label="Rooms and people"
                        aria-expanded=move || sidebar_open.get().to_string()
                        on:click=click(move |_| sidebar_open.update(|o| *o = !*o))
                    >
                        "☰"
                    </button>
                    <div class="title">
                        <h1 data-testid="room-title" data-room-id=move || current.get().to_string()>
                            {dyn_text(move || title.get())}
                        </h1>
                        {dyn_opt(move || {
                            let (topic, _) = topic.get();
                            (!topic.is_empty())
                                .then(|| {
                                    view! {
                                        <p class="topic" data-testid="room-topic">
                                            {topic}
                                        </p>
                                    }.into_any()
                                })
                        })}
                    </div>
                    {dyn_opt(move || {
                        let (_, slow) = topic.get();
                        (slow > 0)
                            .then(|| {
                                view! {
                                    <span class="tag" data-testid="room-slow-mode">
                                        {text::slow_mode(slow)}
                                    </span>
                                }.into_any()
                            })
                    })}
                    {dyn_opt(move || {
                        notify.get()
                            .then(|| {
                                view! {
                                    <button
                                        class="secondary small"
                                        data-testid="notify-enable"
                                        on:click=click(move |_| {
                                            browser::ask_notify(move || {
                                                notify.try_set(browser::notify_permission() == "default");
                                            })
                                        })
                                    >
                                        "Enable notifications"
                                    </button>
                                }.into_any()
                            })
                    })}
                    {dyn_opt(move || {
                        unread_here
                            .get()
                            .then(|| {
                                view! {
                                    <button
                                        class="secondary small"
                                        data-testid="mark-read"
                                        on:click=click(move |_| {
                                            client.mark_read(Some(current.get_untracked()))
                                        })
                                    >
                                        "Mark as read"
                                    </button>
                                }.into_any()
                            })
                    })}
                    <button
                        class="secondary small"
                        data-testid="members-toggle"
                        aria-expanded=move || members_open.get().to_string()
                        on:click=click(move |_| members_open.update(|o| *o = !*o))
                    >
                        {text::PEOPLE}
                    </button>
                    <ConnBadge state=client.conn />
                </header>
                {dyn_opt(move || {
                    waiting
                        .get()
                        .map(|(in_secs, offline)| {
                            view! {
                                <div class="banner" data-testid="conn-banner" role="status">
                                    <span>{text::disconnected(in_secs, offline)}</span>
                                    <button
                                        class="small"
                                        data-testid="reconnect-now"
                                        on:click=click(move |_| client.reconnect_now())
                                    >
                                        {text::RECONNECT_NOW}
                                    </button>
                                </div>
                            }.into_any()
                        })
                })}
                {dyn_view(move || {
                    alerts.get().into_iter().map(|a| {
                        let (kind, line) = alert_text(&a, browser::now_ms());
                        let n = a.n;
                        view! {
                            <div
                                class="banner notice-banner"
                                data-testid="room-notice"
                                data-kind=kind
                                data-room-id=a.room.to_string()
                                role="alert"
                            >
                                <span data-testid="room-notice-text">{line}</span>
                                <button
                                    class="link"
                                    data-testid="room-notice-close"
                                    aria-label=text::DISMISS
                                    on:click=click(move |_| client.dismiss_alert(n))
                                >
                                    "×"
                                </button>
                            </div>
                        }
                    })
                    .collect_view()
                    .into_any()
                })}
                {dyn_opt(move || {
                    error
                        .get()
                        .map(|e| {
                            view! {
                                <div class="banner" data-testid="chat-error" role="alert">
                                    <span>{e}</span>
                                    <button
                                        class="link"
                                        data-testid="chat-error-close"
                                        aria-label="Dismiss"
                                        on:click=click(move |_| client.clear_error())
                                    >
                                        "×"
                                    </button>
                                </div>
                            }.into_any()
                        })
                })}
                {dyn_opt(move || {
                    let (n, rooms) = unresolved.get();
                    (n > 0)
                        .then(|| {
                            let plural = if n == 1 { "message" } else { "messages" };
                            view! {
                                <div
                                    class="banner"
                                    data-testid="unresolved-outbox"
                                    data-count=n.to_string()
                                    role="status"
                                >
                                    <span>
                                        {format!(
                                            "{n} unsent {plural} for {rooms}: that room was not found. Kept in this browser until it is.",
                                        )}
                                    </span>
                                    <button
                                        class="link"
                                        data-testid="unresolved-discard"
                                        on:click=click(move |_| client.discard_unresolved())
                                    >
                                        "Discard"
                                    </button>
                                </div>
                            }.into_any()
                        })
                })}
                // One list per room: switching rooms starts with fresh scroll state.
                {dyn_view(move || {
                    current.track();
                    let room = label.get();
                    view! {
                        <MessageList
                            room
                            entries
                            history
                            on_load_older
                            on_discard
                            on_retry
                            on_retry_gap
                        />
                    }.into_any()
                })}
                <div class="typing-slot">
                    {text_line("typing", "typing", "status", Signal::derive(move || typing.get()))}
                </div>
                <Composer
                    on_send
                    room=label
                    room_id=current
                    drafts_for=me
                    blocked=muted
                    hint=slow_hint
                />
            </section>
            {dyn_opt(move || {
                members_open
                    .get()
                    .then(|| {
                        let room = current.get();
                        view! { <MemberPanel room /> }.into_any()
                    })
            })}
        </div>
    }
}

/// An unread count as badges and the title show it (`999+` past the server's cap).
pub fn count_text(n: u32) -> String {
    if n >= shared::UNREAD_CAP {
        format!("{}+", shared::UNREAD_CAP - 1)
    } else {
        n.to_string()
    }
}
