//! The chat's browser client: a Leptos single-page app compiled to WebAssembly.
//!
//! It logs the user in over `/api`, then keeps one WebSocket to `/ws` through which it joins
//! rooms, sends messages and receives them in real time. The protocol types come from the
//! `shared` crate, so a frame this client cannot read is a compile error, not a runtime surprise.
//!
//! # Layout
//! - [`timeline`]: one room's messages keyed by `seq`, outgoing (pending) messages, notices;
//!   dedupe, ordering, gap detection. Pure data, tested natively.
//! - [`chat`]: the model of every followed room and the reducer from server frames and user
//!   actions to changes plus frames to send. Pure data, tested natively.
//! - [`outbox`]: unconfirmed messages in `localStorage`, so they survive a reload (and the
//!   previous release's entries, which named their room, survive the upgrade).
//! - [`conn`]: the connection owner task: one socket at a time, backoff with jitter, heartbeat,
//!   close-code handling.
//! - [`drafts`]: half-typed messages per room in `localStorage`.
//! - [`api`]: the HTTP calls.
//! - [`client`]: the glue between the model (in a signal), the connection task and the outbox.
//! - [`components`]: the views.
//! - [`browser`]: clock, random ids, local time formatting.
//!
//! # Delivery guarantees on this side
//! A message gets a `client_id` when written and is shown at once as pending; it stays in the
//! outbox until the server's `ack` or its own `message` frame confirms it, and is resent with
//! the same id after every (re)join, which the server deduplicates. After a reconnect each room
//! is re-joined with `since` = the highest `seq` delivered, so the server replays exactly what
//! was missed; a live `seq` that skips ahead, or a catch-up (or first page) that stops short of
//! the `last_seq` its `joined` announced, triggers `history` requests for the hole. A hole that
//! the answers do not fill is shown as a gap row with a retry, never skipped, and is asked for
//! again after every (re)join.
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
pub mod chat;
pub mod client;
pub mod components;
pub mod conn;
pub mod drafts;
pub mod outbox;
pub mod timeline;

pub use components::App;
