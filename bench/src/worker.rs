//! A load-generating process. It opens its share of the connections (from its own source
//! addresses, so that many processes together pass the per-process file limit and the
//! per-address port range), joins rooms, prints `ready`, then obeys commands on stdin:
//!
//! - `run RATE MS`: every sender sends RATE messages per second for MS milliseconds; after a
//!   drain pause it prints `result {json}` with what was sent and received.
//! - `window W MS`: every sender keeps W unacknowledged sends in flight (ours only).
//! - `quit`.
//!
//! It runs on one thread: all connections are tasks of a `LocalSet` sharing plain counters.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use futures::StreamExt;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use crate::proto::{self, Frame, Target, Ws};

/// Settings of a worker.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// The server's protocol.
    #[arg(long, value_enum)]
    pub target: Target,
    /// The server's address.
    #[arg(long)]
    pub addr: SocketAddr,
    /// Source addresses to connect from, used in turn.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1")]
    pub sources: Vec<IpAddr>,
    /// Global index of this worker's first connection.
    #[arg(long, default_value_t = 0)]
    pub first: usize,
    /// How many connections this worker opens.
    #[arg(long)]
    pub conns: usize,
    /// Members per room (connection `i` is in room `i / room_size`).
    #[arg(long, default_value_t = 20)]
    pub room_size: usize,
    /// The first this many members of each room send.
    #[arg(long, default_value_t = 1)]
    pub senders_per_room: usize,
    /// A file with one session token per line (ours): connection `i` uses token `i % count`.
    #[arg(long)]
    pub tokens: Option<PathBuf>,
    /// Connections opened at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Only measure how fast connections open (no rooms), then wait for `quit`.
    #[arg(long)]
    pub connect_only: bool,
    /// Pause after a run for late deliveries, in milliseconds.
    #[arg(long, default_value_t = 1500)]
    pub drain_ms: u64,
}

/// What a run measured, as printed after `result `.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RunResult {
    /// Messages sent.
    pub sent: u64,
    /// Messages delivered to connections other than their sender.
    pub received: u64,
    /// Deliveries of a message already delivered to that connection.
    pub dups: u64,
    /// Acknowledgements (ours).
    pub acks: u64,
    /// Connections that failed during the run.
    pub errors: u64,
    /// Connections still open when the run ended (a server may close lagging ones).
    #[serde(default)]
    pub live: u64,
    /// Latency histogram in microseconds: `(value, count)` pairs.
    pub latency_us: Vec<(u64, u64)>,
}

/// What `connect_only` measured.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ConnectResult {
    /// Connections that completed their handshake.
    pub ok: u64,
    /// Connections that failed.
    pub failed: u64,
    /// Seconds from the first attempt to the last completion.
    pub secs: f64,
    /// The first failure, if any.
    pub first_error: Option<String>,
}

/// What senders are doing.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Idle,
    Rate { per_sec: f64, until: Instant },
    Window { size: u32, until: Instant },
    Quit,
}

struct Stats {
    run: RunResult,
    hist: Histogram<u64>,
}

impl Stats {
    fn new() -> Self {
        Self {
            run: RunResult::default(),
            hist: new_histogram(),
        }
    }
}

/// A histogram of 1 us to 60 s at three significant digits.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy the constructor's rules.
    Histogram::new_with_bounds(1, 60_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

fn read_tokens(path: &Option<PathBuf>) -> Result<Vec<String>, String> {
    match path {
        None => Ok(Vec::new()),
        Some(p) => Ok(std::fs::read_to_string(p)
            .map_err(|e| format!("tokens file {}: {e}", p.display()))?
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect()),
    }
}

/// Runs a worker until `quit`.
pub fn run(args: WorkerArgs) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, main(args))
}

