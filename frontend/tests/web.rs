//! Component tests in a real browser (headless Chromium through wasm-bindgen-test-runner).
//!
//! Each test mounts a component into a fresh element, acts (model changes or synthetic DOM
//! events), lets the reactive system settle, and asserts on the DOM. The chat-screen tests use a
//! `Client` without a connection and feed it server frames directly, the way the connection task
//! would.
#![cfg(target_arch = "wasm32")]

use std::cell::Cell;
use std::rc::Rc;

use frontend::chat::Chat;
use frontend::client::Client;
use frontend::components::{AuthForm, AuthMode, ChatLayout, Composer, ConnBadge};
use frontend::conn::ConnState;
use frontend::outbox;
use leptos::mount::mount_to;
use leptos::prelude::*;
use shared::{
    ClientId, DisplayName, EventKind, MessageEvent, MessageText, NewAccount, RoomId, RoomInfo,
    ServerMsg, Username,
};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

// ---------------------------------------------------------------------------------------------
// Helpers

/// A fresh element attached to the body.
fn container() -> web_sys::HtmlElement {
    let doc = document();
    let el = doc.create_element("section").expect("create section");
    doc.body().expect("body").append_child(&el).expect("append");
    el.unchecked_into()
}

/// Lets effects, memos and the DOM update run.
async fn settle() {
    leptos::task::tick().await;
    gloo_timers::future::TimeoutFuture::new(20).await;
    leptos::task::tick().await;
}

fn all(root: &web_sys::Element, selector: &str) -> Vec<web_sys::Element> {
    let list = root.query_selector_all(selector).expect("valid selector");
    (0..list.length())
        .filter_map(|i| list.item(i))
        .filter_map(|n| n.dyn_into::<web_sys::Element>().ok())
        .collect()
}

fn one(root: &web_sys::Element, selector: &str) -> web_sys::Element {
    root.query_selector(selector)
        .expect("valid selector")
        .unwrap_or_else(|| panic!("no element matches {selector}"))
}

fn testid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

fn text_of(el: &web_sys::Element) -> String {
    el.text_content().unwrap_or_default()
}

fn bubbling(name: &str) -> web_sys::Event {
    let init = web_sys::EventInit::new();
    init.set_bubbles(true);
    init.set_cancelable(true);
    web_sys::Event::new_with_event_init_dict(name, &init).expect("event")
}

/// Sets an input's or textarea's value and fires `input`, as typing does.
fn type_into(el: &web_sys::Element, value: &str) {
    if let Some(input) = el.dyn_ref::<web_sys::HtmlInputElement>() {
        input.set_value(value);
    } else if let Some(area) = el.dyn_ref::<web_sys::HtmlTextAreaElement>() {
        area.set_value(value);
    } else {
        panic!("not a text field");
    }
    el.dispatch_event(&bubbling("input"))
        .expect("dispatch input");
}

fn press_enter(el: &web_sys::Element, shift: bool) {
    let init = web_sys::KeyboardEventInit::new();
    init.set_key("Enter");
    init.set_shift_key(shift);
    init.set_bubbles(true);
    init.set_cancelable(true);
    let ev = web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init)
        .expect("keyboard event");
    el.dispatch_event(&ev).expect("dispatch keydown");
}

fn click(el: &web_sys::Element) {
    el.unchecked_ref::<web_sys::HtmlElement>().click();
}

fn user(name: &str) -> Username {
    Username::parse(name).expect("valid username")
}

/// The test rooms' ids.
fn room(name: &str) -> RoomId {
    match name {
        "general" => shared::DEFAULT_ROOM_ID,
        "random" => RoomId(2),
        other => panic!("no test room {other}"),
    }
}

/// A room as `GET /api/rooms` lists it (built from JSON: fields the client does not read keep
/// their defaults).
fn info(name: &str) -> RoomInfo {
    serde_json::from_value(serde_json::json!({
        "id": room(name),
        "name": name,
        "last_seq": 0,
        "online": 0,
    }))
    .expect("a valid room")
}

fn cid(s: &str) -> ClientId {
    ClientId::parse(s).expect("valid client id")
}

fn message(seq: u64, author: &str, text: &str, client_id: Option<&str>) -> ServerMsg {
    let mut ev = MessageEvent::message(
        room("general"),
        seq,
        100 + seq,
        user(author),
        DisplayName::from(&user(author)),
        text.into(),
        1_700_000_000_000,
    );
    ev.client_id = client_id.map(cid);
    ServerMsg::Message(Box::new(ev))
}

/// Mounts the chat screen for `me` with a client that has no connection; returns the
/// container and the client (to feed it frames).
fn mount_chat(me: &str) -> (web_sys::HtmlElement, Client) {
    let me = user(me);
    // Start from an empty outbox whatever an earlier run left behind.
    if let Some(storage) = window().local_storage().ok().flatten() {
        let _ = storage.remove_item(&outbox::storage_key(&me));
        let _ = storage.remove_item(&outbox::legacy_storage_key(&me));
        for key in outbox::previous_storage_keys(&me) {
            let _ = storage.remove_item(&key);
        }
    }
    let el = container();
    let slot: Rc<Cell<Option<Client>>> = Rc::new(Cell::new(None));
    let out = Rc::clone(&slot);
    let handle = mount_to(el.clone(), move || {
        let name = DisplayName::from(&me);
        let client = Client::new(me, name, Vec::new());
        provide_context(client);
        out.set(Some(client));
        view! { <ChatLayout on_logout=Callback::new(|()| ()) /> }
    });
    // The screen stays mounted for the rest of the test run; each test has its own container.
    std::mem::forget(handle);
    let client = slot.get().expect("the mount closure ran");
    (el, client)
}

/// Connects the client's model as the connection task would: `hello`, then `joined` and the
/// first `history` page of `general`.
fn join_general(client: Client, online: &[&str], history: Vec<ServerMsg>) {
    client.change(Chat::connected);
    client.change(|c| {
        c.apply(ServerMsg::Joined {
            req: None,
            room: room("general"),
            last_seq: 0,
            online: online.iter().map(|u| user(u)).collect(),
            away: Vec::new(),
        })
    });
    let messages = history
        .into_iter()
        .filter_map(|m| match m {
            ServerMsg::Message(ev) => Some(*ev),
            _ => None,
        })
        .collect();
    client.change(|c| {
        c.apply(ServerMsg::History {
            req: None,
            room: room("general"),
            messages,
            has_more: false,
        })
    });
}

fn message_rows(root: &web_sys::Element) -> Vec<web_sys::Element> {
    all(root, &testid("message"))
}

// ---------------------------------------------------------------------------------------------
// Tests

#[wasm_bindgen_test]
async fn markup_in_a_message_is_shown_as_text_and_creates_no_elements() {
    let (el, client) = mount_chat("xss_viewer");
    let script = "<script>alert(1)</script>";
    let img = "<img src=x onerror=\"window.__pwned=1\">";
    join_general(
        client,
        &["xss_viewer"],
        vec![
            message(1, "mallory", script, None),
            message(2, "mallory", img, None),
        ],
    );
    settle().await;

    let texts: Vec<String> = all(&el, &testid("message-text"))
        .iter()
        .map(text_of)
        .collect();
    assert_eq!(texts, vec![script.to_owned(), img.to_owned()]);
    let list = one(&el, &testid("message-list"));
    assert!(
        all(&list, "script").is_empty(),
        "a script element was created"
    );
    assert!(all(&list, "img").is_empty(), "an img element was created");
    let pwned = js_sys::Reflect::get(&window(), &"__pwned".into()).expect("read global");
    assert!(pwned.is_undefined(), "the onerror handler ran");
}

