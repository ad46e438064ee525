//! Building and running the application: state, routes, static files, graceful shutdown.
//!
//! [`Application::build`] opens the store and binds the listener; [`Application::run_until`]
//! serves until a shutdown future resolves. `main` and the tests use exactly these two calls.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use shared::{RoomId, Username};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth::SessionCache;
use crate::bus::{self, Bus, Note};
use crate::chat::Chat;
use crate::config::{Config, Database};
use crate::events::{self, Dispatcher};
use crate::files::{self, Blobs};
use crate::guard::{self, Csp};
use crate::hub::Hub;
use crate::limits::{RateLimits, SocketSlots};
use crate::origin::Origin;
use crate::password::Hasher;
use crate::serve::{self, OpenConnections};
use crate::store::{PgStore, SqliteStore, Store, StoreError, now_ms};
use crate::{auth, ops, rooms, ws};

/// How long shutdown waits for WebSocket tasks to finish their close handshakes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What every handler can reach. Cheap to clone: each field is a handle.
#[derive(Clone)]
pub struct AppState {
    /// The chat's rules: what the transports call.
    pub chat: Chat,
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// Live membership and fan-out.
    pub hub: Arc<Hub>,
    /// Sessions already looked up.
    pub sessions: Arc<SessionCache>,
    /// The settings the server started with.
    pub config: Arc<Config>,
    /// Origins allowed to open a WebSocket (resolved from the config and the bound address).
    pub origins: Arc<Vec<Origin>>,
    /// Cancelled when the server shuts down; every connection's token is a child of it.
    pub shutdown: CancellationToken,
    /// Tracks WebSocket tasks, which the HTTP server's graceful shutdown does not wait for.
    pub tracker: TaskTracker,
    /// The password hashers (a fixed pool: see [`crate::password`]).
    pub hasher: Hasher,
    /// Per-address and per-user rate limits.
    pub limits: Arc<RateLimits>,
    /// Open WebSockets per user and per address.
    pub sockets: Arc<SocketSlots>,
    /// Open TCP connections, counted by the accept loop.
    pub connections: Arc<OpenConnections>,
    /// The Content-Security-Policy of the built client.
    pub csp: Arc<Csp>,
    /// The contents of uploaded files.
    pub blobs: Arc<Blobs>,
    /// The server is draining before it stops: `/readyz` says 503.
    pub draining: Arc<AtomicBool>,
    /// The bus to the other nodes (`--redis`), if any.
    pub bus: Option<Arc<Bus>>,
}

/// What this node does with the other nodes' news (see [`crate::bus`]).
struct Peers {
    hub: Arc<Hub>,
    seam: Arc<events::Seam>,
    chat: Chat,
    sessions: Arc<SessionCache>,
    store: Arc<dyn Store>,
    /// Heartbeats since the bus went down, to check sessions every [`SESSION_CHECK_TICKS`].
    down_ticks: std::sync::atomic::AtomicU32,
}

/// While the bus is down, a node checks its sockets' sessions against the store every this many
/// heartbeats (10 s): a logout on another node meanwhile reached it only through the store.
const SESSION_CHECK_TICKS: u32 = 5;

impl Peers {
    /// Logouts, kicks and bans on other nodes may have been missed: forget the cached sessions,
    /// close the sockets of every session here whose row is gone from the store, and take every
    /// person here out of the rooms they are no longer a member of (so that a private room's
    /// events stop reaching them).
    fn check_sessions(&self) {
        self.sessions.forget_live();
        let keys = self.hub.session_keys();
        let memberships = self.hub.local_memberships();
        let (store, hub) = (Arc::clone(&self.store), Arc::clone(&self.hub));
        tokio::spawn(async move {
            use futures::StreamExt;
            let checks = futures::stream::iter(memberships)
                .map(|(room, user, name)| {
                    let read = store.member(room, user);
                    async move { (room, user, name, read.await) }
                })
                .buffer_unordered(16);
            let gone: Vec<_> = checks
                .filter_map(|(room, user, name, member)| async move {
                    matches!(member, Ok(None)).then_some((room, user, name))
                })
                .collect()
                .await;
            for (room, user, name) in gone {
                tracing::info!(%room, %name, "a removal on another node went unheard; applying it");
                let reason = match store.ban_of(room, user).await {
                    Ok(Some(_)) => shared::Removal::Banned,
                    _ => shared::Removal::Unknown,
                };
                let notice = shared::ServerMsg::Removed {
                    room,
                    reason,
                    by: None,
                    message: None,
                };
                hub.remove_here_with(room, user, &name, &notice);
            }
        });
        if keys.is_empty() {
            return;
        }
        let (store, sessions, hub) = (
            Arc::clone(&self.store),
            Arc::clone(&self.sessions),
            Arc::clone(&self.hub),
        );
        tokio::spawn(async move {
            use futures::StreamExt;
            let reads = futures::stream::iter(keys)
                .map(|key| {
                    let read = store.find_session(key);
                    async move { (key, read.await) }
                })
                .buffer_unordered(16);
            let gone: Vec<[u8; 32]> = reads
                .filter_map(|(key, read)| async move { matches!(read, Ok(None)).then_some(key) })
                .collect()
                .await;
            for key in gone {
                tracing::info!(
                    "a session ended on another node while the bus was down; closing its sockets"
                );
                sessions.revoke(key);
                sessions.revoked_deleted(&key);
                hub.end_session_here(key);
            }
        });
    }
}

