//! The connection state badge.
//!
//! Test ids: `conn-badge` (with `data-state` = `connecting` | `online` | `reconnecting` |
//! `offline` | `stopped`), `conn-label` (that word), `conn-countdown` (" in Ns", while waiting).

use leptos::prelude::*;

use crate::components::dom::{Slot, attrs, el, el_with, line};
use crate::components::effect;
use crate::conn::ConnState;
use crate::i18n::{fill, t};

/// Shows the connection state, with the seconds until the next attempt while waiting.
#[component]
pub fn ConnBadge(
    /// The state to show.
    #[prop(into)]
    state: Signal<ConnState>,
) -> impl IntoView {
    view! { <span use:conn_badge=state></span> }
}

/// The state in words, in the page's language.
fn state_word(s: ConnState) -> &'static str {
    let t = t();
    match s {
        ConnState::Connecting => t.state_connecting,
        ConnState::Online => t.online,
        ConnState::Reconnecting { .. } => t.state_reconnecting,
        ConnState::Offline { .. } => t.offline,
        ConnState::Stopped => t.state_stopped,
    }
}

/// Makes `span` the badge of `state` (plain DOM, kept up to date by an effect).
pub(crate) fn conn_badge(span: web_sys::Element, state: Signal<ConnState>) {
    span.set_class_name("badge");
    attrs(
        &span,
        &[
            ("data-testid", "conn-badge"),
            ("role", "status"),
            ("aria-live", "polite"),
        ],
    );
    attrs(&el(&span, "span", "dot"), &[("aria-hidden", "true")]);
    let label = el_with(&span, "span", "", "conn-label");
    let countdown = Slot::new(&span);
    effect(move || {
        let s = state.get();
        attrs(&span, &[("data-state", s.label())]);
        label.set_text_content(Some(state_word(s)));
        countdown.set(s.countdown().map(|n| {
            let c = line(
                "span",
                "countdown",
                "conn-countdown",
                "",
                &fill(t().in_secs, &[("n", &n.to_string())]),
            );
            // Changes every second: not read out (the banner says it once).
            attrs(&c, &[("aria-hidden", "true")]);
            c
        }));
    });
}
