//! The chat service: the rules of the chat, in one place, for every transport.
//!
//! Each method takes the [`Actor`] (who asks) and a command, checks what the user may do
//! (visibility, membership, validation, rate limits), performs it on the store, and returns the
//! outcome or a [`ChatError`]. The WebSocket actor ([`crate::ws`]) and the HTTP handlers
//! ([`crate::rooms`]) are thin: they parse, call the service, and render its answer as a frame
//! or as an HTTP response, so a bot over HTTP meets exactly the checks and errors a browser meets
//! over the socket.
//!
//! Committed events are not published from here: the store hands them to the event seam
//! ([`crate::events`]) as it commits, which is what keeps live delivery in `seq` order.
//!
//! Holding a [`Membership`] is the proof that the service admitted a user to a room: sending
//! and reading history take one, and only the service makes them.
//!
//! # Who may do what
//! - A **public** room is listed for everyone and anyone may join it; a **private** room is seen
//!   only by its members (and, while invited, by the invitee, who may join); a **direct** room
//!   only by its people. To anyone else a room they may not see does not exist: every command
//!   answers `no_such_room`, exactly as for an id that was never used.
//! - Roles rank member < moderator < owner (the creator) < server admin. Moderators kick, ban,
//!   mute, set slow mode, the topic and the room's filters, and read the audit log; only the
//!   owner or an admin appoints moderators. Nobody acts on someone of equal or higher rank.
//! - A banned user cannot join (or be invited); a muted one cannot post; slow mode lets a
//!   member post once per so many seconds (moderators are exempt). Every moderation action is
//!   written to the room's audit log with who, what, when and why.
//! - Every message passes the server-wide filter rules, then the room's, over every transport.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use shared::{
    AuditEntry, CATCH_UP_MAX, ClientId, DIRECT_MAX_MEMBERS, DisplayName, Emoji, ErrorCode,
    EventsPage, FilterAction, FilterKind, FilterRule, HISTORY_PAGE, InviteInfo, LONG_POLL_MAX_SECS,
    MAX_ATTACHMENTS, MemberInfo, MessageEvent, MessageText, ModAction, NewFilter, ROOMS_PAGE_MAX,
    ReadState, Removal, Role, RoomId, RoomInfo, RoomKind, RoomName, RoomSettings, SEARCH_PAGE_MAX,
    SearchHit, SearchPage, ServerMsg, TOPIC_MAX_CHARS, UserInfo, Username, ValueError,
    mentioned_handles, values::is_invisible,
};

use crate::auth::AuthUser;
use crate::config::Config;
use crate::files::Blobs;
use crate::filter::{self, RuleSet, Verdict};
use crate::hub::{ConnId, Hub};
use crate::limits::{RateLimits, RetryAfter};
use crate::store::terms;
use crate::store::{
    AccessRecord, Appended, AuditRecord, Change, FileRecord, FilterRecord, NewAudit, NewEvent,
    NewFilterRecord, NewRoomRecord, ReadCounts, Rejection, RoomRecord, SearchCursor, SearchQuery,
    Store, StoreError, UserId, UserSummary, now_ms,
};
use crate::typing::{Typing, Typist};

/// Who is asking.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Their id.
    pub id: UserId,
    /// Their login handle.
    pub username: Username,
    /// Their display name.
    pub display_name: DisplayName,
    /// Whether they administer the server.
    pub is_admin: bool,
}

impl From<&AuthUser> for Actor {
    fn from(user: &AuthUser) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            is_admin: user.is_admin,
        }
    }
}

/// Why the chat refused or failed a command. Rendered as an `error` frame on the socket
/// ([`ChatError::code`], the message) and as an HTTP status and body at the HTTP edge.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChatError {
    /// A field broke its rules; the message says which.
    #[error("{0}")]
    Invalid(String),
    /// The message text is over the length limit.
    #[error("{0}")]
    TooLong(String),
    /// No file has that id, or this user may not see it, or (to attach) it is not their unsent
    /// upload to the room.
    #[error("No such file.")]
    NoSuchFile,
    /// The room does not exist, or this user may not see it (the two are not told apart).
    #[error("No such room.")]
    NoSuchRoom,
    /// No message of the room has that `seq` (or it was deleted).
    #[error("No such message.")]
    NoSuchMessage,
    /// No user has that handle.
    #[error("No user is called {0}.")]
    NoSuchUser(String),
    /// The user (or this connection) has not joined the room.
    #[error("Join the room first.")]
    NotJoined,
    /// The user may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The user is banned from the room.
    #[error("{0}")]
    Banned(String),
    /// The user is muted in the room.
    #[error("{0}")]
    Muted(String),
    /// Slow mode: wait before posting again.
    #[error("Slow mode is on: you can post again in {} s.", .0.secs())]
    SlowMode(RetryAfter),
    /// A filter rule refused the message.
    #[error("{0}")]
    Filtered(String),
    /// The name is taken.
    #[error("{0}")]
    Conflict(String),
    /// Over a rate limit: try again after the wait.
    #[error("Too many requests; try again in {} s.", .0.secs())]
    RateLimited(RetryAfter),
    /// Over a quota that waiting does not refill (say, rooms per user).
    #[error("{0}")]
    Quota(String),
    /// The server failed; the details are logged, never shown.
    #[error("The server failed; try again.")]
    Internal(String),
}

impl ChatError {
    /// The code an `error` frame (and an HTTP error body) carries.
    pub fn code(&self) -> ErrorCode {
        match self {
            ChatError::Invalid(_) => ErrorCode::Invalid,
            ChatError::TooLong(_) => ErrorCode::TooLong,
            ChatError::NoSuchRoom => ErrorCode::NoSuchRoom,
            ChatError::NoSuchMessage => ErrorCode::NoSuchMessage,
            ChatError::NoSuchFile => ErrorCode::NoSuchFile,
            ChatError::NoSuchUser(_) => ErrorCode::NoSuchUser,
            ChatError::NotJoined => ErrorCode::NotJoined,
            ChatError::Forbidden(_) => ErrorCode::Forbidden,
            ChatError::Banned(_) => ErrorCode::Banned,
            ChatError::Muted(_) => ErrorCode::Muted,
            ChatError::SlowMode(_) => ErrorCode::SlowMode,
            ChatError::Filtered(_) => ErrorCode::Filtered,
            ChatError::Conflict(_) => ErrorCode::Conflict,
            ChatError::RateLimited(_) | ChatError::Quota(_) => ErrorCode::RateLimited,
            ChatError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// How long to wait before retrying, for a rate limit or slow mode.
    pub fn retry_after(&self) -> Option<RetryAfter> {
        match self {
            ChatError::RateLimited(wait) | ChatError::SlowMode(wait) => Some(*wait),
            _ => None,
        }
    }
}

impl From<StoreError> for ChatError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(Rejection::NoSuchMessage) => ChatError::NoSuchMessage,
            StoreError::Rejected(Rejection::NotAuthor) => {
                ChatError::Forbidden("Only its author may change a message.".into())
            }
            StoreError::Rejected(Rejection::TooManyReactions) => ChatError::Invalid(format!(
                "A message can carry at most {} different reactions.",
                shared::MAX_REACTIONS
            )),
            StoreError::Rejected(Rejection::NoSuchFile) => ChatError::NoSuchFile,
            StoreError::Rejected(Rejection::OverQuota) => {
                ChatError::Quota("This file would take you over your upload quota.".into())
            }
            StoreError::NotFound => ChatError::NoSuchRoom,
            e => {
                tracing::error!(error = %e, "store call failed");
                ChatError::Internal(e.to_string())
            }
        }
    }
}

impl From<ValueError> for ChatError {
    fn from(e: ValueError) -> Self {
        match e {
            ValueError::MessageTooLong(_) => ChatError::TooLong(e.to_string()),
            _ => ChatError::Invalid(e.to_string()),
        }
    }
}

/// Proof that the service admitted a user to a room (see the module docs), with what the rules
/// read about the user and the room at the time.
///
/// Per room, a counter of changes to who may post there and how; `base` is added to every room's
/// (it moves when all of them must, see [`Chat::forget_everything_cached`]).
#[derive(Default)]
struct Epochs {
    base: u64,
    rooms: HashMap<RoomId, u64>,
}

/// A send checks the snapshot instead of reading the store again, as long as the room's epoch
/// has not moved: every change of who may post there or how (a kick, ban, mute, role, slow mode,
/// leave) bumps it, after its write, so a stale snapshot is always noticed and read again.
#[derive(Debug, Clone)]
pub struct Membership {
    user: UserId,
    room: RoomId,
    /// The room's highest `seq` when the membership was read.
    last_seq: u64,
    /// The user's place in the room when last read.
    snapshot: Snapshot,
    epoch: u64,
}

impl Membership {
    /// The room.
    pub fn room(&self) -> RoomId {
        self.room
    }

