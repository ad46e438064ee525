//! The WebSocket endpoint: the upgrade's checks, then one small actor per connection.
//!
//! # The upgrade
//! `GET /ws` is refused with 403 if it carries an `Origin` that is not allowed, and with 401
//! without a valid session. A browser authenticates with its cookie (always together with its
//! `Origin`); anything that sends no `Origin` must present `Authorization: Bearer <token>`,
//! because a cookie without an `Origin` cannot be told apart from a cross-site forgery.
//!
//! # The connection
//! One task owns the socket. It waits on, in priority order: its cancellation token (logout,
//! lagging, shutdown), its outgoing queue (fed by the hub), finished appends (to acknowledge),
//! incoming frames, and the heartbeat timer. Outgoing frames are written in batches with one
//! flush per batch.
//!
//! # Ordering and the join seam
//! Per joined room the task remembers `delivered`, the highest `seq` it has written. On `join`
//! it first subscribes to the hub, then reads the store: anything committed after the
//! subscription is both in the queue and possibly in what the store returned, and the queue
//! copy is dropped because its `seq` is not above `delivered`. So a joiner sees every message
//! once, in order, with no gap between history and live delivery.

use std::collections::HashMap;
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::http::header::ORIGIN;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use shared::{
    ClientFrame, ClientId, ClientMsg, ErrorCode, MAX_FRAME_BYTES, PROTOCOL_VERSION, Presence,
    ReqOnly, RoomId, ServerMsg, close_code,
};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, timeout};

use crate::auth::{AuthUser, ClientIp, TokenSource, authenticate, request_token};
use crate::chat::{Actor, ChatError, Membership, Write};
use crate::error::ApiError;
use crate::guard::{loggable, origin_allowed};
use crate::hub::{ConnControl, ConnId, Kick, Outbound, encode};
use crate::limits::{RetryAfter, SlotRefused};
use crate::metrics;
use crate::startup::AppState;
use crate::store::{MAX_BATCH, now_ms};

/// Most frames written per flush.
const WRITE_BATCH: usize = 64;
/// A write (one batch and its flush) that takes longer than this means the peer is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Appends awaiting their commit per connection. At the limit the connection stops reading,
/// which pushes back on a client that sends faster than the store commits.
const MAX_IN_FLIGHT: usize = 64;
/// How long a closing connection waits for the peer's close frame.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(2);
/// Catch-up reads the store in pages of this many messages.
const CATCH_UP_PAGE: u32 = 500;

/// `GET /ws`: checks the Origin, the session and the socket caps, then upgrades.
pub async fn upgrade(
    State(state): State<AppState>,
    ClientIp(addr): ClientIp,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let origin = headers.get(ORIGIN);
    if let Some(origin) = origin
        && !origin_allowed(&state, origin)
    {
        tracing::info!(origin = %loggable(origin), "refused a WebSocket from a foreign origin");
        return Err(ApiError::Forbidden("This origin may not open a WebSocket."));
    }
    let (token, source) = request_token(&headers).ok_or(ApiError::Unauthorized("not logged in"))?;
    if source == TokenSource::Cookie && origin.is_none() {
        return Err(ApiError::Unauthorized(
            "Clients without an Origin must send Authorization: Bearer <token>.",
        ));
    }
    let user = authenticate(&state, &token).await?;
    let slot = state.sockets.acquire(user.id, addr).map_err(|why| {
        ApiError::Quota(
            match why {
                SlotRefused::User => "Too many open connections for this account; close some tabs.",
                SlotRefused::Address => "Too many open connections from this address.",
            }
            .into(),
        )
    })?;
    let tracker = state.tracker.clone();
    Ok(ws
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        // axum's defaults (128 KiB read buffer, unbounded write buffer) suit file transfer, and
        // tungstenite allocates the read buffer up front and keeps the write buffer at its peak
        // size for the life of the connection, so both cost memory per connection. Chat frames
        // are small: a 512-byte read chunk (a larger frame grows it as needed), writes gathered up
        // to 8 KiB (about 40 messages per syscall) and flushed once per batch, and a hard bound
        // on what a stalled peer can make us hold.
        .read_buffer_size(512)
        .write_buffer_size(8 * 1024)
        .max_write_buffer_size(MAX_FRAME_BYTES * 4)
        .on_upgrade(move |socket| {
            tracker.track_future(async move {
                let (sink, stream) = socket.split();
                serve(sink, stream, state, user).await;
                drop(slot);
            })
        })
        .into_response())
}

