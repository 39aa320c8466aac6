//! The Kafka consumer (librdkafka through `rdkafka`), on a thread of its own.
//!
//! One loop: read a batch (at most `batch` records), store it, then commit its offsets.
//! - **Store.** Each record's alerts go to the ingest pipeline keyed by
//!   `kafka:<topic>:<partition>:<offset>`; the writer records the key in the alerts'
//!   transaction, so a record applied before changes nothing. A record that cannot be parsed is
//!   produced to the dead-letter topic with the reason (and waited for) instead.
//! - **Commit.** Only once every record of the batch is stored or dead-lettered: the next
//!   offset of each partition, synchronously. A commit that fails (the partition moved to
//!   another replica meanwhile) loses nothing: the new owner reads from the last commit and
//!   the keys make its second application a no-op.
//! - **Pause.** While the database refuses the batch, every assigned partition is paused
//!   (partitions assigned meanwhile too), the batch is held and retried with back-off, nothing
//!   is committed, `/readyz` says paused and `awoooi_kafka_paused` is 1. Polling goes on, so
//!   the group keeps the member and rebalances are served; the records of a revoked partition
//!   are dropped from the held batch (their new owner reads them again).
//! - **Lag.** Every `lag_interval_seconds`, on a thread and a connection of its own: high
//!   watermark − committed offset for each partition this member owns, as
//!   `awoooi_kafka_consumer_lag{topic,partition}`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::input::PayloadError;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::{InputState, InputStatus, KafkaConfig};
use crate::base::crash;
use crate::base::db::DbHealth;
use crate::services::ingest::{Ingest, IngestError};

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long the first record of a batch is waited for.
const READ_WAIT: Duration = Duration::from_millis(500);
/// How long a batch's alerts are waited for before the batch counts as failed (its
/// submissions may still commit later: the retry then finds their keys applied).
const STORE_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("{0}")]
    Config(String),
    #[error("dead-letter topic {topic}: {error}")]
    DeadLetter { topic: String, error: KafkaError },
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("storage unavailable: the database does not answer")]
    DatabaseAway,
    #[error("storage too slow: the batch was not stored within {0:?}")]
    Slow(Duration),
}

/// Rebalances as the loop needs to hear them.
struct Context {
    /// Partitions taken away since the loop last looked.
    revoked: Mutex<Vec<(String, i32)>>,
    /// The partitions this member owns now (read by the lag thread).
    assigned: Arc<Mutex<BTreeSet<(String, i32)>>>,
    /// The loop holds a batch the database refused: new partitions start paused.
    paused: AtomicBool,
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let mut revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
            let mut assigned = self.assigned.lock().unwrap_or_else(|e| e.into_inner());
            for elem in list.elements() {
                assigned.remove(&(elem.topic().to_owned(), elem.partition()));
                tracing::info!(
                    topic = elem.topic(),
                    partition = elem.partition(),
                    "kafka partition revoked"
                );
                metrics::gauge!("awoooi_kafka_consumer_lag",
                    "topic" => elem.topic().to_owned(), "partition" => elem.partition().to_string())
                .set(0.0);
                revoked.push((elem.topic().to_owned(), elem.partition()));
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let mut assigned = self.assigned.lock().unwrap_or_else(|e| e.into_inner());
            for elem in list.elements() {
                tracing::info!(
                    topic = elem.topic(),
                    partition = elem.partition(),
                    "kafka partition assigned"
                );
                assigned.insert((elem.topic().to_owned(), elem.partition()));
            }
            drop(assigned);
            if self.paused.load(Ordering::SeqCst)
                && let Err(error) = consumer.pause(list)
            {
                tracing::warn!(%error, "cannot pause newly assigned kafka partitions");
            }
        }
    }
}

/// A record read and not yet committed.
struct Record {
    topic: String,
    partition: i32,
    offset: i64,
    payload: Option<Vec<u8>>,
    done: bool,
}

impl Record {
    fn key(&self) -> String {
        format!("kafka:{}:{}:{}", self.topic, self.partition, self.offset)
    }
}