#[wasm_bindgen_test]
async fn the_login_form_shows_the_username_rule_without_any_request() {
    let el = container();
    let calls = RwSignal::new(Vec::<(AuthMode, NewAccount)>::new());
    let handle = mount_to(el.clone(), move || {
        let on_submit = Callback::new(move |c| calls.update(|v| v.push(c)));
        view! { <AuthForm on_submit error=Signal::stored(None::<String>) busy=Signal::stored(false) /> }
    });
    type_into(&one(&el, &testid("username-input")), "ab");
    type_into(&one(&el, &testid("password-input")), "correct horse");
    click(&one(&el, &testid("login-button")));
    settle().await;

    assert_eq!(
        text_of(&one(&el, &testid("username-error"))),
        "Username must be at least 3 characters."
    );
    assert!(
        calls.with_untracked(Vec::is_empty),
        "an invalid form was submitted"
    );

    type_into(&one(&el, &testid("username-input")), "alice");
    click(&one(&el, &testid("register-button")));
    settle().await;
    assert!(all(&el, &testid("username-error")).is_empty());
    let got = calls.get_untracked();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, AuthMode::Register);
    assert_eq!(got[0].1.username, "alice");
    drop(handle);
}

#[wasm_bindgen_test]
async fn the_login_form_shows_a_short_password_and_the_server_error() {
    let el = container();
    let error = RwSignal::new(None::<String>);
    let calls = RwSignal::new(0u32);
    let handle = mount_to(el.clone(), move || {
        let on_submit = Callback::new(move |_| calls.update(|n| *n += 1));
        view! { <AuthForm on_submit error busy=Signal::stored(false) /> }
    });
    type_into(&one(&el, &testid("username-input")), "alice");
    type_into(&one(&el, &testid("password-input")), "short");
    click(&one(&el, &testid("login-button")));
    settle().await;
    assert_eq!(
        text_of(&one(&el, &testid("password-error"))),
        "Password must be at least 8 characters."
    );
    assert_eq!(calls.get_untracked(), 0);
    assert!(all(&el, &testid("auth-error")).is_empty());

    error.set(Some("That username is already taken.".into()));
    settle().await;
    assert_eq!(
        text_of(&one(&el, &testid("auth-error"))),
        "That username is already taken."
    );
    drop(handle);
}

#[wasm_bindgen_test]
async fn the_connection_badge_shows_each_state() {
    let el = container();
    let state = RwSignal::new(ConnState::Connecting);
    let handle = mount_to(el.clone(), move || view! { <ConnBadge state /> });
    let cases = [
        (ConnState::Connecting, "connecting", None),
        (ConnState::Online, "online", None),
        (
            ConnState::Reconnecting { in_secs: 7 },
            "reconnecting",
            Some(" in 7s"),
        ),
        (ConnState::Offline { in_secs: 2 }, "offline", Some(" in 2s")),
        (ConnState::Online, "online", None),
    ];
    for (s, word, countdown) in cases {
        state.set(s);
        settle().await;
        let badge = one(&el, &testid("conn-badge"));
        assert_eq!(badge.get_attribute("data-state").as_deref(), Some(word));
        assert_eq!(text_of(&one(&badge, &testid("conn-label"))), word);
        let shown = badge
            .query_selector(&testid("conn-countdown"))
            .expect("valid selector")
            .map(|c| text_of(&c));
        assert_eq!(shown.as_deref(), countdown, "countdown for {word}");
    }
    drop(handle);
}

#[wasm_bindgen_test]
async fn a_sent_message_is_pending_then_confirmed_once_by_ack_then_message() {
    let (el, client) = mount_chat("ack_first");
    join_general(
        client,
        &["ack_first"],
        vec![message(1, "bob", "before", None)],
    );
    client.send_text(MessageText::parse("hello").expect("valid"));
    settle().await;

    let rows = message_rows(&el);
    assert_eq!(rows.len(), 2);
    let mine = &rows[1];
    assert_eq!(mine.get_attribute("data-state").as_deref(), Some("pending"));
    assert_eq!(mine.get_attribute("data-seq"), None);
    assert_eq!(text_of(&one(mine, &testid("message-author"))), "ack_first");
    assert_eq!(
        one(mine, &testid("message-author"))
            .get_attribute("title")
            .as_deref(),
        Some("@ack_first")
    );
    let client_id = mine
        .get_attribute("data-client-id")
        .expect("pending rows carry their id");

    client.change(|c| {
        c.apply(ServerMsg::Ack {
            req: None,
            room: room("general"),
            client_id: cid(&client_id),
            id: 102,
            seq: 2,
            ts: 1_700_000_000_500,
        })
    });
    settle().await;
    client.change(|c| c.apply(message(2, "ack_first", "hello", Some(&client_id))));
    settle().await;

    let rows = message_rows(&el);
    assert_eq!(rows.len(), 2, "the confirmed message is shown once");
    assert_eq!(rows[1].get_attribute("data-state").as_deref(), Some("sent"));
    assert_eq!(rows[1].get_attribute("data-seq").as_deref(), Some("2"));
    assert_eq!(text_of(&one(&rows[1], &testid("message-text"))), "hello");
}

#[wasm_bindgen_test]
async fn a_sent_message_is_confirmed_once_by_message_then_ack() {
    let (el, client) = mount_chat("msg_first");
    join_general(client, &["msg_first"], Vec::new());
    client.send_text(MessageText::parse("hi there").expect("valid"));
    settle().await;
    let client_id = one(&el, &testid("message"))
        .get_attribute("data-client-id")
        .expect("pending rows carry their id");

    client.change(|c| c.apply(message(1, "msg_first", "hi there", Some(&client_id))));
    settle().await;
    let rows = message_rows(&el);
    assert_eq!(rows.len(), 1, "the message frame alone confirms it");
    assert_eq!(rows[0].get_attribute("data-state").as_deref(), Some("sent"));

    client.change(|c| {
        c.apply(ServerMsg::Ack {
            req: None,
            room: room("general"),
            client_id: cid(&client_id),
            id: 101,
            seq: 1,
            ts: 1_700_000_000_500,
        })
    });
    settle().await;
    let rows = message_rows(&el);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get_attribute("data-state").as_deref(), Some("sent"));
    assert_eq!(rows[0].get_attribute("data-seq").as_deref(), Some("1"));
}

