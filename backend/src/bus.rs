//! The bus between server nodes: Redis pub/sub carrying the news of one node to the others.
//!
//! Several nodes share one PostgreSQL database, the durable log and the source of truth. The
//! bus only carries news, so it may lose some: every note is a hint that makes a delivery
//! sooner, never the only way to it.
//!
//! - **Events of the log** (each commit's events): the receiving node feeds them to its
//!   [`crate::events::Dispatcher`], which orders them by `seq` with its own commits, and reads
//!   the store for a hole that stays open, or for a room whose head moved past what it
//!   delivered: every second while the bus is [`Bus::unsure`] (down, resubscribed, or a node
//!   said [`Note::Lost`] within [`UNSURE`]), every ten seconds otherwise. Redis pub/sub loses
//!   nothing on a subscription that stays connected, and every loss shows as one of those
//!   signs, so a lost note delays a delivery by about a second; it never drops one.
//! - **Frames for people** (a frame to a user's connections, to everyone, to a room, typing)
//!   and **removals** (a kick, ban or leave) are applied on every node as on the one where they
//!   happened.
//! - **Sessions ended** (logout): every node forgets the session and closes its sockets.
//! - **Rules**: a change of the content filter's rules empties the other nodes' caches of them.
//! - **Epochs**: a change of who may post in a room (see `crate::chat`) marks the room's
//!   membership snapshots stale on every node. When the bus comes back after an outage, every
//!   snapshot on the node is marked stale, since changes may have been missed meanwhile.
//! - **Presence**: each node says when a person comes online or goes offline in a room, and
//!   every [`HEARTBEAT`] sends its whole view. A node not heard for [`NODE_EXPIRY`] is taken
//!   for dead and its people go offline.
//!
//! Pub/sub rather than streams: a note is useful only for a moment, the log that must not lose
//! anything is PostgreSQL, and pub/sub keeps nothing in Redis's memory. A stream would keep a
//! second copy of the log in Redis for the few notes that pub/sub loses, which the store
//! already fills in.
//!
//! Everything goes on one channel, [`CHANNEL`], as JSON ([`Envelope`]); a node skips its own.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use shared::{MessageEvent, RoomId, Username};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics;
use crate::store::UserId;

/// The one channel every node publishes to and subscribes to.
pub const CHANNEL: &str = "chat:bus";
/// How often a node publishes its whole presence view (which also says it is alive).
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A node not heard for this long is taken for dead: its people go offline.
pub const NODE_EXPIRY: Duration = Duration::from_secs(8);
/// The subscription is taken for broken when not even our own heartbeat came back for this long.
const SILENCE: Duration = Duration::from_secs(6);
/// How long after a sign of lost news the dispatcher keeps reading the store every second.
pub const UNSURE: Duration = Duration::from_secs(10);
/// How long connecting to Redis, or one publication, may take.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// The wait between attempts to reach Redis.
const RETRY: Duration = Duration::from_millis(500);
/// Notes waiting to be published; more are dropped (and counted).
const QUEUE: usize = 65_536;
/// The most notes sent in one pipeline.
const BATCH: usize = 256;

/// One piece of news.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Note {
    /// Events committed together on the sending node.
    Events {
        /// In `seq` order within each room.
        events: Vec<MessageEvent>,
    },
    /// A frame for every connection of a user.
    ToUser {
        /// The user.
        user: UserId,
        /// The encoded server frame.
        frame: String,
    },
    /// A frame for every connection.
    ToAll {
        /// The encoded server frame.
        frame: String,
    },
    /// A frame for every connection in a room, but those of `except` if given.
    ToRoom {
        /// The room.
        room: RoomId,
        /// Whose connections are skipped (their own typing).
        except: Option<Username>,
        /// The encoded server frame.
        frame: String,
    },
    /// A user left a room or was removed from it.
    Remove {
        /// The room.
        room: RoomId,
        /// The user.
        user: UserId,
        /// Their handle.
        name: Username,
        /// The `removed` frame for their connections.
        frame: String,
    },
    /// A session ended (logout).
    EndSession {
        /// The SHA-256 of the session's token, in hex.
        session: String,
    },
    /// Who may post in a room, or how, changed.
    Epoch {
        /// The room.
        room: RoomId,
    },
    /// The content filter's rules changed (`None`: the server-wide ones).
    Rules {
        /// The room whose rules changed.
        scope: Option<RoomId>,
    },
    /// A person came online (first connection in the room on the sending node) or went
    /// offline (the last one closed).
    Presence {
        /// The room.
        room: RoomId,
        /// The person.
        user: Username,
        /// Online or offline.
        online: bool,
    },
    /// The sending node failed to publish some notes (Redis was unreachable from it, or its
    /// queue was full): the others read the store for what they may have missed.
    Lost,
    /// The sending node's whole view: who is online in which room. Also its sign of life.
    Heartbeat {
        /// Each room with someone online on the sending node, and who.
        rooms: Vec<(RoomId, Vec<Username>)>,
    },
}

