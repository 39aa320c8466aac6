//! Ingest load generator: posts Alertmanager batches (50 alerts by default) from N concurrent
//! clients for a fixed time against a server it starts in-process (SQLite in a scratch
//! directory, or `--database-url postgres://…`), then prints sustained alerts/s and latency
//! percentiles. Baseline in the same run: `GET /healthz` at the same concurrency (the HTTP
//! floor of this machine).
//!
//!   cargo run --release -p server --example load_ingest -- [--seconds 20] [--clients 16]
//!       [--batch 50] [--database-url URL]

mod bench;

use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    #[arg(long, default_value_t = 16)]
    clients: usize,
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Default: a fresh SQLite file.
    #[arg(long)]
    database_url: Option<String>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

struct Run {
    requests: usize,
    failures: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

async fn drive<F, Fut>(clients: usize, seconds: u64, make: F) -> Run
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for client in 0..clients {
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            let mut n = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                if !make(client, n).await {
                    failures += 1;
                }
                latencies.push(t.elapsed());
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

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let dir = bench::scratch("load");
    let bench::Bench {
        base,
        token,
        database,
        ..
    } = bench::serve(&dir, args.database_url.clone(), &["--log-format", "text"]).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()
        .unwrap();

    let health = {
        let (client, url) = (client.clone(), format!("{base}/healthz"));
        drive(args.clients, args.seconds.min(5), move |_, _| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                client
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            }
        })
        .await
    };

    let batch = args.batch;
    let ingest = {
        let (client, url) = (client.clone(), format!("{base}/api/v1/alerts/alertmanager"));
        drive(args.clients, args.seconds, move |c, n| {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            async move {
                // 50 services × 200 alert names: new alerts first, repeats (dedup) later.
                let alerts: Vec<_> = (0..batch)
                    .map(|i| {
                        let k = (c * 7919 + n * batch + i) % 10_000;
                        json!({"status": "firing",
                            "labels": {"alertname": format!("Alert{}", k % 200),
                                "service": format!("svc-{}", k / 200), "severity": "warning",
                                "instance": format!("10.0.{}.{}:9100", k % 250, i % 250)},
                            "annotations": {"description": format!("user{k}@example.com saw errors")},
                            "startsAt": "2026-11-25T03:00:00Z"})
                    })
                    .collect();
                let body = json!({"version": "4", "status": "firing", "alerts": alerts});
                client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 202)
            }
        })
        .await
    };

    let rate = |run: &Run| run.requests as f64 / run.elapsed.as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "database: {database}, clients: {}, batch: {batch}",
        args.clients
    );
    println!(
        "baseline GET /healthz: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
        rate(&health),
        ms(percentile(&health.latencies, 50.0)),
        ms(percentile(&health.latencies, 99.0))
    );
    println!(
        "ingest: {:.0} req/s = {:.0} alerts/s, p50 {:.2} ms, p99 {:.2} ms, failures {} of {}",
        rate(&ingest),
        rate(&ingest) * batch as f64,
        ms(percentile(&ingest.latencies, 50.0)),
        ms(percentile(&ingest.latencies, 99.0)),
        ingest.failures,
        ingest.requests
    );
    println!(
        "ratio: ingest requests/s are {:.3} of the /healthz baseline",
        rate(&ingest) / rate(&health)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