#[wasm_bindgen_test]
async fn messages_are_ordered_by_seq_when_frames_arrive_out_of_order() {
    let (el, client) = mount_chat("orderly");
    join_general(client, &["orderly"], Vec::new());
    // Different authors: each row shows its header.
    let by = |seq: u64| ["bob", "carol", "dave"][usize::try_from(seq).expect("small") - 1];
    for seq in [3, 1, 2] {
        client.change(|c| c.apply(message(seq, by(seq), &format!("m{seq}"), None)));
    }
    // A duplicate delivery changes nothing.
    client.change(|c| c.apply(message(2, "carol", "m2", None)));
    settle().await;
    let seqs: Vec<String> = message_rows(&el)
        .iter()
        .filter_map(|r| r.get_attribute("data-seq"))
        .collect();
    assert_eq!(seqs, vec!["1", "2", "3"]);
    let times = all(&el, &testid("message-time"));
    assert_eq!(times.len(), 3);
    assert!(
        times[0]
            .get_attribute("datetime")
            .is_some_and(|d| d.starts_with("2023-11-14T"))
    );
}

#[wasm_bindgen_test]
async fn the_composer_refuses_text_over_the_limit_and_sends_on_enter() {
    let el = container();
    let sent = RwSignal::new(Vec::<String>::new());
    let handle = mount_to(el.clone(), move || {
        let on_send = Callback::new(move |t: MessageText| sent.update(|v| v.push(t.into_inner())));
        view! { <Composer on_send room=Signal::stored("general".to_owned()) /> }
    });
    let area = one(&el, &testid("composer"));

    type_into(&area, &"a".repeat(4001));
    settle().await;
    assert_eq!(
        text_of(&one(&el, &testid("composer-error"))),
        "Message is longer than 4000 characters."
    );
    press_enter(&area, false);
    settle().await;
    assert!(
        sent.with_untracked(Vec::is_empty),
        "text over the limit was sent"
    );

    // Shift+Enter is a newline, not a send.
    type_into(&area, "line one");
    press_enter(&area, true);
    settle().await;
    assert!(sent.with_untracked(Vec::is_empty));
    assert!(all(&el, &testid("composer-error")).is_empty());

    press_enter(&area, false);
    settle().await;
    assert_eq!(sent.get_untracked(), vec!["line one".to_owned()]);
    let value = area.unchecked_ref::<web_sys::HtmlTextAreaElement>().value();
    assert_eq!(value, "", "the box is cleared after sending");
    drop(handle);
}

#[wasm_bindgen_test]
async fn presence_updates_the_online_list_but_not_the_timeline() {
    let (el, client) = mount_chat("watcher");
    join_general(
        client,
        &["bob", "watcher"],
        vec![message(1, "bob", "hey", None)],
    );
    client.change(|c| {
        c.apply(ServerMsg::Presence {
            room: room("general"),
            user: user("carol"),
            online: true,
            status: None,
        })
    });
    client.change(|c| {
        c.apply(ServerMsg::Presence {
            room: room("general"),
            user: user("bob"),
            online: false,
            status: None,
        })
    });
    settle().await;
    let online: Vec<String> = all(&el, &testid("online-user"))
        .iter()
        .filter_map(|u| u.get_attribute("data-user"))
        .collect();
    assert_eq!(online, vec!["carol", "watcher"]);
    // Arrivals and departures are not timeline events (reloads would fill it with them).
    assert!(all(&el, &testid("notice")).is_empty());
    assert!(text_of(&one(&el, &testid("history-start"))).contains("beginning of #general"));
}

#[wasm_bindgen_test]
async fn a_message_written_offline_is_pending_and_survives_a_reload() {
    let (el, client) = mount_chat("offline_writer");
    // No `hello` yet: the message waits in the outbox.
    client.send_text(MessageText::parse("typed offline").expect("valid"));
    settle().await;
    let row = one(&el, &testid("message"));
    assert_eq!(row.get_attribute("data-state").as_deref(), Some("pending"));

    // What a reload would find.
    let me = user("offline_writer");
    let stored = outbox::load(&me);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].text, "typed offline");
    assert_eq!(
        Some(stored[0].client_id.as_str().to_owned()),
        row.get_attribute("data-client-id")
    );

    // Once confirmed, it leaves the outbox.
    join_general(client, &["offline_writer"], Vec::new());
    let id = stored[0].client_id.as_str().to_owned();
    client.change(|c| c.apply(message(1, "offline_writer", "typed offline", Some(&id))));
    settle().await;
    assert!(outbox::load(&me).is_empty());
    assert_eq!(
        one(&el, &testid("message"))
            .get_attribute("data-state")
            .as_deref(),
        Some("sent")
    );
}

#[wasm_bindgen_test]
async fn a_refused_message_is_marked_failed_and_can_be_discarded() {
    let (el, client) = mount_chat("refused");
    join_general(client, &["refused"], Vec::new());
    client.send_text(MessageText::parse("x").expect("valid"));
    settle().await;
    let id = one(&el, &testid("message"))
        .get_attribute("data-client-id")
        .expect("id");
    client.change(|c| {
        c.apply(ServerMsg::Error {
            req: None,
            code: shared::ErrorCode::Invalid,
            message: "Message must not be empty.".into(),
            client_id: Some(cid(&id)),
            room: Some(room("general")),
            retry_after_ms: None,
        })
    });
    settle().await;
    let row = one(&el, &testid("message"));
    assert_eq!(row.get_attribute("data-state").as_deref(), Some("failed"));
    assert!(text_of(&one(&row, &testid("message-error"))).contains("must not be empty"));
    assert!(
        all(&row, &testid("message-retry")).is_empty(),
        "the same text would be refused again: no retry"
    );
    click(&one(&row, &testid("message-discard")));
    settle().await;
    assert!(message_rows(&el).is_empty());
}

#[wasm_bindgen_test]
async fn the_new_room_form_checks_the_name_as_typed() {
    let (el, _client) = mount_chat("roomie");
    let input = one(&el, &testid("new-room-input"));
    type_into(&input, &"x".repeat(65));
    settle().await;
    assert_eq!(
        text_of(&one(&el, &testid("new-room-error"))),
        "Room name must be at most 64 characters."
    );
    assert!(
        one(&el, &testid("new-room-button")).has_attribute("disabled"),
        "an invalid name cannot be submitted"
    );
    type_into(&input, "evil\u{202E}gpj");
    settle().await;
    assert!(text_of(&one(&el, &testid("new-room-error"))).contains("text-direction"));
    // Any script, spaces and emoji are fine.
    for good in ["技术讨论", "Café ☕", "good-name"] {
        type_into(&input, good);
        settle().await;
        assert!(all(&el, &testid("new-room-error")).is_empty(), "{good}");
        assert!(!one(&el, &testid("new-room-button")).has_attribute("disabled"));
    }
}

#[wasm_bindgen_test]
async fn switching_rooms_joins_the_new_room_and_shows_its_messages() {
    let (el, client) = mount_chat("switcher");
    join_general(
        client,
        &["switcher"],
        vec![message(1, "bob", "in general", None)],
    );
    client.set_rooms(vec![info("random"), info("general")]);
    client.open_room(room("random"));
    client.change(|c| {
        c.apply(ServerMsg::Joined {
            req: None,
            room: room("random"),
            last_seq: 1,
            online: vec![user("switcher")],
            away: Vec::new(),
        })
    });
    client.change(|c| {
        c.apply(ServerMsg::History {
            req: None,
            room: room("random"),
            messages: vec![MessageEvent::message(
                room("random"),
                1,
                7,
                user("dora"),
                DisplayName::parse("Dora ✨").expect("valid"),
                "in random".into(),
                1,
            )],
            has_more: false,
        })
    });
    settle().await;
    assert_eq!(text_of(&one(&el, &testid("room-title"))), "#random");
    let texts: Vec<String> = all(&el, &testid("message-text"))
        .iter()
        .map(text_of)
        .collect();
    assert_eq!(texts, vec!["in random".to_owned()]);
    let current = one(&el, "[data-testid=\"room-item\"][aria-current=\"true\"]");
    assert_eq!(
        current.get_attribute("data-room").as_deref(),
        Some("random")
    );

    // A message in the other room counts as unread there.
    client.change(|c| c.apply(message(2, "bob", "psst", None)));
    settle().await;
    let general = one(&el, "[data-testid=\"room-item\"][data-room=\"general\"]");
    assert_eq!(text_of(&one(&general, &testid("room-unread"))), "1");
}

