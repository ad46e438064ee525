//! Messages that change: edits, deletions, reactions and replies ride the log like messages,
//! live, in catch-up and in history; read positions and unread counts; typing; the HTTP
//! interface for bots.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use shared::{ClientMsg, ErrorCode, EventKind, MessageEvent, Presence, RoomInfo, ServerMsg};

use crate::helpers::{GENERAL, TestApp, Ws, cid, spawn_app};

fn edit(id: &str, target: u64, text: &str) -> ClientMsg {
    ClientMsg::Edit {
        room: GENERAL,
        client_id: cid(id),
        target,
        text: text.into(),
    }
}

fn delete(id: &str, target: u64) -> ClientMsg {
    ClientMsg::Delete {
        room: GENERAL,
        client_id: cid(id),
        target,
    }
}

fn react(id: &str, target: u64, emoji: &str, on: bool) -> ClientMsg {
    ClientMsg::React {
        room: GENERAL,
        client_id: cid(id),
        target,
        emoji: emoji.into(),
        on,
    }
}

fn reply(id: &str, to: u64, text: &str) -> ClientMsg {
    ClientMsg::Send {
        room: GENERAL,
        client_id: cid(id),
        text: text.into(),
        reply_to: Some(to),
        attachments: Vec::new(),
    }
}

