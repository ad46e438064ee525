//! Files: uploading them for a message, and what the views need to show the files messages
//! carry.
//!
//! An upload is the file's bytes as the body of `POST /api/rooms/{id}/files?name=...`, sent
//! with `XMLHttpRequest` (which reports the upload's progress and can be aborted; `fetch`
//! cannot report it). The server answers with the [`Attachment`] whose id a `send` then
//! carries; the composer sends the message only once every file of it is stored (see
//! [`crate::components::Composer`]). A message with files goes through the outbox like any
//! other, its files with it ([`crate::outbox::OutboxEntry::attachments`]), so it survives a
//! reload once sent. A file still uploading (or uploaded but not yet sent) when the page is
//! reloaded cannot be resumed, since a page cannot keep a picked file: its name is kept under
//! [`lost_key`] and the composer says, after the reload, which files to attach again.
//!
//! The checks here ([`MAX_BYTES`], [`shared::MAX_ATTACHMENTS`]) only spare a doomed upload: the
//! server is the authority (its limit may be lower), and its refusal is shown in the person's
//! language ([`crate::i18n::upload_error_text`]).

use shared::{ApiError, Attachment, RoomId, Username};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

use crate::i18n::{fill, t, upload_error_text};

/// The largest file the client tries to upload: the server's default limit.
pub const MAX_BYTES: u64 = 25 * 1024 * 1024;

/// The largest side of an image shown in a message, in CSS pixels (the server's thumbnails are
/// at most this large too).
pub const THUMB_MAX: u32 = 320;

/// The image types the server reads the size of and makes thumbnails for.
const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// Whether a file shows inline as an image: one of the server's image types, with its size
/// and a thumbnail.
pub fn is_image(a: &Attachment) -> bool {
    IMAGE_TYPES.contains(&a.mime.as_str()) && a.thumbnail && a.width.is_some() && a.height.is_some()
}

/// The box an image of `w` x `h` pixels is shown in: at most [`THUMB_MAX`] on a side, the
/// aspect kept, never larger than the image, at least 1 px.
pub fn thumb_box(w: u32, h: u32) -> (u32, u32) {
    let (w, h) = (w.max(1), h.max(1));
    let side = w.max(h);
    if side <= THUMB_MAX {
        return (w, h);
    }
    let scale = |v: u32| {
        ((u64::from(v) * u64::from(THUMB_MAX) + u64::from(side) / 2) / u64::from(side)).max(1)
            as u32
    };
    (scale(w), scale(h))
}

/// A size for people: bytes under 1 KB, then KB, MB, GB with one decimal under 10 (binary
/// multiples, as file managers show them).
pub fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 3] = ["KB", "MB", "GB"];
    if bytes < 1024 {
        return fill(t().size_bytes, &[("n", &bytes.to_string())]);
    }
    // In tenths, with integers only (formatting floats would add its own code to the bundle).
    let mut unit = 0;
    let mut div: u64 = 1024;
    while bytes >= div * 1024 && unit < UNITS.len() - 1 {
        div *= 1024;
        unit += 1;
    }
    let tenths = (bytes * 10 + div / 2) / div;
    if tenths < 100 {
        format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
    } else {
        format!("{} {}", (tenths + 5) / 10, UNITS[unit])
    }
}

/// The URL of a file.
pub fn file_url(id: u64) -> String {
    format!("/api/files/{id}")
}

/// The URL of an image's thumbnail.
pub fn thumb_url(id: u64) -> String {
    format!("/api/files/{id}/thumbnail")
}

/// The URL an upload of a file named `name` to `room` goes to (the name percent-encoded as
/// UTF-8, as `encodeURIComponent` does).
pub fn upload_url(room: RoomId, name: &str) -> String {
    format!("/api/rooms/{room}/files?name={}", crate::api::encode(name))
}

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpState {
    /// Its bytes are on their way.
    Sending,
    /// Stored: the message may carry it.
    Done(Attachment),
    /// Refused (the reason in the person's language), or cut off.
    Failed {
        /// Why.
        reason: String,
        /// Trying again may work (no answer, the server failed): a retry is offered.
        retry: bool,
    },
}

/// A file the composer holds for the next message of a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// A number of this page's, to find it again.
    pub n: u64,
    /// The room it is uploaded to (the message goes there).
    pub room: RoomId,
    /// Its name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Where it stands.
    pub state: UpState,
    /// Percent of its bytes sent (while sending).
    pub sent: u8,
}