/// The rows of the list in order, as `m<seq>` for stored messages and `gap` for gaps.
fn row_kinds(root: &web_sys::Element) -> Vec<String> {
    all(root, "[data-testid=\"message\"], [data-testid=\"gap\"]")
        .iter()
        .map(|r| match r.get_attribute("data-seq") {
            Some(seq) => format!("m{seq}"),
            None => r.get_attribute("data-testid").unwrap_or_default(),
        })
        .collect()
}

#[wasm_bindgen_test]
async fn a_hole_the_catch_up_cannot_fill_is_shown_and_can_be_asked_again() {
    let (el, client) = mount_chat("gap_viewer");
    join_general(
        client,
        &["gap_viewer"],
        (1..=3).map(|s| message(s, "bob", "old", None)).collect(),
    );
    // Seq 4 to 6 are skipped: the client asks with `join { since: 3 }`.
    client.change(|c| c.apply(message(7, "bob", "new", None)));
    settle().await;
    let gap = one(&el, &testid("gap"));
    assert_eq!(gap.get_attribute("data-state").as_deref(), Some("loading"));
    assert!(all(&el, &testid("gap-retry")).is_empty());

    // The catch-up fails (an error for the room while it is on its way).
    client.change(|c| {
        c.apply(ServerMsg::Error {
            req: None,
            code: shared::ErrorCode::Internal,
            message: "Try again.".into(),
            client_id: None,
            room: Some(room("general")),
            retry_after_ms: None,
        })
    });
    settle().await;
    let gap = one(&el, &testid("gap"));
    assert_eq!(gap.get_attribute("data-state").as_deref(), Some("failed"));
    assert_eq!(gap.get_attribute("data-from").as_deref(), Some("4"));
    assert_eq!(gap.get_attribute("data-to").as_deref(), Some("6"));
    assert_eq!(row_kinds(&el), vec!["m1", "m2", "m3", "gap", "m7"]);

    // Asking again shows it loading; the catch-up removes it (an edit among its events).
    click(&one(&gap, &testid("gap-retry")));
    settle().await;
    assert_eq!(
        one(&el, &testid("gap"))
            .get_attribute("data-state")
            .as_deref(),
        Some("loading")
    );
    client.change(|c| {
        let mut out = c.apply(ServerMsg::Joined {
            req: None,
            room: room("general"),
            last_seq: 7,
            online: Vec::new(),
            away: Vec::new(),
        });
        out.extend(c.apply(message(4, "bob", "late", None)));
        out.extend(c.apply(change(5, EventKind::Edit, 4, "bob", "late, fixed")));
        out.extend(c.apply(message(6, "bob", "late", None)));
        out.extend(c.apply(message(7, "bob", "new", None)));
        out
    });
    settle().await;
    assert!(all(&el, &testid("gap")).is_empty());
    assert_eq!(row_kinds(&el), vec!["m1", "m2", "m3", "m4", "m6", "m7"]);
    let texts: Vec<String> = all(&el, &testid("message-text"))
        .iter()
        .map(text_of)
        .collect();
    assert_eq!(texts[3], "late, fixed (edited)");
}

/// A change event `seq` by `author` to message `target` of `general`.
fn change(seq: u64, kind: EventKind, target: u64, author: &str, text: &str) -> ServerMsg {
    let ServerMsg::Message(mut ev) = message(seq, author, "", None) else {
        unreachable!("message builds a message")
    };
    ev.kind = kind;
    ev.target = Some(target);
    if matches!(kind, EventKind::React | EventKind::Unreact) {
        ev.emoji = Some(text.into());
    } else {
        ev.text = text.into();
    }
    ServerMsg::Message(ev)
}

#[wasm_bindgen_test]
async fn an_edit_arriving_before_its_target_renders_right() {
    let (el, client) = mount_chat("early_viewer");
    join_general(
        client,
        &["early_viewer"],
        vec![message(20, "bob", "newest", None)],
    );
    // Live changes to message 5, which is not loaded: no row, nothing shown yet.
    client.change(|c| {
        let mut out = c.apply(change(21, EventKind::Edit, 5, "bob", "rewritten"));
        out.extend(c.apply(change(22, EventKind::React, 5, "carol", "👍")));
        out.extend(c.apply(change(23, EventKind::React, 5, "dave", "👍")));
        out
    });
    settle().await;
    assert_eq!(row_kinds(&el), vec!["m20"]);
    // Its page arrives (older, folded without those changes): they apply in order.
    client.change(|c| {
        c.apply(ServerMsg::History {
            req: None,
            room: room("general"),
            messages: vec![match message(5, "bob", "original", None) {
                ServerMsg::Message(ev) => *ev,
                _ => unreachable!("message builds a message"),
            }],
            has_more: false,
        })
    });
    settle().await;
    assert_eq!(row_kinds(&el), vec!["m5", "m20"]);
    let row = one(&el, "[data-seq=\"5\"]");
    assert_eq!(
        text_of(&one(&row, &testid("message-text"))),
        "rewritten (edited)"
    );
    let chip = one(&row, &testid("reaction"));
    assert_eq!(text_of(&chip), "👍 2");
    assert_eq!(chip.get_attribute("title").as_deref(), Some("carol, dave"));
    // A delete blanks it and keeps the row.
    client.change(|c| c.apply(change(24, EventKind::Delete, 5, "bob", "")));
    settle().await;
    let row = one(&el, "[data-seq=\"5\"]");
    assert_eq!(
        text_of(&one(&row, &testid("message-deleted"))),
        "message deleted"
    );
    assert!(all(&row, &testid("reaction")).is_empty());
}

