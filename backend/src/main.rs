//! The `backend` binary: parse settings, start logging, serve until SIGTERM or Ctrl-C.

use std::process::ExitCode;

use backend::{Application, Config, telemetry};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    telemetry::init("info,tower_http=warn", config.log_format);
    let static_dir = config.static_dir.clone();
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if !static_dir.join("index.html").exists() {
        tracing::warn!(dir = %static_dir.display(), "no built client here; run `make run` to build it");
    }
    match app.local_addr() {
        Ok(addr) => tracing::info!("chat server listening; open http://{addr}/"),
        Err(e) => tracing::warn!("listening (address unknown: {e})"),
    }
    if let Err(e) = app.run_until(shutdown_signal()).await {
        tracing::error!("server failed: {e}");
        return ExitCode::FAILURE;
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
