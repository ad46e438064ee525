//! The room logs in PostgreSQL: appends of every kind of event (group commit in the appender
//! task), the reads of the log (raw for catch-up, folded for history), and read positions.
//!
//! The rows mean what they mean in SQLite (see `sqlite/log.rs`): a message row holds the message
//! as it is now, and its changes are events of their own that stay in the log with their `seq`.

use std::collections::HashMap;
use std::sync::Arc;

use shared::{
    ClientId, EventKind, MAX_REACTIONS, MessageEvent, Reaction, RoomId, UNREAD_CAP, Username,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use tokio::sync::{mpsc, oneshot};

use super::{files, search};
use crate::store::codec::{display_name, parse_event_kind, parse_user, to_i64, to_u64};
use crate::store::{
    Appended, Change, CommitListener, FileRecord, MAX_BATCH, MessagePage, NewEvent, ReadCounts,
    Rejection, StoreError, StoreResult, UserId, now_ms,
};

pub(super) type AppendReply = oneshot::Sender<StoreResult<Appended>>;

/// The namespace (first key) of the advisory locks taken on authors during an append batch.
const AUTHOR_LOCKS: i32 = 0x6368;

/// The appender: takes the appends that queued up while the previous commit was in flight (up
/// to [`MAX_BATCH`]) and stores them in one transaction, until every sender is gone.
pub(super) async fn appender(
    pool: PgPool,
    mut rx: mpsc::Receiver<(NewEvent, AppendReply)>,
    listener: Arc<dyn CommitListener>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&pool, batch, listener.as_ref()).await;
    }
}

/// Stores a batch of appends in one transaction, publishes the new events, then answers each.
async fn commit_batch(
    pool: &PgPool,
    batch: Vec<(NewEvent, AppendReply)>,
    listener: &dyn CommitListener,
) {
    let outcomes = match store_batch(pool, &batch).await {
        Ok(outcomes) => outcomes,
        Err(e) => {
            tracing::error!(error = %e, size = batch.len(), "group commit failed");
            for (_, reply) in batch {
                let _ = reply.send(Err(StoreError::Task(format!("commit failed: {e}"))));
            }
            return;
        }
    };
    let fresh: Vec<MessageEvent> = outcomes
        .iter()
        .flatten()
        .filter_map(|outcome| match outcome {
            Appended::New(event) => Some(event.clone()),
            _ => None,
        })
        .collect();
    if !fresh.is_empty() {
        listener.committed(fresh);
    }
    for ((_, reply), outcome) in batch.into_iter().zip(outcomes) {
        let _ = reply.send(outcome);
    }
}

/// Stores a batch in one transaction; returns each append's result.
///
/// Every refusal of an append (no such room or message, not the author, too many reactions, a
/// file that cannot be attached) is found by reads made before the append writes anything, so a
/// refused append leaves nothing behind and the batch goes on without savepoints. Only a failed
/// statement (which aborts the whole transaction in PostgreSQL) makes the batch start again, each
/// append then in a savepoint of its own, so that the failure is that append's alone.
async fn store_batch(
    pool: &PgPool,
    batch: &[(NewEvent, AppendReply)],
) -> StoreResult<Vec<StoreResult<Appended>>> {
    if let Some(done) = try_batch(pool, batch, false).await? {
        return Ok(done);
    }
    // With savepoints, an attempt is never abandoned.
    try_batch(pool, batch, true)
        .await?
        .ok_or_else(|| StoreError::Task("a batch with savepoints was abandoned".into()))
}

/// Whether an append's failure came from a failed statement (the transaction is aborted) rather
/// than from a refusal found by a read.
fn aborts(outcome: &StoreResult<Appended>) -> bool {
    matches!(
        outcome,
        Err(StoreError::Backend(_) | StoreError::Task(_) | StoreError::Closed)
    )
}