#[wasm_bindgen_test]
async fn replies_quote_their_original_and_a_reaction_chip_toggles_mine() {
    let (el, client) = mount_chat("replier");
    let mut answer = message(2, "bob", "yes!", None);
    if let ServerMsg::Message(ev) = &mut answer {
        ev.reply_to = Some(1);
        ev.mentions = vec![user("replier")];
        ev.reactions = vec![shared::Reaction {
            emoji: "🎉".into(),
            users: vec![user("replier")],
        }];
    }
    join_general(
        client,
        &["replier"],
        vec![message(1, "replier", "shall we?", None), answer],
    );
    settle().await;
    let row = one(&el, "[data-seq=\"2\"]");
    assert_eq!(
        text_of(&one(&row, &testid("reply-quote"))),
        "replier: shall we?"
    );
    assert_eq!(row.get_attribute("data-mention").as_deref(), Some("true"));
    let chip = one(&row, &testid("reaction"));
    assert_eq!(chip.get_attribute("aria-pressed").as_deref(), Some("true"));
    // My chip takes my reaction back: shown at once, sent with a client id.
    click(&chip);
    settle().await;
    let row = one(&el, "[data-seq=\"2\"]");
    assert!(all(&row, &testid("reaction")).is_empty());
    let kept = outbox::load(&user("replier"));
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].kind, EventKind::React);
    assert_eq!(kept[0].on, Some(false));
    // Reply from the row: the composer says to whom, and the message carries reply_to.
    click(&one(&row, &testid("action-reply")));
    settle().await;
    assert!(text_of(&one(&el, &testid("replying"))).contains("Replying to bob: yes!"));
    client.send_text(MessageText::parse("ok").expect("valid"));
    settle().await;
    assert!(all(&el, &testid("replying")).is_empty());
    let kept = outbox::load(&user("replier"));
    assert_eq!(kept.last().and_then(|e| e.reply_to), Some(2));
}

#[wasm_bindgen_test]
async fn my_messages_can_be_edited_in_place_and_short_runs_are_grouped() {
    let (el, client) = mount_chat("editor");
    join_general(
        client,
        &["editor"],
        vec![
            message(1, "editor", "one", None),
            message(2, "editor", "two", None),
            message(3, "bob", "three", None),
        ],
    );
    settle().await;
    let rows = message_rows(&el);
    // One header for the first two (same author, same minute).
    assert_eq!(all(&rows[1], &testid("message-author")).len(), 0);
    assert_eq!(all(&rows[2], &testid("message-author")).len(), 1);
    assert!(all(&rows[2], &testid("action-edit")).is_empty(), "not mine");
    click(&one(&rows[1], &testid("action-edit")));
    settle().await;
    let input = one(&el, &testid("edit-input"));
    type_into(&input, "two, better");
    press_enter(&input, false);
    settle().await;
    assert!(all(&el, &testid("edit-input")).is_empty());
    let row = one(&el, "[data-seq=\"2\"]");
    assert_eq!(
        text_of(&one(&row, &testid("message-text"))),
        "two, better (edited)"
    );
    let kept = outbox::load(&user("editor"));
    assert_eq!((kept[0].kind, kept[0].target), (EventKind::Edit, Some(2)));
}

#[wasm_bindgen_test]
async fn someone_typing_is_shown_under_the_list() {
    let (el, client) = mount_chat("watcher");
    join_general(client, &["watcher"], Vec::new());
    let now = js_sys::Date::now() as i64;
    client.chat.update(|c| {
        c.set_typing(
            room("general"),
            user("bob"),
            DisplayName::parse("Bob").expect("valid"),
            true,
            now,
        );
        c.set_typing(
            room("general"),
            user("cyril"),
            DisplayName::parse("Cy").expect("valid"),
            true,
            now,
        );
    });
    settle().await;
    assert_eq!(
        text_of(&one(&el, &testid("typing"))),
        "Bob and Cy are typing…"
    );
}

#[wasm_bindgen_test]
async fn a_failed_message_is_retried_as_pending_with_its_id_then_sent_on_ack() {
    let (el, client) = mount_chat("retrier");
    join_general(client, &["retrier"], Vec::new());
    client.send_text(MessageText::parse("try me").expect("valid"));
    settle().await;
    let id = one(&el, &testid("message"))
        .get_attribute("data-client-id")
        .expect("pending rows carry their id");
    // The server keeps failing: after a few automatic resends the message shows as failed.
    for _ in 0..frontend::timeline::MAX_TRANSIENT_ERRORS {
        client.change(|c| {
            c.apply(ServerMsg::Error {
                req: None,
                code: shared::ErrorCode::Internal,
                message: "The message was not stored; send it again.".into(),
                client_id: Some(cid(&id)),
                room: Some(room("general")),
                retry_after_ms: None,
            })
        });
    }
    settle().await;
    let row = one(&el, &testid("message"));
    assert_eq!(row.get_attribute("data-state").as_deref(), Some("failed"));
    assert!(text_of(&one(&row, &testid("message-error"))).contains("not stored"));
    assert_eq!(all(&row, &testid("message-discard")).len(), 1);
    // It stays in the outbox, so a reload does not lose it.
    let stored = outbox::load(&user("retrier"));
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].client_id.as_str(), id);

    click(&one(&row, &testid("message-retry")));
    settle().await;
    let row = one(&el, &testid("message"));
    assert_eq!(row.get_attribute("data-state").as_deref(), Some("pending"));
    assert_eq!(
        row.get_attribute("data-client-id").as_deref(),
        Some(id.as_str())
    );
    assert!(all(&el, &testid("message-retry")).is_empty());
    assert!(all(&el, &testid("message-error")).is_empty());

    client.change(|c| {
        c.apply(ServerMsg::Ack {
            req: None,
            room: room("general"),
            client_id: cid(&id),
            id: 101,
            seq: 1,
            ts: 1_700_000_000_500,
        })
    });
    settle().await;
    let rows = message_rows(&el);
    assert_eq!(rows.len(), 1, "shown once");
    assert_eq!(rows[0].get_attribute("data-state").as_deref(), Some("sent"));
    assert_eq!(rows[0].get_attribute("data-seq").as_deref(), Some("1"));
    assert!(outbox::load(&user("retrier")).is_empty());
}

#[wasm_bindgen_test]
async fn authors_show_by_display_name_with_their_handle_in_the_title() {
    let (el, client) = mount_chat("named_viewer");
    join_general(client, &["named_viewer", "bob"], Vec::new());
    client.change(|c| {
        c.apply(ServerMsg::Message(Box::new(MessageEvent::message(
            room("general"),
            1,
            1,
            user("bob"),
            DisplayName::parse("Bob Ö 🎸").expect("valid"),
            "hi".into(),
            1,
        ))))
    });
    // `hello` tells the own display name.
    client.change(|c| {
        c.set_my_name(DisplayName::parse("张三丰").expect("valid"));
        Vec::new()
    });
    settle().await;
    let row = one(&el, &testid("message"));
    assert_eq!(row.get_attribute("data-author").as_deref(), Some("bob"));
    let author = one(&row, &testid("message-author"));
    assert_eq!(text_of(&author), "Bob Ö 🎸");
    assert_eq!(author.get_attribute("title").as_deref(), Some("@bob"));
    let me = one(&el, &testid("current-user"));
    assert_eq!(text_of(&me), "张三丰");
    assert_eq!(me.get_attribute("title").as_deref(), Some("@named_viewer"));
    let online: Vec<(String, String)> = all(&el, &testid("online-user"))
        .iter()
        .map(|u| (u.get_attribute("data-user").unwrap_or_default(), text_of(u)))
        .collect();
    assert_eq!(
        online,
        vec![
            ("bob".to_owned(), "Bob Ö 🎸".to_owned()),
            ("named_viewer".to_owned(), "张三丰 (you)".to_owned())
        ]
    );
}

