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
//! `crate::components::people`, inside `new-dm`), `invite-list`, `invite-item`
//! (`data-room-id`) with `invite-accept` and `invite-decline`, `online-list`, `online-user`
//! (`data-user` = handle; shows the display name when known, `title` = `@handle`).

//!
//! The sidebar is plain DOM (see [`crate::components::dom`]), the people picker too: one
//! delegated handler per event kind on the sidebar, and one effect per part that changes.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{DisplayName, InviteInfo, RoomId, RoomKind, RoomName, Username};
use wasm_bindgen::JsCast;

use crate::chat::{Chat, sort_by_key};
use crate::client::Client;
use crate::components::Var;
use crate::components::dom::{
    Slot, attrs, button, el, el_with, flag, new_el, on, set_value, target, tested, text, value_of,
};
use crate::components::layout::count_text;
use crate::components::people::people_picker;
use crate::components::switcher::open_and_focus;
use crate::components::{computed, effect};
use crate::i18n::t;

/// The sidebar's words.
mod text {
    use crate::i18n::{fill, t};

    pub fn invited_by(name: &str) -> String {
        fill(t().invited_by, &[("name", name)])
    }
    pub fn online_in(room: &str) -> String {
        fill(t().online_in, &[("room", room)])
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
            u8::from(r.kind != RoomKind::Direct && !r.joined),
            r.name.to_lowercase(),
            r.id.0,
        )
    };
    sort_by_key(&mut rooms, key);
    sort_by_key(&mut direct, key);
    (rooms, direct)
}

/// The sidebar's state, shared by its handlers and effects (every field is a `Copy` handle).
#[derive(Clone, Copy)]
struct Bar {
    client: Client,
    open: Var<bool>,
    on_logout: Callback<()>,
    picking: Var<bool>,
    /// The new room's name as typed, its kind, the server's refusal, a request under way.
    name: Var<String>,
    kind: Var<RoomKind>,
    server_error: Var<Option<String>>,
    busy: Var<bool>,
}

impl Bar {
    /// What is wrong with the room name typed (nothing while it is empty).
    fn rule_error(self) -> Option<String> {
        self.name.with(|n| {
            if n.is_empty() {
                None
            } else {
                RoomName::parse(n.as_str()).err().map(|e| e.to_string())
            }
        })
    }
}

/// The sidebar, wired to the [`Client`] in context: its element (plain DOM, with its
/// handlers).
pub(crate) fn sidebar(open: Var<bool>, on_logout: Callback<()>) -> web_sys::Element {
    let client = expect_context::<Client>();
    let b = Bar {
        client,
        open,
        on_logout,
        picking: Var::new(false),
        name: Var::new(String::new()),
        kind: Var::new(RoomKind::Public),
        server_error: Var::new(None),
        busy: Var::new(false),
    };
    let aside = new_el("nav", "sidebar");
    attrs(
        &aside,
        &[
            ("data-testid", "sidebar"),
            ("aria-label", t().rooms_and_people),
        ],
    );
    on(&aside, "click", move |ev| on_click(b, &ev));
    on(&aside, "submit", move |ev| {
        if target(&ev, "form").is_some_and(|f| f.class_name() == "new-room") {
            ev.prevent_default();
            submit(b);
        }
    });
    on(&aside, "input", move |ev| on_input(b, &ev));
    // Escape closes the "new message" people picker (before it would close the drawer).
    on(&aside, "keydown", move |ev| {
        if crate::components::dom::key_of(&ev) == "Escape" && b.picking.get_untracked() {
            ev.prevent_default();
            ev.stop_propagation();
            b.picking.set(false);
            crate::components::switcher::focus_soon("[data-testid=new-dm-button]");
        }
    });
    on(&aside, "change", move |ev| on_input(b, &ev));
    build(aside.clone(), b);
    aside
}

/// A section heading with a button beside it.
fn section_head(
    aside: &web_sys::Element,
    title: &str,
    testid: &str,
    label: &str,
) -> web_sys::Element {
    let d = el(aside, "div", "section-head");
    text(&el(&d, "h2", ""), title);
    button(&d, "secondary small", testid, label)
}

