//! Files: uploads with their limits and checks, content-addressed storage, thumbnails,
//! downloads with their permissions and headers, ranges, and deletion.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RANGE};
use serde_json::{Value, json};
use shared::{ClientMsg, ErrorCode, RoomId, ServerMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{GENERAL, Session, TestApp, cid, spawn_app, spawn_app_with};

/// A small PNG (an opaque gradient) of `w` by `h`.
pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encodes");
    out.into_inner()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG chunk.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
    out
}

/// A decompression bomb: a few hundred bytes of PNG whose header says 100000x100000 RGBA
/// (40 GB decoded).
fn png_bomb() -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    // A zlib stream of a few zero bytes: all the decoder would get before running out.
    out.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01],
    ));
    out.extend(chunk(b"IEND", &[]));
    out
}

/// Uploads `bytes` as `name` to `room` as `session`; returns the status and the JSON body.
pub async fn upload(
    app: &TestApp,
    session: &Session,
    room: RoomId,
    name: &str,
    content_type: Option<&str>,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = app
        .http
        .post(app.url(&format!("/api/rooms/{room}/files")))
        .query(&[("name", name)])
        .bearer_auth(&session.token)
        .body(bytes);
    if let Some(t) = content_type {
        req = req.header("content-type", t);
    }
    let res = req.send().await.expect("sent");
    let status = res.status();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Uploads and expects it stored; returns the file's id.
pub async fn stored(
    app: &TestApp,
    session: &Session,
    room: RoomId,
    name: &str,
    bytes: Vec<u8>,
) -> u64 {
    let (status, body) = upload(app, session, room, name, None, bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_u64().expect("an id")
}

/// GETs a path as `session` with extra headers; returns status, headers, body bytes.
pub async fn fetch(
    app: &TestApp,
    session: &Session,
    path: &str,
    range: Option<&str>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = app.http.get(app.url(path)).bearer_auth(&session.token);
    if let Some(r) = range {
        req = req.header(RANGE, r);
    }
    let res = req.send().await.expect("sent");
    let status = res.status();
    let headers = res.headers().clone();
    (status, headers, res.bytes().await.expect("body").to_vec())
}

/// The contents stored on disk (not thumbnails, not temporary files).
pub fn contents(app: &TestApp) -> Vec<PathBuf> {
    let root = app.files_dir();
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(&root) else {
        return out;
    };
    for dir in dirs.flatten() {
        if dir.file_name() == "tmp" {
            continue;
        }
        for f in std::fs::read_dir(dir.path()).expect("dir").flatten() {
            out.push(f.path());
        }
    }
    out.sort();
    out
}

pub fn is_thumb(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "thumb")
}

/// Posts a message carrying `files` over HTTP; returns its seq.
pub async fn post_files(
    app: &TestApp,
    session: &Session,
    room: RoomId,
    text: &str,
    files: &[u64],
) -> u64 {
    let (status, body) = app
        .post_as(
            session,
            &format!("/api/rooms/{room}/messages"),
            json!({ "text": text, "attachments": files }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["seq"].as_u64().expect("seq")
}

pub async fn delete_message(app: &TestApp, session: &Session, room: RoomId, seq: u64) {
    let (status, body) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/rooms/{room}/messages/{seq}"),
            session,
            None,
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
}

#[tokio::test]
async fn an_image_is_stored_once_by_content_shown_with_a_thumbnail_and_carried_by_a_message() {
    image_stored_once(spawn_app().await).await;
}

/// The body of [`an_image_is_stored_once_by_content_shown_with_a_thumbnail_and_carried_by_a_message`], for any store.
pub async fn image_stored_once(app: TestApp) {
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let (mut bob_ws, _) = app.joined(&bob, GENERAL).await;
    let (mut alice_ws, _) = app.joined(&alice, GENERAL).await;
    let picture = png(640, 480);

    let (status, first) = upload(
        &app,
        &alice,
        GENERAL,
        "猫.png",
        Some("image/png"),
        picture.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["mime"], "image/png");
    assert_eq!(first["width"], 640);
    assert_eq!(first["height"], 480);
    assert_eq!(first["thumbnail"], true);
    assert_eq!(first["size"], picture.len());
    assert_eq!(first["name"], "猫.png");
    let again = stored(&app, &alice, GENERAL, "copy.png", picture.clone()).await;
    assert_ne!(first["id"], again, "each upload is a file of its own");
    let on_disk = contents(&app);
    assert_eq!(
        on_disk.iter().filter(|p| !is_thumb(p)).count(),
        1,
        "{on_disk:?}"
    );
    assert_eq!(
        on_disk.iter().filter(|p| is_thumb(p)).count(),
        1,
        "{on_disk:?}"
    );

    // Sent in a message over the socket, with no text.
    let id = first["id"].as_u64().expect("id");
    let sent = alice_ws
        .write(ClientMsg::Send {
            room: GENERAL,
            client_id: cid("pic"),
            text: String::new(),
            reply_to: None,
            attachments: vec![id, again],
        })
        .await
        .expect("stored");
    let event = bob_ws.next_message().await;
    assert_eq!(event.seq, sent.1);
    assert_eq!(event.attachments.len(), 2);
    assert_eq!(event.attachments[0].id, id);
    assert_eq!(event.attachments[0].width, Some(640));
    // ... and in history.
    let (_, page) = app
        .get_as(&bob, &format!("/api/rooms/{GENERAL}/messages"))
        .await;
    assert_eq!(page["messages"][0]["attachments"][1]["id"], again);

    // A file goes in one message only.
    let twice = alice_ws
        .write(ClientMsg::Send {
            room: GENERAL,
            client_id: cid("pic2"),
            text: "again".into(),
            reply_to: None,
            attachments: vec![id],
        })
        .await
        .expect_err("refused");
    assert!(
        matches!(
            twice,
            ServerMsg::Error {
                code: ErrorCode::NoSuchFile,
                ..
            }
        ),
        "{twice:?}"
    );

    // Bob downloads it: the same bytes, shown inline but sandboxed.
    let (status, headers, bytes) = fetch(&app, &bob, &format!("/api/files/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, picture);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; sandbox"
    );
    let disposition = headers["content-disposition"].to_str().expect("ascii");
    assert!(disposition.starts_with("inline;"), "{disposition}");
    assert!(
        disposition.contains("filename*=UTF-8''%E7%8C%AB.png"),
        "{disposition}"
    );
    let (status, headers, thumb) =
        fetch(&app, &bob, &format!("/api/files/{id}/thumbnail"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "image/jpeg");
    let small = image::load_from_memory(&thumb).expect("a thumbnail decodes");
    assert_eq!((small.width(), small.height()), (320, 240));
}

#[tokio::test]
async fn uploads_over_the_size_limit_are_refused_before_and_while_streaming() {
    let app = spawn_app_with(|c| c.max_upload_bytes = 10_000).await;
    let alice = app.register("alice").await;
    app.post_as(&alice, &format!("/api/rooms/{GENERAL}/join"), json!({}))
        .await;

    // Announced too large: refused before the body is read.
    let (status, body) = upload(&app, &alice, GENERAL, "big.bin", None, vec![7; 10_001]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"], "too_large");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("10000 bytes"),
        "{body}"
    );
    // Exactly the limit is fine.
    stored(&app, &alice, GENERAL, "ok.bin", vec![7; 10_000]).await;

    // Not announced (chunked): cut off once past the limit.
    let status = chunked_upload(&app, &alice, GENERAL, 4_000, 4).await;
    assert_eq!(status, 413, "16000 bytes in chunks");
    let status = chunked_upload(&app, &alice, GENERAL, 2_000, 3).await;
    assert_eq!(status, 201, "6000 bytes in chunks");
    // Nothing of the refused uploads is left behind.
    let tmp = app.files_dir().join("tmp");
    let left = std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "temporary files are removed");
    assert_eq!(contents(&app).len(), 2);
}

/// Uploads `count` chunks of `size` bytes with `Transfer-Encoding: chunked` (no
/// `Content-Length`) over a raw socket; returns the answer's status.
async fn chunked_upload(
    app: &TestApp,
    session: &Session,
    room: RoomId,
    size: usize,
    count: usize,
) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connects");
    let head = format!(
        "POST /api/rooms/{room}/files?name=stream.bin HTTP/1.1\r\nHost: {}\r\n\
         Authorization: Bearer {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.addr, session.token
    );
    stream.write_all(head.as_bytes()).await.expect("head sent");
    // Chunks of a repeating byte each, so they differ from the other uploads' contents.
    for i in 0..count {
        let chunk = vec![b'a' + i as u8; size];
        let framed = [
            format!("{size:x}\r\n").into_bytes(),
            chunk,
            b"\r\n".to_vec(),
        ]
        .concat();
        // The server may answer and close before the end: that is the point.
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status: {text}"))
}

#[tokio::test]
async fn the_quota_counts_every_upload_and_deleting_a_message_frees_it() {
    let app = spawn_app_with(|c| c.upload_quota_bytes = 5_000).await;
    let alice = app.register("alice").await;
    app.post_as(&alice, &format!("/api/rooms/{GENERAL}/join"), json!({}))
        .await;
    let a = stored(&app, &alice, GENERAL, "a.bin", vec![1; 3_000]).await;
    let (status, body) = upload(&app, &alice, GENERAL, "b.bin", None, vec![2; 3_000]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"], "over_quota");
    // Another person's quota is their own.
    let bob = app.register("bob").await;
    app.post_as(&bob, &format!("/api/rooms/{GENERAL}/join"), json!({}))
        .await;
    stored(&app, &bob, GENERAL, "b.bin", vec![2; 3_000]).await;
    // Deleting the message that carries the file gives the room back.
    let seq = post_files(&app, &alice, GENERAL, "here", &[a]).await;
    delete_message(&app, &alice, GENERAL, seq).await;
    stored(&app, &alice, GENERAL, "b.bin", vec![2; 3_000]).await;
}

#[tokio::test]
async fn the_type_comes_from_the_content_and_a_false_image_is_refused() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    app.post_as(&alice, &format!("/api/rooms/{GENERAL}/join"), json!({}))
        .await;
    // Named or sent as an image, but not one.
    for (name, claimed) in [
        ("cat.png", None),
        ("cat", Some("image/jpeg")),
        ("x.svg", None),
    ] {
        let (status, body) = upload(
            &app,
            &alice,
            GENERAL,
            name,
            claimed,
            b"<svg onload=alert(1)>".to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{name}: {body}");
        assert_eq!(body["error"], "unsupported_type");
    }
    // A real PNG named .txt is a PNG; a PDF sent as an image/png is refused.
    let (_, body) = upload(
        &app,
        &alice,
        GENERAL,
        "notes.txt",
        Some("text/plain"),
        png(8, 8),
    )
    .await;
    assert_eq!(body["mime"], "image/png");
    let (status, _) = upload(
        &app,
        &alice,
        GENERAL,
        "doc",
        Some("image/png"),
        b"%PDF-1.4 ...".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // HTML is stored, but only ever downloaded as bytes, never rendered.
    let html = stored(
        &app,
        &alice,
        GENERAL,
        "page.html",
        b"<html><script>alert(1)</script>".to_vec(),
    )
    .await;
    let (status, headers, _) = fetch(&app, &alice, &format!("/api/files/{html}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert!(
        headers["content-disposition"]
            .to_str()
            .expect("ascii")
            .starts_with("attachment;")
    );
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; sandbox"
    );
    let pdf = stored(
        &app,
        &alice,
        GENERAL,
        "report.pdf",
        b"%PDF-1.7 tiny".to_vec(),
    )
    .await;
    let (_, headers, _) = fetch(&app, &alice, &format!("/api/files/{pdf}"), None).await;
    assert!(
        headers["content-disposition"]
            .to_str()
            .expect("ascii")
            .starts_with("attachment;")
    );
    let (status, _, _) = fetch(&app, &alice, &format!("/api/files/{pdf}/thumbnail"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "only images have thumbnails");
}

#[tokio::test]
async fn an_image_bomb_is_refused_before_it_is_decoded_and_nothing_is_kept() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    app.post_as(&alice, &format!("/api/rooms/{GENERAL}/join"), json!({}))
        .await;
    let bomb = png_bomb();
    assert!(bomb.len() < 200);
    let (status, body) = upload(&app, &alice, GENERAL, "bomb.png", None, bomb).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "bad_image");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("100000x100000"),
        "{body}"
    );
    // A truncated image is refused too.
    let mut broken = png(100, 100);
    broken.truncate(broken.len() / 2);
    let (status, body) = upload(&app, &alice, GENERAL, "half.png", None, broken).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(contents(&app).is_empty());
}

#[tokio::test]
async fn a_private_rooms_file_is_not_found_by_anyone_outside_it_by_any_path() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let secret = app.create_room_of(&alice, "secret", "private").await;
    let id = stored(&app, &alice, secret, "plan.png", png(32, 32)).await;
    // Not sent yet: only the uploader sees it.
    let (status, _) = app
        .post_as(
            &alice,
            &format!("/api/rooms/{secret}/invite"),
            json!({"user": "carol"}),
        )
        .await;
    assert!(status.is_success());
    app.post_as(&carol, &format!("/api/rooms/{secret}/join"), json!({}))
        .await;
    let (status, _, _) = fetch(&app, &carol, &format!("/api/files/{id}"), None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "unsent uploads are the uploader's"
    );
    post_files(&app, &alice, secret, "the plan", &[id]).await;
    let (status, _, _) = fetch(&app, &carol, &format!("/api/files/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "a member reads it");
    for path in [
        format!("/api/files/{id}"),
        format!("/api/files/{id}/thumbnail"),
        format!("/api/files/{}", id + 1000),
    ] {
        let (status, headers, body) = fetch(&app, &bob, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(headers["content-type"], "application/json", "{path}");
        assert!(!body.starts_with(b"\x89PNG"));
        let (status, _, _) = fetch(&app, &bob, &path, Some("bytes=0-10")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path} with a range");
    }
    // Nor can an outsider upload to it, or attach the file elsewhere.
    let (status, _) = upload(&app, &bob, secret, "x.bin", None, vec![1; 10]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.post_as(&bob, &format!("/api/rooms/{GENERAL}/join"), json!({}))
        .await;
    let (status, body) = app
        .post_as(
            &bob,
            &format!("/api/rooms/{GENERAL}/messages"),
            json!({"text": "mine", "attachments": [id]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "no_such_file");
    // A member who leaves loses access.
    app.post_as(&carol, &format!("/api/rooms/{secret}/leave"), json!({}))
        .await;
    let (status, _, _) = fetch(&app, &carol, &format!("/api/files/{id}/thumbnail"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_single_byte_range_is_answered_206_and_an_unsatisfiable_one_416() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    app.post_as(&alice, &format!("/api/rooms/{GENERAL}/join"), json!({}))
        .await;
    // Larger than axum's default body limit (2 MB), which must not apply to uploads.
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let id = stored(&app, &alice, GENERAL, "data.bin", data.clone()).await;
    let path = format!("/api/files/{id}");
    let (status, headers, body) = fetch(&app, &alice, &path, Some("bytes=1000-1999")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, data[1000..2000]);
    assert_eq!(headers["content-range"], "bytes 1000-1999/3000000");
    let (status, _, body) = fetch(&app, &alice, &path, Some("bytes=-500")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, data[2_999_500..]);
    let (status, headers, _) = fetch(&app, &alice, &path, Some("bytes=3000000-")).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(headers["content-range"], "bytes */3000000");
    let (status, headers, body) = fetch(&app, &alice, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(body, data);
}

#[tokio::test]
async fn deleting_a_message_removes_its_files_once_nothing_else_has_the_content() {
    deleting_removes_files(spawn_app().await).await;
}

/// The body of [`deleting_a_message_removes_its_files_once_nothing_else_has_the_content`], for any store.
pub async fn deleting_removes_files(app: TestApp) {
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.post_as(&alice, &format!("/api/rooms/{GENERAL}/join"), json!({}))
        .await;
    app.post_as(&bob, &format!("/api/rooms/{GENERAL}/join"), json!({}))
        .await;
    let picture = png(50, 50);
    let a = stored(&app, &alice, GENERAL, "a.png", picture.clone()).await;
    let b = stored(&app, &bob, GENERAL, "b.png", picture).await;
    let first = post_files(&app, &alice, GENERAL, "one", &[a]).await;
    let second = post_files(&app, &bob, GENERAL, "two", &[b]).await;
    assert_eq!(contents(&app).len(), 2, "one content and its thumbnail");

    delete_message(&app, &alice, GENERAL, first).await;
    let (status, _, _) = fetch(&app, &bob, &format!("/api/files/{a}"), None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the deleted message's file is gone"
    );
    let (status, _, _) = fetch(&app, &alice, &format!("/api/files/{a}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "for its uploader too");
    assert_eq!(
        contents(&app).len(),
        2,
        "bob's message still has the content"
    );
    let (status, _, _) = fetch(&app, &alice, &format!("/api/files/{b}"), None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, message) = app
        .get_as(&alice, &format!("/api/rooms/{GENERAL}/messages/{first}"))
        .await;
    assert!(message.get("attachments").is_none(), "{message}");

    delete_message(&app, &bob, GENERAL, second).await;
    assert!(contents(&app).is_empty(), "{:?}", contents(&app));
    let (status, _, _) = fetch(&app, &bob, &format!("/api/files/{b}/thumbnail"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A JPEG of `w` by `h` pixels, left half black and right half white, whose EXIF says to turn
/// it (`orientation`, 1 to 8) to show it upright, as a phone's camera writes it.
fn jpeg_with_orientation(w: u32, h: u32, orientation: u8) -> Vec<u8> {
    use image::ImageEncoder as _;
    let pixels: Vec<u8> = (0..h)
        .flat_map(|_| (0..w).map(move |x| if x < w / 2 { 0 } else { 255 }))
        .collect();
    // A little-endian TIFF header and one directory entry: Orientation (0x0112), SHORT, 1.
    let mut exif = b"II\x2a\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00".to_vec();
    exif.extend_from_slice(&[orientation, 0, 0, 0, 0, 0, 0, 0]);
    let mut out = Vec::new();
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
    encoder.set_exif_metadata(exif).expect("JPEG carries EXIF");
    encoder
        .write_image(&pixels, w, h, image::ExtendedColorType::L8)
        .expect("encoded");
    out
}

#[tokio::test]
async fn a_photo_stored_sideways_is_measured_and_thumbnailed_upright() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    app.joined(&alice, GENERAL).await;
    // 640 wide as stored, to be turned 90° clockwise (EXIF 6): 320 wide and 640 high upright.
    let (status, body) = upload(
        &app,
        &alice,
        GENERAL,
        "portrait.jpg",
        None,
        jpeg_with_orientation(640, 320, 6),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (&body["width"], &body["height"]),
        (&json!(320), &json!(640))
    );
    let id = body["id"].as_u64().expect("an id");
    let (status, _, thumb) = fetch(&app, &alice, &format!("/api/files/{id}/thumbnail"), None).await;
    assert_eq!(status, StatusCode::OK);
    let small = image::load_from_memory(&thumb)
        .expect("a thumbnail decodes")
        .to_luma8();
    assert_eq!(
        (small.width(), small.height()),
        (160, 320),
        "upright, fitted in 320"
    );
    // Turned clockwise, the stored left half (black) is on top.
    assert!(small.get_pixel(80, 40).0[0] < 64, "the top is black");
    assert!(small.get_pixel(80, 280).0[0] > 192, "the bottom is white");
}

#[tokio::test]
async fn a_small_image_is_its_own_thumbnail_never_scaled_up() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    app.joined(&alice, GENERAL).await;
    let id = stored(&app, &alice, GENERAL, "dot.png", png(12, 9)).await;
    let (status, _, thumb) = fetch(&app, &alice, &format!("/api/files/{id}/thumbnail"), None).await;
    assert_eq!(status, StatusCode::OK);
    let small = image::load_from_memory(&thumb).expect("a thumbnail decodes");
    assert_eq!((small.width(), small.height()), (12, 9));
}
