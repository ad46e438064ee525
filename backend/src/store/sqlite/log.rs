//! The room logs in SQLite: appends of every kind of event (group commit on the writer thread),
//! the reads of the log (raw for catch-up, folded for history), and read positions.
//!
//! A message row holds the message as it is now: an edit rewrites its `body` and sets
//! `edited_at`, a deletion erases its `body` (and the bodies of its edits) and sets
//! `deleted_at`, and its reactions live in `reactions`. The change events stay in the log, each
//! with its own `seq`, so that a catch-up replays them in order.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use rusqlite::{Connection, OptionalExtension, params};
use shared::{
    ClientId, EventKind, MAX_REACTIONS, MessageEvent, Reaction, RoomId, UNREAD_CAP, Username,
};
use tokio::sync::oneshot;

use super::{files, search};
use crate::store::codec::{display_name, parse_event_kind, parse_user, to_i64, to_u64};
use crate::store::{
    Appended, Change, CommitListener, FileRecord, MessagePage, NewEvent, ReadCounts, Rejection,
    StoreError, StoreResult, UserId, now_ms,
};

pub(super) type AppendReply = oneshot::Sender<StoreResult<Appended>>;

/// The highest `seq` of each room the writer has appended to.
///
/// The writer is the only one that appends, so it can keep each room's head in memory instead of
/// updating a counter row in every commit (which would dirty one more page per message). A
/// room's head is read once from the log (`max(seq)`), then advanced by appends; a batch records
/// the heads it moved, and puts them back if its transaction (or one append's savepoint) rolls
/// back, so a rollback can never leave a `seq` used or skipped. The work per batch grows with
/// the batch, never with the number of rooms.
#[derive(Debug, Default)]
pub(super) struct RoomHeads {
    heads: HashMap<RoomId, u64>,
}

impl RoomHeads {
    /// The room's highest `seq`, read from the database on first use.
    fn get(&mut self, conn: &Connection, room: RoomId) -> StoreResult<&mut u64> {
        match self.heads.entry(room) {
            Entry::Occupied(head) => Ok(head.into_mut()),
            Entry::Vacant(slot) => {
                let last: i64 = conn
                    .prepare_cached(
                        "SELECT (SELECT coalesce(max(seq), 0) FROM events WHERE room_id = rooms.id)
                         FROM rooms WHERE id = ?1",
                    )?
                    .query_row(params![to_i64(room.0)], |r| r.get(0))
                    .optional()?
                    .ok_or(StoreError::NotFound)?;
                Ok(slot.insert(to_u64(last)))
            }
        }
    }

    /// Puts back the heads recorded in `undo` (latest first).
    fn restore(&mut self, undo: &mut Vec<(RoomId, Option<u64>)>) {
        while let Some((room, head)) = undo.pop() {
            match head {
                Some(head) => self.heads.insert(room, head),
                None => self.heads.remove(&room),
            };
        }
    }
}

/// What a committed batch leaves for the writer to do.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Committed {
    /// A deletion erased text: the write-ahead log should be emptied soon.
    pub(super) erased: bool,
    /// Events appended (the search index has that many more rows to read).
    pub(super) appended: usize,
}

