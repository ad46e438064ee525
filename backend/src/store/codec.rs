//! Conversions between the domain's values and the plain columns every store keeps them in
//! (text for kinds and roles, integers for ids): the same spelling in every database, so that
//! rows read the same whichever store wrote them.

use shared::{
    DisplayName, EventKind, FilterAction, FilterKind, Role, RoomKind, RoomName, Username,
};

use super::{StoreError, StoreResult, UserSummary};

/// A stored integer as the domain's unsigned id (never negative in a store's rows).
pub(super) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A domain id as a stored integer.
pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Rows were validated on the way in; a row that no longer parses means the database was edited
/// by hand, which is reported rather than papered over.
pub(super) fn parse_room(raw: String) -> StoreResult<RoomName> {
    RoomName::parse(raw).map_err(|e| StoreError::Task(format!("corrupt room name: {e}")))
}

pub(super) fn parse_user(raw: String) -> StoreResult<Username> {
    Username::parse(raw).map_err(|e| StoreError::Task(format!("corrupt username: {e}")))
}

/// A stored display name, or the handle when the account has none (accounts made before display
/// names existed).
pub(super) fn display_name(raw: Option<String>, user: &Username) -> StoreResult<DisplayName> {
    match raw {
        Some(raw) => DisplayName::parse(raw)
            .map_err(|e| StoreError::Task(format!("corrupt display name: {e}"))),
        None => Ok(DisplayName::from(user)),
    }
}

/// The key of a direct room of these people (see SQLite's migration 3): the members' handles,
/// sorted ignoring case and joined with commas, so the same people reopen one room.
pub(super) fn direct_key(members: &[UserSummary]) -> String {
    let mut handles: Vec<&str> = members.iter().map(|m| m.username.as_str()).collect();
    handles.sort_by_key(|h| h.to_ascii_lowercase());
    handles.dedup();
    handles.join(",")
}

pub(super) fn kind_str(kind: RoomKind) -> &'static str {
    match kind {
        RoomKind::Public | RoomKind::Unknown => "public",
        RoomKind::Private => "private",
        RoomKind::Direct => "direct",
    }
}

pub(super) fn parse_kind(raw: &str) -> StoreResult<RoomKind> {
    match raw {
        "public" => Ok(RoomKind::Public),
        "private" => Ok(RoomKind::Private),
        "direct" => Ok(RoomKind::Direct),
        other => Err(StoreError::Task(format!("corrupt room kind: {other}"))),
    }
}

pub(super) fn role_str(role: Role) -> &'static str {
    match role {
        Role::Member | Role::Unknown => "member",
        Role::Moderator => "moderator",
        Role::Owner => "owner",
    }
}

pub(super) fn parse_role(raw: &str) -> StoreResult<Role> {
    match raw {
        "member" => Ok(Role::Member),
        "moderator" => Ok(Role::Moderator),
        "owner" => Ok(Role::Owner),
        other => Err(StoreError::Task(format!("corrupt role: {other}"))),
    }
}

pub(super) fn filter_kind_str(kind: FilterKind) -> &'static str {
    match kind {
        FilterKind::Keyword | FilterKind::Unknown => "keyword",
        FilterKind::Regex => "regex",
    }
}

pub(super) fn filter_action_str(action: FilterAction) -> &'static str {
    match action {
        FilterAction::Refuse | FilterAction::Unknown => "refuse",
        FilterAction::Mask => "mask",
    }
}

pub(super) fn parse_filter(kind: &str, action: &str) -> StoreResult<(FilterKind, FilterAction)> {
    let kind = match kind {
        "keyword" => FilterKind::Keyword,
        "regex" => FilterKind::Regex,
        other => return Err(StoreError::Task(format!("corrupt filter kind: {other}"))),
    };
    let action = match action {
        "refuse" => FilterAction::Refuse,
        "mask" => FilterAction::Mask,
        other => return Err(StoreError::Task(format!("corrupt filter action: {other}"))),
    };
    Ok((kind, action))
}

pub(super) fn parse_event_kind(raw: &str) -> EventKind {
    match raw {
        "message" => EventKind::Message,
        "edit" => EventKind::Edit,
        "delete" => EventKind::Delete,
        "react" => EventKind::React,
        "unreact" => EventKind::Unreact,
        _ => EventKind::Unknown,
    }
}
