//! The server on PostgreSQL (`--database postgres://...`): a path through the whole API, and
//! some tests of other modules run again, each on a throwaway PostgreSQL server of its own.

use reqwest::StatusCode;
use shared::{ClientMsg, EventKind};

use crate::helpers::{GENERAL, cid, spawn_app_on_postgres};

#[tokio::test]
async fn the_server_runs_on_postgresql_from_registration_to_search_and_restart() {
    let app = spawn_app_on_postgres().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let (mut a, history) = app.joined(&alice, GENERAL).await;
    assert!(history.is_empty());
    let (mut b, _) = app.joined(&bob, GENERAL).await;

    let first = a.say(GENERAL, "你好世界 hello").await;
    assert_eq!(first, 1);
    let live = b.next_message().await;
    assert_eq!((live.seq, live.text.as_str()), (1, "你好世界 hello"));

    // Bob goes away; meanwhile a message and an edit.
    drop(b);
    assert_eq!(a.say(GENERAL, "second").await, 2);
    let edited = a
        .write(ClientMsg::Edit {
            room: GENERAL,
            client_id: cid("e1"),
            target: first,
            text: "goodbye 世界".into(),
        })
        .await
        .expect("edited");
    assert_eq!(edited.1, 3);

    // He comes back with `since` and gets exactly what he missed, in order.
    let mut b = app.ws(&bob).await;
    b.send(&ClientMsg::Join {
        room: GENERAL,
        since: Some(1),
    })
    .await;
    let missed = [b.next_message().await, b.next_message().await];
    let seen: Vec<(u64, EventKind)> = missed.iter().map(|e| (e.seq, e.kind)).collect();
    assert_eq!(seen, [(2, EventKind::Message), (3, EventKind::Edit)]);

    // Search finds the new text (CJK and English), not the old.
    for (q, expected) in [("世界", vec!["goodbye 世界"]), ("hello", vec![])] {
        let res = app
            .http
            .get(app.url("/api/search"))
            .query(&[("q", q)])
            .bearer_auth(&alice.token)
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), StatusCode::OK);
        let body: serde_json::Value = res.json().await.expect("json");
        let texts: Vec<&str> = body["hits"]
            .as_array()
            .expect("hits")
            .iter()
            .filter_map(|h| h["message"]["text"].as_str())
            .collect();
        assert_eq!(texts, expected, "{q}");
    }

    // A restart on the same database keeps the history and the sessions, and `seq` goes on.
    drop((a, b));
    let app = app.restart().await;
    let (mut a, history) = app.joined(&alice, GENERAL).await;
    let texts: Vec<&str> = history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["goodbye 世界", "second"]);
    assert_eq!(a.say(GENERAL, "after restart").await, 4);
}

#[tokio::test]
async fn every_kind_of_change_arrives_live_in_catch_up_and_in_history_on_postgresql() {
    crate::changes::every_kind_of_change(spawn_app_on_postgres().await).await;
}

#[tokio::test]
async fn chinese_japanese_and_english_are_found_on_postgresql() {
    crate::search::words_and_substrings(spawn_app_on_postgres().await).await;
}

#[tokio::test]
async fn search_ranks_and_pages_on_postgresql_as_on_sqlite() {
    crate::search::ranks_and_pages(spawn_app_on_postgres().await).await;
}

#[tokio::test]
async fn search_follows_edits_and_deletions_on_postgresql() {
    crate::search::edits_and_deletions(spawn_app_on_postgres().await).await;
}

#[tokio::test]
async fn search_narrows_by_room_author_files_and_time_on_postgresql() {
    crate::search::narrowed(spawn_app_on_postgres().await).await;
}

#[tokio::test]
async fn hostile_queries_are_plain_words_on_postgresql() {
    crate::search::hostile_queries(spawn_app_on_postgres().await).await;
}

#[tokio::test]
async fn files_are_stored_carried_and_served_on_postgresql() {
    crate::files::image_stored_once(spawn_app_on_postgres().await).await;
}

#[tokio::test]
async fn deleting_a_message_removes_its_files_on_postgresql() {
    crate::files::deleting_removes_files(spawn_app_on_postgres().await).await;
}

