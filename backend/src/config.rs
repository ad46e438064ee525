//! Server settings, from the command line or the environment (`CHAT_*`), with defaults that run
//! the app locally: `127.0.0.1:8080`, `data/chat.db`, the built client in `dist/`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
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

    /// The database: a SQLite file (created, with its folder, if missing), or a PostgreSQL URL
    /// (`postgres://user:password@host:port/database`, also `postgresql://`).
    #[arg(long, env = "CHAT_DATABASE", default_value = "data/chat.db")]
    pub database: Database,

    /// Folder of uploaded files' contents. Default: beside a SQLite database,
    /// `<database>.files`; with PostgreSQL, `data/files`.
    #[arg(long, env = "CHAT_FILES_DIR")]
    pub files_dir: Option<PathBuf>,

    /// The bus between server nodes: a Redis URL (`redis://127.0.0.1:6379`). Several nodes on
    /// one PostgreSQL database each name the same Redis; see docs/cluster.md. Unset: one node.
    #[arg(long, env = "CHAT_REDIS")]
    pub redis: Option<String>,

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

    /// Seconds between the server's WebSocket pings (1 to 3600). A peer silent for three
    /// intervals is dropped.
    #[arg(long, env = "CHAT_HEARTBEAT_SECS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub heartbeat_secs: u64,

    /// Frames queued per connection before it counts as lagging and is closed (4008), up to
    /// 1,000,000. At least 256 (one group commit's worth) is used whatever is set.
    #[arg(long, env = "CHAT_QUEUE", default_value_t = 1024,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub queue: usize,

    /// Login and registration attempts allowed per client address per minute, and login
    /// attempts per username per minute (0: no limit).
    #[arg(long, env = "CHAT_AUTH_PER_MINUTE", default_value_t = 20)]
    pub auth_per_minute: u32,

    /// Messages a user may send per second, sustained; bursts of up to five seconds' worth
    /// are allowed (0: no limit).
    #[arg(long, env = "CHAT_SENDS_PER_SECOND", default_value_t = 5)]
    pub sends_per_second: u32,

    /// Other requests (join, leave, history, room creation...) a user may make per second,
    /// sustained, with bursts of five seconds' worth (0: no limit).
    #[arg(long, env = "CHAT_REQUESTS_PER_SECOND", default_value_t = 10)]
    pub requests_per_second: u32,

    /// Handles of server admins, comma-separated (e.g. `--admin alice`); marked at start if
    /// the accounts exist. The first account registered is an admin too.
    #[arg(long = "admin", env = "CHAT_ADMINS", value_delimiter = ',')]
    pub admins: Vec<shared::Username>,

    /// Rooms one user may create (0: no limit).
    #[arg(long, env = "CHAT_MAX_ROOMS_PER_USER", default_value_t = 50)]
    pub max_rooms_per_user: u32,

    /// Open WebSockets per user (0: no limit).
    #[arg(long, env = "CHAT_MAX_SOCKETS_PER_USER", default_value_t = 20)]
    pub max_sockets_per_user: u32,

    /// Open WebSockets per client address (0: no limit).
    #[arg(long, env = "CHAT_MAX_SOCKETS_PER_ADDRESS", default_value_t = 500)]
    pub max_sockets_per_address: u32,

    /// Open TCP connections in all; past it new ones get a bare 503 and are closed. Default:
    /// 90% of the process's open-file limit.
    #[arg(long, env = "CHAT_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Open TCP connections from one client address, WebSockets included (0: no cap).
    #[arg(
        long,
        env = "CHAT_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 1_000
    )]
    pub max_connections_per_address: usize,

    /// Seconds a client has to send a request's headers; also how long an idle keep-alive
    /// HTTP connection is kept (1 to 3600).
    #[arg(long, env = "CHAT_HTTP_TIMEOUT_SECS", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_timeout_secs: u64,

    /// Password hashes computed at once (each takes 19 MiB). Default: one per core.
    #[arg(long, env = "CHAT_HASHERS")]
    pub hashers: Option<usize>,

    /// The largest file one upload may be, in bytes.
    #[arg(long, env = "CHAT_MAX_UPLOAD_BYTES", default_value_t = 25 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_upload_bytes: u64,

    /// The most bytes one user's files may take in all (each upload counted; deleting a message
    /// frees its files), 0: no limit.
    #[arg(long, env = "CHAT_UPLOAD_QUOTA_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub upload_quota_bytes: u64,

    /// SQLite durability: `normal` survives a process crash, `full` also a power cut (ignored
    /// on PostgreSQL, whose own settings decide).
    #[arg(long, env = "CHAT_SYNCHRONOUS", value_enum, default_value_t = Synchronous::Normal)]
    pub synchronous: Synchronous,

    /// Serve HTTPS and `wss` with this certificate chain (PEM); needs `--tls-key`. Turns on
    /// `Strict-Transport-Security` and `Secure` cookies.
    #[arg(long, env = "CHAT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of `--tls-cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "CHAT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// On SIGTERM, how long `/readyz` says 503 before the sockets close with 1001, so that a
    /// load balancer moves new clients elsewhere first (0: close at once).
    #[arg(long, env = "CHAT_DRAIN_SECS", default_value_t = 0)]
    pub drain_secs: u64,

    /// Log lines as `text` or as `json` (one object per line, for a log collector).
    #[arg(long, env = "CHAT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// A bearer token that may read `/metrics` from anywhere; without it, only clients on a
    /// loopback address may.
    #[arg(long, env = "CHAT_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// Settings for a server on `bind` with database `database` and every other value at its
    /// default (what tests start from).
    pub fn new(bind: SocketAddr, database: impl Into<Database>) -> Self {
        // Parsing an empty command line cannot fail: every argument has a default.
        let mut config = Self::parse_from(["backend"]);
        config.bind = bind;
        config.database = database.into();
        config
    }

    /// Whether the server speaks TLS itself.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// Whether the session cookie is marked `Secure`: asked for, or served over TLS.
    pub fn cookies_secure(&self) -> bool {
        self.secure_cookies || self.tls()
    }

    /// The folder of uploaded files' contents: the option, else beside a SQLite database
    /// (`<database>.files`), else `data/files`.
    pub fn files_dir(&self) -> PathBuf {
        if let Some(dir) = &self.files_dir {
            return dir.clone();
        }
        match &self.database {
            Database::Sqlite(path) => {
                let mut dir = path.clone().into_os_string();
                dir.push(".files");
                PathBuf::from(dir)
            }
            Database::Postgres(_) => PathBuf::from("data/files"),
        }
    }

    /// The session lifetime.
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_secs)
    }

    /// The WebSocket ping interval.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs.clamp(1, 3600))
    }

    /// How long a client has to send request headers, and an idle HTTP connection is kept.
    pub fn http_timeout(&self) -> Duration {
        Duration::from_secs(self.http_timeout_secs.clamp(1, 3600))
    }

    /// Concurrent password hashes: the option, else one per core.
    pub fn hasher_threads(&self) -> usize {
        self.hashers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .clamp(1, 64)
    }

    /// The cap on open connections: the option, else 90% of the open-file limit (the rest is
    /// for the database, logs and the refusals themselves).
    pub fn connection_cap(&self) -> usize {
        self.max_connections
            .unwrap_or_else(|| open_file_limit().map_or(4_096, |n| n / 10 * 9))
            .max(1)
    }

    /// The allowed origins, or the defaults for the address actually bound (`local`, which
    /// differs from `bind` when the port was 0).
    pub fn origins_for(&self, local: SocketAddr) -> Vec<Origin> {
        if !self.allowed_origins.is_empty() {
            return self.allowed_origins.clone();
        }
        let scheme = if self.tls() { "https" } else { "http" };
        let mut origins = vec![Origin::new(scheme, local.ip().to_string(), local.port())];
        if local.ip().is_loopback() || local.ip().is_unspecified() {
            for host in ["localhost", "127.0.0.1"] {
                let origin = Origin::new(scheme, host.into(), local.port());
                if !origins.contains(&origin) {
                    origins.push(origin);
                }
            }
        }
        origins
    }
}

