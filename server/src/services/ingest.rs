//! Alerts in, incidents out: the durable, pseudonymising, correlating ingest pipeline.
//!
//! Every source (webhooks, GraphQL, streams) submits normalised [`AlertEvent`]s here. One writer
//! task applies them: concurrent submissions are grouped into one transaction (group commit, so
//! throughput does not pay one fsync per request), and each submitter is answered only after
//! that transaction committed. A failed group is retried request by request, so one bad request
//! cannot fail its neighbours. Nothing is stored in clear: names, labels, annotations and URLs
//! are pseudonymised with the incident's own label map, which is stored sealed.

pub mod streams;

pub use crate::base::vault::{load_names, store_names};

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use engine::alert::{AlertEvent, AlertStatus, Labels, Severity};
use engine::input::description_of;
use engine::shield::{Pseudonyms, Shield, VaultKey};
use entity::{alert, incident, ingest_receipt};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Set,
};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::base::bus::{Bus, Event};
use crate::base::incident::IncidentStatus;

use crate::services::notify::EventKind;
use engine::correlation::{Correlator, Group as CorrelationGroup, Rules, Verdict, Why};
use engine::topology::Topology;

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
    /// Alerts on services in the topology correlate along it (`engine::correlation`).
    pub topology: Arc<Topology>,
    pub rules: Rules,
}

impl IngestSettings {
    /// The keyed digest a service is known by in the database.
    fn service_digest(&self, service: &str) -> String {
        self.key.digest("service", service)
    }
}

/// The topology's services by their keyed digest (what incidents store).
fn digest_index(settings: &IngestSettings) -> HashMap<String, String> {
    settings
        .topology
        .services()
        .map(|s| (settings.service_digest(&s.name), s.name.clone()))
        .collect()
}

/// Handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    jobs: mpsc::Sender<Job>,
    bus: Bus,
    notes: broadcast::Sender<Note>,
}

/// A line for an incident's thinking stream from correlation (why an alert joined, a merge, a
/// new root cause), pseudonymised, sent after its transaction committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub incident_id: i32,
    pub kind: &'static str,
    pub text: String,
}

impl Ingest {
    /// Starts the writer task.
    pub fn start(db: DatabaseConnection, settings: IngestSettings, bus: Bus) -> Ingest {
        let (jobs, rx) = mpsc::channel(1024);
        let (notes, _) = broadcast::channel(4096);
        tokio::spawn(writer(db, settings, rx, bus.clone(), notes.clone()));
        Ingest { jobs, bus, notes }
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
        self.bus.incidents()
    }

    /// The event bus this pipeline (and every component holding it) publishes on.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Correlation's lines for the thinking streams, as their groups commit.
    pub fn subscribe_notes(&self) -> broadcast::Receiver<Note> {
        self.notes.subscribe()
    }

    /// Tells subscribers that `incident_id` changed outside the pipeline (e.g. analysed).
    pub fn notify(&self, incident_id: i32) {
        self.bus.publish(Event::Incident { id: incident_id });
    }
}

