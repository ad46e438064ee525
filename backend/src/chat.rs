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

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use shared::{
    CATCH_UP_MAX, ClientId, DisplayName, ErrorCode, HISTORY_PAGE, MessageEvent, MessageText,
    ROOMS_PAGE_MAX, RoomId, RoomInfo, RoomName, Username, ValueError,
};

use crate::auth::AuthUser;
use crate::config::Config;
use crate::hub::Hub;
use crate::limits::{RateLimits, RetryAfter};
use crate::store::{Appended, NewMessage, RoomRecord, Store, StoreError, UserId};

/// Who is asking.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Their id.
    pub id: UserId,
    /// Their login handle.
    pub username: Username,
    /// Their display name.
    pub display_name: DisplayName,
}

impl From<&AuthUser> for Actor {
    fn from(user: &AuthUser) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            display_name: user.display_name.clone(),
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
    /// The room does not exist, or this user may not see it (the two are not told apart).
    #[error("No such room.")]
    NoSuchRoom,
    /// The user (or this connection) has not joined the room.
    #[error("Join the room first.")]
    NotJoined,
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
            ChatError::NotJoined => ErrorCode::NotJoined,
            ChatError::Conflict(_) => ErrorCode::Conflict,
            ChatError::RateLimited(_) | ChatError::Quota(_) => ErrorCode::RateLimited,
            ChatError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// How long to wait before retrying, for a rate limit.
    pub fn retry_after(&self) -> Option<RetryAfter> {
        match self {
            ChatError::RateLimited(wait) => Some(*wait),
            _ => None,
        }
    }
}

impl From<StoreError> for ChatError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store call failed");
        ChatError::Internal(e.to_string())
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

/// Proof that the service admitted a user to a room (see the module docs).
#[derive(Debug, Clone)]
pub struct Membership {
    room: RoomRecord,
    user: UserId,
}

impl Membership {
    /// The room, as it was when the membership was checked.
    pub fn room(&self) -> &RoomRecord {
        &self.room
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

/// A page of a room's log.
#[derive(Debug)]
pub struct Page {
    /// The events, oldest first.
    pub events: Vec<MessageEvent>,
    /// Whether older events exist.
    pub has_more: bool,
}

/// A catch-up costs one more request token per this many events it replays.
const CATCH_UP_COST: u64 = 100;

/// The chat service. Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct Chat {
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    limits: Arc<RateLimits>,
    config: Arc<Config>,
}

impl Chat {
    /// The service over these parts.
    pub fn new(
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
        limits: Arc<RateLimits>,
        config: Arc<Config>,
    ) -> Self {
        Self {
            store,
            hub,
            limits,
            config,
        }
    }

    /// Counts one request against the user's request rate. Every command does this; transports
    /// also call it for what is not a command (pings, malformed frames), so that those cost a
    /// flooder as much as requests do.
    pub fn request(&self, actor: &Actor) -> Result<(), ChatError> {
        self.limits.request(actor.id).map_err(ChatError::RateLimited)
    }

    /// A page of the rooms `actor` may see, in id order after `after`.
    pub async fn list_rooms(
        &self,
        actor: &Actor,
        after: Option<RoomId>,
        limit: Option<u32>,
    ) -> Result<Vec<RoomInfo>, ChatError> {
        self.request(actor)?;
        let limit = limit.unwrap_or(ROOMS_PAGE_MAX).clamp(1, ROOMS_PAGE_MAX);
        let rooms = self.store.list_rooms(after, limit).await?;
        Ok(rooms.into_iter().map(|r| self.info(r)).collect())
    }

    /// One room, if `actor` may see it.
    pub async fn room(&self, actor: &Actor, room: RoomId) -> Result<RoomInfo, ChatError> {
        self.request(actor)?;
        Ok(self.info(self.visible_room(room).await?))
    }

