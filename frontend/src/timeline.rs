//! One room's timeline: the pure bookkeeping behind the message list.
//!
//! The server numbers every event of a room's log with `seq` (1, 2, 3, ... with no holes): a
//! message, or a change to one (edit, delete, reaction added or taken back, and kinds this
//! client does not know). Messages are kept by `seq`, so one that arrives twice (live, in a
//! catch-up, in a history page) lands on the same key and order is the key order. A change is
//! applied to its target message (the row re-renders) and never becomes a row; a change whose
//! target is not loaded yet is kept by `seq` ([`MAX_PENDING_CHANGES`] at most) and applied, in
//! `seq` order, when the target arrives. Applying a change twice, or over a history page that
//! already folded it in, is harmless: an edit older than the text held is skipped, a delete is
//! final, a reaction is added if absent and removed if present.
//!
//! Messages this client sent but the server has not confirmed yet ("outgoing") are kept apart,
//! keyed by their `client_id`, and shown after the confirmed ones; so are its unconfirmed
//! changes, shown over their targets. The first confirmation (the `ack`, or the `message` frame
//! carrying the same `client_id`) moves a message over, so it is never shown twice.
//!
//! # Gaps
//! Only the forward stream (live events, and the catch-up of a `join { since }`) carries every
//! `seq`; history pages hold messages only. So the timeline keeps `high`, the highest `seq` up
//! to which the forward stream arrived without a hole. A live event past `high + 1` is applied
//! at once, remembered, and the hole is asked for with `join { since: high }`, whose catch-up
//! replays it; events already seen are skipped. Until the hole is filled it shows as a [`Gap`]
//! row (loading, or failed with a retry), never hidden. A join far behind is answered by the
//! server with its newest page instead of a catch-up: the timeline then starts over from that
//! page (older messages load by scrolling, folded), so nothing stale stays on screen.
//!
//! This module knows nothing about the browser, signals or sockets: it is plain data tested
//! natively. [`crate::chat`] holds one `Timeline` per room and turns frames into calls here.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use shared::{
    Attachment, ClientId, DisplayName, EventKind, MessageEvent, Reaction, RoomId, Username,
};

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

/// Changes kept for targets not loaded yet, at most (the oldest are dropped beyond).
pub const MAX_PENDING_CHANGES: usize = 2_000;

/// Consecutive messages of one author closer than this (ms) share one header.
pub const GROUP_MS: i64 = 5 * 60 * 1000;

/// A message the server stored, as the timeline keeps it (changes applied).
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
    /// The text as it is now (empty once deleted); shared so that rebuilding rows copies none.
    pub text: Arc<str>,
    /// When the server stored it (ms since the Unix epoch).
    pub ts: i64,
    /// The id its author's client gave it, if any.
    pub client_id: Option<ClientId>,
    /// The message it answers.
    pub reply_to: Option<u64>,
    /// Who its text mentions.
    pub mentions: Vec<Username>,
    /// When it was last edited.
    pub edited: Option<i64>,
    /// When it was deleted.
    pub deleted: Option<i64>,
    /// Its reactions, in the order they first appeared.
    pub reactions: Vec<Reaction>,
    /// The files it carries, in the order sent (gone once deleted).
    pub attachments: Vec<Attachment>,
    /// Changes applied to it here (part of its row's key, so the row re-renders).
    pub rev: u32,
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
            reply_to: ev.reply_to,
            mentions: ev.mentions,
            edited: ev.edited,
            deleted: ev.deleted,
            reactions: ev.reactions,
            attachments: ev.attachments,
            rev: 0,
        }
    }
}

/// A change to a message, from the log or from this client's outgoing changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    /// New text (and who it mentions), at `ts`.
    Edit(&'a str, &'a [Username], i64),
    /// Deleted at `ts`.
    Delete(i64),
    /// `user` added (`true`) or took back (`false`) `emoji`.
    React(&'a str, &'a Username, bool),
}

impl Message {
    /// Applies a change; returns whether anything changed. Idempotent, and safe over a history
    /// snapshot that already holds it: an edit older than the last one held is skipped, nothing
    /// changes a deleted message, reactions are sets per (emoji, user).
    pub fn apply(&mut self, change: Change<'_>) -> bool {
        if self.deleted.is_some() {
            return false;
        }
        match change {
            Change::Edit(text, mentions, ts) => {
                if self.edited.is_some_and(|e| e > ts)
                    || (&*self.text == text && self.edited.is_some())
                {
                    return false;
                }
                self.text = text.into();
                self.mentions = mentions.to_vec();
                self.edited = Some(ts);
            }
            Change::Delete(ts) => {
                self.text = "".into();
                self.deleted = Some(ts);
                self.reactions.clear();
                self.mentions.clear();
                self.attachments.clear();
            }
            Change::React(emoji, user, on) => {
                let at = self.reactions.iter().position(|r| r.emoji == emoji);
                let has = at.is_some_and(|i| self.reactions[i].users.contains(user));
                match (on, at) {
                    (true, _) if has => return false,
                    (false, _) if !has => return false,
                    (true, Some(i)) => self.reactions[i].users.push(user.clone()),
                    (true, None) => self.reactions.push(Reaction {
                        emoji: emoji.to_owned(),
                        users: vec![user.clone()],
                    }),
                    (false, Some(i)) => {
                        self.reactions[i].users.retain(|u| u != user);
                        if self.reactions[i].users.is_empty() {
                            self.reactions.remove(i);
                        }
                    }
                    (false, None) => return false,
                }
            }
        }
        self.rev += 1;
        true
    }
}

/// The change an event of the log makes, if it is one this client knows.
fn change_of(ev: &MessageEvent) -> Option<Change<'_>> {
    match ev.kind {
        EventKind::Edit => Some(Change::Edit(&ev.text, &ev.mentions, ev.ts)),
        EventKind::Delete => Some(Change::Delete(ev.ts)),
        EventKind::React | EventKind::Unreact => Some(Change::React(
            ev.emoji.as_deref()?,
            &ev.author,
            ev.kind == EventKind::React,
        )),
        EventKind::Message | EventKind::Unknown => None,
    }
}

/// Transient refusals (`internal`, `rate_limited`) in a row after which an outgoing message is
/// no longer resent automatically but shown as failed, with a retry action.
pub const MAX_TRANSIENT_ERRORS: u32 = 3;

