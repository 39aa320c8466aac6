//! Knowledge search latency at scale: N knowledge entries (varied failure texts, so full-text
//! search has work) with a stored vector each, then hybrid searches (`knowledge::search`, as
//! the `knowledge` query and `similar` run it) timed end to end against full-text-only
//! searches in the same run (the baseline). The vectors are random unit vectors under the
//! model's fingerprint (embedding 100,000 real texts takes over an hour on one core); the
//! queries are embedded by the real model. The first hybrid search loads the index from the
//! database and is reported apart.
//!
//!   cargo run --release -p server --example retrieval_latency -- --model DIR
//!       [--entries 100000] [--queries 30] [--database-url URL]

mod bench;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use server::services::knowledge::{Retrieval, Semantic, search};

#[derive(Parser)]
struct Args {
    /// The sentence-embedding model directory.
    #[arg(long)]
    model: String,
    #[arg(long, default_value_t = 100_000)]
    entries: usize,
    #[arg(long, default_value_t = 30)]
    queries: usize,
    /// Default: a fresh SQLite file.
    #[arg(long)]
    database_url: Option<String>,
}

const SERVICES: [&str; 8] = [
    "checkout",
    "orders-db",
    "payments",
    "search",
    "kafka",
    "redis",
    "ingress",
    "auth",
];
const FAILURES: [(&str, &str); 8] = [
    (
        "PgTooManyConnections",
        "FATAL: sorry, too many clients already; pool raised",
    ),
    (
        "KubePodCrashLooping",
        "Back-off restarting failed container; bad config rolled back",
    ),
    (
        "NodeFilesystemFull",
        "No space left on device; old logs rotated and compressed",
    ),
    (
        "JvmHeapExhausted",
        "java.lang.OutOfMemoryError: Java heap space; heap raised",
    ),
    (
        "CertificateExpiring",
        "x509: certificate has expired; certificate renewed",
    ),
    (
        "KafkaConsumerLag",
        "consumer group lag growing; consumers scaled out",
    ),
    (
        "DnsResolutionFailing",
        "lookup failed: no such host; CoreDNS restarted",
    ),
    (
        "RedisMaxMemory",
        "OOM command not allowed when used memory > maxmemory; eviction set",
    ),
];
const QUERIES: [&str; 6] = [
    "the app cannot get a database handle, every request waits",
    "pods keep restarting right after the deploy",
    "disk on the log host filled up",
    "java service dies with heap errors",
    "TLS handshake fails, cert no longer valid",
    "events pile up faster than the workers read them",
];

async fn fill(db: &DatabaseConnection, semantic: &Semantic, n: usize) {
    let backend = db.get_database_backend();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let embedded_at = chrono::Utc::now().timestamp_millis() - 3_600_000;
    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut entries = String::from(
            "INSERT INTO knowledge_entries (id, incident_id, path_type, title, body, service, \
             alert_names, root_cause, created_at) VALUES ",
        );
        let mut vectors = String::from(
            "INSERT INTO knowledge_vectors (entry_id, model, vector, embedded_at) VALUES ",
        );
        for (k, &i) in chunk.iter().enumerate() {
            let (alert, body) = FAILURES[i % FAILURES.len()];
            let service = SERVICES[(i / FAILURES.len()) % SERVICES.len()];
            let sep = if k == 0 { "" } else { ", " };
            entries.push_str(&format!(
                "{sep}({id}, {id}, 'A', 'Resolved: {alert} on {service}-{i}', '{body}', \
                 '{service}', '{alert}', '{alert} on {service}', '2026-12-06 00:00:00+00:00')",
                id = i + 1
            ));
            let mut v: Vec<f32> = (0..384)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect();
            embed::normalise(&mut v);
            let hex: String = v
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .map(|b| format!("{b:02x}"))
                .collect();
            let literal = match backend {
                sea_orm::DbBackend::Postgres => format!("'\\x{hex}'::bytea"),
                _ => format!("X'{hex}'"),
            };
            // Embedded an hour ago: a settled base, outside the index's refresh margin.
            vectors.push_str(&format!(
                "{sep}({}, '{}', {literal}, {})",
                i + 1,
                semantic.fingerprint(),
                embedded_at
            ));
        }
        db.execute_unprepared(&entries).await.unwrap();
        db.execute_unprepared(&vectors).await.unwrap();
    }
    println!(
        "{n} entries and vectors written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

async fn timed(db: &DatabaseConnection, retrieval: &Retrieval, queries: usize) -> Vec<Duration> {
    let mut took = Vec::new();
    for q in 0..queries {
        let started = Instant::now();
        let rows = search(db, retrieval, QUERIES[q % QUERIES.len()], 5, None)
            .await
            .unwrap();
        took.push(started.elapsed());
        // Full-text finds nothing for a query that shares no word; meaning always ranks.
        assert!(matches!(retrieval, Retrieval::FullText) || !rows.is_empty());
    }
    took.sort();
    took
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let dir = bench::scratch("retrieval");
    let bench = bench::serve(&dir, args.database_url.clone(), &["--log-format", "text"]).await;
    let semantic = Arc::new(Semantic::load(args.model.as_ref()).unwrap());
    fill(&bench.db, &semantic, args.entries).await;
    let db = &bench.db;
    let hybrid = Retrieval::Hybrid(semantic);

    let started = Instant::now();
    search(db, &hybrid, QUERIES[0], 5, None).await.unwrap();
    let cold = started.elapsed();
    let full_text = timed(db, &Retrieval::FullText, args.queries).await;
    let hybrid_times = timed(db, &hybrid, args.queries).await;
    println!(
        "database: {}, entries: {}, queries: {}",
        bench.database, args.entries, args.queries
    );
    println!(
        "first hybrid search (loads the index): {:.0} ms",
        cold.as_secs_f64() * 1000.0
    );
    println!(
        "baseline full-text search: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&full_text, 50.0),
        percentile(&full_text, 99.0)
    );
    println!(
        "hybrid search: p50 {:.1} ms, p99 {:.1} ms ({:.1}x the full-text p50)",
        percentile(&hybrid_times, 50.0),
        percentile(&hybrid_times, 99.0),
        percentile(&hybrid_times, 50.0) / percentile(&full_text, 50.0)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