/// The running consumer; dropping it (or [`KafkaInput::stop`]) leaves the group.
pub struct KafkaInput {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl KafkaInput {
    /// Creates the consumer and its dead-letter producer, subscribes, and starts the loop on a
    /// thread of its own (`kafka-consumer`). Fails on properties librdkafka refuses.
    pub fn start(
        config: KafkaConfig,
        ingest: Ingest,
        health: DbHealth,
        status: Arc<InputStatus>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<KafkaInput, ConsumerError> {
        let connection = config
            .connection_properties(env)
            .map_err(ConsumerError::Config)?;
        let mut common = ClientConfig::new();
        for (key, value) in &connection {
            common.set(key, value);
        }
        let mut consumer_config = common.clone();
        consumer_config
            .set("group.id", &config.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest");
        for (key, value) in &config.options {
            consumer_config.set(key, value);
        }
        let assigned = Arc::new(Mutex::new(BTreeSet::new()));
        let context = Context {
            revoked: Mutex::new(Vec::new()),
            assigned: assigned.clone(),
            paused: AtomicBool::new(false),
        };
        let consumer: BaseConsumer<Context> = consumer_config.create_with_context(context)?;
        let topics: Vec<&str> = config.topics.iter().map(|t| t.name.as_str()).collect();
        consumer.subscribe(&topics)?;
        let mut lag_config = common.clone();
        lag_config.set("group.id", &config.group);
        let lag_client: BaseConsumer = lag_config.create()?;
        let producer: FutureProducer = common
            .clone()
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "10000")
            .create()?;
        let stop = Arc::new(AtomicBool::new(false));
        let runtime = tokio::runtime::Handle::current();
        tracing::info!(brokers = %config.brokers, group = %config.group, topics = ?topics,
            "consuming alerts from Kafka");
        let lag_every = Duration::from_secs(config.lag_interval_seconds);
        let worker = Worker {
            consumer,
            producer,
            config,
            ingest,
            health,
            status,
            runtime,
            held: Vec::new(),
            paused: false,
            stop: stop.clone(),
        };
        let lag = Lag {
            client: lag_client,
            group_partitions: assigned,
            every: lag_every,
            stop: stop.clone(),
        };
        let spawn = |name: &str, run: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(run)
                .map_err(|e| ConsumerError::Config(format!("cannot start thread {name}: {e}")))
        };
        let threads = vec![
            spawn("kafka-consumer", Box::new(move || worker.run()))?,
            spawn("kafka-lag", Box::new(move || lag.run()))?,
        ];
        Ok(KafkaInput { stop, threads })
    }