/// A note as it travels.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    /// The sending node.
    pub node: u64,
    /// When it was sent (ms since the Unix epoch), for the lag metric.
    pub at: u64,
    /// The news.
    pub note: Note,
}

/// What a node does with the news of the others.
pub trait Receiver: Send + Sync + 'static {
    /// A note from node `node`.
    fn note(&self, node: u64, note: Note);
    /// Every [`HEARTBEAT`], with whether the bus works now: expire the nodes not heard for
    /// [`NODE_EXPIRY`]. True if one was: a node cut from Redis may have lost notes too.
    fn tick(&self, up: bool) -> bool;
    /// The bus came back after an outage (or first connected): news may have been missed.
    fn reconnected(&self);
    /// This node's presence view, for its heartbeat.
    fn view(&self) -> Vec<(RoomId, Vec<Username>)>;
}

/// This node's end of the bus.
pub struct Bus {
    node: u64,
    /// Notes waiting for the publisher, which encodes them (not the caller: the store's
    /// writer thread publishes every commit).
    tx: mpsc::Sender<Envelope>,
    /// The subscription is live (our own heartbeat came back lately).
    subscribed: AtomicBool,
    /// The last publication succeeded.
    publishing: AtomicBool,
    /// Notes were dropped since the last publication: say so with the next one.
    dropped: AtomicBool,
    /// When this node last had reason to think news was lost (ms since the Unix epoch).
    trouble_at: AtomicU64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Bus {
    /// Connects to Redis at `url` in the background (the server starts whether Redis is there
    /// or not, and keeps trying), and hands every other node's notes to `receiver` until
    /// `shutdown`.
    pub fn start(
        url: &str,
        receiver: Arc<dyn Receiver>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let node = RandomState::new().hash_one((std::process::id(), now_ms()));
        let (tx, rx) = mpsc::channel(QUEUE);
        let bus = Arc::new(Self {
            node,
            tx,
            subscribed: AtomicBool::new(false),
            publishing: AtomicBool::new(false),
            dropped: AtomicBool::new(false),
            trouble_at: AtomicU64::new(now_ms()),
        });
        tokio::spawn(publisher(
            client.clone(),
            rx,
            Arc::clone(&bus),
            shutdown.clone(),
        ));
        tokio::spawn(subscriber(
            client,
            Arc::clone(&bus),
            Arc::clone(&receiver),
            shutdown.clone(),
        ));
        tokio::spawn(heartbeat(Arc::clone(&bus), receiver, shutdown));
        tracing::info!(node = format_args!("{node:016x}"), "bus started");
        Ok(bus)
    }

    /// This node's id on the bus.
    pub fn node(&self) -> u64 {
        self.node
    }

    /// Whether the bus works both ways now.
    pub fn is_up(&self) -> bool {
        self.subscribed.load(Ordering::Acquire) && self.publishing.load(Ordering::Acquire)
    }

    /// Whether news may have been lost lately: the bus is down, or it was (or a node said it
    /// lost notes) within [`UNSURE`]. The dispatcher reads the store more often meanwhile.
    pub fn unsure(&self) -> bool {
        !self.is_up()
            || now_ms().saturating_sub(self.trouble_at.load(Ordering::Acquire))
                < u64::try_from(UNSURE.as_millis()).unwrap_or(u64::MAX)
    }

    /// Notes that news may have been lost now.
    fn trouble(&self) {
        self.trouble_at.store(now_ms(), Ordering::Release);
    }

    /// Notes that a note of ours was not published.
    fn drop_notes(&self, n: u64) {
        metrics::get().bus_dropped.inc_by(n);
        self.dropped.store(true, Ordering::Release);
        self.trouble();
    }

    fn set_up(&self) {
        metrics::get().bus_up.set(i64::from(self.is_up()));
    }

    /// Queues a note for the other nodes. Never waits: a full queue drops it (the store repairs
    /// events; other notes are best effort, see the module docs).
    pub fn publish(&self, note: Note) {
        let envelope = Envelope {
            node: self.node,
            at: now_ms(),
            note,
        };
        if self.tx.try_send(envelope).is_err() {
            self.drop_notes(1);
        }
    }
}

/// Connects with a time limit.
async fn connect(client: &redis::Client) -> Option<redis::aio::MultiplexedConnection> {
    match tokio::time::timeout(REDIS_TIMEOUT, client.get_multiplexed_async_connection()).await {
        Ok(Ok(conn)) => Some(conn),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "bus: cannot reach Redis");
            None
        }
        Err(_) => None,
    }
}

