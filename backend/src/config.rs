//! Server settings, from the command line or the environment (`CHAT_*`), with defaults that run
//! the app locally: `127.0.0.1:8080`, `data/chat.db`, the built client in `dist/`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::origin::Origin;
use crate::store::Synchronous;

/// The chat server: HTTP API, WebSocket relay and the built web client on one port.
#[derive(Debug, Clone, Parser)]
#[command(name = "backend", version, about)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CHAT_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// SQLite database file (created, with its folder, if missing).
    #[arg(long, env = "CHAT_DATABASE", default_value = "data/chat.db")]
    pub database: PathBuf,

    /// Folder of the built web client (trunk's `dist/`), served at `/`.
    #[arg(long, env = "CHAT_STATIC_DIR", default_value = "dist")]
    pub static_dir: PathBuf,

    /// Origins allowed to open a WebSocket, comma-separated, e.g.
    /// `https://chat.example.com,http://127.0.0.1:3000`. Scheme, host and port are compared.
    /// Default: this server's own address (`http://<bind>`, plus `http://localhost:<port>` when
    /// bound to a loopback address).
    #[arg(long, env = "CHAT_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<Origin>,

    /// Mark the session cookie `Secure` (set this when serving over HTTPS).
    #[arg(long, env = "CHAT_SECURE_COOKIES")]
    pub secure_cookies: bool,

    /// How long a session lasts, in seconds.
    #[arg(long, env = "CHAT_SESSION_TTL_SECS", default_value_t = 7 * 24 * 3600)]
    pub session_ttl_secs: u64,

    /// Seconds between the server's WebSocket pings. A peer silent for three intervals is
    /// dropped.
    #[arg(long, env = "CHAT_HEARTBEAT_SECS", default_value_t = 20)]
    pub heartbeat_secs: u64,

    /// Frames queued per connection before it counts as lagging and is closed (4008). At least
    /// 256 (one group commit's worth) is used whatever is set.
    #[arg(long, env = "CHAT_QUEUE", default_value_t = 1024)]
    pub queue: usize,

    /// SQLite durability: `normal` survives a process crash, `full` also a power cut.
    #[arg(long, env = "CHAT_SYNCHRONOUS", value_enum, default_value_t = Synchronous::Normal)]
    pub synchronous: Synchronous,
}

impl Config {
    /// Settings for a server on `bind` with database `database` and every other value at its
    /// default (what tests start from).
    pub fn new(bind: SocketAddr, database: PathBuf) -> Self {
        // Parsing an empty command line cannot fail: every argument has a default.
        let mut config = Self::parse_from(["backend"]);
        config.bind = bind;
        config.database = database;
        config
    }

    /// The session lifetime.
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_secs)
    }

    /// The WebSocket ping interval.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs.max(1))
    }

    /// The allowed origins, or the defaults for the address actually bound (`local`, which
    /// differs from `bind` when the port was 0).
    pub fn origins_for(&self, local: SocketAddr) -> Vec<Origin> {
        if !self.allowed_origins.is_empty() {
            return self.allowed_origins.clone();
        }
        let mut origins = vec![Origin::http(local.ip().to_string(), local.port())];
        if local.ip().is_loopback() || local.ip().is_unspecified() {
            for host in ["localhost", "127.0.0.1"] {
                let origin = Origin::http(host.into(), local.port());
                if !origins.contains(&origin) {
                    origins.push(origin);
                }
            }
        }
        origins
    }
}