    /// The room's highest `seq` when the membership was read.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    fn new(user: UserId, access: &AccessRecord, epoch: u64) -> Self {
        Self {
            user,
            room: access.room.id,
            last_seq: access.room.last_seq,
            snapshot: Snapshot::from(access),
            epoch,
        }
    }
}

/// What the rules need to know of a member's place in a room, kept by every connection for each
/// room it joined: small, and without heap allocations unless the user is banned.
#[derive(Debug, Clone)]
struct Snapshot {
    slow_mode_secs: u32,
    role: Option<Role>,
    muted_until: Option<i64>,
    ban: Option<Option<Box<str>>>,
}

impl From<&AccessRecord> for Snapshot {
    fn from(access: &AccessRecord) -> Self {
        Self {
            slow_mode_secs: access.room.slow_mode_secs,
            role: access.member.as_ref().map(|m| m.role),
            muted_until: access.member.as_ref().and_then(|m| m.muted_until),
            ban: access
                .ban
                .as_ref()
                .map(|reason| reason.as_deref().map(Box::from)),
        }
    }
}

/// The outcome of a join.
#[derive(Debug)]
pub struct Joined {
    /// The membership to use for sends and history.
    pub membership: Membership,
    /// The `since` to catch up from, if the client's is usable: at most [`CATCH_UP_MAX`] behind
    /// the room's head and not ahead of it. `None` means: show the newest page instead.
    pub since: Option<u64>,
}

/// The outcome of a send, once stored.
pub type SendOutcome = BoxFuture<'static, Result<Appended, ChatError>>;

/// A page of a room's messages, as they are now.
#[derive(Debug)]
pub struct Page {
    /// The messages, oldest first.
    pub events: Vec<MessageEvent>,
    /// Whether older messages exist.
    pub has_more: bool,
    /// The room's highest `seq` when the page was read: every change up to it is applied.
    pub head: u64,
}

impl From<crate::store::MessagePage> for Page {
    fn from(page: crate::store::MessagePage) -> Self {
        Self {
            events: page.messages,
            has_more: page.has_more,
            head: page.head,
        }
    }
}

/// What a member asks to write to a room's log.
#[derive(Debug, Clone)]
pub enum Write {
    /// A new message, maybe answering another, maybe carrying files.
    Post {
        /// Its text (may be blank when it carries files).
        text: String,
        /// The `seq` of the message it answers.
        reply_to: Option<u64>,
        /// Ids of the author's unsent uploads to the room.
        attachments: Vec<u64>,
    },
    /// A new text for one's own message.
    Edit {
        /// The message.
        target: u64,
        /// The new text.
        text: String,
    },
    /// Delete one's own message, or (moderators) anyone's.
    Delete {
        /// The message.
        target: u64,
    },
    /// Add or take back a reaction.
    React {
        /// The message.
        target: u64,
        /// The reaction.
        emoji: String,
        /// Add or take back.
        on: bool,
    },
}

/// The most events one long poll returns.
const POLL_PAGE: u32 = 100;

/// A catch-up costs one more request token per this many events it replays.
const CATCH_UP_COST: u64 = 100;
/// The longest mute, and the slowest slow mode: a day.
const MAX_WAIT_SECS: u32 = 86_400;
/// The most people a search for the people picker returns.
const USER_SEARCH_MAX: u32 = 20;
/// The most regular-expression rules per scope: each may compile to up to 1 MiB, so this bounds
/// what one room's rules can hold in memory (keywords are cheap and may fill the rest).
const MAX_REGEX_RULES: usize = 20;
/// Direct conversations one user may start: this many times `--max-rooms-per-user`.
const DIRECT_PER_ROOM_QUOTA: u32 = 10;
/// The longest reason a moderator may give, in characters.
const REASON_MAX_CHARS: usize = 500;

/// A search, as asked.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// The words (see [`terms::query_terms`]).
    pub query: String,
    /// Only this room; all the rooms the searcher may read when absent.
    pub room: Option<RoomId>,
    /// Only messages by this handle.
    pub author: Option<String>,
    /// Only messages that carry a file.
    pub has_file: bool,
    /// Only messages stored at or after this time (ms since the Unix epoch).
    pub after: Option<i64>,
    /// Only messages stored before this time.
    pub before: Option<i64>,
    /// Where the previous page ended (its `next`).
    pub cursor: Option<String>,
    /// Hits per page (default and maximum [`SEARCH_PAGE_MAX`]).
    pub limit: Option<u32>,
}

/// A member's rank, to decide who may act on whom.
fn rank(role: Option<Role>, admin: bool) -> u8 {
    if admin {
        return 4;
    }
    match role {
        Some(Role::Owner) => 3,
        Some(Role::Moderator) => 2,
        Some(Role::Member | Role::Unknown) => 1,
        None => 0,
    }
}

/// A user and a room, as the rules see them.
struct Access {
    record: AccessRecord,
    admin: bool,
}

impl Access {
    fn role(&self) -> Option<Role> {
        self.record.member.as_ref().map(|m| m.role)
    }

    fn rank(&self) -> u8 {
        rank(self.role(), self.admin)
    }

    /// Whether the user may see the room at all (its name; not its contents).
    fn visible(&self) -> bool {
        self.record.room.kind == RoomKind::Public
            || self.record.member.is_some()
            || self.record.invited
    }

    /// Whether the user may read the room's messages: a member, or anyone not banned from a
    /// public room (which they could join).
    fn readable(&self) -> bool {
        self.record.member.is_some()
            || (self.record.room.kind == RoomKind::Public && self.record.ban.is_none())
    }

    fn moderates(&self) -> bool {
        self.rank() >= 2
    }

    fn require_moderator(&self) -> Result<(), ChatError> {
        if self.moderates() {
            Ok(())
        } else {
            Err(ChatError::Forbidden(
                "Only the room's moderators may do that.".into(),
            ))
        }
    }
}

/// The chat service. Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct Chat {
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    limits: Arc<RateLimits>,
    config: Arc<Config>,
    /// Compiled filter rules per scope (`None`: server-wide), dropped when a rule changes.
    filters: Arc<Mutex<HashMap<Option<RoomId>, Arc<RuleSet>>>>,
    /// Bumped whenever a rule changes: a compilation that started before a change is not
    /// cached, so a new rule can never be left out of the cache.
    filters_generation: Arc<std::sync::atomic::AtomicU64>,
    /// When each member last posted in a room with slow mode. Kept per process.
    last_post: Arc<Mutex<HashMap<(RoomId, UserId), Instant>>>,
    /// Per room, a counter of changes to who may post there and how (see [`Membership`]).
    /// Kept per process; with several nodes the bus carries the bumps (see [`crate::bus`]).
    epochs: Arc<Mutex<Epochs>>,
    /// Who is typing where.
    typing: Arc<Typing>,
    /// Read positions reported over sockets, not yet written (see [`Chat::read_soon`]).
    reads: Arc<PendingReads>,
    /// The contents of uploaded files, on disk.
    blobs: Arc<Blobs>,
    /// Rooms whose `members` notice for new members is waiting (see
    /// [`Chat::members_joined`]).
    joins_pending: Arc<Mutex<HashSet<RoomId>>>,
}

/// How long a room's `members` notice for new members waits, gathering the joins meanwhile.
const JOINS_NOTICE_DELAY: Duration = Duration::from_secs(1);

/// Read positions waiting to be written together.
#[derive(Debug, Default)]
struct PendingReads {
    positions: Mutex<HashMap<(UserId, RoomId), u64>>,
    wake: tokio::sync::Notify,
}

/// How long read positions reported over sockets gather before they are written together.
const READ_BATCH_DELAY: Duration = Duration::from_millis(250);

impl Chat {
    /// The service over these parts.
    pub fn new(
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
        limits: Arc<RateLimits>,
        config: Arc<Config>,
        blobs: Arc<Blobs>,
    ) -> Self {
        Self {
            blobs,
            store,
            hub,
            limits,
            config,
            filters: Arc::default(),
            filters_generation: Arc::default(),
            last_post: Arc::default(),
            epochs: Arc::default(),
            typing: Arc::default(),
            reads: Arc::default(),
            joins_pending: Arc::default(),
        }
    }

