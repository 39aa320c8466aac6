//! The Kafka input against a real Kafka-protocol broker (`tansu` from crates.io, started per
//! test with its in-memory storage; `scripts/setup.sh --e2e` installs it, `AWOOOI_TANSU` may
//! name another binary, `AWOOOI_TEST_TANSU_LOG` sets its log filter) and a real producer
//! (librdkafka):
//! - alerts produced to topics become the incidents the webhooks make (both databases);
//! - a malformed record goes to the dead-letter topic with its reason, the next ones flow;
//! - `kill -9` after a batch is stored and before its offsets commit, and again at a random
//!   moment mid-stream: every record stored once;
//! - two replicas in one group, one joining and one killed: every record applied once;
//! - PostgreSQL away: offsets stop, `/readyz` and `/metrics` say paused, lag grows; back: it
//!   resumes by itself.

use crate::support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};
use server::services::ingest::kafka::consumer::KafkaInput;
use server::services::ingest::kafka::{InputState, InputStatus, KafkaConfig};
use support::{Backend, Process, Proxy, ScratchDb, TestServer, WEBHOOK_SECRET};

on_both_backends!(
    alerts_on_topics_become_the_incidents_the_webhooks_make,
    a_kill_9_before_the_commit_and_one_mid_stream_store_every_record_once,
);

/// A tansu broker on a free loopback port, in memory; killed when dropped.
struct Broker {
    child: std::process::Child,
    addr: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Broker {
    async fn start() -> Broker {
        let binary = support::installed_tool("tansu", "AWOOOI_TANSU");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("awoooi-tansu-{port}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = std::process::Command::new(binary)
            .args([
                "broker",
                "--listener-url",
                &format!("tcp://{addr}"),
                "--advertised-listener-url",
                &format!("tcp://{addr}"),
                "--storage-engine",
                "memory://tansu/",
            ])
            .env(
                "RUST_LOG",
                std::env::var("AWOOOI_TEST_TANSU_LOG").unwrap_or("warn".into()),
            )
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(&addr).await.is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {addr}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Broker { child, addr }
    }

    async fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.addr)
            .create()
            .unwrap();
        let results = admin
            .create_topics(
                &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await
            .unwrap();
        for result in results {
            result.unwrap_or_else(|(topic, error)| panic!("create topic {topic}: {error}"));
        }
    }

    fn producer(&self) -> FutureProducer {
        ClientConfig::new()
            .set("bootstrap.servers", &self.addr)
            // One record per batch: tansu 0.6 serves a fetch only from a batch's first offset
            // (a consumer resuming mid-batch would get nothing) and reports the high
            // watermark as the last batch's first offset + 1.
            .set("batch.num.messages", "1")
            .set("linger.ms", "0")
            .create()
            .unwrap()
    }

    /// The group's committed offsets for `topic`'s `partitions`, summed (unset counts 0).
    fn committed(&self, group: &str, topic: &str, partitions: i32) -> i64 {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.addr)
            .set("group.id", group)
            .create()
            .unwrap();
        let mut list = TopicPartitionList::new();
        for p in 0..partitions {
            list.add_partition(topic, p);
        }
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(10))
            .unwrap();
        committed
            .elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(n) => n,
                _ => 0,
            })
            .sum()
    }

    /// Every record on `topic` (partition 0) from the start, until `expect` arrived.
    fn read_all(&self, topic: &str, expect: usize) -> Vec<Read> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.addr)
            .set("group.id", format!("reader-{:08x}", rand::random::<u32>()))
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        consumer.subscribe(&[topic]).unwrap();
        let mut records = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while records.len() < expect && Instant::now() < deadline {
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
                let headers = message
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_owned(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                records.push((message.payload().unwrap_or_default().to_vec(), headers));
            }
        }
        records
    }
}

/// A record as read back: its value and headers.
type Read = (Vec<u8>, Vec<(String, String)>);

