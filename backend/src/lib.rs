//! The chat server: an axum + tokio relay that authenticates users, keeps rooms, stores every
//! message durably and fans it out to the room's members in real time. It also serves the built
//! web client, so one process on one port is the whole app.
//!
//! # Layout
//! - The rules: [`chat`], the chat service: every command of every transport goes through it.
//! - Transports: [`ws`] (the WebSocket endpoint and the per-connection actor), [`rooms`] (the
//!   same commands over HTTP), [`auth`] (accounts, sessions), [`files`] (uploads, their contents
//!   on disk, thumbnails and downloads).
//! - Delivery: [`events`] (the seam from the store's commits to live delivery: `seq` order per
//!   room, holes filled from the store), [`hub`] (live membership, presence and fan-out).
//! - Moderation: [`filter`] (keyword and regular-expression rules that refuse or mask text).
//! - Protection: [`limits`] (rate limits, socket caps), [`password`] (a bounded pool of
//!   argon2id hashers), [`guard`] (security headers, cross-site write refusal).
//! - Infrastructure: [`config`] (command line and environment), [`startup`] (state, routes,
//!   graceful shutdown), [`serve`] (the accept loop: timeouts and the connection cap),
//!   [`store`] (the durable state behind a trait; SQLite by default, PostgreSQL for several
//!   nodes), [`error`] (the HTTP error type), [`origin`] (Origin parsing and comparison),
//!   [`telemetry`] (logging).
//!
//! The wire types live in the `shared` crate; `docs/protocol.md` documents them.

pub mod auth;
pub mod bus;
pub mod chat;
pub mod config;
pub mod error;
pub mod events;
pub mod files;
pub mod filter;
pub mod guard;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod ops;
pub mod origin;
pub mod password;
pub mod rooms;
pub mod serve;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod typing;
pub mod ws;

pub use config::{Config, Database};
pub use startup::{AppState, Application};
