//! The HTTP calls under `/api` (same origin; the browser sends the HttpOnly session cookie by
//! itself, so no token is handled here).
//!
//! Every call returns [`Failure`] on error, which keeps the status and the server's message so
//! that screens can say exactly what went wrong.

use std::fmt;

use gloo_net::http::{Request, RequestBuilder, Response};

use crate::i18n::{Lang, error_text, fill, lang, t};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::{
    ApiError, AuditEntry, Credentials, ErrorCode, FilterRule, InviteInfo, MeResponse, MemberInfo,
    MessageEvent, ModAction, NewAccount, NewDirect, NewFilter, ROOMS_PAGE_MAX, ReadMarker, RoomId,
    RoomInfo, RoomKind, RoomSettings, SearchPage, ServerMsg, SessionResponse, UserInfo,
};

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server answered with an error status.
    Http {
        /// The status code.
        status: u16,
        /// The server's [`ApiError::code`], when the refusal is one of the chat's rules.
        code: Option<ErrorCode>,
        /// The server's [`ApiError::message`], or empty when the body was not one.
        message: String,
    },
    /// No answer (network down, server unreachable) or an unreadable one.
    Network(String),
}

impl Failure {
    /// The status code, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Failure::Http { status, .. } => Some(*status),
            Failure::Network(_) => None,
        }
    }

    /// The text a login or registration form shows for this failure.
    pub fn auth_text(&self) -> String {
        match self {
            Failure::Http {
                status, message, ..
            } => auth_message(*status, message),
            Failure::Network(_) => t().err_network.into(),
        }
    }
}

impl fmt::Display for Failure {
    /// The failure in the page's language: see [`crate::i18n::error_text`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Http {
                code: Some(code),
                message,
                ..
            } => f.write_str(&error_text(*code, message)),
            Failure::Http { message, .. } if !message.is_empty() && lang() == Lang::En => {
                f.write_str(message)
            }
            Failure::Http { status, .. } => {
                f.write_str(&fill(t().err_status, &[("status", &status.to_string())]))
            }
            Failure::Network(_) => f.write_str(t().err_unreachable),
        }
    }
}

/// What the auth form says for an error status: fixed, clear words for the cases users meet
/// (wrong password, taken name), the server's rule text for invalid input (in English; in
/// another language the words for the status, since the server speaks English only).
pub fn auth_message(status: u16, server_message: &str) -> String {
    let t = t();
    let server = (lang() == Lang::En && !server_message.is_empty()).then_some(server_message);
    match (status, server) {
        (401, _) => t.err_wrong_password.into(),
        (409, _) => t.err_taken.into(),
        // The server's words say how long to wait.
        (429 | 503, Some(m)) => m.into(),
        (429, None) => t.err_too_many_attempts.into(),
        (400, Some(m)) => m.into(),
        (400, None) => t.err_invalid_login.into(),
        (_, Some(m)) => m.into(),
        _ => fill(t.err_server_status, &[("status", &status.to_string())]),
    }
}

/// The error itself is not kept: nothing shows it (the person sees [`Failure::auth_text`] or the
/// like), and formatting each library's error type would cost the bundle some kilobytes.
fn network<E>(_err: E) -> Failure {
    Failure::Network(String::new())
}

async fn error_of(resp: Response) -> Failure {
    let (code, message) = match resp.text().await {
        Ok(text) => serde_json::from_str::<ApiError>(&text)
            .map(|e| (e.code, e.message))
            .unwrap_or_default(),
        Err(_) => (None, String::new()),
    };
    Failure::Http {
        status: resp.status(),
        code,
        message,
    }
}

/// A request's body as JSON (one non-generic path for every call: smaller code).
fn with_json<B: Serialize + ?Sized>(req: RequestBuilder, body: &B) -> Result<Request, Failure> {
    let json = serde_json::to_string(body).map_err(network)?;
    req.header("Content-Type", "application/json")
        .body(json)
        .map_err(network)
}

/// Sends the request and reads the body of a success, or fails with the server's message.
async fn send_text(req: Result<Request, Failure>) -> Result<String, Failure> {
    let resp = req?.send().await.map_err(network)?;
    text_of(resp).await
}

/// The body of a success, or the server's error.
async fn text_of(resp: Response) -> Result<String, Failure> {
    if resp.ok() {
        resp.text().await.map_err(network)
    } else {
        Err(error_of(resp).await)
    }
}

fn parse<T: DeserializeOwned>(text: &str) -> Result<T, Failure> {
    serde_json::from_str(text).map_err(network)
}

async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
    url: &str,
    body: &B,
) -> Result<T, Failure> {
    parse(&send_text(with_json(Request::post(url), body)).await?)
}

/// `POST /api/register`: creates the account and logs in.
pub async fn register(account: &NewAccount) -> Result<SessionResponse, Failure> {
    post("/api/register", account).await
}

