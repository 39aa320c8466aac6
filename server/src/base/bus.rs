//! The event bus: what changed (incidents, approvals, thinking lines), for the subscriptions
//! and workers of every replica.
//!
//! Events are hints, storage is the truth: a subscriber that misses one re-reads what it shows
//! (the thinking subscription fills seq gaps from storage, incident and approval subscriptions
//! read the row they are told of), and every worker claims its work in the database, so an
//! event delivered to N replicas is acted on once.
//!
//! Two implementations behind [`EventBus`]:
//! - [`InProcess`]: tokio broadcast channels, for one replica (the embedded default);
//! - [`RedisBus`]: the same local channels, plus Redis pub/sub between replicas. An event is
//!   delivered locally at once and published with this replica's origin id; each replica's
//!   listener delivers the others' events and skips its own. Pub/sub is at-most-once: while
//!   Redis is unreachable, replicas see only their own events and the listener reconnects with
//!   back-off.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::thinking_event;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

/// A persisted thinking event, as subscribers receive it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ThinkingRow {
    pub incident_id: i32,
    pub seq: i32,
    pub kind: String,
    pub text: String,
    pub at: DateTime<Utc>,
}

impl From<thinking_event::Model> for ThinkingRow {
    fn from(m: thinking_event::Model) -> Self {
        ThinkingRow {
            incident_id: m.incident_id,
            seq: m.seq,
            kind: m.kind,
            text: m.text,
            at: m.at,
        }
    }
}

/// Something that changed, after its transaction committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// An incident was opened, changed or resolved.
    Incident { id: i32 },
    /// An approval was proposed, signed, voided, executed…
    Approval { id: i32 },
    /// A line was added to an incident's thinking stream.
    Thinking { row: ThinkingRow },
}

/// Publishes events and hands out per-topic receivers.
pub trait EventBus: Send + Sync + 'static {
    fn publish(&self, event: Event);
    fn incidents(&self) -> broadcast::Receiver<i32>;
    fn approvals(&self) -> broadcast::Receiver<i32>;
    fn thinking(&self) -> broadcast::Receiver<ThinkingRow>;
    /// How many incident events this replica has seen (its own, after their commit, and
    /// other replicas' as they arrive): a cache of incident reads is current while it holds.
    fn incident_epoch(&self) -> u64;
}

/// The bus handle every component holds; cheap to clone.
pub type Bus = Arc<dyn EventBus>;

/// Local fan-out: one broadcast channel per topic.
pub struct InProcess {
    incidents: broadcast::Sender<i32>,
    incident_epoch: std::sync::atomic::AtomicU64,
    approvals: broadcast::Sender<i32>,
    thinking: broadcast::Sender<ThinkingRow>,
}

impl Default for InProcess {
    fn default() -> Self {
        InProcess {
            incidents: broadcast::channel(1024).0,
            incident_epoch: Default::default(),
            approvals: broadcast::channel(1024).0,
            thinking: broadcast::channel(4096).0,
        }
    }
}

impl InProcess {
    pub fn bus() -> Bus {
        Arc::new(InProcess::default())
    }
}

impl EventBus for InProcess {
    fn publish(&self, event: Event) {
        // No receivers is not an error: nobody is listening yet.
        match event {
            Event::Incident { id } => {
                // Counted before subscribers hear of it: a subscriber that re-reads the
                // incident must not be answered from a cache of what it was.
                self.incident_epoch
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                drop(self.incidents.send(id))
            }
            Event::Approval { id } => drop(self.approvals.send(id)),
            Event::Thinking { row } => drop(self.thinking.send(row)),
        }
    }
    fn incidents(&self) -> broadcast::Receiver<i32> {
        self.incidents.subscribe()
    }
    fn approvals(&self) -> broadcast::Receiver<i32> {
        self.approvals.subscribe()
    }
    fn thinking(&self) -> broadcast::Receiver<ThinkingRow> {
        self.thinking.subscribe()
    }
    fn incident_epoch(&self) -> u64 {
        self.incident_epoch
            .load(std::sync::atomic::Ordering::Acquire)
    }
}

/// What goes over Redis: the event and the replica it came from.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    origin: u64,
    #[serde(flatten)]
    event: Event,
}

/// [`InProcess`] plus Redis pub/sub between replicas.
pub struct RedisBus {
    local: Arc<InProcess>,
    outbox: mpsc::UnboundedSender<Event>,
}

