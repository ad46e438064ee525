//! Bad input gets a clear error and loses nothing.

use shared::{ClientMsg, ErrorCode, MAX_FRAME_BYTES, MAX_MESSAGE_CHARS, RoomId, ServerMsg};

use crate::helpers::{GENERAL, cid, refused_status, spawn_app};

fn error_code(msg: &ServerMsg) -> Option<ErrorCode> {
    match msg {
        ServerMsg::Error { code, .. } => Some(*code),
        _ => None,
    }
}

#[tokio::test]
async fn an_upgrade_without_credentials_is_401() {
    let app = spawn_app().await;
    assert_eq!(refused_status(app.ws_request(&[]).await), 401);
    let bogus = "0".repeat(64);
    let res = app
        .ws_request(&[("authorization", &format!("Bearer {bogus}"))])
        .await;
    assert_eq!(refused_status(res), 401);
    let res = app
        .ws_request(&[("authorization", "Bearer not-a-token")])
        .await;
    assert_eq!(refused_status(res), 401);
}

#[tokio::test]
async fn an_upgrade_from_a_foreign_origin_is_403_even_with_a_valid_session() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let cookie = format!("chat_session={}", alice.token);
    let port = app.addr.port();
    for origin in [
        "https://evil.example".to_owned(),
        format!("https://127.0.0.1:{port}"),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        "null".to_owned(),
    ] {
        let res = app
            .ws_request(&[("origin", &origin), ("cookie", &cookie)])
            .await;
        assert_eq!(refused_status(res), 403, "{origin}");
        let bearer = format!("Bearer {}", alice.token);
        let res = app
            .ws_request(&[("origin", &origin), ("authorization", &bearer)])
            .await;
        assert_eq!(refused_status(res), 403, "{origin} with a bearer token");
    }
}

#[tokio::test]
async fn a_browser_with_its_cookie_and_own_origin_is_accepted() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let cookie = format!("chat_session={}", alice.token);
    for origin in [
        app.origin(),
        format!("http://localhost:{}", app.addr.port()),
    ] {
        let mut ws = app
            .ws_request(&[("origin", &origin), ("cookie", &cookie)])
            .await
            .expect("accepted");
        assert!(matches!(ws.recv().await, ServerMsg::Hello { .. }));
    }
}

#[tokio::test]
async fn a_cookie_without_an_origin_is_not_enough() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let cookie = format!("chat_session={}", alice.token);
    assert_eq!(
        refused_status(app.ws_request(&[("cookie", &cookie)]).await),
        401
    );
}

#[tokio::test]
async fn malformed_and_unknown_frames_get_an_error_and_the_connection_stays_open() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let (mut ws, _) = app.joined(&alice, GENERAL).await;
    for bad in [
        "not json",
        "{\"type\":\"nuke\"}",
        "{\"room\":\"general\"}",
        "[1,2,3]",
        "{\"type\":\"send\",\"room\":\"general\",\"client_id\":\"x\"}",
        "{\"type\":\"join\",\"room\":\"Bad Name\"}",
    ] {
        ws.send_raw(bad).await;
        let reply = ws.recv().await;
        assert_eq!(
            error_code(&reply),
            Some(ErrorCode::BadFrame),
            "{bad}: {reply:?}"
        );
    }
    ws.stream
        .send(tokio_tungstenite::tungstenite::Message::binary(vec![
            1, 2, 3,
        ]))
        .await
        .expect("sent");
    assert_eq!(error_code(&ws.recv().await), Some(ErrorCode::BadFrame));
    // Still open, and nothing was stored.
    assert_eq!(ws.say(GENERAL, "still works").await, 1);
}

use futures::SinkExt;

#[tokio::test]
async fn text_over_the_limit_gets_too_long_and_nothing_is_stored() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let (mut ws, _) = app.joined(&alice, GENERAL).await;
    for (text, code) in [
        ("x".repeat(MAX_MESSAGE_CHARS + 1), ErrorCode::TooLong),
        ("   ".to_owned(), ErrorCode::Invalid),
    ] {
        ws.send(&ClientMsg::Send {
            reply_to: None,
            room: GENERAL,
            client_id: cid("big"),
            text,
            attachments: Vec::new(),
        })
        .await;
        match ws.recv().await {
            ServerMsg::Error {
                code: got,
                client_id,
                ..
            } => {
                assert_eq!(got, code);
                assert_eq!(client_id, Some(cid("big")));
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
    // Exactly at the limit is fine, and it is the first message stored.
    assert_eq!(ws.say(GENERAL, &"é".repeat(MAX_MESSAGE_CHARS)).await, 1);
}

#[tokio::test]
async fn a_frame_over_64_kib_closes_the_connection_with_1009() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let (mut ws, _) = app.joined(&alice, GENERAL).await;
    let huge = format!(
        "{{\"type\":\"send\",\"room\":\"general\",\"client_id\":\"h\",\"text\":\"{}\"}}",
        "x".repeat(MAX_FRAME_BYTES)
    );
    ws.send_raw(&huge).await;
    assert_eq!(ws.closed().await, Some(1009));

    // Nothing was stored.
    let (mut again, history) = app.joined(&alice, GENERAL).await;
    assert!(history.is_empty());
    assert_eq!(again.say(GENERAL, "next").await, 1);
}

#[tokio::test]
async fn sending_to_a_room_not_joined_or_missing_is_an_error_and_stores_nothing() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let mut ws = app.ws(&alice).await;
    for (room, code) in [
        (GENERAL, ErrorCode::NotJoined),
        (RoomId(9_999), ErrorCode::NoSuchRoom),
    ] {
        ws.send(&ClientMsg::Send {
            reply_to: None,
            room,
            client_id: cid("x1"),
            text: "hello?".into(),
            attachments: Vec::new(),
        })
        .await;
        let reply = ws.recv().await;
        assert_eq!(error_code(&reply), Some(code), "{room}: {reply:?}");
    }
    ws.send(&ClientMsg::History {
        room: GENERAL,
        before: 10,
        limit: None,
    })
    .await;
    assert_eq!(error_code(&ws.recv().await), Some(ErrorCode::NotJoined));
    ws.send(&ClientMsg::Join {
        room: RoomId(9_999),
        since: None,
    })
    .await;
    assert_eq!(error_code(&ws.recv().await), Some(ErrorCode::NoSuchRoom));

    let history = ws.join(GENERAL).await;
    assert!(history.is_empty(), "nothing was stored: {history:?}");
}