    /// Tells a room's members that someone joined it: a `members` notice, at most one per
    /// room a second (a crowd arriving makes one notice, not one per person and a refetch of
    /// the list by every member for each). A bot that joins over HTTP and never connects a
    /// socket shows up in the member lists this way too.
    fn members_joined(&self, room: RoomId) {
        let first = self
            .joins_pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(room);
        if !first {
            return;
        }
        let (hub, pending) = (Arc::clone(&self.hub), Arc::clone(&self.joins_pending));
        tokio::spawn(async move {
            tokio::time::sleep(JOINS_NOTICE_DELAY).await;
            pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&room);
            hub.to_room(room, &ServerMsg::Members { room });
        });
    }

    /// The room's epoch now.
    fn epoch(&self, room: RoomId) -> u64 {
        let epochs = self.epochs.lock().unwrap_or_else(PoisonError::into_inner);
        epochs.base + epochs.rooms.get(&room).copied().unwrap_or(0)
    }

    /// Marks every [`Membership`] snapshot of the room as stale, on every node. Called before a
    /// change's write and again after it, so that no send can pass on a snapshot older than the
    /// change once the change is done (on another node: once the bus brought the news).
    fn bump(&self, room: RoomId) {
        self.bump_here(room);
        self.hub.publish(|| crate::bus::Note::Epoch { room });
    }

    /// [`Chat::bump`] on this node only: another node changed who may post in `room`.
    pub fn bump_here(&self, room: RoomId) {
        *self
            .epochs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .rooms
            .entry(room)
            .or_default() += 1;
    }

    /// Marks every snapshot of every room stale, and forgets every cached rule: the bus was
    /// away, so changes made on other nodes meanwhile may have gone unheard.
    pub fn forget_everything_cached(&self) {
        self.epochs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .base += 1;
        let mut cache = self.filters.lock().unwrap_or_else(PoisonError::into_inner);
        self.filters_generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        cache.clear();
    }

    /// Counts one request against the user's request rate. Every command does this; transports
    /// also call it for what is not a command (pings, malformed frames), so that those cost a
    /// flooder as much as requests do.
    pub fn request(&self, actor: &Actor) -> Result<(), ChatError> {
        self.limits
            .request(actor.id)
            .map_err(ChatError::RateLimited)
    }

    /// Drops slow-mode marks older than the slowest slow mode (called by housekeeping).
    pub fn prune(&self) {
        let horizon = Duration::from_secs(u64::from(MAX_WAIT_SECS));
        self.last_post
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, at| at.elapsed() < horizon);
    }

    // ----- reading rooms -----

    /// A page of the rooms `actor` may see, in id order after `after`.
    pub async fn list_rooms(
        &self,
        actor: &Actor,
        after: Option<RoomId>,
        limit: Option<u32>,
    ) -> Result<Vec<RoomInfo>, ChatError> {
        self.request(actor)?;
        let limit = limit.unwrap_or(ROOMS_PAGE_MAX).clamp(1, ROOMS_PAGE_MAX);
        let rooms = self.store.list_rooms(actor.id, after, limit).await?;
        let mut infos: Vec<RoomInfo> = rooms
            .into_iter()
            .map(|(room, role)| self.info(room, role))
            .collect();
        self.add_read_counts(actor, &mut infos).await?;
        Ok(infos)
    }

    /// Fills in the read position and unread counts of the rooms `actor` is a member of.
    async fn add_read_counts(
        &self,
        actor: &Actor,
        infos: &mut [RoomInfo],
    ) -> Result<(), ChatError> {
        let mine: Vec<RoomId> = infos
            .iter()
            .filter(|i| i.role.is_some())
            .map(|i| i.id)
            .collect();
        if mine.is_empty() {
            return Ok(());
        }
        let counts = self.store.read_counts(actor.id, mine).await?;
        let mut counts = counts.into_iter();
        for info in infos.iter_mut().filter(|i| i.role.is_some()) {
            if let Some(c) = counts.next() {
                info.read_seq = c.seq;
                info.unread = c.unread;
                info.mentions = c.mentions;
            }
        }
        Ok(())
    }

    /// One room, if `actor` may see it.
    pub async fn room(&self, actor: &Actor, room: RoomId) -> Result<RoomInfo, ChatError> {
        self.request(actor)?;
        let access = self.visible(actor, room).await?;
        let role = access.role();
        let mut info = [self.info(access.record.room, role)];
        self.add_read_counts(actor, &mut info).await?;
        let [info] = info;
        Ok(info)
    }

    /// The members of a room, with their roles and whether they are online. Public rooms show
    /// theirs to anyone; other rooms only to their members.
    pub async fn members(&self, actor: &Actor, room: RoomId) -> Result<Vec<MemberInfo>, ChatError> {
        self.request(actor)?;
        let access = self.visible(actor, room).await?;
        if access.record.room.kind != RoomKind::Public && access.record.member.is_none() {
            return Err(ChatError::NotJoined);
        }
        let members = self.store.members(room).await?;
        Ok(members
            .into_iter()
            .map(|m| MemberInfo {
                online: self.hub.is_online(room, &m.user.username),
                user: m.user.username,
                display_name: m.user.display_name,
                role: m.role,
                muted_until: m.muted_until.filter(|&until| until > now_ms()),
            })
            .collect())
    }

    /// People whose handle or display name starts with `query`, for the people picker.
    pub async fn search_users(
        &self,
        actor: &Actor,
        query: &str,
    ) -> Result<Vec<UserInfo>, ChatError> {
        self.request(actor)?;
        let query = query.trim();
        if query.is_empty() || query.chars().count() > DisplayName::MAX {
            return Ok(Vec::new());
        }
        let found = self
            .store
            .search_users(query.into(), USER_SEARCH_MAX)
            .await?;
        Ok(found
            .into_iter()
            .map(|u| UserInfo {
                user: u.username,
                display_name: u.display_name,
            })
            .collect())
    }

    // ----- making rooms -----

    /// Creates a public or private room, within the creator's quota. Everyone is told of a new
    /// public room; a private one is known only to its creator.
    pub async fn create_room(
        &self,
        actor: &Actor,
        name: String,
        kind: RoomKind,
        topic: Option<String>,
    ) -> Result<RoomInfo, ChatError> {
        self.request(actor)?;
        let name = RoomName::parse(name)?;
        if !matches!(kind, RoomKind::Public | RoomKind::Private) {
            return Err(ChatError::Invalid(
                "A room is public or private; direct conversations are opened with people.".into(),
            ));
        }
        let topic = parse_topic(topic.unwrap_or_default())?;
        let quota = self.config.max_rooms_per_user;
        if quota > 0 && self.store.rooms_created_by(actor.id, false).await? >= u64::from(quota) {
            return Err(ChatError::Quota(format!(
                "You have created {quota} rooms, the most allowed."
            )));
        }
        let created = self
            .store
            .create_room(NewRoomRecord {
                name: name.clone(),
                kind,
                topic,
                created_by: Some(actor.id),
            })
            .await;
        match created {
            Ok(room) => {
                tracing::info!(user = %actor.username, room = %room.id, ?kind, "room created");
                if kind == RoomKind::Public {
                    self.hub.to_all(&ServerMsg::Room {
                        room: self.info(room.clone(), None),
                    });
                }
                let mine = self.info(room, Some(Role::Owner));
                self.hub
                    .to_user(actor.id, &ServerMsg::Room { room: mine.clone() });
                Ok(mine)
            }
            Err(StoreError::Conflict) => {
                Err(ChatError::Conflict(format!("A room named {name} exists.")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the direct conversation of `actor` and the people named (1 to 9 handles), or
    /// reopens the one they already have.
    pub async fn open_direct(
        &self,
        actor: &Actor,
        handles: Vec<String>,
    ) -> Result<RoomInfo, ChatError> {
        self.request(actor)?;
        // Counted before any lookup: a list of ten thousand names costs one refusal, not ten
        // thousand reads.
        let mut distinct: Vec<String> = handles
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| *h != actor.username.as_str().to_ascii_lowercase())
            .collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() >= DIRECT_MAX_MEMBERS {
            return Err(ChatError::Invalid(format!(
                "A direct conversation has at most {DIRECT_MAX_MEMBERS} people."
            )));
        }
        let mut people = vec![UserSummary {
            id: actor.id,
            username: actor.username.clone(),
            display_name: actor.display_name.clone(),
        }];
        for raw in handles {
            let handle =
                Username::parse(raw.trim()).map_err(|_| ChatError::NoSuchUser(raw.clone()))?;
            let found = self
                .store
                .find_user(handle)
                .await?
                .ok_or_else(|| ChatError::NoSuchUser(raw.clone()))?;
            if !people.iter().any(|p| p.id == found.id) {
                people.push(UserSummary {
                    id: found.id,
                    username: found.username,
                    display_name: found.display_name,
                });
            }
        }
        if people.len() < 2 {
            return Err(ChatError::Invalid("Name at least one other person.".into()));
        }
        if people.len() > DIRECT_MAX_MEMBERS {
            return Err(ChatError::Invalid(format!(
                "A direct conversation has at most {DIRECT_MAX_MEMBERS} people."
            )));
        }
        let mut shown: Vec<&str> = people.iter().map(|p| p.display_name.as_str()).collect();
        shown.sort_unstable();
        let name = RoomName::parse(truncate(&shown.join(", "), RoomName::MAX))?;
        let quota = self
            .config
            .max_rooms_per_user
            .saturating_mul(DIRECT_PER_ROOM_QUOTA);
        if quota > 0 && self.store.rooms_created_by(actor.id, true).await? >= u64::from(quota) {
            return Err(ChatError::Quota(format!(
                "You have started {quota} direct conversations, the most allowed."
            )));
        }
        let (room, added) = self.store.open_direct(people.clone(), name).await?;
        // Everyone hears of a new room, or of one they were added back to.
        if added {
            for person in &people {
                self.hub.to_user(
                    person.id,
                    &ServerMsg::Room {
                        room: self.info(room.clone(), Some(Role::Member)),
                    },
                );
            }
        }
        Ok(self.info(room, Some(Role::Member)))
    }

    // ----- membership -----

    /// Makes `actor` a member of a room they may join: a public room, or one they are invited
    /// to (or already in). `since` is the highest `seq` the client has; a long catch-up costs
    /// one more request token per [`CATCH_UP_COST`] events it will replay, so that joins cannot
    /// turn a small allowance into a flood of frames.
    pub async fn join(
        &self,
        actor: &Actor,
        room: RoomId,
        since: Option<u64>,
    ) -> Result<Joined, ChatError> {
        self.request(actor)?;
        let epoch = self.epoch(room);
        let mut access = self.visible(actor, room).await?;
        if let Some(reason) = &access.record.ban {
            return Err(banned(reason.as_deref()));
        }
        let record = access.record.room.clone();
        let since = since.filter(|&s| s <= record.last_seq && record.last_seq - s <= CATCH_UP_MAX);
        if let Some(since) = since {
            let extra = (record.last_seq - since) / CATCH_UP_COST;
            if extra > 0 {
                self.limits
                    .request_n(actor.id, u32::try_from(extra).unwrap_or(u32::MAX))
                    .map_err(ChatError::RateLimited)?;
            }
        }
        if access.record.member.is_none() {
            // Public, or invited (`visible` let nothing else through).
            match self.store.add_member(room, actor.id, Role::Member).await {
                Ok(true) => {}
                // Banned between our read and the write.
                Ok(false) => return Err(banned(None)),
                Err(StoreError::NotFound) => return Err(ChatError::NoSuchRoom),
                Err(e) => return Err(e.into()),
            }
            self.members_joined(room);
            if access.record.invited {
                self.hub.to_user(
                    actor.id,
                    &ServerMsg::Room {
                        room: self.info(record.clone(), Some(Role::Member)),
                    },
                );
            }
            // Read again: the new membership, with any mute that outlived an earlier one.
            access.record = self
                .store
                .access(room, actor.id)
                .await?
                .ok_or(ChatError::NoSuchRoom)?;
        }
        Ok(Joined {
            membership: Membership::new(actor.id, &access.record, epoch),
            since,
        })
    }

    /// Ends `actor`'s membership of a room. Their connections leave it at once; a private room
    /// needs a new invitation to come back.
    pub async fn leave(&self, actor: &Actor, room: RoomId) -> Result<(), ChatError> {
        self.request(actor)?;
        let access = self.visible(actor, room).await?;
        if access.record.member.is_none() {
            return Err(ChatError::NotJoined);
        }
        // Before the write as well as after it: a send that read its snapshot before this write
        // must not pass on it once the write is done (see `Membership`).
        self.bump(room);
        self.store.remove_member(room, actor.id).await?;
        self.bump(room);
        self.hub.remove_from_room(
            room,
            actor.id,
            &actor.username,
            &ServerMsg::Removed {
                room,
                reason: Removal::Left,
                by: None,
                message: None,
            },
        );
        self.hub.to_room(room, &ServerMsg::Members { room });
        Ok(())
    }

    /// The refusal for a command on a room the user (or connection) has not joined: the room
    /// is said not to exist when it does not, or when the user may not see it.
    pub async fn not_joined(&self, actor: &Actor, room: RoomId) -> ChatError {
        match self.visible(actor, room).await {
            Ok(_) => ChatError::NotJoined,
            Err(e) => e,
        }
    }

    /// The membership of a user who joined earlier (over any transport).
    pub async fn membership(&self, actor: &Actor, room: RoomId) -> Result<Membership, ChatError> {
        let epoch = self.epoch(room);
        let access = self.visible(actor, room).await?;
        if access.record.member.is_none() {
            return Err(ChatError::NotJoined);
        }
        Ok(Membership::new(actor.id, &access.record, epoch))
    }

    // ----- messages -----

    /// Checks a write to the room's log against the room's rules (membership, mute, slow mode,
    /// filters, who may change what) and starts storing it; the returned future resolves once
    /// it is committed (or was stored before under the same `client_id`, or had nothing to do).
    ///
    /// Posting and editing are refused while muted; deleting one's own message is not. Only a
    /// message's author may edit it (a moderator may not rewrite others' words); its author or
    /// a moderator may delete it. The checks that depend on the log itself (the target exists and
    /// is not deleted, the editor wrote it) are made by the store in the write that appends.
    pub async fn write(
        &self,
        actor: &Actor,
        membership: &mut Membership,
        client_id: ClientId,
        write: Write,
    ) -> Result<SendOutcome, ChatError> {
        if membership.user != actor.id {
            return Err(ChatError::NotJoined);
        }
        self.limits.send(actor.id).map_err(ChatError::RateLimited)?;
        // Validate what needs no state first: a broken request is refused before any read.
        let write = match write {
            Write::Post {
                text,
                reply_to,
                attachments,
            } => {
                if attachments.len() > MAX_ATTACHMENTS {
                    return Err(ChatError::Invalid(format!(
                        "A message carries at most {MAX_ATTACHMENTS} files."
                    )));
                }
                // A message of files alone needs no text.
                let text = if !attachments.is_empty() && text.chars().all(is_invisible) {
                    String::new()
                } else {
                    MessageText::parse(text)?.into_inner()
                };
                Write::Post {
                    text,
                    reply_to,
                    attachments,
                }
            }
            Write::Edit { target, text } => Write::Edit {
                target,
                text: MessageText::parse(text)?.into_inner(),
            },
            other => other,
        };
        let room = membership.room;
        self.refresh(actor, membership).await?;
        let snapshot = &membership.snapshot;
        if let Some(reason) = &snapshot.ban {
            return Err(banned(reason.as_deref()));
        }
        if snapshot.role.is_none() {
            return Err(ChatError::NotJoined);
        }
        let moderator = rank(snapshot.role, actor.is_admin) >= 2;
        let muted = snapshot.muted_until.filter(|&until| until > now_ms());
        if let (Some(until), false) = (muted, matches!(write, Write::Delete { .. })) {
            return Err(ChatError::Muted(format!(
                "You are muted in this room for {} more s.",
                (until - now_ms() + 999) / 1000
            )));
        }
        // The contents a deletion may leave without any file, to remove once it is stored.
        let mut released: Vec<[u8; 32]> = Vec::new();
        let change = match write {
            Write::Post {
                text,
                reply_to,
                attachments,
            } => {
                let slow = snapshot.slow_mode_secs;
                if slow > 0 && !moderator {
                    self.slow_mode(room, actor.id, slow)?;
                }
                let text = if text.is_empty() {
                    text
                } else {
                    self.apply_filters(room, text).await?
                };
                if let Some(typist) = self.typing.stop(room, actor.id) {
                    self.typing_ended(&typist);
                }
                Change::Post {
                    mentions: mentioned_handles(&text),
                    text,
                    reply_to,
                    attachments,
                }
            }
            Write::Edit { target, text } => {
                let text = self.apply_filters(room, text).await?;
                Change::Edit {
                    target,
                    mentions: mentioned_handles(&text),
                    text,
                }
            }
            Write::Delete { target } => {
                released = self
                    .store
                    .message_files(room, target)
                    .await?
                    .into_iter()
                    .map(|f| f.hash)
                    .collect();
                Change::Delete {
                    target,
                    author_only: !moderator,
                }
            }
            Write::React { target, emoji, on } => Change::React {
                target,
                emoji: Emoji::parse(emoji)?,
                on,
            },
        };
        let append = self.store.append(NewEvent {
            room,
            author_id: actor.id,
            author: actor.username.clone(),
            author_name: actor.display_name.clone(),
            client_id,
            change,
        });
        let blobs = Arc::clone(&self.blobs);
        let store = Arc::clone(&self.store);
        Ok(async move {
            let done = append.await?;
            if matches!(done, Appended::New(_)) && !released.is_empty() {
                blobs.release(store.as_ref(), released).await;
            }
            Ok(done)
        }
        .boxed())
    }

    /// Refuses a post that comes sooner than slow mode allows; otherwise records it.
    fn slow_mode(&self, room: RoomId, user: UserId, secs: u32) -> Result<(), ChatError> {
        let gap = Duration::from_secs(u64::from(secs));
        let mut last = self
            .last_post
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if let Some(at) = last.get(&(room, user)) {
            let since = now.duration_since(*at);
            if since < gap {
                return Err(ChatError::SlowMode(RetryAfter(gap - since)));
            }
        }
        last.insert((room, user), now);
        Ok(())
    }

    /// Applies the server-wide rules, then the room's: a refusal names the rule; masks change
    /// the text.
    async fn apply_filters(&self, room: RoomId, text: String) -> Result<String, ChatError> {
        let server = self.rules(None).await?;
        let local = self.rules(Some(room)).await?;
        if server.is_empty() && local.is_empty() {
            return Ok(text);
        }
        match filter::check_all(&[&server, &local], &text) {
            Verdict::Allowed(std::borrow::Cow::Borrowed(_)) => Ok(text),
            Verdict::Allowed(std::borrow::Cow::Owned(masked)) => Ok(masked),
            Verdict::Refused { pattern, .. } => Err(ChatError::Filtered(format!(
                "The message was refused by the filter rule \"{pattern}\"."
            ))),
        }
    }

    /// The compiled rules of a scope, compiled from the store on first use.
    async fn rules(&self, scope: Option<RoomId>) -> Result<Arc<RuleSet>, ChatError> {
        if let Some(set) = self
            .filters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&scope)
        {
            return Ok(Arc::clone(set));
        }
        let generation = self
            .filters_generation
            .load(std::sync::atomic::Ordering::Acquire);
        let rules = self.store.filters(scope).await?;
        // Compiling regular expressions is CPU work: off the async threads.
        let (compiled, skipped) = tokio::task::spawn_blocking(move || {
            RuleSet::compile_stored(rules.into_iter().map(to_rule).collect())
        })
        .await
        .map_err(|e| ChatError::Internal(e.to_string()))?;
        for e in skipped {
            // Every stored rule was validated when it was added; one that no longer compiles is
            // left out (and said so), and the others still apply.
            tracing::error!(error = %e, ?scope, "a stored filter rule does not compile");
        }
        let compiled = Arc::new(compiled);
        let mut cache = self.filters.lock().unwrap_or_else(PoisonError::into_inner);
        if self
            .filters_generation
            .load(std::sync::atomic::Ordering::Acquire)
            == generation
        {
            cache.insert(scope, Arc::clone(&compiled));
        }
        Ok(compiled)
    }

    /// Reads the membership's snapshot again if the room's epoch moved since it was taken (a
    /// kick, ban, mute or new slow mode since then counts).
    async fn refresh(&self, actor: &Actor, membership: &mut Membership) -> Result<(), ChatError> {
        let room = membership.room;
        let epoch = self.epoch(room);
        if epoch != membership.epoch {
            membership.snapshot = Snapshot::from(&self.access(actor, room).await?.record);
            membership.epoch = epoch;
        }
        Ok(())
    }

    /// Checks, after a connection subscribed to a room, that the membership it joined with
    /// still holds (nothing changed in the room, or a fresh read says it does).
    pub async fn still_member(
        &self,
        actor: &Actor,
        membership: &mut Membership,
    ) -> Result<(), ChatError> {
        self.refresh(actor, membership).await?;
        if let Some(reason) = &membership.snapshot.ban {
            return Err(banned(reason.as_deref()));
        }
        if membership.snapshot.role.is_none() {
            return Err(ChatError::NotJoined);
        }
        Ok(())
    }

    /// Up to `limit` messages of the room with `seq < before`, as they are now, oldest first,
    /// for a member (checked again if anything changed in the room since the membership was
    /// read).
    pub async fn history(
        &self,
        actor: &Actor,
        membership: &mut Membership,
        before: u64,
        limit: Option<u32>,
    ) -> Result<Page, ChatError> {
        let limit = self.may_page(actor, membership, limit).await?;
        self.page(membership.room, before, limit).await
    }

    /// A page of a joined room's messages after `after` (oldest first), to read forward from an
    /// older point (a search result far back); `has_more` says whether newer ones exist.
    pub async fn history_after(
        &self,
        actor: &Actor,
        membership: &mut Membership,
        after: u64,
        limit: Option<u32>,
    ) -> Result<Page, ChatError> {
        let limit = self.may_page(actor, membership, limit).await?;
        let page = self
            .store
            .messages_after(membership.room, after, limit)
            .await?;
        Ok(page.into())
    }

    /// The checks of a history request (its rate, the membership, read again if the room
    /// changed), and the page size it may have.
    async fn may_page(
        &self,
        actor: &Actor,
        membership: &mut Membership,
        limit: Option<u32>,
    ) -> Result<u32, ChatError> {
        self.request(actor)?;
        self.refresh(actor, membership).await?;
        if membership.snapshot.role.is_none() {
            return Err(ChatError::NotJoined);
        }
        Ok(limit.unwrap_or(HISTORY_PAGE).clamp(1, HISTORY_PAGE))
    }

    /// The newest page of a room, for a join without a usable `since`: no rate cost of its own
    /// (the join paid).
    pub async fn newest(&self, membership: &Membership) -> Result<Page, ChatError> {
        self.page(membership.room, u64::MAX, HISTORY_PAGE).await
    }

    async fn page(&self, room: RoomId, before: u64, limit: u32) -> Result<Page, ChatError> {
        Ok(self
            .store
            .messages_before(room, before, limit)
            .await?
            .into())
    }

    /// One message of the room as it is now, for a member.
    pub async fn message(
        &self,
        actor: &Actor,
        room: RoomId,
        seq: u64,
    ) -> Result<MessageEvent, ChatError> {
        self.request(actor)?;
        let membership = self.membership(actor, room).await?;
        self.store
            .message(membership.room, seq)
            .await?
            .ok_or(ChatError::NoSuchMessage)
    }

    /// The log of a room after `since`, for a member without a socket: at once if anything is
    /// there, otherwise after waiting up to `wait` (at most [`LONG_POLL_MAX_SECS`]) for news.
    pub async fn poll(
        &self,
        actor: &Actor,
        room: RoomId,
        since: u64,
        wait: Duration,
    ) -> Result<EventsPage, ChatError> {
        self.request(actor)?;
        let membership = self.membership(actor, room).await?;
        let wait = wait.min(Duration::from_secs(LONG_POLL_MAX_SECS));
        let deadline = tokio::time::Instant::now() + wait;
        // Subscribed before the first read, so that news between the read and the wait is seen.
        let mut news = self.hub.news();
        let head = self.store.room(room).await?.map_or(0, |r| r.last_seq);
        if since > head {
            // A position from another database (or a typo): nothing will come after it, so say
            // where the log ends instead of waiting.
            return Ok(EventsPage {
                room,
                events: Vec::new(),
                next: head,
                more: false,
            });
        }
        loop {
            let events = self.store.events_after(room, since, POLL_PAGE).await?;
            if !events.is_empty() || tokio::time::Instant::now() >= deadline {
                let more = events.len() >= POLL_PAGE as usize;
                let next = events.last().map_or(since, |e| e.seq);
                return Ok(EventsPage {
                    room: membership.room,
                    events,
                    next,
                    more,
                });
            }
            // Wait for an event of this room (or a lag of the news channel, or the deadline),
            // then read again: the store, not the news, is what is returned.
            loop {
                match tokio::time::timeout_at(deadline, news.recv()).await {
                    Ok(Ok((r, _))) if r != room => continue,
                    _ => break,
                }
            }
        }
    }

    /// Events of the room after `after`, for a catch-up (paid for by the join).
    pub async fn events_after(
        &self,
        membership: &Membership,
        after: u64,
        limit: u32,
    ) -> Result<Vec<MessageEvent>, ChatError> {
        Ok(self
            .store
            .events_after(membership.room, after, limit)
            .await?)
    }

    /// The room's highest `seq` now.
    pub async fn last_seq(&self, membership: &Membership) -> Result<u64, ChatError> {
        Ok(self
            .store
            .room(membership.room)
            .await?
            .map_or(membership.last_seq, |r| r.last_seq))
    }

    // ----- read positions, typing -----

    /// Moves `actor`'s read position in a room forward (`None`: to its newest event); every
    /// connection of theirs is told, with the counts.
    pub async fn read(
        &self,
        actor: &Actor,
        room: RoomId,
        seq: Option<u64>,
    ) -> Result<ReadState, ChatError> {
        self.request(actor)?;
        let membership = self.membership(actor, room).await?;
        let counts = self.store.mark_read(actor.id, membership.room, seq).await?;
        let state = read_state(room, counts);
        self.tell_read(actor, &state);
        Ok(state)
    }

    /// Records a read position reported over a socket, for a member of the room (checked with
    /// the connection's membership when it has one). Positions gather for a quarter of a second
    /// and are written together, and every connection of each person then gets its `read` frame:
    /// in a busy room every reader reports a position after every message, and one write per
    /// report would make the readers, not the writers, the load on the store.
    pub async fn read_soon(
        &self,
        actor: &Actor,
        membership: Option<&mut Membership>,
        room: RoomId,
        seq: u64,
    ) -> Result<(), ChatError> {
        self.request(actor)?;
        match membership {
            Some(membership) => self.still_member(actor, membership).await?,
            None => {
                self.membership(actor, room).await?;
            }
        }
        {
            let mut pending = self
                .reads
                .positions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let at = pending.entry((actor.id, room)).or_insert(seq);
            *at = (*at).max(seq);
        }
        self.reads.wake.notify_one();
        Ok(())
    }

    /// Resolves when read positions are waiting and have gathered for a while (cancel-safe:
    /// awaited again, it finds them still waiting).
    pub async fn reads_ready(&self) {
        loop {
            let waiting = !self
                .reads
                .positions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty();
            if waiting {
                tokio::time::sleep(READ_BATCH_DELAY).await;
                return;
            }
            self.reads.wake.notified().await;
        }
    }

    /// Writes the waiting read positions in one go and tells each person's connections.
    pub async fn write_reads(&self) {
        let batch: Vec<((UserId, RoomId), u64)> = self
            .reads
            .positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .collect();
        if batch.is_empty() {
            return;
        }
        let positions = batch.iter().map(|&((u, r), s)| (u, r, s)).collect();
        match self.store.mark_reads(positions).await {
            Ok(counts) => {
                for (((user, room), _), counts) in batch.into_iter().zip(counts) {
                    let state = read_state(room, counts);
                    self.hub.to_user(
                        user,
                        &ServerMsg::Read {
                            room,
                            seq: state.seq,
                            unread: state.unread,
                            mentions: state.mentions,
                        },
                    );
                }
            }
            // Lost positions are only a convenience lost: the next report carries them again.
            Err(e) => tracing::warn!(error = %e, "cannot write read positions"),
        }
    }

    /// Marks every room of `actor`'s read.
    pub async fn read_all(&self, actor: &Actor) -> Result<Vec<ReadState>, ChatError> {
        self.request(actor)?;
        let all = self.store.mark_all_read(actor.id).await?;
        let states: Vec<ReadState> = all
            .into_iter()
            .map(|(room, counts)| read_state(room, counts))
            .collect();
        for state in &states {
            self.tell_read(actor, state);
        }
        Ok(states)
    }

    fn tell_read(&self, actor: &Actor, state: &ReadState) {
        self.hub.to_user(
            actor.id,
            &ServerMsg::Read {
                room: state.room,
                seq: state.seq,
                unread: state.unread,
                mentions: state.mentions,
            },
        );
    }

    /// `actor` is typing in a room (or stopped), from connection `conn`.
    pub async fn typing(
        &self,
        actor: &Actor,
        membership: &mut Membership,
        conn: ConnId,
        on: bool,
    ) -> Result<(), ChatError> {
        self.request(actor)?;
        self.still_member(actor, membership).await?;
        let room = membership.room;
        if on {
            let tell =
                self.typing
                    .start(room, actor.id, &actor.username, &actor.display_name, conn);
            if !tell {
                return Ok(());
            }
            self.hub.to_room_but(
                room,
                &actor.username,
                &ServerMsg::Typing {
                    room,
                    user: actor.username.clone(),
                    display_name: actor.display_name.clone(),
                    on: true,
                },
            );
        } else if let Some(typist) = self.typing.stop(room, actor.id) {
            self.typing_ended(&typist);
        }
        Ok(())
    }

    /// Ends the typing notices of a closed connection.
    pub fn connection_closed(&self, conn: ConnId) {
        for typist in self.typing.stop_conn(conn) {
            self.typing_ended(&typist);
        }
    }

    /// Ends the typing notices that lapsed (called every second by housekeeping).
    pub fn expire_typing(&self) {
        for typist in self.typing.expire(Instant::now()) {
            self.typing_ended(&typist);
        }
    }

    fn typing_ended(&self, typist: &Typist) {
        self.hub.to_room_but(
            typist.room,
            &typist.user,
            &ServerMsg::Typing {
                room: typist.room,
                user: typist.user.clone(),
                display_name: typist.display_name.clone(),
                on: false,
            },
        );
    }

    // ----- invitations -----

    /// Invites someone to a room. Any member may invite; a banned user cannot be invited.
    pub async fn invite(&self, actor: &Actor, room: RoomId, handle: &str) -> Result<(), ChatError> {
        self.request(actor)?;
        let access = self.visible(actor, room).await?;
        if access.record.member.is_none() {
            return Err(ChatError::NotJoined);
        }
        if access.record.room.kind == RoomKind::Direct {
            return Err(ChatError::Invalid(
                "A direct conversation keeps its people; open a new one with everyone.".into(),
            ));
        }
        let target = self.user(handle).await?;
        let theirs = self
            .store
            .access(room, target.id)
            .await?
            .ok_or(ChatError::NoSuchRoom)?;
        if theirs.ban.is_some() {
            return Err(ChatError::Banned(format!(
                "{} is banned from this room.",
                target.username
            )));
        }
        if theirs.member.is_some() {
            return Err(ChatError::Conflict(format!(
                "{} is already a member.",
                target.username
            )));
        }
        self.store.invite(room, target.id, actor.id).await?;
        self.audit(actor, Some(room), "invite", Some(target.id), None, None)
            .await;
        self.hub.to_user(
            target.id,
            &ServerMsg::Invited {
                invite: InviteInfo {
                    room: self.info(access.record.room, None),
                    by: actor.username.clone(),
                    by_name: actor.display_name.clone(),
                    ts: now_ms(),
                },
            },
        );
        Ok(())
    }

    /// The invitations waiting for `actor`.
    pub async fn invites(&self, actor: &Actor) -> Result<Vec<InviteInfo>, ChatError> {
        self.request(actor)?;
        let invites = self.store.invites_for(actor.id).await?;
        Ok(invites
            .into_iter()
            .map(|i| InviteInfo {
                room: self.info(i.room, None),
                by: i.by.username,
                by_name: i.by.display_name,
                ts: i.at,
            })
            .collect())
    }

    /// Declines an invitation.
    pub async fn decline(&self, actor: &Actor, room: RoomId) -> Result<(), ChatError> {
        self.request(actor)?;
        if self.store.delete_invite(room, actor.id).await? {
            Ok(())
        } else {
            Err(ChatError::NoSuchRoom)
        }
    }

    // ----- moderation -----

    /// Kicks, bans, unbans, mutes, unmutes, or changes the role of someone in a room.
    pub async fn moderate(
        &self,
        actor: &Actor,
        room: RoomId,
        what: Moderation,
        action: ModAction,
    ) -> Result<(), ChatError> {
        self.request(actor)?;
        let access = self.visible(actor, room).await?;
        if access.record.room.kind == RoomKind::Direct {
            return Err(ChatError::Forbidden(
                "Direct conversations have no moderators.".into(),
            ));
        }
        access.require_moderator()?;
        if what == Moderation::Role && access.rank() < 3 {
            return Err(ChatError::Forbidden(
                "Only the room's owner appoints moderators.".into(),
            ));
        }
        let reason = parse_reason(action.reason)?;
        let (target, target_admin) = self.user_and_rank(&action.user).await?;
        let theirs = self
            .store
            .access(room, target.id)
            .await?
            .ok_or(ChatError::NoSuchRoom)?;
        let their_rank = rank(theirs.member.as_ref().map(|m| m.role), target_admin);
        if target.id == actor.id {
            return Err(ChatError::Forbidden(
                "You cannot do that to yourself.".into(),
            ));
        }
        if their_rank >= access.rank() {
            return Err(ChatError::Forbidden(format!(
                "{} has a role at least as high as yours.",
                target.username
            )));
        }
        let member_or = |e: ChatError| theirs.member.as_ref().map(|_| ()).ok_or(e);
        // Bumped before the write as well as after (see `leave`).
        self.bump(room);
        let (label, detail) = match what {
            Moderation::Kick => {
                member_or(ChatError::Invalid(format!(
                    "{} is not a member.",
                    target.username
                )))?;
                self.store.remove_member(room, target.id).await?;
                self.hub.remove_from_room(
                    room,
                    target.id,
                    &target.username,
                    &ServerMsg::Removed {
                        room,
                        reason: Removal::Kicked,
                        by: Some(actor.username.clone()),
                        message: reason.clone(),
                    },
                );
                ("kick", None)
            }
            Moderation::Ban => {
                self.store
                    .ban(room, target.id, actor.id, reason.clone())
                    .await?;
                // Only a member hears of it: telling anyone else would show them a room they
                // may not see (a private one), and who moderates it.
                if theirs.member.is_some() {
                    self.hub.remove_from_room(
                        room,
                        target.id,
                        &target.username,
                        &ServerMsg::Removed {
                            room,
                            reason: Removal::Banned,
                            by: Some(actor.username.clone()),
                            message: reason.clone(),
                        },
                    );
                }
                ("ban", None)
            }
            Moderation::Unban => {
                if !self.store.unban(room, target.id).await? {
                    return Err(ChatError::Invalid(format!(
                        "{} is not banned.",
                        target.username
                    )));
                }
                ("unban", None)
            }
            Moderation::Mute => {
                member_or(ChatError::Invalid(format!(
                    "{} is not a member.",
                    target.username
                )))?;
                let secs = action.seconds.unwrap_or(600).clamp(1, MAX_WAIT_SECS);
                let until = now_ms() + i64::from(secs) * 1000;
                self.store.set_muted(room, target.id, Some(until)).await?;
                self.hub.to_user(
                    target.id,
                    &ServerMsg::Muted {
                        room,
                        until: Some(until),
                        reason: reason.clone(),
                    },
                );
                ("mute", Some(format!("{secs} s")))
            }
            Moderation::Unmute => {
                member_or(ChatError::Invalid(format!(
                    "{} is not a member.",
                    target.username
                )))?;
                self.store.set_muted(room, target.id, None).await?;
                self.hub.to_user(
                    target.id,
                    &ServerMsg::Muted {
                        room,
                        until: None,
                        reason: None,
                    },
                );
                ("unmute", None)
            }
            Moderation::Role => {
                member_or(ChatError::Invalid(format!(
                    "{} is not a member.",
                    target.username
                )))?;
                if access.rank() < 3 {
                    return Err(ChatError::Forbidden(
                        "Only the room's owner appoints moderators.".into(),
                    ));
                }
                let role = match action.role {
                    Some(role @ (Role::Moderator | Role::Member)) => role,
                    _ => {
                        return Err(ChatError::Invalid(
                            "The role must be moderator or member.".into(),
                        ));
                    }
                };
                self.store.set_role(room, target.id, role).await?;
                let record = self.store.room(room).await?.ok_or(ChatError::NoSuchRoom)?;
                self.hub.to_user(
                    target.id,
                    &ServerMsg::Room {
                        room: self.info(record, Some(role)),
                    },
                );
                ("role", Some(role_name(role).into()))
            }
        };
        self.bump(room);
        self.hub.to_room(room, &ServerMsg::Members { room });
        tracing::info!(actor = %actor.username, %room, target = %target.username, action = label, "moderation");
        self.audit(actor, Some(room), label, Some(target.id), reason, detail)
            .await;
        Ok(())
    }

    /// Changes a room's topic or slow mode (moderators).
    pub async fn update_room(
        &self,
        actor: &Actor,
        room: RoomId,
        settings: RoomSettings,
    ) -> Result<RoomInfo, ChatError> {
        self.request(actor)?;
        let access = self.visible(actor, room).await?;
        if access.record.room.kind != RoomKind::Direct || settings.slow_mode_secs.is_some() {
            access.require_moderator()?;
        } else if access.record.member.is_none() {
            return Err(ChatError::NotJoined);
        }
        let topic = settings.topic.map(parse_topic).transpose()?;
        let slow = settings.slow_mode_secs;
        if slow.is_some_and(|s| s > MAX_WAIT_SECS) {
            return Err(ChatError::Invalid(format!(
                "Slow mode is at most {MAX_WAIT_SECS} seconds."
            )));
        }
        self.bump(room);
        self.store.update_room(room, topic.clone(), slow).await?;
        self.bump(room);
        if let Some(topic) = topic {
            self.audit(actor, Some(room), "topic", None, None, Some(topic))
                .await;
        }
        if let Some(slow) = slow {
            self.audit(
                actor,
                Some(room),
                "slow_mode",
                None,
                None,
                Some(format!("{slow} s")),
            )
            .await;
        }
        let record = self.store.room(room).await?.ok_or(ChatError::NoSuchRoom)?;
        self.hub.to_room(
            room,
            &ServerMsg::Room {
                room: self.info(record.clone(), None),
            },
        );
        Ok(self.info(record, access.role()))
    }

    /// A page of the room's audit log, newest first (moderators).
    pub async fn audit_log(
        &self,
        actor: &Actor,
        room: RoomId,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Result<Vec<AuditEntry>, ChatError> {
        self.request(actor)?;
        self.visible(actor, room).await?.require_moderator()?;
        let limit = limit.unwrap_or(HISTORY_PAGE).clamp(1, HISTORY_PAGE);
        let log = self.store.audit_log(room, before, limit).await?;
        Ok(log.into_iter().map(|a| audit_entry(room, a)).collect())
    }

    // ----- filters -----

    /// The filter rules of a room (its moderators) or the server (admins).
    pub async fn filters(
        &self,
        actor: &Actor,
        scope: Option<RoomId>,
    ) -> Result<Vec<FilterRule>, ChatError> {
        self.request(actor)?;
        self.require_filter_rights(actor, scope).await?;
        let rules = self.store.filters(scope).await?;
        Ok(rules.into_iter().map(filter_rule).collect())
    }

    /// Adds a filter rule; it applies to every message written from now on.
    pub async fn add_filter(
        &self,
        actor: &Actor,
        scope: Option<RoomId>,
        rule: NewFilter,
    ) -> Result<FilterRule, ChatError> {
        self.request(actor)?;
        self.require_filter_rights(actor, scope).await?;
        if rule.kind == FilterKind::Unknown || rule.action == FilterAction::Unknown {
            return Err(ChatError::Invalid(
                "A rule is a keyword or a regex, and refuses or masks.".into(),
            ));
        }
        let pattern = rule.pattern.trim().to_owned();
        let (kind, checked) = (filter_kind(rule.kind), pattern.clone());
        tokio::task::spawn_blocking(move || filter::validate(kind, &checked))
            .await
            .map_err(|e| ChatError::Internal(e.to_string()))?
            .map_err(|e| ChatError::Invalid(e.to_string()))?;
        let existing = self.store.filters(scope).await?;
        if existing.len() >= filter::MAX_RULES {
            return Err(ChatError::Invalid(format!(
                "A room has at most {} filter rules.",
                filter::MAX_RULES
            )));
        }
        let regexes = existing
            .iter()
            .filter(|r| r.kind == FilterKind::Regex)
            .count();
        if rule.kind == FilterKind::Regex && regexes >= MAX_REGEX_RULES {
            return Err(ChatError::Invalid(format!(
                "A room has at most {MAX_REGEX_RULES} regular-expression rules; use keywords."
            )));
        }
        let stored = self
            .store
            .add_filter(NewFilterRecord {
                room: scope,
                kind: rule.kind,
                pattern: pattern.clone(),
                action: rule.action,
                created_by: actor.id,
            })
            .await?;
        self.forget_rules(scope);
        self.audit(actor, scope, "filter_add", None, None, Some(pattern))
            .await;
        Ok(filter_rule(stored))
    }

    /// Removes a filter rule.
    pub async fn delete_filter(
        &self,
        actor: &Actor,
        scope: Option<RoomId>,
        id: i64,
    ) -> Result<(), ChatError> {
        self.request(actor)?;
        self.require_filter_rights(actor, scope).await?;
        if !self.store.delete_filter(scope, id).await? {
            return Err(ChatError::Invalid("No such filter rule.".into()));
        }
        self.forget_rules(scope);
        self.audit(
            actor,
            scope,
            "filter_remove",
            None,
            None,
            Some(id.to_string()),
        )
        .await;
        Ok(())
    }

    fn forget_rules(&self, scope: Option<RoomId>) {
        self.forget_rules_here(scope);
        self.hub.publish(|| crate::bus::Note::Rules { scope });
    }

    /// Forgets the cached rules of `scope` on this node: another node changed them.
    pub fn forget_rules_here(&self, scope: Option<RoomId>) {
        let mut cache = self.filters.lock().unwrap_or_else(PoisonError::into_inner);
        self.filters_generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        cache.remove(&scope);
    }

    async fn require_filter_rights(
        &self,
        actor: &Actor,
        scope: Option<RoomId>,
    ) -> Result<(), ChatError> {
        match scope {
            Some(room) => self.visible(actor, room).await?.require_moderator(),
            None if actor.is_admin => Ok(()),
            None => Err(ChatError::Forbidden(
                "Only server admins manage the server-wide filters.".into(),
            )),
        }
    }

    // ----- files and search -----

    /// Whether `actor` may upload a file to a room: as for posting there (a member, not
    /// banned, not muted). Returns the most bytes their files may take in all (0: no limit).
    pub async fn may_upload(&self, actor: &Actor, room: RoomId) -> Result<u64, ChatError> {
        self.request(actor)?;
        let access = self.visible(actor, room).await?;
        if let Some(reason) = &access.record.ban {
            return Err(banned(reason.as_deref()));
        }
        let Some(member) = &access.record.member else {
            return Err(ChatError::NotJoined);
        };
        if let Some(until) = member.muted_until.filter(|&until| until > now_ms()) {
            return Err(ChatError::Muted(format!(
                "You are muted in this room for {} more s.",
                (until - now_ms() + 999) / 1000
            )));
        }
        let quota = self.config.upload_quota_bytes;
        if quota > 0 && self.store.file_usage(actor.id).await? >= quota {
            return Err(ChatError::Quota(
                "You have used your upload quota; delete messages with files to free it.".into(),
            ));
        }
        Ok(quota)
    }

    /// A file, if `actor` may fetch it: its uploader, or anyone who may read the room of the
    /// message that carries it. To anyone else it does not exist.
    pub async fn file(&self, actor: &Actor, id: u64) -> Result<FileRecord, ChatError> {
        self.request(actor)?;
        let file = self.store.file(id).await?.ok_or(ChatError::NoSuchFile)?;
        if file.uploader == actor.id {
            return Ok(file);
        }
        if file.seq.is_none() {
            return Err(ChatError::NoSuchFile);
        }
        match self.access(actor, file.room).await {
            Ok(access) if access.readable() => Ok(file),
            Ok(_) | Err(ChatError::NoSuchRoom) => Err(ChatError::NoSuchFile),
            Err(e) => Err(e),
        }
    }

    /// Searches the messages of the rooms `actor` may read (one, or all of them).
    pub async fn search(&self, actor: &Actor, search: Search) -> Result<SearchPage, ChatError> {
        self.request(actor)?;
        let terms =
            terms::query_terms(&search.query).map_err(|e| ChatError::Invalid(e.to_string()))?;
        let cursor = match search.cursor.as_deref() {
            Some(raw) => Some(
                SearchCursor::decode(raw)
                    .ok_or_else(|| ChatError::Invalid("That cursor is not one of ours.".into()))?,
            ),
            None => None,
        };
        let author = match search.author.as_deref() {
            Some(handle) => Some(self.user(handle).await?.id),
            None => None,
        };
        let mut names: HashMap<RoomId, RoomName> = HashMap::new();
        match search.room {
            Some(room) => {
                let access = self.visible(actor, room).await?;
                if !access.readable() {
                    return Err(ChatError::NotJoined);
                }
                names.insert(room, access.record.room.name);
            }
            None => {
                let mut after = None;
                loop {
                    let page = self
                        .store
                        .list_rooms(actor.id, after, ROOMS_PAGE_MAX)
                        .await?;
                    let full = page.len() >= ROOMS_PAGE_MAX as usize;
                    after = page.last().map(|(room, _)| room.id);
                    for (room, role) in page {
                        // A public room is readable unless the searcher is banned from it.
                        if role.is_some() || self.store.ban_of(room.id, actor.id).await?.is_none() {
                            names.insert(room.id, room.name);
                        }
                    }
                    if !full {
                        break;
                    }
                }
            }
        }
        let limit = search
            .limit
            .unwrap_or(SEARCH_PAGE_MAX)
            .clamp(1, SEARCH_PAGE_MAX);
        let found = self
            .store
            .search(SearchQuery {
                terms,
                rooms: names.keys().copied().collect(),
                author,
                has_file: search.has_file,
                after: search.after,
                before: search.before,
                cursor,
                limit,
            })
            .await?;
        Ok(SearchPage {
            hits: found
                .hits
                .into_iter()
                .filter_map(|message| {
                    let room_name = names.get(&message.room)?.clone();
                    Some(SearchHit { room_name, message })
                })
                .collect(),
            next: found.next.map(SearchCursor::encode),
        })
    }

    // ----- helpers -----

    async fn access(&self, actor: &Actor, room: RoomId) -> Result<Access, ChatError> {
        let record = self
            .store
            .access(room, actor.id)
            .await?
            .ok_or(ChatError::NoSuchRoom)?;
        Ok(Access {
            record,
            admin: actor.is_admin,
        })
    }

    /// The room and the actor's place in it, if they may see it; `no_such_room` otherwise.
    async fn visible(&self, actor: &Actor, room: RoomId) -> Result<Access, ChatError> {
        let access = self.access(actor, room).await?;
        if access.visible() {
            Ok(access)
        } else {
            Err(ChatError::NoSuchRoom)
        }
    }

    async fn user(&self, handle: &str) -> Result<UserSummary, ChatError> {
        Ok(self.user_and_rank(handle).await?.0)
    }

    /// A user by handle, and whether they administer the server.
    async fn user_and_rank(&self, handle: &str) -> Result<(UserSummary, bool), ChatError> {
        let name =
            Username::parse(handle.trim()).map_err(|_| ChatError::NoSuchUser(handle.into()))?;
        let found = self
            .store
            .find_user(name)
            .await?
            .ok_or_else(|| ChatError::NoSuchUser(handle.into()))?;
        Ok((
            UserSummary {
                id: found.id,
                username: found.username,
                display_name: found.display_name,
            },
            found.is_admin,
        ))
    }

    /// Writes a line to the audit log; a failure is logged, not returned (the action is done).
    async fn audit(
        &self,
        actor: &Actor,
        room: Option<RoomId>,
        action: &'static str,
        target: Option<UserId>,
        reason: Option<String>,
        detail: Option<String>,
    ) {
        let entry = NewAudit {
            room,
            actor: actor.id,
            action,
            target,
            reason,
            detail,
        };
        if let Err(e) = self.store.audit(entry).await {
            tracing::error!(error = %e, action, "cannot write the audit log");
        }
    }

    fn info(&self, room: RoomRecord, role: Option<Role>) -> RoomInfo {
        RoomInfo {
            read_seq: 0,
            unread: 0,
            mentions: 0,
            online: self.hub.online_count(room.id),
            id: room.id,
            name: room.name,
            kind: room.kind,
            topic: room.topic,
            slow_mode_secs: room.slow_mode_secs,
            role,
            direct: room.direct,
            last_seq: room.last_seq,
        }
    }
}

/// A moderation action on a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moderation {
    /// Remove from the room now; may rejoin a public room.
    Kick,
    /// Remove and keep out.
    Ban,
    /// Let back in.
    Unban,
    /// Keep from posting for a time.
    Mute,
    /// Let post again.
    Unmute,
    /// Appoint or demote a moderator.
    Role,
}

fn banned(reason: Option<&str>) -> ChatError {
    ChatError::Banned(match reason {
        Some(reason) => format!("You are banned from this room: {reason}"),
        None => "You are banned from this room.".into(),
    })
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Member | Role::Unknown => "member",
        Role::Moderator => "moderator",
        Role::Owner => "owner",
    }
}

/// At most `max` characters of `s`, with an ellipsis when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

fn parse_topic(raw: String) -> Result<String, ChatError> {
    let topic = raw.trim();
    if topic.chars().count() > TOPIC_MAX_CHARS {
        return Err(ChatError::Invalid(format!(
            "A topic is at most {TOPIC_MAX_CHARS} characters."
        )));
    }
    if topic.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ChatError::Invalid(
            "A topic may not contain control characters.".into(),
        ));
    }
    Ok(topic.to_owned())
}

