//! The conformance suite of the [`Store`] trait: what every implementation must do, checked
//! through the trait alone. The SQLite store runs it in its tests; a new implementation (the
//! PostgreSQL one) calls [`run`] with a factory of fresh, empty stores.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::{BoxFuture, join_all};
use shared::{ClientId, DisplayName, MessageEvent, RoomId, RoomName, Username};

use super::{CommitListener, NewMessage, Store, StoreError, UserId, now_ms};

/// Records every event the store publishes.
#[derive(Default)]
pub struct Recorder {
    events: Mutex<Vec<MessageEvent>>,
}

impl Recorder {
    /// Everything published so far.
    pub fn events(&self) -> Vec<MessageEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl CommitListener for Recorder {
    fn committed(&self, events: Vec<MessageEvent>) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(events);
    }
}

/// Makes a fresh, empty store that reports to the given listener.
pub type Factory = Box<dyn Fn(Arc<Recorder>) -> BoxFuture<'static, Arc<dyn Store>>>;

/// Runs every check, each on a fresh store.
pub async fn run(factory: Factory) {
    users(&*new_store(&factory).await.0).await;
    sessions(&*new_store(&factory).await.0).await;
    rooms(&*new_store(&factory).await.0).await;
    membership(&*new_store(&factory).await.0).await;
    let (store, recorder) = new_store(&factory).await;
    appends(&*store, &recorder).await;
    let (store, recorder) = new_store(&factory).await;
    concurrent_appends(store, &recorder).await;
}

async fn new_store(factory: &Factory) -> (Arc<dyn Store>, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    (factory(Arc::clone(&recorder)).await, recorder)
}

fn user(name: &str) -> Username {
    Username::parse(name).expect("valid handle")
}

fn shown(name: &str) -> DisplayName {
    DisplayName::parse(name).expect("valid display name")
}

fn room_name(name: &str) -> RoomName {
    RoomName::parse(name).expect("valid room name")
}

async fn new_user(store: &dyn Store, name: &str) -> UserId {
    store
        .create_user(user(name), shown(name), "hash".into())
        .await
        .expect("user created")
}

fn message(room: RoomId, author_id: UserId, client_id: &str) -> NewMessage {
    NewMessage {
        room,
        author_id,
        author: user("author"),
        author_name: shown("作者"),
        client_id: ClientId::parse(client_id).expect("valid client id"),
        text: format!("text of {client_id}"),
    }
}

async fn users(store: &dyn Store) {
    let id = store
        .create_user(user("Zhang"), shown("张三丰"), "phc".into())
        .await
        .expect("created");
    let again = store
        .create_user(user("zhang"), shown("other"), "phc".into())
        .await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    let found = store
        .find_user(user("ZHANG"))
        .await
        .expect("read")
        .expect("found ignoring case");
    assert_eq!(found.id, id);
    assert_eq!(found.username.as_str(), "Zhang", "the registered spelling");
    assert_eq!(found.display_name.as_str(), "张三丰");
    assert_eq!(found.password_hash, "phc");
    assert!(store.find_user(user("nobody")).await.expect("read").is_none());
}

async fn sessions(store: &dyn Store) {
    let id = new_user(store, "alice").await;
    let now = now_ms();
    store
        .create_session([1; 32], id, now + 60_000)
        .await
        .expect("created");
    store
        .create_session([2; 32], id, now - 1)
        .await
        .expect("created");
    let live = store
        .find_session([1; 32])
        .await
        .expect("read")
        .expect("found");
    assert_eq!(live.user_id, id);
    assert_eq!(live.username.as_str(), "alice");
    assert_eq!(live.display_name.as_str(), "alice");
    assert_eq!(live.expires_at, now + 60_000);
    assert_eq!(store.delete_expired_sessions(now).await.expect("swept"), 1);
    assert!(store.find_session([2; 32]).await.expect("read").is_none());
    store.delete_session([1; 32]).await.expect("deleted");
    store.delete_session([1; 32]).await.expect("deleting twice is fine");
    assert!(store.find_session([1; 32]).await.expect("read").is_none());
}

