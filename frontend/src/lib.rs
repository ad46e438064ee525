//! The chat's browser client: a Leptos single-page app compiled to WebAssembly.
//!
//! It logs the user in over `/api`, then keeps one WebSocket to `/ws` through which it joins
//! rooms, sends messages and receives them in real time. The protocol types come from the
//! `shared` crate, so a frame this client cannot read is a compile error, not a runtime surprise.
//!
//! # Layout
//! - [`timeline`]: one room's messages keyed by `seq` with the changes to them applied (or
//!   kept until their target arrives), outgoing (pending) messages and changes, notices;
//!   dedupe, ordering, gap detection on the forward stream, grouping. Pure data, tested natively.
//! - [`chat`]: the model of every followed room and the reducer from server frames and user
//!   actions to changes plus frames to send. Pure data, tested natively.
//! - [`outbox`]: unconfirmed messages, edits, deletions and reactions in `localStorage`, so they
//!   survive a reload (and the earlier releases' entries survive the upgrade).
//! - [`conn`]: the connection owner task: one socket at a time, backoff with jitter, heartbeat,
//!   close-code handling.
//! - [`drafts`]: half-typed messages per room in `localStorage`.
//! - [`map`]: the small ordered map the model keeps its maps in (smaller code than `BTreeMap`).
//! - [`api`]: the HTTP calls.
//! - [`uploads`]: files: uploads with progress (`XMLHttpRequest`), their checks and refusals,
//!   sizes and image boxes for the views.
//! - [`client`]: the glue between the model (in a signal), the connection task and the outbox.
//! - [`components`]: the views.
//! - [`browser`]: clock, random ids, local time formatting.
//!
//! # Delivery guarantees on this side
//! A message gets a `client_id` when written and is shown at once as pending; it stays in the
//! outbox until the server's `ack` or its own `message` frame confirms it, and is resent with
//! the same id after every (re)join, which the server deduplicates. After a reconnect each room
//! is re-joined with `since` = the highest `seq` delivered without a hole, so the server replays
//! exactly what was missed: messages and every change to them (edits, deletions, reactions),
//! each applied to its message once. A live `seq` that skips ahead is asked for the same way
//! (`join` with `since`), never with `history`, whose pages hold messages only (as they are now).
//! A hole that the catch-up does not fill is shown as a gap row with a retry, never skipped.
//!
//! Every frame sent carries a fresh `req`, which the server echoes in its answer: the model
//! knows which join a `history` page answers and which request an `error` refuses. Frame types
//! and error codes from a newer server are ignored, or treated as a failure of the request they
//! answer.
//!
//! A `send` refused for a transient reason (`internal`, `rate_limited`) is resent after a pause
//! a few times, then shown as failed with a retry that makes it pending again under the same
//! `client_id` (it stays in the outbox meanwhile). A refusal that would recur (the text breaks a
//! rule) is shown as failed with a discard only, and leaves the outbox.

pub mod api;
pub mod browser;
pub mod cache;
pub mod chat;
pub mod client;
pub mod components;
pub mod conn;
pub mod drafts;
pub mod i18n;
pub mod map;
pub mod markdown;
pub mod outbox;
pub mod timeline;
pub mod uploads;

pub use components::App;
