//! Files: uploads over HTTP, their contents on disk, thumbnails, and downloads.
//!
//! # Storage
//! A file's content is stored once per content, under its SHA-256 in a folder beside the
//! database (`<database>.files/ab/cdef...`, the first byte of the hash naming a subfolder so that
//! no folder grows huge), with the thumbnail of an image beside it (`...cdef.thumb`). The
//! metadata (name, size, type, dimensions, uploader, room, the message that carries it) is in the
//! store, one row per upload: the same picture sent twice is two rows and one file on disk.
//!
//! # Upload
//! `POST /api/rooms/{id}/files?name=<name>` with the raw content as the body. The body is
//! streamed to a temporary file in the same folder while it is hashed and counted, never held in
//! memory; the size limit (and what is left of the uploader's quota) is checked against
//! `Content-Length` before anything is read, and against the bytes as they arrive (a body without
//! `Content-Length` is cut off at the limit). The type is read from the content's first bytes,
//! never from the name or the `Content-Type` (which only serve to refuse a file that claims to be
//! an image and is not). An image's dimensions are read from its header, and one too large to
//! decode safely (a "decompression bomb": a small PNG that says it is 100000x100000) is refused
//! before any pixel is decoded; otherwise it is decoded on the blocking pool, a few at a time,
//! under `image::Limits`, and a thumbnail is written. Only then is the content moved under its
//! hash and the row stored (within the quota, checked in the same write).
//!
//! # Download
//! `GET /api/files/{id}` and `GET /api/files/{id}/thumbnail`, for the uploader and for whoever
//! may read the room of the message that carries the file (the service decides: see
//! [`crate::chat::Chat::file`]); 404 for anyone else, as for an id that never existed. The answer
//! never runs in the app's origin: `Content-Security-Policy: default-src 'none'; sandbox`,
//! `X-Content-Type-Options: nosniff`, and `Content-Disposition: attachment` for everything but
//! the four image types the server decodes itself (PNG, JPEG, GIF, WebP), which are shown inline.
//! HTML or SVG are never recognised as such, so they can only ever be served as an attachment of
//! type `application/octet-stream`. Single byte ranges (`Range: bytes=a-b`) are answered 206, and
//! an unsatisfiable one 416.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use image::metadata::Orientation;
use image::{ImageDecoder, ImageFormat, ImageReader, Limits};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use shared::{Attachment, RoomId};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, Semaphore};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::auth::AuthUser;
use crate::chat::{Actor, ChatError};
use crate::error::{ApiError, AppJson};
use crate::startup::AppState;
use crate::store::{FileRecord, NewFile, Store};

/// The longest side of a thumbnail, in pixels.
pub const THUMB_SIDE: u32 = 320;
/// The largest image decoded for a thumbnail, in pixels (width times height): 40 megapixels,
/// 160 MB of RGBA. A larger one is refused.
pub const MAX_IMAGE_PIXELS: u64 = 40_000_000;
/// The longest side of an image decoded for a thumbnail.
pub const MAX_IMAGE_SIDE: u32 = 20_000;
/// The most memory one decode may allocate.
const MAX_DECODE_ALLOC: u64 = 200 * 1024 * 1024;
/// Images decoded at once (each may take up to [`MAX_DECODE_ALLOC`]).
const DECODERS: usize = 2;
/// The longest file name kept, in characters.
const MAX_NAME_CHARS: usize = 255;
/// How many first bytes of a file are kept to tell its type.
const SNIFF_BYTES: usize = 64;

/// The contents of files on disk (see the module docs). Shared by the upload handler and the
/// service, which removes a content once no file row has it.
pub struct Blobs {
    /// `<database>.files`.
    root: PathBuf,
    /// Held while a content is moved into place and its row stored, and while a content is
    /// checked for rows and removed, so that an upload of the same content cannot lose its file
    /// to a removal between the two (an async mutex: it is held across store calls). With
    /// several servers sharing the folder, the store's lock of the content is taken too
    /// ([`Store::lock_content`]).
    lock: Mutex<()>,
    /// Bounds the decodes running at once.
    decoders: Semaphore,
    /// Numbers temporary files.
    next_temp: AtomicU64,
    /// Names this server's temporary files apart from those of other servers sharing the
    /// folder (process ids repeat across machines): the process id and the start time.
    instance: String,
}

