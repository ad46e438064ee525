//! What survives a restart, and how the server stops.

use reqwest::StatusCode;

use crate::helpers::{GENERAL, spawn_app, spawn_app_in};

#[tokio::test]
async fn messages_and_sessions_survive_a_server_restart_on_the_same_file() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let (mut a, _) = app.joined(&alice, GENERAL).await;
    for n in 1..=3 {
        a.say(GENERAL, &format!("before restart {n}")).await;
    }
    let dir = app.stop().await;
    assert_eq!(a.closed().await, Some(1001), "shutdown says going away");

    let app = spawn_app_in(dir, |_| {}).await;
    // The old token still works, and so does a new login.
    let (mut a, history) = app.joined(&alice, GENERAL).await;
    let texts: Vec<_> = history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        ["before restart 1", "before restart 2", "before restart 3"]
    );
    assert_eq!(a.say(GENERAL, "after restart").await, 4, "seq continues");
    app.login("alice").await;
}

#[tokio::test]
async fn shutdown_closes_every_websocket_with_1001() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let (mut a, _) = app.joined(&alice, GENERAL).await;
    let mut b = app.ws(&bob).await;
    app.stop().await;
    assert_eq!(a.closed().await, Some(1001));
    assert_eq!(b.closed().await, Some(1001));
}

#[tokio::test]
async fn a_silent_peer_is_dropped_by_the_heartbeat() {
    let app = crate::helpers::spawn_app_with(|c| c.heartbeat_secs = 1).await;
    let alice = app.register("alice").await;
    let mut ws = app.ws(&alice).await;
    // Read nothing, so answer no ping (the client library only answers while it is polled). The
    // server must give up after three silent intervals and say why.
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    assert_eq!(ws.closed().await, Some(shared::close_code::TIMEOUT));
}

#[tokio::test]
async fn a_peer_that_answers_pings_is_kept() {
    let app = crate::helpers::spawn_app_with(|c| c.heartbeat_secs = 1).await;
    let alice = app.register("alice").await;
    let mut ws = app.ws(&alice).await;
    // Polling answers pings; after five intervals the connection still works.
    let until = tokio::time::Instant::now() + std::time::Duration::from_millis(5000);
    while tokio::time::Instant::now() < until {
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), ws.next()).await;
    }
    ws.join(GENERAL).await;
    assert_eq!(ws.say(GENERAL, "alive").await, 1);
}

#[tokio::test]
async fn a_database_written_by_the_first_release_opens_with_its_messages() {
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release-1.db");
    std::fs::copy(&fixture, dir.path().join("chat.db")).expect("fixture copied");
    let app = crate::helpers::spawn_app_in(dir, |_| {}).await;
    let alice = app.login("alice").await;
    let (mut ws, general) = app.joined(&alice, GENERAL).await;
    let texts: Vec<(u64, &str, &str)> = general
        .iter()
        .map(|m| (m.seq, m.author.as_str(), m.text.as_str()))
        .collect();
    assert_eq!(
        texts,
        [
            (1, "alice", "hello from the first release"),
            (2, "alice", "second message"),
            (3, "alice", "<b>not html</b>"),
            (4, "bob", "bob here 你好"),
        ]
    );
    let rust = ws.join(app.room_named(&alice, "rust").await).await;
    assert_eq!(rust.len(), 1);
    assert_eq!(rust[0].text, "rust room message");
    // The log goes on from where the old server left it, and old client ids still deduplicate.
    assert_eq!(ws.say(GENERAL, "from the new release").await, 5);
    let (_, seq) = ws
        .say_with_id(GENERAL, "a0", "hello from the first release")
        .await;
    assert_eq!(
        seq, 1,
        "a resend of an old client id is the stored message, not a new one"
    );
    app.login("bob").await;
}