    /// Creates a public room, within the creator's quota.
    pub async fn create_room(&self, actor: &Actor, name: String) -> Result<RoomInfo, ChatError> {
        self.request(actor)?;
        let name = RoomName::parse(name)?;
        let quota = self.config.max_rooms_per_user;
        if quota > 0 && self.store.rooms_created_by(actor.id).await? >= u64::from(quota) {
            return Err(ChatError::Quota(format!(
                "You have created {quota} rooms, the most allowed."
            )));
        }
        match self.store.create_room(name.clone(), Some(actor.id)).await {
            Ok(room) => {
                tracing::info!(user = %actor.username, room = %room.id, "room created");
                Ok(self.info(room))
            }
            Err(StoreError::Conflict) => Err(ChatError::Conflict(format!(
                "A room named {name} exists."
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Makes `actor` a member of a room. `since` is the highest `seq` the client has; a long
    /// catch-up costs one more request token per [`CATCH_UP_COST`] events it will replay, so
    /// that joins cannot turn a small allowance into a flood of frames.
    pub async fn join(
        &self,
        actor: &Actor,
        room: RoomId,
        since: Option<u64>,
    ) -> Result<Joined, ChatError> {
        self.request(actor)?;
        let record = self.visible_room(room).await?;
        let since = since.filter(|&s| s <= record.last_seq && record.last_seq - s <= CATCH_UP_MAX);
        if let Some(since) = since {
            let extra = (record.last_seq - since) / CATCH_UP_COST;
            if extra > 0 {
                self.limits
                    .request_n(actor.id, u32::try_from(extra).unwrap_or(u32::MAX))
                    .map_err(ChatError::RateLimited)?;
            }
        }
        match self.store.add_member(room, actor.id).await {
            Ok(()) => {}
            Err(StoreError::NotFound) => return Err(ChatError::NoSuchRoom),
            Err(e) => return Err(e.into()),
        }
        Ok(Joined {
            membership: Membership {
                room: record,
                user: actor.id,
            },
            since,
        })
    }

    /// The refusal for a command on a room the user (or connection) has not joined: the room
    /// is said not to exist when it does not, or when the user may not see it.
    pub async fn not_joined(&self, room: RoomId) -> ChatError {
        match self.visible_room(room).await {
            Ok(_) => ChatError::NotJoined,
            Err(e) => e,
        }
    }

    /// The membership of a user who joined earlier (over any transport).
    pub async fn membership(&self, actor: &Actor, room: RoomId) -> Result<Membership, ChatError> {
        let record = self.visible_room(room).await?;
        if !self.store.is_member(room, actor.id).await? {
            return Err(ChatError::NotJoined);
        }
        Ok(Membership {
            room: record,
            user: actor.id,
        })
    }

    /// Checks a message and starts storing it; the returned future resolves once it is
    /// committed (or was stored before under the same `client_id`).
    pub fn send(
        &self,
        actor: &Actor,
        membership: &Membership,
        client_id: ClientId,
        text: String,
    ) -> Result<SendOutcome, ChatError> {
        if membership.user != actor.id {
            return Err(ChatError::NotJoined);
        }
        self.limits.send(actor.id).map_err(ChatError::RateLimited)?;
        let text = MessageText::parse(text)?;
        let append = self.store.append(NewMessage {
            room: membership.room.id,
            author_id: actor.id,
            author: actor.username.clone(),
            author_name: actor.display_name.clone(),
            client_id,
            text: text.into_inner(),
        });
        Ok(async move {
            match append.await {
                Ok(done) => Ok(done),
                Err(StoreError::NotFound) => Err(ChatError::NoSuchRoom),
                Err(e) => Err(e.into()),
            }
        }
        .boxed())
    }

    /// Up to `limit` events of the room with `seq < before`, oldest first.
    pub async fn history(
        &self,
        actor: &Actor,
        membership: &Membership,
        before: u64,
        limit: Option<u32>,
    ) -> Result<Page, ChatError> {
        self.request(actor)?;
        let limit = limit.unwrap_or(HISTORY_PAGE).clamp(1, HISTORY_PAGE);
        let events = self
            .store
            .events_before(membership.room.id, before, limit)
            .await?;
        Ok(Page {
            has_more: events.first().is_some_and(|e| e.seq > 1),
            events,
        })
    }

    /// The newest page of a room, for a join without a usable `since`: no rate cost of its own
    /// (the join paid).
    pub async fn newest(&self, membership: &Membership) -> Result<Page, ChatError> {
        let events = self
            .store
            .events_before(membership.room.id, u64::MAX, HISTORY_PAGE)
            .await?;
        Ok(Page {
            has_more: events.first().is_some_and(|e| e.seq > 1),
            events,
        })
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
            .events_after(membership.room.id, after, limit)
            .await?)
    }

    /// The room's highest `seq` now.
    pub async fn last_seq(&self, membership: &Membership) -> Result<u64, ChatError> {
        Ok(self
            .store
            .room(membership.room.id)
            .await?
            .map_or(membership.room.last_seq, |r| r.last_seq))
    }

    /// A room that exists and that `actor` may see; every room is public so far.
    async fn visible_room(&self, room: RoomId) -> Result<RoomRecord, ChatError> {
        self.store.room(room).await?.ok_or(ChatError::NoSuchRoom)
    }

    fn info(&self, room: RoomRecord) -> RoomInfo {
        RoomInfo {
            online: self.hub.online_count(room.id),
            id: room.id,
            name: room.name,
            last_seq: room.last_seq,
        }
    }
}
