//! Several nodes on one PostgreSQL database with a Redis bus between them (`--redis`): news of
//! one node reaches the people of the others, live, and what the bus loses the store repairs.
//! Each test starts a throwaway PostgreSQL and a throwaway Redis of its own on loopback.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backend::store::postgres::throwaway::Throwaway;

use reqwest::StatusCode;
use shared::{ServerMsg, close_code};
use tokio::net::TcpStream;
use tokio::process::Child;

use crate::chaos::ChaosProxy;
use crate::delivery::{Shown, StoredRooms, make_clients, verify_with};
use crate::helpers::{GENERAL, TestApp, free_addr, spawn_app_on, spawn_app_on_postgres};

/// A throwaway Redis: no persistence, loopback, a free port; killed when dropped.
pub struct Redis {
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Option<tokio::process::Child>,
}

impl Redis {
    /// Starts a server and waits until it answers. Fails (never skips) without `redis-server`.
    pub async fn start() -> Self {
        let mut redis = Self {
            addr: free_addr(),
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        redis.resume().await;
        redis
    }

    /// The URL for `--redis`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Kills the server (an outage).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the server again on the same port.
    pub async fn resume(&mut self) {
        let child = tokio::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.addr.port().to_string())
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): scripts/setup.sh installs it")
            });
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(self.addr).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis listens in time"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Two nodes on one throwaway PostgreSQL (one database, one files folder), with a bus.
async fn two_nodes(redis: &Redis) -> (TestApp, TestApp) {
    let url = redis.url();
    let a = spawn_app_on_postgres_with_bus(&url).await;
    let b = spawn_app_on(
        Arc::clone(&a.dir),
        a.database.clone(),
        a.postgres.clone(),
        |c| c.redis = Some(url),
    )
    .await;
    (a, b)
}

async fn spawn_app_on_postgres_with_bus(url: &str) -> TestApp {
    // The first node migrates the database; then it runs again with the bus.
    let first = spawn_app_on_postgres().await;
    let (dir, database, postgres) = (
        Arc::clone(&first.dir),
        first.database.clone(),
        first.postgres.clone(),
    );
    first.stop().await;
    let url = url.to_owned();
    spawn_app_on(dir, database, postgres, |c| c.redis = Some(url)).await
}

/// Waits until `/readyz` of `app` says `want` (bounded).
async fn ready_says(app: &TestApp, want: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let res = app
            .http
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("readyz");
        let status = res.status();
        let body = res.text().await.expect("body");
        if status == StatusCode::OK && body.trim() == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "readyz never said {want:?} (last: {status} {body:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_message_on_one_node_reaches_the_other_live_and_so_does_a_logout() {
    let redis = Redis::start().await;
    let (a, b) = two_nodes(&redis).await;
    ready_says(&a, "ready").await;
    ready_says(&b, "ready").await;
    let alice = a.register("alice").await;
    let bob = b.register("bob").await;
    let (mut on_b, _) = b.joined(&bob, GENERAL).await;
    let (mut on_a, _) = a.joined(&alice, GENERAL).await;

    // Bob, on the other node, sees Alice come online, then her messages in order, at once.
    let presence = tokio::time::timeout(
        Duration::from_secs(10),
        on_b.recv_until(|m| matches!(m, ServerMsg::Presence { online: true, .. })),
    )
    .await
    .expect("presence crosses the bus");
    let ServerMsg::Presence { user, .. } = presence else {
        unreachable!()
    };
    assert_eq!(user.as_str(), "alice");
    for i in 1..=20 {
        a_says(&mut on_a, i).await;
    }
    for i in 1..=20 {
        let m = tokio::time::timeout(Duration::from_millis(900), on_b.next_message())
            .await
            .expect("live, not from the once-a-second store poll");
        assert_eq!((m.seq, m.text.as_str()), (i, format!("m{i}").as_str()));
    }
    // And his reach Alice the other way.
    let seq = on_b.say(GENERAL, "hello from b").await;
    // (Alice's socket may still hold the echoes of her own messages.)
    let m = loop {
        let m = on_a.next_message().await;
        if m.seq > 20 {
            break m;
        }
    };
    assert_eq!((m.seq, m.text.as_str()), (seq, "hello from b"));

    // Bob logs out on node A: his socket on node B closes, and his token is refused there.
    crate::sessions::logout(&a, &bob.token).await;
    let code = tokio::time::timeout(Duration::from_secs(5), on_b.closed())
        .await
        .expect("closed across the bus");
    assert_eq!(code, Some(close_code::SESSION_ENDED));
    let (status, _) = b.get_as(&bob, "/api/rooms").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Alice's node goes away: Bob... is gone, so Carol on B sees Alice go offline in bounded time.
    let carol = b.register("carol").await;
    let (mut on_b, _) = b.joined(&carol, GENERAL).await;
    drop(on_a);
    a.stop().await;
    tokio::time::timeout(
        Duration::from_secs(20),
        on_b.recv_until(|m| {
            matches!(m, ServerMsg::Presence { user, online: false, .. } if user.as_str() == "alice")
        }),
    )
    .await
    .expect("offline in bounded time");
}

