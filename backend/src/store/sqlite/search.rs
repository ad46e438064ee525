//! Full-text search in SQLite: an FTS5 table beside the log, filled in batches behind it.
//!
//! # Behind the log, never out of step with it
//! An append does not index its message: FTS5 writes a new segment for every transaction that
//! touches the table, so indexing inside each group commit (a few dozen messages) cost more than
//! the rest of the append (45,191 durable messages/s without it, about 22,000 with it; indexing
//! 2,048 at a time costs a fraction per message). Instead `search_state.indexed_upto` records
//! the highest `events.id` whose message is in the index, and [`catch_up`] indexes what lies
//! above it, in chunks of [`CHUNK`], each in one transaction with the new watermark; the writer
//! thread runs it when enough has waited, on a tick, and before every search (so a search finds
//! every message acknowledged before it). `events` rows are never deleted, so ids above the
//! watermark are exactly the messages not yet indexed, and a crash loses nothing: the next
//! writer starts from the stored watermark.
//!
//! A change to a message that is not yet indexed leaves the index alone (its current text is
//! indexed when its turn comes: an edit's new text, a deletion's nothing); a change to one that
//! is indexed takes its old terms out and puts the new ones in, in the change's own transaction.
//!
//! `message_search` is a contentless FTS5 table (`content=''`: it keeps the index, not a second
//! copy of the text). A row leaves it by FTS5's `delete` command, which names the values the row
//! was indexed with: the log still has the text when a message is edited or deleted, and the cut
//! ([`terms::index_text`]) is a pure function of it, so the same values are always given back
//! (were the cut ever to change, a migration must rebuild the index). With FTS5's `secure-delete`
//! option on, that removes the row's terms from the index's pages themselves, instead of leaving
//! them behind a tombstone until a merge: a deleted message's words do not linger in the file
//! (the project's rule for deleted text; `contentless_delete=1` would only tombstone them, and a
//! table with content would keep a second copy of every message). Its rowid is the message's `events.id`, which grows with time: ordering by rowid descending is
//! newest first, and FTS5 walks its index in that order without sorting. The text indexed is cut
//! by [`crate::store::terms`] (CJK runs as bigrams in `body`, CJK characters alone in `uni`) and
//! read by FTS5's `unicode61` tokenizer, which splits the rest into words and folds case and
//! diacritics.
//!
//! The MATCH expression is built here from the parsed terms, never from the user's text: each
//! term is a double-quoted string (a quote inside would be doubled, though terms hold only
//! letters, digits and CJK), so FTS5 operators typed by a user (`NEAR`, `*`, `-`, `:`, `^`,
//! parentheses) are plain text or gone.

use rusqlite::{Connection, params};
use shared::{MessageEvent, RoomId};

use super::log;
use crate::store::codec::{to_i64, to_u64};
use crate::store::terms::{self, QueryTerm};
use crate::store::{SearchCursor, SearchQuery, SearchResults, StoreResult};

/// The FTS5 table (see the module docs). Created by migration 5.
pub(super) const SCHEMA: &str = "
CREATE VIRTUAL TABLE message_search USING fts5(
    body, uni, scope, content='', tokenize='unicode61 remove_diacritics 2'
);
INSERT INTO message_search (message_search, rank) VALUES ('secure-delete', 1);
";

/// The `scope` term of a room's messages: lets a search of a few rooms be answered by FTS5
/// from the room's own (short) list of messages, instead of walking every match of a common
/// word in the whole server to find the few in a quiet room.
fn scope(room: RoomId) -> String {
    format!("r{}", room.0)
}

/// A search over at most this many rooms names them in the MATCH expression.
const SCOPED_ROOMS: usize = 16;

/// Indexes a message's text under its row id.
pub(super) fn index(conn: &Connection, id: i64, room: RoomId, text: &str) -> StoreResult<()> {
    let t = terms::index_text(text);
    if t.body.is_empty() && t.uni.is_empty() {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO message_search (rowid, body, uni, scope) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, t.body, t.uni, scope(room)])?;
    Ok(())
}

