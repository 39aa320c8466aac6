//! Alert received → approval-ready proposal published, with the rules brain: posts one alert at
//! a time (the seed's scenario: frontend 5xx while postgres-db is out of connections) to a
//! server in this process, waits until its incident is AWAITING_APPROVAL with a proposal,
//! resolves it, and repeats. Prints p50/p99 over N alerts; baseline in the same run: the
//! alert's own 202 (ingest alone).
//!
//!   cargo run --release -p server --example latency_proposal -- [--alerts 1000]

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
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let dir = bench::scratch("latency");
    let bench::Bench {
        base,
        token,
        db,
        ingest,
        database,
    } = bench::serve(&dir, args.database_url.clone(), &["--demo"]).await;
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
        let started = Instant::now();
        let response = post(alert.clone()).await.unwrap();
        accepted.push(started.elapsed());
        let id: i32 = response.json::<serde_json::Value>().await.unwrap()["incidents"][0]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        loop {
            let changed = tokio::time::timeout(Duration::from_secs(10), updates.recv())
                .await
                .expect("a proposal within 10 s")
                .unwrap();
            if changed != id {
                continue;
            }
            let row = entity::incident::Entity::find_by_id(id)
                .one(&db)
                .await
                .unwrap()
                .unwrap();
            if row.status == engine::incident::IncidentStatus::AwaitingApproval {
                break;
            }
        }
        proposed.push(started.elapsed());
        let mut resolved = alert;
        resolved["status"] = json!("resolved");
        post(resolved).await.unwrap();
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
