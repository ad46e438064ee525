//! Every limit has a test: rate limits (with the time to wait), socket and connection caps,
//! header and idle timeouts, quotas, paging, bounded catch-up, cross-site writes, and the
//! security headers.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::StatusCode;
use shared::{ApiError, ClientMsg, ErrorCode, RoomInfo, ServerMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{GENERAL, TestApp, cid, refused_status, spawn_app, spawn_app_with};

/// Asserts a 429 or 503 that says when to come back, in the header and the body.
async fn assert_retry_later(res: reqwest::Response, status: StatusCode) {
    assert_eq!(res.status(), status);
    let header: u64 = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header in seconds");
    assert!(header >= 1);
    let body: ApiError = res.json().await.expect("error body");
    let ms = body.retry_after_ms.expect("retry_after_ms in the body");
    assert!(ms > 0 && ms <= header * 1000, "{ms} ms vs {header} s");
}

async fn login_as(app: &TestApp, http: &reqwest::Client, user: &str) -> reqwest::Response {
    http.post(app.url("/api/login"))
        .json(&serde_json::json!({"username": user, "password": "wrong password"}))
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn logins_from_one_address_are_rate_limited_with_a_time_to_wait() {
    let app = spawn_app_with(|c| c.auth_per_minute = 4).await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        statuses.push(
            login_as(&app, &app.http, &format!("user{i}"))
                .await
                .status(),
        );
    }
    // A burst of half a minute's allowance passes (and fails on the password).
    assert_eq!(&statuses[..2], &[StatusCode::UNAUTHORIZED; 2]);
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let res = login_as(&app, &app.http, "someone").await;
    assert_retry_later(res, StatusCode::TOO_MANY_REQUESTS).await;
    // Registration shares the per-address allowance, so it cannot list accounts quickly.
    let res = app
        .post_json(
            "/api/register",
            &serde_json::json!({"username": "newbie", "password": "correct horse"}),
        )
        .await;
    assert_retry_later(res, StatusCode::TOO_MANY_REQUESTS).await;
}

#[tokio::test]
async fn one_username_cannot_be_guessed_from_many_addresses() {
    let app = spawn_app_with(|c| c.auth_per_minute = 4).await;
    let mut limited = false;
    // Each attempt from its own loopback address: the per-address limit never trips.
    for i in 2..40u8 {
        let http = reqwest::Client::builder()
            .local_address(IpAddr::from([127, 0, 0, i]))
            .build()
            .expect("client");
        let res = login_as(&app, &http, "victim").await;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_retry_later(res, StatusCode::TOO_MANY_REQUESTS).await;
            limited = true;
            break;
        }
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    assert!(
        limited,
        "ten guesses at one name from ten addresses were all let through"
    );
}

#[tokio::test]
async fn sends_over_the_rate_are_refused_with_a_wait_and_the_resend_is_stored_once() {
    let app = spawn_app_with(|c| c.sends_per_second = 2).await;
    let alice = app.register("alice").await;
    let (mut ws, _) = app.joined(&alice, GENERAL).await;
    // Five seconds' worth at once, and one more, without waiting for any ack.
    for i in 0..10 {
        ws.send(&ClientMsg::Send {
            reply_to: None,
            room: GENERAL,
            client_id: cid(&format!("burst{i}")),
            text: format!("burst {i}"),
            attachments: Vec::new(),
        })
        .await;
    }
    ws.send(&ClientMsg::Send {
        reply_to: None,
        room: GENERAL,
        client_id: cid("over"),
        text: "one too many".into(),
        attachments: Vec::new(),
    })
    .await;
    let wait = match ws
        .recv_until(|m| match m {
            ServerMsg::Error { .. } => true,
            ServerMsg::Ack { client_id, .. } => client_id.as_str() == "over",
            _ => false,
        })
        .await
    {
        ServerMsg::Error {
            code: ErrorCode::RateLimited,
            client_id,
            retry_after_ms: Some(ms),
            ..
        } => {
            assert_eq!(client_id, Some(cid("over")));
            ms
        }
        other => panic!("expected rate_limited, got {other:?}"),
    };
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let (_, seq) = ws.say_with_id(GENERAL, "over", "one too many").await;
    assert_eq!(seq, 11, "stored after the wait, once");
}

#[tokio::test]
async fn joins_and_history_requests_are_rate_limited_per_user() {
    let app = spawn_app_with(|c| c.requests_per_second = 1).await;
    let bob = app.register("bob").await;
    let mut ws = app.ws(&bob).await;
    let mut limited = None;
    for _ in 0..10 {
        ws.send(&ClientMsg::History {
            room: GENERAL,
            before: 10,
            limit: None,
        })
        .await;
        if let ServerMsg::Error {
            code,
            retry_after_ms,
            ..
        } = ws.recv().await
            && code == ErrorCode::RateLimited
        {
            limited = retry_after_ms;
            break;
        }
    }
    assert!(
        limited.is_some_and(|ms| ms > 0),
        "a burst of 10 was let through"
    );
}

#[tokio::test]
async fn a_user_cannot_open_more_sockets_than_the_cap() {
    let app = spawn_app_with(|c| c.max_sockets_per_user = 3).await;
    let carol = app.register("carol").await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(app.ws(&carol).await);
    }
    let bearer = format!("Bearer {}", carol.token);
    assert_eq!(
        refused_status(app.ws_request(&[("authorization", &bearer)]).await),
        429
    );
    // Closing one gives its place back.
    let mut first = open.remove(0);
    first.stream.close(None).await.expect("closed");
    drop(first);
    let mut reopened = false;
    for _ in 0..50 {
        if app.ws_request(&[("authorization", &bearer)]).await.is_ok() {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reopened, "the closed socket's place came back");
}

#[tokio::test]
async fn one_address_cannot_open_more_sockets_than_the_cap() {
    let app = spawn_app_with(|c| c.max_sockets_per_address = 2).await;
    let a = app.register("dora").await;
    let b = app.register("emil").await;
    let _one = app.ws(&a).await;
    let _two = app.ws(&b).await;
    let bearer = format!("Bearer {}", a.token);
    assert_eq!(
        refused_status(app.ws_request(&[("authorization", &bearer)]).await),
        429
    );
}

/// Opens one more TCP connection, which the server must answer with a bare 503 and close.
async fn refused_connection(app: &TestApp) -> String {
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(app.addr)
        .await
        .expect("accepted, then refused");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), extra.read_to_string(&mut answer))
        .await
        .expect("answered in time")
        .expect("read");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    answer
}

