//! The views, cut by screen area. Leaf components take what they show as props (signals) and
//! report user actions through callbacks, so component tests can mount them alone; the
//! containers ([`ChatLayout`], [`Sidebar`]) take the [`crate::client::Client`] from context.
//!
//! Every element an end-to-end test drives carries a `data-testid`; each component module's
//! docs list the ids it renders.

use std::sync::{Arc, Mutex};

use leptos::prelude::*;

mod app;
mod auth;
mod badge;
mod composer;
pub(crate) mod dom;
mod layout;
mod members;
mod messages;
mod people;
mod sidebar;

pub use app::App;
pub use auth::{AuthForm, AuthMode};
pub use badge::ConnBadge;
pub use composer::Composer;
pub use layout::{ChatLayout, ChatPage};
pub use members::MemberPanel;
pub use messages::{MessageList, message_body};
pub use people::PeoplePicker;
pub use sidebar::{RoomRow, Sidebar, room_rows};

/// A paragraph showing `text` while there is some (an error or a note under a form): one view
/// type shared by every such slot, so its code exists once.
pub(crate) fn text_line(
    class: &'static str,
    testid: &'static str,
    role: &'static str,
    text: Signal<Option<String>>,
) -> impl IntoView {
    dyn_opt(move || {
        text.get().map(|t| {
            view! {
                <p class=class data-testid=testid role=role>
                    {t}
                </p>
            }
            .into_any()
        })
    })
}

/// A reactive part of a view behind a shared function type. Leptos compiles the machinery that
/// re-renders a `move || ...` child once per closure type; behind `Dyn<T>` it exists once per
/// output type instead, which keeps the bundle small.
pub(crate) type Dyn<T> = Arc<Mutex<dyn FnMut() -> T + Send>>;

/// A view that may change: see [`Dyn`].
pub(crate) fn dyn_view(f: impl Fn() -> AnyView + Send + 'static) -> Dyn<AnyView> {
    Arc::new(Mutex::new(f))
}

/// A view that may come and go: see [`Dyn`].
pub(crate) fn dyn_opt(f: impl Fn() -> Option<AnyView> + Send + 'static) -> Dyn<Option<AnyView>> {
    Arc::new(Mutex::new(f))
}

/// A text that may change: see [`Dyn`].
pub(crate) fn dyn_text(f: impl Fn() -> String + Send + 'static) -> Dyn<String> {
    Arc::new(Mutex::new(f))
}

/// Any other child that may change (a label): see [`Dyn`].
pub(crate) fn dyn_fn<T: 'static>(f: impl FnMut() -> T + Send + 'static) -> Dyn<T> {
    Arc::new(Mutex::new(f))
}

/// A click handler behind one shared type, so the code that attaches it exists once.
pub(crate) fn click(
    f: impl FnMut(leptos::ev::MouseEvent) + 'static,
) -> Box<dyn FnMut(leptos::ev::MouseEvent)> {
    Box::new(f)
}

/// An `input` or `change` handler behind one shared type: see [`click`].
pub(crate) fn on_event(
    f: impl FnMut(leptos::ev::Event) + 'static,
) -> Box<dyn FnMut(leptos::ev::Event)> {
    Box::new(f)
}

/// A form's `submit` handler behind one shared type: see [`click`].
pub(crate) fn submit_handler(
    f: impl FnMut(leptos::ev::SubmitEvent) + 'static,
) -> Box<dyn FnMut(leptos::ev::SubmitEvent)> {
    Box::new(f)
}

/// An effect behind one shared function type: the code that schedules and runs an effect is
/// compiled once, not once per closure (see [`Dyn`]). The effect lives as long as the owner
/// it is created in.
pub(crate) fn effect(f: impl FnMut() + 'static) {
    let f: Box<dyn FnMut()> = Box::new(f);
    Effect::new(f);
}

/// A memo's function behind one shared type per value type: see [`Dyn`].
pub(crate) type MemoFn<T> = Box<dyn Fn(Option<&T>) -> T + Send + Sync>;

/// Puts a memo's function behind [`MemoFn`].
pub(crate) fn memo_fn<T: 'static>(
    f: impl Fn(Option<&T>) -> T + Send + Sync + 'static,
) -> MemoFn<T> {
    Box::new(f)
}
