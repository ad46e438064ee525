//! Rooms over HTTP: the same commands as the WebSocket, through the same service
//! ([`crate::chat`]), so that a bot or a script can do with plain HTTP what a browser does over
//! the socket. Live delivery needs the socket.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::LINK;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use shared::{HistoryPage, JoinedRoom, NewRoom, PostMessage, Posted, RoomId, RoomInfo};

use crate::auth::AuthUser;
use crate::chat::Actor;
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
    /// How many at most: default and maximum [`shared::HISTORY_PAGE`].
    limit: Option<u32>,
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

/// `POST /api/rooms`: creates a public room, within the creator's quota.
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<NewRoom>,
) -> Result<(StatusCode, AppJson<RoomInfo>), ApiError> {
    let room = state
        .chat
        .create_room(&Actor::from(&user), body.name)
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
        last_seq: joined.membership.room().last_seq,
    }))
}

/// `GET /api/rooms/{id}/messages?before=<seq>&limit=<n>`: a page of older messages, like the
/// `history` frame.
pub async fn history(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<u64>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<AppJson<HistoryPage>, ApiError> {
    let room = room_id(path)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let actor = Actor::from(&user);
    let membership = state.chat.membership(&actor, room).await?;
    let page = state
        .chat
        .history(
            &actor,
            &membership,
            query.before.unwrap_or(u64::MAX),
            query.limit,
        )
        .await?;
    Ok(AppJson(HistoryPage {
        room,
        messages: page.events,
        has_more: page.has_more,
    }))
}

/// `POST /api/rooms/{id}/messages`: posts a message, like the `send` frame. Answers 201 with
/// what `ack` says, or 200 with the original when the `client_id` was stored before.
pub async fn post(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<u64>, PathRejection>,
    AppJson(body): AppJson<PostMessage>,
) -> Result<(StatusCode, AppJson<Posted>), ApiError> {
    let room = room_id(path)?;
    let actor = Actor::from(&user);
    let membership = state.chat.membership(&actor, room).await?;
    let done = state
        .chat
        .send(&actor, &membership, body.client_id.clone(), body.text)?
        .await?;
    let status = if done.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        AppJson(Posted {
            room: done.event.room,
            client_id: body.client_id,
            id: done.event.id,
            seq: done.event.seq,
            ts: done.event.ts,
        }),
    ))
}
