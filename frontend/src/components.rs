//! The views, cut by screen area, built as plain DOM (see [`dom`]): Leptos provides the
//! reactive graph (signals, memos, effects, owners), and each part is an element built by a
//! function, kept up to date by effects, with delegated or per-element handlers. Leaf views take
//! what they show as signals and report user actions through callbacks; the containers (the
//! chat layout, the sidebar, the member panel) take the [`crate::client::Client`] from context.
//! The few Leptos components left ([`ChatLayout`], [`AuthForm`], [`Composer`], [`ConnBadge`])
//! are thin wrappers, so that component tests can mount them alone. The views keep their state
//! in [`Var`]s, [`Computed`]s and [`Stored`]s: Leptos's signals, memos and stored values with
//! the value's type erased, so that their code is in the bundle once rather than once per type.
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
pub struct Computed<T> {
    memo: Memo<Erased>,
    ty: PhantomData<fn() -> T>,
}

impl<T> Clone for Computed<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Computed<T> {}

/// A memo of what `f` computes: see [`Computed`]. Only making the value and comparing two
/// values are compiled per `T`; keeping the old value or the new one is in [`erased_memo`], once.
pub(crate) fn computed<T: PartialEq + Send + Sync + 'static>(
    f: impl Fn() -> T + Send + Sync + 'static,
) -> Computed<T> {
    Computed {
        memo: erased_memo(Box::new(move || Arc::new(f())), same::<T>),
        ty: PhantomData,
    }
}

/// Whether two memo values, both `T`s, are equal.
fn same<T: PartialEq + 'static>(a: &dyn Any, b: &dyn Any) -> bool {
    a.downcast_ref::<T>() == b.downcast_ref::<T>()
}

/// The memo behind every [`Computed`]: `make` gives the next value, and the previous one is
/// kept (its readers not told) when `same` finds them equal.
fn erased_memo(
    make: Box<dyn Fn() -> Erased + Send + Sync>,
    same: fn(&dyn Any, &dyn Any) -> bool,
) -> Memo<Erased> {
    Memo::new_owning(move |prev: Option<Erased>| {
        let next = make();
        match prev {
            Some(prev) if same(&*prev, &*next) => (prev, false),
            _ => (next, true),
        }
    })
}

/// The `T` in a [`Computed<T>`]'s or a [`Var<T>`]'s value.
fn cast<T: 'static>(value: &dyn Any) -> &T {
    match value.downcast_ref() {
        Some(v) => v,
        None => wrong_type(),
    }
}

/// A cast back that cannot fail failed: one cold path shared by every [`cast`] and
/// [`cast_mut`] rather than a panic compiled into each.
#[cold]
#[inline(never)]
fn wrong_type() -> ! {
    unreachable!("a Computed<T>, Var<T> or Stored<T> holds a T")
}

impl<T: Send + Sync + 'static> Computed<T> {
    /// Reads the value, tracked.
    pub(crate) fn with<R>(self, f: impl FnOnce(&T) -> R) -> R {
        f(cast(&*self.memo.get()))
    }

    /// Reads the value, untracked.
    pub(crate) fn with_untracked<R>(self, f: impl FnOnce(&T) -> R) -> R {
        f(cast(&*self.memo.get_untracked()))
    }

    /// Reads the value, untracked (`None` once the memo is disposed).
    pub(crate) fn try_with_untracked<R>(self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.memo.try_get_untracked().map(|v| f(cast(&*v)))
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

/// A signal's value as every [`Var`] keeps it: behind one type, like [`Erased`], so that a
/// signal's machinery (its storage, reading, writing, notifying) is compiled once.
type Boxed = Box<dyn Any + Send + Sync>;

/// The `T` in a [`Var<T>`]'s or a [`Stored<T>`]'s value, to change.
fn cast_mut<T: 'static>(value: &mut dyn Any) -> &mut T {
    match value.downcast_mut() {
        Some(v) => v,
        None => wrong_type(),
    }
}

/// A signal of a `T` (read and written; every write tells its readers), kept in one
/// `RwSignal<Boxed>` type for every `T` (see [`Boxed`]); a `Var<T>` only ever holds a `T`.
pub struct Var<T> {
    signal: RwSignal<Boxed>,
    ty: PhantomData<fn() -> T>,
}

impl<T> Clone for Var<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Var<T> {}

impl<T> std::fmt::Debug for Var<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.signal.fmt(f)
    }
}