#[tokio::test]
async fn a_database_written_by_the_second_release_opens_with_its_rooms_and_people() {
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release-2.db");
    std::fs::copy(&fixture, dir.path().join("chat.db")).expect("fixture copied");
    let app = crate::helpers::spawn_app_in(dir, |_| {}).await;
    let alice = app.login("alice").await;
    let carol = app.login("carol").await;
    let (mut ws, general) = app.joined(&alice, GENERAL).await;
    let texts: Vec<(&str, &str, &str)> = general
        .iter()
        .map(|m| (m.author.as_str(), m.author_name.as_str(), m.text.as_str()))
        .collect();
    assert_eq!(
        texts,
        [
            ("alice", "Alice 爱丽丝", "hello from release 2"),
            ("bob", "bob", "bob here")
        ]
    );
    let tech = app.room_named(&alice, "技术讨论").await;
    let history = ws.join(tech).await;
    assert_eq!(history[0].text, "你好，世界");
    // Its people and rules came through: carol is banned from 技术讨论 and invited to the
    // private room, which stays invisible to her otherwise; the direct room is alice and bob's.
    let (status, body) = app
        .post_as(
            &carol,
            &format!("/api/rooms/{tech}/join"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(body["code"], "banned", "{status}: {body}");
    let (_, invites) = app.get_as(&carol, "/api/invites").await;
    assert_eq!(invites[0]["room"]["name"], "secret plans");
    let (_, rooms) = app.get_as(&alice, "/api/rooms").await;
    let direct = rooms
        .as_array()
        .expect("list")
        .iter()
        .find(|r| r["kind"] == "direct")
        .cloned()
        .expect("the direct room");
    assert_eq!(direct["direct"], serde_json::json!(["alice", "bob"]));
    let (_, filters) = app
        .get_as(&alice, &format!("/api/rooms/{tech}/filters"))
        .await;
    assert_eq!(filters[0]["pattern"], "坏蛋");
    // An upgrade does not make a whole history unread: members start with everything read.
    let general_info = rooms
        .as_array()
        .expect("list")
        .iter()
        .find(|r| r["id"] == 1)
        .cloned()
        .expect("general");
    assert_eq!(general_info["read_seq"], 2, "{general_info}");
    assert!(general_info.get("unread").is_none(), "{general_info}");
    // Its messages can be changed like new ones.
    let (status, _) = app
        .call(
            reqwest::Method::PATCH,
            "/api/rooms/1/messages/1",
            &alice,
            Some(serde_json::json!({"text": "hello from release 2, edited"})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED);
    // Its messages were indexed for search by the upgrade, and the edit replaced the old words.
    let (_, found) = app.get_as(&alice, "/api/search?q=%E4%BD%A0%E5%A5%BD").await;
    assert_eq!(found["hits"][0]["message"]["text"], "你好，世界", "{found}");
    let (_, found) = app.get_as(&alice, "/api/search?q=release%202").await;
    let hits: Vec<&str> = found["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .filter_map(|h| h["message"]["text"].as_str())
        .collect();
    assert_eq!(hits, ["hello from release 2, edited"], "{found}");
    // The log goes on from where it was.
    assert_eq!(ws.say(GENERAL, "from the next release").await, 4);
}

#[tokio::test]
async fn a_database_written_by_the_third_release_opens_with_its_changed_messages() {
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release-3.db");
    std::fs::copy(&fixture, dir.path().join("chat.db")).expect("fixture copied");
    let app = crate::helpers::spawn_app_in(dir, |_| {}).await;
    let alice = app.login("alice").await;
    let carol = app.login("carol").await;
    // History: the edit applied, the deletion a blank placeholder, the reply and the reactions
    // (carol's taken back) as they were left.
    let (mut ws, general) = app.joined(&alice, GENERAL).await;
    let shown: Vec<(u64, &str, bool)> = general
        .iter()
        .map(|m| (m.seq, m.text.as_str(), m.deleted.is_some()))
        .collect();
    assert_eq!(
        shown,
        [
            (1, "hello from release 3, edited", false),
            (2, "**bold** reply, @alice", false),
            (4, "", true),
            (9, "最后一条 @bob", false),
        ]
    );
    assert!(general[0].edited.is_some());
    assert_eq!(general[0].reactions.len(), 1);
    assert_eq!(general[0].reactions[0].emoji, "👍");
    assert_eq!(general[1].reply_to, Some(1));
    assert_eq!(general[1].mentions[0].as_str(), "alice");
    // The catch-up replays every change in order.
    let (_, log) = app.get_as(&carol, "/api/rooms/1/events?since=0").await;
    let kinds = crate::helpers::kinds(&log);
    assert_eq!(
        kinds,
        [
            "message", "message", "edit", "message", "delete", "react", "react", "unreact",
            "message"
        ]
    );
    // Read positions came through: alice read up to 3, so carol's last message is unread.
    let (_, rooms) = app.get_as(&alice, "/api/rooms").await;
    assert_eq!(rooms[0]["read_seq"], 3);
    assert_eq!(rooms[0]["unread"], 1);
    // Search finds the messages as they are now: the edit by its new text, never the deleted.
    let (_, found) = app.get_as(&carol, "/api/search?q=%E6%9C%80%E5%90%8E").await;
    assert_eq!(found["hits"][0]["message"]["seq"], 9, "{found}");
    let (_, found) = app.get_as(&carol, "/api/search?q=release").await;
    assert_eq!(found["hits"].as_array().map(Vec::len), Some(1), "{found}");
    assert_eq!(found["hits"][0]["message"]["seq"], 1, "{found}");
    // The log goes on from where it was.
    assert_eq!(ws.say(GENERAL, "from the next release").await, 10);
}

#[tokio::test]
async fn a_database_written_by_the_fourth_release_opens_with_its_files_and_search() {
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    std::fs::copy(fixtures.join("release-4.db"), dir.path().join("chat.db")).expect("copied");
    // The files' contents, beside the database as that release kept them.
    let files = fixtures.join("release-4.db.files");
    for entry in walk(&files) {
        let to = dir
            .path()
            .join("chat.db.files")
            .join(entry.strip_prefix(&files).expect("inside"));
        std::fs::create_dir_all(to.parent().expect("a folder")).expect("folder");
        std::fs::copy(&entry, to).expect("copied");
    }
    let app = crate::helpers::spawn_app_in(dir, |_| {}).await;
    let alice = app.login("alice").await;
    let carol = app.login("carol").await;
    let (mut ws, general) = app.joined(&alice, GENERAL).await;
    let shown: Vec<(u64, &str, bool)> = general
        .iter()
        .map(|m| (m.seq, m.text.as_str(), m.deleted.is_some()))
        .collect();
    assert_eq!(
        shown,
        [
            (1, "你好世界, hello from release 4, edited", false),
            (2, "a cat picture", false),
            (3, "", true),
            (6, "最后一条消息", false),
        ]
    );
    // The files came through: metadata in the store, contents and thumbnail on disk.
    let names: Vec<(&str, &str, Option<u32>, bool)> = general[1]
        .attachments
        .iter()
        .map(|a| (a.name.as_str(), a.mime.as_str(), a.width, a.thumbnail))
        .collect();
    assert_eq!(
        names,
        [
            ("猫.png", "image/png", Some(40), true),
            ("notes.txt", "application/octet-stream", None, false),
        ]
    );
    let image = general[1].attachments[0].id;
    let res = app
        .get_with_token(&format!("/api/files/{image}"), &carol.token)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.expect("body").len(), 2374);
    let res = app
        .get_with_token(&format!("/api/files/{image}/thumbnail"), &carol.token)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // Search, now behind the log: the edit by its new text, the deleted message never.
    for (q, want) in [
        ("%E4%B8%96%E7%95%8C", vec![1]),
        ("durian", vec![]),
        ("%E6%9C%80%E5%90%8E", vec![6]),
    ] {
        let (_, found) = app.get_as(&carol, &format!("/api/search?q={q}")).await;
        let seqs: Vec<u64> = found["hits"]
            .as_array()
            .expect("hits")
            .iter()
            .filter_map(|h| h["message"]["seq"].as_u64())
            .collect();
        assert_eq!(seqs, want, "{q}: {found}");
    }
    // The log goes on, and what is written now is found at once.
    assert_eq!(ws.say(GENERAL, "after the upgrade 升级之后").await, 7);
    let (_, found) = app.get_as(&carol, "/api/search?q=upgrade").await;
    assert_eq!(found["hits"][0]["message"]["seq"], 7, "{found}");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
