//! One room's timeline: the pure bookkeeping behind the message list.
//!
//! The server numbers every stored message of a room with `seq` (1, 2, 3, ... with no holes),
//! so the timeline keys confirmed messages by `seq`: a message that arrives twice (live and again
//! through a history page or a catch-up after a reconnect) lands on the same key, and order is
//! the key order whatever order frames arrive in. Messages this client sent but the server has
//! not confirmed yet ("outgoing") are kept apart, keyed by their `client_id`, and shown after the
//! confirmed ones; the first confirmation (the `ack`, or the `message` frame carrying the same
//! `client_id`) moves them over, so a message is never shown twice.
//!
//! This module knows nothing about the browser, signals or sockets: it is plain data tested
//! natively. [`crate::chat`] holds one `Timeline` per room and turns frames into calls here.

use std::collections::BTreeMap;
use std::sync::Arc;

use shared::{ClientId, HISTORY_PAGE, MessageEvent, Username};

/// A message the server stored, as the timeline keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its position in the room (the timeline's key).
    pub seq: u64,
    /// Its server-wide id.
    pub id: u64,
    /// Who wrote it.
    pub author: Username,
    /// The text exactly as sent; shared so that rebuilding the rendered list copies no text.
    pub text: Arc<str>,
    /// When the server stored it (ms since the Unix epoch).
    pub ts: i64,
    /// The id its author's client gave it, if any.
    pub client_id: Option<ClientId>,
}

impl From<MessageEvent> for Message {
    fn from(ev: MessageEvent) -> Self {
        Self {
            seq: ev.seq,
            id: ev.id,
            author: ev.author,
            text: ev.text.into(),
            ts: ev.ts,
            client_id: ev.client_id,
        }
    }
}

/// A message this client sent (or will send) that the server has not confirmed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The id that makes resending it idempotent.
    pub client_id: ClientId,
    /// The text, already checked with [`shared::MessageText::parse`].
    pub text: Arc<str>,
    /// When the user sent it (ms since the Unix epoch), shown until the server's time is known.
    pub created_ms: i64,
    /// Why the server refused it, once it did. A failed message is never resent.
    pub failed: Option<Arc<str>>,
}

/// A join/leave line in the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The notice is shown after the message with this `seq` (0: before every message), which was
    /// the newest delivered one when the notice arrived.
    pub after_seq: u64,
    /// Local counter: orders notices anchored after the same message and keys them for rendering.
    pub n: u64,
    /// Who arrived or left.
    pub user: Username,
    /// `true` for an arrival, `false` for a departure.
    pub online: bool,
}

/// How far a message has got, as the list shows it (`data-state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Stored by the server.
    Sent,
    /// Waiting for the server's confirmation (possibly still in the outbox while offline).
    Pending,
    /// Refused by the server, with its reason.
    Failed(Arc<str>),
}

impl Delivery {
    /// The `data-state` value: `sent`, `pending` or `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Delivery::Sent => "sent",
            Delivery::Pending => "pending",
            Delivery::Failed(_) => "failed",
        }
    }
}

/// One row of the rendered list, in display order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A chat message, confirmed or not.
    Message {
        /// Its `seq`, once the server stored it.
        seq: Option<u64>,
        /// Who wrote it.
        author: Username,
        /// Its text (render as text, never as HTML).
        text: Arc<str>,
        /// Server time, or the local send time while pending (ms since the Unix epoch).
        ts: i64,
        /// The client's id for it, if any.
        client_id: Option<ClientId>,
        /// Sent, pending or failed.
        delivery: Delivery,
    },
    /// Somebody arrived in or left the room.
    Notice(Notice),
}

