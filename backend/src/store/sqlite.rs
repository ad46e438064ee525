//! The embedded default: one SQLite file in WAL mode.
//!
//! # Threads
//! - One **writer thread** owns the only write connection and runs every write in arrival order,
//!   so writes never contend for SQLite's lock. Appends that queue up while a commit is in flight
//!   are stored together in one transaction (group commit), each in its own savepoint so that one
//!   failing append cannot undo another; each is acknowledged only after that transaction commits.
//! - **Reads** run on tokio's blocking pool with connections from a small pool. WAL lets them run
//!   beside the writer and see only committed data.

mod files;
mod log;
mod search;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use futures::future::BoxFuture;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row, params};
use shared::{DisplayName, MessageEvent, Role, RoomId, RoomName, Username};
use tokio::sync::{mpsc, oneshot};

use super::codec::{
    direct_key, display_name, filter_action_str, filter_kind_str, kind_str, parse_filter,
    parse_kind, parse_role, parse_room, parse_user, role_str, to_i64, to_u64,
};
use super::{
    AccessRecord, Appended, AuditRecord, CommitListener, ContentLock, FileRecord, FilterRecord,
    InviteRecord, MAX_BATCH, MemberRecord, MessagePage, NewAudit, NewEvent, NewFile,
    NewFilterRecord, NewRoomRecord, ReadCounts, RoomAndRole, RoomRecord, SearchQuery,
    SearchResults, SessionRecord, Store, StoreError, StoreResult, UserId, UserRecord, UserSummary,
    now_ms,
};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// How many jobs may wait for the writer before callers wait to enqueue (backpressure).
const WRITE_QUEUE: usize = 4096;
/// Idle read connections kept open.
const READ_POOL: usize = 8;

/// The schema, applied in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE rooms (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_by INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL DEFAULT 0 -- unused since the writer keeps room heads in memory
);
CREATE TABLE room_members (
    room_id   INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
-- The room logs. `seq` is dense per room; `kind` leaves room for edits and deletions.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    room_id    INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    kind       TEXT NOT NULL DEFAULT 'message',
    author_id  INTEGER NOT NULL REFERENCES users(id),
    client_id  TEXT,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (room_id, seq)
);
CREATE UNIQUE INDEX events_by_client_id ON events(author_id, client_id) WHERE client_id IS NOT NULL;
INSERT INTO rooms (name, created_at) VALUES ('general', CAST(unixepoch('subsec') * 1000 AS INTEGER));
"#,
    // 2: Unicode room names, unique ignoring case among public rooms (`name_key` is the name in
    // lower case, computed by the server: SQLite's NOCASE folds only ASCII); a room kind and topic;
    // display names. The rooms table is rebuilt (SQLite cannot drop the old UNIQUE(name)); foreign
    // keys are off while migrations run, so dropping the old table does not cascade.
    r#"
CREATE TABLE rooms_v2 (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    name_key   TEXT NOT NULL,
    kind       TEXT NOT NULL DEFAULT 'public',
    topic      TEXT NOT NULL DEFAULT '',
    created_by INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL
);
INSERT INTO rooms_v2 (id, name, name_key, created_by, created_at)
    SELECT id, name, lower(name), created_by, created_at FROM rooms;
DROP TABLE rooms;
ALTER TABLE rooms_v2 RENAME TO rooms;
CREATE UNIQUE INDEX rooms_public_names ON rooms(name_key) WHERE kind = 'public';
CREATE INDEX rooms_by_creator ON rooms(created_by);
ALTER TABLE users ADD COLUMN display_name TEXT;
"#,
    // 3: rooms and people: private and direct rooms, roles, mutes, bans, invitations, filters,
    // the audit log, server admins. The first account of a new database is an admin; an existing
    // database gets none from this migration (its oldest account need not be its operator's):
    // `--admin` names them. `name_key` is the display name in lower case (computed by the server
    // for new accounts; accounts of version 1 have only ASCII handles), for the people search.
    r#"
ALTER TABLE users ADD COLUMN is_admin INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN name_key TEXT;
UPDATE users SET name_key = lower(coalesce(display_name, username));
ALTER TABLE rooms ADD COLUMN slow_mode_secs INTEGER NOT NULL DEFAULT 0;
-- For direct rooms: the members' handles, sorted ignoring case and joined with commas, so the
-- same people reopen one room (handles never change and cannot hold a comma).
ALTER TABLE rooms ADD COLUMN direct_key TEXT;
CREATE UNIQUE INDEX rooms_direct ON rooms(direct_key) WHERE direct_key IS NOT NULL;
ALTER TABLE room_members ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
CREATE INDEX room_members_by_user ON room_members(user_id);
UPDATE room_members SET role = 'owner'
    WHERE user_id = (SELECT created_by FROM rooms WHERE rooms.id = room_members.room_id);
CREATE TABLE bans (
    room_id    INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    by_id      INTEGER NOT NULL REFERENCES users(id),
    reason     TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
-- Mutes outlive a membership: leaving and coming back does not lift one.
CREATE TABLE mutes (
    room_id INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    until   INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE TABLE invites (
    room_id    INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    by_id      INTEGER NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE INDEX invites_by_user ON invites(user_id);
CREATE TABLE filters (
    id         INTEGER PRIMARY KEY,
    room_id    INTEGER REFERENCES rooms(id) ON DELETE CASCADE, -- NULL: server-wide
    kind       TEXT NOT NULL,
    pattern    TEXT NOT NULL,
    action     TEXT NOT NULL,
    created_by INTEGER NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL
);
CREATE INDEX filters_by_room ON filters(room_id);
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,
    room_id    INTEGER REFERENCES rooms(id) ON DELETE CASCADE, -- NULL: server-wide
    actor_id   INTEGER NOT NULL REFERENCES users(id),
    action     TEXT NOT NULL,
    target_id  INTEGER REFERENCES users(id),
    reason     TEXT,
    detail     TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX audit_by_room ON audit(room_id, id);
"#,
    // 4: messages that change. Edits, deletions and reactions are events of the log (with a
    // `target`); a message row is kept as the message is now (`body` rewritten by an edit and
    // erased by a deletion). Reactions, mentions and read positions have tables of their own.
    // Existing members start with everything read: an upgrade must not make a whole history
    // unread.
    r#"
ALTER TABLE events ADD COLUMN target INTEGER;
ALTER TABLE events ADD COLUMN reply_to INTEGER;
ALTER TABLE events ADD COLUMN mentions TEXT;
ALTER TABLE events ADD COLUMN edited_at INTEGER;
ALTER TABLE events ADD COLUMN deleted_at INTEGER;
CREATE INDEX events_by_target ON events(room_id, target) WHERE target IS NOT NULL;
CREATE TABLE reactions (
    room_id INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    target  INTEGER NOT NULL,
    emoji   TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (room_id, target, emoji, user_id)
) WITHOUT ROWID;
CREATE TABLE mentions (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    room_id INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id, seq)
) WITHOUT ROWID;
CREATE INDEX mentions_by_message ON mentions(room_id, seq);
CREATE TABLE read_markers (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    room_id INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id)
) WITHOUT ROWID;
INSERT INTO read_markers (user_id, room_id, seq)
    SELECT m.user_id, m.room_id,
           (SELECT coalesce(max(e.seq), 0) FROM events e WHERE e.room_id = m.room_id)
    FROM room_members m;
"#,
    // 5: files and search. A file row is an upload: its content's hash (the content is stored
    // once per hash, outside the database), what was read from the content, and the room it was
    // uploaded to; `seq` is the message that carries it, NULL until sent. The search index
    // (`search::SCHEMA`) is created and filled with the existing messages by `migrate`, which
    // cuts their text in Rust (see `crate::store::terms`).
    r#"
CREATE TABLE files (
    id          INTEGER PRIMARY KEY,
    hash        BLOB NOT NULL,
    size        INTEGER NOT NULL,
    mime        TEXT NOT NULL,
    name        TEXT NOT NULL,
    width       INTEGER,
    height      INTEGER,
    thumb_mime  TEXT,
    room_id     INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    uploader_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    seq         INTEGER,
    created_at  INTEGER NOT NULL
);
CREATE INDEX files_by_hash ON files(hash);
CREATE INDEX files_by_message ON files(room_id, seq) WHERE seq IS NOT NULL;
CREATE INDEX files_by_uploader ON files(uploader_id);
CREATE INDEX files_unsent ON files(created_at) WHERE seq IS NULL;
"#,
    // 6: the search index follows the log in batches instead of inside each append (see
    // `search`); it holds every message written before this migration.
    r#"
CREATE TABLE search_state (indexed_upto INTEGER NOT NULL);
INSERT INTO search_state (indexed_upto) SELECT coalesce(max(id), 0) FROM events;
"#,
];

