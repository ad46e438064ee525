//! The message list of the room on screen.
//!
//! Test ids: `message-list` (the scrolling container), `load-older` (button, while older
//! messages exist), `history-loading`, `history-start` ("This is the beginning of #room."),
//! `message` (one per message: `data-seq` once stored, `data-state` = `sent` | `pending` |
//! `failed`, `data-client-id`, `data-author` = the author's handle, `data-mention` when it
//! mentions the user, `data-highlight` briefly after a jump to it; class `compact` when it
//! follows a message of the same author within five minutes, then without its header), inside
//! it `message-author` (the author's display name, with `title` = `@handle`), `message-time`
//! (`datetime` attribute in ISO 8601), `message-text` (with `message-deleted`, the placeholder
//! of a deleted message, and `message-edited`, whose `title` says when), `reply-quote` (the
//! start of the message it answers, `data-target`; click jumps there), `reaction` (a chip:
//! `data-emoji`, `aria-pressed` when the user's own, `title` = who; click toggles),
//! `message-actions` with `action-reply`, `action-react` (opens `emoji-option`s, `data-emoji`),
//! `action-edit` (opens `edit-input`: Enter saves, Escape cancels; `edit-error`) and
//! `action-delete` (asks in the row: `delete-confirm` with `delete-yes` and `delete-no`, the
//! focus on `delete-no`; Escape cancels); for failed ones `message-error`, `message-discard` and,
//! when sending it again may succeed, `message-retry` (back to pending, same client id);
//! `notice` (a join/leave line, `data-user`, `data-kind` = `joined`|`left`); `unread-divider`
//! ("New messages" above the first unread message) and `jump-unread` (while it is out of view);
//! `new-below` ("New messages below", while scrolled up) with `jump-latest`; `window-bar` (a
//! window far back in the history is shown, with `jump-latest` back to the newest); `gap` (events
//! known to exist but not delivered: `data-from`, `data-to`, `data-count`, `data-state` =
//! `loading` | `failed`), with `gap-retry` (asks again) once it failed.
//! A message's files: `attachment-image` (a link to the full image, `data-file-id`: a click
//! opens it in the image viewer, see [`crate::components::viewer`]; with Ctrl or the middle
//! button in a new tab; around the thumbnail `img` whose `width` and `height` reserve its box) and
//! `attachment-file` (a download link with the name and `attachment-size`).
//!
//! Text is rendered by [`message_body`] alone, through the safe Markdown subset of
//! [`crate::markdown`]: fixed elements and text nodes only, so HTML in a message shows literally.

use leptos::prelude::*;
use shared::{ClientId, MessageText, Role};
use wasm_bindgen::JsCast;

use crate::client::Client;
use crate::components::Stored;
use crate::components::Var;
use crate::components::dom::{
    Slot, attrs, el, key_of, line, new_el, on, shift_or_composing, target, text,
};
use crate::components::{Computed, effect};
use crate::i18n::{self, fill};
use crate::timeline::{Act, Delivery, Entry, Extra, HistoryState};
use crate::{browser, uploads};

/// Distance from the bottom (px) within which the list counts as "at the bottom" and follows
/// new messages.
const STICK_PX: i32 = 40;
/// Distance from the top (px) within which older messages are loaded.
const LOAD_OLDER_PX: i32 = 80;
/// Pages of older messages loaded at most to reach a message jumped to (a reply's original, a
/// search result) before a window around it is opened instead.
const JUMP_PAGES: u32 = 3;
/// A message jumped to this far (in `seq`) below the oldest one held gets a window at once.
const FAR_SEQS: u64 = 150;
/// The reactions offered by the picker.
const EMOJI: [&str; 8] = ["👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀"];

/// The scroll position as last seen, to keep the view steady when rows are added above.
#[derive(Debug, Clone, Default)]
struct ScrollSnapshot {
    top: i32,
    height: i32,
    at_bottom: bool,
    first_key: Option<String>,
    last_key: Option<String>,
}

/// What [`message_list`] shows and whom it tells.
pub(crate) struct ListProps {
    /// The name of the room shown (for the "beginning of" line).
    pub room: String,
    /// The rows to show.
    pub entries: Computed<Vec<Entry>>,
    /// What the top of the list shows.
    pub history: Computed<HistoryState>,
    /// Asks for the page before the oldest row.
    pub on_load_older: Callback<()>,
    /// Drops a failed message.
    pub on_discard: Callback<ClientId>,
    /// Sends a failed message again.
    pub on_retry: Callback<ClientId>,
    /// Asks again for the missing messages `(from, to)` of a gap.
    pub on_retry_gap: Callback<(u64, u64)>,
    /// The rows are a window far back in the room's history (see [`crate::chat::Window`]):
    /// asks for the page after its newest row, and goes back to the latest messages.
    pub window: Option<(Callback<()>, Callback<()>)>,
}