async fn a_says(ws: &mut crate::helpers::Ws, i: u64) {
    assert_eq!(ws.say(GENERAL, &format!("m{i}")).await, i);
}

#[tokio::test]
async fn without_redis_the_nodes_serve_their_own_and_repair_the_others_from_the_store() {
    let mut redis = Redis::start().await;
    let (a, b) = two_nodes(&redis).await;
    ready_says(&a, "ready").await;
    let alice = a.register("alice").await;
    let bob = b.register("bob").await;
    let (mut on_a, _) = a.joined(&alice, GENERAL).await;
    let (mut on_b, _) = b.joined(&bob, GENERAL).await;
    a_says(&mut on_a, 1).await;
    assert_eq!(on_b.next_message().await.seq, 1);

    redis.stop().await;
    ready_says(&a, "ready, degraded: bus down").await;
    ready_says(&b, "ready, degraded: bus down").await;
    for i in 2..=6 {
        a_says(&mut on_a, i).await;
    }
    // Bob gets every one, in order, within a few seconds: from the store.
    for i in 2..=6 {
        let m = tokio::time::timeout(Duration::from_secs(5), on_b.next_message())
            .await
            .expect("repaired from the store");
        assert_eq!(m.seq, i);
    }

    redis.resume().await;
    ready_says(&a, "ready").await;
    ready_says(&b, "ready").await;
    a_says(&mut on_a, 7).await;
    let m = tokio::time::timeout(Duration::from_millis(900), on_b.next_message())
        .await
        .expect("live again");
    assert_eq!(m.seq, 7);
}