async fn main(args: WorkerArgs) -> Result<(), String> {
    let tokens = Rc::new(read_tokens(&args.tokens)?);
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    if args.connect_only {
        let result = connect_all(&args, &tokens).await;
        println!(
            "result {}",
            serde_json::to_string(&result).map_err(|e| e.to_string())?
        );
        while let Ok(Some(line)) = stdin.next_line().await {
            if line.trim() == "quit" {
                break;
            }
        }
        return Ok(());
    }

    let stats = Rc::new(RefCell::new(Stats::new()));
    let live = Rc::new(std::cell::Cell::new(0u64));
    let (phase_tx, phase_rx) = watch::channel(Phase::Idle);
    let gate = Rc::new(Semaphore::new(args.concurrency.max(1)));
    let mut opening = Vec::new();
    for local_index in 0..args.conns {
        let (args, tokens, gate) = (args.clone(), Rc::clone(&tokens), Rc::clone(&gate));
        opening.push(tokio::task::spawn_local(async move {
            let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
            let i = args.first + local_index;
            let source = args.sources[local_index % args.sources.len().max(1)];
            let token = (!tokens.is_empty()).then(|| tokens[i % tokens.len()].as_str());
            let mut ws = proto::connect(args.target, args.addr, source, token).await?;
            let room = proto::room_key(args.target, i / args.room_size.max(1));
            proto::join(args.target, &mut ws, &room).await?;
            Ok::<_, String>((ws, i, room))
        }));
    }
    let (mut ok, mut failed, mut first_error) = (0u64, 0u64, None);
    for task in opening {
        match task.await {
            Ok(Ok((ws, i, room))) => {
                ok += 1;
                let sender = i % args.room_size.max(1) < args.senders_per_room;
                let conn = Conn {
                    target: args.target,
                    id: u32::try_from(i).unwrap_or(u32::MAX),
                    room,
                    sender,
                    stats: Rc::clone(&stats),
                    live: Rc::clone(&live),
                };
                tokio::task::spawn_local(conn.drive(ws, phase_rx.clone()));
            }
            Ok(Err(e)) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    println!(
        "ready {}",
        serde_json::json!({"ok": ok, "failed": failed, "first_error": first_error})
    );

    while let Ok(Some(line)) = stdin.next_line().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (phase, ms) = match words.as_slice() {
            ["run", rate, ms] => {
                let ms: u64 = ms.parse().map_err(|_| "bad ms")?;
                let per_sec: f64 = rate.parse().map_err(|_| "bad rate")?;
                let until = Instant::now() + Duration::from_millis(ms);
                (Phase::Rate { per_sec, until }, ms)
            }
            ["window", size, ms] => {
                let ms: u64 = ms.parse().map_err(|_| "bad ms")?;
                let size: u32 = size.parse().map_err(|_| "bad window")?;
                let until = Instant::now() + Duration::from_millis(ms);
                (Phase::Window { size, until }, ms)
            }
            ["quit"] => {
                let _ = phase_tx.send(Phase::Quit);
                break;
            }
            _ => return Err(format!("unknown command {line:?}")),
        };
        *stats.borrow_mut() = Stats::new();
        let _ = phase_tx.send(phase);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        let _ = phase_tx.send(Phase::Idle);
        tokio::time::sleep(Duration::from_millis(args.drain_ms)).await;
        let mut s = stats.borrow_mut();
        let hist = std::mem::replace(&mut s.hist, new_histogram());
        s.run.latency_us = hist
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        let mut result = std::mem::take(&mut s.run);
        result.live = live.get();
        println!(
            "result {}",
            serde_json::to_string(&result).map_err(|e| e.to_string())?
        );
    }
    Ok(())
}

/// Opens every connection as fast as the concurrency allows, timing the whole.
async fn connect_all(args: &WorkerArgs, tokens: &Rc<Vec<String>>) -> ConnectResult {
    let start = Instant::now();
    let opened = futures::stream::iter(0..args.conns)
        .map(|local_index| {
            let i = args.first + local_index;
            let source = args.sources[local_index % args.sources.len().max(1)];
            let token = (!tokens.is_empty()).then(|| tokens[i % tokens.len()].clone());
            async move { proto::connect(args.target, args.addr, source, token.as_deref()).await }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let secs = start.elapsed().as_secs_f64();
    let mut result = ConnectResult {
        secs,
        ..Default::default()
    };
    // Hold the sockets until counted, so that none closes while others still open.
    for conn in opened {
        match conn {
            Ok(_) => result.ok += 1,
            Err(e) => {
                result.failed += 1;
                result.first_error.get_or_insert(e);
            }
        }
    }
    result
}

/// One connection's driver.
struct Conn {
    /// Open connections of this worker; each driver counts itself while it runs.
    live: Rc<std::cell::Cell<u64>>,
    target: Target,
    id: u32,
    room: String,
    sender: bool,
    stats: Rc<RefCell<Stats>>,
}

impl Conn {
    async fn drive(self, ws: Ws, phase_rx: watch::Receiver<Phase>) {
        self.live.set(self.live.get() + 1);
        let live = Rc::clone(&self.live);
        self.run(ws, phase_rx).await;
        live.set(live.get().saturating_sub(1));
    }

    async fn run(self, mut ws: Ws, mut phase_rx: watch::Receiver<Phase>) {
        // Highest message number seen per sender: per-sender order holds on every target.
        let mut last: HashMap<u32, u32> = HashMap::new();
        let mut n: u32 = 0;
        let mut in_flight: u32 = 0;
        let mut phase = Phase::Idle;
        let mut ticker: Option<tokio::time::Interval> = None;
        loop {
            let tick = async {
                match ticker.as_mut() {
                    Some(t) => t.tick().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                frame = ws.next() => {
                    let text = match frame {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(_)) => continue,
                        _ => {
                            self.stats.borrow_mut().run.errors += 1;
                            return;
                        }
                    };
                    match proto::classify(self.target, &text) {
                        Frame::Delivery(m) if m.sender != self.id => {
                            let latency = proto::now_us().saturating_sub(m.sent_us).max(1);
                            let mut s = self.stats.borrow_mut();
                            let seen = last.entry(m.sender).or_insert(0);
                            if m.n <= *seen {
                                s.run.dups += 1;
                            } else {
                                *seen = m.n;
                                s.run.received += 1;
                                let _ = s.hist.record(latency.min(60_000_000));
                            }
                        }
                        Frame::Ack => {
                            self.stats.borrow_mut().run.acks += 1;
                            in_flight = in_flight.saturating_sub(1);
                            if let Phase::Window { size, until } = phase
                                && Instant::now() < until
                                && self.fill(&mut ws, &mut n, &mut in_flight, size).await.is_err()
                            {
                                return;
                            }
                        }
                        Frame::EnginePing if proto::send_text(&mut ws, "3".into()).await.is_err() => return,
                        _ => {}
                    }
                }
                _ = tick => {
                    match phase {
                        Phase::Rate { until, .. } if Instant::now() < until => {
                            if self.send_one(&mut ws, &mut n).await.is_err() {
                                return;
                            }
                        }
                        _ => ticker = None,
                    }
                }
                changed = phase_rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    phase = *phase_rx.borrow_and_update();
                    ticker = None;
                    match phase {
                        Phase::Quit => return,
                        Phase::Rate { per_sec, .. } if self.sender && per_sec > 0.0 => {
                            // Spread the senders' phases over the period (a golden-ratio
                            // sequence): started together they would send in lockstep bursts,
                            // and measure queueing in the burst instead of delivery latency.
                            let period = Duration::from_secs_f64(1.0 / per_sec);
                            let offset = period.mul_f64((f64::from(self.id) * 0.618_034).fract());
                            let mut t = tokio::time::interval_at(Instant::now() + offset, period);
                            t.set_missed_tick_behavior(MissedTickBehavior::Burst);
                            ticker = Some(t);
                        }
                        Phase::Window { size, .. } if self.sender => {
                            in_flight = 0;
                            if self.fill(&mut ws, &mut n, &mut in_flight, size).await.is_err() {
                                return;
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    async fn send_one(&self, ws: &mut Ws, n: &mut u32) -> Result<(), String> {
        *n += 1;
        let text = proto::payload(self.id, *n);
        let client_id = format!("{}-{}", self.id, *n);
        proto::send_text(
            ws,
            proto::send_frame(self.target, &self.room, &client_id, &text),
        )
        .await?;
        self.stats.borrow_mut().run.sent += 1;
        Ok(())
    }

    async fn fill(
        &self,
        ws: &mut Ws,
        n: &mut u32,
        in_flight: &mut u32,
        size: u32,
    ) -> Result<(), String> {
        while *in_flight < size {
            self.send_one(ws, n).await?;
            *in_flight += 1;
        }
        Ok(())
    }
}
