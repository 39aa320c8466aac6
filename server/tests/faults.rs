//! Fault suites on the real binary:
//! - `kill -9` under ingest load, 20 times: every alert answered `202` is in the database;
//! - PostgreSQL going away mid-load (a TCP proxy between AWOOOI and PostgreSQL drops every
//!   connection and refuses new ones, as a restart does): ingest answers `503` while it is
//!   down, `202` again once it is back — without restarting AWOOOI — and nothing acknowledged
//!   is lost.

use crate::support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};
use support::{Api, Backend, Process, Proxy, ScratchDb, WEBHOOK_SECRET};

on_both_backends!(every_acknowledged_alert_survives_twenty_kill_nines);

const WRITERS: usize = 6;

/// Posts one alert about its own service with the webhook HMAC (no database needed to
/// authenticate); `Some(incident ids)` when answered 202, `None` for a refusal or no answer.
async fn post_alert(api: &Api, n: usize) -> (u16, Option<Vec<String>>) {
    let body =
        json!({"name": format!("Load {n}"), "service": format!("svc-{n}"), "severity": "warning"})
            .to_string();
    let signature = server::edge::webhooks::signature(WEBHOOK_SECRET, body.as_bytes());
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/alerts/webhook", api.base))
        .header("content-type", "application/json")
        .header("x-awoooi-signature", signature)
        .timeout(Duration::from_secs(15))
        .body(body)
        .send()
        .await;
    match response {
        Ok(r) if r.status() == 202 => {
            let value: Value = r.json().await.unwrap_or_default();
            let ids = value["incidents"].as_array().map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            });
            (202, ids)
        }
        Ok(r) => (r.status().as_u16(), None),
        Err(_) => (0, None),
    }
}

/// Acknowledged alerts: (alert number, incident id it joined).
type Acked = Arc<Mutex<Vec<(usize, String)>>>;

/// Writers posting alerts until `stop`; each acknowledged alert is recorded, each status
/// counted.
fn load(
    api: Api,
    next: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    acked: Acked,
    statuses: Arc<Mutex<Vec<u16>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..WRITERS)
        .map(|_| {
            let (api, next, stop, acked, statuses) = (
                api.clone(),
                next.clone(),
                stop.clone(),
                acked.clone(),
                statuses.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let (status, ids) = post_alert(&api, n).await;
                    statuses.lock().unwrap().push(status);
                    if let Some(ids) = ids {
                        let mut acked = acked.lock().unwrap();
                        acked.extend(ids.into_iter().map(|id| (n, id)));
                    }
                }
            })
        })
        .collect()
}

/// Acknowledged alerts missing from the database: each must have its incident, holding an
/// alert of its service's name.
async fn missing(db: &DatabaseConnection, acked: &[(usize, String)]) -> Vec<usize> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT DISTINCT incident_id FROM alerts",
        ))
        .await
        .unwrap();
    let stored: BTreeSet<i64> = rows
        .iter()
        .map(|r| {
            r.try_get::<i32>("", "incident_id")
                .map(i64::from)
                .unwrap_or_else(|_| r.try_get::<i64>("", "incident_id").unwrap())
        })
        .collect();
    acked
        .iter()
        .filter(|(_, id)| !stored.contains(&id.parse::<i64>().unwrap()))
        .map(|(n, _)| *n)
        .collect()
}

/// `awoooi serve` on `database_url`, taking alerts signed with the test webhook secret.
async fn server(scratch: &ScratchDb, database_url: &str) -> Process {
    let config = scratch.dir.join("awoooi.toml");
    std::fs::write(
        &config,
        format!("[ingest]\nwebhook_secret = \"{WEBHOOK_SECRET}\"\n"),
    )
    .unwrap();
    let dir = scratch.dir.to_str().unwrap();
    let config = config.to_str().unwrap();
    Process::spawn(
        &[
            "--database-url",
            database_url,
            "--data-dir",
            dir,
            "--config",
            config,
        ],
        &[],
        scratch.dir.join("server.log"),
    )
    .await
}

/// What the writers saw: acknowledged alerts, every status, the next alert number.
#[derive(Default)]
struct Tally {
    acked: Acked,
    statuses: Arc<Mutex<Vec<u16>>>,
    next: Arc<AtomicUsize>,
}

impl Tally {
    fn load(&self, api: &Api, stop: &Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<()>> {
        load(
            api.clone(),
            self.next.clone(),
            stop.clone(),
            self.acked.clone(),
            self.statuses.clone(),
        )
    }
}

async fn every_acknowledged_alert_survives_twenty_kill_nines(backend: Backend) {
    let scratch = ScratchDb::new(backend).await;
    let mut server = server(&scratch, &scratch.url).await;
    let tally = Tally::default();
    for round in 0..20u64 {
        let stop = Arc::new(AtomicBool::new(false));
        let acked_before = tally.acked.lock().unwrap().len();
        let writers = tally.load(&server.api, &stop);
        // Under load for sure: some alerts acknowledged this round before the kill.
        for _ in 0..200 {
            if tally.acked.lock().unwrap().len() >= acked_before + 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        // Kill at a different point of the load each round.
        tokio::time::sleep(Duration::from_millis(150 + (round * 37) % 400)).await;
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.await.unwrap();
        }
        server.restart().await;
    }
    drop(server);
    let acked = tally.acked.lock().unwrap().clone();
    let statuses = tally.statuses.lock().unwrap().clone();
    assert!(
        acked.len() >= 60,
        "too little load to mean anything: {} acknowledged of {} sent",
        acked.len(),
        statuses.len()
    );
    let db = Database::connect(&scratch.url).await.unwrap();
    let lost = missing(&db, &acked).await;
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged alerts lost: {lost:?}",
        lost.len(),
        acked.len()
    );
    println!(
        "kill -9 x20 ({}): {} requests, {} acknowledged, 0 lost",
        backend.name(),
        statuses.len(),
        acked.len()
    );
}

