//! Notifications: an outbox in the database, routed to channels and delivered reliably.
//!
//! - [`enqueue_in`] writes an event inside the transaction of the change that caused it (an
//!   incident opened or resolved, an approval proposed, signed, executed, …), so an event exists
//!   exactly when its change committed. Its payload is built from what the database holds:
//!   pseudonymised text only.
//! - The worker routes new events by the configured rules into one delivery per channel, each
//!   with an idempotency key (`awoooi-<event>-<channel>`) that stays the same on every retry.
//! - Deliveries are claimed with a lease (a conditional update), sent, and marked `DELIVERED`;
//!   a failure is retried with exponential back-off, and after the last attempt the delivery
//!   is `DEAD`: listed, and re-drivable. A worker stopped mid-way leaves its lease to run out;
//!   the next worker sends again with the same key (at least once; receivers dedupe by key).

pub mod discord;
pub mod email;
pub mod slack;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use engine::alert::Severity;
use engine::policy::{ApprovalStatus, RiskLevel};
use engine::stored::Stored;
use entity::notification_delivery::DeliveryStatus;

use crate::base::incident::IncidentStatus;
use entity::{alert, incident, notification_delivery, notification_event};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};

pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// What is worth telling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventKind {
    IncidentOpened,
    IncidentResolved,
    ApprovalPending,
    ApprovalSigned,
    ApprovalApproved,
    ApprovalRejected,
    ApprovalExecuted,
    ApprovalFailed,
    ApprovalVoided,
    ApprovalExpired,
    /// The settings page's "send test notification".
    Test,
}

impl EventKind {
    pub const ALL: [EventKind; 11] = [
        EventKind::IncidentOpened,
        EventKind::IncidentResolved,
        EventKind::ApprovalPending,
        EventKind::ApprovalSigned,
        EventKind::ApprovalApproved,
        EventKind::ApprovalRejected,
        EventKind::ApprovalExecuted,
        EventKind::ApprovalFailed,
        EventKind::ApprovalVoided,
        EventKind::ApprovalExpired,
        EventKind::Test,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::IncidentOpened => "INCIDENT_OPENED",
            EventKind::IncidentResolved => "INCIDENT_RESOLVED",
            EventKind::ApprovalPending => "APPROVAL_PENDING",
            EventKind::ApprovalSigned => "APPROVAL_SIGNED",
            EventKind::ApprovalApproved => "APPROVAL_APPROVED",
            EventKind::ApprovalRejected => "APPROVAL_REJECTED",
            EventKind::ApprovalExecuted => "APPROVAL_EXECUTED",
            EventKind::ApprovalFailed => "APPROVAL_FAILED",
            EventKind::ApprovalVoided => "APPROVAL_VOIDED",
            EventKind::ApprovalExpired => "APPROVAL_EXPIRED",
            EventKind::Test => "TEST",
        }
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// A headline for people.
    pub fn headline(self) -> &'static str {
        match self {
            EventKind::IncidentOpened => "Incident opened",
            EventKind::IncidentResolved => "Incident resolved",
            EventKind::ApprovalPending => "Approval needed",
            EventKind::ApprovalSigned => "Approval signed",
            EventKind::ApprovalApproved => "Approved",
            EventKind::ApprovalRejected => "Rejected",
            EventKind::ApprovalExecuted => "Executed",
            EventKind::ApprovalFailed => "Execution failed",
            EventKind::ApprovalVoided => "Voided before execution",
            EventKind::ApprovalExpired => "Approval expired",
            EventKind::Test => "Test notification",
        }
    }
}

