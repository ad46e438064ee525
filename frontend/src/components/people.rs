//! The people picker: search people by the start of their handle or display name, pick some,
//! then act on them (open a direct conversation, invite them).
//!
//! Test ids: `people-picker`, `people-search` (the field), `people-result` (a found person:
//! `data-user` = handle; click picks), `people-selected` (a picked person: `data-user`; click
//! unpicks), `people-submit` (the action), `people-error`, `people-none` (nothing found).

//!
//! The picker is plain DOM (see [`crate::components::dom`]): one delegated handler per event
//! kind, and one effect per part that changes.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{DisplayName, UserInfo, Username};

use crate::api;
use crate::client::Client;
use crate::components::Stored;
use crate::components::Var;
use crate::components::dom::{Slot, attrs, el, el_with, new_el, on, target, text, value_of};
use crate::components::effect;
use crate::i18n::t;

/// The picker's words.
mod text {
    use crate::i18n::{fill, t};

    pub fn at_most(n: usize) -> String {
        fill(t().at_most_people, &[("n", &n.to_string())])
    }
}

/// How long typing must pause before a search is sent (ms).
const SEARCH_DELAY_MS: u32 = 200;

/// The picker's state, shared by its handlers and effects (every field is a `Copy` handle).
#[derive(Clone, Copy)]
struct Picker {
    client: Client,
    max: usize,
    action: &'static str,
    on_submit: Callback<Vec<(Username, DisplayName)>>,
    error: Var<Option<String>>,
    results: Var<Vec<UserInfo>>,
    picked: Var<Vec<(Username, DisplayName)>>,
    searched: Var<bool>,
    generation: Stored<u64>,
}

/// Search, pick up to `max` people (never the user), and run `on_submit` with them: the
/// picker's element (plain DOM, with its handlers), for the [`Client`] in context.
pub(crate) fn people_picker(
    max: usize,
    action: &'static str,
    on_submit: Callback<Vec<(Username, DisplayName)>>,
    error: Var<Option<String>>,
) -> web_sys::Element {
    let p = Picker {
        client: expect_context::<Client>(),
        max,
        action,
        on_submit,
        error,
        results: Var::new(Vec::new()),
        picked: Var::new(Vec::new()),
        searched: Var::new(false),
        generation: Stored::new(0),
    };
    let div = new_el("div", "people-picker");
    attrs(&div, &[("data-testid", "people-picker")]);
    on(&div, "click", move |ev| on_click(p, &ev));
    on(&div, "input", move |ev| {
        if let Some(field) = target(&ev, "input") {
            search(p, value_of(&field));
        }
    });
    build(div.clone(), p);
    div
}

/// Builds the picker's parts in `div` as it is created (a directive), each kept up to date by
/// its own effect.
fn build(div: web_sys::Element, p: Picker) {
    let picked_ul = el(&div, "ul", "picked");
    effect(move || {
        picked_ul.set_text_content(None);
        for (user, name) in p.picked.get() {
            let b = el_with(
                &el(&picked_ul, "li", ""),
                "button",
                "chip",
                "people-selected",
            );
            attrs(
                &b,
                &[("data-user", user.as_str()), ("title", &format!("@{user}"))],
            );
            text(&b, &format!("{name} ×"));
        }
    });
    let input = el_with(&div, "input", "", "people-search");
    attrs(
        &input,
        &[
            ("placeholder", t().search_people),
            ("aria-label", t().search_people),
            ("autocapitalize", "none"),
            ("spellcheck", "false"),
        ],
    );
    let results_ul = el(&div, "ul", "results");
    effect(move || {
        results_ul.set_text_content(None);
        for u in p.results.get() {
            let b = el_with(
                &el(&results_ul, "li", ""),
                "button",
                "person link",
                "people-result",
            );
            attrs(&b, &[("data-user", u.user.as_str())]);
            text(&el(&b, "span", "name"), u.display_name.as_str());
            text(&el(&b, "span", "handle"), &format!(" @{}", u.user));
        }
    });
    let none = Slot::new(&div);
    effect(move || {
        let empty = p.searched.get() && p.results.with(Vec::is_empty);
        none.text_line(
            "empty",
            "people-none",
            "",
            empty.then_some(t().nobody_found),
        );
    });
    let submit = el_with(&div, "button", "small", "people-submit");
    text(&submit, p.action);
    effect(move || {
        if p.picked.with(Vec::is_empty) {
            let _ = submit.set_attribute("disabled", "");
        } else {
            let _ = submit.remove_attribute("disabled");
        }
    });
    let error = Slot::new(&div);
    effect(move || {
        error.text_line(
            "field-error",
            "people-error",
            "alert",
            p.error.get().as_deref(),
        )
    });
}

/// Searches for `q` once typing pauses (clears the results for an empty query).
fn search(p: Picker, q: String) {
    let Some(mine) = p.generation.try_update_value(|g| {
        *g += 1;
        *g
    }) else {
        return;
    };
    if q.trim().is_empty() {
        p.results.set(Vec::new());
        p.searched.set(false);
        return;
    }
    let me = p.client.chat.with_untracked(|c| c.me().clone());
    spawn_local(async move {
        gloo_timers::future::TimeoutFuture::new(SEARCH_DELAY_MS).await;
        if p.generation.try_get_value() != Some(mine) {
            return;
        }
        let found = api::users(&q).await;
        if p.generation.try_get_value() != Some(mine) {
            return;
        }
        match found {
            Ok(list) => {
                p.client.chat.try_update(|c| {
                    c.learn_people(
                        list.iter()
                            .map(|u| (u.user.clone(), u.display_name.clone())),
                    )
                });
                p.results
                    .try_set(list.into_iter().filter(|u| u.user != me).collect());
                p.searched.try_set(true);
            }
            Err(e) => {
                p.error.try_set(Some(e.to_string()));
            }
        }
    });
}

/// The picker's buttons, by test id.
fn on_click(p: Picker, ev: &web_sys::Event) {
    let Some(btn) = target(ev, "button[data-testid]") else {
        return;
    };
    let user = btn.get_attribute("data-user").unwrap_or_default();
    match btn
        .get_attribute("data-testid")
        .unwrap_or_default()
        .as_str()
    {
        "people-selected" => p.picked.update(|v| v.retain(|(h, _)| h.as_str() != user)),
        "people-result" => {
            let Some(u) = p
                .results
                .with_untracked(|r| r.iter().find(|u| u.user.as_str() == user).cloned())
            else {
                return;
            };
            p.error.set(None);
            p.picked.update(|v| {
                if v.iter().any(|(h, _)| *h == u.user) {
                    return;
                }
                if v.len() >= p.max {
                    p.error.set(Some(text::at_most(p.max)));
                    return;
                }
                v.push((u.user, u.display_name));
            });
        }
        "people-submit" => p.on_submit.run(p.picked.get_untracked()),
        _ => {}
    }
}