/// The migration (its number, from 1) after which the search index is created and filled.
const SEARCH_MIGRATION: usize = 5;

/// How hard SQLite works to make a commit durable (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Synchronous {
    /// Survives a crash of the process (`kill -9`); a power cut may lose the last commits.
    #[default]
    Normal,
    /// Also survives a power cut, at the cost of an fsync per commit.
    Full,
}

/// A job for the writer thread.
enum Job {
    /// An append, batched with its neighbours into one transaction.
    Append(NewEvent, oneshot::Sender<StoreResult<Appended>>),
    /// Any other write; runs alone, in order with the appends.
    Exec(Box<dyn FnOnce(&mut Connection) + Send>),
    /// Brings the search index up to the log: one chunk (from the ticker), or all of it and
    /// then answers (before a search).
    Index(Option<oneshot::Sender<StoreResult<()>>>),
}

/// The SQLite [`Store`]. Cheap to clone: every clone talks to the same writer thread and pool.
#[derive(Clone)]
pub struct SqliteStore {
    /// Queue of the writer thread. The thread ends when every clone is dropped.
    jobs: mpsc::Sender<Job>,
    /// Read connections not in use. A `std` mutex: held only to push or pop, never across I/O.
    readers: Arc<Mutex<Vec<Connection>>>,
    /// The database file, to open more read connections.
    path: Arc<PathBuf>,
    /// Set by the writer while messages wait to be indexed for search.
    unindexed: Arc<AtomicBool>,
    /// The checkpoint and index ticker threads run while any clone of the store holds this.
    _alive: Arc<()>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, migrates it, and starts the writer
    /// thread, which reports each committed event to `listener`.
    pub fn open(
        path: &Path,
        synchronous: Synchronous,
        listener: Arc<dyn CommitListener>,
    ) -> StoreResult<Self> {
        Self::open_with(path, synchronous, listener, Some(INDEX_EVERY))
    }

    /// [`SqliteStore::open`], with the search index brought up to date every `index_every`
    /// (and when enough waits, and before each search), or (`None`) only then.
    fn open_with(
        path: &Path,
        synchronous: Synchronous,
        listener: Arc<dyn CommitListener>,
        index_every: Option<std::time::Duration>,
    ) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Task(e.to_string()))?;
        }
        let mut conn = Connection::open(path)?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))?;
        conn.pragma_update(
            None,
            "synchronous",
            match synchronous {
                Synchronous::Normal => "NORMAL",
                Synchronous::Full => "FULL",
            },
        )?;
        conn.pragma_update(None, "busy_timeout", 5000)?;
        // Off while the migrations run (the bundled SQLite turns them on by default): a migration
        // that rebuilds a table drops the old one, and with them on that would delete every row
        // that refers to it. Each migration checks the references it leaves (see `migrate`).
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        // Checkpoints copy the WAL back into the database file and fsync it. Left automatic, one
        // runs inside whichever commit crosses the threshold and stalls every append queued
        // behind it; the checkpoint thread does them instead (see `checkpoint_loop`).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // A deleted message's text must leave the file, not linger in freed space.
        conn.pragma_update(None, "secure_delete", "ON")?;
        migrate(&mut conn)?;
        // After the migrations: a rebuilt table must not cascade its old rows away.
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Every write transaction takes the write lock when it begins. A deferred one that read
        // first and then found the log changed under it (a `TRUNCATE` checkpoint after a
        // deletion resets the WAL) could only fail with "database is locked", whereas waiting for
        // the lock at `BEGIN` goes through the busy timeout.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);

        let alive = Arc::new(());
        let checkpointer = Connection::open(path)?;
        checkpointer.pragma_update(None, "busy_timeout", 5000)?;
        let watch = Arc::downgrade(&alive);
        let erased = Arc::new(AtomicBool::new(false));
        let erased_seen = Arc::clone(&erased);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpointer, &watch, &erased_seen))
            .map_err(|e| StoreError::Task(e.to_string()))?;

        let (jobs, rx) = mpsc::channel(WRITE_QUEUE);
        let indexed = search::indexed_upto(&conn)?;
        let unindexed = Arc::new(AtomicBool::new(true));
        let writer = Writer {
            conn,
            heads: log::RoomHeads::default(),
            indexed,
            waiting: 0,
            listener,
            erased,
            unindexed: Arc::clone(&unindexed),
        };
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Task(e.to_string()))?;
        if let Some(every) = index_every {
            let (watch, nudge, waiting) = (
                Arc::downgrade(&alive),
                jobs.downgrade(),
                Arc::clone(&unindexed),
            );
            std::thread::Builder::new()
                .name("sqlite-index".into())
                .spawn(move || index_tick_loop(every, &watch, &nudge, &waiting))
                .map_err(|e| StoreError::Task(e.to_string()))?;
        }
        Ok(Self {
            jobs,
            readers: Arc::new(Mutex::new(Vec::new())),
            path: Arc::new(path.to_owned()),
            unindexed,
            _alive: alive,
        })
    }

    /// Waits until every message written so far is in the search index.
    fn index_now(&self) -> BoxFuture<'static, StoreResult<()>> {
        let jobs = self.jobs.clone();
        let unindexed = Arc::clone(&self.unindexed);
        async move {
            if !unindexed.load(Ordering::Acquire) {
                return Ok(());
            }
            let (tx, rx) = oneshot::channel();
            jobs.send(Job::Index(Some(tx)))
                .await
                .map_err(|_| StoreError::Closed)?;
            rx.await.map_err(|_| StoreError::Closed)?
        }
        .boxed()
    }

    /// Runs `f` on the writer thread and returns its result.
    fn write<T, F>(&self, f: F) -> BoxFuture<'static, StoreResult<T>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let jobs = self.jobs.clone();
        async move {
            let (tx, rx) = oneshot::channel();
            let job = Job::Exec(Box::new(move |conn| {
                // The caller may have gone away; the write happened regardless.
                let _ = tx.send(f(conn));
            }));
            jobs.send(job).await.map_err(|_| StoreError::Closed)?;
            rx.await.map_err(|_| StoreError::Closed)?
        }
        .boxed()
    }

    /// Runs `f` with a read connection on the blocking pool.
    fn read<T, F>(&self, f: F) -> BoxFuture<'static, StoreResult<T>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        let path = Arc::clone(&self.path);
        async move {
            tokio::task::spawn_blocking(move || {
                let pooled = readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
                let conn = match pooled {
                    Some(conn) => conn,
                    None => open_reader(&path)?,
                };
                let result = f(&conn);
                let mut pool = readers.lock().unwrap_or_else(PoisonError::into_inner);
                if pool.len() < READ_POOL {
                    pool.push(conn);
                }
                result
            })
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
        }
        .boxed()
    }
}

