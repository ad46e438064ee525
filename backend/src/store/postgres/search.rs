//! Full-text search in PostgreSQL: a `tsvector` column on the log's message rows with a GIN
//! index, kept in the same transactions as the messages it indexes.
//!
//! The vector is not made by PostgreSQL's text parser (whose idea of a word depends on the
//! database's locale) but built here, from the same cut as SQLite's index
//! ([`crate::store::terms`]): the terms of `body` at positions 1, 2, 3, ... (words, and each CJK
//! run as its bigrams, or the character alone for a run of one), then every CJK character once
//! (the `uni` part) after them. A query is a `tsquery` built from the parsed terms: a word is a
//! lexeme, a CJK run of two or more characters the phrase (`<->`) of its bigrams, a single CJK
//! character a lexeme (a CJK character alone is only ever indexed as itself, so it cannot match
//! a word or a bigram). Both are written as quoted literals and cast, never parsed from the
//! user's text, so no operator a user types survives.
//!
//! Words are folded as SQLite's `unicode61 remove_diacritics 2` tokenizer folds them: the
//! combining diacritical marks (U+0300 to U+036F) of their canonical decomposition are dropped,
//! so `café` finds `cafe`. CJK terms are left alone (kana's voicing marks are not diacritics).
//!
//! Ranks are as in SQLite: rank 0 is the whole query as one phrase (when it has more than one
//! term and no single CJK character), rank 1 every term anywhere, less the rank-0 hits; within a
//! rank, newest first (by the row id, which grows with time).

use shared::{MessageEvent, RoomId};
use sqlx::{PgConnection, Row};
use unicode_normalization::UnicodeNormalization;

use super::log;
use crate::store::codec::{to_i64, to_u64};
use crate::store::terms::{self, QueryTerm};
use crate::store::{SearchCursor, SearchQuery, SearchResults, StoreResult};

/// The longest lexeme PostgreSQL indexes, in bytes. Longer words are left out: no query can
/// name them (a query is at most [`shared::SEARCH_MAX_CHARS`] characters).
const MAX_LEXEME: usize = 2046;
/// The highest position a `tsvector` records; later terms share it.
const MAX_POSITION: usize = 16_383;

/// A term as the index holds it (see the module docs).
fn fold(term: &str) -> String {
    if term.chars().any(terms::is_cjk) {
        return term.to_owned();
    }
    let folded: String = term
        .nfd()
        .filter(|c| !('\u{0300}'..='\u{036F}').contains(c))
        .nfc()
        .collect();
    // A term of marks alone (none is cut so today) keeps them rather than become empty.
    if folded.is_empty() {
        term.to_owned()
    } else {
        folded
    }
}

/// A lexeme as a `tsvector`/`tsquery` literal: single-quoted, with quotes and backslashes
/// doubled (terms hold only letters, digits and CJK, but the literal must not depend on it).
fn quoted(lexeme: &str) -> String {
    format!("'{}'", lexeme.replace('\\', "\\\\").replace('\'', "''"))
}

