//! Rooms over HTTP: the same commands as the WebSocket, through the same service
//! ([`crate::chat`]), so that a bot or a script can do with plain HTTP what a browser does over
//! the socket. Live delivery needs the socket.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::LINK;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use shared::{
    AuditEntry, ClientId, EditMessage, EventsPage, FilterRule, HistoryPage, InviteInfo, JoinedRoom,
    MemberInfo, MessageEvent, ModAction, NewDirect, NewFilter, NewReaction, NewRoom, PostMessage,
    Posted, ReadMarker, ReadState, RoomId, RoomInfo, RoomSettings, SearchPage, UserInfo,
};

use crate::auth::AuthUser;
use crate::chat::{Actor, Moderation, Search, Write};
use crate::error::{ApiError, AppJson};
use crate::startup::AppState;

/// The query of `GET /api/rooms`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only rooms whose id is above this one (the last id of the previous page).
    after: Option<u64>,
    /// Rooms per page: default and maximum [`shared::ROOMS_PAGE_MAX`].
    limit: Option<u32>,
}

/// The query of `GET /api/rooms/{id}/messages`.
#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    /// Only events with a `seq` below this one (default: the newest).
    before: Option<u64>,
    /// Instead, only events with a `seq` above this one, the oldest first (reading forward).
    after: Option<u64>,
    /// How many at most: default and maximum [`shared::HISTORY_PAGE`].
    limit: Option<u32>,
}

/// The query of `GET /api/rooms/{id}/events`.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    /// Events with a `seq` above this one (default 0: from the start).
    #[serde(default)]
    since: u64,
    /// Seconds to wait for news when there is none yet (default 0: answer at once; at most
    /// [`shared::LONG_POLL_MAX_SECS`]).
    #[serde(default)]
    wait: u64,
}

/// The header that makes an HTTP write idempotent, as `client_id` does on the socket.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The client id of a write: the `Idempotency-Key` header, else the body's `client_id`, else a
/// fresh random one (the write is then not idempotent).
fn client_id(headers: &HeaderMap, body: Option<ClientId>) -> Result<ClientId, ApiError> {
    if let Some(key) = headers.get(IDEMPOTENCY_KEY) {
        let key = key
            .to_str()
            .map_err(|_| ApiError::BadRequest("Idempotency-Key must be ASCII.".into()))?;
        return ClientId::parse(key)
            .map_err(|e| ApiError::BadRequest(format!("Idempotency-Key: {e}")));
    }
    if let Some(id) = body {
        return Ok(id);
    }
    let mut bytes = [0u8; 16];
    argon2::password_hash::rand_core::RngCore::fill_bytes(
        &mut argon2::password_hash::rand_core::OsRng,
        &mut bytes,
    );
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    ClientId::parse(format!("http-{hex}")).map_err(|e| ApiError::Internal(e.to_string()))
}

fn message_path(path: Result<Path<(u64, u64)>, PathRejection>) -> Result<(RoomId, u64), ApiError> {
    let Path((room, seq)) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok((RoomId(room), seq))
}

/// Runs a write through the service and answers what `ack` would say: 201 when stored, 200 when
/// it was stored before under the same key or had nothing to do (`id` and `seq` 0).
async fn write(
    state: &AppState,
    user: &AuthUser,
    room: RoomId,
    client_id: ClientId,
    write: Write,
) -> Result<(StatusCode, AppJson<Posted>), ApiError> {
    let actor = Actor::from(user);
    let mut membership = state.chat.membership(&actor, room).await?;
    let done = state
        .chat
        .write(&actor, &mut membership, client_id.clone(), write)
        .await?
        .await?;
    let status = match done {
        crate::store::Appended::New(_) => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    let (id, seq, ts) = done.receipt();
    Ok((
        status,
        AppJson(Posted {
            room,
            client_id,
            id,
            seq,
            ts,
        }),
    ))
}

fn room_id(path: Result<Path<u64>, PathRejection>) -> Result<RoomId, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(RoomId(id))
}

/// `GET /api/rooms?after=<id>&limit=<n>`: a page of the rooms the user may see, in id order,
/// each with its last `seq` and how many users are online in it. A full page carries
/// `Link: <...>; rel="next"`.
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<(HeaderMap, AppJson<Vec<RoomInfo>>), ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let actor = Actor::from(&user);
    let rooms = state
        .chat
        .list_rooms(&actor, query.after.map(RoomId), query.limit)
        .await?;
    let limit = query
        .limit
        .unwrap_or(shared::ROOMS_PAGE_MAX)
        .clamp(1, shared::ROOMS_PAGE_MAX);
    let mut headers = HeaderMap::new();
    if rooms.len() == limit as usize
        && let Some(last) = rooms.last()
        && let Ok(link) = HeaderValue::from_str(&format!(
            "</api/rooms?after={}&limit={limit}>; rel=\"next\"",
            last.id
        ))
    {
        headers.insert(LINK, link);
    }
    Ok((headers, AppJson(rooms)))
}