/// A throwaway HAProxy in front of `nodes`, health-checking `/readyz`, passing WebSockets
/// through (the committed `deploy/haproxy.cfg`, on loopback and with quick checks).
pub struct Haproxy {
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl Haproxy {
    pub async fn start(nodes: &[SocketAddr]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = free_addr();
        let servers: String = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| format!("    server node{i} {n} check\n"))
            .collect();
        let config = format!(
            "global\n    maxconn 4000\n\
             defaults\n    mode http\n    timeout connect 2s\n    timeout client 60s\n    \
             timeout server 60s\n    timeout tunnel 1h\n    option http-no-delay\n    timeout http-request 10s\n    \
             retries 3\n    option redispatch\n\
             frontend chat\n    bind {addr}\n    default_backend nodes\n\
             backend nodes\n    balance roundrobin\n    option httpchk GET /readyz\n    \
             http-check expect status 200\n    default-server inter 300ms fall 2 rise 1\n{servers}"
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).expect("config written");
        let bin = if std::path::Path::new("/usr/sbin/haproxy").exists() {
            "/usr/sbin/haproxy"
        } else {
            "haproxy"
        };
        let child = tokio::process::Command::new(bin)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start haproxy ({e}): scripts/setup.sh installs it"));
        let proxy = Self {
            addr,
            _dir: dir,
            _child: child,
        };
        // It routes only once its first health checks found a node up.
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let up = http
                .get(format!("http://{addr}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK);
            if up {
                return proxy;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "haproxy routes in time"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A node of the cluster: the built binary on the shared database, with the bus.
async fn node(addr: SocketAddr, database: &str, redis: &str, dir: &std::path::Path) -> Child {
    let files = dir.join("files");
    let extra = [
        "--redis",
        redis,
        "--files-dir",
        files.to_str().expect("utf-8 path"),
        "--drain-secs",
        "2",
        // Every client comes from HAProxy's address, sending as fast as it can.
        "--auth-per-minute",
        "0",
        "--sends-per-second",
        "0",
        "--requests-per-second",
        "0",
        "--max-sockets-per-address",
        "0",
        "--max-connections-per-address",
        "0",
    ];
    crate::helpers::start_binary(addr, std::path::Path::new(database), dir, &extra).await
}

/// What PostgreSQL holds of each room (see `delivery::verify_with`).
async fn stored_in_postgres(url: &str, rooms: &[String]) -> StoredRooms {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let mut out = StoredRooms::new();
    for room in rooms {
        let mut stored: BTreeMap<u64, Shown> = BTreeMap::new();
        let rows = sqlx::query(
            "SELECT e.seq, e.body, e.deleted_at IS NOT NULL FROM events e
             JOIN rooms r ON r.id = e.room_id WHERE r.name = $1 AND e.kind = 'message'",
        )
        .bind(room)
        .fetch_all(&mut conn)
        .await
        .expect("messages");
        for r in rows {
            let seq: i64 = r.get(0);
            stored.insert(
                u64::try_from(seq).expect("seq"),
                Shown {
                    text: r.get(1),
                    deleted: r.get(2),
                    ..Shown::default()
                },
            );
        }
        let rows = sqlx::query(
            "SELECT x.target, x.emoji, u.username FROM reactions x
             JOIN rooms r ON r.id = x.room_id JOIN users u ON u.id = x.user_id
             WHERE r.name = $1",
        )
        .bind(room)
        .fetch_all(&mut conn)
        .await
        .expect("reactions");
        for r in rows {
            let target: i64 = r.get(0);
            if let Some(m) = stored.get_mut(&u64::try_from(target).expect("seq")) {
                m.reactions.insert((r.get(1), r.get(2)));
            }
        }
        let seqs: Vec<i64> = sqlx::query_scalar(
            "SELECT e.seq FROM events e JOIN rooms r ON r.id = e.room_id
             WHERE r.name = $1 ORDER BY e.seq",
        )
        .bind(room)
        .fetch_all(&mut conn)
        .await
        .expect("seqs");
        out.insert(room.clone(), (stored, seqs));
    }
    out
}

/// Waits until the clients acknowledged `share` of `total` writes.
async fn at_progress(progress: &AtomicU64, total: u64, share: f64, deadline: tokio::time::Instant) {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let goal = (total as f64 * share) as u64;
    while progress.load(Ordering::Relaxed) < goal {
        assert!(
            tokio::time::Instant::now() < deadline,
            "clients make progress"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The whole cluster: three nodes, PostgreSQL, Redis and HAProxy, with 60 clients in three
/// rooms sending messages, edits, reactions and deletions through a proxy that cuts their
/// connections, while Redis is stopped for a while, one node is killed with SIGKILL, another
/// drained with SIGTERM, and PostgreSQL restarted. Every client ends with every event of its
/// room once, in order, as PostgreSQL holds them, and every acknowledged write is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_loses_nothing_through_a_killed_node_a_drained_node_and_outages() {
    let pg = Arc::new(Throwaway::start().unwrap_or_else(|e| panic!("PostgreSQL: {e}")));
    let database = pg.create_database().await.expect("a database");
    let mut redis = Redis::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let addrs: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let mut nodes = Vec::new();
    for addr in &addrs {
        nodes.push(Some(node(*addr, &database, &redis.url(), dir.path()).await));
    }
    let haproxy = Haproxy::start(&addrs).await;
    let proxy = ChaosProxy::start(haproxy.addr, 0xc1a5, 5_000, 80_000).await;

    let http = reqwest::Client::new();
    let rooms: Vec<String> = (0..3).map(|i| format!("cluster{i}")).collect();
    let (count, per_client) = (60, 40);
    let clients = make_clients(
        &format!("http://{}", haproxy.addr),
        &http,
        count,
        &rooms,
        per_client,
    )
    .await;
    let progress = Arc::clone(&clients[0].progress);
    let writes = clients[0].queue.len();
    let total = (count * writes) as u64;
    let started = std::time::Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    let target = (count / rooms.len() * writes) as u64;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| tokio::spawn(c.run(proxy.addr, target, deadline)))
        .collect();

    // Redis goes away for three seconds: the nodes serve their own people and read the
    // others' events from the store.
    at_progress(&progress, total, 0.15, deadline).await;
    redis.stop().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.resume().await;

    // A node dies without a word.
    at_progress(&progress, total, 0.35, deadline).await;
    let killed_at = std::time::Instant::now();
    if let Some(mut n) = nodes[0].take() {
        n.start_kill().expect("SIGKILL sent");
        n.wait().await.expect("reaped");
    }

    // Another is drained: readiness false, then its sockets close with 1001, then it exits.
    at_progress(&progress, total, 0.55, deadline).await;
    if let Some(mut n) = nodes[1].take() {
        let pid = n.id().expect("running").to_string();
        let sent = tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("kill runs");
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(20), n.wait())
            .await
            .expect("exits after draining")
            .expect("reaped");
        assert!(status.success(), "a drained node exits cleanly: {status}");
    }
    // The killed node comes back.
    nodes[0] = Some(node(addrs[0], &database, &redis.url(), dir.path()).await);

    // PostgreSQL restarts: writes are refused as retryable meanwhile, and resent.
    at_progress(&progress, total, 0.75, deadline).await;
    let server = Arc::clone(&pg);
    tokio::task::spawn_blocking(move || {
        server.halt().expect("halted");
        std::thread::sleep(Duration::from_secs(2));
        server.resume().expect("resumed");
    })
    .await
    .expect("restarted");

    let mut done = Vec::new();
    for t in tasks {
        done.push(t.await.expect("client task"));
    }
    let cuts = proxy.cuts.load(Ordering::Relaxed);
    let reconnects: u32 = done.iter().map(|c| c.connections.saturating_sub(1)).sum();
    let longest = done
        .iter()
        .map(|c| c.longest_outage)
        .max()
        .unwrap_or_default();
    eprintln!(
        "cluster: {} writes by {count} clients in {:.1} s; {cuts} connections cut by the proxy, \
         {reconnects} reconnects; the longest a client was without a connection: {:.2} s \
         (the SIGKILL was {:.1} s in)",
        total,
        started.elapsed().as_secs_f64(),
        longest.as_secs_f64(),
        (killed_at - started).as_secs_f64(),
    );
    let stored = stored_in_postgres(&database, &rooms).await;
    verify_with(&done, &rooms, writes, &stored);
    assert!(
        longest < Duration::from_secs(30),
        "clients are back within a bounded time ({longest:?})"
    );
    drop(nodes);
}

#[tokio::test]
async fn a_mute_and_a_kick_on_one_node_hold_on_the_other_at_once() {
    use crate::moderation::{code, try_send};
    use serde_json::json;
    use shared::ErrorCode;

    let redis = Redis::start().await;
    let (a, b) = two_nodes(&redis).await;
    ready_says(&a, "ready").await;
    ready_says(&b, "ready").await;
    let alice = a.register("alice").await;
    let bob = b.register("bob").await;
    let room = a.create_room_of(&alice, "lobby", "public").await;
    let (mut on_b, _) = b.joined(&bob, room).await;
    // Bob posts on node B: B now holds a snapshot of his membership.
    assert!(matches!(
        try_send(&mut on_b, room, "b1", "hello").await,
        ServerMsg::Ack { .. }
    ));

    // Alice mutes him on node A: he hears of it on B, and B refuses his next send.
    let (status, _) = a
        .post_as(
            &alice,
            &format!("/api/rooms/{room}/mute"),
            json!({"user": "bob", "seconds": 600}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    tokio::time::timeout(
        Duration::from_secs(5),
        on_b.recv_until(|m| matches!(m, ServerMsg::Muted { .. })),
    )
    .await
    .expect("the mute crosses the bus");
    assert_eq!(
        code(&try_send(&mut on_b, room, "b2", "still here?").await),
        Some(ErrorCode::Muted)
    );

    // And kicks him on node A: his socket on B leaves the room.
    let (status, _) = a
        .post_as(
            &alice,
            &format!("/api/rooms/{room}/kick"),
            json!({"user": "bob"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    tokio::time::timeout(
        Duration::from_secs(5),
        on_b.recv_until(|m| matches!(m, ServerMsg::Removed { .. })),
    )
    .await
    .expect("the kick crosses the bus");
    assert_eq!(
        code(&try_send(&mut on_b, room, "b3", "and now?").await),
        Some(ErrorCode::NotJoined)
    );
}

#[tokio::test]
async fn a_logout_while_redis_is_down_still_closes_the_sessions_sockets_on_the_other_node() {
    let mut redis = Redis::start().await;
    let (a, b) = two_nodes(&redis).await;
    ready_says(&a, "ready").await;
    let bob = b.register("bob").await;
    let (mut on_b, _) = b.joined(&bob, GENERAL).await;

    redis.stop().await;
    ready_says(&a, "ready, degraded: bus down").await;
    ready_says(&b, "ready, degraded: bus down").await;
    crate::sessions::logout(&a, &bob.token).await;
    // No note can reach node B: it finds out from the store (it checks every 10 s while its
    // bus is down), closes the socket, and refuses the token.
    let code = tokio::time::timeout(Duration::from_secs(20), on_b.closed())
        .await
        .expect("closed without the bus");
    assert_eq!(code, Some(close_code::SESSION_ENDED));
    let (status, _) = b.get_as(&bob, "/api/rooms").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_kick_while_redis_is_down_still_stops_the_rooms_events_on_the_other_node() {
    use serde_json::json;

    let mut redis = Redis::start().await;
    let (a, b) = two_nodes(&redis).await;
    ready_says(&a, "ready").await;
    let alice = a.register("alice").await;
    let bob = b.register("bob").await;
    let carol = b.register("carol").await;
    let room = a.create_room_of(&alice, "lobby", "public").await;
    let (mut bob_on_b, _) = b.joined(&bob, room).await;
    let (mut carol_on_b, _) = b.joined(&carol, GENERAL).await;
    let (mut alice_on_a, _) = a.joined(&alice, room).await;

    redis.stop().await;
    ready_says(&b, "ready, degraded: bus down").await;
    let (status, _) = a
        .post_as(
            &alice,
            &format!("/api/rooms/{room}/kick"),
            json!({"user": "bob"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Node B hears nothing of it, but finds out from the store within 10 s: Bob's socket
    // leaves the room, and what Alice says there afterwards does not reach him.
    tokio::time::timeout(
        Duration::from_secs(20),
        bob_on_b.recv_until(|m| matches!(m, ServerMsg::Removed { .. })),
    )
    .await
    .expect("removed without the bus");
    let after = alice_on_a.say(room, "bob is gone").await;
    // Carol, still a member of #general on node B, is left alone by the same check, and
    // receives what is said there.
    let said = a.register("dave").await;
    let (mut dave_on_a, _) = a.joined(&said, GENERAL).await;
    let seq = dave_on_a.say(GENERAL, "still here, carol?").await;
    let m = loop {
        let m = tokio::time::timeout(Duration::from_secs(10), carol_on_b.next_message())
            .await
            .expect("carol still receives #general");
        if m.seq == seq {
            break m;
        }
    };
    assert_eq!(m.text, "still here, carol?");
    // Give node B's poll time to deliver the room's new message, had Bob still been in it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    loop {
        match tokio::time::timeout(Duration::from_millis(200), bob_on_b.recv()).await {
            Ok(ServerMsg::Message(m)) => {
                assert!(m.seq != after, "a kicked person got the room's message");
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
}
