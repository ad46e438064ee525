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
//! # Gaps
//! Every `seq` between the oldest message held and the highest one known to exist must be shown.
//! A `seq` that skips ahead, or a join whose catch-up (or first page) stops short of the
//! `last_seq` its `joined` announced, asks for the missing range with `history` requests (their
//! count is kept, since `history` answers carry no request id). Whatever is still missing once
//! every request was answered (a page without those messages, or an `error` frame instead of a
//! page) is a [`Gap`]: the list shows it as a row with a count and a retry action, never skips
//! it silently. Each new `joined` asks again for every gap.
//!
//! This module knows nothing about the browser, signals or sockets: it is plain data tested
//! natively. [`crate::chat`] holds one `Timeline` per room and turns frames into calls here.

use std::collections::BTreeMap;
use std::sync::Arc;

use shared::{ClientId, DisplayName, HISTORY_PAGE, MessageEvent, Username};

/// The logged-in user as the timeline needs them: their handle (which decides whose messages
/// confirm outgoing ones) and the display name shown on their rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    /// The login handle.
    pub user: Username,
    /// The name shown to others.
    pub name: DisplayName,
}

impl Me {
    /// A user shown by `name`.
    pub fn new(user: Username, name: DisplayName) -> Self {
        Self { user, name }
    }
}

impl From<Username> for Me {
    /// A user whose display name is their handle (the default for accounts that chose none).
    fn from(user: Username) -> Self {
        let name = DisplayName::from(&user);
        Self { user, name }
    }
}

/// A message the server stored, as the timeline keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its position in the room (the timeline's key).
    pub seq: u64,
    /// Its server-wide id.
    pub id: u64,
    /// Who wrote it (their handle).
    pub author: Username,
    /// Their display name.
    pub author_name: DisplayName,
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
            author_name: ev.author_name,
            text: ev.text.into(),
            ts: ev.ts,
            client_id: ev.client_id,
        }
    }
}

/// Transient refusals (`internal`, `rate_limited`) in a row after which an outgoing message is
/// no longer resent automatically but shown as failed, with a retry action.
pub const MAX_TRANSIENT_ERRORS: u32 = 3;

/// A message this client sent (or will send) that the server has not confirmed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The id that makes resending it idempotent.
    pub client_id: ClientId,
    /// The text, already checked with [`shared::MessageText::parse`].
    pub text: Arc<str>,
    /// When the user sent it (ms since the Unix epoch), shown until the server's time is known.
    pub created_ms: i64,
    /// Why the server refused it, once it did. A failed message is not resent until the user
    /// retries it (when its failure allows that).
    pub failed: Option<Failure>,
    /// Transient refusals since it was written or last retried.
    pub transient_errors: u32,
}

impl Outgoing {
    /// A pending message, never refused yet.
    pub fn new(client_id: ClientId, text: Arc<str>, created_ms: i64) -> Self {
        Self {
            client_id,
            text,
            created_ms,
            failed: None,
            transient_errors: 0,
        }
    }
}

/// Why the server refused an outgoing message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The server's explanation, for people.
    pub reason: Arc<str>,
    /// Sending it again with the same `client_id` may succeed (the server failed, or asked to
    /// slow down), so the user is offered a retry. Otherwise only discarding it is offered.
    pub retryable: bool,
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
    /// Refused by the server.
    Failed {
        /// The server's reason.
        reason: Arc<str>,
        /// Whether a retry is offered.
        retryable: bool,
    },
}

impl Delivery {
    /// The `data-state` value: `sent`, `pending` or `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Delivery::Sent => "sent",
            Delivery::Pending => "pending",
            Delivery::Failed { .. } => "failed",
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
        /// Who wrote it (their handle).
        author: Username,
        /// Their display name (what the list shows).
        author_name: DisplayName,
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
    /// Messages known to exist that are not shown.
    Gap(Gap),
}

/// A run of missing messages: `seq` `from..=to` exist on the server but are not held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The first missing `seq`.
    pub from: u64,
    /// The last missing `seq`.
    pub to: u64,
    /// `history` requests are unanswered, so it may still be filled; otherwise it could not be
    /// (the list then offers to ask again).
    pub loading: bool,
}

