//! Durable state: users, sessions, rooms, and each room's message log.
//!
//! The server talks to the [`Store`] trait. [`SqliteStore`] is the default implementation (one
//! file, WAL mode); a shared store for several nodes can stand beside it without touching callers.
//!
//! # The message log
//! Every room has a log of events numbered by `seq`: 1, 2, 3, ... with no holes and no reuse. The
//! next `seq` is taken inside the same transaction that stores the event, so a `seq` exists if
//! and only if its event is durable. Events carry a `kind`: messages, and the changes made to
//! them (edits, deletions, reactions), which ride the same log and are caught up the same way.
//! A message is also kept as it is now (its latest text, whether it was deleted, its
//! reactions), for history pages.
//!
//! An implementation hands the events of each commit to its [`CommitListener`] in commit order,
//! after the commit and before acknowledging the appends. The listener ([`crate::events`]) puts
//! them in `seq` order per room, fills any hole from the store, and hands them to the hub, which
//! fans them out off the writer thread.

mod codec;
#[cfg(test)]
pub mod conformance;
pub mod postgres;
mod sqlite;
pub mod terms;

use futures::future::BoxFuture;
use shared::{
    Attachment, ClientId, DisplayName, Emoji, FilterAction, FilterKind, MessageEvent, Role, RoomId,
    RoomKind, RoomName, Username,
};

pub use postgres::PgStore;
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
    /// A change to a message broke a rule checked in the same write.
    #[error("{0}")]
    Rejected(Rejection),
}

/// Why the store refused a change to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The target is not a message of the room, or was deleted.
    #[error("no such message")]
    NoSuchMessage,
    /// Only the message's author may do that.
    #[error("not the author")]
    NotAuthor,
    /// The message has [`shared::MAX_REACTIONS`] different reactions already.
    #[error("too many reactions")]
    TooManyReactions,
    /// An attachment is not an unsent upload of the author's to the room.
    #[error("no such file")]
    NoSuchFile,
    /// The upload would take its uploader over their quota.
    #[error("over quota")]
    OverQuota,
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
    /// Whether they administer the server.
    pub is_admin: bool,
}

/// A person, without secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    /// Row id.
    pub id: UserId,
    /// Their handle.
    pub username: Username,
    /// Their display name.
    pub display_name: DisplayName,
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
    /// Whether they administer the server.
    pub is_admin: bool,
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
    /// Public, private or direct.
    pub kind: RoomKind,
    /// Its topic (empty when none).
    pub topic: String,
    /// Slow mode: members may post once per this many seconds (0: off).
    pub slow_mode_secs: u32,
    /// Who created it (none for `general`).
    pub created_by: Option<UserId>,
    /// For a direct room, its members' handles (sorted ignoring case); empty otherwise.
    pub direct: Vec<Username>,
    /// Its highest `seq` (0 when empty).
    pub last_seq: u64,
}

/// A room, and the viewer's role in it if they are a member.
pub type RoomAndRole = (RoomRecord, Option<Role>);

/// What the chat's rules need to know about one user and one room, read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord {
    /// The room.
    pub room: RoomRecord,
    /// The user's membership, if any.
    pub member: Option<MemberRecord>,
    /// Whether the user has an invitation to it.
    pub invited: bool,
    /// The user's ban from it, with its reason, if banned.
    pub ban: Option<Option<String>>,
}

/// A room to create.
#[derive(Debug, Clone)]
pub struct NewRoomRecord {
    /// Its name.
    pub name: RoomName,
    /// Public or private (direct rooms are made by [`Store::open_direct`]).
    pub kind: RoomKind,
    /// Its topic.
    pub topic: String,
    /// The creator, who becomes its owner.
    pub created_by: Option<UserId>,
}

/// A user's membership of a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// The member.
    pub user: UserSummary,
    /// Their role.
    pub role: Role,
    /// Until when they may not post (ms since the Unix epoch).
    pub muted_until: Option<i64>,
}

/// A pending invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRecord {
    /// The room.
    pub room: RoomRecord,
    /// Who invited.
    pub by: UserSummary,
    /// When (ms since the Unix epoch).
    pub at: i64,
}