/// The scrolling list of messages and notices, oldest first, and the bars over it ("new
/// messages below", "jump to first unread").
///
/// It follows new messages while scrolled to the bottom; scrolled up, it stays where it is and
/// says that new messages arrived below. Reaching the top (or pressing "Load older messages")
/// asks for the previous page, and when that page is prepended the visible rows do not move. A
/// reply's quote (or a search result) asks to jump to its message: a few older pages load
/// until it is there, or, when it is further back, a window of the history around it replaces
/// the rows (with "Jump to latest" to come back); then it is scrolled to and highlighted. With the newest message on screen the room is marked
/// read; leaving the room keeps its scroll position for when it comes back.
///
/// Built in `parent` (plain DOM: the "jump to first unread" bar, the list, the "new messages
/// below" bar), with its handlers and effects under the current owner.
pub(crate) fn message_list(parent: &web_sys::Node, p: ListProps) {
    let ListProps {
        room,
        entries,
        history,
        on_load_older,
        on_discard,
        on_retry,
        on_retry_gap,
        window: history_window,
    } = p;
    let windowed = history_window.is_some();
    let client = use_context::<Client>();
    let room_id = client.and_then(|c| c.chat.try_with_untracked(|c| c.current()));
    let saved = client
        .zip(room_id)
        .and_then(|(c, id)| {
            c.scroll
                .try_with_value(|m| m.iter().find(|(r, _)| *r == id).map(|(_, t)| *t))
        })
        .flatten();
    let jump_unread = Slot::new(parent);
    let list_el: web_sys::HtmlElement = el(parent, "div", "messages").unchecked_into();
    attrs(
        &list_el,
        &[
            ("data-testid", "message-list"),
            ("id", "messages"),
            // Focusable, so that PageUp/PageDown and the arrows scroll it. Not a live region:
            // a loaded history page would be read out whole; new messages are announced one
            // by one through the page's announcer instead (see `crate::components::announce`).
            ("tabindex", "0"),
            ("role", "region"),
            ("aria-label", i18n::t().messages_label),
        ],
    );
    let top_slot = Slot::new(&list_el);
    let ul_el = el(&list_el, "ul", "entries");
    let bar = Slot::new(parent);
    // `try_` reads of these below: scroll events and animation frames can arrive after the
    // list was disposed (a room switch), and must then do nothing rather than panic.
    let list = Stored::new(list_el.clone());
    let ul = Stored::new(ul_el.clone());
    let snapshot = Stored::new(ScrollSnapshot {
        // A window starts where its message is, and never follows rows added below.
        at_bottom: saved.is_none() && !windowed,
        ..ScrollSnapshot::default()
    });
    let restore = Stored::new(saved);
    let below = Var::new(false);
    // Scrolled away from the newest messages: "Jump to latest" is offered.
    let away = Var::new(false);
    if let Some(c) = client {
        c.chat
            .try_update_untracked(|c| c.set_at_bottom(saved.is_none()));
    }
    let unread_off = Var::new(false);
    let keys = move || {
        entries
            .try_with_untracked(|e| (e.first().map(Entry::key), e.last().map(Entry::key)))
            .unwrap_or_default()
    };
    let wants_older = move || history.try_get_untracked() == Some(HistoryState::More);
    // After any scroll or change: bars, read marker, saved position.
    let observe = move |el: &web_sys::HtmlElement, now: &ScrollSnapshot| {
        if now.at_bottom {
            below.try_set(false);
        }
        if away.try_get_untracked() == Some(now.at_bottom) {
            away.try_set(!now.at_bottom);
        }
        if let Some(c) = client {
            c.set_at_bottom(now.at_bottom);
        }
        unread_off.try_set(divider_off_screen(el));
        if let (Some(c), Some(id), false) = (client, room_id, windowed) {
            c.scroll.try_update_value(|m| {
                m.retain(|(r, _)| *r != id);
                if !now.at_bottom {
                    m.push((id, now.top));
                }
            });
        }
    };

    let on_scroll = move |_| {
        let Some(el) = list.try_get_value() else {
            return;
        };
        let mut now = snap(&el, keys());
        if let Some((on_load_newer, _)) = history_window {
            if el.scroll_height() - el.scroll_top() - el.client_height() < LOAD_OLDER_PX {
                on_load_newer.try_run(());
            }
            now.at_bottom = false;
        }
        observe(&el, &now);
        snapshot.try_set_value(now);
        if el.scroll_top() < LOAD_OLDER_PX && wants_older() {
            on_load_older.try_run(());
        }
    };

    // Scrolls to the message to jump to once it is shown (loading older pages until it is):
    // the message, and the older pages loaded for it.
    let jumping = Stored::new((0u64, 0u32));
    let jump = move |el: &web_sys::HtmlElement| {
        let Some(c) = client else { return };
        let Some(Some(seq)) = c.jump.try_get_untracked() else {
            return;
        };
        // A jump into another room (from search) is this list's only once its room is on
        // screen.
        if c.chat.try_with_untracked(|c| c.current()) != room_id {
            return;
        }
        let row = el
            .query_selector(&format!("[data-seq=\"{seq}\"]"))
            .ok()
            .flatten();
        let pages = jumping
            .try_update_value(|(target, pages)| {
                if *target != seq {
                    (*target, *pages) = (seq, 0);
                }
                *pages
            })
            .unwrap_or(JUMP_PAGES);
        if let Some(row) = row {
            c.jump.try_set(None);
            if let Some(r) = row.dyn_ref::<web_sys::HtmlElement>() {
                // In the middle of the list, with what comes before it in view too.
                el.set_scroll_top(
                    content_y(el, r) - (el.client_height() - r.offset_height()).max(0) / 2,
                );
                // Focused without scrolling again.
                let _ = r.focus();
            }
            let _ = row.set_attribute("data-highlight", "true");
            set_timeout(
                move || {
                    let _ = row.remove_attribute("data-highlight");
                },
                std::time::Duration::from_millis(2_000),
            );
        } else if !windowed && wants_older() {
            // Near: older pages of the live timeline, a few at most. Far (or still not there):
            // a window around it instead.
            let lowest = entries
                .try_with_untracked(|e| {
                    e.iter().find_map(|row| match row {
                        Entry::Message { seq: Some(s), .. } => Some(*s),
                        _ => None,
                    })
                })
                .flatten();
            let far = lowest.is_none_or(|low| low.saturating_sub(seq) > FAR_SEQS);
            if far || pages >= JUMP_PAGES {
                c.open_window(seq);
            } else {
                jumping.try_update_value(|(_, p)| *p += 1);
                on_load_older.try_run(());
            }
        } else if !matches!(
            history.try_get_untracked(),
            Some(HistoryState::Loading | HistoryState::NotLoaded)
        ) {
            let around = c
                .chat
                .try_with_untracked(|c| c.window().map(|w| w.around))
                .flatten();
            if windowed && around != Some(seq) {
                // Outside the window shown (another search result, a reply's original further
                // back): a window around it instead.
                c.open_window(seq);
            } else {
                // Not found within the pages allowed (or the room starts later): give up.
                c.jump.try_set(None);
            }
        }
    };
    // After the rows change (and the browser laid them out), keep the view in place; then jump
    // if asked to.
    effect(move || {
        entries.track();
        if let Some(c) = client {
            c.jump.track();
        }
        request_animation_frame(move || {
            let Some(el) = list.try_get_value() else {
                return;
            };
            let Some(before) = snapshot.try_get_value() else {
                return;
            };
            let (first, last) = keys();
            let height = el.scroll_height();
            if let Some(Some(top)) = restore.try_get_value()
                && first.is_some()
            {
                // Back in a room left scrolled up: where the user was.
                restore.try_set_value(None);
                el.set_scroll_top(top);
            } else if before.at_bottom {
                el.set_scroll_top(height);
            } else if before.first_key.is_some() && before.first_key != first {
                // Rows were prepended: shift by their height so the same rows stay in view.
                el.set_scroll_top(before.top + (height - before.height));
            } else if before.last_key.is_some() && before.last_key != last {
                below.try_set(true);
            }
            let mut now = snap(&el, (first, last));
            // Staying at the bottom is a decision, not a measurement that may lag behind layout.
            now.at_bottom =
                !windowed && (now.at_bottom || (before.at_bottom && now.top == el.scroll_top()));
            observe(&el, &now);
            snapshot.try_set_value(now);
            jump(&el);
            // A short first page cannot be scrolled: load more until it fills the view.
            if el.scroll_height() <= el.client_height() {
                if wants_older() {
                    on_load_older.try_run(());
                } else if let Some((on_load_newer, _)) = history_window {
                    on_load_newer.try_run(());
                }
            }
        });
    });

    // The rows: plain DOM elements kept by key (a row is rebuilt when its key changes, that
    // is when its content does), with one click and one key handler for all of them.
    let rows = Stored::new(Vec::<(String, web_sys::Element)>::new());
    let was_editing = Stored::new(None::<u64>);
    effect(move || {
        let list = with_days(entries.get());
        let editing = client.and_then(|c| c.editing.get());
        let Some(ul) = ul.try_get_value() else {
            return;
        };
        let ctx = row_context(client, editing);
        // The rows whose editor opens or closes are built again (only then: typing in the
        // editor survives other rows changing).
        let before = was_editing.try_get_value().flatten();
        was_editing.try_set_value(editing);
        let rebuild =
            |key: &str| editing != before && (key_seq(key) == editing || key_seq(key) == before);
        let old = rows.try_update_value(std::mem::take).unwrap_or_default();
        if old.is_empty() {
            // A list view rebuilt in place (another room) finds the previous room's rows.
            ul.set_text_content(None);
        }
        let mut at = 0;
        let mut new = Vec::with_capacity(list.len());
        for e in &list {
            let key = e.key();
            let found = match old.get(at) {
                Some((k, _)) if *k == key => Some(at),
                _ => old.iter().position(|(k, _)| *k == key),
            };
            if let (Some(c), Entry::Message { more, .. }) = (client, e)
                && let Some((target, None)) = more.reply_to
            {
                c.fetch_quote(c.chat.with_untracked(|c| c.current()), target);
            }
            let el = match found {
                Some(i) if !rebuild(&key) => {
                    at = i + 1;
                    old[i].1.clone()
                }
                _ => row(e, &ctx),
            };
            new.push((key, el));
        }
        for (_, el) in &old {
            if !new.iter().any(|(_, n)| n == el) {
                el.remove();
            }
        }
        // Put them in order, moving only what is out of place (a moved node loses focus).
        let mut prev: Option<web_sys::Node> = None;
        for (_, el) in &new {
            let next = match &prev {
                Some(p) => p.next_sibling(),
                None => ul.first_child(),
            };
            if next.as_ref() != Some(el.as_ref()) {
                let _ = ul.insert_before(el, next.as_ref());
            }
            prev = Some(el.clone().into());
        }
        if let Some(seq) = editing.filter(|_| editing != before)
            && let Ok(Some(input)) = ul.query_selector(&format!("[data-seq=\"{seq}\"] textarea"))
            && let Ok(input) = input.dyn_into::<web_sys::HtmlElement>()
        {
            let _ = input.focus();
        }
        rows.try_set_value(new);
    });
    let on_click = move |ev: web_sys::Event| {
        let Some(btn) = target(&ev, "[data-act]") else {
            return;
        };
        let get = |el: &web_sys::Element, name: &str| el.get_attribute(name).unwrap_or_default();
        let host = btn
            .closest("li")
            .ok()
            .flatten()
            .and_then(|h| h.dyn_into::<web_sys::HtmlElement>().ok());
        let at = |name| host.as_ref().map(|h| get(h, name)).unwrap_or_default();
        let seq: u64 = at("data-seq").parse().unwrap_or(0);
        let cid = || ClientId::parse(at("data-client-id")).ok();
        match get(&btn, "data-act").as_str() {
            "retry" => cid().map(|c| on_retry.run(c)).unwrap_or(()),
            "discard" => cid().map(|c| on_discard.run(c)).unwrap_or(()),
            "gap" => on_retry_gap.run((
                at("data-from").parse().unwrap_or(0),
                at("data-to").parse().unwrap_or(0),
            )),
            act => {
                let Some(c) = client else { return };
                match act {
                    "reply" => c.reply.set(Some(seq)),
                    "edit" => c.editing.set(Some(seq)),
                    "quote" => c.jump.set(get(&btn, "data-target").parse().ok()),
                    "view" => {
                        // A plain click opens the viewer; with a modifier (or the middle
                        // button), the link does what links do.
                        let plain = ev.dyn_ref::<web_sys::MouseEvent>().is_some_and(|m| {
                            m.button() == 0
                                && !(m.ctrl_key() || m.meta_key() || m.shift_key() || m.alt_key())
                        });
                        if plain {
                            ev.prevent_default();
                            let num = |name| get(&btn, name).parse::<u32>().unwrap_or(0);
                            c.view_image(crate::client::Viewed {
                                id: get(&btn, "data-file-id").parse().unwrap_or(0),
                                name: get(&btn, "data-name"),
                                width: num("data-width"),
                                height: num("data-height"),
                            });
                        }
                    }
                    "chip" => c.react(
                        seq,
                        &get(&btn, "data-emoji"),
                        get(&btn, "aria-pressed") != "true",
                    ),
                    "emoji" => {
                        c.react(seq, &get(&btn, "data-emoji"), true);
                        if let Some(u) = ul.try_get_value() {
                            close_picker(&u);
                        }
                    }
                    "react" => {
                        if let (Some(h), Some(u), Some(list)) =
                            (&host, ul.try_get_value(), list.try_get_value())
                            && toggle_picker(&u, h).is_some()
                        {
                            // Near the bottom, the picker would be cut off: scroll it in.
                            let over = content_y(&list, h) + h.offset_height()
                                - list.scroll_top()
                                - list.client_height();
                            if over > 0 {
                                list.set_scroll_top(list.scroll_top() + over + 4);
                            }
                        }
                    }
                    // Asked in the row itself (not the browser's own box): the question, then
                    // Delete or Cancel; the focus on Cancel, and back on the row's delete
                    // button when cancelled.
                    "delete" => {
                        // One question at a time.
                        if let Some(u) = ul.try_get_value()
                            && let Ok(open) = u.query_selector_all(".confirm-inline")
                        {
                            for i in 0..open.length() {
                                if let Some(q) = open.item(i)
                                    && host.as_ref().is_none_or(|h| !h.contains(Some(&q)))
                                    && let Some(q) = q.dyn_ref::<web_sys::Element>()
                                {
                                    q.remove();
                                }
                            }
                        }
                        if let Some(h) = &host
                            && h.query_selector(".confirm-inline").ok().flatten().is_none()
                        {
                            let d = el(h, "div", "confirm-inline");
                            attrs(&d, &[("role", "group"), ("data-testid", "delete-confirm")]);
                            text(&el(&d, "span", ""), i18n::t().ask_delete_message);
                            button(&d, "delete-yes", "delete-yes", i18n::t().delete)
                                .set_class_name("danger");
                            let no = button(&d, "delete-no", "delete-no", i18n::t().cancel);
                            if let Some(no) = no.dyn_ref::<web_sys::HtmlElement>() {
                                let _ = no.focus();
                            }
                        }
                    }
                    "delete-yes" => {
                        c.act(Act::Delete { target: seq }, "".into());
                        // The row is built again without its buttons: the focus to the list.
                        if let Some(l) = list.try_get_value() {
                            let _ = l.focus();
                        }
                    }
                    "delete-no" => cancel_delete(&btn),
                    _ => {}
                }
            }
        }
    };
    // The emoji picker closes on Escape and on a click anywhere else.
    let close_open_picker = move || {
        if let Some(u) = ul.try_get_value() {
            close_picker(&u);
        }
    };
    on(&window(), "click", move |ev| {
        if target(&ev, ".picker, [data-act=react]").is_none() {
            close_open_picker();
        }
    });
    on(&window(), "keydown", move |ev| {
        if key_of(&ev) == "Escape" {
            // Closed from inside: the focus goes back to the message's React button.
            let back = target(&ev, ".picker")
                .and_then(|p| p.closest("[data-seq]").ok().flatten())
                .and_then(|row| row.query_selector("[data-act=react]").ok().flatten())
                .and_then(|b| b.dyn_into::<web_sys::HtmlElement>().ok());
            close_open_picker();
            if let Some(b) = back {
                let _ = b.focus();
            }
        }
    });
    // The editor: Enter saves, Escape cancels.
    let on_key = move |ev: web_sys::Event| {
        if let Some(q) = target(&ev, ".confirm-inline")
            && key_of(&ev) == "Escape"
        {
            ev.prevent_default();
            cancel_delete(&q);
            return;
        }
        let (Some(c), Some(area)) = (client, target(&ev, "textarea")) else {
            return;
        };
        let key = key_of(&ev);
        let (shift, composing) = shift_or_composing(&ev);
        if key == "Escape" {
            ev.prevent_default();
            c.editing.set(None);
        } else if key == "Enter" && !shift && !composing {
            ev.prevent_default();
            let seq = c.editing.get_untracked().unwrap_or(0);
            let value = area
                .dyn_into::<web_sys::HtmlTextAreaElement>()
                .map(|a| a.value())
                .unwrap_or_default();
            let same = c.chat.with_untracked(|chat| {
                chat.room(chat.current())
                    .and_then(|r| r.timeline.message(seq))
                    .is_some_and(|m| *m.text == *value)
            });
            match MessageText::parse(value) {
                _ if same => c.editing.set(None),
                Ok(t) => c.edit(seq, t),
                Err(e) => {
                    if let Some(err) = ul
                        .try_get_value()
                        .and_then(|u| u.query_selector("[data-testid=edit-error]").ok().flatten())
                    {
                        err.set_text_content(Some(&e.to_string()));
                    }
                }
            }
        }
    };

    on(&list_el, "scroll", on_scroll);
    on(&ul_el, "click", on_click);
    on(&ul_el, "keydown", on_key);
    let to_unread = move || {
        if let Some(el) = list.try_get_value()
            && let Ok(Some(d)) = el.query_selector(".unread-divider")
        {
            d.scroll_into_view();
        }
    };
    let to_bottom = move || {
        if let Some(el) = list.try_get_value() {
            snapshot.try_update_value(|s| s.at_bottom = true);
            el.set_scroll_top(el.scroll_height());
        }
    };
    effect(move || {
        top_slot.set(Some(match history.get() {
            HistoryState::More => {
                let b = new_el("button", "load-older");
                attrs(&b, &[("data-testid", "load-older")]);
                text(&b, i18n::t().load_older);
                on(&b, "click", move |_| on_load_older.run(()));
                b
            }
            HistoryState::Loading | HistoryState::NotLoaded => line(
                "p",
                "history-marker",
                "history-loading",
                "",
                i18n::t().loading_messages,
            ),
            HistoryState::Beginning => line(
                "p",
                "history-marker",
                "history-start",
                "",
                &fill(i18n::t().beginning_of, &[("room", &room)]),
            ),
        }))
    });
    effect(move || {
        jump_unread.set(unread_off.get().then(|| {
            let b = new_el("button", "bar small");
            attrs(&b, &[("data-testid", "jump-unread")]);
            text(&b, i18n::t().jump_unread);
            on(&b, "click", move |_| to_unread());
            b
        }))
    });
    if let Some((_, on_latest)) = history_window {
        // A window: always the way back to the latest messages.
        let d = new_el("div", "bar");
        attrs(&d, &[("data-testid", "window-bar"), ("role", "status")]);
        text(&el(&d, "span", ""), i18n::t().viewing_older);
        let b = el(&d, "button", "small");
        attrs(&b, &[("data-testid", "jump-latest")]);
        text(&b, i18n::t().jump_latest);
        on(&b, "click", move |_| on_latest.run(()));
        bar.set(Some(d));
        return;
    }
    effect(move || {
        let new = below.get();
        bar.set((new || away.get()).then(|| {
            let d = new_el("div", "bar");
            attrs(
                &d,
                &[
                    ("data-testid", if new { "new-below" } else { "scrolled-up" }),
                    ("role", "status"),
                ],
            );
            if new {
                text(&el(&d, "span", ""), i18n::t().new_below);
            }
            let b = el(&d, "button", "small");
            attrs(&b, &[("data-testid", "jump-latest")]);
            text(&b, i18n::t().jump_latest);
            on(&b, "click", move |_| to_bottom());
            d
        }))
    });
}

