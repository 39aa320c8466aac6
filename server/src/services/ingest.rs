//! Alerts in, incidents out: the durable, pseudonymising, correlating ingest pipeline.
//!
//! Every source (webhooks, GraphQL, streams) submits normalised [`AlertEvent`]s here. One writer
//! task applies them: concurrent submissions are grouped into one transaction (group commit, so
//! throughput does not pay one fsync per request), and each submitter is answered only after
//! that transaction committed. A failed group is retried request by request, so one bad request
//! cannot fail its neighbours. Nothing is stored in clear: names, labels, annotations and URLs
//! are pseudonymised with the incident's own label map, which is stored sealed.

mod correlate;
mod flush;
mod group;
pub mod kafka;
pub mod streams;

use crate::base::vault;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use engine::alert::{AlertEvent, AlertStatus, Labels, Severity};
use engine::input::description_of;
use engine::shield::{Mark, Pseudonyms, Shield, VaultKey};
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
    /// Events a silence held back (stored and counted; they open nothing).
    pub silenced: usize,
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
    let mut maps = OpenMaps::default();
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
        match apply(&db, &settings, &index, &batches, std::mem::take(&mut maps)).await {
            Ok((receipts, said, kept)) => {
                maps = kept;
                let mut said = Some(said);
                for (job, receipt) in group.into_iter().zip(receipts) {
                    publish(&receipt, said.take().unwrap_or_default());
                    let _ = job.reply.send(Ok(receipt));
                }
            }
            Err(error) if group.len() > 1 => {
                tracing::warn!(%error, requests = group.len(), "group commit failed; retrying one by one");
                for job in group {
                    let batch = [(job.key.as_deref(), job.events.as_slice())];
                    let result = apply(&db, &settings, &index, &batch, std::mem::take(&mut maps))
                        .await
                        .map_err(IngestError::from);
                    let result = match result {
                        Ok((mut receipts, said, kept)) => {
                            maps = kept;
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
    maps: OpenMaps,
) -> Result<(Vec<Receipt>, Vec<Note>, OpenMaps), DbErr> {
    let txn = crate::base::db::begin_write(db).await?;
    if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        // Replicas take turns: each flush decides correlation (join, open, merge) on what the
        // others committed, so one service never gets two open incidents. SQLite's write lock
        // (taken by `begin_write`) already serialises its one replica.
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({INGEST_LOCK})"))
            .await?;
    }
    let mut group = Group::load(&txn, settings, index, batches, maps).await?;
    let mut receipts = Vec::with_capacity(batches.len());
    for (key, events) in batches {
        if let Some(key) = key
            && !group.claim_key(key)
        {
            receipts.push(Receipt {
                accepted: events.len(),
                incidents: Vec::new(),
                duplicate: true,
                silenced: 0,
            });
            continue;
        }
        let mut touched = Vec::new();
        let silenced_before = group.silenced;
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
            silenced: group.silenced - silenced_before,
        });
    }
    let (said, maps) = group.flush(&txn).await?;
    txn.commit().await?;
    Ok((receipts, said, maps))
}

/// A firing alert known to this group: stored already, or opened by it (a planned id, see
/// [`planned`]).
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
    /// Silences in force, read once per group.
    silences: Vec<crate::services::oncall::silences::Holding>,
    /// Events held back by a silence so far.
    silenced: usize,
    /// Stored severities of the incidents the loaded alerts belong to.
    severities: HashMap<i32, Severity>,
    /// Alerts this group opens, inserted together at flush; until then an opened alert is
    /// known by a planned id, `-(index + 1)` (see [`planned`]).
    pending: Vec<alert::Model>,
}