impl Blobs {
    /// The contents kept under `root`.
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            lock: Mutex::new(()),
            decoders: Semaphore::new(DECODERS),
            next_temp: AtomicU64::new(0),
            instance: format!(
                "{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ),
        }
    }

    /// Where the content with this hash lives.
    pub fn path(&self, hash: &[u8; 32]) -> PathBuf {
        let hex = hex(hash);
        self.root.join(&hex[..2]).join(&hex[2..])
    }

    /// Where the thumbnail of the content with this hash lives.
    pub fn thumb_path(&self, hash: &[u8; 32]) -> PathBuf {
        let mut path = self.path(hash).into_os_string();
        path.push(".thumb");
        PathBuf::from(path)
    }

    fn temp_path(&self) -> PathBuf {
        let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
        self.root.join("tmp").join(format!("{}-{n}", self.instance))
    }

    /// Removes the contents among `hashes` that no file row has any more (their thumbnails
    /// too). Failures are logged: a content left behind costs disk, nothing else.
    pub async fn release(&self, store: &dyn Store, hashes: Vec<[u8; 32]>) {
        let _held = self.lock.lock().await;
        for hash in hashes {
            // Every server's lock of this content (see `Store::lock_content`).
            let _everywhere = match store.lock_content(hash).await {
                Ok(lock) => lock,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot lock a file's content; it is kept");
                    continue;
                }
            };
            match store.hash_in_use(hash).await {
                Ok(false) => {
                    for path in [self.path(&hash), self.thumb_path(&hash)] {
                        match tokio::fs::remove_file(&path).await {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => tracing::warn!(error = %e, ?path, "cannot remove a file"),
                        }
                    }
                }
                Ok(true) => {}
                Err(e) => tracing::warn!(error = %e, "cannot check whether a file is in use"),
            }
        }
    }

    /// Moves a received content under its hash (or drops it, when that content is there
    /// already), writes its thumbnail, and stores its row; undoes the move if the row is
    /// refused.
    async fn commit(
        &self,
        store: &dyn Store,
        temp: TempFile,
        thumb: Option<Vec<u8>>,
        file: NewFile,
    ) -> Result<FileRecord, ApiError> {
        let _held = self.lock.lock().await;
        let _everywhere = store
            .lock_content(file.hash)
            .await
            .map_err(ChatError::from)?;
        let dest = self.path(&file.hash);
        let existed = tokio::fs::try_exists(&dest).await.unwrap_or(false);
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(internal)?;
        }
        if !existed {
            tokio::fs::rename(&temp.0, &dest).await.map_err(internal)?;
        }
        drop(temp);
        let thumb_path = self.thumb_path(&file.hash);
        if let Some(bytes) = thumb
            && !tokio::fs::try_exists(&thumb_path).await.unwrap_or(false)
        {
            let part = self.temp_path();
            tokio::fs::write(&part, bytes).await.map_err(internal)?;
            tokio::fs::rename(&part, &thumb_path)
                .await
                .map_err(internal)?;
        }
        let hash = file.hash;
        match store.add_file(file).await {
            Ok(record) => Ok(record),
            Err(e) => {
                if !existed && !store.hash_in_use(hash).await.unwrap_or(true) {
                    let _ = tokio::fs::remove_file(&dest).await;
                    let _ = tokio::fs::remove_file(&thumb_path).await;
                }
                Err(match ChatError::from(e) {
                    ChatError::Quota(_) => over_quota(),
                    e => e.into(),
                })
            }
        }
    }
}

/// A temporary file, removed when dropped unless it was moved away first.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        // Gone already when it was moved into place.
        let _ = std::fs::remove_file(&self.0);
    }
}