impl bus::Receiver for Peers {
    fn note(&self, node: u64, note: Note) {
        match note {
            Note::Events { events } => self.seam.remote(events),
            Note::Epoch { room } => self.chat.bump_here(room),
            Note::Rules { scope } => self.chat.forget_rules_here(scope),
            Note::EndSession { session } => {
                if let Some(key) = crate::hub::session_from_hex(&session) {
                    // The other node deleted the row already: forget the session here (no
                    // cached copy may serve it again), then close its sockets.
                    self.sessions.revoke(key);
                    self.sessions.revoked_deleted(&key);
                }
                self.hub.apply(node, Note::EndSession { session });
            }
            other => self.hub.apply(node, other),
        }
    }

    fn tick(&self, up: bool) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        if up {
            self.down_ticks.store(0, Relaxed);
        } else if self.down_ticks.fetch_add(1, Relaxed) % SESSION_CHECK_TICKS
            == SESSION_CHECK_TICKS - 1
        {
            self.check_sessions();
        }
        self.hub.expire_nodes(bus::NODE_EXPIRY)
    }

    fn reconnected(&self) {
        self.chat.forget_everything_cached();
        self.check_sessions();
    }

    fn view(&self) -> Vec<(RoomId, Vec<Username>)> {
        self.hub.view()
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    /// The address could not be bound.
    #[error("cannot listen: {0}")]
    Bind(#[from] std::io::Error),
    /// The bus URL is not a Redis URL.
    #[error("cannot use the bus: {0}")]
    Bus(String),
    /// The TLS certificate or key could not be read or used.
    #[error("cannot use the TLS certificate: {0}")]
    Tls(String),
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    tls: Option<TlsAcceptor>,
}

impl Application {
    /// Opens the store and binds the listener.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let hub = Arc::new(Hub::new());
        let (seam, inbox) = events::seam();
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
            _ => None,
        };
        let bus_seam = Arc::clone(&seam);
        let store: Arc<dyn Store> = match &config.database {
            Database::Sqlite(path) => Arc::new(SqliteStore::open(path, config.synchronous, seam)?),
            Database::Postgres(url) => Arc::new(PgStore::open(url, seam).await?),
        };
        tracing::info!(database = %config.database, "store open");
        let listener = TcpListener::bind(config.bind).await?;
        let origins = config.origins_for(listener.local_addr()?);
        let hasher = Hasher::start(config.hasher_threads(), config.hasher_threads() * 8)?;
        for admin in &config.admins {
            if !store.set_admin(admin.clone(), true).await? {
                tracing::warn!(%admin, "--admin names no account (yet); register it, then restart");
            }
        }
        // Runs until the store, which holds the seam, is dropped.
        let dispatcher = Dispatcher::new(inbox, Arc::clone(&hub), &store);
        let watcher = dispatcher.watcher();
        tokio::spawn(dispatcher.run());
        let limits = Arc::new(RateLimits::new(&config));
        let blobs = Arc::new(Blobs::new(config.files_dir()));
        let config = Arc::new(config);
        let shutdown = CancellationToken::new();
        let sessions: Arc<SessionCache> = Arc::default();
        let chat = Chat::new(
            Arc::clone(&store),
            Arc::clone(&hub),
            Arc::clone(&limits),
            Arc::clone(&config),
            Arc::clone(&blobs),
        );
        let bus = match &config.redis {
            Some(url) => {
                let peers = Arc::new(Peers {
                    hub: Arc::clone(&hub),
                    seam: Arc::clone(&bus_seam),
                    chat: chat.clone(),
                    sessions: Arc::clone(&sessions),
                    store: Arc::clone(&store),
                    down_ticks: std::sync::atomic::AtomicU32::new(0),
                });
                let bus = Bus::start(url, peers, shutdown.clone())
                    .map_err(|e| StartError::Bus(e.to_string()))?;
                hub.attach_bus(Arc::clone(&bus));
                bus_seam.attach_bus(Arc::clone(&bus));
                tokio::spawn(watcher.run(Some(Arc::clone(&bus))));
                Some(bus)
            }
            None => None,
        };
        let state = AppState {
            chat,
            blobs,
            store,
            hub,
            bus,
            sessions,
            origins: Arc::new(origins),
            shutdown,
            tracker: TaskTracker::new(),
            hasher,
            limits,
            sockets: Arc::new(SocketSlots::new(
                config.max_sockets_per_user,
                config.max_sockets_per_address,
            )),
            connections: Arc::default(),
            csp: Arc::new(Csp::new(&config.static_dir)),
            draining: Arc::default(),
            config,
        };
        Ok(Self {
            listener,
            state,
            tls,
        })
    }

    /// The address actually bound (useful when the port was 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `signal` resolves, then stops accepting, closes every WebSocket with 1001,
    /// and waits (bounded) for their tasks to finish.
    pub async fn run_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        let app = router(self.state);
        let shutdown = state.shutdown.clone();
        let housekeeping = tokio::spawn(housekeeping(state.clone()));
        let limits = serve::Limits {
            max_connections: state.config.connection_cap(),
            max_per_address: state.config.max_connections_per_address,
            header_timeout: state.config.http_timeout(),
        };
        let draining = Arc::clone(&state.draining);
        let drain = Duration::from_secs(state.config.drain_secs);
        let serve = serve::serve(
            self.listener,
            app,
            limits,
            Arc::clone(&state.connections),
            self.tls,
            async move {
                signal.await;
                // Readiness turns false first, so that a balancer sends new clients elsewhere,
                // then the sockets close with 1001 (their clients reconnect through it).
                draining.store(true, Ordering::Release);
                crate::metrics::get().draining.set(1);
                if !drain.is_zero() {
                    tracing::info!(secs = drain.as_secs(), "draining before closing sockets");
                    tokio::time::sleep(drain).await;
                }
                // Close the WebSockets now, while the HTTP requests drain.
                shutdown.cancel();
            },
        );
        let result = serve.await;
        // If serving failed rather than being asked to stop, stop the sockets too.
        state.shutdown.cancel();
        housekeeping.abort();
        state.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, state.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = state.tracker.len(),
                "WebSocket tasks did not finish in time"
            );
        }
        result
    }
}

