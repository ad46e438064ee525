//! The embedded default: one SQLite file in WAL mode.
//!
//! # Threads
//! - One **writer thread** owns the only write connection and runs every write in arrival order,
//!   so writes never contend for SQLite's lock. Appends that queue up while a commit is in flight
//!   are stored together in one transaction (group commit), each in its own savepoint so that one
//!   failing append cannot undo another; each is acknowledged only after that transaction commits.
//! - **Reads** run on tokio's blocking pool with connections from a small pool. WAL lets them run
//!   beside the writer and see only committed data.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use futures::future::BoxFuture;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use shared::{ClientId, MessageEvent, RoomName, Username};
use tokio::sync::{mpsc, oneshot};

use super::{
    Appended, CommitListener, MAX_BATCH, NewMessage, RoomId, RoomRecord, SessionRecord, Store,
    StoreError, StoreResult, UserId, UserRecord, now_ms,
};

/// How many jobs may wait for the writer before callers wait to enqueue (backpressure).
const WRITE_QUEUE: usize = 4096;
/// Idle read connections kept open.
const READ_POOL: usize = 8;

/// The schema, applied in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[r#"
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
"#];

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
    Append(NewMessage, oneshot::Sender<StoreResult<Appended>>),
    /// Any other write; runs alone, in order with the appends.
    Exec(Box<dyn FnOnce(&mut Connection) + Send>),
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
    /// The checkpoint thread runs while any clone of the store holds this.
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
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "busy_timeout", 5000)?;
        // Checkpoints copy the WAL back into the database file and fsync it. Left automatic, one
        // runs inside whichever commit crosses the threshold and stalls every append queued
        // behind it; the checkpoint thread does them instead (see `checkpoint_loop`).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        migrate(&mut conn)?;

        let alive = Arc::new(());
        let checkpointer = Connection::open(path)?;
        checkpointer.pragma_update(None, "busy_timeout", 5000)?;
        let watch = Arc::downgrade(&alive);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpointer, &watch))
            .map_err(|e| StoreError::Task(e.to_string()))?;

        let (jobs, rx) = mpsc::channel(WRITE_QUEUE);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, listener))
            .map_err(|e| StoreError::Task(e.to_string()))?;
        Ok(Self {
            jobs,
            readers: Arc::new(Mutex::new(Vec::new())),
            path: Arc::new(path.to_owned()),
            _alive: alive,
        })
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
fn checkpoint_loop(conn: &Connection, alive: &std::sync::Weak<()>) {
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        let last = alive.strong_count() == 0;
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "checkpoint failed");
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
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// The writer thread: runs jobs in order until every sender is gone.
fn writer_loop(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    listener: Arc<dyn CommitListener>,
) {
    let mut next: Option<Job> = None;
    let mut rooms = RoomHeads::default();
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match rx.blocking_recv() {
                Some(job) => job,
                None => return,
            },
        };
        match job {
            Job::Exec(f) => f(&mut conn),
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
                commit_batch(&mut conn, &mut rooms, batch, listener.as_ref());
            }
        }
    }
}

type AppendReply = oneshot::Sender<StoreResult<Appended>>;

/// What the writer knows of each room it has appended to: its name and highest `seq`.
///
/// The writer is the only one that appends, so it can keep each room's head in memory instead of
/// updating a counter row in every commit (which would dirty one more page per message). A
/// room's head is read once from the log (`max(seq)`), then advanced by committed appends only:
/// a batch works on a copy that is kept only if its transaction commits, so a rollback can
/// never leave a `seq` used or skipped.
#[derive(Debug, Default, Clone)]
struct RoomHeads {
    heads: HashMap<RoomId, (RoomName, u64)>,
}

