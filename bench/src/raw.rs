//! The raw ceiling: the least a WebSocket relay can do. It completes the handshake by hand,
//! reads client frames with a minimal parser, and relays each message by building one frame
//! and writing those same bytes to every member of the room, one `write` per recipient. No JSON,
//! no storage, no acknowledgement: what the kernel's loopback allows a relay on one core.
//!
//! Client frames: `J<room>` joins (answered `J`), `M<text>` is relayed as is.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tungstenite::handshake::derive_accept_key;

type Rooms = Arc<Mutex<HashMap<String, Vec<mpsc::Sender<Bytes>>>>>;

/// Serves until killed.
pub fn run(addr: SocketAddr) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = TcpListener::bind(addr).await.map_err(|e| e.to_string())?;
        let rooms: Rooms = Arc::default();
        loop {
            let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
            let rooms = Arc::clone(&rooms);
            tokio::spawn(async move {
                let _ = serve(stream, rooms).await;
            });
        }
    })
}

/// An unmasked server frame.
fn frame(opcode: u8, payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= 0xffff => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    Bytes::from(out)
}

async fn serve(mut stream: TcpStream, rooms: Rooms) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    // The upgrade request.
    let mut head = Vec::with_capacity(1024);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 || stream.read(&mut byte).await? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let key = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    let accept = derive_accept_key(key.as_bytes());
    stream
        .write_all(
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await?;

    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(1024);
    let write_task = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let mut joined: Vec<String> = Vec::new();
    while let Some((opcode, payload)) = read_frame(&mut reader).await? {
        match opcode {
            0x1 if payload.first() == Some(&b'J') => {
                let room = String::from_utf8_lossy(&payload[1..]).into_owned();
                rooms
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(room.clone())
                    .or_default()
                    .push(tx.clone());
                joined.push(room);
                let _ = tx.send(frame(0x1, b"J")).await;
            }
            0x1 if payload.first() == Some(&b'M') => {
                let out = frame(0x1, &payload);
                let guard = rooms.lock().unwrap_or_else(PoisonError::into_inner);
                for room in &joined {
                    for member in guard.get(room).into_iter().flatten() {
                        let _ = member.try_send(out.clone());
                    }
                }
            }
            0x9 => {
                let _ = tx.send(frame(0xA, &payload)).await;
            }
            0x8 => break,
            _ => {}
        }
    }
    let mut guard = rooms.lock().unwrap_or_else(PoisonError::into_inner);
    for room in joined {
        if let Some(members) = guard.get_mut(&room) {
            members.retain(|m| !m.same_channel(&tx));
        }
    }
    drop(guard);
    write_task.abort();
    Ok(())
}

/// Reads one (masked, unfragmented) client frame.
async fn read_frame(r: &mut OwnedReadHalf) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut h = [0u8; 2];
    if r.read_exact(&mut h).await.is_err() {
        return Ok(None);
    }
    let opcode = h[0] & 0x0f;
    let masked = h[1] & 0x80 != 0;
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).await?;
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            r.read_exact(&mut b).await?;
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    if len > 1 << 20 {
        return Ok(None);
    }
    let mut mask = [0u8; 4];
    if masked {
        r.read_exact(&mut mask).await?;
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload).await?;
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Ok(Some((opcode, payload)))
}