fn internal(e: std::io::Error) -> ApiError {
    ApiError::Internal(format!("file storage: {e}"))
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// What the first bytes of a file say it is: the four image types the server decodes (told by
/// the same `image` crate that decodes them, so the two always agree), a few common documents
/// for a nicer label, and `application/octet-stream` for everything else. Anything this does not
/// recognise is only ever served as a download.
pub fn sniff(head: &[u8]) -> &'static str {
    if let Ok(format) = image::guess_format(head) {
        match format {
            ImageFormat::Png => return "image/png",
            ImageFormat::Jpeg => return "image/jpeg",
            ImageFormat::Gif => return "image/gif",
            ImageFormat::WebP => return "image/webp",
            _ => {}
        }
    }
    const TABLE: &[(&[u8], &str)] = &[
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x1f\x8b", "application/gzip"),
        (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
        (b"OggS", "audio/ogg"),
        (b"ID3", "audio/mpeg"),
        (b"fLaC", "audio/flac"),
        (b"\x1a\x45\xdf\xa3", "video/webm"),
    ];
    for (magic, mime) in TABLE {
        if head.starts_with(magic) {
            return mime;
        }
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return "video/mp4";
    }
    "application/octet-stream"
}

/// Whether a type is one the server decodes and serves inline.
fn is_image(mime: &str) -> bool {
    matches!(
        mime,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

/// Whether the uploader claims an image: by the request's `Content-Type`, or the name's
/// extension.
fn claims_image(content_type: Option<&str>, name: &str) -> bool {
    let by_type = content_type.is_some_and(|t| t.trim().to_ascii_lowercase().starts_with("image/"));
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let by_name = matches!(
        ext.as_str(),
        "png"
            | "jpg"
            | "jpeg"
            | "gif"
            | "webp"
            | "bmp"
            | "svg"
            | "svgz"
            | "ico"
            | "avif"
            | "heic"
            | "tif"
            | "tiff"
    );
    by_type || by_name
}

/// A file name as kept: its last path component, without control characters, at most
/// [`MAX_NAME_CHARS`] characters; `file` when nothing is left.
pub fn clean_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let name: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let name = name.trim();
    if name.is_empty() || name == "." || name == ".." {
        "file".into()
    } else {
        name.to_owned()
    }
}

/// `Content-Disposition` for a file: `inline` or `attachment`, with an ASCII fallback name and
/// the exact name in RFC 8187 encoding (`filename*=UTF-8''...`).
pub fn disposition(inline: bool, name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '%' | ';') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let kind = if inline { "inline" } else { "attachment" };
    HeaderValue::from_str(&format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// Why an image was refused.
#[derive(Debug)]
enum ImageRefusal {
    /// Larger than the server decodes.
    TooLarge(u32, u32),
    /// Not a readable image of its type.
    Broken(String),
}

/// What decoding an image gives: its dimensions, its thumbnail's bytes and their type.
struct Decoded {
    dimensions: (u32, u32),
    thumb: Vec<u8>,
    thumb_mime: &'static str,
}

/// Reads an image's dimensions from its header, refuses one too large to decode, decodes it
/// under limits and returns its dimensions and a thumbnail (JPEG, or PNG when it has
/// transparency) with the thumbnail's type. Blocking: run on the blocking pool.
fn thumbnail(path: &Path) -> Result<Decoded, ImageRefusal> {
    let broken = |e: &dyn std::fmt::Display| ImageRefusal::Broken(e.to_string());
    let open = || {
        ImageReader::open(path)
            .and_then(ImageReader::with_guessed_format)
            .map_err(|e| broken(&e))
    };
    let (w, h) = open()?.into_dimensions().map_err(|e| broken(&e))?;
    if w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE || u64::from(w) * u64::from(h) > MAX_IMAGE_PIXELS {
        return Err(ImageRefusal::TooLarge(w, h));
    }
    let mut reader = open()?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let refused = |e: image::ImageError| match e {
        image::ImageError::Limits(_) => ImageRefusal::TooLarge(w, h),
        e => broken(&e),
    };
    let mut decoder = reader.into_decoder().map_err(refused)?;
    // A phone stores a photo as its sensor saw it and says in EXIF how to turn it: the
    // thumbnail and the dimensions given to clients are of the picture upright (browsers turn
    // the full image the same way when they show it).
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = image::DynamicImage::from_decoder(decoder).map_err(refused)?;
    image.apply_orientation(orientation);
    let (w, h) = (image.width(), image.height());
    let alpha = image.color().has_alpha();
    // Scaled down to fit, never up: a small image is its own thumbnail.
    let thumb = if w <= THUMB_SIDE && h <= THUMB_SIDE {
        image
    } else {
        image.thumbnail(THUMB_SIDE, THUMB_SIDE)
    };
    let mut out = Cursor::new(Vec::new());
    let mime = if alpha {
        image::DynamicImage::ImageRgba8(thumb.to_rgba8())
            .write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))
            .map_err(|e| broken(&e))?;
        "image/png"
    } else {
        image::DynamicImage::ImageRgb8(thumb.to_rgb8())
            .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
                &mut out, 80,
            ))
            .map_err(|e| broken(&e))?;
        "image/jpeg"
    };
    Ok(Decoded {
        dimensions: (w, h),
        thumb: out.into_inner(),
        thumb_mime: mime,
    })
}

