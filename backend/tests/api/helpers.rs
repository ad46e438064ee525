//! The test harness: `spawn_app()` starts a server on a random port with a fresh database;
//! `TestApp` and `Ws` wrap the HTTP and WebSocket calls that tests make.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use backend::store::postgres::throwaway::Throwaway;
use backend::{Application, Config, Database, telemetry};
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use shared::{ClientId, ClientMsg, MessageEvent, RoomId, RoomInfo, ServerMsg, SessionResponse};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for any one frame before failing.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    /// Keeps the database folder alive for the test (and across restarts).
    pub dir: Arc<TempDir>,
    pub http: reqwest::Client,
    /// The database it runs on.
    pub database: Database,
    /// The throwaway PostgreSQL server of a test on PostgreSQL (stopped when the last app that
    /// uses it is dropped).
    pub postgres: Option<Arc<Throwaway>>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub username: String,
    pub token: String,
}

/// A server with a fresh database and default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server with a fresh database and settings adjusted by `tweak`.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    spawn_app_in(dir, tweak).await
}

/// A server on the database in `dir` (which may hold one from an earlier server).
pub async fn spawn_app_in(dir: Arc<TempDir>, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let db = Database::Sqlite(dir.path().join("chat.db"));
    spawn_app_on(dir, db, None, tweak).await
}

/// A server on a fresh database of a throwaway PostgreSQL server of its own. Fails (never
/// skips) when PostgreSQL cannot be started.
pub async fn spawn_app_on_postgres() -> TestApp {
    let server =
        Throwaway::start().unwrap_or_else(|e| panic!("cannot start a throwaway PostgreSQL: {e}"));
    let url = server.create_database().await.expect("a database");
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    spawn_app_on(dir, Database::Postgres(url), Some(Arc::new(server)), |_| {}).await
}

