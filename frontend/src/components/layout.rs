//! The chat screen: [`chat_page`] starts the session's machinery (connection task, room list,
//! `online` listener) and [`ChatLayout`] lays the screen out from the [`Client`] in context, so
//! tests can mount the layout with a client that has no connection. It is plain DOM (see
//! [`crate::components::dom`]): one effect per part that changes, [`Slot`]s for the parts that
//! come and go.
//!
//! Test ids: `chat`, `sidebar-toggle` (menu button on narrow screens), `room-title`,
//! `room-topic`, `room-slow-mode`, `members-toggle` (shows the member panel, see
//! `crate::components::members`), `chat-error` (banner) with `chat-error-close`,
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

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{ClientId, DisplayName, MessageText, Removal, Username};
use wasm_bindgen::JsCast;

use crate::browser;
use crate::chat::{Alert, AlertKind, sort_by_key};
use crate::client::Client;
use crate::components::Stored;
use crate::components::Var;
use crate::components::badge::conn_badge;
use crate::components::composer::{ComposerParts, composer};
use crate::components::dom::{Slot, attrs, button, el, el_with, flag, line, new_el, on, text};
use crate::components::members::member_panel;
use crate::components::messages::{ListProps, message_list};
use crate::components::search::search_dialog;
use crate::components::settings::settings_dialog;
use crate::components::sidebar::sidebar;
use crate::components::switcher::{all_rows, focus_soon, open_and_focus, step, switcher};
use crate::components::{computed, effect};
use crate::conn::ConnState;
use crate::i18n::t;
use crate::{api, outbox};

/// The screen's words.
mod text {
    use crate::i18n::{fill, t};