#[wasm_bindgen_test]
async fn the_registration_form_takes_an_optional_display_name() {
    let el = container();
    let calls = RwSignal::new(Vec::<(AuthMode, NewAccount)>::new());
    let handle = mount_to(el.clone(), move || {
        let on_submit = Callback::new(move |c| calls.update(|v| v.push(c)));
        view! { <AuthForm on_submit error=Signal::stored(None::<String>) busy=Signal::stored(false) /> }
    });
    let name = one(&el, &testid("display-name-input"));
    assert_eq!(
        name.get_attribute("autocomplete").as_deref(),
        Some("nickname")
    );
    assert_eq!(
        name.get_attribute("placeholder").as_deref(),
        Some("Display name (optional)")
    );
    let username = one(&el, &testid("username-input"));
    assert_eq!(
        username.get_attribute("autocomplete").as_deref(),
        Some("username")
    );
    type_into(&username, "alice");
    type_into(&one(&el, &testid("password-input")), "correct horse");

    // Checked as typed.
    type_into(&name, "evil\u{202E}gpj");
    settle().await;
    assert!(text_of(&one(&el, &testid("display-name-error"))).contains("Display name"));
    assert_eq!(
        one(&el, &testid("password-input"))
            .get_attribute("autocomplete")
            .as_deref(),
        Some("new-password"),
        "a display name means a new account"
    );
    click(&one(&el, &testid("register-button")));
    settle().await;
    assert!(
        calls.with_untracked(Vec::is_empty),
        "an invalid name was sent"
    );

    type_into(&name, "  Zoë 🦊 ");
    settle().await;
    assert!(all(&el, &testid("display-name-error")).is_empty());
    click(&one(&el, &testid("register-button")));
    settle().await;
    // Blank: none is sent, and logging in never sends one.
    type_into(&name, "");
    settle().await;
    assert_eq!(
        one(&el, &testid("password-input"))
            .get_attribute("autocomplete")
            .as_deref(),
        Some("current-password")
    );
    click(&one(&el, &testid("register-button")));
    type_into(&name, "Zoë");
    click(&one(&el, &testid("login-button")));
    settle().await;
    let got: Vec<(AuthMode, Option<String>)> = calls
        .get_untracked()
        .into_iter()
        .map(|(mode, account)| (mode, account.display_name))
        .collect();
    assert_eq!(
        got,
        vec![
            (AuthMode::Register, Some("Zoë 🦊".to_owned())),
            (AuthMode::Register, None),
            (AuthMode::Login, None),
        ]
    );
    drop(handle);
}

#[wasm_bindgen_test]
async fn an_outbox_stored_by_the_previous_release_is_sent_and_then_cleared() {
    let me = user("upgrader");
    let storage = window()
        .local_storage()
        .ok()
        .flatten()
        .expect("localStorage");
    // Exactly what the previous release wrote: room names, under the v1 key.
    let legacy = r#"[{"room":"general","client_id":"old-1","text":"from the old client","created_ms":1700000000000},{"room":"gone","client_id":"old-2","text":"nowhere","created_ms":1700000000001}]"#;
    storage
        .set_item(&outbox::legacy_storage_key(&me), legacy)
        .expect("write");
    let _ = storage.remove_item(&outbox::storage_key(&me));
    let restored = outbox::load(&me);
    assert_eq!(restored.len(), 2);

    let el = container();
    let slot: Rc<Cell<Option<Client>>> = Rc::new(Cell::new(None));
    let out = Rc::clone(&slot);
    let handle = mount_to(el.clone(), move || {
        let name = DisplayName::from(&me);
        let client = Client::new(me, name, restored);
        provide_context(client);
        out.set(Some(client));
        view! { <ChatLayout on_logout=Callback::new(|()| ()) /> }
    });
    std::mem::forget(handle);
    let client = slot.get().expect("mounted");
    client.set_rooms(vec![info("general"), info("random")]);
    settle().await;

    // The `general` one is pending in general; the other is kept and shown apart.
    let row = one(&el, &testid("message"));
    assert_eq!(row.get_attribute("data-state").as_deref(), Some("pending"));
    assert_eq!(
        row.get_attribute("data-client-id").as_deref(),
        Some("old-1")
    );
    let banner = one(&el, &testid("unresolved-outbox"));
    assert_eq!(banner.get_attribute("data-count").as_deref(), Some("1"));
    assert!(text_of(&banner).contains("#gone"), "{}", text_of(&banner));

    // Confirmed: it leaves the old key; the unresolved one stays stored.
    join_general(client, &["upgrader"], Vec::new());
    client.change(|c| c.apply(message(1, "upgrader", "from the old client", Some("old-1"))));
    settle().await;
    let me = user("upgrader");
    let left = storage
        .get_item(&outbox::legacy_storage_key(&me))
        .ok()
        .flatten()
        .unwrap_or_default();
    assert!(!left.contains("old-1"), "{left}");
    assert!(left.contains(r#""room":"gone""#), "{left}");
    assert_eq!(outbox::load(&me).len(), 1);

    // Discarding it is the user's call.
    click(&one(&banner, &testid("unresolved-discard")));
    settle().await;
    assert!(outbox::load(&me).is_empty());
    assert!(all(&el, &testid("unresolved-outbox")).is_empty());
}

#[wasm_bindgen_test]
async fn outboxes_stored_by_the_second_and_third_releases_are_sent_and_then_cleared() {
    let me = user("upgrader2");
    let storage = window()
        .local_storage()
        .ok()
        .flatten()
        .expect("localStorage");
    // Exactly what the second release wrote: messages only, by room id, under the v2 key.
    let stored = r#"[{"room":1,"client_id":"v2-1","text":"typed before the upgrade","created_ms":1700000000000}]"#;
    // And what the third wrote (changes too, no files), under the v3 key.
    let third =
        r#"[{"room":1,"client_id":"v3-1","text":"and before files","created_ms":1700000000001}]"#;
    let [v3, v2] = outbox::previous_storage_keys(&me);
    storage.set_item(&v2, stored).expect("write");
    storage.set_item(&v3, third).expect("write");
    let _ = storage.remove_item(&outbox::storage_key(&me));
    let restored = outbox::load(&me);
    assert_eq!(restored.len(), 2);
    assert_eq!(restored[0].kind, EventKind::Message);

    let el = container();
    let slot: Rc<Cell<Option<Client>>> = Rc::new(Cell::new(None));
    let out = Rc::clone(&slot);
    let handle = mount_to(el.clone(), move || {
        let name = DisplayName::from(&me);
        let client = Client::new(me, name, restored);
        provide_context(client);
        out.set(Some(client));
        view! { <ChatLayout on_logout=Callback::new(|()| ()) /> }
    });
    std::mem::forget(handle);
    let client = slot.get().expect("mounted");
    settle().await;
    let rows = message_rows(&el);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].get_attribute("data-state").as_deref(),
        Some("pending")
    );
    let mut ids: Vec<String> = rows
        .iter()
        .filter_map(|r| r.get_attribute("data-client-id"))
        .collect();
    ids.sort();
    assert_eq!(ids, ["v2-1", "v3-1"]);
    // Confirmed: they leave the old keys.
    join_general(client, &["upgrader2"], Vec::new());
    client.change(|c| {
        c.apply(message(
            1,
            "upgrader2",
            "typed before the upgrade",
            Some("v2-1"),
        ))
    });
    client.change(|c| c.apply(message(2, "upgrader2", "and before files", Some("v3-1"))));
    settle().await;
    let me = user("upgrader2");
    for key in outbox::previous_storage_keys(&me) {
        assert!(storage.get_item(&key).ok().flatten().is_none(), "{key}");
    }
    assert!(outbox::load(&me).is_empty());
}

