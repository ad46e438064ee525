//! The delivery guarantees under faults: connections cut mid-frame, a server killed with
//! SIGKILL, a consumer that stops reading. Nothing acknowledged is lost, nothing is duplicated,
//! order holds. The traffic mixes messages with edits, reactions and deletions of them, and every
//! client must end with the same state of every message as the database.
//!
//! The clients here follow docs/protocol.md's recipe: remember the last `seq` per room, rejoin
//! with `since` after any disconnect, and resend unacknowledged messages with the same
//! `client_id`. They record every violation instead of panicking, so a failure lists them all.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use shared::{ClientMsg, EventKind, MessageEvent, RoomId, ServerMsg};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::chaos::{ChaosProxy, Rng};
use crate::helpers::{GENERAL, cid, spawn_app};

/// Unacknowledged sends a client keeps in flight.
const WINDOW: usize = 8;

/// One write a test client makes: a message, or a change to its `k`-th own message.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Say(String),
    Edit(usize, String),
    React(usize, &'static str, bool),
    Delete(usize),
}

/// The writes of a client that sends `messages` messages: each message, and after some of them
/// edits, reactions (added, and some taken back) and deletions of its own earlier messages.
fn ops(name: &str, messages: usize) -> VecDeque<(String, Op)> {
    let mut out = Vec::new();
    for k in 0..messages {
        out.push(Op::Say(format!("{name} says {k}")));
        if k >= 3 {
            let t = k - 3;
            match t % 5 {
                0 => {
                    out.push(Op::Edit(t, format!("{name} said {t}, edited")));
                    out.push(Op::React(t, "👍", true));
                    if t % 10 == 0 {
                        out.push(Op::Delete(t));
                    }
                }
                2 => {
                    out.push(Op::React(t, "🎉", true));
                    out.push(Op::React(t, "🎉", false));
                }
                _ => {}
            }
        }
    }
    // Zero-padded, so that the pending map resends in the order the writes were made.
    out.into_iter()
        .enumerate()
        .map(|(i, op)| (format!("{name}-{i:05}"), op))
        .collect()
}

/// A message as a client or the database sees it in the end.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Shown {
    pub(crate) text: String,
    pub(crate) deleted: bool,
    pub(crate) reactions: std::collections::BTreeSet<(String, String)>,
}

/// Folds a room's events, in order, into the state of each message.
pub(crate) fn fold(events: &[MessageEvent]) -> BTreeMap<u64, Shown> {
    let mut state: BTreeMap<u64, Shown> = BTreeMap::new();
    for e in events {
        match e.kind {
            EventKind::Message => {
                state.insert(
                    e.seq,
                    Shown {
                        text: e.text.clone(),
                        deleted: e.deleted.is_some(),
                        ..Shown::default()
                    },
                );
            }
            kind => {
                let Some(m) = e.target.and_then(|t| state.get_mut(&t)) else {
                    continue;
                };
                let reaction = || {
                    (
                        e.emoji.clone().unwrap_or_default(),
                        e.author.as_str().to_owned(),
                    )
                };
                match kind {
                    EventKind::Edit => m.text.clone_from(&e.text),
                    EventKind::Delete => {
                        m.deleted = true;
                        m.text.clear();
                        m.reactions.clear();
                    }
                    EventKind::React => {
                        m.reactions.insert(reaction());
                    }
                    EventKind::Unreact => {
                        m.reactions.remove(&reaction());
                    }
                    _ => {}
                }
            }
        }
    }
    state
}