/// A stored filter rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRecord {
    /// Its id.
    pub id: i64,
    /// Its room; none for a server-wide rule.
    pub room: Option<RoomId>,
    /// Keyword or regular expression.
    pub kind: FilterKind,
    /// The pattern.
    pub pattern: String,
    /// Refuse or mask.
    pub action: FilterAction,
    /// Who added it.
    pub created_by: Username,
    /// When.
    pub at: i64,
}

/// A filter rule to store.
#[derive(Debug, Clone)]
pub struct NewFilterRecord {
    /// Its room; none for a server-wide rule.
    pub room: Option<RoomId>,
    /// Keyword or regular expression.
    pub kind: FilterKind,
    /// The (validated) pattern.
    pub pattern: String,
    /// Refuse or mask.
    pub action: FilterAction,
    /// Who adds it.
    pub created_by: UserId,
}

/// A line of the audit log to store.
#[derive(Debug, Clone)]
pub struct NewAudit {
    /// The room; none for server-wide actions.
    pub room: Option<RoomId>,
    /// Who acted.
    pub actor: UserId,
    /// What they did (see [`shared::AuditEntry::action`]).
    pub action: &'static str,
    /// Whom it concerned.
    pub target: Option<UserId>,
    /// The reason given.
    pub reason: Option<String>,
    /// Details.
    pub detail: Option<String>,
}

/// A stored line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Its id.
    pub id: i64,
    /// The room, if any.
    pub room: Option<RoomId>,
    /// Who acted.
    pub actor: Username,
    /// What they did.
    pub action: String,
    /// Whom it concerned.
    pub target: Option<Username>,
    /// The reason given.
    pub reason: Option<String>,
    /// Details.
    pub detail: Option<String>,
    /// When.
    pub at: i64,
}

/// An event to append to a room's log: a message, or a change to one.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The room.
    pub room: RoomId,
    /// The author (of a change: who makes it), by id.
    pub author_id: UserId,
    /// The author's handle (copied into the event, saving a join).
    pub author: Username,
    /// The author's display name (likewise).
    pub author_name: DisplayName,
    /// The client's id for the event: (author, `client_id`) is unique in the log.
    pub client_id: ClientId,
    /// What it is.
    pub change: Change,
}

/// What an appended event does. Every check that depends on the log (the target exists, is a
/// message, is not deleted; the editor wrote it) is made in the write that appends it.
#[derive(Debug, Clone)]
pub enum Change {
    /// A new message.
    Post {
        /// The validated text.
        text: String,
        /// The message it answers (must be a live message of the room).
        reply_to: Option<u64>,
        /// Handles its text mentions; those who are members (other than the author) are
        /// recorded.
        mentions: Vec<Username>,
        /// Ids of files it carries: each must be an upload of the author's to the room not yet
        /// carried by a message, checked in the write.
        attachments: Vec<u64>,
    },
    /// A new text for the author's own message.
    Edit {
        /// The message.
        target: u64,
        /// The validated new text.
        text: String,
        /// Handles the new text mentions.
        mentions: Vec<Username>,
    },
    /// Erase a message.
    Delete {
        /// The message.
        target: u64,
        /// Only if the author of the change wrote it (`false` for a moderator).
        author_only: bool,
    },
    /// Add or take back a reaction.
    React {
        /// The message.
        target: u64,
        /// The reaction.
        emoji: Emoji,
        /// Add (`true`) or take back.
        on: bool,
    },
}

impl NewEvent {
    /// A plain message with no reply and no mentions.
    pub fn post(
        room: RoomId,
        author_id: UserId,
        author: Username,
        author_name: DisplayName,
        client_id: ClientId,
        text: String,
    ) -> Self {
        Self {
            room,
            author_id,
            author,
            author_name,
            client_id,
            change: Change::Post {
                text,
                reply_to: None,
                mentions: Vec::new(),
                attachments: Vec::new(),
            },
        }
    }
}

/// The result of an append.
#[derive(Debug, Clone)]
pub enum Appended {
    /// Stored: the new event.
    New(MessageEvent),
    /// The `client_id` had been stored before: that event, and nothing new was written.
    Duplicate(MessageEvent),
    /// The change had nothing to do (the reaction was already so, the message already deleted,
    /// the text the same), and nothing was written.
    Unchanged,
}