impl RoomHeads {
    /// The room's name and highest `seq`, read from the database on first use.
    fn get(&mut self, conn: &Connection, room_id: RoomId) -> StoreResult<&mut (RoomName, u64)> {
        match self.heads.entry(room_id) {
            Entry::Occupied(head) => Ok(head.into_mut()),
            Entry::Vacant(slot) => {
                let (name, last): (String, i64) = conn
                    .prepare_cached(
                        "SELECT name, (SELECT coalesce(max(seq), 0) FROM events WHERE room_id = rooms.id)
                         FROM rooms WHERE id = ?1",
                    )?
                    .query_row(params![room_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?
                    .ok_or(StoreError::NotFound)?;
                Ok(slot.insert((parse_room(name)?, to_u64(last))))
            }
        }
    }
}

/// Stores a batch of appends in one transaction, publishes the new events, then answers each.
fn commit_batch(
    conn: &mut Connection,
    rooms: &mut RoomHeads,
    batch: Vec<(NewMessage, AppendReply)>,
    listener: &dyn CommitListener,
) {
    let mut outcomes: Vec<StoreResult<Appended>> = Vec::with_capacity(batch.len());
    let mut heads = rooms.clone();
    let committed = (|| -> StoreResult<()> {
        let mut tx = conn.transaction()?;
        if let [(message, _)] = batch.as_slice() {
            // Alone in its transaction, an append needs no savepoint: if it fails, the (empty)
            // transaction is simply committed with nothing in it.
            outcomes.push(append_one(&tx, &mut heads, message));
        } else {
            for (message, _) in &batch {
                let mut sp = tx.savepoint()?;
                let outcome = append_one(&sp, &mut heads, message);
                if outcome.is_ok() {
                    sp.commit()?;
                } else {
                    sp.rollback()?;
                }
                outcomes.push(outcome);
            }
        }
        tx.commit()?;
        Ok(())
    })();

    if let Err(e) = committed {
        tracing::error!(error = %e, size = batch.len(), "group commit failed");
        for (_, reply) in batch {
            let _ = reply.send(Err(StoreError::Task(format!("commit failed: {e}"))));
        }
        return;
    }
    *rooms = heads;
    for outcome in outcomes.iter().flatten() {
        if !outcome.duplicate {
            listener.committed(&outcome.event);
        }
    }
    for ((_, reply), outcome) in batch.into_iter().zip(outcomes) {
        let _ = reply.send(outcome);
    }
}

/// Appends one message inside the open transaction `conn`.
fn append_one(conn: &Connection, heads: &mut RoomHeads, m: &NewMessage) -> StoreResult<Appended> {
    let earlier = conn
        .prepare_cached(
            "SELECT e.id, e.seq, e.body, e.created_at, r.name
             FROM events e JOIN rooms r ON r.id = e.room_id
             WHERE e.author_id = ?1 AND e.client_id = ?2",
        )?
        .query_row(params![m.author_id, m.client_id.as_str()], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .optional()?;
    if let Some((id, seq, text, ts, room)) = earlier {
        return Ok(Appended {
            event: MessageEvent {
                room: parse_room(room)?,
                seq: to_u64(seq),
                id: to_u64(id),
                author: m.author.clone(),
                text,
                ts,
                client_id: Some(m.client_id.clone()),
            },
            duplicate: true,
        });
    }

    let (room, last) = heads.get(conn, m.room_id)?;
    let seq = *last + 1;
    let ts = now_ms();
    conn.prepare_cached(
        "INSERT INTO events (room_id, seq, kind, author_id, client_id, body, created_at)
         VALUES (?1, ?2, 'message', ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        m.room_id,
        to_i64(seq),
        m.author_id,
        m.client_id.as_str(),
        m.text,
        ts
    ])?;
    // Only now, with the row in place, does the room's head move.
    *last = seq;
    Ok(Appended {
        event: MessageEvent {
            room: room.clone(),
            seq,
            id: to_u64(conn.last_insert_rowid()),
            author: m.author.clone(),
            text: m.text.clone(),
            ts,
            client_id: Some(m.client_id.clone()),
        },
        duplicate: false,
    })
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Rows were validated on the way in; a row that no longer parses means the file was edited by
/// hand, which is reported rather than papered over.
fn parse_room(raw: String) -> StoreResult<RoomName> {
    RoomName::parse(raw).map_err(|e| StoreError::Task(format!("corrupt room name: {e}")))
}

fn parse_user(raw: String) -> StoreResult<Username> {
    Username::parse(raw).map_err(|e| StoreError::Task(format!("corrupt username: {e}")))
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation)
}

/// Reads message rows `(id, seq, body, created_at, client_id, room, author)`.
fn read_messages(
    conn: &Connection,
    sql: &str,
    room_id: RoomId,
    bound: u64,
    limit: u32,
) -> StoreResult<Vec<MessageEvent>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params![room_id, to_i64(bound), limit], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, seq, text, ts, client_id, room, author) = row?;
        out.push(MessageEvent {
            room: parse_room(room)?,
            seq: to_u64(seq),
            id: to_u64(id),
            author: parse_user(author)?,
            text,
            ts,
            client_id: client_id.and_then(|c| ClientId::parse(c).ok()),
        });
    }
    Ok(out)
}

