//! The conformance suite of the [`Store`] trait: what every implementation must do, checked
//! through the trait alone. The SQLite store runs it in its tests; a new implementation (the
//! PostgreSQL one) calls [`run`] with a factory of fresh, empty stores.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::{BoxFuture, join_all};
use shared::{
    ClientId, DisplayName, EventKind, FilterAction, FilterKind, MessageEvent, Role, RoomId,
    RoomKind, RoomName, Username,
};

use super::{
    Appended, Change, CommitListener, FileRecord, NewAudit, NewEvent, NewFile, NewFilterRecord,
    NewRoomRecord, ReadCounts, Rejection, SearchQuery, Store, StoreError, UserId, UserSummary,
    now_ms,
};

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
    private_and_direct_rooms(&*new_store(&factory).await.0).await;
    moderation(&*new_store(&factory).await.0).await;
    let (store, recorder) = new_store(&factory).await;
    appends(&*store, &recorder).await;
    let (store, recorder) = new_store(&factory).await;
    concurrent_appends(store, &recorder).await;
    let (store, recorder) = new_store(&factory).await;
    changes(&*store, &recorder).await;
    read_positions(&*new_store(&factory).await.0).await;
    files(&*new_store(&factory).await.0).await;
    search(&*new_store(&factory).await.0).await;
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

pub(crate) async fn new_user(store: &dyn Store, name: &str) -> UserId {
    store
        .create_user(user(name), shown(name), "hash".into())
        .await
        .expect("user created")
}

fn public(name: &str, by: Option<UserId>) -> NewRoomRecord {
    NewRoomRecord {
        name: room_name(name),
        kind: RoomKind::Public,
        topic: String::new(),
        created_by: by,
    }
}

fn message(room: RoomId, author_id: UserId, client_id: &str) -> NewEvent {
    NewEvent::post(
        room,
        author_id,
        user("author"),
        shown("作者"),
        ClientId::parse(client_id).expect("valid client id"),
        format!("text of {client_id}"),
    )
}

/// A change by `author_id`.
fn change(room: RoomId, author_id: UserId, client_id: &str, change: Change) -> NewEvent {
    NewEvent {
        change,
        ..message(room, author_id, client_id)
    }
}

fn stored(done: &Appended) -> &MessageEvent {
    done.event().expect("an event")
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
    assert!(found.is_admin, "the first account administers the server");
    assert!(
        store
            .find_user(user("nobody"))
            .await
            .expect("read")
            .is_none()
    );
    let second = new_user(store, "lee").await;
    let lee = store
        .find_user(user("lee"))
        .await
        .expect("read")
        .expect("found");
    assert_eq!(lee.id, second);
    assert!(!lee.is_admin, "later accounts do not");
    assert!(store.set_admin(user("lee"), true).await.expect("set"));
    assert!(
        store
            .find_user(user("lee"))
            .await
            .expect("read")
            .expect("found")
            .is_admin
    );
    assert!(!store.set_admin(user("nobody"), true).await.expect("set"));
    let found: Vec<String> = store
        .search_users("z".into(), 10)
        .await
        .expect("search")
        .into_iter()
        .map(|u| u.username.to_string())
        .collect();
    assert_eq!(found, ["Zhang"], "by handle, ignoring case");
    let found = store.search_users("张".into(), 10).await.expect("search");
    assert_eq!(found.len(), 1, "by display name");
    assert!(
        store
            .search_users("%".into(), 10)
            .await
            .expect("search")
            .is_empty(),
        "wildcards are literal"
    );
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
    store
        .delete_session([1; 32])
        .await
        .expect("deleting twice is fine");
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
        .create_room(public("技术讨论", Some(alice)))
        .await
        .expect("created");
    let owner = store
        .member(tech.id, alice)
        .await
        .expect("read")
        .expect("member");
    assert_eq!(owner.role, Role::Owner, "the creator owns the room");
    assert_eq!(tech.name.as_str(), "技术讨论");
    assert_ne!(tech.id, general.id);
    for taken in ["技术讨论", "GENERAL", "General"] {
        let again = store.create_room(public(taken, Some(alice))).await;
        assert!(
            matches!(again, Err(StoreError::Conflict)),
            "{taken}: {again:?}"
        );
    }
    let cafe = store
        .create_room(public("Café", Some(alice)))
        .await
        .expect("created");
    let shouted = store.create_room(public("CAFÉ", None)).await;
    assert!(matches!(shouted, Err(StoreError::Conflict)), "{shouted:?}");
    assert_eq!(
        store.rooms_created_by(alice, false).await.expect("count"),
        2
    );

    let all = store.list_rooms(alice, None, 10).await.expect("listed");
    let ids: Vec<(RoomId, Option<Role>)> = all.iter().map(|(r, role)| (r.id, *role)).collect();
    assert_eq!(
        ids,
        vec![
            (general.id, None),
            (tech.id, Some(Role::Owner)),
            (cafe.id, Some(Role::Owner))
        ],
        "in id order, with the viewer's role"
    );
    let page = store
        .list_rooms(alice, Some(general.id), 1)
        .await
        .expect("listed");
    assert_eq!(
        page,
        vec![(tech.clone(), Some(Role::Owner))],
        "a page after an id"
    );
    assert!(store.room(RoomId(9_999)).await.expect("read").is_none());
}