    pub fn slow_mode(secs: u32) -> String {
        fill(t().slow_mode, &[("secs", &secs.to_string())])
    }
    pub fn slow_wait(secs: u64) -> String {
        fill(t().slow_wait, &[("secs", &secs.to_string())])
    }
    pub fn muted(room: &str, time: &str) -> String {
        fill(t().you_are_muted, &[("room", room), ("time", time)])
    }
    pub fn disconnected(offline: bool) -> &'static str {
        if offline {
            t().you_are_offline
        } else {
            t().disconnected
        }
    }
    pub fn countdown(in_secs: Option<u32>) -> String {
        match in_secs {
            Some(s) => fill(t().trying_again_in, &[("secs", &s.to_string())]),
            None => t().reconnecting.to_owned(),
        }
    }
    pub fn removed(reason: shared::Removal, room: &str, by: Option<&str>) -> String {
        use shared::Removal;
        let t = t();
        let by = by
            .map(|b| fill(t.by_whom, &[("name", b)]))
            .unwrap_or_default();
        let line = match reason {
            Removal::Banned => t.banned_from,
            Removal::Kicked => t.removed_from,
            Removal::Left => t.left_room,
            Removal::Unknown => t.no_longer_member,
        };
        let line = fill(line, &[("room", room)]);
        if matches!(reason, Removal::Left) {
            line
        } else {
            line + &by
        }
    }
    pub fn muted_notice(room: &str, time: &str) -> String {
        fill(t().muted_notice, &[("room", room), ("time", time)])
    }
    pub fn unmuted(room: &str) -> String {
        fill(t().unmuted, &[("room", room)])
    }
    /// A notice with the reason given, if any.
    pub fn with_reason(line: String, reason: Option<&str>) -> String {
        match reason {
            Some(r) if !r.is_empty() => fill(t().with_reason, &[("line", &line), ("reason", r)]),
            _ => fill(t().full_stop, &[("line", &line)]),
        }
    }
    pub fn typing(names: &[shared::DisplayName]) -> Option<String> {
        let t = t();
        match names {
            [] => None,
            [a] => Some(fill(t.is_typing, &[("name", a.as_str())])),
            [a, b] => Some(fill(t.two_typing, &[("a", a.as_str()), ("b", b.as_str())])),
            _ => Some(t.several_typing.to_owned()),
        }
    }
    pub fn unresolved(n: usize, rooms: &str) -> String {
        let template = if n == 1 {
            t().unresolved_one
        } else {
            t().unresolved_many
        };
        fill(template, &[("n", &n.to_string()), ("rooms", rooms)])
    }
    pub fn announce_one(author: &str, text: &str) -> String {
        fill(t().announce_one, &[("name", author), ("text", text)])
    }
    pub fn announce_many(n: usize) -> String {
        fill(t().announce_many, &[("n", &n.to_string())])
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

/// The chat screen for a logged-in user, connected to the server: its element (plain DOM),
/// with the session's machinery running under the current owner until it is cleaned up.
pub(crate) fn chat_page(
    user: Username,
    display_name: DisplayName,
    on_session_end: Callback<Option<String>>,
) -> web_sys::Element {
    let client = Client::new(user.clone(), display_name, outbox::load(&user));
    provide_context(client);
    client.connect(on_session_end);
    client.refresh_rooms();
    let w: web_sys::EventTarget = window().into();
    // The browser says the network is back: retry now instead of at the end of the backoff.
    on(&w, "online", move |_| client.reconnect_now());
    // Away after a minute hidden or five idle; back at once.
    let last_input = Stored::new(browser::now_ms());
    let hidden_since = Stored::new(browser::hidden().then(browser::now_ms));
    let active = move || {
        last_input.set_value(browser::now_ms());
        client.set_away(false);
    };
    on(&w, "keydown", move |_| active());
    on(&w, "pointerdown", move |_| active());
    // Leaving the page: a `read` waiting for its throttle goes out now.
    on(&w, "pagehide", move |_| client.flush_read());
    on(&w, "visibilitychange", move |_| {
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
    let root = new_el("div", "");
    chat_layout(root.clone(), on_logout);
    root
}

/// Sidebar, header (room, connection badge), error banner, message list and composer.
#[component]
pub fn ChatLayout(
    /// Called when the user logs out.
    on_logout: Callback<()>,
) -> impl IntoView {
    view! { <div use:chat_layout=on_logout></div> }
}

/// A banner: a line of text and a small button, for the [`Client`]'s notices.
fn banner(
    testid: &str,
    role: &str,
    line: &str,
    close: (&str, &str, &str),
    act: impl Fn() + 'static,
) -> web_sys::Element {
    let d = new_el("div", "banner");
    attrs(&d, &[("data-testid", testid), ("role", role)]);
    text(&el(&d, "span", ""), line);
    let (class, id, label) = close;
    let b = button(&d, class, id, label);
    on(&b, "click", move |_| act());
    d
}

/// Makes `root` the chat screen (plain DOM), from the [`Client`] in context: each part kept up
/// to date by its own effect, the parts that come and go in [`Slot`]s.
fn chat_layout(root: web_sys::Element, on_logout: Callback<()>) {
    root.set_class_name("chat");
    attrs(&root, &[("data-testid", "chat")]);
    let client = expect_context::<Client>();
    let me = client.chat.with_untracked(|c| c.me().clone());
    let sidebar_open = Var::new(false);
    let members_open = Var::new(false);
    let current = computed(move || client.chat.with(|c| c.current()));
    let label = computed(move || client.chat.with(|c| c.room_label(c.current())));
    let title = computed(move || client.chat.with(|c| c.room_title(c.current())));
    let topic = computed(move || {
        client.chat.with(|c| {
            c.info(c.current())
                .map(|i| (i.topic.clone(), i.slow_mode_secs))
                .unwrap_or_default()
        })
    });
    // A clock for what expires (mutes), good to a few seconds.
    let now = Var::new(browser::now_ms());
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
            document().set_title(&format!("{n}{room} — {}", t().app_name));
        }
    };
    tick();
    if let Ok(tick) = set_interval_with_handle(tick, Duration::from_secs(1)) {
        on_cleanup(move || tick.clear());
    }
    let typing = computed(move || {
        let now = now.get();
        let names = client.chat.with(|c| c.typists(now));
        text::typing(&names)
    });
    // Offered until the browser's permission is asked for.
    let notify = Var::new(browser::notify_permission() == "default");
    let unread_here = computed(move || client.chat.with(|c| c.unread(c.current()) > 0));
    let muted = computed(move || {
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
    });
    let slow_hint = computed(move || {
        client.chat.with(|c| {
            c.slow_wait(c.current())
                .map(|ms| text::slow_wait(ms.div_ceil(1000)))
        })
    });
    let alerts = computed(move || client.chat.with(|c| c.alerts().to_vec()));
    let waiting = computed(move || match client.conn.get() {
        ConnState::Reconnecting { in_secs } => Some((Some(in_secs), false)),
        ConnState::Offline { in_secs } => Some((Some(in_secs), true)),
        _ => None,
    });
    let unresolved = computed(move || {
        client.chat.with(|c| {
            let mut rooms: Vec<String> = c
                .unresolved()
                .iter()
                .filter_map(|e| match &e.room {
                    crate::outbox::OutboxRoom::Name(n) => Some(format!("#{n}")),
                    crate::outbox::OutboxRoom::Id(_) => None,
                })
                .collect();
            sort_by_key(&mut rooms, |r| (0, r.clone(), 0));
            rooms.dedup();
            (c.unresolved().len(), rooms.join(", "))
        })
    });
    let entries = computed(move || client.chat.with(|c| c.current_entries()));
    let history = computed(move || client.chat.with(|c| c.current_history()));
    let error = computed(move || client.chat.with(|c| c.error().map(str::to_owned)));
    let on_send = Callback::new(move |text: MessageText| client.send_text(text));
    let on_load_older = Callback::new(move |()| client.load_older());
    let on_load_newer = Callback::new(move |()| client.load_newer());
    let on_latest = Callback::new(move |()| {
        client.close_window();
        // The button goes with the window: the focus to the list it gave way to.
        focus_soon("[data-testid=message-list]");
    });
    // The message a window of the room on screen is open around (0: none): the list is built
    // again when one opens or closes.
    let window_at = computed(move || client.chat.with(|c| c.window().map_or(0, |w| w.around)));
    let on_discard = Callback::new(move |cid: ClientId| client.discard(cid));
    let on_retry = Callback::new(move |cid: ClientId| client.retry(cid));
    let on_retry_gap = Callback::new(move |(from, to): (u64, u64)| client.retry_gap(from, to));

    let switcher_open = Var::new(false);
    let settings_open = Var::new(false);
    let search_open = Var::new(false);
    // First in the Tab order: past the sidebar, to the messages.
    let skip = el_with(&root, "a", "skip-link", "skip-link");
    attrs(&skip, &[("href", "#messages")]);
    text(&skip, t().skip_to_messages);
    on(&skip, "click", move |ev| {
        ev.prevent_default();
        focus_soon("#messages");
    });
    let side = sidebar(sidebar_open, on_logout);
    let _ = root.append_child(&side);
    // On a phone the sidebar is a drawer: closed, nothing in it can be reached with Tab (and a
    // screen reader skips it); open, the focus moves into it, and Escape closes it.
    let narrow = Var::new(is_narrow());
    on(&window(), "resize", move |_| {
        let n = is_narrow();
        if narrow.get_untracked() != n {
            narrow.set(n);
        }
    });
    {
        let side = side.clone();
        let was_open = Stored::new(false);
        effect(move || {
            let open = sidebar_open.get();
            let narrow = narrow.get();
            flag(&side, "inert", narrow && !open);
            // The open drawer is the page: what is behind the scrim is out of reach.
            if let Some(main) = document().query_selector("main.main").ok().flatten() {
                flag(&main, "inert", narrow && open);
            }
            if open && !was_open.get_value() {
                focus_soon("[data-testid=sidebar] button, [data-testid=sidebar] input");
            }
            was_open.set_value(open);
        });
    }
    on(&window(), "keydown", move |ev| {
        let Some(k) = ev.dyn_ref::<web_sys::KeyboardEvent>() else {
            return;
        };
        let key = k.key();
        if (k.ctrl_key() || k.meta_key()) && key.eq_ignore_ascii_case("k") {
            ev.prevent_default();
            settings_open.set(false);
            search_open.set(false);
            switcher_open.set(true);
        } else if ((k.ctrl_key() || k.meta_key()) && k.shift_key() && key.eq_ignore_ascii_case("f"))
            || (key == "/" && !k.ctrl_key() && !k.meta_key() && !k.alt_key() && !in_text_field())
        {
            ev.prevent_default();
            settings_open.set(false);
            switcher_open.set(false);
            search_open.set(true);
        } else if k.alt_key() && (key == "ArrowUp" || key == "ArrowDown") {
            ev.prevent_default();
            let delta = if key == "ArrowUp" { -1 } else { 1 };
            let here = client.chat.with_untracked(|c| c.current());
            if let Some(id) = step(&all_rows(client), here, delta) {
                open_and_focus(client, id);
            }
        } else if key == "Escape" && sidebar_open.get_untracked() {
            sidebar_open.set(false);
            focus_soon("[data-testid=sidebar-toggle]");
        }
    });
    let _ = root.append_child(&switcher(client, switcher_open));
    let _ = root.append_child(&settings_dialog(settings_open));
    let _ = root.append_child(&search_dialog(client, search_open));
    let _ = root.append_child(&crate::components::viewer::image_viewer(client));
    let scrim = el(&root, "div", "scrim");
    on(&scrim, "click", move |_| sidebar_open.set(false));
    effect(move || {
        scrim.set_class_name(if sidebar_open.get() {
            "scrim open"
        } else {
            "scrim"
        })
    });
    let main = el(&root, "main", "main");
    let header = el(&main, "header", "topbar");
    let menu = button(&header, "menu", "sidebar-toggle", "☰");
    attrs(&menu, &[("aria-label", t().rooms_and_people)]);
    on(&menu, "click", move |_| sidebar_open.update(|o| *o = !*o));
    effect(move || {
        let open = sidebar_open.get();
        attrs(
            &menu,
            &[("aria-expanded", if open { "true" } else { "false" })],
        );
    });
    let title_box = el(&header, "div", "title");
    let h1 = el_with(&title_box, "h1", "", "room-title");
    effect(move || {
        attrs(&h1, &[("data-room-id", &current.get().to_string())]);
        h1.set_text_content(Some(&title.get()));
    });
    let topic_slot = Slot::new(&title_box);
    let slow_slot = Slot::new(&header);
    effect(move || {
        let (topic, slow) = topic.get();
        let shown = (!topic.is_empty()).then_some(topic.as_str());
        topic_slot.set(shown.map(|t| line("p", "topic", "room-topic", "", t)));
        slow_slot.set(
            (slow > 0).then(|| line("span", "tag", "room-slow-mode", "", &text::slow_mode(slow))),
        );
    });
    let notify_slot = Slot::new(&header);
    effect(move || {
        notify_slot.set(notify.get().then(|| {
            let b = new_el("button", "secondary small");
            attrs(&b, &[("data-testid", "notify-enable")]);
            text(&b, t().enable_notifications);
            on(&b, "click", move |_| {
                browser::ask_notify(move || {
                    notify.try_set(browser::notify_permission() == "default");
                })
            });
            b
        }))
    });
    let mark_slot = Slot::new(&header);
    effect(move || {
        mark_slot.set(unread_here.get().then(|| {
            let b = new_el("button", "secondary small");
            attrs(&b, &[("data-testid", "mark-read")]);
            text(&b, t().mark_read);
            on(&b, "click", move |_| {
                client.mark_read(Some(current.get_untracked()))
            });
            b
        }))
    });
    let find = button(&header, "secondary small", "search-open", "🔍");
    attrs(
        &find,
        &[
            ("aria-label", t().search_title),
            ("title", t().search_title),
            ("aria-keyshortcuts", "Control+Shift+F /"),
        ],
    );
    on(&find, "click", move |_| search_open.set(true));
    let people = button(&header, "secondary small", "members-toggle", t().people);
    on(&people, "click", move |_| members_open.update(|o| *o = !*o));
    effect(move || {
        let open = members_open.get();
        attrs(
            &people,
            &[("aria-expanded", if open { "true" } else { "false" })],
        );
    });
    let gear = button(&header, "secondary small", "settings-open", "⚙");
    attrs(
        &gear,
        &[("aria-label", t().settings), ("title", t().settings)],
    );
    on(&gear, "click", move |_| settings_open.set(true));
    conn_badge(el(&header, "span", ""), client.conn.into());

    // The banner's words are said once when it appears; its countdown, which changes every
    // second, is hidden from screen readers.
    let conn_slot = Slot::new(&main);
    let offline = computed(move || waiting.get().map(|(_, offline)| offline));
    effect(move || {
        conn_slot.set(offline.get().map(|offline| {
            untrack(|| {
                let d = banner(
                    "conn-banner",
                    "status",
                    text::disconnected(offline),
                    ("small", "reconnect-now", t().reconnect_now),
                    move || client.reconnect_now(),
                );
                let count = new_el("span", "countdown");
                attrs(
                    &count,
                    &[
                        ("aria-hidden", "true"),
                        ("data-testid", "conn-countdown-text"),
                    ],
                );
                if let Some(first) = d.first_element_child() {
                    let _ = first.after_with_node_1(&count);
                }
                effect(move || {
                    let secs = waiting.get().and_then(|(s, _)| s);
                    count.set_text_content(Some(&format!(" {}", text::countdown(secs))));
                });
                d
            })
        }))
    });
    let alert_slot = Slot::new(&main);
    effect(move || {
        let now = browser::now_ms();
        let list = alerts.get().into_iter().map(|a| {
            let (kind, line) = alert_text(&a, now);
            let n = a.n;
            let d = new_el("div", "banner notice-banner");
            attrs(
                &d,
                &[
                    ("data-testid", "room-notice"),
                    ("data-kind", kind),
                    ("data-room-id", &a.room.to_string()),
                    ("role", "alert"),
                ],
            );
            text(&el_with(&d, "span", "", "room-notice-text"), &line);
            let b = button(&d, "link", "room-notice-close", "×");
            attrs(&b, &[("aria-label", t().dismiss)]);
            on(&b, "click", move |_| client.dismiss_alert(n));
            d.into()
        });
        alert_slot.set_all(list.collect());
    });
    let error_slot = Slot::new(&main);
    effect(move || {
        error_slot.set(error.get().map(|e| {
            let d = banner(
                "chat-error",
                "alert",
                &e,
                ("link", "chat-error-close", "×"),
                move || client.clear_error(),
            );
            if let Some(b) = d.last_element_child() {
                attrs(&b, &[("aria-label", t().dismiss)]);
            }
            d
        }))
    });
    let unresolved_slot = Slot::new(&main);
    effect(move || {
        let (n, rooms) = unresolved.get();
        unresolved_slot.set((n > 0).then(|| {
            let d = banner(
                "unresolved-outbox",
                "status",
                &text::unresolved(n, &rooms),
                ("link", "unresolved-discard", t().discard),
                move || client.discard_unresolved(),
            );
            attrs(&d, &[("data-count", &n.to_string())]);
            d
        }))
    });
    // One list per room: switching rooms starts with fresh scroll state (the previous list's
    // effects and handlers end with the effect's run that built it).
    let list_slot = Slot::new(&main);
    effect(move || {
        current.track();
        let windowed = window_at.get() != 0;
        let room = label.get();
        untrack(|| {
            let frag = document().create_document_fragment();
            message_list(
                &frag,
                ListProps {
                    room,
                    entries,
                    history,
                    on_load_older,
                    on_discard,
                    on_retry,
                    on_retry_gap,
                    window: windowed.then_some((on_load_newer, on_latest)),
                },
            );
            list_slot.set_fragment(&frag);
        });
    });
    announcer(&main, client);
    let typing_slot = Slot::new(&el(&main, "div", "typing-slot"));
    effect(move || typing_slot.text_line("typing", "typing", "status", typing.get().as_deref()));
    composer(
        el(&main, "form", ""),
        ComposerParts {
            on_send,
            room: label.into(),
            room_id: Some(current.into()),
            drafts_for: Some(me),
            blocked: Some(muted.into()),
            hint: Some(slow_hint.into()),
        },
    );
    // Ready to type (not on a phone, where it would open the keyboard over the messages).
    if !is_narrow() {
        focus_soon("[data-testid=composer]");
    }
    // The member panel, with a close button of its own (on a phone it covers the header's
    // People button); Escape closes it too, and the focus goes back to that button.
    let panel_slot = Slot::new(&root);
    effect(move || {
        let open = members_open.get();
        let room = current.get();
        panel_slot.set(open.then(|| {
            untrack(|| {
                let panel = member_panel(room);
                let close = new_el("button", "link panel-close");
                attrs(
                    &close,
                    &[
                        ("data-testid", "members-close"),
                        ("aria-label", t().close_panel),
                        ("title", t().close_panel),
                    ],
                );
                text(&close, "×");
                on(&close, "click", move |_| {
                    members_open.set(false);
                    focus_soon("[data-testid=members-toggle]");
                });
                let _ = panel.prepend_with_node_1(&close);
                panel
            })
        }));
    });
    on(&window(), "keydown", move |ev| {
        if !ev.default_prevented()
            && crate::components::dom::key_of(&ev) == "Escape"
            && members_open.get_untracked()
            && !sidebar_open.get_untracked()
        {
            members_open.set(false);
            focus_soon("[data-testid=members-toggle]");
        }
    });
}

/// A live region that says each new message by someone else in the room on screen, once.
/// Messages that arrive within half a second of each other (a catch-up after a reconnect, a
/// busy room) are said together as a count. Nothing is said for the room's first page or older
/// history, room switches, the user's own messages, or changes to messages.
fn announcer(parent: &web_sys::Element, client: Client) {
    let region = el_with(parent, "div", "visually-hidden", "announcer");
    attrs(
        &region,
        &[("aria-live", "polite"), ("aria-atomic", "false")],
    );
    // The room and the newest `seq` already accounted for; none until the room's first page
    // is in, so that loading it says nothing.
    let seen = Stored::new(None::<(shared::RoomId, u64)>);
    // What waits to be said: the count, and the last message's words.
    let waiting = Stored::new((0usize, String::new()));
    let scheduled = Stored::new(false);
    let say = move || {
        let Some((n, last)) = waiting.try_update_value(std::mem::take) else {
            return;
        };
        scheduled.try_set_value(false);
        let said = match n {
            0 => return,
            1 => last,
            n => text::announce_many(n),
        };
        while region.child_element_count() >= 3 {
            if let Some(first) = region.first_element_child() {
                first.remove();
            }
        }
        text(&el(&region, "p", ""), &said);
    };
    effect(move || {
        let Some((room, newest, theirs)) = client.chat.with(|c| {
            let room = c.current();
            let timeline = &c.room(room)?.timeline;
            if !timeline.is_loaded() {
                return Some((room, None, Vec::new()));
            }
            let after = seen.get_value().filter(|(r, _)| *r == room).map(|(_, s)| s);
            let (newest, fresh) = timeline.newest_messages(after);
            let mine = c.me();
            let theirs: Vec<String> = fresh
                .into_iter()
                .filter(|m| m.author != *mine)
                .map(|m| text::announce_one(m.author_name.as_str(), &m.text))
                .collect();
            Some((room, Some(newest), theirs))
        }) else {
            return;
        };
        let Some(newest) = newest else {
            seen.set_value(None);
            return;
        };
        let known = seen.get_value().is_some_and(|(r, _)| r == room);
        seen.set_value(Some((room, newest)));
        if !known || theirs.is_empty() {
            return;
        }
        waiting.update_value(|(n, last)| {
            *n += theirs.len();
            if let Some(l) = theirs.last() {
                last.clone_from(l);
            }
        });
        if !scheduled.get_value() {
            scheduled.set_value(true);
            crate::components::dom::after(500, say.clone());
        }
    });
}

/// Whether the focus is in a place where `/` is typed (a text field, a select).
fn in_text_field() -> bool {
    document()
        .active_element()
        .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"))
}

/// Whether the screen is narrow enough for the sidebar to be a drawer (the stylesheet's
/// breakpoint).
fn is_narrow() -> bool {
    window()
        .inner_width()
        .ok()
        .and_then(|w| w.as_f64())
        .is_some_and(|w| w <= 760.0)
}

/// An unread count as badges and the title show it (`999+` past the server's cap).
pub fn count_text(n: u32) -> String {
    if n >= shared::UNREAD_CAP {
        format!("{}+", shared::UNREAD_CAP - 1)
    } else {
        n.to_string()
    }
}
