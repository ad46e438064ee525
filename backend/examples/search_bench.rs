//! The search benchmark: builds a database of many messages mixing English and Chinese, then
//! measures the size of the search index and the latency of searches through the store.
//!
//! `cargo run --release -p backend --example search_bench -- --messages 1000000` (run by
//! `make bench`; `make test` runs it with a few thousand messages, as a smoke test that measures
//! nothing). Generation writes the messages straight into the SQLite file in large transactions
//! (the rows the store writes), then the store indexes them as it indexes the messages of a
//! running server, behind the log (timed: the first search waits for it), and the queries go
//! through `Store::search`, as the server's do.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backend::store::{CommitListener, SearchQuery, SqliteStore, Store, Synchronous, terms};
use clap::Parser;
use rusqlite::{Connection, params};
use shared::{MessageEvent, RoomId};

#[derive(Debug, Parser)]
#[command(about = "Search benchmark: index size and query latency over many messages")]
struct Args {
    /// Messages to generate.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Rooms they are spread over.
    #[arg(long, default_value_t = 50)]
    rooms: u64,
    /// Searches to time for each kind of query.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Where to build the database (a temporary folder when absent).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also write the figures into this Markdown file, between its search markers.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// Replaces what lies between the search markers of `path` with `text` (in a code block).
fn write_report(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    const START: &str = "<!-- search:start -->";
    const END: &str = "<!-- search:end -->";
    let old = std::fs::read_to_string(path)?;
    let (Some(a), Some(b)) = (old.find(START), old.find(END)) else {
        return Err(std::io::Error::other(format!(
            "no search markers in {}",
            path.display()
        )));
    };
    let new = format!("{}{START}\n```\n{text}```\n{}", &old[..a], &old[b..]);
    std::fs::write(path, new)
}

/// Ignores commits (nothing is delivered in a benchmark).
struct Nobody;

impl CommitListener for Nobody {
    fn committed(&self, _: Vec<MessageEvent>) {}
}

/// A small deterministic generator (xorshift64*), so every run searches the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Skewed towards small values, as word frequencies are (roughly Zipf).
    fn skewed(&mut self, n: u64) -> u64 {
        let a = self.below(n);
        self.below(a + 1)
    }
}

/// English words: a few hundred real ones, plus made-up ones for a long tail.
const WORDS: &str = "the of and to in is you that it he was for on are as with his they at be \
    this have from or one had by word but not what all were we when your can said there use an \
    each which she do how their if will up other about out many then them these so some her \
    would make like him into time has look two more write go see number no way could people my \
    than first water been call who oil its now find long down day did get come made may part \
    over new sound take only little work know place year live me back give most very after \
    thing our just name good sentence man think say great where help through much before line \
    right too mean old any same tell boy follow came want show also around form three small set \
    put end does another well large must big even such because turn here why ask went men read \
    need land different home us move try kind hand picture again change off play spell air away \
    animal house point page letter mother answer found study still learn should america world \
    hello server message deploy release build test rust chat room search index query bug fix \
    meeting tomorrow lunch coffee review merge branch commit database latency memory network";

/// Chinese text: common characters, and some frequent two-character words.
const HANZI: &str = "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以\
    生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主\
    行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月\
    明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政\
    海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员\
    九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王\
    果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让";
const CN_WORDS: &[&str] = &[
    "世界",
    "中国",
    "今天",
    "明天",
    "我们",
    "你好",
    "服务器",
    "数据库",
    "搜索",
    "消息",
    "会议",
    "问题",
    "时间",
    "工作",
    "朋友",
    "学习",
    "北京",
    "上海",
    "发布",
    "测试",
    "性能",
    "延迟",
];

fn english(rng: &mut Rng, words: &[&str], out: &mut String) {
    let n = 4 + rng.below(16);
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        let w = rng.skewed(words.len() as u64 + 3000);
        match words.get(w as usize) {
            Some(word) => out.push_str(word),
            // The long tail: made-up words, mostly rare.
            None => {
                out.push_str("zq");
                out.push_str(&w.to_string());
            }
        }
    }
    if rng.below(3) == 0 {
        out.push('.');
    }
}

