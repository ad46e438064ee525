//! The quick switcher (Ctrl+K, or ⌘K): a dialog with a filter box over every room and direct
//! conversation. Typing narrows the list (names that start with the text first), Up and Down
//! move the choice, Enter opens it and puts the focus in its message box, Escape closes the
//! dialog and gives the focus back to where it was. The list is an ARIA listbox driven from
//! the box (`aria-activedescendant`), so a screen reader says the choice as it moves.
//!
//! Also here: [`step`], the room above or below the open one in the sidebar's order, for
//! Alt+Up and Alt+Down.
//!
//! Test ids: `switcher` (the dialog), `switcher-input`, `switcher-option` (with `data-room-id`
//! and `aria-selected`), `switcher-empty`.

use leptos::prelude::*;
use shared::RoomId;
use wasm_bindgen::JsCast;

use crate::client::Client;
use crate::components::Stored;
use crate::components::Var;
use crate::components::dom::{Slot, attrs, el, new_el, on, target, text, value_of};
use crate::components::effect;
use crate::components::sidebar::{RoomRow, room_rows};
use crate::i18n::t;

/// The rooms whose name matches `query` (case-insensitive, a leading `#` or `@` ignored):
/// those starting with it first, then those containing it, each group in the sidebar's order.
pub fn matches(rows: &[RoomRow], query: &str) -> Vec<RoomRow> {
    let q = query.trim().trim_start_matches(['#', '@']).to_lowercase();
    let name = |r: &RoomRow| r.name.trim_start_matches(['#', '@']).to_lowercase();
    let mut starts = Vec::new();
    let mut contains = Vec::new();
    for r in rows {
        let n = name(r);
        if n.starts_with(&q) {
            starts.push(r.clone());
        } else if n.contains(&q) {
            contains.push(r.clone());
        }
    }
    starts.extend(contains);
    starts
}

/// The room `delta` places from `current` in `rows` (wrapping around), if any other.
pub fn step(rows: &[RoomRow], current: RoomId, delta: isize) -> Option<RoomId> {
    let n = rows.len() as isize;
    if n < 2 {
        return None;
    }
    let at = rows.iter().position(|r| r.id == current)? as isize;
    Some(rows[(at + delta).rem_euclid(n) as usize].id)
}

/// Every room and conversation in the sidebar's order.
pub fn all_rows(client: Client) -> Vec<RoomRow> {
    client
        .chat
        .with_untracked(|c| {
            let (mut rooms, direct) = room_rows(c);
            rooms.extend(direct);
            rooms
        })
        .into_iter()
        .filter(|r| r.joined)
        .collect()
}

/// Opens a room from the keyboard and puts the focus in its message box (after the room's
/// view has been built).
pub fn open_and_focus(client: Client, id: RoomId) {
    client.open_room(id);
    // Unless the person already went on into the messages: a key pressed right after (Up to
    // edit the last message) can open an editor before this runs, and keeps the focus there.
    let before = document().active_element();
    crate::components::dom::after(0, move || {
        let now = document().active_element();
        let moved = now != before
            && now.is_some_and(|n| {
                n.closest("[data-testid=message-list]")
                    .ok()
                    .flatten()
                    .is_some()
            });
        if !moved
            && let Some(el) = document()
                .query_selector("[data-testid=composer]")
                .ok()
                .flatten()
                .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
        {
            let _ = el.focus();
        }
    });
}

/// Focuses the first element matching `selector` once the current changes are on screen.
pub fn focus_soon(selector: &'static str) {
    crate::components::dom::after(0, move || {
        let found = document().query_selector(selector).ok().flatten();
        if let Some(el) = found.and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok()) {
            let _ = el.focus();
        }
    });
}

/// The switcher's state.
#[derive(Clone, Copy)]
struct Switcher {
    client: Client,
    open: Var<bool>,
    query: Var<String>,
    /// The index of the chosen row in the current matches.
    chosen: Var<usize>,
    /// Where the focus was before the switcher opened.
    before: Stored<Option<web_sys::HtmlElement>>,
}

