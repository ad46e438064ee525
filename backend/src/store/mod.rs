//! Durable state: users, sessions, rooms, and each room's message log.
//!
//! The server talks to the [`Store`] trait. [`SqliteStore`] is the default implementation (one
//! file, WAL mode); a shared store for several nodes can stand beside it without touching callers.
//!
//! # The message log
//! Every room has a log of events numbered by `seq`: 1, 2, 3, ... with no holes and no reuse. The
//! next `seq` is taken inside the same transaction that stores the event, so a `seq` exists if
//! and only if its event is durable. Events carry a `kind` (only `message` today) so that edits
//! and deletions can later ride the same log and be caught up the same way.
//!
//! An implementation hands the events of each commit to its [`CommitListener`] in commit order,
//! after the commit and before acknowledging the appends. The listener ([`crate::events`]) puts
//! them in `seq` order per room, fills any hole from the store, and hands them to the hub, which
//! fans them out off the writer thread.

mod sqlite;
#[cfg(test)]
pub mod conformance;

use futures::future::BoxFuture;
use shared::{ClientId, DisplayName, MessageEvent, RoomId, RoomName, Username};

pub use sqlite::{SqliteStore, Synchronous};

/// Milliseconds since the Unix epoch, the unit of every stored time.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// How many appends one group commit takes at most. Their events reach the hub together, so a
/// connection's outgoing queue must hold at least this many frames (see [`crate::ws`]).
pub const MAX_BATCH: usize = 256;

/// A user's row id.
pub type UserId = i64;

/// What a store call can fail with. It speaks of the domain: which database sits behind the
/// store shows only in the text of [`StoreError::Backend`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value (username, public room name) is taken.
    #[error("already exists")]
    Conflict,
    /// The referenced row does not exist.
    #[error("not found")]
    NotFound,
    /// The store has shut down.
    #[error("the store is closed")]
    Closed,
    /// The database failed (its own message).
    #[error("database error: {0}")]
    Backend(String),
    /// A background task failed, or a stored row no longer parses.
    #[error("store task failed: {0}")]
    Task(String),
}

/// A user as stored.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// Row id.
    pub id: UserId,
    /// The login handle as registered.
    pub username: Username,
    /// The name shown to others.
    pub display_name: DisplayName,
    /// The argon2 PHC string.
    pub password_hash: String,
}

/// A live session: what a token resolves to.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// The user it authenticates.
    pub user_id: UserId,
    /// Their handle.
    pub username: Username,
    /// Their display name.
    pub display_name: DisplayName,
    /// When it stops being valid (ms since the Unix epoch).
    pub expires_at: i64,
}

/// A room as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    /// Its stable id.
    pub id: RoomId,
    /// Its name.
    pub name: RoomName,
    /// Its highest `seq` (0 when empty).
    pub last_seq: u64,
}

/// A message to append to a room's log.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The room.
    pub room: RoomId,
    /// The author, by id.
    pub author_id: UserId,
    /// The author's handle (copied into the event, saving a join).
    pub author: Username,
    /// The author's display name (likewise).
    pub author_name: DisplayName,
    /// The client's id for the message: (author, `client_id`) is unique in the log.
    pub client_id: ClientId,
    /// The validated text.
    pub text: String,
}

/// The result of an append.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The stored event: new, or the one stored earlier under the same (author, `client_id`).
    pub event: MessageEvent,
    /// `true` when the `client_id` had been stored before and nothing new was written.
    pub duplicate: bool,
}

/// Receives the events of every commit, in commit order, exactly once: the seam between the
/// store and live delivery (see [`crate::events`]).
///
/// Called on the store's writer thread: it must not block (a send to an unbounded queue is
/// fine). Fan-out happens elsewhere.
pub trait CommitListener: Send + Sync + 'static {
    /// `events` were just committed together, in `seq` order within each room.
    fn committed(&self, events: Vec<MessageEvent>);
}

/// The result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// The durable state the server needs. Every method is `'static` so that callers can spawn it.
///
/// Any implementation must pass the conformance suite in `store::conformance`.
pub trait Store: Send + Sync + 'static {
    /// Stores a new user. [`StoreError::Conflict`] if the handle is taken (ignoring ASCII case).
    fn create_user(
        &self,
        username: Username,
        display_name: DisplayName,
        password_hash: String,
    ) -> BoxFuture<'static, StoreResult<UserId>>;

    /// Finds a user by handle, ignoring ASCII case.
    fn find_user(&self, username: Username) -> BoxFuture<'static, StoreResult<Option<UserRecord>>>;

    /// Stores a session under the hash of its token.
    fn create_session(
        &self,
        token_hash: [u8; 32],
        user_id: UserId,
        expires_at: i64,
    ) -> BoxFuture<'static, StoreResult<()>>;

    /// Resolves a token hash to its session, if it exists (expired ones included: the caller
    /// checks `expires_at`).
    fn find_session(
        &self,
        token_hash: [u8; 32],
    ) -> BoxFuture<'static, StoreResult<Option<SessionRecord>>>;

    /// Deletes a session. Deleting a missing one is not an error.
    fn delete_session(&self, token_hash: [u8; 32]) -> BoxFuture<'static, StoreResult<()>>;

    /// Deletes every session that expired before `now` (ms since the Unix epoch); returns how
    /// many.
    fn delete_expired_sessions(&self, now: i64) -> BoxFuture<'static, StoreResult<u64>>;

    /// Up to `limit` rooms in id order, those after `after` (exclusive) when given.
    fn list_rooms(
        &self,
        after: Option<RoomId>,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<Vec<RoomRecord>>>;

    /// How many rooms `user` has created.
    fn rooms_created_by(&self, user: UserId) -> BoxFuture<'static, StoreResult<u64>>;

    /// Creates a room. [`StoreError::Conflict`] if a room's name equals it ignoring case
    /// ([`RoomName::key`]).
    fn create_room(
        &self,
        name: RoomName,
        created_by: Option<UserId>,
    ) -> BoxFuture<'static, StoreResult<RoomRecord>>;

    /// Finds a room by id.
    fn room(&self, room: RoomId) -> BoxFuture<'static, StoreResult<Option<RoomRecord>>>;

    /// Records that a user is a member of a room (idempotent). [`StoreError::NotFound`] if the
    /// room does not exist.
    fn add_member(&self, room: RoomId, user_id: UserId) -> BoxFuture<'static, StoreResult<()>>;

    /// Whether a user is a member of a room.
    fn is_member(&self, room: RoomId, user_id: UserId) -> BoxFuture<'static, StoreResult<bool>>;

    /// Appends a message to its room's log with the next `seq`, durably, unless (author,
    /// `client_id`) was stored before, in which case the earlier event comes back with
    /// `duplicate: true`. Resolves only after the commit, and after the new event went to the
    /// [`CommitListener`]. [`StoreError::NotFound`] if the room does not exist.
    fn append(&self, message: NewMessage) -> BoxFuture<'static, StoreResult<Appended>>;

    /// Up to `limit` events of a room with `seq < before`, oldest first.
    fn events_before(
        &self,
        room: RoomId,
        before: u64,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<Vec<MessageEvent>>>;

    /// Up to `limit` events of a room with `seq > after`, oldest first.
    fn events_after(
        &self,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<Vec<MessageEvent>>>;
}