/// Builds the sidebar's parts in `aside` as it is created (the parts are there as soon as the
/// element is), each kept up to date by its own effect.
fn build(aside: web_sys::Element, b: Bar) {
    let aside = &aside;
    let client = b.client;
    let open = b.open;
    effect({
        let aside = aside.clone();
        move || {
            aside.set_class_name(if open.get() {
                "sidebar open"
            } else {
                "sidebar"
            })
        }
    });
    let me = client.chat.with_untracked(|c| c.me().clone());
    let my_name = computed(move || client.chat.with(|c| c.my_name().clone()));
    let rows = computed(move || client.chat.with(room_rows));
    let room_list = computed(move || rows.get().0);
    let dm_list = computed(move || rows.get().1);
    let invites = computed(move || client.chat.with(|c| c.invites().to_vec()));
    let online = computed(move || {
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
    let current = computed(move || client.chat.with(|c| c.room_title(c.current())));

    let who = el(aside, "div", "me");
    let span = el(&who, "span", "");
    text(&span, t().signed_in_as);
    let strong = el_with(&span, "strong", "", "current-user");
    attrs(
        &strong,
        &[("data-user", me.as_str()), ("title", &format!("@{me}"))],
    );
    effect(move || strong.set_text_content(Some(my_name.get().as_str())));
    button(&who, "secondary small", "logout-button", t().log_out);

    let invite_head = Slot::new(aside);
    let invite_list = Slot::new(aside);
    effect(move || {
        let list = invites.get();
        if list.is_empty() {
            invite_head.set(None);
            invite_list.set(None);
        } else {
            let h = new_el("h2", "");
            text(&h, t().invites);
            invite_head.set(Some(h));
            invite_list.set(Some(invite_ul(list)));
        }
    });

    section_head(aside, t().rooms, "mark-all-read", t().mark_all_read);
    let rooms_ul = el_with(aside, "ul", "rooms", "room-list");
    effect(move || fill_rooms(&rooms_ul, &room_list.get()));
    new_room_form(b, aside);

    let toggle = section_head(aside, t().direct, "new-dm-button", t().new_dm);
    let picking = b.picking;
    effect(move || {
        let p = picking.get();
        attrs(
            &toggle,
            &[("aria-expanded", if p { "true" } else { "false" })],
        );
        toggle.set_text_content(Some(if p { t().close } else { t().new_dm }));
    });
    let picker = Slot::new(aside);
    let dm_error = Var::new(None::<String>);
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
    // The picker, built while open (its effects end with it).
    effect(move || {
        let shown = picking.get().then(|| {
            let d = new_el("div", "picker-box");
            attrs(&d, &[("data-testid", "new-dm")]);
            let max = shared::DIRECT_MAX_MEMBERS - 1;
            let _ = d.append_child(&untrack(|| {
                people_picker(max, t().message, on_message, dm_error)
            }));
            d
        });
        picker.set(shown);
    });
    let empty = Slot::new(aside);
    let dm_ul = el_with(aside, "ul", "rooms", "dm-list");
    effect(move || {
        let list = dm_list.get();
        empty.text_line("empty", "", "", list.is_empty().then_some(t().no_direct));
        fill_rooms(&dm_ul, &list);
    });
    let h2 = el(aside, "h2", "");
    effect(move || h2.set_text_content(Some(&text::online_in(&current.get()))));
    let online_ul = el_with(aside, "ul", "online", "online-list");
    effect(move || {
        online_ul.set_text_content(None);
        for (u, name) in online.get() {
            let li = el_with(&online_ul, "li", "", "online-user");
            attrs(
                &li,
                &[("data-user", u.as_str()), ("title", &format!("@{u}"))],
            );
            attrs(&el(&li, "span", "dot"), &[("aria-hidden", "true")]);
            text(&li, name.as_str());
            if u == me {
                text(&el(&li, "span", "you"), t().you);
            }
        }
    });
}

/// Replaces the rows of a room list: each room a button that opens it, with its unread count.
fn fill_rooms(ul: &web_sys::Element, rows: &[RoomRow]) {
    ul.set_text_content(None);
    for r in rows {
        let li = el(ul, "li", "");
        let mut class = String::from("room");
        if r.current {
            class.push_str(" current");
        }
        if !r.joined {
            class.push_str(" not-joined");
        }
        let btn = el_with(&li, "button", &class, "room-item");
        attrs(
            &btn,
            &[
                ("data-room", &r.name),
                ("data-room-id", &r.id.to_string()),
                ("data-kind", r.kind_name()),
                ("data-joined", if r.joined { "true" } else { "false" }),
            ],
        );
        if r.current {
            attrs(&btn, &[("aria-current", "true")]);
        }
        let shown = if r.kind == RoomKind::Direct {
            r.name.clone()
        } else {
            format!("#{}", r.name)
        };
        text(&el(&btn, "span", "room-name"), &shown);
        if r.kind == RoomKind::Private {
            text(&el(&btn, "span", "tag"), t().private_mark);
        }
        if r.mentions > 0 {
            let s = el_with(&btn, "span", "unread mentions", "room-mentions");
            text(&s, &format!("@{}", count_text(r.mentions)));
        }
        if r.unread > 0 {
            text(
                &el_with(&btn, "span", "unread", "room-unread"),
                &count_text(r.unread),
            );
        }
        if r.unread > 0 && !r.current {
            let m = button(&li, "link small", "room-mark-read", "✓");
            attrs(
                &m,
                &[("title", t().mark_read), ("aria-label", t().mark_read)],
            );
        }
    }
}

/// A field and button that create a room (and open it). The name, in any script (`技术讨论`,
/// `Café ☕`), is checked with [`RoomName::parse`] as the user types; the server stores it
/// NFC-normalised.
fn new_room_form(b: Bar, aside: &web_sys::Element) {
    let f = el(aside, "form", "new-room");
    let input = el_with(&f, "input", "", "new-room-input");
    attrs(
        &input,
        &[
            ("placeholder", t().new_room_placeholder),
            ("aria-label", t().new_room_name),
            ("autocapitalize", "none"),
            ("spellcheck", "false"),
        ],
    );
    let name = b.name;
    effect(move || {
        let n = name.get();
        if value_of(&input) != n {
            set_value(&input, &n);
        }
    });
    let select = el_with(&f, "select", "", "new-room-kind");
    attrs(&select, &[("aria-label", t().who_may_join)]);
    let public = el(&select, "option", "");
    attrs(&public, &[("value", "public"), ("selected", "")]);
    text(&public, t().public);
    let private = el(&select, "option", "");
    attrs(&private, &[("value", "private")]);
    text(&private, t().private);
    let create = el_with(&f, "button", "small", "new-room-button");
    attrs(&create, &[("type", "submit")]);
    text(&create, t().create);
    effect(move || {
        flag(
            &create,
            "disabled",
            b.busy.get() || b.rule_error().is_some() || name.with(String::is_empty),
        );
    });
    let error = Slot::new(&f);
    effect(move || {
        let e = b.rule_error().or_else(|| b.server_error.get());
        error.text_line("field-error", "new-room-error", "alert", e.as_deref());
    });
}

/// Creates the room typed (if its name is good).
fn submit(b: Bar) {
    let Ok(room) = RoomName::parse(b.name.get_untracked()) else {
        return;
    };
    b.busy.set(true);
    b.server_error.set(None);
    spawn_local(async move {
        let result = b.client.create_room(room, b.kind.get_untracked()).await;
        b.busy.try_set(false);
        match result {
            Ok(_) => {
                b.name.try_set(String::new());
                // The new room is on screen: ready to write in it (and the drawer closes).
                b.open.try_set(false);
                crate::components::switcher::focus_soon("[data-testid=composer]");
            }
            Err(e) => {
                b.server_error.try_set(Some(e));
            }
        }
    });
}

/// Typing in the new room's name, or choosing its kind.
fn on_input(b: Bar, ev: &web_sys::Event) {
    let Some((field, id)) = tested(ev) else {
        return;
    };
    match id.as_str() {
        "new-room-input" => {
            b.name.set(value_of(&field));
            b.server_error.set(None);
        }
        "new-room-kind" => b.kind.set(if value_of(&field) == "private" {
            RoomKind::Private
        } else {
            RoomKind::Public
        }),
        _ => {}
    }
}

/// The room id in a row (`data-room-id` of its own or of the room button in it).
fn row_room(el: &web_sys::Element) -> Option<RoomId> {
    let li = el.closest("li").ok()??;
    let id = match li.get_attribute("data-room-id") {
        Some(id) => id,
        None => li
            .query_selector("[data-room-id]")
            .ok()??
            .get_attribute("data-room-id")?,
    };
    id.parse().ok().map(RoomId)
}

/// The sidebar's buttons, by test id.
fn on_click(b: Bar, ev: &web_sys::Event) {
    let Some(btn) = target(ev, "button[data-testid]") else {
        return;
    };
    let client = b.client;
    let room = || row_room(&btn);
    match btn
        .get_attribute("data-testid")
        .unwrap_or_default()
        .as_str()
    {
        "logout-button" => b.on_logout.run(()),
        "mark-all-read" => client.mark_read(None),
        "new-dm-button" => b.picking.update(|p| *p = !*p),
        "room-item" => {
            if let Some(id) = room() {
                // Opened from the keyboard (a click with no pointer): the focus goes on to the
                // room's message box.
                let keyboard = ev
                    .dyn_ref::<web_sys::MouseEvent>()
                    .is_some_and(|m| m.detail() == 0);
                if keyboard {
                    open_and_focus(client, id);
                } else {
                    client.open_room(id);
                }
                b.open.set(false);
            }
        }
        "room-mark-read" => {
            if let Some(id) = room() {
                client.mark_read(Some(id));
            }
        }
        "invite-accept" => {
            if let Some(id) = room() {
                client.accept_invite(id);
            }
        }
        "invite-decline" => {
            if let Some(id) = room() {
                client.decline_invite(id);
            }
        }
        _ => {}
    }
}

/// Invitations: join (opens the room) or decline.
fn invite_ul(invites: Vec<InviteInfo>) -> web_sys::Element {
    let ul = new_el("ul", "invites");
    attrs(&ul, &[("data-testid", "invite-list")]);
    for i in invites {
        let li = el_with(&ul, "li", "", "invite-item");
        attrs(&li, &[("data-room-id", &i.room.id.to_string())]);
        text(&el(&li, "span", "room-name"), &format!("#{}", i.room.name));
        text(
            &el(&li, "span", "by"),
            &text::invited_by(i.by_name.as_str()),
        );
        let actions = el(&li, "span", "actions");
        button(&actions, "small", "invite-accept", t().join);
        button(&actions, "secondary small", "invite-decline", t().decline);
    }
    ul
}
