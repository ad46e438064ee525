//! Who is typing where: ephemeral, never stored.
//!
//! A client says `typing` when a person starts and renews it every [`shared::TYPING_RENEW_MS`]
//! while they go on. Each notice lasts [`shared::TYPING_TTL_MS`]; the housekeeping task sweeps
//! the lapsed ones every second and the room is told they stopped, so a client that vanished
//! without a word stops "typing" within that long. A notice also ends when its person posts, says
//! they stopped, or closes the connection that gave it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use shared::{DisplayName, RoomId, TYPING_RENEW_MS, TYPING_TTL_MS, Username};

use crate::hub::ConnId;
use crate::store::UserId;

/// Someone typing in a room.
#[derive(Debug, Clone)]
pub struct Typist {
    /// The room.
    pub room: RoomId,
    /// Their handle.
    pub user: Username,
    /// Their display name.
    pub display_name: DisplayName,
    /// The connection that said so.
    conn: ConnId,
    /// When the notice lapses.
    until: Instant,
    /// When the room was last told.
    told: Instant,
}

/// The typing notices in force.
#[derive(Debug, Default)]
pub struct Typing {
    notices: Mutex<HashMap<(RoomId, UserId), Typist>>,
}

impl Typing {
    fn notices(&self) -> std::sync::MutexGuard<'_, HashMap<(RoomId, UserId), Typist>> {
        self.notices.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts or renews a notice. Returns whether the room should be told: for a new notice,
    /// or a renewal after half a renewal period (a client that renews faster than it should, or
    /// floods, does not make the server repeat itself to the room).
    pub fn start(
        &self,
        room: RoomId,
        user_id: UserId,
        user: &Username,
        display_name: &DisplayName,
        conn: ConnId,
    ) -> bool {
        let now = Instant::now();
        let mut notices = self.notices();
        let tell = notices.get(&(room, user_id)).is_none_or(|t| {
            now.duration_since(t.told) >= Duration::from_millis(TYPING_RENEW_MS / 2)
        });
        let told = match notices.get(&(room, user_id)) {
            Some(t) if !tell => t.told,
            _ => now,
        };
        notices.insert(
            (room, user_id),
            Typist {
                room,
                user: user.clone(),
                display_name: display_name.clone(),
                conn,
                until: now + Duration::from_millis(TYPING_TTL_MS),
                told,
            },
        );
        tell
    }

    /// Ends a notice; the ended one, if there was one.
    pub fn stop(&self, room: RoomId, user_id: UserId) -> Option<Typist> {
        self.notices().remove(&(room, user_id))
    }

    /// Ends the notices a connection gave (it closed).
    pub fn stop_conn(&self, conn: ConnId) -> Vec<Typist> {
        let mut ended = Vec::new();
        self.notices().retain(|_, t| {
            if t.conn == conn {
                ended.push(t.clone());
                false
            } else {
                true
            }
        });
        ended
    }

    /// Ends the notices that lapsed by `now`.
    pub fn expire(&self, now: Instant) -> Vec<Typist> {
        let mut ended = Vec::new();
        self.notices().retain(|_, t| {
            if t.until <= now {
                ended.push(t.clone());
                false
            } else {
                true
            }
        });
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_end_when_they_lapse_or_their_connection_closes() {
        let typing = Typing::default();
        let alice = Username::parse("alice").expect("valid");
        let name = DisplayName::from(&alice);
        assert!(
            typing.start(RoomId(1), 7, &alice, &name, 1),
            "a new notice is told"
        );
        assert!(
            !typing.start(RoomId(1), 7, &alice, &name, 1),
            "a renewal right after is not"
        );
        assert!(typing.start(RoomId(2), 7, &alice, &name, 2));
        assert!(typing.expire(Instant::now()).is_empty());
        let closed = typing.stop_conn(2);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].room, RoomId(2));
        let later = Instant::now() + Duration::from_millis(TYPING_TTL_MS + 1);
        let lapsed = typing.expire(later);
        assert_eq!(lapsed.len(), 1);
        assert_eq!(lapsed[0].room, RoomId(1));
        assert!(typing.stop(RoomId(1), 7).is_none());
    }
}