/// A client that survives disconnects.
#[derive(Debug, Default)]
pub(crate) struct Resilient {
    pub(crate) name: String,
    token: String,
    room: String,
    /// The id of `room`.
    room_id: u64,
    /// What it received, in order, after catch-up: must be seq 1, 2, 3, ... exactly.
    received: Vec<MessageEvent>,
    /// Sent, not yet acknowledged: client_id -> the frame (resent as is).
    pending: BTreeMap<String, ClientMsg>,
    /// Acknowledged: client_id -> seq.
    acked: HashMap<String, u64>,
    /// Not yet sent.
    pub(crate) queue: VecDeque<(String, Op)>,
    /// For each message of its own sent so far: its client id, in order.
    said: Vec<String>,
    /// Messages above a hole, held until `history` pages fill it (after a join from further
    /// behind than a catch-up replays, the server sends the newest page instead).
    held: BTreeMap<u64, MessageEvent>,
    pub(crate) violations: Vec<String>,
    pub(crate) connections: u32,
    /// The server said to try again later (a store outage): reconnect and resend.
    retry: bool,
    /// When the last connection ended (to measure the time without one).
    cut_at: Option<std::time::Instant>,
    /// The longest time between losing a connection and having a new one joined.
    pub(crate) longest_outage: Duration,
    /// Acknowledgements counted across all clients, so a test can act at a point of progress.
    pub(crate) progress: Arc<AtomicU64>,
}

impl Resilient {
    fn last_seq(&self) -> u64 {
        self.received.last().map_or(0, |m| m.seq)
    }

    fn finished(&self, target: u64) -> bool {
        self.queue.is_empty() && self.pending.is_empty() && self.last_seq() == target
    }

    /// The next write to send, if it can go now (a change waits for its message's ack).
    fn next_write(&mut self) -> Option<(String, ClientMsg)> {
        let room = RoomId(self.room_id);
        let (id, op) = self.queue.front()?;
        let target = |k: &usize| {
            self.said
                .get(*k)
                .and_then(|said| self.acked.get(said))
                .copied()
        };
        let msg = match op {
            Op::Say(text) => send_msg(room, id, text),
            Op::Edit(k, text) => ClientMsg::Edit {
                room,
                client_id: cid(id),
                target: target(k)?,
                text: text.clone(),
            },
            Op::React(k, emoji, on) => ClientMsg::React {
                room,
                client_id: cid(id),
                target: target(k)?,
                emoji: (*emoji).to_owned(),
                on: *on,
            },
            Op::Delete(k) => ClientMsg::Delete {
                room,
                client_id: cid(id),
                target: target(k)?,
            },
        };
        let (id, op) = self.queue.pop_front()?;
        if matches!(op, Op::Say(_)) {
            self.said.push(id.clone());
        }
        Some((id, msg))
    }

    /// Moves held messages that now follow on into `received`; asks for the page below the
    /// lowest held one if a hole remains.
    fn drain_held(&mut self) -> Option<ClientMsg> {
        loop {
            let next = self.last_seq() + 1;
            match self.held.remove(&next) {
                Some(m) => self.received.push(m),
                None => break,
            }
        }
        // Anything held at or below what was received is a duplicate of it.
        let last = self.last_seq();
        self.held.retain(|seq, _| *seq > last);
        self.held.keys().next().map(|&before| ClientMsg::History {
            room: RoomId(self.room_id),
            before,
            limit: None,
        })
    }

