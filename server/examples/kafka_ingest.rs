//! Kafka input against the webhook, in one run, on one in-process server (SQLite in a scratch
//! directory, or `--database-url postgres://…`) and a tansu broker this example starts.
//!
//!   cargo run --release -p server --example kafka_ingest -- [--seconds 15] [--clients 32]
//!       [--records 20000] [--rate 2000] [--partitions 4] [--database-url URL] [--tansu PATH]
//!       [--option librdkafka.property=value …]
//!
//! One alert per request and one per record, each a new alert on one of 50 services.
//! - **Webhook**: `clients` connections post for `seconds`; a request's latency is the
//!   end-to-end time (202 is sent after the commit).
//! - **Kafka, burst**: `records` records produced as fast as the producer goes; records/s is
//!   `records` over the time from the first send to the last commit.
//! - **Kafka, paced**: `records` records at `rate` per second.
//!
//! A record's end-to-end time runs from just before its send to its idempotency key's
//! `created_at` (stamped by the writer inside the alerts' transaction) on the same clock.

mod bench;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bench::{drive, percentile};
use clap::Parser;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use server::services::ingest::kafka::InputStatus;
use server::services::ingest::kafka::consumer::KafkaInput;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    #[arg(long, default_value_t = 32)]
    clients: usize,
    #[arg(long, default_value_t = 20_000)]
    records: usize,
    /// Records per second in the paced run.
    #[arg(long, default_value_t = 2_000)]
    rate: u64,
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Default: a fresh SQLite file.
    #[arg(long)]
    database_url: Option<String>,
    /// The broker binary (default: where `scripts/setup.sh --e2e` installs it).
    #[arg(long)]
    tansu: Option<String>,
    /// A librdkafka property for the input (`[streams.kafka.options]`), `key=value`; repeatable.
    #[arg(long = "option")]
    options: Vec<String>,
}

