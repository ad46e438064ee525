//! The shared store: PostgreSQL through sqlx, for several nodes on one database.
//!
//! Chosen by a `--database postgres://...` URL (see [`crate::config::Database`]); a file path
//! keeps SQLite. The schema is in `postgres/migrations/`, applied in order at open under an
//! advisory lock (so that nodes starting together migrate once), and recorded in
//! `schema_migrations`.
//!
//! # Writes and the log
//! - **Appends** go through one appender task per store (see [`log`]): the appends that queue up
//!   while a commit is in flight are stored together in one transaction (group commit), and
//!   acknowledged after the commit, once the [`CommitListener`] has them. A refused append writes
//!   nothing; a failed statement makes the batch start again with a savepoint per append.
//!   A room's next `seq` is taken by `UPDATE rooms SET head = head + 1 ... RETURNING head` inside
//!   that transaction: the row lock orders appends to a room across every node, and a rollback
//!   gives the number back, so `seq` stays dense.
//! - Other writes are single statements or short transactions on the pool. Where SQLite relies
//!   on its single writer to make a check and a write atomic (a ban against a join, a quota), a
//!   row or advisory lock does it here.
//! - Reads that must agree with themselves (a history page and the head it reports, unread
//!   counts, search) run in a `REPEATABLE READ` read-only transaction.

mod files;
mod log;
mod search;
pub mod throwaway;

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use shared::{DisplayName, MessageEvent, Role, RoomId, RoomName, Username};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Row, Transaction};
use tokio::sync::mpsc;

use super::codec::{
    direct_key, display_name, filter_action_str, filter_kind_str, kind_str, parse_filter,
    parse_kind, parse_role, parse_room, parse_user, role_str, to_i64, to_u64,
};
use super::{
    AccessRecord, Appended, AuditRecord, CommitListener, ContentLock, FileRecord, FilterRecord,
    InviteRecord, MemberRecord, MessagePage, NewAudit, NewEvent, NewFile, NewFilterRecord,
    NewRoomRecord, ReadCounts, RoomAndRole, RoomRecord, SearchQuery, SearchResults, SessionRecord,
    Store, StoreError, StoreResult, UserId, UserRecord, UserSummary, now_ms,
};

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolClosed => StoreError::Closed,
            e => StoreError::Backend(e.to_string()),
        }
    }
}

/// The migrations, in order: (version, SQL). A database that has run a version this list does
/// not know was migrated by a newer release, and is refused.
const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("postgres/migrations/0001_schema.sql"))];

/// The advisory lock that serialises migrations between nodes starting at once.
const MIGRATION_LOCK: i64 = 0x6368_6174_6d69_6772;

/// Connections kept by the pool (the appender takes one per batch).
const POOL_SIZE: u32 = 16;
/// How long a call waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How many appends may wait for the appender before callers wait to enqueue (backpressure).
const APPEND_QUEUE: usize = 4096;