/// A joined room, as this connection sees it.
struct Joined {
    /// What the service admitted the user with. Boxed: it is a few hundred bytes, and the map of
    /// joined rooms allocates room for several entries even for one.
    membership: Box<Membership>,
    /// Highest `seq` written to this connection: queue entries at or below it are dropped.
    delivered: u64,
}

/// Why the loop ended.
enum Ending {
    /// Cancelled from outside: logout, lagging, or shutdown.
    Kicked,
    /// The session reached its `expires_at`.
    Expired,
    /// The client closed, or the socket failed.
    Gone,
    /// A frame over [`MAX_FRAME_BYTES`].
    TooBig,
    /// No sign of life for three heartbeats.
    Silent,
}

/// A write failed or timed out: the connection is over.
struct WriteFailed;

type WriteResult = Result<(), WriteFailed>;

/// One connection's state, apart from the socket halves.
struct Conn {
    state: AppState,
    user: AuthUser,
    /// The user, as the chat service knows them.
    actor: Actor,
    id: ConnId,
    control: Arc<ConnControl>,
    /// The sending half of this connection's queue, handed to the hub on each join.
    tx: mpsc::Sender<Outbound>,
    rooms: HashMap<RoomId, Joined>,
    /// Set after a request was refused for its rate: nothing more is read from this socket
    /// until then. A client that ignores `retry_after_ms` and keeps sending finds its frames
    /// waiting in TCP buffers instead of costing a parse and a refusal each.
    paused_until: Option<Instant>,
}

