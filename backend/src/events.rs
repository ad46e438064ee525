//! The seam between the store and live delivery.
//!
//! The store hands each commit's events to a [`Seam`] on its writer thread; the seam only queues
//! them. A [`Dispatcher`] task takes them from the queue, puts each room's events in `seq` order,
//! and hands them to the [`Hub`] for fan-out, so fan-out never runs on the writer thread.
//!
//! The dispatcher does not trust its input to be complete or ordered. That is what lets a
//! multi-node bus replace the local queue later: an event that arrives early waits for the ones
//! before it, and a hole that stays open is filled from the store (the log is the source of
//! truth), so a lost or late notification delays a delivery but never drops it.
//!
//! A room's order starts at the first event the dispatcher sees for it, or earlier: at the
//! lowest `seq` a join on this node read before ([`Hub::joined_at`]), so that what was
//! committed between that read and the first event reaches the joiner. On one node every event
//! passes through here. With several nodes, the events of the others come over the bus
//! ([`crate::bus`]), which can lose the last events of a burst with no later event to reveal
//! the hole: so the dispatcher also asks the store for the heads of the rooms with a connection
//! here ([`Watcher`]), and repairs up to them: every [`POLL`] while the bus is down or lately
//! lost something, every [`CALM_POLLS`] polls otherwise.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use shared::{MessageEvent, RoomId};
use tokio::sync::mpsc;

use crate::bus::{Bus, Note};
use crate::hub::Hub;
use crate::metrics;
use crate::store::{CommitListener, Store};

/// How long a hole may stay open before the dispatcher reads the store for it: long enough for
/// an event that is merely late to arrive on its own.
const REPAIR_DELAY: Duration = Duration::from_millis(100);
/// The most events one repair reads.
const REPAIR_PAGE: u32 = 500;
/// How often a dispatcher with a bus asks the store for the heads of its rooms while the bus is
/// unsure of itself.
pub const POLL: Duration = Duration::from_secs(1);
/// While the bus is sure it lost nothing (see [`Bus::unsure`]), the heads are read only every
/// this many [`POLL`]s: a safety net, not the way news arrives.
pub const CALM_POLLS: u32 = 10;

/// What reaches the dispatcher.
enum Input {
    /// The events of one commit (or of one bus message), and when they were committed.
    Committed(Vec<MessageEvent>, Instant),
    /// The answer of a repair read for `room`.
    Repaired(RoomId, Vec<MessageEvent>),
    /// The heads of rooms with a connection here, with the lowest `seq` a join read in each
    /// since the last poll.
    Heads(Vec<(RoomId, Option<u64>, u64)>),
}

/// The store's [`CommitListener`]: queues committed events for the dispatcher. The queue is
/// unbounded so that the writer never waits on fan-out; it stays short because the dispatcher
/// only encodes and `try_send`s (see [`crate::hub`]).
pub struct Seam {
    tx: mpsc::UnboundedSender<Input>,
    /// The bus to the other nodes, if any.
    bus: OnceLock<Arc<Bus>>,
}

/// Where the dispatcher reads from; made with its [`Seam`] by [`seam`].
pub struct Inbox {
    /// For repairs to feed their reads back in. Weak, so that the queue closes (and the
    /// dispatcher stops) when the seam goes away with the store.
    tx: mpsc::WeakUnboundedSender<Input>,
    rx: mpsc::UnboundedReceiver<Input>,
}

/// A connected [`Seam`] and [`Inbox`].
pub fn seam() -> (Arc<Seam>, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    let weak = tx.downgrade();
    (
        Arc::new(Seam {
            tx,
            bus: OnceLock::new(),
        }),
        Inbox { tx: weak, rx },
    )
}

impl Seam {
    /// Events committed on another node, from the bus.
    pub fn remote(&self, events: Vec<MessageEvent>) {
        let _ = self.tx.send(Input::Committed(events, Instant::now()));
    }