fn code(answer: Result<(u64, u64), ServerMsg>) -> ErrorCode {
    match answer {
        Err(ServerMsg::Error { code, .. }) => code,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The next `message` frames, `n` of them.
async fn events(ws: &mut Ws, n: usize) -> Vec<MessageEvent> {
    let mut out = Vec::new();
    while out.len() < n {
        out.push(ws.next_message().await);
    }
    out
}

#[tokio::test]
async fn every_kind_of_change_arrives_live_in_catch_up_and_in_history() {
    every_kind_of_change(spawn_app().await).await;
}

/// The body of [`every_kind_of_change_arrives_live_in_catch_up_and_in_history`], for any store.
pub async fn every_kind_of_change(app: TestApp) {
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let (mut a, _) = app.joined(&alice, GENERAL).await;
    let (mut b, _) = app.joined(&bob, GENERAL).await;

    let first = a.say(GENERAL, "hello wrld").await;
    let second = a.say(GENERAL, "to be deleted").await;
    // Bob saw both; now he goes away.
    let seen = events(&mut b, 2).await;
    let since = seen.last().expect("two").seq;
    drop(b);

    let (_, edited) = a
        .write(edit("e1", first, "hello world"))
        .await
        .expect("edited");
    assert_eq!(edited, 3);
    let (_, reacted) = a
        .write(react("r1", first, "👍", true))
        .await
        .expect("reacted");
    let (_, replied) = a
        .write(reply("p1", first, "answering"))
        .await
        .expect("posted");
    let (_, deleted) = a.write(delete("d1", second)).await.expect("deleted");
    assert_eq!((reacted, replied, deleted), (4, 5, 6));

    // Catch-up: every change, exactly once, in order, each with its kind and target.
    let mut b = app.ws(&bob).await;
    b.send(&ClientMsg::Join {
        room: GENERAL,
        since: Some(since),
    })
    .await;
    let caught = events(&mut b, 4).await;
    let kinds: Vec<(u64, EventKind, Option<u64>)> =
        caught.iter().map(|e| (e.seq, e.kind, e.target)).collect();
    assert_eq!(
        kinds,
        vec![
            (3, EventKind::Edit, Some(first)),
            (4, EventKind::React, Some(first)),
            (5, EventKind::Message, None),
            (6, EventKind::Delete, Some(second)),
        ]
    );
    assert_eq!(caught[0].text, "hello world");
    assert_eq!(caught[1].emoji.as_deref(), Some("👍"));
    assert_eq!(caught[2].reply_to, Some(first));

    // Live: bob sees alice take her reaction back.
    a.write(react("r2", first, "👍", false))
        .await
        .expect("unreacted");
    let live = b.next_message().await;
    assert_eq!((live.seq, live.kind), (7, EventKind::Unreact));
    a.write(react("r3", first, "🎉", true))
        .await
        .expect("reacted");
    b.next_message().await;

    // History: messages only, as they are now; has_more and paging are by message.
    let carol = app.register("carol").await;
    let (_, page) = app.joined(&carol, GENERAL).await;
    let shown: Vec<(u64, &str)> = page.iter().map(|m| (m.seq, m.text.as_str())).collect();
    assert_eq!(shown, vec![(1, "hello world"), (2, ""), (5, "answering")]);
    assert!(page[0].edited.is_some());
    assert_eq!(page[0].reactions.len(), 1);
    assert_eq!(page[0].reactions[0].emoji, "🎉");
    assert!(page[1].deleted.is_some());
    assert_eq!(page[2].reply_to, Some(first));
    let (status, older) = app
        .get_as(&carol, "/api/rooms/1/messages?before=5&limit=1")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(older["messages"][0]["seq"], 2);
    assert_eq!(older["has_more"], true);
    // Reading forward from an older point (a search result far back): by message too.
    let (status, newer) = app
        .get_as(&carol, "/api/rooms/1/messages?after=1&limit=1")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(newer["messages"][0]["seq"], 2);
    assert_eq!(newer["has_more"], true, "5 follows");
    let (_, last) = app
        .get_as(&carol, "/api/rooms/1/messages?after=2&limit=50")
        .await;
    let seqs: Vec<u64> = last["messages"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|m| m["seq"].as_u64())
        .collect();
    assert_eq!((seqs, &last["has_more"]), (vec![5], &json!(false)));
    let (status, both) = app
        .get_as(&carol, "/api/rooms/1/messages?after=1&before=5")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{both}");
    // A join without `since` starts the live stream after every change, not after the last
    // message: the next event is 9, with nothing before it repeated.
    let (mut c, _) = app.joined(&carol, GENERAL).await;
    a.say(GENERAL, "latest").await;
    assert_eq!(c.next_message().await.seq, 9);
}

#[tokio::test]
async fn only_the_author_edits_and_the_author_or_a_moderator_deletes() {
    let app = spawn_app().await;
    let owner = app.register("owner").await;
    let alice = app.register("alice").await;
    let mallory = app.register("mallory").await;
    let room = app.create_room(&owner, "club").await;
    let mut o = app.ws(&owner).await;
    o.join(room).await;
    let mut a = app.ws(&alice).await;
    a.join(room).await;
    let mut m = app.ws(&mallory).await;
    m.join(room).await;
    let in_room = |msg: ClientMsg| match msg {
        ClientMsg::Edit {
            client_id,
            target,
            text,
            ..
        } => ClientMsg::Edit {
            room,
            client_id,
            target,
            text,
        },
        ClientMsg::Delete {
            client_id, target, ..
        } => ClientMsg::Delete {
            room,
            client_id,
            target,
        },
        other => other,
    };
    let said = a.say(room, "alice's words").await;
    // Nobody rewrites someone else's words, not even the room's owner.
    for (ws, id) in [(&mut m, "m1"), (&mut o, "o1")] {
        let answer = ws.write(in_room(edit(id, said, "forged"))).await;
        assert_eq!(code(answer), ErrorCode::Forbidden);
    }
    // A member cannot delete another's message; the owner (a moderator) can.
    assert_eq!(
        code(m.write(in_room(delete("m2", said))).await),
        ErrorCode::Forbidden
    );
    // Changes to what is not a message are refused.
    assert_eq!(
        code(a.write(in_room(edit("a0", 999, "nothing"))).await),
        ErrorCode::NoSuchMessage
    );
    a.write(in_room(edit("a1", said, "alice's better words")))
        .await
        .expect("the author edits");
    let (_, seq) = o
        .write(in_room(delete("o2", said)))
        .await
        .expect("the owner deletes");
    assert!(seq > said);
    // Deleted: no more edits or reactions; a second deletion changes nothing.
    assert_eq!(
        code(a.write(in_room(edit("a2", said, "again"))).await),
        ErrorCode::NoSuchMessage
    );
    assert_eq!(a.write(in_room(delete("a3", said))).await, Ok((0, 0)));
    // A member deletes their own.
    let own = m.say(room, "oops").await;
    m.write(in_room(delete("m3", own)))
        .await
        .expect("own message deleted");
    // Every change above was refused or applied once: the log holds two edits/deletions
    // beside the three messages.
    let (_, log) = app
        .get_as(&owner, &format!("/api/rooms/{room}/events?since=0"))
        .await;
    let kinds = crate::helpers::kinds(&log);
    assert_eq!(kinds, ["message", "edit", "delete", "message", "delete"]);
}

#[tokio::test]
async fn a_deleted_message_is_gone_from_the_database_files() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let (mut a, _) = app.joined(&alice, GENERAL).await;
    let secret = "the launch code is ZX-81-SPECTRUM";
    let seq = a.say(GENERAL, secret).await;
    a.write(edit("e1", seq, "the launch code is ZX-81-SPECTRUM-2"))
        .await
        .expect("edited");
    a.say(GENERAL, "other talk").await;
    a.write(delete("d1", seq)).await.expect("deleted");

    let files = ["chat.db", "chat.db-wal"].map(|f| app.dir.path().join(f));
    let contains = |needle: &[u8]| {
        files.iter().any(|path| {
            std::fs::read(path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        })
    };
    assert!(contains(b"other talk"), "the search can find what is there");
    // The write-ahead log is emptied by a checkpoint shortly after the deletion.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while contains(b"ZX-81-SPECTRUM") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the deleted text is still in the database files"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_change_sent_twice_with_one_client_id_is_applied_once() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let (mut a, _) = app.joined(&alice, GENERAL).await;
    let (mut b, _) = app.joined(&bob, GENERAL).await;
    let seq = a.say(GENERAL, "original").await;
    let first = a
        .write(edit("same-edit", seq, "changed"))
        .await
        .expect("edited");
    // A retry with the same id (say, after a cut connection) gets the same answer.
    assert_eq!(a.write(edit("same-edit", seq, "changed")).await, Ok(first));
    let r = b
        .write(react("same-react", seq, "❤️", true))
        .await
        .expect("reacted");
    assert_eq!(b.write(react("same-react", seq, "❤️", true)).await, Ok(r));
    // A new request that changes nothing stores nothing.
    assert_eq!(
        b.write(react("other-react", seq, "❤️", true)).await,
        Ok((0, 0))
    );
    assert_eq!(
        a.write(edit("other-edit", seq, "changed")).await,
        Ok((0, 0))
    );
    // Invalid reactions are refused with the rule.
    for bad in ["", "two words", "\u{200b}"] {
        assert_eq!(
            code(
                b.write(react(&format!("bad{}", bad.len()), seq, bad, true))
                    .await
            ),
            ErrorCode::Invalid
        );
    }
    let (_, log) = app.get_as(&alice, "/api/rooms/1/events?since=0").await;
    assert_eq!(log["events"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn unread_counts_follow_one_person_across_devices() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let (mut a, _) = app.joined(&alice, GENERAL).await;
    // Bob on two devices.
    let (mut phone, _) = app.joined(&bob, GENERAL).await;
    let bob_again = app.login("bob").await;
    let (mut laptop, _) = app.joined(&bob_again, GENERAL).await;

    a.say(GENERAL, "one").await;
    let two = a.say(GENERAL, "two, @bob").await;
    let three = a.say(GENERAL, "three").await;
    a.write(react("r", three, "👀", true))
        .await
        .expect("reacted");
    let edited = a.write(edit("e", two, "two (edited), @bob")).await;
    assert!(edited.is_ok());

    let counts = |rooms: Vec<RoomInfo>| {
        let general = rooms.into_iter().find(|r| r.id == GENERAL).expect("listed");
        (general.read_seq, general.unread, general.mentions)
    };
    let rooms: Vec<RoomInfo> = app
        .get_with_token("/api/rooms", &bob.token)
        .await
        .json()
        .await
        .expect("rooms");
    assert_eq!(
        counts(rooms),
        (0, 3, 1),
        "three messages unread, one mentions bob; the reaction and the edit do not count"
    );

    // Read on the phone: the laptop hears of it.
    phone
        .send(&ClientMsg::Read {
            room: GENERAL,
            seq: two,
        })
        .await;
    for ws in [&mut phone, &mut laptop] {
        let read = ws.recv_until(|m| matches!(m, ServerMsg::Read { .. })).await;
        assert_eq!(
            read,
            ServerMsg::Read {
                room: GENERAL,
                seq: two,
                unread: 1,
                mentions: 0
            }
        );
    }
    // The counts survive a reload (a fresh read of the list), on any device.
    let rooms: Vec<RoomInfo> = app
        .get_with_token("/api/rooms", &bob_again.token)
        .await
        .json()
        .await
        .expect("rooms");
    assert_eq!(counts(rooms), (two, 1, 0));
    // Mark everything read over HTTP.
    let (status, all) = app.post_as(&bob, "/api/read", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all[0]["unread"], 0);
    assert!(all[0]["seq"].as_u64() > Some(three));
}

#[tokio::test]
async fn typing_is_announced_and_ends_when_the_typist_goes_quiet_or_away() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let (mut a, _) = app.joined(&alice, GENERAL).await;
    let (mut b, _) = app.joined(&bob, GENERAL).await;
    let typing = |m: &ServerMsg| matches!(m, ServerMsg::Typing { .. });

    a.send(&ClientMsg::Typing {
        room: GENERAL,
        on: true,
    })
    .await;
    let started = tokio::time::Instant::now();
    assert!(matches!(
        b.recv_until(typing).await,
        ServerMsg::Typing { on: true, ref user, .. } if user.as_str() == "alice"
    ));
    // Alice's client goes quiet without a word: the server ends the notice itself.
    assert!(matches!(
        b.recv_until(typing).await,
        ServerMsg::Typing { on: false, .. }
    ));
    let lapsed = started.elapsed();
    assert!(
        lapsed >= Duration::from_millis(shared::TYPING_TTL_MS - 1_000),
        "not before the notice lapses: {lapsed:?}"
    );
    // The typist's own connections are not told of their own typing.
    let echo = tokio::time::timeout(Duration::from_millis(300), a.recv_until(typing)).await;
    assert!(echo.is_err(), "no echo: {echo:?}");

    // Posting ends it at once, and so does closing the connection.
    a.send(&ClientMsg::Typing {
        room: GENERAL,
        on: true,
    })
    .await;
    b.recv_until(typing).await;
    a.say(GENERAL, "done typing").await;
    assert!(matches!(
        b.recv_until(typing).await,
        ServerMsg::Typing { on: false, .. }
    ));
    a.send(&ClientMsg::Typing {
        room: GENERAL,
        on: true,
    })
    .await;
    b.recv_until(typing).await;
    drop(a);
    let closed = tokio::time::Instant::now();
    assert!(matches!(
        b.recv_until(typing).await,
        ServerMsg::Typing { on: false, .. }
    ));
    assert!(closed.elapsed() < Duration::from_millis(shared::TYPING_TTL_MS));
}

#[tokio::test]
async fn a_person_is_away_only_when_every_connection_of_theirs_is() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let (mut b, _) = app.joined(&bob, GENERAL).await;
    let (mut tab1, _) = app.joined(&alice, GENERAL).await;
    let (mut tab2, _) = app.joined(&alice, GENERAL).await;
    let presence = |m: &ServerMsg| {
        matches!(
            m,
            ServerMsg::Presence {
                status: Some(_),
                ..
            }
        )
    };
    let away = ClientMsg::Presence {
        status: Presence::Away,
    };
    tab1.send(&away).await;
    tab2.send(&away).await;
    assert!(matches!(
        b.recv_until(presence).await,
        ServerMsg::Presence { status: Some(Presence::Away), ref user, .. } if user.as_str() == "alice"
    ));
    // A newcomer learns it from `joined`.
    let carol = app.register("carol").await;
    let mut c = app.ws(&carol).await;
    c.send(&ClientMsg::Join {
        room: GENERAL,
        since: None,
    })
    .await;
    match c
        .recv_until(|m| matches!(m, ServerMsg::Joined { .. }))
        .await
    {
        ServerMsg::Joined { away, .. } => {
            assert_eq!(away, vec![shared::Username::parse("alice").expect("valid")])
        }
        _ => unreachable!(),
    }
    // One tab comes back: alice is online again.
    tab2.send(&ClientMsg::Presence {
        status: Presence::Online,
    })
    .await;
    assert!(matches!(
        b.recv_until(presence).await,
        ServerMsg::Presence {
            status: Some(Presence::Online),
            ..
        }
    ));
    drop(tab1);
}

#[tokio::test]
async fn a_bot_does_everything_over_plain_http() {
    let app = spawn_app().await;
    let bot = app.register("bot").await;
    let human = app.register("human").await;
    let (mut h, _) = app.joined(&human, GENERAL).await;
    let (status, _) = app.post_as(&bot, "/api/rooms/1/join", json!({})).await;
    assert_eq!(status, StatusCode::OK);

    // Send, with an Idempotency-Key: a retry stores nothing new.
    let send = || {
        app.http
            .post(app.url("/api/rooms/1/messages"))
            .bearer_auth(&bot.token)
            .header("Idempotency-Key", "bot-msg-1")
            .json(&json!({ "text": "beep **boop**" }))
            .send()
    };
    let first = send().await.expect("sent");
    assert_eq!(first.status(), StatusCode::CREATED);
    let posted: serde_json::Value = first.json().await.expect("json");
    let again = send().await.expect("sent");
    assert_eq!(again.status(), StatusCode::OK);
    let again: serde_json::Value = again.json().await.expect("json");
    assert_eq!(again["seq"], posted["seq"]);
    let seq = posted["seq"].as_u64().expect("seq");
    let bad_key = app
        .http
        .post(app.url("/api/rooms/1/messages"))
        .bearer_auth(&bot.token)
        .header("Idempotency-Key", "not a valid key!")
        .json(&json!({ "text": "x" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(bad_key.status(), StatusCode::BAD_REQUEST);

    // Edit, react, read it back, take the reaction back, delete.
    let path = format!("/api/rooms/1/messages/{seq}");
    let (status, _) = app
        .call(Method::PATCH, &path, &bot, Some(json!({ "text": "beep" })))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .post_as(&bot, &format!("{path}/reactions"), json!({ "emoji": "🤖" }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, now) = app.get_as(&bot, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(now["text"], "beep");
    assert_eq!(now["reactions"][0]["emoji"], "🤖");
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("{path}/reactions/%F0%9F%A4%96"),
            &bot,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app.call(Method::DELETE, &path, &human, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not the human's to delete");
    let (status, _) = app.call(Method::DELETE, &path, &bot, None).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app.get_as(&bot, "/api/rooms/1/messages/999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "no_such_message");

    // The long poll: everything so far at once, then a wait that ends with the next event.
    let (_, log) = app.get_as(&bot, "/api/rooms/1/events?since=0").await;
    assert_eq!(log["events"].as_array().map(Vec::len), Some(5));
    let next = log["next"].as_u64().expect("next");
    let poll = {
        let url = app.url(&format!("/api/rooms/1/events?since={next}&wait=20"));
        let http = app.http.clone();
        let token = bot.token.clone();
        tokio::spawn(async move {
            let res = http
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("polled");
            res.json::<serde_json::Value>().await.expect("json")
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.say(GENERAL, "anyone there?").await;
    let woke = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .expect("the poll answers with the news")
        .expect("task");
    assert_eq!(woke["events"][0]["text"], "anyone there?");
    assert_eq!(woke["events"][0]["seq"], next + 1);
    // A wait with no news ends empty.
    let (_, quiet) = app
        .get_as(
            &bot,
            &format!("/api/rooms/1/events?since={}&wait=1", next + 1),
        )
        .await;
    assert_eq!(quiet["events"].as_array().map(Vec::len), Some(0));
    assert_eq!(quiet["next"], next + 1);
    // A stranger to a private room polls nothing.
    let secret = app.create_room_of(&human, "secret", "private").await;
    let (status, _) = app
        .get_as(&bot, &format!("/api/rooms/{secret}/events?since=0"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_room_filters_apply_to_an_edit_as_to_a_new_message() {
    let app = spawn_app().await;
    let admin = app.register("admin").await;
    let alice = app.register("alice").await;
    for (pattern, action) in [("spam", "refuse"), (r"\d{3}-\d{4}", "mask")] {
        let kind = if action == "mask" { "regex" } else { "keyword" };
        let rule = json!({ "kind": kind, "pattern": pattern, "action": action });
        let (status, body) = app.post_as(&admin, "/api/rooms/1/filters", rule).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (mut a, _) = app.joined(&alice, GENERAL).await;
    let seq = a.say(GENERAL, "an honest message").await;
    assert_eq!(
        code(a.write(edit("e1", seq, "buy spam now")).await),
        ErrorCode::Filtered
    );
    a.write(edit("e2", seq, "call 555-1234"))
        .await
        .expect("masked, not refused");
    let (_, now) = app
        .get_as(&alice, &format!("/api/rooms/1/messages/{seq}"))
        .await;
    assert_eq!(now["text"], "call ********");
}

#[tokio::test]
async fn a_long_poll_from_beyond_the_end_of_the_log_is_told_where_it_ends() {
    let app = spawn_app().await;
    let bot = app.register("bot").await;
    let (mut ws, _) = app.joined(&bot, GENERAL).await;
    ws.say(GENERAL, "one").await;
    let started = tokio::time::Instant::now();
    let (status, page) = app
        .get_as(&bot, "/api/rooms/1/events?since=500&wait=20")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["next"], 1);
    assert!(started.elapsed() < Duration::from_secs(10), "no wait");
}

#[tokio::test]
async fn read_reports_over_a_socket_are_written_together() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let (mut a, _) = app.joined(&alice, GENERAL).await;
    let (mut b, _) = app.joined(&bob, GENERAL).await;
    for n in 1..=3 {
        a.say(GENERAL, &format!("message {n}")).await;
    }
    // A reader reports each message as it scrolls past: one write, one `read` frame.
    for seq in 1..=3 {
        b.send(&ClientMsg::Read { room: GENERAL, seq }).await;
    }
    let read = b.recv_until(|m| matches!(m, ServerMsg::Read { .. })).await;
    assert_eq!(
        read,
        ServerMsg::Read {
            room: GENERAL,
            seq: 3,
            unread: 0,
            mentions: 0
        }
    );
    let more = tokio::time::timeout(
        Duration::from_millis(600),
        b.recv_until(|m| matches!(m, ServerMsg::Read { .. })),
    )
    .await;
    assert!(more.is_err(), "no second frame: {more:?}");
    // A report for a room one may not see is refused like any command on it.
    let secret = app.create_room_of(&alice, "secret", "private").await;
    b.send(&ClientMsg::Read {
        room: secret,
        seq: 1,
    })
    .await;
    let refused = b.recv_until(|m| matches!(m, ServerMsg::Error { .. })).await;
    assert!(
        matches!(
            refused,
            ServerMsg::Error {
                code: ErrorCode::NoSuchRoom,
                ..
            }
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn hostile_changes_get_clear_errors_and_change_nothing() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let (mut a, _) = app.joined(&alice, GENERAL).await;
    let seq = a.say(GENERAL, "original").await;
    let other = app.create_room(&alice, "other").await;
    a.join(other).await;
    let elsewhere = a.say(other, "in the other room").await;

    // An edit over the length limit, or blank.
    let long = "x".repeat(shared::MAX_MESSAGE_CHARS + 1);
    assert_eq!(
        code(a.write(edit("e1", seq, &long)).await),
        ErrorCode::TooLong
    );
    assert_eq!(
        code(a.write(edit("e2", seq, " \u{200b} ")).await),
        ErrorCode::Invalid
    );
    // A target, a reply or a reaction that names a message of another room (or none).
    assert_eq!(
        code(a.write(reply("p1", elsewhere + 100, "to nothing")).await),
        ErrorCode::NoSuchMessage
    );
    assert_eq!(
        code(a.write(react("r1", 10_000, "👍", true)).await),
        ErrorCode::NoSuchMessage
    );
    // A reaction that is not one.
    let huge = "😀".repeat(20);
    assert_eq!(
        code(a.write(react("r2", seq, &huge, true)).await),
        ErrorCode::Invalid
    );
    assert_eq!(
        code(a.write(react("r3", seq, "a\nb", true)).await),
        ErrorCode::Invalid
    );
    // Frames with the wrong shapes.
    a.send_raw(r#"{"type":"edit","room":1,"client_id":"x","target":"one","text":"t"}"#)
        .await;
    let bad = a.recv_until(|m| matches!(m, ServerMsg::Error { .. })).await;
    assert!(
        matches!(
            bad,
            ServerMsg::Error {
                code: ErrorCode::BadFrame,
                ..
            }
        ),
        "{bad:?}"
    );
    // Typing in a room this connection has not joined.
    let mut b = app.ws(&bob).await;
    b.send(&ClientMsg::Typing {
        room: other,
        on: true,
    })
    .await;
    let refused = b.recv_until(|m| matches!(m, ServerMsg::Error { .. })).await;
    assert!(
        matches!(
            refused,
            ServerMsg::Error {
                code: ErrorCode::NotJoined,
                ..
            }
        ),
        "{refused:?}"
    );
    // Over HTTP: a path that is not a number, an emoji that is not UTF-8, a bad body.
    let (status, _) = app.get_as(&alice, "/api/rooms/1/messages/abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/rooms/1/messages/{seq}/reactions/%FF"),
            &alice,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/api/rooms/1/messages/{seq}"),
            &alice,
            Some(json!({"txt": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.get_as(&alice, "/api/rooms/1/events?since=-1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Nothing of the above was stored.
    let (_, log) = app.get_as(&alice, "/api/rooms/1/events?since=0").await;
    assert_eq!(log["events"].as_array().map(Vec::len), Some(1));
    let (_, now) = app
        .get_as(&alice, &format!("/api/rooms/1/messages/{seq}"))
        .await;
    assert_eq!(now["text"], "original");
}
