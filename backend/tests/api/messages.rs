//! Real-time delivery, ordering, history and presence.

use shared::{ClientMsg, ServerMsg};

use crate::helpers::{GENERAL, cid, spawn_app};

#[tokio::test]
async fn message_is_delivered_to_every_member_of_the_room() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let (mut a, _) = app.joined(&alice, GENERAL).await;
    let (mut b, _) = app.joined(&bob, GENERAL).await;
    let (mut c, _) = app.joined(&carol, GENERAL).await;

    a.send(&ClientMsg::Send {
        reply_to: None,
        room: GENERAL,
        client_id: cid("a-1"),
        text: "hello, room".into(),
        attachments: Vec::new(),
    })
    .await;

    // The sender gets its ack and its own message, in either order.
    let (mut ack, mut own) = (None, None);
    while ack.is_none() || own.is_none() {
        match a.recv().await {
            ServerMsg::Ack { client_id, seq, .. } => ack = Some((client_id, seq)),
            ServerMsg::Message(m) => own = Some(*m),
            _ => {}
        }
    }
    assert_eq!(ack, Some((cid("a-1"), 1)));
    let mut seen = vec![own.expect("own message")];
    for ws in [&mut b, &mut c] {
        seen.push(ws.next_message().await);
    }
    for m in seen {
        assert_eq!(m.author.as_str(), "alice");
        assert_eq!(m.text, "hello, room");
        assert_eq!(m.seq, 1);
        assert_eq!(m.client_id, Some(cid("a-1")));
        assert!(m.ts > 1_600_000_000_000, "a real timestamp: {}", m.ts);
    }

    // And the reply goes the other way.
    let seq = b.say(GENERAL, "hi alice").await;
    assert_eq!(seq, 2);
    let m = a.next_message().await;
    assert_eq!(
        (m.author.as_str(), m.text.as_str(), m.seq),
        ("bob", "hi alice", 2)
    );
}

#[tokio::test]
async fn messages_from_concurrent_senders_arrive_in_seq_order_without_gaps() {
    let app = spawn_app().await;
    let reader = app.register("reader").await;
    let (mut r, _) = app.joined(&reader, GENERAL).await;

    let per_sender = 40;
    let mut senders = Vec::new();
    for i in 0..4 {
        let session = app.register(&format!("sender{i}")).await;
        let (mut ws, _) = app.joined(&session, GENERAL).await;
        senders.push(tokio::spawn(async move {
            for n in 0..per_sender {
                ws.send(&ClientMsg::Send {
                    reply_to: None,
                    room: GENERAL,
                    client_id: cid(&format!("s{i}-{n}")),
                    text: format!("{i}:{n}"),
                    attachments: Vec::new(),
                })
                .await;
            }
            let mut acked = 0;
            while acked < per_sender {
                if let ServerMsg::Ack { .. } = ws.recv().await {
                    acked += 1;
                }
            }
        }));
    }
    for s in senders {
        s.await.expect("sender finished");
    }

    let total = 4 * per_sender;
    let mut last_from: std::collections::HashMap<String, i32> = Default::default();
    for expected in 1..=total {
        let m = r.next_message().await;
        assert_eq!(m.seq, expected as u64, "seq order without gaps");
        // Each sender's own messages keep their sending order.
        let (who, n) = m.text.split_once(':').expect("i:n");
        let n: i32 = n.parse().expect("n");
        let prev = last_from.insert(who.to_owned(), n).unwrap_or(-1);
        assert_eq!(n, prev + 1, "sender {who} out of order");
    }
}

