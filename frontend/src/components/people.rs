//! The people picker: search people by the start of their handle or display name, pick some,
//! then act on them (open a direct conversation, invite them).
//!
//! Test ids: `people-picker`, `people-search` (the field), `people-result` (a found person:
//! `data-user` = handle; click picks), `people-selected` (a picked person: `data-user`; click
//! unpicks), `people-submit` (the action), `people-error`, `people-none` (nothing found).

use leptos::prelude::*;

use crate::components::{click, dyn_opt, dyn_view, on_event, text_line};
use leptos::task::spawn_local;
use shared::{DisplayName, UserInfo, Username};

use crate::api;
use crate::client::Client;

/// The picker's words.
mod text {
    pub const SEARCH: &str = "Search people";
    pub const NONE: &str = "Nobody found.";
    pub fn at_most(n: usize) -> String {
        format!("At most {n} people.")
    }
}

/// How long typing must pause before a search is sent (ms).
const SEARCH_DELAY_MS: u32 = 200;

/// Search, pick up to `max` people (never the user), and run `on_submit` with them.
#[component]
pub fn PeoplePicker(
    /// How many people may be picked.
    max: usize,
    /// The action button's word.
    action: &'static str,
    /// Called with the people picked.
    on_submit: Callback<Vec<(Username, DisplayName)>>,
    /// The action's error, shown below (set by the caller).
    error: RwSignal<Option<String>>,
) -> impl IntoView {
    let client = expect_context::<Client>();
    let me = client.chat.with_untracked(|c| c.me().clone());
    let query = RwSignal::new(String::new());
    let results = RwSignal::new(Vec::<UserInfo>::new());
    let picked = RwSignal::new(Vec::<(Username, DisplayName)>::new());
    let searched = RwSignal::new(false);
    let generation = StoredValue::new(0u64);

    let search = move |q: String| {
        let Some(mine) = generation.try_update_value(|g| {
            *g += 1;
            *g
        }) else {
            return;
        };
        if q.trim().is_empty() {
            results.set(Vec::new());
            searched.set(false);
            return;
        }
        let me = me.clone();
        spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(SEARCH_DELAY_MS).await;
            if generation.try_get_value() != Some(mine) {
                return;
            }
            let found = api::users(&q).await;
            if generation.try_get_value() != Some(mine) {
                return;
            }
            match found {
                Ok(list) => {
                    client.chat.try_update(|c| {
                        c.learn_people(
                            list.iter()
                                .map(|u| (u.user.clone(), u.display_name.clone())),
                        )
                    });
                    results.try_set(list.into_iter().filter(|u| u.user != me).collect());
                    searched.try_set(true);
                }
                Err(e) => {
                    error.try_set(Some(e.to_string()));
                }
            }
        });
    };

    let pick = move |u: UserInfo| {
        error.set(None);
        picked.update(|p| {
            if p.iter().any(|(h, _)| *h == u.user) {
                return;
            }
            if p.len() >= max {
                error.set(Some(text::at_most(max)));
                return;
            }
            p.push((u.user, u.display_name));
        });
    };

    view! {
        <div class="people-picker" data-testid="people-picker">
            <ul class="picked">
                {dyn_view(move || {
                    picked.get().into_iter().map(|(user, name)| {
                        let u = user.clone();
                        view! {
                            <li>
                                <button
                                    class="chip"
                                    data-testid="people-selected"
                                    data-user=user.to_string()
                                    title=format!("@{user}")
                                    on:click=click(move |_| picked.update(|p| p.retain(|(h, _)| *h != u)))
                                >
                                    {format!("{name} ×")}
                                </button>
                            </li>
                        }
                    })
                    .collect_view()
                    .into_any()
                })}
            </ul>
            <input
                data-testid="people-search"
                placeholder=text::SEARCH
                aria-label=text::SEARCH
                autocapitalize="none"
                spellcheck="false"
                prop:value=move || query.get()
                on:input=on_event(move |ev| {
                    let q = event_target_value(&ev);
                    query.set(q.clone());
                    search(q);
                })
            />
            <ul class="results">
                {dyn_view(move || {
                    results.get().into_iter().map(|u| {
                        let chosen = u.clone();
                        view! {
                            <li>
                                <button
                                    class="person link"
                                    data-testid="people-result"
                                    data-user=u.user.to_string()
                                    on:click=click(move |_| pick(chosen.clone()))
                                >
                                    <span class="name">{u.display_name.to_string()}</span>
                                    <span class="handle">{format!(" @{}", u.user)}</span>
                                </button>
                            </li>
                        }
                    })
                    .collect_view()
                    .into_any()
                })}
            </ul>
            {dyn_opt(move || {
                (searched.get() && results.with(Vec::is_empty))
                    .then(|| view! { <p class="empty" data-testid="people-none">{text::NONE}</p> }.into_any())
            })}
            <button
                class="small"
                data-testid="people-submit"
                disabled=move || picked.with(Vec::is_empty)
                on:click=click(move |_| on_submit.run(picked.get_untracked()))
            >
                {action}
            </button>
            {text_line("field-error", "people-error", "alert", Signal::from(error))}
        </div>
    }
}
