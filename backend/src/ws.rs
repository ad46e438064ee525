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
    CATCH_UP_MAX, ClientId, ClientMsg, ErrorCode, HISTORY_PAGE, MAX_FRAME_BYTES, MessageText,
    RoomName, ServerMsg, ValueError, close_code,
};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, timeout};

use crate::auth::{AuthUser, ClientIp, TokenSource, authenticate, request_token};
use crate::error::ApiError;
use crate::guard::{loggable, origin_allowed};
use crate::hub::{ConnControl, ConnId, Kick, Outbound, encode};
use crate::limits::{RetryAfter, SlotRefused};
use crate::startup::AppState;
use crate::store::{MAX_BATCH, NewMessage, RoomId, now_ms};

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
    id: RoomId,
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
    id: ConnId,
    control: Arc<ConnControl>,
    /// The sending half of this connection's queue, handed to the hub on each join.
    tx: mpsc::Sender<Outbound>,
    rooms: HashMap<RoomName, Joined>,
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
    let (id, control) = state.hub.connect(user.session, &state.shutdown);
    // A logout between the upgrade's check and the line above missed this connection when it
    // closed the session's sockets; it marked the session revoked first, so look again now.
    if state.sessions.is_revoked(&user.session) {
        control.kick(Kick::SessionEnded);
    }
    // One group commit delivers up to MAX_BATCH events at once: a smaller queue would count
    // even a prompt reader as lagging.
    let (tx, mut rx) = mpsc::channel(state.config.queue.max(MAX_BATCH));
    let heartbeat = state.config.heartbeat();
    let mut conn = Conn {
        state,
        user,
        id,
        control: Arc::clone(&control),
        tx,
        rooms: HashMap::new(),
        paused_until: None,
    };
    tracing::debug!(conn = id, user = %conn.user.username, "connected");

    let mut pending: FuturesUnordered<BoxFuture<'static, ServerMsg>> = FuturesUnordered::new();
    let mut ticker = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();

    let hello = ServerMsg::Hello {
        user: conn.user.username.clone(),
        heartbeat_ms: u64::try_from(heartbeat.as_millis()).unwrap_or(u64::MAX),
    };
    let mut ending = match send(&mut sink, &hello).await {
        Ok(()) => None,
        Err(WriteFailed) => Some(Ending::Gone),
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
                        Box::pin(conn.handle_text(text.as_str(), &mut sink, &mut pending)).await
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let reply = conn.refuse_bad_frame(
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
        conn.state.hub.leave(room, id);
    }
    conn.state.hub.disconnect(conn.user.session, id);
    tracing::debug!(conn = id, "disconnected");
}

/// A catch-up costs one more request token per this many messages it replays.
const CATCH_UP_COST: u64 = 100;

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
    Box::pin(async move {
        match timeout(WRITE_TIMEOUT, sink.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(WriteFailed),
        }
    })
}

fn error(code: ErrorCode, message: impl Into<String>) -> ServerMsg {
    ServerMsg::Error {
        code,
        message: message.into(),
        client_id: None,
        room: None,
        retry_after_ms: None,
    }
}

/// The answer to a request over its rate limit: the same request may be sent again after
/// `retry_after_ms`.
fn rate_limited(
    wait: RetryAfter,
    room: Option<RoomName>,
    client_id: Option<ClientId>,
) -> ServerMsg {
    ServerMsg::Error {
        code: ErrorCode::RateLimited,
        message: format!("Too many requests; try again in {} ms.", wait.millis()),
        client_id,
        room,
        retry_after_ms: Some(wait.millis()),
    }
}

fn room_error(code: ErrorCode, message: impl Into<String>, room: &RoomName) -> ServerMsg {
    ServerMsg::Error {
        code,
        message: message.into(),
        client_id: None,
        room: Some(room.clone()),
        retry_after_ms: None,
    }
}

fn send_error(
    code: ErrorCode,
    message: impl Into<String>,
    room: &RoomName,
    client_id: &ClientId,
) -> ServerMsg {
    ServerMsg::Error {
        code,
        message: message.into(),
        client_id: Some(client_id.clone()),
        room: Some(room.clone()),
        retry_after_ms: None,
    }
}