    /// Applies a frame; returns a request to send if the frame calls for one.
    fn on_frame(&mut self, msg: ServerMsg) -> Option<ClientMsg> {
        match msg {
            ServerMsg::History {
                room: r, messages, ..
            } if r == RoomId(self.room_id) => {
                let last = self.last_seq();
                for m in messages.into_iter().filter(|m| m.seq > last) {
                    self.held.insert(m.seq, m);
                }
                return self.drain_held();
            }
            ServerMsg::Message(m) if m.room == RoomId(self.room_id) => {
                let last = self.last_seq();
                if m.seq == last + 1 {
                    self.received.push(*m);
                    return self.drain_held().filter(|_| false);
                } else if m.seq > last && !self.held.is_empty() {
                    self.held.insert(m.seq, *m);
                } else if m.seq <= last {
                    self.violations.push(format!(
                        "{}: duplicate seq {} (have {last})",
                        self.name, m.seq
                    ));
                } else {
                    self.violations.push(format!(
                        "{}: gap, got seq {} after {last}",
                        self.name, m.seq
                    ));
                }
            }
            ServerMsg::Ack { client_id, seq, .. } => {
                let id = client_id.into_inner();
                self.pending.remove(&id);
                match self.acked.insert(id.clone(), seq) {
                    None => {
                        self.progress.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(before) if before != seq => {
                        self.violations
                            .push(format!("{}: {id} acked as {before} then {seq}", self.name));
                    }
                    Some(_) => {}
                }
            }
            // A retryable refusal (the store is down): the outbox resends after a reconnect.
            ServerMsg::Error {
                code: shared::ErrorCode::Internal,
                ..
            } => self.retry = true,
            ServerMsg::Error { code, message, .. } => {
                self.violations
                    .push(format!("{}: error {code:?}: {message}", self.name));
            }
            _ => {}
        }
        None
    }

    /// One connection's life: join with `since`, resend what is pending, send and read until
    /// done or cut.
    async fn session(&mut self, addr: SocketAddr, target: u64) {
        let Ok(mut request) = format!("ws://{addr}/ws").into_client_request() else {
            return;
        };
        let bearer = HeaderValue::from_str(&format!("Bearer {}", self.token)).expect("header");
        request.headers_mut().insert("authorization", bearer);
        let Ok(Ok((mut ws, _))) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(request),
        )
        .await
        else {
            return;
        };
        self.connections += 1;
        if let Some(cut) = self.cut_at.take() {
            self.longest_outage = self.longest_outage.max(cut.elapsed());
        }
        self.retry = false;
        self.held.clear();
        let join = ClientMsg::Join {
            room: RoomId(self.room_id),
            since: Some(self.last_seq()),
        };
        let mut out = vec![join];
        out.extend(self.pending.values().cloned());
        for msg in out {
            if ws.send(encode(&msg)).await.is_err() {
                return;
            }
        }
        loop {
            while self.pending.len() < WINDOW {
                let Some((id, msg)) = self.next_write() else {
                    break;
                };
                self.pending.insert(id, msg.clone());
                if ws.send(encode(&msg)).await.is_err() {
                    return;
                }
            }
            if self.finished(target) {
                let _ = ws.close(None).await;
                return;
            }
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => match serde_json::from_str(text.as_str()) {
                    Ok(msg) => {
                        if let Some(request) = self.on_frame(msg)
                            && ws.send(encode(&request)).await.is_err()
                        {
                            return;
                        }
                        if self.retry {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            return;
                        }
                    }
                    Err(e) => self
                        .violations
                        .push(format!("{}: unparsable frame: {e}", self.name)),
                },
                Ok(Some(Ok(_))) => {}
                // Cut, closed, or silent for too long: reconnect.
                _ => return,
            }
        }
    }

    /// Reconnects until everything it sends is acknowledged and it has every message up to
    /// `target`, or until `deadline`.
    pub(crate) async fn run(
        mut self,
        addr: SocketAddr,
        target: u64,
        deadline: tokio::time::Instant,
    ) -> Self {
        let mut rng = Rng::new(self.name.bytes().map(u64::from).sum::<u64>() + 7);
        while !self.finished(target) {
            if tokio::time::Instant::now() > deadline {
                self.violations.push(format!(
                    "{}: unfinished at the deadline: last seq {} of {target}, {} pending, {} unsent",
                    self.name,
                    self.last_seq(),
                    self.pending.len(),
                    self.queue.len()
                ));
                break;
            }
            self.session(addr, target).await;
            self.cut_at.get_or_insert_with(std::time::Instant::now);
            // A short, jittered pause, like a real client's backoff (kept small for the test).
            tokio::time::sleep(Duration::from_millis(rng.range(5, 50))).await;
        }
        self
    }
}

fn send_msg(room: RoomId, id: &str, text: &str) -> ClientMsg {
    ClientMsg::Send {
        reply_to: None,
        room,
        client_id: cid(id),
        text: text.to_owned(),
        attachments: Vec::new(),
    }
}

fn encode(msg: &ClientMsg) -> Message {
    Message::text(serde_json::to_string(msg).expect("encodes"))
}

