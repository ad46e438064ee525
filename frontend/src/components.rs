//! The views, cut by screen area, built as plain DOM (see [`dom`]): Leptos provides the
//! reactive graph (signals, memos, effects, owners), and each part is an element built by a
//! function, kept up to date by effects, with delegated or per-element handlers. Leaf views take
//! what they show as signals and report user actions through callbacks; the containers (the
//! chat layout, the sidebar, the member panel) take the [`crate::client::Client`] from context.
//! The few Leptos components left ([`ChatLayout`], [`AuthForm`], [`Composer`], [`ConnBadge`])
//! are thin wrappers, so that component tests can mount them alone.
//!
//! Every element an end-to-end test drives carries a `data-testid`; each component module's
//! docs list the ids it renders.

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
mod search;
mod settings;
mod sidebar;
mod switcher;
mod viewer;

pub use app::App;
pub use auth::{AuthForm, AuthMode};
pub use badge::ConnBadge;
pub use composer::Composer;
pub use layout::ChatLayout;
pub use messages::{attachments, message_body};
pub use settings::{Theme, apply_theme, stored_theme};
pub use sidebar::{RoomRow, room_rows};

/// An effect behind one shared function type: the code that schedules and runs an effect is
/// compiled once, not once per closure. The effect lives as long as the owner
/// it is created in.
pub(crate) fn effect(f: impl FnMut() + 'static) {
    let f: Box<dyn FnMut()> = Box::new(f);
    Effect::new(f);
}

/// A memo's function behind one shared type per value type: see [`effect`].
pub(crate) type MemoFn<T> = Box<dyn Fn(Option<&T>) -> T + Send + Sync>;

/// Puts a memo's function behind [`MemoFn`].
pub(crate) fn memo_fn<T: 'static>(
    f: impl Fn(Option<&T>) -> T + Send + Sync + 'static,
) -> MemoFn<T> {
    Box::new(f)
}