/// The quick switcher's place (empty while closed), shown while `open` is true.
pub(crate) fn switcher(client: Client, open: Var<bool>) -> web_sys::Element {
    let s = Switcher {
        client,
        open,
        query: Var::new(String::new()),
        chosen: Var::new(0),
        before: Stored::new(None),
    };
    let host = new_el("div", "switcher-host");
    on(&host, "keydown", move |ev| on_key(s, &ev));
    on(&host, "input", move |ev| {
        if let Some(input) = target(&ev, "input") {
            s.query.set(value_of(&input));
            s.chosen.set(0);
        }
    });
    on(&host, "click", move |ev| on_click(s, &ev));
    dialog_place(&host, open, s.before, move |d| {
        s.query.set(String::new());
        s.chosen.set(0);
        build(s, d);
        // At once, not on the next task: a key typed right after Ctrl+K belongs here.
        move || {
            if let Some(input) = document()
                .query_selector("[data-testid=switcher-input]")
                .ok()
                .flatten()
                .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
            {
                let _ = input.focus();
            }
        }
    });
    host
}

/// A dialog's place at the end of `host`, empty while `open` is false. When it opens, `build`
/// fills a new element with the dialog (untracked) and returns what to do once it is on the page
/// (focus its first field); when it closes, the focus goes back to where it was when it opened,
/// unless `before` was emptied meanwhile (the dialog sent the focus elsewhere).
pub(crate) fn dialog_place<F: FnOnce() + 'static>(
    host: &web_sys::Element,
    open: Var<bool>,
    before: Stored<Option<web_sys::HtmlElement>>,
    build: impl Fn(&web_sys::Element) -> F + 'static,
) {
    let place = Slot::new(host);
    effect(move || {
        if !open.get() {
            place.set(None);
            if let Some(el) = before.try_update_value(Option::take).flatten() {
                let _ = el.focus();
            }
            return;
        }
        let active = document()
            .active_element()
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
        before.set_value(active);
        untrack(|| {
            let d = new_el("div", "");
            let placed = build(&d);
            place.set(Some(d));
            placed();
        });
    });
}

/// The dialog and its list (kept up to date by an effect).
fn build(s: Switcher, host: &web_sys::Node) {
    let backdrop = el(host, "div", "dialog-backdrop");
    attrs(&backdrop, &[("data-testid", "switcher-backdrop")]);
    let dialog = el(host, "div", "dialog switcher");
    attrs(
        &dialog,
        &[
            ("role", "dialog"),
            ("aria-modal", "true"),
            ("aria-labelledby", "switcher-title"),
            ("data-testid", "switcher"),
        ],
    );
    let h2 = el(&dialog, "h2", "");
    attrs(&h2, &[("id", "switcher-title")]);
    text(&h2, t().switcher_title);
    let input = el(&dialog, "input", "");
    attrs(
        &input,
        &[
            ("data-testid", "switcher-input"),
            ("role", "combobox"),
            ("aria-expanded", "true"),
            ("aria-controls", "switcher-list"),
            ("aria-autocomplete", "list"),
            ("aria-label", t().switcher_title),
            ("placeholder", t().switcher_placeholder),
            ("autocomplete", "off"),
            ("spellcheck", "false"),
        ],
    );
    let hint = el(&dialog, "p", "hint");
    text(&hint, t().switcher_hint);
    let ul = el(&dialog, "ul", "switcher-list");
    attrs(
        &ul,
        &[
            ("id", "switcher-list"),
            ("role", "listbox"),
            ("aria-label", t().rooms),
        ],
    );
    effect(move || {
        let query = s.query.get();
        let chosen = s.chosen.get();
        // The list follows the rooms too (a new message changes an unread count).
        s.client.chat.track();
        let found = matches(&all_rows(s.client), &query);
        ul.set_inner_html("");
        if found.is_empty() {
            let li = el(&ul, "li", "empty");
            attrs(&li, &[("data-testid", "switcher-empty")]);
            text(&li, t().switcher_none);
            let _ = input.remove_attribute("aria-activedescendant");
            return;
        }
        let chosen = chosen.min(found.len() - 1);
        for (i, r) in found.iter().enumerate() {
            let li = el(&ul, "li", if i == chosen { "chosen" } else { "" });
            let id = format!("switcher-opt-{}", r.id);
            attrs(
                &li,
                &[
                    ("id", &id),
                    ("role", "option"),
                    ("data-testid", "switcher-option"),
                    ("data-room-id", &r.id.to_string()),
                    ("aria-selected", if i == chosen { "true" } else { "false" }),
                ],
            );
            text(&li, &r.name);
            if r.unread > 0 {
                let badge = el(&li, "span", "unread");
                attrs(&badge, &[("aria-hidden", "true")]);
                text(&badge, &r.unread.to_string());
                let said = el(&li, "span", "visually-hidden");
                text(
                    &said,
                    &format!(
                        ", {}",
                        crate::i18n::fill(t().unread_count, &[("n", &r.unread.to_string())])
                    ),
                );
            }
            if i == chosen {
                let _ = input.set_attribute("aria-activedescendant", &id);
                li.scroll_into_view_with_bool(false);
            }
        }
    });
}