/// Removes a message from the index. `text` must be the text it was indexed with (its current
/// text in the log): FTS5 removes exactly the terms it is given.
pub(super) fn unindex(conn: &Connection, id: i64, room: RoomId, text: &str) -> StoreResult<()> {
    let t = terms::index_text(text);
    if t.body.is_empty() && t.uni.is_empty() {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO message_search (message_search, rowid, body, uni, scope)
         VALUES ('delete', ?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, t.body, t.uni, scope(room)])?;
    Ok(())
}

/// How many events one [`catch_up`] transaction reads.
pub(super) const CHUNK: usize = 2048;

/// The highest `events.id` whose message is indexed (every message at or below it is).
pub(super) fn indexed_upto(conn: &Connection) -> StoreResult<i64> {
    Ok(conn.query_row("SELECT indexed_upto FROM search_state", [], |r| r.get(0))?)
}

/// Indexes the next events above `upto` (at most [`CHUNK`]) as they are now, in one
/// transaction with the new watermark. Returns the new watermark and whether the log's end was
/// reached.
pub(super) fn catch_up(conn: &mut Connection, upto: i64) -> StoreResult<(i64, bool)> {
    let tx = conn.transaction()?;
    let mut last = upto;
    let mut seen = 0usize;
    {
        let mut stmt = tx.prepare_cached(
            "SELECT id, room_id, body FROM events
             WHERE id > ?1 AND kind = 'message' AND deleted_at IS NULL
             ORDER BY id LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![upto, i64::try_from(CHUNK).unwrap_or(i64::MAX)])?;
        while let Some(row) = rows.next()? {
            let (id, room, body): (i64, i64, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
            index(&tx, id, RoomId(to_u64(room)), &body)?;
            last = id;
            seen += 1;
        }
    }
    let done = seen < CHUNK;
    if done {
        // Past the last message: the changes after it need no indexing.
        last = tx.query_row(
            "SELECT coalesce(max(id), ?1) FROM events",
            params![last],
            |r| r.get(0),
        )?;
    }
    tx.prepare_cached("UPDATE search_state SET indexed_upto = ?1")?
        .execute(params![last])?;
    tx.commit()?;
    Ok((last, done))
}

/// Indexes every live message (run once, by the migration that creates the index).
pub(super) fn index_all(conn: &Connection) -> StoreResult<()> {
    let mut stmt = conn.prepare(
        "SELECT id, room_id, body FROM events
         WHERE kind = 'message' AND deleted_at IS NULL AND body <> ''",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (id, room, body) = row?;
        index(conn, id, RoomId(to_u64(room)), &body)?;
    }
    Ok(())
}

fn quoted(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

fn term_expr(term: &QueryTerm) -> String {
    match term {
        QueryTerm::Word(w) => format!("body:{}", quoted(w)),
        QueryTerm::Bigrams(b) => format!("body:{}", quoted(&b.join(" "))),
        QueryTerm::Char(c) => format!("uni:{}", quoted(&c.to_string())),
    }
}

/// The MATCH expression of each rank, best first: rank 0 is the whole query as one phrase (when
/// it has more than one term and no single CJK character), rank 1 every term anywhere (the
/// messages of rank 0 left out).
pub(super) fn rank_exprs(terms: &[QueryTerm]) -> Vec<String> {
    let all = terms
        .iter()
        .map(term_expr)
        .collect::<Vec<_>>()
        .join(" AND ");
    let phrase_words: Option<Vec<String>> = terms
        .iter()
        .map(|t| match t {
            QueryTerm::Word(w) => Some(w.clone()),
            QueryTerm::Bigrams(b) => Some(b.join(" ")),
            QueryTerm::Char(_) => None,
        })
        .collect();
    match phrase_words {
        Some(words) if terms.len() > 1 => {
            let phrase = format!("body:{}", quoted(&words.join(" ")));
            vec![phrase.clone(), format!("({all}) NOT {phrase}")]
        }
        _ => vec![all],
    }
}

/// Runs a search: each rank in turn, newest first within it, until the page is full.
pub(super) fn search(conn: &Connection, query: &SearchQuery) -> StoreResult<SearchResults> {
    let mut exprs = rank_exprs(&query.terms);
    if !query.rooms.is_empty() && query.rooms.len() <= SCOPED_ROOMS {
        let rooms = query
            .rooms
            .iter()
            .map(|&r| quoted(&scope(r)))
            .collect::<Vec<_>>()
            .join(" OR ");
        for expr in &mut exprs {
            *expr = format!("({expr}) AND scope:({rooms})");
        }
    }
    let rooms = format!(
        "[{}]",
        query
            .rooms
            .iter()
            .map(|r| r.0.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let want = usize::try_from(query.limit).unwrap_or(usize::MAX);
    let tx = conn.unchecked_transaction()?;
    let mut stmt = tx.prepare_cached(
        "SELECT e.id, e.room_id, e.seq FROM message_search CROSS JOIN events e
             ON e.id = message_search.rowid
         WHERE message_search MATCH ?1 AND message_search.rowid < ?2
           AND e.room_id IN (SELECT value FROM json_each(?3))
           AND (?4 IS NULL OR e.author_id = ?4)
           AND (?5 IS NULL OR e.created_at >= ?5)
           AND (?6 IS NULL OR e.created_at < ?6)
           AND (?7 = 0 OR EXISTS (SELECT 1 FROM files f WHERE f.room_id = e.room_id
                                                         AND f.seq = e.seq))
           AND e.kind = 'message' AND e.deleted_at IS NULL
         ORDER BY message_search.rowid DESC LIMIT ?8",
    )?;
    // (rank, id, room, seq), one more than a page to know whether another follows.
    let mut found: Vec<(u8, i64, i64, i64)> = Vec::new();
    let start = query.cursor.map_or(0, |c| c.rank);
    for (rank, expr) in exprs.iter().enumerate().skip(usize::from(start)) {
        let rank = u8::try_from(rank).unwrap_or(u8::MAX);
        let below = match query.cursor {
            Some(c) if c.rank == rank => to_i64(c.id),
            _ => i64::MAX,
        };
        let left = want + 1 - found.len();
        let rows = stmt.query_map(
            params![
                expr,
                below,
                rooms,
                query.author,
                query.after,
                query.before,
                query.has_file,
                i64::try_from(left).unwrap_or(i64::MAX)
            ],
            |r| Ok((rank, r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        for row in rows {
            found.push(row?);
        }
        if found.len() > want {
            break;
        }
    }
    let more = found.len() > want;
    found.truncate(want);
    let mut hits: Vec<MessageEvent> = Vec::with_capacity(found.len());
    for &(_, _, room, seq) in &found {
        if let Some(event) = log::message(&tx, RoomId(to_u64(room)), to_u64(seq))? {
            hits.push(event);
        }
    }
    drop(stmt);
    tx.finish()?;
    let next = if more {
        found.last().map(|&(rank, id, _, _)| SearchCursor {
            rank,
            id: to_u64(id),
        })
    } else {
        None
    };
    Ok(SearchResults { hits, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_queries_become_quoted_terms() {
        let terms = terms::query_terms("a\" OR body:* NEAR(x) 世界").expect("valid");
        let exprs = rank_exprs(&terms);
        assert_eq!(
            exprs[0], "body:\"a or body near x 世界\"",
            "one phrase of plain words"
        );
        assert_eq!(exprs.len(), 2);
        assert!(exprs[1].starts_with("(body:\"a\" AND body:\"or\""));
        let single = rank_exprs(&terms::query_terms("猫").expect("valid"));
        assert_eq!(single, vec!["uni:\"猫\"".to_owned()]);
    }
}

#[cfg(test)]
mod erasure {
    use super::*;

    #[test]
    fn a_removed_messages_terms_leave_the_index_pages() {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(SCHEMA).expect("schema");
        let text = "supersecretword 秘密口令";
        index(&conn, 1, RoomId(1), text).expect("indexed");
        index(&conn, 2, RoomId(1), "other words").expect("indexed");
        unindex(&conn, 1, RoomId(1), text).expect("removed");
        let found: i64 = conn
            .query_row(
                "SELECT count(*) FROM message_search WHERE message_search MATCH 'supersecretword'",
                [],
                |r| r.get(0),
            )
            .expect("searched");
        assert_eq!(found, 0);
        for term in ["supersecretword", "秘密"] {
            let left: i64 = conn
                .query_row(
                    "SELECT count(*) FROM message_search_data WHERE instr(block, CAST(?1 AS BLOB)) > 0",
                    params![term],
                    |r| r.get(0),
                )
                .expect("probed");
            assert_eq!(left, 0, "{term} is still in the index's pages");
        }
    }
}