/// What an outgoing item asks the server for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// A new message (`text`), perhaps answering another.
    Send {
        /// The message it answers.
        reply_to: Option<u64>,
    },
    /// New text (`text`) for the message `target`.
    Edit {
        /// The message.
        target: u64,
    },
    /// Delete the message `target`.
    Delete {
        /// The message.
        target: u64,
    },
    /// Add or take back a reaction.
    React {
        /// The message.
        target: u64,
        /// The emoji.
        emoji: Arc<str>,
        /// Add (`true`) or take back.
        on: bool,
    },
}

/// A message or change this client sent (or will send) that the server has not confirmed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The id that makes resending it idempotent.
    pub client_id: ClientId,
    /// The text (of a message or an edit), already checked with [`shared::MessageText::parse`].
    pub text: Arc<str>,
    /// When the user sent it (ms since the Unix epoch), shown until the server's time is known.
    pub created_ms: i64,
    /// Why the server refused it, once it did. A failed message is not resent until the user
    /// retries it (when its failure allows that).
    pub failed: Option<Failure>,
    /// Transient refusals since it was written or last retried.
    pub transient_errors: u32,
    /// What it asks for.
    pub act: Act,
    /// For a new message: the files it carries, uploaded already (their ids are sent).
    pub files: Vec<Attachment>,
}

impl Outgoing {
    /// A pending message, never refused yet.
    pub fn new(client_id: ClientId, text: Arc<str>, created_ms: i64) -> Self {
        Self::act(client_id, text, created_ms, Act::Send { reply_to: None })
    }

    /// A pending message or change, never refused yet.
    pub fn act(client_id: ClientId, text: Arc<str>, created_ms: i64, act: Act) -> Self {
        Self {
            client_id,
            text,
            created_ms,
            failed: None,
            transient_errors: 0,
            act,
            files: Vec::new(),
        }
    }

    /// Whether it is a new message (not a change).
    pub fn is_message(&self) -> bool {
        matches!(self.act, Act::Send { .. })
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

/// The start of a message another one answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// Its author's display name.
    pub author_name: DisplayName,
    /// Its text (empty when deleted).
    pub text: Arc<str>,
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
        /// Its text (render as text, never as HTML); empty once deleted.
        text: Arc<str>,
        /// Server time, or the local send time while pending (ms since the Unix epoch).
        ts: i64,
        /// The client's id for it, if any.
        client_id: Option<ClientId>,
        /// Sent, pending or failed.
        delivery: Delivery,
        /// Extra state: replies, changes, grouping.
        more: Box<Extra>,
    },
    /// Somebody arrived in or left the room.
    Notice(Notice),
    /// Events known to exist that are not held.
    Gap(Gap),
    /// The line above the first unread message.
    Divider,
    /// The line above the first message of a day (the time of that message): added by the
    /// view, which knows the local time zone.
    Day(i64),
}

/// A message row's state beyond its text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extra {
    /// The message it answers, and its start when known.
    pub reply_to: Option<(u64, Option<Quote>)>,
    /// Its text mentions the user.
    pub mentions_me: bool,
    /// When it was last edited.
    pub edited: Option<i64>,
    /// It was deleted.
    pub deleted: bool,
    /// Its reactions.
    pub reactions: Vec<Reaction>,
    /// Its files.
    pub attachments: Vec<Attachment>,
    /// Same author as the row above, shortly after: shown without the header.
    pub compact: bool,
    /// Changes applied (for the key).
    pub rev: u32,
}

/// A run of missing events: `seq` `from..=to` exist on the server but did not arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The first missing `seq`.
    pub from: u64,
    /// The last missing `seq`.
    pub to: u64,
    /// A catch-up that fills it is on its way; otherwise it could not be filled (the list then
    /// offers to ask again).
    pub loading: bool,
}

impl Gap {
    /// How many events are missing.
    pub fn count(&self) -> u64 {
        (self.to - self.from).saturating_add(1)
    }
}

impl Entry {
    /// A key that is stable while the row's content stays the same and changes when it changes
    /// (an edit, a reaction, a pending row that fails), so a keyed list re-renders exactly what
    /// changed.
    pub fn key(&self) -> String {
        match self {
            Entry::Message {
                seq: Some(seq),
                more,
                ..
            } => {
                let c = if more.compact { "c" } else { "" };
                let q = match &more.reply_to {
                    Some((_, Some(_))) => "q",
                    _ => "",
                };
                if more.rev == 0 {
                    format!("m{seq}{c}{q}")
                } else {
                    format!("m{seq}.{}{c}{q}", more.rev)
                }
            }
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
            Entry::Divider => "unread".into(),
            Entry::Day(ts) => format!("d{ts}"),
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

/// What [`Timeline::insert_live`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inserted {
    /// A message that was not in the timeline before.
    pub is_new: bool,
    /// The event revealed a hole: ask for it with `join { since }` ([`Timeline::since`]).
    pub fill: bool,
}

/// What the offline cache keeps of a room: see [`Timeline::kept`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// The forward stream had arrived without a hole up to here.
    pub high: u64,
    /// Older messages exist on the server.
    pub has_more: bool,
    /// The newest messages, ascending `seq`, changes applied.
    pub messages: Vec<MessageEvent>,
}

/// One room's messages, changes, outgoing items and notices.
///
/// Invariants: `messages` holds each `seq` once; every `seq` up to `high` arrived in the forward
/// stream (or is covered by the first page), and `ahead` holds the ones above `high + 1` that
/// arrived across a hole; an outgoing message's `client_id` never also appears on a confirmed
/// message by the same author; acks never move `high`, so a reconnect's `join { since }` cannot
/// skip an event still on its way when an ack overtook it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Confirmed messages by `seq`.
    messages: crate::map::Map<u64, Message>,
    /// Changes whose target is not held, in `seq` order. (Plain vectors rather than maps
    /// here: they stay small, and every map type adds its own code to the bundle.)
    pending_changes: Vec<MessageEvent>,
    /// Quotes of messages not held (fetched for replies), with their `seq`.
    quotes: Vec<(u64, Quote)>,
    /// Unconfirmed messages and changes of this client, in the order they were made.
    outgoing: Vec<Outgoing>,
    /// Join/leave lines.
    notices: Vec<Notice>,
    /// Counter for [`Notice::n`].
    next_notice: u64,
    /// The forward stream arrived without a hole up to here.
    high: u64,
    /// Events seen above `high + 1` (across a hole), ascending.
    ahead: Vec<u64>,
    /// The first page (or a catch-up) arrived, so `high` says where this client is.
    loaded: bool,
    /// Messages older than the oldest one held exist on the server.
    has_more: bool,
    /// A request for older messages (or the first page) is unanswered.
    older_in_flight: bool,
    /// Highest `seq` the server said exists (`joined.last_seq`).
    expected_high: u64,
    /// The last `joined` announced events above `high` that its catch-up is delivering.
    catching_up: bool,
    /// A `join { since }` that fills a hole is on its way.
    filling: bool,
    /// The read position when the room was opened: the divider goes above the first later
    /// message by someone else.
    unread_after: Option<u64>,
}

