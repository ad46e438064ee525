//! The search dialog (the header's search button, Ctrl+Shift+F, or `/` outside a text field):
//! words to find, in the room on screen or every room the person may read, optionally only
//! messages with files or by one author. Enter searches; the hits (room, author, time, the
//! message as plain text) are a list of buttons, newest first within the server's ranking, with
//! "More results" while the server has more (`next` as the next `cursor`). Choosing a hit
//! closes the dialog, opens its room and jumps to the message: a few older pages load until it
//! is there, or a window of the history around it opens when it is further back (see
//! [`crate::components::messages`]); then it is scrolled to, focused and highlighted.
//! Escape closes the dialog and gives the focus back to where it was; Tab stays inside it; Up
//! and Down move between hits.
//!
//! Test ids: `search-open` (the header's button), `search` (the dialog), `search-input`,
//! `search-this-room`, `search-has-file`, `search-author`, `search-after`, `search-before` (dates), `search-submit`, `search-status`
//! (searching, nothing found, or the error), `search-result` (with `data-room-id`, `data-seq`),
//! `search-more`, `search-close`.

use leptos::prelude::*;
use shared::{RoomId, SearchHit};
use wasm_bindgen::JsCast;

use crate::api::{self, Search};
use crate::browser;
use crate::client::Client;
use crate::components::Stored;
use crate::components::Var;
use crate::components::dom::{
    Slot, attrs, el, el_with, key_of, new_el, on, target, text, value_of,
};
use crate::components::effect;
use crate::components::messages::start_of;
use crate::components::switcher::dialog_place;
use crate::i18n::{fill, t};

/// What the dialog shows under the form.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    /// Nothing asked yet.
    Idle,
    /// A page is on its way.
    Searching,
    /// The pages so far (possibly none found).
    Done,
    /// The search failed: why.
    Failed(String),
}

/// The dialog's state.
#[derive(Clone, Copy)]
struct State {
    client: Client,
    open: Var<bool>,
    /// The search the hits answer.
    asked: Stored<Search>,
    hits: Var<Vec<SearchHit>>,
    next: Var<Option<String>>,
    status: Var<Status>,
    /// Where the focus was before the dialog opened.
    before: Stored<Option<web_sys::HtmlElement>>,
}

/// The search dialog's place (empty while closed), shown while `open` is true.
pub(crate) fn search_dialog(client: Client, open: Var<bool>) -> web_sys::Element {
    let s = State {
        client,
        open,
        asked: Stored::new(Search::default()),
        hits: Var::new(Vec::new()),
        next: Var::new(None),
        status: Var::new(Status::Idle),
        before: Stored::new(None),
    };
    let host = new_el("div", "search-host");
    on(&host, "keydown", move |ev| on_key(s, &ev));
    on(&host, "submit", move |ev| {
        ev.prevent_default();
        if let Some(form) = target(&ev, "form") {
            ask(s, &form);
        }
    });
    on(&host, "click", move |ev| on_click(s, &ev));
    dialog_place(&host, open, s.before, move |d| {
        build(s, d);
        || {
            // The last words, selected: typing replaces them, an arrow keeps them.
            if let Some(input) = document()
                .query_selector("[data-testid=search-input]")
                .ok()
                .flatten()
                .and_then(|i| i.dyn_into::<web_sys::HtmlInputElement>().ok())
            {
                let _ = input.focus();
                input.select();
            }
        }
    });
    host
}

/// Reads the form and asks for the first page.
fn ask(s: State, form: &web_sys::Element) {
    let field = |id: &str| {
        form.query_selector(&format!("[data-testid={id}]"))
            .ok()
            .flatten()
    };
    let checked = |id: &str| {
        field(id)
            .and_then(|e| e.dyn_into::<web_sys::HtmlInputElement>().ok())
            .is_some_and(|i| i.checked())
    };
    let q = field("search-input")
        .map(|e| value_of(&e))
        .unwrap_or_default();
    if q.trim().is_empty() {
        return;
    }
    let search = Search {
        q,
        room: checked("search-this-room").then(|| s.client.chat.with_untracked(|c| c.current())),
        author: field("search-author")
            .map(|e| value_of(&e))
            .unwrap_or_default(),
        has_file: checked("search-has-file"),
        // A day range, inclusive: from the start of the first day to the end of the last.
        after: field("search-after").and_then(|e| browser::local_day_start(&value_of(&e), 0)),
        before: field("search-before").and_then(|e| browser::local_day_start(&value_of(&e), 1)),
    };
    s.asked.set_value(search);
    s.hits.set(Vec::new());
    s.next.set(None);
    page(s, None);
}

