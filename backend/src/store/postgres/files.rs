//! Uploaded files' metadata in PostgreSQL, with the semantics of `sqlite/files.rs`: a file row
//! belongs to the room it was uploaded to and, once sent, to the message that carries it
//! (`seq`); deleting that message deletes the row. The content lives outside the database.

use shared::{MessageEvent, RoomId};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use crate::store::codec::{to_i64, to_u64};
use crate::store::{FileRecord, NewFile, Rejection, StoreError, StoreResult, now_ms};

/// The columns [`file_row`] reads, in order.
const FILE_COLUMNS: &str =
    "id, hash, size, mime, name, width, height, thumb_mime, room_id, uploader_id, seq";

fn file_row(r: &PgRow) -> StoreResult<FileRecord> {
    let hash: Vec<u8> = r.try_get(1)?;
    let width: Option<i32> = r.try_get(5)?;
    let height: Option<i32> = r.try_get(6)?;
    let dimension = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok());
    let seq: Option<i64> = r.try_get(10)?;
    Ok(FileRecord {
        id: to_u64(r.try_get(0)?),
        hash: hash
            .try_into()
            .map_err(|_| StoreError::Task("corrupt file hash".into()))?,
        size: to_u64(r.try_get(2)?),
        mime: r.try_get(3)?,
        name: r.try_get(4)?,
        dimensions: dimension(width).zip(dimension(height)),
        thumb_mime: r.try_get(7)?,
        room: RoomId(to_u64(r.try_get(8)?)),
        uploader: r.try_get(9)?,
        seq: seq.map(to_u64),
    })
}

/// A file by id.
pub(super) async fn file(conn: &mut PgConnection, id: u64) -> StoreResult<Option<FileRecord>> {
    sqlx::query(&format!("SELECT {FILE_COLUMNS} FROM files WHERE id = $1"))
        .bind(to_i64(id))
        .fetch_optional(conn)
        .await?
        .map(|r| file_row(&r))
        .transpose()
}

/// A file by id, locked until the transaction ends: the check that it can be attached and the
/// attaching then see the same row, even if the sweep of unsent files runs at the same moment.
pub(super) async fn file_for_attaching(
    conn: &mut PgConnection,
    id: u64,
) -> StoreResult<Option<FileRecord>> {
    sqlx::query(&format!(
        "SELECT {FILE_COLUMNS} FROM files WHERE id = $1 FOR UPDATE"
    ))
    .bind(to_i64(id))
    .fetch_optional(conn)
    .await?
    .map(|r| file_row(&r))
    .transpose()
}

/// The files carried by a message, in the order sent.
pub(super) async fn message_files(
    conn: &mut PgConnection,
    room: RoomId,
    seq: u64,
) -> StoreResult<Vec<FileRecord>> {
    sqlx::query(&format!(
        "SELECT {FILE_COLUMNS} FROM files WHERE room_id = $1 AND seq = $2 ORDER BY id"
    ))
    .bind(to_i64(room.0))
    .bind(to_i64(seq))
    .fetch_all(conn)
    .await?
    .iter()
    .map(file_row)
    .collect()
}

/// Fills in the attachments of the messages among `events` (sorted by `seq`).
pub(super) async fn add_attachments(
    conn: &mut PgConnection,
    room: RoomId,
    events: &mut [MessageEvent],
) -> StoreResult<()> {
    let mut messages = events.iter().filter(|e| e.is_message());
    let (Some(first), Some(last)) = (messages.next().map(|e| e.seq), events.last().map(|e| e.seq))
    else {
        return Ok(());
    };
    let rows = sqlx::query(&format!(
        "SELECT {FILE_COLUMNS} FROM files WHERE room_id = $1 AND seq BETWEEN $2 AND $3
         ORDER BY seq, id"
    ))
    .bind(to_i64(room.0))
    .bind(to_i64(first))
    .bind(to_i64(last))
    .fetch_all(conn)
    .await?;
    for row in rows {
        let file = file_row(&row)?;
        let Some(seq) = file.seq else { continue };
        if let Ok(i) = events.binary_search_by_key(&seq, |e| e.seq)
            && events[i].is_message()
        {
            events[i].attachments.push(file.attachment());
        }
    }
    Ok(())
}

/// Stores an upload's metadata within its uploader's quota. The uploader's row is locked for
/// the check and the insert, so two uploads at once (on any nodes) cannot both pass the quota.
pub(super) async fn add_file(pool: &PgPool, new: &NewFile) -> StoreResult<FileRecord> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
        .bind(new.uploader)
        .execute(&mut *tx)
        .await?;
    if new.quota > 0 {
        let used = usage(&mut tx, new.uploader).await?;
        if used.saturating_add(new.size) > new.quota {
            return Err(StoreError::Rejected(Rejection::OverQuota));
        }
    }
    let exists = sqlx::query("SELECT 1 FROM rooms WHERE id = $1")
        .bind(to_i64(new.room.0))
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if !exists {
        return Err(StoreError::NotFound);
    }
    let dimension = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO files (hash, size, mime, name, width, height, thumb_mime, room_id,
                            uploader_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(&new.hash[..])
    .bind(to_i64(new.size))
    .bind(&new.mime)
    .bind(&new.name)
    .bind(new.dimensions.map(|d| dimension(d.0)))
    .bind(new.dimensions.map(|d| dimension(d.1)))
    .bind(&new.thumb_mime)
    .bind(to_i64(new.room.0))
    .bind(new.uploader)
    .bind(now_ms())
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(FileRecord {
        id: to_u64(id),
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
pub(super) async fn usage(conn: &mut PgConnection, user: i64) -> StoreResult<u64> {
    let used: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(size), 0)::BIGINT FROM files WHERE uploader_id = $1",
    )
    .bind(user)
    .fetch_one(conn)
    .await?;
    Ok(to_u64(used))
}

/// Whether any file has this content.
pub(super) async fn hash_in_use(conn: &mut PgConnection, hash: &[u8; 32]) -> StoreResult<bool> {
    Ok(sqlx::query("SELECT 1 FROM files WHERE hash = $1 LIMIT 1")
        .bind(&hash[..])
        .fetch_optional(conn)
        .await?
        .is_some())
}

/// Deletes the unsent files uploaded before `before`; returns the contents no file has now.
pub(super) async fn delete_unsent(pool: &PgPool, before: i64) -> StoreResult<Vec<[u8; 32]>> {
    let mut tx = pool.begin().await?;
    let hashes: Vec<Vec<u8>> = sqlx::query_scalar(
        "DELETE FROM files WHERE seq IS NULL AND created_at < $1 RETURNING hash",
    )
    .bind(before)
    .fetch_all(&mut *tx)
    .await?;
    let mut gone = Vec::new();
    for hash in hashes {
        let Ok(hash) = <[u8; 32]>::try_from(hash) else {
            continue;
        };
        if !gone.contains(&hash) && !hash_in_use(&mut tx, &hash).await? {
            gone.push(hash);
        }
    }
    tx.commit().await?;
    Ok(gone)
}