/// The default pub/sub channel.
pub const DEFAULT_CHANNEL: &str = "awoooi:events";

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl RedisBus {
    /// Connects to `url` (checking it answers, so a wrong URL fails start-up with a clear
    /// error), then starts the publisher and the listener on `channel`.
    pub async fn connect(url: &str, channel: &str) -> anyhow::Result<Bus> {
        use anyhow::Context;
        let client = redis::Client::open(url).context("invalid Redis URL for the event bus")?;
        let mut conn = tokio::time::timeout(
            Duration::from_secs(5),
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| anyhow::anyhow!("event bus: Redis did not answer within 5 s"))?
        .context("event bus: cannot connect to Redis")?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .context("event bus: Redis refused PING")?;
        let local = Arc::new(InProcess::default());
        let origin = rand::random::<u64>();
        let (outbox, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        tokio::spawn(publisher(
            client.clone(),
            conn,
            channel.to_owned(),
            origin,
            rx,
        ));
        tokio::spawn(listener(
            client,
            channel.to_owned(),
            origin,
            local.clone(),
            Some(ready_tx),
        ));
        // Start-up waits for the first subscription, so that nothing published after
        // `connect` returns is missed by this replica.
        let _ = tokio::time::timeout(Duration::from_secs(5), ready).await;
        Ok(Arc::new(RedisBus { local, outbox }))
    }
}

impl EventBus for RedisBus {
    fn publish(&self, event: Event) {
        self.local.publish(event.clone());
        // The publisher task only ends with the runtime.
        let _ = self.outbox.send(event);
    }
    fn incidents(&self) -> broadcast::Receiver<i32> {
        self.local.incidents()
    }
    fn approvals(&self) -> broadcast::Receiver<i32> {
        self.local.approvals()
    }
    fn thinking(&self) -> broadcast::Receiver<ThinkingRow> {
        self.local.thinking()
    }
    fn incident_epoch(&self) -> u64 {
        self.local.incident_epoch()
    }
}

async fn publisher(
    client: redis::Client,
    conn: redis::aio::MultiplexedConnection,
    channel: String,
    origin: u64,
    mut rx: mpsc::UnboundedReceiver<Event>,
) {
    let mut conn = Some(conn);
    let mut backoff = BACKOFF_MIN;
    while let Some(event) = rx.recv().await {
        let payload = match serde_json::to_string(&Envelope { origin, event }) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!(%error, "event bus: cannot encode an event");
                continue;
            }
        };
        loop {
            let Some(c) = conn.as_mut() else {
                match client.get_multiplexed_async_connection().await {
                    Ok(c) => {
                        conn = Some(c);
                        backoff = BACKOFF_MIN;
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "event bus: Redis unreachable; other replicas miss this event");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        break;
                    }
                }
            };
            match redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(&payload)
                .query_async::<i64>(c)
                .await
            {
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "event bus: publish failed; reconnecting");
                    conn = None;
                }
            }
        }
    }
}

async fn listener(
    client: redis::Client,
    channel: String,
    origin: u64,
    local: Arc<InProcess>,
    mut ready: Option<tokio::sync::oneshot::Sender<()>>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            redis::RedisResult::Ok(pubsub)
        }
        .await;
        match subscribed {
            Ok(pubsub) => {
                backoff = BACKOFF_MIN;
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
                let mut messages = pubsub.into_on_message();
                while let Some(message) = messages.next().await {
                    let payload: Vec<u8> = message.get_payload_bytes().to_vec();
                    match serde_json::from_slice::<Envelope>(&payload) {
                        Ok(envelope) if envelope.origin == origin => {}
                        Ok(envelope) => local.publish(envelope.event),
                        Err(error) => {
                            tracing::warn!(%error, "event bus: ignoring a malformed message")
                        }
                    }
                }
                tracing::warn!("event bus: Redis subscription ended; reconnecting");
            }
            Err(error) => {
                tracing::warn!(%error, "event bus: cannot subscribe to Redis; retrying");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// `[bus]`: how replicas hear of each other's changes.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    /// `memory` (one replica, the default) or `redis` (pub/sub on `redis_url`).
    #[serde(default)]
    pub backend: BusKind,
    /// The Redis pub/sub channel; replicas sharing a database must share it.
    #[serde(default = "default_bus_channel")]
    pub channel: String,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            backend: BusKind::default(),
            channel: default_bus_channel(),
        }
    }
}

fn default_bus_channel() -> String {
    DEFAULT_CHANNEL.to_owned()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    #[default]
    Memory,
    Redis,
}
