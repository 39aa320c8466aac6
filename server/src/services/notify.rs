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

mod config;
mod worker;

pub use config::{ChannelConfig, ChannelKind, NotifyConfig, RetryConfig, Route, Secret};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
pub use worker::{ChannelInfo, Notifier, NotifyError, Pass, idempotency_key};

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
    /// A newer analysis proposed another fix; this one will never run.
    ApprovalSuperseded,
    /// The settings page's "send test notification".
    Test,
    /// A silence or a maintenance window's occurrence ended: the digest of what it held back.
    SilenceEnded,
    /// A silence ends soon: its creator is warned.
    SilenceExpiring,
    /// An escalation step pages someone about an unacknowledged incident.
    EscalationPage,
}

impl EventKind {
    pub const ALL: [EventKind; 15] = [
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
        EventKind::ApprovalSuperseded,
        EventKind::Test,
        EventKind::SilenceEnded,
        EventKind::SilenceExpiring,
        EventKind::EscalationPage,
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
            EventKind::ApprovalSuperseded => "APPROVAL_SUPERSEDED",
            EventKind::Test => "TEST",
            EventKind::SilenceEnded => "SILENCE_ENDED",
            EventKind::SilenceExpiring => "SILENCE_EXPIRING",
            EventKind::EscalationPage => "ESCALATION_PAGE",
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
            EventKind::ApprovalSuperseded => "Superseded by a newer analysis",
            EventKind::Test => "Test notification",
            EventKind::SilenceEnded => "Silence ended",
            EventKind::SilenceExpiring => "Silence ends soon",
            EventKind::EscalationPage => "Paging",
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
    /// A silence's end or coming end, with its digest.
    #[serde(default)]
    pub silence: Option<SilenceFacts>,
    /// An escalation step's page.
    #[serde(default)]
    pub page: Option<PageFacts>,
}

/// Whom an escalation step pages, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageFacts {
    pub policy: String,
    /// 1-based.
    pub step: usize,
    pub steps: usize,
    /// What the step names: `user alice`, `role CTO`, `schedule primary`, `channel ops`.
    pub target: String,
    /// The people paged (none for a channel step, or a schedule nobody is on call for).
    pub recipients: Vec<String>,
    /// Minutes since the incident opened (or the approval was proposed) with nobody acting.
    pub unacknowledged_minutes: i64,
    /// A channel step: delivered to this channel only, whatever the routes say.
    pub channel: Option<String>,
    /// An approval's escalation: the approval waiting for signatures.
    #[serde(default)]
    pub approval: Option<i32>,
}

/// What a silence message says: which silence, and (at its end) what it held back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceFacts {
    pub id: i32,
    /// SILENCE or MAINTENANCE.
    pub kind: String,
    pub name: Option<String>,
    /// Pseudonymised.
    pub matchers: String,
    pub comment: String,
    pub created_by: String,
    /// When it ends (or this occurrence ended).
    pub ends_at: DateTime<Utc>,
    /// `name ×count` of the alerts that fired while it held.
    #[serde(default)]
    pub fired: Vec<String>,
    /// Of those, the ones that resolved meanwhile.
    #[serde(default)]
    pub resolved: Vec<String>,
    /// Of those, the ones still firing at its end.
    #[serde(default)]
    pub still_firing: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentFacts {
    pub id: i32,
    pub title: String,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub service: Option<String>,
    /// Who acknowledged it, if anyone had when the event was written.
    #[serde(default)]
    pub acknowledged_by: Option<String>,
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
    /// SUPERSEDED: the approval proposed instead.
    #[serde(default)]
    pub superseded_by: Option<i32>,
}

