//! The connection owner: the one task that holds the browser WebSocket.
//!
//! A browser `WebSocket` is not `Send`, and two sockets for one tab would deliver every frame
//! twice, so exactly one `spawn_local` task ([`run`]) owns it for the whole session. The rest of
//! the app talks to it through an unbounded channel of [`Command`]s and hears from it through
//! [`ConnEvent`]s. The task is a sequential loop (connect, serve, wait, connect again), which is
//! what makes "never two sockets" and "a close and an error cause one reconnect, not two" hold:
//! the old socket is dropped (and closed) before the wait starts, and nothing else opens one.
//!
//! Reconnects use exponential backoff with full jitter ([`Backoff`]), capped at 30 s; the window
//! `online` event and the "Reconnect now" button ([`Command::ReconnectNow`]) skip the wait. While
//! waiting, the server is probed with a cheap `GET /api/me` every [`PROBE_EVERY_MS`] (a little
//! jittered): as soon as it answers, the wait ends, so a server back from an outage is reached
//! within a couple of seconds instead of at the end of a long backoff. A probe that answered but
//! whose connection then failed doubles the probe interval (up to the backoff cap), so a server
//! that answers HTTP but refuses sockets is not hammered. An application heartbeat (`ping`
//! every 20 s) keeps frames flowing; a socket that delivers nothing for 45 s is treated as dead.
//! Frames the app sends while no socket is up are dropped here on purpose: the chat model keeps
//! pending messages and resends them after the next `joined`, so nothing is lost.

use futures::channel::mpsc::UnboundedReceiver;
use futures::{FutureExt, SinkExt, StreamExt, select};
use gloo_net::websocket::{Message, WebSocketError, futures::WebSocket};
use gloo_timers::future::TimeoutFuture;
use shared::{ClientFrame, ClientMsg, PROTOCOL_VERSION, ServerMsg, close_code};

/// Interval between application `ping`s while online.
pub const PING_EVERY_MS: f64 = 20_000.0;
/// A socket that delivers no frame for this long is dead (unless `hello` announces a slower
/// server heartbeat).
pub const DEAD_AFTER_MS: f64 = 45_000.0;
/// How long a new socket may take to deliver `hello`.
pub const HANDSHAKE_TIMEOUT_MS: f64 = 10_000.0;
/// After a connection that stayed up this long, the backoff starts over.
pub const STABLE_AFTER_MS: f64 = 10_000.0;
/// After the window's `online` event, how long an open socket gets to prove it is alive.
pub const PROBE_TIMEOUT_MS: f64 = 5_000.0;
/// First backoff ceiling.
pub const BACKOFF_BASE_MS: u32 = 500;
/// Largest backoff ceiling.
pub const BACKOFF_CAP_MS: u32 = 30_000;
/// While waiting to reconnect, the server is probed this often.
pub const PROBE_EVERY_MS: u32 = 2_000;
/// A probe that takes longer than this counts as no answer.
pub const PROBE_ANSWER_MS: u32 = 3_000;

/// The probe interval after `failures` connections that a probe started and that failed before
/// `hello`: [`PROBE_EVERY_MS`], doubled each time, capped at [`BACKOFF_CAP_MS`].
pub fn probe_interval_ms(failures: u32) -> u32 {
    PROBE_EVERY_MS
        .saturating_mul(1u32.checked_shl(failures).unwrap_or(u32::MAX))
        .min(BACKOFF_CAP_MS)
}

/// What the connection badge shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// A socket is opening (or waiting for `hello`).
    Connecting,
    /// `hello` arrived: frames flow.
    Online,
    /// Waiting before the next attempt.
    Reconnecting {
        /// Whole seconds until the next attempt (rounded up).
        in_secs: u32,
    },
    /// Like `Reconnecting`, but the browser says it has no network.
    Offline {
        /// Whole seconds until the next attempt (rounded up).
        in_secs: u32,
    },
    /// The task ended (logout, or the session ended).
    Stopped,
}

