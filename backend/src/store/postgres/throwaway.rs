//! A throwaway PostgreSQL server: a fresh cluster in a temporary folder, on loopback and a free
//! port, stopped and deleted when dropped. The tests of the PostgreSQL store run on one; it
//! needs only the server binaries of Debian's `postgresql` package (`scripts/setup.sh` installs
//! them), never a running system cluster.
//!
//! `initdb` and `postgres` refuse to run as root, and CI runs as root: then the cluster belongs
//! to the `postgres` user and every server command runs through `runuser -u postgres`.
//!
//! The server is stopped by [`Drop`]. In case the process dies without unwinding (killed by a
//! test runner's timeout, say), a watchdog shell started beside the server polls this process
//! and, once it is gone, stops the server and deletes the folder.
//!
//! It is made for tests: `fsync` is off, authentication is `trust` on loopback only.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection;

/// Where Debian puts each major version's server binaries.
const DEBIAN_BINARIES: &str = "/usr/lib/postgresql";
/// The most a server command (initdb, start, stop) may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// Numbers the servers and databases of this process.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A running throwaway server (see the module docs).
#[derive(Debug)]
pub struct Throwaway {
    /// The temporary folder: the cluster (`data/`), the log and the Unix socket.
    dir: PathBuf,
    /// The folder of `initdb`, `pg_ctl` and `postgres`.
    bin: PathBuf,
    /// The loopback port it listens on.
    port: u16,
    /// Whether server commands run as the `postgres` user (this process is root).
    as_postgres: bool,
    /// Stops the server if this process dies without dropping it.
    watchdog: Option<Child>,
}

impl Throwaway {
    /// Creates a cluster and starts it. Fails with a message that says what is missing or what
    /// the server logged.
    pub fn start() -> Result<Self, String> {
        let bin = server_binaries()?;
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!(
            "chat-pg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
        let mut server = Self {
            dir,
            bin,
            port: 0,
            as_postgres,
            watchdog: None,
        };
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&server.dir))?;
        }
        run(server
            .command("initdb")
            .arg("-D")
            .arg(server.data())
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync"))?;
        server.watchdog = server.spawn_watchdog().ok();
        // A free port can be taken by someone else between the probe and the start: try again.
        let mut last = String::new();
        for _ in 0..3 {
            server.port = free_port()?;
            match server.start_server() {
                Ok(()) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The URL of the `postgres` database, as the superuser.
    pub fn admin_url(&self) -> String {
        self.url("postgres")
    }

    /// The URL of a database of this server.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates an empty database and returns its URL. The future does not borrow the server.
    pub fn create_database(
        &self,
    ) -> impl std::future::Future<Output = Result<String, String>> + Send + 'static {
        let name = format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let admin = self.admin_url();
        let url = self.url(&name);
        async move {
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .map_err(|e| format!("cannot connect to the throwaway server: {e}"))?;
            let sql = format!("CREATE DATABASE {name}");
            sqlx::Executor::execute(&mut conn, sql.as_str())
                .await
                .map_err(|e| format!("cannot create a database: {e}"))?;
            let _ = conn.close().await;
            Ok(url)
        }
    }

    /// Stops the server for a test of an outage: every connection is cut, as when a database
    /// restarts. A fast shutdown, not an immediate one: this server runs with
    /// `synchronous_commit` off, so a crash would lose its last commits, which a real server
    /// does not. [`Throwaway::resume`] starts it again on the same port.
    pub fn halt(&self) -> Result<(), String> {
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "-t", "20", "stop"]))
    }

    /// Starts the server again after [`Throwaway::halt`], on the same port.
    pub fn resume(&self) -> Result<(), String> {
        self.start_server()
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// A command for one of the server binaries, as the user that owns the cluster.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn start_server(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=300",
            self.port,
            self.dir.display()
        );
        let started = run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.log())
            .args(["-w", "-t", "30", "-o"])
            .arg(options)
            .arg("start"));
        started.map_err(|e| {
            let log = std::fs::read_to_string(self.log()).unwrap_or_default();
            format!("{e}\nserver log:\n{log}")
        })
    }

    /// A shell that waits for this process to end, then stops the server and deletes the
    /// folder. In its own process group, so that a Ctrl-C to the tests does not end it first.
    fn spawn_watchdog(&self) -> std::io::Result<Child> {
        use std::os::unix::process::CommandExt;
        let pg_ctl = self.bin.join("pg_ctl");
        let runner = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {runner}'{pg_ctl}' -D '{data}' -m immediate stop; rm -rf '{dir}'",
            pid = std::process::id(),
            pg_ctl = pg_ctl.display(),
            data = self.data().display(),
            dir = self.dir.display(),
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        if self.port != 0 {
            let stopped = run(self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "fast", "-w", "-t", "20", "stop"]));
            if let Err(e) = stopped {
                tracing::warn!(error = %e, "the throwaway PostgreSQL did not stop");
            }
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The server binaries: `CHAT_PG_BIN` if set, else the newest version under
/// `/usr/lib/postgresql/`.
fn server_binaries() -> Result<PathBuf, String> {
    find_binaries(std::env::var_os("CHAT_PG_BIN"), Path::new(DEBIAN_BINARIES))
}

/// The folder of `initdb`: `chosen` if given, else the newest `<version>/bin` under `root`.
fn find_binaries(chosen: Option<std::ffi::OsString>, root: &Path) -> Result<PathBuf, String> {
    if let Some(dir) = chosen {
        let dir = PathBuf::from(dir);
        return if dir.join("initdb").exists() {
            Ok(dir)
        } else {
            Err(format!("CHAT_PG_BIN={dir:?} has no initdb"))
        };
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        format!(
            "PostgreSQL's server binaries are not installed (no {}/<version>/bin/initdb): run \
             scripts/setup.sh, or `apt-get install postgresql`, or set CHAT_PG_BIN",
            root.display()
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Runs a command to its end within [`COMMAND_LIMIT`]; its output is kept for the error.
fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let out_path = std::env::temp_dir().join(format!(
        "chat-pg-cmd-{}-{}.out",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let out = std::fs::File::create(&out_path).map_err(|e| format!("{shown}: {e}"))?;
    let err = out.try_clone().map_err(|e| format!("{shown}: {e}"))?;
    // Output goes to a file, not a pipe: a server started by pg_ctl must not hold a pipe of
    // ours open.
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let deadline = Instant::now() + COMMAND_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("{shown} took more than {COMMAND_LIMIT:?}"));
            }
            Err(e) => break Err(format!("{shown}: {e}")),
        }
    };
    let output = read_and_remove(&out_path);
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("{shown} failed ({status}):\n{output}")),
        Err(e) => Err(format!("{e}\n{output}")),
    }
}

fn read_and_remove(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let _ = std::fs::remove_file(path);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_server_binaries_are_an_error_that_says_what_to_install() {
        let missing = find_binaries(None, Path::new("/nonexistent/postgresql"));
        let message = missing.expect_err("no binaries there");
        assert!(message.contains("apt-get install postgresql"), "{message}");
        let wrong = find_binaries(Some("/nonexistent/bin".into()), Path::new(DEBIAN_BINARIES));
        assert!(wrong.expect_err("no initdb").contains("CHAT_PG_BIN"));
    }
}
