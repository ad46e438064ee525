//! Revocation is final: a session ended by logout or expiry stops working on every path (the
//! session cache, the WebSocket upgrade, sockets already open), even when requests race the
//! logout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use shared::close_code;

use crate::helpers::{GENERAL, Next, spawn_app, spawn_app_with};

/// Logs `session` out over HTTP and expects 204.
pub(crate) async fn logout(app: &crate::helpers::TestApp, token: &str) {
    let res = app
        .http
        .post(app.url("/api/logout"))
        .bearer_auth(token)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_logout_racing_requests_that_use_the_token_still_revokes_it() {
    let app = Arc::new(spawn_app().await);
    app.register("alice").await;
    // The old server put a session read before the delete back into the cache after logout:
    // with a dozen requests in flight most trials left the token working for good.
    for trial in 0..12 {
        let session = app.login("alice").await;
        let stop = Arc::new(AtomicBool::new(false));
        let hammers: Vec<_> = (0..12)
            .map(|_| {
                let (app, token, stop) = (Arc::clone(&app), session.token.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let _ = app
                            .http
                            .get(app.url("/api/me"))
                            .bearer_auth(&token)
                            .send()
                            .await;
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(30)).await;
        logout(&app, &session.token).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        stop.store(true, Ordering::Relaxed);
        for h in hammers {
            h.await.expect("hammer task");
        }
        let me = app.get_with_token("/api/me", &session.token).await;
        assert_eq!(
            me.status(),
            StatusCode::UNAUTHORIZED,
            "trial {trial}: the token outlived its logout"
        );
        let upgrade = app
            .ws_request(&[("authorization", &format!("Bearer {}", session.token))])
            .await;
        assert!(
            upgrade.is_err(),
            "trial {trial}: a socket opened after logout"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_socket_whose_upgrade_races_the_logout_is_closed_with_4001() {
    let app = Arc::new(spawn_app().await);
    app.register("bob").await;
    // The old server registered a socket with the hub only after the upgrade, so a logout in
    // between missed it and the socket lived on.
    for trial in 0..10 {
        let session = app.login("bob").await;
        let opens: Vec<_> = (0..8)
            .map(|_| {
                let (app, token) = (Arc::clone(&app), session.token.clone());
                tokio::spawn(async move {
                    app.ws_request(&[("authorization", &format!("Bearer {token}"))])
                        .await
                        .ok()
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(2)).await;
        logout(&app, &session.token).await;
        for open in opens {
            let Some(mut ws) = open.await.expect("open task") else {
                continue; // refused at the upgrade: fine
            };
            // Whatever it saw first (perhaps `hello`), it must end with 4001, not answer.
            ws.send(&shared::ClientMsg::Ping { id: Some(1) }).await;
            loop {
                match ws.next().await {
                    Next::Closed(code) => {
                        assert_eq!(code, Some(close_code::SESSION_ENDED), "trial {trial}");
                        break;
                    }
                    Next::Frame(shared::ServerMsg::Hello { .. }) => {}
                    Next::Frame(other) => {
                        panic!("trial {trial}: a socket answered after logout: {other:?}")
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn an_idle_socket_is_closed_with_4001_within_a_heartbeat_of_its_session_expiring() {
    let app = spawn_app_with(|c| {
        c.session_ttl_secs = 2;
        c.heartbeat_secs = 1;
    })
    .await;
    let carol = app.register("carol").await;
    let (mut ws, _) = app.joined(&carol, GENERAL).await;
    ws.say(GENERAL, "before expiry").await;
    // No request needed: the socket looks at the session's end on every heartbeat.
    assert_eq!(ws.closed().await, Some(close_code::SESSION_ENDED));
}

#[tokio::test]
async fn a_frame_after_the_session_expired_is_not_served_and_closes_the_socket() {
    let app = spawn_app_with(|c| c.session_ttl_secs = 2).await;
    let dan = app.register("dan").await;
    let (mut ws, _) = app.joined(&dan, GENERAL).await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    ws.send(&shared::ClientMsg::Send {
        reply_to: None,
        room: crate::helpers::GENERAL,
        client_id: crate::helpers::cid("late"),
        text: "after expiry".into(),
        attachments: Vec::new(),
    })
    .await;
    assert_eq!(ws.closed().await, Some(close_code::SESSION_ENDED));
    let db = rusqlite::Connection::open(app.dir.path().join("chat.db")).expect("db");
    let stored: i64 = db
        .query_row(
            "SELECT count(*) FROM events WHERE client_id = 'late'",
            [],
            |r| r.get(0),
        )
        .expect("counted");
    assert_eq!(stored, 0, "nothing was stored after expiry");
}

#[tokio::test]
async fn expired_sessions_are_deleted_from_the_store() {
    let app = spawn_app_with(|c| c.session_ttl_secs = 1).await;
    let dave = app.register("dave").await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let me = app.get_with_token("/api/me", &dave.token).await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    // Deleted in the background right after the refusal.
    assert_eq!(
        sessions_left(&app).await,
        0,
        "the expired session row is gone"
    );
}

/// The session rows left once they are all gone, or after 2.5 s of waiting for that.
async fn sessions_left(app: &crate::helpers::TestApp) -> i64 {
    let mut left = -1;
    for _ in 0..50 {
        left = rusqlite_count(&app.dir.path().join("chat.db"));
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    left
}

fn rusqlite_count(path: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("db opens");
    conn.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .expect("counted")
}

#[tokio::test]
async fn a_restart_deletes_sessions_that_expired_while_it_was_down() {
    let app = spawn_app_with(|c| c.session_ttl_secs = 1).await;
    app.register("erin").await;
    app.login("erin").await;
    let dir = app.stop().await;
    assert_eq!(rusqlite_count(&dir.path().join("chat.db")), 2);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let app = crate::helpers::spawn_app_in(dir, |_| {}).await;
    assert_eq!(
        sessions_left(&app).await,
        0,
        "the sweep at start deleted them"
    );
}