/// Stores a batch of appends in one transaction, publishes the new events, then answers each.
/// `indexed` is the search index's watermark (see `search`): a change to a message at or below
/// it updates the index.
pub(super) fn commit_batch(
    conn: &mut Connection,
    heads: &mut RoomHeads,
    indexed: i64,
    batch: Vec<(NewEvent, AppendReply)>,
    listener: &dyn CommitListener,
) -> Committed {
    let started = std::time::Instant::now();
    let mut outcomes: Vec<StoreResult<Appended>> = Vec::with_capacity(batch.len());
    // Heads this batch moved, with their values before it, for a rollback.
    let mut undo: Vec<(RoomId, Option<u64>)> = Vec::new();
    let committed = (|| -> StoreResult<()> {
        let mut tx = conn.transaction()?;
        if let [(event, _)] = batch.as_slice() {
            // Alone in its transaction, an append needs no savepoint: if it fails, the (empty)
            // transaction is simply committed with nothing in it.
            outcomes.push(append_one(&tx, heads, indexed, &mut undo, event));
        } else {
            for (event, _) in &batch {
                let mut sp = tx.savepoint()?;
                let mark = undo.len();
                let outcome = append_one(&sp, heads, indexed, &mut undo, event);
                if outcome.is_ok() {
                    sp.commit()?;
                } else {
                    sp.rollback()?;
                    let mut mine = undo.split_off(mark);
                    heads.restore(&mut mine);
                }
                outcomes.push(outcome);
            }
        }
        tx.commit()?;
        Ok(())
    })();

    if let Err(e) = committed {
        heads.restore(&mut undo);
        tracing::error!(error = %e, size = batch.len(), "group commit failed");
        for (_, reply) in batch {
            let _ = reply.send(Err(StoreError::Task(format!("commit failed: {e}"))));
        }
        return Committed::default();
    }
    // Before anyone is answered: what an acknowledged append did is counted by then.
    crate::metrics::get()
        .commit_latency
        .observe(started.elapsed().as_secs_f64());
    let mut erased = false;
    let fresh: Vec<MessageEvent> = outcomes
        .iter()
        .flatten()
        .filter_map(|outcome| match outcome {
            Appended::New(event) => {
                erased |= event.kind == EventKind::Delete;
                Some(event.clone())
            }
            _ => None,
        })
        .collect();
    let appended = fresh.len();
    if !fresh.is_empty() {
        listener.committed(fresh);
    }
    for ((_, reply), outcome) in batch.into_iter().zip(outcomes) {
        let _ = reply.send(outcome);
    }
    Committed { erased, appended }
}

/// What the log says of one message, for the checks of a change.
struct Target {
    id: i64,
    author_id: UserId,
    body: String,
    deleted: bool,
}

/// The message with `seq` in `room`, deleted or not, if there is one (a change's `seq` is not a
/// message).
fn find_message(conn: &Connection, room: RoomId, seq: u64) -> StoreResult<Option<Target>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, author_id, body, deleted_at IS NOT NULL FROM events
             WHERE room_id = ?1 AND seq = ?2 AND kind = 'message'",
        )?
        .query_row(params![to_i64(room.0), to_i64(seq)], |r| {
            Ok(Target {
                id: r.get(0)?,
                author_id: r.get(1)?,
                body: r.get(2)?,
                deleted: r.get(3)?,
            })
        })
        .optional()?)
}

/// The live message a change applies to, or the refusal.
fn live_target(conn: &Connection, room: RoomId, seq: u64) -> StoreResult<Target> {
    match find_message(conn, room, seq)? {
        Some(t) if !t.deleted => Ok(t),
        _ => Err(StoreError::Rejected(Rejection::NoSuchMessage)),
    }
}

/// The members among `handles` other than `author`, as their handles are registered, with
/// their ids.
fn members_named(
    conn: &Connection,
    room: RoomId,
    author: UserId,
    handles: &[Username],
) -> StoreResult<Vec<(UserId, Username)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.id, u.username FROM users u
         JOIN room_members m ON m.user_id = u.id AND m.room_id = ?1
         WHERE u.username = ?2",
    )?;
    let mut out: Vec<(UserId, Username)> = Vec::new();
    for handle in handles {
        let found = stmt
            .query_row(params![to_i64(room.0), handle.as_str()], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?;
        if let Some((id, name)) = found
            && id != author
            && !out.iter().any(|(known, _)| *known == id)
        {
            out.push((id, parse_user(name)?));
        }
    }
    Ok(out)
}

/// Records who a message mentions (replacing what it mentioned before), and returns their
/// handles joined for the row.
fn set_mentions(
    conn: &Connection,
    room: RoomId,
    seq: u64,
    mentioned: &[(UserId, Username)],
) -> StoreResult<Option<String>> {
    conn.prepare_cached("DELETE FROM mentions WHERE room_id = ?1 AND seq = ?2")?
        .execute(params![to_i64(room.0), to_i64(seq)])?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO mentions (user_id, room_id, seq) VALUES (?1, ?2, ?3)",
    )?;
    for (id, _) in mentioned {
        insert.execute(params![id, to_i64(room.0), to_i64(seq)])?;
    }
    Ok((!mentioned.is_empty()).then(|| {
        mentioned
            .iter()
            .map(|(_, name)| name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }))
}