    /// Stops after the current batch and leaves the group (waits for both).
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for KafkaInput {
    fn drop(&mut self) {
        self.stop_now();
    }
}

struct Worker {
    consumer: BaseConsumer<Context>,
    producer: FutureProducer,
    config: KafkaConfig,
    ingest: Ingest,
    /// Checked before each batch: while the database is away nothing is submitted.
    health: DbHealth,
    status: Arc<InputStatus>,
    runtime: tokio::runtime::Handle,
    /// Read, not yet committed, in the order read.
    held: Vec<Record>,
    paused: bool,
    stop: Arc<AtomicBool>,
}

impl Worker {
    fn run(mut self) {
        let mut backoff = MIN_BACKOFF;
        metrics::gauge!("awoooi_kafka_paused").set(0.0);
        while !self.stop.load(Ordering::SeqCst) {
            if self.paused {
                // Wait out the back-off in poll: rebalances are served meanwhile, and records
                // fetched before the pause join the held batch.
                self.read(backoff, usize::MAX);
                self.pause_assignment();
            } else {
                self.read(READ_WAIT, self.config.batch);
            }
            if self.held.is_empty() {
                if !self.paused && self.status.get() == InputState::Starting {
                    self.status.set(InputState::Consuming);
                }
                continue;
            }
            let started = Instant::now();
            match self.store() {
                Ok(()) => {
                    crash::point("kafka-after-store");
                    let stored = started.elapsed();
                    let records = self.held.len();
                    self.commit();
                    tracing::debug!(
                        records,
                        store_ms = stored.as_millis() as u64,
                        commit_ms = (started.elapsed() - stored).as_millis() as u64,
                        "kafka batch stored and committed"
                    );
                    if self.paused {
                        self.resume();
                    }
                    self.status.set(InputState::Consuming);
                    backoff = MIN_BACKOFF;
                }
                Err(error) => {
                    if !self.paused {
                        tracing::warn!(%error, held = self.held.len(),
                            "kafka batch not stored: partitions paused, nothing committed");
                        self.pause(&error);
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        self.consumer.unsubscribe();
        tracing::info!("kafka consumer stopped");
    }

    /// Polls for up to `wait` for the first record, then takes what is already fetched, up to
    /// `max` records held; drops held records of partitions revoked meanwhile.
    fn read(&mut self, wait: Duration, max: usize) {
        let mut timeout = wait;
        while self.held.len() < max {
            let polled = self.consumer.poll(timeout);
            // A rebalance is served inside `poll`: what was held from a revoked partition
            // goes now, before anything from the new assignment joins the batch (a partition
            // revoked and assigned again restarts at its committed offset).
            drop_revoked(self.consumer.context(), &mut self.held);
            match polled {
                None => break,
                Some(Ok(message)) => self.held.push(Record {
                    topic: message.topic().to_owned(),
                    partition: message.partition(),
                    offset: message.offset(),
                    payload: message.payload().map(<[u8]>::to_vec),
                    done: false,
                }),
                Some(Err(error)) => {
                    tracing::warn!(%error, "kafka consumer");
                    break;
                }
            }
            timeout = Duration::ZERO;
        }
    }

    /// Stores every held record not done yet: dead letters first, then alerts through the
    /// ingest pipeline (submitted together, so the writer groups them). Marks what is done,
    /// so a retry redoes only the rest; fails with the first error.
    fn store(&mut self) -> Result<(), ConsumerError> {
        if !self.health.is_up() {
            return Err(ConsumerError::DatabaseAway);
        }
        let mut submissions = Vec::new();
        for (index, record) in self.held.iter_mut().enumerate() {
            if record.done {
                continue;
            }
            let format = self.config.format_of(&record.topic);
            let parsed = match &record.payload {
                Some(body) => format.parse(body),
                None => Err(PayloadError {
                    field: "payload".into(),
                    message: "record has no value".into(),
                }),
            };
            match parsed {
                Ok(events) if events.is_empty() => record.done = true,
                Ok(events) => submissions.push((index, record.key(), events)),
                Err(error) => {
                    let topic = self.config.dead_letter_of(&record.topic);
                    tracing::warn!(topic = %record.topic, partition = record.partition,
                        offset = record.offset, field = %error.field, dead_letter = %topic,
                        "unparseable kafka record dead-lettered");
                    dead_letter(
                        &self.producer,
                        &self.runtime,
                        &topic,
                        record,
                        format.name(),
                        &error,
                    )?;
                    metrics::counter!("awoooi_kafka_records_total",
                        "topic" => record.topic.clone(), "outcome" => "dead_lettered")
                    .increment(1);
                    record.done = true;
                }
            }
        }
        if submissions.is_empty() {
            return Ok(());
        }
        let ingest = self.ingest.clone();
        let results = self
            .runtime
            .block_on(async {
                tokio::time::timeout(
                    STORE_LIMIT,
                    futures_util::future::join_all(submissions.into_iter().map(
                        |(index, key, events)| {
                            let ingest = ingest.clone();
                            async move { (index, ingest.submit_keyed(events, Some(key)).await) }
                        },
                    )),
                )
                .await
            })
            .map_err(|_| ConsumerError::Slow(STORE_LIMIT))?;
        let mut first_error = None;
        for (index, result) in results {
            let record = &mut self.held[index];
            match result {
                Ok(receipt) => {
                    record.done = true;
                    let outcome = if receipt.duplicate {
                        "duplicate"
                    } else {
                        "stored"
                    };
                    metrics::counter!("awoooi_kafka_records_total",
                        "topic" => record.topic.clone(), "outcome" => outcome)
                    .increment(1);
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }

    /// Commits the next offset of each held partition; the held batch is then let go.
    fn commit(&mut self) {
        let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for record in self.held.drain(..) {
            let entry = next.entry((record.topic, record.partition)).or_insert(0);
            *entry = (*entry).max(record.offset + 1);
        }
        let mut list = TopicPartitionList::new();
        for ((topic, partition), offset) in &next {
            if let Err(error) =
                list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            {
                tracing::warn!(%error, topic, partition, "kafka offset not committable");
            }
        }
        match self.consumer.commit(&list, CommitMode::Sync) {
            Ok(()) => {}
            Err(error) => {
                // Stored already: whoever reads these records again applies nothing twice.
                metrics::counter!("awoooi_kafka_commit_failures_total").increment(1);
                tracing::warn!(%error, "kafka offsets not committed (the records are stored; a redelivery changes nothing)");
            }
        }
    }

    fn pause(&mut self, error: &ConsumerError) {
        self.paused = true;
        self.consumer.context().paused.store(true, Ordering::SeqCst);
        self.pause_assignment();
        metrics::gauge!("awoooi_kafka_paused").set(1.0);
        self.status.set(InputState::Paused {
            reason: error.to_string(),
        });
    }

    fn pause_assignment(&self) {
        if let Ok(assignment) = self.consumer.assignment()
            && assignment.count() > 0
            && let Err(error) = self.consumer.pause(&assignment)
        {
            tracing::warn!(%error, "cannot pause kafka partitions");
        }
    }

    fn resume(&mut self) {
        self.paused = false;
        self.consumer
            .context()
            .paused
            .store(false, Ordering::SeqCst);
        if let Ok(assignment) = self.consumer.assignment()
            && let Err(error) = self.consumer.resume(&assignment)
        {
            tracing::warn!(%error, "cannot resume kafka partitions");
        }
        metrics::gauge!("awoooi_kafka_paused").set(0.0);
        tracing::info!("kafka batch stored: partitions resumed");
    }
}

/// The lag per partition, measured on a thread and a connection of its own: the broker's
/// answers to these queries can take seconds, which the consumer's loop must not wait for.
struct Lag {
    /// A client in the group (never subscribed): it reads the group's committed offsets.
    client: BaseConsumer,
    /// The partitions the consumer owns now.
    group_partitions: Arc<Mutex<BTreeSet<(String, i32)>>>,
    every: Duration,
    stop: Arc<AtomicBool>,
}

impl Lag {
    fn run(self) {
        let mut next = Instant::now();
        while !self.stop.load(Ordering::SeqCst) {
            if Instant::now() >= next {
                self.measure();
                next = Instant::now() + self.every;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn owns(&self, topic: &str, partition: i32) -> bool {
        self.group_partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&(topic.to_owned(), partition))
    }

    /// High watermark − committed offset (the low watermark when nothing is committed) for
    /// every partition the consumer owns.
    fn measure(&self) {
        let owned = self
            .group_partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if owned.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::new();
        for (topic, partition) in &owned {
            list.add_partition(topic, *partition);
        }
        let committed = match self.client.committed_offsets(list, Duration::from_secs(5)) {
            Ok(committed) => committed,
            Err(error) => {
                tracing::warn!(%error, "kafka committed offsets unknown: lag not measured");
                return;
            }
        };
        for elem in committed.elements() {
            let (topic, partition) = (elem.topic().to_owned(), elem.partition());
            let (low, high) = match self.client.fetch_watermarks(
                &topic,
                partition,
                Duration::from_secs(5),
            ) {
                Ok(marks) => marks,
                Err(error) => {
                    tracing::warn!(%error, topic, partition, "kafka watermarks unknown: lag not measured");
                    continue;
                }
            };
            let from = match elem.offset() {
                Offset::Offset(offset) => offset,
                _ => low,
            };
            // Revoked meanwhile: the revocation set it to 0 and the new owner reports it.
            if self.owns(&topic, partition) {
                metrics::gauge!("awoooi_kafka_consumer_lag",
                    "topic" => topic, "partition" => partition.to_string())
                .set((high - from).max(0) as f64);
            }
        }
    }
}

/// Forgets `held` records of the partitions `context` heard revoked since last asked.
fn drop_revoked(context: &Context, held: &mut Vec<Record>) {
    let revoked: HashSet<(String, i32)> =
        std::mem::take(&mut *context.revoked.lock().unwrap_or_else(|e| e.into_inner()))
            .into_iter()
            .collect();
    if revoked.is_empty() {
        return;
    }
    let before = held.len();
    held.retain(|r| !revoked.contains(&(r.topic.clone(), r.partition)));
    if before != held.len() {
        tracing::info!(
            dropped = before - held.len(),
            "held kafka records of revoked partitions dropped (their next owner reads them)"
        );
    }
}

/// Produces the record to `topic` with the reason and where it came from as headers, and
/// waits for the broker's acknowledgement.
fn dead_letter(
    producer: &FutureProducer,
    runtime: &tokio::runtime::Handle,
    topic: &str,
    record: &Record,
    format: &str,
    error: &PayloadError,
) -> Result<(), ConsumerError> {
    let reason = error.to_string();
    let (partition, offset) = (record.partition.to_string(), record.offset.to_string());
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "awoooi-error",
            value: Some(reason.as_str()),
        })
        .insert(Header {
            key: "awoooi-source-topic",
            value: Some(record.topic.as_str()),
        })
        .insert(Header {
            key: "awoooi-source-partition",
            value: Some(partition.as_str()),
        })
        .insert(Header {
            key: "awoooi-source-offset",
            value: Some(offset.as_str()),
        })
        .insert(Header {
            key: "awoooi-format",
            value: Some(format),
        });
    let payload = record.payload.as_deref().unwrap_or_default();
    let message = FutureRecord::<(), [u8]>::to(topic)
        .payload(payload)
        .headers(headers);
    runtime
        .block_on(producer.send(message, Duration::from_secs(10)))
        .map(|_| ())
        .map_err(|(error, _)| ConsumerError::DeadLetter {
            topic: topic.to_owned(),
            error,
        })
}