/// `POST /api/rooms`: creates a public or private room, within the creator's quota.
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<NewRoom>,
) -> Result<(StatusCode, AppJson<RoomInfo>), ApiError> {
    let room = state
        .chat
        .create_room(&Actor::from(&user), body.name, body.kind, body.topic)
        .await?;
    Ok((StatusCode::CREATED, AppJson(room)))
}

/// `GET /api/rooms/{id}`: one room.
pub async fn show(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<u64>, PathRejection>,
) -> Result<AppJson<RoomInfo>, ApiError> {
    let room = room_id(path)?;
    Ok(AppJson(state.chat.room(&Actor::from(&user), room).await?))
}

/// `POST /api/rooms/{id}/join`: becomes a member (needed before posting or reading history).
pub async fn join(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<u64>, PathRejection>,
) -> Result<AppJson<JoinedRoom>, ApiError> {
    let room = room_id(path)?;
    let joined = state.chat.join(&Actor::from(&user), room, None).await?;
    Ok(AppJson(JoinedRoom {
        room,
        last_seq: joined.membership.last_seq(),
    }))
}

/// `GET /api/rooms/{id}/messages?before=<seq>&limit=<n>`: a page of older messages, like the
/// `history` frame; with `after=<seq>` instead, the page of newer messages that follows it
/// (`has_more`: newer ones exist). Both at once is a 400.
pub async fn history(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<u64>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<AppJson<HistoryPage>, ApiError> {
    let room = room_id(path)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let actor = Actor::from(&user);
    let mut membership = state.chat.membership(&actor, room).await?;
    let page = match (query.before, query.after) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "give `before` or `after`, not both".into(),
            ));
        }
        (None, Some(after)) => {
            state
                .chat
                .history_after(&actor, &mut membership, after, query.limit)
                .await?
        }
        (before, None) => {
            state
                .chat
                .history(
                    &actor,
                    &mut membership,
                    before.unwrap_or(u64::MAX),
                    query.limit,
                )
                .await?
        }
    };
    Ok(AppJson(HistoryPage {
        room,
        messages: page.events,
        has_more: page.has_more,
    }))
}

/// `POST /api/rooms/{id}/messages`: posts a message, like the `send` frame. Answers 201 with
/// what `ack` says, or 200 with the original when the key (`Idempotency-Key`, or the body's
/// `client_id`) was stored before.
pub async fn post(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    path: Result<Path<u64>, PathRejection>,
    AppJson(body): AppJson<PostMessage>,
) -> Result<(StatusCode, AppJson<Posted>), ApiError> {
    let room = room_id(path)?;
    let client_id = client_id(&headers, body.client_id)?;
    let post = Write::Post {
        text: body.text,
        reply_to: body.reply_to,
        attachments: body.attachments,
    };
    write(&state, &user, room, client_id, post).await
}

/// `GET /api/rooms/{id}/messages/{seq}`: one message as it is now.
pub async fn message(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<(u64, u64)>, PathRejection>,
) -> Result<AppJson<MessageEvent>, ApiError> {
    let (room, seq) = message_path(path)?;
    Ok(AppJson(
        state.chat.message(&Actor::from(&user), room, seq).await?,
    ))
}

/// `PATCH /api/rooms/{id}/messages/{seq}`: edits your message, like the `edit` frame.
pub async fn edit(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    path: Result<Path<(u64, u64)>, PathRejection>,
    AppJson(body): AppJson<EditMessage>,
) -> Result<(StatusCode, AppJson<Posted>), ApiError> {
    let (room, target) = message_path(path)?;
    let client_id = client_id(&headers, None)?;
    let edit = Write::Edit {
        target,
        text: body.text,
    };
    write(&state, &user, room, client_id, edit).await
}

/// `DELETE /api/rooms/{id}/messages/{seq}`: deletes a message, like the `delete` frame.
pub async fn delete_message(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    path: Result<Path<(u64, u64)>, PathRejection>,
) -> Result<(StatusCode, AppJson<Posted>), ApiError> {
    let (room, target) = message_path(path)?;
    let client_id = client_id(&headers, None)?;
    write(&state, &user, room, client_id, Write::Delete { target }).await
}

