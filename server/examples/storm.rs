//! Alert-storm generator (BENCHMARKS.md): a topology of independent service trees, K of whose
//! databases fail at once; every service in each failing database's blast radius (depth 3)
//! then alerts — three alert names each — once per simulated 10 seconds for 10 minutes, in a
//! random order, from concurrent clients, against a server started in-process. Reports the
//! compression (alerts per incident), the purity (no incident holds two independent root
//! causes; no root cause split across incidents), and ingest throughput, with `GET /healthz`
//! at the same concurrency as the baseline of the same run.
//!
//!   cargo run --release -p server --example storm -- [--services 50] [--roots 5]
//!       [--rounds 60] [--clients 8] [--batch 50] [--database-url URL]
//!
//! The topology: trees of 10 services (a DATABASE; 3 services on it; 2 services on each of
//! those), so a root's blast radius at depth 3 is its own tree, and `--services` / 10 trees.

mod bench;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use clap::Parser;
use sea_orm::{EntityTrait, QueryFilter, QuerySelect};
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 50)]
    services: usize,
    /// Independent databases that fail at once.
    #[arg(long, default_value_t = 5)]
    roots: usize,
    /// Rounds of alerts (one per simulated 10 s: 60 is ten minutes).
    #[arg(long, default_value_t = 60)]
    rounds: usize,
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Alerts per request.
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Default: a fresh SQLite file.
    #[arg(long)]
    database_url: Option<String>,
    /// Correlate by service only, as without a topology (the comparison run).
    #[arg(long)]
    without_topology: bool,
}

const TREE: usize = 10;
const NAMES: [&str; 3] = ["HighErrorRate", "HighLatency", "ProbeFailed"];