/// What a message is made of: copied from stored (pseudonymised) rows when the event is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    pub event: EventKind,
    pub at: DateTime<Utc>,
    /// Who caused it (a user name, `awoooi`, or `system`).
    pub actor: String,
    pub incident: Option<IncidentFacts>,
    pub approval: Option<ApprovalFacts>,
    /// The namespace routing rules match (the action's, else the first alert's label).
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentFacts {
    pub id: i32,
    pub title: String,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub service: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalFacts {
    pub id: i32,
    pub kind: String,
    pub target: String,
    pub namespace: Option<String>,
    pub status: ApprovalStatus,
    pub effective_risk: RiskLevel,
    pub required_signatures: usize,
    pub eligible_roles: Vec<String>,
    pub mandatory_roles: Vec<String>,
    /// `name (ROLE) APPROVE|REJECT`, in order.
    pub signatures: Vec<String>,
    pub dry_run_passed: bool,
    pub rationale: String,
    pub void_reason: Option<String>,
    /// A FinOps fix: its monthly saving, e.g. `$40.00/month`.
    pub saving: Option<String>,
}

impl Payload {
    /// One line: `Approval needed: restart_deployment order-api (HIGH)`.
    pub fn summary(&self) -> String {
        let what = match (&self.approval, &self.incident) {
            (Some(a), _) => format!("{} {} ({})", a.kind, a.target, a.effective_risk.as_str()),
            (None, Some(i)) => format!("#{} {} ({})", i.id, i.title, i.severity.as_str()),
            (None, None) => "AWOOOI can reach this channel".to_owned(),
        };
        format!("{}: {what}", self.event.headline())
    }

    /// Facts as (name, value) pairs, for fields and plain text.
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(i) = &self.incident {
            out.push(("Incident", format!("#{} {}", i.id, i.title)));
            out.push(("Severity", i.severity.as_str().to_owned()));
            if let Some(s) = &i.service {
                out.push(("Service", s.clone()));
            }
        }
        if let Some(a) = &self.approval {
            let mut action = format!("{} {}", a.kind, a.target);
            if let Some(ns) = &a.namespace {
                action.push_str(&format!(" in {ns}"));
            }
            out.push(("Action", action));
            out.push(("Risk", a.effective_risk.as_str().to_owned()));
            out.push(("Status", a.status.as_str().to_owned()));
            if a.required_signatures > 0 {
                let mut needs = format!(
                    "{} signature(s) from {}",
                    a.required_signatures,
                    a.eligible_roles.join(", ")
                );
                if !a.mandatory_roles.is_empty() {
                    needs.push_str(&format!(", including {}", a.mandatory_roles.join(" and ")));
                }
                out.push(("Needs", needs));
            }
            if !a.signatures.is_empty() {
                out.push(("Signed", a.signatures.join("; ")));
            }
            out.push((
                "Dry-run",
                if a.dry_run_passed { "passed" } else { "FAILED" }.to_owned(),
            ));
            if let Some(s) = &a.saving {
                out.push(("Saves", s.clone()));
            }
            if let Some(r) = &a.void_reason {
                out.push(("Voided because", r.clone()));
            }
            if !a.rationale.is_empty() {
                out.push(("Why", a.rationale.clone()));
            }
        }
        out.push(("By", self.actor.clone()));
        out
    }

    /// Where a person looks at it in the console.
    pub fn link(&self, public_url: &str) -> String {
        let base = public_url.trim_end_matches('/');
        match (&self.approval, &self.incident) {
            (Some(a), _) => format!("{base}/approvals/{}", a.id),
            (None, Some(i)) => format!("{base}/incidents/{}", i.id),
            (None, None) => format!("{base}/settings"),
        }
    }
}

/// One message to one channel.
pub struct Message<'a> {
    pub key: &'a str,
    pub payload: &'a Payload,
    pub link: String,
}

/// A way out: Slack, Discord, email, a webhook. Errors never carry the channel's URL or
/// credentials (they are stored and shown).
pub trait Channel: Send + Sync + 'static {
    fn kind(&self) -> ChannelKind;
    /// Where it goes, safe to show (no tokens, no webhook paths).
    fn describe(&self) -> String;
    fn send<'a>(&'a self, message: &'a Message<'a>) -> BoxFuture<'a, Result<(), String>>;
}

/// A string that never prints itself.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Slack,
    Discord,
    Email,
    Webhook,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Slack => "SLACK",
            ChannelKind::Discord => "DISCORD",
            ChannelKind::Email => "EMAIL",
            ChannelKind::Webhook => "WEBHOOK",
        }
    }
}

/// `[[notifications.channels]]`: one way out. Which keys apply depends on `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
    /// Slack incoming webhook, Discord webhook, or the generic webhook's address.
    pub url: Option<Secret>,
    /// Slack `chat.postMessage`: a bot token and the channel to post in.
    pub token: Option<Secret>,
    pub channel: Option<String>,
    /// Slack's Web API base (default `https://slack.com/api`).
    pub api_url: Option<String>,
    /// The generic webhook's HMAC-SHA256 key (`X-Awoooi-Signature: sha256=<hex>`).
    pub secret: Option<Secret>,
    #[serde(default)]
    pub email: Option<email::EmailConfig>,
}

/// `[[notifications.routes]]`: which events go where. An empty list matches everything.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    #[serde(default)]
    pub events: Vec<EventKind>,
    #[serde(default)]
    pub severities: Vec<String>,
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    pub channels: Vec<String>,
}

