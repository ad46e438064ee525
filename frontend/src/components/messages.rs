//! The message list of the room on screen.
//!
//! Test ids: `message-list` (the scrolling container), `load-older` (button, while older
//! messages exist), `history-loading`, `history-start` ("This is the beginning of #room."),
//! `message` (one per message: `data-seq` once stored, `data-state` = `sent` | `pending` |
//! `failed`, `data-client-id`, `data-author` = the author's handle), inside it `message-author`
//! (the author's display name, with `title` = `@handle`), `message-time`
//! (`datetime` attribute in ISO 8601), `message-text`, and for failed ones `message-error`,
//! `message-discard` and, when sending it again may succeed, `message-retry` (back to pending,
//! same client id); `notice` (a join/leave line, `data-user`, `data-kind` = `joined`|`left`);
//! `gap` (messages known to exist but not shown: `data-from`, `data-to`, `data-count`,
//! `data-state` = `loading` | `failed`), with `gap-retry` (asks again) once it failed.
//!
//! Text is rendered as text nodes only, so markup in a message shows literally.

use leptos::html;
use leptos::prelude::*;
use shared::ClientId;

use crate::browser;
use crate::components::{click, dyn_view};
use crate::timeline::{Delivery, Entry, HistoryState};

/// Distance from the bottom (px) within which the list counts as "at the bottom" and follows
/// new messages.
const STICK_PX: i32 = 40;
/// Distance from the top (px) within which older messages are loaded.
const LOAD_OLDER_PX: i32 = 80;

/// The scroll position as last seen, to keep the view steady when rows are added above.
#[derive(Debug, Clone, Default)]
struct ScrollSnapshot {
    top: i32,
    height: i32,
    at_bottom: bool,
    first_key: Option<String>,
}

/// The scrolling list of messages and notices, oldest first.
///
/// It follows new messages while scrolled to the bottom; scrolled up, it stays where it is.
/// Reaching the top (or pressing "Load older messages") asks for the previous page, and when
/// that page is prepended the visible rows do not move.
#[component]
pub fn MessageList(
    /// The name of the room shown (for the "beginning of" line).
    room: String,
    /// The rows to show.
    #[prop(into)]
    entries: Signal<Vec<Entry>>,
    /// What the top of the list shows.
    #[prop(into)]
    history: Signal<HistoryState>,
    /// Asks for the page before the oldest row.
    on_load_older: Callback<()>,
    /// Drops a failed message.
    on_discard: Callback<ClientId>,
    /// Sends a failed message again.
    on_retry: Callback<ClientId>,
    /// Asks again for the missing messages `(from, to)` of a gap.
    on_retry_gap: Callback<(u64, u64)>,
) -> impl IntoView {
    let list = NodeRef::<html::Div>::new();
    let snapshot = StoredValue::new(ScrollSnapshot {
        at_bottom: true,
        ..ScrollSnapshot::default()
    });
    // `try_` reads throughout: scroll events and animation frames can arrive after the list was
    // disposed (a room switch), and must then do nothing rather than panic.
    let first_key = move || {
        entries
            .try_with_untracked(|e| e.first().map(Entry::key))
            .flatten()
    };
    let wants_older = move || history.try_get_untracked() == Some(HistoryState::More);

    let on_scroll = move |_| {
        let Some(Some(el)) = list.try_get_untracked() else {
            return;
        };
        snapshot.try_set_value(snap(&el, first_key()));
        if el.scroll_top() < LOAD_OLDER_PX && wants_older() {
            on_load_older.try_run(());
        }
    };

    // After the rows change (and the browser laid them out), keep the view in place.
    Effect::new(move |_| {
        entries.track();
        request_animation_frame(move || {
            let Some(Some(el)) = list.try_get_untracked() else {
                return;
            };
            let Some(before) = snapshot.try_get_value() else {
                return;
            };
            let first = first_key();
            let height = el.scroll_height();
            if before.at_bottom {
                el.set_scroll_top(height);
            } else if before.first_key.is_some() && before.first_key != first {
                // Rows were prepended: shift by their height so the same rows stay in view.
                el.set_scroll_top(before.top + (height - before.height));
            }
            let mut now = snap(&el, first);
            // Staying at the bottom is a decision, not a measurement that may lag behind layout.
            now.at_bottom = now.at_bottom || before.at_bottom;
            snapshot.try_set_value(now);
            // A short first page cannot be scrolled: load more until it fills the view.
            if el.scroll_height() <= el.client_height() && wants_older() {
                on_load_older.try_run(());
            }
        });
    });

    let top = dyn_view(move || match history.get() {
        HistoryState::More => view! {
            <button
                class="load-older"
                data-testid="load-older"
                on:click=click(move |_| on_load_older.run(()))
            >
                "Load older messages"
            </button>
        }
        .into_any(),
        HistoryState::Loading | HistoryState::NotLoaded => view! {
            <p class="history-marker" data-testid="history-loading">
                "Loading messages…"
            </p>
        }
        .into_any(),
        HistoryState::Beginning => view! {
            <p class="history-marker" data-testid="history-start">
                {format!("This is the beginning of #{room}.")}
            </p>
        }
        .into_any(),
    });

    view! {
        <div
            class="messages"
            data-testid="message-list"
            node_ref=list
            on:scroll=on_scroll
            role="log"
            aria-live="polite"
        >
            {top}
            <ul class="entries">
                <For
                    each=move || entries.get()
                    key=Entry::key
                    children=move |entry| {
                        view! { <EntryRow entry on_discard on_retry on_retry_gap /> }
                    }
                />
            </ul>
        </div>
    }
}