impl Appended {
    /// The stored event (new or earlier), if any.
    pub fn event(&self) -> Option<&MessageEvent> {
        match self {
            Appended::New(e) | Appended::Duplicate(e) => Some(e),
            Appended::Unchanged => None,
        }
    }

    /// Whether the `client_id` had been stored before.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, Appended::Duplicate(_))
    }

    /// What an acknowledgement says: the stored event's `id`, `seq` and time, or 0, 0 and now
    /// when nothing needed storing.
    pub fn receipt(&self) -> (u64, u64, i64) {
        self.event()
            .map_or((0, 0, now_ms()), |e| (e.id, e.seq, e.ts))
    }
}

/// A held [`Store::lock_content`]: released when dropped.
pub struct ContentLock {
    /// What releases the lock when dropped.
    _guard: Option<Box<dyn Send + Sync>>,
}

impl ContentLock {
    /// No lock beyond the server's own (a store used by one server).
    pub fn none() -> Self {
        Self { _guard: None }
    }

    /// A lock held by `guard`, released when it is dropped.
    pub fn held(guard: impl Send + Sync + 'static) -> Self {
        Self {
            _guard: Some(Box::new(guard)),
        }
    }
}

impl std::fmt::Debug for ContentLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self._guard.is_some() {
            "ContentLock(held)"
        } else {
            "ContentLock(none)"
        })
    }
}

/// A page of messages as they are now.
#[derive(Debug, Clone)]
pub struct MessagePage {
    /// The messages, oldest first.
    pub messages: Vec<MessageEvent>,
    /// Whether more messages exist beyond the page: older ones for a page before a `seq`,
    /// newer ones for a page after one.
    pub has_more: bool,
    /// The room's highest `seq` when the page was read (the page includes every change up to
    /// it).
    pub head: u64,
}

/// A user's read position in a room, and what is unread above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadCounts {
    /// The highest `seq` read.
    pub seq: u64,
    /// Live messages by others above it (capped at [`shared::UNREAD_CAP`]).
    pub unread: u32,
    /// Of those, the ones that mention the user.
    pub mentions: u32,
}

/// An uploaded file's metadata, to store. The content itself lives outside the store, under
/// its hash (see [`crate::files`]).
#[derive(Debug, Clone)]
pub struct NewFile {
    /// SHA-256 of the content.
    pub hash: [u8; 32],
    /// Size in bytes.
    pub size: u64,
    /// The type read from the content.
    pub mime: String,
    /// The name the uploader gave.
    pub name: String,
    /// For an image: its dimensions.
    pub dimensions: Option<(u32, u32)>,
    /// The type of its thumbnail, if it has one.
    pub thumb_mime: Option<String>,
    /// The room it is uploaded to.
    pub room: RoomId,
    /// Who uploaded it.
    pub uploader: UserId,
    /// The most bytes the uploader's files may take, this one included (0: no limit); checked
    /// in the write ([`Rejection::OverQuota`]).
    pub quota: u64,
}

/// A stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// Its id.
    pub id: u64,
    /// SHA-256 of the content.
    pub hash: [u8; 32],
    /// Size in bytes.
    pub size: u64,
    /// The type read from the content.
    pub mime: String,
    /// The name the uploader gave.
    pub name: String,
    /// For an image: its dimensions.
    pub dimensions: Option<(u32, u32)>,
    /// The type of its thumbnail, if it has one.
    pub thumb_mime: Option<String>,
    /// The room it was uploaded to.
    pub room: RoomId,
    /// Who uploaded it.
    pub uploader: UserId,
    /// The `seq` of the message that carries it; `None` until it is sent.
    pub seq: Option<u64>,
}

impl FileRecord {
    /// What a message says of it.
    pub fn attachment(&self) -> Attachment {
        Attachment {
            id: self.id,
            name: self.name.clone(),
            size: self.size,
            mime: self.mime.clone(),
            width: self.dimensions.map(|d| d.0),
            height: self.dimensions.map(|d| d.1),
            thumbnail: self.thumb_mime.is_some(),
        }
    }
}

