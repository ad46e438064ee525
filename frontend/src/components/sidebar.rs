//! The sidebar: who is logged in, the rooms, a form to create one, who is online.
//!
//! Test ids: `sidebar` (class `open` when shown on a narrow screen), `current-user` (the own
//! display name, `title` = `@handle`, `data-user` = handle), `logout-button`, `room-list`,
//! `room-item` (a button per room: `data-room` = its name, `data-room-id` = its id,
//! `aria-current` on the open one), `room-unread`, `new-room-input`, `new-room-button`,
//! `new-room-error`, `online-list`, `online-user` (`data-user` = handle; shows the display name
//! when known, `title` = `@handle`).

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{DisplayName, RoomId, RoomName, Username};

use crate::client::Client;

/// One room in the list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomRow {
    /// Its id.
    pub id: RoomId,
    /// Its name as shown (`room <id>` while the room list has not told it).
    pub name: String,
    /// Unread messages by others.
    pub unread: u32,
    /// It is on screen.
    pub current: bool,
}

/// The sidebar, wired to the [`Client`] in context.
#[component]
pub fn Sidebar(
    /// Shown on a narrow screen (hidden behind the menu button otherwise).
    open: RwSignal<bool>,
    /// Called when the user logs out.
    on_logout: Callback<()>,
) -> impl IntoView {
    let client = expect_context::<Client>();
    let me = client.chat.with_untracked(|c| c.me().clone());
    let my_name = Memo::new(move |_| client.chat.with(|c| c.my_name().clone()));
    let rows = Memo::new(move |_| {
        // The listed rooms (sorted by name), then followed rooms the list does not hold.
        let mut ids: Vec<RoomId> = client.rooms.with(|r| r.iter().map(|i| i.id).collect());
        client.chat.with(|c| {
            let mut extra: Vec<RoomId> = c.room_ids().filter(|id| !ids.contains(id)).collect();
            extra.sort_by_key(|id| (c.room_label(*id).to_lowercase(), *id));
            ids.extend(extra);
            ids.into_iter()
                .map(|id| RoomRow {
                    id,
                    name: c.room_label(id),
                    unread: c.unread(id),
                    current: id == c.current(),
                })
                .collect::<Vec<_>>()
        })
    });
    let online = Memo::new(move |_| {
        client.chat.with(|c| {
            c.current_online()
                .into_iter()
                .map(|u| {
                    let name = c.display_name(&u);
                    (u, name)
                })
                .collect::<Vec<_>>()
        })
    });
    let current = Memo::new(move |_| client.chat.with(|c| c.room_label(c.current())));
    let on_open = Callback::new(move |id: RoomId| {
        client.open_room(id);
        open.set(false);
    });

    view! {
        <aside class="sidebar" class:open=move || open.get() data-testid="sidebar">
            <div class="me">
                <span>
                    "Signed in as "
                    <strong
                        data-testid="current-user"
                        data-user=me.to_string()
                        title=format!("@{me}")
                    >
                        {move || my_name.get().to_string()}
                    </strong>
                </span>
                <button
                    class="secondary small"
                    data-testid="logout-button"
                    on:click=move |_| on_logout.run(())
                >
                    "Log out"
                </button>
            </div>
            <h2>"Rooms"</h2>
            <RoomList rooms=rows on_open />
            <NewRoomForm />
            <h2>{move || format!("Online in #{}", current.get())}</h2>
            <OnlineList users=online me=me.clone() />
        </aside>
    }
}

/// The rooms, each a button that opens it, with its unread count.
#[component]
pub fn RoomList(
    /// The rooms to list.
    #[prop(into)]
    rooms: Signal<Vec<RoomRow>>,
    /// Called with the room the user picked.
    on_open: Callback<RoomId>,
) -> impl IntoView {
    view! {
        <ul class="rooms" data-testid="room-list">
            <For
                each=move || rooms.get()
                key=|r| r.clone()
                children=move |r| {
                    let id = r.id;
                    view! {
                        <li>
                            <button
                                class="room"
                                class:current=r.current
                                data-testid="room-item"
                                data-room=r.name.clone()
                                data-room-id=r.id.to_string()
                                aria-current=r.current.then_some("true")
                                on:click=move |_| on_open.run(id)
                            >
                                <span>{format!("#{}", r.name)}</span>
                                {(r.unread > 0)
                                    .then(|| {
                                        view! {
                                            <span class="unread" data-testid="room-unread">
                                                {r.unread.to_string()}
                                            </span>
                                        }
                                    })}
                            </button>
                        </li>
                    }
                }
            />
        </ul>
    }
}

/// A field and button that create a room (and open it). The name, in any script (`技术讨论`,
/// `Café ☕`), is checked with [`RoomName::parse`] as the user types; the server stores it
/// NFC-normalised.
#[component]
pub fn NewRoomForm() -> impl IntoView {
    let client = expect_context::<Client>();
    let name = RwSignal::new(String::new());
    let server_error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let rule_error = move || {
        name.with(|n| {
            if n.is_empty() {
                None
            } else {
                RoomName::parse(n.as_str()).err().map(|e| e.to_string())
            }
        })
    };
    let submit = move || {
        let Ok(room) = RoomName::parse(name.get_untracked()) else {
            return;
        };
        busy.set(true);
        server_error.set(None);
        spawn_local(async move {
            let result = client.create_room(room).await;
            busy.try_set(false);
            match result {
                Ok(_) => {
                    name.try_set(String::new());
                }
                Err(e) => {
                    server_error.try_set(Some(e));
                }
            }
        });
    };

    view! {
        <form
            class="new-room"
            on:submit=move |ev| {
                ev.prevent_default();
                submit();
            }
        >
            <input
                data-testid="new-room-input"
                placeholder="new-room"
                aria-label="New room name"
                autocapitalize="none"
                spellcheck="false"
                prop:value=move || name.get()
                on:input=move |ev| {
                    name.set(event_target_value(&ev));
                    server_error.set(None);
                }
            />
            <button
                type="submit"
                class="small"
                data-testid="new-room-button"
                disabled=move || busy.get() || rule_error().is_some() || name.with(String::is_empty)
            >
                "Create"
            </button>
            {move || {
                rule_error()
                    .or_else(|| server_error.get())
                    .map(|e| {
                        view! {
                            <p class="field-error" data-testid="new-room-error" role="alert">
                                {e}
                            </p>
                        }
                    })
            }}
        </form>
    }
}

/// Who is online in the room on screen.
#[component]
pub fn OnlineList(
    /// The users (sorted by handle), each with the name they are shown by.
    #[prop(into)]
    users: Signal<Vec<(Username, DisplayName)>>,
    /// The logged-in user (marked "you").
    me: Username,
) -> impl IntoView {
    view! {
        <ul class="online" data-testid="online-list">
            <For
                each=move || users.get()
                key=|u| u.clone()
                children=move |(u, name)| {
                    let is_me = u == me;
                    view! {
                        <li data-testid="online-user" data-user=u.to_string() title=format!("@{u}")>
                            <span class="dot" aria-hidden="true"></span>
                            {name.to_string()}
                            {is_me.then(|| view! { <span class="you">" (you)"</span> })}
                        </li>
                    }
                }
            />
        </ul>
    }
}
