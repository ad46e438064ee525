//! Registration, login, logout and sessions.

use reqwest::StatusCode;
use serde_json::json;
use shared::{ApiError, MeResponse};

use crate::helpers::{GENERAL, refused_status, spawn_app, spawn_app_with};

#[tokio::test]
async fn register_returns_a_token_and_sets_an_httponly_strict_cookie() {
    let app = spawn_app().await;
    let res = app
        .post_json(
            "/api/register",
            &json!({"username": "alice", "password": "correct horse"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_owned();
    assert!(cookie.starts_with("chat_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let body: serde_json::Value = res.json().await.expect("json");
    let token = body["token"].as_str().expect("token in body");
    assert!(
        cookie.contains(token),
        "cookie and body carry the same token"
    );

    let me = app.get_with_token("/api/me", token).await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: MeResponse = me.json().await.expect("json");
    assert_eq!(me.username.as_str(), "alice");
}

#[tokio::test]
async fn the_session_cookie_authenticates_http_requests() {
    let app = spawn_app().await;
    let session = app.register("alice").await;
    let res = app
        .http
        .get(app.url("/api/me"))
        .header("cookie", format!("other=1; chat_session={}", session.token))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_taken_username_is_409_regardless_of_case() {
    let app = spawn_app().await;
    app.register("alice").await;
    for name in ["alice", "ALICE"] {
        let res = app
            .post_json(
                "/api/register",
                &json!({"username": name, "password": "another password"}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "{name}");
        let body: ApiError = res.json().await.expect("error body");
        assert_eq!(body.error, "conflict");
        assert!(body.message.contains("taken"), "{}", body.message);
    }
}

#[tokio::test]
async fn invalid_registrations_are_400_with_the_rule_in_the_message() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"username": "ab", "password": "correct horse"}),
            "at least 3",
        ),
        (
            json!({"username": "bad name", "password": "correct horse"}),
            "only use",
        ),
        (
            json!({"username": "alice", "password": "short"}),
            "at least 8",
        ),
        (json!({"username": "alice"}), "password"),
    ];
    for (body, rule) in cases {
        let res = app.post_json("/api/register", &body).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{body}");
        let err: ApiError = res.json().await.expect("error body");
        assert_eq!(err.error, "bad_request");
        assert!(err.message.contains(rule), "{body}: {}", err.message);
    }
}

#[tokio::test]
async fn a_malformed_json_body_is_400_in_the_api_error_shape() {
    let app = spawn_app().await;
    let res = app
        .http
        .post(app.url("/api/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let err: ApiError = res.json().await.expect("error body");
    assert_eq!(err.error, "bad_request");
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_is_401() {
    let app = spawn_app().await;
    app.register("alice").await;
    for (user, password) in [("alice", "wrong password"), ("nobody", "correct horse")] {
        let res = app
            .post_json(
                "/api/login",
                &json!({"username": user, "password": password}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{user}");
        let err: ApiError = res.json().await.expect("error body");
        assert_eq!(err.message, "Wrong username or password.");
    }
}

#[tokio::test]
async fn login_returns_a_fresh_working_token() {
    let app = spawn_app().await;
    let first = app.register("alice").await;
    let second = app.login("alice").await;
    assert_ne!(first.token, second.token);
    let me = app.get_with_token("/api/me", &second.token).await;
    assert_eq!(me.status(), StatusCode::OK);
    let mut ws = app.ws(&second).await;
    ws.join(GENERAL).await;
}

#[tokio::test]
async fn logout_ends_the_session_and_closes_its_websockets() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let other = app.login("alice").await;
    let (mut ws, _) = app.joined(&alice, GENERAL).await;
    let (mut other_ws, _) = app.joined(&other, GENERAL).await;

    let res = app
        .http
        .post(app.url("/api/logout"))
        .bearer_auth(&alice.token)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let cleared = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("cookie cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    assert_eq!(ws.closed().await, Some(shared::close_code::SESSION_ENDED));
    let me = app.get_with_token("/api/me", &alice.token).await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    let upgrade = app
        .ws_request(&[("authorization", &format!("Bearer {}", alice.token))])
        .await;
    assert_eq!(refused_status(upgrade), 401);

    // The other session of the same user is untouched.
    other_ws.say(GENERAL, "still here").await;
}

#[tokio::test]
async fn an_expired_session_is_refused() {
    let app = spawn_app_with(|c| c.session_ttl_secs = 0).await;
    let alice = app.register("alice").await;
    let me = app.get_with_token("/api/me", &alice.token).await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    let err: ApiError = me.json().await.expect("error body");
    assert_eq!(err.message, "session expired");
    let upgrade = app
        .ws_request(&[("authorization", &format!("Bearer {}", alice.token))])
        .await;
    assert_eq!(refused_status(upgrade), 401);
}