#[tokio::test]
async fn a_database_outage_refuses_writes_as_retryable_and_the_retry_stores_them_once() {
    let app = spawn_app_on_postgres().await;
    let pg = app.postgres.clone().expect("a throwaway server");
    let alice = app.register("alice").await;
    let (mut a, _) = app.joined(&alice, GENERAL).await;
    assert_eq!(a.say(GENERAL, "before").await, 1);
    let post = |key: &'static str| {
        app.http
            .post(app.url(&format!("/api/rooms/{GENERAL}/messages")))
            .bearer_auth(&alice.token)
            .header("Idempotency-Key", key)
            .json(&serde_json::json!({"text": "during the outage"}))
            .timeout(std::time::Duration::from_secs(30))
            .send()
    };

    // The database goes down (a restart): writes are refused with the retryable code, and the
    // node says it is not ready.
    pg.halt().expect("halted");
    let res = post("outage-1").await.expect("answered");
    assert!(res.status().is_server_error(), "{}", res.status());
    let body: shared::ApiError = res.json().await.expect("an error body");
    assert_eq!(body.code, Some(shared::ErrorCode::Internal), "retryable");
    let ready = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Back: the same request stores the message once, it is delivered live, and the node is
    // ready again.
    pg.resume().expect("resumed");
    let mut stored = None;
    for _ in 0..30 {
        let res = post("outage-1").await.expect("answered");
        if res.status() == StatusCode::CREATED {
            stored = Some(res.json::<serde_json::Value>().await.expect("json"));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let stored = stored.expect("stored after the database came back");
    assert_eq!(stored["seq"], 2);
    let again = post("outage-1").await.expect("answered");
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "the same key stores nothing new"
    );
    let live = a.next_message().await;
    assert_eq!((live.seq, live.text.as_str()), (2, "during the outage"));
    let (_, page) = app
        .get_as(&alice, &format!("/api/rooms/{GENERAL}/messages"))
        .await;
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts, ["before", "during the outage"]);
    let ready = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), StatusCode::OK);
}

#[tokio::test]
async fn two_servers_on_one_database_share_one_files_folder() {
    use crate::files::{contents, delete_message, fetch, is_thumb, png, post_files, stored};
    let a = spawn_app_on_postgres().await;
    // A second server on the same database and the same files folder.
    let b = crate::helpers::spawn_app_on(
        std::sync::Arc::clone(&a.dir),
        a.database.clone(),
        a.postgres.clone(),
        |_| {},
    )
    .await;
    assert_eq!(a.files_dir(), b.files_dir());
    let alice = a.register("alice").await;
    let bob = b.register("bob").await;
    a.joined(&alice, GENERAL).await;
    b.joined(&bob, GENERAL).await;
    // The same picture uploaded through each server: one content on disk (and its thumbnail).
    let picture = png(64, 48);
    let mine = stored(&a, &alice, GENERAL, "a.png", picture.clone()).await;
    let theirs = stored(&b, &bob, GENERAL, "b.png", picture).await;
    let on_disk = contents(&a);
    assert_eq!(
        on_disk.iter().filter(|p| !is_thumb(p)).count(),
        1,
        "{on_disk:?}"
    );
    let first = post_files(&a, &alice, GENERAL, "mine", &[mine]).await;
    let second = post_files(&b, &bob, GENERAL, "theirs", &[theirs]).await;
    // Each server serves the file uploaded through the other.
    let (status, _, bytes) = fetch(&b, &bob, &format!("/api/files/{mine}"), None).await;
    assert_eq!((status, !bytes.is_empty()), (StatusCode::OK, true));
    // Deleted through one server while the other's file still has it: kept.
    delete_message(&a, &alice, GENERAL, first).await;
    assert_eq!(contents(&a).iter().filter(|p| !is_thumb(p)).count(), 1);
    let (status, _, _) = fetch(&a, &alice, &format!("/api/files/{theirs}"), None).await;
    assert_eq!(status, StatusCode::OK);
    // The last one gone: the content and its thumbnail go.
    delete_message(&b, &bob, GENERAL, second).await;
    let mut left = contents(&a);
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        left = contents(&a);
    }
    assert!(left.is_empty(), "{left:?}");
}
