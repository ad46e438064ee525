//! The connection state badge.
//!
//! Test ids: `conn-badge` (with `data-state` = `connecting` | `online` | `reconnecting` |
//! `offline` | `stopped`), `conn-label` (that word), `conn-countdown` (" in Ns", while waiting).

use leptos::prelude::*;

use crate::components::{dyn_fn, dyn_opt};
use crate::conn::ConnState;

/// Shows the connection state, with the seconds until the next attempt while waiting.
#[component]
pub fn ConnBadge(
    /// The state to show.
    #[prop(into)]
    state: Signal<ConnState>,
) -> impl IntoView {
    view! {
        <span
            class="badge"
            data-testid="conn-badge"
            data-state=move || state.get().label()
            role="status"
            aria-live="polite"
        >
            <span class="dot" aria-hidden="true"></span>
            <span data-testid="conn-label">{dyn_fn(move || state.get().label())}</span>
            {dyn_opt(move || {
                state
                    .get()
                    .countdown()
                    .map(|s| {
                        view! {
                            <span class="countdown" data-testid="conn-countdown">
                                {format!(" in {s}s")}
                            </span>
                        }.into_any()
                    })
            })}
        </span>
    }
}