impl ConnState {
    /// The badge's word, also its `data-state`.
    pub fn label(self) -> &'static str {
        match self {
            ConnState::Connecting => "connecting",
            ConnState::Online => "online",
            ConnState::Reconnecting { .. } => "reconnecting",
            ConnState::Offline { .. } => "offline",
            ConnState::Stopped => "stopped",
        }
    }

    /// Seconds until the next attempt, while waiting.
    pub fn countdown(self) -> Option<u32> {
        match self {
            ConnState::Reconnecting { in_secs } | ConnState::Offline { in_secs } => Some(in_secs),
            _ => None,
        }
    }
}

/// What the app asks of the connection task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Send a frame now if online; dropped otherwise (the chat model resends what matters).
    Send(ClientFrame),
    /// The network came back: skip the backoff wait; when a socket is up, probe it.
    ReconnectNow,
    /// Close the socket and end the task.
    Stop,
}

/// What the connection task reports.
// A frame is moved once, straight to the model: boxing it would only add an allocation per
// frame (the size difference shows on 64-bit targets, not in the browser's wasm32).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnEvent {
    /// The badge state changed.
    State(ConnState),
    /// A frame arrived (`hello` first on each connection).
    Frame(ServerMsg),
    /// The socket closed or was given up on.
    Disconnected {
        /// Its close code, if the browser reported one.
        code: Option<u16>,
        /// Whether it got as far as `hello` (if not, the session may have expired).
        reached_hello: bool,
    },
    /// The server ended the session (close code 4001): the task has stopped.
    SessionEnded,
}

/// What to do after a socket closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterClose {
    /// Back off, then reconnect.
    Retry,
    /// Reconnect without waiting (unless recent attempts failed): the server asked for it.
    RetryNow,
    /// The session is over: go to the login screen, do not reconnect.
    Login,
}

/// Classifies a close code.
pub fn after_close(code: Option<u16>) -> AfterClose {
    match code {
        Some(close_code::SESSION_ENDED) => AfterClose::Login,
        // Lagging: the server dropped us to protect itself, and `join { since }` catches up.
        Some(close_code::LAGGING) => AfterClose::RetryNow,
        // 1001 (server shutting down) and everything else: every client of a restarting
        // server would come back at once without the jittered wait.
        _ => AfterClose::Retry,
    }
}

/// Exponential backoff with full jitter: attempt `n` waits a uniformly random time in
/// `[0, min(cap, base * 2^n))`, which spreads a crowd of reconnecting clients over the window
/// instead of having them retry in lockstep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backoff {
    /// Failed attempts since the last stable connection.
    attempt: u32,
}

impl Backoff {
    /// The ceiling of attempt `n`.
    pub fn ceiling_ms(attempt: u32) -> u32 {
        let exp = BACKOFF_BASE_MS.saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX));
        exp.min(BACKOFF_CAP_MS)
    }

    /// The next delay, from a uniform random number in `[0, 1)`; counts the attempt.
    pub fn next_delay_ms(&mut self, unit: f64) -> u32 {
        let ceiling = f64::from(Self::ceiling_ms(self.attempt));
        self.attempt = self.attempt.saturating_add(1);
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        // In [0, ceiling], which fits in u32 since ceiling does.
        (ceiling * unit).floor() as u32
    }

    /// Failed attempts counted so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Starts over after a stable connection.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// The WebSocket URL on the page's own origin: `ws://host/ws`, or `wss://` on an https page.
pub fn ws_url(protocol: &str, host: &str) -> String {
    let scheme = if protocol == "https:" { "wss" } else { "ws" };
    format!("{scheme}://{host}/ws")
}