/// A full-text search, already cleared by the service: `rooms` are those the searcher may read.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    /// The parsed query (see [`terms::query_terms`]); never empty.
    pub terms: Vec<terms::QueryTerm>,
    /// Rooms to search.
    pub rooms: Vec<RoomId>,
    /// Only messages by this user.
    pub author: Option<UserId>,
    /// Only messages that carry a file.
    pub has_file: bool,
    /// Only messages stored at or after this time (ms since the Unix epoch).
    pub after: Option<i64>,
    /// Only messages stored before this time.
    pub before: Option<i64>,
    /// Where the previous page ended.
    pub cursor: Option<SearchCursor>,
    /// Hits per page.
    pub limit: u32,
}

/// A position in a search's results: hits are ordered by rank (0 first), then by message id
/// descending (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchCursor {
    /// The rank of the last hit returned.
    pub rank: u8,
    /// Its message id.
    pub id: u64,
}

impl SearchCursor {
    /// The cursor as clients see it: `<rank>.<id>`.
    pub fn encode(self) -> String {
        format!("{}.{}", self.rank, self.id)
    }

    /// Reads a cursor given by a client.
    pub fn decode(raw: &str) -> Option<Self> {
        let (rank, id) = raw.split_once('.')?;
        Some(Self {
            rank: rank.parse().ok()?,
            id: id.parse().ok()?,
        })
    }
}

/// A page of search results.
#[derive(Debug, Clone)]
pub struct SearchResults {
    /// The messages found, as they are now, in result order.
    pub hits: Vec<MessageEvent>,
    /// Where the next page starts, if there may be one.
    pub next: Option<SearchCursor>,
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