/// One attempt at a batch: `None` when a statement failed without `savepoints` (the caller then
/// tries again with them).
async fn try_batch(
    pool: &PgPool,
    batch: &[(NewEvent, AppendReply)],
    savepoints: bool,
) -> StoreResult<Option<Vec<StoreResult<Appended>>>> {
    let mut tx = pool.begin().await?;
    // Every lock the batch needs, up front and in one global order (its rooms by id, then its
    // authors by id), so that batches of several nodes wait for each other and never deadlock.
    // The room rows are what the heads are taken from; `NO KEY` lets other writes that merely
    // refer to a room (a join, an upload) go on beside the batch. The author locks make the
    // check for an earlier `client_id` and the insert one step across nodes.
    let mut rooms: Vec<i64> = batch.iter().map(|(e, _)| to_i64(e.room.0)).collect();
    rooms.sort_unstable();
    rooms.dedup();
    sqlx::query("SELECT id FROM rooms WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
        .bind(&rooms)
        .fetch_all(&mut *tx)
        .await?;
    let mut authors: Vec<i64> = batch.iter().map(|(e, _)| e.author_id).collect();
    authors.sort_unstable();
    authors.dedup();
    sqlx::query(
        "SELECT pg_advisory_xact_lock($2, (a % 2147483647)::INTEGER)
         FROM (SELECT a FROM unnest($1::BIGINT[]) AS a ORDER BY a) AS sorted",
    )
    .bind(&authors)
    .bind(AUTHOR_LOCKS)
    .fetch_all(&mut *tx)
    .await?;
    let mut stored = stored_before(&mut tx, batch).await?;

    let single = batch.len() == 1;
    let mut outcomes = Vec::with_capacity(batch.len());
    for (event, _) in batch {
        if savepoints {
            sqlx::query("SAVEPOINT append").execute(&mut *tx).await?;
        }
        let outcome = append_one(&mut tx, &mut stored, event).await;
        if savepoints {
            let end = if outcome.is_ok() {
                "RELEASE SAVEPOINT append"
            } else {
                "ROLLBACK TO SAVEPOINT append"
            };
            sqlx::query(end).execute(&mut *tx).await?;
        } else if aborts(&outcome) && !single {
            tx.rollback().await?;
            return Ok(None);
        }
        outcomes.push(outcome);
    }
    if single && outcomes.iter().any(Result::is_err) {
        // Alone in its transaction, a failed append is simply rolled back.
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(Some(outcomes))
}

/// Where each (author, client id) stored so far lives: (room, seq).
type Stored = HashMap<(UserId, String), (RoomId, u64)>;

/// The events of the batch's (author, client id) pairs that were stored before it, read in one
/// statement; the batch adds its own as it goes.
async fn stored_before(
    conn: &mut PgConnection,
    batch: &[(NewEvent, AppendReply)],
) -> StoreResult<Stored> {
    let authors: Vec<i64> = batch.iter().map(|(e, _)| e.author_id).collect();
    let ids: Vec<&str> = batch.iter().map(|(e, _)| e.client_id.as_str()).collect();
    let rows = sqlx::query(
        "SELECT e.author_id, e.client_id, e.room_id, e.seq
         FROM unnest($1::BIGINT[], $2::TEXT[]) AS k(author_id, client_id)
         JOIN events e ON e.author_id = k.author_id AND e.client_id = k.client_id",
    )
    .bind(&authors)
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    let mut stored = Stored::new();
    for r in rows {
        let room: i64 = r.try_get(2)?;
        let seq: i64 = r.try_get(3)?;
        stored.insert(
            (r.try_get(0)?, r.try_get(1)?),
            (RoomId(to_u64(room)), to_u64(seq)),
        );
    }
    Ok(stored)
}

/// What the log says of one message, for the checks of a change.
struct Target {
    author_id: UserId,
    body: String,
    deleted: bool,
}

/// The message with `seq` in `room`, deleted or not, if there is one.
async fn find_message(
    conn: &mut PgConnection,
    room: RoomId,
    seq: u64,
) -> StoreResult<Option<Target>> {
    let row = sqlx::query(
        "SELECT author_id, body, deleted_at IS NOT NULL FROM events
         WHERE room_id = $1 AND seq = $2 AND kind = 'message'",
    )
    .bind(to_i64(room.0))
    .bind(to_i64(seq))
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(Target {
            author_id: r.try_get(0)?,
            body: r.try_get(1)?,
            deleted: r.try_get(2)?,
        })
    })
    .transpose()
}