/// Where the durable state lives, from `--database`: a value starting with `postgres://` or
/// `postgresql://` is a PostgreSQL URL, anything else a SQLite file.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file: the default, for one machine.
    Sqlite(PathBuf),
    /// A PostgreSQL URL: a database several nodes can share.
    Postgres(String),
}

impl FromStr for Database {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Ok(Database::Postgres(raw.to_owned()))
        } else if raw.is_empty() {
            Err("the database is a SQLite file path or a postgres:// URL".into())
        } else {
            Ok(Database::Sqlite(PathBuf::from(raw)))
        }
    }
}

impl From<PathBuf> for Database {
    fn from(path: PathBuf) -> Self {
        Database::Sqlite(path)
    }
}

impl fmt::Display for Database {
    /// The path, or the URL without its password (settings end up in logs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => f.write_str(&redacted(url)),
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Database::Postgres(url) => f.debug_tuple("Postgres").field(&redacted(url)).finish(),
        }
    }
}

/// A URL with the password of its `user:password@` part replaced by `***`.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// The soft limit on open files of this process, read from `/proc/self/limits` (no `unsafe`
/// call to `getrlimit` needed); `None` where that file does not exist or says "unlimited".
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_option_values_are_refused_at_start() {
        for args in [
            ["backend", "--heartbeat-secs", "0"],
            ["backend", "--heartbeat-secs", "18446744073709551615"],
            ["backend", "--queue", "0"],
            ["backend", "--http-timeout-secs", "0"],
        ] {
            assert!(Config::try_parse_from(args).is_err(), "{args:?} accepted");
        }
        let ok = Config::try_parse_from(["backend", "--heartbeat-secs", "30"]).expect("valid");
        assert_eq!(ok.heartbeat(), Duration::from_secs(30));
    }

    #[test]
    fn a_postgres_url_picks_postgresql_and_anything_else_is_a_sqlite_file() {
        let pick = |raw: &str| {
            Config::try_parse_from(["backend", "--database", raw])
                .expect("valid")
                .database
        };
        assert_eq!(
            pick("postgres://chat:secret@db:5432/chat"),
            Database::Postgres("postgres://chat:secret@db:5432/chat".into())
        );
        assert!(matches!(
            pick("postgresql://db/chat"),
            Database::Postgres(_)
        ));
        assert_eq!(pick("data/x.db"), Database::Sqlite("data/x.db".into()));
        assert_eq!(
            Config::parse_from(["backend"]).database,
            Database::Sqlite("data/chat.db".into()),
            "SQLite stays the default"
        );
        let shown = pick("postgres://chat:secret@db:5432/chat");
        assert_eq!(shown.to_string(), "postgres://chat:***@db:5432/chat");
        assert!(!format!("{shown:?}").contains("secret"));
        let config = Config::parse_from(["backend", "--database", "postgres://db/chat"]);
        assert_eq!(config.files_dir(), PathBuf::from("data/files"));
        let config = Config::parse_from(["backend", "--database", "x/chat.db"]);
        assert_eq!(config.files_dir(), PathBuf::from("x/chat.db.files"));
    }

    #[test]
    fn the_connection_cap_stays_under_the_file_limit() {
        let config = Config::parse_from(["backend"]);
        if let Some(files) = open_file_limit() {
            assert!(config.connection_cap() < files);
        }
    }
}
