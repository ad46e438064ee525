//! Integration tests: a real server on 127.0.0.1 with a fresh SQLite file per test, driven over
//! real HTTP and WebSocket connections; `postgres` runs some of them again on a throwaway
//! PostgreSQL.

mod auth;
mod bad_input;
mod changes;
mod chaos;
mod cluster;
mod delivery;
mod files;
mod hashing;
mod helpers;
mod limits;
mod messages;
mod moderation;
mod ops;
mod persistence;
mod postgres;
mod property;
mod protocol;
mod rooms;
mod search;
mod sessions;