/// The WebSocket URL for the current page, if there is a window.
pub fn page_ws_url() -> Option<String> {
    let loc = web_sys::window()?.location();
    Some(ws_url(&loc.protocol().ok()?, &loc.host().ok()?))
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

fn browser_online() -> bool {
    web_sys::window().is_none_or(|w| w.navigator().on_line())
}

/// How one connection ended.
enum Ended {
    /// The app asked to stop (or dropped its sender).
    Stop,
    /// The socket closed or was given up on.
    Closed {
        code: Option<u16>,
        /// How long it was online (after `hello`), if it got there.
        online_ms: Option<f64>,
    },
}

/// Owns the connection until [`Command::Stop`] or the end of the session. Spawn it once with
/// `spawn_local`; `emit` is called for every [`ConnEvent`], on this task; `next_req` gives the
/// `req` of each `ping` (from the same counter as the app's other requests, so that no two
/// requests share one).
pub async fn run(
    url: String,
    mut cmds: UnboundedReceiver<Command>,
    emit: impl Fn(ConnEvent),
    next_req: impl Fn() -> u64,
) {
    let mut backoff = Backoff::default();
    // Connections started by a probe that failed before `hello`, in a row.
    let mut probe_failures: u32 = 0;
    let mut after_probe = false;
    loop {
        emit(ConnEvent::State(ConnState::Connecting));
        let (code, online_ms) = match serve(&url, &mut cmds, &emit, &next_req).await {
            Ended::Stop => break,
            Ended::Closed { code, online_ms } => (code, online_ms),
        };
        if online_ms.is_some() {
            probe_failures = 0;
        } else if after_probe {
            probe_failures = probe_failures.saturating_add(1);
        }
        emit(ConnEvent::Disconnected {
            code,
            reached_hello: online_ms.is_some(),
        });
        if online_ms.is_some_and(|ms| ms >= STABLE_AFTER_MS) {
            backoff.reset();
        }
        let delay = match after_close(code) {
            AfterClose::Login => {
                emit(ConnEvent::State(ConnState::Stopped));
                emit(ConnEvent::SessionEnded);
                return;
            }
            AfterClose::RetryNow if backoff.attempts() == 0 => {
                backoff.next_delay_ms(0.0);
                0
            }
            AfterClose::RetryNow | AfterClose::Retry => {
                backoff.next_delay_ms(js_sys::Math::random())
            }
        };
        let probe_ms = probe_interval_ms(probe_failures);
        after_probe = false;
        match wait(f64::from(delay), probe_ms, &mut cmds, &emit).await {
            Waited::Stop => break,
            Waited::Now => backoff.reset(),
            Waited::ServerUp => after_probe = true,
            Waited::Elapsed => {}
        }
    }
    emit(ConnEvent::State(ConnState::Stopped));
}

enum Waited {
    Elapsed,
    /// Asked to reconnect now (network back, or the button).
    Now,
    /// A probe found the server answering.
    ServerUp,
    Stop,
}

/// Sleeps `after_ms` (plus up to a quarter more, so that a crowd of clients spreads out), then
/// asks the server whether it answers.
async fn probe(after_ms: u32) -> bool {
    let jitter = (f64::from(after_ms) * 0.25 * js_sys::Math::random()) as u32;
    TimeoutFuture::new(after_ms.saturating_add(jitter)).await;
    let mut answer = crate::api::server_answers().boxed_local().fuse();
    let mut give_up = TimeoutFuture::new(PROBE_ANSWER_MS).fuse();
    select! {
        up = answer => up,
        () = give_up => false,
    }
}

/// Waits `delay_ms`, updating the countdown every second; the `online` event or the button
/// cuts it short, and so does a probe (every `probe_ms`) that finds the server answering.
async fn wait(
    delay_ms: f64,
    probe_ms: u32,
    cmds: &mut UnboundedReceiver<Command>,
    emit: &impl Fn(ConnEvent),
) -> Waited {
    let until = now_ms() + delay_ms;
    // Probing is worth it only when the wait is longer than a probe.
    let mut prober = if delay_ms > f64::from(probe_ms) {
        probe(probe_ms).boxed_local()
    } else {
        futures::future::pending().boxed_local()
    }
    .fuse();
    loop {
        let left = until - now_ms();
        if left <= 0.0 {
            return Waited::Elapsed;
        }
        let in_secs = (left / 1000.0).ceil() as u32;
        emit(ConnEvent::State(if browser_online() {
            ConnState::Reconnecting { in_secs }
        } else {
            ConnState::Offline { in_secs }
        }));
        // Sleep to the next whole second of the countdown.
        let slice = left - f64::from(in_secs.saturating_sub(1)) * 1000.0;
        let mut timer = TimeoutFuture::new(slice.ceil() as u32).fuse();
        loop {
            select! {
                () = timer => break,
                cmd = cmds.next() => match cmd {
                    None | Some(Command::Stop) => return Waited::Stop,
                    Some(Command::ReconnectNow) => return Waited::Now,
                    // No socket: the model resends pending messages after the next join.
                    Some(Command::Send(_)) => {}
                },
                up = prober => {
                    if up {
                        return Waited::ServerUp;
                    }
                    prober = probe(probe_ms).boxed_local().fuse();
                }
            }
        }
    }
}

/// Opens one socket and serves it until it ends.
async fn serve(
    url: &str,
    cmds: &mut UnboundedReceiver<Command>,
    emit: &impl Fn(ConnEvent),
    next_req: &impl Fn() -> u64,
) -> Ended {
    let ws = match WebSocket::open(url) {
        Ok(ws) => ws,
        Err(err) => {
            leptos::logging::warn!("websocket open failed: {err}");
            return Ended::Closed {
                code: None,
                online_ms: None,
            };
        }
    };
    let (mut tx, mut rx) = ws.split();
    let opened_at = now_ms();
    let mut online_since: Option<f64> = None;
    let mut last_frame = opened_at;
    let mut next_ping = opened_at + PING_EVERY_MS;
    let mut ping_id: u64 = 0;
    let mut dead_after = DEAD_AFTER_MS;
    let mut probe_deadline: Option<f64> = None;
    let closed = |code: Option<u16>, online_since: Option<f64>| Ended::Closed {
        code,
        online_ms: online_since.map(|t| now_ms() - t),
    };

    loop {
        let now = now_ms();
        let deadline = match online_since {
            None => opened_at + HANDSHAKE_TIMEOUT_MS,
            Some(_) => {
                let dead_at = probe_deadline
                    .map_or(last_frame + dead_after, |p| p.min(last_frame + dead_after));
                next_ping.min(dead_at)
            }
        };
        let mut timer = TimeoutFuture::new((deadline - now).max(0.0).ceil() as u32).fuse();
        select! {
            frame = rx.next().fuse() => match frame {
                Some(Ok(Message::Text(text))) => {
                    last_frame = now_ms();
                    probe_deadline = None;
                    match serde_json::from_str::<ServerMsg>(&text) {
                        Ok(msg) => {
                            if let ServerMsg::Hello { heartbeat_ms, protocol, .. } = &msg {
                                if *protocol != PROTOCOL_VERSION {
                                    leptos::logging::warn!(
                                        "the server speaks protocol {protocol}, this client {PROTOCOL_VERSION}"
                                    );
                                }
                                online_since = Some(last_frame);
                                next_ping = last_frame + PING_EVERY_MS;
                                // Never declare a socket dead faster than the server pings.
                                dead_after = DEAD_AFTER_MS.max(*heartbeat_ms as f64 + 15_000.0);
                                emit(ConnEvent::State(ConnState::Online));
                            }
                            emit(ConnEvent::Frame(msg));
                        }
                        Err(err) => leptos::logging::warn!("unreadable frame ignored: {err}"),
                    }
                }
                Some(Ok(Message::Bytes(_))) => {
                    last_frame = now_ms();
                    probe_deadline = None;
                }
                Some(Err(WebSocketError::ConnectionClose(ev))) => {
                    return closed(Some(ev.code), online_since);
                }
                // An error event is always followed by a close event, which carries the code:
                // keep reading so that the pair ends this connection once.
                Some(Err(WebSocketError::ConnectionError)) => {}
                Some(Err(_)) | None => return closed(None, online_since),
            },
            cmd = cmds.next() => match cmd {
                None | Some(Command::Stop) => return Ended::Stop,
                Some(Command::Send(msg)) => {
                    if online_since.is_some() && send(&mut tx, &msg).await.is_err() {
                        return closed(None, online_since);
                    }
                }
                Some(Command::ReconnectNow) => {
                    // The network changed under an open socket: it may be dead without a close.
                    // A ping must be answered soon, or the socket is given up.
                    if online_since.is_some() && probe_deadline.is_none() {
                        ping_id += 1;
                        if send(&mut tx, &ping(ping_id, next_req())).await.is_err() {
                            return closed(None, online_since);
                        }
                        probe_deadline = Some(now_ms() + PROBE_TIMEOUT_MS);
                    }
                }
            },
            () = timer => {
                let now = now_ms();
                if online_since.is_none() {
                    leptos::logging::warn!("no hello within the handshake timeout");
                    return closed(None, None);
                }
                if now >= last_frame + dead_after || probe_deadline.is_some_and(|p| now >= p) {
                    leptos::logging::warn!("no frame for too long: the socket is dead");
                    return closed(None, online_since);
                }
                if now >= next_ping {
                    ping_id += 1;
                    if send(&mut tx, &ping(ping_id, next_req())).await.is_err() {
                        return closed(None, online_since);
                    }
                    next_ping = now + PING_EVERY_MS;
                }
            },
        }
    }
}

/// A heartbeat `ping` numbered `id`, as request `req`.
pub fn ping(id: u64, req: u64) -> ClientFrame {
    ClientFrame {
        req: Some(req),
        msg: ClientMsg::Ping { id: Some(id) },
    }
}

async fn send(
    tx: &mut futures::stream::SplitSink<WebSocket, Message>,
    frame: &ClientFrame,
) -> Result<(), WebSocketError> {
    // Serializing the protocol's own types cannot fail.
    let text = serde_json::to_string(frame).unwrap_or_default();
    tx.send(Message::Text(text)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap() {
        assert_eq!(Backoff::ceiling_ms(0), 500);
        assert_eq!(Backoff::ceiling_ms(1), 1_000);
        assert_eq!(Backoff::ceiling_ms(5), 16_000);
        assert_eq!(Backoff::ceiling_ms(6), 30_000);
        assert_eq!(Backoff::ceiling_ms(40), 30_000);
        assert_eq!(Backoff::ceiling_ms(u32::MAX), 30_000);
    }

    #[test]
    fn backoff_delays_are_jittered_within_zero_and_the_ceiling() {
        for unit in [
            0.0,
            0.25,
            0.5,
            0.999_999,
            1.0,
            -3.0,
            f64::NAN,
            f64::INFINITY,
        ] {
            let mut b = Backoff::default();
            for attempt in 0..50 {
                let d = b.next_delay_ms(unit);
                assert!(d <= Backoff::ceiling_ms(attempt), "{unit} {attempt} {d}");
                assert!(d <= BACKOFF_CAP_MS);
            }
        }
        let mut b = Backoff::default();
        assert_eq!(b.next_delay_ms(0.5), 250);
        assert_eq!(b.next_delay_ms(0.5), 500);
        assert_eq!(b.attempts(), 2);
        b.reset();
        assert_eq!(b.next_delay_ms(0.5), 250);
    }

    #[test]
    fn probes_back_off_only_after_failed_probe_started_connections() {
        assert_eq!(probe_interval_ms(0), 2_000);
        assert_eq!(probe_interval_ms(1), 4_000);
        assert_eq!(probe_interval_ms(3), 16_000);
        assert_eq!(probe_interval_ms(4), 30_000);
        assert_eq!(probe_interval_ms(u32::MAX), 30_000);
    }

    #[test]
    fn close_codes_decide_what_follows() {
        assert_eq!(after_close(Some(4001)), AfterClose::Login);
        assert_eq!(after_close(Some(4008)), AfterClose::RetryNow);
        assert_eq!(after_close(Some(1001)), AfterClose::Retry);
        assert_eq!(after_close(Some(1006)), AfterClose::Retry);
        assert_eq!(after_close(Some(1009)), AfterClose::Retry);
        assert_eq!(after_close(None), AfterClose::Retry);
    }

    #[test]
    fn pings_carry_a_request_id_beside_their_own() {
        assert_eq!(
            serde_json::to_string(&ping(3, 41)).expect("serializes"),
            r#"{"req":41,"type":"ping","id":3}"#
        );
    }

    #[test]
    fn the_socket_url_follows_the_page() {
        assert_eq!(ws_url("http:", "127.0.0.1:3000"), "ws://127.0.0.1:3000/ws");
        assert_eq!(ws_url("https:", "chat.example"), "wss://chat.example/ws");
    }

    #[test]
    fn badge_states_have_words_and_countdowns() {
        assert_eq!(ConnState::Online.label(), "online");
        assert_eq!(ConnState::Reconnecting { in_secs: 3 }.countdown(), Some(3));
        assert_eq!(ConnState::Offline { in_secs: 1 }.label(), "offline");
        assert_eq!(ConnState::Connecting.countdown(), None);
    }
}
