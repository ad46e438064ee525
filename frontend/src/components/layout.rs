//! The chat screen: [`ChatPage`] starts the session's machinery (connection task, room list,
//! `online` listener) and [`ChatLayout`] lays the screen out from the [`Client`] in context, so
//! tests can mount the layout with a client that has no connection.
//!
//! Test ids: `chat`, `sidebar-toggle` (menu button on narrow screens), `room-title`,
//! `chat-error` (banner) with `chat-error-close`, `unresolved-outbox` (messages written with the
//! previous release for a room that was not found: `data-count`) with `unresolved-discard`.

use leptos::ev;
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{ClientId, DisplayName, MessageText, Username};

use crate::client::Client;
use crate::components::{Composer, ConnBadge, MessageList, Sidebar};
use crate::{api, outbox};

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
    on_cleanup(move || {
        online.remove();
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
    let sidebar_open = RwSignal::new(false);
    let current = Memo::new(move |_| client.chat.with(|c| c.current()));
    let label = Memo::new(move |_| client.chat.with(|c| c.room_label(c.current())));
    let unresolved = Memo::new(move |_| {
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
    });
    let entries = Memo::new(move |_| client.chat.with(|c| c.current_entries()));
    let history = Memo::new(move |_| client.chat.with(|c| c.current_history()));
    let error = Memo::new(move |_| client.chat.with(|c| c.error().map(str::to_owned)));
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
                on:click=move |_| sidebar_open.set(false)
            ></div>
            <section class="main">
                <header class="topbar">
                    <button
                        class="menu"
                        data-testid="sidebar-toggle"
                        aria-label="Rooms and people"
                        aria-expanded=move || sidebar_open.get().to_string()
                        on:click=move |_| sidebar_open.update(|o| *o = !*o)
                    >
                        "☰"
                    </button>
                    <h1 data-testid="room-title" data-room-id=move || current.get().to_string()>
                        {move || format!("#{}", label.get())}
                    </h1>
                    <ConnBadge state=client.conn />
                </header>
                {move || {
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
                                        on:click=move |_| client.clear_error()
                                    >
                                        "×"
                                    </button>
                                </div>
                            }
                        })
                }}
                {move || {
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
                                        on:click=move |_| client.discard_unresolved()
                                    >
                                        "Discard"
                                    </button>
                                </div>
                            }
                        })
                }}
                // One list per room: switching rooms starts with fresh scroll state.
                {move || {
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
                    }
                }}
                <Composer on_send room=label />
            </section>
        </div>
    }
}