/// `POST /api/rooms/{id}/messages/{seq}/reactions`: adds your reaction.
pub async fn react(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    path: Result<Path<(u64, u64)>, PathRejection>,
    AppJson(body): AppJson<NewReaction>,
) -> Result<(StatusCode, AppJson<Posted>), ApiError> {
    let (room, target) = message_path(path)?;
    let client_id = client_id(&headers, None)?;
    let react = Write::React {
        target,
        emoji: body.emoji,
        on: true,
    };
    write(&state, &user, room, client_id, react).await
}

/// `DELETE /api/rooms/{id}/messages/{seq}/reactions/{emoji}`: takes your reaction back (the
/// emoji percent-encoded in the path).
pub async fn unreact(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    path: Result<Path<(u64, u64, String)>, PathRejection>,
) -> Result<(StatusCode, AppJson<Posted>), ApiError> {
    let Path((room, target, emoji)) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let client_id = client_id(&headers, None)?;
    let unreact = Write::React {
        target,
        emoji,
        on: false,
    };
    write(&state, &user, RoomId(room), client_id, unreact).await
}

/// `POST /api/rooms/{id}/read`: moves your read position (body `{"seq": N}`, or `{}` for the
/// newest), like the `read` frame.
pub async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<u64>, PathRejection>,
    AppJson(body): AppJson<ReadMarker>,
) -> Result<AppJson<ReadState>, ApiError> {
    let room = room_id(path)?;
    Ok(AppJson(
        state.chat.read(&Actor::from(&user), room, body.seq).await?,
    ))
}

