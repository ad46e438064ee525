//! The operator's view: health and readiness, Prometheus metrics, the drain on shutdown, JSON
//! logs, and TLS (HTTPS and `wss`) with a certificate made for the test.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use shared::{ClientMsg, ServerMsg};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{free_addr, spawn_app, spawn_app_with};

/// The value of `name` in the Prometheus text, summed over its label sets.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn health_and_readiness_answer_and_metrics_count_what_the_server_does() {
    let app = spawn_app().await;
    let res = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.expect("body"), "ready\n");

    let scrape = || async {
        let res = app
            .http
            .get(app.url("/metrics"))
            .send()
            .await
            .expect("metrics");
        assert_eq!(res.status(), StatusCode::OK);
        let kind = res.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
        res.text().await.expect("body")
    };
    let before = scrape().await;
    let alice = app.register("alice").await;
    let mut ws = app.ws(&alice).await;
    let room = shared::DEFAULT_ROOM_ID;
    ws.join(room).await;
    ws.say(room, "counted").await;
    let during = scrape().await;
    // Counters are process-wide (other tests run servers in this process too): they only grow.
    assert!(
        metric(&during, "chat_frames_in_total") >= metric(&before, "chat_frames_in_total") + 2.0
    );
    assert!(
        metric(&during, "chat_frames_out_total") >= metric(&before, "chat_frames_out_total") + 3.0
    );
    assert!(
        metric(&during, "chat_fanout_latency_seconds_count")
            > metric(&before, "chat_fanout_latency_seconds_count")
    );
    assert!(
        metric(&during, "chat_commit_latency_seconds_count")
            > metric(&before, "chat_commit_latency_seconds_count")
    );
    assert!(metric(&during, "chat_websockets") >= 1.0);
    assert!(metric(&during, "chat_http_connections") >= 1.0);
    for name in [
        "chat_lagging_kicks_total",
        "chat_repairs_total",
        "chat_draining",
    ] {
        assert!(during.contains(name), "{name} is exported");
    }
    drop(ws);
    app.stop().await;
}

#[tokio::test]
async fn on_shutdown_readiness_turns_false_first_and_sockets_close_with_1001_after_the_drain() {
    let app = spawn_app_with(|c| c.drain_secs = 2).await;
    let alice = app.register("alice").await;
    let mut ws = app.ws(&alice).await;
    let url = app.url("/readyz");
    let http = app.http.clone();
    let started = tokio::time::Instant::now();
    let stopping = tokio::spawn(app.stop());
    // Within the drain: not ready, the socket still open and serving.
    let mut answered = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let res = http
            .get(&url)
            .send()
            .await
            .expect("readyz during the drain");
        if res.status() == StatusCode::SERVICE_UNAVAILABLE {
            answered = Some(res.text().await.expect("body"));
            break;
        }
    }
    assert_eq!(answered.as_deref(), Some("draining\n"));
    ws.send(&ClientMsg::Join {
        room: shared::DEFAULT_ROOM_ID,
        since: None,
    })
    .await;
    assert!(matches!(ws.recv().await, ServerMsg::Joined { .. }));
    // Then the socket closes with "going away", not before the drain is over.
    assert_eq!(ws.closed().await, Some(1001));
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
    stopping.await.expect("stopped");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let addr = free_addr();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_backend"))
        .args([
            "--bind",
            &addr.to_string(),
            "--log-format",
            "json",
            "--database",
        ])
        .arg(dir.path().join("chat.db"))
        .arg("--static-dir")
        .arg(dir.path().join("dist"))
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("server starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = 0;
    while seen < 2 {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("a log line in time")
            .expect("readable")
            .expect("a line before the end");
        let value: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            value["level"].is_string() && value["fields"].is_object(),
            "{line}"
        );
        seen += 1;
    }
    child.kill().await.expect("killed");
}

/// A certificate for 127.0.0.1 made now, its PEM files written in `dir`, and a client
/// configuration that trusts it.
fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, TlsConnector) {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("certificate");
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key_pair.serialize_pem()).expect("write key");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).expect("trusted");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    (cert_path, key_path, TlsConnector::from(Arc::new(config)))
}

/// One HTTP/1.1 request over a fresh TLS connection; the raw answer.
async fn https(addr: std::net::SocketAddr, tls: &TlsConnector, request: &str) -> String {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let mut stream = tls.connect(name, tcp).await.expect("TLS handshake");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn over_tls_the_server_speaks_https_and_wss_with_hsts_and_secure_cookies() {
    let certs = tempfile::tempdir().expect("temp dir");
    let (cert, key, tls) = certificate(certs.path());
    let app = spawn_app_with(|c| {
        c.tls_cert = Some(cert);
        c.tls_key = Some(key);
    })
    .await;
    let addr = app.addr;

    let answer = https(
        addr,
        &tls,
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{answer}"
    );

    let body = r#"{"username":"tess","password":"correct horse"}"#;
    let answer = https(
        addr,
        &tls,
        &format!(
            "POST /api/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nOrigin: https://127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            addr.port(),
            body.len()
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let cookie = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a session cookie");
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let token = answer
        .split("\"token\":\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .expect("a token")
        .to_owned();

    // wss: the same handshake as ws, inside TLS.
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let stream = tls.connect(name, tcp).await.expect("TLS handshake");
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "wss://127.0.0.1:{}/ws",
            addr.port()
        ))
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("wss upgrade");
    let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("hello in time")
        .expect("a frame")
        .expect("readable");
    let Message::Text(text) = frame else {
        panic!("expected a text frame, got {frame:?}");
    };
    assert!(text.contains("\"type\":\"hello\""), "{text}");

    // Plain HTTP on the TLS port gets no answer: the handshake fails and the connection ends.
    let mut plain = TcpStream::connect(addr).await.expect("connect");
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut answer)).await;
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"));
    app.stop().await;
}

#[tokio::test]
async fn a_certificate_that_cannot_be_read_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, "not a certificate").expect("write");
    std::fs::write(&key, "not a key").expect("write");
    let mut config = backend::Config::new(
        "127.0.0.1:0".parse().expect("addr"),
        dir.path().join("chat.db"),
    );
    config.tls_cert = Some(cert);
    config.tls_key = Some(key);
    let err = backend::Application::build(config)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("TLS"), "{err}");
}
