//! What the example benchmarks share: a real server in this process, on a loopback port, over
//! a scratch data directory (SQLite there unless a database URL is given), with an SRE token.
//! Each example uses what it needs of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use server::services::ingest::Ingest;

pub struct Bench {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// An SRE API token.
    pub token: String,
    pub db: DatabaseConnection,
    pub ingest: Ingest,
    /// Whether the database answers (what the Kafka input checks before each batch).
    pub health: server::base::db::DbHealth,
    /// `sqlite` or `postgres`.
    pub database: &'static str,
}

/// A fresh scratch directory for benchmark `name`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("awoooi-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts the server on `database_url` (else SQLite in `dir`) with the extra flags `extra`.
pub async fn serve(dir: &std::path::Path, database_url: Option<String>, extra: &[&str]) -> Bench {
    serve_with_env(dir, database_url, extra, &[]).await
}

/// [`serve`] with environment variables for the configuration (`AWOOOI_*` twins).
pub async fn serve_with_env(
    dir: &std::path::Path,
    database_url: Option<String>,
    extra: &[&str],
    env: &[(&str, String)],
) -> Bench {
    let url = database_url
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("awoooi.db").display()));
    let mut argv = vec![
        "awoooi",
        "--database-url",
        &url,
        "--data-dir",
        dir.to_str().unwrap(),
    ];
    argv.extend(extra);
    let cli = <server::edge::cli::Cli as clap::Parser>::try_parse_from(argv).unwrap();
    let config = server::edge::config::Config::resolve(&cli, |name| {
        env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    })
    .unwrap();
    let database = config.database_kind();
    let state = server::edge::state::build_state(config).await.unwrap();
    let (token, _) =
        server::services::auth::create_api_token(&state.db, "bench", engine::Role::Sre)
            .await
            .unwrap();
    let (db, ingest, health) = (state.db.clone(), state.ingest.clone(), state.health.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, server::edge::http::router(state))
            .await
            .unwrap();
    });
    Bench {
        base,
        token,
        db,
        ingest,
        health,
        database,
    }
}

/// The value at percentile `p` of `sorted`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// A closed-loop load run: every request's latency, in order.
pub struct Run {
    pub requests: usize,
    pub failures: usize,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

/// `clients` tasks each calling `make(client, n)` in a loop for `seconds`.
pub async fn drive<F, Fut>(clients: usize, seconds: u64, make: F) -> Run
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    run_clients(clients, seconds, None, make).await
}

/// A run on a schedule: `clients` tasks, each due to call `make(client, n)` every
/// `clients / per_second` seconds (the clients staggered evenly) for `seconds`. A client calls
/// when its call is due, or, if its previous call is still unanswered then, as soon as that
/// one is answered. A call's latency counts from when it was due, not from when it was sent,
/// so a server that falls behind shows its queue in the percentiles (the coordinated omission
/// a closed loop hides); the run's own rate then falls short of `per_second`.
pub async fn drive_at_rate<F, Fut>(clients: usize, seconds: u64, per_second: f64, make: F) -> Run
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let every = Duration::from_secs_f64(clients as f64 / per_second);
    run_clients(clients, seconds, Some(every), make).await
}

/// The clients of [`drive`] (`every` is `None`: each call as soon as the last is answered)
/// and [`drive_at_rate`] (a call due every `every` per client).
async fn run_clients<F, Fut>(clients: usize, seconds: u64, every: Option<Duration>, make: F) -> Run
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    use tokio::time::Instant;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for client in 0..clients {
        let make = make.clone();
        let schedule = every.map(|every| {
            (
                started + every.mul_f64(client as f64 / clients as f64),
                every,
            )
        });
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            let mut n = 0;
            loop {
                let due = match schedule {
                    Some((first, every)) => first + every.mul_f64(n as f64),
                    None => Instant::now(),
                };
                if due >= deadline {
                    break;
                }
                if schedule.is_some() {
                    tokio::time::sleep_until(due).await;
                }
                if !make(client, n).await {
                    failures += 1;
                }
                latencies.push(due.elapsed());
                n += 1;
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let (l, f) = task.await.unwrap();
        latencies.extend(l);
        failures += f;
    }
    latencies.sort();
    Run {
        requests: latencies.len(),
        failures,
        elapsed: started.elapsed(),
        latencies,
    }
}