async fn rooms(store: &dyn Store) {
    let general = store
        .room(shared::DEFAULT_ROOM_ID)
        .await
        .expect("read")
        .expect("the default room exists");
    assert_eq!(general.name.as_str(), shared::DEFAULT_ROOM);
    assert_eq!(general.last_seq, 0);

    let alice = new_user(store, "alice").await;
    let tech = store
        .create_room(room_name("技术讨论"), Some(alice))
        .await
        .expect("created");
    assert_eq!(tech.name.as_str(), "技术讨论");
    assert_ne!(tech.id, general.id);
    for taken in ["技术讨论", "GENERAL", "General"] {
        let again = store.create_room(room_name(taken), Some(alice)).await;
        assert!(matches!(again, Err(StoreError::Conflict)), "{taken}: {again:?}");
    }
    let cafe = store
        .create_room(room_name("Café"), Some(alice))
        .await
        .expect("created");
    let shouted = store.create_room(room_name("CAFÉ"), None).await;
    assert!(matches!(shouted, Err(StoreError::Conflict)), "{shouted:?}");
    assert_eq!(store.rooms_created_by(alice).await.expect("count"), 2);

    let all = store.list_rooms(None, 10).await.expect("listed");
    let ids: Vec<RoomId> = all.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![general.id, tech.id, cafe.id], "in id order");
    let page = store.list_rooms(Some(general.id), 1).await.expect("listed");
    assert_eq!(page, vec![tech.clone()], "a page after an id");
    assert!(store.room(RoomId(9_999)).await.expect("read").is_none());
}

async fn membership(store: &dyn Store) {
    let alice = new_user(store, "alice").await;
    let room = shared::DEFAULT_ROOM_ID;
    assert!(!store.is_member(room, alice).await.expect("read"));
    store.add_member(room, alice).await.expect("added");
    store.add_member(room, alice).await.expect("adding twice is fine");
    assert!(store.is_member(room, alice).await.expect("read"));
    let missing = store.add_member(RoomId(9_999), alice).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}

async fn appends(store: &dyn Store, recorder: &Recorder) {
    let alice = new_user(store, "alice").await;
    let general = shared::DEFAULT_ROOM_ID;
    let other = store
        .create_room(room_name("other"), None)
        .await
        .expect("created")
        .id;
    let mut seqs = Vec::new();
    for (room, id) in [(general, "a"), (other, "b"), (general, "c"), (other, "d")] {
        let done = store.append(message(room, alice, id)).await.expect("stored");
        assert!(!done.duplicate);
        assert_eq!(done.event.room, room);
        assert_eq!(done.event.author_name.as_str(), "作者");
        seqs.push(done.event.seq);
    }
    assert_eq!(seqs, vec![1, 1, 2, 2], "seq is dense per room");

    let again = store.append(message(other, alice, "a")).await.expect("deduplicated");
    assert!(again.duplicate);
    assert_eq!((again.event.room, again.event.seq), (general, 1), "the original");
    let missing = store.append(message(RoomId(9_999), alice, "e")).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");

    let published: Vec<(RoomId, u64)> =
        recorder.events().iter().map(|e| (e.room, e.seq)).collect();
    assert_eq!(
        published,
        vec![(general, 1), (other, 1), (general, 2), (other, 2)],
        "each new event published once, in commit order; duplicates and failures not at all"
    );

    for i in 0..7 {
        store
            .append(message(general, alice, &format!("g{i}")))
            .await
            .expect("stored");
    }
    assert_eq!(store.room(general).await.expect("read").expect("room").last_seq, 9);
    let before = store.events_before(general, 9, 3).await.expect("read");
    assert_eq!(before.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![6, 7, 8]);
    let after = store.events_after(general, 6, 100).await.expect("read");
    assert_eq!(after.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![7, 8, 9]);
    let first = &store.events_after(general, 0, 1).await.expect("read")[0];
    assert_eq!(first.text, "text of a");
    assert_eq!(first.author.as_str(), "alice", "read back with the author's handle");
    assert_eq!(first.author_name.as_str(), "alice", "and their current display name");
    assert_eq!(first.client_id.as_ref().map(ClientId::as_str), Some("a"));
    assert!(store.events_before(other, 1, 10).await.expect("read").is_empty());
}

async fn concurrent_appends(store: Arc<dyn Store>, recorder: &Recorder) {
    let alice = new_user(&*store, "alice").await;
    let mut rooms = vec![shared::DEFAULT_ROOM_ID];
    for name in ["two", "three"] {
        rooms.push(store.create_room(room_name(name), None).await.expect("created").id);
    }
    // Every append twice, all at once: each client id is stored once, and every room's log is
    // dense.
    let appends = (0..300).map(|i| {
        let store = Arc::clone(&store);
        let room = rooms[i % 3];
        async move {
            let id = format!("m{}", i / 2);
            store.append(message(room, alice, &id)).await.expect("stored")
        }
    });
    let done = join_all(appends).await;
    assert_eq!(done.iter().filter(|d| !d.duplicate).count(), 150);
    let mut per_room: HashMap<RoomId, Vec<u64>> = HashMap::new();
    for event in recorder.events() {
        per_room.entry(event.room).or_default().push(event.seq);
    }
    for (room, seqs) in per_room {
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "room {room}: published densely, in order");
        let stored = store.events_after(room, 0, 1_000).await.expect("read");
        assert_eq!(stored.len(), expected.len(), "room {room}: stored once each");
    }
}