fn chinese(rng: &mut Rng, hanzi: &[char], out: &mut String) {
    let n = 6 + rng.below(24);
    let mut i = 0;
    while i < n {
        if rng.below(4) == 0 {
            let w = CN_WORDS[rng.skewed(CN_WORDS.len() as u64) as usize];
            out.push_str(w);
            i += w.chars().count() as u64;
        } else {
            out.push(hanzi[rng.skewed(hanzi.len() as u64) as usize]);
            i += 1;
        }
        if rng.below(12) == 0 {
            out.push('，');
        }
    }
    out.push('。');
}

/// Fills the database with `args.messages` messages (users, rooms and events) in transactions
/// of 50,000, and returns the size of their text.
fn generate(path: &std::path::Path, args: &Args) -> rusqlite::Result<u64> {
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let hanzi: Vec<char> = HANZI.chars().filter(|c| !c.is_whitespace()).collect();
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let tx = conn.transaction()?;
    for u in 0..100 {
        tx.execute(
            "INSERT INTO users (username, display_name, password_hash, created_at, name_key)
             VALUES (?1, ?1, 'x', 0, ?1)",
            params![format!("user{u}")],
        )?;
    }
    for r in 1..args.rooms {
        tx.execute(
            "INSERT INTO rooms (name, name_key, created_at) VALUES (?1, ?1, 0)",
            params![format!("room{r}")],
        )?;
    }
    tx.commit()?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut seqs = vec![0u64; usize::try_from(args.rooms).unwrap_or(1)];
    let start_ts: i64 = 1_600_000_000_000;
    let mut text = String::new();
    let mut done = 0;
    while done < args.messages {
        let tx = conn.transaction()?;
        {
            let mut event = tx.prepare_cached(
                "INSERT INTO events (room_id, seq, kind, author_id, body, created_at)
                 VALUES (?1, ?2, 'message', ?3, ?4, ?5)",
            )?;
            for _ in 0..50_000.min(args.messages - done) {
                text.clear();
                match rng.below(20) {
                    0..=9 => english(&mut rng, &words, &mut text),
                    10..=16 => chinese(&mut rng, &hanzi, &mut text),
                    _ => {
                        chinese(&mut rng, &hanzi, &mut text);
                        text.push(' ');
                        english(&mut rng, &words, &mut text);
                    }
                }
                let room = rng.skewed(args.rooms);
                let slot = &mut seqs[usize::try_from(room).unwrap_or(0)];
                *slot += 1;
                let ts = start_ts + i64::try_from(done).unwrap_or(0) * 1_000;
                let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                event.execute(params![
                    as_i64(room + 1),
                    as_i64(*slot),
                    as_i64(1 + rng.below(100)),
                    text,
                    ts
                ])?;
                done += 1;
            }
        }
        tx.commit()?;
    }
    let text_bytes: i64 = conn.query_row(
        "SELECT coalesce(sum(length(CAST(body AS BLOB))), 0) FROM events",
        [],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(text_bytes).unwrap_or(0))
}