impl Entry {
    /// A key that is stable while the row's content stays the same and changes when it changes
    /// (a pending row that fails gets a new key), so a keyed list re-renders exactly what moved.
    pub fn key(&self) -> String {
        match self {
            Entry::Message { seq: Some(seq), .. } => format!("m{seq}"),
            Entry::Message {
                seq: None,
                client_id,
                delivery,
                ..
            } => format!(
                "o{}-{}",
                client_id.as_ref().map(ClientId::as_str).unwrap_or_default(),
                delivery.as_str()
            ),
            Entry::Notice(n) => format!("n{}", n.n),
        }
    }
}

/// What the top of the message list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryState {
    /// The first page has not arrived yet.
    NotLoaded,
    /// A page of older messages is on its way.
    Loading,
    /// Older messages exist: scrolling up loads them.
    More,
    /// The first message of the room is shown.
    Beginning,
}

/// A `history` request that fills part of a gap: messages with `seq < before`, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRange {
    /// Only messages below this `seq`.
    pub before: u64,
    /// How many at most.
    pub limit: u32,
}

/// The requests that fetch every `seq` strictly between `high` and `seq`, newest page first,
/// each at most [`HISTORY_PAGE`] long (the server's maximum).
pub fn gap_requests(high: u64, seq: u64) -> Vec<HistoryRange> {
    let first_missing = high + 1;
    let mut before = seq;
    let mut out = Vec::new();
    while before > first_missing {
        let limit = (before - first_missing).min(u64::from(HISTORY_PAGE));
        out.push(HistoryRange {
            before,
            // `limit` is at most HISTORY_PAGE, a u32.
            limit: u32::try_from(limit).unwrap_or(HISTORY_PAGE),
        });
        before -= limit;
    }
    out
}

/// What [`Timeline::insert_live`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inserted {
    /// The message was not in the timeline before.
    pub is_new: bool,
    /// History requests that fill the hole this message revealed, if any.
    pub gaps: Vec<HistoryRange>,
}

/// One room's messages, outgoing messages and notices.
///
/// Invariants: `messages` holds each `seq` once; an outgoing message's `client_id` never also
/// appears on a confirmed message by the same author (confirmation removes it from `outgoing`);
/// `delivered_high` only counts `message` and `history` frames, never acks, so that a reconnect's
/// `join { since }` cannot skip a message that was still on its way when an ack overtook it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Confirmed messages by `seq`.
    messages: BTreeMap<u64, Arc<Message>>,
    /// Unconfirmed messages of this client, in the order they were written.
    outgoing: Vec<Outgoing>,
    /// Join/leave lines.
    notices: Vec<Notice>,
    /// Counter for [`Notice::n`].
    next_notice: u64,
    /// Highest `seq` delivered by `message` or `history` frames.
    delivered_high: u64,
    /// The first page (or a catch-up) arrived, so `delivered_high` says where this client is.
    loaded: bool,
    /// Messages older than the oldest one held exist on the server.
    has_more: bool,
    /// A request for older messages (or the first page) is unanswered.
    older_in_flight: bool,
}

impl Timeline {
    /// Whether the first page arrived.
    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// The `since` for a `join`: the highest delivered `seq` once loaded, else `None` (which asks
    /// the server for the newest page instead of a catch-up).
    pub fn since(&self) -> Option<u64> {
        self.loaded.then_some(self.delivered_high)
    }

    /// Highest `seq` delivered by `message` or `history` frames.
    pub fn delivered_high(&self) -> u64 {
        self.delivered_high
    }

    /// Lowest `seq` held, if any.
    pub fn lowest_seq(&self) -> Option<u64> {
        self.messages.keys().next().copied()
    }

    /// Number of confirmed messages held.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether no confirmed message is held.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// What the top of the list shows.
    pub fn history_state(&self) -> HistoryState {
        if self.older_in_flight {
            HistoryState::Loading
        } else if !self.loaded {
            HistoryState::NotLoaded
        } else if self.has_more {
            HistoryState::More
        } else {
            HistoryState::Beginning
        }
    }