    /// Connects the seam to the other nodes: every commit here is published.
    pub fn attach_bus(&self, bus: Arc<Bus>) {
        let _ = self.bus.set(bus);
    }
}

impl CommitListener for Seam {
    fn committed(&self, events: Vec<MessageEvent>) {
        if let Some(bus) = self.bus.get() {
            bus.publish(Note::Events {
                events: events.clone(),
            });
        }
        // Fails only once the dispatcher has stopped, when the server is going down.
        let _ = self.tx.send(Input::Committed(events, Instant::now()));
    }
}

/// One room's place in the order.
struct RoomOrder {
    /// The `seq` to deliver next.
    next: u64,
    /// Events that came before their turn.
    waiting: BTreeMap<u64, MessageEvent>,
    /// A repair read for this room is under way.
    repairing: bool,
    /// The highest `seq` the store said exists (see [`POLL`]).
    known: u64,
}

/// Reads the heads of the rooms with a connection here for a [`Dispatcher`] of a node with a bus.
pub struct Watcher {
    hub: Arc<Hub>,
    store: Weak<dyn Store>,
    tx: mpsc::WeakUnboundedSender<Input>,
}

impl Watcher {
    /// Every [`POLL`] while `bus` is unsure of itself (down, or lately lost a note: see
    /// [`Bus::unsure`]), and every [`CALM_POLLS`] polls otherwise, asks the store for the heads of
    /// the rooms with a connection here and feeds them to the dispatcher (see the module docs).
    /// Without a bus, every [`POLL`]. Runs until the dispatcher stops.
    pub async fn run(self, bus: Option<Arc<Bus>>) {
        let Self { hub, store, tx } = self;
        let mut every = tokio::time::interval(POLL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut calm = 0u32;
        loop {
            every.tick().await;
            if bus.as_ref().is_some_and(|b| !b.unsure()) {
                calm += 1;
                if calm < CALM_POLLS {
                    continue;
                }
            }
            calm = 0;
            let watched = hub.watched();
            if watched.is_empty() {
                continue;
            }
            let Some(store) = store.upgrade() else { return };
            let read = store.heads(watched.iter().map(|(room, _)| *room).collect());
            drop(store);
            let heads = match read.await {
                Ok(heads) => heads,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the rooms' heads");
                    continue;
                }
            };
            let heads: HashMap<RoomId, u64> = heads.into_iter().collect();
            let input = watched
                .into_iter()
                .filter_map(|(room, floor)| Some((room, floor, *heads.get(&room)?)))
                .collect();
            let Some(tx) = tx.upgrade() else { return };
            if tx.send(Input::Heads(input)).is_err() {
                return;
            }
        }
    }
}

/// Delivers committed events to the hub in `seq` order per room, filling holes from the store.
pub struct Dispatcher {
    inbox: Inbox,
    hub: Arc<Hub>,
    /// Weak: the store holds the seam, and the dispatcher must not keep the store alive.
    store: Weak<dyn Store>,
    rooms: HashMap<RoomId, RoomOrder>,
}

impl Dispatcher {
    /// A dispatcher reading `inbox`, delivering to `hub`, repairing from `store`.
    pub fn new(inbox: Inbox, hub: Arc<Hub>, store: &Arc<dyn Store>) -> Self {
        Self {
            inbox,
            hub,
            store: Arc::downgrade(store),
            rooms: HashMap::new(),
        }
    }

    /// Runs until the [`Seam`] is gone (the store shut down).
    pub async fn run(mut self) {
        while let Some(input) = self.inbox.rx.recv().await {
            match input {
                Input::Committed(events, at) => {
                    for event in events {
                        self.accept(event);
                    }
                    metrics::get()
                        .fanout_latency
                        .observe(at.elapsed().as_secs_f64());
                }
                Input::Repaired(room, events) => {
                    if let Some(order) = self.rooms.get_mut(&room) {
                        order.repairing = false;
                    }
                    for event in events {
                        self.accept(event);
                    }
                    self.repair_if_needed(room);
                }
                Input::Heads(heads) => {
                    for (room, floor, head) in heads {
                        let order = match (self.rooms.get_mut(&room), floor) {
                            (Some(order), _) => order,
                            (None, Some(floor)) => {
                                self.rooms.entry(room).or_insert_with(|| RoomOrder {
                                    next: floor + 1,
                                    waiting: BTreeMap::new(),
                                    repairing: false,
                                    known: 0,
                                })
                            }
                            (None, None) => continue,
                        };
                        order.known = order.known.max(head);
                        self.repair_if_needed(room);
                    }
                }
            }
        }
    }