impl Route {
    pub fn matches(&self, payload: &Payload) -> bool {
        let incident = payload.incident.as_ref();
        let one_of = |list: &[String], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|l| l.eq_ignore_ascii_case(v)))
        };
        (self.events.is_empty() || self.events.contains(&payload.event))
            && one_of(&self.severities, incident.map(|i| i.severity.as_str()))
            && one_of(&self.services, incident.and_then(|i| i.service.as_deref()))
            && one_of(&self.namespaces, payload.namespace.as_deref())
    }
}

/// `[notifications.retry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts before a delivery is dead-lettered (default 8).
    pub attempts: u32,
    /// First back-off, doubled on each failure (default 2000 ms) …
    pub base_ms: u64,
    /// … up to this (default 10 minutes).
    pub max_ms: u64,
    /// How long a worker owns a delivery it is sending (default 60 s).
    pub lease_seconds: u64,
    /// How often the worker looks for work (default 500 ms).
    pub poll_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            attempts: 8,
            base_ms: 2_000,
            max_ms: 600_000,
            lease_seconds: 60,
            poll_ms: 500,
        }
    }
}

impl RetryConfig {
    /// The wait after the `attempt`-th failure (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u64 << attempt.saturating_sub(1).min(30);
        Duration::from_millis(self.base_ms.saturating_mul(factor).min(self.max_ms))
    }
}

/// `[notifications]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// The console's address as people reach it, for links (default `http://<bind>`).
    pub public_url: Option<String>,
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
    /// None: every event to every channel.
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub retry: RetryConfig,
    /// Slack's interactive buttons (`POST /api/v1/slack/interactions`).
    #[serde(default)]
    pub slack: slack::InteractionsConfig,
    /// Days an event is kept once every delivery of it is DELIVERED (default 30; 0 keeps
    /// everything). Dead letters and pending deliveries are never purged.
    pub keep_days: Option<u32>,
}

impl NotifyConfig {
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for c in &self.channels {
            if c.name.trim().is_empty() || c.name.len() > 64 {
                return Err("channels: every channel needs a name of 1-64 characters".into());
            }
            if !names.insert(c.name.as_str()) {
                return Err(format!("channels: the name `{}` is used twice", c.name));
            }
            build_channel(c, &reqwest::Client::new())
                .map_err(|e| format!("channel `{}`: {e}", c.name))?;
        }
        for (i, r) in self.routes.iter().enumerate() {
            if r.channels.is_empty() {
                return Err(format!("routes[{i}]: `channels` names no channel"));
            }
            if let Some(unknown) = r.channels.iter().find(|c| !names.contains(c.as_str())) {
                return Err(format!("routes[{i}]: no channel is named `{unknown}`"));
            }
            if let Some(bad) = r
                .severities
                .iter()
                .find(|s| Severity::from_stored(&s.to_ascii_uppercase()).is_err())
            {
                return Err(format!(
                    "routes[{i}]: severity `{bad}` is not CRITICAL, WARNING or INFO"
                ));
            }
        }
        let r = &self.retry;
        if r.attempts == 0
            || r.base_ms == 0
            || r.max_ms < r.base_ms
            || r.lease_seconds == 0
            || r.poll_ms == 0
        {
            return Err("retry: attempts, base_ms, lease_seconds and poll_ms must be positive, max_ms ≥ base_ms".into());
        }
        self.slack.validate()
    }

    /// The channels an event goes to, in configuration order, each once.
    pub fn route(&self, payload: &Payload) -> Vec<String> {
        if self.routes.is_empty() {
            return self.channels.iter().map(|c| c.name.clone()).collect();
        }
        let wanted: std::collections::HashSet<&str> = self
            .routes
            .iter()
            .filter(|r| r.matches(payload))
            .flat_map(|r| r.channels.iter().map(String::as_str))
            .collect();
        self.channels
            .iter()
            .filter(|c| wanted.contains(c.name.as_str()))
            .map(|c| c.name.clone())
            .collect()
    }
}

fn build_channel(
    config: &ChannelConfig,
    http: &reqwest::Client,
) -> Result<Box<dyn Channel>, String> {
    Ok(match config.kind {
        ChannelKind::Slack => Box::new(slack::SlackChannel::new(config, http.clone())?),
        ChannelKind::Discord => Box::new(discord::DiscordChannel::new(config, http.clone())?),
        ChannelKind::Email => Box::new(email::EmailChannel::new(config)?),
        ChannelKind::Webhook => Box::new(webhook::WebhookChannel::new(config, http.clone())?),
    })
}