    /// Up to `limit` rooms that `viewer` may see (public ones, and those they are a member of),
    /// in id order, after `after` (exclusive) when given, each with the viewer's role if a
    /// member.
    fn list_rooms(
        &self,
        viewer: UserId,
        after: Option<RoomId>,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<Vec<RoomAndRole>>>;

    /// Marks a user as a server admin or not; `false` if there is no such user.
    fn set_admin(&self, username: Username, admin: bool) -> BoxFuture<'static, StoreResult<bool>>;

    /// Up to `limit` users whose handle or display name starts with `prefix` (ignoring case),
    /// by handle.
    fn search_users(
        &self,
        prefix: String,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<Vec<UserSummary>>>;

    /// How many rooms `user` has created: direct ones when `direct`, public and private ones
    /// otherwise.
    fn rooms_created_by(&self, user: UserId, direct: bool) -> BoxFuture<'static, StoreResult<u64>>;

    /// Creates a room, with its creator as owner. [`StoreError::Conflict`] if it is public and
    /// a public room's name equals its name ignoring case ([`RoomName::key`]).
    fn create_room(&self, room: NewRoomRecord) -> BoxFuture<'static, StoreResult<RoomRecord>>;

    /// The direct room of exactly these people (distinct), created with all of them as members
    /// if it does not exist, or with those who had left it added back; `true` when anyone was
    /// added.
    fn open_direct(
        &self,
        members: Vec<UserSummary>,
        name: RoomName,
    ) -> BoxFuture<'static, StoreResult<(RoomRecord, bool)>>;

    /// A room and what one user is to it (see [`AccessRecord`]), or `None` if no such room.
    fn access(
        &self,
        room: RoomId,
        user_id: UserId,
    ) -> BoxFuture<'static, StoreResult<Option<AccessRecord>>>;

    /// Finds a room by id.
    fn room(&self, room: RoomId) -> BoxFuture<'static, StoreResult<Option<RoomRecord>>>;

    /// Makes a user a member of a room with `role` (a member already keeps their role), and
    /// drops any invitation of theirs to it; `false` (and nothing done) if they are banned from
    /// it, checked in the same write. [`StoreError::NotFound`] if the room does not exist.
    fn add_member(
        &self,
        room: RoomId,
        user_id: UserId,
        role: Role,
    ) -> BoxFuture<'static, StoreResult<bool>>;

    /// A user's membership of a room, if any.
    fn member(
        &self,
        room: RoomId,
        user_id: UserId,
    ) -> BoxFuture<'static, StoreResult<Option<MemberRecord>>>;

    /// Every member of a room, by handle.
    fn members(&self, room: RoomId) -> BoxFuture<'static, StoreResult<Vec<MemberRecord>>>;

    /// Ends a membership; `false` if there was none.
    fn remove_member(&self, room: RoomId, user_id: UserId)
    -> BoxFuture<'static, StoreResult<bool>>;

    /// Changes a member's role; `false` if they are not a member.
    fn set_role(
        &self,
        room: RoomId,
        user_id: UserId,
        role: Role,
    ) -> BoxFuture<'static, StoreResult<bool>>;

    /// Mutes a user in a room until `until` (or unmutes with `None`). A mute outlives the
    /// membership: leaving and coming back does not lift it.
    fn set_muted(
        &self,
        room: RoomId,
        user_id: UserId,
        until: Option<i64>,
    ) -> BoxFuture<'static, StoreResult<()>>;

    /// Bans a user from a room: records the ban with its reason, ends their membership and
    /// drops their invitation.
    fn ban(
        &self,
        room: RoomId,
        user_id: UserId,
        by: UserId,
        reason: Option<String>,
    ) -> BoxFuture<'static, StoreResult<()>>;

    /// Lifts a ban; `false` if there was none.
    fn unban(&self, room: RoomId, user_id: UserId) -> BoxFuture<'static, StoreResult<bool>>;

    /// The reason of a user's ban from a room (`Some(None)`: banned without a reason).
    fn ban_of(
        &self,
        room: RoomId,
        user_id: UserId,
    ) -> BoxFuture<'static, StoreResult<Option<Option<String>>>>;

    /// Records an invitation (idempotent).
    fn invite(
        &self,
        room: RoomId,
        user_id: UserId,
        by: UserId,
    ) -> BoxFuture<'static, StoreResult<()>>;

    /// Whether a user has an invitation to a room.
    fn is_invited(&self, room: RoomId, user_id: UserId) -> BoxFuture<'static, StoreResult<bool>>;

    /// A user's pending invitations, newest first.
    fn invites_for(&self, user_id: UserId) -> BoxFuture<'static, StoreResult<Vec<InviteRecord>>>;

    /// Drops an invitation (declined); `false` if there was none.
    fn delete_invite(&self, room: RoomId, user_id: UserId)
    -> BoxFuture<'static, StoreResult<bool>>;

    /// Changes a room's topic and/or slow mode.
    fn update_room(
        &self,
        room: RoomId,
        topic: Option<String>,
        slow_mode_secs: Option<u32>,
    ) -> BoxFuture<'static, StoreResult<()>>;

    /// The filter rules of a room, or the server-wide ones (`None`), oldest first.
    fn filters(&self, room: Option<RoomId>) -> BoxFuture<'static, StoreResult<Vec<FilterRecord>>>;

    /// Stores a filter rule.
    fn add_filter(&self, rule: NewFilterRecord) -> BoxFuture<'static, StoreResult<FilterRecord>>;

    /// Deletes a filter rule of that scope; `false` if it has no such rule.
    fn delete_filter(&self, room: Option<RoomId>, id: i64)
    -> BoxFuture<'static, StoreResult<bool>>;

    /// Appends a line to the audit log.
    fn audit(&self, entry: NewAudit) -> BoxFuture<'static, StoreResult<()>>;

    /// Up to `limit` lines of a room's audit log with ids below `before`, newest first.
    fn audit_log(
        &self,
        room: RoomId,
        before: Option<i64>,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<Vec<AuditRecord>>>;

    /// Appends an event to its room's log with the next `seq`, durably, unless (author,
    /// `client_id`) was stored before, in which case the earlier event comes back as
    /// [`Appended::Duplicate`], or the change has nothing to do ([`Appended::Unchanged`]).
    /// Resolves only after the commit, and after the new event went to the
    /// [`CommitListener`]. [`StoreError::NotFound`] if the room does not exist;
    /// [`StoreError::Rejected`] if the change breaks a rule of the log.
    fn append(&self, event: NewEvent) -> BoxFuture<'static, StoreResult<Appended>>;

    /// Up to `limit` messages of a room with `seq < before`, as they are now (edits applied,
    /// deleted ones blank, reactions gathered), oldest first.
    fn messages_before(
        &self,
        room: RoomId,
        before: u64,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<MessagePage>>;

    /// Up to `limit` messages of a room with `seq > after`, as they are now, oldest first (the
    /// page that follows `after`, for reading forward from an older point).
    fn messages_after(
        &self,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<MessagePage>>;

    /// One message as it is now, if `seq` is a message of the room.
    fn message(
        &self,
        room: RoomId,
        seq: u64,
    ) -> BoxFuture<'static, StoreResult<Option<MessageEvent>>>;

    /// Up to `limit` events of every kind of a room with `seq > after`, oldest first.
    fn events_after(
        &self,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<Vec<MessageEvent>>>;

    /// The highest `seq` of each of these rooms that exists (rooms that do not are left out).
    /// Several nodes' dispatchers ask this every second for the rooms their people are in, to
    /// find events the bus lost (see `crate::bus`); a store for several nodes answers with one
    /// query.
    fn heads(&self, rooms: Vec<RoomId>) -> BoxFuture<'static, StoreResult<Vec<(RoomId, u64)>>> {
        let reads: Vec<_> = rooms.iter().map(|room| self.room(*room)).collect();
        Box::pin(async move {
            let mut out = Vec::with_capacity(reads.len());
            for read in reads {
                if let Some(room) = read.await? {
                    out.push((room.id, room.last_seq));
                }
            }
            Ok(out)
        })
    }

    /// A user's read positions and unread counts in these rooms, in the same order.
    fn read_counts(
        &self,
        user_id: UserId,
        rooms: Vec<RoomId>,
    ) -> BoxFuture<'static, StoreResult<Vec<ReadCounts>>>;

    /// Moves a user's read position in a room forward to `seq` (`None`: the room's newest),
    /// never back, and returns it with the counts.
    fn mark_read(
        &self,
        user_id: UserId,
        room: RoomId,
        seq: Option<u64>,
    ) -> BoxFuture<'static, StoreResult<ReadCounts>>;

    /// Moves several read positions forward at once, in one write (see `mark_read`); returns
    /// each with its counts, in the same order.
    fn mark_reads(
        &self,
        positions: Vec<(UserId, RoomId, u64)>,
    ) -> BoxFuture<'static, StoreResult<Vec<ReadCounts>>>;

    /// Marks every room the user is a member of read up to its newest event.
    fn mark_all_read(
        &self,
        user_id: UserId,
    ) -> BoxFuture<'static, StoreResult<Vec<(RoomId, ReadCounts)>>>;

    /// Stores an upload's metadata, unless it would take its uploader's files over
    /// `file.quota` bytes ([`Rejection::OverQuota`]). [`StoreError::NotFound`] if the room does
    /// not exist.
    fn add_file(&self, file: NewFile) -> BoxFuture<'static, StoreResult<FileRecord>>;

    /// A file by id.
    fn file(&self, id: u64) -> BoxFuture<'static, StoreResult<Option<FileRecord>>>;

    /// The files carried by a message, in the order sent.
    fn message_files(
        &self,
        room: RoomId,
        seq: u64,
    ) -> BoxFuture<'static, StoreResult<Vec<FileRecord>>>;

    /// Bytes taken by a user's files (each upload counted, even of the same content).
    fn file_usage(&self, user_id: UserId) -> BoxFuture<'static, StoreResult<u64>>;

    /// Whether any file has this content. Deleting a message deletes the files it carries;
    /// the content can go once this says no.
    fn hash_in_use(&self, hash: [u8; 32]) -> BoxFuture<'static, StoreResult<bool>>;

    /// Takes the lock of a content for every server on this store (see
    /// [`crate::files::Blobs`]): held while the content is moved into the files folder and its
    /// row stored, or checked for rows and removed, so that with several servers sharing one
    /// folder an upload on one cannot lose its content to a removal on another. Released when
    /// dropped. A store that only one server uses (SQLite) needs nothing beyond the server's
    /// own lock and returns [`ContentLock::none`].
    fn lock_content(&self, hash: [u8; 32]) -> BoxFuture<'static, StoreResult<ContentLock>>;

    /// Deletes files not sent in a message and uploaded before `before` (ms since the Unix
    /// epoch); returns the hashes of the contents no file has any more.
    fn delete_unsent_files(&self, before: i64) -> BoxFuture<'static, StoreResult<Vec<[u8; 32]>>>;

    /// Full-text search over live messages (see [`SearchQuery`]): an edit is found by its new
    /// text only, a deleted message never.
    fn search(&self, query: SearchQuery) -> BoxFuture<'static, StoreResult<SearchResults>>;
}
