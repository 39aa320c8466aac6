//! Alerts in, incidents out: the durable, pseudonymising, correlating ingest pipeline.
//!
//! Every source (webhooks, GraphQL, streams) submits normalised [`AlertEvent`]s here. One writer
//! task applies them: concurrent submissions are grouped into one transaction (group commit, so
//! throughput does not pay one fsync per request), and each submitter is answered only after
//! that transaction committed. A failed group is retried request by request, so one bad request
//! cannot fail its neighbours. Nothing is stored in clear: names, labels, annotations and URLs
//! are pseudonymised with the incident's own label map, which is stored sealed.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use engine::alert::{AlertEvent, AlertStatus, Labels, Severity};
use engine::input::description_of;
use engine::shield::{Pseudonyms, Shield, VaultKey};
use entity::{alert, incident, incident_vault, ingest_receipt};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Set, TransactionTrait,
};
use tokio::sync::{broadcast, mpsc, oneshot};

/// Incident lifecycle states (API.md).
pub mod status {
    pub const OPEN: &str = "OPEN";
    pub const RESOLVED: &str = "RESOLVED";
}

/// Most requests grouped into one transaction.
const MAX_GROUP: usize = 64;

/// What a committed submission did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub accepted: usize,
    /// Incidents touched, in order of first appearance.
    pub incidents: Vec<i32>,
    /// The submission's key was applied before: nothing changed this time.
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("storage unavailable: {0}")]
    Storage(#[from] DbErr),
    #[error("ingest pipeline stopped")]
    Stopped,
}

struct Job {
    events: Vec<AlertEvent>,
    /// Idempotency key: a submission with a key already applied changes nothing.
    key: Option<String>,
    reply: oneshot::Sender<Result<Receipt, IngestError>>,
}

/// Settings of the pipeline.
#[derive(Clone)]
pub struct IngestSettings {
    pub correlation_window: Duration,
    pub shield: Arc<Shield>,
    pub key: VaultKey,
}

/// Handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    jobs: mpsc::Sender<Job>,
    updates: broadcast::Sender<i32>,
}

impl Ingest {
    /// Starts the writer task.
    pub fn start(db: DatabaseConnection, settings: IngestSettings) -> Ingest {
        let (jobs, rx) = mpsc::channel(1024);
        let (updates, _) = broadcast::channel(1024);
        tokio::spawn(writer(db, settings, rx, updates.clone()));
        Ingest { jobs, updates }
    }

    /// Stores `events`; returns once they are committed (or failed, storing nothing).
    pub async fn submit(&self, events: Vec<AlertEvent>) -> Result<Receipt, IngestError> {
        self.submit_keyed(events, None).await
    }

    /// Like [`Ingest::submit`], applied at most once per `key` (e.g. a stream entry id).
    pub async fn submit_keyed(
        &self,
        events: Vec<AlertEvent>,
        key: Option<String>,
    ) -> Result<Receipt, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { events, key, reply })
            .await
            .map_err(|_| IngestError::Stopped)?;
        answer.await.map_err(|_| IngestError::Stopped)?
    }

    /// Ids of incidents as they change (after commit).
    pub fn subscribe(&self) -> broadcast::Receiver<i32> {
        self.updates.subscribe()
    }
}

async fn writer(
    db: DatabaseConnection,
    settings: IngestSettings,
    mut rx: mpsc::Receiver<Job>,
    updates: broadcast::Sender<i32>,
) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let batches: Vec<Batch> = group
            .iter()
            .map(|j| (j.key.as_deref(), j.events.as_slice()))
            .collect();
        match apply(&db, &settings, &batches).await {
            Ok(receipts) => {
                for (job, receipt) in group.into_iter().zip(receipts) {
                    publish(&updates, &receipt);
                    let _ = job.reply.send(Ok(receipt));
                }
            }
            Err(error) if group.len() > 1 => {
                tracing::warn!(%error, requests = group.len(), "group commit failed; retrying one by one");
                for job in group {
                    let result = apply(&db, &settings, &[(job.key.as_deref(), &job.events)])
                        .await
                        .map(|mut r| r.remove(0))
                        .map_err(IngestError::from);
                    if let Ok(receipt) = &result {
                        publish(&updates, receipt);
                    }
                    let _ = job.reply.send(result);
                }
            }
            Err(error) => {
                tracing::error!(%error, "alert batch not stored");
                let _ = group.remove(0).reply.send(Err(error.into()));
            }
        }
    }
}

fn publish(updates: &broadcast::Sender<i32>, receipt: &Receipt) {
    for id in &receipt.incidents {
        let _ = updates.send(*id);
    }
}

/// One submission: its idempotency key, if any, and its events.
type Batch<'a> = (Option<&'a str>, &'a [AlertEvent]);