impl Timeline {
    /// Whether the first page arrived.
    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// The `since` for a `join`: the highest `seq` the forward stream delivered without a hole
    /// once loaded, else `None` (which asks the server for the newest page instead).
    pub fn since(&self) -> Option<u64> {
        self.loaded.then_some(self.high)
    }

    /// Highest `seq` delivered without a hole.
    pub fn delivered_high(&self) -> u64 {
        self.high
    }

    /// Highest `seq` known (delivered, or announced by `joined`).
    pub fn newest_seq(&self) -> u64 {
        let ahead = self.ahead.last().copied().unwrap_or(0);
        self.high.max(ahead)
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

    /// A held message.
    pub fn message(&self, seq: u64) -> Option<&Message> {
        self.messages.get(&seq)
    }

    /// The `seq` of the newest message held (0 if none), and the messages above `after` (none
    /// when `after` is `None`), oldest first: what the page's announcer says.
    pub fn newest_messages(&self, after: Option<u64>) -> (u64, Vec<&Message>) {
        let newest = self.messages.keys().next_back().copied().unwrap_or(0);
        let fresh = match after {
            Some(after) => self
                .messages
                .iter()
                .filter(|(seq, m)| **seq > after && m.deleted.is_none())
                .map(|(_, m)| m)
                .collect(),
            None => Vec::new(),
        };
        (newest, fresh)
    }

    /// The newest message of `me` that can still be edited.
    pub fn last_own(&self, me: &Me) -> Option<&Message> {
        self.messages
            .values()
            .rev()
            .find(|m| m.author == me.user && m.deleted.is_none())
    }

    /// Records the start of a message not held (fetched for a reply's quote).
    pub fn set_quote(&mut self, ev: MessageEvent) {
        let quote = Quote {
            author_name: ev.author_name,
            text: ev.text.into(),
        };
        self.quotes.retain(|(s, _)| *s != ev.seq);
        self.quotes.push((ev.seq, quote));
    }

    /// Takes the quotes fetched for `other` (a window of the same room starts with those its
    /// live timeline already has).
    pub fn copy_quotes(&mut self, other: &Timeline) {
        self.quotes.clone_from(&other.quotes);
    }

    /// Sets the read position the "new messages" divider follows (`None`: no divider).
    pub fn set_unread_after(&mut self, seq: Option<u64>) {
        self.unread_after = seq;
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

    /// Forgets requests that a dropped connection will never answer. A hole being filled now
    /// shows as not filled; the next join (`since` = [`Timeline::since`]) fills it.
    pub fn connection_lost(&mut self) {
        self.older_in_flight = false;
        self.catching_up = false;
        self.filling = false;
    }

    /// Whether a join's catch-up may still be delivering (an `error` for the room without a
    /// `client_id` is then the catch-up's, see [`Timeline::catch_up_failed`]).
    pub fn is_catching_up(&self) -> bool {
        self.catching_up || self.filling
    }

    /// Records `joined`: events up to `last_seq` exist, and those above `high` follow (the
    /// catch-up of a `join { since }`, or the first page).
    pub fn joined(&mut self, last_seq: u64) {
        self.expected_high = self.expected_high.max(last_seq);
        self.filling = false;
        self.catching_up = self.loaded && last_seq > self.high;
    }

    /// The catch-up ended with an `error` frame: what it did not deliver shows as a gap.
    pub fn catch_up_failed(&mut self) {
        self.catching_up = false;
        self.filling = false;
    }

    /// The user asked again for a gap: returns whether to send `join { since }` (not if one is
    /// on its way, or nothing is missing).
    pub fn refill(&mut self) -> bool {
        if self.is_catching_up() || self.gaps().is_empty() {
            return false;
        }
        self.filling = true;
        true
    }

    /// An older page was refused.
    pub fn history_failed(&mut self) {
        self.older_in_flight = false;
    }

    /// The gaps, oldest first: runs of `seq` above `high` not delivered, up to the highest
    /// known to exist (not counting a catch-up still on its way).
    pub fn gaps(&self) -> Vec<Gap> {
        if !self.loaded {
            return Vec::new();
        }
        let loading = self.is_catching_up();
        let mut top = self.ahead.last().copied().unwrap_or(0);
        if !loading {
            top = top.max(self.expected_high);
        }
        let mut out = Vec::new();
        let mut next = self.high + 1;
        for &seq in self.ahead.iter().chain(std::iter::once(&(top + 1))) {
            if seq > next {
                out.push(Gap {
                    from: next,
                    to: seq - 1,
                    loading,
                });
            }
            next = next.max(seq + 1);
        }
        out
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

    /// Adds a live (or catch-up) event: a message becomes a row, a change is applied to its
    /// target (or kept until the target arrives). `me` is this client's user: only a message by
    /// `me` can confirm an outgoing one, since other users can see (and could reuse) client ids.
    pub fn insert_live(&mut self, ev: MessageEvent, me: &Me) -> Inserted {
        let seq = ev.seq;
        let mut fill = false;
        if self.loaded {
            let at = self.ahead.partition_point(|&s| s < seq);
            if seq <= self.high || self.ahead.get(at) == Some(&seq) {
                // Seen already (a catch-up replaying what arrived across a hole).
                if !ev.is_message() {
                    return Inserted::default();
                }
            } else if seq == self.high + 1 {
                self.high = seq;
                while self.ahead.first() == Some(&(self.high + 1)) {
                    self.ahead.remove(0);
                    self.high += 1;
                }
            } else {
                self.ahead.insert(at, seq);
                if !self.is_catching_up() {
                    self.filling = true;
                    fill = true;
                }
            }
            if self.high >= self.expected_high && self.ahead.is_empty() {
                self.catching_up = false;
            }
        }
        let is_new = self.add(ev, me);
        Inserted { is_new, fill }
    }

    /// Adds a `history` page whose request is not known: the first page answers the join, any
    /// later one a `history` request. See [`Timeline::apply_page`].
    pub fn apply_history(&mut self, page: Vec<MessageEvent>, has_more: bool, me: &Me) {
        let answers_join = !self.loaded;
        self.apply_page(page, has_more, answers_join, me);
    }

    /// Adds a `history` page (messages as they are now, ascending `seq`); `answers_join` says
    /// whether it answers a `join` (the first page, or the newest page instead of a catch-up
    /// from far behind, after which the timeline starts over from it) rather than a `history`
    /// request for older messages.
    pub fn apply_page(
        &mut self,
        page: Vec<MessageEvent>,
        has_more: bool,
        answers_join: bool,
        me: &Me,
    ) {
        if answers_join {
            if self.loaded {
                // Too far behind for a catch-up: what is held may be stale.
                self.messages.clear();
                self.notices.clear();
                self.ahead.clear();
            }
            self.has_more = has_more;
            self.older_in_flight = false;
            let last = page.last().map_or(0, |m| m.seq);
            self.high = self.high.max(self.expected_high).max(last);
            self.ahead.retain(|&s| s > self.high);
            self.loaded = true;
            self.catching_up = false;
            self.filling = false;
        } else {
            let extends_down = match (page.first(), self.lowest_seq()) {
                (Some(low), Some(held)) => low.seq < held,
                _ => true,
            };
            if extends_down {
                self.has_more = has_more;
            }
            self.older_in_flight = false;
        }
        for ev in page {
            self.add(ev, me);
        }
    }

    /// Adds a page of messages newer than those held, read forward from an older point (a
    /// [`crate::chat::Window`]); `high` follows, so no gap shows below them.
    pub fn extend_newer(&mut self, page: Vec<MessageEvent>, me: &Me) {
        if let Some(last) = page.last() {
            self.high = self.high.max(last.seq);
        }
        for ev in page {
            self.add(ev, me);
        }
    }

    /// Applies a change (edit, deletion, reaction) to the message it targets if it is held,
    /// without counting its `seq` as delivered (for a window apart from the live log).
    pub fn apply_change(&mut self, ev: &MessageEvent, me: &Me) {
        if !ev.is_message() && ev.target.is_some_and(|t| self.messages.contains_key(&t)) {
            self.add(ev.clone(), me);
        }
    }

    /// Records the server's `ack` for an outgoing message or change: a message becomes a
    /// confirmed one at `seq` (unless the `message` frame got there first); a change is done
    /// (`seq` 0: there was nothing to do). Returns whether it was outgoing here.
    pub fn ack(&mut self, client_id: &ClientId, seq: u64, id: u64, ts: i64, me: &Me) -> bool {
        let Some(pos) = self.outgoing.iter().position(|o| &o.client_id == client_id) else {
            return false;
        };
        let out = self.outgoing.remove(pos);
        if let Act::Send { reply_to } = out.act
            && seq > 0
        {
            self.messages.get_or_insert_with(seq, || Message {
                seq,
                id,
                author: me.user.clone(),
                author_name: me.name.clone(),
                text: out.text,
                ts,
                client_id: Some(out.client_id),
                reply_to,
                mentions: Vec::new(),
                edited: None,
                deleted: None,
                reactions: Vec::new(),
                attachments: out.files,
                rev: 0,
            });
        }
        true
    }

    /// Adds a message or change made here and not yet confirmed. A `client_id` already
    /// outgoing is ignored, so restoring the outbox twice cannot duplicate a row.
    pub fn push_outgoing(&mut self, out: Outgoing) {
        if !self.outgoing.iter().any(|o| o.client_id == out.client_id) {
            self.outgoing.push(out);
        }
    }

    /// Marks an outgoing message as refused; `retryable` says whether sending it again may
    /// succeed. A refused change is dropped (the caller says why). Returns whether a message
    /// was marked here.
    pub fn fail(&mut self, client_id: &ClientId, reason: &str, retryable: bool) -> bool {
        let Some(pos) = self.outgoing.iter().position(|o| &o.client_id == client_id) else {
            return false;
        };
        let o = &mut self.outgoing[pos];
        if !o.is_message() {
            self.outgoing.remove(pos);
            return false;
        }
        o.failed = Some(Failure {
            reason: reason.into(),
            retryable,
        });
        true
    }

    /// Records a transient refusal (the server failed, or asked to slow down): the item stays
    /// pending, to be resent automatically, until the [`MAX_TRANSIENT_ERRORS`]th in a row, which
    /// marks a message failed with a retry (and drops a change). Returns whether it was outgoing
    /// (and not failed) here.
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
            let cid = o.client_id.clone();
            self.fail(&cid, reason, true);
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

    /// Outgoing items still waiting to be (re)sent, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Outgoing> {
        self.outgoing.iter().filter(|o| o.failed.is_none())
    }

    /// Outgoing items that may still be sent, oldest first: the pending ones and the failed
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
            after_seq: self.high,
            n: self.next_notice,
            user,
            online,
        });
    }

    /// The newest `n` messages as held now (changes applied), with where the forward stream
    /// stands: what the offline cache keeps of this room. `None` until the first page arrived.
    pub fn kept(&self, room: RoomId, n: usize) -> Option<Kept> {
        if !self.loaded {
            return None;
        }
        let skip = self.messages.len().saturating_sub(n);
        let messages = self
            .messages
            .values()
            .skip(skip)
            .map(|m| {
                let mut ev = MessageEvent::message(
                    room,
                    m.seq,
                    m.id,
                    m.author.clone(),
                    m.author_name.clone(),
                    m.text.to_string(),
                    m.ts,
                );
                ev.client_id = m.client_id.clone();
                ev.reply_to = m.reply_to;
                ev.mentions = m.mentions.clone();
                ev.edited = m.edited;
                ev.deleted = m.deleted;
                ev.reactions = m.reactions.clone();
                ev.attachments = m.attachments.clone();
                ev
            })
            .collect();
        Some(Kept {
            high: self.high,
            has_more: self.has_more || skip > 0,
            messages,
        })
    }

    /// Starts from what the offline cache kept, as if it were the first page: the messages are
    /// shown at once, and the next `join` asks for what followed `kept.high` (a catch-up), so
    /// nothing is missed or shown twice. Does nothing once the first page arrived.
    pub fn restore_kept(&mut self, kept: Kept, me: &Me) {
        if self.loaded {
            return;
        }
        self.joined(kept.high);
        self.apply_page(kept.messages, kept.has_more, true, me);
    }

    /// The rows to render, in order: confirmed messages by `seq` (with this client's unsent
    /// changes shown over them) with the gaps, notices and the unread divider between them, then
    /// the outgoing messages. `me` is the author shown on outgoing rows.
    pub fn entries(&self, me: &Me) -> Vec<Entry> {
        let gaps = self.gaps();
        let mut out = Vec::with_capacity(self.messages.len() + gaps.len() + 2);
        let mut notices = self.notices.iter().peekable();
        let mut gaps = gaps.into_iter().peekable();
        let mut divider = self.unread_after;
        // (author, ts) of the row above, for grouping.
        let mut above: Option<(&Username, i64)> = None;
        for msg in self.messages.values() {
            while let Some(g) = gaps.next_if(|g| g.from < msg.seq) {
                while let Some(n) = notices.next_if(|n| n.after_seq < g.from) {
                    out.push(Entry::Notice(n.clone()));
                }
                out.push(Entry::Gap(g));
                above = None;
            }
            while let Some(n) = notices.next_if(|n| n.after_seq < msg.seq) {
                out.push(Entry::Notice(n.clone()));
                above = None;
            }
            if divider.is_some_and(|d| msg.seq > d && msg.author != me.user) {
                out.push(Entry::Divider);
                divider = None;
                above = None;
            }
            let mut shown: Option<Message> = None;
            for o in &self.outgoing {
                let change = match &o.act {
                    Act::Edit { target } if *target == msg.seq => Change::Edit(
                        &o.text,
                        &msg.mentions,
                        msg.edited.map_or(o.created_ms, |e| e.max(o.created_ms)),
                    ),
                    Act::Delete { target } if *target == msg.seq => Change::Delete(o.created_ms),
                    Act::React { target, emoji, on } if *target == msg.seq => {
                        Change::React(emoji, &me.user, *on)
                    }
                    _ => continue,
                };
                shown.get_or_insert_with(|| msg.clone()).apply(change);
            }
            // A row shown with unsent changes gets keys of its own.
            let overlay = if shown.is_some() { 1 << 16 } else { 0 };
            out.push(self.row(shown.as_ref().unwrap_or(msg), me, above, overlay));
            above = Some((&msg.author, msg.ts));
        }
        for g in gaps {
            while let Some(n) = notices.next_if(|n| n.after_seq < g.from) {
                out.push(Entry::Notice(n.clone()));
            }
            out.push(Entry::Gap(g));
            above = None;
        }
        if notices.peek().is_some() {
            above = None;
        }
        out.extend(notices.cloned().map(Entry::Notice));
        for o in &self.outgoing {
            let Act::Send { reply_to } = o.act else {
                continue;
            };
            let compact = above.is_some_and(|(a, t)| *a == me.user && o.created_ms - t < GROUP_MS);
            above = Some((&me.user, o.created_ms));
            out.push(Entry::Message {
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
                more: Box::new(Extra {
                    reply_to: reply_to.map(|s| (s, self.quote(s))),
                    attachments: o.files.clone(),
                    compact,
                    ..Extra::default()
                }),
            });
        }
        out
    }

    /// The start of message `seq`, if held or fetched.
    fn quote(&self, seq: u64) -> Option<Quote> {
        match self.messages.get(&seq) {
            Some(m) => Some(Quote {
                author_name: m.author_name.clone(),
                text: Arc::clone(&m.text),
            }),
            None => self
                .quotes
                .iter()
                .find(|(s, _)| *s == seq)
                .map(|(_, q)| q.clone()),
        }
    }

    fn row(&self, msg: &Message, me: &Me, above: Option<(&Username, i64)>, overlay: u32) -> Entry {
        let compact = above.is_some_and(|(a, t)| *a == msg.author && msg.ts - t < GROUP_MS);
        Entry::Message {
            seq: Some(msg.seq),
            author: msg.author.clone(),
            author_name: msg.author_name.clone(),
            text: Arc::clone(&msg.text),
            ts: msg.ts,
            client_id: msg.client_id.clone(),
            delivery: Delivery::Sent,
            more: Box::new(Extra {
                reply_to: msg.reply_to.map(|s| (s, self.quote(s))),
                mentions_me: msg.mentions.contains(&me.user),
                edited: msg.edited,
                deleted: msg.deleted.is_some(),
                reactions: msg.reactions.clone(),
                attachments: msg.attachments.clone(),
                compact,
                rev: msg.rev + overlay,
            }),
        }
    }

    /// Stores a message once (confirming an outgoing message of `me` with the same
    /// `client_id`) and applies the changes waiting for it; applies a change to its target or
    /// keeps it. Returns whether a new message was stored.
    fn add(&mut self, ev: MessageEvent, me: &Me) -> bool {
        match ev.kind {
            EventKind::Message => {}
            EventKind::Unknown => return false,
            _ => {
                let Some(target) = ev.target else {
                    return false;
                };
                match (self.messages.get_mut(&target), change_of(&ev)) {
                    (Some(msg), Some(change)) => {
                        msg.apply(change);
                    }
                    (None, Some(_)) => {
                        let at = self.pending_changes.partition_point(|c| c.seq < ev.seq);
                        if self.pending_changes.get(at).is_none_or(|c| c.seq != ev.seq) {
                            self.pending_changes.insert(at, ev);
                        }
                        if self.pending_changes.len() > MAX_PENDING_CHANGES {
                            self.pending_changes.remove(0);
                        }
                    }
                    _ => {}
                }
                return false;
            }
        }
        if ev.author == me.user
            && let Some(cid) = &ev.client_id
        {
            self.outgoing.retain(|o| &o.client_id != cid);
        }
        if self.messages.contains_key(&ev.seq) {
            return false;
        }
        let seq = ev.seq;
        let mut msg = Message::from(ev);
        // In `seq` order, as they happened.
        self.pending_changes.retain(|c| {
            if c.target != Some(seq) {
                return true;
            }
            if let Some(change) = change_of(c) {
                msg.apply(change);
            }
            false
        });
        self.quotes.retain(|(s, _)| *s != seq);
        self.messages.insert(seq, msg);
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
        let mut ev = MessageEvent::message(
            shared::DEFAULT_ROOM_ID,
            seq,
            1000 + seq,
            user(author),
            DisplayName::parse(format!("{author} name")).expect("valid name"),
            text.into(),
            1_700_000_000_000 + i64::try_from(seq).expect("small") * 600_000,
        );
        ev.client_id = client_id.map(cid);
        ev
    }

    /// A change event `seq` by `author` to `target`.
    fn change(seq: u64, kind: EventKind, target: u64, author: &str, text: &str) -> MessageEvent {
        let mut e = ev(seq, author, "", None);
        e.kind = kind;
        e.target = Some(target);
        match kind {
            EventKind::React | EventKind::Unreact => e.emoji = Some(text.into()),
            _ => e.text = text.into(),
        }
        e
    }

    fn outgoing(id: &str, text: &str) -> Outgoing {
        Outgoing::new(cid(id), text.into(), 5)
    }

    fn seqs(t: &Timeline, me: &Me) -> Vec<Option<u64>> {
        t.entries(me)
            .into_iter()
            .filter_map(|e| match e {
                Entry::Message { seq, .. } => Some(seq),
                _ => None,
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

    fn gap(from: u64, to: u64, loading: bool) -> Gap {
        Gap { from, to, loading }
    }

    fn page(seqs: impl IntoIterator<Item = u64>) -> Vec<MessageEvent> {
        seqs.into_iter().map(|s| ev(s, "bob", "x", None)).collect()
    }

    fn row(t: &Timeline, me: &Me, seq: u64) -> (String, Extra) {
        t.entries(me)
            .into_iter()
            .find_map(|e| match e {
                Entry::Message {
                    seq: Some(s),
                    text,
                    more,
                    ..
                } if s == seq => Some((text.to_string(), *more)),
                _ => None,
            })
            .expect("the row is shown")
    }

    fn reactions(x: &Extra) -> Vec<(String, Vec<String>)> {
        x.reactions
            .iter()
            .map(|r| {
                (
                    r.emoji.clone(),
                    r.users.iter().map(|u| u.to_string()).collect(),
                )
            })
            .collect()
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
        t.apply_history(page([2, 3]), true, &me);
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
        assert!(!t.insert_live(ev(6, "bob", "b", None), &me).fill);
        assert!(!t.insert_live(ev(7, "alice", "hi", Some("c1")), &me).fill);
        assert_eq!(t.since(), Some(7));
        assert!(t.gaps().is_empty());
    }

    #[test]
    fn changes_apply_live_and_never_become_rows() {
        let me = me("alice");
        let mut t = loaded(&me, 2);
        t.insert_live(change(3, EventKind::Edit, 1, "bob", "fixed"), &me);
        t.insert_live(change(4, EventKind::React, 2, "carol", "👍"), &me);
        t.insert_live(change(5, EventKind::React, 2, "dave", "👍"), &me);
        t.insert_live(change(6, EventKind::React, 2, "dave", "🎉"), &me);
        t.insert_live(change(7, EventKind::Unreact, 2, "carol", "👍"), &me);
        let mut unknown = ev(8, "bob", "", None);
        unknown.kind = EventKind::Unknown;
        assert!(!t.insert_live(unknown, &me).fill);
        assert_eq!(seqs(&t, &me), vec![Some(1), Some(2)]);
        let (text, x) = row(&t, &me, 1);
        assert_eq!(text, "fixed");
        assert_eq!(x.edited, Some(ev(3, "bob", "", None).ts));
        let (_, x) = row(&t, &me, 2);
        assert_eq!(
            reactions(&x),
            vec![
                ("👍".into(), vec!["dave".into()]),
                ("🎉".into(), vec!["dave".into()])
            ]
        );
        t.insert_live(change(9, EventKind::Delete, 2, "bob", ""), &me);
        let (text, x) = row(&t, &me, 2);
        assert!(x.deleted && text.is_empty() && x.reactions.is_empty());
        assert_eq!(t.since(), Some(9), "every kind advances the position");
        assert!(t.gaps().is_empty());
    }

    #[test]
    fn a_change_that_arrives_before_its_target_is_applied_when_it_arrives() {
        let me = me("alice");
        // Live, for an old message not loaded: applied when scrolling loads it.
        let mut t = Timeline::default();
        t.expect_first_page();
        t.apply_history(page(51..=60), true, &me);
        t.insert_live(change(61, EventKind::Edit, 10, "bob", "new words"), &me);
        t.insert_live(change(62, EventKind::React, 10, "carol", "👍"), &me);
        assert_eq!(t.len(), 10, "no row for a change");
        assert_eq!(t.request_older(), Some(51));
        t.apply_history(page(1..=50), false, &me);
        let (text, x) = row(&t, &me, 10);
        assert_eq!(text, "new words");
        assert_eq!(reactions(&x), vec![("👍".into(), vec!["carol".into()])]);

        // Out of order in any stream: the change first, then its target.
        let mut t = Timeline::default();
        t.insert_live(change(2, EventKind::Edit, 1, "bob", "later"), &me);
        t.insert_live(ev(1, "bob", "first", None), &me);
        assert_eq!(row(&t, &me, 1).0, "later");
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn replaying_changes_over_a_folded_page_is_harmless() {
        let me = me("alice");
        let mut t = Timeline::default();
        t.expect_first_page();
        t.apply_history(page(20..=20), true, &me);
        // Live changes to message 5, not loaded: an edit, a reaction added and taken back.
        t.insert_live(change(21, EventKind::Edit, 5, "bob", "v2"), &me);
        t.insert_live(change(22, EventKind::React, 5, "carol", "👍"), &me);
        t.insert_live(change(23, EventKind::Unreact, 5, "carol", "👍"), &me);
        // The older page already folds them in (and a later edit, v3).
        let mut folded = ev(5, "bob", "v3", None);
        folded.edited = Some(ev(24, "bob", "", None).ts);
        t.request_older();
        t.apply_history(vec![folded], false, &me);
        let (text, x) = row(&t, &me, 5);
        assert_eq!(text, "v3", "an older edit does not win over a newer one");
        assert!(x.reactions.is_empty());
        // A deleted message stays deleted.
        let mut gone = ev(6, "bob", "", None);
        gone.deleted = Some(1);
        t.insert_live(change(25, EventKind::Edit, 6, "bob", "zombie"), &me);
        t.apply_history(vec![gone], false, &me);
        assert!(row(&t, &me, 6).1.deleted);
        assert!(row(&t, &me, 6).0.is_empty());
    }

    #[test]
    fn a_hole_in_the_forward_stream_is_filled_by_a_catch_up_without_doubling_changes() {
        let me = me("alice");
        let mut t = loaded(&me, 3);
        // 4 (a reaction) and 5 are lost; 6 takes the reaction back, 7 is a message.
        let ins = t.insert_live(change(6, EventKind::Unreact, 1, "carol", "👍"), &me);
        assert!(ins.fill, "ask with join {{ since }}");
        assert_eq!(t.since(), Some(3));
        assert!(
            !t.insert_live(ev(7, "bob", "x", None), &me).fill,
            "asked once"
        );
        assert_eq!(t.gaps(), vec![gap(4, 5, true)]);
        assert_eq!(seqs(&t, &me), vec![Some(1), Some(2), Some(3), Some(7)]);
        // The catch-up replays 4..=7.
        t.joined(7);
        t.insert_live(change(4, EventKind::React, 1, "carol", "👍"), &me);
        t.insert_live(ev(5, "bob", "x", None), &me);
        t.insert_live(change(6, EventKind::Unreact, 1, "carol", "👍"), &me);
        t.insert_live(ev(7, "bob", "x", None), &me);
        assert!(t.gaps().is_empty());
        assert_eq!(t.since(), Some(7));
        // The reaction was added by 4; 6 was seen before and is not applied twice.
        assert_eq!(
            reactions(&row(&t, &me, 1).1),
            vec![("👍".into(), vec!["carol".into()])]
        );
        assert_eq!(seqs(&t, &me).len(), 5);
    }

    #[test]
    fn a_hole_the_catch_up_cannot_fill_is_shown_and_can_be_asked_again() {
        let me = me("alice");
        let mut t = loaded(&me, 3);
        assert!(t.insert_live(ev(6, "bob", "x", None), &me).fill);
        t.catch_up_failed();
        assert_eq!(t.gaps(), vec![gap(4, 5, false)]);
        let keys: Vec<_> = t.entries(&me).iter().map(Entry::key).collect();
        assert_eq!(keys, vec!["m1", "m2", "m3", "g4-5-failed", "m6"]);
        assert!(t.refill());
        assert!(!t.refill(), "once");
        assert_eq!(t.gaps(), vec![gap(4, 5, true)]);
        // A reconnect asks from the hole too.
        t.connection_lost();
        assert_eq!(t.since(), Some(3));
    }

    #[test]
    fn the_first_page_counts_the_changes_after_its_last_message() {
        let me = me("alice");
        let mut t = Timeline::default();
        t.expect_first_page();
        t.joined(12);
        t.apply_history(page([3, 8]), true, &me);
        assert!(
            t.gaps().is_empty(),
            "history pages have holes: they are not gaps"
        );
        assert_eq!(t.since(), Some(12));
        assert!(!t.insert_live(ev(13, "bob", "x", None), &me).fill);
    }

    #[test]
    fn a_join_from_far_behind_answered_with_the_newest_page_starts_over() {
        let me = me("alice");
        let mut t = loaded(&me, 10);
        t.connection_lost();
        t.joined(2_000);
        t.apply_page(page(1_951..=2_000), true, true, &me);
        assert_eq!(t.len(), 50);
        assert!(t.gaps().is_empty());
        assert_eq!(t.history_state(), HistoryState::More);
        assert_eq!(t.since(), Some(2_000));
    }

    #[test]
    fn older_pages_load_until_the_beginning() {
        let me = me("alice");
        let mut t = Timeline::default();
        assert_eq!(t.history_state(), HistoryState::NotLoaded);
        t.expect_first_page();
        assert_eq!(t.history_state(), HistoryState::Loading);
        t.apply_history(page(51..=100), true, &me);
        assert_eq!(t.history_state(), HistoryState::More);
        assert_eq!(t.request_older(), Some(51));
        assert_eq!(t.request_older(), None, "one page at a time");
        t.apply_history(page(1..=50), false, &me);
        assert_eq!(t.history_state(), HistoryState::Beginning);
        assert_eq!(t.request_older(), None);
        assert_eq!(t.lowest_seq(), Some(1));
        assert_eq!(t.since(), Some(100));
        // A refused page can be asked again.
        let mut t = Timeline::default();
        t.expect_first_page();
        t.apply_history(page(51..=100), true, &me);
        t.request_older();
        t.history_failed();
        assert_eq!(t.request_older(), Some(51));
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
            .filter_map(|e| match e {
                Entry::Message { delivery, .. } => Some(delivery.as_str()),
                _ => None,
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
    fn keys_change_when_a_row_changes() {
        let me = me("alice");
        let mut t = loaded(&me, 0);
        t.push_outgoing(outgoing("c1", "a"));
        let k1 = t.entries(&me)[0].key();
        t.fail(&cid("c1"), "no", false);
        let k2 = t.entries(&me)[0].key();
        assert_ne!(k1, k2);
        t.insert_live(ev(1, "alice", "a", Some("c1")), &me);
        assert_eq!(t.entries(&me)[0].key(), "m1");
        t.insert_live(change(2, EventKind::Edit, 1, "alice", "b"), &me);
        assert_eq!(t.entries(&me)[0].key(), "m1.1");
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
        assert!(
            !t.transient_error(&cid("c1"), "Try again."),
            "already failed"
        );
        let again = t
            .retry(&cid("c1"))
            .map(|o| (o.client_id.clone(), o.transient_errors));
        assert_eq!(again, Some((cid("c1"), 0)), "same client id, count reset");
        assert!(t.retry(&cid("c1")).is_none(), "not failed any more");
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
    }

    #[test]
    fn unsent_changes_show_over_their_target_until_confirmed() {
        let me = me("alice");
        let mut t = loaded(&me, 0);
        t.insert_live(ev(1, "alice", "typo", None), &me);
        t.insert_live(ev(2, "bob", "hi", None), &me);
        let act = |id: &str, text: &str, act: Act| Outgoing::act(cid(id), text.into(), 9, act);
        t.push_outgoing(act("e1", "fixed", Act::Edit { target: 1 }));
        t.push_outgoing(act(
            "r1",
            "",
            Act::React {
                target: 2,
                emoji: "👍".into(),
                on: true,
            },
        ));
        assert_eq!(seqs(&t, &me), vec![Some(1), Some(2)], "no row for a change");
        assert_eq!(row(&t, &me, 1).0, "fixed");
        assert_eq!(
            reactions(&row(&t, &me, 2).1),
            vec![("👍".into(), vec!["alice".into()])]
        );
        assert_eq!(t.resendable().count(), 2);
        // Confirmed with "nothing to do": simply done.
        assert!(t.ack(&cid("r1"), 0, 0, 0, &me));
        assert!(row(&t, &me, 2).1.reactions.is_empty());
        // A refused change is dropped (the caller shows why).
        assert!(!t.fail(&cid("e1"), "no", false));
        assert_eq!(row(&t, &me, 1).0, "typo");
        assert_eq!(t.resendable().count(), 0);
        assert_eq!(t.last_own(&me).map(|m| m.seq), Some(1));
    }

    #[test]
    fn consecutive_messages_of_one_author_are_grouped_and_the_divider_marks_the_first_unread() {
        let me = me("alice");
        let mut t = Timeline::default();
        let at = |seq, author: &str, ts| {
            let mut e = ev(seq, author, "x", None);
            e.ts = ts;
            e
        };
        t.expect_first_page();
        t.apply_history(
            vec![
                at(1, "bob", 0),
                at(2, "bob", 60_000),
                at(3, "alice", 70_000),
                at(4, "bob", 80_000),
                at(5, "bob", 80_000 + GROUP_MS),
            ],
            false,
            &me,
        );
        t.set_unread_after(Some(2));
        let keys: Vec<_> = t.entries(&me).iter().map(Entry::key).collect();
        assert_eq!(keys, vec!["m1", "m2c", "m3", "unread", "m4", "m5"]);
    }

    fn attachment(id: u64) -> Attachment {
        Attachment {
            id,
            name: format!("f{id}.png"),
            size: 100,
            mime: "image/png".into(),
            width: Some(4),
            height: Some(3),
            thumbnail: true,
        }
    }

    fn with_files(mut e: MessageEvent, ids: &[u64]) -> MessageEvent {
        e.attachments = ids.iter().map(|&i| attachment(i)).collect();
        e
    }

    fn file_ids(x: &Extra) -> Vec<u64> {
        x.attachments.iter().map(|a| a.id).collect()
    }

    #[test]
    fn files_come_through_live_history_catch_up_and_the_offline_cache() {
        let me = me("ann");
        let mut t = Timeline::default();
        t.expect_first_page();
        t.apply_history(vec![with_files(ev(1, "bob", "", None), &[1, 2])], true, &me);
        t.insert_live(with_files(ev(2, "bob", "live", None), &[3]), &me);
        t.joined(3);
        t.insert_live(with_files(ev(3, "bob", "caught up", None), &[4]), &me);
        assert_eq!(file_ids(&row(&t, &me, 1).1), [1, 2]);
        assert_eq!(file_ids(&row(&t, &me, 2).1), [3]);
        assert_eq!(file_ids(&row(&t, &me, 3).1), [4]);

        // Kept for the offline cache and restored from it, they are still there.
        let kept = t.kept(shared::DEFAULT_ROOM_ID, 100).expect("loaded");
        assert_eq!(kept.messages[0].attachments.len(), 2);
        let json = serde_json::to_string(&kept).expect("writes");
        let back: Kept = serde_json::from_str(&json).expect("reads");
        let mut again = Timeline::default();
        again.restore_kept(back, &me);
        assert_eq!(file_ids(&row(&again, &me, 1).1), [1, 2]);
        assert_eq!(file_ids(&row(&again, &me, 3).1), [4]);
    }

    #[test]
    fn a_deleted_message_drops_its_files() {
        let me = me("ann");
        let mut t = Timeline::default();
        t.expect_first_page();
        t.apply_history(
            vec![with_files(ev(1, "bob", "see", None), &[1])],
            false,
            &me,
        );
        t.insert_live(change(2, EventKind::Delete, 1, "bob", ""), &me);
        let (_, x) = row(&t, &me, 1);
        assert!(x.deleted && x.attachments.is_empty());
        let kept = t.kept(shared::DEFAULT_ROOM_ID, 10).expect("loaded");
        assert!(kept.messages[0].attachments.is_empty());
    }

    #[test]
    fn an_outgoing_message_shows_its_files_and_keeps_them_when_acknowledged() {
        let me = me("ann");
        let mut t = loaded(&me, 1);
        let mut o = outgoing("c1", "");
        o.files = vec![attachment(7)];
        t.push_outgoing(o);
        let pending = t.entries(&me).into_iter().find_map(|e| match e {
            Entry::Message {
                seq: None, more, ..
            } => Some(more),
            _ => None,
        });
        assert_eq!(pending.map(|m| file_ids(&m)), Some(vec![7]));
        assert!(t.ack(&cid("c1"), 2, 1002, 9, &me));
        assert_eq!(file_ids(&row(&t, &me, 2).1), [7]);
        // The message frame that follows changes nothing.
        t.insert_live(with_files(ev(2, "ann", "", Some("c1")), &[7]), &me);
        assert_eq!(file_ids(&row(&t, &me, 2).1), [7]);
    }
}
