//! Protocol 2: request ids on every answer, the version in `hello`, display names, and the
//! chat's commands over plain HTTP with the same checks and errors as over the socket.

use reqwest::StatusCode;
use serde_json::json;
use shared::{
    ApiError, ErrorCode, HistoryPage, JoinedRoom, MeResponse, PROTOCOL_VERSION, Posted, ServerMsg,
};

use crate::helpers::{GENERAL, spawn_app, spawn_app_with};

#[tokio::test]
async fn hello_says_the_protocol_version_and_messages_carry_display_names() {
    let app = spawn_app().await;
    let res = app
        .post_json(
            "/api/register",
            &json!({"username": "zhang", "password": "correct horse", "display_name": "张三丰"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let session: shared::SessionResponse = res.json().await.expect("session");
    assert_eq!(session.display_name.as_str(), "张三丰");
    let me: MeResponse = app
        .get_with_token("/api/me", &session.token)
        .await
        .json()
        .await
        .expect("me");
    assert_eq!(me.display_name.as_str(), "张三丰");

    let mut ws = app
        .ws_request(&[("authorization", &format!("Bearer {}", session.token))])
        .await
        .expect("upgrade");
    match ws.recv().await {
        ServerMsg::Hello {
            user,
            display_name,
            protocol,
            ..
        } => {
            assert_eq!(user.as_str(), "zhang");
            assert_eq!(display_name.as_str(), "张三丰");
            assert_eq!(protocol, PROTOCOL_VERSION);
        }
        other => panic!("expected hello, got {other:?}"),
    }
    ws.join(GENERAL).await;
    ws.say(GENERAL, "你好").await;
    // Without a display name, the handle is shown.
    let bob = app.register("bob").await;
    let (_, history) = app.joined(&bob, GENERAL).await;
    assert_eq!(history[0].author.as_str(), "zhang");
    assert_eq!(history[0].author_name.as_str(), "张三丰");
    let me: MeResponse = app
        .get_with_token("/api/me", &bob.token)
        .await
        .json()
        .await
        .expect("me");
    assert_eq!(me.display_name.as_str(), "bob");

    for bad in ["", "a\u{202E}b", &"名".repeat(65)] {
        let res = app
            .post_json(
                "/api/register",
                &json!({"username": "carol", "password": "correct horse", "display_name": bad}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad:?}");
    }
}

#[tokio::test]
async fn every_answer_carries_the_request_id_it_answers() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut ws = app.ws(&alice).await;
    let mut ask = async |frame: serde_json::Value| {
        ws.send_raw(&frame.to_string()).await;
        ws.recv().await
    };
    let answer = ask(json!({"req": 1, "type": "join", "room": GENERAL})).await;
    assert!(
        matches!(answer, ServerMsg::Joined { req: Some(1), .. }),
        "{answer:?}"
    );
    let answer = ws.recv().await;
    assert!(
        matches!(answer, ServerMsg::History { req: Some(1), .. }),
        "{answer:?}"
    );

    let mut ask = async |frame: serde_json::Value| {
        ws.send_raw(&frame.to_string()).await;
        ws.recv_until(|m| !matches!(m, ServerMsg::Message(_))).await
    };
    let answer =
        ask(json!({"req": 2, "type": "send", "room": GENERAL, "client_id": "c1", "text": "hi"}))
            .await;
    assert!(
        matches!(
            answer,
            ServerMsg::Ack {
                req: Some(2),
                seq: 1,
                ..
            }
        ),
        "{answer:?}"
    );
    let answer = ask(json!({"req": 3, "type": "history", "room": GENERAL, "before": 5})).await;
    assert!(
        matches!(answer, ServerMsg::History { req: Some(3), .. }),
        "{answer:?}"
    );
    let answer =
        ask(json!({"req": 4, "type": "send", "room": GENERAL, "client_id": "c2", "text": " "}))
            .await;
    assert!(
        matches!(
            answer,
            ServerMsg::Error {
                req: Some(4),
                code: ErrorCode::Invalid,
                ..
            }
        ),
        "{answer:?}"
    );
    let answer = ask(json!({"req": 5, "type": "history", "room": 9999, "before": 5})).await;
    assert!(
        matches!(
            answer,
            ServerMsg::Error {
                req: Some(5),
                code: ErrorCode::NoSuchRoom,
                ..
            }
        ),
        "{answer:?}"
    );
    let answer = ask(json!({"req": 6, "type": "warp", "room": GENERAL})).await;
    assert!(
        matches!(
            answer,
            ServerMsg::Error {
                req: Some(6),
                code: ErrorCode::BadFrame,
                ..
            }
        ),
        "{answer:?}"
    );
    let answer = ask(json!({"req": 7, "type": "ping", "id": 70})).await;
    assert_eq!(
        answer,
        ServerMsg::Pong {
            req: Some(7),
            id: Some(70)
        }
    );
    let answer = ask(json!({"req": 8, "type": "leave", "room": GENERAL})).await;
    assert_eq!(
        answer,
        ServerMsg::Left {
            req: Some(8),
            room: GENERAL
        }
    );
    // A frame without `req` is answered without one, as before.
    let answer = ask(json!({"type": "ping"})).await;
    assert_eq!(
        answer,
        ServerMsg::Pong {
            req: None,
            id: None
        }
    );
}

#[tokio::test]
async fn a_bot_can_do_over_http_what_a_browser_does_over_the_socket() {
    let app = spawn_app().await;
    let bot = app.register("bot").await;
    let human = app.register("human").await;
    let (mut watcher, _) = app.joined(&human, GENERAL).await;
    let post = async |body: serde_json::Value| {
        app.http
            .post(app.url(&format!("/api/rooms/{GENERAL}/messages")))
            .bearer_auth(&bot.token)
            .json(&body)
            .send()
            .await
            .expect("sent")
    };

    // The same rule as on the socket: join first.
    let res = post(json!({"client_id": "b1", "text": "beep"})).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body: ApiError = res.json().await.expect("error body");
    assert_eq!(body.code, Some(ErrorCode::NotJoined));

    let res = app
        .http
        .post(app.url(&format!("/api/rooms/{GENERAL}/join")))
        .bearer_auth(&bot.token)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::OK);
    let joined: JoinedRoom = res.json().await.expect("joined");
    assert_eq!((joined.room, joined.last_seq), (GENERAL, 0));

    let res = post(json!({"client_id": "b1", "text": "beep"})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let posted: Posted = res.json().await.expect("posted");
    assert_eq!((posted.room, posted.seq), (GENERAL, 1));
    // Delivered live to the socket, like any message.
    let live = watcher.next_message().await;
    assert_eq!(
        (live.seq, live.author.as_str(), live.text.as_str()),
        (1, "bot", "beep")
    );

    // Idempotent like `send`: the same client id is the same message.
    let res = post(json!({"client_id": "b1", "text": "beep"})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let again: Posted = res.json().await.expect("posted");
    assert_eq!((again.id, again.seq), (posted.id, 1));

    // The same validation errors, with the same codes.
    for (body, code) in [
        (json!({"client_id": "b2", "text": "  "}), ErrorCode::Invalid),
        (
            json!({"client_id": "b3", "text": "x".repeat(4001)}),
            ErrorCode::TooLong,
        ),
    ] {
        let res = post(body).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let err: ApiError = res.json().await.expect("error body");
        assert_eq!(err.code, Some(code));
    }
    let res = post(json!({"client_id": "bad id!", "text": "x"})).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    let page: HistoryPage = app
        .get_with_token(
            &format!("/api/rooms/{GENERAL}/messages?limit=10"),
            &bot.token,
        )
        .await
        .json()
        .await
        .expect("history");
    assert_eq!(page.messages.len(), 1);
    assert!(!page.has_more);
    let res = app
        .get_with_token("/api/rooms/9999/messages", &bot.token)
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_send_rate_applies_over_http_as_over_the_socket() {
    let app = spawn_app_with(|c| c.sends_per_second = 1).await;
    let bot = app.register("bot").await;
    let res = app
        .http
        .post(app.url(&format!("/api/rooms/{GENERAL}/join")))
        .bearer_auth(&bot.token)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::OK);
    let mut refused = None;
    for i in 0..20 {
        let res = app
            .http
            .post(app.url(&format!("/api/rooms/{GENERAL}/messages")))
            .bearer_auth(&bot.token)
            .json(&json!({"client_id": format!("m{i}"), "text": "flood"}))
            .send()
            .await
            .expect("sent");
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(res.headers().contains_key("retry-after"));
            refused = Some(res.json::<ApiError>().await.expect("error body"));
            break;
        }
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let refused = refused.expect("the flood was refused");
    assert_eq!(refused.code, Some(ErrorCode::RateLimited));
    assert!(refused.retry_after_ms.is_some_and(|ms| ms > 0));
}