fn parse_reason(raw: Option<String>) -> Result<Option<String>, ChatError> {
    let Some(raw) = raw else { return Ok(None) };
    let reason = raw.trim();
    if reason.is_empty() {
        return Ok(None);
    }
    if reason.chars().count() > REASON_MAX_CHARS || reason.chars().any(char::is_control) {
        return Err(ChatError::Invalid(format!(
            "A reason is one line of at most {REASON_MAX_CHARS} characters."
        )));
    }
    Ok(Some(reason.to_owned()))
}

fn filter_kind(kind: FilterKind) -> filter::RuleKind {
    match kind {
        // `add_filter` refuses an unknown kind; nothing else can hold one.
        FilterKind::Keyword | FilterKind::Unknown => filter::RuleKind::Keyword,
        FilterKind::Regex => filter::RuleKind::Regex,
    }
}

fn to_rule(record: FilterRecord) -> filter::Rule {
    filter::Rule {
        id: record.id,
        kind: filter_kind(record.kind),
        pattern: record.pattern,
        action: match record.action {
            FilterAction::Refuse | FilterAction::Unknown => filter::Action::Refuse,
            FilterAction::Mask => filter::Action::Mask,
        },
    }
}

fn filter_rule(record: FilterRecord) -> FilterRule {
    FilterRule {
        id: record.id,
        room: record.room,
        kind: record.kind,
        pattern: record.pattern,
        action: record.action,
        created_by: record.created_by,
        ts: record.at,
    }
}

fn audit_entry(room: RoomId, record: AuditRecord) -> AuditEntry {
    AuditEntry {
        id: record.id,
        room: record.room.unwrap_or(room),
        actor: record.actor,
        action: record.action,
        target: record.target,
        reason: record.reason,
        detail: record.detail,
        ts: record.at,
    }
}

fn read_state(room: RoomId, counts: ReadCounts) -> ReadState {
    ReadState {
        room,
        seq: counts.seq,
        unread: counts.unread,
        mentions: counts.mentions,
    }
}