/// Runs one connection to its end. Generic over the socket halves so it can be driven by any
/// `Sink`/`Stream` pair.
pub async fn serve<S, R>(mut sink: S, mut stream: R, state: AppState, user: AuthUser)
where
    S: Sink<Message, Error = axum::Error> + Unpin + Send,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin + Send,
{
    // One group commit delivers up to MAX_BATCH events at once: a smaller queue would count
    // even a prompt reader as lagging.
    let (tx, mut rx) = mpsc::channel(state.config.queue.max(MAX_BATCH));
    let (id, control) = state.hub.connect(
        user.session,
        user.id,
        &user.username,
        tx.clone(),
        &state.shutdown,
    );
    // A logout between the upgrade's check and the line above missed this connection when it
    // closed the session's sockets; it marked the session revoked first, so look again now.
    if state.sessions.is_revoked(&user.session) {
        control.kick(Kick::SessionEnded);
    }
    let heartbeat = state.config.heartbeat();
    let mut conn = Conn {
        state,
        actor: Actor::from(&user),
        user,
        id,
        control: Arc::clone(&control),
        tx,
        rooms: HashMap::new(),
        paused_until: None,
    };
    tracing::debug!(conn = id, user = %conn.user.username, "connected");
    let _open = OpenSocket::new();

    let mut pending: FuturesUnordered<BoxFuture<'static, ServerMsg>> = FuturesUnordered::new();
    let mut ticker = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();

    // In a block of its own: a frame held across the loop's awaits would sit in every idle
    // connection's task for its whole life.
    let mut ending = {
        let hello = ServerMsg::Hello {
            user: conn.user.username.clone(),
            display_name: conn.user.display_name.clone(),
            protocol: PROTOCOL_VERSION,
            heartbeat_ms: u64::try_from(heartbeat.as_millis()).unwrap_or(u64::MAX),
        };
        match send(&mut sink, &hello).await {
            Ok(()) => None,
            Err(WriteFailed) => Some(Ending::Gone),
        }
    };

    while ending.is_none() {
        tokio::select! {
            biased;
            () = control.token.cancelled() => ending = Some(Ending::Kicked),
            Some(first) = rx.recv() => {
                // A peer that stopped reading blocks this write; a kick (lagging, logout,
                // shutdown) must still end the connection at once, not after the timeout.
                tokio::select! {
                    // Boxed for the same reason as frame handling below.
                    written = Box::pin(conn.write_queued(first, &mut rx, &mut sink)) => {
                        if written.is_err() {
                            ending = Some(Ending::Gone);
                        }
                    }
                    () = control.token.cancelled() => ending = Some(Ending::Kicked),
                }
            }
            Some(reply) = pending.next(), if !pending.is_empty() => {
                if send(&mut sink, &reply).await.is_err() {
                    ending = Some(Ending::Gone);
                }
            }
            () = pause_over(conn.paused_until) => {
                conn.paused_until = None;
            }
            frame = stream.next(), if pending.len() < MAX_IN_FLIGHT && conn.paused_until.is_none() => {
                last_heard = Instant::now();
                // A session that has ended serves nothing more, whatever the frame.
                if now_ms() >= conn.user.expires_at && !matches!(frame, None | Some(Err(_))) {
                    ending = Some(Ending::Expired);
                    continue;
                }
                let flow = match frame {
                    // Boxed: handling a frame (a join with its catch-up, say) needs far more
                    // state than waiting does, and an unboxed call would make every idle
                    // connection's task carry that state for its whole life.
                    Some(Ok(Message::Text(text))) => {
                        metrics::get().frames_in.inc();
                        Box::pin(conn.handle_text(text.as_str(), &mut sink, &mut pending)).await
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let reply = conn.refuse_bad_frame(
                            None,
                            "Binary frames are not supported; send JSON text frames.".into(),
                        );
                        flow(send(&mut sink, &reply).await)
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => ControlFlow::Continue(()),
                    Some(Ok(Message::Close(_))) | None => ControlFlow::Break(Ending::Gone),
                    Some(Err(e)) => ControlFlow::Break(if is_too_big(&e) {
                        Ending::TooBig
                    } else {
                        tracing::debug!(conn = id, error = %e, "socket read failed");
                        Ending::Gone
                    }),
                };
                if let ControlFlow::Break(why) = flow {
                    ending = Some(why);
                }
            }
            _ = ticker.tick() => {
                if now_ms() >= conn.user.expires_at {
                    ending = Some(Ending::Expired);
                } else if last_heard.elapsed() > heartbeat * 3 {
                    ending = Some(Ending::Silent);
                } else if Box::pin(timeout(WRITE_TIMEOUT, sink.send(Message::Ping(Default::default()))))
                    .await
                    .map_or(true, |r| r.is_err())
                {
                    ending = Some(Ending::Gone);
                }
            }
        }
    }

    let close = match ending {
        Some(Ending::Kicked) => Some(match control.kick.get() {
            Some(kick) => kick.close(),
            None => (1001, "server shutting down"),
        }),
        Some(Ending::Expired) => Some((close_code::SESSION_ENDED, "session expired")),
        Some(Ending::TooBig) => Some((1009, "frame too big")),
        Some(Ending::Silent) => Some((close_code::TIMEOUT, "heartbeat timeout")),
        Some(Ending::Gone) | None => None,
    };
    if let Some((code, reason)) = close {
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }));
        // Finish the close handshake: keep reading until the peer's own close (bounded). Dropping
        // the TCP connection at once would make a peer that is still writing receive a reset,
        // which discards our close frame unread, and the client would never learn the code.
        let handshake = async {
            sink.send(frame).await.ok()?;
            while let Some(Ok(msg)) = stream.next().await {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
            }
            Some(())
        };
        let _ = Box::pin(timeout(CLOSE_HANDSHAKE, handshake)).await;
    }
    let _ = Box::pin(timeout(Duration::from_secs(1), sink.close())).await;

    for room in conn.rooms.keys() {
        conn.state.hub.leave(*room, id);
    }
    conn.state.chat.connection_closed(id);
    conn.state
        .hub
        .disconnect(conn.user.session, conn.user.id, id);
    tracing::debug!(conn = id, "disconnected");
}