async fn membership(store: &dyn Store) {
    let alice = new_user(store, "alice").await;
    let room = shared::DEFAULT_ROOM_ID;
    assert!(store.member(room, alice).await.expect("read").is_none());
    store
        .add_member(room, alice, Role::Moderator)
        .await
        .expect("added");
    store
        .add_member(room, alice, Role::Member)
        .await
        .expect("adding twice is fine");
    let member = store
        .member(room, alice)
        .await
        .expect("read")
        .expect("member");
    assert_eq!(member.role, Role::Moderator, "a member keeps their role");
    assert_eq!(member.user.username.as_str(), "alice");
    let missing = store.add_member(RoomId(9_999), alice, Role::Member).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");

    let bob = new_user(store, "bob").await;
    store
        .add_member(room, bob, Role::Member)
        .await
        .expect("added");
    let names: Vec<String> = store
        .members(room)
        .await
        .expect("read")
        .into_iter()
        .map(|m| m.user.username.to_string())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert!(
        store
            .set_role(room, bob, Role::Moderator)
            .await
            .expect("set")
    );
    let until = now_ms() + 60_000;
    store
        .set_muted(room, bob, Some(until))
        .await
        .expect("muted");
    let bob_there = store
        .member(room, bob)
        .await
        .expect("read")
        .expect("member");
    assert_eq!(
        (bob_there.role, bob_there.muted_until),
        (Role::Moderator, Some(until))
    );
    assert!(store.remove_member(room, bob).await.expect("removed"));
    // A mute outlives the membership.
    assert!(
        store
            .add_member(room, bob, Role::Member)
            .await
            .expect("back")
    );
    let back = store
        .member(room, bob)
        .await
        .expect("read")
        .expect("member");
    assert_eq!(
        back.muted_until,
        Some(until),
        "leaving does not lift a mute"
    );
    store.set_muted(room, bob, None).await.expect("unmuted");
    let back = store
        .member(room, bob)
        .await
        .expect("read")
        .expect("member");
    assert_eq!(back.muted_until, None);
    assert!(store.remove_member(room, bob).await.expect("removed"));
    assert!(!store.remove_member(room, bob).await.expect("removed twice"));
    assert!(
        !store
            .set_role(room, bob, Role::Member)
            .await
            .expect("not a member")
    );
}