/// The query of an upload.
#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    /// The file's name, for display and downloads (`file` when absent).
    name: Option<String>,
}

fn too_large(limit: u64) -> ApiError {
    ApiError::TooLarge(format!(
        "A file is at most {} bytes ({} MiB).",
        limit,
        limit / (1024 * 1024)
    ))
}

fn over_quota() -> ApiError {
    ApiError::OverQuota(
        "This file would take you over your upload quota; delete messages with files to free \
         it."
        .into(),
    )
}

/// `POST /api/rooms/{id}/files?name=<name>`: uploads a file to a room (see the module docs).
/// Answers 201 with the [`Attachment`] to put in a message's `attachments` (by its `id`).
pub async fn upload(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<UrlPath<u64>, PathRejection>,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, AppJson<Attachment>), ApiError> {
    let UrlPath(room) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let room = RoomId(room);
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let name = clean_name(query.name.as_deref().unwrap_or("file"));
    let max = state.config.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let actor = Actor::from(&user);
    let quota = match state.chat.may_upload(&actor, room).await {
        Ok(quota) => quota,
        Err(ChatError::Quota(_)) => return Err(over_quota()),
        Err(e) => return Err(e.into()),
    };
    let left = if quota > 0 {
        quota.saturating_sub(state.store.file_usage(actor.id).await?)
    } else {
        u64::MAX
    };
    if declared.is_some_and(|n| n > left) {
        return Err(over_quota());
    }

    // Receive: stream to a temporary file, hashing and counting.
    let blobs = &state.blobs;
    let temp = TempFile(blobs.temp_path());
    if let Some(dir) = temp.0.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(internal)?;
    }
    let mut out = tokio::fs::File::create(&temp.0).await.map_err(internal)?;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut head: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|_| ApiError::BadRequest("The upload was cut off before its end.".into()))?;
        size = size.saturating_add(chunk.len() as u64);
        if size > max {
            return Err(too_large(max));
        }
        if size > left {
            return Err(over_quota());
        }
        if head.len() < SNIFF_BYTES {
            let take = (SNIFF_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(internal)?;
    }
    if size == 0 {
        return Err(ApiError::BadRequest("The file is empty.".into()));
    }
    out.sync_all().await.map_err(internal)?;
    drop(out);
    let hash: [u8; 32] = hasher.finalize().into();

    // Check: the type from the content; an image must decode within bounds.
    let mime = sniff(&head);
    let claimed = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let mut dimensions = None;
    let mut thumb = None;
    let mut thumb_mime = None;
    if is_image(mime) {
        let permit = blobs
            .decoders
            .acquire()
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let at = temp.0.clone();
        let made = tokio::task::spawn_blocking(move || thumbnail(&at))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        drop(permit);
        match made {
            Ok(decoded) => {
                dimensions = Some(decoded.dimensions);
                thumb = Some(decoded.thumb);
                thumb_mime = Some(decoded.thumb_mime.to_owned());
            }
            Err(ImageRefusal::TooLarge(w, h)) => {
                return Err(ApiError::BadImage(format!(
                    "The image is {w}x{h} pixels; the most the server takes is \
                     {MAX_IMAGE_PIXELS} pixels, at most {MAX_IMAGE_SIDE} on a side."
                )));
            }
            Err(ImageRefusal::Broken(e)) => {
                return Err(ApiError::BadImage(format!(
                    "The file says it is {mime} but cannot be read as one: {e}"
                )));
            }
        }
    } else if claims_image(claimed, &name) {
        return Err(ApiError::UnsupportedType(
            "The file is named or sent as an image, but its content is not a PNG, JPEG, GIF or \
             WebP image."
                .into(),
        ));
    }

    let record = blobs
        .commit(
            state.store.as_ref(),
            temp,
            thumb,
            NewFile {
                hash,
                size,
                mime: mime.to_owned(),
                name,
                dimensions,
                thumb_mime,
                room,
                uploader: actor.id,
                quota,
            },
        )
        .await?;
    tracing::info!(user = %actor.username, %room, id = record.id, size, mime, "file uploaded");
    Ok((StatusCode::CREATED, AppJson(record.attachment())))
}