#[tokio::test]
async fn join_shows_the_last_50_and_history_pages_back_to_the_beginning() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let (mut a, _) = app.joined(&alice, GENERAL).await;
    for n in 1..=120 {
        a.send(&ClientMsg::Send {
            reply_to: None,
            room: GENERAL,
            client_id: cid(&format!("m{n}")),
            text: format!("message {n}"),
            attachments: Vec::new(),
        })
        .await;
    }
    let mut acks = 0;
    while acks < 120 {
        if let ServerMsg::Ack { .. } = a.recv().await {
            acks += 1;
        }
    }

    let bob = app.register("bob").await;
    let mut b = app.ws(&bob).await;
    b.send(&ClientMsg::Join {
        room: GENERAL,
        since: None,
    })
    .await;
    match b.recv().await {
        ServerMsg::Joined {
            last_seq, online, ..
        } => {
            assert_eq!(last_seq, 120);
            let names: Vec<_> = online.iter().map(|u| u.as_str()).collect();
            assert_eq!(names, ["alice", "bob"]);
        }
        other => panic!("expected joined, got {other:?}"),
    }
    let seqs = |page: &[shared::MessageEvent]| page.iter().map(|m| m.seq).collect::<Vec<_>>();
    let (first_page, has_more) = match b.recv().await {
        ServerMsg::History {
            messages, has_more, ..
        } => (messages, has_more),
        other => panic!("expected history, got {other:?}"),
    };
    assert_eq!(seqs(&first_page), (71..=120).collect::<Vec<_>>());
    assert!(has_more);
    assert_eq!(first_page[0].text, "message 71");

    let mut before = 71;
    let mut pages = vec![];
    loop {
        b.send(&ClientMsg::History {
            room: GENERAL,
            before,
            limit: None,
        })
        .await;
        let ServerMsg::History {
            messages, has_more, ..
        } = b.recv().await
        else {
            panic!("expected history");
        };
        before = messages[0].seq;
        pages.push(seqs(&messages));
        if !has_more {
            break;
        }
    }
    assert_eq!(
        pages,
        vec![(21..=70).collect::<Vec<_>>(), (1..=20).collect()]
    );
}

#[tokio::test]
async fn join_with_since_catches_up_exactly_what_was_missed() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let (mut a, _) = app.joined(&alice, GENERAL).await;
    for n in 1..=5 {
        a.say(GENERAL, &format!("m{n}")).await;
    }
    let mut b = app.ws(&bob).await;
    b.send(&ClientMsg::Join {
        room: GENERAL,
        since: Some(2),
    })
    .await;
    match b.recv().await {
        ServerMsg::Joined { last_seq, .. } => assert_eq!(last_seq, 5),
        other => panic!("expected joined, got {other:?}"),
    }
    for seq in 3..=5 {
        assert_eq!(b.next_message().await.seq, seq);
    }
    // Then live, with nothing repeated at the seam.
    a.say(GENERAL, "m6").await;
    assert_eq!(b.next_message().await.seq, 6);
}

#[tokio::test]
async fn a_repeated_client_id_is_stored_once_and_acked_with_the_original() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let (mut a, _) = app.joined(&alice, GENERAL).await;
    let (mut b, _) = app.joined(&bob, GENERAL).await;
    let first = a.say_with_id(GENERAL, "same-id", "once").await;
    for _ in 0..4 {
        assert_eq!(a.say_with_id(GENERAL, "same-id", "once").await, first);
    }
    let next = a.say(GENERAL, "after").await;
    assert_eq!(next, first.1 + 1, "no seq was used by the repeats");
    assert_eq!(b.next_message().await.text, "once");
    assert_eq!(b.next_message().await.text, "after");
}

#[tokio::test]
async fn presence_is_announced_when_users_arrive_and_leave() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let (mut a, _) = app.joined(&alice, GENERAL).await;
    let (b, _) = app.joined(&bob, GENERAL).await;
    // A first join also changes the member list (a `members` notice), which this test skips.
    let presence = |m: &ServerMsg| matches!(m, ServerMsg::Presence { .. });
    match a.recv_until(presence).await {
        ServerMsg::Presence { user, online, .. } => {
            assert_eq!((user.as_str(), online), ("bob", true));
        }
        other => panic!("expected presence, got {other:?}"),
    }
    drop(b);
    match a.recv_until(presence).await {
        ServerMsg::Presence { user, online, .. } => {
            assert_eq!((user.as_str(), online), ("bob", false));
        }
        other => panic!("expected presence, got {other:?}"),
    }
}

#[tokio::test]
async fn leaving_a_room_stops_its_messages() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let (mut a, _) = app.joined(&alice, GENERAL).await;
    let (mut b, _) = app.joined(&bob, GENERAL).await;
    b.send(&ClientMsg::Leave { room: GENERAL }).await;
    assert!(matches!(b.recv().await, ServerMsg::Left { .. }));
    a.say(GENERAL, "bob should not see this").await;
    b.send(&ClientMsg::Ping { id: Some(9) }).await;
    // The pong is the next frame: the message was not delivered.
    assert_eq!(
        b.recv().await,
        ServerMsg::Pong {
            req: None,
            id: Some(9)
        }
    );
}
