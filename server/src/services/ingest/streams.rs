//! Alerts from Redis Streams, for senders that outgrow webhooks.
//!
//! A consumer group reads entries (`XREADGROUP`); each entry's alerts are committed with the
//! entry id as idempotency key, and only then acknowledged (`XACK`). Entries left pending by a
//! consumer that died are claimed back (`XAUTOCLAIM`) after `claim_idle`; a redelivered entry
//! that was already committed changes nothing. Entries that cannot be parsed are copied to a
//! dead-letter stream with the reason, then acknowledged: nothing acknowledged is lost.
//!
//! Entry fields: `payload` (the JSON body) and optional `format`: `alertmanager`, `grafana`
//! or `generic` (default).

use std::time::Duration;

use engine::alert::{AlertEvent, AlertSource};
use engine::input::{self, PayloadError};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamReadOptions, StreamReadReply};
use serde::Deserialize;

use crate::services::ingest::{Ingest, IngestError};

/// `[streams.redis]` in the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisStreamConfig {
    /// The stream to consume, e.g. `awoooi:alerts`.
    pub stream: String,
    #[serde(default = "default_group")]
    pub group: String,
    /// This replica's consumer name (default: host name and process id).
    #[serde(default)]
    pub consumer: Option<String>,
    /// Claim other consumers' entries pending longer than this (seconds).
    #[serde(default = "default_claim_idle")]
    pub claim_idle_seconds: u64,
    /// Entries read per round.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Where unparseable entries go (default: `<stream>:dead`).
    #[serde(default)]
    pub dead_letter: Option<String>,
}

fn default_group() -> String {
    "awoooi".into()
}
fn default_claim_idle() -> u64 {
    30
}
fn default_batch() -> usize {
    100
}

impl RedisStreamConfig {
    pub fn consumer_name(&self) -> String {
        self.consumer.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "awoooi".into());
            format!("{host}-{}", std::process::id())
        })
    }

    pub fn dead_letter_stream(&self) -> String {
        self.dead_letter
            .clone()
            .unwrap_or_else(|| format!("{}:dead", self.stream))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

/// One stream entry as read.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    payload: Option<Vec<u8>>,
    format: String,
}

impl Entry {
    fn from_stream_id(raw: StreamId) -> Entry {
        let field = |name: &str| -> Option<Vec<u8>> {
            raw.map
                .get(name)
                .and_then(|v| redis::from_redis_value(v.clone()).ok())
        };
        Entry {
            payload: field("payload"),
            format: field("format")
                .and_then(|f| String::from_utf8(f).ok())
                .unwrap_or_else(|| "generic".into()),
            id: raw.id,
        }
    }

    fn parse(&self) -> Result<Vec<AlertEvent>, PayloadError> {
        let body = self.payload.as_deref().ok_or_else(|| PayloadError {
            field: "payload".into(),
            message: "entry has no `payload` field".into(),
        })?;
        PayloadFormat::named(&self.format)?.parse(body)
    }
}

/// How a stream record's payload is written: the webhooks' three formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadFormat {
    Alertmanager,
    Grafana,
    #[default]
    Generic,
}

impl PayloadFormat {
    /// The format a record names (`alertmanager`, `grafana`, `generic`).
    pub fn named(name: &str) -> Result<PayloadFormat, PayloadError> {
        match name {
            "alertmanager" => Ok(PayloadFormat::Alertmanager),
            "grafana" => Ok(PayloadFormat::Grafana),
            "generic" => Ok(PayloadFormat::Generic),
            other => Err(PayloadError {
                field: "format".into(),
                message: format!(
                    "unknown format `{other}`; expected alertmanager, grafana or generic"
                ),
            }),
        }
    }

    /// The alerts in `body`, by the same parsers as the webhooks, marked as from a stream.
    pub fn parse(self, body: &[u8]) -> Result<Vec<AlertEvent>, PayloadError> {
        let mut events = match self {
            PayloadFormat::Alertmanager => input::parse_alertmanager(body)?,
            PayloadFormat::Grafana => input::parse_grafana(body)?,
            PayloadFormat::Generic => input::parse_generic(body)?,
        };
        for event in &mut events {
            event.source = AlertSource::Stream;
        }
        Ok(events)
    }

    pub fn name(self) -> &'static str {
        match self {
            PayloadFormat::Alertmanager => "alertmanager",
            PayloadFormat::Grafana => "grafana",
            PayloadFormat::Generic => "generic",
        }
    }
}