/// The `tsvector` literal of a message's text, or `None` when it has no terms.
pub(super) fn vector(text: &str) -> Option<String> {
    let cut = terms::index_text(text);
    let mut parts: Vec<String> = Vec::new();
    let all = cut
        .body
        .split(' ')
        .chain(cut.uni.split(' '))
        .filter(|t| !t.is_empty());
    for (i, term) in all.enumerate() {
        let lexeme = fold(term);
        if lexeme.is_empty() || lexeme.len() > MAX_LEXEME {
            continue;
        }
        parts.push(format!("{}:{}", quoted(&lexeme), (i + 1).min(MAX_POSITION)));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The lexemes of a term, in order.
fn lexemes(term: &QueryTerm) -> Vec<String> {
    match term {
        QueryTerm::Word(w) => vec![quoted(&fold(w))],
        QueryTerm::Bigrams(b) => b.iter().map(|g| quoted(&fold(g))).collect(),
        QueryTerm::Char(c) => vec![quoted(&c.to_string())],
    }
}

fn term_query(term: &QueryTerm) -> String {
    format!("({})", lexemes(term).join(" <-> "))
}

/// The `tsquery` literal of each rank, best first (see the module docs).
pub(super) fn rank_queries(terms: &[QueryTerm]) -> Vec<String> {
    let all = terms.iter().map(term_query).collect::<Vec<_>>().join(" & ");
    let phrase = terms.len() > 1 && !terms.iter().any(|t| matches!(t, QueryTerm::Char(_)));
    if phrase {
        let phrase = terms
            .iter()
            .flat_map(lexemes)
            .collect::<Vec<_>>()
            .join(" <-> ");
        vec![format!("({phrase})"), format!("({all}) & !({phrase})")]
    } else {
        vec![all]
    }
}

/// Runs a search: each rank in turn, newest first within it, until the page is full. `conn`
/// should be a snapshot, so that the pages of the ranks and the messages read agree.
pub(super) async fn search(
    conn: &mut PgConnection,
    query: &SearchQuery,
) -> StoreResult<SearchResults> {
    let rooms: Vec<i64> = query.rooms.iter().map(|r| to_i64(r.0)).collect();
    let want = usize::try_from(query.limit).unwrap_or(usize::MAX);
    // (rank, id, room, seq), one more than a page to know whether another follows.
    let mut found: Vec<(u8, i64, i64, i64)> = Vec::new();
    let start = query.cursor.map_or(0, |c| c.rank);
    for (rank, tsquery) in rank_queries(&query.terms)
        .iter()
        .enumerate()
        .skip(usize::from(start))
    {
        let rank = u8::try_from(rank).unwrap_or(u8::MAX);
        let below = match query.cursor {
            Some(c) if c.rank == rank => to_i64(c.id),
            _ => i64::MAX,
        };
        let left = want + 1 - found.len();
        let rows = sqlx::query(
            "SELECT e.id, e.room_id, e.seq FROM events e
             WHERE e.terms @@ $1::TSQUERY AND e.id < $2 AND e.room_id = ANY($3)
               AND ($4::BIGINT IS NULL OR e.author_id = $4)
               AND ($5::BIGINT IS NULL OR e.created_at >= $5)
               AND ($6::BIGINT IS NULL OR e.created_at < $6)
               AND (NOT $7 OR EXISTS (SELECT 1 FROM files f WHERE f.room_id = e.room_id
                                                            AND f.seq = e.seq))
               AND e.kind = 'message' AND e.deleted_at IS NULL
             ORDER BY e.id DESC LIMIT $8",
        )
        .bind(tsquery)
        .bind(below)
        .bind(&rooms)
        .bind(query.author)
        .bind(query.after)
        .bind(query.before)
        .bind(query.has_file)
        .bind(i64::try_from(left).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await?;
        for r in rows {
            found.push((rank, r.try_get(0)?, r.try_get(1)?, r.try_get(2)?));
        }
        if found.len() > want {
            break;
        }
    }
    let more = found.len() > want;
    found.truncate(want);
    let mut hits: Vec<MessageEvent> = Vec::with_capacity(found.len());
    for &(_, _, room, seq) in &found {
        if let Some(event) = log::message(conn, RoomId(to_u64(room)), to_u64(seq)).await? {
            hits.push(event);
        }
    }
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
    fn vectors_hold_the_cut_terms_at_their_positions() {
        assert_eq!(
            vector("Café 你好世界 猫").as_deref(),
            Some("'cafe':1 '你好':2 '好世':3 '世界':4 '猫':5 '你':6 '好':7 '世':8 '界':9 '猫':10")
        );
        assert_eq!(vector(" ,.! "), None);
        assert_eq!(vector(&"x".repeat(3000)), None, "too long to index");
    }

    #[test]
    fn hostile_queries_become_quoted_lexemes() {
        let terms = terms::query_terms("a' OR body:* <-> 世界").expect("valid");
        let queries = rank_queries(&terms);
        assert_eq!(queries[0], "('a' <-> 'or' <-> 'body' <-> '世界')");
        assert_eq!(
            queries[1],
            "(('a') & ('or') & ('body') & ('世界')) & !('a' <-> 'or' <-> 'body' <-> '世界')"
        );
        assert_eq!(
            rank_queries(&terms::query_terms("猫").expect("valid")),
            ["('猫')"]
        );
        assert_eq!(
            rank_queries(&terms::query_terms("你好世界").expect("valid")),
            ["('你好' <-> '好世' <-> '世界')"]
        );
        assert_eq!(quoted("it's \\"), "'it''s \\\\'");
    }
}