/// Checks everything the clients saw against each other and against the database file.
/// `per_client` is how many writes each client made.
fn verify(clients: &[Resilient], rooms: &[String], per_client: usize, db: &Path) {
    let stored = stored_in_sqlite(db, rooms);
    verify_with(clients, rooms, per_client, &stored);
}

/// What a store holds of each room: every message's state, and every event's `seq` in order.
pub(crate) type StoredRooms = HashMap<String, (BTreeMap<u64, Shown>, Vec<i64>)>;

/// Checks everything the clients saw against each other and against what the store holds.
pub(crate) fn verify_with(
    clients: &[Resilient],
    rooms: &[String],
    per_client: usize,
    stored_rooms: &StoredRooms,
) {
    let violations: Vec<_> = clients.iter().flat_map(|c| c.violations.iter()).collect();
    assert!(
        violations.is_empty(),
        "{} violations: {violations:#?}",
        violations.len()
    );

    for room_name in rooms {
        let members: Vec<_> = clients.iter().filter(|c| &c.room == room_name).collect();
        let target = (members.len() * per_client) as u64;
        // Every acknowledged message, by seq.
        let mut acked_at: BTreeMap<u64, (String, String)> = BTreeMap::new();
        for c in &members {
            assert_eq!(
                c.acked.len(),
                per_client,
                "{} has every send acknowledged",
                c.name
            );
            for (id, seq) in &c.acked {
                if let Some(other) = acked_at.insert(*seq, (c.name.clone(), id.clone())) {
                    panic!("seq {seq} in {room_name} acknowledged twice: {other:?} and {id}");
                }
            }
        }
        assert_eq!(
            acked_at.keys().copied().collect::<Vec<_>>(),
            (1..=target).collect::<Vec<_>>()
        );
        for c in &members {
            let seqs: Vec<u64> = c.received.iter().map(|m| m.seq).collect();
            assert_eq!(
                seqs,
                (1..=target).collect::<Vec<_>>(),
                "{} got each message once, in order",
                c.name
            );
            for m in &c.received {
                let (author, id) = &acked_at[&m.seq];
                assert_eq!(m.author.as_str(), author);
                assert_eq!(m.client_id.as_ref().map(|c| c.as_str()), Some(id.as_str()));
            }
        }
    }

    // The store holds exactly the acknowledged events, seq contiguous per room, and every
    // client shows every message as the store holds it.
    for room_name in rooms {
        let (stored, seqs) = &stored_rooms[room_name];
        assert!(
            stored.values().any(|m| m.deleted) && stored.values().any(|m| !m.reactions.is_empty()),
            "the traffic of {room_name} held deletions and reactions"
        );
        for c in clients.iter().filter(|c| &c.room == room_name) {
            assert!(
                fold(&c.received) == *stored,
                "{} shows every message of {room_name} as the database holds it",
                c.name
            );
        }
        let members = clients.iter().filter(|c| &c.room == room_name).count();
        let expected: Vec<i64> = (1..=(members * per_client) as i64).collect();
        assert_eq!(*seqs, expected, "stored seqs of {room_name}");
    }
}

/// What the SQLite file holds of each room.
fn stored_in_sqlite(db: &Path, rooms: &[String]) -> StoredRooms {
    let conn = rusqlite::Connection::open(db).expect("open db");
    let mut out = StoredRooms::new();
    for room_name in rooms {
        let mut stored: BTreeMap<u64, Shown> = BTreeMap::new();
        let mut rows = conn
            .prepare(
                "SELECT e.seq, e.body, e.deleted_at IS NOT NULL FROM events e
                 JOIN rooms r ON r.id = e.room_id WHERE r.name = ?1 AND e.kind = 'message'",
            )
            .expect("prepare");
        let messages = rows
            .query_map([room_name], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?))
            })
            .expect("query");
        for row in messages {
            let (seq, text, deleted) = row.expect("row");
            stored.insert(
                u64::try_from(seq).expect("seq"),
                Shown {
                    text,
                    deleted,
                    ..Shown::default()
                },
            );
        }
        let mut rows = conn
            .prepare(
                "SELECT x.target, x.emoji, u.username FROM reactions x
                 JOIN rooms r ON r.id = x.room_id JOIN users u ON u.id = x.user_id
                 WHERE r.name = ?1",
            )
            .expect("prepare");
        let reactions = rows
            .query_map([room_name], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .expect("query");
        for row in reactions {
            let (target, emoji, user) = row.expect("row");
            if let Some(m) = stored.get_mut(&u64::try_from(target).expect("seq")) {
                m.reactions.insert((emoji, user));
            }
        }
        let seqs: Vec<i64> = conn
            .prepare(
                "SELECT e.seq FROM events e JOIN rooms r ON r.id = e.room_id
                 WHERE r.name = ?1 ORDER BY e.seq",
            )
            .expect("prepare")
            .query_map([room_name], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        out.insert(room_name.clone(), (stored, seqs));
    }
    out
}