/// Applies every batch in one transaction; one receipt per batch.
async fn apply(
    db: &DatabaseConnection,
    settings: &IngestSettings,
    batches: &[Batch<'_>],
) -> Result<Vec<Receipt>, DbErr> {
    let txn = db.begin().await?;
    let now = Utc::now();
    let mut vaults = VaultCache::default();
    let mut receipts = Vec::with_capacity(batches.len());
    for (key, events) in batches {
        if let Some(key) = key {
            if ingest_receipt::Entity::find_by_id(key.to_string())
                .one(&txn)
                .await?
                .is_some()
            {
                receipts.push(Receipt {
                    accepted: events.len(),
                    incidents: Vec::new(),
                    duplicate: true,
                });
                continue;
            }
            ingest_receipt::ActiveModel {
                key: Set(key.to_string()),
                created_at: Set(now),
            }
            .insert(&txn)
            .await?;
        }
        let mut touched = Vec::new();
        for event in *events {
            if let Some(id) = apply_one(&txn, settings, &mut vaults, event, now).await?
                && !touched.contains(&id)
            {
                touched.push(id);
            }
        }
        receipts.push(Receipt {
            accepted: events.len(),
            incidents: touched,
            duplicate: false,
        });
    }
    vaults.save(&txn, &settings.key, now).await?;
    txn.commit().await?;
    Ok(receipts)
}

/// Open label maps of the incidents a transaction touches; sealed back before commit.
#[derive(Default)]
struct VaultCache {
    open: HashMap<i32, (Pseudonyms, bool, bool)>, // (names, existed, dirty)
}

impl VaultCache {
    async fn get(
        &mut self,
        conn: &impl ConnectionTrait,
        key: &VaultKey,
        incident_id: i32,
    ) -> Result<&mut Pseudonyms, DbErr> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.open.entry(incident_id) {
            let stored = incident_vault::Entity::find_by_id(incident_id)
                .one(conn)
                .await?;
            let entry = match stored {
                Some(row) => {
                    let names = Pseudonyms::open(&row.sealed, key, &vault_context(incident_id))
                        .map_err(|e| DbErr::Custom(format!("incident {incident_id}: {e}")))?;
                    (names, true, false)
                }
                None => (Pseudonyms::new(), false, false),
            };
            slot.insert(entry);
        }
        let (names, _, dirty) = self.open.get_mut(&incident_id).expect("inserted above");
        *dirty = true;
        Ok(names)
    }

    async fn save(
        self,
        conn: &impl ConnectionTrait,
        key: &VaultKey,
        now: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        for (incident_id, (names, existed, dirty)) in self.open {
            if !dirty {
                continue;
            }
            let row = incident_vault::ActiveModel {
                incident_id: Set(incident_id),
                sealed: Set(names.seal(key, &vault_context(incident_id))),
                updated_at: Set(now),
            };
            if existed {
                row.update(conn).await?;
            } else {
                row.insert(conn).await?;
            }
        }
        Ok(())
    }
}

fn vault_context(incident_id: i32) -> Vec<u8> {
    format!("awoooi-incident-{incident_id}").into_bytes()
}

fn redact_map(shield: &Shield, names: &mut Pseudonyms, map: &Labels) -> String {
    let redacted: Labels = map
        .iter()
        .map(|(k, v)| (shield.redact(k, names), shield.redact(v, names)))
        .collect();
    serde_json::to_string(&redacted).expect("string map serialises")
}

/// Applies one event; returns the incident it touched, if any.
async fn apply_one(
    conn: &impl ConnectionTrait,
    settings: &IngestSettings,
    vaults: &mut VaultCache,
    event: &AlertEvent,
    now: DateTime<Utc>,
) -> Result<Option<i32>, DbErr> {
    let firing = alert::Entity::find()
        .filter(alert::Column::Fingerprint.eq(&event.fingerprint))
        .filter(alert::Column::Status.eq(AlertStatus::Firing.as_str()))
        .order_by_desc(alert::Column::Id)
        .one(conn)
        .await?;
    match (event.status, firing) {
        // A repeat: count it, open nothing.
        (AlertStatus::Firing, Some(existing)) => {
            let incident_id = existing.incident_id;
            let count = existing.count.saturating_add(1);
            let mut row: alert::ActiveModel = existing.into();
            row.count = Set(count);
            row.last_seen = Set(now);
            row.update(conn).await?;
            touch_incident(conn, incident_id, now).await?;
            Ok(Some(incident_id))
        }
        (AlertStatus::Firing, None) => {
            let incident_id = correlate(conn, settings, vaults, event, now).await?;
            let names = vaults.get(conn, &settings.key, incident_id).await?;
            let shield = &settings.shield;
            alert::ActiveModel {
                incident_id: Set(incident_id),
                fingerprint: Set(event.fingerprint.clone()),
                source: Set(event.source.as_str().to_owned()),
                status: Set(AlertStatus::Firing.as_str().to_owned()),
                name: Set(shield.redact(&event.name, names)),
                severity: Set(event.severity.as_str().to_owned()),
                service: Set(event.service.as_deref().map(|s| shield.redact(s, names))),
                labels: Set(redact_map(shield, names, &event.labels)),
                annotations: Set(redact_map(shield, names, &event.annotations)),
                starts_at: Set(event.starts_at),
                ends_at: Set(event.ends_at),
                generator_url: Set(event
                    .generator_url
                    .as_deref()
                    .map(|u| shield.redact(u, names))),
                count: Set(1),
                first_seen: Set(now),
                last_seen: Set(now),
                ..Default::default()
            }
            .insert(conn)
            .await?;
            raise_severity(conn, incident_id, event.severity).await?;
            Ok(Some(incident_id))
        }
        (AlertStatus::Resolved, Some(existing)) => {
            let incident_id = existing.incident_id;
            let mut row: alert::ActiveModel = existing.into();
            row.status = Set(AlertStatus::Resolved.as_str().to_owned());
            row.ends_at = Set(Some(event.ends_at.unwrap_or(now)));
            row.last_seen = Set(now);
            row.update(conn).await?;
            resolve_if_quiet(conn, incident_id, now).await?;
            Ok(Some(incident_id))
        }
        // A resolution for nothing that fires: there is nothing to change.
        (AlertStatus::Resolved, None) => Ok(None),
    }
}

