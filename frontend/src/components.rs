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

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

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

/// A memo's value as every [`Computed`] keeps it: behind one type, so that the reactive
/// machinery of a memo (its node, its storage, reading and comparing) is compiled once instead
/// of once per value type.
type Erased = Arc<dyn Any + Send + Sync>;

/// A memo of a `T`: computed when first read and again when what it read changes, its readers
/// told only when the value changed. Kept in one `Memo<Erased>` type for every `T` (see
/// [`Erased`]); a `Computed<T>` only ever holds a `T`, so the casts back cannot fail.
pub(crate) struct Computed<T> {
    memo: Memo<Erased>,
    ty: PhantomData<fn() -> T>,
}

impl<T> Clone for Computed<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Computed<T> {}

/// A memo of what `f` computes: see [`Computed`].
pub(crate) fn computed<T: PartialEq + Send + Sync + 'static>(
    f: impl Fn() -> T + Send + Sync + 'static,
) -> Computed<T> {
    let f: Box<dyn Fn(Option<Erased>) -> (Erased, bool) + Send + Sync> = Box::new(move |prev| {
        let next = f();
        match prev {
            Some(prev) if prev.downcast_ref::<T>() == Some(&next) => (prev, false),
            _ => (Arc::new(next), true),
        }
    });
    Computed {
        memo: Memo::new_owning(f),
        ty: PhantomData,
    }
}

/// The `T` in a [`Computed<T>`]'s value.
fn cast<T: 'static>(value: &Erased) -> &T {
    match value.downcast_ref() {
        Some(v) => v,
        None => unreachable!("a Computed<T> holds a T"),
    }
}

impl<T: Send + Sync + 'static> Computed<T> {
    /// Reads the value, tracked.
    pub(crate) fn with<R>(self, f: impl FnOnce(&T) -> R) -> R {
        f(cast(&self.memo.get()))
    }

    /// Reads the value, untracked.
    pub(crate) fn with_untracked<R>(self, f: impl FnOnce(&T) -> R) -> R {
        f(cast(&self.memo.get_untracked()))
    }

    /// Reads the value, untracked (`None` once the memo is disposed).
    pub(crate) fn try_with_untracked<R>(self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.memo.try_get_untracked().map(|v| f(cast(&v)))
    }

    /// Subscribes the running effect to the value without reading it.
    pub(crate) fn track(self) {
        self.memo.track();
    }
}

impl<T: Clone + Send + Sync + 'static> Computed<T> {
    /// The value, tracked.
    pub(crate) fn get(self) -> T {
        self.with(T::clone)
    }

    /// The value, untracked.
    pub(crate) fn get_untracked(self) -> T {
        self.with_untracked(T::clone)
    }

    /// The value, untracked (`None` once the memo is disposed).
    pub(crate) fn try_get_untracked(self) -> Option<T> {
        self.try_with_untracked(T::clone)
    }
}

impl<T: Clone + Send + Sync + 'static> From<Computed<T>> for Signal<T> {
    fn from(c: Computed<T>) -> Self {
        Signal::derive(move || c.get())
    }
}