/// Produces `body` to `topic` (to `partition`, or as the partitioner chooses), waiting for the
/// broker's acknowledgement.
async fn produce(producer: &FutureProducer, topic: &str, partition: Option<i32>, body: &[u8]) {
    let mut record = FutureRecord::<(), [u8]>::to(topic).payload(body);
    if let Some(partition) = partition {
        record = record.partition(partition);
    }
    producer
        .send(record, Duration::from_secs(10))
        .await
        .unwrap_or_else(|(error, _)| panic!("produce to {topic}: {error}"));
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

fn config(broker: &Broker, group: &str, topics: &[(&str, &str)], extra: &str) -> KafkaConfig {
    let mut toml = format!(
        "brokers = \"{}\"\ngroup = \"{group}\"\nlag_interval_seconds = 1\n",
        broker.addr
    );
    toml.push_str(extra);
    for (name, format) in topics {
        toml.push_str(&format!(
            "\n[[topics]]\nname = \"{name}\"\nformat = \"{format}\"\n"
        ));
    }
    toml::from_str(&toml).unwrap()
}

/// One generic alert of its own (a distinct fingerprint per `n`).
fn alert(n: usize) -> Vec<u8> {
    json!({"name": format!("Kafka {n}"), "service": format!("svc-{}", n % 40), "severity": "warning"})
        .to_string()
        .into_bytes()
}

/// (alert rows, the highest count of one alert, the sum of counts) in the database.
async fn tally(db: &DatabaseConnection) -> (i64, i64, i64) {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n, COALESCE(MAX(count), 0) AS top, \
             COALESCE(SUM(count), 0) AS total FROM alerts",
        ))
        .await
        .unwrap()
        .unwrap();
    let get = |name: &str| {
        row.try_get::<i64>("", name)
            .or_else(|_| row.try_get::<i32>("", name).map(i64::from))
            .unwrap()
    };
    (get("n"), get("top"), get("total"))
}