/// The open incident this event joins, or a new one.
async fn correlate(
    conn: &impl ConnectionTrait,
    settings: &IngestSettings,
    vaults: &mut VaultCache,
    event: &AlertEvent,
    now: DateTime<Utc>,
) -> Result<i32, DbErr> {
    // Alerts of one service correlate; service-less alerts correlate by name.
    let key = match &event.service {
        Some(service) => settings.key.digest("service", service),
        None => settings.key.digest("alertname", &event.name),
    };
    let open = incident::Entity::find()
        .filter(incident::Column::CorrelationKey.eq(&key))
        .filter(incident::Column::Status.ne(status::RESOLVED))
        .filter(incident::Column::LastAlertAt.gte(now - settings.correlation_window))
        .order_by_desc(incident::Column::Id)
        .one(conn)
        .await?;
    if let Some(found) = open {
        touch_incident(conn, found.id, now).await?;
        return Ok(found.id);
    }
    let created = incident::ActiveModel {
        title: Set(String::new()),
        service: Set(None),
        correlation_key: Set(key),
        severity: Set(event.severity.as_str().to_owned()),
        status: Set(status::OPEN.to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
        last_alert_at: Set(now),
        resolved_at: Set(None),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    // The title and service are pseudonymised with the new incident's own map.
    let names = vaults.get(conn, &settings.key, created.id).await?;
    let shield = &settings.shield;
    let title = match (description_of(&event.annotations), &event.service) {
        (Some(summary), _) => summary.to_owned(),
        (None, Some(service)) => format!("{} on {service}", event.name),
        (None, None) => event.name.clone(),
    };
    let mut row: incident::ActiveModel = created.into();
    row.title = Set(shield.redact(&title, names));
    row.service = Set(event.service.as_deref().map(|s| shield.redact(s, names)));
    let saved = row.update(conn).await?;
    Ok(saved.id)
}

async fn touch_incident(
    conn: &impl ConnectionTrait,
    incident_id: i32,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    incident::Entity::update_many()
        .col_expr(incident::Column::LastAlertAt, Expr::value(now))
        .col_expr(incident::Column::UpdatedAt, Expr::value(now))
        .filter(incident::Column::Id.eq(incident_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// An incident is as bad as its worst alert.
async fn raise_severity(
    conn: &impl ConnectionTrait,
    incident_id: i32,
    severity: Severity,
) -> Result<(), DbErr> {
    let Some(found) = incident::Entity::find_by_id(incident_id).one(conn).await? else {
        return Ok(());
    };
    let current = parse_severity(&found.severity);
    if severity > current {
        let mut row: incident::ActiveModel = found.into();
        row.severity = Set(severity.as_str().to_owned());
        row.update(conn).await?;
    }
    Ok(())
}

pub fn parse_severity(text: &str) -> Severity {
    match text {
        "CRITICAL" => Severity::Critical,
        "INFO" => Severity::Info,
        _ => Severity::Warning,
    }
}

/// RESOLVED once none of the incident's alerts fires.
async fn resolve_if_quiet(
    conn: &impl ConnectionTrait,
    incident_id: i32,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let still_firing = alert::Entity::find()
        .filter(alert::Column::IncidentId.eq(incident_id))
        .filter(alert::Column::Status.eq(AlertStatus::Firing.as_str()))
        .one(conn)
        .await?
        .is_some();
    if still_firing {
        return touch_incident(conn, incident_id, now).await;
    }
    incident::Entity::update_many()
        .col_expr(incident::Column::Status, Expr::value(status::RESOLVED))
        .col_expr(incident::Column::ResolvedAt, Expr::value(now))
        .col_expr(incident::Column::UpdatedAt, Expr::value(now))
        .filter(incident::Column::Id.eq(incident_id))
        .exec(conn)
        .await?;
    Ok(())
}