/// Appends one event inside the open transaction `conn`, recording in `undo` the head it moves.
fn append_one(
    conn: &Connection,
    heads: &mut RoomHeads,
    indexed: i64,
    undo: &mut Vec<(RoomId, Option<u64>)>,
    new: &NewEvent,
) -> StoreResult<Appended> {
    let earlier = conn
        .prepare_cached("SELECT room_id, seq FROM events WHERE author_id = ?1 AND client_id = ?2")?
        .query_row(params![new.author_id, new.client_id.as_str()], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })
        .optional()?;
    if let Some((room, seq)) = earlier {
        let room = RoomId(to_u64(room));
        let mut event = event_at(conn, room, to_u64(seq))?.ok_or(StoreError::NotFound)?;
        event.author_name = new.author_name.clone();
        return Ok(Appended::Duplicate(event));
    }

    let room = new.room;
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
    // What the new row holds beside the common columns.
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
                live_target(conn, room, to)?;
            }
            for &id in attachments {
                match files::file(conn, id)? {
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
            mentioned = members_named(conn, room, new.author_id, mentions)?;
            body.clone_from(text);
            event.reply_to = *reply_to;
        }
        Change::Edit {
            target,
            text,
            mentions,
        } => {
            let found = live_target(conn, room, *target)?;
            if found.author_id != new.author_id {
                return Err(StoreError::Rejected(Rejection::NotAuthor));
            }
            if found.body == *text {
                return Ok(Appended::Unchanged);
            }
            mentioned = members_named(conn, room, new.author_id, mentions)?;
            let joined = set_mentions(conn, room, *target, &mentioned)?;
            conn.prepare_cached(
                "UPDATE events SET body = ?3, edited_at = ?4, mentions = ?5
                 WHERE room_id = ?1 AND seq = ?2",
            )?
            .execute(params![to_i64(room.0), to_i64(*target), text, ts, joined])?;
            if found.id <= indexed {
                search::unindex(conn, found.id, room, &found.body)?;
                search::index(conn, found.id, room, text)?;
            }
            body.clone_from(text);
            event.kind = EventKind::Edit;
            event.target = Some(*target);
        }
        Change::Delete {
            target,
            author_only,
        } => {
            let Some(found) = find_message(conn, room, *target)? else {
                return Err(StoreError::Rejected(Rejection::NoSuchMessage));
            };
            if *author_only && found.author_id != new.author_id {
                return Err(StoreError::Rejected(Rejection::NotAuthor));
            }
            if found.deleted {
                return Ok(Appended::Unchanged);
            }
            let (r, t) = (to_i64(room.0), to_i64(*target));
            // The text goes from storage, not only from view: the message's body, the bodies
            // of its edits, and who it mentioned. The file's freed space is zeroed
            // (`secure_delete`), and the write-ahead log is emptied after the commit.
            conn.prepare_cached(
                "UPDATE events SET body = '', deleted_at = ?3, mentions = NULL, edited_at = NULL
                 WHERE room_id = ?1 AND seq = ?2",
            )?
            .execute(params![r, t, ts])?;
            conn.prepare_cached(
                "UPDATE events SET body = '', mentions = NULL
                 WHERE room_id = ?1 AND target = ?2 AND kind = 'edit'",
            )?
            .execute(params![r, t])?;
            conn.prepare_cached("DELETE FROM mentions WHERE room_id = ?1 AND seq = ?2")?
                .execute(params![r, t])?;
            conn.prepare_cached("DELETE FROM reactions WHERE room_id = ?1 AND target = ?2")?
                .execute(params![r, t])?;
            // Its files go with it (their content, once nothing else has it, is removed by the
            // caller: see `crate::files`), and it leaves the search index.
            conn.prepare_cached("DELETE FROM files WHERE room_id = ?1 AND seq = ?2")?
                .execute(params![r, t])?;
            if found.id <= indexed {
                search::unindex(conn, found.id, room, &found.body)?;
            }
            event.kind = EventKind::Delete;
            event.target = Some(*target);
        }
        Change::React { target, emoji, on } => {
            live_target(conn, room, *target)?;
            let (r, t) = (to_i64(room.0), to_i64(*target));
            let present = conn
                .prepare_cached(
                    "SELECT 1 FROM reactions
                     WHERE room_id = ?1 AND target = ?2 AND emoji = ?3 AND user_id = ?4",
                )?
                .query_row(params![r, t, emoji.as_str(), new.author_id], |_| Ok(()))
                .optional()?
                .is_some();
            if present == *on {
                return Ok(Appended::Unchanged);
            }
            if *on {
                let (kinds, known): (i64, bool) = conn
                    .prepare_cached(
                        "SELECT count(DISTINCT emoji), coalesce(max(emoji = ?3), 0)
                         FROM reactions WHERE room_id = ?1 AND target = ?2",
                    )?
                    .query_row(params![r, t, emoji.as_str()], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })?;
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

    let before = heads.heads.get(&room).copied();
    let last = heads.get(conn, room)?;
    let seq = *last + 1;
    // A new message has no mention rows yet: only write when there is something to write.
    let joined_mentions = if event.kind == EventKind::Message && !mentioned.is_empty() {
        set_mentions(conn, room, seq, &mentioned)?
    } else {
        None
    };
    let edit_mentions = (event.kind == EventKind::Edit && !mentioned.is_empty()).then(|| {
        mentioned
            .iter()
            .map(|(_, n)| n.as_str())
            .collect::<Vec<_>>()
            .join(",")
    });
    conn.prepare_cached(
        "INSERT INTO events
             (room_id, seq, kind, author_id, client_id, body, created_at, target, reply_to, mentions)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        to_i64(room.0),
        to_i64(seq),
        event.kind.as_str(),
        new.author_id,
        new.client_id.as_str(),
        body,
        ts,
        event.target.map(to_i64),
        event.reply_to.map(to_i64),
        joined_mentions.or(edit_mentions),
    ])?;
    if let Change::React {
        target, emoji, on, ..
    } = &new.change
    {
        let (r, t) = (to_i64(room.0), to_i64(*target));
        if *on {
            conn.prepare_cached(
                "INSERT INTO reactions (room_id, target, emoji, user_id, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![r, t, emoji.as_str(), new.author_id, to_i64(seq)])?;
        } else {
            conn.prepare_cached(
                "DELETE FROM reactions
                 WHERE room_id = ?1 AND target = ?2 AND emoji = ?3 AND user_id = ?4",
            )?
            .execute(params![r, t, emoji.as_str(), new.author_id])?;
        }
    }
    let row_id = conn.last_insert_rowid();
    if event.kind == EventKind::Message {
        // Indexed for search later, in a batch (see `search`).
        let mut attach = conn.prepare_cached("UPDATE files SET seq = ?2 WHERE id = ?1")?;
        for file in &mut attached {
            attach.execute(params![to_i64(file.id), to_i64(seq)])?;
            file.seq = Some(seq);
        }
        event.attachments = attached.iter().map(FileRecord::attachment).collect();
    }
    // Only now, with the row in place, does the room's head move.
    *last = seq;
    undo.push((room, before));
    event.seq = seq;
    event.id = to_u64(row_id);
    if matches!(event.kind, EventKind::Message | EventKind::Edit) {
        event.text = body;
        event.mentions = mentioned.into_iter().map(|(_, name)| name).collect();
    }
    Ok(Appended::New(event))
}

/// The columns [`event_row`] reads, in order.
const EVENT_COLUMNS: &str = "e.id, e.seq, e.kind, e.body, e.created_at, e.client_id, \
     u.username, u.display_name, e.target, e.reply_to, e.mentions, e.edited_at, e.deleted_at";

/// The raw values of an event row (parsed after the statement, so parse errors are ours).
type RawEvent = (
    i64,
    i64,
    String,
    String,
    i64,
    Option<String>,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawEvent> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
    ))
}

