//! How the generator speaks to each server: connecting, joining a room, sending, and recognising
//! a delivered message. The receive path never parses JSON: every payload carries a marker
//! `~sender~n~sent_at_us~` that is found and parsed in place, so the generator's cost per
//! received message stays small next to the server's cost per delivery.

use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// A server under test.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
pub enum Target {
    /// This project's server.
    Ours,
    /// The Node `ws` relay in `bench/peers/ws-relay.js`.
    Ws,
    /// The Socket.IO server in `bench/peers/socketio.js` (engine.io over WebSocket).
    Socketio,
    /// The generator's own minimal server writing prebuilt frames: the ceiling.
    Raw,
}

impl Target {
    /// Every target, in report order.
    pub const ALL: [Target; 4] = [Target::Ours, Target::Ws, Target::Socketio, Target::Raw];

    /// The name used in reports.
    pub fn label(self) -> &'static str {
        match self {
            Target::Ours => "ours",
            Target::Ws => "node ws",
            Target::Socketio => "socket.io",
            Target::Raw => "raw ceiling",
        }
    }

    /// The argument spelling (as `clap` parses it).
    pub fn arg(self) -> &'static str {
        match self {
            Target::Ours => "ours",
            Target::Ws => "ws",
            Target::Socketio => "socketio",
            Target::Raw => "raw",
        }
    }
}

/// A generator-side WebSocket.
pub type Ws = WebSocketStream<TcpStream>;

/// What a received frame is, as far as the generator cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A delivered chat message with its marker.
    Delivery(Marker),
    /// Our server's acknowledgement of a send.
    Ack,
    /// The answer to a join (for ours: the history page that ends the join).
    Joined,
    /// A Socket.IO ping, which must be answered.
    EnginePing,
    /// Anything else.
    Other,
}

/// The marker a payload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// The sending connection's global index.
    pub sender: u32,
    /// The sender's message counter.
    pub n: u32,
    /// When it was sent, in microseconds since the Unix epoch.
    pub sent_us: u64,
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A chat text of about 100 bytes carrying a marker.
pub fn payload(sender: u32, n: u32) -> String {
    format!(
        "~{sender}~{n}~{}~ the quick brown fox jumps over the lazy dog, again and again.",
        now_us()
    )
}

/// Finds and parses the marker in a frame.
pub fn marker(text: &str) -> Option<Marker> {
    let start = text.find('~')?;
    let mut parts = text[start + 1..].splitn(4, '~');
    let sender = parts.next()?.parse().ok()?;
    let n = parts.next()?.parse().ok()?;
    let sent_us = parts.next()?.parse().ok()?;
    Some(Marker { sender, n, sent_us })
}

/// Classifies a received text frame.
pub fn classify(target: Target, text: &str) -> Frame {
    let delivery = match target {
        Target::Ours | Target::Ws => text.starts_with("{\"type\":\"message\""),
        Target::Socketio => text.starts_with("42[\"message\""),
        Target::Raw => text.starts_with('M'),
    };
    if delivery {
        return marker(text).map_or(Frame::Other, Frame::Delivery);
    }
    match target {
        Target::Ours if text.starts_with("{\"type\":\"ack\"") => Frame::Ack,
        Target::Ours if text.starts_with("{\"type\":\"history\"") => Frame::Joined,
        Target::Ws if text.starts_with("{\"type\":\"joined\"") => Frame::Joined,
        Target::Socketio if text.starts_with("42[\"joined\"") => Frame::Joined,
        Target::Socketio if text == "2" => Frame::EnginePing,
        Target::Raw if text.starts_with('J') => Frame::Joined,
        _ => Frame::Other,
    }
}

/// How a target names the room with this index: our server addresses rooms by id (a JSON
/// number; `prepare_ours` creates them so that room `i` has id `i + 2`, after `general`), the
/// peers by a name.
pub fn room_key(target: Target, index: usize) -> String {
    match target {
        Target::Ours => (index + 2).to_string(),
        _ => format!("b{index}"),
    }
}

/// The frame that joins `room` (a [`room_key`]).
pub fn join_frame(target: Target, room: &str) -> String {
    match target {
        Target::Ours => format!("{{\"type\":\"join\",\"room\":{room}}}"),
        Target::Ws => format!("{{\"type\":\"join\",\"room\":\"{room}\"}}"),
        Target::Socketio => format!("42[\"join\",\"{room}\"]"),
        Target::Raw => format!("J{room}"),
    }
}

