//! Ingest load generator: posts Alertmanager batches (50 alerts by default) from N concurrent
//! clients for a fixed time against a server it starts in-process (SQLite in a scratch
//! directory, or `--database-url postgres://…`), then prints sustained alerts/s and latency
//! percentiles. Baseline in the same run: `GET /healthz` at the same concurrency (the HTTP
//! floor of this machine).
//!
//!   cargo run --release -p server --example load_ingest -- [--seconds 20] [--clients 16]
//!       [--batch 50] [--database-url URL] [--embedding-model DIR --embedding-backlog N]
//!       [--rate ALERTS_PER_SECOND]
//!
//! By default each client sends its next batch as soon as the last one is answered (a closed
//! loop: the highest rate the server sustains, and latency that grows with the clients).
//! `--rate` sends batches on a fixed schedule instead, spread evenly over the clients, and
//! counts each one's latency from when it was due: the latency at that offered load.
//!
//! `--embedding-backlog N` writes N knowledge entries first; with `--embedding-model` the
//! server's embedding job works through them during the whole run (the run prints how many it
//! embedded), without one they only sit in the database (the control).

mod bench;

use std::time::Duration;

use bench::{Run, drive, drive_at_rate, percentile};

use clap::Parser;

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
    /// A sentence-embedding model directory: the server runs its embedding job.
    #[arg(long)]
    embedding_model: Option<String>,
    /// Knowledge entries written before the load starts.
    #[arg(long, default_value_t = 0)]
    embedding_backlog: i32,
    /// Offered load in alerts/s, sent on a schedule; default: each client sends again as soon
    /// as it is answered.
    #[arg(long)]
    rate: Option<f64>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        eprintln!("--rate must be a positive number of alerts per second, got {rate}");
        std::process::exit(2);
    }
    let dir = bench::scratch("load");
    let bench::Bench {
        base,
        token,
        database,
        db,
        ..
    } = bench::serve_with_env(
        &dir,
        args.database_url.clone(),
        &["--log-format", "text"],
        &args
            .embedding_model
            .iter()
            .map(|m| ("AWOOOI_KM_EMBEDDINGS_MODEL", m.clone()))
            .collect::<Vec<_>>(),
    )
    .await;
    let backlog = embedding_backlog(
        &db,
        &dir,
        args.embedding_backlog,
        args.embedding_model.is_some(),
    )
    .await;
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
        // The URL parsed and the header built once: the generator shares the cores with the
        // server, so what it does per request is kept small.
        let url = reqwest::Url::parse(&format!("{base}/api/v1/alerts/alertmanager")).unwrap();
        let bearer = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        let post = move |c: usize, n: usize| {
            let (client, url, bearer) = (client.clone(), url.clone(), bearer.clone());
            async move {
                client
                    .post(url)
                    .header(reqwest::header::AUTHORIZATION, bearer)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(alertmanager_body(c, n, batch))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 202)
            }
        };
        match args.rate {
            Some(rate) => {
                drive_at_rate(args.clients, args.seconds, rate / batch as f64, post).await
            }
            None => drive(args.clients, args.seconds, post).await,
        }
    };

    let embedded = match &args.embedding_model {
        Some(_) => backlog.saturating_sub(unembedded(&db).await),
        None => 0,
    };
    let rate = |run: &Run| run.requests as f64 / run.elapsed.as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let offered = match args.rate {
        Some(rate) => format!("offered {rate:.0} alerts/s on a schedule, latency from when due"),
        None => "closed loop".into(),
    };
    println!(
        "database: {database}, clients: {}, batch: {batch}, {offered}",
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
    if args.embedding_model.is_some() {
        println!("embedding job: {embedded} of {backlog} backlog entries embedded during the run");
    }
    println!(
        "ratio: ingest requests/s are {:.3} of the /healthz baseline",
        rate(&ingest) / rate(&health)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Client `c`'s `n`th Alertmanager batch of `batch` alerts over 50 services × 200 alert
/// names: new alerts first, repeats (dedup) later; each alert's `instance` depends on the
/// client, and its description names an e-mail address. Written as text (every value is
/// plain ASCII), which costs the generator a fraction of building and serialising a JSON tree.
fn alertmanager_body(c: usize, n: usize, batch: usize) -> Vec<u8> {
    use std::fmt::Write;
    let mut body = String::with_capacity(64 + batch * 260);
    body.push_str(r#"{"version":"4","status":"firing","alerts":["#);
    for i in 0..batch {
        let k = (c * 7919 + n * batch + i) % 10_000;
        if i > 0 {
            body.push(',');
        }
        write!(
            body,
            r#"{{"status":"firing","labels":{{"alertname":"Alert{}","service":"svc-{}","severity":"warning","instance":"10.0.{}.{}:9100"}},"annotations":{{"description":"user{k}@example.com saw errors"}},"startsAt":"2026-11-25T03:00:00Z"}}"#,
            k % 200,
            k / 200,
            k % 250,
            i % 250
        )
        .expect("writing to a String");
    }
    body.push_str("]}");
    body.into_bytes()
}

/// Writes `n` knowledge entries, then (`job`) waits until the embedding job has started on
/// them; returns `n`.
async fn embedding_backlog(
    db: &sea_orm::DatabaseConnection,
    dir: &std::path::Path,
    n: i32,
    job: bool,
) -> u64 {
    use server::services::knowledge::{Entry, KmConfig, KmWriter, PathType};
    let writer = KmWriter::new(db.clone(), None, dir, KmConfig::default()).unwrap();
    for incident in 1..=n {
        writer
            .write(Entry {
                incident_id: incident,
                path_type: PathType::A,
                related_approval_id: None,
                title: format!("Resolved: HighLatency on checkout-{}", incident % 40),
                body: format!(
                    "p99 latency of checkout-{} rose above 2 s after the connection pool of \
                     orders-db ran out; raised the pool from 20 to 40 and restarted the pods.",
                    incident % 40
                ),
                service: Some(format!("checkout-{}", incident % 40)),
                alert_names: vec!["HighLatency".into(), "PgPoolExhausted".into()],
                root_cause: Some("orders-db connection pool exhausted".into()),
                action: Some("scale deployment/orders-db-pooler replicas=2".into()),
                outcome: None,
            })
            .await
            .unwrap();
    }
    let total = n as u64;
    while job && total > 0 && unembedded(db).await == total {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    total
}

/// Knowledge entries without a vector yet.
async fn unembedded(db: &sea_orm::DatabaseConnection) -> u64 {
    use sea_orm::ConnectionTrait;
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM knowledge_entries k WHERE NOT EXISTS \
             (SELECT 1 FROM knowledge_vectors v WHERE v.entry_id = k.id AND v.vector IS NOT NULL)",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap() as u64
}
