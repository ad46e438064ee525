//! What the app shows without the network: who is logged in, their rooms, and the newest
//! messages of each room, kept in `localStorage` for one user at a time.
//!
//! With the service worker (which keeps the page and its files), a reload while the server is
//! down opens the chat with these messages, offline, instead of a login form; the outbox keeps
//! working as before. When the server answers, each room's `join` asks for what followed the
//! kept messages, so nothing is missed or doubled. The cache is written a moment after the
//! model changes (and when the page is hidden), is erased at logout and when the session ends,
//! and is ignored for any other user.
//!
//! Limits: [`PER_ROOM`] messages per room and [`MAX_CHARS`] characters in all; past that, the
//! rooms other than the one on screen keep fewer.

use serde::{Deserialize, Serialize};
use shared::{MeResponse, RoomId, RoomInfo};

use crate::timeline::Kept;

/// The `localStorage` key.
pub const KEY: &str = "chat.cache.v1";

/// Messages kept per room.
pub const PER_ROOM: usize = 100;

/// The cache's size at most, in characters of JSON (`localStorage` holds about 5 million).
pub const MAX_CHARS: usize = 1_500_000;

/// What is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Who.
    pub me: MeResponse,
    /// Their rooms, as the room list said.
    pub rooms: Vec<RoomInfo>,
    /// The room on screen.
    pub current: RoomId,
    /// The newest messages of each room.
    pub kept: Vec<(RoomId, Kept)>,
}

impl Snapshot {
    /// The snapshot as JSON, within [`MAX_CHARS`]: while too long, the room with the most
    /// messages (other than the one on screen, unless it is the only one) keeps half of them.
    pub fn to_json(mut self) -> String {
        loop {
            let json = serde_json::to_string(&self).unwrap_or_default();
            if json.len() <= MAX_CHARS {
                return json;
            }
            let current = self.current;
            let longest = |others_only: bool| {
                self.kept
                    .iter()
                    .enumerate()
                    .filter(|(_, (id, k))| {
                        !k.messages.is_empty() && (!others_only || *id != current)
                    })
                    .max_by_key(|(_, (_, k))| k.messages.len())
                    .map(|(i, _)| i)
            };
            let Some(i) = longest(true).or_else(|| longest(false)) else {
                return json;
            };
            let k = &mut self.kept[i].1;
            let drop = k.messages.len().div_ceil(2);
            k.messages.drain(..drop);
            k.has_more = true;
        }
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// Keeps a snapshot (a full storage drops it: the cache is a convenience, never a failure).
pub fn save(snapshot: Snapshot) {
    if let Some(s) = storage() {
        let _ = s.set_item(KEY, &snapshot.to_json());
    }
}

/// The snapshot kept for `user`, if any (one of another user, or unreadable, is none).
pub fn load(user: &str) -> Option<Snapshot> {
    let json = storage()?.get_item(KEY).ok()??;
    serde_json::from_str::<Snapshot>(&json)
        .ok()
        .filter(|s| s.me.username.as_str() == user)
}

/// The snapshot kept, whoever it is for: the user to open the app as while the server cannot
/// be reached.
pub fn load_any() -> Option<Snapshot> {
    let json = storage()?.get_item(KEY).ok()??;
    serde_json::from_str(&json).ok()
}

/// Erases the cache (logout, end of the session).
pub fn clear() {
    if let Some(s) = storage() {
        let _ = s.remove_item(KEY);
    }
}

#[cfg(test)]
mod tests {
    use shared::{DisplayName, MessageEvent, Username};

    use super::*;

    fn kept(room: u64, n: u64, text_len: usize) -> (RoomId, Kept) {
        let messages = (1..=n)
            .map(|seq| {
                MessageEvent::message(
                    RoomId(room),
                    seq,
                    seq,
                    Username::parse("ada").expect("valid"),
                    DisplayName::parse("Ada").expect("valid"),
                    "x".repeat(text_len),
                    0,
                )
            })
            .collect();
        (
            RoomId(room),
            Kept {
                high: n,
                has_more: false,
                messages,
            },
        )
    }

    fn snapshot(kept: Vec<(RoomId, Kept)>) -> Snapshot {
        Snapshot {
            me: MeResponse {
                username: Username::parse("ada").expect("valid"),
                display_name: DisplayName::parse("Ada").expect("valid"),
            },
            rooms: Vec::new(),
            current: RoomId(1),
            kept,
        }
    }

    #[test]
    fn a_snapshot_round_trips_through_json() {
        let s = snapshot(vec![kept(1, 3, 10), kept(2, 2, 10)]);
        let back: Snapshot = serde_json::from_str(&s.clone().to_json()).expect("reads");
        assert_eq!(back, s);
    }

    #[test]
    fn a_snapshot_too_long_keeps_fewer_messages_of_the_other_rooms_first() {
        // Room 1 (on screen): 100 x 5,000 chars; room 2: 100 x 20,000 chars: 2.5 MB in all.
        let s = snapshot(vec![kept(1, 100, 5_000), kept(2, 100, 20_000)]);
        let json = s.to_json();
        assert!(json.len() <= MAX_CHARS, "{}", json.len());
        let back: Snapshot = serde_json::from_str(&json).expect("reads");
        let (on_screen, other) = (&back.kept[0].1, &back.kept[1].1);
        assert_eq!(on_screen.messages.len(), 100);
        assert!(other.messages.len() < 100 && other.has_more);
        // What is kept is the newest.
        assert_eq!(other.messages.last().map(|m| m.seq), Some(100));
    }
}