impl<T: Send + Sync + 'static> Var<T> {
    /// A signal holding `value`, owned by the current owner.
    pub fn new(value: T) -> Self {
        Var {
            signal: RwSignal::new(Box::new(value)),
            ty: PhantomData,
        }
    }

    /// Reads the value, tracked.
    pub fn with<R>(self, f: impl FnOnce(&T) -> R) -> R {
        self.signal.track();
        self.with_untracked(f)
    }

    /// Reads the value, untracked.
    pub fn with_untracked<R>(self, f: impl FnOnce(&T) -> R) -> R {
        f(cast(&**self.signal.read_untracked()))
    }

    /// Reads the value, untracked (`None` once the signal is disposed).
    pub fn try_with_untracked<R>(self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.signal.try_read_untracked().map(|v| f(cast(&**v)))
    }

    /// Subscribes the running effect to the value without reading it.
    pub fn track(self) {
        self.signal.track();
    }

    /// Changes the value and tells its readers (`None` once the signal is disposed).
    pub fn try_update<R>(self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut f = Some(f);
        let mut out = None;
        // One closure type for every `T` and `f`: the signal's update code is compiled once.
        let run: &mut dyn FnMut(&mut Boxed) = &mut |v| {
            if let Some(f) = f.take() {
                out = Some(f(cast_mut(&mut **v)));
            }
        };
        self.signal.try_update(run)?;
        out
    }

    /// Changes the value without telling its readers (`None` once the signal is disposed).
    pub fn try_update_untracked<R>(self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut f = Some(f);
        let mut out = None;
        let run: &mut dyn FnMut(&mut Boxed) = &mut |v| {
            if let Some(f) = f.take() {
                out = Some(f(cast_mut(&mut **v)));
            }
        };
        self.signal.try_update_untracked(run)?;
        out
    }

    /// Changes the value and tells its readers.
    pub fn update(self, f: impl FnOnce(&mut T)) {
        self.try_update(f);
    }

    /// Replaces the value and tells its readers (gives `value` back once the signal is
    /// disposed).
    pub fn try_set(self, value: T) -> Option<T> {
        let mut value = Some(value);
        self.try_update(|v| {
            if let Some(new) = value.take() {
                *v = new;
            }
        });
        value
    }

    /// Replaces the value and tells its readers.
    pub fn set(self, value: T) {
        self.try_set(value);
    }
}

impl<T: Clone + Send + Sync + 'static> Var<T> {
    /// The value, tracked.
    pub fn get(self) -> T {
        self.with(T::clone)
    }

    /// The value, untracked.
    pub fn get_untracked(self) -> T {
        self.with_untracked(T::clone)
    }

    /// The value, untracked (`None` once the signal is disposed).
    pub fn try_get_untracked(self) -> Option<T> {
        self.try_with_untracked(T::clone)
    }
}

impl<T: Clone + Send + Sync + 'static> From<Var<T>> for Signal<T> {
    fn from(s: Var<T>) -> Self {
        Signal::derive(move || s.get())
    }
}

/// A value kept (not reactive) for as long as the owner it was made under: a `StoredValue`
/// of a `T`, kept in one `StoredValue<Box<dyn Any>>` type for every `T`, like [`Var`], so that
/// its storage code is compiled once. Local to the thread (the browser has one), so a `T` need
/// not be `Send`.
pub struct Stored<T> {
    value: StoredValue<Box<dyn Any>, LocalStorage>,
    ty: PhantomData<fn() -> T>,
}

impl<T> Clone for Stored<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Stored<T> {}

impl<T> std::fmt::Debug for Stored<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value.fmt(f)
    }
}

impl<T: 'static> Stored<T> {
    /// Keeps `value` under the current owner.
    pub fn new(value: T) -> Self {
        Stored {
            value: StoredValue::new_local(Box::new(value)),
            ty: PhantomData,
        }
    }

    /// Reads the value (`None` once it is disposed).
    pub fn try_with_value<R>(self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.value.try_read_value().map(|v| f(cast(&**v)))
    }

    /// Reads the value.
    pub fn with_value<R>(self, f: impl FnOnce(&T) -> R) -> R {
        f(cast(&**self.value.read_value()))
    }

    /// Changes the value (`None` once it is disposed).
    pub fn try_update_value<R>(self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        self.value
            .try_write_value()
            .map(|mut v| f(cast_mut(&mut **v)))
    }

    /// Changes the value.
    pub fn update_value(self, f: impl FnOnce(&mut T)) {
        self.try_update_value(f);
    }

    /// Replaces the value (gives `value` back once it is disposed).
    pub fn try_set_value(self, value: T) -> Option<T> {
        match self.value.try_write_value() {
            Some(mut v) => {
                *cast_mut(&mut **v) = value;
                None
            }
            None => Some(value),
        }
    }

    /// Replaces the value.
    pub fn set_value(self, value: T) {
        self.try_set_value(value);
    }
}

impl<T: Clone + 'static> Stored<T> {
    /// A copy of the value (`None` once it is disposed).
    pub fn try_get_value(self) -> Option<T> {
        self.try_with_value(T::clone)
    }

    /// A copy of the value.
    pub fn get_value(self) -> T {
        self.with_value(T::clone)
    }
}