/// Like [`wait_for`]; on timeout the message carries the Kafka lines of the servers' logs.
async fn wait_showing<F: AsyncFn() -> Result<(), String>>(
    what: &str,
    within: Duration,
    servers: &[&Process],
    check: F,
) {
    let deadline = Instant::now() + within;
    while let Err(state) = check().await {
        if Instant::now() >= deadline {
            let logs: Vec<String> = servers
                .iter()
                .map(|s| {
                    std::fs::read_to_string(&s.log)
                        .unwrap_or_default()
                        .lines()
                        .filter(|l| l.contains("kafka"))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .collect();
            panic!(
                "timed out waiting for {what} ({state}); logs:\n{}",
                logs.join("\n---\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for `n` alerts in the database; on timeout says what was stored and committed, with
/// the servers' Kafka log lines.
async fn alerts_stored(
    n: i64,
    db: &DatabaseConnection,
    broker: &Broker,
    (group, topic, partitions): (&str, &str, i32),
    servers: &[&Process],
) {
    wait_showing(
        &format!("{n} alerts"),
        Duration::from_secs(60),
        servers,
        async || {
            let now = tally(db).await;
            if now.0 >= n {
                return Ok(());
            }
            Err(format!(
                "alerts {now:?}, committed {}, keys {}",
                broker.committed(group, topic, partitions),
                receipts(db, topic).await
            ))
        },
    )
    .await;
}

/// Idempotency keys recorded for `topic`'s records.
async fn receipts(db: &DatabaseConnection, topic: &str) -> i64 {
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        format!("SELECT COUNT(*) AS n FROM ingest_receipts WHERE key LIKE 'kafka:{topic}:%'"),
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get::<i64>("", "n")
    .unwrap()
}

async fn wait_for<F: AsyncFn() -> bool>(what: &str, within: Duration, check: F) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The incidents as a person reads them, in a stable order, without where alerts came from.
async fn incidents(server: &TestServer, token: &str) -> Vec<Value> {
    let answer = server
        .graphql(
            Some(token),
            "{ incidents(first: 100) { edges { node { service severity status \
               alerts { name severity count status } } } } }",
            json!({}),
        )
        .await;
    let mut nodes: Vec<Value> = answer["data"]["incidents"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    for node in &mut nodes {
        let mut alerts = node["alerts"].as_array().unwrap().clone();
        alerts.sort_by_key(|a| a.to_string());
        node["alerts"] = Value::Array(alerts);
    }
    nodes.sort_by_key(|n| n.to_string());
    nodes
}

async fn alerts_on_topics_become_the_incidents_the_webhooks_make(backend: Backend) {
    let broker = Broker::start().await;
    let (am, gf, generic) = (unique("am"), unique("gf"), unique("generic"));
    for topic in [&am, &gf, &generic] {
        broker.create_topic(topic, 2).await;
    }
    let bodies: Vec<(&str, &String, &str, Vec<u8>)> = vec![
        (
            "/api/v1/alerts/alertmanager",
            &am,
            "alertmanager",
            include_bytes!("../../engine/tests/fixtures/alertmanager-v4.json").to_vec(),
        ),
        (
            "/api/v1/alerts/grafana",
            &gf,
            "grafana",
            include_bytes!("../../engine/tests/fixtures/grafana.json").to_vec(),
        ),
        (
            "/api/v1/alerts/webhook",
            &generic,
            "generic",
            br#"{"name": "DiskFull", "service": "order-api", "severity": "critical"}"#.to_vec(),
        ),
        // The same alert again: one alert counted twice, both ways.
        (
            "/api/v1/alerts/webhook",
            &generic,
            "generic",
            br#"{"name": "DiskFull", "service": "order-api", "severity": "critical"}"#.to_vec(),
        ),
    ];

    let by_webhook = TestServer::start(backend).await;
    let token = by_webhook.signed_in("bob", "sre").await;
    for (path, _, _, body) in &bodies {
        let response = by_webhook
            .post_json(path, Some(&token), &[], body.clone())
            .await;
        assert_eq!(response.status(), 202, "{path}");
    }

    let by_kafka = TestServer::start(backend).await;
    let kafka_token = by_kafka.signed_in("bob", "sre").await;
    let topics: Vec<(&str, &str)> = bodies
        .iter()
        .map(|(_, topic, format, _)| (topic.as_str(), *format))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let status = Arc::new(InputStatus::default());
    let input = KafkaInput::start(
        config(&broker, &unique("group"), &topics, ""),
        by_kafka.state.ingest.clone(),
        by_kafka.state.health.clone(),
        status.clone(),
        |_| None,
    )
    .unwrap();
    let producer = broker.producer();
    for (_, topic, _, body) in &bodies {
        produce(&producer, topic, None, body).await;
    }
    let want = tally(&by_webhook.state.db).await;
    assert!(
        want.0 >= 3 && want.1 == 2,
        "the webhooks stored the fixtures' alerts: {want:?}"
    );
    wait_for("the records' alerts", Duration::from_secs(30), async || {
        tally(&by_kafka.state.db).await == want
    })
    .await;
    assert_eq!(status.get(), InputState::Consuming);
    let (webhook, kafka) = (
        incidents(&by_webhook, &token).await,
        incidents(&by_kafka, &kafka_token).await,
    );
    assert!(!webhook.is_empty());
    assert_eq!(
        kafka, webhook,
        "the same incidents, alerts and counts both ways"
    );
    input.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_record_is_dead_lettered_with_its_reason_and_the_next_records_flow() {
    let broker = Broker::start().await;
    let topic = unique("alerts");
    let dead = format!("{topic}.dead");
    broker.create_topic(&topic, 1).await;
    broker.create_topic(&dead, 1).await;
    let server = TestServer::start(Backend::Sqlite).await;
    let group = unique("group");
    let input = KafkaInput::start(
        config(&broker, &group, &[(&topic, "generic")], ""),
        server.state.ingest.clone(),
        server.state.health.clone(),
        Arc::new(InputStatus::default()),
        |_| None,
    )
    .unwrap();
    let producer = broker.producer();
    produce(&producer, &topic, Some(0), b"{not json").await;
    produce(&producer, &topic, Some(0), br#"{"service": "queue"}"#).await;
    produce(&producer, &topic, Some(0), &alert(1)).await;
    produce(&producer, &topic, Some(0), &alert(2)).await;
    wait_for(
        "the two good records",
        Duration::from_secs(30),
        async || tally(&server.state.db).await == (2, 1, 2),
    )
    .await;
    let dead_letters = broker.read_all(&dead, 2);
    assert_eq!(
        dead_letters.len(),
        2,
        "both malformed records dead-lettered"
    );
    assert_eq!(dead_letters[0].0, b"{not json");
    let header = |i: usize, name: &str| {
        dead_letters[i]
            .1
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("header {name} on {:?}", dead_letters[i].1))
    };
    assert!(
        header(0, "awoooi-error").starts_with("invalid payload at `.`"),
        "{}",
        header(0, "awoooi-error")
    );
    assert!(
        header(1, "awoooi-error").contains("missing field `name`"),
        "{}",
        header(1, "awoooi-error")
    );
    assert_eq!(header(1, "awoooi-source-topic"), topic);
    assert_eq!(header(1, "awoooi-source-offset"), "1");
    assert_eq!(header(1, "awoooi-format"), "generic");
    wait_for(
        "all four offsets committed",
        Duration::from_secs(20),
        async || broker.committed(&group, &topic, 1) == 4,
    )
    .await;
    input.stop();
}

/// `awoooi serve` on the scratch database with `[streams.kafka]` (batches of 50).
async fn serve(
    scratch: &ScratchDb,
    database_url: &str,
    kafka: &str,
    envs: &[(&str, &str)],
) -> Process {
    let path = scratch.dir.join("awoooi.toml");
    std::fs::write(
        &path,
        format!("[ingest]\nwebhook_secret = \"{WEBHOOK_SECRET}\"\n\n{kafka}\n"),
    )
    .unwrap();
    let dir = scratch.dir.to_str().unwrap();
    Process::spawn(
        &[
            "--database-url",
            database_url,
            "--data-dir",
            dir,
            "--site-root",
            &format!("{dir}/site"),
            "--config",
            path.to_str().unwrap(),
        ],
        envs,
        scratch
            .dir
            .join(format!("server-{:04x}.log", rand::random::<u16>())),
    )
    .await
}

fn kafka_section(broker: &Broker, group: &str, topic: &str) -> String {
    format!(
        "[streams.kafka]\nbrokers = \"{}\"\ngroup = \"{group}\"\nbatch = 50\nlag_interval_seconds = 1\n\
         [[streams.kafka.topics]]\nname = \"{topic}\"\n\
         [streams.kafka.options]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n\"max.poll.interval.ms\" = \"10000\"\n",
        broker.addr
    )
}

/// Produces records `from..to` of [`alert`], round-robin over `partitions`.
async fn produce_range(broker: &Broker, topic: &str, partitions: i32, from: usize, to: usize) {
    let producer = broker.producer();
    let sends = (from..to).map(|n| {
        let producer = producer.clone();
        let topic = topic.to_owned();
        async move { produce(&producer, &topic, Some(n as i32 % partitions), &alert(n)).await }
    });
    futures_util::future::join_all(sends).await;
}

async fn a_kill_9_before_the_commit_and_one_mid_stream_store_every_record_once(backend: Backend) {
    let broker = Broker::start().await;
    let topic = unique("alerts");
    broker.create_topic(&topic, 3).await;
    let group = unique("group");
    let scratch = ScratchDb::new(backend).await;
    let section = kafka_section(&broker, &group, &topic);

    // The first run stores its first batch and is killed before committing its offsets.
    let mut server = serve(
        &scratch,
        &scratch.url,
        &section,
        &[("AWOOOI_CRASH_AT", "kafka-after-store")],
    )
    .await;
    produce_range(&broker, &topic, 3, 0, 300).await;
    assert!(
        server.wait_exit(Duration::from_secs(60)).await,
        "the crash point was reached"
    );
    let db = Database::connect(&scratch.url).await.unwrap();
    let (stored, _, _) = tally(&db).await;
    assert!(stored > 0, "the batch was stored before the crash");
    assert_eq!(
        broker.committed(&group, &topic, 3),
        0,
        "and no offset committed"
    );

    // Restarted: what was stored is read again and changes nothing.
    server.set_env("AWOOOI_CRASH_AT", None);
    server.restart().await;
    wait_for("300 alerts", Duration::from_secs(60), async || {
        tally(&db).await.0 >= 300
    })
    .await;

    // kill -9 at a random moment while 600 more records arrive, then restart.
    let producing = produce_range(&broker, &topic, 3, 300, 900);
    let killing = async {
        let at = 300 + rand::random::<u64>() as i64 % 500;
        wait_for(
            "the stream to be mid-way",
            Duration::from_secs(60),
            async || tally(&db).await.0 >= at,
        )
        .await;
        server.kill9();
        at
    };
    let (_, at) = tokio::join!(producing, killing);
    let (at_kill, _, _) = tally(&db).await;
    server.restart().await;
    wait_for("900 alerts", Duration::from_secs(90), async || {
        tally(&db).await.0 >= 900
    })
    .await;
    wait_for(
        "every offset committed",
        Duration::from_secs(30),
        async || broker.committed(&group, &topic, 3) == 900,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        tally(&db).await,
        (900, 1, 900),
        "every record stored once (killed at {at_kill} stored, aimed at {at})"
    );
}

/// The replicas' log: warnings, and the consumer's assignments (shown when a wait times out).
const CONSUMER_LOG: &str = "warn,server::services::ingest::kafka=info";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_in_one_group_apply_each_record_once_across_rebalances() {
    let broker = Broker::start().await;
    let topic = unique("alerts");
    broker.create_topic(&topic, 4).await;
    let group = unique("group");
    let scratch = ScratchDb::new(Backend::Postgres).await;
    let section = kafka_section(&broker, &group, &topic);
    let db = Database::connect(&scratch.url).await.unwrap();

    let a = serve(
        &scratch,
        &scratch.url,
        &section,
        &[("RUST_LOG", CONSUMER_LOG)],
    )
    .await;
    produce_range(&broker, &topic, 4, 0, 400).await;
    wait_for("A's first alerts", Duration::from_secs(60), async || {
        tally(&db).await.0 >= 100
    })
    .await;
    // B joins mid-stream: the partitions are shared out again.
    let mut b = serve(
        &scratch,
        &scratch.url,
        &section,
        &[("RUST_LOG", CONSUMER_LOG)],
    )
    .await;
    produce_range(&broker, &topic, 4, 400, 1000).await;
    alerts_stored(1000, &db, &broker, (&group, &topic, 4), &[&a, &b]).await;
    let by_b = stored_by(&b, &topic).await;
    assert!(by_b > 0.0, "B took partitions and stored records");
    // B stops mid-stream (SIGTERM: it finishes its batch and leaves the group): its
    // partitions go back to A. (A graceful stop: tansu 0.6 expires a killed member's session
    // but does not hand its partitions to the others; the kill -9 cases are the test above.)
    produce_range(&broker, &topic, 4, 1000, 1200).await;
    assert!(b.terminate(Duration::from_secs(30)).await, "B stopped");
    produce_range(&broker, &topic, 4, 1200, 1600).await;
    alerts_stored(1600, &db, &broker, (&group, &topic, 4), &[&a, &b]).await;
    wait_for(
        "every offset committed",
        Duration::from_secs(30),
        async || broker.committed(&group, &topic, 4) == 1600,
    )
    .await;
    assert_eq!(
        tally(&db).await,
        (1600, 1, 1600),
        "every record applied once"
    );
    assert_eq!(
        receipts(&db, &topic).await,
        1600,
        "one idempotency key per record"
    );
    let by_a = stored_by(&a, &topic).await;
    assert!(
        by_a > 0.0 && by_a + by_b <= 1600.0,
        "both replicas stored records: A {by_a}, B before it was killed {by_b}"
    );
}

/// Records a replica says it stored from `topic` (its `/metrics`).
async fn stored_by(server: &Process, topic: &str) -> f64 {
    metric(
        server,
        &format!("awoooi_kafka_records_total{{topic=\"{topic}\",outcome=\"stored\"}}"),
    )
    .await
    .unwrap_or(0.0)
}

async fn metric(server: &Process, line_start: &str) -> Option<f64> {
    let text = server.get("/metrics", None).await.text().await.unwrap();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_away_pauses_without_committing_and_resumes_by_itself() {
    let broker = Broker::start().await;
    let topic = unique("alerts");
    broker.create_topic(&topic, 1).await;
    let group = unique("group");
    let scratch = ScratchDb::new(Backend::Postgres).await;
    let (user, rest) = scratch
        .url
        .strip_prefix("postgres://")
        .unwrap()
        .split_once('@')
        .unwrap();
    let (host_port, database) = rest.split_once('/').unwrap();
    let proxy = Proxy::start(host_port.to_owned()).await;
    let through = format!("postgres://{user}@127.0.0.1:{}/{database}", proxy.port);
    let server = serve(
        &scratch,
        &through,
        &kafka_section(&broker, &group, &topic),
        &[],
    )
    .await;
    let db = Database::connect(&scratch.url).await.unwrap();

    produce_range(&broker, &topic, 1, 0, 100).await;
    wait_for("100 alerts", Duration::from_secs(60), async || {
        tally(&db).await.0 == 100
    })
    .await;
    wait_for(
        "100 offsets committed",
        Duration::from_secs(30),
        async || broker.committed(&group, &topic, 1) == 100,
    )
    .await;

    proxy.down();
    produce_range(&broker, &topic, 1, 100, 200).await;
    let lag = format!("awoooi_kafka_consumer_lag{{topic=\"{topic}\",partition=\"0\"}}");
    wait_for(
        "paused on /readyz and /metrics",
        Duration::from_secs(30),
        async || {
            let ready = server.get("/readyz", None).await;
            let code = ready.status();
            let body: Value = ready.json().await.unwrap();
            code == 503
                && body["kafka"]
                    .as_str()
                    .is_some_and(|k| k.starts_with("paused"))
                && metric(&server, "awoooi_kafka_paused ").await == Some(1.0)
        },
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&server, &lag).await != Some(100.0) {
        let text = server.get("/metrics", None).await.text().await.unwrap();
        let kafka: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("awoooi_kafka"))
            .collect();
        assert!(
            Instant::now() < deadline,
            "the lag shows the 100 waiting records: {kafka:#?}\n{}",
            std::fs::read_to_string(&server.log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..2 {
        assert_eq!(
            broker.committed(&group, &topic, 1),
            100,
            "no offset moves while away"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(tally(&db).await.0, 100);

    proxy.up();
    wait_for("200 alerts", Duration::from_secs(60), async || {
        tally(&db).await.0 == 200
    })
    .await;
    wait_for(
        "200 offsets committed",
        Duration::from_secs(30),
        async || broker.committed(&group, &topic, 1) == 200,
    )
    .await;
    wait_for("ready and consuming", Duration::from_secs(20), async || {
        let ready = server.get("/readyz", None).await;
        let code = ready.status();
        let body: Value = ready.json().await.unwrap();
        code == 200
            && body["kafka"] == "consuming"
            && metric(&server, "awoooi_kafka_paused ").await == Some(0.0)
            && metric(&server, &lag).await == Some(0.0)
    })
    .await;
    assert_eq!(tally(&db).await, (200, 1, 200));
}
