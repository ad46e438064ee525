//! Search: Chinese, Japanese and English, visibility, edits and deletions, filters, ranking,
//! pages, and hostile queries.

use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::RoomId;

use crate::helpers::{GENERAL, Session, TestApp, spawn_app};

/// Searches as `session` with the query string `params` (already encoded pairs).
async fn search(app: &TestApp, session: &Session, params: &[(&str, &str)]) -> (StatusCode, Value) {
    let res = app
        .http
        .get(app.url("/api/search"))
        .query(params)
        .bearer_auth(&session.token)
        .send()
        .await
        .expect("sent");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The texts of the hits for `q`, in order.
async fn texts(app: &TestApp, session: &Session, q: &str) -> Vec<String> {
    let (status, body) = search(app, session, &[("q", q)]).await;
    assert_eq!(status, StatusCode::OK, "{q}: {body}");
    hit_texts(&body)
}

fn hit_texts(body: &Value) -> Vec<String> {
    body["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| h["message"]["text"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Posts `text` to `room` over HTTP; returns its seq.
async fn say(app: &TestApp, session: &Session, room: RoomId, text: &str) -> u64 {
    let (status, body) = app
        .post_as(
            session,
            &format!("/api/rooms/{room}/messages"),
            json!({ "text": text }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["seq"].as_u64().expect("seq")
}

async fn member(app: &TestApp, session: &Session, room: RoomId) {
    let (status, _) = app
        .post_as(session, &format!("/api/rooms/{room}/join"), json!({}))
        .await;
    assert!(status.is_success());
}

#[tokio::test]
async fn chinese_japanese_and_english_are_found_by_words_and_substrings() {
    words_and_substrings(spawn_app().await).await;
}

/// The body of [`chinese_japanese_and_english_are_found_by_words_and_substrings`], for any store.
pub async fn words_and_substrings(app: TestApp) {
    let alice = app.register("alice").await;
    member(&app, &alice, GENERAL).await;
    for text in [
        "你好世界",
        "Hello, world",
        "世界和平",
        "我的猫很可爱",
        "東京タワーに行きました",
        "안녕하세요 여러분",
        "Ｆｕｌｌｗｉｄｔｈ letters",
        "Café crème",
        "nothing here",
    ] {
        say(&app, &alice, GENERAL, text).await;
    }
    assert_eq!(texts(&app, &alice, "世界").await, ["世界和平", "你好世界"]);
    assert_eq!(texts(&app, &alice, "你好世界").await, ["你好世界"]);
    assert_eq!(texts(&app, &alice, "好世").await, ["你好世界"]);
    assert!(
        texts(&app, &alice, "世和").await.is_empty(),
        "bigrams match in order only"
    );
    assert_eq!(texts(&app, &alice, "hello").await, ["Hello, world"]);
    assert_eq!(texts(&app, &alice, "WORLD").await, ["Hello, world"]);
    assert_eq!(
        texts(&app, &alice, "猫").await,
        ["我的猫很可爱"],
        "one character"
    );
    assert_eq!(
        texts(&app, &alice, "タワー").await,
        ["東京タワーに行きました"]
    );
    assert_eq!(
        texts(&app, &alice, "東京").await,
        ["東京タワーに行きました"]
    );
    assert_eq!(texts(&app, &alice, "여러분").await, ["안녕하세요 여러분"]);
    assert_eq!(
        texts(&app, &alice, "fullwidth").await,
        ["Ｆｕｌｌｗｉｄｔｈ letters"]
    );
    assert_eq!(texts(&app, &alice, "cafe").await, ["Café crème"]);
    assert!(texts(&app, &alice, "hell").await.is_empty(), "whole words");
    assert!(
        texts(&app, &alice, "世界 hello").await.is_empty(),
        "every word must match"
    );
}

#[tokio::test]
async fn the_whole_phrase_ranks_first_then_newest_first_and_pages_do_not_overlap() {
    ranks_and_pages(spawn_app().await).await;
}

/// The body of [`the_whole_phrase_ranks_first_then_newest_first_and_pages_do_not_overlap`], for any store.
pub async fn ranks_and_pages(app: TestApp) {
    let alice = app.register("alice").await;
    member(&app, &alice, GENERAL).await;
    say(&app, &alice, GENERAL, "red apple pie").await;
    say(&app, &alice, GENERAL, "apple, then something red").await;
    say(&app, &alice, GENERAL, "a red apple").await;
    say(&app, &alice, GENERAL, "red and apple").await;
    assert_eq!(
        texts(&app, &alice, "red apple").await,
        [
            "a red apple",
            "red apple pie",
            "red and apple",
            "apple, then something red"
        ]
    );
    // Two at a time, following `next`.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut params = vec![("q", "red apple"), ("limit", "3")];
        if !cursor.is_empty() {
            params.push(("cursor", &cursor));
        }
        let (status, body) = search(&app, &alice, &params).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        seen.extend(hit_texts(&body));
        match body["next"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "a red apple",
            "red apple pie",
            "red and apple",
            "apple, then something red"
        ]
    );
    let (status, _) = search(&app, &alice, &[("q", "red"), ("cursor", "garbage")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_private_rooms_messages_are_never_found_by_anyone_outside_it() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let secret = app.create_room_of(&alice, "secret", "private").await;
    say(&app, &alice, secret, "the launch code is 秘密口令").await;
    member(&app, &alice, GENERAL).await;
    say(&app, &alice, GENERAL, "the launch is public").await;

    assert_eq!(texts(&app, &alice, "launch").await.len(), 2);
    assert_eq!(texts(&app, &bob, "launch").await, ["the launch is public"]);
    assert!(texts(&app, &bob, "秘密").await.is_empty());
    let room = secret.0.to_string();
    let (status, body) = search(&app, &bob, &[("q", "launch"), ("room", &room)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // A public room is searchable before joining it, as it can be read by joining.
    let (status, body) = search(&app, &bob, &[("q", "launch"), ("room", "1")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hit_texts(&body), ["the launch is public"]);
    assert_eq!(body["hits"][0]["room_name"], "general");
    assert_eq!(body["hits"][0]["message"]["room"], 1);
    // Someone who leaves the private room stops finding it.
    let (status, _) = app
        .post_as(
            &alice,
            &format!("/api/rooms/{secret}/invite"),
            json!({"user": "bob"}),
        )
        .await;
    assert!(status.is_success());
    member(&app, &bob, secret).await;
    assert_eq!(texts(&app, &bob, "秘密").await.len(), 1);
    app.post_as(&bob, &format!("/api/rooms/{secret}/leave"), json!({}))
        .await;
    assert!(texts(&app, &bob, "秘密").await.is_empty());
}

#[tokio::test]
async fn edits_replace_what_is_found_and_deleted_messages_are_never_found() {
    edits_and_deletions(spawn_app().await).await;
}

/// The body of [`edits_replace_what_is_found_and_deleted_messages_are_never_found`], for any store.
pub async fn edits_and_deletions(app: TestApp) {
    let alice = app.register("alice").await;
    member(&app, &alice, GENERAL).await;
    let seq = say(&app, &alice, GENERAL, "I like apples 苹果").await;
    assert_eq!(texts(&app, &alice, "apples").await.len(), 1);
    let (status, _) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/rooms/{GENERAL}/messages/{seq}"),
            &alice,
            Some(json!({"text": "I like bananas 香蕉"})),
        )
        .await;
    assert!(status.is_success());
    assert!(texts(&app, &alice, "apples").await.is_empty());
    assert!(texts(&app, &alice, "苹果").await.is_empty());
    assert_eq!(texts(&app, &alice, "香蕉").await, ["I like bananas 香蕉"]);
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/rooms/{GENERAL}/messages/{seq}"),
            &alice,
            None,
        )
        .await;
    assert!(status.is_success());
    assert!(texts(&app, &alice, "bananas").await.is_empty());
    assert!(texts(&app, &alice, "香蕉").await.is_empty());
}

#[tokio::test]
async fn results_can_be_narrowed_by_room_author_files_and_time() {
    narrowed(spawn_app().await).await;
}

/// The body of [`results_can_be_narrowed_by_room_author_files_and_time`], for any store.
pub async fn narrowed(app: TestApp) {
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let other = app.create_room(&alice, "other").await;
    member(&app, &alice, GENERAL).await;
    member(&app, &bob, GENERAL).await;
    say(&app, &alice, GENERAL, "report by alice").await;
    say(&app, &bob, GENERAL, "report by bob").await;
    say(&app, &alice, other, "report elsewhere").await;
    let (_, file) = {
        let res = app
            .http
            .post(app.url(&format!("/api/rooms/{GENERAL}/files?name=r.pdf")))
            .bearer_auth(&alice.token)
            .body(b"%PDF-1.7".to_vec())
            .send()
            .await
            .expect("sent");
        (res.status(), res.json::<Value>().await.expect("json"))
    };
    let (status, _) = app
        .post_as(
            &alice,
            &format!("/api/rooms/{GENERAL}/messages"),
            json!({"text": "report attached", "attachments": [file["id"]]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, body) = search(&app, &alice, &[("q", "report"), ("room", "1")]).await;
    assert_eq!(hit_texts(&body).len(), 3);
    let (_, body) = search(&app, &alice, &[("q", "report"), ("author", "bob")]).await;
    assert_eq!(hit_texts(&body), ["report by bob"]);
    let (_, body) = search(&app, &alice, &[("q", "report"), ("has_file", "true")]).await;
    assert_eq!(hit_texts(&body), ["report attached"]);
    assert_eq!(
        body["hits"][0]["message"]["attachments"][0]["name"],
        "r.pdf"
    );
    let (_, body) = search(&app, &alice, &[("q", "report"), ("before", "1000")]).await;
    assert!(hit_texts(&body).is_empty());
    let (_, body) = search(&app, &alice, &[("q", "report"), ("after", "1000")]).await;
    assert_eq!(hit_texts(&body).len(), 4);
    let (status, _) = search(&app, &alice, &[("q", "report"), ("author", "nobody")]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn hostile_queries_are_plain_words_or_clear_refusals() {
    hostile_queries(spawn_app().await).await;
}

/// The body of [`hostile_queries_are_plain_words_or_clear_refusals`], for any store.
pub async fn hostile_queries(app: TestApp) {
    let alice = app.register("alice").await;
    member(&app, &alice, GENERAL).await;
    say(
        &app,
        &alice,
        GENERAL,
        "NEAR the OR gate, body: \"quoted\" *star*",
    )
    .await;
    say(&app, &alice, GENERAL, "plain").await;
    for q in [
        "NEAR",
        "or",
        "body",
        "\"quoted\"",
        "*star*",
        "star*",
        "NEAR(the gate)",
        "gate)",
        "-gate",
        "^gate",
        "body:gate",
        "{body}: gate",
    ] {
        assert_eq!(texts(&app, &alice, q).await.len(), 1, "{q}");
    }
    for q in ["\"", "*", "()", "\"\"\"", "   ", ":", "-"] {
        let (status, body) = search(&app, &alice, &[("q", q)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert_eq!(body["code"], "invalid");
    }
    let long = "a".repeat(10_000);
    let (status, body) = search(&app, &alice, &[("q", &long)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let many: String = (0..40).map(|i| format!("w{i} ")).collect();
    let (status, _) = search(&app, &alice, &[("q", &many)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = search(&app, &alice, &[("q", "plain"), ("limit", "999999")]).await;
    assert_eq!(status, StatusCode::OK);
}
