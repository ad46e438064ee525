//! Rooms and people: who may see and do what, checked over real sockets and over HTTP.

use reqwest::StatusCode;
use serde_json::json;
use shared::{ClientMsg, ErrorCode, Removal, RoomId, ServerMsg};

use crate::helpers::{GENERAL, Session, TestApp, Ws, cid, spawn_app};

pub(crate) fn code(msg: &ServerMsg) -> Option<ErrorCode> {
    match msg {
        ServerMsg::Error { code, .. } => Some(*code),
        _ => None,
    }
}

/// Sends a join and returns the answer (`joined` or `error`), skipping notices.
async fn try_join(ws: &mut Ws, room: RoomId) -> ServerMsg {
    ws.send(&ClientMsg::Join { room, since: None }).await;
    ws.recv_until(|m| matches!(m, ServerMsg::Joined { .. } | ServerMsg::Error { .. }))
        .await
}

/// Sends a message and returns the answer (`ack` or `error`).
pub(crate) async fn try_send(ws: &mut Ws, room: RoomId, id: &str, text: &str) -> ServerMsg {
    ws.send(&ClientMsg::Send {
        reply_to: None,
        room,
        client_id: cid(id),
        text: text.into(),
        attachments: Vec::new(),
    })
    .await;
    ws.recv_until(|m| matches!(m, ServerMsg::Ack { .. } | ServerMsg::Error { .. }))
        .await
}

/// Reads frames until a message with `text` in `room`, and returns every frame before it.
async fn frames_until(ws: &mut Ws, room: RoomId, text: &str) -> Vec<ServerMsg> {
    let mut seen = Vec::new();
    loop {
        let msg = ws.recv().await;
        if matches!(&msg, ServerMsg::Message(m) if m.room == room && m.text == text) {
            return seen;
        }
        seen.push(msg);
    }
}

/// The room a frame is about, if any.
fn room_of(msg: &ServerMsg) -> Option<RoomId> {
    match msg {
        ServerMsg::Message(m) => Some(m.room),
        ServerMsg::Joined { room, .. }
        | ServerMsg::Left { room, .. }
        | ServerMsg::History { room, .. }
        | ServerMsg::Ack { room, .. }
        | ServerMsg::Presence { room, .. }
        | ServerMsg::Removed { room, .. }
        | ServerMsg::Muted { room, .. }
        | ServerMsg::Members { room } => Some(*room),
        ServerMsg::Room { room } => Some(room.id),
        ServerMsg::Invited { invite } => Some(invite.room.id),
        ServerMsg::Error { room, .. } => *room,
        _ => None,
    }
}

async fn moderate(
    app: &TestApp,
    who: &Session,
    room: RoomId,
    what: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    app.post_as(who, &format!("/api/rooms/{room}/{what}"), body)
        .await
}

