//! Rooms over HTTP, and the built client served at `/`.

use reqwest::StatusCode;
use serde_json::json;
use shared::{ApiError, ErrorCode, RoomInfo};

use crate::helpers::{GENERAL, spawn_app};

#[tokio::test]
async fn general_exists_and_new_rooms_can_be_created_listed_and_joined() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let list = app.get_with_token("/api/rooms", &alice.token).await;
    assert_eq!(list.status(), StatusCode::OK);
    let rooms: Vec<RoomInfo> = list.json().await.expect("rooms");
    assert_eq!(
        rooms
            .iter()
            .map(|r| (r.id, r.name.as_str()))
            .collect::<Vec<_>>(),
        [(GENERAL, "general")]
    );

    let rust = app.create_room(&alice, "rust").await;
    assert_ne!(rust, GENERAL);
    let (mut ws, history) = app.joined(&alice, rust).await;
    assert!(history.is_empty());
    assert_eq!(ws.say(rust, "first!").await, 1);

    let rooms: Vec<RoomInfo> = app
        .get_with_token("/api/rooms", &alice.token)
        .await
        .json()
        .await
        .expect("rooms");
    let listed = rooms.iter().find(|r| r.id == rust).expect("listed");
    assert_eq!(listed.name.as_str(), "rust");
    assert_eq!(listed.last_seq, 1);
    assert_eq!(listed.online, 1);
}

#[tokio::test]
async fn room_names_are_unicode_normalised_and_unique_ignoring_case() {
    let app = spawn_app().await;
    let zhang = app.register("zhang").await;
    let tech = app.create_room(&zhang, "技术讨论").await;
    // Sent decomposed (e + combining acute), stored composed.
    let cafe = app.create_room(&zhang, "  Cafe\u{301} ☕ ").await;
    let res = app
        .get_with_token(&format!("/api/rooms/{cafe}"), &zhang.token)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let info: RoomInfo = res.json().await.expect("room");
    assert_eq!(info.name.as_str(), "Caf\u{e9} ☕");
    let shown: RoomInfo = app
        .get_with_token(&format!("/api/rooms/{tech}"), &zhang.token)
        .await
        .json()
        .await
        .expect("room");
    assert_eq!(shown.name.as_str(), "技术讨论");
    for taken in ["技术讨论", "CAFÉ ☕", "General"] {
        let res = app
            .http
            .post(app.url("/api/rooms"))
            .bearer_auth(&zhang.token)
            .json(&json!({ "name": taken }))
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), StatusCode::CONFLICT, "{taken}");
        let body: ApiError = res.json().await.expect("error body");
        assert_eq!(body.code, Some(ErrorCode::Conflict));
    }
}

#[tokio::test]
async fn duplicate_or_invalid_room_names_are_refused() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let too_long = "名".repeat(65);
    for (name, status) in [
        ("general", StatusCode::CONFLICT),
        ("", StatusCode::BAD_REQUEST),
        ("   ", StatusCode::BAD_REQUEST),
        ("\u{200B}", StatusCode::BAD_REQUEST),
        ("evil\u{202E}gpj.exe", StatusCode::BAD_REQUEST),
        ("two\nlines", StatusCode::BAD_REQUEST),
        (too_long.as_str(), StatusCode::BAD_REQUEST),
    ] {
        let res = app
            .http
            .post(app.url("/api/rooms"))
            .bearer_auth(&alice.token)
            .json(&json!({ "name": name }))
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), status, "{name:?}");
        let _: ApiError = res.json().await.expect("error body");
    }
}

#[tokio::test]
async fn a_missing_room_is_404_and_a_malformed_id_is_400() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let res = app.get_with_token("/api/rooms/9999", &alice.token).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body: ApiError = res.json().await.expect("error body");
    assert_eq!(body.code, Some(ErrorCode::NoSuchRoom));
    let res = app.get_with_token("/api/rooms/general", &alice.token).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_room_api_needs_a_session() {
    let app = spawn_app().await;
    let res = app
        .http
        .get(app.url("/api/rooms"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_built_client_is_served_with_cache_headers_and_spa_fallback() {
    let app = spawn_app().await;
    let dist = app.dir.path().join("dist");
    std::fs::create_dir_all(&dist).expect("dist");
    std::fs::write(dist.join("index.html"), "<html>chat</html>").expect("index");
    std::fs::write(dist.join("frontend-0123456789abcdef_bg.wasm"), b"\0asm").expect("wasm");

    let index = app.http.get(app.url("/")).send().await.expect("sent");
    assert_eq!(index.status(), StatusCode::OK);
    assert_eq!(index.headers()["cache-control"], "no-cache");
    assert_eq!(index.text().await.expect("body"), "<html>chat</html>");

    let deep = app
        .http
        .get(app.url("/rooms/general"))
        .send()
        .await
        .expect("sent");
    assert_eq!(deep.status(), StatusCode::OK);
    assert_eq!(deep.text().await.expect("body"), "<html>chat</html>");

    let wasm = app
        .http
        .get(app.url("/frontend-0123456789abcdef_bg.wasm"))
        .send()
        .await
        .expect("sent");
    assert_eq!(wasm.status(), StatusCode::OK);
    assert!(
        wasm.headers()["cache-control"]
            .to_str()
            .expect("ascii")
            .contains("immutable")
    );
}

#[tokio::test]
async fn joins_over_http_tell_the_members_once_a_second_at_most() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let (mut ws, _) = app.joined(&alice, GENERAL).await;
    // Five bots join over HTTP, none with a socket: no presence would tell anyone.
    for n in 0..5 {
        let bot = app.register(&format!("bot{n}")).await;
        let res = app
            .http
            .post(app.url(&format!("/api/rooms/{GENERAL}/join")))
            .bearer_auth(&bot.token)
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), StatusCode::OK);
    }
    let notice = ws
        .recv_until(|m| matches!(m, shared::ServerMsg::Members { .. }))
        .await;
    assert_eq!(notice, shared::ServerMsg::Members { room: GENERAL });
    let (_, members) = app
        .get_as(&alice, &format!("/api/rooms/{GENERAL}/members"))
        .await;
    assert_eq!(members.as_array().map(Vec::len), Some(6), "{members}");
    // The five joins made one notice: nothing more follows within two seconds.
    let more = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        ws.recv_until(|m| matches!(m, shared::ServerMsg::Members { .. })),
    )
    .await;
    assert!(more.is_err(), "a second notice: {more:?}");
}
