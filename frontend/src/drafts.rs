//! Half-typed messages, one per room: kept in `localStorage` under a key per user and room, so
//! that switching rooms swaps the composer's text and a reload finds it again.
//!
//! Storage is best effort: without it (a private window, a full quota) drafts live only as long
//! as the composer's text does.

use shared::{RoomId, Username};

/// The `localStorage` key of a user's draft for a room. Usernames are unique without regard to
/// ASCII case, so the key is lower-cased.
pub fn storage_key(user: &Username, room: RoomId) -> String {
    format!(
        "chat.draft.v1.{}.{}",
        user.as_str().to_ascii_lowercase(),
        room
    )
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The draft of a room (empty when none).
pub fn load(user: &Username, room: RoomId) -> String {
    local_storage()
        .and_then(|s| s.get_item(&storage_key(user, room)).ok().flatten())
        .unwrap_or_default()
}

/// Records the draft of a room; an empty (or blank) one is removed.
pub fn save(user: &Username, room: RoomId, text: &str) {
    let Some(storage) = local_storage() else {
        return;
    };
    let key = storage_key(user, room);
    // Failing to write (quota) only loses the draft on reload.
    let _ = if text.trim().is_empty() {
        storage.remove_item(&key)
    } else {
        storage.set_item(&key, text)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drafts_are_keyed_by_user_and_room() {
        let alice = Username::parse("Alice").expect("valid");
        assert_eq!(storage_key(&alice, RoomId(7)), "chat.draft.v1.alice.7");
    }
}