#[tokio::test]
async fn a_private_room_reaches_no_one_else_by_any_path() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let secret = app.create_room_of(&alice, "secret plans", "private").await;
    let (mut alice_ws, _) = app.joined(&alice, secret).await;
    let (mut bob_ws, _) = app.joined(&bob, GENERAL).await;
    alice_ws.say(secret, "the password is swordfish").await;

    // Not listed, not found, not readable, not writable, not joinable, over HTTP or the socket.
    let (_, rooms) = app.get_as(&bob, "/api/rooms").await;
    assert!(
        rooms
            .as_array()
            .expect("a list")
            .iter()
            .all(|r| r["id"] != secret.0),
        "listed to a non-member: {rooms}"
    );
    for path in [
        format!("/api/rooms/{secret}"),
        format!("/api/rooms/{secret}/members"),
        format!("/api/rooms/{secret}/messages"),
        format!("/api/rooms/{secret}/messages?after=0"),
    ] {
        let (status, body) = app.get_as(&bob, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["code"], "no_such_room");
        assert!(
            !body.to_string().contains("secret"),
            "{path} leaks the name: {body}"
        );
    }
    for (path, body) in [
        (format!("/api/rooms/{secret}/join"), json!({})),
        (
            format!("/api/rooms/{secret}/messages"),
            json!({"client_id": "b1", "text": "hi"}),
        ),
        (
            format!("/api/rooms/{secret}/invite"),
            json!({"user": "bob"}),
        ),
    ] {
        let (status, body) = app.post_as(&bob, &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    assert_eq!(
        code(&try_join(&mut bob_ws, secret).await),
        Some(ErrorCode::NoSuchRoom)
    );
    bob_ws
        .send(&ClientMsg::History {
            room: secret,
            before: 100,
            limit: None,
        })
        .await;
    let reply = bob_ws
        .recv_until(|m| matches!(m, ServerMsg::Error { .. }))
        .await;
    assert_eq!(code(&reply), Some(ErrorCode::NoSuchRoom));
    assert_eq!(
        code(&try_send(&mut bob_ws, secret, "b2", "let me in").await),
        Some(ErrorCode::NoSuchRoom)
    );

    // Nothing of it reached bob's socket while alice talked there.
    alice_ws.say(secret, "still secret").await;
    alice_ws.join(GENERAL).await;
    alice_ws.say(GENERAL, "marker").await;
    let seen = frames_until(&mut bob_ws, GENERAL, "marker").await;
    assert!(
        seen.iter()
            .all(|m| room_of(m) != Some(secret) || code(m).is_some()),
        "bob saw a frame of the private room: {seen:?}"
    );

    // Invited, he sees the invitation live and in the list, and can join.
    let (status, _) = app
        .post_as(
            &alice,
            &format!("/api/rooms/{secret}/invite"),
            json!({"user": "bob"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    match bob_ws
        .recv_until(|m| matches!(m, ServerMsg::Invited { .. }))
        .await
    {
        ServerMsg::Invited { invite } => {
            assert_eq!(invite.room.id, secret);
            assert_eq!(invite.by.as_str(), "alice");
        }
        _ => unreachable!(),
    }
    let (_, invites) = app.get_as(&bob, "/api/invites").await;
    assert_eq!(invites[0]["room"]["name"], "secret plans");
    let history = bob_ws.join(secret).await;
    assert_eq!(history.len(), 2, "a member reads the history");
    let (_, invites) = app.get_as(&bob, "/api/invites").await;
    assert_eq!(invites, json!([]), "the invitation is used");
}

#[tokio::test]
async fn an_invitation_can_be_declined_and_a_private_room_left_needs_a_new_one() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room_of(&alice, "team", "private").await;
    app.post_as(
        &alice,
        &format!("/api/rooms/{room}/invite"),
        json!({"user": "bob"}),
    )
    .await;
    let (status, _) = app
        .post_as(&bob, &format!("/api/rooms/{room}/decline"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .post_as(&bob, &format!("/api/rooms/{room}/join"), json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a declined invitation opens nothing"
    );

    app.post_as(
        &alice,
        &format!("/api/rooms/{room}/invite"),
        json!({"user": "bob"}),
    )
    .await;
    let (mut bob_ws, _) = app.joined(&bob, room).await;
    let (status, _) = app
        .post_as(&bob, &format!("/api/rooms/{room}/leave"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    match bob_ws
        .recv_until(|m| matches!(m, ServerMsg::Removed { .. }))
        .await
    {
        ServerMsg::Removed {
            room: r, reason, ..
        } => assert_eq!((r, reason), (room, Removal::Left)),
        _ => unreachable!(),
    }
    assert_eq!(
        code(&try_join(&mut bob_ws, room).await),
        Some(ErrorCode::NoSuchRoom)
    );
}

#[tokio::test]
async fn direct_conversations_are_reopened_not_duplicated_and_stay_between_their_people() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let (mut bob_ws, _) = app.joined(&bob, GENERAL).await;
    let (status, dm) = app
        .post_as(&alice, "/api/direct", json!({"users": ["bob"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{dm}");
    assert_eq!(dm["kind"], "direct");
    assert_eq!(dm["direct"], json!(["alice", "bob"]));
    let id = RoomId(dm["id"].as_u64().expect("id"));
    // Bob hears of it at once, and opening it from his side finds the same room.
    match bob_ws
        .recv_until(|m| matches!(m, ServerMsg::Room { .. }))
        .await
    {
        ServerMsg::Room { room } => assert_eq!(room.id, id),
        _ => unreachable!(),
    }
    let (_, again) = app
        .post_as(&bob, "/api/direct", json!({"users": ["ALICE"]}))
        .await;
    assert_eq!(again["id"], dm["id"], "reopened, not duplicated");
    let (_, group) = app
        .post_as(&alice, "/api/direct", json!({"users": ["bob", "carol"]}))
        .await;
    assert_ne!(group["id"], dm["id"]);

    let (mut alice_ws, _) = app.joined(&alice, id).await;
    bob_ws.join(id).await;
    alice_ws.say(id, "just us").await;
    assert_eq!(bob_ws.next_message().await.text, "just us");
    let (status, _) = app
        .get_as(&carol, &format!("/api/rooms/{id}/messages"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a third person gets nothing");
    let (_, rooms) = app.get_as(&carol, "/api/rooms").await;
    let listed: Vec<u64> = rooms
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["id"].as_u64())
        .collect();
    assert!(!listed.contains(&id.0) && listed.contains(&group["id"].as_u64().expect("id")));
    let (status, _) = app
        .post_as(
            &carol,
            &format!("/api/rooms/{id}/invite"),
            json!({"user": "carol"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    for (users, status, code) in [
        (json!(["nobody"]), StatusCode::NOT_FOUND, "no_such_user"),
        (json!(["alice"]), StatusCode::BAD_REQUEST, "invalid"),
        // Too many is refused before any name is looked up, however many are sent.
        (
            json!((0..10).map(|i| format!("user{i}")).collect::<Vec<_>>()),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            json!(
                (0..10_000)
                    .map(|i| format!("someone{i}"))
                    .collect::<Vec<_>>()
            ),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
    ] {
        let (got, body) = app
            .post_as(&alice, "/api/direct", json!({"users": users}))
            .await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{users}: {body}"
        );
    }
    for i in 0..10 {
        app.register(&format!("user{i}")).await;
    }
    let (got, body) = app
        .post_as(
            &alice,
            "/api/direct",
            json!({"users": (0..10).map(|i| format!("user{i}")).collect::<Vec<_>>()}),
        )
        .await;
    assert_eq!(
        got,
        StatusCode::BAD_REQUEST,
        "eleven people is too many: {body}"
    );
}

#[tokio::test]
async fn a_banned_user_leaves_at_once_and_cannot_rejoin_until_unbanned() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room_of(&alice, "lobby", "public").await;
    let (mut alice_ws, _) = app.joined(&alice, room).await;
    let (mut bob_ws, _) = app.joined(&bob, room).await;
    let (status, body) = moderate(
        &app,
        &alice,
        room,
        "ban",
        json!({"user": "bob", "reason": "spam"}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    match bob_ws
        .recv_until(|m| matches!(m, ServerMsg::Removed { .. }))
        .await
    {
        ServerMsg::Removed {
            room: r,
            reason,
            by,
            message,
        } => {
            assert_eq!((r, reason), (room, Removal::Banned));
            assert_eq!(by.as_ref().map(|b| b.as_str()), Some("alice"));
            assert_eq!(message.as_deref(), Some("spam"));
        }
        _ => unreachable!(),
    }
    // His socket left the room at once: what is said next does not reach him.
    alice_ws.say(room, "after the ban").await;
    alice_ws.join(GENERAL).await;
    bob_ws.join(GENERAL).await;
    alice_ws.say(GENERAL, "marker").await;
    let seen = frames_until(&mut bob_ws, GENERAL, "marker").await;
    assert!(
        !seen
            .iter()
            .any(|m| matches!(m, ServerMsg::Message(e) if e.room == room)),
        "a banned socket still got the room's messages: {seen:?}"
    );
    match try_join(&mut bob_ws, room).await {
        ServerMsg::Error { code, message, .. } => {
            assert_eq!(code, ErrorCode::Banned);
            assert!(message.contains("spam"), "{message}");
        }
        other => panic!("a banned user joined: {other:?}"),
    }
    let (status, body) = app
        .post_as(&bob, &format!("/api/rooms/{room}/join"), json!({}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("banned"))
    );
    let (status, _) = app
        .post_as(
            &alice,
            &format!("/api/rooms/{room}/invite"),
            json!({"user": "bob"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a banned user cannot be invited back"
    );

    let (status, _) = moderate(&app, &alice, room, "unban", json!({"user": "bob"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(matches!(
        try_join(&mut bob_ws, room).await,
        ServerMsg::Joined { .. }
    ));
}

#[tokio::test]
async fn a_kicked_user_leaves_at_once_and_may_rejoin_a_public_room() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room_of(&alice, "lobby", "public").await;
    let (mut bob_ws, _) = app.joined(&bob, room).await;
    let (status, _) = moderate(&app, &alice, room, "kick", json!({"user": "bob"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    match bob_ws
        .recv_until(|m| matches!(m, ServerMsg::Removed { .. }))
        .await
    {
        ServerMsg::Removed { reason, .. } => assert_eq!(reason, Removal::Kicked),
        _ => unreachable!(),
    }
    assert_eq!(
        code(&try_send(&mut bob_ws, room, "k1", "am I still here?").await),
        Some(ErrorCode::NotJoined),
        "the socket left the room"
    );
    assert!(matches!(
        try_join(&mut bob_ws, room).await,
        ServerMsg::Joined { .. }
    ));
}

#[tokio::test]
async fn a_muted_user_reads_but_cannot_post_until_unmuted() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room_of(&alice, "lobby", "public").await;
    let (mut alice_ws, _) = app.joined(&alice, room).await;
    let (mut bob_ws, _) = app.joined(&bob, room).await;
    let (status, _) = moderate(
        &app,
        &alice,
        room,
        "mute",
        json!({"user": "bob", "seconds": 600, "reason": "cool down"}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    match bob_ws
        .recv_until(|m| matches!(m, ServerMsg::Muted { .. }))
        .await
    {
        ServerMsg::Muted { until, reason, .. } => {
            assert!(until.is_some());
            assert_eq!(reason.as_deref(), Some("cool down"));
        }
        _ => unreachable!(),
    }
    assert_eq!(
        code(&try_send(&mut bob_ws, room, "m1", "hello?").await),
        Some(ErrorCode::Muted)
    );
    let (status, body) = app
        .post_as(
            &bob,
            &format!("/api/rooms/{room}/messages"),
            json!({"client_id": "m2", "text": "over http?"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("muted"))
    );
    alice_ws.say(room, "you can still read").await;
    assert_eq!(bob_ws.next_message().await.text, "you can still read");
    let (_, members) = app
        .get_as(&alice, &format!("/api/rooms/{room}/members"))
        .await;
    let bob_row = members
        .as_array()
        .expect("list")
        .iter()
        .find(|m| m["user"] == "bob")
        .cloned()
        .expect("bob");
    assert!(bob_row["muted_until"].is_i64(), "{bob_row}");

    moderate(&app, &alice, room, "unmute", json!({"user": "bob"})).await;
    assert!(matches!(
        try_send(&mut bob_ws, room, "m3", "back").await,
        ServerMsg::Ack { .. }
    ));
}

#[tokio::test]
async fn slow_mode_lets_members_post_once_per_interval_and_moderators_freely() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room_of(&alice, "lobby", "public").await;
    let (status, body) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/rooms/{room}"),
            &alice,
            Some(json!({"slow_mode_secs": 30, "topic": "Be nice"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["slow_mode_secs"].as_u64(), body["topic"].as_str()),
        (Some(30), Some("Be nice"))
    );
    let (mut alice_ws, _) = app.joined(&alice, room).await;
    let (mut bob_ws, _) = app.joined(&bob, room).await;
    assert!(matches!(
        try_send(&mut bob_ws, room, "s1", "first").await,
        ServerMsg::Ack { .. }
    ));
    match try_send(&mut bob_ws, room, "s2", "second").await {
        ServerMsg::Error {
            code,
            retry_after_ms,
            ..
        } => {
            assert_eq!(code, ErrorCode::SlowMode);
            assert!(
                retry_after_ms.is_some_and(|ms| ms > 20_000),
                "{retry_after_ms:?}"
            );
        }
        other => panic!("slow mode let a second post through: {other:?}"),
    }
    for i in 0..3 {
        let reply = try_send(
            &mut alice_ws,
            room,
            &format!("a{i}"),
            "moderators are exempt",
        )
        .await;
        assert!(matches!(reply, ServerMsg::Ack { .. }), "{reply:?}");
    }
    let (status, _) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/rooms/{room}"),
            &bob,
            Some(json!({"slow_mode_secs": 0})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a member cannot turn it off");
}

#[tokio::test]
async fn roles_rank_who_may_act_on_whom_and_every_action_is_audited() {
    let app = spawn_app().await;
    let owner = app.register("owner").await; // the first account: a server admin too
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let room = app.create_room_of(&alice, "lobby", "public").await;
    for who in [&bob, &carol] {
        app.post_as(who, &format!("/api/rooms/{room}/join"), json!({}))
            .await;
    }
    let (status, body) = moderate(&app, &bob, room, "kick", json!({"user": "carol"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "a member cannot kick"
    );
    let (status, _) = moderate(
        &app,
        &alice,
        room,
        "role",
        json!({"user": "bob", "role": "moderator"}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "the owner appoints a moderator"
    );
    let (status, _) = moderate(
        &app,
        &bob,
        room,
        "kick",
        json!({"user": "carol", "reason": "off topic"}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "a moderator kicks a member");
    let (status, _) = moderate(&app, &bob, room, "ban", json!({"user": "alice"})).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "nobody acts on a higher rank"
    );
    let (status, _) = moderate(
        &app,
        &bob,
        room,
        "role",
        json!({"user": "carol", "role": "moderator"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only the owner appoints");
    let (status, _) = moderate(
        &app,
        &alice,
        room,
        "role",
        json!({"user": "bob", "role": "owner"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A server admin outranks the room's owner.
    let (status, _) = moderate(
        &app,
        &owner,
        room,
        "mute",
        json!({"user": "alice", "seconds": 5}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "an admin moderates any public room"
    );

    let (status, log) = app.get_as(&bob, &format!("/api/rooms/{room}/audit")).await;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<(String, String, Option<String>, Option<String>)> = log
        .as_array()
        .expect("list")
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap_or_default().to_owned(),
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["target"].as_str().map(str::to_owned),
                e["reason"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("owner".into(), "mute".into(), Some("alice".into()), None),
            (
                "bob".into(),
                "kick".into(),
                Some("carol".into()),
                Some("off topic".into())
            ),
            ("alice".into(), "role".into(), Some("bob".into()), None),
        ],
        "newest first, with who, what, whom and why"
    );
    assert!(log[0]["ts"].is_i64());
    let (status, _) = app
        .get_as(&carol, &format!("/api/rooms/{room}/audit"))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "members do not read the audit log"
    );
}

#[tokio::test]
async fn filters_refuse_or_mask_in_english_and_chinese_over_every_transport() {
    let app = spawn_app().await;
    let admin = app.register("admin").await;
    let alice = app.register("alice").await;
    let room = app.create_room_of(&alice, "lobby", "public").await;
    let add = async |who: &Session, path: &str, kind: &str, pattern: &str, action: &str| {
        app.post_as(
            who,
            path,
            json!({"kind": kind, "pattern": pattern, "action": action}),
        )
        .await
    };
    let filters = format!("/api/rooms/{room}/filters");
    for (kind, pattern, action) in [
        ("keyword", "spam", "refuse"),
        ("keyword", "坏蛋", "refuse"),
        ("regex", r"\d{3}-\d{4}", "mask"),
        ("regex", "(a+)+$", "refuse"),
    ] {
        let (status, body) = add(&alice, &filters, kind, pattern, action).await;
        assert_eq!(status, StatusCode::CREATED, "{pattern}: {body}");
    }
    let (status, body) = add(&alice, &filters, "regex", "(unclosed", "refuse").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("unclosed group"),
        "the parser's message: {body}"
    );
    let (status, _) = add(&alice, "/api/filters", "keyword", "x", "refuse").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "server-wide rules are for admins"
    );
    let (status, _) = add(
        &admin,
        "/api/filters",
        "keyword",
        "forbidden-word",
        "refuse",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let (mut ws, _) = app.joined(&alice, room).await;
    for (i, text, rule) in [
        (1, "buy SPAM now", "spam"),
        (2, "你是坏蛋吗", "坏蛋"),
        (3, "this has a forbidden-word in it", "forbidden-word"),
    ] {
        match try_send(&mut ws, room, &format!("f{i}"), text).await {
            ServerMsg::Error { code, message, .. } => {
                assert_eq!(code, ErrorCode::Filtered);
                assert!(message.contains(rule), "names the rule: {message}");
            }
            other => panic!("{text:?} went through: {other:?}"),
        }
    }
    // Whole words only: "spam" inside another word is not refused.
    assert!(matches!(
        try_send(&mut ws, room, "f4", "a classic spamming tool").await,
        ServerMsg::Ack { .. }
    ));
    // Masked, not refused; stored masked.
    assert!(matches!(
        try_send(&mut ws, room, "f5", "call 555-1234 or 微信 555-9876").await,
        ServerMsg::Ack { .. }
    ));
    let (_, page) = app
        .get_as(&alice, &format!("/api/rooms/{room}/messages"))
        .await;
    let stored = page["messages"]
        .as_array()
        .expect("list")
        .iter()
        .find(|m| m["client_id"] == "f5")
        .cloned()
        .expect("stored");
    assert_eq!(stored["text"], "call ******** or 微信 ********");
    // A pathological pattern against a long input finishes (the regex crate is linear).
    let long = format!("{}b", "a".repeat(3_900));
    assert!(matches!(
        try_send(&mut ws, room, "f6", &long).await,
        ServerMsg::Ack { .. }
    ));
    assert_eq!(
        code(&try_send(&mut ws, room, "f7", &"a".repeat(3_900)).await),
        Some(ErrorCode::Filtered)
    );
    // The same rules over HTTP.
    let (status, body) = app
        .post_as(
            &alice,
            &format!("/api/rooms/{room}/messages"),
            json!({"client_id": "h1", "text": "SPAM!"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("filtered"))
    );
    // Removing a rule lets the word through from then on.
    let (_, rules) = app.get_as(&alice, &filters).await;
    let spam = rules
        .as_array()
        .expect("list")
        .iter()
        .find(|r| r["pattern"] == "spam")
        .expect("rule")["id"]
        .clone();
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("{filters}/{spam}"),
            &alice,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(matches!(
        try_send(&mut ws, room, "f8", "spam is fine now").await,
        ServerMsg::Ack { .. }
    ));
}

#[tokio::test]
async fn admins_are_the_first_account_and_those_named_with_the_admin_option() {
    let app = spawn_app().await;
    let first = app.register("first").await;
    let zoe = app.register("zoe").await;
    let rule = json!({"kind": "keyword", "pattern": "x", "action": "refuse"});
    let (status, _) = app.post_as(&first, "/api/filters", rule.clone()).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the first account administers the server"
    );
    let (status, _) = app.post_as(&zoe, "/api/filters", rule.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let dir = app.stop().await;
    let app = crate::helpers::spawn_app_in(dir, |c| {
        c.admins = vec![shared::Username::parse("zoe").expect("valid")];
    })
    .await;
    let zoe = app.login("zoe").await;
    let (status, body) = app.post_as(&zoe, "/api/filters", rule).await;
    assert_eq!(status, StatusCode::CREATED, "--admin zoe: {body}");
}

#[tokio::test]
async fn the_request_rate_applies_to_the_new_commands() {
    let app = crate::helpers::spawn_app_with(|c| c.requests_per_second = 1).await;
    let alice = app.register("alice").await;
    app.register("bob").await;
    let mut refused = None;
    for _ in 0..20 {
        let (status, body) = app
            .post_as(&alice, "/api/direct", json!({"users": ["bob"]}))
            .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(body);
            break;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let body = refused.expect("a flood of commands is refused");
    assert_eq!(body["code"], "rate_limited");
    assert!(body["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0));
}

#[tokio::test]
async fn a_mute_survives_leaving_and_rejoining() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room_of(&alice, "lobby", "public").await;
    app.post_as(&bob, &format!("/api/rooms/{room}/join"), json!({}))
        .await;
    let (status, _) = moderate(
        &app,
        &alice,
        room,
        "mute",
        json!({"user": "bob", "seconds": 600}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .post_as(&bob, &format!("/api/rooms/{room}/leave"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (mut bob_ws, _) = app.joined(&bob, room).await;
    assert_eq!(
        code(&try_send(&mut bob_ws, room, "m1", "free again?").await),
        Some(ErrorCode::Muted),
        "leaving and coming back does not lift a mute"
    );
}

#[tokio::test]
async fn a_moderator_cannot_act_on_a_server_admin() {
    let app = spawn_app().await;
    let admin = app.register("admin").await; // the first account
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = app.create_room_of(&alice, "lobby", "public").await;
    for who in [&admin, &bob] {
        app.post_as(who, &format!("/api/rooms/{room}/join"), json!({}))
            .await;
    }
    moderate(
        &app,
        &alice,
        room,
        "role",
        json!({"user": "bob", "role": "moderator"}),
    )
    .await;
    for what in ["kick", "ban", "mute"] {
        let (status, body) = moderate(&app, &bob, room, what, json!({"user": "admin"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
        let (status, _) = moderate(&app, &alice, room, what, json!({"user": "admin"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "even the owner: {what}");
    }
}

#[tokio::test]
async fn a_direct_conversation_left_comes_back_when_the_same_people_open_it() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let (_, dm) = app
        .post_as(&alice, "/api/direct", json!({"users": ["bob"]}))
        .await;
    let id = dm["id"].as_u64().expect("id");
    let (status, _) = app
        .post_as(&bob, &format!("/api/rooms/{id}/leave"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get_as(&bob, &format!("/api/rooms/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "gone for bob");
    let (mut bob_ws, _) = app.joined(&bob, GENERAL).await;
    let (_, again) = app
        .post_as(&alice, "/api/direct", json!({"users": ["bob"]}))
        .await;
    assert_eq!(again["id"], dm["id"]);
    match bob_ws
        .recv_until(|m| matches!(m, ServerMsg::Room { .. }))
        .await
    {
        ServerMsg::Room { room } => assert_eq!(room.id.0, id, "bob hears he is back"),
        _ => unreachable!(),
    }
    let (status, _) = app.get_as(&bob, &format!("/api/rooms/{id}/messages")).await;
    assert_eq!(status, StatusCode::OK);
}