/// The entries with a day's line above the first message of each local day; a message after
/// such a line starts a new group (its author's name shows again).
fn with_days(list: Vec<Entry>) -> Vec<Entry> {
    let mut out = Vec::with_capacity(list.len() + 4);
    let mut day = None;
    for mut e in list {
        if let Entry::Message { ts, more, .. } = &mut e {
            let d = browser::local_day(*ts);
            if day != Some(d) {
                day = Some(d);
                out.push(Entry::Day(*ts));
                more.compact = false;
            }
        }
        out.push(e);
    }
    out
}

/// Whether the "new messages" line is out of view.
fn divider_off_screen(el: &web_sys::HtmlElement) -> bool {
    use wasm_bindgen::JsCast;
    let Ok(Some(d)) = el.query_selector(".unread-divider") else {
        return false;
    };
    let Ok(d) = d.dyn_into::<web_sys::HtmlElement>() else {
        return false;
    };
    let y = content_y(el, &d);
    y < el.scroll_top() || y > el.scroll_top() + el.client_height()
}

fn snap(
    el: &web_sys::HtmlElement,
    (first_key, last_key): (Option<String>, Option<String>),
) -> ScrollSnapshot {
    let top = el.scroll_top();
    let height = el.scroll_height();
    ScrollSnapshot {
        top,
        height,
        at_bottom: height - top - el.client_height() <= STICK_PX,
        first_key,
        last_key,
    }
}