async fn private_and_direct_rooms(store: &dyn Store) {
    let alice = new_user(store, "alice").await;
    let bob = new_user(store, "bob").await;
    let carol = new_user(store, "carol").await;
    let secret = store
        .create_room(NewRoomRecord {
            name: room_name("secret"),
            kind: RoomKind::Private,
            topic: "shh".into(),
            created_by: Some(alice),
        })
        .await
        .expect("created");
    assert_eq!(
        (secret.kind, secret.topic.as_str()),
        (RoomKind::Private, "shh")
    );
    // Private names need not be unique.
    store
        .create_room(NewRoomRecord {
            name: room_name("secret"),
            kind: RoomKind::Private,
            topic: String::new(),
            created_by: Some(bob),
        })
        .await
        .expect("a second private room of that name");
    let seen_by = async |user| -> Vec<RoomId> {
        store
            .list_rooms(user, None, 100)
            .await
            .expect("listed")
            .into_iter()
            .map(|(r, _)| r.id)
            .collect()
    };
    assert!(seen_by(alice).await.contains(&secret.id));
    assert!(
        !seen_by(bob).await.contains(&secret.id),
        "invisible to non-members"
    );

    store.invite(secret.id, bob, alice).await.expect("invited");
    store
        .invite(secret.id, bob, alice)
        .await
        .expect("invited twice");
    assert!(store.is_invited(secret.id, bob).await.expect("read"));
    let invites = store.invites_for(bob).await.expect("read");
    assert_eq!(invites.len(), 1);
    assert_eq!((invites[0].room.id, invites[0].by.id), (secret.id, alice));
    store
        .add_member(secret.id, bob, Role::Member)
        .await
        .expect("accepted");
    assert!(
        !store.is_invited(secret.id, bob).await.expect("read"),
        "joining uses the invitation"
    );
    assert!(seen_by(bob).await.contains(&secret.id));
    store
        .invite(secret.id, carol, alice)
        .await
        .expect("invited");
    assert!(
        store
            .delete_invite(secret.id, carol)
            .await
            .expect("declined")
    );
    assert!(store.invites_for(carol).await.expect("read").is_empty());

    let summary = async |name: &str| {
        let u = store
            .find_user(user(name))
            .await
            .expect("read")
            .expect("found");
        UserSummary {
            id: u.id,
            username: u.username,
            display_name: u.display_name,
        }
    };
    let (a, b, c) = (
        summary("alice").await,
        summary("bob").await,
        summary("carol").await,
    );
    let (dm, created) = store
        .open_direct(vec![b.clone(), a.clone()], room_name("alice, bob"))
        .await
        .expect("opened");
    assert!(created);
    assert_eq!(dm.kind, RoomKind::Direct);
    assert_eq!(
        dm.direct,
        vec![user("alice"), user("bob")],
        "its people, sorted"
    );
    let (again, created) = store
        .open_direct(vec![a.clone(), b.clone()], room_name("alice, bob"))
        .await
        .expect("reopened");
    assert_eq!(
        (again.id, created),
        (dm.id, false),
        "the same people reopen the same room"
    );
    let (group, created) = store
        .open_direct(
            vec![a.clone(), b.clone(), c],
            room_name("alice, bob, carol"),
        )
        .await
        .expect("opened");
    assert!(created && group.id != dm.id);
    assert_eq!(store.members(dm.id).await.expect("read").len(), 2);
    assert!(!seen_by(carol).await.contains(&dm.id));
    assert!(seen_by(carol).await.contains(&group.id));
    assert_eq!(
        store.rooms_created_by(alice, false).await.expect("count"),
        1,
        "direct rooms are counted apart"
    );
    assert_eq!(
        store.rooms_created_by(alice, true).await.expect("count"),
        1,
        "the group, started by alice (the first of its people)"
    );
    // Someone who left a direct room is added back when the same people open it again.
    assert!(store.remove_member(dm.id, b.id).await.expect("left"));
    let (back, added) = store
        .open_direct(vec![a.clone(), b.clone()], room_name("alice, bob"))
        .await
        .expect("reopened");
    assert_eq!((back.id, added), (dm.id, true));
    assert!(store.member(dm.id, b.id).await.expect("read").is_some());
    // A ban keeps a user out even when the caller did not see it.
    store
        .ban(secret.id, carol, alice, None)
        .await
        .expect("banned");
    assert!(
        !store
            .add_member(secret.id, carol, Role::Member)
            .await
            .expect("refused")
    );
    assert!(
        store
            .member(secret.id, carol)
            .await
            .expect("read")
            .is_none()
    );
    let access = store
        .access(secret.id, bob)
        .await
        .expect("read")
        .expect("room");
    assert_eq!(access.member.map(|m| m.role), Some(Role::Member));
    assert!(!access.invited && access.ban.is_none());
    let access = store
        .access(secret.id, carol)
        .await
        .expect("read")
        .expect("room");
    assert!(access.member.is_none() && !access.invited);
    assert!(
        store
            .access(RoomId(9_999), carol)
            .await
            .expect("read")
            .is_none()
    );
}

async fn moderation(store: &dyn Store) {
    let alice = new_user(store, "alice").await;
    let bob = new_user(store, "bob").await;
    let room = shared::DEFAULT_ROOM_ID;
    store
        .add_member(room, bob, Role::Member)
        .await
        .expect("added");
    store.invite(room, bob, alice).await.expect("invited");
    store
        .ban(room, bob, alice, Some("spam".into()))
        .await
        .expect("banned");
    assert_eq!(
        store.ban_of(room, bob).await.expect("read"),
        Some(Some("spam".into()))
    );
    assert!(
        store.member(room, bob).await.expect("read").is_none(),
        "a ban ends the membership"
    );
    assert!(
        !store.is_invited(room, bob).await.expect("read"),
        "and the invitation"
    );
    assert!(store.unban(room, bob).await.expect("unbanned"));
    assert_eq!(store.ban_of(room, bob).await.expect("read"), None);

    store
        .update_room(room, Some("the topic".into()), Some(30))
        .await
        .expect("updated");
    let updated = store.room(room).await.expect("read").expect("room");
    assert_eq!(
        (updated.topic.as_str(), updated.slow_mode_secs),
        ("the topic", 30)
    );
    store
        .update_room(room, None, Some(0))
        .await
        .expect("updated");
    let updated = store.room(room).await.expect("read").expect("room");
    assert_eq!(
        (updated.topic.as_str(), updated.slow_mode_secs),
        ("the topic", 0),
        "only what was given"
    );

    let rule = store
        .add_filter(NewFilterRecord {
            room: Some(room),
            kind: FilterKind::Regex,
            pattern: r"\d{3}".into(),
            action: FilterAction::Mask,
            created_by: alice,
        })
        .await
        .expect("stored");
    let wide = store
        .add_filter(NewFilterRecord {
            room: None,
            kind: FilterKind::Keyword,
            pattern: "坏蛋".into(),
            action: FilterAction::Refuse,
            created_by: alice,
        })
        .await
        .expect("stored");
    assert_eq!(
        store.filters(Some(room)).await.expect("read"),
        vec![rule.clone()]
    );
    assert_eq!(store.filters(None).await.expect("read"), vec![wide.clone()]);
    assert!(
        !store
            .delete_filter(None, rule.id)
            .await
            .expect("other scope"),
        "scoped deletes"
    );
    assert!(
        store
            .delete_filter(Some(room), rule.id)
            .await
            .expect("deleted")
    );
    assert!(store.filters(Some(room)).await.expect("read").is_empty());

    for (action, target) in [
        ("ban", Some(bob)),
        ("slow_mode", None),
        ("unban", Some(bob)),
    ] {
        store
            .audit(NewAudit {
                room: Some(room),
                actor: alice,
                action,
                target,
                reason: Some("why".into()),
                detail: None,
            })
            .await
            .expect("audited");
    }
    let log = store.audit_log(room, None, 2).await.expect("read");
    let actions: Vec<&str> = log.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["unban", "slow_mode"], "newest first");
    assert_eq!(log[0].target.as_ref().map(Username::as_str), Some("bob"));
    let older = store
        .audit_log(room, Some(log[1].id), 10)
        .await
        .expect("read");
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].actor.as_str(), "alice");
}