fn event_from(room: RoomId, raw: RawEvent) -> StoreResult<MessageEvent> {
    let (id, seq, kind, body, ts, client_id, author, author_name, target, reply_to, mentions) = (
        raw.0, raw.1, raw.2, raw.3, raw.4, raw.5, raw.6, raw.7, raw.8, raw.9, raw.10,
    );
    let (edited, deleted) = (raw.11, raw.12);
    let author = parse_user(author)?;
    let kind = parse_event_kind(&kind);
    let mut event = MessageEvent::message(
        room,
        to_u64(seq),
        to_u64(id),
        author.clone(),
        display_name(author_name, &author)?,
        String::new(),
        ts,
    );
    event.kind = kind;
    event.client_id = client_id.and_then(|c| ClientId::parse(c).ok());
    event.target = target.map(to_u64);
    event.reply_to = reply_to.map(to_u64);
    event.edited = edited;
    event.deleted = deleted;
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
fn read_events(
    conn: &Connection,
    sql: &str,
    room: RoomId,
    bound: u64,
    limit: u32,
) -> StoreResult<Vec<MessageEvent>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params![to_i64(room.0), to_i64(bound), limit], event_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(event_from(room, row?)?);
    }
    Ok(out)
}

/// The event with `seq` in `room`, as stored now.
pub(super) fn event_at(
    conn: &Connection,
    room: RoomId,
    seq: u64,
) -> StoreResult<Option<MessageEvent>> {
    let mut found = read_events(
        conn,
        &format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN users u ON u.id = e.author_id
             WHERE e.room_id = ?1 AND e.seq = ?2 LIMIT ?3"
        ),
        room,
        seq,
        1,
    )?;
    files::add_attachments(conn, room, &mut found)?;
    Ok(found.pop())
}

