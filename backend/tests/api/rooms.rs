//! Rooms over HTTP, and the built client served at `/`.

use reqwest::StatusCode;
use serde_json::json;
use shared::{ApiError, RoomInfo};

use crate::helpers::spawn_app;

#[tokio::test]
async fn general_exists_and_new_rooms_can_be_created_listed_and_joined() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let list = app.get_with_token("/api/rooms", &alice.token).await;
    assert_eq!(list.status(), StatusCode::OK);
    let rooms: Vec<RoomInfo> = list.json().await.expect("rooms");
    assert_eq!(
        rooms.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["general"]
    );

    let created = app
        .http
        .post(app.url("/api/rooms"))
        .bearer_auth(&alice.token)
        .json(&json!({"name": "rust"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status(), StatusCode::CREATED);

    let (mut ws, history) = app.joined(&alice, "rust").await;
    assert!(history.is_empty());
    assert_eq!(ws.say("rust", "first!").await, 1);

    let rooms: Vec<RoomInfo> = app
        .get_with_token("/api/rooms", &alice.token)
        .await
        .json()
        .await
        .expect("rooms");
    let rust = rooms
        .iter()
        .find(|r| r.name.as_str() == "rust")
        .expect("listed");
    assert_eq!(rust.last_seq, 1);
    assert_eq!(rust.online, 1);
}

#[tokio::test]
async fn duplicate_or_invalid_room_names_are_refused() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    for (name, status) in [
        ("general", StatusCode::CONFLICT),
        ("Not Valid", StatusCode::BAD_REQUEST),
        ("", StatusCode::BAD_REQUEST),
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