/// Publishes queued notes, a pipeline at a time. While Redis is unreachable, notes are dropped
/// as they come (they would be stale by the time it is back).
async fn publisher(
    client: redis::Client,
    mut rx: mpsc::Receiver<Envelope>,
    bus: Arc<Bus>,
    shutdown: CancellationToken,
) {
    let mut conn = None;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        batch.clear();
        tokio::select! {
            () = shutdown.cancelled() => return,
            n = rx.recv_many(&mut batch, BATCH) => if n == 0 { return },
        }
        if conn.is_none() {
            conn = connect(&client).await;
            if conn.is_none() {
                if bus.publishing.swap(false, Ordering::AcqRel) {
                    tracing::warn!("bus: Redis unreachable; publishing nothing until it is back");
                }
                bus.set_up();
                bus.drop_notes(batch.len() as u64);
                // Drop what queued meanwhile, then try again a little later.
                tokio::time::sleep(RETRY).await;
                while rx.try_recv().is_ok() {
                    bus.drop_notes(1);
                }
                continue;
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let mut pipe = redis::pipe();
        if bus.dropped.swap(false, Ordering::AcqRel) {
            let lost = Envelope {
                node: bus.node,
                at: now_ms(),
                note: Note::Lost,
            };
            if let Ok(json) = serde_json::to_string(&lost) {
                pipe.cmd("PUBLISH").arg(CHANNEL).arg(json).ignore();
            }
        }
        for envelope in &batch {
            let Ok(json) = serde_json::to_string(envelope) else {
                tracing::error!("cannot encode a bus note");
                continue;
            };
            pipe.cmd("PUBLISH").arg(CHANNEL).arg(json).ignore();
        }
        match tokio::time::timeout(REDIS_TIMEOUT, pipe.query_async::<()>(c)).await {
            Ok(Ok(())) => {
                if !bus.publishing.swap(true, Ordering::AcqRel) {
                    tracing::info!("bus: publishing");
                }
            }
            _ => {
                tracing::warn!("bus: a publication failed; reconnecting");
                bus.drop_notes(batch.len() as u64);
                bus.publishing.store(false, Ordering::Release);
                conn = None;
            }
        }
        bus.set_up();
    }
}

/// Subscribes, hands the others' notes to `receiver`, and starts again when the subscription
/// breaks or goes silent.
async fn subscriber(
    client: redis::Client,
    bus: Arc<Bus>,
    receiver: Arc<dyn Receiver>,
    shutdown: CancellationToken,
) {
    loop {
        let subscription = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(CHANNEL).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = tokio::select! {
            () = shutdown.cancelled() => return,
            r = tokio::time::timeout(REDIS_TIMEOUT, subscription) => r,
        };
        let mut pubsub = match pubsub {
            Ok(Ok(p)) => p,
            _ => {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(RETRY) => continue,
                }
            }
        };
        tracing::info!("bus: subscribed");
        bus.subscribed.store(true, Ordering::Release);
        bus.set_up();
        // What was published while we were not subscribed is lost to us.
        bus.trouble();
        receiver.reconnected();
        let mut stream = pubsub.on_message();
        loop {
            let msg = tokio::select! {
                () = shutdown.cancelled() => return,
                m = tokio::time::timeout(SILENCE, stream.next()) => m,
            };
            let Ok(Some(msg)) = msg else {
                tracing::warn!("bus: the subscription broke or went silent; subscribing again");
                break;
            };
            let Ok(envelope) = serde_json::from_slice::<Envelope>(msg.get_payload_bytes()) else {
                tracing::warn!("bus: a note that does not decode; skipped");
                continue;
            };
            if envelope.node == bus.node {
                continue;
            }
            if matches!(envelope.note, Note::Lost) {
                bus.trouble();
            }
            let lag = now_ms().saturating_sub(envelope.at);
            metrics::get().bus_lag.observe(lag as f64 / 1000.0);
            receiver.note(envelope.node, envelope.note);
        }
        bus.subscribed.store(false, Ordering::Release);
        bus.trouble();
        bus.set_up();
    }
}

/// Every [`HEARTBEAT`]: publishes this node's presence view and expires silent nodes.
async fn heartbeat(bus: Arc<Bus>, receiver: Arc<dyn Receiver>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(HEARTBEAT);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        bus.publish(Note::Heartbeat {
            rooms: receiver.view(),
        });
        if receiver.tick(bus.is_up()) {
            bus.trouble();
        }
    }
}