/// How long an API request may take, body included, before it is answered 408.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an upload or a download may take to start answering (an upload's whole body is
/// read within it): 25 MiB at 100 KB/s.
const FILE_TIMEOUT: Duration = Duration::from_secs(300);
/// How often idle rate-limit state is dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How often expired sessions are deleted from the store.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Every route: the API, the WebSocket, and the built client as a fallback.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/register", post(auth::register))
        .route("/login", post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/me", get(auth::me))
        .route("/rooms", get(rooms::list).post(rooms::create))
        .route("/rooms/{id}", get(rooms::show).patch(rooms::update))
        .route("/rooms/{id}/join", post(rooms::join))
        .route("/rooms/{id}/leave", post(rooms::leave))
        .route("/rooms/{id}/members", get(rooms::members))
        .route("/rooms/{id}/invite", post(rooms::invite))
        .route("/rooms/{id}/decline", post(rooms::decline))
        .route("/rooms/{id}/audit", get(rooms::audit))
        .route(
            "/rooms/{id}/filters",
            get(rooms::room_filters).post(rooms::add_room_filter),
        )
        .route(
            "/rooms/{id}/filters/{rule}",
            delete(rooms::delete_room_filter),
        )
        .route(
            "/rooms/{id}/messages",
            get(rooms::history).post(rooms::post),
        )
        .route(
            "/rooms/{id}/messages/{seq}",
            get(rooms::message)
                .patch(rooms::edit)
                .delete(rooms::delete_message),
        )
        .route("/rooms/{id}/messages/{seq}/reactions", post(rooms::react))
        .route(
            "/rooms/{id}/messages/{seq}/reactions/{emoji}",
            delete(rooms::unreact),
        )
        .route("/rooms/{id}/read", post(rooms::read))
        .route("/rooms/{id}/events", get(rooms::events))
        .route("/read", post(rooms::read_all))
        .route("/rooms/{id}/{action}", post(rooms::moderate))
        .route("/invites", get(rooms::invites))
        .route("/direct", post(rooms::direct))
        .route("/users", get(rooms::users))
        .route(
            "/filters",
            get(rooms::server_filters).post(rooms::add_server_filter),
        )
        .route("/filters/{rule}", delete(rooms::delete_server_filter))
        .route("/search", get(rooms::search))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guard::same_origin_writes,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    // Files have a longer timeout (an upload's body is read within it) and set their own
    // caching and security headers.
    let file_routes = Router::new()
        .route("/rooms/{id}/files", post(files::upload))
        .route("/files/{id}", get(files::download))
        .route("/files/{id}/thumbnail", get(files::download_thumbnail))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guard::same_origin_writes,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            FILE_TIMEOUT,
        ));
    let api = api.merge(file_routes);
    Router::new()
        .nest("/api", api)
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback_service(static_files(&state.config))
        .layer(middleware::from_fn(cache_headers))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guard::security_headers,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Periodic upkeep while the server runs: expired sessions and uploads never sent for a day are