/// Checks a picked file before uploading it: `Some(reason)` when it cannot be sent.
pub fn precheck(size: u64) -> Option<String> {
    (size > MAX_BYTES).then(|| fill(t().err_file_too_large, &[("max", &size_text(MAX_BYTES))]))
}

/// What an upload's answer means: the stored file, or why not and whether to offer a retry.
pub fn outcome(status: u16, body: &str) -> Result<Attachment, (String, bool)> {
    if (200..300).contains(&status) {
        return serde_json::from_str(body).map_err(|_| (t().err_upload_failed.to_owned(), true));
    }
    let (error, code, message) = serde_json::from_str::<ApiError>(body)
        .map(|e| (e.error, e.code, e.message))
        .unwrap_or_default();
    let retry = status == 0 || status == 429 || status >= 500;
    Err((upload_error_text(status, &error, code, &message), retry))
}

/// Starts uploading `file` to `room`: `progress(loaded, total)` as bytes go out, then `done`
/// with the answer (once, also after an abort, whose answer the caller ignores). The request
/// is returned so that it can be aborted.
pub fn start(
    room: RoomId,
    file: &web_sys::File,
    mut progress: impl FnMut(f64, f64) + 'static,
    done: impl FnOnce(Result<Attachment, (String, bool)>) + 'static,
) -> Option<web_sys::XmlHttpRequest> {
    let xhr = web_sys::XmlHttpRequest::new().ok()?;
    xhr.open("POST", &upload_url(room, &file.name())).ok()?;
    let on_progress =
        Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
            progress(e.loaded(), e.total())
        });
    let upload = xhr.upload().ok();
    if let Some(up) = &upload {
        up.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
    }
    let x = xhr.clone();
    // `loadend` comes once, after success, failure or abort; it frees the progress handler.
    let on_end = Closure::once_into_js(move || {
        if let Some(up) = &upload {
            up.set_onprogress(None);
        }
        drop(on_progress);
        let status = x.status().unwrap_or(0);
        let body = x.response_text().ok().flatten().unwrap_or_default();
        done(outcome(status, &body));
    });
    xhr.set_onloadend(Some(on_end.unchecked_ref()));
    xhr.send_with_opt_blob(Some(file)).ok()?;
    Some(xhr)
}

/// The `localStorage` key under which the names of the files the composer holds are kept, so
/// that after a reload it can say which ones to attach again.
pub fn lost_key(user: &Username) -> String {
    format!("chat.uploads.v1.{}", user.as_str().to_ascii_lowercase())
}

/// A file held in the composer, as kept for after a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Its room.
    pub room: RoomId,
    /// Its name.
    pub name: String,
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The files the composer held when the page was last closed (what does not read: none).
pub fn load_held(user: &Username) -> Vec<Held> {
    storage()
        .and_then(|s| s.get_item(&lost_key(user)).ok().flatten())
        .map(|raw| decode_held(&raw))
        .unwrap_or_default()
}

/// Records the files the composer holds now (best effort).
pub fn save_held(user: &Username, held: &[Held]) {
    if let Some(s) = storage() {
        let key = lost_key(user);
        let _ = if held.is_empty() {
            s.remove_item(&key)
        } else {
            s.set_item(&key, &encode_held(held))
        };
    }
}

/// Held files as stored: a line each, the room's id, a tab, the name (a plain format: no
/// parser of its own in the bundle; names never hold a line break, the server drops control
/// characters, and one that did would only be cut short here).
pub fn encode_held(held: &[Held]) -> String {
    held.iter()
        .map(|h| format!("{}\t{}\n", h.room, h.name.replace(['\n', '\r'], " ")))
        .collect()
}