/// How the database goes away and comes back.
enum Outage {
    /// The proxy drops connections and refuses new ones (safe beside other tests).
    Proxy(Proxy),
    /// The machine's real PostgreSQL cluster is stopped and started (`pg_ctlcluster`); run
    /// alone, by hand: `cargo nextest run -p server --test faults --run-ignored only`.
    Cluster(String),
}

impl Outage {
    fn down(&self) {
        match self {
            Outage::Proxy(proxy) => proxy.down(),
            Outage::Cluster(cluster) => pg_ctl(cluster, "stop"),
        }
    }
    fn up(&self) {
        match self {
            Outage::Proxy(proxy) => proxy.up(),
            Outage::Cluster(cluster) => pg_ctl(cluster, "start"),
        }
    }
}

fn pg_ctl(cluster: &str, action: &str) {
    let (version, name) = cluster.split_once('/').unwrap();
    let mut command = std::process::Command::new("pg_ctlcluster");
    command.args([version, name, action]);
    if action == "stop" {
        command.args(["-m", "fast"]);
    }
    let status = command
        .status()
        .expect("pg_ctlcluster (Debian's postgresql-common)");
    assert!(status.success(), "pg_ctlcluster {cluster} {action}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_gets_503_then_recovers_without_a_restart() {
    database_outage_mid_load(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stops the machine's PostgreSQL: run alone (TESTING.md)"]
async fn postgres_really_restarted_mid_load_gets_503_then_recovers() {
    database_outage_mid_load(true).await;
}

async fn database_outage_mid_load(real_restart: bool) {
    let scratch = ScratchDb::new(Backend::Postgres).await;
    let (host_port, database) = {
        let rest = scratch.url.split_once('@').unwrap().1;
        let (host_port, database) = rest.split_once('/').unwrap();
        (host_port.to_owned(), database.to_owned())
    };
    let proxy = Proxy::start(host_port.clone()).await;
    let user = scratch
        .url
        .strip_prefix("postgres://")
        .unwrap()
        .split_once('@')
        .unwrap()
        .0
        .to_owned();
    let (url, outage) = if real_restart {
        let cluster = std::env::var("AWOOOI_TEST_PG_CLUSTER").unwrap_or_else(|_| "15/main".into());
        (scratch.url.clone(), Outage::Cluster(cluster))
    } else {
        let through = format!("postgres://{user}@127.0.0.1:{}/{database}", proxy.port);
        (through, Outage::Proxy(proxy))
    };
    let server = server(&scratch, &url).await;
    let tally = Tally::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers = tally.load(&server.api, &stop);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let before_down = tally.statuses.lock().unwrap().len();
    outage.down();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Once the outage is noticed, a request is refused at once — not after the pool's 5 s
    // acquire timeout — whether it is signed or carries a bearer token.
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let (status, _) = post_alert(&server.api, usize::MAX).await;
        assert_eq!(status, 503);
        assert!(
            started.elapsed() < Duration::from_millis(2_500),
            "a signed alert waited {:?} for a database that is away",
            started.elapsed()
        );
        let started = std::time::Instant::now();
        let bearer = reqwest::Client::new()
            .post(format!("{}/graphql", server.base))
            .header("authorization", "Bearer awoooi_api_not-checkable-now")
            .header("content-type", "application/json")
            .body(r#"{"query":"{ me { name } }"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(bearer.status(), 503);
        assert!(
            started.elapsed() < Duration::from_millis(2_500),
            "a bearer request waited {:?}",
            started.elapsed()
        );
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    let during: Vec<u16> = tally.statuses.lock().unwrap()[before_down..].to_vec();
    let ready = reqwest::get(format!("{}/readyz", server.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "readyz while the database is away");
    outage.up();
    // Back without restarting AWOOOI: 202s again within a few seconds.
    let mut recovered = false;
    for _ in 0..150 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let tail = tally
            .statuses
            .lock()
            .unwrap()
            .iter()
            .rev()
            .take(5)
            .all(|s| *s == 202);
        if tail {
            recovered = true;
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    assert!(
        recovered,
        "ingest did not recover: {:?}",
        tally.statuses.lock().unwrap()
    );
    let refused = during.iter().filter(|s| **s == 503).count();
    assert!(
        refused > 0,
        "no 503 while the database was away: {during:?}"
    );
    assert!(
        during.iter().all(|s| *s == 503 || *s == 202),
        "only 503 (refused, nothing stored) or 202 (stored before the drop) while away: {during:?}"
    );
    let ready = reqwest::get(format!("{}/readyz", server.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    let acked = tally.acked.lock().unwrap().clone();
    let db = Database::connect(&scratch.url).await.unwrap();
    let lost = missing(&db, &acked).await;
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    println!(
        "PostgreSQL away 8 s ({}): {} requests, {} answered 503 while away, {} acknowledged, 0 lost",
        if real_restart {
            "cluster stopped and started"
        } else {
            "proxy dropped"
        },
        tally.statuses.lock().unwrap().len(),
        refused,
        acked.len()
    );
}