    /// What reads the heads of the rooms for this dispatcher (see [`Watcher::run`]).
    pub fn watcher(&self) -> Watcher {
        Watcher {
            hub: Arc::clone(&self.hub),
            store: Weak::clone(&self.store),
            tx: self.inbox.tx.clone(),
        }
    }

    /// Takes one event: delivers it and whatever waited behind it, keeps it for later, or drops
    /// it as already delivered.
    fn accept(&mut self, event: MessageEvent) {
        let room = event.room;
        let order = match self.rooms.entry(room) {
            Entry::Occupied(order) => order.into_mut(),
            Entry::Vacant(vacant) => {
                let floor = self.hub.take_floor(room);
                vacant.insert(RoomOrder {
                    next: floor.map_or(event.seq, |f| (f + 1).min(event.seq)),
                    waiting: BTreeMap::new(),
                    repairing: false,
                    known: 0,
                })
            }
        };
        if event.seq < order.next {
            return;
        }
        if event.seq > order.next {
            order.waiting.insert(event.seq, event);
            self.repair_if_needed(room);
            return;
        }
        self.hub.deliver(&event);
        order.next += 1;
        while let Some(event) = order.waiting.remove(&order.next) {
            self.hub.deliver(&event);
            order.next += 1;
        }
    }

    /// Starts a repair read for `room` if it has a hole and none is under way.
    fn repair_if_needed(&mut self, room: RoomId) {
        let Some(order) = self.rooms.get_mut(&room) else {
            return;
        };
        // The first `seq` known to exist above the hole.
        let Some(first_waiting) = order
            .waiting
            .keys()
            .next()
            .copied()
            .or((order.known >= order.next).then_some(order.known + 1))
        else {
            return;
        };
        if order.repairing {
            return;
        }
        order.repairing = true;
        let after = order.next - 1;
        let missing = u32::try_from(first_waiting - order.next).unwrap_or(u32::MAX);
        let store = Weak::clone(&self.store);
        let tx = self.inbox.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(REPAIR_DELAY).await;
            // Gone means the server is stopping: nobody is left to deliver to.
            let Some(store) = store.upgrade() else { return };
            let read = store.events_after(room, after, missing.min(REPAIR_PAGE));
            drop(store);
            let events = match read.await {
                Ok(events) => {
                    if !events.is_empty() {
                        metrics::get().repairs.inc();
                    }
                    tracing::warn!(%room, after, found = events.len(), "filled a hole in the event stream from the store");
                    events
                }
                Err(e) => {
                    tracing::error!(%room, error = %e, "cannot read the store to fill a hole; will retry");
                    Vec::new()
                }
            };
            if let Some(tx) = tx.upgrade() {
                let _ = tx.send(Input::Repaired(room, events));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewEvent, SqliteStore, Synchronous};
    use shared::{ClientId, DisplayName, Username};
    use tokio_util::sync::CancellationToken;

    fn event(seq: u64) -> MessageEvent {
        MessageEvent::message(
            shared::DEFAULT_ROOM_ID,
            seq,
            seq,
            Username::parse("alice").expect("valid"),
            DisplayName::parse("alice").expect("valid"),
            format!("m{seq}"),
            0,
        )
    }

    /// A hub with one member in the default room, and what that member receives.
    fn watched_hub() -> (Arc<Hub>, mpsc::Receiver<crate::hub::Outbound>) {
        let hub = Arc::new(Hub::new());
        let (tx, rx) = mpsc::channel(64);
        let (id, control) = hub.connect(
            [1; 32],
            1,
            &Username::parse("bob").expect("valid"),
            tx.clone(),
            &CancellationToken::new(),
        );
        hub.join(
            shared::DEFAULT_ROOM_ID,
            id,
            &Username::parse("bob").expect("valid"),
            tx,
            control,
        );
        (hub, rx)
    }

    async fn seqs(rx: &mut mpsc::Receiver<crate::hub::Outbound>, n: usize) -> Vec<u64> {
        let mut out = Vec::new();
        while out.len() < n {
            let frame = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("delivered in time")
                .expect("open");
            out.extend(frame.event.map(|(_, seq)| seq));
        }
        out
    }

    async fn store_with_three_messages(dir: &tempfile::TempDir) -> Arc<dyn Store> {
        let (ignore, _inbox) = seam();
        let store =
            SqliteStore::open(&dir.path().join("t.db"), Synchronous::Normal, ignore).expect("open");
        let user = store
            .create_user(
                Username::parse("alice").expect("valid"),
                DisplayName::parse("alice").expect("valid"),
                "hash".into(),
            )
            .await
            .expect("user");
        for i in 1..=3 {
            store
                .append(NewEvent::post(
                    shared::DEFAULT_ROOM_ID,
                    user,
                    Username::parse("alice").expect("valid"),
                    DisplayName::parse("alice").expect("valid"),
                    ClientId::parse(format!("c{i}")).expect("valid"),
                    format!("m{i}"),
                ))
                .await
                .expect("stored");
        }
        Arc::new(store)
    }

    #[tokio::test]
    async fn events_that_arrive_out_of_order_are_delivered_in_seq_order_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_three_messages(&dir).await;
        let (hub, mut rx) = watched_hub();
        let (seam, inbox) = seam();
        tokio::spawn(Dispatcher::new(inbox, hub, &store).run());
        seam.committed(vec![event(1)]);
        seam.committed(vec![event(3)]);
        seam.committed(vec![event(2), event(1)]);
        assert_eq!(seqs(&mut rx, 3).await, vec![1, 2, 3]);
    }