/// One new alert (`n` distinct) on one of 50 services.
fn alert(tag: &str, n: usize) -> String {
    json!({"name": format!("{tag} {n}"), "service": format!("svc-{}", n % 50), "severity": "warning"})
        .to_string()
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if std::env::var_os("RUST_LOG").is_some() {
        server::base::telemetry::init_tracing(server::base::telemetry::LogFormat::Text);
    }
    let tansu = args.tansu.clone().unwrap_or_else(|| {
        format!(
            "{}/.cache/awoooi/tools/bin/tansu",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut broker = std::process::Command::new(&tansu)
        .args([
            "broker",
            "--listener-url",
            &format!("tcp://{addr}"),
            "--advertised-listener-url",
            &format!("tcp://{addr}"),
            "--storage-engine",
            "memory://tansu/",
        ])
        .env("RUST_LOG", "error")
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {tansu}: {e} (scripts/setup.sh --e2e)"));
    while tokio::net::TcpStream::connect(&addr).await.is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let dir = bench::scratch("kafka");
    let bench = bench::serve(&dir, args.database_url.clone(), &["--log-format", "text"]).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()
        .unwrap();

    // The webhook, closed loop.
    let webhook = {
        let (client, url, token) = (
            client.clone(),
            format!("{}/api/v1/alerts/webhook", bench.base),
            bench.token.clone(),
        );
        drive(args.clients, args.seconds, move |c, n| {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            async move {
                client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(alert("Webhook", c * 1_000_000 + n))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 202)
            }
        })
        .await
    };

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &addr)
        .create()
        .unwrap();
    for topic in ["burst", "paced"] {
        admin
            .create_topics(
                &[NewTopic::new(
                    topic,
                    args.partitions,
                    TopicReplication::Fixed(1),
                )],
                &AdminOptions::new(),
            )
            .await
            .unwrap();
    }
    let mut config: server::services::ingest::kafka::KafkaConfig = toml::from_str(&format!(
        "brokers = \"{addr}\"\n[[topics]]\nname = \"burst\"\n[[topics]]\nname = \"paced\"\n"
    ))
    .unwrap();
    for option in &args.options {
        let (key, value) = option.split_once('=').expect("--option key=value");
        config.options.insert(key.into(), value.into());
    }
    let input = KafkaInput::start(
        config,
        bench.ingest.clone(),
        bench.health.clone(),
        Arc::new(InputStatus::default()),
        |_| None,
    )
    .unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &addr)
        .create()
        .unwrap();

    let burst = produce(&bench.db, &producer, "burst", args.records, None).await;
    let paced = produce(&bench.db, &producer, "paced", args.records, Some(args.rate)).await;
    input.stop();
    let floor = read_back(&addr, "burst", args.records);
    let _ = broker.kill();
    let _ = broker.wait();

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let webhook_rate = webhook.requests as f64 / webhook.elapsed.as_secs_f64();
    println!(
        "database: {}, partitions: {}, one alert per request/record, input options {:?}",
        bench.database, args.partitions, args.options
    );
    println!(
        "webhook ({} connections): {:.0} alerts/s, p50 {:.2} ms, p99 {:.2} ms, failures {} of {}",
        args.clients,
        webhook_rate,
        ms(percentile(&webhook.latencies, 50.0)),
        ms(percentile(&webhook.latencies, 99.0)),
        webhook.failures,
        webhook.requests
    );
    for (name, run) in [
        ("burst", &burst),
        (&format!("paced at {}/s", args.rate), &paced),
    ] {
        println!(
            "kafka {name}: {} records in {:.2} s = {:.0} records/s, end-to-end p50 {:.2} ms, p99 {:.2} ms",
            args.records,
            run.elapsed.as_secs_f64(),
            args.records as f64 / run.elapsed.as_secs_f64(),
            ms(percentile(&run.latencies, 50.0)),
            ms(percentile(&run.latencies, 99.0)),
        );
    }
    println!(
        "broker floor: a bare consumer (no database) reads the burst topic's {} records at {:.0} records/s",
        args.records,
        args.records as f64 / floor.as_secs_f64()
    );
    println!(
        "ratio: kafka burst records/s are {:.2} of the webhook's alerts/s and {:.2} of the broker floor",
        args.records as f64 / burst.elapsed.as_secs_f64() / webhook_rate,
        floor.as_secs_f64() / burst.elapsed.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// How long a bare consumer (a group of its own, no database) takes to read `records`
/// records of `topic` from the start: what the broker alone allows.
fn read_back(addr: &str, topic: &str, records: usize) -> Duration {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "floor")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut read = 0;
    let mut started = None;
    while read < records {
        if let Some(Ok(_)) = consumer.poll(Duration::from_secs(1)) {
            started.get_or_insert_with(Instant::now);
            read += 1;
        }
    }
    started.map(|s| s.elapsed()).unwrap_or_default()
}

struct Produced {
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// Produces `records` alerts to `topic` (at `rate` per second, or as fast as it goes), waits
/// until every one is committed, and reads each record's commit time back.
async fn produce(
    db: &sea_orm::DatabaseConnection,
    producer: &FutureProducer,
    topic: &str,
    records: usize,
    rate: Option<u64>,
) -> Produced {
    let started = Instant::now();
    let started_wall = chrono::Utc::now();
    let sends = (0..records).map(|n| {
        let producer = producer.clone();
        let body = alert(topic, n);
        let at = rate.map(|r| started + Duration::from_secs_f64(n as f64 / r as f64));
        async move {
            if let Some(at) = at {
                tokio::time::sleep_until(at.into()).await;
            }
            let sent = SystemTime::now();
            let delivery = producer
                .send(
                    FutureRecord::<(), str>::to(topic).payload(&body),
                    Duration::from_secs(30),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("produce: {e}"));
            (
                format!("kafka:{topic}:{}:{}", delivery.partition, delivery.offset),
                sent,
            )
        }
    });
    let sent: HashMap<String, SystemTime> = futures_util::future::join_all(sends)
        .await
        .into_iter()
        .collect();
    let pattern = format!("kafka:{topic}:%");
    loop {
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT key, created_at FROM ingest_receipts WHERE key LIKE '{pattern}'"),
            ))
            .await
            .unwrap();
        if rows.len() >= records {
            let mut last = started_wall;
            let mut latencies: Vec<Duration> = rows
                .iter()
                .filter_map(|row| {
                    let key: String = row.try_get("", "key").ok()?;
                    let at: chrono::DateTime<chrono::Utc> = row.try_get("", "created_at").ok()?;
                    let sent = chrono::DateTime::<chrono::Utc>::from(*sent.get(&key)?);
                    last = last.max(at);
                    Some((at - sent).to_std().unwrap_or_default())
                })
                .collect();
            let elapsed = (last - started_wall).to_std().unwrap_or_default();
            assert_eq!(latencies.len(), records, "every record's commit time read");
            latencies.sort();
            return Produced { elapsed, latencies };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
