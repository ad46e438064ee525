//! Password hashing on a fixed set of threads that reuse their memory.
//!
//! argon2id at OWASP's recommended parameters (19 MiB, 2 passes, 1 lane) needs 19 MiB of working
//! memory per hash. Run on tokio's blocking pool, every concurrent login took its own 19 MiB on a
//! thread of its own, with no bound: 200 wrong logins in parallel held 4 GB, and the allocator
//! kept most of it after they finished. Here a fixed number of hasher threads (one per core by
//! default) each own one block buffer, allocated once and reused for every hash, so the memory for
//! hashing is `threads × 19 MiB` whatever the load. Requests wait in a short queue; when the
//! queue is full they are refused at once with [`HashError::Busy`] (503 with `Retry-After`)
//! rather than piling up.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

/// OWASP's recommended argon2id parameters: 19 MiB of memory, 2 passes, 1 lane, 32-byte output.
fn params() -> Params {
    // These constants are valid argon2 parameters, so this cannot fail; the defaults of the
    // crate are the same values.
    Params::new(19 * 1024, 2, 1, Some(32)).unwrap_or_default()
}

/// Why a hash could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hasher is busy and the queue is full: try again shortly.
    #[error("password hashing is at capacity")]
    Busy,
    /// The hasher threads are gone (the server is stopping).
    #[error("password hashing stopped")]
    Stopped,
    /// argon2 refused its input (cannot happen with our parameters).
    #[error("hashing failed: {0}")]
    Failed(String),
}

enum Job {
    Hash {
        password: String,
        reply: oneshot::Sender<Result<String, HashError>>,
    },
    Verify {
        password: String,
        /// The stored PHC string; `None` verifies against a dummy so that an unknown user costs
        /// the same as a wrong password.
        hash: Option<String>,
        reply: oneshot::Sender<Result<bool, HashError>>,
    },
}

/// The pool of hasher threads. Cheap to clone.
#[derive(Clone)]
pub struct Hasher {
    jobs: SyncSender<Job>,
    threads: usize,
}

impl Hasher {
    /// Starts `threads` hasher threads with room for `queue` waiting requests.
    pub fn start(threads: usize, queue: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let (jobs, rx) = sync_channel(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || worker(&rx))?;
        }
        Ok(Self { jobs, threads })
    }

    /// How many hashes run at once at most.
    pub fn threads(&self) -> usize {
        self.threads
    }

    fn submit(&self, job: Job) -> Result<(), HashError> {
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => HashError::Busy,
            TrySendError::Disconnected(_) => HashError::Stopped,
        })
    }

    /// Hashes a new password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Hash {
            password: password.to_owned(),
            reply,
        })?;
        rx.await.map_err(|_| HashError::Stopped)?
    }

    /// Checks `password` against a stored PHC string, or against a dummy when there is none.
    pub async fn verify(&self, password: &str, hash: Option<String>) -> Result<bool, HashError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Verify {
            password: password.to_owned(),
            hash,
            reply,
        })?;
        rx.await.map_err(|_| HashError::Stopped)?
    }
}

/// One hasher thread: takes jobs until the pool is dropped, with one buffer for all of them.
///
/// It runs at the lowest priority (niceness 19): a hash is 20-50 ms of pure CPU, and under a
/// flood of logins the hashers would otherwise take an equal share of the cores from the threads
/// that deliver messages. Logins wait a little longer instead; chat stays live.
fn worker(rx: &Mutex<Receiver<Job>>) {
    if let Err(e) =
        thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
    {
        tracing::debug!(error = ?e, "cannot lower the hasher thread's priority");
    }
    let mut blocks = vec![Block::default(); params().block_count()];
    loop {
        // The lock is held only to take the next job, never while hashing.
        let job = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else { return };
        match job {
            Job::Hash { password, reply } => {
                if reply.is_closed() {
                    continue; // the request was abandoned while it waited
                }
                let _ = reply.send(hash_with(&mut blocks, password.as_bytes()));
            }
            Job::Verify {
                password,
                hash,
                reply,
            } => {
                if reply.is_closed() {
                    continue;
                }
                let hash = hash.unwrap_or_else(|| dummy_hash(&mut blocks));
                let _ = reply.send(Ok(verify_with(&mut blocks, password.as_bytes(), &hash)));
            }
        }
    }
}

