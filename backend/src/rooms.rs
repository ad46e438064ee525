//! Rooms over HTTP: listing and creating. Joining, leaving and posting happen on the WebSocket
//! (see [`crate::ws`]).

use axum::extract::State;
use axum::http::StatusCode;
use shared::{NewRoom, RoomInfo, RoomName};

use crate::auth::AuthUser;
use crate::error::{ApiError, AppJson};
use crate::startup::AppState;
use crate::store::StoreError;

/// `GET /api/rooms`: every room with its last `seq` and how many users are online in it.
pub async fn list(
    State(state): State<AppState>,
    _user: AuthUser,
) -> Result<AppJson<Vec<RoomInfo>>, ApiError> {
    let rooms = state.store.list_rooms().await?;
    Ok(AppJson(
        rooms
            .into_iter()
            .map(|r| RoomInfo {
                online: state.hub.online_count(&r.name),
                name: r.name,
                last_seq: r.last_seq,
            })
            .collect(),
    ))
}

/// `POST /api/rooms`: creates a room.
#[tracing::instrument(skip_all, fields(user = %user.username, room = %body.name))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    AppJson(body): AppJson<NewRoom>,
) -> Result<(StatusCode, AppJson<RoomInfo>), ApiError> {
    let name = RoomName::parse(body.name).map_err(|e| ApiError::BadRequest(e.to_string()))?;
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