async fn appends(store: &dyn Store, recorder: &Recorder) {
    let alice = new_user(store, "alice").await;
    let general = shared::DEFAULT_ROOM_ID;
    let other = store
        .create_room(public("other", None))
        .await
        .expect("created")
        .id;
    let mut seqs = Vec::new();
    for (room, id) in [(general, "a"), (other, "b"), (general, "c"), (other, "d")] {
        let done = store
            .append(message(room, alice, id))
            .await
            .expect("stored");
        assert!(matches!(done, Appended::New(_)));
        assert_eq!(stored(&done).room, room);
        assert_eq!(stored(&done).author_name.as_str(), "作者");
        seqs.push(stored(&done).seq);
    }
    assert_eq!(seqs, vec![1, 1, 2, 2], "seq is dense per room");

    let again = store
        .append(message(other, alice, "a"))
        .await
        .expect("deduplicated");
    assert!(again.is_duplicate());
    assert_eq!(
        (stored(&again).room, stored(&again).seq),
        (general, 1),
        "the original"
    );
    let missing = store.append(message(RoomId(9_999), alice, "e")).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");

    let published: Vec<(RoomId, u64)> = recorder.events().iter().map(|e| (e.room, e.seq)).collect();
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
    assert_eq!(
        store
            .room(general)
            .await
            .expect("read")
            .expect("room")
            .last_seq,
        9
    );
    let before = store.messages_before(general, 9, 3).await.expect("read");
    assert_eq!(
        before.messages.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![6, 7, 8]
    );
    assert!(before.has_more);
    assert_eq!(before.head, 9);
    let after = store.messages_after(general, 6, 2).await.expect("read");
    assert_eq!(
        after.messages.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![7, 8]
    );
    assert!(after.has_more, "9 follows");
    assert_eq!(after.head, 9);
    let end = store.messages_after(general, 7, 5).await.expect("read");
    assert_eq!(
        (
            end.messages.iter().map(|e| e.seq).collect::<Vec<_>>(),
            end.has_more
        ),
        (vec![8, 9], false)
    );
    let past = store.messages_after(general, 9, 5).await.expect("read");
    assert!(past.messages.is_empty() && !past.has_more);
    let after = store.events_after(general, 6, 100).await.expect("read");
    assert_eq!(
        after.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![7, 8, 9]
    );
    let first = &store.events_after(general, 0, 1).await.expect("read")[0];
    assert_eq!(first.text, "text of a");
    assert_eq!(
        first.author.as_str(),
        "alice",
        "read back with the author's handle"
    );
    assert_eq!(
        first.author_name.as_str(),
        "alice",
        "and their current display name"
    );
    assert_eq!(first.client_id.as_ref().map(ClientId::as_str), Some("a"));
    let none = store.messages_before(other, 1, 10).await.expect("read");
    assert!(none.messages.is_empty() && !none.has_more);
}

