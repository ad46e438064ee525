//! The outbox: unconfirmed messages kept in the browser's `localStorage`, so that a message
//! typed offline (or sent but not yet acknowledged) survives a reload and is resent, with the
//! same `client_id`, on the next connection. The server deduplicates by that id, so a resend
//! never posts twice.
//!
//! Storage is changed by adding and removing single entries (read, change, write) rather than by
//! writing this tab's whole list: two tabs of the same user then do not erase each other's
//! entries. The encoding is plain JSON; anything unreadable is skipped, never fatal.

use serde::{Deserialize, Serialize};
use shared::{ClientId, MessageText, RoomName, Username};

/// One unconfirmed message as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The room it goes to.
    pub room: RoomName,
    /// Its client id (the deduplication key on the server).
    pub client_id: ClientId,
    /// Its text.
    pub text: String,
    /// When the user sent it (ms since the Unix epoch).
    pub created_ms: i64,
}

/// The `localStorage` key of a user's outbox. Usernames are unique without regard to ASCII case,
/// so the key is lower-cased.
pub fn storage_key(user: &Username) -> String {
    format!("chat.outbox.v1.{}", user.as_str().to_ascii_lowercase())
}

/// Reads a stored outbox, skipping entries that do not parse or whose text breaks the rules
/// (storage is user-writable, so it is input like any other).
pub fn decode(raw: &str) -> Vec<OutboxEntry> {
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(raw) else {
        return Vec::new();
    };
    values
        .into_iter()
        .filter_map(|v| serde_json::from_value::<OutboxEntry>(v).ok())
        .filter(|e| MessageText::parse(e.text.as_str()).is_ok())
        .collect()
}

/// Writes an outbox.
pub fn encode(entries: &[OutboxEntry]) -> String {
    // Serializing plain strings and numbers cannot fail.
    serde_json::to_string(entries).unwrap_or_else(|_| "[]".into())
}

/// Applies one tab's changes to what storage holds: removes `removed`, appends the `added` not
/// already there.
pub fn merge(
    mut stored: Vec<OutboxEntry>,
    added: &[OutboxEntry],
    removed: &[ClientId],
) -> Vec<OutboxEntry> {
    stored.retain(|e| !removed.contains(&e.client_id));
    for a in added {
        if !stored.iter().any(|e| e.client_id == a.client_id) {
            stored.push(a.clone());
        }
    }
    stored
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// Loads a user's outbox (empty when storage is unavailable, for example in a private window
/// that forbids it).
pub fn load(user: &Username) -> Vec<OutboxEntry> {
    local_storage()
        .and_then(|s| s.get_item(&storage_key(user)).ok().flatten())
        .map(|raw| decode(&raw))
        .unwrap_or_default()
}

/// Records added and removed entries of a user's outbox. Failing to write (quota, no storage)
/// only loses the reload-survival of those messages, so it is not reported further.
pub fn update(user: &Username, added: &[OutboxEntry], removed: &[ClientId]) {
    if added.is_empty() && removed.is_empty() {
        return;
    }
    let Some(storage) = local_storage() else {
        return;
    };
    let key = storage_key(user);
    let stored = storage
        .get_item(&key)
        .ok()
        .flatten()
        .map(|raw| decode(&raw))
        .unwrap_or_default();
    let next = merge(stored, added, removed);
    let result = if next.is_empty() {
        storage.remove_item(&key)
    } else {
        storage.set_item(&key, &encode(&next))
    };
    if result.is_err() {
        leptos::logging::warn!("could not write the outbox to localStorage");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> OutboxEntry {
        OutboxEntry {
            room: RoomName::parse("general").expect("valid"),
            client_id: ClientId::parse(id).expect("valid"),
            text: format!("text {id}"),
            created_ms: 1,
        }
    }

    #[test]
    fn entries_round_trip() {
        let entries = vec![entry("a"), entry("b")];
        assert_eq!(decode(&encode(&entries)), entries);
    }

    #[test]
    fn garbage_and_invalid_entries_are_skipped() {
        assert!(decode("not json").is_empty());
        assert!(decode("{}").is_empty());
        let raw = r#"[
            {"room":"general","client_id":"ok","text":"hi","created_ms":1},
            {"room":"Bad Room","client_id":"x","text":"hi","created_ms":1},
            {"room":"general","client_id":"y","text":"   ","created_ms":1},
            42
        ]"#;
        let got = decode(raw);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].client_id.as_str(), "ok");
    }

    #[test]
    fn merging_keeps_other_tabs_entries() {
        let stored = vec![entry("other-tab"), entry("mine")];
        let merged = merge(
            stored,
            &[entry("new"), entry("other-tab")],
            &[ClientId::parse("mine").expect("valid")],
        );
        let ids: Vec<_> = merged.iter().map(|e| e.client_id.as_str()).collect();
        assert_eq!(ids, vec!["other-tab", "new"]);
    }

    #[test]
    fn keys_ignore_username_case() {
        let a = Username::parse("Alice").expect("valid");
        let b = Username::parse("alice").expect("valid");
        assert_eq!(storage_key(&a), storage_key(&b));
    }
}