fn argon(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes with a fresh salt, using `blocks` as the working memory.
fn hash_with(blocks: &mut Vec<Block>, password: &[u8]) -> Result<String, HashError> {
    let params = params();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| HashError::Failed(e.to_string()))?;
    let mut out = [0u8; 32];
    fit(blocks, params.block_count());
    argon(params.clone())
        .hash_password_into_with_memory(password, salt_raw, &mut out, &mut blocks[..])
        .map_err(|e| HashError::Failed(e.to_string()))?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| HashError::Failed(e.to_string()))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| HashError::Failed(e.to_string()))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `hash`, using `blocks` as the working memory. A
/// hash that does not parse, or asks for more memory than we hash with, never matches.
fn verify_with(blocks: &mut Vec<Block>, password: &[u8], hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return false;
    }
    let (Ok(params), Some(expected), Some(salt)) =
        (Params::try_from(&parsed), parsed.hash, parsed.salt)
    else {
        return false;
    };
    if params.block_count() > params_limit() {
        return false;
    }
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_raw) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    fit(blocks, params.block_count());
    if argon(params.clone())
        .hash_password_into_with_memory(
            password,
            salt_raw,
            &mut out,
            &mut blocks[..params.block_count()],
        )
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&out).is_ok_and(|o| o == expected)
}

/// The most blocks a stored hash may ask for: twice what we hash with, so that a stronger future
/// setting still verifies but a tampered row cannot make a hasher allocate gigabytes.
fn params_limit() -> usize {
    params().block_count() * 2
}

/// Grows the buffer to `n` blocks if needed (it never shrinks: it is reused).
fn fit(blocks: &mut Vec<Block>, n: usize) {
    if blocks.len() < n {
        blocks.resize(n, Block::default());
    }
}

/// A fixed hash of a password nobody has, made once per process.
fn dummy_hash(blocks: &mut Vec<Block>) -> String {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY
        .get_or_init(|| hash_with(blocks, b"not a real password").unwrap_or_default())
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let hasher = Hasher::start(1, 4).expect("threads start");
        let hash = hasher.hash("correct horse").await.expect("hashed");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            hasher
                .verify("correct horse", Some(hash.clone()))
                .await
                .expect("ran")
        );
        assert!(!hasher.verify("wrong horse", Some(hash)).await.expect("ran"));
        assert!(!hasher.verify("anything", None).await.expect("ran"));
        assert!(
            !hasher
                .verify("x", Some("garbage".into()))
                .await
                .expect("ran")
        );
    }

    #[tokio::test]
    async fn hashes_from_the_argon2_crate_still_verify() {
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::generate(&mut OsRng);
        let old = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .expect("hashed")
            .to_string();
        let hasher = Hasher::start(1, 4).expect("threads start");
        assert!(
            hasher
                .verify("correct horse", Some(old.clone()))
                .await
                .expect("ran")
        );
        assert!(!hasher.verify("other", Some(old)).await.expect("ran"));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_instead_of_piling_up() {
        let hasher = Hasher::start(1, 2).expect("threads start");
        let tasks: Vec<_> = (0..12)
            .map(|_| {
                let h = hasher.clone();
                tokio::spawn(async move { h.verify("pw", None).await })
            })
            .collect();
        let mut busy = 0;
        for t in tasks {
            if matches!(t.await.expect("task"), Err(HashError::Busy)) {
                busy += 1;
            }
        }
        assert!(
            busy >= 1,
            "12 requests into 1 thread and 2 places: some refused"
        );
    }
}