/// Up, Down, Enter, Escape; Tab stays in the box (the dialog has nothing else to reach).
fn on_key(s: Switcher, ev: &web_sys::Event) {
    let Some(key) = ev.dyn_ref::<web_sys::KeyboardEvent>().map(|k| k.key()) else {
        return;
    };
    let count = || matches(&all_rows(s.client), &s.query.get_untracked()).len();
    match key.as_str() {
        "ArrowDown" => {
            ev.prevent_default();
            let n = count();
            if n > 0 {
                s.chosen.update(|c| *c = (*c + 1).min(n - 1));
            }
        }
        "ArrowUp" => {
            ev.prevent_default();
            s.chosen.update(|c| *c = c.saturating_sub(1));
        }
        "Enter" => {
            ev.prevent_default();
            let found = matches(&all_rows(s.client), &s.query.get_untracked());
            let chosen = s.chosen.get_untracked().min(found.len().saturating_sub(1));
            if let Some(r) = found.get(chosen) {
                choose(s, r.id);
            }
        }
        "Escape" => {
            ev.prevent_default();
            ev.stop_propagation();
            s.open.set(false);
        }
        "Tab" => ev.prevent_default(),
        _ => {}
    }
}

/// A click on an option opens it; a click on the backdrop closes the dialog.
fn on_click(s: Switcher, ev: &web_sys::Event) {
    if let Some(li) = target(ev, "[data-testid=switcher-option]") {
        if let Some(id) = li
            .get_attribute("data-room-id")
            .and_then(|v| v.parse::<u64>().ok())
        {
            choose(s, RoomId(id));
        }
    } else if target(ev, "[data-testid=switcher-backdrop]").is_some() {
        s.open.set(false);
    }
}

/// Opens the chosen room and closes the dialog (the focus goes to the room's message box, not
/// back to where it was).
fn choose(s: Switcher, id: RoomId) {
    s.before.set_value(None);
    s.open.set(false);
    open_and_focus(s.client, id);
}

#[cfg(test)]
mod tests {
    use shared::RoomKind;

    use super::*;

    fn row(id: u64, name: &str) -> RoomRow {
        RoomRow {
            id: RoomId(id),
            name: name.to_owned(),
            unread: 0,
            mentions: 0,
            current: false,
            joined: true,
            kind: RoomKind::Public,
        }
    }

    fn names(rows: &[RoomRow]) -> Vec<&str> {
        rows.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn names_that_start_with_the_text_come_before_those_that_contain_it() {
        let rows = [
            row(1, "#general"),
            row(2, "#random"),
            row(3, "#rant"),
            row(4, "Bob"),
        ];
        assert_eq!(names(&matches(&rows, "ran")), ["#random", "#rant"]);
        assert_eq!(
            names(&matches(&rows, "#RA")),
            ["#random", "#rant", "#general"]
        );
        assert_eq!(
            names(&matches(&rows, "")),
            ["#general", "#random", "#rant", "Bob"]
        );
        assert_eq!(names(&matches(&rows, "@bo")), ["Bob"]);
        assert!(matches(&rows, "zzz").is_empty());
    }

    #[test]
    fn names_in_any_script_match() {
        let rows = [row(1, "#技术讨论"), row(2, "#Café ☕")];
        assert_eq!(names(&matches(&rows, "讨论")), ["#技术讨论"]);
        assert_eq!(names(&matches(&rows, "CAFÉ")), ["#Café ☕"]);
    }

    #[test]
    fn stepping_wraps_around_and_needs_another_room() {
        let rows = [row(1, "a"), row(2, "b"), row(3, "c")];
        let id = RoomId;
        assert_eq!(step(&rows, id(1), 1), Some(id(2)));
        assert_eq!(step(&rows, id(3), 1), Some(id(1)));
        assert_eq!(step(&rows, id(1), -1), Some(id(3)));
        assert_eq!(step(&rows[..1], id(1), 1), None);
        assert_eq!(step(&rows, id(9), 1), None);
    }
}