    /// Marks that a `join` without `since` was sent: its `history` page is the first page.
    pub fn expect_first_page(&mut self) {
        if !self.loaded {
            self.older_in_flight = true;
        }
    }

    /// Forgets requests that a dropped connection will never answer.
    pub fn connection_lost(&mut self) {
        self.older_in_flight = false;
    }

    /// Starts loading the page before the oldest message held: returns the `before` for the
    /// `history` request, or `None` when there is nothing older, a page is already on its way, or
    /// the first page has not arrived.
    pub fn request_older(&mut self) -> Option<u64> {
        if !self.loaded || !self.has_more || self.older_in_flight {
            return None;
        }
        let before = self.lowest_seq()?;
        self.older_in_flight = true;
        Some(before)
    }

    /// Adds a live (or catch-up) `message` frame. `me` is this client's user: only a message by
    /// `me` can confirm an outgoing one, since other users can see (and could reuse) client ids.
    pub fn insert_live(&mut self, ev: MessageEvent, me: &Username) -> Inserted {
        let seq = ev.seq;
        let gaps = if self.loaded && seq > self.delivered_high + 1 {
            gap_requests(self.delivered_high, seq)
        } else {
            Vec::new()
        };
        let is_new = self.insert(ev.into(), me);
        self.delivered_high = self.delivered_high.max(seq);
        Inserted { is_new, gaps }
    }

    /// Adds a `history` page (messages in ascending `seq`).
    ///
    /// A page that reaches below the oldest message held (or the first page) says whether older
    /// messages exist; a page that fills a gap between held messages says nothing about that.
    pub fn apply_history(&mut self, page: Vec<MessageEvent>, has_more: bool, me: &Username) {
        let page_low = page.first().map(|m| m.seq);
        let extends_down = match (page_low, self.lowest_seq()) {
            (None, _) => self.older_in_flight || !self.loaded,
            (Some(_), None) => true,
            (Some(low), Some(held)) => low < held,
        };
        if extends_down {
            self.has_more = has_more;
            self.older_in_flight = false;
        }
        for ev in page {
            self.delivered_high = self.delivered_high.max(ev.seq);
            self.insert(ev.into(), me);
        }
        self.loaded = true;
    }

    /// Records the server's `ack` for an outgoing message: it becomes a confirmed message at
    /// `seq` (unless the `message` frame got there first). Returns whether it was outgoing here.
    pub fn ack(&mut self, client_id: &ClientId, seq: u64, id: u64, ts: i64, me: &Username) -> bool {
        let Some(pos) = self.outgoing.iter().position(|o| &o.client_id == client_id) else {
            return false;
        };
        let out = self.outgoing.remove(pos);
        self.messages.entry(seq).or_insert_with(|| {
            Arc::new(Message {
                seq,
                id,
                author: me.clone(),
                text: out.text,
                ts,
                client_id: Some(out.client_id),
            })
        });
        true
    }

    /// Adds a message written here and not yet confirmed. A `client_id` already outgoing is
    /// ignored, so restoring the outbox twice cannot duplicate a row.
    pub fn push_outgoing(&mut self, out: Outgoing) {
        if !self.outgoing.iter().any(|o| o.client_id == out.client_id) {
            self.outgoing.push(out);
        }
    }

    /// Marks an outgoing message as refused. Returns whether it was outgoing here.
    pub fn fail(&mut self, client_id: &ClientId, reason: &str) -> bool {
        match self.outgoing.iter_mut().find(|o| &o.client_id == client_id) {
            Some(o) => {
                o.failed = Some(reason.into());
                true
            }
            None => false,
        }
    }

    /// Drops an outgoing message (the user discarded a failed one). Returns whether it was there.
    pub fn discard(&mut self, client_id: &ClientId) -> bool {
        let before = self.outgoing.len();
        self.outgoing.retain(|o| &o.client_id != client_id);
        self.outgoing.len() != before
    }