/// Asks for a page (`cursor`: the next of the one before) and adds its hits.
fn page(s: State, cursor: Option<String>) {
    s.status.set(Status::Searching);
    let search = s.asked.get_value();
    leptos::task::spawn_local(async move {
        match api::search(&search, cursor.as_deref()).await {
            Ok(p) => {
                // An answer to an older search (the form was sent again meanwhile) is dropped.
                if s.asked.try_with_value(|a| *a == search) != Some(true) {
                    return;
                }
                s.hits.try_update(|h| h.extend(p.hits));
                s.next.try_set(p.next);
                s.status.try_set(Status::Done);
            }
            Err(e) => {
                s.status.try_set(Status::Failed(e.to_string()));
            }
        }
    });
}

/// The dialog: the form, the status line, the hits and "More results".
fn build(s: State, host: &web_sys::Node) {
    el(host, "div", "dialog-backdrop");
    let dialog = el(host, "div", "dialog search");
    attrs(
        &dialog,
        &[
            ("role", "dialog"),
            ("aria-modal", "true"),
            ("aria-labelledby", "search-title"),
            ("data-testid", "search"),
        ],
    );
    let h2 = el(&dialog, "h2", "");
    attrs(&h2, &[("id", "search-title")]);
    text(&h2, t().search_title);
    let form = el(&dialog, "form", "search-form");
    attrs(&form, &[("role", "search")]);
    let row = el(&form, "div", "search-row");
    let input = el_with(&row, "input", "", "search-input");
    let asked = s.asked.get_value();
    attrs(
        &input,
        &[
            ("type", "search"),
            ("aria-label", t().search_words),
            ("placeholder", t().search_words),
            ("maxlength", &shared::SEARCH_MAX_CHARS.to_string()),
            ("autocomplete", "off"),
            ("value", &asked.q),
        ],
    );
    let go = el_with(&row, "button", "", "search-submit");
    attrs(&go, &[("type", "submit")]);
    text(&go, t().search);
    let filters = el(&form, "div", "search-filters");
    let room = s.client.chat.with_untracked(|c| c.room_title(c.current()));
    check(
        &filters,
        "search-this-room",
        &fill(t().search_this_room, &[("room", &room)]),
        asked.room.is_some(),
    );
    check(
        &filters,
        "search-has-file",
        t().search_has_file,
        asked.has_file,
    );
    let author = el_with(&filters, "input", "", "search-author");
    attrs(
        &author,
        &[
            ("type", "text"),
            ("aria-label", t().search_author),
            ("placeholder", t().search_author),
            ("autocomplete", "off"),
            ("value", &asked.author),
        ],
    );
    date_field(&filters, "search-after", t().search_from, asked.after);
    date_field(
        &filters,
        "search-before",
        t().search_until,
        asked.before.map(|b| b - 1),
    );
    text(&el(&dialog, "p", "hint"), t().search_hint);
    let status_slot = Slot::new(&dialog);
    let ul = el(&dialog, "ul", "search-results");
    attrs(&ul, &[("aria-label", t().search_results)]);
    let more_slot = Slot::new(&dialog);
    let buttons = el(&dialog, "div", "dialog-buttons");
    let close = el_with(&buttons, "button", "secondary", "search-close");
    attrs(&close, &[("type", "button")]);
    text(&close, t().close);
    effect(move || {
        let status = s.status.get();
        let none = status == Status::Done && s.hits.with(Vec::is_empty);
        let line = match &status {
            Status::Searching => Some(t().searching.to_owned()),
            Status::Failed(e) => Some(e.clone()),
            _ if none => Some(t().search_none.to_owned()),
            _ => None,
        };
        let role = if matches!(status, Status::Failed(_)) {
            "alert"
        } else {
            "status"
        };
        status_slot.text_line("search-status", "search-status", role, line.as_deref());
        more_slot.set((s.next.get().is_some() && status == Status::Done).then(|| {
            let b = new_el("button", "secondary small");
            attrs(&b, &[("type", "button"), ("data-testid", "search-more")]);
            text(&b, t().search_more);
            b
        }));
    });
    effect(move || {
        let now = browser::now_ms();
        let shown = ul.child_element_count() as usize;
        s.hits.with(|hits| {
            if hits.len() < shown {
                ul.set_inner_html("");
            }
            let shown = ul.child_element_count() as usize;
            for h in hits.iter().skip(shown) {
                hit(s.client, &ul, h, now);
            }
        });
    });
}

/// A labelled checkbox.
fn check(parent: &web_sys::Element, testid: &str, label: &str, on: bool) {
    let l = el(parent, "label", "check");
    let b = el_with(&l, "input", "", testid);
    attrs(&b, &[("type", "checkbox")]);
    if on {
        attrs(&b, &[("checked", "")]);
    }
    text(&el(&l, "span", ""), label);
}

/// A labelled date field of the filters, showing the day of `at` (local time) if any.
fn date_field(parent: &web_sys::Element, testid: &str, label: &str, at: Option<i64>) {
    let l = el(parent, "label", "date");
    text(&el(&l, "span", ""), label);
    let input = el_with(&l, "input", "", testid);
    attrs(&input, &[("type", "date")]);
    if let Some(at) = at {
        let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at as f64));
        let day = format!(
            "{:04}-{:02}-{:02}",
            d.get_full_year(),
            d.get_month() + 1,
            d.get_date()
        );
        attrs(&input, &[("value", &day)]);
    }
}