/// `POST /api/read`: marks every room you are in as read.
pub async fn read_all(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<AppJson<Vec<ReadState>>, ApiError> {
    Ok(AppJson(state.chat.read_all(&Actor::from(&user)).await?))
}

/// `GET /api/rooms/{id}/events?since=<seq>&wait=<s>`: the log after `since`, every kind, in
/// order: at once if there is any, else after waiting up to `wait` seconds for news (a long
/// poll, for scripts that cannot open a WebSocket).
pub async fn events(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<u64>, PathRejection>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<AppJson<EventsPage>, ApiError> {
    let room = room_id(path)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let wait = std::time::Duration::from_secs(query.wait);
    Ok(AppJson(
        state
            .chat
            .poll(&Actor::from(&user), room, query.since, wait)
            .await?,
    ))
}

/// `POST /api/rooms/{id}/leave`: ends the membership (a private room then needs a new
/// invitation).
pub async fn leave(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<u64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let room = room_id(path)?;
    state.chat.leave(&Actor::from(&user), room).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/rooms/{id}/members`: the members, with roles and online state.
pub async fn members(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<u64>, PathRejection>,
) -> Result<AppJson<Vec<MemberInfo>>, ApiError> {
    let room = room_id(path)?;
    Ok(AppJson(
        state.chat.members(&Actor::from(&user), room).await?,
    ))
}

/// `PATCH /api/rooms/{id}`: the topic and slow mode (moderators).
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<u64>, PathRejection>,
    AppJson(body): AppJson<RoomSettings>,
) -> Result<AppJson<RoomInfo>, ApiError> {
    let room = room_id(path)?;
    Ok(AppJson(
        state
            .chat
            .update_room(&Actor::from(&user), room, body)
            .await?,
    ))
}

/// `POST /api/rooms/{id}/invite`: invites someone (any member).
pub async fn invite(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<u64>, PathRejection>,
    AppJson(body): AppJson<ModAction>,
) -> Result<StatusCode, ApiError> {
    let room = room_id(path)?;
    state
        .chat
        .invite(&Actor::from(&user), room, &body.user)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/rooms/{id}/decline`: declines an invitation.
pub async fn decline(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<u64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let room = room_id(path)?;
    state.chat.decline(&Actor::from(&user), room).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/invites`: the invitations waiting for the user.
pub async fn invites(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<AppJson<Vec<InviteInfo>>, ApiError> {
    Ok(AppJson(state.chat.invites(&Actor::from(&user)).await?))
}

/// `POST /api/direct`: opens (or reopens) a direct conversation with the people named.
pub async fn direct(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<NewDirect>,
) -> Result<AppJson<RoomInfo>, ApiError> {
    Ok(AppJson(
        state
            .chat
            .open_direct(&Actor::from(&user), body.users)
            .await?,
    ))
}

/// The query of `GET /api/users`.
#[derive(Debug, Deserialize)]
pub struct UserQuery {
    /// The start of a handle or display name.
    q: String,
}

/// `GET /api/users?q=<prefix>`: people, for the people picker.
pub async fn users(
    State(state): State<AppState>,
    user: AuthUser,
    query: Result<Query<UserQuery>, QueryRejection>,
) -> Result<AppJson<Vec<UserInfo>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(AppJson(
        state
            .chat
            .search_users(&Actor::from(&user), &query.q)
            .await?,
    ))
}

/// `POST /api/rooms/{id}/{kick,ban,unban,mute,unmute,role}`: moderation of one person.
pub async fn moderate(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<(u64, String)>, PathRejection>,
    AppJson(body): AppJson<ModAction>,
) -> Result<StatusCode, ApiError> {
    let Path((room, what)) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let what = match what.as_str() {
        "kick" => Moderation::Kick,
        "ban" => Moderation::Ban,
        "unban" => Moderation::Unban,
        "mute" => Moderation::Mute,
        "unmute" => Moderation::Unmute,
        "role" => Moderation::Role,
        _ => return Err(ApiError::NotFound),
    };
    state
        .chat
        .moderate(&Actor::from(&user), RoomId(room), what, body)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The query of `GET /api/rooms/{id}/audit`.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    /// Only entries with an id below this one.
    before: Option<i64>,
    /// How many at most (default and maximum 50).
    limit: Option<u32>,
}

/// `GET /api/rooms/{id}/audit?before=&limit=`: the moderation log, newest first.
pub async fn audit(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<u64>, PathRejection>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<AppJson<Vec<AuditEntry>>, ApiError> {
    let room = room_id(path)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(AppJson(
        state
            .chat
            .audit_log(&Actor::from(&user), room, query.before, query.limit)
            .await?,
    ))
}

/// `GET /api/rooms/{id}/filters`: the room's filter rules (moderators).
pub async fn room_filters(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<u64>, PathRejection>,
) -> Result<AppJson<Vec<FilterRule>>, ApiError> {
    let room = room_id(path)?;
    Ok(AppJson(
        state.chat.filters(&Actor::from(&user), Some(room)).await?,
    ))
}

/// `POST /api/rooms/{id}/filters`: adds a rule to the room (moderators).
pub async fn add_room_filter(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<u64>, PathRejection>,
    AppJson(body): AppJson<NewFilter>,
) -> Result<(StatusCode, AppJson<FilterRule>), ApiError> {
    let room = room_id(path)?;
    let rule = state
        .chat
        .add_filter(&Actor::from(&user), Some(room), body)
        .await?;
    Ok((StatusCode::CREATED, AppJson(rule)))
}

/// `DELETE /api/rooms/{id}/filters/{rule}`: removes a rule of the room (moderators).
pub async fn delete_room_filter(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<(u64, i64)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path((room, rule)) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    state
        .chat
        .delete_filter(&Actor::from(&user), Some(RoomId(room)), rule)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/filters`: the server-wide rules (admins).
pub async fn server_filters(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<AppJson<Vec<FilterRule>>, ApiError> {
    Ok(AppJson(
        state.chat.filters(&Actor::from(&user), None).await?,
    ))
}

/// `POST /api/filters`: adds a server-wide rule (admins).
pub async fn add_server_filter(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<NewFilter>,
) -> Result<(StatusCode, AppJson<FilterRule>), ApiError> {
    let rule = state
        .chat
        .add_filter(&Actor::from(&user), None, body)
        .await?;
    Ok((StatusCode::CREATED, AppJson(rule)))
}

/// `DELETE /api/filters/{rule}`: removes a server-wide rule (admins).
pub async fn delete_server_filter(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(rule) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    state
        .chat
        .delete_filter(&Actor::from(&user), None, rule)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The query of `GET /api/search`.
#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    /// The words to find (at most [`shared::SEARCH_MAX_CHARS`] characters).
    q: String,
    /// Only this room (its id); every room the caller may read when absent.
    room: Option<u64>,
    /// Only messages by this handle.
    author: Option<String>,
    /// Only messages that carry a file (`true`).
    #[serde(default)]
    has_file: bool,
    /// Only messages stored at or after this time (ms since the Unix epoch).
    after: Option<i64>,
    /// Only messages stored before this time (ms since the Unix epoch).
    before: Option<i64>,
    /// The `next` of the previous page.
    cursor: Option<String>,
    /// Hits per page: default and maximum [`shared::SEARCH_PAGE_MAX`].
    limit: Option<u32>,
}

/// `GET /api/search?q=...`: messages of the rooms the caller may read that contain every word
/// of `q`, the whole phrase first, newest first within each, a page at a time.
pub async fn search(
    State(state): State<AppState>,
    user: AuthUser,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<AppJson<SearchPage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let search = Search {
        query: query.q,
        room: query.room.map(RoomId),
        author: query.author.filter(|a| !a.trim().is_empty()),
        has_file: query.has_file,
        after: query.after,
        before: query.before,
        cursor: query.cursor.filter(|c| !c.is_empty()),
        limit: query.limit,
    };
    Ok(AppJson(
        state.chat.search(&Actor::from(&user), search).await?,
    ))
}