/// Registers `name` on the server at `base` (which need not be a `TestApp`).
pub(crate) async fn register_at(
    http: &reqwest::Client,
    base: &str,
    name: &str,
) -> shared::SessionResponse {
    http.post(format!("{base}/api/register"))
        .json(&serde_json::json!({"username": name, "password": "correct horse"}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("session")
}

/// Registers `count` users spread over `rooms` (creating the rooms) and gives each `per_client`
/// messages to send, with changes to them (see [`ops`]).
pub(crate) async fn make_clients(
    base: &str,
    http: &reqwest::Client,
    count: usize,
    rooms: &[String],
    per_client: usize,
) -> Vec<Resilient> {
    let first = register_at(http, base, "owner").await;
    let mut ids = Vec::new();
    for r in rooms {
        let res = http
            .post(format!("{base}/api/rooms"))
            .bearer_auth(&first.token)
            .json(&serde_json::json!({ "name": r }))
            .send()
            .await
            .expect("create room");
        assert!(res.status().is_success());
        let info: shared::RoomInfo = res.json().await.expect("room body");
        ids.push(info.id.0);
    }
    let progress = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for i in 0..count {
        let name = format!("user{i}");
        let session = register_at(http, base, &name).await;
        clients.push(Resilient {
            queue: ops(&name, per_client),
            name,
            token: session.token,
            room: rooms
                .get(i % rooms.len().max(1))
                .cloned()
                .unwrap_or_default(),
            room_id: ids.get(i % ids.len().max(1)).copied().unwrap_or_default(),
            progress: Arc::clone(&progress),
            ..Default::default()
        });
    }
    clients
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cut_at_random_get_every_message_once_in_order() {
    let app = spawn_app().await;
    let rooms: Vec<String> = (0..5).map(|i| format!("room{i}")).collect();
    // CHAT_SOAK=N multiplies the messages (and the time allowed) for a longer soak run; see the
    // README. The default keeps the suite's run time small.
    let soak: usize = std::env::var("CHAT_SOAK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let (count, per_client) = (50, 60 * soak);
    let clients = make_clients(&app.url(""), &app.http, count, &rooms, per_client).await;
    let writes = clients[0].queue.len();
    let seed = std::env::var("CHAT_SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed);
    let proxy = ChaosProxy::start(app.addr, seed, 1_000, 40_000).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(150 * soak as u64);
    let target = (count / rooms.len() * writes) as u64;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| tokio::spawn(c.run(proxy.addr, target, deadline)))
        .collect();
    let mut done = Vec::new();
    for t in tasks {
        done.push(t.await.expect("client task"));
    }
    let cuts = proxy.cuts.load(Ordering::Relaxed);
    let reconnects: u32 = done.iter().map(|c| c.connections.saturating_sub(1)).sum();
    eprintln!(
        "{} messages and {} changes, {cuts} connections cut, {reconnects} reconnects",
        count * per_client,
        count * (writes - per_client)
    );
    assert!(cuts >= 50, "the proxy really cut connections ({cuts})");
    verify(&done, &rooms, writes, &app.dir.path().join("chat.db"));
}

/// A server process of the built binary, killable with SIGKILL.
struct Process {
    child: Child,
}

impl Process {
    async fn start(addr: SocketAddr, db: &Path, dir: &Path) -> Self {
        // Many users from one address, sending as fast as they can: no rate limits here.
        let extra = [
            "--auth-per-minute",
            "0",
            "--sends-per-second",
            "0",
            "--requests-per-second",
            "0",
        ];
        let child = crate::helpers::start_binary(addr, db, dir, &extra).await;
        Self { child }
    }

    async fn sigterm(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running").to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("kill runs");
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("exits within 10 s of SIGTERM")
            .expect("reaped")
    }

    async fn kill9(mut self) {
        self.child.start_kill().expect("SIGKILL sent");
        self.child.wait().await.expect("reaped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_with_sigkill_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    let addr: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr")
    };
    let server = Process::start(addr, &db, dir.path()).await;
    let http = reqwest::Client::new();
    let rooms: Vec<String> = (0..2).map(|i| format!("crash{i}")).collect();
    let (count, per_client) = (10, 100);
    let clients = make_clients(&format!("http://{addr}"), &http, count, &rooms, per_client).await;
    let progress = Arc::clone(&clients[0].progress);
    let writes = clients[0].queue.len();
    let total = (count * writes) as u64;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let target = (count / rooms.len() * writes) as u64;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| tokio::spawn(c.run(addr, target, deadline)))
        .collect();

    // Kill while the clients are in full flow (a third and two thirds of the way), restarting on
    // the same file each time.
    let mut server = server;
    for third in 1..=2 {
        while progress.load(Ordering::Relaxed) < total * third / 3 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "clients make progress"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        server.kill9().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        server = Process::start(addr, &db, dir.path()).await;
    }
    let mut done = Vec::new();
    for t in tasks {
        done.push(t.await.expect("client task"));
    }
    let reconnects: u32 = done.iter().map(|c| c.connections.saturating_sub(1)).sum();
    eprintln!("{reconnects} reconnects across two SIGKILLs");
    assert!(
        reconnects >= count as u32,
        "every client lost its connection at least once"
    );
    verify(&done, &rooms, writes, &db);
    drop(server);
}

#[tokio::test]
async fn a_repeated_client_id_is_stored_once_across_a_restart() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let (mut ws, _) = app.joined(&alice, GENERAL).await;
    let first = ws.say_with_id(GENERAL, "retry-me", "once").await;
    assert_eq!(ws.say_with_id(GENERAL, "retry-me", "once").await, first);
    let dir = app.stop().await;
    let app = crate::helpers::spawn_app_in(dir, |_| {}).await;
    let (mut ws, history) = app.joined(&alice, GENERAL).await;
    for _ in 0..3 {
        assert_eq!(ws.say_with_id(GENERAL, "retry-me", "once").await, first);
    }
    assert_eq!(history.len(), 1);
    assert_eq!(ws.say(GENERAL, "next").await, first.1 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_cut_off_without_slowing_the_others_and_catches_up_after() {
    let app = spawn_app().await;
    let sender = app.register("sender").await;
    let fast = app.register("fast").await;
    let slow = app.register("slow").await;

    // The slow consumer: a small receive buffer, joins, then stops reading.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let stream = socket.connect(app.addr).await.expect("connect");
    let mut request = app.ws_url().into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {}", slow.token)).expect("header"),
    );
    let (mut slow_ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("upgrade");
    slow_ws
        .send(encode(&ClientMsg::Join {
            room: GENERAL,
            since: None,
        }))
        .await
        .expect("join sent");

    let (mut fast_ws, _) = app.joined(&fast, GENERAL).await;
    let (send_ws, _) = app.joined(&sender, GENERAL).await;
    let (mut sink, mut stream) = send_ws.stream.split();

    // 4,000 messages of ~4 KB (16 MB): far more than the socket buffers (a few MB) and the
    // 1,024-frame queue (4 MB) hold.
    let total: u64 = 4000;
    let text = "x".repeat(3900);
    let writer = tokio::spawn(async move {
        for n in 0..total {
            let msg = send_msg(GENERAL, &format!("s{n}"), &text);
            sink.send(encode(&msg)).await.expect("send");
        }
        sink
    });
    let acks = tokio::spawn(async move {
        let mut acked = 0;
        while acked < total {
            match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    if t.as_str().starts_with("{\"type\":\"ack\"") {
                        acked += 1;
                    }
                }
                Ok(Some(Ok(_))) => {}
                other => panic!("sender lost its connection after {acked} acks: {other:?}"),
            }
        }
        acked
    });
    let mut fast_seqs = Vec::new();
    while fast_seqs.len() < total as usize {
        let m = fast_ws.next_message().await;
        fast_seqs.push(m.seq);
    }
    assert_eq!(
        fast_seqs,
        (1..=total).collect::<Vec<_>>(),
        "the fast reader got everything in order"
    );
    assert_eq!(acks.await.expect("acks"), total);
    let _sink = writer.await.expect("writer");

    // Now the slow one reads: what it got is a gap-free prefix, then the connection ends.
    let mut got = 0u64;
    let mut close_code = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), slow_ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                if let Ok(ServerMsg::Message(m)) = serde_json::from_str(t.as_str()) {
                    assert_eq!(m.seq, got + 1, "the slow consumer's prefix has no gap");
                    got = m.seq;
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                close_code = frame.map(|f| u16::from(f.code));
                break;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => break,
            Err(_) => panic!("the slow consumer was neither served nor disconnected"),
        }
    }
    eprintln!("slow consumer cut off after {got} of {total} messages, close code {close_code:?}");
    assert!(
        got < total,
        "the slow consumer was cut off before the end ({got})"
    );
    assert!(
        close_code.is_none() || close_code == Some(shared::close_code::LAGGING),
        "closed as lagging, or dropped when even the close frame could not be written: {close_code:?}"
    );

    // Reconnecting with `since` fills in the rest exactly once: replayed when it is at most
    // CATCH_UP_MAX behind, else the newest page and older pages asked for with `history`.
    let mut again = app.ws(&slow).await;
    again
        .send(&ClientMsg::Join {
            room: GENERAL,
            since: Some(got),
        })
        .await;
    assert!(matches!(again.recv().await, ServerMsg::Joined { .. }));
    let mut seqs: Vec<u64> = Vec::new();
    if total - got <= shared::CATCH_UP_MAX {
        for _ in got + 1..=total {
            seqs.push(again.next_message().await.seq);
        }
    } else {
        let mut before = u64::MAX;
        loop {
            let page = match again.recv().await {
                ServerMsg::History { messages, .. } => messages,
                other => panic!("expected a history page, got {other:?}"),
            };
            let first = page.first().map_or(0, |m| m.seq);
            seqs.extend(
                page.iter()
                    .rev()
                    .map(|m| m.seq)
                    .filter(|s| *s > got && *s < before),
            );
            before = first;
            if first <= got + 1 {
                break;
            }
            again
                .send(&ClientMsg::History {
                    room: GENERAL,
                    before,
                    limit: None,
                })
                .await;
        }
        seqs.reverse();
    }
    assert_eq!(seqs, (got + 1..=total).collect::<Vec<_>>());
}

#[tokio::test]
async fn sigterm_closes_every_websocket_with_1001_and_exits_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let addr: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr")
    };
    let server = Process::start(addr, &dir.path().join("chat.db"), dir.path()).await;
    let http = reqwest::Client::new();
    let mut sockets = Vec::new();
    for c in make_clients(&format!("http://{addr}"), &http, 3, &[], 0).await {
        let mut request = format!("ws://{addr}/ws")
            .into_client_request()
            .expect("request");
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {}", c.token)).expect("header"),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("upgrade");
        ws.send(encode(&ClientMsg::Join {
            room: GENERAL,
            since: None,
        }))
        .await
        .expect("join");
        sockets.push(ws);
    }
    let status = server.sigterm().await;
    assert!(status.success(), "clean exit: {status}");
    for mut ws in sockets {
        let code = loop {
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| u16::from(f.code)),
                Ok(Some(Ok(_))) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        };
        assert_eq!(code, Some(1001));
    }
}
