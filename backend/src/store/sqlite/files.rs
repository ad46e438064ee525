//! Uploaded files' metadata in SQLite (the content lives on disk under its hash: see
//! [`crate::files`]). A file row belongs to the room it was uploaded to and, once sent, to the
//! message that carries it (`seq`); deleting that message deletes the row.

use rusqlite::{Connection, OptionalExtension, Row, params};
use shared::{MessageEvent, RoomId};

use crate::store::codec::{to_i64, to_u64};
use crate::store::{FileRecord, NewFile, Rejection, StoreError, StoreResult};

/// The columns [`file_row`] reads, in order.
const FILE_COLUMNS: &str =
    "id, hash, size, mime, name, width, height, thumb_mime, room_id, uploader_id, seq";

fn file_row(r: &Row<'_>) -> rusqlite::Result<FileRecord> {
    let hash: Vec<u8> = r.get(1)?;
    let width: Option<u32> = r.get(5)?;
    let height: Option<u32> = r.get(6)?;
    Ok(FileRecord {
        id: to_u64(r.get(0)?),
        hash: hash.try_into().unwrap_or([0; 32]),
        size: to_u64(r.get(2)?),
        mime: r.get(3)?,
        name: r.get(4)?,
        dimensions: width.zip(height),
        thumb_mime: r.get(7)?,
        room: RoomId(to_u64(r.get(8)?)),
        uploader: r.get(9)?,
        seq: r.get::<_, Option<i64>>(10)?.map(to_u64),
    })
}

/// A file by id.
pub(super) fn file(conn: &Connection, id: u64) -> StoreResult<Option<FileRecord>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {FILE_COLUMNS} FROM files WHERE id = ?1"))?
        .query_row(params![to_i64(id)], file_row)
        .optional()?)
}

/// The files carried by a message, in the order sent.
pub(super) fn message_files(
    conn: &Connection,
    room: RoomId,
    seq: u64,
) -> StoreResult<Vec<FileRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {FILE_COLUMNS} FROM files WHERE room_id = ?1 AND seq = ?2 ORDER BY id"
    ))?;
    let rows = stmt.query_map(params![to_i64(room.0), to_i64(seq)], file_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Fills in the attachments of the messages among `events` (sorted by `seq`).
pub(super) fn add_attachments(
    conn: &Connection,
    room: RoomId,
    events: &mut [MessageEvent],
) -> StoreResult<()> {
    let mut messages = events.iter().filter(|e| e.is_message());
    let (Some(first), Some(last)) = (messages.next().map(|e| e.seq), events.last().map(|e| e.seq))
    else {
        return Ok(());
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {FILE_COLUMNS} FROM files WHERE room_id = ?1 AND seq BETWEEN ?2 AND ?3
         ORDER BY seq, id"
    ))?;
    let rows = stmt.query_map(
        params![to_i64(room.0), to_i64(first), to_i64(last)],
        file_row,
    )?;
    for row in rows {
        let file = row?;
        let Some(seq) = file.seq else { continue };
        if let Ok(i) = events.binary_search_by_key(&seq, |e| e.seq)
            && events[i].is_message()
        {
            events[i].attachments.push(file.attachment());
        }
    }
    Ok(())
}

/// Stores an upload's metadata within its uploader's quota, in one write.
pub(super) fn add_file(conn: &mut Connection, new: &NewFile) -> StoreResult<FileRecord> {
    let tx = conn.transaction()?;
    if new.quota > 0 {
        let used: i64 = tx
            .prepare_cached("SELECT coalesce(sum(size), 0) FROM files WHERE uploader_id = ?1")?
            .query_row(params![new.uploader], |r| r.get(0))?;
        if to_u64(used).saturating_add(new.size) > new.quota {
            return Err(StoreError::Rejected(Rejection::OverQuota));
        }
    }
    let exists = tx
        .prepare_cached("SELECT 1 FROM rooms WHERE id = ?1")?
        .query_row(params![to_i64(new.room.0)], |_| Ok(()))
        .optional()?
        .is_some();
    if !exists {
        return Err(StoreError::NotFound);
    }
    tx.prepare_cached(
        "INSERT INTO files (hash, size, mime, name, width, height, thumb_mime, room_id,
                            uploader_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        &new.hash[..],
        to_i64(new.size),
        new.mime,
        new.name,
        new.dimensions.map(|d| d.0),
        new.dimensions.map(|d| d.1),
        new.thumb_mime,
        to_i64(new.room.0),
        new.uploader,
        crate::store::now_ms(),
    ])?;
    let id = to_u64(tx.last_insert_rowid());
    tx.commit()?;
    Ok(FileRecord {
        id,
        hash: new.hash,
        size: new.size,
        mime: new.mime.clone(),
        name: new.name.clone(),
        dimensions: new.dimensions,
        thumb_mime: new.thumb_mime.clone(),
        room: new.room,
        uploader: new.uploader,
        seq: None,
    })
}

/// Bytes taken by a user's files.
pub(super) fn usage(conn: &Connection, user: i64) -> StoreResult<u64> {
    let used: i64 = conn
        .prepare_cached("SELECT coalesce(sum(size), 0) FROM files WHERE uploader_id = ?1")?
        .query_row(params![user], |r| r.get(0))?;
    Ok(to_u64(used))
}

/// Whether any file has this content.
pub(super) fn hash_in_use(conn: &Connection, hash: &[u8; 32]) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM files WHERE hash = ?1 LIMIT 1")?
        .query_row(params![&hash[..]], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Deletes the unsent files uploaded before `before`; returns the contents no file has now.
pub(super) fn delete_unsent(conn: &mut Connection, before: i64) -> StoreResult<Vec<[u8; 32]>> {
    let tx = conn.transaction()?;
    let hashes: Vec<Vec<u8>> = tx
        .prepare_cached("DELETE FROM files WHERE seq IS NULL AND created_at < ?1 RETURNING hash")?
        .query_map(params![before], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut gone = Vec::new();
    for hash in hashes {
        let Ok(hash) = <[u8; 32]>::try_from(hash) else {
            continue;
        };
        if !gone.contains(&hash) && !hash_in_use(&tx, &hash)? {
            gone.push(hash);
        }
    }
    tx.commit()?;
    Ok(gone)
}