/// The frame that sends `text` to `room`.
pub fn send_frame(target: Target, room: &str, client_id: &str, text: &str) -> String {
    match target {
        Target::Ours => format!(
            "{{\"type\":\"send\",\"room\":{room},\"client_id\":\"{client_id}\",\"text\":\"{text}\"}}"
        ),
        Target::Ws => format!("{{\"type\":\"send\",\"room\":\"{room}\",\"text\":\"{text}\"}}"),
        Target::Socketio => format!("42[\"send\",{{\"room\":\"{room}\",\"text\":\"{text}\"}}]"),
        Target::Raw => format!("M{text}"),
    }
}

/// The path of the WebSocket endpoint.
fn path(target: Target) -> &'static str {
    match target {
        Target::Ours => "/ws",
        Target::Ws | Target::Raw => "/",
        Target::Socketio => "/socket.io/?EIO=4&transport=websocket",
    }
}

/// Small buffers: the generator holds thousands of connections.
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// Opens a connection from `source` and completes the target's own handshake (our `hello`,
/// engine.io's open and connect packets).
pub async fn connect(
    target: Target,
    addr: SocketAddr,
    source: IpAddr,
    token: Option<&str>,
) -> Result<Ws, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| format!("bind {source}: {e}"))?;
    let stream = socket.connect(addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut request = format!("ws://{addr}{}", path(target))
        .into_client_request()
        .map_err(|e| e.to_string())?;
    if let Some(token) = token {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?;
        request.headers_mut().insert("authorization", value);
    }
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(client_config()))
            .await
            .map_err(|e| e.to_string())?;
    match target {
        Target::Ours => {
            let first = next_text(&mut ws).await?;
            if !first.starts_with("{\"type\":\"hello\"") {
                return Err(format!("expected hello, got {first}"));
            }
        }
        Target::Socketio => {
            let open = next_text(&mut ws).await?;
            if !open.starts_with('0') {
                return Err(format!("expected engine.io open, got {open}"));
            }
            send_text(&mut ws, "40".into()).await?;
            let connected = next_text(&mut ws).await?;
            if !connected.starts_with("40") {
                return Err(format!("expected socket.io connect, got {connected}"));
            }
        }
        Target::Ws | Target::Raw => {}
    }
    Ok(ws)
}

/// Sends one text frame.
pub async fn send_text(ws: &mut Ws, text: String) -> Result<(), String> {
    ws.send(Message::Text(Utf8Bytes::from(text)))
        .await
        .map_err(|e| e.to_string())
}

/// The next text frame (skipping control frames).
pub async fn next_text(ws: &mut Ws) -> Result<Utf8Bytes, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t),
            Some(Ok(Message::Close(_))) | None => return Err("closed".into()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
        }
    }
}

/// Joins `room` and waits for the target's answer, answering engine.io pings meanwhile.
pub async fn join(target: Target, ws: &mut Ws, room: &str) -> Result<(), String> {
    send_text(ws, join_frame(target, room)).await?;
    loop {
        let text = next_text(ws).await?;
        match classify(target, &text) {
            Frame::Joined => return Ok(()),
            Frame::EnginePing => send_text(ws, "3".into()).await?,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_survive_every_targets_framing() {
        let text = payload(17, 42);
        for target in Target::ALL {
            let frame = match target {
                Target::Ours => format!(
                    "{{\"type\":\"message\",\"room\":2,\"seq\":1,\"id\":1,\"author\":\"x\",\"author_name\":\"x\",\"text\":\"{text}\",\"ts\":1}}"
                ),
                Target::Ws => format!(
                    "{{\"type\":\"message\",\"room\":\"b0\",\"author\":\"x\",\"text\":\"{text}\",\"ts\":1}}"
                ),
                Target::Socketio => {
                    format!("42[\"message\",{{\"room\":\"b0\",\"text\":\"{text}\"}}]")
                }
                Target::Raw => format!("M{text}"),
            };
            match classify(target, &frame) {
                Frame::Delivery(m) => {
                    assert_eq!((m.sender, m.n), (17, 42), "{target:?}");
                    assert!(m.sent_us > 1_600_000_000_000_000);
                }
                other => panic!("{target:?}: {other:?}"),
            }
        }
        assert_eq!(classify(Target::Socketio, "2"), Frame::EnginePing);
        assert_eq!(
            classify(Target::Ours, "{\"type\":\"ack\",\"room\":2}"),
            Frame::Ack
        );
    }
}