/// Up to `limit` events of every kind with `seq > after`, oldest first.
pub(super) fn events_after(
    conn: &Connection,
    room: RoomId,
    after: u64,
    limit: u32,
) -> StoreResult<Vec<MessageEvent>> {
    let mut events = read_events(
        conn,
        &format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN users u ON u.id = e.author_id
             WHERE e.room_id = ?1 AND e.seq > ?2 ORDER BY e.seq ASC LIMIT ?3"
        ),
        room,
        after,
        limit,
    )?;
    files::add_attachments(conn, room, &mut events)?;
    Ok(events)
}

/// Fills in the reactions of `messages` (sorted by `seq`).
fn add_reactions(
    conn: &Connection,
    room: RoomId,
    messages: &mut [MessageEvent],
) -> StoreResult<()> {
    let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
        return Ok(());
    };
    let mut stmt = conn.prepare_cached(
        "SELECT r.target, r.emoji, u.username FROM reactions r JOIN users u ON u.id = r.user_id
         WHERE r.room_id = ?1 AND r.target BETWEEN ?2 AND ?3
         ORDER BY r.target, r.seq",
    )?;
    let rows = stmt.query_map(
        params![to_i64(room.0), to_i64(first.seq), to_i64(last.seq)],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        },
    )?;
    let by_seq: HashMap<u64, usize> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| (m.seq, i))
        .collect();
    for row in rows {
        let (target, emoji, user) = row?;
        let Some(&i) = by_seq.get(&to_u64(target)) else {
            continue;
        };
        let user = parse_user(user)?;
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

/// Up to `limit` messages with `seq < before`, as they are now, oldest first; whether older
/// ones exist; and the room's head, all read in one snapshot.
pub(super) fn messages_before(
    conn: &Connection,
    room: RoomId,
    before: u64,
    limit: u32,
) -> StoreResult<MessagePage> {
    messages_page(conn, room, before, false, limit)
}

/// Up to `limit` messages with `seq > after`, as they are now, oldest first, and whether newer
/// ones exist.
pub(super) fn messages_after(
    conn: &Connection,
    room: RoomId,
    after: u64,
    limit: u32,
) -> StoreResult<MessagePage> {
    messages_page(conn, room, after, true, limit)
}

/// The page of messages beside `seq`: below it, or (`newer`) above it.
fn messages_page(
    conn: &Connection,
    room: RoomId,
    seq: u64,
    newer: bool,
    limit: u32,
) -> StoreResult<MessagePage> {
    let (cmp, order) = if newer { (">", "ASC") } else { ("<", "DESC") };
    let tx = conn.unchecked_transaction()?;
    let mut messages = read_events(
        &tx,
        &format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN users u ON u.id = e.author_id
             WHERE e.room_id = ?1 AND e.seq {cmp} ?2 AND e.kind = 'message'
             ORDER BY e.seq {order} LIMIT ?3"
        ),
        room,
        seq,
        limit,
    )?;
    if !newer {
        messages.reverse();
    }
    add_reactions(&tx, room, &mut messages)?;
    files::add_attachments(&tx, room, &mut messages)?;
    let edge = if newer {
        messages.last()
    } else {
        messages.first()
    };
    let has_more = match edge {
        Some(edge) => tx
            .prepare_cached(&format!(
                "SELECT 1 FROM events WHERE room_id = ?1 AND seq {cmp} ?2 AND kind = 'message'
                 LIMIT 1"
            ))?
            .query_row(params![to_i64(room.0), to_i64(edge.seq)], |_| Ok(()))
            .optional()?
            .is_some(),
        None => false,
    };
    let head: i64 = tx
        .prepare_cached("SELECT coalesce(max(seq), 0) FROM events WHERE room_id = ?1")?
        .query_row(params![to_i64(room.0)], |r| r.get(0))?;
    tx.finish()?;
    Ok(MessagePage {
        messages,
        has_more,
        head: to_u64(head),
    })
}