/// deleted (at start, then hourly),
/// idle rate-limit state is dropped, old revocation marks are forgotten, lapsed typing
/// notices end (every second), and the read positions reported over sockets are written in
/// batches.
async fn housekeeping(state: AppState) {
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    let mut typing = tokio::time::interval(std::time::Duration::from_secs(1));
    typing.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = typing.tick() => state.chat.expire_typing(),
            () = state.chat.reads_ready() => state.chat.write_reads().await,
            _ = prune.tick() => {
                state.limits.prune();
                state.chat.prune();
                state.sessions.prune();
            }
            _ = sweep.tick() => {
                match state.store.delete_expired_sessions(now_ms()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "expired sessions deleted"),
                    Err(e) => tracing::warn!(error = %e, "cannot delete expired sessions"),
                }
                files::sweep_unsent(&state.store, &state.blobs).await;
            }
        }
    }
}

/// The TLS acceptor for a certificate chain and its key (PEM files), speaking HTTP/1.1.
fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, StartError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let err = |what: &Path, e: &dyn std::fmt::Display| {
        StartError::Tls(format!("{}: {e}", what.display()))
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| err(cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(cert, &e))?;
    if chain.is_empty() {
        return Err(err(cert, &"no certificate in the file"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| err(key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| StartError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The built client. Unknown paths get `index.html`, so client-side routes survive a reload.
/// Files that trunk names with a content hash are cached for a year; everything else is
/// revalidated, so a new build is picked up at once. Precompressed `.gz`/`.br` siblings are
/// served when present and the browser accepts them.
fn static_files(config: &Config) -> ServeDir<ServeFile> {
    let dir = &config.static_dir;
    ServeDir::new(dir)
        .precompressed_gzip()
        .precompressed_br()
        .fallback(ServeFile::new(dir.join("index.html")))
}

/// Sets `Cache-Control` on successful answers that have none (see [`static_files`]).
async fn cache_headers(req: Request, next: Next) -> Response {
    let hashed = is_hashed_asset(req.uri().path());
    let mut res = next.run(req).await;
    if res.status().is_success() && !res.headers().contains_key(header::CACHE_CONTROL) {
        let policy = if hashed {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    res
}

/// Whether a path names a file with trunk's content hash: `name-<16 hex digits>` followed by
/// `.` or `_` (as in `frontend-0123456789abcdef_bg.wasm`).
fn is_hashed_asset(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or(path);
    // Trunk writes the hash without leading zeros: 16 hex digits, sometimes fewer.
    file.match_indices('-').any(|(i, _)| {
        let rest = &file.as_bytes()[i + 1..];
        let digits = rest.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        (12..=16).contains(&digits) && matches!(rest.get(digits), Some(b'.' | b'_'))
    })
}

#[cfg(test)]
mod tests {
    use super::is_hashed_asset;

    #[test]
    fn trunk_hashed_file_names_are_recognised() {
        assert!(is_hashed_asset("/frontend-0123456789abcdef_bg.wasm"));
        assert!(is_hashed_asset("/frontend-0123456789abcdef.js"));
        assert!(is_hashed_asset("/style-fedcba9876543210.css"));
        // A hash whose first digit was 0 has 15.
        assert!(is_hashed_asset("/frontend-4d51f832004f1ab.js"));
        assert!(is_hashed_asset("/frontend-4d51f832004f1ab_bg.wasm"));
        assert!(!is_hashed_asset("/frontend-4d51.js"));
        assert!(!is_hashed_asset("/index.html"));
        assert!(!is_hashed_asset("/"));
        assert!(!is_hashed_asset("/my-file.css"));
    }
}