/// Longest pause of reading after a rate-limit refusal (see `Conn::paused_until`).
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Resolves when a pause of reading ends; never when there is none. The timer is made (and
/// boxed) only when the future is first polled with a pause set, so the idle path costs neither
/// an allocation per loop nor the timer's size in every connection's task.
async fn pause_over(until: Option<Instant>) {
    match until {
        Some(until) => Box::pin(tokio::time::sleep_until(until)).await,
        None => std::future::pending().await,
    }
}

/// A failed write ends the connection.
fn flow(written: WriteResult) -> ControlFlow<Ending> {
    match written {
        Ok(()) => ControlFlow::Continue(()),
        Err(WriteFailed) => ControlFlow::Break(Ending::Gone),
    }
}

fn is_too_big(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if matches!(
            err.downcast_ref::<tungstenite::Error>(),
            Some(tungstenite::Error::Capacity(_))
        ) {
            return true;
        }
        source = err.source();
    }
    false
}

/// Counts an open WebSocket for as long as it lives.
struct OpenSocket;

impl OpenSocket {
    fn new() -> Self {
        metrics::get().websockets.inc();
        OpenSocket
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        metrics::get().websockets.dec();
    }
}

/// Writes one frame and flushes it. The future is boxed: it holds a timer and the sink's send
/// state, and the connection's task should not carry that size while it waits.
fn send<'a, S>(
    sink: &'a mut S,
    msg: &ServerMsg,
) -> Pin<Box<dyn Future<Output = WriteResult> + Send + 'a>>
where
    S: Sink<Message, Error = axum::Error> + Unpin + Send,
{
    let frame = Message::Text(encode(msg));
    metrics::get().frames_out.inc();
    Box::pin(async move {
        match timeout(WRITE_TIMEOUT, sink.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(WriteFailed),
        }
    })
}

/// The `error` frame for a refusal of the chat service.
fn refusal(
    e: &ChatError,
    req: Option<u64>,
    room: Option<RoomId>,
    client_id: Option<ClientId>,
) -> ServerMsg {
    ServerMsg::Error {
        req,
        code: e.code(),
        message: e.to_string(),
        client_id,
        room,
        retry_after_ms: e.retry_after().map(RetryAfter::millis),
    }
}