/// One message as it is now (`None` if `seq` is not a message of the room).
pub(super) fn message(
    conn: &Connection,
    room: RoomId,
    seq: u64,
) -> StoreResult<Option<MessageEvent>> {
    let Some(mut event) = event_at(conn, room, seq)?.filter(MessageEvent::is_message) else {
        return Ok(None);
    };
    add_reactions(conn, room, std::slice::from_mut(&mut event))?;
    Ok(Some(event))
}

/// A user's read position in a room and what is unread above it.
pub(super) fn read_counts(
    conn: &Connection,
    user: UserId,
    room: RoomId,
) -> StoreResult<ReadCounts> {
    let r = to_i64(room.0);
    let seq: i64 = conn
        .prepare_cached("SELECT seq FROM read_markers WHERE user_id = ?1 AND room_id = ?2")?
        .query_row(params![user, r], |row| row.get(0))
        .optional()?
        .unwrap_or(0);
    let unread: u32 = conn
        .prepare_cached(
            "SELECT count(*) FROM (SELECT 1 FROM events
                 WHERE room_id = ?1 AND seq > ?2 AND kind = 'message' AND author_id <> ?3
                   AND deleted_at IS NULL
                 LIMIT ?4)",
        )?
        .query_row(params![r, seq, user, UNREAD_CAP], |row| row.get(0))?;
    let mentions: u32 = conn
        .prepare_cached(
            "SELECT count(*) FROM (SELECT 1 FROM mentions
                 WHERE user_id = ?1 AND room_id = ?2 AND seq > ?3 LIMIT ?4)",
        )?
        .query_row(params![user, r, seq, UNREAD_CAP], |row| row.get(0))?;
    Ok(ReadCounts {
        seq: to_u64(seq),
        unread,
        mentions,
    })
}

/// Moves a user's read position in a room forward to `seq` (at most the room's head; `None`:
/// the head), and returns the counts. It never moves back.
pub(super) fn mark_read(
    conn: &Connection,
    user: UserId,
    room: RoomId,
    seq: Option<u64>,
) -> StoreResult<ReadCounts> {
    let r = to_i64(room.0);
    let head: i64 = conn
        .prepare_cached("SELECT coalesce(max(seq), 0) FROM events WHERE room_id = ?1")?
        .query_row(params![r], |row| row.get(0))?;
    let seq = seq.map_or(head, |s| to_i64(s).min(head));
    conn.prepare_cached(
        "INSERT INTO read_markers (user_id, room_id, seq) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id, room_id) DO UPDATE SET seq = max(seq, excluded.seq)",
    )?
    .execute(params![user, r, seq])?;
    read_counts(conn, user, room)
}