fn snap(el: &web_sys::HtmlDivElement, first_key: Option<String>) -> ScrollSnapshot {
    let top = el.scroll_top();
    let height = el.scroll_height();
    ScrollSnapshot {
        top,
        height,
        at_bottom: height - top - el.client_height() <= STICK_PX,
        first_key,
    }
}

/// One row: a message (author, local time, text, delivery state), a join/leave notice, or a
/// gap of messages that are missing.
#[component]
pub fn EntryRow(
    /// The row.
    entry: Entry,
    /// Drops a failed message.
    on_discard: Callback<ClientId>,
    /// Sends a failed message again.
    on_retry: Callback<ClientId>,
    /// Asks again for the missing messages `(from, to)` of a gap.
    on_retry_gap: Callback<(u64, u64)>,
) -> impl IntoView {
    match entry {
        Entry::Gap(g) => {
            let n = g.count();
            let plural = if n == 1 { "message" } else { "messages" };
            let (state, body) = if g.loading {
                (
                    "loading",
                    view! { <span>{format!("Loading {n} missing {plural}…")}</span> }.into_any(),
                )
            } else {
                let (from, to) = (g.from, g.to);
                (
                    "failed",
                    view! {
                        <span>{format!("{n} {plural} could not be loaded")}</span>
                        <button
                            class="link"
                            data-testid="gap-retry"
                            on:click=click(move |_| on_retry_gap.run((from, to)))
                        >
                            "Try again"
                        </button>
                    }
                    .into_any(),
                )
            };
            view! {
                <li
                    class="gap"
                    data-testid="gap"
                    data-from=g.from.to_string()
                    data-to=g.to.to_string()
                    data-count=n.to_string()
                    data-state=state
                    role="status"
                >
                    {body}
                </li>
            }
            .into_any()
        }
        Entry::Notice(n) => {
            let kind = if n.online { "joined" } else { "left" };
            view! {
                <li class="notice" data-testid="notice" data-user=n.user.to_string() data-kind=kind>
                    {format!("{} {kind} the room", n.user)}
                </li>
            }
            .into_any()
        }
        Entry::Message {
            seq,
            author,
            author_name,
            text,
            ts,
            client_id,
            delivery,
        } => {
            let time = browser::local_time(ts, browser::now_ms());
            let state = delivery.as_str();
            let status = match &delivery {
                Delivery::Sent => None,
                Delivery::Pending => {
                    Some(view! { <span class="status">"sending…"</span> }.into_any())
                }
                Delivery::Failed { reason, retryable } => {
                    let discard_id = client_id.clone();
                    let retry_id = client_id.clone();
                    let retry = retryable.then(|| {
                        view! {
                            <button
                                class="link"
                                data-testid="message-retry"
                                on:click=click(move |_| {
                                    if let Some(cid) = retry_id.clone() {
                                        on_retry.run(cid);
                                    }
                                })
                            >
                                "Retry"
                            </button>
                        }
                    });
                    Some(
                        view! {
                            <span class="status failed" data-testid="message-error">
                                {format!("Not sent: {reason}")}
                            </span>
                            {retry}
                            <button
                                class="link"
                                data-testid="message-discard"
                                on:click=click(move |_| {
                                    if let Some(cid) = discard_id.clone() {
                                        on_discard.run(cid);
                                    }
                                })
                            >
                                "Discard"
                            </button>
                        }
                        .into_any(),
                    )
                }
            };
            view! {
                <li
                    class="msg"
                    class:pending=matches!(delivery, Delivery::Pending)
                    class:failed=matches!(delivery, Delivery::Failed { .. })
                    data-testid="message"
                    data-seq=seq.map(|s| s.to_string())
                    data-state=state
                    data-client-id=client_id.map(|c| c.into_inner())
                    data-author=author.to_string()
                >
                    <div class="meta">
                        <span
                            class="author"
                            data-testid="message-author"
                            title=format!("@{author}")
                        >
                            {author_name.to_string()}
                        </span>
                        <time data-testid="message-time" datetime=time.iso title=time.full>
                            {time.short}
                        </time>
                        {status}
                    </div>
                    <div class="text" data-testid="message-text">
                        {text.to_string()}
                    </div>
                </li>
            }
            .into_any()
        }
    }
}