impl Conn {
    /// Writes `first` and whatever else is queued (up to a batch), then flushes once.
    async fn write_queued<S>(
        &mut self,
        first: Outbound,
        rx: &mut mpsc::Receiver<Outbound>,
        sink: &mut S,
    ) -> WriteResult
    where
        S: Sink<Message, Error = axum::Error> + Unpin + Send,
    {
        let batch = async {
            let mut next = Some(first);
            let mut taken = 0;
            while let Some(out) = next {
                taken += 1;
                if let Some(frame) = self.admit(out) {
                    sink.feed(Message::Text(frame)).await?;
                }
                next = if taken < WRITE_BATCH {
                    rx.try_recv().ok()
                } else {
                    None
                };
            }
            // Counted once per batch, not per frame: one shared counter touched by every
            // connection's task for every frame would cost the fan-out.
            metrics::get()
                .frames_out
                .inc_by(u64::try_from(taken).unwrap_or(0));
            sink.flush().await
        };
        match timeout(WRITE_TIMEOUT, batch).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(WriteFailed),
        }
    }

    /// Decides whether a queued frame goes out: room events only for joined rooms, and only
    /// above what was already delivered (see the module docs on the join seam).
    fn admit(&mut self, out: Outbound) -> Option<Utf8Bytes> {
        if let Some(room) = out.leave {
            // The hub dropped this connection from the room already, unless it subscribed again
            // after the removal (a join racing it): leave for certain.
            self.rooms.remove(&room);
            self.state.hub.leave(room, self.id);
        }
        if let Some((room, seq)) = &out.event {
            let joined = self.rooms.get_mut(room)?;
            if *seq <= joined.delivered {
                return None;
            }
            if *seq > joined.delivered + 1 {
                // A hole in this connection's own stream: live delivery began after what its
                // join read (a race with the first events of a room another node wrote). The
                // client resumes from what it has, as after any lagging close.
                tracing::warn!(%room, delivered = joined.delivered, seq, "a hole in a connection's stream; closing it to resume");
                metrics::get().gap_kicks.inc();
                self.control.kick(Kick::Lagging);
                return None;
            }
            joined.delivered = *seq;
        }
        Some(out.frame.clone())
    }

    /// A refusal by the service; a rate-limit refusal also pauses reading (see
    /// `Conn::paused_until`).
    fn refuse(
        &mut self,
        e: &ChatError,
        req: Option<u64>,
        room: Option<RoomId>,
        client_id: Option<ClientId>,
    ) -> ServerMsg {
        if let Some(wait) = e.retry_after() {
            self.paused_until = Some(Instant::now() + wait.0.min(MAX_PAUSE));
        }
        refusal(e, req, room, client_id)
    }

    /// Handles one text frame from the client.
    async fn handle_text<S>(
        &mut self,
        text: &str,
        sink: &mut S,
        pending: &mut FuturesUnordered<BoxFuture<'static, ServerMsg>>,
    ) -> ControlFlow<Ending>
    where
        S: Sink<Message, Error = axum::Error> + Unpin + Send,
    {
        let ClientFrame { req, msg } = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(e) => {
                let req = serde_json::from_str::<ReqOnly>(text)
                    .unwrap_or_default()
                    .req;
                let reply = self.refuse_bad_frame(req, format!("Malformed frame: {e}"));
                return flow(send(sink, &reply).await);
            }
        };
        let result = match msg {
            ClientMsg::Join { room, since } => self.join(req, room, since, sink).await,
            ClientMsg::Leave { room } => {
                let reply = match self.state.chat.request(&self.actor) {
                    Ok(()) => {
                        if self.rooms.remove(&room).is_some() {
                            self.state.hub.leave(room, self.id);
                        }
                        ServerMsg::Left { req, room }
                    }
                    Err(e) => self.refuse(&e, req, Some(room), None),
                };
                send(sink, &reply).await
            }
            ClientMsg::Send {
                room,
                client_id,
                text,
                reply_to,
                attachments,
            } => {
                let write = Write::Post {
                    text,
                    reply_to,
                    attachments,
                };
                self.write(req, room, client_id, write, sink, pending).await
            }
            ClientMsg::Edit {
                room,
                client_id,
                target,
                text,
            } => {
                let write = Write::Edit { target, text };
                self.write(req, room, client_id, write, sink, pending).await
            }
            ClientMsg::Delete {
                room,
                client_id,
                target,
            } => {
                let write = Write::Delete { target };
                self.write(req, room, client_id, write, sink, pending).await
            }
            ClientMsg::React {
                room,
                client_id,
                target,
                emoji,
                on,
            } => {
                let write = Write::React { target, emoji, on };
                self.write(req, room, client_id, write, sink, pending).await
            }
            ClientMsg::Read { room, seq } => {
                // The answer is the `read` frame every connection of the user gets.
                let membership = self.rooms.get_mut(&room).map(|j| &mut *j.membership);
                match self
                    .state
                    .chat
                    .read_soon(&self.actor, membership, room, seq)
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let reply = self.refuse(&e, req, Some(room), None);
                        send(sink, &reply).await
                    }
                }
            }
            ClientMsg::Typing { room, on } => {
                let outcome = match self.rooms.get_mut(&room) {
                    Some(joined) => {
                        self.state
                            .chat
                            .typing(&self.actor, &mut joined.membership, self.id, on)
                            .await
                    }
                    None => Err(ChatError::NotJoined),
                };
                match outcome {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        let reply = self.refuse(&e, req, Some(room), None);
                        send(sink, &reply).await
                    }
                }
            }
            ClientMsg::Presence { status } => match self.state.chat.request(&self.actor) {
                Ok(()) => {
                    let away = status == Presence::Away;
                    self.state.hub.set_status(self.actor.id, self.id, away);
                    Ok(())
                }
                Err(e) => {
                    let reply = self.refuse(&e, req, None, None);
                    send(sink, &reply).await
                }
            },
            ClientMsg::History {
                room,
                before,
                limit,
            } => {
                let reply = self.history(req, room, before, limit).await;
                send(sink, &reply).await
            }
            ClientMsg::Ping { id } => {
                let reply = match self.state.chat.request(&self.actor) {
                    Ok(()) => ServerMsg::Pong { req, id },
                    Err(e) => self.refuse(&e, req, None, None),
                };
                send(sink, &reply).await
            }
        };
        flow(result)
    }

    /// The answer to a frame that is not a request: `bad_frame`, or `rate_limited` (with a
    /// pause of reading) when they come faster than the request rate, so that garbage costs a
    /// flooder as much allowance as requests do.
    fn refuse_bad_frame(&mut self, req: Option<u64>, message: String) -> ServerMsg {
        match self.state.chat.request(&self.actor) {
            Ok(()) => ServerMsg::Error {
                req,
                code: ErrorCode::BadFrame,
                message,
                client_id: None,
                room: None,
                retry_after_ms: None,
            },
            Err(e) => self.refuse(&e, req, None, None),
        }
    }

    /// Starts a write to a room's log; its acknowledgement (or refusal) is written when the
    /// store is done, without holding up the frames after it.
    async fn write<S>(
        &mut self,
        req: Option<u64>,
        room: RoomId,
        client_id: ClientId,
        write: Write,
        sink: &mut S,
        pending: &mut FuturesUnordered<BoxFuture<'static, ServerMsg>>,
    ) -> WriteResult
    where
        S: Sink<Message, Error = axum::Error> + Unpin + Send,
    {
        match self.start_write(req, room, client_id, write).await {
            Ok(append) => {
                pending.push(append);
                Ok(())
            }
            Err(reply) => send(sink, &reply).await,
        }
    }

    /// Checks a write through the service and returns the future that stores it and yields
    /// the acknowledgement.
    async fn start_write(
        &mut self,
        req: Option<u64>,
        room: RoomId,
        client_id: ClientId,
        write: Write,
    ) -> Result<BoxFuture<'static, ServerMsg>, ServerMsg> {
        let Some(joined) = self.rooms.get_mut(&room) else {
            let refused = match self.state.chat.request(&self.actor) {
                Ok(()) => self.state.chat.not_joined(&self.actor, room).await,
                Err(e) => e,
            };
            return Err(self.refuse(&refused, req, Some(room), Some(client_id)));
        };
        let outcome = self
            .state
            .chat
            .write(
                &self.actor,
                &mut joined.membership,
                client_id.clone(),
                write,
            )
            .await;
        let stored = match outcome {
            Ok(stored) => stored,
            Err(e) => return Err(self.refuse(&e, req, Some(room), Some(client_id))),
        };
        Ok(async move {
            match stored.await {
                Ok(done) => {
                    let (id, seq, ts) = done.receipt();
                    ServerMsg::Ack {
                        req,
                        room,
                        client_id,
                        id,
                        seq,
                        ts,
                    }
                }
                Err(e) => refusal(&e, req, Some(room), Some(client_id)),
            }
        }
        .boxed())
    }

    /// Serves `history`.
    async fn history(
        &mut self,
        req: Option<u64>,
        room: RoomId,
        before: u64,
        limit: Option<u32>,
    ) -> ServerMsg {
        let Some(joined) = self.rooms.get_mut(&room) else {
            let refused = match self.state.chat.request(&self.actor) {
                Ok(()) => self.state.chat.not_joined(&self.actor, room).await,
                Err(e) => e,
            };
            return self.refuse(&refused, req, Some(room), None);
        };
        let page = self
            .state
            .chat
            .history(&self.actor, &mut joined.membership, before, limit)
            .await;
        match page {
            Ok(page) => ServerMsg::History {
                req,
                room,
                has_more: page.has_more,
                messages: page.events,
            },
            Err(e) => self.refuse(&e, req, Some(room), None),
        }
    }

    /// Serves `join`: the service admits the user, then the connection subscribes to the hub,
    /// then reads the store (see the module docs).
    async fn join<S>(
        &mut self,
        req: Option<u64>,
        room: RoomId,
        since: Option<u64>,
        sink: &mut S,
    ) -> WriteResult
    where
        S: Sink<Message, Error = axum::Error> + Unpin + Send,
    {
        let joined = match self.state.chat.join(&self.actor, room, since).await {
            Ok(joined) => joined,
            Err(e) => {
                let reply = self.refuse(&e, req, Some(room), None);
                return send(sink, &reply).await;
            }
        };
        let mut membership = joined.membership;
        let online = self.state.hub.join(
            room,
            self.id,
            &self.actor.username,
            self.tx.clone(),
            Arc::clone(&self.control),
        );
        // A kick, ban or leave between the service's check and the subscription above found
        // nothing to remove here: look again now that the subscription is in place.
        if let Err(e) = self
            .state
            .chat
            .still_member(&self.actor, &mut membership)
            .await
        {
            self.state.hub.leave(room, self.id);
            return send(sink, &refusal(&e, req, Some(room), None)).await;
        }

        // From here on, every new event of the room is also in our queue.
        //
        // A catch-up replays at most CATCH_UP_MAX events. Further behind than that, or ahead of
        // the room (a `since` from another database), the join is answered as a fresh one: the
        // newest page, with older messages left to `history`. Either way one request yields a
        // bounded answer.
        let read = match joined.since {
            None => self
                .state
                .chat
                .newest(&membership)
                .await
                .map(|page| (page.head, Some(page))),
            Some(since) => self
                .state
                .chat
                .last_seq(&membership)
                .await
                .map(|last| (last.max(since), None)),
        };
        let (last_seq, page) = match read {
            Ok(read) => read,
            Err(e) => {
                self.state.hub.leave(room, self.id);
                self.rooms.remove(&room);
                return send(sink, &refusal(&e, req, Some(room), None)).await;
            }
        };
        let delivered = match (&page, joined.since) {
            (Some(_), _) => last_seq,
            (None, since) => since.unwrap_or(0),
        };
        // Live delivery must start right after what was read (see `Hub::joined_at`).
        self.state.hub.joined_at(room, last_seq);
        self.rooms.insert(
            room,
            Joined {
                membership: Box::new(membership.clone()),
                delivered,
            },
        );
        send(
            sink,
            &ServerMsg::Joined {
                req,
                room,
                last_seq,
                away: self.state.hub.away_among(&online),
                online,
            },
        )
        .await?;
        match page {
            Some(page) => {
                let reply = ServerMsg::History {
                    req,
                    room,
                    has_more: page.has_more,
                    messages: page.events,
                };
                send(sink, &reply).await
            }
            None => self.catch_up(req, &membership, last_seq, sink).await,
        }
    }

    /// Writes every stored event of the room above `delivered` up to `until` (the room's head
    /// when the join was handled), in order; anything later is in the queue already.
    async fn catch_up<S>(
        &mut self,
        req: Option<u64>,
        membership: &Membership,
        until: u64,
        sink: &mut S,
    ) -> WriteResult
    where
        S: Sink<Message, Error = axum::Error> + Unpin + Send,
    {
        let room = membership.room();
        loop {
            let after = self.rooms.get(&room).map_or(0, |j| j.delivered);
            let page = match self
                .state
                .chat
                .events_after(membership, after, CATCH_UP_PAGE)
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    let mut reply = refusal(&e, req, Some(room), None);
                    if let ServerMsg::Error { message, .. } = &mut reply {
                        *message = "Catch-up failed; join again.".into();
                    }
                    return send(sink, &reply).await;
                }
            };
            let full = page.len() >= CATCH_UP_PAGE as usize;
            let last = page.last().map(|m| m.seq);
            let done = !full || last.is_none_or(|seq| seq >= until);
            let frames = async {
                for message in page {
                    sink.feed(Message::Text(encode(&ServerMsg::Message(Box::new(
                        message,
                    )))))
                    .await?;
                }
                sink.flush().await
            };
            if !matches!(timeout(WRITE_TIMEOUT, frames).await, Ok(Ok(()))) {
                return Err(WriteFailed);
            }
            if let (Some(last), Some(joined)) = (last, self.rooms.get_mut(&room)) {
                joined.delivered = last;
            }
            if done {
                return Ok(());
            }
        }
    }
}
