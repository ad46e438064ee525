//! Logging: `tracing` with an env filter (`RUST_LOG`), quiet by default, as text lines or as
//! one JSON object per line (`--log-format json`).

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `default` is the filter used when `RUST_LOG` is unset.
/// Calling it twice is harmless (the second call does nothing), which tests rely on.
pub fn init(default: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = match format {
        LogFormat::Text => {
            // Colour codes only on a terminal: a log file or journal gets plain text.
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(ansi)
                .try_init()
        }
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(false)
            .try_init(),
    };
}