    /// Outgoing messages still waiting to be (re)sent, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Outgoing> {
        self.outgoing.iter().filter(|o| o.failed.is_none())
    }

    /// Adds a join/leave line after the newest delivered message.
    pub fn push_notice(&mut self, user: Username, online: bool) {
        self.next_notice += 1;
        self.notices.push(Notice {
            after_seq: self.delivered_high,
            n: self.next_notice,
            user,
            online,
        });
    }

    /// The rows to render, in order: confirmed messages by `seq` with the notices between them,
    /// then the outgoing messages. `me` is the author shown on outgoing rows.
    pub fn entries(&self, me: &Username) -> Vec<Entry> {
        let mut out =
            Vec::with_capacity(self.messages.len() + self.notices.len() + self.outgoing.len());
        let mut notices = self.notices.iter().peekable();
        for msg in self.messages.values() {
            while let Some(n) = notices.next_if(|n| n.after_seq < msg.seq) {
                out.push(Entry::Notice(n.clone()));
            }
            out.push(Entry::Message {
                seq: Some(msg.seq),
                author: msg.author.clone(),
                text: Arc::clone(&msg.text),
                ts: msg.ts,
                client_id: msg.client_id.clone(),
                delivery: Delivery::Sent,
            });
        }
        out.extend(notices.cloned().map(Entry::Notice));
        out.extend(self.outgoing.iter().map(|o| Entry::Message {
            seq: None,
            author: me.clone(),
            text: Arc::clone(&o.text),
            ts: o.created_ms,
            client_id: Some(o.client_id.clone()),
            delivery: match &o.failed {
                Some(why) => Delivery::Failed(Arc::clone(why)),
                None => Delivery::Pending,
            },
        }));
        out
    }

    /// Stores a confirmed message once; confirms an outgoing message of `me` with the same
    /// `client_id`. Returns whether the `seq` was new.
    fn insert(&mut self, msg: Message, me: &Username) -> bool {
        if &msg.author == me
            && let Some(cid) = &msg.client_id
        {
            self.outgoing.retain(|o| &o.client_id != cid);
        }
        if self.messages.contains_key(&msg.seq) {
            return false;
        }
        self.messages.insert(msg.seq, Arc::new(msg));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::RoomName;

    fn user(name: &str) -> Username {
        Username::parse(name).expect("valid test username")
    }

    fn cid(s: &str) -> ClientId {
        ClientId::parse(s).expect("valid test client id")
    }

    fn ev(seq: u64, author: &str, text: &str, client_id: Option<&str>) -> MessageEvent {
        MessageEvent {
            room: RoomName::parse("general").expect("valid room"),
            seq,
            id: 1000 + seq,
            author: user(author),
            text: text.into(),
            ts: 1_700_000_000_000 + i64::try_from(seq).expect("small"),
            client_id: client_id.map(cid),
        }
    }

    fn outgoing(id: &str, text: &str) -> Outgoing {
        Outgoing {
            client_id: cid(id),
            text: text.into(),
            created_ms: 5,
            failed: None,
        }
    }

    fn seqs(t: &Timeline, me: &Username) -> Vec<Option<u64>> {
        t.entries(me)
            .into_iter()
            .filter_map(|e| match e {
                Entry::Message { seq, .. } => Some(seq),
                Entry::Notice(_) => None,
            })
            .collect()
    }

    fn loaded(me: &Username, upto: u64) -> Timeline {
        let mut t = Timeline::default();
        t.expect_first_page();
        let page = (1..=upto).map(|s| ev(s, "bob", "x", None)).collect();
        t.apply_history(page, false, me);
        t
    }

    #[test]
    fn messages_are_ordered_by_seq_whatever_order_they_arrive_in() {
        let me = user("alice");
        let mut t = Timeline::default();
        t.insert_live(ev(3, "bob", "c", None), &me);
        t.insert_live(ev(1, "bob", "a", None), &me);
        t.insert_live(ev(2, "bob", "b", None), &me);
        assert_eq!(seqs(&t, &me), vec![Some(1), Some(2), Some(3)]);
    }

    #[test]
    fn a_message_delivered_twice_is_shown_once() {
        let me = user("alice");
        let mut t = loaded(&me, 2);
        let first = t.insert_live(ev(3, "bob", "c", None), &me);
        let again = t.insert_live(ev(3, "bob", "c", None), &me);
        t.apply_history(
            vec![ev(2, "bob", "x", None), ev(3, "bob", "c", None)],
            true,
            &me,
        );
        assert!(first.is_new);
        assert!(!again.is_new);
        assert_eq!(seqs(&t, &me), vec![Some(1), Some(2), Some(3)]);
    }

    #[test]
    fn an_outgoing_message_is_confirmed_once_by_ack_then_message() {
        let me = user("alice");
        let mut t = loaded(&me, 1);
        t.push_outgoing(outgoing("c1", "hello"));
        assert_eq!(seqs(&t, &me), vec![Some(1), None]);
        assert!(t.ack(&cid("c1"), 2, 99, 7, &me));
        t.insert_live(ev(2, "alice", "hello", Some("c1")), &me);
        let entries = t.entries(&me);
        assert_eq!(entries.len(), 2);
        assert!(matches!(
            &entries[1],
            Entry::Message { seq: Some(2), delivery: Delivery::Sent, text, .. } if &**text == "hello"
        ));
    }

    #[test]
    fn an_outgoing_message_is_confirmed_once_by_message_then_ack() {
        let me = user("alice");
        let mut t = loaded(&me, 1);
        t.push_outgoing(outgoing("c1", "hello"));
        t.insert_live(ev(2, "alice", "hello", Some("c1")), &me);
        assert!(!t.ack(&cid("c1"), 2, 99, 7, &me), "already confirmed");
        assert_eq!(seqs(&t, &me), vec![Some(1), Some(2)]);
    }

    #[test]
    fn another_users_message_cannot_confirm_my_outgoing_one() {
        let me = user("alice");
        let mut t = loaded(&me, 1);
        t.push_outgoing(outgoing("c1", "mine"));
        t.insert_live(ev(2, "mallory", "spoof", Some("c1")), &me);
        assert_eq!(seqs(&t, &me), vec![Some(1), Some(2), None]);
    }

    #[test]
    fn acks_do_not_move_the_catch_up_position() {
        let me = user("alice");
        let mut t = loaded(&me, 5);
        t.push_outgoing(outgoing("c1", "hi"));
        // Our ack for seq 7 overtakes somebody's seq 6.
        t.ack(&cid("c1"), 7, 1, 1, &me);
        assert_eq!(t.since(), Some(5));
        let ins = t.insert_live(ev(6, "bob", "b", None), &me);
        assert!(ins.gaps.is_empty());
        assert_eq!(t.since(), Some(6));
    }

    #[test]
    fn a_skipped_seq_asks_for_the_missing_range() {
        let me = user("alice");
        let mut t = loaded(&me, 10);
        let ins = t.insert_live(ev(14, "bob", "x", None), &me);
        assert_eq!(
            ins.gaps,
            vec![HistoryRange {
                before: 14,
                limit: 3
            }]
        );
        // Filling the gap does not touch has_more nor the in-flight flag.
        t.apply_history(
            vec![
                ev(11, "bob", "x", None),
                ev(12, "bob", "x", None),
                ev(13, "bob", "x", None),
            ],
            true,
            &me,
        );
        assert_eq!(t.history_state(), HistoryState::Beginning);
        assert_eq!(t.len(), 14);
    }

    #[test]
    fn gap_requests_are_split_into_pages_and_cover_exactly_the_hole() {
        assert!(gap_requests(10, 11).is_empty());
        assert_eq!(
            gap_requests(10, 12),
            vec![HistoryRange {
                before: 12,
                limit: 1
            }]
        );
        let reqs = gap_requests(10, 121);
        assert_eq!(
            reqs,
            vec![
                HistoryRange {
                    before: 121,
                    limit: 50
                },
                HistoryRange {
                    before: 71,
                    limit: 50
                },
                HistoryRange {
                    before: 21,
                    limit: 10
                },
            ]
        );
        let covered: u64 = reqs.iter().map(|r| u64::from(r.limit)).sum();
        assert_eq!(covered, 110);
    }

    #[test]
    fn older_pages_load_until_the_beginning() {
        let me = user("alice");
        let mut t = Timeline::default();
        assert_eq!(t.history_state(), HistoryState::NotLoaded);
        t.expect_first_page();
        assert_eq!(t.history_state(), HistoryState::Loading);
        t.apply_history(
            (51..=100).map(|s| ev(s, "bob", "x", None)).collect(),
            true,
            &me,
        );
        assert_eq!(t.history_state(), HistoryState::More);
        assert_eq!(t.request_older(), Some(51));
        assert_eq!(t.request_older(), None, "one page at a time");
        t.apply_history(
            (1..=50).map(|s| ev(s, "bob", "x", None)).collect(),
            false,
            &me,
        );
        assert_eq!(t.history_state(), HistoryState::Beginning);
        assert_eq!(t.request_older(), None);
        assert_eq!(t.lowest_seq(), Some(1));
        assert_eq!(t.since(), Some(100));
    }

    #[test]
    fn an_empty_room_is_at_its_beginning() {
        let me = user("alice");
        let mut t = Timeline::default();
        t.expect_first_page();
        t.apply_history(Vec::new(), false, &me);
        assert_eq!(t.history_state(), HistoryState::Beginning);
        assert_eq!(t.since(), Some(0));
    }

    #[test]
    fn failed_messages_are_not_pending_and_can_be_discarded() {
        let me = user("alice");
        let mut t = loaded(&me, 0);
        t.push_outgoing(outgoing("c1", "a"));
        t.push_outgoing(outgoing("c2", "b"));
        t.push_outgoing(outgoing("c1", "a"));
        assert!(t.fail(&cid("c1"), "too long"));
        let pending: Vec<_> = t
            .pending()
            .map(|o| o.client_id.as_str().to_owned())
            .collect();
        assert_eq!(pending, vec!["c2"]);
        let states: Vec<_> = t
            .entries(&me)
            .into_iter()
            .map(|e| match e {
                Entry::Message { delivery, .. } => delivery.as_str(),
                Entry::Notice(_) => "notice",
            })
            .collect();
        assert_eq!(states, vec!["failed", "pending"]);
        assert!(t.discard(&cid("c1")));
        assert_eq!(t.entries(&me).len(), 1);
    }

    #[test]
    fn notices_stay_where_they_happened() {
        let me = user("alice");
        let mut t = loaded(&me, 2);
        t.push_notice(user("carol"), true);
        t.insert_live(ev(3, "bob", "x", None), &me);
        t.push_notice(user("carol"), false);
        let keys: Vec<_> = t.entries(&me).iter().map(Entry::key).collect();
        assert_eq!(keys, vec!["m1", "m2", "n1", "m3", "n2"]);
    }

    #[test]
    fn keys_change_when_a_pending_row_fails_or_is_confirmed() {
        let me = user("alice");
        let mut t = loaded(&me, 0);
        t.push_outgoing(outgoing("c1", "a"));
        let k1 = t.entries(&me)[0].key();
        t.fail(&cid("c1"), "no");
        let k2 = t.entries(&me)[0].key();
        assert_ne!(k1, k2);
        t.insert_live(ev(1, "alice", "a", Some("c1")), &me);
        assert_eq!(t.entries(&me)[0].key(), "m1");
    }
}