/// How often the checkpoint thread copies the WAL into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs `PASSIVE` checkpoints beside the writer until the store is dropped. A passive
/// checkpoint never blocks the writer or readers: it copies what it can and leaves the rest for
/// the next round, so the WAL stays short without any commit waiting for an fsync of the
/// database file. A last one runs when the store goes away.
///
/// After a deletion (`erased` set by the writer) it runs a `TRUNCATE` checkpoint instead, which
/// waits for readers and empties the WAL file, so that the erased text does not linger in old
/// frames of the log. Until one succeeds, it tries again each round.
fn checkpoint_loop(conn: &Connection, alive: &std::sync::Weak<()>, erased: &AtomicBool) {
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        let last = alive.strong_count() == 0;
        let truncate = erased.swap(false, Ordering::AcqRel);
        let sql = if truncate {
            "PRAGMA wal_checkpoint(TRUNCATE)"
        } else {
            "PRAGMA wal_checkpoint(PASSIVE)"
        };
        // The first column is 1 when the checkpoint could not finish (busy).
        match conn.query_row(sql, [], |r| r.get::<_, i64>(0)) {
            Ok(busy) => {
                if truncate && busy != 0 {
                    erased.store(true, Ordering::Release);
                }
            }
            Err(e) => {
                if truncate {
                    erased.store(true, Ordering::Release);
                }
                tracing::warn!(error = %e, "checkpoint failed");
            }
        }
        if last {
            return;
        }
    }
}

fn open_reader(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "busy_timeout", 5000)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let done: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let done = usize::try_from(done).unwrap_or(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if i + 1 == SEARCH_MIGRATION {
            tx.execute_batch(search::SCHEMA)?;
            search::index_all(&tx)?;
        }
        let broken: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
            .optional()?;
        if let Some(table) = broken {
            return Err(StoreError::Task(format!(
                "migration {} left a broken reference in {table}",
                i + 1
            )));
        }
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// How often the ticker has the writer index what waits for search.
const INDEX_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// The writer thread's connection and what it keeps between jobs.
struct Writer {
    conn: Connection,
    heads: log::RoomHeads,
    /// The search index's watermark (see `search`).
    indexed: i64,
    /// Events appended since the index last caught up.
    waiting: usize,
    listener: Arc<dyn CommitListener>,
    /// Set after a deletion, for the checkpoint thread.
    erased: Arc<AtomicBool>,
    /// Set while messages may wait for the index (read by searches and the ticker); set before
    /// each batch is answered, cleared only by [`Writer::index`].
    unindexed: Arc<AtomicBool>,
}

impl Writer {
    /// Runs jobs in order until every sender is gone.
    fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut next: Option<Job> = None;
        loop {
            let job = match next.take() {
                Some(job) => job,
                None => match rx.blocking_recv() {
                    Some(job) => job,
                    None => return,
                },
            };
            match job {
                Job::Exec(f) => f(&mut self.conn),
                Job::Index(reply) => {
                    let all = reply.is_some();
                    let done = self.index(all);
                    if let Some(reply) = reply {
                        let _ = reply.send(done);
                    }
                }
                Job::Append(message, reply) => {
                    let mut batch = vec![(message, reply)];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(Job::Append(m, r)) => batch.push((m, r)),
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    // Before the answers go out: a search that follows one must index first.
                    self.unindexed.store(true, Ordering::Release);
                    let committed = log::commit_batch(
                        &mut self.conn,
                        &mut self.heads,
                        self.indexed,
                        batch,
                        self.listener.as_ref(),
                    );
                    if committed.erased {
                        self.erased.store(true, Ordering::Release);
                    }
                    self.waiting += committed.appended;
                    if self.waiting >= search::CHUNK {
                        // Errors are logged; the ticker tries again.
                        let _ = self.index(false);
                    }
                }
            }
        }
    }

    /// Indexes one chunk of what waits for search, or (`all`) everything.
    fn index(&mut self, all: bool) -> StoreResult<()> {
        loop {
            // Cleared first: an append after this point sets it again.
            self.unindexed.store(false, Ordering::Release);
            let outcome = search::catch_up(&mut self.conn, self.indexed);
            match outcome {
                Ok((upto, done)) => {
                    self.indexed = upto;
                    if done {
                        self.waiting = 0;
                        return Ok(());
                    }
                    self.waiting = self.waiting.saturating_sub(search::CHUNK);
                    self.unindexed.store(true, Ordering::Release);
                    if !all {
                        return Ok(());
                    }
                }
                Err(e) => {
                    self.unindexed.store(true, Ordering::Release);
                    tracing::error!(error = %e, "search indexing failed");
                    return Err(e);
                }
            }
        }
    }
}

/// Has the writer index what waits for search every `every`, until the store is dropped.
fn index_tick_loop(
    every: std::time::Duration,
    alive: &std::sync::Weak<()>,
    jobs: &mpsc::WeakSender<Job>,
    unindexed: &AtomicBool,
) {
    loop {
        std::thread::sleep(every);
        if alive.strong_count() == 0 {
            return;
        }
        if unindexed.load(Ordering::Acquire)
            && let Some(jobs) = jobs.upgrade()
        {
            // A full queue means a busy writer, which indexes by itself once enough waits.
            let _ = jobs.try_send(Job::Index(None));
        }
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation)
}

/// The columns [`room_at`] reads, in order ([`ROOM_WIDTH`] of them).
const ROOM_COLUMNS: &str = "rooms.id, rooms.name, rooms.kind, rooms.topic, rooms.slow_mode_secs, \
     rooms.created_by, rooms.direct_key, \
     (SELECT coalesce(max(seq), 0) FROM events WHERE room_id = rooms.id)";