/// The index in [`Group::pending`] of an alert this group opens, from its planned id.
fn planned(id: i32) -> Option<usize> {
    usize::try_from(-i64::from(id) - 1).ok()
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

/// Label maps the writer opened in earlier groups, by incident, with the revision they were
/// read or stored at. A group that finds the vault still at that revision reuses the open map
/// instead of reading and opening it again, and one that finds later stores (a comment, another
/// replica) opens only their segments; reading and opening whole maps was most of the writer's
/// work once maps grow. Kept only after a commit: a failed group drops them.
#[derive(Default)]
struct OpenMaps(HashMap<i32, (vault::Revision, Pseudonyms)>);

/// Most label maps kept open between groups: the incidents of a storm, while bounding memory
/// (a map of a few hundred labels is some tens of kilobytes open).
const OPEN_MAPS: usize = 256;

/// A label map a group opened: the map, where the vault stood when it was read (none: no row
/// yet) and the map's mark then (a map only grows: stored again only if it did).
struct Opened {
    names: Pseudonyms,
    at: Option<vault::Revision>,
    mark: Mark,
}

/// Open label maps of the incidents a transaction touches; stored before commit.
#[derive(Default)]
struct VaultCache {
    open: HashMap<i32, Opened>,
    earlier: OpenMaps,
}

impl VaultCache {
    fn new(earlier: OpenMaps) -> VaultCache {
        VaultCache {
            open: HashMap::new(),
            earlier,
        }
    }

    async fn get(
        &mut self,
        conn: &impl ConnectionTrait,
        key: &VaultKey,
        incident_id: i32,
    ) -> Result<&mut Pseudonyms, DbErr> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.open.entry(incident_id) {
            // Where the vault stands is read (and on PostgreSQL locked) every time: another
            // replica or another part of this one may have added labels since.
            let at = vault::head(conn, incident_id, true).await?;
            let mut earlier = self.earlier.0.remove(&incident_id);
            if let (Some(now), Some((then, names))) = (at, earlier.as_mut())
                && *then != now
                && !vault::catch_up(conn, key, incident_id, names, then.revision, now).await?
            {
                earlier = None;
            }
            let names = match (at, earlier) {
                (None, _) => Pseudonyms::new(),
                (Some(_), Some((_, names))) => names,
                (Some(_), None) => match vault::load(conn, key, incident_id, true).await? {
                    Some(stored) => stored.names,
                    None => Pseudonyms::new(),
                },
            };
            slot.insert(Opened {
                mark: names.mark(),
                names,
                at,
            });
        }
        Ok(&mut self
            .open
            .get_mut(&incident_id)
            .expect("inserted above")
            .names)
    }

    /// Stores the maps that gained labels; returns the maps to keep open for the next group
    /// (this group's first, then earlier ones, up to [`OPEN_MAPS`]).
    async fn save(
        self,
        conn: &impl ConnectionTrait,
        key: &VaultKey,
        now: DateTime<Utc>,
    ) -> Result<OpenMaps, DbErr> {
        let mut kept = HashMap::with_capacity(self.open.len().min(OPEN_MAPS));
        for (incident_id, opened) in self.open {
            let at = if opened.names.mark() != opened.mark {
                let before = opened.at.map(|at| (at, opened.mark));
                Some(vault::store(conn, key, incident_id, &opened.names, before, now).await?)
            } else {
                opened.at
            };
            if let Some(at) = at
                && kept.len() < OPEN_MAPS
            {
                kept.insert(incident_id, (at, opened.names));
            }
        }
        for (incident_id, entry) in self.earlier.0 {
            if kept.len() >= OPEN_MAPS {
                break;
            }
            kept.entry(incident_id).or_insert(entry);
        }
        Ok(OpenMaps(kept))
    }
}

fn redact_map(shield: &Shield, names: &mut Pseudonyms, map: &Labels) -> String {
    let redacted: Labels = map
        .iter()
        .map(|(k, v)| (shield.redact(k, names), shield.redact(v, names)))
        .collect();
    serde_json::to_string(&redacted).expect("string map serialises")
}

/// `[ingest]`, as the file gives it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileIngestConfig {
    pub correlation_window_minutes: Option<u32>,
    /// Hops along the topology an alert may be from an incident's services (default 3).
    pub correlation_depth: Option<u32>,
    /// Labels whose values alerts must share to join one incident (default namespace, cluster).
    pub correlation_labels: Option<Vec<String>>,
    pub max_body_bytes: Option<usize>,
    pub webhook_secret: Option<String>,
}