async fn writer(
    db: DatabaseConnection,
    settings: IngestSettings,
    mut rx: mpsc::Receiver<Job>,
    bus: Bus,
    notes: broadcast::Sender<Note>,
) {
    let index = digest_index(&settings);
    let publish = |receipt: &Receipt, said: Vec<Note>| {
        for id in &receipt.incidents {
            bus.publish(Event::Incident { id: *id });
        }
        for note in said {
            let _ = notes.send(note);
        }
    };
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
        match apply(&db, &settings, &index, &batches).await {
            Ok((receipts, said)) => {
                let mut said = Some(said);
                for (job, receipt) in group.into_iter().zip(receipts) {
                    publish(&receipt, said.take().unwrap_or_default());
                    let _ = job.reply.send(Ok(receipt));
                }
            }
            Err(error) if group.len() > 1 => {
                tracing::warn!(%error, requests = group.len(), "group commit failed; retrying one by one");
                for job in group {
                    let result =
                        apply(&db, &settings, &index, &[(job.key.as_deref(), &job.events)])
                            .await
                            .map_err(IngestError::from);
                    let result = match result {
                        Ok((mut receipts, said)) => {
                            let receipt = receipts.remove(0);
                            publish(&receipt, said);
                            Ok(receipt)
                        }
                        Err(e) => Err(e),
                    };
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

/// One submission: its idempotency key, if any, and its events.
type Batch<'a> = (Option<&'a str>, &'a [AlertEvent]);

/// Rows per `IN (…)` lookup.
const LOOKUP_CHUNK: usize = 500;

/// Applies every batch in one transaction; one receipt per batch.
///
/// The group is planned in memory — repeats, severities and touches accumulate per alert and
/// per incident — and written once per row at the end, so a busy group costs a handful of
/// statements per distinct alert rather than several per event.
/// The advisory lock key ingest flushes take on PostgreSQL (the audit chain has 7343657).
const INGEST_LOCK: i64 = 7343660;

async fn apply(
    db: &DatabaseConnection,
    settings: &IngestSettings,
    index: &HashMap<String, String>,
    batches: &[Batch<'_>],
) -> Result<(Vec<Receipt>, Vec<Note>), DbErr> {
    let txn = crate::base::db::begin_write(db).await?;
    if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        // Replicas take turns: each flush decides correlation (join, open, merge) on what the
        // others committed, so one service never gets two open incidents. SQLite's write lock
        // (taken by `begin_write`) already serialises its one replica.
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({INGEST_LOCK})"))
            .await?;
    }
    let mut group = Group::load(&txn, settings, index, batches).await?;
    let mut receipts = Vec::with_capacity(batches.len());
    for (key, events) in batches {
        if let Some(key) = key
            && !group.claim_key(key)
        {
            receipts.push(Receipt {
                accepted: events.len(),
                incidents: Vec::new(),
                duplicate: true,
            });
            continue;
        }
        let mut touched = Vec::new();
        for event in *events {
            if let Some(id) = group.apply(&txn, event).await?
                && !touched.contains(&id)
            {
                touched.push(id);
            }
            // Incidents merged away by this event changed too (now MERGED).
            for id in std::mem::take(&mut group.merged_now) {
                if !touched.contains(&id) {
                    touched.push(id);
                }
            }
        }
        receipts.push(Receipt {
            accepted: events.len(),
            incidents: touched,
            duplicate: false,
        });
    }
    let said = group.flush(&txn).await?;
    txn.commit().await?;
    Ok((receipts, said))
}

/// A firing alert known to this group: stored already, or inserted by it.
#[derive(Clone, Copy)]
struct Firing {
    id: i32,
    incident_id: i32,
}

/// What happens to one stored alert when the group is flushed.
#[derive(Default)]
struct AlertChange {
    repeats: i32,
    resolved_at: Option<DateTime<Utc>>,
    /// Fired again after resolving, within the window (flapping): firing once more.
    refired: bool,
}

/// What happens to one incident when the group is flushed.
struct IncidentChange {
    severity: Severity,
    severity_changed: bool,
    check_resolved: bool,
    /// Opened by this group (told once it is written).
    opened: bool,
}

struct Group<'a> {
    settings: &'a IngestSettings,
    index: &'a HashMap<String, String>,
    /// Open topology-correlated incidents, loaded on first need.
    groups: Option<Vec<CorrelationGroup>>,
    /// Incidents whose topology services changed (stored, root cause recomputed at flush).
    regrouped: std::collections::BTreeSet<i32>,
    /// Incidents merged away by the event being applied.
    merged_now: Vec<i32>,
    /// (incident, kind, text in clear) for the thinking streams; pseudonymised at flush.
    notes: Vec<(i32, &'static str, String)>,
    /// Alerts resolved within the window, by fingerprint: a repeat fires them again.
    recent: HashMap<String, Firing>,
    now: DateTime<Utc>,
    vaults: VaultCache,
    applied_keys: std::collections::HashSet<String>,
    new_keys: Vec<String>,
    firing: HashMap<String, Firing>,
    /// Correlation key → open incident, as far as this group knows.
    open: HashMap<String, i32>,
    alerts: std::collections::BTreeMap<i32, AlertChange>,
    incidents: std::collections::BTreeMap<i32, IncidentChange>,
}

impl<'a> Group<'a> {
    /// Reads what the group needs up front: applied keys and the firing alerts it refers to.
    async fn load(
        conn: &impl ConnectionTrait,
        settings: &'a IngestSettings,
        index: &'a HashMap<String, String>,
        batches: &[Batch<'_>],
    ) -> Result<Group<'a>, DbErr> {
        let keys: Vec<String> = batches
            .iter()
            .filter_map(|(k, _)| k.map(str::to_owned))
            .collect();
        let mut applied_keys = std::collections::HashSet::new();
        for chunk in keys.chunks(LOOKUP_CHUNK) {
            for row in ingest_receipt::Entity::find()
                .filter(ingest_receipt::Column::Key.is_in(chunk.iter().cloned()))
                .all(conn)
                .await?
            {
                applied_keys.insert(row.key);
            }
        }
        let mut fingerprints: Vec<&str> = batches
            .iter()
            .flat_map(|(_, events)| events.iter().map(|e| e.fingerprint.as_str()))
            .collect();
        fingerprints.sort_unstable();
        fingerprints.dedup();
        let now = Utc::now();
        let mut firing = HashMap::new();
        let mut recent = HashMap::new();
        for chunk in fingerprints.chunks(LOOKUP_CHUNK) {
            let rows = alert::Entity::find()
                .filter(alert::Column::Status.eq(AlertStatus::Resolved.as_str()))
                .filter(alert::Column::Fingerprint.is_in(chunk.iter().copied()))
                .filter(alert::Column::LastSeen.gte(now - settings.correlation_window))
                .order_by_asc(alert::Column::Id)
                .all(conn)
                .await?;
            for row in rows {
                recent.insert(
                    row.fingerprint,
                    Firing {
                        id: row.id,
                        incident_id: row.incident_id,
                    },
                );
            }
            let rows = alert::Entity::find()
                .filter(alert::Column::Status.eq(AlertStatus::Firing.as_str()))
                .filter(alert::Column::Fingerprint.is_in(chunk.iter().copied()))
                .order_by_asc(alert::Column::Id)
                .all(conn)
                .await?;
            for row in rows {
                // Newest wins, as a lookup by fingerprint would.
                firing.insert(
                    row.fingerprint,
                    Firing {
                        id: row.id,
                        incident_id: row.incident_id,
                    },
                );
            }
        }
        // A fingerprint firing now is not flapping.
        recent.retain(|fp, _| !firing.contains_key(fp));
        Ok(Group {
            settings,
            index,
            groups: None,
            regrouped: Default::default(),
            merged_now: Vec::new(),
            notes: Vec::new(),
            recent,
            now,
            vaults: VaultCache::default(),
            applied_keys,
            new_keys: Vec::new(),
            firing,
            open: HashMap::new(),
            alerts: Default::default(),
            incidents: Default::default(),
        })
    }

    /// False when `key` was applied before (in an earlier commit or earlier in this group).
    fn claim_key(&mut self, key: &str) -> bool {
        if !self.applied_keys.insert(key.to_owned()) {
            return false;
        }
        self.new_keys.push(key.to_owned());
        true
    }

    async fn incident(
        &mut self,
        conn: &impl ConnectionTrait,
        id: i32,
    ) -> Result<&mut IncidentChange, DbErr> {
        if let std::collections::btree_map::Entry::Vacant(slot) = self.incidents.entry(id) {
            let severity = incident::Entity::find_by_id(id)
                .one(conn)
                .await?
                .map(|i| i.severity)
                .unwrap_or(Severity::Info);
            slot.insert(IncidentChange {
                severity,
                severity_changed: false,
                check_resolved: false,
                opened: false,
            });
        }
        Ok(self.incidents.get_mut(&id).expect("inserted above"))
    }

    /// Plans one event; returns the incident it touched, if any.
    async fn apply(
        &mut self,
        conn: &impl ConnectionTrait,
        event: &AlertEvent,
    ) -> Result<Option<i32>, DbErr> {
        let known = self.firing.get(&event.fingerprint).copied();
        match (event.status, known) {
            // A repeat: count it, open nothing.
            (AlertStatus::Firing, Some(found)) => {
                self.alerts.entry(found.id).or_default().repeats += 1;
                self.incident(conn, found.incident_id).await?;
                Ok(Some(found.incident_id))
            }
            (AlertStatus::Firing, None) if self.recent.contains_key(&event.fingerprint) => {
                // Flapping: it resolved within the window and fires again — same alert, same
                // incident (reopened if that was its last alert).
                let again = self
                    .recent
                    .remove(&event.fingerprint)
                    .expect("checked above");
                let change = self.alerts.entry(again.id).or_default();
                change.refired = true;
                change.resolved_at = None;
                change.repeats += 1;
                self.firing.insert(event.fingerprint.clone(), again);
                self.reopen(conn, again.incident_id).await?;
                let incident = self.incident(conn, again.incident_id).await?;
                incident.check_resolved = false;
                if event.severity > incident.severity {
                    incident.severity = event.severity;
                    incident.severity_changed = true;
                }
                self.notes.push((
                    again.incident_id,
                    "correlation",
                    format!(
                        "{} fired again within the correlation window: flapping, kept in this incident",
                        event.name
                    ),
                ));
                Ok(Some(again.incident_id))
            }
            (AlertStatus::Firing, None) => {
                let incident_id = self.correlate(conn, event).await?;
                let id = self.insert_alert(conn, incident_id, event).await?;
                self.firing
                    .insert(event.fingerprint.clone(), Firing { id, incident_id });
                let change = self.incident(conn, incident_id).await?;
                if event.severity > change.severity {
                    change.severity = event.severity;
                    change.severity_changed = true;
                }
                Ok(Some(incident_id))
            }
            (AlertStatus::Resolved, Some(found)) => {
                self.firing.remove(&event.fingerprint);
                // Resolved here: a repeat later in this group is flapping too.
                self.recent.insert(event.fingerprint.clone(), found);
                self.alerts.entry(found.id).or_default().resolved_at =
                    Some(event.ends_at.unwrap_or(self.now));
                self.incident(conn, found.incident_id).await?.check_resolved = true;
                Ok(Some(found.incident_id))
            }
            // A resolution for nothing that fires: there is nothing to change.
            (AlertStatus::Resolved, None) => Ok(None),
        }
    }

    async fn insert_alert(
        &mut self,
        conn: &impl ConnectionTrait,
        incident_id: i32,
        event: &AlertEvent,
    ) -> Result<i32, DbErr> {
        let names = self
            .vaults
            .get(conn, &self.settings.key, incident_id)
            .await?;
        let shield = &self.settings.shield;
        let now = self.now;
        let row = alert::ActiveModel {
            incident_id: Set(incident_id),
            fingerprint: Set(event.fingerprint.clone()),
            source: Set(event.source.as_str().to_owned()),
            status: Set(AlertStatus::Firing),
            name: Set(shield.redact(&event.name, names)),
            severity: Set(event.severity),
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
        };
        Ok(alert::Entity::insert(row).exec(conn).await?.last_insert_id)
    }

    /// The open incident this event joins, or a new one.
    async fn correlate(
        &mut self,
        conn: &impl ConnectionTrait,
        event: &AlertEvent,
    ) -> Result<i32, DbErr> {
        if let Some(service) = &event.service
            && self.settings.topology.contains(service)
        {
            return self.correlate_topology(conn, event, service).await;
        }
        // Alerts of one service correlate; service-less alerts correlate by name.
        let key = match &event.service {
            Some(service) => self.settings.key.digest("service", service),
            None => self.settings.key.digest("alertname", &event.name),
        };
        if let Some(id) = self.open.get(&key) {
            return Ok(*id);
        }
        let found = incident::Entity::find()
            .filter(incident::Column::CorrelationKey.eq(&key))
            .filter(
                incident::Column::Status
                    .is_not_in([IncidentStatus::Resolved, IncidentStatus::Merged]),
            )
            .filter(incident::Column::LastAlertAt.gte(self.now - self.settings.correlation_window))
            .order_by_desc(incident::Column::Id)
            .one(conn)
            .await?;
        let id = match found {
            Some(open) => open.id,
            None => self.open_incident(conn, &key, event).await?,
        };
        self.open.insert(key, id);
        Ok(id)
    }

    /// The open incident a topology service's alert joins (`engine::correlation`), or a new
    /// one; merges the incidents it reveals to share a root cause.
    async fn correlate_topology(
        &mut self,
        conn: &impl ConnectionTrait,
        event: &AlertEvent,
        service: &str,
    ) -> Result<i32, DbErr> {
        let settings = self.settings;
        if self.groups.is_none() {
            self.groups = Some(self.load_groups(conn).await?);
        }
        let scope = vec![settings.key.digest(
            "scope",
            &settings.rules.scope_of(&event.labels).join("\u{1f}"),
        )];
        let correlator = Correlator::new(&settings.topology, &settings.rules);
        let verdict = correlator.decide(
            self.groups.as_deref().unwrap_or_default(),
            service,
            &scope,
            self.now,
        );
        let id = match verdict {
            Verdict::New => {
                let key = settings.service_digest(service);
                let id = self.open_incident(conn, &key, event).await?;
                self.groups
                    .get_or_insert_default()
                    .push(CorrelationGroup::new(
                        i64::from(id),
                        self.now,
                        self.now,
                        scope,
                    ));
                id
            }
            Verdict::Join { id, why } => {
                let id = id as i32;
                if why != Why::SameService {
                    self.notes.push((id, "correlation", why.explain(service)));
                }
                id
            }
            Verdict::Merge { into, merged, why } => {
                let into = into as i32;
                for other in merged {
                    self.merge(conn, into, other as i32, &why.explain(service))
                        .await?;
                }
                into
            }
        };
        let group = self
            .groups
            .get_or_insert_default()
            .iter_mut()
            .find(|g| g.id == i64::from(id))
            .expect("the incident's group is known");
        // Stored (and the root cause recomputed) only when the incident's services changed.
        if correlator.add(group, [service.to_owned()]) {
            self.regrouped.insert(id);
        }
        group.last_alert_at = self.now;
        Ok(id)
    }

    /// Opens a RESOLVED incident again at once, so the rest of this group sees it open (an
    /// alert on its service joins it instead of opening a twin).
    async fn reopen(&mut self, conn: &impl ConnectionTrait, id: i32) -> Result<(), DbErr> {
        let reopened = incident::Entity::update_many()
            .col_expr(incident::Column::Status, Expr::value(IncidentStatus::Open))
            .col_expr(
                incident::Column::ResolvedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(incident::Column::Id.eq(id))
            .filter(incident::Column::Status.eq(IncidentStatus::Resolved))
            .exec(conn)
            .await?
            .rows_affected;
        if reopened == 0 {
            return Ok(());
        }
        if let Some(row) = incident::Entity::find_by_id(id).one(conn).await? {
            self.open.insert(row.correlation_key.clone(), id);
            let topological = row.topology_services != "[]";
            if let Some(groups) = &mut self.groups
                && topological
                && !groups.iter().any(|g| g.id == i64::from(id))
            {
                let correlator = Correlator::new(&self.settings.topology, &self.settings.rules);
                groups.push(group_of(&correlator, self.index, row));
            }
        }
        Ok(())
    }

    /// Open incidents correlated along the topology whose last alert is within the window.
    async fn load_groups(
        &self,
        conn: &impl ConnectionTrait,
    ) -> Result<Vec<CorrelationGroup>, DbErr> {
        let rows = incident::Entity::find()
            .filter(
                incident::Column::Status
                    .is_not_in([IncidentStatus::Resolved, IncidentStatus::Merged]),
            )
            .filter(incident::Column::LastAlertAt.gte(self.now - self.settings.correlation_window))
            .filter(incident::Column::TopologyServices.ne("[]"))
            .all(conn)
            .await?;
        let correlator = Correlator::new(&self.settings.topology, &self.settings.rules);
        Ok(rows
            .into_iter()
            .map(|row| group_of(&correlator, self.index, row))
            .collect())
    }

    /// Merges incident `other` into `into`: its alerts move over, relabelled with `into`'s
    /// pseudonyms; it becomes MERGED with a link to `into` (and `into` lists it). Its
    /// approvals, analysis and thinking stay with it, under its own labels, and `into` shows
    /// them.
    async fn merge(
        &mut self,
        conn: &impl ConnectionTrait,
        into: i32,
        other: i32,
        why: &str,
    ) -> Result<(), DbErr> {
        let key = &self.settings.key;
        let from = self.vaults.get(conn, key, other).await?.clone();
        let moved = alert::Entity::find()
            .filter(alert::Column::IncidentId.eq(other))
            .all(conn)
            .await?;
        let names = self.vaults.get(conn, key, into).await?;
        for row in &moved {
            let relabel = |text: &str, names: &mut Pseudonyms| from.relabel(text, names);
            let mut update: alert::ActiveModel = row.clone().into();
            update.incident_id = Set(into);
            update.name = Set(relabel(&row.name, names));
            update.service = Set(row.service.as_deref().map(|s| relabel(s, names)));
            update.labels = Set(relabel(&row.labels, names));
            update.annotations = Set(relabel(&row.annotations, names));
            update.generator_url = Set(row.generator_url.as_deref().map(|u| relabel(u, names)));
            update.update(conn).await?;
        }
        let now = self.now;
        incident::Entity::update_many()
            .col_expr(
                incident::Column::Status,
                Expr::value(IncidentStatus::Merged),
            )
            .col_expr(incident::Column::MergedInto, Expr::value(into))
            .col_expr(incident::Column::UpdatedAt, Expr::value(now))
            .filter(incident::Column::Id.eq(other))
            .exec(conn)
            .await?;
        // Whatever had been merged into it now belongs to the survivor directly.
        incident::Entity::update_many()
            .col_expr(incident::Column::MergedInto, Expr::value(into))
            .filter(incident::Column::MergedInto.eq(other))
            .exec(conn)
            .await?;
        // The plan follows: its alerts, its services, its severity are the survivor's now.
        for firing in self.firing.values_mut().chain(self.recent.values_mut()) {
            if firing.incident_id == other {
                firing.incident_id = into;
            }
        }
        for id in self.open.values_mut() {
            if *id == other {
                *id = into;
            }
        }
        let absorbed = self.incidents.remove(&other);
        let other_severity = match absorbed {
            Some(change) => change.severity,
            None => incident::Entity::find_by_id(other)
                .one(conn)
                .await?
                .map_or(Severity::Info, |i| i.severity),
        };
        let change = self.incident(conn, into).await?;
        if other_severity > change.severity {
            change.severity = other_severity;
            change.severity_changed = true;
        }
        if let Some(groups) = &mut self.groups {
            let services: Vec<String> = groups
                .iter()
                .filter(|g| g.id == i64::from(other))
                .flat_map(|g| g.services().iter().cloned())
                .collect();
            groups.retain(|g| g.id != i64::from(other));
            if let Some(survivor) = groups.iter_mut().find(|g| g.id == i64::from(into)) {
                Correlator::new(&self.settings.topology, &self.settings.rules)
                    .add(survivor, services);
            }
        }
        self.regrouped.remove(&other);
        self.regrouped.insert(into);
        self.merged_now.push(other);
        self.notes.push((
            into,
            "correlation",
            format!(
                "Merged incident #{other} into this one ({} alert(s) moved): {why}",
                moved.len()
            ),
        ));
        self.notes.push((
            other,
            "correlation",
            format!("Merged into incident #{into}: {why}"),
        ));
        Ok(())
    }

    async fn open_incident(
        &mut self,
        conn: &impl ConnectionTrait,
        key: &str,
        event: &AlertEvent,
    ) -> Result<i32, DbErr> {
        let now = self.now;
        let created = incident::ActiveModel {
            title: Set(String::new()),
            service: Set(None),
            correlation_key: Set(key.to_owned()),
            severity: Set(event.severity),
            status: Set(IncidentStatus::Open),
            created_at: Set(now),
            updated_at: Set(now),
            last_alert_at: Set(now),
            resolved_at: Set(None),
            ..Default::default()
        }
        .insert(conn)
        .await?;
        // The title and service are pseudonymised with the new incident's own map.
        let names = self
            .vaults
            .get(conn, &self.settings.key, created.id)
            .await?;
        let shield = &self.settings.shield;
        let title = match (description_of(&event.annotations), &event.service) {
            (Some(summary), _) => summary.to_owned(),
            (None, Some(service)) => format!("{} on {service}", event.name),
            (None, None) => event.name.clone(),
        };
        let id = created.id;
        let mut row: incident::ActiveModel = created.into();
        row.title = Set(shield.redact(&title, names));
        row.service = Set(event.service.as_deref().map(|s| shield.redact(s, names)));
        row.update(conn).await?;
        self.incidents.insert(
            id,
            IncidentChange {
                severity: event.severity,
                severity_changed: false,
                check_resolved: false,
                opened: true,
            },
        );
        Ok(id)
    }

    /// Writes the plan: one statement per changed alert and per touched incident.
    /// Returns the notes for the thinking streams, pseudonymised, to send after commit.
    async fn flush(mut self, conn: &impl ConnectionTrait) -> Result<Vec<Note>, DbErr> {
        let now = self.now;
        self.flush_groups(conn).await?;
        for (id, change) in &self.alerts {
            let mut update = alert::Entity::update_many()
                .col_expr(alert::Column::LastSeen, Expr::value(now))
                .filter(alert::Column::Id.eq(*id));
            if change.repeats > 0 {
                update = update.col_expr(
                    alert::Column::Count,
                    Expr::col(alert::Column::Count).add(change.repeats),
                );
            }
            if let Some(ends_at) = change.resolved_at {
                update = update
                    .col_expr(
                        alert::Column::Status,
                        Expr::value(AlertStatus::Resolved.as_str()),
                    )
                    .col_expr(alert::Column::EndsAt, Expr::value(ends_at));
            } else if change.refired {
                update = update
                    .col_expr(
                        alert::Column::Status,
                        Expr::value(AlertStatus::Firing.as_str()),
                    )
                    .col_expr(
                        alert::Column::EndsAt,
                        Expr::value(Option::<DateTime<Utc>>::None),
                    );
            }
            update.exec(conn).await?;
        }
        for (id, change) in &self.incidents {
            let mut update = incident::Entity::update_many()
                .col_expr(incident::Column::LastAlertAt, Expr::value(now))
                .col_expr(incident::Column::UpdatedAt, Expr::value(now))
                .filter(incident::Column::Id.eq(*id));
            if change.severity_changed {
                update = update.col_expr(
                    incident::Column::Severity,
                    Expr::value(change.severity.as_str()),
                );
            }
            // RESOLVED once none of its alerts fires.
            let resolved = change.check_resolved
                && alert::Entity::find()
                    .filter(alert::Column::IncidentId.eq(*id))
                    .filter(alert::Column::Status.eq(AlertStatus::Firing.as_str()))
                    .one(conn)
                    .await?
                    .is_none();
            if resolved {
                update = update
                    .col_expr(
                        incident::Column::Status,
                        Expr::value(IncidentStatus::Resolved),
                    )
                    .col_expr(incident::Column::ResolvedAt, Expr::value(now));
            }
            update.exec(conn).await?;
            // Told in the same transaction: the event exists exactly when the change does.
            if change.opened {
                crate::services::notify::enqueue_in(
                    conn,
                    EventKind::IncidentOpened,
                    Some(*id),
                    None,
                    "alerts",
                )
                .await?;
            }
            if resolved {
                crate::services::notify::enqueue_in(
                    conn,
                    EventKind::IncidentResolved,
                    Some(*id),
                    None,
                    "alerts",
                )
                .await?;
            }
        }
        if !self.new_keys.is_empty() {
            for chunk in self.new_keys.chunks(LOOKUP_CHUNK) {
                ingest_receipt::Entity::insert_many(chunk.iter().map(|key| {
                    ingest_receipt::ActiveModel {
                        key: Set(key.clone()),
                        created_at: Set(now),
                    }
                }))
                .exec(conn)
                .await?;
            }
        }
        let mut said = Vec::with_capacity(self.notes.len());
        for (incident_id, kind, text) in std::mem::take(&mut self.notes) {
            let names = self
                .vaults
                .get(conn, &self.settings.key, incident_id)
                .await?;
            said.push(Note {
                incident_id,
                kind,
                text: self.settings.shield.redact(&text, names),
            });
        }
        self.vaults.save(conn, &self.settings.key, now).await?;
        Ok(said)
    }

    /// Stores the topology services and scope of every regrouped incident, and its root
    /// cause (the incident's `service`) when that changed, saying so in its thinking stream.
    async fn flush_groups(&mut self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        let settings = self.settings;
        for id in std::mem::take(&mut self.regrouped) {
            let Some(group) = self
                .groups
                .as_ref()
                .and_then(|gs| gs.iter().find(|g| g.id == i64::from(id)))
            else {
                continue;
            };
            let digests: Vec<String> = group
                .services()
                .iter()
                .map(|s| settings.service_digest(s))
                .collect();
            let root = group.roots().first().cloned();
            let scope = group.scope.first().cloned();
            let current = incident::Entity::find_by_id(id).one(conn).await?;
            let mut update = incident::Entity::update_many()
                .col_expr(
                    incident::Column::TopologyServices,
                    Expr::value(serde_json::to_string(&digests).expect("digests serialise")),
                )
                .col_expr(incident::Column::Scope, Expr::value(scope))
                .filter(incident::Column::Id.eq(id));
            if let Some(root) = root {
                let names = self.vaults.get(conn, &settings.key, id).await?;
                let labelled = settings.shield.redact(&root, names);
                if current.and_then(|c| c.service).as_deref() != Some(labelled.as_str()) {
                    update = update.col_expr(incident::Column::Service, Expr::value(labelled));
                    let kind = settings
                        .topology
                        .kind_of(&root)
                        .map_or("SERVICE".to_owned(), |k| format!("{k:?}").to_uppercase());
                    if group.services().len() > 1 {
                        self.notes.push((
                            id,
                            "correlation",
                            format!(
                                "Root cause is now {root} ({kind}): no other alerting service of this incident is below it"
                            ),
                        ));
                    }
                }
            }
            update.exec(conn).await?;
        }
        Ok(())
    }
}

/// An incident as correlation sees it: its stored digests mapped back to topology names.
fn group_of(
    correlator: &Correlator<'_>,
    index: &HashMap<String, String>,
    row: incident::Model,
) -> CorrelationGroup {
    let mut group = CorrelationGroup::new(
        i64::from(row.id),
        row.created_at,
        row.last_alert_at,
        vec![row.scope.unwrap_or_default()],
    );
    let services = serde_json::from_str::<Vec<String>>(&row.topology_services).unwrap_or_default();
    correlator.add(
        &mut group,
        services.iter().filter_map(|d| index.get(d).cloned()),
    );
    group
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
            let entry = match load_names(conn, key, incident_id, true).await? {
                Some(names) => (names, true, false),
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
            store_names(conn, key, incident_id, &names, existed, now).await?;
        }
        Ok(())
    }
}

fn redact_map(shield: &Shield, names: &mut Pseudonyms, map: &Labels) -> String {
    let redacted: Labels = map
        .iter()
        .map(|(k, v)| (shield.redact(k, names), shield.redact(v, names)))
        .collect();
    serde_json::to_string(&redacted).expect("string map serialises")
}