/// A server on `database`, with `dir` for everything else (the client, uploaded files).
pub async fn spawn_app_on(
    dir: Arc<TempDir>,
    database: Database,
    postgres: Option<Arc<Throwaway>>,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        telemetry::init("debug", backend::config::LogFormat::Text);
    }
    let mut config = Config::new("127.0.0.1:0".parse().expect("addr"), database.clone());
    if matches!(database, Database::Postgres(_)) {
        config.files_dir = Some(dir.path().join("files"));
    }
    config.static_dir = dir.path().join("dist");
    // Tests drive many users from one address as fast as they can: limits are off unless a
    // test of the limits sets them.
    config.auth_per_minute = 0;
    config.sends_per_second = 0;
    config.requests_per_second = 0;
    config.max_rooms_per_user = 0;
    config.max_sockets_per_address = 0;
    tweak(&mut config);
    let app = Application::build(config).await.expect("server builds");
    let addr = app.local_addr().expect("bound");
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        dir,
        http: reqwest::Client::new(),
        database,
        postgres,
        stop: Some(stop),
        handle: Some(handle),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// The Origin a browser on this server's own page would send.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> Arc<TempDir> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(15), handle)
                .await
                .expect("server stops in time")
                .expect("server task")
                .expect("server ran");
        }
        Arc::clone(&self.dir)
    }

    /// The folder of uploaded files' contents.
    pub fn files_dir(&self) -> std::path::PathBuf {
        match self.database {
            Database::Sqlite(_) => self.dir.path().join("chat.db.files"),
            Database::Postgres(_) => self.dir.path().join("files"),
        }
    }

    /// Stops the server and starts a new one on the same database and folder.
    pub async fn restart(self) -> TestApp {
        let database = self.database.clone();
        let postgres = self.postgres.clone();
        let dir = self.stop().await;
        spawn_app_on(dir, database, postgres, |_| {}).await
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_with_token_url(&self, url: &str, token: &str) -> reqwest::Response {
        self.http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// Registers `username` with a fixed password and returns the session.
    pub async fn register(&self, username: &str) -> Session {
        self.session("/api/register", StatusCode::CREATED, username)
            .await
    }

    /// Logs `username` in with the fixed password.
    pub async fn login(&self, username: &str) -> Session {
        self.session("/api/login", StatusCode::OK, username).await
    }

    /// Posts the fixed credentials of `username` to `path` and expects a session with `status`.
    async fn session(&self, path: &str, status: StatusCode, username: &str) -> Session {
        let body = serde_json::json!({"username": username, "password": "correct horse"});
        let res = self.post_json(path, &body).await;
        assert_eq!(res.status(), status, "{path} {username}");
        let body: SessionResponse = res.json().await.expect("session body");
        Session {
            username: body.username.to_string(),
            token: body.token,
        }
    }

    /// Opens a WebSocket with a bearer token (as a non-browser client) and reads `hello`.
    pub async fn ws(&self, session: &Session) -> Ws {
        let mut ws = self
            .ws_request(&[("authorization", &format!("Bearer {}", session.token))])
            .await
            .expect("upgrade accepted");
        match ws.recv().await {
            ServerMsg::Hello { user, .. } => assert_eq!(user.as_str(), session.username),
            other => panic!("expected hello, got {other:?}"),
        }
        ws
    }

    /// Tries an upgrade with the given headers.
    pub async fn ws_request(&self, headers: &[(&str, &str)]) -> Result<Ws, tungstenite::Error> {
        let mut request = self.ws_url().into_client_request()?;
        for (name, value) in headers {
            request.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        let (stream, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Ws { stream })
    }

    /// Calls the API as `session` with an optional JSON body; returns the status and the body
    /// (`null` when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        session: &Session,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&session.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let text = res.text().await.expect("body");
        let body = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
        };
        (status, body)
    }

    /// `POST path` with a JSON body as `session`.
    pub async fn post_as(
        &self,
        session: &Session,
        path: &str,
        body: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        self.call(reqwest::Method::POST, path, session, Some(body))
            .await
    }

    /// `GET path` as `session`.
    pub async fn get_as(&self, session: &Session, path: &str) -> (StatusCode, serde_json::Value) {
        self.call(reqwest::Method::GET, path, session, None).await
    }

    /// Creates a room of `kind` (`public` or `private`) named `name` as `session`.
    pub async fn create_room_of(&self, session: &Session, name: &str, kind: &str) -> RoomId {
        let (status, body) = self
            .post_as(
                session,
                "/api/rooms",
                serde_json::json!({ "name": name, "kind": kind }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "room {name}: {body}");
        RoomId(body["id"].as_u64().expect("an id"))
    }

    /// Creates a public room named `name` as `session` and returns its id.
    pub async fn create_room(&self, session: &Session, name: &str) -> RoomId {
        let res = self
            .http
            .post(self.url("/api/rooms"))
            .bearer_auth(&session.token)
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .expect("request sent");
        assert_eq!(res.status(), StatusCode::CREATED, "room {name} created");
        res.json::<RoomInfo>().await.expect("room body").id
    }

    /// The id of the room called `name`, from the room list.
    pub async fn room_named(&self, session: &Session, name: &str) -> RoomId {
        let rooms: Vec<RoomInfo> = self
            .get_with_token("/api/rooms", &session.token)
            .await
            .json()
            .await
            .expect("rooms");
        rooms
            .into_iter()
            .find(|r| r.name.as_str() == name)
            .unwrap_or_else(|| panic!("room {name} is listed"))
            .id
    }

    /// Opens a connection as `session`, joins `room`, and returns it with the initial history.
    pub async fn joined(&self, session: &Session, room: RoomId) -> (Ws, Vec<MessageEvent>) {
        let mut ws = self.ws(session).await;
        let history = ws.join(room).await;
        (ws, history)
    }
}

/// The HTTP status of a refused upgrade.
pub fn refused_status(result: Result<Ws, tungstenite::Error>) -> u16 {
    match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected the upgrade to be refused"),
    }
}

/// The room every database starts with.
pub const GENERAL: RoomId = shared::DEFAULT_ROOM_ID;

/// The kinds of the events in a `GET /api/rooms/{id}/events` answer, in order.
pub fn kinds(page: &serde_json::Value) -> Vec<String> {
    page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("message").to_owned())
        .collect()
}

pub fn cid(id: &str) -> ClientId {
    ClientId::parse(id).expect("valid client id")
}

/// A test's WebSocket client.
pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What a connection saw last: a frame, or its close. (Short-lived, so the size of a frame
/// does not matter.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Next {
    Frame(ServerMsg),
    Closed(Option<u16>),
}

impl Ws {
    pub async fn send(&mut self, msg: &ClientMsg) {
        let text = serde_json::to_string(msg).expect("encodes");
        self.send_raw(&text).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.stream
            .send(Message::text(text))
            .await
            .expect("frame sent");
    }