/// The bytes the search index takes in the file.
fn index_size(path: &std::path::Path) -> rusqlite::Result<u64> {
    let conn = Connection::open(path)?;
    let fts: i64 = conn.query_row(
        "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name LIKE 'message_search%'",
        [],
        |r| r.get(0),
    )?;
    Ok(u64::try_from(fts).unwrap_or(0))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::fmt::Write as _;
    let args = Args::parse();
    let temp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| temp.path().to_owned());
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("search-bench.db");
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    // The store creates the schema (migrations included), then steps aside for the bulk load.
    drop(SqliteStore::open(
        &path,
        Synchronous::Normal,
        Arc::new(Nobody),
    )?);
    let started = Instant::now();
    let text_size = generate(&path, &args)?;
    let generated = started.elapsed();

    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(
        &path,
        Synchronous::Normal,
        Arc::new(Nobody),
    )?);
    // The first search waits for the store to index everything generated.
    let started = Instant::now();
    store
        .search(SearchQuery {
            terms: terms::query_terms("warmup").map_err(|e| e.to_string())?,
            rooms: vec![RoomId(1)],
            author: None,
            has_file: false,
            after: None,
            before: None,
            cursor: None,
            limit: 1,
        })
        .await?;
    let indexed = started.elapsed();
    let index_size = index_size(&path)?;
    let file_size = std::fs::metadata(&path)?.len();
    let all: Vec<RoomId> = (1..=args.rooms).map(RoomId).collect();
    // Rooms get messages unevenly (room 1 the most): a search of one room alternates between
    // the five busiest; the quietest room is the worst case, where most matches of a common word
    // are in other rooms and are skipped.
    let busy = |i: usize| vec![RoomId(1 + (i as u64) % args.rooms.min(5))];
    let quiet = |_: usize| vec![RoomId(args.rooms)];
    let every = |_: usize| all.clone();
    type Rooms<'a> = &'a dyn Fn(usize) -> Vec<RoomId>;
    let kinds: Vec<(&str, &str, Rooms<'_>)> = vec![
        ("English, common word", "time", &every),
        ("English, two words", "water people", &every),
        ("English, rare word", "zq2917", &every),
        ("Chinese, 2 characters", "世界", &every),
        ("Chinese, 4 characters", "服务器性能", &every),
        ("Chinese, 1 character", "爱", &every),
        ("mixed Chinese and English", "世界 hello", &every),
        ("no hit", "zzzzqqqq", &every),
        ("English, common, busy room", "time", &busy),
        ("Chinese, 2 chars, busy room", "世界", &busy),
        ("English, common, quietest room", "time", &quiet),
        ("Chinese, 2 chars, quietest room", "世界", &quiet),
    ];
    let mut out = String::new();
    writeln!(
        out,
        "search over {} messages in {} rooms (half English, a third Chinese, the rest both)",
        args.messages, args.rooms
    )?;
    writeln!(
        out,
        "generated in {:.1} s, indexed by the store in {:.1} s ({:.0} messages/s)",
        generated.as_secs_f64(),
        indexed.as_secs_f64(),
        args.messages as f64 / indexed.as_secs_f64().max(1e-9)
    )?;
    writeln!(
        out,
        "database {:.1} MiB, message text {:.1} MiB, search index {:.1} MiB",
        file_size as f64 / 1048576.0,
        text_size as f64 / 1048576.0,
        index_size as f64 / 1048576.0
    )?;
    writeln!(
        out,
        "{:<32} {:>5} {:>8} {:>8}   (ms: a first page of 20 hits; {} searches each; every room unless said)",
        "query", "hits", "p50", "p99", args.queries
    )?;
    let mut overall = Vec::new();
    for (label, q, rooms) in &kinds {
        let terms = terms::query_terms(q).map_err(|e| e.to_string())?;
        let mut times = Vec::with_capacity(args.queries);
        let mut hits = 0;
        for i in 0..args.queries {
            let t = Instant::now();
            let found = store
                .search(SearchQuery {
                    terms: terms.clone(),
                    rooms: rooms(i),
                    author: None,
                    has_file: false,
                    after: None,
                    before: None,
                    cursor: None,
                    limit: 20,
                })
                .await?;
            times.push(t.elapsed());
            if i == 0 {
                hits = found.hits.len();
            }
        }
        times.sort_unstable();
        writeln!(
            out,
            "{:<32} {:>5} {:>8} {:>8}",
            label,
            hits,
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99))
        )?;
        overall.extend(times);
    }
    overall.sort_unstable();
    writeln!(
        out,
        "{:<32} {:>5} {:>8} {:>8}",
        "all of the above",
        "",
        ms(percentile(&overall, 0.5)),
        ms(percentile(&overall, 0.99))
    )?;
    print!("{out}");
    if let Some(report) = &args.report {
        write_report(report, &out)?;
    }
    Ok(())
}