#[wasm_bindgen_test]
async fn a_frame_of_an_unknown_type_changes_nothing_on_screen() {
    let (el, client) = mount_chat("future_proof");
    join_general(
        client,
        &["future_proof"],
        vec![message(1, "bob", "hi", None)],
    );
    settle().await;
    let before = el.inner_html();
    let frame: ServerMsg =
        serde_json::from_str(r#"{"type":"reaction","room":1,"seq":1,"emoji":"👍"}"#)
            .expect("tolerated");
    client.change(|c| c.apply(frame));
    settle().await;
    assert_eq!(el.inner_html(), before);
    assert!(all(&el, &testid("chat-error")).is_empty());
}

/// A room as a `room` frame tells it.
fn room_frame(id: u64, name: &str, kind: &str, role: Option<&str>, direct: &[&str]) -> ServerMsg {
    ServerMsg::Room {
        room: serde_json::from_value(serde_json::json!({
            "id": id,
            "name": name,
            "kind": kind,
            "role": role,
            "direct": direct,
            "last_seq": 0,
            "online": 0,
        }))
        .expect("a valid room"),
    }
}

fn attrs(root: &web_sys::Element, selector: &str, attr: &str) -> Vec<String> {
    all(root, selector)
        .iter()
        .filter_map(|e| e.get_attribute(attr))
        .collect()
}

#[wasm_bindgen_test]
async fn rooms_direct_conversations_and_invitations_appear_live_in_their_sections() {
    let (el, client) = mount_chat("sorter");
    join_general(client, &["sorter"], Vec::new());
    client.change(|c| c.apply(room_frame(1, "general", "public", Some("member"), &[])));
    client.change(|c| c.apply(room_frame(20, "aardvarks", "public", None, &[])));
    client.change(|c| c.apply(room_frame(21, "zebras", "private", Some("owner"), &[])));
    client.change(|c| {
        c.apply(room_frame(
            22,
            "sorter, 王五",
            "direct",
            Some("member"),
            &["sorter", "wang"],
        ))
    });
    settle().await;
    // Joined rooms first, then the others; direct conversations apart, named after the others.
    assert_eq!(
        attrs(
            &el,
            "[data-testid=\"room-list\"] [data-testid=\"room-item\"]",
            "data-room"
        ),
        vec!["general", "zebras", "aardvarks"]
    );
    assert_eq!(
        attrs(
            &el,
            "[data-testid=\"room-list\"] [data-testid=\"room-item\"]",
            "data-joined"
        ),
        vec!["true", "true", "false"]
    );
    let dm = one(&el, "[data-testid=\"dm-list\"] [data-testid=\"room-item\"]");
    assert_eq!(text_of(&dm), "王五");

    // An invitation shows; accepting it opens the room.
    let invite: shared::InviteInfo = serde_json::from_value(serde_json::json!({
        "room": {"id": 30, "name": "秘密", "kind": "private", "last_seq": 0, "online": 1},
        "by": "wang",
        "by_name": "王五",
        "ts": 1,
    }))
    .expect("valid");
    client.change(|c| c.apply(ServerMsg::Invited { invite }));
    settle().await;
    let item = one(&el, &testid("invite-item"));
    assert!(text_of(&item).contains("#秘密"));
    assert!(text_of(&item).contains("王五"));
    click(&one(&item, &testid("invite-accept")));
    settle().await;
    assert_eq!(text_of(&one(&el, &testid("room-title"))), "#秘密");
}

#[wasm_bindgen_test]
async fn a_ban_shows_a_notice_with_the_reason_and_the_room_goes() {
    let (el, client) = mount_chat("banned_one");
    join_general(client, &["banned_one"], Vec::new());
    client.change(|c| c.apply(room_frame(40, "inner", "private", Some("member"), &[])));
    client.open_room(RoomId(40));
    settle().await;
    assert_eq!(text_of(&one(&el, &testid("room-title"))), "#inner");
    client.change(|c| {
        c.apply(ServerMsg::Removed {
            room: RoomId(40),
            reason: shared::Removal::Banned,
            by: Some(user("alice")),
            message: Some("spam".into()),
        })
    });
    settle().await;
    let notice = one(&el, &testid("room-notice"));
    assert_eq!(notice.get_attribute("data-kind").as_deref(), Some("banned"));
    assert_eq!(
        text_of(&one(&notice, &testid("room-notice-text"))),
        "You were banned from #inner by alice: spam"
    );
    assert_eq!(text_of(&one(&el, &testid("room-title"))), "#general");
    assert!(all(&el, "[data-testid=\"room-item\"][data-room=\"inner\"]").is_empty());
    click(&one(&notice, &testid("room-notice-close")));
    settle().await;
    assert!(all(&el, &testid("room-notice")).is_empty());
}

#[wasm_bindgen_test]
async fn a_mute_disables_the_composer_and_says_until_when() {
    let (el, client) = mount_chat("quiet_one");
    join_general(client, &["quiet_one"], Vec::new());
    let until = js_sys::Date::now() as i64 + 600_000;
    client.change(|c| {
        c.apply(ServerMsg::Muted {
            room: room("general"),
            until: Some(until),
            reason: Some("calm down".into()),
        })
    });
    settle().await;
    let notice = one(&el, &testid("room-notice"));
    assert_eq!(notice.get_attribute("data-kind").as_deref(), Some("muted"));
    assert!(text_of(&notice).starts_with("You are muted in #general until "));
    assert!(text_of(&notice).contains("calm down"));
    assert!(one(&el, &testid("composer")).has_attribute("disabled"));
    assert!(text_of(&one(&el, &testid("composer-blocked"))).contains("muted"));
    client.change(|c| {
        c.apply(ServerMsg::Muted {
            room: room("general"),
            until: None,
            reason: None,
        })
    });
    settle().await;
    assert!(!one(&el, &testid("composer")).has_attribute("disabled"));
    assert!(all(&el, &testid("composer-blocked")).is_empty());
}

#[wasm_bindgen_test]
async fn each_room_keeps_its_own_draft() {
    let (el, client) = mount_chat("drafter");
    let me = user("drafter");
    for id in [room("general"), room("random")] {
        frontend::drafts::save(&me, id, "");
    }
    client.set_rooms(vec![info("general"), info("random")]);
    settle().await;
    let composer = one(&el, &testid("composer"));
    let value = |el: &web_sys::Element| el.unchecked_ref::<web_sys::HtmlTextAreaElement>().value();
    type_into(&composer, "for general");
    client.open_room(room("random"));
    settle().await;
    assert_eq!(value(&composer), "");
    type_into(&composer, "for random");
    client.open_room(room("general"));
    settle().await;
    assert_eq!(value(&composer), "for general");
    // What a reload finds.
    assert_eq!(frontend::drafts::load(&me, room("random")), "for random");
    assert_eq!(frontend::drafts::load(&me, room("general")), "for general");
}

fn press(el: &web_sys::Element, key: &str) {
    let init = web_sys::KeyboardEventInit::new();
    init.set_key(key);
    init.set_bubbles(true);
    init.set_cancelable(true);
    let ev = web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init)
        .expect("keyboard event");
    el.dispatch_event(&ev).expect("dispatch keydown");
}

