//! The sidebar: who is logged in, the rooms (joined first), direct conversations, invitations,
//! a form to create a room, who is online.
//!
//! Test ids: `sidebar` (class `open` when shown on a narrow screen), `current-user` (the own
//! display name, `title` = `@handle`, `data-user` = handle), `logout-button`, `room-list` (public
//! and private rooms), `dm-list` (direct conversations), `room-item` (a button per room in
//! either list: `data-room` = its name as shown, `data-room-id` = its id, `data-kind` =
//! `public` | `private` | `direct`, `data-joined` = `true` | `false`, `aria-current` on the open
//! one), `room-unread` (unread messages), `room-mentions` (of which mention the user),
//! `room-mark-read` (beside a room with unread messages), `mark-all-read`, `new-room-input`, `new-room-kind` (select: `public` | `private`),
//! `new-room-button`, `new-room-error`, `new-dm-button` (opens the people picker, see
//! [`crate::components::PeoplePicker`], inside `new-dm`), `invite-list`, `invite-item`
//! (`data-room-id`) with `invite-accept` and `invite-decline`, `online-list`, `online-user`
//! (`data-user` = handle; shows the display name when known, `title` = `@handle`).

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{DisplayName, InviteInfo, RoomId, RoomKind, RoomName, Username};

use crate::chat::Chat;
use crate::client::Client;
use crate::components::layout::count_text;
use crate::components::{
    PeoplePicker, click, dyn_fn, dyn_opt, dyn_text, dyn_view, memo_fn, on_event, submit_handler,
    text_line,
};

/// The sidebar's words.
mod text {
    pub const SIGNED_IN_AS: &str = "Signed in as ";
    pub const LOG_OUT: &str = "Log out";
    pub const ROOMS: &str = "Rooms";
    pub const DIRECT: &str = "Direct messages";
    pub const NEW_DM: &str = "New message";
    pub const NEW_DM_CLOSE: &str = "Close";
    pub const MESSAGE: &str = "Message";
    pub const INVITES: &str = "Invites";
    pub const ACCEPT: &str = "Join";
    pub const DECLINE: &str = "Decline";
    pub const NO_DIRECT: &str = "No conversations yet.";
    pub const PUBLIC: &str = "Public";
    pub const PRIVATE: &str = "Private";
    pub const CREATE: &str = "Create";
    pub const PRIVATE_MARK: &str = "private";
    pub fn invited_by(name: &str) -> String {
        format!("invited by {name}")
    }
    pub fn online_in(room: &str) -> String {
        format!("Online in {room}")
    }
}

/// One room in the list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomRow {
    /// Its id.
    pub id: RoomId,
    /// Its name as shown (`room <id>` while the room list has not told it).
    pub name: String,
    /// Unread messages by others.
    pub unread: u32,
    /// Of those, how many mention the user.
    pub mentions: u32,
    /// It is on screen.
    pub current: bool,
    /// The user is a member.
    pub joined: bool,
    /// Public, private or direct.
    pub kind: RoomKind,
}

impl RoomRow {
    fn kind_name(&self) -> &'static str {
        match self.kind {
            RoomKind::Private => "private",
            RoomKind::Direct => "direct",
            RoomKind::Public | RoomKind::Unknown => "public",
        }
    }
}

