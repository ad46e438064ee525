//! Prometheus metrics, served at `GET /metrics` in the text exposition format.
//!
//! One set per process ([`get`]): the counters are process-wide, as Prometheus expects of a
//! scrape target (a test process that runs several servers adds theirs up). What is measured:
//!
//! | name | kind | what |
//! | --- | --- | --- |
//! | `chat_websockets` | gauge | open WebSocket connections |
//! | `chat_http_connections` | gauge | open TCP connections (WebSockets included) |
//! | `chat_frames_in_total` | counter | frames read from clients |
//! | `chat_frames_out_total` | counter | frames written to clients |
//! | `chat_lagging_kicks_total` | counter | connections closed because they read too slowly (4008) |
//! | `chat_fanout_latency_seconds` | histogram | from a commit to its events queued for every socket |
//! | `chat_commit_latency_seconds` | histogram | one group commit of the store's writer |
//! | `chat_repairs_total` | counter | holes in the event stream filled from the store |
//! | `chat_draining` | gauge | 1 while the server drains before stopping (`/readyz` says 503) |
//! | `chat_bus_up` | gauge | 1 while the Redis bus between nodes is connected (0 without a bus) |
//! | `chat_bus_lag_seconds` | histogram | from a note's publication on another node to its arrival here |
//! | `chat_bus_dropped_total` | counter | notes not published (the bus down or its queue full); the store repairs events |
//! | `chat_gap_kicks_total` | counter | connections closed because their own stream had a hole (they resume) |

use std::sync::OnceLock;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    /// Open WebSockets.
    pub websockets: Gauge,
    /// Open TCP connections (set when scraped).
    pub http_connections: Gauge,
    /// Frames read from clients.
    pub frames_in: Counter,
    /// Frames written to clients.
    pub frames_out: Counter,
    /// Connections closed as lagging.
    pub lagging_kicks: Counter,
    /// Commit to fan-out, seconds.
    pub fanout_latency: Histogram,
    /// Group commits, seconds.
    pub commit_latency: Histogram,
    /// Holes filled from the store.
    pub repairs: Counter,
    /// 1 while draining.
    pub draining: Gauge,
    /// 1 while the bus is connected.
    pub bus_up: Gauge,
    /// Publication on another node to arrival here, seconds.
    pub bus_lag: Histogram,
    /// Notes not published.
    pub bus_dropped: Counter,
    /// Connections closed for a hole in their stream.
    pub gap_kicks: Counter,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("chat");
        let websockets = Gauge::default();
        registry.register(
            "websockets",
            "Open WebSocket connections",
            websockets.clone(),
        );
        let http_connections = Gauge::default();
        registry.register(
            "http_connections",
            "Open TCP connections, WebSockets included",
            http_connections.clone(),
        );
        let frames_in = Counter::default();
        registry.register("frames_in", "Frames read from clients", frames_in.clone());
        let frames_out = Counter::default();
        registry.register(
            "frames_out",
            "Frames written to clients",
            frames_out.clone(),
        );
        let lagging_kicks = Counter::default();
        registry.register(
            "lagging_kicks",
            "Connections closed because they read too slowly",
            lagging_kicks.clone(),
        );
        // 50 us to about 1.6 s.
        let fanout_latency = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register(
            "fanout_latency_seconds",
            "From a commit to its events queued for every socket",
            fanout_latency.clone(),
        );
        let commit_latency = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register(
            "commit_latency_seconds",
            "One group commit of the store's writer",
            commit_latency.clone(),
        );
        let repairs = Counter::default();
        registry.register(
            "repairs",
            "Holes in the event stream filled from the store",
            repairs.clone(),
        );
        let draining = Gauge::default();
        registry.register(
            "draining",
            "1 while the server drains before stopping",
            draining.clone(),
        );
        let bus_up = Gauge::default();
        registry.register(
            "bus_up",
            "1 while the Redis bus between nodes is connected",
            bus_up.clone(),
        );
        let bus_lag = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register(
            "bus_lag_seconds",
            "From a note's publication on another node to its arrival here",
            bus_lag.clone(),
        );
        let bus_dropped = Counter::default();
        registry.register(
            "bus_dropped",
            "Notes not published: the bus down or its queue full",
            bus_dropped.clone(),
        );
        let gap_kicks = Counter::default();
        registry.register(
            "gap_kicks",
            "Connections closed because their own event stream had a hole",
            gap_kicks.clone(),
        );
        Self {
            registry,
            websockets,
            http_connections,
            frames_in,
            frames_out,
            lagging_kicks,
            fanout_latency,
            commit_latency,
            repairs,
            draining,
            bus_up,
            bus_lag,
            bus_dropped,
            gap_kicks,
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The process's metrics (made on first use).
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_in_the_text_format_with_its_help() {
        let m = get();
        m.frames_in.inc();
        m.fanout_latency.observe(0.001);
        let text = m.render();
        for name in [
            "chat_websockets",
            "chat_http_connections",
            "chat_frames_in_total",
            "chat_frames_out_total",
            "chat_lagging_kicks_total",
            "chat_fanout_latency_seconds_bucket",
            "chat_commit_latency_seconds_count",
            "chat_repairs_total",
            "chat_draining",
            "chat_bus_up",
            "chat_bus_lag_seconds_count",
            "chat_bus_dropped_total",
            "chat_gap_kicks_total",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        assert!(text.contains("# HELP chat_frames_in Frames read from clients"));
        assert!(text.ends_with("# EOF\n"));
    }
}