/// What every row needs to know, read once per rebuild.
struct RowContext {
    /// The logged-in user.
    me: Option<shared::Username>,
    /// The user may delete anyone's messages here.
    moderator: bool,
    /// Now (ms since the Unix epoch), for times.
    now: i64,
    /// The message being edited.
    editing: Option<u64>,
}

fn row_context(client: Option<Client>, editing: Option<u64>) -> RowContext {
    let (me, moderator) = client
        .and_then(|c| {
            c.chat.try_with_untracked(|c| {
                let role = c.role(c.current());
                (
                    Some(c.me().clone()),
                    matches!(role, Some(Role::Moderator | Role::Owner)),
                )
            })
        })
        .unwrap_or((None, false));
    RowContext {
        me,
        moderator,
        now: browser::now_ms(),
        editing,
    }
}

/// The `seq` of a stored message's row key.
fn key_seq(key: &str) -> Option<u64> {
    let digits: String = key
        .strip_prefix('m')?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// A button that the list's click handler dispatches by its `data-act`.
/// Closes the delete question that holds `inside`, the focus back on its row's delete button.
fn cancel_delete(inside: &web_sys::Element) {
    let Some(q) = inside.closest(".confirm-inline").ok().flatten() else {
        return;
    };
    let row = q.parent_element();
    q.remove();
    if let Some(b) = row
        .and_then(|r| r.query_selector("[data-act=delete]").ok().flatten())
        .and_then(|b| b.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = b.focus();
    }
}

fn button(parent: &web_sys::Element, testid: &str, act: &str, label: &str) -> web_sys::Element {
    let b = el(parent, "button", "link");
    attrs(
        b.as_ref(),
        &[
            ("data-testid", testid),
            ("data-act", act),
            ("type", "button"),
        ],
    );
    text(&b, label);
    b
}

/// One row: a message (author, local time, text, delivery state, reply quote, reactions,
/// actions), a join/leave notice, the unread divider, or a gap of events that are missing.
fn row(entry: &Entry, ctx: &RowContext) -> web_sys::Element {
    let host = crate::components::dom::new_el("li", "");
    match entry {
        Entry::Gap(g) => {
            let state = if g.loading { "loading" } else { "failed" };
            host.set_class_name("gap");
            attrs(
                &host,
                &[
                    ("data-testid", "gap"),
                    ("data-from", &g.from.to_string()),
                    ("data-to", &g.to.to_string()),
                    ("data-count", &g.count().to_string()),
                    ("data-state", state),
                    ("role", "status"),
                ],
            );
            if g.loading {
                text(&host, i18n::t().loading_missing);
            } else {
                text(&host, i18n::t().some_not_loaded);
                button(&host, "gap-retry", "gap", i18n::t().try_again);
            }
        }
        Entry::Notice(n) => {
            let kind = if n.online { "joined" } else { "left" };
            host.set_class_name("notice");
            let user = n.user.to_string();
            attrs(
                &host,
                &[
                    ("data-testid", "notice"),
                    ("data-user", &user),
                    ("data-kind", kind),
                ],
            );
            text(
                &host,
                &fill(
                    if n.online {
                        i18n::t().joined_room
                    } else {
                        i18n::t().left_the_room
                    },
                    &[("name", &user)],
                ),
            );
        }
        Entry::Day(ts) => {
            // A heading (not a separator: a list holds list items only), so that a screen
            // reader can move from day to day.
            host.set_class_name("day-divider");
            attrs(&host, &[("data-testid", "day-divider")]);
            text(&el(&host, "h2", ""), &browser::day_label(*ts, ctx.now));
        }
        Entry::Divider => {
            host.set_class_name("unread-divider");
            attrs(&host, &[("data-testid", "unread-divider")]);
            text(&host, i18n::t().new_messages);
        }
        Entry::Message {
            seq,
            author,
            author_name,
            text: body,
            ts,
            client_id,
            delivery,
            more,
        } => message_row(
            &host,
            ctx,
            *seq,
            author,
            author_name,
            body,
            *ts,
            client_id,
            delivery,
            more,
        ),
    }
    host
}

#[allow(clippy::too_many_arguments)]
fn message_row(
    host: &web_sys::Element,
    ctx: &RowContext,
    seq: Option<u64>,
    author: &shared::Username,
    author_name: &shared::DisplayName,
    body: &str,
    ts: i64,
    client_id: &Option<ClientId>,
    delivery: &Delivery,
    more: &Extra,
) {
    let time = browser::local_time(ts, ctx.now);
    let mut class = String::from("msg");
    for (on, name) in [
        (more.compact, " compact"),
        (more.mentions_me, " mention"),
        (matches!(delivery, Delivery::Pending), " pending"),
        (matches!(delivery, Delivery::Failed { .. }), " failed"),
    ] {
        if on {
            class.push_str(name);
        }
    }
    host.set_class_name(&class);
    let author_handle = author.to_string();
    attrs(
        host,
        &[
            ("data-testid", "message"),
            ("data-state", delivery.as_str()),
            ("data-author", &author_handle),
            ("tabindex", "0"),
        ],
    );
    if let Some(seq) = seq {
        attrs(host, &[("data-seq", &seq.to_string())]);
    }
    if let Some(cid) = client_id {
        attrs(host, &[("data-client-id", cid.as_str())]);
    }
    if more.mentions_me {
        attrs(host, &[("data-mention", "true")]);
    }
    if let Some((target, quote)) = &more.reply_to {
        let label = match quote {
            Some(q) if q.text.is_empty() => {
                fill(i18n::t().quote_deleted, &[("name", q.author_name.as_str())])
            }
            Some(q) => format!("{}: {}", q.author_name, start_of(&q.text, 100)),
            None => "…".to_owned(),
        };
        let b = button(host, "reply-quote", "quote", &label);
        b.set_class_name("quote");
        attrs(&b, &[("data-target", &target.to_string())]);
    }
    if more.compact && matches!(delivery, Delivery::Sent) {
        attrs(host, &[("title", &time.full)]);
    } else {
        let meta = el(host, "div", "meta");
        let name = el(&meta, "span", "author");
        attrs(
            &name,
            &[
                ("data-testid", "message-author"),
                ("title", &format!("@{author}")),
            ],
        );
        text(&name, author_name.as_str());
        let t = el(&meta, "time", "");
        attrs(
            &t,
            &[
                ("data-testid", "message-time"),
                ("datetime", &time.iso),
                ("title", &time.full),
            ],
        );
        text(&t, &time.short);
        match delivery {
            Delivery::Sent => {}
            Delivery::Pending => text(&el(&meta, "span", "status"), i18n::t().sending),
            Delivery::Failed { reason, retryable } => {
                let e = el(&meta, "span", "status failed");
                attrs(&e, &[("data-testid", "message-error")]);
                text(&e, &fill(i18n::t().not_sent, &[("reason", reason)]));
                if *retryable {
                    button(&meta, "message-retry", "retry", i18n::t().retry);
                }
                button(&meta, "message-discard", "discard", i18n::t().discard);
            }
        }
    }
    let t = el(host, "div", "text");
    attrs(&t, &[("data-testid", "message-text")]);
    if more.deleted {
        let d = el(&t, "em", "deleted");
        attrs(&d, &[("data-testid", "message-deleted")]);
        text(&d, i18n::t().message_deleted);
    } else {
        message_body(&t, body);
    }
    if let Some(at) = more.edited {
        let e = el(&t, "span", "edited");
        attrs(
            &e,
            &[
                ("data-testid", "message-edited"),
                ("title", &browser::local_time(at, ctx.now).full),
            ],
        );
        text(&e, i18n::t().edited);
    }
    if !more.deleted && !more.attachments.is_empty() {
        attachments(host, &more.attachments);
    }
    let (Some(seq), Some(me)) = (seq, &ctx.me) else {
        return;
    };
    if more.deleted {
        return;
    }
    let chips = el(host, "div", "reactions");
    for r in &more.reactions {
        let mine = r.users.contains(me);
        let who: Vec<&str> = r.users.iter().map(|u| u.as_str()).collect();
        let b = button(
            &chips,
            "reaction",
            "chip",
            &format!("{} {}", r.emoji, r.users.len()),
        );
        b.set_class_name(if mine { "reaction mine" } else { "reaction" });
        attrs(
            &b,
            &[
                ("data-emoji", &r.emoji),
                ("aria-pressed", if mine { "true" } else { "false" }),
                ("title", &who.join(", ")),
            ],
        );
    }
    let actions = el(host, "div", "actions");
    attrs(&actions, &[("data-testid", "message-actions")]);
    button(&actions, "action-reply", "reply", i18n::t().reply);
    button(&actions, "action-react", "react", i18n::t().react);
    let own = author == me;
    if own {
        button(&actions, "action-edit", "edit", i18n::t().edit);
    }
    if own || ctx.moderator {
        button(&actions, "action-delete", "delete", i18n::t().delete);
    }
    if ctx.editing == Some(seq) {
        let box_ = el(host, "div", "editor");
        let area = el(&box_, "textarea", "");
        attrs(
            &area,
            &[
                ("data-testid", "edit-input"),
                ("aria-label", i18n::t().edit_message),
            ],
        );
        text(&area, body);
        text(&el(&box_, "span", "field-note"), i18n::t().edit_hint);
        attrs(
            &el(&box_, "p", "field-error"),
            &[("data-testid", "edit-error"), ("role", "alert")],
        );
    }
}

/// A message's files, appended to `parent`: images as their thumbnail in a box of the size
/// reserved from their width and height (so the list does not jump when they load), a link
/// that opens the full image in a new tab; other files as their name and size, a download
/// link.
pub fn attachments(parent: &web_sys::Element, files: &[shared::Attachment]) {
    let list = el(parent, "ul", "attachments");
    attrs(&list, &[("aria-label", i18n::t().files_label)]);
    for f in files {
        let li = el(&list, "li", "");
        let id = f.id.to_string();
        let a = el(&li, "a", "");
        attrs(
            &a,
            &[("href", &uploads::file_url(f.id)), ("data-file-id", &id)],
        );
        if uploads::is_image(f) {
            let (w, h) = uploads::thumb_box(f.width.unwrap_or(1), f.height.unwrap_or(1));
            a.set_class_name("attachment image");
            attrs(
                &a,
                &[
                    ("data-testid", "attachment-image"),
                    ("data-act", "view"),
                    ("data-name", &f.name),
                    ("data-width", &f.width.unwrap_or(0).to_string()),
                    ("data-height", &f.height.unwrap_or(0).to_string()),
                    ("target", "_blank"),
                    ("rel", "noopener"),
                    (
                        "title",
                        &fill(i18n::t().open_full_size, &[("name", &f.name)]),
                    ),
                ],
            );
            let img = el(&a, "img", "thumb");
            attrs(
                &img,
                &[
                    ("src", &uploads::thumb_url(f.id)),
                    ("alt", &f.name),
                    ("width", &w.to_string()),
                    ("height", &h.to_string()),
                    ("loading", "lazy"),
                    ("decoding", "async"),
                ],
            );
        } else {
            a.set_class_name("attachment file");
            attrs(
                &a,
                &[
                    ("data-testid", "attachment-file"),
                    ("download", &f.name),
                    ("title", &fill(i18n::t().download, &[("name", &f.name)])),
                ],
            );
            text(&el(&a, "span", "file-name"), &f.name);
            let size = el(&a, "span", "file-size");
            attrs(&size, &[("data-testid", "attachment-size")]);
            text(&size, &uploads::size_text(f.size));
        }
    }
}

/// Shows or hides a message's emoji picker (closing any other): the picker opened, if any.
fn toggle_picker(ul: &web_sys::Element, row: &web_sys::HtmlElement) -> Option<web_sys::Element> {
    if let Ok(Some(open)) = ul.query_selector(".picker") {
        open.remove();
        if row.contains(Some(&open)) {
            return None;
        }
    }
    let picker = el(row, "div", "picker");
    for e in EMOJI {
        let b = button(&picker, "emoji-option", "emoji", e);
        attrs(&b, &[("data-emoji", e)]);
    }
    Some(picker)
}

/// Closes the open emoji picker, if any.
fn close_picker(ul: &web_sys::Element) {
    if let Ok(Some(open)) = ul.query_selector(".picker") {
        open.remove();
    }
}

/// Where an element of the list is, from the top of the list's content (px).
fn content_y(list: &web_sys::HtmlElement, d: &web_sys::HtmlElement) -> i32 {
    // Offsets are from the nearest positioned ancestor, which may be the list or above it.
    let base = if d.offset_parent().is_some_and(|p| p == **list) {
        0
    } else {
        list.offset_top()
    };
    d.offset_top() - base
}

/// The text of a message as shown, appended to `parent`: the one place that turns a message's
/// source text into DOM, through the safe Markdown subset of [`crate::markdown`] (elements from
/// a fixed list and text nodes only, so markup in a message never runs).
pub fn message_body(parent: &web_sys::Element, text: &str) {
    crate::markdown::render(parent, &crate::markdown::parse(text));
}

/// The first `n` characters of `text`, with an ellipsis when cut.
pub(crate) fn start_of(text: &str, n: usize) -> String {
    match text.char_indices().nth(n) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