fn focused() -> Option<web_sys::Element> {
    document().active_element()
}

#[wasm_bindgen_test]
async fn reply_and_the_end_of_an_edit_focus_the_composer_and_one_picker_opens_at_a_time() {
    let (el, client) = mount_chat("focuser");
    join_general(
        client,
        &["focuser"],
        vec![
            message(1, "focuser", "**one**", None),
            message(2, "bob", "two", None),
        ],
    );
    settle().await;
    let composer = one(&el, &testid("composer"));
    // Reply: the box has the focus, the bar shows plain text; Escape cancels.
    click(&one(&one(&el, "[data-seq=\"1\"]"), &testid("action-reply")));
    settle().await;
    assert_eq!(focused().as_ref(), Some(&composer));
    assert_eq!(
        text_of(&one(&el, &testid("replying"))),
        "Replying to focuser: oneCancel"
    );
    press(&composer, "Escape");
    settle().await;
    assert!(all(&el, &testid("replying")).is_empty());
    // Edit, then cancel or save: back in the box.
    click(&one(&one(&el, "[data-seq=\"1\"]"), &testid("action-edit")));
    settle().await;
    let input = one(&el, &testid("edit-input"));
    assert_eq!(focused().as_ref(), Some(&input));
    press(&input, "Escape");
    settle().await;
    assert!(all(&el, &testid("edit-input")).is_empty());
    assert_eq!(focused().as_ref(), Some(&composer));
    click(&one(&one(&el, "[data-seq=\"1\"]"), &testid("action-edit")));
    settle().await;
    let input = one(&el, &testid("edit-input"));
    type_into(&input, "one, better");
    press_enter(&input, false);
    settle().await;
    assert_eq!(focused().as_ref(), Some(&composer));
    // The emoji picker: one at a time, closed by Escape and by a click elsewhere.
    click(&one(&one(&el, "[data-seq=\"1\"]"), &testid("action-react")));
    click(&one(&one(&el, "[data-seq=\"2\"]"), &testid("action-react")));
    settle().await;
    assert_eq!(all(&el, ".picker").len(), 1);
    assert_eq!(all(&one(&el, "[data-seq=\"2\"]"), ".picker").len(), 1);
    press(&composer, "Escape");
    settle().await;
    assert!(all(&el, ".picker").is_empty());
    click(&one(&one(&el, "[data-seq=\"2\"]"), &testid("action-react")));
    settle().await;
    assert_eq!(all(&el, ".picker").len(), 1);
    click(&one(&el, &testid("message-list")));
    settle().await;
    assert!(all(&el, ".picker").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Files in messages

fn file(id: u64, name: &str, mime: &str, size: u64, wh: Option<(u32, u32)>) -> shared::Attachment {
    shared::Attachment {
        id,
        name: name.into(),
        size,
        mime: mime.into(),
        width: wh.map(|(w, _)| w),
        height: wh.map(|(_, h)| h),
        thumbnail: wh.is_some(),
    }
}

fn with_files(seq: u64, author: &str, text: &str, files: Vec<shared::Attachment>) -> ServerMsg {
    let ServerMsg::Message(mut ev) = message(seq, author, text, None) else {
        unreachable!("message builds a message")
    };
    ev.attachments = files;
    ServerMsg::Message(ev)
}

#[wasm_bindgen_test]
async fn an_image_reserves_its_box_before_it_loads_and_other_files_show_name_size_and_a_link() {
    let (el, client) = mount_chat("file_viewer");
    join_general(
        client,
        &["file_viewer"],
        vec![with_files(
            1,
            "ann",
            "",
            vec![
                file(5, "猫.png", "image/png", 48_213, Some((640, 480))),
                file(6, "report.pdf", "application/pdf", 90_211, None),
                file(7, "tall.webp", "image/webp", 10, Some((100, 1000))),
            ],
        )],
    );
    settle().await;

    let images = all(&el, &testid("attachment-image"));
    assert_eq!(images.len(), 2);
    assert_eq!(
        images[0].get_attribute("href").as_deref(),
        Some("/api/files/5")
    );
    assert_eq!(images[0].get_attribute("target").as_deref(), Some("_blank"));
    let img = one(&images[0], "img");
    assert_eq!(
        img.get_attribute("src").as_deref(),
        Some("/api/files/5/thumbnail")
    );
    assert_eq!(img.get_attribute("alt").as_deref(), Some("猫.png"));
    // The thumbnail never loads here (no server): the box is the image's, scaled to 320 px.
    let size = |e: &web_sys::Element| {
        let e = e.unchecked_ref::<web_sys::HtmlElement>();
        (e.offset_width(), e.offset_height())
    };
    assert_eq!(size(&img), (320, 240));
    assert_eq!(size(&one(&images[1], "img")), (32, 320));

    let files = all(&el, &testid("attachment-file"));
    assert_eq!(files.len(), 1);
    assert_eq!(
        files[0].get_attribute("href").as_deref(),
        Some("/api/files/6")
    );
    assert_eq!(
        files[0].get_attribute("download").as_deref(),
        Some("report.pdf")
    );
    assert!(text_of(&files[0]).contains("report.pdf"));
    assert_eq!(
        text_of(&one(&files[0], &testid("attachment-size"))),
        "88 KB"
    );

    // Deleted: the files go with the text.
    client.change(|c| c.apply(change(2, EventKind::Delete, 1, "ann", "")));
    settle().await;
    assert!(all(&el, &testid("attachment-image")).is_empty());
    assert!(all(&el, &testid("attachment-file")).is_empty());
    assert_eq!(all(&el, &testid("message-deleted")).len(), 1);
}

#[wasm_bindgen_test]
async fn a_message_with_files_is_pending_with_them_kept_in_the_outbox_then_sent_with_them() {
    let (el, client) = mount_chat("file_sender");
    join_general(client, &["file_sender"], Vec::new());
    let cat = file(9, "cat.gif", "image/gif", 1_000, Some((10, 20)));
    client.send_files(String::new(), vec![cat.clone()]);
    settle().await;

    let rows = message_rows(&el);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].get_attribute("data-state").as_deref(),
        Some("pending")
    );
    assert_eq!(all(&rows[0], &testid("attachment-image")).len(), 1);
    let stored = outbox::load(&user("file_sender"));
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].attachments, vec![cat]);
    let client_id = rows[0].get_attribute("data-client-id").expect("an id");

    client.change(|c| {
        c.apply(ServerMsg::Ack {
            req: None,
            room: room("general"),
            client_id: cid(&client_id),
            id: 101,
            seq: 1,
            ts: 1_700_000_000_500,
        })
    });
    settle().await;
    let rows = message_rows(&el);
    assert_eq!(rows[0].get_attribute("data-state").as_deref(), Some("sent"));
    let img = one(&rows[0], "img");
    assert_eq!(
        (
            img.get_attribute("width").as_deref(),
            img.get_attribute("height").as_deref()
        ),
        (Some("10"), Some("20"))
    );
    assert!(outbox::load(&user("file_sender")).is_empty());
}