    /// The next frame or the close, skipping pings and pongs.
    pub async fn next(&mut self) -> Next {
        loop {
            let item = tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .expect("a frame arrives in time");
            match item {
                Some(Ok(Message::Text(text))) => {
                    let msg = serde_json::from_str(text.as_str())
                        .unwrap_or_else(|e| panic!("server frame {text} does not parse: {e}"));
                    return Next::Frame(msg);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Next::Closed(frame.map(|f: CloseFrame| u16::from(f.code)));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => panic!("unexpected frame {other:?}"),
                Some(Err(_)) | None => return Next::Closed(None),
            }
        }
    }

    /// The next frame; the connection must not close.
    pub async fn recv(&mut self) -> ServerMsg {
        match self.next().await {
            Next::Frame(msg) => msg,
            Next::Closed(code) => panic!("connection closed ({code:?}) while waiting for a frame"),
        }
    }

    /// Frames until one matches, skipping the rest (presence and the like).
    pub async fn recv_until(&mut self, mut wanted: impl FnMut(&ServerMsg) -> bool) -> ServerMsg {
        loop {
            let msg = self.recv().await;
            if wanted(&msg) {
                return msg;
            }
        }
    }

    /// The close code the server ends the connection with, skipping frames before it.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            if let Next::Closed(code) = self.next().await {
                return code;
            }
        }
    }

    /// Joins `room` and returns the initial history page.
    pub async fn join(&mut self, room: RoomId) -> Vec<MessageEvent> {
        self.send(&ClientMsg::Join { room, since: None }).await;
        match self
            .recv_until(|m| matches!(m, ServerMsg::Joined { .. } | ServerMsg::Error { .. }))
            .await
        {
            ServerMsg::Joined { room: r, .. } => assert_eq!(r, room),
            other => panic!("expected joined, got {other:?}"),
        }
        match self
            .recv_until(|m| matches!(m, ServerMsg::History { .. }))
            .await
        {
            ServerMsg::History { messages, .. } => messages,
            _ => unreachable!(),
        }
    }

    /// Sends `text` to `room` with `client_id` and waits for its ack; returns (id, seq).
    pub async fn say_with_id(&mut self, room: RoomId, client_id: &str, text: &str) -> (u64, u64) {
        self.send(&ClientMsg::Send {
            reply_to: None,
            room,
            client_id: cid(client_id),
            text: text.into(),
            attachments: Vec::new(),
        })
        .await;
        let ack = self
            .recv_until(|m| {
                matches!(m, ServerMsg::Ack { client_id: c, .. } if c.as_str() == client_id)
                    || matches!(m, ServerMsg::Error { .. })
            })
            .await;
        match ack {
            ServerMsg::Ack { id, seq, .. } => (id, seq),
            other => panic!("expected an ack, got {other:?}"),
        }
    }

    /// Sends a write (`send`, `edit`, `delete`, `react`) and waits for its answer: `Ok((id, seq))`
    /// from the `ack` (0, 0 when nothing changed), or the `error` frame.
    pub async fn write(&mut self, msg: ClientMsg) -> Result<(u64, u64), ServerMsg> {
        let wanted = match &msg {
            ClientMsg::Send { client_id, .. }
            | ClientMsg::Edit { client_id, .. }
            | ClientMsg::Delete { client_id, .. }
            | ClientMsg::React { client_id, .. } => client_id.clone(),
            other => panic!("not a write: {other:?}"),
        };
        self.send(&msg).await;
        let answer = self
            .recv_until(|m| {
                matches!(m, ServerMsg::Ack { client_id, .. } if *client_id == wanted)
                    || matches!(m, ServerMsg::Error { client_id: Some(c), .. } if *c == wanted)
            })
            .await;
        match answer {
            ServerMsg::Ack { id, seq, .. } => Ok((id, seq)),
            other => Err(other),
        }
    }

    /// Sends `text` with a fresh client id and waits for its ack; returns its seq.
    pub async fn say(&mut self, room: RoomId, text: &str) -> u64 {
        let client_id = format!(
            "c{}",
            NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        self.say_with_id(room, &client_id, text).await.1
    }

    /// The next `message` frame's event.
    pub async fn next_message(&mut self) -> MessageEvent {
        match self
            .recv_until(|m| matches!(m, ServerMsg::Message(_)))
            .await
        {
            ServerMsg::Message(event) => *event,
            _ => unreachable!(),
        }
    }
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Starts the built server binary on `addr` with its database at `db` and the options `extra`,
/// and waits until it listens. Killed when the handle is dropped.
pub async fn start_binary(
    addr: SocketAddr,
    db: &std::path::Path,
    dir: &std::path::Path,
    extra: &[&str],
) -> tokio::process::Child {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_backend"))
        .args(["--bind", &addr.to_string(), "--database"])
        .arg(db)
        .arg("--static-dir")
        .arg(dir.join("dist"))
        .args(extra)
        // Errors only: a flood test would print a line per refused login.
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("server starts");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "server listens in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child
}

/// A free port on 127.0.0.1.
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    l.local_addr().expect("addr")
}