fn tree_of(service: &str) -> usize {
    service
        .trim_start_matches('t')
        .split('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

/// `t<N>-db`, `t<N>-api-<i>` (on the db), `t<N>-web-<i>-<j>` (on api i).
fn topology(trees: usize) -> (String, Vec<Vec<String>>) {
    let mut yaml = String::from("services:\n");
    let mut members = Vec::with_capacity(trees);
    for t in 0..trees {
        let db = format!("t{t}-db");
        yaml.push_str(&format!(
            "  - {{ name: {db}, kind: DATABASE, namespace: prod }}\n"
        ));
        let mut tree = vec![db.clone()];
        for i in 0..3 {
            let api = format!("t{t}-api-{i}");
            yaml.push_str(&format!(
                "  - {{ name: {api}, kind: SERVICE, namespace: prod, depends_on: [{db}] }}\n"
            ));
            tree.push(api.clone());
            for j in 0..2 {
                let web = format!("t{t}-web-{i}-{j}");
                yaml.push_str(&format!(
                    "  - {{ name: {web}, kind: SERVICE, namespace: prod, depends_on: [{api}] }}\n"
                ));
                tree.push(web);
            }
        }
        members.push(tree);
    }
    (yaml, members)
}

/// A small deterministic shuffle (no RNG dependency needed for a benchmark's order).
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let trees = (args.services / TREE).max(1);
    let roots = args.roots.min(trees);
    let dir = bench::scratch("storm");
    let (yaml, members) = topology(trees);
    let topology_file = dir.join("topology.yaml");
    std::fs::write(&topology_file, yaml).unwrap();
    let topology_flag = ["--topology", topology_file.to_str().unwrap()];
    let extra: &[&str] = if args.without_topology {
        &[]
    } else {
        &topology_flag
    };
    let bench::Bench {
        base,
        token,
        db,
        database,
        ..
    } = bench::serve(&dir, args.database_url.clone(), extra).await;
    let client = reqwest::Client::new();

    // Every alert of the storm, round by round, each round in its own random order.
    let failing: Vec<&String> = members[..roots].iter().flatten().collect();
    let mut requests: Vec<Vec<serde_json::Value>> = Vec::new();
    for round in 0..args.rounds {
        let mut alerts: Vec<serde_json::Value> = failing
            .iter()
            .flat_map(|service| {
                NAMES.iter().map(move |name| {
                    json!({"status": "firing",
                        "labels": {"alertname": name, "service": service, "namespace": "prod",
                                   "severity": "critical"},
                        "annotations": {"summary": format!("{name} on {service}")},
                        "startsAt": "2026-12-02T03:00:00Z"})
                })
            })
            .collect();
        shuffle(&mut alerts, 0x9e37_79b9_7f4a_7c15 ^ round as u64);
        for chunk in alerts.chunks(args.batch) {
            requests.push(chunk.to_vec());
        }
    }
    let total_alerts: usize = requests.iter().map(Vec::len).sum();

    // Baseline: GET /healthz at the same concurrency, same process, same run.
    let health = {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..args.clients {
            let (client, url) = (client.clone(), format!("{base}/healthz"));
            tasks.push(tokio::spawn(async move {
                let mut n = 0usize;
                while started.elapsed() < Duration::from_secs(3) {
                    if client
                        .get(&url)
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200)
                    {
                        n += 1;
                    }
                }
                n
            }));
        }
        let mut n = 0;
        for t in tasks {
            n += t.await.unwrap();
        }
        n as f64 / started.elapsed().as_secs_f64()
    };

    // The storm: requests in order, `clients` at a time.
    let started = Instant::now();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(requests.into_iter().enumerate()));
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let (client, queue, token) = (client.clone(), queue.clone(), token.clone());
        let url = format!("{base}/api/v1/alerts/alertmanager");
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            loop {
                let Some((_, alerts)) = queue.lock().unwrap().next() else {
                    break;
                };
                let body = json!({"version": "4", "status": "firing", "alerts": alerts});
                let t = Instant::now();
                let ok = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 202);
                latencies.push(t.elapsed());
                failures += usize::from(!ok);
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for t in tasks {
        let (l, f) = t.await.unwrap();
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed();
    latencies.sort();

    // What became of it: each alert row's service (names carry no PII, so they are stored as
    // they are) and incident.
    let rows: Vec<(i32, Option<String>, i32)> = entity::alert::Entity::find()
        .select_only()
        .column(entity::alert::Column::IncidentId)
        .column(entity::alert::Column::Service)
        .column(entity::alert::Column::Count)
        .into_tuple()
        .all(&db)
        .await
        .unwrap();
    let open: BTreeSet<i32> = entity::incident::Entity::find()
        .filter(sea_orm::ColumnTrait::ne(
            &entity::incident::Column::Status,
            "MERGED",
        ))
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    let mut trees_of: BTreeMap<i32, BTreeSet<usize>> = BTreeMap::new();
    let mut incidents_of: BTreeMap<usize, BTreeSet<i32>> = BTreeMap::new();
    let mut counted = 0i64;
    for (incident, service, count) in &rows {
        let tree = tree_of(service.as_deref().unwrap_or_default());
        trees_of.entry(*incident).or_default().insert(tree);
        incidents_of.entry(tree).or_default().insert(*incident);
        counted += i64::from(*count);
    }
    let incidents = trees_of.len();
    let mixed = trees_of.values().filter(|t| t.len() > 1).count();
    let split = incidents_of.values().filter(|i| i.len() > 1).count();
    let pure = incidents - mixed;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "database: {database}; correlation: {}; topology: {} services in {trees} trees; \
         {roots} independent roots fail; {} services alert, {} names each, {} rounds",
        if args.without_topology {
            "by service only"
        } else {
            "along the topology"
        },
        trees * TREE,
        failing.len(),
        NAMES.len(),
        args.rounds
    );
    println!(
        "alerts: {total_alerts} sent in {} requests ({failures} failed), {counted} stored (with repeats) in {} alert rows",
        latencies.len(),
        rows.len()
    );
    println!(
        "incidents: {incidents} holding alerts ({} open incidents in all, merged ones excluded); compression {:.0}:1",
        open.len(),
        total_alerts as f64 / incidents.max(1) as f64
    );
    println!(
        "purity: {pure}/{incidents} incidents hold one root cause ({:.1}%); root causes split across incidents: {split}",
        100.0 * pure as f64 / incidents.max(1) as f64
    );
    let rate = total_alerts as f64 / elapsed.as_secs_f64();
    println!(
        "ingest during the storm: {rate:.0} alerts/s ({:.0} requests/s), p50 {:.2} ms, p99 {:.2} ms",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0))
    );
    println!(
        "baseline GET /healthz: {health:.0} req/s; storm requests/s are {:.3} of it",
        latencies.len() as f64 / elapsed.as_secs_f64() / health
    );
    let _ = std::fs::remove_dir_all(&dir);
}