fn has_more(page: &[shared::MessageEvent]) -> bool {
    page.first().is_some_and(|m| m.seq > 1)
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
        if let Some((room, seq)) = &out.event {
            let joined = self.rooms.get_mut(room)?;
            if *seq <= joined.delivered {
                return None;
            }
            joined.delivered = *seq;
        }
        Some(out.frame.clone())
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
        let msg = match serde_json::from_str::<ClientMsg>(text) {
            Ok(msg) => msg,
            Err(e) => {
                let reply = self.refuse_bad_frame(format!("Malformed frame: {e}"));
                return flow(send(sink, &reply).await);
            }
        };
        if let Err(reply) = self.check_rate(&msg) {
            return flow(send(sink, &reply).await);
        }
        let result = match msg {
            ClientMsg::Join { room, since } => self.join(room, since, sink).await,
            ClientMsg::Leave { room } => {
                if self.rooms.remove(&room).is_some() {
                    self.state.hub.leave(&room, self.id);
                }
                send(sink, &ServerMsg::Left { room }).await
            }
            ClientMsg::Send {
                room,
                client_id,
                text,
            } => match self.prepare_send(room, client_id, text).await {
                Ok(append) => {
                    pending.push(append);
                    Ok(())
                }
                Err(reply) => send(sink, &reply).await,
            },
            ClientMsg::History {
                room,
                before,
                limit,
            } => {
                let reply = self.history(room, before, limit).await;
                send(sink, &reply).await
            }
            ClientMsg::Ping { id } => send(sink, &ServerMsg::Pong { id }).await,
        };
        flow(result)
    }

    /// Applies the user's rate limits to a frame: sends count against the send rate, every
    /// other request (`ping` included) against the request rate.
    /// The answer to a frame that is not a request: `bad_frame`, or `rate_limited` (with a
    /// pause of reading) when they come faster than the request rate, so that garbage costs a
    /// flooder as much allowance as requests do.
    fn refuse_bad_frame(&mut self, message: String) -> ServerMsg {
        match self.state.limits.request(self.user.id) {
            Ok(()) => error(ErrorCode::BadFrame, message),
            Err(wait) => {
                self.paused_until = Some(Instant::now() + wait.0.min(MAX_PAUSE));
                rate_limited(wait, None, None)
            }
        }
    }

    fn check_rate(&mut self, msg: &ClientMsg) -> Result<(), ServerMsg> {
        let refused = self.rate_refusal(msg);
        if let Err(ServerMsg::Error {
            retry_after_ms: Some(ms),
            ..
        }) = &refused
        {
            let pause = Duration::from_millis(*ms).min(MAX_PAUSE);
            self.paused_until = Some(Instant::now() + pause);
        }
        refused
    }

    fn rate_refusal(&self, msg: &ClientMsg) -> Result<(), ServerMsg> {
        let limits = &self.state.limits;
        match msg {
            ClientMsg::Send {
                room, client_id, ..
            } => limits
                .send(self.user.id)
                .map_err(|w| rate_limited(w, Some(room.clone()), Some(client_id.clone()))),
            ClientMsg::Join { room, .. }
            | ClientMsg::Leave { room }
            | ClientMsg::History { room, .. } => limits
                .request(self.user.id)
                .map_err(|w| rate_limited(w, Some(room.clone()), None)),
            ClientMsg::Ping { .. } => limits
                .request(self.user.id)
                .map_err(|w| rate_limited(w, None, None)),
        }
    }

    /// Checks a `send` and returns the future that stores it and yields the acknowledgement.
    async fn prepare_send(
        &self,
        room: RoomName,
        client_id: ClientId,
        text: String,
    ) -> Result<BoxFuture<'static, ServerMsg>, ServerMsg> {
        let Some(joined) = self.rooms.get(&room) else {
            return Err(match self.state.store.find_room(room.clone()).await {
                Ok(Some(_)) => send_error(
                    ErrorCode::NotJoined,
                    "Join the room before sending to it.",
                    &room,
                    &client_id,
                ),
                Ok(None) => send_error(ErrorCode::NoSuchRoom, "No such room.", &room, &client_id),
                Err(e) => {
                    tracing::error!(error = %e, "room lookup failed");
                    send_error(ErrorCode::Internal, "Try again.", &room, &client_id)
                }
            });
        };
        let text = match MessageText::parse(text) {
            Ok(text) => text,
            Err(e) => {
                let code = match e {
                    ValueError::MessageTooLong(_) => ErrorCode::TooLong,
                    _ => ErrorCode::Invalid,
                };
                return Err(send_error(code, e.to_string(), &room, &client_id));
            }
        };
        let append = self.state.store.append(NewMessage {
            room_id: joined.id,
            author_id: self.user.id,
            author: self.user.username.clone(),
            client_id: client_id.clone(),
            text: text.into_inner(),
        });
        Ok(async move {
            match append.await {
                Ok(done) => ServerMsg::Ack {
                    room: done.event.room,
                    client_id,
                    id: done.event.id,
                    seq: done.event.seq,
                    ts: done.event.ts,
                },
                Err(e) => {
                    tracing::error!(error = %e, "append failed");
                    send_error(
                        ErrorCode::Internal,
                        "The message was not stored; send it again.",
                        &room,
                        &client_id,
                    )
                }
            }
        }
        .boxed())
    }

    /// Serves `history`.
    async fn history(&self, room: RoomName, before: u64, limit: Option<u32>) -> ServerMsg {
        let Some(joined) = self.rooms.get(&room) else {
            return room_error(ErrorCode::NotJoined, "Join the room first.", &room);
        };
        let limit = limit.unwrap_or(HISTORY_PAGE).clamp(1, HISTORY_PAGE);
        match self
            .state
            .store
            .messages_before(joined.id, before, limit)
            .await
        {
            Ok(messages) => ServerMsg::History {
                room,
                has_more: has_more(&messages),
                messages,
            },
            Err(e) => {
                tracing::error!(error = %e, "history read failed");
                room_error(ErrorCode::Internal, "Try again.", &room)
            }
        }
    }

    /// Serves `join`: subscribe first, then read the store (see the module docs).
    async fn join<S>(&mut self, room: RoomName, since: Option<u64>, sink: &mut S) -> WriteResult
    where
        S: Sink<Message, Error = axum::Error> + Unpin + Send,
    {
        let store = &self.state.store;
        let record = match store.find_room(room.clone()).await {
            Ok(Some(record)) => record,
            Ok(None) => {
                return send(
                    sink,
                    &room_error(ErrorCode::NoSuchRoom, "No such room.", &room),
                )
                .await;
            }
            Err(e) => {
                tracing::error!(error = %e, "room lookup failed");
                return send(sink, &room_error(ErrorCode::Internal, "Try again.", &room)).await;
            }
        };
        // A long catch-up costs more than one request: one more token per CATCH_UP_COST
        // messages it will replay, so that joins cannot turn a small allowance into a flood of
        // frames.
        if let Some(since) = since
            && since <= record.last_seq
        {
            let extra = (record.last_seq - since).min(CATCH_UP_MAX) / CATCH_UP_COST;
            if extra > 0
                && let Err(wait) = self
                    .state
                    .limits
                    .request_n(self.user.id, u32::try_from(extra).unwrap_or(u32::MAX))
            {
                self.paused_until = Some(Instant::now() + wait.0.min(MAX_PAUSE));
                return send(sink, &rate_limited(wait, Some(room), None)).await;
            }
        }
        if !self.rooms.contains_key(&room)
            && let Err(e) = store.add_member(record.id, self.user.id).await
        {
            tracing::error!(error = %e, "membership write failed");
            return send(sink, &room_error(ErrorCode::Internal, "Try again.", &room)).await;
        }
        let online = self.state.hub.join(
            &room,
            self.id,
            &self.user.username,
            self.tx.clone(),
            Arc::clone(&self.control),
        );

        // From here on, every new event of the room is also in our queue.
        //
        // A catch-up replays at most CATCH_UP_MAX events. Further behind than that, or ahead of
        // the room (a `since` from another database), the join is answered as a fresh one: the
        // newest page, with older messages left to `history`. Either way one request yields a
        // bounded answer.
        let since = match since {
            Some(since) if since <= record.last_seq && record.last_seq - since <= CATCH_UP_MAX => {
                Some(since)
            }
            _ => None,
        };
        let read = match since {
            None => store
                .messages_before(record.id, u64::MAX, HISTORY_PAGE)
                .await
                .map(|page| (page.last().map_or(0, |m| m.seq), Some(page))),
            Some(since) => store
                .find_room(room.clone())
                .await
                .map(|r| (r.map_or(since, |r| r.last_seq), None)),
        };
        let (last_seq, page) = match read {
            Ok(read) => read,
            Err(e) => {
                tracing::error!(error = %e, "join read failed");
                self.state.hub.leave(&room, self.id);
                self.rooms.remove(&room);
                return send(sink, &room_error(ErrorCode::Internal, "Try again.", &room)).await;
            }
        };
        let delivered = match (&page, since) {
            (Some(_), _) => last_seq,
            (None, since) => since.unwrap_or(0),
        };
        self.rooms.insert(
            room.clone(),
            Joined {
                id: record.id,
                delivered,
            },
        );
        send(
            sink,
            &ServerMsg::Joined {
                room: room.clone(),
                last_seq,
                online,
            },
        )
        .await?;
        match page {
            Some(messages) => {
                let reply = ServerMsg::History {
                    room,
                    has_more: has_more(&messages),
                    messages,
                };
                send(sink, &reply).await
            }
            None => self.catch_up(room, record.id, last_seq, sink).await,
        }
    }

    /// Writes every stored message of `room` above `delivered` up to `until` (the room's head
    /// when the join was handled), in order; anything later is in the queue already.
    async fn catch_up<S>(
        &mut self,
        room: RoomName,
        room_id: RoomId,
        until: u64,
        sink: &mut S,
    ) -> WriteResult
    where
        S: Sink<Message, Error = axum::Error> + Unpin + Send,
    {
        loop {
            let after = self.rooms.get(&room).map_or(0, |j| j.delivered);
            let page = match self
                .state
                .store
                .messages_after(room_id, after, CATCH_UP_PAGE)
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(error = %e, "catch-up read failed");
                    return send(
                        sink,
                        &room_error(ErrorCode::Internal, "Catch-up failed; join again.", &room),
                    )
                    .await;
                }
            };
            let full = page.len() >= CATCH_UP_PAGE as usize;
            let last = page.last().map(|m| m.seq);
            let done = !full || last.is_none_or(|seq| seq >= until);
            let frames = async {
                for message in page {
                    sink.feed(Message::Text(encode(&ServerMsg::Message(message))))
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