/// The PostgreSQL [`Store`]. Cheap to clone: every clone shares the pool and the appender.
#[derive(Clone)]
pub struct PgStore {
    /// Connections for reads and for writes other than appends.
    pool: PgPool,
    /// Queue of the appender task, which ends when every clone is dropped.
    appends: mpsc::Sender<(NewEvent, log::AppendReply)>,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`),
    /// migrates it, and starts the appender, which reports each committed event to `listener`.
    pub async fn open(url: &str, listener: Arc<dyn CommitListener>) -> StoreResult<Self> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Backend(format!("bad database URL: {e}")))?;
        // One connection first, alone: a pool that cannot connect reports only that it timed
        // out, where this says why (refused, no such database, authentication).
        sqlx::PgConnection::connect_with(&options)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))?
            .close()
            .await?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        migrate(&pool).await?;
        let (appends, rx) = mpsc::channel(APPEND_QUEUE);
        tokio::spawn(log::appender(pool.clone(), rx, listener));
        Ok(Self { pool, appends })
    }
}

/// Applies the migrations not yet run, each in its own transaction, holding an advisory lock so
/// that only one node migrates.
/// The first key of every content lock (`pg_advisory_lock(int, int)`: a key space apart from
/// the migrations' single `bigint` key).
const CONTENT_LOCKS: i32 = 0x6669_6c65; // "file"

/// The second key of a content's lock: the first four bytes of its hash (two contents sharing
/// them share a lock, which only makes them wait for each other).
fn content_lock_key(hash: &[u8; 32]) -> i32 {
    i32::from_be_bytes([hash[0], hash[1], hash[2], hash[3]])
}

/// A held content lock: a session-level advisory lock on its own pooled connection, released
/// when dropped (by `pg_advisory_unlock` on that connection, or, if that cannot run, by closing
/// the connection, which ends the session and its locks: a connection never goes back to the
/// pool still holding one).
struct HeldContent {
    conn: Option<sqlx::pool::PoolConnection<sqlx::Postgres>>,
    key: i32,
}

impl Drop for HeldContent {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let key = self.key;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                        .bind(CONTENT_LOCKS)
                        .bind(key)
                        .execute(&mut *conn)
                        .await;
                    if unlocked.is_err() {
                        drop(conn.detach());
                    }
                });
            }
            Err(_) => drop(conn.detach()),
        }
    }
}

async fn migrate(pool: &PgPool) -> StoreResult<()> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    let result = run_migrations(&mut conn).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await;
    result?;
    unlocked?;
    Ok(())
}

async fn run_migrations(conn: &mut PgConnection) -> StoreResult<()> {
    // Checked rather than `CREATE TABLE IF NOT EXISTS`, whose notice would be logged at every
    // start; the advisory lock makes the check and the creation one step.
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('schema_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        sqlx::query(
            "CREATE TABLE schema_migrations (
                 version    INTEGER PRIMARY KEY,
                 applied_at BIGINT NOT NULL
             )",
        )
        .execute(&mut *conn)
        .await?;
    }
    let done: i32 = sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM schema_migrations")
        .fetch_one(&mut *conn)
        .await?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if done > known {
        return Err(StoreError::Task(format!(
            "the database is at schema version {done}, newer than this server's {known}: \
             run a newer release"
        )));
    }
    for &(version, sql) in MIGRATIONS.iter().filter(|m| m.0 > done) {
        let mut tx = conn.begin().await?;
        // A string without arguments goes as a simple query, which may hold several statements.
        sqlx::Executor::execute(&mut *tx, sql)
            .await
            .map_err(|e| StoreError::Backend(format!("migration {version} failed: {e}")))?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(version)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, "database migrated");
    }
    Ok(())
}

/// A read-only transaction that sees one snapshot for all its statements.
async fn snapshot(pool: &PgPool) -> StoreResult<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// What a failed statement says about the rows it touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Violation {
    /// A unique value is taken.
    Unique,
    /// A referenced row does not exist.
    Reference,
}

fn violation(e: &sqlx::Error) -> Option<Violation> {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => Some(Violation::Unique),
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => Some(Violation::Reference),
        _ => None,
    }
}

/// Maps a missing reference (no such room or user) to [`StoreError::NotFound`].
fn not_found_on_reference(e: sqlx::Error) -> StoreError {
    if violation(&e) == Some(Violation::Reference) {
        StoreError::NotFound
    } else {
        e.into()
    }
}

/// A limit as PostgreSQL takes it.
fn limit(n: u32) -> i64 {
    i64::from(n)
}

/// The key of the advisory lock that makes a check of one user in one room (a ban) atomic with
/// a write (a join). Two pairs may share a key; they then merely wait for each other.
fn pair_lock(room: RoomId, user: UserId) -> i64 {
    to_i64(room.0).wrapping_mul(1_000_003).wrapping_add(user)
}

/// The columns [`room_at`] reads, in order ([`ROOM_WIDTH`] of them).
const ROOM_COLUMNS: &str = "rooms.id, rooms.name, rooms.kind, rooms.topic, rooms.slow_mode_secs, \
     rooms.created_by, rooms.direct_key, rooms.head";
/// How many columns [`ROOM_COLUMNS`] holds.
const ROOM_WIDTH: usize = 8;

/// Reads the [`ROOM_COLUMNS`] starting at column `at`.
fn room_at(r: &PgRow, at: usize) -> StoreResult<RoomRecord> {
    let kind: String = r.try_get(at + 2)?;
    let slow: i32 = r.try_get(at + 4)?;
    let direct: Option<String> = r.try_get(at + 6)?;
    Ok(RoomRecord {
        id: RoomId(to_u64(r.try_get(at)?)),
        name: parse_room(r.try_get(at + 1)?)?,
        kind: parse_kind(&kind)?,
        topic: r.try_get(at + 3)?,
        slow_mode_secs: u32::try_from(slow).unwrap_or(0),
        created_by: r.try_get(at + 5)?,
        direct: direct
            .as_deref()
            .map(|key| key.split(',').map(|h| parse_user(h.to_owned())).collect())
            .transpose()?
            .unwrap_or_default(),
        last_seq: to_u64(r.try_get(at + 7)?),
    })
}

/// Reads a user summary (id, handle, display name) starting at column `at`.
fn user_at(r: &PgRow, at: usize) -> StoreResult<UserSummary> {
    let username = parse_user(r.try_get(at + 1)?)?;
    Ok(UserSummary {
        id: r.try_get(at)?,
        display_name: display_name(r.try_get(at + 2)?, &username)?,
        username,
    })
}

/// A room by id, on any connection.
async fn room_by_id(conn: &mut PgConnection, room: RoomId) -> StoreResult<Option<RoomRecord>> {
    sqlx::query(&format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id = $1"))
        .bind(to_i64(room.0))
        .fetch_optional(conn)
        .await?
        .map(|r| room_at(&r, 0))
        .transpose()
}

/// The columns of a membership: user summary (3), role, muted_until.
const MEMBER_SELECT: &str = "SELECT u.id, u.username, u.display_name, m.role, mu.until
     FROM room_members m JOIN users u ON u.id = m.user_id
     LEFT JOIN mutes mu ON mu.room_id = m.room_id AND mu.user_id = m.user_id";

fn member_row(r: &PgRow) -> StoreResult<MemberRecord> {
    let role: String = r.try_get(3)?;
    Ok(MemberRecord {
        user: user_at(r, 0)?,
        role: parse_role(&role)?,
        muted_until: r.try_get(4)?,
    })
}

async fn member_of(
    conn: &mut PgConnection,
    room: RoomId,
    user_id: UserId,
) -> StoreResult<Option<MemberRecord>> {
    sqlx::query(&format!(
        "{MEMBER_SELECT} WHERE m.room_id = $1 AND m.user_id = $2"
    ))
    .bind(to_i64(room.0))
    .bind(user_id)
    .fetch_optional(conn)
    .await?
    .map(|r| member_row(&r))
    .transpose()
}

async fn is_invited(conn: &mut PgConnection, room: RoomId, user_id: UserId) -> StoreResult<bool> {
    Ok(
        sqlx::query("SELECT 1 FROM invites WHERE room_id = $1 AND user_id = $2")
            .bind(to_i64(room.0))
            .bind(user_id)
            .fetch_optional(conn)
            .await?
            .is_some(),
    )
}

async fn ban_of(
    conn: &mut PgConnection,
    room: RoomId,
    user_id: UserId,
) -> StoreResult<Option<Option<String>>> {
    Ok(
        sqlx::query_scalar("SELECT reason FROM bans WHERE room_id = $1 AND user_id = $2")
            .bind(to_i64(room.0))
            .bind(user_id)
            .fetch_optional(conn)
            .await?,
    )
}

impl Store for PgStore {
    fn create_user(
        &self,
        username: Username,
        display_name: DisplayName,
        password_hash: String,
    ) -> BoxFuture<'static, StoreResult<UserId>> {
        let pool = self.pool.clone();
        async move {
            // The first account administers the server.
            let done = sqlx::query_scalar(
                "INSERT INTO users (username, display_name, password_hash, created_at, is_admin,
                                    name_key)
                 VALUES ($1, $2, $3, $4, NOT EXISTS (SELECT 1 FROM users), $5)
                 RETURNING id",
            )
            .bind(username.as_str())
            .bind(display_name.as_str())
            .bind(password_hash)
            .bind(now_ms())
            .bind(display_name.as_str().to_lowercase())
            .fetch_one(&pool)
            .await;
            match done {
                Ok(id) => Ok(id),
                Err(e) if violation(&e) == Some(Violation::Unique) => Err(StoreError::Conflict),
                Err(e) => Err(e.into()),
            }
        }
        .boxed()
    }

    fn find_user(&self, username: Username) -> BoxFuture<'static, StoreResult<Option<UserRecord>>> {
        let pool = self.pool.clone();
        async move {
            let row = sqlx::query(
                "SELECT id, username, password_hash, display_name, is_admin FROM users
                 WHERE lower(username) = lower($1)",
            )
            .bind(username.as_str())
            .fetch_optional(&pool)
            .await?;
            row.map(|r| {
                let username = parse_user(r.try_get(1)?)?;
                Ok(UserRecord {
                    id: r.try_get(0)?,
                    display_name: display_name(r.try_get(3)?, &username)?,
                    username,
                    password_hash: r.try_get(2)?,
                    is_admin: r.try_get(4)?,
                })
            })
            .transpose()
        }
        .boxed()
    }

    fn create_session(
        &self,
        token_hash: [u8; 32],
        user_id: UserId,
        expires_at: i64,
    ) -> BoxFuture<'static, StoreResult<()>> {
        let pool = self.pool.clone();
        async move {
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&token_hash[..])
            .bind(user_id)
            .bind(now_ms())
            .bind(expires_at)
            .execute(&pool)
            .await?;
            Ok(())
        }
        .boxed()
    }

    fn find_session(
        &self,
        token_hash: [u8; 32],
    ) -> BoxFuture<'static, StoreResult<Option<SessionRecord>>> {
        let pool = self.pool.clone();
        async move {
            let row = sqlx::query(
                "SELECT s.user_id, u.username, s.expires_at, u.display_name, u.is_admin
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = $1",
            )
            .bind(&token_hash[..])
            .fetch_optional(&pool)
            .await?;
            row.map(|r| {
                let username = parse_user(r.try_get(1)?)?;
                Ok(SessionRecord {
                    user_id: r.try_get(0)?,
                    display_name: display_name(r.try_get(3)?, &username)?,
                    username,
                    is_admin: r.try_get(4)?,
                    expires_at: r.try_get(2)?,
                })
            })
            .transpose()
        }
        .boxed()
    }

    fn delete_session(&self, token_hash: [u8; 32]) -> BoxFuture<'static, StoreResult<()>> {
        let pool = self.pool.clone();
        async move {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(&token_hash[..])
                .execute(&pool)
                .await?;
            Ok(())
        }
        .boxed()
    }

    fn delete_expired_sessions(&self, now: i64) -> BoxFuture<'static, StoreResult<u64>> {
        let pool = self.pool.clone();
        async move {
            let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(&pool)
                .await?;
            Ok(done.rows_affected())
        }
        .boxed()
    }

    fn list_rooms(
        &self,
        viewer: UserId,
        after: Option<RoomId>,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<Vec<RoomAndRole>>> {
        let pool = self.pool.clone();
        async move {
            let rows = sqlx::query(&format!(
                "SELECT {ROOM_COLUMNS}, m.role FROM rooms
                 LEFT JOIN room_members m ON m.room_id = rooms.id AND m.user_id = $1
                 WHERE rooms.id > $2 AND (rooms.kind = 'public' OR m.user_id IS NOT NULL)
                 ORDER BY rooms.id LIMIT $3"
            ))
            .bind(viewer)
            .bind(after.map_or(0, |r| to_i64(r.0)))
            .bind(self::limit(limit))
            .fetch_all(&pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let role: Option<String> = r.try_get(ROOM_WIDTH)?;
                    Ok((room_at(r, 0)?, role.as_deref().map(parse_role).transpose()?))
                })
                .collect()
        }
        .boxed()
    }

    fn set_admin(&self, username: Username, admin: bool) -> BoxFuture<'static, StoreResult<bool>> {
        let pool = self.pool.clone();
        async move {
            let done =
                sqlx::query("UPDATE users SET is_admin = $2 WHERE lower(username) = lower($1)")
                    .bind(username.as_str())
                    .bind(admin)
                    .execute(&pool)
                    .await?;
            Ok(done.rows_affected() > 0)
        }
        .boxed()
    }

    fn search_users(
        &self,
        prefix: String,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<Vec<UserSummary>>> {
        let pool = self.pool.clone();
        async move {
            // LIKE with the wildcards of the prefix escaped: the handle ignoring ASCII case, the
            // display name by its lower-case key (any script). Handles sort ignoring ASCII case,
            // as SQLite's NOCASE does.
            let escaped: String = prefix
                .chars()
                .flat_map(|c| match c {
                    '%' | '_' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            let pattern = format!("{}%", escaped.to_lowercase());
            let rows = sqlx::query(
                "SELECT id, username, display_name FROM users
                 WHERE lower(username) LIKE $1 ESCAPE '\\' OR name_key LIKE $1 ESCAPE '\\'
                 ORDER BY lower(username) COLLATE \"C\" LIMIT $2",
            )
            .bind(pattern)
            .bind(self::limit(limit))
            .fetch_all(&pool)
            .await?;
            rows.iter().map(|r| user_at(r, 0)).collect()
        }
        .boxed()
    }

    fn rooms_created_by(&self, user: UserId, direct: bool) -> BoxFuture<'static, StoreResult<u64>> {
        let pool = self.pool.clone();
        async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM rooms WHERE created_by = $1 AND (kind = 'direct') = $2",
            )
            .bind(user)
            .bind(direct)
            .fetch_one(&pool)
            .await?;
            Ok(to_u64(n))
        }
        .boxed()
    }

    fn create_room(&self, room: NewRoomRecord) -> BoxFuture<'static, StoreResult<RoomRecord>> {
        let pool = self.pool.clone();
        async move {
            let mut tx = pool.begin().await?;
            let now = now_ms();
            let inserted = sqlx::query_scalar(
                "INSERT INTO rooms (name, name_key, kind, topic, created_by, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(room.name.as_str())
            .bind(room.name.key())
            .bind(kind_str(room.kind))
            .bind(&room.topic)
            .bind(room.created_by)
            .bind(now)
            .fetch_one(&mut *tx)
            .await;
            let id: i64 = match inserted {
                Ok(id) => id,
                Err(e) if violation(&e) == Some(Violation::Unique) => {
                    return Err(StoreError::Conflict);
                }
                Err(e) => return Err(not_found_on_reference(e)),
            };
            if let Some(owner) = room.created_by {
                sqlx::query(
                    "INSERT INTO room_members (room_id, user_id, joined_at, role)
                     VALUES ($1, $2, $3, 'owner')",
                )
                .bind(id)
                .bind(owner)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
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
        }
        .boxed()
    }

    fn open_direct(
        &self,
        members: Vec<UserSummary>,
        name: RoomName,
    ) -> BoxFuture<'static, StoreResult<(RoomRecord, bool)>> {
        let pool = self.pool.clone();
        async move {
            let key = direct_key(&members);
            let now = now_ms();
            let mut tx = pool.begin().await?;
            // Two nodes opening the same people's room at once: the second insert waits for the
            // first, then does nothing, and finds the room below.
            let created: Option<i64> = sqlx::query_scalar(
                "INSERT INTO rooms (name, name_key, kind, created_by, created_at, direct_key)
                 VALUES ($1, $2, 'direct', $3, $4, $5)
                 ON CONFLICT (direct_key) WHERE direct_key IS NOT NULL DO NOTHING
                 RETURNING id",
            )
            .bind(name.as_str())
            .bind(name.key())
            .bind(members.first().map(|m| m.id))
            .bind(now)
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(not_found_on_reference)?;
            let id = match created {
                Some(id) => id,
                None => {
                    sqlx::query_scalar("SELECT id FROM rooms WHERE direct_key = $1")
                        .bind(&key)
                        .fetch_one(&mut *tx)
                        .await?
                }
            };
            let room = RoomId(to_u64(id));
            let mut added = false;
            for member in &members {
                let done = sqlx::query(
                    "INSERT INTO room_members (room_id, user_id, joined_at, role)
                     VALUES ($1, $2, $3, 'member') ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(member.id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(not_found_on_reference)?;
                if done.rows_affected() > 0 {
                    added = true;
                    if created.is_none() {
                        // Someone coming back has read what was said while they were away.
                        log::mark_read(&mut tx, member.id, room, None).await?;
                    }
                }
            }
            let record = room_by_id(&mut tx, room)
                .await?
                .ok_or(StoreError::NotFound)?;
            tx.commit().await?;
            Ok((record, created.is_some() || added))
        }
        .boxed()
    }

    fn access(
        &self,
        room: RoomId,
        user_id: UserId,
    ) -> BoxFuture<'static, StoreResult<Option<AccessRecord>>> {
        let pool = self.pool.clone();
        async move {
            let mut tx = snapshot(&pool).await?;
            let Some(record) = room_by_id(&mut tx, room).await? else {
                return Ok(None);
            };
            let member = member_of(&mut tx, room, user_id).await?;
            let invited = is_invited(&mut tx, room, user_id).await?;
            let ban = ban_of(&mut tx, room, user_id).await?;
            tx.commit().await?;
            Ok(Some(AccessRecord {
                room: record,
                member,
                invited,
                ban,
            }))
        }
        .boxed()
    }

    fn room(&self, room: RoomId) -> BoxFuture<'static, StoreResult<Option<RoomRecord>>> {
        let pool = self.pool.clone();
        async move {
            let mut conn = pool.acquire().await?;
            room_by_id(&mut conn, room).await
        }
        .boxed()
    }

    fn heads(&self, rooms: Vec<RoomId>) -> BoxFuture<'static, StoreResult<Vec<(RoomId, u64)>>> {
        let pool = self.pool.clone();
        async move {
            let ids: Vec<i64> = rooms.iter().map(|r| to_i64(r.0)).collect();
            let rows = sqlx::query("SELECT id, head FROM rooms WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(&pool)
                .await?;
            rows.iter()
                .map(|r| Ok((RoomId(to_u64(r.try_get(0)?)), to_u64(r.try_get(1)?))))
                .collect()
        }
        .boxed()
    }

    fn add_member(
        &self,
        room: RoomId,
        user_id: UserId,
        role: Role,
    ) -> BoxFuture<'static, StoreResult<bool>> {
        let pool = self.pool.clone();
        async move {
            let mut tx = pool.begin().await?;
            // The ban is checked under the same lock a ban takes, so a ban committed between the
            // caller's read and this write still keeps the user out.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(pair_lock(room, user_id))
                .execute(&mut *tx)
                .await?;
            if ban_of(&mut tx, room, user_id).await?.is_some() {
                return Ok(false);
            }
            let added = sqlx::query(
                "INSERT INTO room_members (room_id, user_id, joined_at, role)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(to_i64(room.0))
            .bind(user_id)
            .bind(now_ms())
            .bind(role_str(role))
            .execute(&mut *tx)
            .await
            .map_err(not_found_on_reference)?
            .rows_affected()
                > 0;
            sqlx::query("DELETE FROM invites WHERE room_id = $1 AND user_id = $2")
                .bind(to_i64(room.0))
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            if added {
                // A newcomer has read what was said before they came.
                log::mark_read(&mut tx, user_id, room, None).await?;
            }
            tx.commit().await?;
            Ok(true)
        }
        .boxed()
    }

    fn member(
        &self,
        room: RoomId,
        user_id: UserId,
    ) -> BoxFuture<'static, StoreResult<Option<MemberRecord>>> {
        let pool = self.pool.clone();
        async move {
            let mut conn = pool.acquire().await?;
            member_of(&mut conn, room, user_id).await
        }
        .boxed()
    }

    fn members(&self, room: RoomId) -> BoxFuture<'static, StoreResult<Vec<MemberRecord>>> {
        let pool = self.pool.clone();
        async move {
            let rows = sqlx::query(&format!(
                "{MEMBER_SELECT} WHERE m.room_id = $1 ORDER BY lower(u.username) COLLATE \"C\""
            ))
            .bind(to_i64(room.0))
            .fetch_all(&pool)
            .await?;
            rows.iter().map(member_row).collect()
        }
        .boxed()
    }

    fn remove_member(
        &self,
        room: RoomId,
        user_id: UserId,
    ) -> BoxFuture<'static, StoreResult<bool>> {
        let pool = self.pool.clone();
        async move {
            let done = sqlx::query("DELETE FROM room_members WHERE room_id = $1 AND user_id = $2")
                .bind(to_i64(room.0))
                .bind(user_id)
                .execute(&pool)
                .await?;
            Ok(done.rows_affected() > 0)
        }
        .boxed()
    }

    fn set_role(
        &self,
        room: RoomId,
        user_id: UserId,
        role: Role,
    ) -> BoxFuture<'static, StoreResult<bool>> {
        let pool = self.pool.clone();
        async move {
            let done = sqlx::query(
                "UPDATE room_members SET role = $3 WHERE room_id = $1 AND user_id = $2",
            )
            .bind(to_i64(room.0))
            .bind(user_id)
            .bind(role_str(role))
            .execute(&pool)
            .await?;
            Ok(done.rows_affected() > 0)
        }
        .boxed()
    }

    fn set_muted(
        &self,
        room: RoomId,
        user_id: UserId,
        until: Option<i64>,
    ) -> BoxFuture<'static, StoreResult<()>> {
        let pool = self.pool.clone();
        async move {
            let room = to_i64(room.0);
            match until {
                Some(until) => sqlx::query(
                    "INSERT INTO mutes (room_id, user_id, until) VALUES ($1, $2, $3)
                     ON CONFLICT (room_id, user_id) DO UPDATE SET until = excluded.until",
                )
                .bind(room)
                .bind(user_id)
                .bind(until)
                .execute(&pool)
                .await
                .map_err(not_found_on_reference)?,
                None => {
                    sqlx::query("DELETE FROM mutes WHERE room_id = $1 AND user_id = $2")
                        .bind(room)
                        .bind(user_id)
                        .execute(&pool)
                        .await?
                }
            };
            Ok(())
        }
        .boxed()
    }

    fn ban(
        &self,
        room: RoomId,
        user_id: UserId,
        by: UserId,
        reason: Option<String>,
    ) -> BoxFuture<'static, StoreResult<()>> {
        let pool = self.pool.clone();
        async move {
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(pair_lock(room, user_id))
                .execute(&mut *tx)
                .await?;
            let r = to_i64(room.0);
            sqlx::query(
                "INSERT INTO bans (room_id, user_id, by_id, reason, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (room_id, user_id) DO UPDATE SET reason = excluded.reason",
            )
            .bind(r)
            .bind(user_id)
            .bind(by)
            .bind(reason)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(not_found_on_reference)?;
            for sql in [
                "DELETE FROM room_members WHERE room_id = $1 AND user_id = $2",
                "DELETE FROM invites WHERE room_id = $1 AND user_id = $2",
            ] {
                sqlx::query(sql)
                    .bind(r)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        }
        .boxed()
    }

    fn unban(&self, room: RoomId, user_id: UserId) -> BoxFuture<'static, StoreResult<bool>> {
        let pool = self.pool.clone();
        async move {
            let done = sqlx::query("DELETE FROM bans WHERE room_id = $1 AND user_id = $2")
                .bind(to_i64(room.0))
                .bind(user_id)
                .execute(&pool)
                .await?;
            Ok(done.rows_affected() > 0)
        }
        .boxed()
    }

    fn ban_of(
        &self,
        room: RoomId,
        user_id: UserId,
    ) -> BoxFuture<'static, StoreResult<Option<Option<String>>>> {
        let pool = self.pool.clone();
        async move {
            let mut conn = pool.acquire().await?;
            ban_of(&mut conn, room, user_id).await
        }
        .boxed()
    }

    fn invite(
        &self,
        room: RoomId,
        user_id: UserId,
        by: UserId,
    ) -> BoxFuture<'static, StoreResult<()>> {
        let pool = self.pool.clone();
        async move {
            sqlx::query(
                "INSERT INTO invites (room_id, user_id, by_id, created_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(to_i64(room.0))
            .bind(user_id)
            .bind(by)
            .bind(now_ms())
            .execute(&pool)
            .await
            .map_err(not_found_on_reference)?;
            Ok(())
        }
        .boxed()
    }

    fn is_invited(&self, room: RoomId, user_id: UserId) -> BoxFuture<'static, StoreResult<bool>> {
        let pool = self.pool.clone();
        async move {
            let mut conn = pool.acquire().await?;
            is_invited(&mut conn, room, user_id).await
        }
        .boxed()
    }

    fn invites_for(&self, user_id: UserId) -> BoxFuture<'static, StoreResult<Vec<InviteRecord>>> {
        let pool = self.pool.clone();
        async move {
            let rows = sqlx::query(&format!(
                "SELECT {ROOM_COLUMNS}, u.id, u.username, u.display_name, i.created_at
                 FROM invites i JOIN rooms ON rooms.id = i.room_id JOIN users u ON u.id = i.by_id
                 WHERE i.user_id = $1 ORDER BY i.created_at DESC"
            ))
            .bind(user_id)
            .fetch_all(&pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(InviteRecord {
                        room: room_at(r, 0)?,
                        by: user_at(r, ROOM_WIDTH)?,
                        at: r.try_get(ROOM_WIDTH + 3)?,
                    })
                })
                .collect()
        }
        .boxed()
    }

    fn delete_invite(
        &self,
        room: RoomId,
        user_id: UserId,
    ) -> BoxFuture<'static, StoreResult<bool>> {
        let pool = self.pool.clone();
        async move {
            let done = sqlx::query("DELETE FROM invites WHERE room_id = $1 AND user_id = $2")
                .bind(to_i64(room.0))
                .bind(user_id)
                .execute(&pool)
                .await?;
            Ok(done.rows_affected() > 0)
        }
        .boxed()
    }

    fn update_room(
        &self,
        room: RoomId,
        topic: Option<String>,
        slow_mode_secs: Option<u32>,
    ) -> BoxFuture<'static, StoreResult<()>> {
        let pool = self.pool.clone();
        async move {
            let slow = slow_mode_secs.map(|s| i32::try_from(s).unwrap_or(i32::MAX));
            let done = sqlx::query(
                "UPDATE rooms SET topic = coalesce($2, topic),
                                  slow_mode_secs = coalesce($3, slow_mode_secs)
                 WHERE id = $1",
            )
            .bind(to_i64(room.0))
            .bind(topic)
            .bind(slow)
            .execute(&pool)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        }
        .boxed()
    }

    fn filters(&self, room: Option<RoomId>) -> BoxFuture<'static, StoreResult<Vec<FilterRecord>>> {
        let pool = self.pool.clone();
        async move {
            let rows = sqlx::query(
                "SELECT f.id, f.room_id, f.kind, f.pattern, f.action, u.username, f.created_at
                 FROM filters f JOIN users u ON u.id = f.created_by
                 WHERE f.room_id IS NOT DISTINCT FROM $1 ORDER BY f.id",
            )
            .bind(room.map(|r| to_i64(r.0)))
            .fetch_all(&pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let kind: String = r.try_get(2)?;
                    let action: String = r.try_get(4)?;
                    let (kind, action) = parse_filter(&kind, &action)?;
                    let room: Option<i64> = r.try_get(1)?;
                    Ok(FilterRecord {
                        id: r.try_get(0)?,
                        room: room.map(|r| RoomId(to_u64(r))),
                        kind,
                        pattern: r.try_get(3)?,
                        action,
                        created_by: parse_user(r.try_get(5)?)?,
                        at: r.try_get(6)?,
                    })
                })
                .collect()
        }
        .boxed()
    }

    fn add_filter(&self, rule: NewFilterRecord) -> BoxFuture<'static, StoreResult<FilterRecord>> {
        let pool = self.pool.clone();
        async move {
            let at = now_ms();
            let row = sqlx::query(
                "WITH added AS (
                     INSERT INTO filters (room_id, kind, pattern, action, created_by, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_by
                 )
                 SELECT added.id, u.username FROM added JOIN users u ON u.id = added.created_by",
            )
            .bind(rule.room.map(|r| to_i64(r.0)))
            .bind(filter_kind_str(rule.kind))
            .bind(&rule.pattern)
            .bind(filter_action_str(rule.action))
            .bind(rule.created_by)
            .bind(at)
            .fetch_one(&pool)
            .await
            .map_err(not_found_on_reference)?;
            Ok(FilterRecord {
                id: row.try_get(0)?,
                room: rule.room,
                kind: rule.kind,
                pattern: rule.pattern,
                action: rule.action,
                created_by: parse_user(row.try_get(1)?)?,
                at,
            })
        }
        .boxed()
    }

    fn delete_filter(
        &self,
        room: Option<RoomId>,
        id: i64,
    ) -> BoxFuture<'static, StoreResult<bool>> {
        let pool = self.pool.clone();
        async move {
            let done = sqlx::query(
                "DELETE FROM filters WHERE id = $1 AND room_id IS NOT DISTINCT FROM $2",
            )
            .bind(id)
            .bind(room.map(|r| to_i64(r.0)))
            .execute(&pool)
            .await?;
            Ok(done.rows_affected() > 0)
        }
        .boxed()
    }

    fn audit(&self, entry: NewAudit) -> BoxFuture<'static, StoreResult<()>> {
        let pool = self.pool.clone();
        async move {
            sqlx::query(
                "INSERT INTO audit (room_id, actor_id, action, target_id, reason, detail,
                                    created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(entry.room.map(|r| to_i64(r.0)))
            .bind(entry.actor)
            .bind(entry.action)
            .bind(entry.target)
            .bind(entry.reason)
            .bind(entry.detail)
            .bind(now_ms())
            .execute(&pool)
            .await?;
            Ok(())
        }
        .boxed()
    }

    fn audit_log(
        &self,
        room: RoomId,
        before: Option<i64>,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<Vec<AuditRecord>>> {
        let pool = self.pool.clone();
        async move {
            let rows = sqlx::query(
                "SELECT a.id, a.room_id, actor.username, a.action, target.username, a.reason,
                        a.detail, a.created_at
                 FROM audit a JOIN users actor ON actor.id = a.actor_id
                 LEFT JOIN users target ON target.id = a.target_id
                 WHERE a.room_id = $1 AND a.id < $2 ORDER BY a.id DESC LIMIT $3",
            )
            .bind(to_i64(room.0))
            .bind(before.unwrap_or(i64::MAX))
            .bind(self::limit(limit))
            .fetch_all(&pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let room: Option<i64> = r.try_get(1)?;
                    let target: Option<String> = r.try_get(4)?;
                    Ok(AuditRecord {
                        id: r.try_get(0)?,
                        room: room.map(|r| RoomId(to_u64(r))),
                        actor: parse_user(r.try_get(2)?)?,
                        action: r.try_get(3)?,
                        target: target.map(parse_user).transpose()?,
                        reason: r.try_get(5)?,
                        detail: r.try_get(6)?,
                        at: r.try_get(7)?,
                    })
                })
                .collect()
        }
        .boxed()
    }

    fn append(&self, event: NewEvent) -> BoxFuture<'static, StoreResult<Appended>> {
        let appends = self.appends.clone();
        async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            appends
                .send((event, tx))
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
        let pool = self.pool.clone();
        async move {
            let mut tx = snapshot(&pool).await?;
            let page = log::messages_before(&mut tx, room, before, limit).await?;
            tx.commit().await?;
            Ok(page)
        }
        .boxed()
    }

    fn messages_after(
        &self,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<MessagePage>> {
        let pool = self.pool.clone();
        async move {
            let mut tx = snapshot(&pool).await?;
            let page = log::messages_after(&mut tx, room, after, limit).await?;
            tx.commit().await?;
            Ok(page)
        }
        .boxed()
    }

    fn message(
        &self,
        room: RoomId,
        seq: u64,
    ) -> BoxFuture<'static, StoreResult<Option<MessageEvent>>> {
        let pool = self.pool.clone();
        async move {
            let mut tx = snapshot(&pool).await?;
            let found = log::message(&mut tx, room, seq).await?;
            tx.commit().await?;
            Ok(found)
        }
        .boxed()
    }

    fn events_after(
        &self,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> BoxFuture<'static, StoreResult<Vec<MessageEvent>>> {
        let pool = self.pool.clone();
        async move {
            let mut tx = snapshot(&pool).await?;
            let events = log::events_after(&mut tx, room, after, limit).await?;
            tx.commit().await?;
            Ok(events)
        }
        .boxed()
    }

    fn read_counts(
        &self,
        user_id: UserId,
        rooms: Vec<RoomId>,
    ) -> BoxFuture<'static, StoreResult<Vec<ReadCounts>>> {
        let pool = self.pool.clone();
        async move {
            let mut tx = snapshot(&pool).await?;
            let mut counts = Vec::with_capacity(rooms.len());
            for room in rooms {
                counts.push(log::read_counts(&mut tx, user_id, room).await?);
            }
            tx.commit().await?;
            Ok(counts)
        }
        .boxed()
    }

    fn mark_read(
        &self,
        user_id: UserId,
        room: RoomId,
        seq: Option<u64>,
    ) -> BoxFuture<'static, StoreResult<ReadCounts>> {
        let pool = self.pool.clone();
        async move {
            let mut tx = pool.begin().await?;
            let counts = log::mark_read(&mut tx, user_id, room, seq).await?;
            tx.commit().await?;
            Ok(counts)
        }
        .boxed()
    }

    fn mark_reads(
        &self,
        positions: Vec<(UserId, RoomId, u64)>,
    ) -> BoxFuture<'static, StoreResult<Vec<ReadCounts>>> {
        let pool = self.pool.clone();
        async move {
            let mut tx = pool.begin().await?;
            let mut counts = Vec::with_capacity(positions.len());
            for (user, room, seq) in positions {
                counts.push(log::mark_read(&mut tx, user, room, Some(seq)).await?);
            }
            tx.commit().await?;
            Ok(counts)
        }
        .boxed()
    }

    fn mark_all_read(
        &self,
        user_id: UserId,
    ) -> BoxFuture<'static, StoreResult<Vec<(RoomId, ReadCounts)>>> {
        let pool = self.pool.clone();
        async move {
            let mut tx = pool.begin().await?;
            let rooms: Vec<i64> = sqlx::query_scalar(
                "SELECT room_id FROM room_members WHERE user_id = $1 ORDER BY room_id",
            )
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await?;
            let mut out = Vec::with_capacity(rooms.len());
            for room in rooms {
                let room = RoomId(to_u64(room));
                out.push((room, log::mark_read(&mut tx, user_id, room, None).await?));
            }
            tx.commit().await?;
            Ok(out)
        }
        .boxed()
    }

    fn add_file(&self, file: NewFile) -> BoxFuture<'static, StoreResult<FileRecord>> {
        let pool = self.pool.clone();
        async move { files::add_file(&pool, &file).await }.boxed()
    }

    fn file(&self, id: u64) -> BoxFuture<'static, StoreResult<Option<FileRecord>>> {
        let pool = self.pool.clone();
        async move {
            let mut conn = pool.acquire().await?;
            files::file(&mut conn, id).await
        }
        .boxed()
    }

    fn message_files(
        &self,
        room: RoomId,
        seq: u64,
    ) -> BoxFuture<'static, StoreResult<Vec<FileRecord>>> {
        let pool = self.pool.clone();
        async move {
            let mut conn = pool.acquire().await?;
            files::message_files(&mut conn, room, seq).await
        }
        .boxed()
    }

    fn file_usage(&self, user_id: UserId) -> BoxFuture<'static, StoreResult<u64>> {
        let pool = self.pool.clone();
        async move {
            let mut conn = pool.acquire().await?;
            files::usage(&mut conn, user_id).await
        }
        .boxed()
    }

    fn hash_in_use(&self, hash: [u8; 32]) -> BoxFuture<'static, StoreResult<bool>> {
        let pool = self.pool.clone();
        async move {
            let mut conn = pool.acquire().await?;
            files::hash_in_use(&mut conn, &hash).await
        }
        .boxed()
    }

    fn delete_unsent_files(&self, before: i64) -> BoxFuture<'static, StoreResult<Vec<[u8; 32]>>> {
        let pool = self.pool.clone();
        async move { files::delete_unsent(&pool, before).await }.boxed()
    }

    fn lock_content(&self, hash: [u8; 32]) -> BoxFuture<'static, StoreResult<ContentLock>> {
        let pool = self.pool.clone();
        async move {
            let mut conn = pool.acquire().await?;
            let key = content_lock_key(&hash);
            sqlx::query("SELECT pg_advisory_lock($1, $2)")
                .bind(CONTENT_LOCKS)
                .bind(key)
                .execute(&mut *conn)
                .await?;
            Ok(ContentLock::held(HeldContent {
                conn: Some(conn),
                key,
            }))
        }
        .boxed()
    }

    fn search(&self, query: SearchQuery) -> BoxFuture<'static, StoreResult<SearchResults>> {
        let pool = self.pool.clone();
        async move {
            let mut tx = snapshot(&pool).await?;
            let results = search::search(&mut tx, &query).await?;
            tx.commit().await?;
            Ok(results)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use shared::ClientId;

    use super::throwaway::Throwaway;
    use super::*;
    use crate::store::conformance::{self, Recorder};

    /// A throwaway server, or a failure that says why there is none: the PostgreSQL tests never
    /// pass by skipping.
    fn server() -> Arc<Throwaway> {
        let started = Instant::now();
        let server = Throwaway::start()
            .unwrap_or_else(|e| panic!("cannot start a throwaway PostgreSQL: {e}"));
        eprintln!("throwaway PostgreSQL up in {:?}", started.elapsed());
        Arc::new(server)
    }

    async fn open(server: &Throwaway, listener: Arc<dyn CommitListener>) -> PgStore {
        let url = server.create_database().await.expect("a database");
        PgStore::open(&url, listener).await.expect("open")
    }

    /// [`open`] as a future that borrows nothing, for the conformance suite's factory.
    fn open_static(
        server: &Throwaway,
        listener: Arc<dyn CommitListener>,
    ) -> BoxFuture<'static, Arc<dyn Store>> {
        let database = server.create_database();
        async move {
            let url = database.await.expect("a database");
            let store: Arc<dyn Store> =
                Arc::new(PgStore::open(&url, listener).await.expect("open"));
            store
        }
        .boxed()
    }

    #[tokio::test]
    async fn the_postgres_store_passes_the_conformance_suite() {
        let server = server();
        let started = Instant::now();
        conformance::run(Box::new(move |recorder| open_static(&server, recorder))).await;
        eprintln!("conformance suite on PostgreSQL: {:?}", started.elapsed());
    }

    fn message(room: RoomId, author_id: UserId, client_id: &str) -> NewEvent {
        NewEvent::post(
            room,
            author_id,
            Username::parse("alice").expect("valid"),
            DisplayName::parse("alice").expect("valid"),
            ClientId::parse(client_id).expect("valid"),
            format!("text of {client_id}"),
        )
    }

    #[tokio::test]
    async fn a_failed_append_in_a_batch_neither_uses_nor_skips_a_seq() {
        let server = server();
        let ignore = Arc::new(Recorder::default());
        let store = open(&server, ignore).await;
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
        let [a, b, c] = [
            store.append(message(general, user, "a")),
            store.append(message(RoomId(9_999), user, "b")),
            store.append(message(general, user, "c")),
        ];
        let (a, b, c) = tokio::join!(a, b, c);
        let seq = |r: StoreResult<Appended>| r.expect("stored").event().map(|e| e.seq);
        assert_eq!(seq(a), Some(1));
        assert!(matches!(b, Err(StoreError::NotFound)), "{b:?}");
        assert_eq!(seq(c), Some(2));
        // A statement that fails (no such author: the insert breaks a reference) aborts the
        // transaction; the batch is stored again with a savepoint per append, and only that
        // append fails.
        let [d, e, f] = [
            store.append(message(general, user, "d")),
            store.append(message(general, 9_999, "e")),
            store.append(message(general, user, "f")),
        ];
        let (d, e, f) = tokio::join!(d, e, f);
        assert_eq!(seq(d), Some(3));
        assert!(matches!(e, Err(StoreError::Backend(_))), "{e:?}");
        assert_eq!(seq(f), Some(4));
        // Within one batch, the second send of a client id is the first one's duplicate.
        let [g, again] = [
            store.append(message(general, user, "g")),
            store.append(message(general, user, "g")),
        ];
        let (g, again) = tokio::join!(g, again);
        assert_eq!(seq(g), Some(5));
        let again = again.expect("deduplicated");
        assert!(again.is_duplicate());
        assert_eq!(again.event().map(|e| e.seq), Some(5));
        let found = store.room(general).await.expect("read").expect("exists");
        assert_eq!(found.last_seq, 5);
        let log = store.events_after(general, 0, 100).await.expect("read");
        assert_eq!(log.len(), 5, "dense, each stored once");
    }

    /// Two stores on one database are two nodes: their appends to the same rooms interleave,
    /// and a client id sent to both (a client that reconnected to the other node) is stored
    /// once. Opening the second store also runs the migrations again, which must do nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_content_lock_holds_across_servers_and_is_released_when_dropped() {
        let server = server();
        let url = server.create_database().await.expect("a database");
        let first = PgStore::open(&url, Arc::new(Recorder::default()))
            .await
            .expect("open");
        let second = PgStore::open(&url, Arc::new(Recorder::default()))
            .await
            .expect("open again");
        let hash = [7u8; 32];
        let held = first.lock_content(hash).await.expect("locked");
        // Another server waits for it; another content does not.
        let other = tokio::time::timeout(Duration::from_secs(2), second.lock_content([8; 32]))
            .await
            .expect("another content is not held")
            .expect("locked");
        drop(other);
        let waiting = tokio::spawn({
            let second = second.clone();
            async move { second.lock_content(hash).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "the second server waits");
        drop(held);
        let taken = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("taken once released")
            .expect("task")
            .expect("locked");
        drop(taken);
        // Released again: the first server takes it at once.
        tokio::time::timeout(Duration::from_secs(5), first.lock_content(hash))
            .await
            .expect("free again")
            .expect("locked");
    }

    #[tokio::test]
    async fn two_nodes_on_one_database_keep_every_log_dense() {
        let server = server();
        let url = server.create_database().await.expect("a database");
        let (one, two) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
        let first = PgStore::open(&url, one.clone()).await.expect("open");
        let second = PgStore::open(&url, two.clone()).await.expect("open again");
        let user = first
            .create_user(
                Username::parse("alice").expect("valid"),
                DisplayName::parse("Alice").expect("valid"),
                "hash".into(),
            )
            .await
            .expect("user");
        let mut rooms = vec![shared::DEFAULT_ROOM_ID];
        for name in ["two", "three"] {
            let room = first
                .create_room(NewRoomRecord {
                    name: RoomName::parse(name).expect("valid"),
                    kind: shared::RoomKind::Public,
                    topic: String::new(),
                    created_by: None,
                })
                .await
                .expect("room");
            rooms.push(room.id);
        }
        let appends = (0..400).map(|i| {
            let node = if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            let room = rooms[(i / 2) % 3];
            async move {
                node.append(message(room, user, &format!("m{}", i / 2)))
                    .await
                    .expect("stored")
            }
        });
        let done = futures::future::join_all(appends).await;
        assert_eq!(done.iter().filter(|d| !d.is_duplicate()).count(), 200);
        let published = one.events().len() + two.events().len();
        assert_eq!(
            published, 200,
            "each event published once, by the node that stored it"
        );
        for room in rooms {
            let log = first.events_after(room, 0, 1_000).await.expect("read");
            let seqs: Vec<u64> = log.iter().map(|e| e.seq).collect();
            let dense: Vec<u64> = (1..=seqs.len() as u64).collect();
            assert_eq!(seqs, dense, "room {room}");
            for node in [&one, &two] {
                let mine: Vec<u64> = node
                    .events()
                    .iter()
                    .filter(|e| e.room == room)
                    .map(|e| e.seq)
                    .collect();
                assert!(
                    mine.is_sorted(),
                    "room {room}: each node publishes in order"
                );
            }
        }
    }
}