/// Reads [`encode_held`]'s format; lines that do not read are skipped.
pub fn decode_held(raw: &str) -> Vec<Held> {
    raw.lines()
        .filter_map(|l| {
            let (room, name) = l.split_once('\t')?;
            Some(Held {
                room: RoomId(room.parse().ok()?),
                name: name.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{Lang, set_lang};

    fn file(mime: &str, w: Option<u32>, thumb: bool) -> Attachment {
        Attachment {
            id: 1,
            name: "x".into(),
            size: 10,
            mime: mime.into(),
            width: w,
            height: w,
            thumbnail: thumb,
        }
    }

    #[test]
    fn images_with_a_size_and_a_thumbnail_show_inline() {
        assert!(is_image(&file("image/png", Some(10), true)));
        assert!(is_image(&file("image/webp", Some(10), true)));
        assert!(!is_image(&file("image/png", None, true)));
        assert!(!is_image(&file("image/png", Some(10), false)));
        assert!(!is_image(&file("image/svg+xml", Some(10), true)));
        assert!(!is_image(&file("application/pdf", None, false)));
    }

    #[test]
    fn the_box_of_an_image_keeps_its_aspect_within_320_pixels() {
        assert_eq!(thumb_box(640, 480), (320, 240));
        assert_eq!(thumb_box(480, 640), (240, 320));
        assert_eq!(thumb_box(100, 50), (100, 50));
        assert_eq!(thumb_box(20_000, 10), (320, 1));
        assert_eq!(thumb_box(0, 0), (1, 1));
        assert_eq!(thumb_box(1000, 333), (320, 107));
    }

    #[test]
    fn sizes_read_like_a_file_manager_in_both_languages() {
        set_lang(Lang::En);
        assert_eq!(size_text(0), "0 bytes");
        assert_eq!(size_text(1023), "1023 bytes");
        assert_eq!(size_text(1024), "1.0 KB");
        assert_eq!(size_text(48_213), "47 KB");
        assert_eq!(size_text(1_572_864), "1.5 MB");
        assert_eq!(size_text(MAX_BYTES), "25 MB");
        assert_eq!(size_text(3 * 1024 * 1024 * 1024), "3.0 GB");
        set_lang(Lang::Zh);
        assert_eq!(size_text(12), "12 字节");
        set_lang(Lang::En);
    }

    #[test]
    fn held_files_round_trip_and_garbage_is_skipped() {
        let held = vec![
            Held {
                room: RoomId(1),
                name: "猫.png".into(),
            },
            Held {
                room: RoomId(7),
                name: "a\tb\nc.txt".into(),
            },
        ];
        let back = decode_held(&encode_held(&held));
        assert_eq!(back[0], held[0]);
        assert_eq!(back[1].room, RoomId(7));
        assert_eq!(back[1].name, "a\tb c.txt");
        assert_eq!(decode_held("x\tname\nnothing\n[]\n"), Vec::new());
    }

    #[test]
    fn names_are_percent_encoded_as_utf8() {
        assert_eq!(
            upload_url(RoomId(3), "猫 1&2.png"),
            "/api/rooms/3/files?name=%E7%8C%AB%201%262.png"
        );
    }

    #[test]
    fn a_refused_upload_says_why_in_the_persons_language_and_retries_only_what_may_work() {
        set_lang(Lang::En);
        let ok = outcome(
            201,
            r#"{"id":5,"name":"猫.png","size":3,"mime":"image/png","width":2,"height":1,"thumbnail":true}"#,
        );
        assert_eq!(ok.map(|a| (a.id, a.width)), Ok((5, Some(2))));
        let big = r#"{"error":"too_large","message":"A file is at most 1000 bytes (0 MiB)."}"#;
        assert_eq!(
            outcome(413, big),
            Err(("A file is at most 1000 bytes (0 MiB).".into(), false))
        );
        assert_eq!(outcome(0, "").map_err(|e| e.1), Err(true));
        assert_eq!(outcome(503, "").map_err(|e| e.1), Err(true));
        set_lang(Lang::Zh);
        let zh = &crate::i18n::ZH;
        assert_eq!(
            outcome(413, big),
            Err((zh.err_too_large_here.into(), false))
        );
        let quota = r#"{"error":"over_quota","message":"over"}"#;
        assert_eq!(outcome(413, quota), Err((zh.err_over_quota.into(), false)));
        let bomb = r#"{"error":"bad_image","message":"no"}"#;
        assert_eq!(outcome(422, bomb), Err((zh.err_bad_image.into(), false)));
        let muted = r#"{"error":"forbidden","code":"muted","message":"Muted."}"#;
        assert_eq!(outcome(403, muted), Err((zh.err_muted.into(), false)));
        assert_eq!(
            precheck(MAX_BYTES + 1),
            Some("文件太大（最多 25 MB）。".to_owned())
        );
        assert_eq!(precheck(MAX_BYTES), None);
        set_lang(Lang::En);
    }
}