async fn concurrent_appends(store: Arc<dyn Store>, recorder: &Recorder) {
    let alice = new_user(&*store, "alice").await;
    let mut rooms = vec![shared::DEFAULT_ROOM_ID];
    for name in ["two", "three"] {
        rooms.push(
            store
                .create_room(public(name, None))
                .await
                .expect("created")
                .id,
        );
    }
    // Every append twice, all at once: each client id is stored once, and every room's log is
    // dense.
    let appends = (0..300).map(|i| {
        let store = Arc::clone(&store);
        let room = rooms[i % 3];
        async move {
            let id = format!("m{}", i / 2);
            store
                .append(message(room, alice, &id))
                .await
                .expect("stored")
        }
    });
    let done = join_all(appends).await;
    assert_eq!(done.iter().filter(|d| !d.is_duplicate()).count(), 150);
    let mut per_room: HashMap<RoomId, Vec<u64>> = HashMap::new();
    for event in recorder.events() {
        per_room.entry(event.room).or_default().push(event.seq);
    }
    for (room, seqs) in per_room {
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "room {room}: published densely, in order");
        let stored = store.events_after(room, 0, 1_000).await.expect("read");
        assert_eq!(
            stored.len(),
            expected.len(),
            "room {room}: stored once each"
        );
    }
}

async fn changes(store: &dyn Store, recorder: &Recorder) {
    let alice = new_user(store, "alice").await;
    let bob = new_user(store, "bob").await;
    let room = shared::DEFAULT_ROOM_ID;
    for who in [alice, bob] {
        assert!(
            store
                .add_member(room, who, Role::Member)
                .await
                .expect("added")
        );
    }
    let append = |e: NewEvent| store.append(e);
    let post = |id: &str, text: &str, reply_to: Option<u64>, mentions: &[&str]| {
        change(
            room,
            alice,
            id,
            Change::Post {
                text: text.into(),
                reply_to,
                mentions: mentions.iter().map(|m| user(m)).collect(),
                attachments: Vec::new(),
            },
        )
    };
    // 1: a message that mentions bob (and a stranger, and its author, who are not recorded).
    let first = append(post("p1", "hi @bob", None, &["bob", "nobody", "alice"]))
        .await
        .expect("stored");
    assert_eq!(stored(&first).seq, 1);
    assert_eq!(stored(&first).mentions, vec![user("bob")]);
    // 2: a reply to it; a reply to a message that is not there is refused.
    let reply = append(post("p2", "answer", Some(1), &[]))
        .await
        .expect("stored");
    assert_eq!(stored(&reply).reply_to, Some(1));
    let orphan = append(post("p3", "to nothing", Some(99), &[])).await;
    assert!(
        matches!(orphan, Err(StoreError::Rejected(Rejection::NoSuchMessage))),
        "{orphan:?}"
    );

    // 3: an edit by its author; by anyone else it is refused; the same text changes nothing.
    let edit = |id: &str, by: UserId, text: &str| {
        change(
            room,
            by,
            id,
            Change::Edit {
                target: 1,
                text: text.into(),
                mentions: Vec::new(),
            },
        )
    };
    let edited = append(edit("e1", alice, "hello everyone"))
        .await
        .expect("edited");
    assert_eq!(
        (
            stored(&edited).seq,
            stored(&edited).kind,
            stored(&edited).target
        ),
        (3, EventKind::Edit, Some(1))
    );
    let again = append(edit("e1", alice, "hello everyone"))
        .await
        .expect("dedup");
    assert!(again.is_duplicate(), "the same client id is applied once");
    let same = append(edit("e2", alice, "hello everyone"))
        .await
        .expect("no-op");
    assert!(matches!(same, Appended::Unchanged));
    let forged = append(edit("e3", bob, "bob was here")).await;
    assert!(
        matches!(forged, Err(StoreError::Rejected(Rejection::NotAuthor))),
        "{forged:?}"
    );
    // Reading back: the message as it is now; the edit took its mentions away.
    let now = store.message(room, 1).await.expect("read").expect("there");
    assert_eq!(now.text, "hello everyone");
    assert!(now.edited.is_some());
    assert!(now.mentions.is_empty());
    assert!(
        store.message(room, 3).await.expect("read").is_none(),
        "an edit is not a message"
    );

    // 4, 5: reactions, with set semantics.
    let react = |id: &str, by: UserId, emoji: &str, on: bool| {
        change(
            room,
            by,
            id,
            Change::React {
                target: 1,
                emoji: shared::Emoji::parse(emoji).expect("valid"),
                on,
            },
        )
    };
    let r1 = append(react("r1", bob, "👍", true)).await.expect("reacted");
    assert_eq!(stored(&r1).kind, EventKind::React);
    assert_eq!(stored(&r1).emoji.as_deref(), Some("👍"));
    assert!(matches!(
        append(react("r2", bob, "👍", true)).await.expect("no-op"),
        Appended::Unchanged
    ));
    append(react("r3", alice, "👍", true))
        .await
        .expect("reacted");
    let page = store
        .messages_before(room, u64::MAX, 10)
        .await
        .expect("read");
    assert_eq!(page.head, 5);
    assert_eq!(
        page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![1, 2],
        "a history page holds messages only"
    );
    assert_eq!(page.messages[0].reactions.len(), 1);
    assert_eq!(
        page.messages[0].reactions[0].users,
        vec![user("bob"), user("alice")]
    );
    // Reading forward skips the changes too, and gathers the same state.
    let forward = store.messages_after(room, 0, 1).await.expect("read");
    assert_eq!(
        (
            forward.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
            forward.has_more
        ),
        (vec![1], true)
    );
    assert_eq!(forward.messages[0].reactions, page.messages[0].reactions);
    let rest = store.messages_after(room, 1, 10).await.expect("read");
    assert_eq!(
        (
            rest.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
            rest.has_more
        ),
        (vec![2], false),
        "the edit, the reactions after it: no messages, nothing more"
    );
    // 6: taken back.
    let off = append(react("r4", bob, "👍", false))
        .await
        .expect("unreacted");
    assert_eq!(stored(&off).kind, EventKind::Unreact);
    assert!(matches!(
        append(react("r5", bob, "👍", false)).await.expect("no-op"),
        Appended::Unchanged
    ));

    // 7: deleted by someone else only when they may (the service says so with `author_only`).
    let delete = |id: &str, by: UserId, author_only: bool| {
        change(
            room,
            by,
            id,
            Change::Delete {
                target: 1,
                author_only,
            },
        )
    };
    let refused = append(delete("d1", bob, true)).await;
    assert!(
        matches!(refused, Err(StoreError::Rejected(Rejection::NotAuthor))),
        "{refused:?}"
    );
    let gone = append(delete("d2", bob, false)).await.expect("deleted");
    assert_eq!(
        (stored(&gone).seq, stored(&gone).kind),
        (7, EventKind::Delete)
    );
    assert!(matches!(
        append(delete("d3", alice, true)).await.expect("no-op"),
        Appended::Unchanged
    ));
    let now = store
        .message(room, 1)
        .await
        .expect("read")
        .expect("still a row");
    assert!(now.deleted.is_some());
    assert!(now.text.is_empty() && now.reactions.is_empty());
    // Changes to a deleted message are refused.
    let late = append(react("r6", bob, "🎉", true)).await;
    assert!(
        matches!(late, Err(StoreError::Rejected(Rejection::NoSuchMessage))),
        "{late:?}"
    );

    // The raw log holds every kind, in order, with the edit's text erased too.
    let log = store.events_after(room, 0, 100).await.expect("read");
    let kinds: Vec<(u64, EventKind)> = log.iter().map(|e| (e.seq, e.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            (1, EventKind::Message),
            (2, EventKind::Message),
            (3, EventKind::Edit),
            (4, EventKind::React),
            (5, EventKind::React),
            (6, EventKind::Unreact),
            (7, EventKind::Delete),
        ]
    );
    assert!(
        log[2].text.is_empty(),
        "the edit's text went with the message"
    );
    let published: Vec<u64> = recorder.events().iter().map(|e| e.seq).collect();
    assert_eq!(
        published,
        vec![1, 2, 3, 4, 5, 6, 7],
        "each change published once"
    );
}