impl Payload {
    /// One line: `Approval needed: restart_deployment order-api (HIGH)`.
    pub fn summary(&self) -> String {
        if let (Some(page), Some(i)) = (&self.page, &self.incident) {
            let who = if page.recipients.is_empty() {
                page.target.clone()
            } else {
                page.recipients.join(", ")
            };
            let why = match page.approval {
                Some(a) => format!(
                    "approval #{a} unsigned for {} min",
                    page.unacknowledged_minutes
                ),
                None => format!("unacknowledged for {} min", page.unacknowledged_minutes),
            };
            return format!(
                "{}: {who} for #{} {} ({}), {why} (step {} of {}, {})",
                self.event.headline(),
                i.id,
                i.title,
                i.severity.as_str(),
                page.step,
                page.steps,
                page.policy
            );
        }
        if let Some(silence) = &self.silence {
            let what = match self.event {
                EventKind::SilenceExpiring => format!(
                    "#{} {} by {} ends at {}",
                    silence.id,
                    silence.matchers,
                    silence.created_by,
                    silence.ends_at.format("%Y-%m-%d %H:%M UTC")
                ),
                _ => format!(
                    "#{} {}: {} alert(s) held back, {} resolved meanwhile, {} still firing",
                    silence.id,
                    silence.name.as_deref().unwrap_or(&silence.matchers),
                    silence.fired.len(),
                    silence.resolved.len(),
                    silence.still_firing.len()
                ),
            };
            return format!("{}: {what}", self.event.headline());
        }
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
            if let Some(by) = &i.acknowledged_by {
                out.push(("Acknowledged by", by.clone()));
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
            if a.status == ApprovalStatus::Superseded {
                out.push((
                    "Replaced by",
                    match a.superseded_by {
                        Some(id) => format!("approval #{id}"),
                        None => "no action: the newer analysis proposes none".to_owned(),
                    },
                ));
            }
            if !a.rationale.is_empty() {
                out.push(("Why", a.rationale.clone()));
            }
        }
        if let Some(page) = &self.page {
            out.push(("Paging", page.target.clone()));
            if !page.recipients.is_empty() {
                out.push(("People", page.recipients.join(", ")));
            }
            out.push((
                "Escalation",
                format!("step {} of {} ({})", page.step, page.steps, page.policy),
            ));
        }
        if let Some(silence) = &self.silence {
            let what = if silence.kind == "MAINTENANCE" {
                "Maintenance window"
            } else {
                "Silence"
            };
            out.push((
                what,
                format!("#{} {}", silence.id, silence.name.as_deref().unwrap_or("")),
            ));
            out.push(("Matchers", silence.matchers.clone()));
            if !silence.comment.is_empty() {
                out.push(("Comment", silence.comment.clone()));
            }
            out.push(("Created by", silence.created_by.clone()));
            out.push((
                "Ends",
                silence.ends_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            ));
            if self.event == EventKind::SilenceEnded {
                let list = |l: &[String]| {
                    if l.is_empty() {
                        "none".to_owned()
                    } else {
                        l.join(", ")
                    }
                };
                out.push(("Fired meanwhile", list(&silence.fired)));
                out.push(("Resolved meanwhile", list(&silence.resolved)));
                out.push(("Still firing", list(&silence.still_firing)));
            }
        }
        out.push(("By", self.actor.clone()));
        out
    }

    /// Where a person looks at it in the console.
    pub fn link(&self, public_url: &str) -> String {
        let base = public_url.trim_end_matches('/');
        match (&self.approval, &self.incident, &self.silence) {
            (Some(a), _, _) => format!("{base}/approvals/{}", a.id),
            (None, Some(i), _) => format!("{base}/incidents/{}", i.id),
            (None, None, Some(_)) => format!("{base}/silences"),
            (None, None, None) => format!("{base}/settings"),
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
    insert_event(conn, &payload, approval_id).await
}

/// The event row of `payload`, routed by the worker later.
async fn insert_event(
    conn: &impl ConnectionTrait,
    payload: &Payload,
    approval_id: Option<i32>,
) -> Result<(), DbErr> {
    notification_event::ActiveModel {
        kind: Set(payload.event.as_str().to_owned()),
        incident_id: Set(payload.incident.as_ref().map(|i| i.id)),
        approval_id: Set(approval_id),
        payload: Set(serde_json::to_string(payload).expect("payload serialises")),
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
            acknowledged_by: i.acknowledged_by,
        }),
        approval,
        namespace,
        silence: None,
        page: None,
    })
}

/// Writes an escalation step's page about incident `incident_id` inside `conn`'s transaction.
pub async fn enqueue_page_in(
    conn: &impl ConnectionTrait,
    incident_id: i32,
    page: PageFacts,
) -> Result<(), DbErr> {
    let mut payload = payload_of(
        conn,
        EventKind::EscalationPage,
        Some(incident_id),
        None,
        "system",
    )
    .await?;
    payload.page = Some(page);
    insert_event(conn, &payload, None).await
}

/// Writes a silence's event inside `conn`'s transaction.
pub async fn enqueue_silence_in(
    conn: &impl ConnectionTrait,
    event: EventKind,
    silence: SilenceFacts,
) -> Result<(), DbErr> {
    let payload = Payload {
        event,
        at: Utc::now(),
        actor: "system".into(),
        incident: None,
        approval: None,
        namespace: None,
        silence: Some(silence),
        page: None,
    };
    insert_event(conn, &payload, None).await
}