/// A stream transport (Redis Streams today; Kafka or NATS JetStream fit the same shape):
/// deliveries that stay pending until acknowledged, and a way to take over abandoned ones.
/// The consuming logic — parse, commit idempotently, dead-letter, acknowledge — is shared:
/// [`process`], [`round`] and [`run`].
pub trait AlertStream: Send {
    /// Prefix of idempotency keys, unique per stream (`redis:<stream>`).
    fn source(&self) -> String;
    /// Where parsed alerts are committed.
    fn ingest(&self) -> &Ingest;
    /// New entries (waiting up to `block`).
    fn read_new(
        &mut self,
        block: Option<Duration>,
    ) -> impl Future<Output = Result<Vec<Entry>, StreamError>> + Send;
    /// Entries delivered before and never acknowledged, ours or a dead consumer's.
    fn recover(&mut self) -> impl Future<Output = Result<Vec<Entry>, StreamError>> + Send;
    /// Keeps an unparseable entry, with the reason, somewhere a human can look.
    fn dead_letter(
        &mut self,
        entry: &Entry,
        error: &PayloadError,
    ) -> impl Future<Output = Result<(), StreamError>> + Send;
    fn ack(&mut self, ids: &[String]) -> impl Future<Output = Result<(), StreamError>> + Send;
}

/// Commits the entries' alerts (idempotently) and dead-letters unparseable ones.
/// Returns the ids that are safe to acknowledge; stops at the first storage failure.
pub async fn process<S: AlertStream>(
    stream: &mut S,
    entries: &[Entry],
) -> Result<Vec<String>, StreamError> {
    let mut done = Vec::with_capacity(entries.len());
    let mut submissions = Vec::new();
    for entry in entries {
        match entry.parse() {
            Ok(events) => submissions.push((entry.id.clone(), events)),
            Err(error) => {
                tracing::warn!(entry = %entry.id, field = %error.field, "unparseable stream entry dead-lettered");
                stream.dead_letter(entry, &error).await?;
                done.push(entry.id.clone());
            }
        }
    }
    // Submitted together, so the writer commits them in one transaction.
    let source = stream.source();
    let results = futures_util::future::join_all(submissions.into_iter().map(|(id, events)| {
        let key = format!("{source}:{id}");
        let ingest = stream.ingest().clone();
        async move { (id, ingest.submit_keyed(events, Some(key)).await) }
    }))
    .await;
    for (id, result) in results {
        match result {
            Ok(_) => done.push(id),
            Err(error) => {
                tracing::warn!(%error, entry = %id, "stream entry not stored; will retry");
                return Err(error.into());
            }
        }
    }
    Ok(done)
}

/// One round: recover pending work (when asked), else read new entries; commit, then ack.
pub async fn round<S: AlertStream>(
    stream: &mut S,
    recover: bool,
    block: Duration,
) -> Result<usize, StreamError> {
    let mut entries = if recover {
        stream.recover().await?
    } else {
        Vec::new()
    };
    if entries.is_empty() {
        entries = stream.read_new(Some(block)).await?;
    }
    let done = process(stream, &entries).await?;
    stream.ack(&done).await?;
    Ok(done.len())
}

/// Consumes until the task is dropped; storage or transport failures back off and retry.
pub async fn run<S: AlertStream>(mut stream: S) {
    let mut recover = true;
    let mut rounds: u64 = 0;
    let mut backoff = Duration::from_millis(500);
    loop {
        match round(&mut stream, recover, Duration::from_secs(1)).await {
            Ok(_) => {
                backoff = Duration::from_millis(500);
                rounds += 1;
                // Look for abandoned entries now and then, not every round.
                recover = rounds.is_multiple_of(30);
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "stream round failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                recover = true;
            }
        }
    }
}

/// `[id, [field, value, …]]` as XAUTOCLAIM returns it (deleted entries come as nil fields).
fn stream_id_of(value: redis::Value) -> Option<StreamId> {
    let redis::Value::Array(pair) = value else {
        return None;
    };
    let mut pair = pair.into_iter();
    let id: String = redis::from_redis_value(pair.next()?).ok()?;
    let mut map = std::collections::HashMap::new();
    if let Some(redis::Value::Array(fields)) = pair.next() {
        let mut fields = fields.into_iter();
        while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
            if let Ok(name) = redis::from_redis_value::<String>(name) {
                map.insert(name, value);
            }
        }
    }
    Some(StreamId {
        id,
        map,
        ..Default::default()
    })
}

/// A consumer of one stream within its group.
pub struct RedisAlertStream {
    conn: MultiplexedConnection,
    config: RedisStreamConfig,
    consumer: String,
    ingest: Ingest,
}