impl Gap {
    /// How many messages are missing.
    pub fn count(&self) -> u64 {
        (self.to - self.from).saturating_add(1)
    }
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
            Entry::Gap(g) => format!(
                "g{}-{}-{}",
                g.from,
                g.to,
                if g.loading { "loading" } else { "failed" }
            ),
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

/// Most `history` requests sent at once for one hole. A larger hole is filled newest first, this
/// many pages at a time: the rest stays shown as a gap, whose retry asks for the next pages.
pub const MAX_FILL_PAGES: usize = 20;

/// The requests that fetch every `seq` strictly between `high` and `seq`, newest page first,
/// each at most [`HISTORY_PAGE`] long (the server's maximum), at most [`MAX_FILL_PAGES`] of them.
pub fn gap_requests(high: u64, seq: u64) -> Vec<HistoryRange> {
    let first_missing = high.saturating_add(1);
    let mut before = seq;
    let mut out = Vec::new();
    while before > first_missing && out.len() < MAX_FILL_PAGES {
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
/// `join { since }` cannot skip a message that was still on its way when an ack overtook it;
/// every `history` request this type returns (and so counts in `history_in_flight`) is sent by
/// the caller, and gets exactly one answer, a page or an `error` frame.
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
    /// Highest `seq` the server said exists (`joined.last_seq`).
    expected_high: u64,
    /// The last `joined` announced messages above `delivered_high` that its catch-up (or first
    /// page) has not finished delivering: they are on their way, not missing.
    catching_up: bool,
    /// `history` requests (older pages, gap fills) sent on this connection and not answered.
    history_in_flight: u32,
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

    /// Forgets requests that a dropped connection will never answer. Gaps whose filling was
    /// under way now show as not loaded; the next [`Timeline::joined`] asks for them again.
    pub fn connection_lost(&mut self) {
        self.older_in_flight = false;
        self.catching_up = false;
        self.history_in_flight = 0;
    }

    /// Whether a join's catch-up may still be delivering (an `error` for the room without a
    /// `client_id` is then the catch-up's failure, see [`Timeline::catch_up_failed`]).
    pub fn is_catching_up(&self) -> bool {
        self.catching_up
    }

    /// Records `joined`: messages up to `last_seq` exist, and those above `delivered_high`
    /// follow (the catch-up of a `join { since }`, or the first page). Returns the requests that
    /// ask again for every gap (left by an earlier connection, or not filled before).
    pub fn joined(&mut self, last_seq: u64) -> Vec<HistoryRange> {
        self.expected_high = self.expected_high.max(last_seq);
        self.catching_up = last_seq > self.delivered_high;
        let ranges = self
            .gaps()
            .iter()
            .flat_map(|g| gap_requests(g.from - 1, g.to.saturating_add(1)))
            .collect();
        self.fills(ranges)
    }

    /// The catch-up ended with an `error` frame: whatever it did not deliver is asked for with
    /// `history` (and becomes a shown gap if that fails too).
    pub fn catch_up_failed(&mut self) -> Vec<HistoryRange> {
        if !self.catching_up {
            return Vec::new();
        }
        self.catching_up = false;
        self.fill_tail()
    }

    /// A `history` request was answered with an `error` frame. Once no request is left
    /// unanswered, what is still missing shows as a gap, and older messages can be asked again.
    pub fn history_failed(&mut self) {
        self.history_in_flight = self.history_in_flight.saturating_sub(1);
        if self.history_in_flight == 0 {
            self.older_in_flight = false;
        }
    }

    /// Asks again for the missing messages of the gap overlapping `from..=to` (the user pressed
    /// its retry). Returns the requests, none if no such gap is shown.
    pub fn refill(&mut self, from: u64, to: u64) -> Vec<HistoryRange> {
        let Some(gap) = self
            .gaps()
            .into_iter()
            .find(|g| g.from <= to && from <= g.to)
        else {
            return Vec::new();
        };
        self.fills(gap_requests(gap.from - 1, gap.to.saturating_add(1)))
    }

    /// The gaps, oldest first: runs of `seq` between the oldest message held and the highest one
    /// known to exist (not counting a catch-up still on its way) that are not held.
    pub fn gaps(&self) -> Vec<Gap> {
        if !self.loaded {
            return Vec::new();
        }
        let top = self.known_high();
        let loading = self.history_in_flight > 0;
        let mut out = Vec::new();
        // Below the oldest message held are older messages (loaded by scrolling), not gaps; if
        // nothing at or below `top` is held, everything up to `top` is missing.
        let mut next = self
            .messages
            .keys()
            .next()
            .copied()
            .filter(|&low| low <= top)
            .unwrap_or(1);
        for &seq in self.messages.keys() {
            if seq > top {
                break;
            }
            if seq > next {
                out.push(Gap {
                    from: next,
                    to: seq - 1,
                    loading,
                });
            }
            next = next.max(seq.saturating_add(1));
        }
        if next <= top {
            out.push(Gap {
                from: next,
                to: top,
                loading,
            });
        }
        out
    }

    /// The highest `seq` known to exist that is not still coming by a catch-up.
    fn known_high(&self) -> u64 {
        if self.catching_up {
            self.delivered_high
        } else {
            self.delivered_high.max(self.expected_high)
        }
    }

    /// Counts `ranges` as sent and returns them.
    fn fills(&mut self, ranges: Vec<HistoryRange>) -> Vec<HistoryRange> {
        let n = u32::try_from(ranges.len()).unwrap_or(u32::MAX);
        self.history_in_flight = self.history_in_flight.saturating_add(n);
        ranges
    }

    /// The requests for what a finished catch-up did not deliver up to `expected_high`.
    fn fill_tail(&mut self) -> Vec<HistoryRange> {
        if self.delivered_high < self.expected_high {
            let end = self.expected_high.saturating_add(1);
            self.fills(gap_requests(self.delivered_high, end))
        } else {
            Vec::new()
        }
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
        self.history_in_flight = self.history_in_flight.saturating_add(1);
        Some(before)
    }

    /// Adds a live (or catch-up) `message` frame. `me` is this client's user: only a message by
    /// `me` can confirm an outgoing one, since other users can see (and could reuse) client ids.
    pub fn insert_live(&mut self, ev: MessageEvent, me: &Me) -> Inserted {
        let seq = ev.seq;
        // Messages up to `known_high` are held, asked for, or shown as a gap already.
        let high = self.known_high();
        let gaps = if self.loaded && seq > high.saturating_add(1) {
            self.fills(gap_requests(high, seq))
        } else {
            Vec::new()
        };
        let is_new = self.insert(ev.into(), me);
        self.delivered_high = self.delivered_high.max(seq);
        if self.delivered_high >= self.expected_high {
            // Frames arrive in `seq` order: whatever the catch-up skipped was just asked for.
            self.catching_up = false;
        }
        Inserted { is_new, gaps }
    }

    /// Adds a `history` page (messages in ascending `seq`) whose request is not known: the first
    /// page answers the join, any later one a `history` request. See [`Timeline::apply_page`].
    pub fn apply_history(
        &mut self,
        page: Vec<MessageEvent>,
        has_more: bool,
        me: &Me,
    ) -> Vec<HistoryRange> {
        let answers_join = !self.loaded;
        self.apply_page(page, has_more, answers_join, me)
    }

    /// Adds a `history` page (messages in ascending `seq`); `answers_join` says whether it is the
    /// answer to a `join` (the first page, or the newest page instead of a catch-up) rather than
    /// to a `history` request. Returns the requests for what a catch-up it ends did not deliver,
    /// if anything.
    ///
    /// A page that reaches below the oldest message held (or the first page) says whether older
    /// messages exist; a page that fills a gap between held messages says nothing about that.
    /// A page also ends any catch-up, which the server writes before it answers later requests
    /// (the first page is the join's own answer).
    pub fn apply_page(
        &mut self,
        page: Vec<MessageEvent>,
        has_more: bool,
        answers_join: bool,
        me: &Me,
    ) -> Vec<HistoryRange> {
        if !answers_join {
            self.history_in_flight = self.history_in_flight.saturating_sub(1);
        }
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
        if self.history_in_flight == 0 {
            // Every request was answered: none for older messages can be on its way.
            self.older_in_flight = false;
        }
        for ev in page {
            self.delivered_high = self.delivered_high.max(ev.seq);
            self.insert(ev.into(), me);
        }
        self.loaded = true;
        if self.catching_up {
            self.catching_up = false;
            let tail = self.fill_tail();
            if tail.is_empty() {
                // The server answered a join from far behind with its newest page instead of a
                // catch-up: ask for the hole below that page, nearest first (bounded).
                let ranges = self
                    .gaps()
                    .iter()
                    .flat_map(|g| gap_requests(g.from - 1, g.to.saturating_add(1)))
                    .take(MAX_FILL_PAGES)
                    .collect();
                self.fills(ranges)
            } else {
                tail
            }
        } else {
            Vec::new()
        }
    }

    /// Records the server's `ack` for an outgoing message: it becomes a confirmed message at
    /// `seq` (unless the `message` frame got there first). Returns whether it was outgoing here.
    pub fn ack(&mut self, client_id: &ClientId, seq: u64, id: u64, ts: i64, me: &Me) -> bool {
        let Some(pos) = self.outgoing.iter().position(|o| &o.client_id == client_id) else {
            return false;
        };
        let out = self.outgoing.remove(pos);
        self.messages.entry(seq).or_insert_with(|| {
            Arc::new(Message {
                seq,
                id,
                author: me.user.clone(),
                author_name: me.name.clone(),
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

    /// Marks an outgoing message as refused; `retryable` says whether sending it again may
    /// succeed. Returns whether it was outgoing here.
    pub fn fail(&mut self, client_id: &ClientId, reason: &str, retryable: bool) -> bool {
        match self.outgoing.iter_mut().find(|o| &o.client_id == client_id) {
            Some(o) => {
                o.failed = Some(Failure {
                    reason: reason.into(),
                    retryable,
                });
                true
            }
            None => false,
        }
    }

    /// Records a transient refusal (the server failed, or asked to slow down): the message stays
    /// pending, to be resent automatically, until the [`MAX_TRANSIENT_ERRORS`]th in a row, which
    /// marks it failed with a retry. Returns whether it was outgoing (and not failed) here.
    pub fn transient_error(&mut self, client_id: &ClientId, reason: &str) -> bool {
        let Some(o) = self
            .outgoing
            .iter_mut()
            .find(|o| &o.client_id == client_id && o.failed.is_none())
        else {
            return false;
        };
        o.transient_errors = o.transient_errors.saturating_add(1);
        if o.transient_errors >= MAX_TRANSIENT_ERRORS {
            o.failed = Some(Failure {
                reason: reason.into(),
                retryable: true,
            });
        }
        true
    }

    /// Puts a retryable failed message back to pending, with the same `client_id` (so that if
    /// the failed attempt was stored after all, the server answers the resend with that message
    /// instead of storing it twice). Returns it, to be sent; `None` if there is no such failed
    /// message or its failure is not retryable.
    pub fn retry(&mut self, client_id: &ClientId) -> Option<&Outgoing> {
        let o = self.outgoing.iter_mut().find(|o| {
            &o.client_id == client_id && o.failed.as_ref().is_some_and(|f| f.retryable)
        })?;
        o.failed = None;
        o.transient_errors = 0;
        Some(o)
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

    /// Outgoing messages that may still be sent, oldest first: the pending ones and the failed
    /// ones that can be retried (what the outbox keeps).
    pub fn resendable(&self) -> impl Iterator<Item = &Outgoing> {
        self.outgoing
            .iter()
            .filter(|o| o.failed.as_ref().is_none_or(|f| f.retryable))
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

    /// The rows to render, in order: confirmed messages by `seq` with the gaps and notices
    /// between them, then the outgoing messages. `me` is the author shown on outgoing rows.
    pub fn entries(&self, me: &Me) -> Vec<Entry> {
        let gaps = self.gaps();
        let mut out = Vec::with_capacity(
            self.messages.len() + self.notices.len() + self.outgoing.len() + gaps.len(),
        );
        let mut notices = self.notices.iter().peekable();
        let mut gaps = gaps.into_iter().peekable();
        for msg in self.messages.values() {
            while let Some(g) = gaps.next_if(|g| g.from < msg.seq) {
                while let Some(n) = notices.next_if(|n| n.after_seq < g.from) {
                    out.push(Entry::Notice(n.clone()));
                }
                out.push(Entry::Gap(g));
            }
            while let Some(n) = notices.next_if(|n| n.after_seq < msg.seq) {
                out.push(Entry::Notice(n.clone()));
            }
            out.push(Entry::Message {
                seq: Some(msg.seq),
                author: msg.author.clone(),
                author_name: msg.author_name.clone(),
                text: Arc::clone(&msg.text),
                ts: msg.ts,
                client_id: msg.client_id.clone(),
                delivery: Delivery::Sent,
            });
        }
        for g in gaps {
            while let Some(n) = notices.next_if(|n| n.after_seq < g.from) {
                out.push(Entry::Notice(n.clone()));
            }
            out.push(Entry::Gap(g));
        }
        out.extend(notices.cloned().map(Entry::Notice));
        out.extend(self.outgoing.iter().map(|o| Entry::Message {
            seq: None,
            author: me.user.clone(),
            author_name: me.name.clone(),
            text: Arc::clone(&o.text),
            ts: o.created_ms,
            client_id: Some(o.client_id.clone()),
            delivery: match &o.failed {
                Some(f) => Delivery::Failed {
                    reason: Arc::clone(&f.reason),
                    retryable: f.retryable,
                },
                None => Delivery::Pending,
            },
        }));
        out
    }

    /// Stores a confirmed message once; confirms an outgoing message of `me` with the same
    /// `client_id`. Returns whether the `seq` was new.
    fn insert(&mut self, msg: Message, me: &Me) -> bool {
        if msg.author == me.user
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

    fn user(name: &str) -> Username {
        Username::parse(name).expect("valid test username")
    }

    fn me(name: &str) -> Me {
        Me::from(user(name))
    }

    fn cid(s: &str) -> ClientId {
        ClientId::parse(s).expect("valid test client id")
    }

    fn ev(seq: u64, author: &str, text: &str, client_id: Option<&str>) -> MessageEvent {
        MessageEvent {
            room: shared::DEFAULT_ROOM_ID,
            seq,
            id: 1000 + seq,
            author: user(author),
            author_name: DisplayName::parse(format!("{author} name")).expect("valid name"),
            text: text.into(),
            ts: 1_700_000_000_000 + i64::try_from(seq).expect("small"),
            client_id: client_id.map(cid),
        }
    }

    fn outgoing(id: &str, text: &str) -> Outgoing {
        Outgoing::new(cid(id), text.into(), 5)
    }

    fn seqs(t: &Timeline, me: &Me) -> Vec<Option<u64>> {
        t.entries(me)
            .into_iter()
            .filter_map(|e| match e {
                Entry::Message { seq, .. } => Some(seq),
                Entry::Notice(_) | Entry::Gap(_) => None,
            })
            .collect()
    }

    fn loaded(me: &Me, upto: u64) -> Timeline {
        let mut t = Timeline::default();
        t.expect_first_page();
        let page = (1..=upto).map(|s| ev(s, "bob", "x", None)).collect();
        t.apply_history(page, false, me);
        t
    }

    #[test]
    fn messages_are_ordered_by_seq_whatever_order_they_arrive_in() {
        let me = me("alice");
        let mut t = Timeline::default();
        t.insert_live(ev(3, "bob", "c", None), &me);
        t.insert_live(ev(1, "bob", "a", None), &me);
        t.insert_live(ev(2, "bob", "b", None), &me);
        assert_eq!(seqs(&t, &me), vec![Some(1), Some(2), Some(3)]);
    }

    #[test]
    fn a_message_delivered_twice_is_shown_once() {
        let me = me("alice");
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
        let me = me("alice");
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
        let me = me("alice");
        let mut t = loaded(&me, 1);
        t.push_outgoing(outgoing("c1", "hello"));
        t.insert_live(ev(2, "alice", "hello", Some("c1")), &me);
        assert!(!t.ack(&cid("c1"), 2, 99, 7, &me), "already confirmed");
        assert_eq!(seqs(&t, &me), vec![Some(1), Some(2)]);
    }

    #[test]
    fn another_users_message_cannot_confirm_my_outgoing_one() {
        let me = me("alice");
        let mut t = loaded(&me, 1);
        t.push_outgoing(outgoing("c1", "mine"));
        t.insert_live(ev(2, "mallory", "spoof", Some("c1")), &me);
        assert_eq!(seqs(&t, &me), vec![Some(1), Some(2), None]);
    }

    #[test]
    fn acks_do_not_move_the_catch_up_position() {
        let me = me("alice");
        let mut t = loaded(&me, 5);
        t.push_outgoing(outgoing("c1", "hi"));
        // Our ack for seq 7 overtakes somebody's seq 6.
        t.ack(&cid("c1"), 7, 1, 1, &me);
        assert_eq!(t.since(), Some(5));
        let ins = t.insert_live(ev(6, "bob", "b", None), &me);
        assert!(ins.gaps.is_empty());
        assert_eq!(t.since(), Some(6));
        assert!(
            t.gaps().is_empty(),
            "acked messages above the delivered ones are no gap"
        );
    }

    #[test]
    fn a_skipped_seq_asks_for_the_missing_range() {
        let me = me("alice");
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
        // A huge hole (or an absurd seq from the wire) is asked for a bounded number of pages.
        let huge = gap_requests(0, u64::MAX);
        assert_eq!(huge.len(), MAX_FILL_PAGES);
        assert_eq!(huge[0].before, u64::MAX);
    }

    #[test]
    fn a_hole_larger_than_the_fill_limit_leaves_the_rest_shown() {
        let me = me("alice");
        let mut t = loaded(&me, 1);
        let far = 2 + u64::from(HISTORY_PAGE) * (MAX_FILL_PAGES as u64 + 1);
        let ins = t.insert_live(ev(far, "bob", "x", None), &me);
        assert_eq!(ins.gaps.len(), MAX_FILL_PAGES);
        for r in ins.gaps {
            let low = r.before - u64::from(r.limit);
            t.apply_history(page(low..r.before), true, &me);
        }
        // The oldest page of the hole was not asked for: it stays a gap, and retry asks for it.
        let rest = gap(2, 1 + u64::from(HISTORY_PAGE), false);
        assert_eq!(t.gaps(), vec![rest]);
        assert_eq!(
            t.refill(rest.from, rest.to),
            vec![range(rest.to + 1, HISTORY_PAGE)]
        );
    }

    #[test]
    fn older_pages_load_until_the_beginning() {
        let me = me("alice");
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
        let me = me("alice");
        let mut t = Timeline::default();
        t.expect_first_page();
        t.apply_history(Vec::new(), false, &me);
        assert_eq!(t.history_state(), HistoryState::Beginning);
        assert_eq!(t.since(), Some(0));
    }

    #[test]
    fn failed_messages_are_not_pending_and_can_be_discarded() {
        let me = me("alice");
        let mut t = loaded(&me, 0);
        t.push_outgoing(outgoing("c1", "a"));
        t.push_outgoing(outgoing("c2", "b"));
        t.push_outgoing(outgoing("c1", "a"));
        assert!(t.fail(&cid("c1"), "too long", false));
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
                Entry::Gap(_) => "gap",
            })
            .collect();
        assert_eq!(states, vec!["failed", "pending"]);
        assert!(t.discard(&cid("c1")));
        assert_eq!(t.entries(&me).len(), 1);
    }

    #[test]
    fn notices_stay_where_they_happened() {
        let me = me("alice");
        let mut t = loaded(&me, 2);
        t.push_notice(user("carol"), true);
        t.insert_live(ev(3, "bob", "x", None), &me);
        t.push_notice(user("carol"), false);
        let keys: Vec<_> = t.entries(&me).iter().map(Entry::key).collect();
        assert_eq!(keys, vec!["m1", "m2", "n1", "m3", "n2"]);
    }

    #[test]
    fn keys_change_when_a_pending_row_fails_or_is_confirmed() {
        let me = me("alice");
        let mut t = loaded(&me, 0);
        t.push_outgoing(outgoing("c1", "a"));
        let k1 = t.entries(&me)[0].key();
        t.fail(&cid("c1"), "no", false);
        let k2 = t.entries(&me)[0].key();
        assert_ne!(k1, k2);
        t.insert_live(ev(1, "alice", "a", Some("c1")), &me);
        assert_eq!(t.entries(&me)[0].key(), "m1");
    }

    fn gap(from: u64, to: u64, loading: bool) -> Gap {
        Gap { from, to, loading }
    }

    fn range(before: u64, limit: u32) -> HistoryRange {
        HistoryRange { before, limit }
    }

    fn page(seqs: impl IntoIterator<Item = u64>) -> Vec<MessageEvent> {
        seqs.into_iter().map(|s| ev(s, "bob", "x", None)).collect()
    }

    #[test]
    fn a_gap_the_history_answer_does_not_fill_is_shown_and_can_be_asked_again() {
        let me = me("alice");
        let mut t = loaded(&me, 3);
        let ins = t.insert_live(ev(7, "bob", "x", None), &me);
        assert_eq!(ins.gaps, vec![range(7, 3)]);
        assert_eq!(
            t.gaps(),
            vec![gap(4, 6, true)],
            "shown as loading meanwhile"
        );
        // The answer holds only seq 4.
        assert!(t.apply_history(page([4]), true, &me).is_empty());
        assert_eq!(t.gaps(), vec![gap(5, 6, false)]);
        assert_eq!(t.gaps()[0].count(), 2);
        let keys: Vec<_> = t.entries(&me).iter().map(Entry::key).collect();
        assert_eq!(keys, vec!["m1", "m2", "m3", "m4", "g5-6-failed", "m7"]);
        // Asking again requests exactly the hole; a stale range asks nothing.
        assert!(t.refill(1, 3).is_empty());
        assert_eq!(t.refill(5, 6), vec![range(7, 2)]);
        assert_eq!(t.gaps(), vec![gap(5, 6, true)]);
        t.apply_history(page([5, 6]), true, &me);
        assert!(t.gaps().is_empty());
        assert_eq!(t.len(), 7);
    }

    #[test]
    fn an_error_answering_a_gap_request_leaves_the_gap_shown() {
        let me = me("alice");
        let mut t = loaded(&me, 3);
        t.insert_live(ev(6, "bob", "x", None), &me);
        assert_eq!(t.gaps(), vec![gap(4, 5, true)]);
        t.history_failed();
        assert_eq!(t.gaps(), vec![gap(4, 5, false)]);
        assert_eq!(seqs(&t, &me), vec![Some(1), Some(2), Some(3), Some(6)]);
    }

    #[test]
    fn a_gap_stays_loading_until_every_request_is_answered() {
        let me = me("alice");
        let mut t = loaded(&me, 3);
        t.insert_live(ev(5, "bob", "x", None), &me);
        t.insert_live(ev(8, "bob", "x", None), &me);
        assert_eq!(t.gaps(), vec![gap(4, 4, true), gap(6, 7, true)]);
        t.apply_history(page([4]), true, &me);
        assert_eq!(t.gaps(), vec![gap(6, 7, true)], "one request is unanswered");
        t.history_failed();
        assert_eq!(t.gaps(), vec![gap(6, 7, false)]);
    }

    #[test]
    fn a_catch_up_is_not_a_gap_while_it_arrives() {
        let me = me("alice");
        let mut t = loaded(&me, 5);
        t.connection_lost();
        assert!(t.joined(10).is_empty());
        assert!(t.is_catching_up());
        t.insert_live(ev(6, "bob", "x", None), &me);
        assert!(t.gaps().is_empty());
        for s in 7..=10 {
            assert!(t.insert_live(ev(s, "bob", "x", None), &me).gaps.is_empty());
        }
        assert!(!t.is_catching_up());
        assert!(t.gaps().is_empty());
        assert_eq!(t.since(), Some(10));
    }

    #[test]
    fn a_catch_up_that_stops_short_is_a_gap_once_a_page_shows_it() {
        let me = me("alice");
        let mut t = loaded(&me, 5);
        t.connection_lost();
        t.joined(10);
        t.insert_live(ev(6, "bob", "x", None), &me);
        t.insert_live(ev(7, "bob", "x", None), &me);
        // A page answers a later request: the catch-up is over, 8..=10 did not come.
        assert_eq!(t.apply_history(Vec::new(), false, &me), vec![range(11, 3)]);
        assert_eq!(t.gaps(), vec![gap(8, 10, true)]);
        t.history_failed();
        assert_eq!(t.gaps(), vec![gap(8, 10, false)]);
        // A live message after it does not ask for the same range twice.
        assert!(t.insert_live(ev(11, "bob", "x", None), &me).gaps.is_empty());
        assert_eq!(t.gaps(), vec![gap(8, 10, false)]);
    }

    #[test]
    fn a_live_message_past_a_short_catch_up_asks_for_the_rest_once() {
        let me = me("alice");
        let mut t = loaded(&me, 5);
        t.connection_lost();
        t.joined(10);
        t.insert_live(ev(6, "bob", "x", None), &me);
        let ins = t.insert_live(ev(11, "bob", "x", None), &me);
        assert_eq!(ins.gaps, vec![range(11, 4)]);
        assert!(!t.is_catching_up());
        assert!(t.apply_history(page(7..=10), true, &me).is_empty());
        assert!(t.gaps().is_empty());
    }

    #[test]
    fn a_catch_up_error_asks_history_for_the_rest() {
        let me = me("alice");
        let mut t = loaded(&me, 5);
        t.connection_lost();
        t.joined(10);
        t.insert_live(ev(6, "bob", "x", None), &me);
        assert_eq!(t.catch_up_failed(), vec![range(11, 4)]);
        assert!(t.catch_up_failed().is_empty(), "only once");
        t.apply_history(page(7..=10), true, &me);
        assert!(t.gaps().is_empty());
        assert_eq!(t.since(), Some(10));
    }

    #[test]
    fn a_first_page_short_of_last_seq_leaves_a_gap() {
        let me = me("alice");
        let mut t = Timeline::default();
        t.expect_first_page();
        assert!(t.joined(10).is_empty());
        let fills = t.apply_history(page(1..=8), false, &me);
        assert_eq!(fills, vec![range(11, 2)]);
        assert_eq!(t.gaps(), vec![gap(9, 10, true)]);
        assert_eq!(t.history_state(), HistoryState::Beginning);
    }

    #[test]
    fn gaps_are_asked_for_again_after_a_reconnect() {
        let me = me("alice");
        let mut t = loaded(&me, 3);
        t.insert_live(ev(6, "bob", "x", None), &me);
        t.connection_lost();
        assert_eq!(t.gaps(), vec![gap(4, 5, false)]);
        assert_eq!(t.joined(6), vec![range(6, 2)]);
        assert_eq!(t.gaps(), vec![gap(4, 5, true)]);
    }

    #[test]
    fn a_refused_older_page_can_be_asked_again() {
        let me = me("alice");
        let mut t = Timeline::default();
        t.expect_first_page();
        t.apply_history(page(51..=100), true, &me);
        assert_eq!(t.request_older(), Some(51));
        assert_eq!(t.history_state(), HistoryState::Loading);
        t.history_failed();
        assert_eq!(t.history_state(), HistoryState::More);
        assert_eq!(t.request_older(), Some(51));
        assert!(t.gaps().is_empty(), "older messages are not a gap");
    }

    #[test]
    fn a_page_with_holes_shows_them_as_gaps() {
        let me = me("alice");
        let mut t = Timeline::default();
        t.expect_first_page();
        t.apply_history(page([1, 2, 5, 6]), false, &me);
        assert_eq!(t.gaps(), vec![gap(3, 4, false)]);
    }

    #[test]
    fn notices_and_gaps_keep_their_places() {
        let me = me("alice");
        let mut t = loaded(&me, 2);
        t.push_notice(user("carol"), true);
        t.insert_live(ev(5, "bob", "x", None), &me);
        t.push_notice(user("carol"), false);
        let keys: Vec<_> = t.entries(&me).iter().map(Entry::key).collect();
        assert_eq!(keys, vec!["m1", "m2", "n1", "g3-4-loading", "m5", "n2"]);
    }

    #[test]
    fn transient_refusals_fail_a_message_after_a_few_and_retry_makes_it_pending() {
        let me = me("alice");
        let mut t = loaded(&me, 0);
        t.push_outgoing(outgoing("c1", "a"));
        for _ in 1..MAX_TRANSIENT_ERRORS {
            assert!(t.transient_error(&cid("c1"), "Try again."));
            assert_eq!(t.pending().count(), 1, "still resent automatically");
        }
        assert!(t.transient_error(&cid("c1"), "Try again."));
        assert_eq!(t.pending().count(), 0);
        assert_eq!(t.resendable().count(), 1, "kept for the outbox");
        assert!(matches!(
            &t.entries(&me)[..],
            [Entry::Message {
                delivery: Delivery::Failed {
                    retryable: true,
                    ..
                },
                ..
            }]
        ));
        assert!(
            !t.transient_error(&cid("c1"), "Try again."),
            "already failed"
        );

        let again = t
            .retry(&cid("c1"))
            .map(|o| (o.client_id.clone(), o.transient_errors));
        assert_eq!(again, Some((cid("c1"), 0)), "same client id, count reset");
        assert_eq!(t.pending().count(), 1);
        assert!(t.retry(&cid("c1")).is_none(), "not failed any more");
        // Confirmed once, whatever attempt the server stored.
        t.ack(&cid("c1"), 1, 1, 1, &me);
        t.insert_live(ev(1, "alice", "a", Some("c1")), &me);
        assert_eq!(seqs(&t, &me), vec![Some(1)]);
    }

    #[test]
    fn a_permanent_refusal_cannot_be_retried_and_leaves_the_outbox() {
        let me = me("alice");
        let mut t = loaded(&me, 0);
        t.push_outgoing(outgoing("c1", "a"));
        t.fail(&cid("c1"), "too long", false);
        assert!(t.retry(&cid("c1")).is_none());
        assert_eq!(t.resendable().count(), 0);
        assert!(matches!(
            &t.entries(&me)[..],
            [Entry::Message {
                delivery: Delivery::Failed {
                    retryable: false,
                    ..
                },
                ..
            }]
        ));
    }

    #[test]
    fn a_failed_message_the_server_did_store_is_shown_once() {
        let me = me("alice");
        let mut t = loaded(&me, 0);
        t.push_outgoing(outgoing("c1", "a"));
        t.fail(&cid("c1"), "Try again.", true);
        // The first attempt was stored after all: its message frame confirms it.
        t.insert_live(ev(1, "alice", "a", Some("c1")), &me);
        assert_eq!(seqs(&t, &me), vec![Some(1)]);
        assert!(t.retry(&cid("c1")).is_none());
    }

    #[test]
    fn a_page_answering_a_join_does_not_count_as_a_history_answer() {
        let me = me("alice");
        let mut t = loaded(&me, 3);
        t.connection_lost();
        assert!(t.joined(3).is_empty());
        assert_eq!(
            t.insert_live(ev(6, "bob", "x", None), &me).gaps,
            vec![range(6, 2)]
        );
        // The join's own page: the gap's request is still unanswered.
        assert!(t.apply_page(page(1..=3), false, true, &me).is_empty());
        assert_eq!(t.gaps(), vec![gap(4, 5, true)]);
        // Its answer, a `history` page.
        t.apply_page(page([4]), true, false, &me);
        assert_eq!(t.gaps(), vec![gap(5, 5, false)]);
    }

    #[test]
    fn rows_carry_the_authors_display_name_and_mine_for_my_rows() {
        let me = Me::new(user("alice"), DisplayName::parse("Alice").expect("valid"));
        let mut t = loaded(&me, 1);
        t.push_outgoing(outgoing("c1", "a"));
        let names: Vec<String> = t
            .entries(&me)
            .into_iter()
            .filter_map(|e| match e {
                Entry::Message { author_name, .. } => Some(author_name.into_inner()),
                _ => None,
            })
            .collect();
        assert_eq!(names, vec!["bob name", "Alice"]);
        t.ack(&cid("c1"), 2, 2, 2, &me);
        assert!(matches!(
            &t.entries(&me)[1],
            Entry::Message { author_name, .. } if author_name.as_str() == "Alice"
        ));
    }
}