async fn read_positions(store: &dyn Store) {
    let alice = new_user(store, "alice").await;
    let bob = new_user(store, "bob").await;
    let room = shared::DEFAULT_ROOM_ID;
    assert!(
        store
            .add_member(room, alice, Role::Member)
            .await
            .expect("added")
    );
    let post = |id: &str, mentions: &[&str]| NewEvent {
        change: Change::Post {
            text: format!("message {id}"),
            reply_to: None,
            mentions: mentions.iter().map(|m| user(m)).collect(),
            attachments: Vec::new(),
        },
        ..message(room, alice, id)
    };
    store.append(post("before", &[])).await.expect("stored");
    // Bob joins after one message: it is not unread for him.
    assert!(
        store
            .add_member(room, bob, Role::Member)
            .await
            .expect("added")
    );
    let counts = store.read_counts(bob, vec![room]).await.expect("read");
    assert_eq!(
        counts[0],
        ReadCounts {
            seq: 1,
            unread: 0,
            mentions: 0
        }
    );
    store.append(post("a", &["bob"])).await.expect("stored");
    store.append(post("b", &[])).await.expect("stored");
    store.append(post("c", &[])).await.expect("stored");
    store
        .append(change(
            room,
            alice,
            "d",
            Change::Delete {
                target: 4,
                author_only: true,
            },
        ))
        .await
        .expect("deleted");
    store
        .append(change(
            room,
            alice,
            "e",
            Change::React {
                target: 2,
                emoji: shared::Emoji::parse("👀").expect("valid"),
                on: true,
            },
        ))
        .await
        .expect("reacted");
    let counts = store.read_counts(bob, vec![room]).await.expect("read");
    assert_eq!(
        counts[0],
        ReadCounts {
            seq: 1,
            unread: 2,
            mentions: 1
        },
        "deleted messages, changes and one's own messages are not unread"
    );
    assert_eq!(
        store.read_counts(alice, vec![room]).await.expect("read")[0].unread,
        0,
        "nobody's own messages are unread"
    );
    let moved = store.mark_read(bob, room, Some(2)).await.expect("marked");
    assert_eq!(
        moved,
        ReadCounts {
            seq: 2,
            unread: 1,
            mentions: 0
        }
    );
    let back = store.mark_read(bob, room, Some(1)).await.expect("marked");
    assert_eq!(back.seq, 2, "a read position never moves back");
    let beyond = store
        .mark_read(bob, room, Some(1_000))
        .await
        .expect("marked");
    assert_eq!(beyond.seq, 6, "nor beyond the room's head");
    let batch = store
        .mark_reads(vec![(alice, room, 3), (bob, room, 5)])
        .await
        .expect("marked");
    assert_eq!(batch[0].seq, 3);
    assert_eq!(
        batch[1],
        ReadCounts {
            seq: 6,
            unread: 0,
            mentions: 0
        },
        "never back"
    );
    let all = store.mark_all_read(alice).await.expect("marked");
    assert_eq!(
        all,
        vec![(
            room,
            ReadCounts {
                seq: 6,
                unread: 0,
                mentions: 0
            }
        )]
    );
}