/// `POST /api/login`.
pub async fn login(creds: &Credentials) -> Result<SessionResponse, Failure> {
    post("/api/login", creds).await
}

/// `POST /api/logout`: ends the session (the server also closes its sockets with 4001).
pub async fn logout() -> Result<(), Failure> {
    send_empty(Request::post("/api/logout").build().map_err(network)).await
}

/// `GET /api/me`: who is logged in (and their display name), or `None` without a valid
/// session.
pub async fn me() -> Result<Option<MeResponse>, Failure> {
    let resp = Request::get("/api/me").send().await.map_err(network)?;
    if resp.status() == 401 {
        return Ok(None);
    }
    parse::<MeResponse>(&text_of(resp).await?).map(Some)
}

/// Pages of `GET /api/rooms` read at most: enough for the sidebar of anyone who is not a bot.
const ROOM_PAGES: usize = 10;

/// The URL of the `GET /api/rooms` page after the room `after` (the first page for `None`):
/// pages go by room id.
pub fn rooms_page_url(after: Option<&RoomInfo>) -> String {
    match after {
        None => format!("/api/rooms?limit={ROOMS_PAGE_MAX}"),
        Some(last) => format!("/api/rooms?limit={ROOMS_PAGE_MAX}&after={}", last.id),
    }
}

/// `GET /api/rooms`, every page (up to [`ROOM_PAGES`]), in id order.
pub async fn rooms() -> Result<Vec<RoomInfo>, Failure> {
    let mut all: Vec<RoomInfo> = Vec::new();
    for _ in 0..ROOM_PAGES {
        let url = rooms_page_url(all.last());
        let page: Vec<RoomInfo> = get(&url).await?;
        let full = page.len() >= ROOMS_PAGE_MAX as usize;
        all.extend(page);
        if !full {
            break;
        }
    }
    Ok(all)
}

/// `POST /api/rooms`: creates a public or private room (the server answers with its id and its
/// name as stored, NFC-normalised).
pub async fn create_room(name: &str, kind: RoomKind) -> Result<RoomInfo, Failure> {
    #[derive(Serialize)]
    struct NewRoom<'a> {
        name: &'a str,
        kind: RoomKind,
    }
    post("/api/rooms", &NewRoom { name, kind }).await
}

/// Reads an answer without a body (204) or fails with the server's message.
async fn empty(resp: Response) -> Result<(), Failure> {
    if resp.ok() {
        Ok(())
    } else {
        Err(error_of(resp).await)
    }
}

async fn get<T: DeserializeOwned>(url: &str) -> Result<T, Failure> {
    parse(&send_text(Request::get(url).build().map_err(network)).await?)
}

/// Sends the request and expects an answer without a body.
async fn send_empty(req: Result<Request, Failure>) -> Result<(), Failure> {
    let resp = req?.send().await.map_err(network)?;
    empty(resp).await
}

async fn post_empty<B: Serialize>(url: &str, body: Option<&B>) -> Result<(), Failure> {
    let req = Request::post(url);
    send_empty(match body {
        Some(b) => with_json(req, b),
        None => req.build().map_err(network),
    })
    .await
}

/// `GET /api/rooms/{id}`.
pub async fn room(id: RoomId) -> Result<RoomInfo, Failure> {
    get(&format!("/api/rooms/{id}")).await
}

/// `PATCH /api/rooms/{id}`: topic and slow mode (moderators).
pub async fn update_room(id: RoomId, settings: &RoomSettings) -> Result<RoomInfo, Failure> {
    parse(
        &send_text(with_json(
            Request::patch(&format!("/api/rooms/{id}")),
            settings,
        ))
        .await?,
    )
}

/// `POST /api/rooms/{id}/leave`: ends the membership.
pub async fn leave_room(id: RoomId) -> Result<(), Failure> {
    post_empty::<()>(&format!("/api/rooms/{id}/leave"), None).await
}

/// `GET /api/rooms/{id}/members`.
pub async fn members(id: RoomId) -> Result<Vec<MemberInfo>, Failure> {
    get(&format!("/api/rooms/{id}/members")).await
}

/// `POST /api/rooms/{id}/read` (`id` `None`: `POST /api/read`, every room): read up to the
/// newest event. The answer's counts are not read here: the server tells them to every
/// connection of the user with `read` frames.
pub async fn mark_read(id: Option<RoomId>) -> Result<(), Failure> {
    let url = match id {
        Some(id) => format!("/api/rooms/{id}/read"),
        None => "/api/read".to_owned(),
    };
    send_text(with_json(Request::post(&url), &ReadMarker { seq: None }))
        .await
        .map(drop)
}