/// The live message a change applies to, or the refusal.
async fn live_target(conn: &mut PgConnection, room: RoomId, seq: u64) -> StoreResult<Target> {
    match find_message(conn, room, seq).await? {
        Some(t) if !t.deleted => Ok(t),
        _ => Err(StoreError::Rejected(Rejection::NoSuchMessage)),
    }
}

/// The members among `handles` other than `author`, as their handles are registered, with
/// their ids.
async fn members_named(
    conn: &mut PgConnection,
    room: RoomId,
    author: UserId,
    handles: &[Username],
) -> StoreResult<Vec<(UserId, Username)>> {
    let mut out: Vec<(UserId, Username)> = Vec::new();
    for handle in handles {
        let found = sqlx::query(
            "SELECT u.id, u.username FROM users u
             JOIN room_members m ON m.user_id = u.id AND m.room_id = $1
             WHERE lower(u.username) = lower($2)",
        )
        .bind(to_i64(room.0))
        .bind(handle.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(r) = found {
            let id: i64 = r.try_get(0)?;
            if id != author && !out.iter().any(|(known, _)| *known == id) {
                out.push((id, parse_user(r.try_get(1)?)?));
            }
        }
    }
    Ok(out)
}

/// The handles joined for the `mentions` column, or `None` when there are none.
fn joined(mentioned: &[(UserId, Username)]) -> Option<String> {
    (!mentioned.is_empty()).then(|| {
        mentioned
            .iter()
            .map(|(_, name)| name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// Records who a message mentions, replacing what it mentioned before.
async fn set_mentions(
    conn: &mut PgConnection,
    room: RoomId,
    seq: u64,
    mentioned: &[(UserId, Username)],
) -> StoreResult<()> {
    sqlx::query("DELETE FROM mentions WHERE room_id = $1 AND seq = $2")
        .bind(to_i64(room.0))
        .bind(to_i64(seq))
        .execute(&mut *conn)
        .await?;
    if !mentioned.is_empty() {
        let ids: Vec<i64> = mentioned.iter().map(|(id, _)| *id).collect();
        sqlx::query(
            "INSERT INTO mentions (user_id, room_id, seq)
             SELECT u, $2, $3 FROM unnest($1::BIGINT[]) AS u ON CONFLICT DO NOTHING",
        )
        .bind(&ids)
        .bind(to_i64(room.0))
        .bind(to_i64(seq))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Appends one event inside the open transaction `conn`, unless `stored` (the batch's view of
/// the stored client ids, which it updates) says its client id was stored before. Every refusal
/// is found before the first write (see [`store_batch`]).
async fn append_one(
    conn: &mut PgConnection,
    stored: &mut Stored,
    new: &NewEvent,
) -> StoreResult<Appended> {
    let key = (new.author_id, new.client_id.as_str().to_owned());
    if let Some(&(room, seq)) = stored.get(&key) {
        let mut event = event_at(conn, room, seq)
            .await?
            .ok_or(StoreError::NotFound)?;
        event.author_name = new.author_name.clone();
        return Ok(Appended::Duplicate(event));
    }

    let room = new.room;
    let r = to_i64(room.0);
    let ts = now_ms();
    let mut event = MessageEvent::message(
        room,
        0,
        0,
        new.author.clone(),
        new.author_name.clone(),
        String::new(),
        ts,
    );
    event.client_id = Some(new.client_id.clone());
    let mut body = String::new();
    let mut mentioned: Vec<(UserId, Username)> = Vec::new();
    let mut attached: Vec<FileRecord> = Vec::new();
    match &new.change {
        Change::Post {
            text,
            reply_to,
            mentions,
            attachments,
        } => {
            if let Some(to) = *reply_to {
                live_target(conn, room, to).await?;
            }
            for &id in attachments {
                match files::file_for_attaching(conn, id).await? {
                    Some(f)
                        if f.room == room
                            && f.uploader == new.author_id
                            && f.seq.is_none()
                            && !attached.iter().any(|a| a.id == id) =>
                    {
                        attached.push(f);
                    }
                    _ => return Err(StoreError::Rejected(Rejection::NoSuchFile)),
                }
            }
            mentioned = members_named(conn, room, new.author_id, mentions).await?;
            body.clone_from(text);
            event.reply_to = *reply_to;
        }
        Change::Edit {
            target,
            text,
            mentions,
        } => {
            let found = live_target(conn, room, *target).await?;
            if found.author_id != new.author_id {
                return Err(StoreError::Rejected(Rejection::NotAuthor));
            }
            if found.body == *text {
                return Ok(Appended::Unchanged);
            }
            mentioned = members_named(conn, room, new.author_id, mentions).await?;
            set_mentions(conn, room, *target, &mentioned).await?;
            sqlx::query(
                "UPDATE events SET body = $3, edited_at = $4, mentions = $5,
                                   terms = $6::TSVECTOR
                 WHERE room_id = $1 AND seq = $2",
            )
            .bind(r)
            .bind(to_i64(*target))
            .bind(text)
            .bind(ts)
            .bind(joined(&mentioned))
            .bind(search::vector(text))
            .execute(&mut *conn)
            .await?;
            body.clone_from(text);
            event.kind = EventKind::Edit;
            event.target = Some(*target);
        }
        Change::Delete {
            target,
            author_only,
        } => {
            let Some(found) = find_message(conn, room, *target).await? else {
                return Err(StoreError::Rejected(Rejection::NoSuchMessage));
            };
            if *author_only && found.author_id != new.author_id {
                return Err(StoreError::Rejected(Rejection::NotAuthor));
            }
            if found.deleted {
                return Ok(Appended::Unchanged);
            }
            let t = to_i64(*target);
            // The text goes: the message's body, the bodies of its edits, who it mentioned, its
            // reactions, its search terms and its files.
            sqlx::query(
                "UPDATE events SET body = '', deleted_at = $3, mentions = NULL, edited_at = NULL,
                                   terms = NULL
                 WHERE room_id = $1 AND seq = $2",
            )
            .bind(r)
            .bind(t)
            .bind(ts)
            .execute(&mut *conn)
            .await?;
            for sql in [
                "UPDATE events SET body = '', mentions = NULL
                 WHERE room_id = $1 AND target = $2 AND kind = 'edit'",
                "DELETE FROM mentions WHERE room_id = $1 AND seq = $2",
                "DELETE FROM reactions WHERE room_id = $1 AND target = $2",
                "DELETE FROM files WHERE room_id = $1 AND seq = $2",
            ] {
                sqlx::query(sql).bind(r).bind(t).execute(&mut *conn).await?;
            }
            event.kind = EventKind::Delete;
            event.target = Some(*target);
        }
        Change::React { target, emoji, on } => {
            live_target(conn, room, *target).await?;
            let t = to_i64(*target);
            let present = sqlx::query(
                "SELECT 1 FROM reactions
                 WHERE room_id = $1 AND target = $2 AND emoji = $3 AND user_id = $4",
            )
            .bind(r)
            .bind(t)
            .bind(emoji.as_str())
            .bind(new.author_id)
            .fetch_optional(&mut *conn)
            .await?
            .is_some();
            if present == *on {
                return Ok(Appended::Unchanged);
            }
            if *on {
                let row = sqlx::query(
                    "SELECT count(DISTINCT emoji), coalesce(bool_or(emoji = $3), FALSE)
                     FROM reactions WHERE room_id = $1 AND target = $2",
                )
                .bind(r)
                .bind(t)
                .bind(emoji.as_str())
                .fetch_one(&mut *conn)
                .await?;
                let kinds: i64 = row.try_get(0)?;
                let known: bool = row.try_get(1)?;
                if !known && usize::try_from(kinds).unwrap_or(usize::MAX) >= MAX_REACTIONS {
                    return Err(StoreError::Rejected(Rejection::TooManyReactions));
                }
            }
            body = emoji.as_str().to_owned();
            event.kind = if *on {
                EventKind::React
            } else {
                EventKind::Unreact
            };
            event.target = Some(*target);
            event.emoji = Some(body.clone());
        }
    }

    // The next `seq`, taken under the room row's lock (held for the whole batch) by the
    // statement that stores the event: no row, no `seq`, and a rollback gives it back.
    let row_mentions = if matches!(event.kind, EventKind::Message | EventKind::Edit) {
        joined(&mentioned)
    } else {
        None
    };
    let terms = (event.kind == EventKind::Message)
        .then(|| search::vector(&body))
        .flatten();
    let inserted = sqlx::query(
        "WITH next AS (UPDATE rooms SET head = head + 1 WHERE id = $1 RETURNING head)
         INSERT INTO events (room_id, seq, kind, author_id, client_id, body, created_at, target,
                             reply_to, mentions, terms)
         SELECT $1, next.head, $2, $3, $4, $5, $6, $7, $8, $9, $10::TSVECTOR FROM next
         RETURNING id, seq",
    )
    .bind(r)
    .bind(event.kind.as_str())
    .bind(new.author_id)
    .bind(new.client_id.as_str())
    .bind(&body)
    .bind(ts)
    .bind(event.target.map(to_i64))
    .bind(event.reply_to.map(to_i64))
    .bind(row_mentions)
    .bind(terms)
    .fetch_optional(&mut *conn)
    .await?;
    // No row: no such room (found before any write, since a change's target is a message of
    // the room, which therefore exists).
    let Some(inserted) = inserted else {
        return Err(StoreError::NotFound);
    };
    let row_id: i64 = inserted.try_get(0)?;
    let seq = to_u64(inserted.try_get(1)?);
    if event.kind == EventKind::Message && !mentioned.is_empty() {
        set_mentions(conn, room, seq, &mentioned).await?;
    }
    if let Change::React {
        target, emoji, on, ..
    } = &new.change
    {
        let t = to_i64(*target);
        if *on {
            sqlx::query(
                "INSERT INTO reactions (room_id, target, emoji, user_id, seq)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(r)
            .bind(t)
            .bind(emoji.as_str())
            .bind(new.author_id)
            .bind(to_i64(seq))
            .execute(&mut *conn)
            .await?;
        } else {
            sqlx::query(
                "DELETE FROM reactions
                 WHERE room_id = $1 AND target = $2 AND emoji = $3 AND user_id = $4",
            )
            .bind(r)
            .bind(t)
            .bind(emoji.as_str())
            .bind(new.author_id)
            .execute(&mut *conn)
            .await?;
        }
    }
    if event.kind == EventKind::Message && !attached.is_empty() {
        let ids: Vec<i64> = attached.iter().map(|f| to_i64(f.id)).collect();
        sqlx::query("UPDATE files SET seq = $2 WHERE id = ANY($1)")
            .bind(&ids)
            .bind(to_i64(seq))
            .execute(&mut *conn)
            .await?;
        for file in &mut attached {
            file.seq = Some(seq);
        }
        event.attachments = attached.iter().map(FileRecord::attachment).collect();
    }
    stored.insert(key, (room, seq));
    event.seq = seq;
    event.id = to_u64(row_id);
    if matches!(event.kind, EventKind::Message | EventKind::Edit) {
        event.text = body;
        event.mentions = mentioned.into_iter().map(|(_, name)| name).collect();
    }
    Ok(Appended::New(event))
}

/// The columns [`event_from`] reads, in order.
const EVENT_COLUMNS: &str = "e.id, e.seq, e.kind, e.body, e.created_at, e.client_id, \
     u.username, u.display_name, e.target, e.reply_to, e.mentions, e.edited_at, e.deleted_at";

fn event_from(room: RoomId, r: &PgRow) -> StoreResult<MessageEvent> {
    let author = parse_user(r.try_get(6)?)?;
    let kind: String = r.try_get(2)?;
    let kind = parse_event_kind(&kind);
    let body: String = r.try_get(3)?;
    let mut event = MessageEvent::message(
        room,
        to_u64(r.try_get(1)?),
        to_u64(r.try_get(0)?),
        author.clone(),
        display_name(r.try_get(7)?, &author)?,
        String::new(),
        r.try_get(4)?,
    );
    let client_id: Option<String> = r.try_get(5)?;
    let target: Option<i64> = r.try_get(8)?;
    let reply_to: Option<i64> = r.try_get(9)?;
    let mentions: Option<String> = r.try_get(10)?;
    event.kind = kind;
    event.client_id = client_id.and_then(|c| ClientId::parse(c).ok());
    event.target = target.map(to_u64);
    event.reply_to = reply_to.map(to_u64);
    event.edited = r.try_get(11)?;
    event.deleted = r.try_get(12)?;
    event.mentions = mentions
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter(|m| !m.is_empty())
        .map(|m| parse_user(m.to_owned()))
        .collect::<StoreResult<_>>()?;
    match kind {
        EventKind::React | EventKind::Unreact => event.emoji = Some(body),
        _ => event.text = body,
    }
    Ok(event)
}

/// Reads event rows of `room` with `sql` (selecting [`EVENT_COLUMNS`] from `events e` joined
/// with `users u`) bound to `(room, bound, limit)`.
async fn read_events(
    conn: &mut PgConnection,
    sql: &str,
    room: RoomId,
    bound: u64,
    limit: u32,
) -> StoreResult<Vec<MessageEvent>> {
    let rows = sqlx::query(sql)
        .bind(to_i64(room.0))
        .bind(to_i64(bound))
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| event_from(room, r)).collect()
}

/// The event with `seq` in `room`, as stored now.
async fn event_at(
    conn: &mut PgConnection,
    room: RoomId,
    seq: u64,
) -> StoreResult<Option<MessageEvent>> {
    let mut found = read_events(
        conn,
        &format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN users u ON u.id = e.author_id
             WHERE e.room_id = $1 AND e.seq = $2 LIMIT $3"
        ),
        room,
        seq,
        1,
    )
    .await?;
    files::add_attachments(conn, room, &mut found).await?;
    Ok(found.pop())
}

/// Up to `limit` events of every kind with `seq > after`, oldest first.
pub(super) async fn events_after(
    conn: &mut PgConnection,
    room: RoomId,
    after: u64,
    limit: u32,
) -> StoreResult<Vec<MessageEvent>> {
    let mut events = read_events(
        conn,
        &format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN users u ON u.id = e.author_id
             WHERE e.room_id = $1 AND e.seq > $2 ORDER BY e.seq ASC LIMIT $3"
        ),
        room,
        after,
        limit,
    )
    .await?;
    files::add_attachments(conn, room, &mut events).await?;
    Ok(events)
}

/// Fills in the reactions of `messages` (sorted by `seq`).
async fn add_reactions(
    conn: &mut PgConnection,
    room: RoomId,
    messages: &mut [MessageEvent],
) -> StoreResult<()> {
    let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
        return Ok(());
    };
    let rows = sqlx::query(
        "SELECT r.target, r.emoji, u.username FROM reactions r JOIN users u ON u.id = r.user_id
         WHERE r.room_id = $1 AND r.target BETWEEN $2 AND $3
         ORDER BY r.target, r.seq",
    )
    .bind(to_i64(room.0))
    .bind(to_i64(first.seq))
    .bind(to_i64(last.seq))
    .fetch_all(conn)
    .await?;
    let by_seq: HashMap<u64, usize> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| (m.seq, i))
        .collect();
    for row in rows {
        let target: i64 = row.try_get(0)?;
        let Some(&i) = by_seq.get(&to_u64(target)) else {
            continue;
        };
        let emoji: String = row.try_get(1)?;
        let user = parse_user(row.try_get(2)?)?;
        let reactions = &mut messages[i].reactions;
        match reactions.iter_mut().find(|r| r.emoji == emoji) {
            Some(r) => r.users.push(user),
            None => reactions.push(Reaction {
                emoji,
                users: vec![user],
            }),
        }
    }
    Ok(())
}

/// The room's highest `seq` (0 when it has none or does not exist).
async fn head(conn: &mut PgConnection, room: RoomId) -> StoreResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT coalesce((SELECT head FROM rooms WHERE id = $1), 0)")
            .bind(to_i64(room.0))
            .fetch_one(conn)
            .await?,
    )
}

/// Up to `limit` messages with `seq < before`, as they are now, oldest first; whether older
/// ones exist; and the room's head. `conn` should be a snapshot so that they agree.
pub(super) async fn messages_before(
    conn: &mut PgConnection,
    room: RoomId,
    before: u64,
    limit: u32,
) -> StoreResult<MessagePage> {
    messages_page(conn, room, before, false, limit).await
}

/// Up to `limit` messages with `seq > after`, oldest first, and whether newer ones exist.
pub(super) async fn messages_after(
    conn: &mut PgConnection,
    room: RoomId,
    after: u64,
    limit: u32,
) -> StoreResult<MessagePage> {
    messages_page(conn, room, after, true, limit).await
}

/// The page of messages beside `seq`: below it, or (`newer`) above it.
async fn messages_page(
    conn: &mut PgConnection,
    room: RoomId,
    seq: u64,
    newer: bool,
    limit: u32,
) -> StoreResult<MessagePage> {
    let (cmp, order) = if newer { (">", "ASC") } else { ("<", "DESC") };
    let mut messages = read_events(
        conn,
        &format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN users u ON u.id = e.author_id
             WHERE e.room_id = $1 AND e.seq {cmp} $2 AND e.kind = 'message'
             ORDER BY e.seq {order} LIMIT $3"
        ),
        room,
        seq,
        limit,
    )
    .await?;
    if !newer {
        messages.reverse();
    }
    add_reactions(conn, room, &mut messages).await?;
    files::add_attachments(conn, room, &mut messages).await?;
    let edge = if newer {
        messages.last()
    } else {
        messages.first()
    };
    let has_more = match edge {
        Some(edge) => sqlx::query(&format!(
            "SELECT 1 FROM events WHERE room_id = $1 AND seq {cmp} $2 AND kind = 'message' LIMIT 1"
        ))
        .bind(to_i64(room.0))
        .bind(to_i64(edge.seq))
        .fetch_optional(&mut *conn)
        .await?
        .is_some(),
        None => false,
    };
    let head = head(conn, room).await?;
    Ok(MessagePage {
        messages,
        has_more,
        head: to_u64(head),
    })
}

/// One message as it is now (`None` if `seq` is not a message of the room).
pub(super) async fn message(
    conn: &mut PgConnection,
    room: RoomId,
    seq: u64,
) -> StoreResult<Option<MessageEvent>> {
    let Some(mut event) = event_at(conn, room, seq)
        .await?
        .filter(MessageEvent::is_message)
    else {
        return Ok(None);
    };
    add_reactions(conn, room, std::slice::from_mut(&mut event)).await?;
    Ok(Some(event))
}

/// A user's read position in a room and what is unread above it.
pub(super) async fn read_counts(
    conn: &mut PgConnection,
    user: UserId,
    room: RoomId,
) -> StoreResult<ReadCounts> {
    let r = to_i64(room.0);
    let seq: i64 = sqlx::query_scalar(
        "SELECT coalesce((SELECT seq FROM read_markers WHERE user_id = $1 AND room_id = $2), 0)",
    )
    .bind(user)
    .bind(r)
    .fetch_one(&mut *conn)
    .await?;
    let unread: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM events
             WHERE room_id = $1 AND seq > $2 AND kind = 'message' AND author_id <> $3
               AND deleted_at IS NULL
             LIMIT $4) AS t",
    )
    .bind(r)
    .bind(seq)
    .bind(user)
    .bind(i64::from(UNREAD_CAP))
    .fetch_one(&mut *conn)
    .await?;
    let mentions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM mentions
             WHERE user_id = $1 AND room_id = $2 AND seq > $3 LIMIT $4) AS t",
    )
    .bind(user)
    .bind(r)
    .bind(seq)
    .bind(i64::from(UNREAD_CAP))
    .fetch_one(&mut *conn)
    .await?;
    Ok(ReadCounts {
        seq: to_u64(seq),
        unread: u32::try_from(unread).unwrap_or(UNREAD_CAP),
        mentions: u32::try_from(mentions).unwrap_or(UNREAD_CAP),
    })
}

/// Moves a user's read position in a room forward to `seq` (at most the room's head; `None`:
/// the head), and returns the counts. It never moves back.
pub(super) async fn mark_read(
    conn: &mut PgConnection,
    user: UserId,
    room: RoomId,
    seq: Option<u64>,
) -> StoreResult<ReadCounts> {
    let head = head(conn, room).await?;
    let seq = seq.map_or(head, |s| to_i64(s).min(head));
    sqlx::query(
        "INSERT INTO read_markers (user_id, room_id, seq) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, room_id)
         DO UPDATE SET seq = greatest(read_markers.seq, excluded.seq)",
    )
    .bind(user)
    .bind(to_i64(room.0))
    .bind(seq)
    .execute(&mut *conn)
    .await?;
    read_counts(conn, user, room).await
}