/// A URL that must be http(s), for error messages that name the key.
pub(crate) fn required_url(value: &Option<Secret>, what: &str) -> Result<reqwest::Url, String> {
    let text = value
        .as_ref()
        .ok_or_else(|| format!("`url` is required ({what})"))?;
    let url = reqwest::Url::parse(&text.0).map_err(|e| format!("`url` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("`url` must be http or https".into());
    }
    Ok(url)
}

/// An HTTP answer as a delivery outcome: 2xx is delivered; the body of a refusal is kept
/// (shortened) so the dead-letter list says why.
pub(crate) async fn http_outcome(
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<reqwest::Response, String> {
    let response = sent.map_err(|e| {
        // The cause chain says why (refused, timed out, TLS); the URL is left out.
        let e = e.without_url();
        let mut text = format!("cannot reach the receiver: {e}");
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            text.push_str(&format!(": {c}"));
            cause = c.source();
        }
        text
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    Err(format!(
        "the receiver answered {status}: {}",
        shorten(&body, 300)
    ))
}

pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Writes an event inside `conn`'s transaction (call it next to the change it tells of).
/// The caller gives what it knows of the approval; the incident is read as that transaction
/// sees it.
pub async fn enqueue_in(
    conn: &impl ConnectionTrait,
    event: EventKind,
    incident_id: Option<i32>,
    approval: Option<ApprovalFacts>,
    actor: &str,
) -> Result<(), DbErr> {
    let approval_id = approval.as_ref().map(|a| a.id);
    let payload = payload_of(conn, event, incident_id, approval, actor).await?;
    notification_event::ActiveModel {
        kind: Set(event.as_str().to_owned()),
        incident_id: Set(payload.incident.as_ref().map(|i| i.id)),
        approval_id: Set(approval_id),
        payload: Set(serde_json::to_string(&payload).expect("payload serialises")),
        routed: Set(false),
        created_at: Set(payload.at),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// The payload of `event`: the incident as `conn` sees it, the approval as the caller gives it.
pub async fn payload_of(
    conn: &impl ConnectionTrait,
    event: EventKind,
    incident_id: Option<i32>,
    approval: Option<ApprovalFacts>,
    actor: &str,
) -> Result<Payload, DbErr> {
    let incident = match incident_id {
        Some(id) => incident::Entity::find_by_id(id).one(conn).await?,
        None => None,
    };
    let mut namespace = approval.as_ref().and_then(|a| a.namespace.clone());
    if namespace.is_none()
        && let Some(i) = &incident
        && let Some(first) = alert::Entity::find()
            .filter(alert::Column::IncidentId.eq(i.id))
            .order_by_asc(alert::Column::Id)
            .one(conn)
            .await?
    {
        namespace = serde_json::from_str::<BTreeMap<String, String>>(&first.labels)
            .ok()
            .and_then(|labels| labels.get("namespace").cloned());
    }
    Ok(Payload {
        event,
        at: Utc::now(),
        actor: actor.to_owned(),
        incident: incident.map(|i| IncidentFacts {
            id: i.id,
            title: i.title,
            severity: i.severity,
            status: i.status,
            service: i.service,
        }),
        approval,
        namespace,
    })
}

/// What one pass of the worker did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub routed: usize,
    pub delivered: usize,
    pub retried: usize,
    pub dead: usize,
}

struct Inner {
    db: DatabaseConnection,
    config: NotifyConfig,
    public_url: String,
    channels: BTreeMap<String, Box<dyn Channel>>,
}

/// The notifier: routing, delivery, dead letters; cheap to clone.
#[derive(Clone)]
pub struct Notifier(Arc<Inner>);

/// A channel as the settings page shows it.
#[derive(Debug, Clone)]
pub struct ChannelInfo {
    pub name: String,
    pub kind: ChannelKind,
    pub target: String,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("no channel is named `{0}`")]
    NoChannel(String),
    #[error("delivery {0} does not exist")]
    NotFound(i32),
    #[error("delivery {0} is not dead-lettered (only dead letters are re-driven)")]
    NotDead(i32),
    #[error(transparent)]
    Db(#[from] DbErr),
}

const BATCH: u64 = 32;

/// How often the worker purges old delivered events.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

impl Notifier {
    pub fn new(
        db: DatabaseConnection,
        config: NotifyConfig,
        bind: std::net::SocketAddr,
    ) -> Result<Notifier, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let mut channels = BTreeMap::new();
        for c in &config.channels {
            channels.insert(
                c.name.clone(),
                build_channel(c, &http).map_err(|e| format!("channel `{}`: {e}", c.name))?,
            );
        }
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bind}"));
        Ok(Notifier(Arc::new(Inner {
            db,
            config,
            public_url,
            channels,
        })))
    }

    pub fn config(&self) -> &NotifyConfig {
        &self.0.config
    }

    pub fn public_url(&self) -> &str {
        &self.0.public_url
    }

    pub fn channels(&self) -> Vec<ChannelInfo> {
        self.0
            .config
            .channels
            .iter()
            .map(|c| ChannelInfo {
                name: c.name.clone(),
                kind: c.kind,
                target: self.0.channels[&c.name].describe(),
            })
            .collect()
    }

    /// Runs the worker until the process stops.
    pub fn start_worker(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            let every = Duration::from_millis(this.0.config.retry.poll_ms);
            let mut last_purge: Option<std::time::Instant> = None;
            loop {
                let keep_days = this.0.config.keep_days.unwrap_or(30);
                if keep_days > 0 && last_purge.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
                    last_purge = Some(std::time::Instant::now());
                    let cutoff = Utc::now() - chrono::Duration::days(i64::from(keep_days));
                    match this.purge(cutoff).await {
                        Ok(0) => {}
                        Ok(n) => {
                            tracing::info!(events = n, keep_days, "delivered notifications purged")
                        }
                        Err(error) => tracing::warn!(%error, "notification purge failed"),
                    }
                }
                match this.pass().await {
                    // More may be waiting: go again at once.
                    Ok(p)
                        if p.routed as u64 >= BATCH
                            || p.delivered + p.retried + p.dead >= BATCH as usize =>
                    {
                        continue;
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "notification pass failed; trying again"),
                }
                tokio::time::sleep(every).await;
            }
        });
    }

    /// Deletes events older than `cutoff` whose deliveries were all DELIVERED (with those
    /// deliveries). Returns how many events went.
    pub async fn purge(&self, cutoff: DateTime<Utc>) -> Result<usize, DbErr> {
        let old: Vec<i32> = notification_event::Entity::find()
            .select_only()
            .column(notification_event::Column::Id)
            .filter(notification_event::Column::Routed.eq(true))
            .filter(notification_event::Column::CreatedAt.lt(cutoff))
            .limit(1_000)
            .into_tuple()
            .all(&self.0.db)
            .await?;
        if old.is_empty() {
            return Ok(0);
        }
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let unfinished: std::collections::HashSet<i32> = notification_delivery::Entity::find()
            .select_only()
            .column(notification_delivery::Column::EventId)
            .filter(notification_delivery::Column::EventId.is_in(old.clone()))
            .filter(notification_delivery::Column::Status.ne(DeliveryStatus::Delivered))
            .into_tuple::<i32>()
            .all(&txn)
            .await?
            .into_iter()
            .collect();
        let done: Vec<i32> = old
            .into_iter()
            .filter(|id| !unfinished.contains(id))
            .collect();
        notification_delivery::Entity::delete_many()
            .filter(notification_delivery::Column::EventId.is_in(done.clone()))
            .filter(notification_delivery::Column::Status.eq(DeliveryStatus::Delivered))
            .exec(&txn)
            .await?;
        notification_event::Entity::delete_many()
            .filter(notification_event::Column::Id.is_in(done.clone()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(done.len())
    }

    /// Routes new events, then sends what is due.
    pub async fn pass(&self) -> Result<Pass, DbErr> {
        let mut pass = Pass {
            routed: self.route().await?,
            ..Pass::default()
        };
        let now = Utc::now();
        let due = notification_delivery::Entity::find()
            .filter(notification_delivery::Column::Status.eq(DeliveryStatus::Pending))
            .filter(notification_delivery::Column::NextAttemptAt.lte(now))
            .filter(
                Condition::any()
                    .add(notification_delivery::Column::LockedUntil.is_null())
                    .add(notification_delivery::Column::LockedUntil.lt(now)),
            )
            .order_by_asc(notification_delivery::Column::Id)
            .limit(BATCH)
            .all(&self.0.db)
            .await?;
        let mut claimed = Vec::new();
        for row in due {
            if self.claim(&row, now).await? {
                claimed.push(row);
            }
        }
        let outcomes =
            futures_util::future::join_all(claimed.iter().map(|row| self.send(row))).await;
        for (row, outcome) in claimed.iter().zip(outcomes) {
            match self.settle(row, outcome).await? {
                DeliveryStatus::Delivered => pass.delivered += 1,
                DeliveryStatus::Dead => pass.dead += 1,
                _ => pass.retried += 1,
            }
        }
        Ok(pass)
    }

    /// Turns unrouted events into deliveries, each event in its own transaction.
    async fn route(&self) -> Result<usize, DbErr> {
        let events = notification_event::Entity::find()
            .filter(notification_event::Column::Routed.eq(false))
            .order_by_asc(notification_event::Column::Id)
            .limit(BATCH)
            .all(&self.0.db)
            .await?;
        let count = events.len();
        for event in events {
            let channels = match serde_json::from_str::<Payload>(&event.payload) {
                Ok(payload) => self.0.config.route(&payload),
                Err(error) => {
                    tracing::error!(event = event.id, %error, "unreadable notification payload; not routed");
                    Vec::new()
                }
            };
            let txn = crate::base::db::begin_write(&self.0.db).await?;
            insert_deliveries(&txn, event.id, &channels).await?;
            notification_event::Entity::update_many()
                .col_expr(notification_event::Column::Routed, Expr::value(true))
                .filter(notification_event::Column::Id.eq(event.id))
                .exec(&txn)
                .await?;
            txn.commit().await?;
        }
        Ok(count)
    }

    /// Takes `row` for one attempt; false when another worker has it.
    async fn claim(
        &self,
        row: &notification_delivery::Model,
        now: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        let lease = chrono::Duration::seconds(self.0.config.retry.lease_seconds as i64);
        let taken = notification_delivery::Entity::update_many()
            .col_expr(
                notification_delivery::Column::LockedUntil,
                Expr::value(now + lease),
            )
            .filter(notification_delivery::Column::Id.eq(row.id))
            .filter(notification_delivery::Column::Status.eq(DeliveryStatus::Pending))
            .filter(
                Condition::any()
                    .add(notification_delivery::Column::LockedUntil.is_null())
                    .add(notification_delivery::Column::LockedUntil.lt(now)),
            )
            .exec(&self.0.db)
            .await?
            .rows_affected;
        Ok(taken == 1)
    }

    async fn send(&self, row: &notification_delivery::Model) -> Result<(), String> {
        let Some(channel) = self.0.channels.get(&row.channel) else {
            return Err(format!(
                "no channel `{}` in the configuration now",
                row.channel
            ));
        };
        let event = notification_event::Entity::find_by_id(row.event_id)
            .one(&self.0.db)
            .await
            .map_err(|e| format!("cannot read the event: {e}"))?
            .ok_or("the event is gone")?;
        let payload: Payload =
            serde_json::from_str(&event.payload).map_err(|e| format!("unreadable payload: {e}"))?;
        let message = Message {
            key: &row.idempotency_key,
            link: payload.link(&self.0.public_url),
            payload: &payload,
        };
        channel.send(&message).await
    }

    /// Records an attempt's outcome; returns the delivery's new status.
    async fn settle(
        &self,
        row: &notification_delivery::Model,
        outcome: Result<(), String>,
    ) -> Result<DeliveryStatus, DbErr> {
        let now = Utc::now();
        let attempts = row.attempts + 1;
        let retry = &self.0.config.retry;
        let mut update = notification_delivery::Entity::update_many()
            .col_expr(
                notification_delivery::Column::Attempts,
                Expr::value(attempts),
            )
            .col_expr(
                notification_delivery::Column::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(notification_delivery::Column::Id.eq(row.id))
            .filter(notification_delivery::Column::Status.eq(DeliveryStatus::Pending));
        let next = match outcome {
            Ok(()) => {
                update =
                    update.col_expr(notification_delivery::Column::DeliveredAt, Expr::value(now));
                metrics::counter!("awoooi_notifications_total", "channel" => row.channel.clone(), "outcome" => "delivered").increment(1);
                tracing::info!(delivery = row.id, channel = %row.channel, key = %row.idempotency_key, attempts, "notification delivered");
                DeliveryStatus::Delivered
            }
            Err(error) => {
                let dead = attempts >= retry.attempts as i32;
                update = update.col_expr(
                    notification_delivery::Column::LastError,
                    Expr::value(error.clone()),
                );
                if !dead {
                    let wait = chrono::Duration::from_std(retry.backoff(attempts as u32))
                        .unwrap_or_default();
                    update = update.col_expr(
                        notification_delivery::Column::NextAttemptAt,
                        Expr::value(now + wait),
                    );
                }
                let outcome = if dead { "dead" } else { "retry" };
                metrics::counter!("awoooi_notifications_total", "channel" => row.channel.clone(), "outcome" => outcome).increment(1);
                tracing::warn!(delivery = row.id, channel = %row.channel, attempts, %error, dead, "notification not delivered");
                if dead {
                    DeliveryStatus::Dead
                } else {
                    DeliveryStatus::Pending
                }
            }
        };
        update
            .col_expr(notification_delivery::Column::Status, Expr::value(next))
            .exec(&self.0.db)
            .await?;
        Ok(next)
    }

    /// Deliveries, newest first, optionally of one status.
    pub async fn deliveries(
        &self,
        status: Option<DeliveryStatus>,
        first: u64,
    ) -> Result<Vec<(notification_delivery::Model, Option<Payload>)>, DbErr> {
        let mut query =
            notification_delivery::Entity::find().order_by_desc(notification_delivery::Column::Id);
        if let Some(s) = status {
            query = query.filter(notification_delivery::Column::Status.eq(s));
        }
        let rows = query.limit(first).all(&self.0.db).await?;
        let ids: Vec<i32> = rows.iter().map(|r| r.event_id).collect();
        let events: BTreeMap<i32, Payload> = notification_event::Entity::find()
            .filter(notification_event::Column::Id.is_in(ids))
            .all(&self.0.db)
            .await?
            .into_iter()
            .filter_map(|e| Some((e.id, serde_json::from_str(&e.payload).ok()?)))
            .collect();
        Ok(rows
            .into_iter()
            .map(|r| {
                let payload = events.get(&r.event_id).cloned();
                (r, payload)
            })
            .collect())
    }

    pub async fn count(&self, status: DeliveryStatus) -> Result<u64, DbErr> {
        notification_delivery::Entity::find()
            .filter(notification_delivery::Column::Status.eq(status))
            .count(&self.0.db)
            .await
    }

    /// Puts a dead letter back in line: attempts start again, due now.
    pub async fn redrive(
        &self,
        id: i32,
        by: &str,
    ) -> Result<notification_delivery::Model, NotifyError> {
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let changed = notification_delivery::Entity::update_many()
            .col_expr(
                notification_delivery::Column::Status,
                Expr::value(DeliveryStatus::Pending),
            )
            .col_expr(notification_delivery::Column::Attempts, Expr::value(0))
            .col_expr(
                notification_delivery::Column::NextAttemptAt,
                Expr::value(Utc::now()),
            )
            .col_expr(
                notification_delivery::Column::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(notification_delivery::Column::Id.eq(id))
            .filter(notification_delivery::Column::Status.eq(DeliveryStatus::Dead))
            .exec(&txn)
            .await?
            .rows_affected;
        if changed == 0 {
            txn.rollback().await?;
            return match notification_delivery::Entity::find_by_id(id)
                .one(&self.0.db)
                .await?
            {
                Some(_) => Err(NotifyError::NotDead(id)),
                None => Err(NotifyError::NotFound(id)),
            };
        }
        crate::base::audit::append_in(
            &txn,
            by,
            "notification.redriven",
            &format!("notification:{id}"),
            serde_json::json!({}),
        )
        .await?;
        txn.commit().await?;
        notification_delivery::Entity::find_by_id(id)
            .one(&self.0.db)
            .await?
            .ok_or(NotifyError::NotFound(id))
    }

    /// Queues a test message to `channel` (through the outbox like any other).
    pub async fn send_test(
        &self,
        channel: &str,
        by: &str,
    ) -> Result<notification_delivery::Model, NotifyError> {
        if !self.0.channels.contains_key(channel) {
            return Err(NotifyError::NoChannel(channel.to_owned()));
        }
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let payload = payload_of(&txn, EventKind::Test, None, None, by).await?;
        let event = notification_event::ActiveModel {
            kind: Set(EventKind::Test.as_str().to_owned()),
            incident_id: Set(None),
            approval_id: Set(None),
            payload: Set(serde_json::to_string(&payload).expect("payload serialises")),
            routed: Set(true),
            created_at: Set(payload.at),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        insert_deliveries(&txn, event.id, &[channel.to_owned()]).await?;
        crate::base::audit::append_in(
            &txn,
            by,
            "notification.test",
            &format!("channel:{channel}"),
            serde_json::json!({}),
        )
        .await?;
        txn.commit().await?;
        notification_delivery::Entity::find()
            .filter(
                notification_delivery::Column::IdempotencyKey
                    .eq(idempotency_key(event.id, channel)),
            )
            .one(&self.0.db)
            .await?
            .ok_or(NotifyError::NotFound(event.id))
    }
}

pub fn idempotency_key(event_id: i32, channel: &str) -> String {
    format!("awoooi-{event_id}-{channel}")
}

async fn insert_deliveries(
    conn: &impl ConnectionTrait,
    event_id: i32,
    channels: &[String],
) -> Result<(), DbErr> {
    if channels.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    notification_delivery::Entity::insert_many(channels.iter().map(|c| {
        notification_delivery::ActiveModel {
            event_id: Set(event_id),
            channel: Set(c.clone()),
            idempotency_key: Set(idempotency_key(event_id, c)),
            status: Set(DeliveryStatus::Pending),
            attempts: Set(0),
            next_attempt_at: Set(now),
            locked_until: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            delivered_at: Set(None),
            ..Default::default()
        }
    }))
    .on_conflict(
        OnConflict::column(notification_delivery::Column::IdempotencyKey)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(
        event: EventKind,
        severity: Severity,
        service: &str,
        namespace: Option<&str>,
    ) -> Payload {
        Payload {
            event,
            at: Utc::now(),
            actor: "awoooi".into(),
            incident: Some(IncidentFacts {
                id: 1,
                title: "t".into(),
                severity,
                status: IncidentStatus::Open,
                service: Some(service.into()),
            }),
            approval: None,
            namespace: namespace.map(str::to_owned),
        }
    }

    fn channel(name: &str) -> ChannelConfig {
        ChannelConfig {
            name: name.into(),
            kind: ChannelKind::Webhook,
            url: Some(Secret("http://127.0.0.1:9/hook".into())),
            token: None,
            channel: None,
            api_url: None,
            secret: None,
            email: None,
        }
    }

    #[test]
    fn routes_match_events_severities_services_and_namespaces() {
        let config = NotifyConfig {
            channels: vec![channel("pager"), channel("chat"), channel("audit")],
            routes: vec![
                Route {
                    events: vec![EventKind::IncidentOpened],
                    severities: vec!["critical".into()],
                    channels: vec!["pager".into()],
                    ..Route::default()
                },
                Route {
                    namespaces: vec!["prod".into()],
                    services: vec!["order-api".into(), "auth-service".into()],
                    channels: vec!["chat".into(), "pager".into()],
                    ..Route::default()
                },
            ],
            ..NotifyConfig::default()
        };
        assert!(config.validate().is_ok(), "{:?}", config.validate());
        let cases = [
            (
                payload(EventKind::IncidentOpened, Severity::Critical, "x", None),
                vec!["pager"],
            ),
            (
                payload(EventKind::IncidentOpened, Severity::Warning, "x", None),
                vec![],
            ),
            (
                payload(
                    EventKind::ApprovalPending,
                    Severity::Warning,
                    "order-api",
                    Some("prod"),
                ),
                vec!["pager", "chat"],
            ),
            (
                payload(
                    EventKind::ApprovalPending,
                    Severity::Warning,
                    "order-api",
                    Some("dev"),
                ),
                vec![],
            ),
            (
                payload(
                    EventKind::ApprovalPending,
                    Severity::Warning,
                    "order-api",
                    None,
                ),
                vec![],
            ),
        ];
        for (p, want) in cases {
            assert_eq!(
                config.route(&p),
                want,
                "{:?} {:?} {:?}",
                p.event,
                p.incident,
                p.namespace
            );
        }
        // No rules: everything to every channel.
        let open = NotifyConfig {
            channels: vec![channel("a"), channel("b")],
            ..NotifyConfig::default()
        };
        assert_eq!(
            open.route(&payload(EventKind::Test, Severity::Info, "x", None)),
            vec!["a", "b"]
        );
    }

    #[test]
    fn bad_routing_names_what_is_wrong() {
        let mut config = NotifyConfig {
            channels: vec![channel("a")],
            routes: vec![Route {
                channels: vec!["b".into()],
                ..Route::default()
            }],
            ..NotifyConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err(),
            "routes[0]: no channel is named `b`"
        );
        config.routes[0].channels = vec!["a".into()];
        config.routes[0].severities = vec!["LOUD".into()];
        assert!(config.validate().unwrap_err().contains("severity `LOUD`"));
        config.routes.clear();
        config.channels.push(channel("a"));
        assert_eq!(
            config.validate().unwrap_err(),
            "channels: the name `a` is used twice"
        );
        config.channels.pop();
        config.channels[0].url = None;
        assert!(
            config
                .validate()
                .unwrap_err()
                .starts_with("channel `a`: `url` is required")
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let r = RetryConfig {
            base_ms: 100,
            max_ms: 1_000,
            ..RetryConfig::default()
        };
        let waits: Vec<u64> = (1..=6).map(|a| r.backoff(a).as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1_000, 1_000]);
    }
}