/// `GET /api/rooms/{id}/messages/{seq}`: one message as it is now. Read through the socket
/// frames' parser (as a `message` frame), so that no second parser of messages is compiled.
pub async fn message(id: RoomId, seq: u64) -> Result<MessageEvent, Failure> {
    let text = send_text(
        Request::get(&format!("/api/rooms/{id}/messages/{seq}"))
            .build()
            .map_err(network),
    )
    .await?;
    let frame = format!(
        r#"{{"type":"message",{}"#,
        text.trim_start().get(1..).unwrap_or("")
    );
    match parse::<ServerMsg>(&frame)? {
        ServerMsg::Message(ev) => Ok(*ev),
        _ => Err(Failure::Network("not a message".into())),
    }
}

/// `GET /api/rooms/{id}/messages?before=|after=&limit=`: a page of messages as they are now,
/// before `seq` or (`newer`) after it, and whether more exist that way. Read as a `history`
/// frame, like [`message`].
pub async fn messages_page(
    id: RoomId,
    seq: u64,
    newer: bool,
    limit: u32,
) -> Result<(Vec<MessageEvent>, bool), Failure> {
    let side = if newer { "after" } else { "before" };
    let text = send_text(
        Request::get(&format!(
            "/api/rooms/{id}/messages?{side}={seq}&limit={limit}"
        ))
        .build()
        .map_err(network),
    )
    .await?;
    let frame = format!(
        r#"{{"type":"history",{}"#,
        text.trim_start().get(1..).unwrap_or("")
    );
    match parse::<ServerMsg>(&frame)? {
        ServerMsg::History {
            messages, has_more, ..
        } => Ok((messages, has_more)),
        _ => Err(Failure::Network("not a page of messages".into())),
    }
}

/// `POST /api/rooms/{id}/invite`.
pub async fn invite(id: RoomId, user: &str) -> Result<(), Failure> {
    let body = ModAction {
        user: user.to_owned(),
        ..ModAction::default()
    };
    post_empty(&format!("/api/rooms/{id}/invite"), Some(&body)).await
}

/// `GET /api/invites`.
pub async fn invites() -> Result<Vec<InviteInfo>, Failure> {
    get("/api/invites").await
}

/// `POST /api/rooms/{id}/decline`.
pub async fn decline(id: RoomId) -> Result<(), Failure> {
    post_empty::<()>(&format!("/api/rooms/{id}/decline"), None).await
}

/// `POST /api/direct`: opens (or reopens) the direct conversation with these people.
pub async fn direct(users: Vec<String>) -> Result<RoomInfo, Failure> {
    post("/api/direct", &NewDirect { users }).await
}

/// The URL of a people search.
pub fn users_url(query: &str) -> String {
    let q = String::from(js_sys::encode_uri_component(query));
    format!("/api/users?q={q}")
}

/// `GET /api/users?q=`: people whose handle or display name starts with `query`.
pub async fn users(query: &str) -> Result<Vec<UserInfo>, Failure> {
    get(&users_url(query)).await
}

/// A search as the search dialog asks it (see `GET /api/search` in docs/protocol.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    /// The words.
    pub q: String,
    /// Only this room.
    pub room: Option<RoomId>,
    /// Only messages by this handle.
    pub author: String,
    /// Only messages with files.
    pub has_file: bool,
    /// Only messages stored at or after this time (ms since the Unix epoch).
    pub after: Option<i64>,
    /// Only messages stored before this time (ms since the Unix epoch).
    pub before: Option<i64>,
}

/// Percent-encodes a query value as UTF-8 (what `encodeURIComponent` does; plain Rust, so that
/// URLs are tested natively).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URL of a search page (`cursor`: the `next` of the page before).
pub fn search_url(s: &Search, cursor: Option<&str>) -> String {
    let mut url = format!("/api/search?limit=20&q={}", encode(s.q.trim()));
    if let Some(room) = s.room {
        url.push_str(&format!("&room={room}"));
    }
    let author = s.author.trim().trim_start_matches('@');
    if !author.is_empty() {
        url.push_str(&format!("&author={}", encode(author)));
    }
    if s.has_file {
        url.push_str("&has_file=true");
    }
    if let Some(after) = s.after {
        url.push_str(&format!("&after={after}"));
    }
    if let Some(before) = s.before {
        url.push_str(&format!("&before={before}"));
    }
    if let Some(c) = cursor {
        url.push_str(&format!("&cursor={}", encode(c)));
    }
    url
}

/// `GET /api/search`: one page of hits.
pub async fn search(s: &Search, cursor: Option<&str>) -> Result<SearchPage, Failure> {
    get(&search_url(s, cursor)).await
}

/// A moderation action's path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moderation {
    /// Removes the person (they may come back to a public room).
    Kick,
    /// Removes the person for good.
    Ban,
    /// Lifts a ban.
    Unban,
    /// Stops the person posting for a while.
    Mute,
    /// Lifts a mute.
    Unmute,
    /// Makes the person a moderator or a member.
    Role,
}