/// How many columns [`ROOM_COLUMNS`] holds.
const ROOM_WIDTH: usize = 8;

/// The raw values of a room row (parsed after the statement, so parse errors are ours).
type RawRoom = (
    i64,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
    i64,
);

/// Reads the [`ROOM_COLUMNS`] starting at column `at`.
fn room_at(r: &Row<'_>, at: usize) -> rusqlite::Result<RawRoom> {
    Ok((
        r.get(at)?,
        r.get(at + 1)?,
        r.get(at + 2)?,
        r.get(at + 3)?,
        r.get(at + 4)?,
        r.get(at + 5)?,
        r.get(at + 6)?,
        r.get(at + 7)?,
    ))
}

fn room_record(raw: RawRoom) -> StoreResult<RoomRecord> {
    let (id, name, kind, topic, slow, created_by, direct, last_seq) = raw;
    Ok(RoomRecord {
        id: RoomId(to_u64(id)),
        name: parse_room(name)?,
        kind: parse_kind(&kind)?,
        topic,
        slow_mode_secs: u32::try_from(slow).unwrap_or(0),
        created_by,
        direct: direct
            .as_deref()
            .map(|key| key.split(',').map(|h| parse_user(h.to_owned())).collect())
            .transpose()?
            .unwrap_or_default(),
        last_seq: to_u64(last_seq),
    })
}

/// The raw values of a user summary: id, handle, display name.
type RawUser = (i64, String, Option<String>);

fn user_at(r: &Row<'_>, at: usize) -> rusqlite::Result<RawUser> {
    Ok((r.get(at)?, r.get(at + 1)?, r.get(at + 2)?))
}

fn user_summary(raw: RawUser) -> StoreResult<UserSummary> {
    let (id, name, shown) = raw;
    let username = parse_user(name)?;
    Ok(UserSummary {
        id,
        display_name: display_name(shown, &username)?,
        username,
    })
}