    #[tokio::test]
    async fn a_room_first_heard_of_from_another_node_starts_where_a_join_here_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_three_messages(&dir).await;
        let (hub, mut rx) = watched_hub();
        // A join here read the room when it was empty; then the first news of it is event 3.
        hub.joined_at(shared::DEFAULT_ROOM_ID, 0);
        let (seam, inbox) = seam();
        tokio::spawn(Dispatcher::new(inbox, hub, &store).run());
        seam.remote(vec![event(3)]);
        assert_eq!(seqs(&mut rx, 3).await, vec![1, 2, 3]);
    }

    #[tokio::test]
    async fn events_the_bus_lost_at_the_end_of_a_burst_are_read_when_the_heads_are_polled() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_three_messages(&dir).await;
        let (hub, mut rx) = watched_hub();
        hub.joined_at(shared::DEFAULT_ROOM_ID, 0);
        let (_seam, inbox) = seam();
        let dispatcher = Dispatcher::new(inbox, hub, &store);
        let watcher = dispatcher.watcher();
        tokio::spawn(dispatcher.run());
        // Nothing ever comes through the seam: only the poll finds the room's three events.
        tokio::spawn(watcher.run(None));
        assert_eq!(seqs(&mut rx, 3).await, vec![1, 2, 3]);
    }

    #[tokio::test]
    async fn a_hole_that_stays_open_is_filled_from_the_store() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_three_messages(&dir).await;
        let (hub, mut rx) = watched_hub();
        let (seam, inbox) = seam();
        tokio::spawn(Dispatcher::new(inbox, hub, &store).run());
        // Event 2 never comes through the seam: it is lost on the way.
        seam.committed(vec![event(1)]);
        seam.committed(vec![event(3)]);
        assert_eq!(seqs(&mut rx, 3).await, vec![1, 2, 3]);
    }
}
