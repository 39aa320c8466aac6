//! Alert received → approval-ready proposal published, with the rules brain: posts one alert at
//! a time (the seed's scenario: frontend 5xx while postgres-db is out of connections) to a
//! server in this process, waits until the analysis it starts is stored and its incident is
//! AWAITING_APPROVAL, resolves it (and lets the run that starts settle), and repeats. Prints
//! p50/p99 over N alerts; baseline in the same run: the alert's own 202 (ingest alone). The
//! analysis waits `--quiet-ms` without a new alert first (the product's default is 3000: this
//! measures the machinery on top of it, default 0).
//!
//!   cargo run --release -p server --example latency_proposal -- [--alerts 1000] [--quiet-ms 0]

mod bench;

use std::time::{Duration, Instant};

use clap::Parser;
use sea_orm::EntityTrait;
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1000)]
    alerts: usize,
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long, default_value_t = 0)]
    quiet_ms: u64,
}

/// Waits until incident `id` is AWAITING_APPROVAL with an analysis stored after `since`.
async fn settled(
    db: &sea_orm::DatabaseConnection,
    updates: &mut tokio::sync::broadcast::Receiver<i32>,
    id: i32,
    since: chrono::DateTime<chrono::Utc>,
) {
    loop {
        let row = entity::incident::Entity::find_by_id(id)
            .one(db)
            .await
            .unwrap()
            .unwrap();
        let analysed = entity::analysis::Entity::find_by_id(id)
            .one(db)
            .await
            .unwrap()
            .is_some_and(|a| a.created_at >= since);
        if analysed && row.status == engine::incident::IncidentStatus::AwaitingApproval {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), updates.recv())
            .await
            .expect("a change within 10 s");
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let dir = bench::scratch("latency");
    let config = dir.join("awoooi.toml");
    std::fs::write(
        &config,
        format!(
            "[brain]\nquiet_seconds = {}\nmax_wait_seconds = 3600\nmax_runs = 1000000\n",
            args.quiet_ms as f64 / 1000.0
        ),
    )
    .unwrap();
    let bench::Bench {
        base,
        token,
        db,
        ingest,
        database,
        ..
    } = bench::serve(
        &dir,
        args.database_url.clone(),
        &["--demo", "--config", config.to_str().unwrap()],
    )
    .await;
    let mut updates = ingest.subscribe();
    let client = reqwest::Client::new();
    let post = |body: serde_json::Value| {
        client
            .post(format!("{base}/api/v1/alerts/webhook"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    // The database stays unhealthy throughout.
    post(json!({"name": "ConnectionsExhausted", "service": "postgres-db", "severity": "critical"}))
        .await
        .unwrap();

    let mut accepted = Vec::with_capacity(args.alerts);
    let mut proposed = Vec::with_capacity(args.alerts);
    for i in 0..args.alerts {
        let alert = json!({"name": format!("HighErrorRate{i}"), "service": "frontend",
            "severity": "critical", "description": "5xx rate > 15%"});
        while updates.try_recv().is_ok() {}
        let posted_at = chrono::Utc::now();
        let started = Instant::now();
        let response = post(alert.clone()).await.unwrap();
        accepted.push(started.elapsed());
        let id: i32 = response.json::<serde_json::Value>().await.unwrap()["incidents"][0]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        settled(&db, &mut updates, id, posted_at).await;
        proposed.push(started.elapsed());
        let mut resolved = alert;
        resolved["status"] = json!("resolved");
        let resolved_at = chrono::Utc::now();
        post(resolved).await.unwrap();
        // Its resolution changes the incident too: let that run end before the next alert.
        settled(&db, &mut updates, id, resolved_at).await;
    }
    accepted.sort();
    proposed.sort();
    println!(
        "alerts: {}, brain: rules, database: {}",
        args.alerts, database
    );
    println!(
        "baseline alert accepted (202): p50 {:.2} ms, p99 {:.2} ms",
        pct(&accepted, 50.0),
        pct(&accepted, 99.0)
    );
    println!(
        "proposal published:            p50 {:.2} ms, p99 {:.2} ms",
        pct(&proposed, 50.0),
        pct(&proposed, 99.0)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