/// One hit: a button naming the room, the author and the time, with the message's start.
fn hit(client: Client, ul: &web_sys::Element, h: &SearchHit, now: i64) {
    let m = &h.message;
    let li = el(ul, "li", "");
    let b = el_with(&li, "button", "search-hit", "search-result");
    attrs(
        &b,
        &[
            ("type", "button"),
            ("data-room-id", &m.room.to_string()),
            ("data-seq", &m.seq.to_string()),
        ],
    );
    let room = client
        .chat
        .with_untracked(|c| c.info(m.room).is_some().then(|| c.room_title(m.room)))
        .unwrap_or_else(|| format!("#{}", h.room_name));
    let meta = el(&b, "span", "meta");
    text(&el(&meta, "span", "room"), &room);
    text(&el(&meta, "span", "author"), m.author_name.as_str());
    let time = browser::local_time(m.ts, now);
    let tm = el(&meta, "time", "");
    attrs(&tm, &[("datetime", &time.iso), ("title", &time.full)]);
    text(&tm, &time.short);
    let body = el(&b, "span", "text");
    text(&body, &start_of(&crate::markdown::plain(&m.text), 200));
    if !m.attachments.is_empty() {
        let n = m.attachments.len().to_string();
        text(
            &el(&b, "span", "files"),
            &fill(t().search_has_files, &[("n", &n)]),
        );
    }
}

/// Escape closes; Tab and Shift+Tab go round inside the dialog; Up and Down move between hits.
fn on_key(s: State, ev: &web_sys::Event) {
    let key = key_of(ev);
    let Some(dialog) = target(ev, "[data-testid=search]") else {
        return;
    };
    let focusables = || {
        let list = dialog
            .query_selector_all("input, button")
            .ok()
            .map(|l| {
                (0..l.length())
                    .filter_map(|i| l.item(i))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        list.into_iter()
            .filter_map(|n| n.dyn_into::<web_sys::HtmlElement>().ok())
            .collect::<Vec<_>>()
    };
    let active = document().active_element();
    let at = |list: &[web_sys::HtmlElement]| {
        list.iter().position(|e| {
            active
                .as_ref()
                .is_some_and(|a| a == e.unchecked_ref::<web_sys::Element>())
        })
    };
    match key.as_str() {
        "Escape" => {
            ev.prevent_default();
            ev.stop_propagation();
            s.open.set(false);
        }
        "Tab" => {
            let list = focusables();
            let shift = ev
                .dyn_ref::<web_sys::KeyboardEvent>()
                .is_some_and(web_sys::KeyboardEvent::shift_key);
            let n = list.len();
            let wrap = match (at(&list), shift) {
                (Some(0), true) => list.last(),
                (Some(i), false) if i + 1 == n => list.first(),
                (None, _) => list.first(),
                _ => None,
            };
            if let Some(e) = wrap {
                ev.prevent_default();
                let _ = e.focus();
            }
        }
        "ArrowDown" | "ArrowUp" => {
            let Some(here) = target(ev, "[data-testid=search-result]") else {
                // Down from the words: to the first hit.
                if key == "ArrowDown"
                    && target(ev, "[data-testid=search-input]").is_some()
                    && let Some(first) = dialog
                        .query_selector("[data-testid=search-result]")
                        .ok()
                        .flatten()
                        .and_then(|b| b.dyn_into::<web_sys::HtmlElement>().ok())
                {
                    ev.prevent_default();
                    let _ = first.focus();
                }
                return;
            };
            ev.prevent_default();
            let li = here.parent_element();
            let next = li.and_then(|li| {
                if key == "ArrowDown" {
                    li.next_element_sibling()
                } else {
                    li.previous_element_sibling()
                }
            });
            if let Some(b) = next
                .and_then(|n| n.first_element_child())
                .and_then(|b| b.dyn_into::<web_sys::HtmlElement>().ok())
            {
                let _ = b.focus();
            }
        }
        _ => {}
    }
}

/// A hit opens its message; "More results" asks for the next page; the close button and the
/// backdrop close.
fn on_click(s: State, ev: &web_sys::Event) {
    if let Some(b) = target(ev, "[data-testid=search-result]") {
        let num = |name| b.get_attribute(name).and_then(|v| v.parse::<u64>().ok());
        if let (Some(room), Some(seq)) = (num("data-room-id"), num("data-seq")) {
            s.before.set_value(None);
            s.open.set(false);
            s.client.open_room(RoomId(room));
            s.client.jump.set(Some(seq));
        }
    } else if target(ev, "[data-testid=search-more]").is_some() {
        page(s, s.next.get_untracked());
    } else if target(ev, "[data-testid=search-close], .dialog-backdrop").is_some() {
        s.open.set(false);
    }
}