impl Store for SqliteStore {
    fn create_user(
        &self,
        username: Username,
        password_hash: String,
    ) -> BoxFuture<'static, StoreResult<UserId>> {
        self.write(move |conn| {
            match conn.execute(
                "INSERT INTO users (username, password_hash, created_at) VALUES (?1, ?2, ?3)",
                params![username.as_str(), password_hash, now_ms()],
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
                    "SELECT id, username, password_hash FROM users WHERE username = ?1",
                )?
                .query_row(params![username.as_str()], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?))
                })
                .optional()?;
            row.map(|(id, name, password_hash)| {
                Ok(UserRecord {
                    id,
                    username: parse_user(name)?,
                    password_hash,
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
                    "SELECT s.user_id, u.username, s.expires_at
                     FROM sessions s JOIN users u ON u.id = s.user_id
                     WHERE s.token_hash = ?1",
                )?
                .query_row(params![&token_hash[..]], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?))
                })
                .optional()?;
            row.map(|(user_id, name, expires_at)| {
                Ok(SessionRecord {
                    user_id,
                    username: parse_user(name)?,
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
        after: Option<RoomName>,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<Vec<RoomRecord>>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, name, (SELECT coalesce(max(seq), 0) FROM events WHERE room_id = rooms.id)
                 FROM rooms WHERE ?1 IS NULL OR name > ?1 ORDER BY name LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after.as_ref().map(RoomName::as_str), limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, name, last_seq) = row?;
                out.push(RoomRecord {
                    id,
                    name: parse_room(name)?,
                    last_seq: to_u64(last_seq),
                });
            }
            Ok(out)
        })
    }

    fn rooms_created_by(&self, user: UserId) -> BoxFuture<'static, StoreResult<u64>> {
        self.read(move |conn| {
            let n: i64 = conn
                .prepare_cached("SELECT count(*) FROM rooms WHERE created_by = ?1")?
                .query_row(params![user], |r| r.get(0))?;
            Ok(to_u64(n))
        })
    }

    fn create_room(
        &self,
        name: RoomName,
        created_by: Option<UserId>,
    ) -> BoxFuture<'static, StoreResult<RoomRecord>> {
        self.write(move |conn| {
            match conn.execute(
                "INSERT INTO rooms (name, created_by, created_at) VALUES (?1, ?2, ?3)",
                params![name.as_str(), created_by, now_ms()],
            ) {
                Ok(_) => Ok(RoomRecord {
                    id: conn.last_insert_rowid(),
                    name,
                    last_seq: 0,
                }),
                Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn find_room(&self, name: RoomName) -> BoxFuture<'static, StoreResult<Option<RoomRecord>>> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT id, (SELECT coalesce(max(seq), 0) FROM events WHERE room_id = rooms.id)
                     FROM rooms WHERE name = ?1",
                )?
                .query_row(params![name.as_str()], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()?
                .map(|(id, last_seq)| RoomRecord {
                    id,
                    name,
                    last_seq: to_u64(last_seq),
                }))
        })
    }

    fn add_member(&self, room_id: RoomId, user_id: UserId) -> BoxFuture<'static, StoreResult<()>> {
        self.write(move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO room_members (room_id, user_id, joined_at) VALUES (?1, ?2, ?3)",
                params![room_id, user_id, now_ms()],
            )?;
            Ok(())
        })
    }

    fn append(&self, message: NewMessage) -> BoxFuture<'static, StoreResult<Appended>> {
        let jobs = self.jobs.clone();
        async move {
            let (tx, rx) = oneshot::channel();
            jobs.send(Job::Append(message, tx))
                .await
                .map_err(|_| StoreError::Closed)?;
            rx.await.map_err(|_| StoreError::Closed)?
        }
        .boxed()
    }

    fn messages_before(
        &self,
        room_id: RoomId,
        before: u64,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<Vec<MessageEvent>>> {
        self.read(move |conn| {
            let mut page = read_messages(
                conn,
                "SELECT e.id, e.seq, e.body, e.created_at, e.client_id, r.name, u.username
                 FROM events e JOIN rooms r ON r.id = e.room_id JOIN users u ON u.id = e.author_id
                 WHERE e.room_id = ?1 AND e.seq < ?2 AND e.kind = 'message'
                 ORDER BY e.seq DESC LIMIT ?3",
                room_id,
                before,
                limit,
            )?;
            page.reverse();
            Ok(page)
        })
    }

    fn messages_after(
        &self,
        room_id: RoomId,
        after: u64,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<Vec<MessageEvent>>> {
        self.read(move |conn| {
            read_messages(
                conn,
                "SELECT e.id, e.seq, e.body, e.created_at, e.client_id, r.name, u.username
                 FROM events e JOIN rooms r ON r.id = e.room_id JOIN users u ON u.id = e.author_id
                 WHERE e.room_id = ?1 AND e.seq > ?2 AND e.kind = 'message'
                 ORDER BY e.seq ASC LIMIT ?3",
                room_id,
                after,
                limit,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ignore;
    impl CommitListener for Ignore {
        fn committed(&self, _: &MessageEvent) {}
    }

    fn message(room_id: RoomId, author_id: UserId, client_id: &str) -> NewMessage {
        NewMessage {
            room_id,
            author_id,
            author: Username::parse("alice").expect("valid"),
            client_id: ClientId::parse(client_id).expect("valid"),
            text: format!("text of {client_id}"),
        }
    }

    #[tokio::test]
    async fn a_failed_append_in_a_batch_neither_uses_nor_skips_a_seq() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path, Synchronous::Normal, Arc::new(Ignore)).expect("open");
        let user = store
            .create_user(Username::parse("alice").expect("valid"), "hash".into())
            .await
            .expect("user");
        let general = store
            .find_room(RoomName::parse("general").expect("valid"))
            .await
            .expect("read")
            .expect("general exists");
        // Queued together, so they share one group commit; the middle one names no room.
        let appends = [
            store.append(message(general.id, user, "a")),
            store.append(message(9_999, user, "b")),
            store.append(message(general.id, user, "c")),
        ];
        let [a, b, c] = appends;
        let (a, b, c) = tokio::join!(a, b, c);
        assert_eq!(a.expect("a stored").event.seq, 1);
        assert!(matches!(b, Err(StoreError::NotFound)));
        assert_eq!(c.expect("c stored").event.seq, 2);
        drop(store);

        // A new writer reads the head back from the log.
        let store =
            SqliteStore::open(&path, Synchronous::Normal, Arc::new(Ignore)).expect("reopen");
        let d = store
            .append(message(general.id, user, "d"))
            .await
            .expect("d stored");
        assert_eq!(d.event.seq, 3);
        let again = store
            .append(message(general.id, user, "a"))
            .await
            .expect("dedup");
        assert!(again.duplicate);
        assert_eq!(again.event.seq, 1);
        let found = store
            .find_room(RoomName::parse("general").expect("valid"))
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(found.last_seq, 3);
    }
}