#[tokio::test]
async fn connections_past_the_global_cap_get_a_clean_503() {
    let app = spawn_app_with(|c| c.max_connections = Some(3)).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(app.addr).await.expect("connects"));
    }
    let answer = refused_connection(&app).await;
    assert!(answer.contains("Retry-After"), "{answer}");
    drop(held);
    // The places come back once those connections close.
    let mut served = false;
    for _ in 0..50 {
        if app
            .http
            .get(app.url("/api/me"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 401)
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served);
}

#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let app = spawn_app_with(|c| c.max_connections_per_address = 2).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(TcpStream::connect(app.addr).await.expect("connects"));
    }
    refused_connection(&app).await;
    // Another address is still served.
    let other = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, 2]))
        .build()
        .expect("client");
    let res = other.get(app.url("/api/me")).send().await.expect("served");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// Reads until the server closes the connection; returns what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut got))
        .await
        .expect("the server closed the connection")
        .ok();
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn half_sent_headers_and_idle_connections_are_closed() {
    let app = spawn_app_with(|c| c.http_timeout_secs = 1).await;
    // Headers that never end.
    let mut slow = TcpStream::connect(app.addr).await.expect("connects");
    slow.write_all(b"GET /api/me HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("written");
    read_until_closed(&mut slow).await;
    // A kept-alive connection that asks nothing more after its first request.
    let mut idle = TcpStream::connect(app.addr).await.expect("connects");
    idle.write_all(b"GET /api/me HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("written");
    let answer = read_until_closed(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

#[tokio::test]
async fn a_user_can_create_only_so_many_rooms() {
    let app = spawn_app_with(|c| c.max_rooms_per_user = 2).await;
    let fay = app.register("fay").await;
    let create = |name: &str| {
        app.http
            .post(app.url("/api/rooms"))
            .bearer_auth(&fay.token)
            .json(&serde_json::json!({ "name": name }))
            .send()
    };
    assert_eq!(
        create("one").await.expect("sent").status(),
        StatusCode::CREATED
    );
    assert_eq!(
        create("two").await.expect("sent").status(),
        StatusCode::CREATED
    );
    let res = create("three").await.expect("sent");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: ApiError = res.json().await.expect("body");
    assert_eq!(body.error, "rate_limited");
    assert_eq!(body.retry_after_ms, None, "waiting does not refill a quota");
}

#[tokio::test]
async fn the_room_list_comes_in_pages_linked_by_id() {
    let app = spawn_app().await;
    let gus = app.register("gus").await;
    for name in ["aa", "bb", "cc", "dd"] {
        let res = app
            .http
            .post(app.url("/api/rooms"))
            .bearer_auth(&gus.token)
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let mut names = Vec::new();
    let mut url = app.url("/api/rooms?limit=2");
    let mut pages = 0;
    loop {
        let res = app.get_with_token_url(&url, &gus.token).await;
        assert_eq!(res.status(), StatusCode::OK);
        let next = res
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .map(|l| {
                let inner = l
                    .split('>')
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches('<');
                app.url(inner)
            });
        let page: Vec<RoomInfo> = res.json().await.expect("rooms");
        assert!(page.len() <= 2);
        names.extend(page.into_iter().map(|r| r.name.to_string()));
        pages += 1;
        match next {
            Some(next) => url = next,
            None => break,
        }
    }
    assert_eq!(names, ["general", "aa", "bb", "cc", "dd"], "in id order");
    assert_eq!(pages, 3);
    let res = app
        .get_with_token("/api/rooms?after=No%20Such", &gus.token)
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_catch_up_from_far_behind_or_ahead_is_answered_with_the_newest_page() {
    let app = spawn_app().await;
    let hal = app.register("hal").await;
    let (mut ws, _) = app.joined(&hal, GENERAL).await;
    let total = shared::CATCH_UP_MAX + 20;
    for i in 0..total {
        ws.send(&ClientMsg::Send {
            reply_to: None,
            room: GENERAL,
            client_id: cid(&format!("m{i}")),
            text: format!("message {i}"),
            attachments: Vec::new(),
        })
        .await;
    }
    ws.recv_until(|m| matches!(m, ServerMsg::Ack { seq, .. } if *seq == total))
        .await;

    for since in [0, total + 50] {
        let mut other = app.ws(&hal).await;
        other
            .send(&ClientMsg::Join {
                room: GENERAL,
                since: Some(since),
            })
            .await;
        match other.recv().await {
            ServerMsg::Joined { last_seq, .. } => assert_eq!(last_seq, total),
            m => panic!("expected joined, got {m:?}"),
        }
        match other.recv().await {
            ServerMsg::History {
                messages, has_more, ..
            } => {
                assert_eq!(messages.len(), shared::HISTORY_PAGE as usize);
                assert_eq!(messages.last().map(|m| m.seq), Some(total));
                assert!(has_more);
            }
            m => panic!("since {since}: expected the newest page, got {m:?}"),
        }
    }
    // Within the bound, the catch-up is exact.
    let mut near = app.ws(&hal).await;
    near.send(&ClientMsg::Join {
        room: GENERAL,
        since: Some(total - 3),
    })
    .await;
    assert!(matches!(near.recv().await, ServerMsg::Joined { .. }));
    for seq in total - 2..=total {
        assert_eq!(near.next_message().await.seq, seq);
    }
}

#[tokio::test]
async fn a_cross_site_logout_with_the_cookie_is_refused() {
    let app = spawn_app().await;
    let ivy = app.register("ivy").await;
    let cookie = format!("chat_session={}", ivy.token);
    let logout = |origin: Option<&str>| {
        let mut req = app
            .http
            .post(app.url("/api/logout"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("a=b");
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        req.send()
    };
    assert_eq!(
        logout(Some("https://evil.example"))
            .await
            .expect("sent")
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        logout(None).await.expect("sent").status(),
        StatusCode::FORBIDDEN
    );
    let me = app.get_with_token("/api/me", &ivy.token).await;
    assert_eq!(
        me.status(),
        StatusCode::OK,
        "the forged logouts did nothing"
    );
    assert_eq!(
        logout(Some(&app.origin())).await.expect("sent").status(),
        StatusCode::NO_CONTENT
    );
    let me = app.get_with_token("/api/me", &ivy.token).await;
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_app_and_the_api_carry_security_headers() {
    let app = spawn_app().await;
    let dist = app.dir.path().join("dist");
    std::fs::create_dir_all(&dist).expect("dist");
    std::fs::write(
        dist.join("index.html"),
        "<html><head><script type=\"module\">boot()</script></head></html>",
    )
    .expect("index");
    for path in ["/", "/api/me"] {
        let res = app.http.get(app.url(path)).send().await.expect("sent");
        let h = res.headers();
        let csp = h
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{path}: no CSP"));
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("'wasm-unsafe-eval'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(
            csp.contains("'sha256-"),
            "{path}: the inline loader is allowed by hash: {csp}"
        );
        assert_eq!(h.get("x-content-type-options").expect("nosniff"), "nosniff");
        assert_eq!(h.get("x-frame-options").expect("xfo"), "DENY");
        assert_eq!(h.get("referrer-policy").expect("referrer"), "no-referrer");
    }
}

#[tokio::test]
async fn messages_of_only_invisible_characters_are_refused_as_blank() {
    let app = spawn_app().await;
    let jo = app.register("joe").await;
    let (mut ws, _) = app.joined(&jo, GENERAL).await;
    for (i, text) in ["\u{0}", "\u{200B}\u{200B}", "\u{2800}", "\u{FEFF} \u{3164}"]
        .into_iter()
        .enumerate()
    {
        ws.send(&ClientMsg::Send {
            reply_to: None,
            room: GENERAL,
            client_id: cid(&format!("blank{i}")),
            text: text.into(),
            attachments: Vec::new(),
        })
        .await;
        match ws.recv().await {
            ServerMsg::Error { code, .. } => assert_eq!(code, ErrorCode::Invalid, "{text:?}"),
            other => panic!("{text:?} was not refused: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_flood_of_malformed_frames_is_rate_limited_like_requests() {
    let app = spawn_app_with(|c| c.requests_per_second = 1).await;
    let kim = app.register("kim").await;
    let mut ws = app.ws(&kim).await;
    let mut codes = Vec::new();
    for _ in 0..8 {
        ws.send_raw("{not json").await;
        if let ServerMsg::Error { code, .. } = ws.recv().await {
            codes.push(code);
        }
    }
    assert_eq!(codes[0], ErrorCode::BadFrame);
    assert!(codes.contains(&ErrorCode::RateLimited), "{codes:?}");
}

#[tokio::test]
async fn a_long_catch_up_costs_more_than_one_request() {
    let app = spawn_app_with(|c| c.requests_per_second = 2).await;
    let lee = app.register("lee").await;
    let (mut ws, _) = app.joined(&lee, GENERAL).await;
    for i in 0..950u64 {
        ws.send(&ClientMsg::Send {
            reply_to: None,
            room: GENERAL,
            client_id: cid(&format!("c{i}")),
            text: format!("message {i}"),
            attachments: Vec::new(),
        })
        .await;
    }
    ws.recv_until(|m| matches!(m, ServerMsg::Ack { seq: 950, .. }))
        .await;
    // Two tokens of the burst of ten are spent; replaying 950 messages costs 1 + 9.
    let mut other = app.ws(&lee).await;
    let join = ClientMsg::Join {
        room: GENERAL,
        since: Some(0),
    };
    other.send(&join).await;
    let wait = match other.recv().await {
        ServerMsg::Error {
            code: ErrorCode::RateLimited,
            room: Some(r),
            retry_after_ms: Some(ms),
            ..
        } => {
            assert_eq!(r, GENERAL);
            ms
        }
        m => panic!("expected the long catch-up to be refused for now, got {m:?}"),
    };
    // Once the allowance is back, the same join is served in full.
    tokio::time::sleep(Duration::from_millis(wait + 600)).await;
    other.send(&join).await;
    assert!(matches!(
        other.recv().await,
        ServerMsg::Joined { last_seq: 950, .. }
    ));
    assert_eq!(other.next_message().await.seq, 1);
}