impl RedisAlertStream {
    /// Connects and creates the group (and stream) if missing.
    pub async fn connect(
        url: &str,
        config: RedisStreamConfig,
        ingest: Ingest,
    ) -> Result<Self, StreamError> {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let created: Result<(), redis::RedisError> = conn
            .xgroup_create_mkstream(&config.stream, &config.group, "0")
            .await;
        if let Err(error) = created
            && error.code() != Some("BUSYGROUP")
        {
            return Err(error.into());
        }
        Ok(RedisAlertStream {
            consumer: config.consumer_name(),
            conn,
            config,
            ingest,
        })
    }

    async fn read(
        &mut self,
        from: &str,
        block: Option<Duration>,
    ) -> Result<Vec<Entry>, StreamError> {
        let mut options = StreamReadOptions::default()
            .group(&self.config.group, &self.consumer)
            .count(self.config.batch);
        if let Some(block) = block {
            options = options.block(block.as_millis() as usize);
        }
        let reply: Option<StreamReadReply> = self
            .conn
            .xread_options(&[&self.config.stream], &[from], &options)
            .await?;
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(Entry::from_stream_id)
            .collect())
    }

    /// Entries delivered to this consumer earlier and never acknowledged (after a restart).
    pub async fn read_own_pending(&mut self) -> Result<Vec<Entry>, StreamError> {
        self.read("0", None).await
    }

    /// Entries other consumers left pending for longer than `claim_idle` — now ours.
    pub async fn claim_stale(&mut self) -> Result<Vec<Entry>, StreamError> {
        let reply: redis::Value = redis::cmd("XAUTOCLAIM")
            .arg(&self.config.stream)
            .arg(&self.config.group)
            .arg(&self.consumer)
            .arg(self.config.claim_idle_seconds * 1000)
            .arg("0-0")
            .arg("COUNT")
            .arg(self.config.batch)
            .query_async(&mut self.conn)
            .await?;
        // Reply: [next-start-id, [[id, [field, value, …]], …], [deleted ids]]
        let redis::Value::Array(parts) = reply else {
            return Ok(Vec::new());
        };
        let Some(redis::Value::Array(claimed)) = parts.into_iter().nth(1) else {
            return Ok(Vec::new());
        };
        Ok(claimed
            .into_iter()
            .filter_map(stream_id_of)
            .map(Entry::from_stream_id)
            .collect())
    }

    /// Entries this consumer was given before and never acknowledged, then entries other
    /// consumers left pending longer than `claim_idle` — each id once.
    pub async fn recover_pending(&mut self) -> Result<Vec<Entry>, StreamError> {
        let mut entries = self.read_own_pending().await?;
        // XAUTOCLAIM also returns our own pending entries: keep each id once.
        for entry in self.claim_stale().await? {
            if !entries.iter().any(|e| e.id == entry.id) {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    /// See [`process`].
    pub async fn process(&mut self, entries: &[Entry]) -> Result<Vec<String>, StreamError> {
        process(self, entries).await
    }

    /// See [`round`].
    pub async fn round(&mut self, recover: bool, block: Duration) -> Result<usize, StreamError> {
        round(self, recover, block).await
    }

    /// See [`run`].
    pub async fn run(self) {
        tracing::info!(stream = %self.config.stream, group = %self.config.group,
            consumer = %self.consumer, "consuming alerts from Redis");
        run(self).await
    }
}

impl AlertStream for RedisAlertStream {
    fn source(&self) -> String {
        format!("redis:{}", self.config.stream)
    }

    fn ingest(&self) -> &Ingest {
        &self.ingest
    }

    async fn read_new(&mut self, block: Option<Duration>) -> Result<Vec<Entry>, StreamError> {
        self.read(">", block).await
    }

    async fn recover(&mut self) -> Result<Vec<Entry>, StreamError> {
        self.recover_pending().await
    }

    async fn dead_letter(
        &mut self,
        entry: &Entry,
        error: &PayloadError,
    ) -> Result<(), StreamError> {
        let _: String = self
            .conn
            .xadd(
                self.config.dead_letter_stream(),
                "*",
                &[
                    ("source_id", entry.id.as_bytes()),
                    ("error", error.to_string().as_bytes()),
                    ("format", entry.format.as_bytes()),
                    ("payload", entry.payload.as_deref().unwrap_or_default()),
                ],
            )
            .await?;
        Ok(())
    }

    async fn ack(&mut self, ids: &[String]) -> Result<(), StreamError> {
        if ids.is_empty() {
            return Ok(());
        }
        let _: usize = self
            .conn
            .xack(&self.config.stream, &self.config.group, ids)
            .await?;
        Ok(())
    }
}

/// `[streams]`: stream inputs besides HTTP.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamsConfig {
    /// `[streams.redis]`: consume a Redis Stream (needs `redis_url`).
    pub redis: Option<RedisStreamConfig>,
    /// `[streams.kafka]`: consume Kafka topics in a consumer group.
    pub kafka: Option<super::kafka::KafkaConfig>,
}