impl Moderation {
    /// The path segment.
    pub fn path(self) -> &'static str {
        match self {
            Moderation::Kick => "kick",
            Moderation::Ban => "ban",
            Moderation::Unban => "unban",
            Moderation::Mute => "mute",
            Moderation::Unmute => "unmute",
            Moderation::Role => "role",
        }
    }
}

/// `POST /api/rooms/{id}/{kick|ban|unban|mute|unmute|role}`.
pub async fn moderate(id: RoomId, what: Moderation, action: &ModAction) -> Result<(), Failure> {
    post_empty(&format!("/api/rooms/{id}/{}", what.path()), Some(action)).await
}

/// `GET /api/rooms/{id}/audit`: the newest entries of the moderation log.
pub async fn audit(id: RoomId) -> Result<Vec<AuditEntry>, Failure> {
    get(&format!("/api/rooms/{id}/audit?limit=50")).await
}

/// `GET /api/rooms/{id}/filters`.
pub async fn filters(id: RoomId) -> Result<Vec<FilterRule>, Failure> {
    get(&format!("/api/rooms/{id}/filters")).await
}

/// `POST /api/rooms/{id}/filters`: adds a rule (an invalid pattern fails with the parser's
/// message).
pub async fn add_filter(id: RoomId, rule: &NewFilter) -> Result<FilterRule, Failure> {
    post(&format!("/api/rooms/{id}/filters"), rule).await
}

/// `DELETE /api/rooms/{id}/filters/{rule}`.
pub async fn delete_filter(id: RoomId, rule: i64) -> Result<(), Failure> {
    send_empty(
        Request::delete(&format!("/api/rooms/{id}/filters/{rule}"))
            .build()
            .map_err(network),
    )
    .await
}

/// Whether the server answers at all (any HTTP status below 500 to `GET /api/me`): the probe
/// that ends a reconnect wait early.
pub async fn server_answers() -> bool {
    match Request::get("/api/me").send().await {
        Ok(resp) => resp.status() < 500,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_errors_say_what_went_wrong() {
        assert_eq!(auth_message(401, "whatever"), "Wrong username or password.");
        assert_eq!(auth_message(409, ""), "That username is already taken.");
        assert_eq!(
            auth_message(400, "Username must be at least 3 characters."),
            "Username must be at least 3 characters."
        );
        assert_eq!(auth_message(400, ""), "Invalid username or password.");
        assert!(auth_message(500, "").contains("500"));
        assert_eq!(
            Failure::Network("x".into()).auth_text(),
            "Cannot reach the server. Check your connection."
        );
    }

    #[test]
    fn in_chinese_auth_errors_are_chinese_even_when_the_server_explains_in_english() {
        crate::i18n::set_lang(Lang::Zh);
        let zh = &crate::i18n::ZH;
        assert_eq!(
            auth_message(401, "Wrong username or password."),
            zh.err_wrong_password
        );
        assert_eq!(
            auth_message(400, "Username must be at least 3 characters."),
            zh.err_invalid_login
        );
        assert_eq!(auth_message(429, "Wait 3 s."), zh.err_too_many_attempts);
        let refused = Failure::Http {
            status: 403,
            code: Some(ErrorCode::NotJoined),
            message: "Join the room first.".into(),
        };
        assert_eq!(refused.to_string(), zh.err_not_joined);
        crate::i18n::set_lang(Lang::En);
        assert_eq!(refused.to_string(), "Join the room first.");
    }

    #[test]
    fn search_urls_carry_every_filter_encoded() {
        let mut s = Search {
            q: " 你好 world ".into(),
            ..Search::default()
        };
        assert_eq!(
            search_url(&s, None),
            "/api/search?limit=20&q=%E4%BD%A0%E5%A5%BD%20world"
        );
        s.room = Some(RoomId(3));
        s.author = "@ann".into();
        s.has_file = true;
        assert_eq!(
            search_url(&s, Some("0.1042")),
            "/api/search?limit=20&q=%E4%BD%A0%E5%A5%BD%20world&room=3&author=ann&has_file=true&cursor=0.1042"
        );
        s.after = Some(1_767_225_600_000);
        s.before = Some(1_767_312_000_000);
        assert!(
            search_url(&s, None)
                .ends_with("&has_file=true&after=1767225600000&before=1767312000000")
        );
    }

    #[test]
    fn room_pages_go_by_id() {
        assert_eq!(rooms_page_url(None), "/api/rooms?limit=200");
        let last: RoomInfo =
            serde_json::from_str(r#"{"id":42,"name":"Café ☕","last_seq":0,"online":0}"#)
                .expect("a valid room");
        assert_eq!(rooms_page_url(Some(&last)), "/api/rooms?limit=200&after=42");
    }
}