fn new_file(room: RoomId, uploader: UserId, hash: u8, size: u64, quota: u64) -> NewFile {
    NewFile {
        hash: [hash; 32],
        size,
        mime: "image/png".into(),
        name: format!("f{hash}.png"),
        dimensions: Some((4, 3)),
        thumb_mime: Some("image/jpeg".into()),
        room,
        uploader,
        quota,
    }
}

fn post_with(room: RoomId, author: UserId, id: &str, attachments: Vec<u64>) -> NewEvent {
    change(
        room,
        author,
        id,
        Change::Post {
            text: format!("text of {id}"),
            reply_to: None,
            mentions: Vec::new(),
            attachments,
        },
    )
}

async fn files(store: &dyn Store) {
    let alice = new_user(store, "alice").await;
    let bob = new_user(store, "bob").await;
    let room = shared::DEFAULT_ROOM_ID;
    let other = store
        .create_room(public("other", Some(alice)))
        .await
        .expect("room")
        .id;
    let a = store
        .add_file(new_file(room, alice, 1, 100, 250))
        .await
        .expect("stored");
    assert_eq!(a.seq, None);
    assert_eq!(a.dimensions, Some((4, 3)));
    let b = store
        .add_file(new_file(room, alice, 1, 100, 250))
        .await
        .expect("the same content again");
    assert_ne!(a.id, b.id);
    assert!(matches!(
        store.add_file(new_file(room, alice, 2, 100, 250)).await,
        Err(StoreError::Rejected(Rejection::OverQuota))
    ));
    assert!(matches!(
        store.add_file(new_file(RoomId(999), alice, 2, 1, 0)).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.file_usage(alice).await.expect("usage"), 200);
    let bobs = store
        .add_file(new_file(room, bob, 3, 10, 0))
        .await
        .expect("stored");
    let elsewhere = store
        .add_file(new_file(other, alice, 4, 10, 0))
        .await
        .expect("stored");

    // Only the author's unsent uploads to the room can be attached, once.
    for (id, file) in [("x1", bobs.id), ("x2", elsewhere.id), ("x3", 9_999)] {
        assert!(
            matches!(
                store
                    .append(post_with(room, alice, id, vec![a.id, file]))
                    .await,
                Err(StoreError::Rejected(Rejection::NoSuchFile))
            ),
            "{id}"
        );
    }
    let done = store
        .append(post_with(room, alice, "m1", vec![a.id]))
        .await
        .expect("stored");
    let sent = stored(&done);
    assert_eq!(sent.attachments, vec![a.attachment()]);
    assert_eq!(sent.attachments[0].width, Some(4));
    assert!(matches!(
        store.append(post_with(room, alice, "m2", vec![a.id])).await,
        Err(StoreError::Rejected(Rejection::NoSuchFile))
    ));
    let seq = sent.seq;
    assert_eq!(
        store.file(a.id).await.expect("read").expect("exists").seq,
        Some(seq)
    );
    assert_eq!(
        store.message_files(room, seq).await.expect("read"),
        vec![FileRecord {
            seq: Some(seq),
            ..a.clone()
        }]
    );
    let page = store
        .messages_before(room, u64::MAX, 10)
        .await
        .expect("page");
    assert_eq!(page.messages[0].attachments.len(), 1);
    let caught = store.events_after(room, 0, 10).await.expect("events");
    assert_eq!(caught[0].attachments.len(), 1);
    // A duplicate send gives back the message with its files.
    let again = store
        .append(post_with(room, alice, "m1", vec![a.id]))
        .await
        .expect("duplicate");
    assert_eq!(stored(&again).attachments.len(), 1);

    // Deleting the message deletes its file; the content stays while `b` has it.
    store
        .append(change(
            room,
            alice,
            "d1",
            Change::Delete {
                target: seq,
                author_only: true,
            },
        ))
        .await
        .expect("deleted");
    assert_eq!(store.file(a.id).await.expect("read"), None);
    assert!(
        store
            .message_files(room, seq)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(store.hash_in_use([1; 32]).await.expect("read"));
    assert_eq!(store.file_usage(alice).await.expect("usage"), 110);
    let page = store
        .messages_before(room, u64::MAX, 10)
        .await
        .expect("page");
    assert!(page.messages[0].attachments.is_empty());

    // Unsent uploads go after a while, and say which contents nothing has any more.
    let mut gone = store
        .delete_unsent_files(now_ms() + 1)
        .await
        .expect("swept");
    gone.sort_unstable();
    assert_eq!(gone, vec![[1; 32], [3; 32], [4; 32]]);
    assert!(!store.hash_in_use([1; 32]).await.expect("read"));
    assert_eq!(store.file_usage(alice).await.expect("usage"), 0);
}

pub(crate) fn query(q: &str, rooms: Vec<RoomId>) -> SearchQuery {
    SearchQuery {
        terms: super::terms::query_terms(q).expect("a query"),
        rooms,
        author: None,
        has_file: false,
        after: None,
        before: None,
        cursor: None,
        limit: 10,
    }
}

pub(crate) async fn found(store: &dyn Store, q: SearchQuery) -> Vec<String> {
    store
        .search(q)
        .await
        .expect("searched")
        .hits
        .into_iter()
        .map(|m| m.text)
        .collect()
}

async fn search(store: &dyn Store) {
    let alice = new_user(store, "alice").await;
    let bob = new_user(store, "bob").await;
    let room = shared::DEFAULT_ROOM_ID;
    let other = store
        .create_room(public("other", Some(alice)))
        .await
        .expect("room")
        .id;
    let post = |room: RoomId, author: UserId, id: &str, text: &str| {
        store.append(NewEvent::post(
            room,
            author,
            user("author"),
            shown("作者"),
            ClientId::parse(id).expect("valid"),
            text.into(),
        ))
    };
    let first = post(room, alice, "s1", "你好世界 hello")
        .await
        .expect("stored");
    post(room, bob, "s2", "Hello, world").await.expect("stored");
    post(other, alice, "s3", "世界 elsewhere")
        .await
        .expect("stored");
    let both = vec![room, other];
    assert_eq!(
        found(store, query("世界", both.clone())).await,
        ["世界 elsewhere", "你好世界 hello"]
    );
    assert_eq!(
        found(store, query("世界", vec![room])).await,
        ["你好世界 hello"]
    );
    assert!(found(store, query("世界", Vec::new())).await.is_empty());
    assert_eq!(
        found(store, query("hello", both.clone())).await,
        ["Hello, world", "你好世界 hello"]
    );
    assert_eq!(
        found(
            store,
            SearchQuery {
                author: Some(bob),
                ..query("hello", both.clone())
            }
        )
        .await,
        ["Hello, world"]
    );
    // Pages: one hit each, following the cursor.
    let page = store
        .search(SearchQuery {
            limit: 1,
            ..query("hello", both.clone())
        })
        .await
        .expect("page");
    assert_eq!(page.hits.len(), 1);
    let next = page.next.expect("a next page");
    let page = store
        .search(SearchQuery {
            limit: 1,
            cursor: Some(next),
            ..query("hello", both.clone())
        })
        .await
        .expect("page");
    assert_eq!(page.hits[0].text, "你好世界 hello");
    assert_eq!(page.next, None);

    // Edits and deletions.
    let seq = stored(&first).seq;
    store
        .append(change(
            room,
            alice,
            "e1",
            Change::Edit {
                target: seq,
                text: "goodbye".into(),
                mentions: Vec::new(),
            },
        ))
        .await
        .expect("edited");
    assert_eq!(
        found(store, query("世界", vec![room])).await,
        Vec::<String>::new()
    );
    assert_eq!(
        found(store, query("goodbye", vec![room])).await,
        ["goodbye"]
    );
    store
        .append(change(
            room,
            alice,
            "d1",
            Change::Delete {
                target: seq,
                author_only: true,
            },
        ))
        .await
        .expect("deleted");
    assert!(found(store, query("goodbye", vec![room])).await.is_empty());
}