/// A room by id, on any connection.
fn room_by_id(conn: &Connection, room: RoomId) -> StoreResult<Option<RoomRecord>> {
    conn.prepare_cached(&format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id = ?1"))?
        .query_row(params![to_i64(room.0)], |r| room_at(r, 0))
        .optional()?
        .map(room_record)
        .transpose()
}

/// The rows of a members query: user summary (3), role, muted_until.
fn read_members(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> StoreResult<Vec<MemberRecord>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(args, |r| {
        Ok((
            user_at(r, 0)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<i64>>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (user, role, muted_until) = row?;
        out.push(MemberRecord {
            user: user_summary(user)?,
            role: parse_role(&role)?,
            muted_until,
        });
    }
    Ok(out)
}

impl Store for SqliteStore {
    fn create_user(
        &self,
        username: Username,
        display_name: DisplayName,
        password_hash: String,
    ) -> BoxFuture<'static, StoreResult<UserId>> {
        self.write(move |conn| {
            match conn.execute(
                // The first account administers the server.
                "INSERT INTO users (username, display_name, password_hash, created_at, is_admin,
                                    name_key)
                 VALUES (?1, ?2, ?3, ?4, NOT EXISTS (SELECT 1 FROM users), ?5)",
                params![
                    username.as_str(),
                    display_name.as_str(),
                    password_hash,
                    now_ms(),
                    display_name.as_str().to_lowercase()
                ],
            ) {
                Ok(_) => Ok(conn.last_insert_rowid()),
                Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn find_user(&self, username: Username) -> BoxFuture<'static, StoreResult<Option<UserRecord>>> {
        self.read(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT id, username, password_hash, display_name, is_admin FROM users
                     WHERE username = ?1",
                )?
                .query_row(params![username.as_str()], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, bool>(4)?,
                    ))
                })
                .optional()?;
            row.map(|(id, name, password_hash, shown, is_admin)| {
                let username = parse_user(name)?;
                Ok(UserRecord {
                    id,
                    display_name: display_name(shown, &username)?,
                    username,
                    password_hash,
                    is_admin,
                })
            })
            .transpose()
        })
    }

    fn create_session(
        &self,
        token_hash: [u8; 32],
        user_id: UserId,
        expires_at: i64,
    ) -> BoxFuture<'static, StoreResult<()>> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![&token_hash[..], user_id, now_ms(), expires_at],
            )?;
            Ok(())
        })
    }

    fn find_session(
        &self,
        token_hash: [u8; 32],
    ) -> BoxFuture<'static, StoreResult<Option<SessionRecord>>> {
        self.read(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT s.user_id, u.username, s.expires_at, u.display_name, u.is_admin
                     FROM sessions s JOIN users u ON u.id = s.user_id
                     WHERE s.token_hash = ?1",
                )?
                .query_row(params![&token_hash[..]], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, bool>(4)?,
                    ))
                })
                .optional()?;
            row.map(|(user_id, name, expires_at, shown, is_admin)| {
                let username = parse_user(name)?;
                Ok(SessionRecord {
                    user_id,
                    display_name: display_name(shown, &username)?,
                    username,
                    is_admin,
                    expires_at,
                })
            })
            .transpose()
        })
    }

    fn delete_session(&self, token_hash: [u8; 32]) -> BoxFuture<'static, StoreResult<()>> {
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM sessions WHERE token_hash = ?1",
                params![&token_hash[..]],
            )?;
            Ok(())
        })
    }

    fn delete_expired_sessions(&self, now: i64) -> BoxFuture<'static, StoreResult<u64>> {
        self.write(move |conn| {
            let n = conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", params![now])?;
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        })
    }

    fn list_rooms(
        &self,
        viewer: UserId,
        after: Option<RoomId>,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<Vec<RoomAndRole>>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {ROOM_COLUMNS}, m.role FROM rooms
                 LEFT JOIN room_members m ON m.room_id = rooms.id AND m.user_id = ?1
                 WHERE rooms.id > ?2 AND (rooms.kind = 'public' OR m.user_id IS NOT NULL)
                 ORDER BY rooms.id LIMIT ?3"
            ))?;
            let after = after.map_or(0, |r| to_i64(r.0));
            let rows = stmt.query_map(params![viewer, after, limit], |r| {
                Ok((room_at(r, 0)?, r.get::<_, Option<String>>(ROOM_WIDTH)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (raw, role) = row?;
                let role = role.as_deref().map(parse_role).transpose()?;
                out.push((room_record(raw)?, role));
            }
            Ok(out)
        })
    }

    fn set_admin(&self, username: Username, admin: bool) -> BoxFuture<'static, StoreResult<bool>> {
        self.write(move |conn| {
            let n = conn.execute(
                "UPDATE users SET is_admin = ?2 WHERE username = ?1",
                params![username.as_str(), admin],
            )?;
            Ok(n > 0)
        })
    }

    fn search_users(
        &self,
        prefix: String,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<Vec<UserSummary>>> {
        self.read(move |conn| {
            // LIKE with the wildcards of the prefix escaped: the handle ignoring ASCII case
            // (NOCASE), the display name by its lower-case key (any script).
            let escaped: String = prefix
                .chars()
                .flat_map(|c| match c {
                    '%' | '_' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            let pattern = format!("{}%", escaped.to_lowercase());
            let mut stmt = conn.prepare_cached(
                "SELECT id, username, display_name FROM users
                 WHERE username LIKE ?1 ESCAPE '\\' OR name_key LIKE ?1 ESCAPE '\\'
                 ORDER BY username LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![pattern, limit], |r| user_at(r, 0))?;
            let mut out = Vec::new();
            for row in rows {
                out.push(user_summary(row?)?);
            }
            Ok(out)
        })
    }

    fn rooms_created_by(&self, user: UserId, direct: bool) -> BoxFuture<'static, StoreResult<u64>> {
        self.read(move |conn| {
            let n: i64 = conn
                .prepare_cached(
                    "SELECT count(*) FROM rooms WHERE created_by = ?1 AND (kind = 'direct') = ?2",
                )?
                .query_row(params![user, direct], |r| r.get(0))?;
            Ok(to_u64(n))
        })
    }

    fn create_room(&self, room: NewRoomRecord) -> BoxFuture<'static, StoreResult<RoomRecord>> {
        self.write(move |conn| {
            let tx = conn.transaction()?;
            match tx.execute(
                "INSERT INTO rooms (name, name_key, kind, topic, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    room.name.as_str(),
                    room.name.key(),
                    kind_str(room.kind),
                    room.topic,
                    room.created_by,
                    now_ms()
                ],
            ) {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Err(StoreError::Conflict),
                Err(e) => return Err(e.into()),
            }
            let id = tx.last_insert_rowid();
            if let Some(owner) = room.created_by {
                tx.execute(
                    "INSERT INTO room_members (room_id, user_id, joined_at, role)
                     VALUES (?1, ?2, ?3, 'owner')",
                    params![id, owner, now_ms()],
                )?;
            }
            tx.commit()?;
            Ok(RoomRecord {
                id: RoomId(to_u64(id)),
                name: room.name,
                kind: room.kind,
                topic: room.topic,
                slow_mode_secs: 0,
                created_by: room.created_by,
                direct: Vec::new(),
                last_seq: 0,
            })
        })
    }

    fn access(
        &self,
        room: RoomId,
        user_id: UserId,
    ) -> BoxFuture<'static, StoreResult<Option<AccessRecord>>> {
        self.read(move |conn| {
            let Some(record) = room_by_id(conn, room)? else {
                return Ok(None);
            };
            let id = to_i64(room.0);
            let member = read_members(
                conn,
                "SELECT u.id, u.username, u.display_name, m.role, mu.until
                 FROM room_members m JOIN users u ON u.id = m.user_id
                 LEFT JOIN mutes mu ON mu.room_id = m.room_id AND mu.user_id = m.user_id
                 WHERE m.room_id = ?1 AND m.user_id = ?2",
                params![id, user_id],
            )?
            .pop();
            let invited = conn
                .prepare_cached("SELECT 1 FROM invites WHERE room_id = ?1 AND user_id = ?2")?
                .query_row(params![id, user_id], |_| Ok(()))
                .optional()?
                .is_some();
            let ban = conn
                .prepare_cached("SELECT reason FROM bans WHERE room_id = ?1 AND user_id = ?2")?
                .query_row(params![id, user_id], |r| r.get(0))
                .optional()?;
            Ok(Some(AccessRecord {
                room: record,
                member,
                invited,
                ban,
            }))
        })
    }

    fn open_direct(
        &self,
        members: Vec<UserSummary>,
        name: RoomName,
    ) -> BoxFuture<'static, StoreResult<(RoomRecord, bool)>> {
        self.write(move |conn| {
            let key = direct_key(&members);
            let existing: Option<i64> = conn
                .prepare_cached("SELECT id FROM rooms WHERE direct_key = ?1")?
                .query_row(params![key], |r| r.get(0))
                .optional()?;
            if let Some(id) = existing {
                // The same people get the same room back, those who had left it included.
                let mut added = 0;
                for member in &members {
                    let n = conn.execute(
                        "INSERT OR IGNORE INTO room_members (room_id, user_id, joined_at, role)
                         VALUES (?1, ?2, ?3, 'member')",
                        params![id, member.id, now_ms()],
                    )?;
                    if n > 0 {
                        log::mark_read(conn, member.id, RoomId(to_u64(id)), None)?;
                    }
                    added += n;
                }
                let room = room_by_id(conn, RoomId(to_u64(id)))?.ok_or(StoreError::NotFound)?;
                return Ok((room, added > 0));
            }
            let tx = conn.transaction()?;
            let now = now_ms();
            tx.execute(
                "INSERT INTO rooms (name, name_key, kind, created_by, created_at, direct_key)
                 VALUES (?1, ?2, 'direct', ?3, ?4, ?5)",
                params![
                    name.as_str(),
                    name.key(),
                    members.first().map(|m| m.id),
                    now,
                    key
                ],
            )?;
            let id = tx.last_insert_rowid();
            for member in &members {
                match tx.execute(
                    "INSERT OR IGNORE INTO room_members (room_id, user_id, joined_at, role)
                     VALUES (?1, ?2, ?3, 'member')",
                    params![id, member.id, now],
                ) {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => return Err(StoreError::NotFound),
                    Err(e) => return Err(e.into()),
                }
            }
            let room = room_by_id(&tx, RoomId(to_u64(id)))?.ok_or(StoreError::NotFound)?;
            tx.commit()?;
            Ok((room, true))
        })
    }

    fn room(&self, room: RoomId) -> BoxFuture<'static, StoreResult<Option<RoomRecord>>> {
        self.read(move |conn| room_by_id(conn, room))
    }

    fn add_member(
        &self,
        room: RoomId,
        user_id: UserId,
        role: Role,
    ) -> BoxFuture<'static, StoreResult<bool>> {
        self.write(move |conn| {
            let tx = conn.transaction()?;
            // Checked here, on the writer, so that a ban between the caller's read and this write
            // still keeps the user out.
            let banned = tx
                .prepare_cached("SELECT 1 FROM bans WHERE room_id = ?1 AND user_id = ?2")?
                .query_row(params![to_i64(room.0), user_id], |_| Ok(()))
                .optional()?
                .is_some();
            if banned {
                return Ok(false);
            }
            let added = match tx.execute(
                "INSERT OR IGNORE INTO room_members (room_id, user_id, joined_at, role)
                 VALUES (?1, ?2, ?3, ?4)",
                params![to_i64(room.0), user_id, now_ms(), role_str(role)],
            ) {
                Ok(n) => n > 0,
                // The only constraint left to break is a reference: no such room (or user).
                Err(e) if is_unique_violation(&e) => return Err(StoreError::NotFound),
                Err(e) => return Err(e.into()),
            };
            tx.execute(
                "DELETE FROM invites WHERE room_id = ?1 AND user_id = ?2",
                params![to_i64(room.0), user_id],
            )?;
            if added {
                // A newcomer has read what was said before they came.
                log::mark_read(&tx, user_id, room, None)?;
            }
            tx.commit()?;
            Ok(true)
        })
    }

    fn member(
        &self,
        room: RoomId,
        user_id: UserId,
    ) -> BoxFuture<'static, StoreResult<Option<MemberRecord>>> {
        self.read(move |conn| {
            Ok(read_members(
                conn,
                "SELECT u.id, u.username, u.display_name, m.role, mu.until
                 FROM room_members m JOIN users u ON u.id = m.user_id
                 LEFT JOIN mutes mu ON mu.room_id = m.room_id AND mu.user_id = m.user_id
                 WHERE m.room_id = ?1 AND m.user_id = ?2",
                params![to_i64(room.0), user_id],
            )?
            .pop())
        })
    }

    fn members(&self, room: RoomId) -> BoxFuture<'static, StoreResult<Vec<MemberRecord>>> {
        self.read(move |conn| {
            read_members(
                conn,
                "SELECT u.id, u.username, u.display_name, m.role, mu.until
                 FROM room_members m JOIN users u ON u.id = m.user_id
                 LEFT JOIN mutes mu ON mu.room_id = m.room_id AND mu.user_id = m.user_id
                 WHERE m.room_id = ?1 ORDER BY u.username",
                params![to_i64(room.0)],
            )
        })
    }

    fn remove_member(
        &self,
        room: RoomId,
        user_id: UserId,
    ) -> BoxFuture<'static, StoreResult<bool>> {
        self.write(move |conn| {
            let n = conn.execute(
                "DELETE FROM room_members WHERE room_id = ?1 AND user_id = ?2",
                params![to_i64(room.0), user_id],
            )?;
            Ok(n > 0)
        })
    }

    fn set_role(
        &self,
        room: RoomId,
        user_id: UserId,
        role: Role,
    ) -> BoxFuture<'static, StoreResult<bool>> {
        self.write(move |conn| {
            let n = conn.execute(
                "UPDATE room_members SET role = ?3 WHERE room_id = ?1 AND user_id = ?2",
                params![to_i64(room.0), user_id, role_str(role)],
            )?;
            Ok(n > 0)
        })
    }

    fn set_muted(
        &self,
        room: RoomId,
        user_id: UserId,
        until: Option<i64>,
    ) -> BoxFuture<'static, StoreResult<()>> {
        self.write(move |conn| {
            let room = to_i64(room.0);
            let done = match until {
                Some(until) => conn.execute(
                    "INSERT INTO mutes (room_id, user_id, until) VALUES (?1, ?2, ?3)
                     ON CONFLICT (room_id, user_id) DO UPDATE SET until = excluded.until",
                    params![room, user_id, until],
                ),
                None => conn.execute(
                    "DELETE FROM mutes WHERE room_id = ?1 AND user_id = ?2",
                    params![room, user_id],
                ),
            };
            match done {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(StoreError::NotFound),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn ban(
        &self,
        room: RoomId,
        user_id: UserId,
        by: UserId,
        reason: Option<String>,
    ) -> BoxFuture<'static, StoreResult<()>> {
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let room = to_i64(room.0);
            match tx.execute(
                "INSERT INTO bans (room_id, user_id, by_id, reason, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (room_id, user_id) DO UPDATE SET reason = excluded.reason",
                params![room, user_id, by, reason, now_ms()],
            ) {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Err(StoreError::NotFound),
                Err(e) => return Err(e.into()),
            }
            tx.execute(
                "DELETE FROM room_members WHERE room_id = ?1 AND user_id = ?2",
                params![room, user_id],
            )?;
            tx.execute(
                "DELETE FROM invites WHERE room_id = ?1 AND user_id = ?2",
                params![room, user_id],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn unban(&self, room: RoomId, user_id: UserId) -> BoxFuture<'static, StoreResult<bool>> {
        self.write(move |conn| {
            let n = conn.execute(
                "DELETE FROM bans WHERE room_id = ?1 AND user_id = ?2",
                params![to_i64(room.0), user_id],
            )?;
            Ok(n > 0)
        })
    }

    fn ban_of(
        &self,
        room: RoomId,
        user_id: UserId,
    ) -> BoxFuture<'static, StoreResult<Option<Option<String>>>> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT reason FROM bans WHERE room_id = ?1 AND user_id = ?2")?
                .query_row(params![to_i64(room.0), user_id], |r| r.get(0))
                .optional()?)
        })
    }

    fn invite(
        &self,
        room: RoomId,
        user_id: UserId,
        by: UserId,
    ) -> BoxFuture<'static, StoreResult<()>> {
        self.write(move |conn| {
            match conn.execute(
                "INSERT OR IGNORE INTO invites (room_id, user_id, by_id, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![to_i64(room.0), user_id, by, now_ms()],
            ) {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(StoreError::NotFound),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn is_invited(&self, room: RoomId, user_id: UserId) -> BoxFuture<'static, StoreResult<bool>> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT 1 FROM invites WHERE room_id = ?1 AND user_id = ?2")?
                .query_row(params![to_i64(room.0), user_id], |_| Ok(()))
                .optional()?
                .is_some())
        })
    }

    fn invites_for(&self, user_id: UserId) -> BoxFuture<'static, StoreResult<Vec<InviteRecord>>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {ROOM_COLUMNS}, u.id, u.username, u.display_name, i.created_at
                 FROM invites i JOIN rooms ON rooms.id = i.room_id JOIN users u ON u.id = i.by_id
                 WHERE i.user_id = ?1 ORDER BY i.created_at DESC"
            ))?;
            let rows = stmt.query_map(params![user_id], |r| {
                Ok((
                    room_at(r, 0)?,
                    user_at(r, ROOM_WIDTH)?,
                    r.get::<_, i64>(ROOM_WIDTH + 3)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (room, by, at) = row?;
                out.push(InviteRecord {
                    room: room_record(room)?,
                    by: user_summary(by)?,
                    at,
                });
            }
            Ok(out)
        })
    }

    fn delete_invite(
        &self,
        room: RoomId,
        user_id: UserId,
    ) -> BoxFuture<'static, StoreResult<bool>> {
        self.write(move |conn| {
            let n = conn.execute(
                "DELETE FROM invites WHERE room_id = ?1 AND user_id = ?2",
                params![to_i64(room.0), user_id],
            )?;
            Ok(n > 0)
        })
    }

    fn update_room(
        &self,
        room: RoomId,
        topic: Option<String>,
        slow_mode_secs: Option<u32>,
    ) -> BoxFuture<'static, StoreResult<()>> {
        self.write(move |conn| {
            let n = conn.execute(
                "UPDATE rooms SET topic = coalesce(?2, topic),
                                  slow_mode_secs = coalesce(?3, slow_mode_secs)
                 WHERE id = ?1",
                params![to_i64(room.0), topic, slow_mode_secs],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    fn filters(&self, room: Option<RoomId>) -> BoxFuture<'static, StoreResult<Vec<FilterRecord>>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT f.id, f.room_id, f.kind, f.pattern, f.action, u.username, f.created_at
                 FROM filters f JOIN users u ON u.id = f.created_by
                 WHERE f.room_id IS ?1 ORDER BY f.id",
            )?;
            let rows = stmt.query_map(params![room.map(|r| to_i64(r.0))], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, room, kind, pattern, action, by, at) = row?;
                let (kind, action) = parse_filter(&kind, &action)?;
                out.push(FilterRecord {
                    id,
                    room: room.map(|r| RoomId(to_u64(r))),
                    kind,
                    pattern,
                    action,
                    created_by: parse_user(by)?,
                    at,
                });
            }
            Ok(out)
        })
    }

    fn add_filter(&self, rule: NewFilterRecord) -> BoxFuture<'static, StoreResult<FilterRecord>> {
        self.write(move |conn| {
            let at = now_ms();
            conn.execute(
                "INSERT INTO filters (room_id, kind, pattern, action, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    rule.room.map(|r| to_i64(r.0)),
                    filter_kind_str(rule.kind),
                    rule.pattern,
                    filter_action_str(rule.action),
                    rule.created_by,
                    at
                ],
            )?;
            let id = conn.last_insert_rowid();
            let by: String = conn
                .prepare_cached("SELECT username FROM users WHERE id = ?1")?
                .query_row(params![rule.created_by], |r| r.get(0))?;
            Ok(FilterRecord {
                id,
                room: rule.room,
                kind: rule.kind,
                pattern: rule.pattern,
                action: rule.action,
                created_by: parse_user(by)?,
                at,
            })
        })
    }

    fn delete_filter(
        &self,
        room: Option<RoomId>,
        id: i64,
    ) -> BoxFuture<'static, StoreResult<bool>> {
        self.write(move |conn| {
            let n = conn.execute(
                "DELETE FROM filters WHERE id = ?1 AND room_id IS ?2",
                params![id, room.map(|r| to_i64(r.0))],
            )?;
            Ok(n > 0)
        })
    }

    fn audit(&self, entry: NewAudit) -> BoxFuture<'static, StoreResult<()>> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO audit (room_id, actor_id, action, target_id, reason, detail, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    entry.room.map(|r| to_i64(r.0)),
                    entry.actor,
                    entry.action,
                    entry.target,
                    entry.reason,
                    entry.detail,
                    now_ms()
                ],
            )?;
            Ok(())
        })
    }

    fn audit_log(
        &self,
        room: RoomId,
        before: Option<i64>,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<Vec<AuditRecord>>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT a.id, a.room_id, actor.username, a.action, target.username, a.reason,
                        a.detail, a.created_at
                 FROM audit a JOIN users actor ON actor.id = a.actor_id
                 LEFT JOIN users target ON target.id = a.target_id
                 WHERE a.room_id = ?1 AND a.id < ?2 ORDER BY a.id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![to_i64(room.0), before.unwrap_or(i64::MAX), limit],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<i64>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, i64>(7)?,
                    ))
                },
            )?;
            let mut out = Vec::new();
            for row in rows {
                let (id, room, actor, action, target, reason, detail, at) = row?;
                out.push(AuditRecord {
                    id,
                    room: room.map(|r| RoomId(to_u64(r))),
                    actor: parse_user(actor)?,
                    action,
                    target: target.map(parse_user).transpose()?,
                    reason,
                    detail,
                    at,
                });
            }
            Ok(out)
        })
    }

    fn append(&self, event: NewEvent) -> BoxFuture<'static, StoreResult<Appended>> {
        let jobs = self.jobs.clone();
        async move {
            let (tx, rx) = oneshot::channel();
            jobs.send(Job::Append(event, tx))
                .await
                .map_err(|_| StoreError::Closed)?;
            rx.await.map_err(|_| StoreError::Closed)?
        }
        .boxed()
    }

    fn messages_before(
        &self,
        room: RoomId,
        before: u64,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<MessagePage>> {
        self.read(move |conn| log::messages_before(conn, room, before, limit))
    }

    fn messages_after(
        &self,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<MessagePage>> {
        self.read(move |conn| log::messages_after(conn, room, after, limit))
    }

    fn message(
        &self,
        room: RoomId,
        seq: u64,
    ) -> BoxFuture<'static, StoreResult<Option<MessageEvent>>> {
        self.read(move |conn| log::message(conn, room, seq))
    }

    fn events_after(
        &self,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<Vec<MessageEvent>>> {
        self.read(move |conn| log::events_after(conn, room, after, limit))
    }

    fn read_counts(
        &self,
        user_id: UserId,
        rooms: Vec<RoomId>,
    ) -> BoxFuture<'static, StoreResult<Vec<ReadCounts>>> {
        self.read(move |conn| {
            let tx = conn.unchecked_transaction()?;
            let counts = rooms
                .into_iter()
                .map(|room| log::read_counts(&tx, user_id, room))
                .collect::<StoreResult<Vec<_>>>()?;
            tx.finish()?;
            Ok(counts)
        })
    }

    fn mark_read(
        &self,
        user_id: UserId,
        room: RoomId,
        seq: Option<u64>,
    ) -> BoxFuture<'static, StoreResult<ReadCounts>> {
        self.write(move |conn| log::mark_read(conn, user_id, room, seq))
    }

    fn mark_reads(
        &self,
        positions: Vec<(UserId, RoomId, u64)>,
    ) -> BoxFuture<'static, StoreResult<Vec<ReadCounts>>> {
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let counts = positions
                .into_iter()
                .map(|(user, room, seq)| log::mark_read(&tx, user, room, Some(seq)))
                .collect::<StoreResult<Vec<_>>>()?;
            tx.commit()?;
            Ok(counts)
        })
    }

    fn mark_all_read(
        &self,
        user_id: UserId,
    ) -> BoxFuture<'static, StoreResult<Vec<(RoomId, ReadCounts)>>> {
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let rooms: Vec<i64> = tx
                .prepare_cached("SELECT room_id FROM room_members WHERE user_id = ?1")?
                .query_map(params![user_id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::with_capacity(rooms.len());
            for room in rooms {
                let room = RoomId(to_u64(room));
                out.push((room, log::mark_read(&tx, user_id, room, None)?));
            }
            tx.commit()?;
            Ok(out)
        })
    }

    fn add_file(&self, file: NewFile) -> BoxFuture<'static, StoreResult<FileRecord>> {
        self.write(move |conn| files::add_file(conn, &file))
    }

    fn file(&self, id: u64) -> BoxFuture<'static, StoreResult<Option<FileRecord>>> {
        self.read(move |conn| files::file(conn, id))
    }

    fn message_files(
        &self,
        room: RoomId,
        seq: u64,
    ) -> BoxFuture<'static, StoreResult<Vec<FileRecord>>> {
        self.read(move |conn| files::message_files(conn, room, seq))
    }

    fn file_usage(&self, user_id: UserId) -> BoxFuture<'static, StoreResult<u64>> {
        self.read(move |conn| files::usage(conn, user_id))
    }

    fn hash_in_use(&self, hash: [u8; 32]) -> BoxFuture<'static, StoreResult<bool>> {
        // On the writer: it must see every write acknowledged before it (a read connection's
        // snapshot could be older than a delete that just committed).
        self.write(move |conn| files::hash_in_use(conn, &hash))
    }

    fn delete_unsent_files(&self, before: i64) -> BoxFuture<'static, StoreResult<Vec<[u8; 32]>>> {
        self.write(move |conn| files::delete_unsent(conn, before))
    }

    fn lock_content(&self, _hash: [u8; 32]) -> BoxFuture<'static, StoreResult<ContentLock>> {
        // One server per SQLite file: its own lock is enough.
        futures::future::ready(Ok(ContentLock::none())).boxed()
    }

    fn search(&self, query: SearchQuery) -> BoxFuture<'static, StoreResult<SearchResults>> {
        let indexed = self.index_now();
        let found = self.read(move |conn| search::search(conn, &query));
        async move {
            indexed.await?;
            found.await
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Change, conformance};

    #[tokio::test]
    async fn the_sqlite_store_passes_the_conformance_suite() {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let next = std::sync::atomic::AtomicU32::new(0);
        conformance::run(Box::new(move |recorder| {
            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = dir.path().join(format!("store-{n}.db"));
            async move {
                let store: Arc<dyn Store> = Arc::new(
                    SqliteStore::open(&path, Synchronous::Normal, recorder).expect("open"),
                );
                store
            }
            .boxed()
        }))
        .await;
    }

    fn message(room: RoomId, author_id: UserId, client_id: &str) -> NewEvent {
        NewEvent::post(
            room,
            author_id,
            Username::parse("alice").expect("valid"),
            DisplayName::parse("alice").expect("valid"),
            shared::ClientId::parse(client_id).expect("valid"),
            format!("text of {client_id}"),
        )
    }

    #[tokio::test]
    async fn a_failed_append_in_a_batch_neither_uses_nor_skips_a_seq() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let ignore = Arc::new(conformance::Recorder::default());
        let store = SqliteStore::open(&path, Synchronous::Normal, ignore.clone()).expect("open");
        let user = store
            .create_user(
                Username::parse("alice").expect("valid"),
                DisplayName::parse("Alice").expect("valid"),
                "hash".into(),
            )
            .await
            .expect("user");
        let general = shared::DEFAULT_ROOM_ID;
        // Queued together, so they share one group commit; the middle one names no room.
        let appends = [
            store.append(message(general, user, "a")),
            store.append(message(RoomId(9_999), user, "b")),
            store.append(message(general, user, "c")),
        ];
        let [a, b, c] = appends;
        let (a, b, c) = tokio::join!(a, b, c);
        let seq = |r: StoreResult<Appended>| r.expect("stored").event().map(|e| e.seq);
        assert_eq!(seq(a), Some(1));
        assert!(matches!(b, Err(StoreError::NotFound)));
        assert_eq!(seq(c), Some(2));
        drop(store);

        // A new writer reads the head back from the log.
        let store = SqliteStore::open(&path, Synchronous::Normal, ignore).expect("reopen");
        let d = store
            .append(message(general, user, "d"))
            .await
            .expect("d stored");
        assert_eq!(d.event().map(|e| e.seq), Some(3));
        let again = store
            .append(message(general, user, "a"))
            .await
            .expect("dedup");
        assert!(again.is_duplicate());
        assert_eq!(again.event().map(|e| e.seq), Some(1));
        let found = store.room(general).await.expect("read").expect("exists");
        assert_eq!(found.last_seq, 3);
    }

    /// The texts of a search of `general` for `q`.
    async fn texts(store: &SqliteStore, q: &str) -> Vec<String> {
        conformance::found(store, conformance::query(q, vec![shared::DEFAULT_ROOM_ID])).await
    }

    /// The watermark and the log's last id, read beside the store.
    fn lag(path: &Path) -> (i64, i64) {
        let conn = open_reader(path).expect("reader");
        conn.query_row(
            "SELECT (SELECT indexed_upto FROM search_state), (SELECT max(id) FROM events)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("read")
    }

    #[tokio::test]
    async fn search_indexes_behind_the_log_changes_before_indexing_and_a_crash_lose_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let ignore = Arc::new(conformance::Recorder::default());
        // No ticker: only a search brings the index up to date.
        let store =
            SqliteStore::open_with(&path, Synchronous::Normal, ignore.clone(), None).expect("open");
        let user = conformance::new_user(&store, "alice").await;
        let room = shared::DEFAULT_ROOM_ID;
        let post = |id: &str, text: &str| NewEvent {
            change: Change::Post {
                text: text.into(),
                reply_to: None,
                mentions: Vec::new(),
                attachments: Vec::new(),
            },
            ..message(room, user, id)
        };
        let change = |id: &str, change: Change| NewEvent {
            change,
            ..message(room, user, id)
        };
        for (id, text) in [
            ("a", "kept apple"),
            ("b", "old banana"),
            ("c", "gone durian"),
        ] {
            store.append(post(id, text)).await.expect("posted");
        }
        // Indexed once, then edited: its old words leave the index, its new ones enter.
        assert_eq!(texts(&store, "apple").await, ["kept apple"]);
        store.append(post("d", "first fig")).await.expect("posted");
        let (upto, last) = lag(&path);
        assert!(
            upto < last,
            "the last post waits for the index ({upto} < {last})"
        );
        // Changed before they are indexed: an edit, a deletion.
        store
            .append(change(
                "e1",
                Change::Edit {
                    target: 4,
                    text: "second grape".into(),
                    mentions: Vec::new(),
                },
            ))
            .await
            .expect("edited");
        store
            .append(change(
                "e2",
                Change::Delete {
                    target: 3,
                    author_only: true,
                },
            ))
            .await
            .expect("deleted");
        // Changed after: an edit of an indexed message.
        store
            .append(change(
                "e3",
                Change::Edit {
                    target: 2,
                    text: "new cherry".into(),
                    mentions: Vec::new(),
                },
            ))
            .await
            .expect("edited");
        for (q, want) in [
            ("banana", vec![]),
            ("cherry", vec!["new cherry"]),
            ("durian", vec![]),
            ("fig", vec![]),
            ("grape", vec!["second grape"]),
            ("apple", vec!["kept apple"]),
        ] {
            assert_eq!(texts(&store, q).await, want, "{q}");
        }
        let (upto, last) = lag(&path);
        assert_eq!(upto, last, "a search leaves nothing waiting");
        let conn = Connection::open(&path).expect("open");
        conn.execute(
            "INSERT INTO message_search (message_search) VALUES ('integrity-check')",
            [],
        )
        .expect("the index is consistent");
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM message_search_docsize", [], |r| {
                r.get(0)
            })
            .expect("counted");
        assert_eq!(rows, 3, "one row per live message (apple, cherry, grape)");
        drop(conn);

        // Stored, not indexed, and the process gone: the next writer picks up from the mark.
        store.append(post("f", "late lemon")).await.expect("posted");
        drop(store);
        let (upto, last) = lag(&path);
        assert!(upto < last, "left unindexed ({upto} < {last})");
        let store =
            SqliteStore::open_with(&path, Synchronous::Normal, ignore, None).expect("reopen");
        assert_eq!(texts(&store, "lemon").await, ["late lemon"]);
        assert_eq!(texts(&store, "cherry").await, ["new cherry"]);
    }
}