/// The rows of the sidebar's two lists: rooms (joined first, then by name) and direct
/// conversations (by name). Followed rooms the list does not hold yet count as joined rooms.
pub fn room_rows(c: &Chat) -> (Vec<RoomRow>, Vec<RoomRow>) {
    let row = |id: RoomId| {
        let info = c.info(id);
        RoomRow {
            id,
            name: c.room_label(id),
            unread: c.unread(id),
            mentions: c.mentions(id),
            current: id == c.current(),
            joined: info.is_none_or(|i| i.role.is_some()),
            kind: info.map_or(RoomKind::Public, |i| i.kind),
        }
    };
    let mut rooms: Vec<RoomRow> = c.infos().map(|i| row(i.id)).collect();
    for id in c.room_ids() {
        if c.info(id).is_none() && !c.room(id).is_some_and(|r| r.removed) {
            rooms.push(row(id));
        }
    }
    let (mut direct, mut rooms): (Vec<RoomRow>, Vec<RoomRow>) =
        rooms.into_iter().partition(|r| r.kind == RoomKind::Direct);
    // One key for both lists (one sort in the bundle): direct conversations all count as
    // joined, so they go by name alone.
    let key = |r: &RoomRow| {
        (
            r.kind != RoomKind::Direct && !r.joined,
            r.name.to_lowercase(),
            r.id,
        )
    };
    rooms.sort_by_key(key);
    direct.sort_by_key(key);
    (rooms, direct)
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
    let my_name = Memo::new(memo_fn(move |_| client.chat.with(|c| c.my_name().clone())));
    let rows = Memo::new(memo_fn(move |_| client.chat.with(room_rows)));
    let room_list = Memo::new(memo_fn(move |_| rows.get().0));
    let dm_list = Memo::new(memo_fn(move |_| rows.get().1));
    let invites = Memo::new(memo_fn(move |_| client.chat.with(|c| c.invites().to_vec())));
    let picking = RwSignal::new(false);
    let dm_error = RwSignal::new(None::<String>);
    let on_message = Callback::new(move |people: Vec<(Username, DisplayName)>| {
        dm_error.set(None);
        spawn_local(async move {
            match client.open_direct(people).await {
                Ok(_) => {
                    picking.try_set(false);
                    open.try_set(false);
                }
                Err(e) => {
                    dm_error.try_set(Some(e));
                }
            }
        });
    });
    let online = Memo::new(memo_fn(move |_| {
        client.chat.with(|c| {
            c.current_online()
                .into_iter()
                .map(|u| {
                    let name = c.display_name(&u);
                    (u, name)
                })
                .collect::<Vec<_>>()
        })
    }));
    let current = Memo::new(memo_fn(move |_| {
        client.chat.with(|c| c.room_title(c.current()))
    }));
    let on_open = Callback::new(move |id: RoomId| {
        client.open_room(id);
        open.set(false);
    });

    view! {
        <aside class="sidebar" class:open=move || open.get() data-testid="sidebar">
            <div class="me">
                <span>
                    {text::SIGNED_IN_AS}
                    <strong
                        data-testid="current-user"
                        data-user=me.to_string()
                        title=format!("@{me}")
                    >
                        {dyn_text(move || my_name.get().to_string())}
                    </strong>
                </span>
                <button
                    class="secondary small"
                    data-testid="logout-button"
                    on:click=click(move |_| on_logout.run(()))
                >
                    {text::LOG_OUT}
                </button>
            </div>
            {dyn_opt(move || {
                let list = invites.get();
                (!list.is_empty())
                    .then(|| {
                        view! {
                            <h2>{text::INVITES}</h2>
                            <InviteList invites=list />
                        }.into_any()
                    })
            })}
            <div class="section-head">
                <h2>{text::ROOMS}</h2>
                <button
                    class="secondary small"
                    data-testid="mark-all-read"
                    on:click=click(move |_| client.mark_read(None))
                >
                    "Mark all as read"
                </button>
            </div>
            <RoomList rooms=room_list on_open />
            <NewRoomForm />
            <div class="section-head">
                <h2>{text::DIRECT}</h2>
                <button
                    class="secondary small"
                    data-testid="new-dm-button"
                    aria-expanded=move || picking.get().to_string()
                    on:click=click(move |_| picking.update(|p| *p = !*p))
                >
                    {dyn_fn(move || if picking.get() { text::NEW_DM_CLOSE } else { text::NEW_DM })}
                </button>
            </div>
            {dyn_opt(move || {
                picking
                    .get()
                    .then(|| {
                        view! {
                            <div class="picker-box" data-testid="new-dm">
                                <PeoplePicker
                                    max=shared::DIRECT_MAX_MEMBERS - 1
                                    action=text::MESSAGE
                                    on_submit=on_message
                                    error=dm_error
                                />
                            </div>
                        }.into_any()
                    })
            })}
            {dyn_opt(move || {
                dm_list
                    .with(Vec::is_empty)
                    .then(|| view! { <p class="empty">{text::NO_DIRECT}</p> }.into_any())
            })}
            <RoomList rooms=dm_list on_open testid="dm-list" />
            <h2>{dyn_text(move || text::online_in(&current.get()))}</h2>
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
    /// The list's test id (`room-list` unless told).
    #[prop(optional)]
    testid: Option<&'static str>,
) -> impl IntoView {
    view! {
        <ul class="rooms" data-testid=testid.unwrap_or("room-list")>
            {dyn_view(move || {
                rooms.get().into_iter().map(|r| {
                    let id = r.id;
                    let shown = if r.kind == RoomKind::Direct {
                        r.name.clone()
                    } else {
                        format!("#{}", r.name)
                    };
                    view! {
                        <li>
                            <button
                                class="room"
                                class:current=r.current
                                class:not-joined=!r.joined
                                data-testid="room-item"
                                data-room=r.name.clone()
                                data-room-id=r.id.to_string()
                                data-kind=r.kind_name()
                                data-joined=r.joined.to_string()
                                aria-current=r.current.then_some("true")
                                on:click=click(move |_| on_open.run(id))
                            >
                                <span class="room-name">{shown}</span>
                                {(r.kind == RoomKind::Private)
                                    .then(|| {
                                        view! { <span class="tag">{text::PRIVATE_MARK}</span> }
                                    })}
                                {(r.mentions > 0)
                                    .then(|| {
                                        view! {
                                            <span class="unread mentions" data-testid="room-mentions">
                                                {format!("@{}", count_text(r.mentions))}
                                            </span>
                                        }
                                    })}
                                {(r.unread > 0)
                                    .then(|| {
                                        view! {
                                            <span class="unread" data-testid="room-unread">
                                                {count_text(r.unread)}
                                            </span>
                                        }
                                    })}
                            </button>
                            {(r.unread > 0 && !r.current)
                                .then(|| {
                                    let client = expect_context::<Client>();
                                    view! {
                                        <button
                                            class="link small"
                                            data-testid="room-mark-read"
                                            title="Mark as read"
                                            aria-label="Mark as read"
                                            on:click=click(move |_| client.mark_read(Some(id)))
                                        >
                                            "✓"
                                        </button>
                                    }
                                })}
                        </li>
                    }
                })
                .collect_view()
                .into_any()
            })}
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
    let kind = RwSignal::new(RoomKind::Public);
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
            let result = client.create_room(room, kind.get_untracked()).await;
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
            on:submit=submit_handler(move |ev| {
                ev.prevent_default();
                submit();
            })
        >
            <input
                data-testid="new-room-input"
                placeholder="new-room"
                aria-label="New room name"
                autocapitalize="none"
                spellcheck="false"
                prop:value=move || name.get()
                on:input=on_event(move |ev| {
                    name.set(event_target_value(&ev));
                    server_error.set(None);
                })
            />
            <select
                data-testid="new-room-kind"
                aria-label="Who may join"
                on:change=on_event(move |ev| {
                    kind.set(
                        if event_target_value(&ev) == "private" {
                            RoomKind::Private
                        } else {
                            RoomKind::Public
                        },
                    );
                })
            >
                <option value="public" selected=true>
                    {text::PUBLIC}
                </option>
                <option value="private">{text::PRIVATE}</option>
            </select>
            <button
                type="submit"
                class="small"
                data-testid="new-room-button"
                disabled=move || busy.get() || rule_error().is_some() || name.with(String::is_empty)
            >
                {text::CREATE}
            </button>
            {text_line("field-error", "new-room-error", "alert", Signal::derive(move || rule_error().or_else(|| server_error.get())))}
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
            {dyn_view(move || {
                users.get().into_iter().map(|(u, name)| {
                    let is_me = u == me;
                    view! {
                        <li data-testid="online-user" data-user=u.to_string() title=format!("@{u}")>
                            <span class="dot" aria-hidden="true"></span>
                            {name.to_string()}
                            {is_me.then(|| view! { <span class="you">" (you)"</span> })}
                        </li>
                    }
                })
                .collect_view()
                .into_any()
            })}
        </ul>
    }
}

/// Invitations: join (opens the room) or decline.
#[component]
pub fn InviteList(
    /// The invitations.
    invites: Vec<InviteInfo>,
) -> impl IntoView {
    let client = expect_context::<Client>();
    view! {
        <ul class="invites" data-testid="invite-list">
            {invites
                .into_iter()
                .map(|i| {
                    let id = i.room.id;
                    view! {
                        <li data-testid="invite-item" data-room-id=id.to_string()>
                            <span class="room-name">{format!("#{}", i.room.name)}</span>
                            <span class="by">{text::invited_by(i.by_name.as_str())}</span>
                            <span class="actions">
                                <button
                                    class="small"
                                    data-testid="invite-accept"
                                    on:click=click(move |_| client.accept_invite(id))
                                >
                                    {text::ACCEPT}
                                </button>
                                <button
                                    class="secondary small"
                                    data-testid="invite-decline"
                                    on:click=click(move |_| client.decline_invite(id))
                                >
                                    {text::DECLINE}
                                </button>
                            </span>
                        </li>
                    }
                })
                .collect_view()}
        </ul>
    }
}
