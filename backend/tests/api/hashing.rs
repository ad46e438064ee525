//! Password hashing cannot be turned into memory exhaustion: argon2id needs 19 MiB per hash, so
//! the server runs a fixed number at once, reuses their memory, and refuses the excess quickly.

use std::net::SocketAddr;

use tokio::process::Child;

/// Peak and current resident memory of a process, in KiB (`VmHWM`, `VmRSS`).
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .expect("field present")
    };
    (field("VmHWM:"), field("VmRSS:"))
}

async fn start_server(dir: &std::path::Path, extra: &[&str]) -> (Child, SocketAddr) {
    let addr = crate::helpers::free_addr();
    let child = crate::helpers::start_binary(addr, &dir.join("chat.db"), dir, extra).await;
    (child, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_parallel_wrong_logins_do_not_exhaust_memory() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Rate limits off, so that this measures the bounded hashing and nothing else.
    let (child, addr) = start_server(dir.path(), &["--auth-per-minute", "0"]).await;
    let pid = child.id().expect("running");
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/api/login");
    let (_, idle_rss) = memory_kib(pid);

    let attempts: Vec<_> = (0..200)
        .map(|i| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                let body = serde_json::json!({"username": format!("nobody{i}"), "password": "wrong password"});
                let res = http.post(&url).json(&body).send().await.expect("answered");
                let retry = res.headers().get("retry-after").is_some();
                (res.status().as_u16(), retry)
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for a in attempts {
        statuses.push(a.await.expect("task"));
    }
    for (status, retry_after) in &statuses {
        assert!(
            matches!(status, 401 | 503),
            "a wrong login is 401, or 503 when the hashers are busy: {status}"
        );
        if *status == 503 {
            assert!(retry_after, "a 503 says when to come back");
        }
    }
    let (peak, _) = memory_kib(pid);
    // 200 hashes at 19 MiB each took the old server to gigabytes.
    assert!(
        peak < idle_rss + 200 * 1024,
        "peak memory {peak} KiB (idle {idle_rss} KiB)"
    );
}