fn file_id(path: Result<UrlPath<u64>, PathRejection>) -> Result<u64, ApiError> {
    let UrlPath(id) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(id)
}

/// `GET /api/files/{id}`: the file's content (see the module docs).
pub async fn download(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<UrlPath<u64>, PathRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    let id = file_id(path)?;
    let file = state.chat.file(&Actor::from(&user), id).await?;
    let inline = is_image(&file.mime);
    let mime = if inline {
        file.mime.as_str()
    } else {
        "application/octet-stream"
    };
    serve(
        &state.blobs.path(&file.hash),
        mime,
        disposition(inline, &file.name),
        req,
    )
    .await
}

/// `GET /api/files/{id}/thumbnail`: an image's thumbnail (at most [`THUMB_SIDE`] pixels on a
/// side); 404 for other files.
pub async fn download_thumbnail(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<UrlPath<u64>, PathRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    let id = file_id(path)?;
    let file = state.chat.file(&Actor::from(&user), id).await?;
    let Some(mime) = file.thumb_mime.as_deref().filter(|m| is_image(m)) else {
        return Err(ChatError::NoSuchFile.into());
    };
    serve(
        &state.blobs.thumb_path(&file.hash),
        mime,
        disposition(true, &file.name),
        req,
    )
    .await
}

/// Serves a stored file with range support (tower-http's `ServeFile`: 206 for a satisfiable
/// range, 416 otherwise, `HEAD`, conditional requests), then sets the headers that keep it out
/// of the app's origin.
async fn serve(
    path: &Path,
    mime: &str,
    disposition: HeaderValue,
    req: Request,
) -> Result<Response, ApiError> {
    let res = ServeFile::new(path)
        .oneshot(req)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    if res.status() == StatusCode::NOT_FOUND {
        tracing::error!(?path, "a stored file is missing from disk");
        return Err(ChatError::NoSuchFile.into());
    }
    let mut res = res.map(Body::new).into_response();
    let headers = res.headers_mut();
    if let Ok(value) = HeaderValue::from_str(mime) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    // The content of an id never changes; who may read it can, so only the browser keeps it,
    // and not for long.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    Ok(res)
}

/// Deletes uploads never sent in a message after a day, and their contents when no other file
/// has them (called by housekeeping).
pub async fn sweep_unsent(store: &Arc<dyn Store>, blobs: &Blobs) {
    let before = crate::store::now_ms() - UNSENT_TTL_MS;
    match store.delete_unsent_files(before).await {
        Ok(gone) if gone.is_empty() => {}
        Ok(gone) => {
            tracing::info!(contents = gone.len(), "unsent uploads deleted");
            blobs.release(store.as_ref(), gone).await;
        }
        Err(e) => tracing::warn!(error = %e, "cannot delete unsent uploads"),
    }
}

/// How long an upload may wait to be sent in a message.
pub const UNSENT_TTL_MS: i64 = 24 * 3600 * 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_content() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), "image/png");
        assert_eq!(sniff(b"\xff\xd8\xff\xe0\0\x10JFIF"), "image/jpeg");
        assert_eq!(sniff(b"GIF89a"), "image/gif");
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), "image/webp");
        assert_eq!(sniff(b"%PDF-1.7"), "application/pdf");
        assert_eq!(sniff(b"<svg xmlns="), "application/octet-stream");
        assert_eq!(sniff(b"<!doctype html>"), "application/octet-stream");
        assert!(claims_image(Some("image/svg+xml"), "x"));
        assert!(claims_image(None, "cat.JPG"));
        assert!(!claims_image(Some("application/pdf"), "a.pdf"));
    }

    #[test]
    fn names_are_cleaned_and_encoded_safely() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\x\\a\nb.txt"), "ab.txt");
        assert_eq!(clean_name(""), "file");
        let d = disposition(false, "报告 \"final\";.pdf");
        let d = d.to_str().expect("ascii header");
        assert!(
            d.starts_with("attachment; filename=\"__ _final__.pdf\""),
            "{d}"
        );
        assert!(
            d.contains("filename*=UTF-8''%E6%8A%A5%E5%91%8A%20%22final%22%3B.pdf"),
            "{d}"
        );
    }
}
