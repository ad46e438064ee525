//! Rooms over HTTP: listing and creating. Joining, leaving and posting happen on the WebSocket
//! (see [`crate::ws`]).

use axum::extract::{Query, State};
use axum::http::header::LINK;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;
use shared::{NewRoom, ROOMS_PAGE_MAX, RoomInfo, RoomName};

use crate::auth::AuthUser;
use crate::error::{ApiError, AppJson};
use crate::startup::AppState;
use crate::store::StoreError;

/// The query of `GET /api/rooms`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only rooms whose name sorts after this one (the last name of the previous page).
    after: Option<String>,
    /// Rooms per page: default and maximum [`ROOMS_PAGE_MAX`].
    limit: Option<u32>,
}

/// `GET /api/rooms?after=<name>&limit=<n>`: a page of rooms by name, each with its last `seq`
/// and how many users are online in it. A full page carries `Link: <...>; rel="next"`.
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<(HeaderMap, AppJson<Vec<RoomInfo>>), ApiError> {
    state
        .limits
        .request(user.id)
        .map_err(ApiError::RateLimited)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = query
        .limit
        .unwrap_or(ROOMS_PAGE_MAX)
        .clamp(1, ROOMS_PAGE_MAX);
    let after = match query.after {
        Some(raw) => Some(RoomName::parse(raw).map_err(|e| ApiError::BadRequest(e.to_string()))?),
        None => None,
    };
    let rooms = state.store.list_rooms(after, limit).await?;
    let mut headers = HeaderMap::new();
    if rooms.len() == limit as usize
        && let Some(last) = rooms.last()
        && let Ok(link) = HeaderValue::from_str(&format!(
            "</api/rooms?after={}&limit={limit}>; rel=\"next\"",
            last.name
        ))
    {
        headers.insert(LINK, link);
    }
    let rooms = rooms
        .into_iter()
        .map(|r| RoomInfo {
            online: state.hub.online_count(&r.name),
            name: r.name,
            last_seq: r.last_seq,
        })
        .collect();
    Ok((headers, AppJson(rooms)))
}

/// `POST /api/rooms`: creates a room, within the creator's quota of rooms.
#[tracing::instrument(skip_all, fields(user = %user.username, room = %body.name))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<NewRoom>,
) -> Result<(StatusCode, AppJson<RoomInfo>), ApiError> {
    state
        .limits
        .request(user.id)
        .map_err(ApiError::RateLimited)?;
    let name = RoomName::parse(body.name).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let quota = state.config.max_rooms_per_user;
    if quota > 0 && state.store.rooms_created_by(user.id).await? >= u64::from(quota) {
        return Err(ApiError::Quota(format!(
            "You have created {quota} rooms, the most allowed."
        )));
    }
    match state.store.create_room(name.clone(), Some(user.id)).await {
        Ok(room) => Ok((
            StatusCode::CREATED,
            AppJson(RoomInfo {
                name: room.name,
                last_seq: 0,
                online: 0,
            }),
        )),
        Err(StoreError::Conflict) => Err(ApiError::Conflict(format!("The room {name} exists."))),
        Err(e) => Err(e.into()),
    }
}
