//! Approvals in the database: proposing an action (risk, trust, dry-run), signing, expiry, and
//! the TOCTOU re-check and execution. The rules are `engine::policy`; this module makes them
//! hold with concurrent signers, executors and replicas:
//!
//! - every status change is `UPDATE … WHERE id = ? AND version = ?` (signatures) or
//!   `… AND status = 'APPROVED'` (execution); the loser of a race re-reads or gives up;
//! - `(approval_id, signer)` and `executions.approval_id` are unique, so a signature cannot be
//!   counted twice and an approval cannot run twice, even past this code;
//! - each change and its audit event commit in one transaction.

mod execute;
pub mod executor;
mod sign;
mod supersede;
mod view;

pub use executor::{Blast, ExecError, Executor, Handles, Registry};
pub use view::ApprovalView;
use view::request_of;

use std::sync::Arc;

use chrono::Utc;
use engine::dryrun::{CheckName, DryRunCheck, DryRunReport};
use engine::policy::{self, ActionRequest, ApprovalStatus, PolicyError};
use engine::shield::boundary::Boundary;
use engine::shield::{Shield, VaultKey};
use engine::topology::Topology;
use entity::{approval, incident, trust_score};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, Set,
};
use serde_json::json;
use tokio::sync::broadcast;

use crate::base::bus::{Bus, Event};
use crate::base::cluster::SimulatedCluster;
use crate::base::incident::IncidentStatus;
use crate::base::vault::load_names;
use crate::services::knowledge::KmWriter;
use crate::services::notify::{self, EventKind};

/// `[approvals]`: the policy table, how long a PENDING approval waits, the blast-radius
/// limit of the dry-run.
#[derive(Debug, Clone)]
pub struct ApprovalsConfig {
    pub policy: engine::policy::PolicyTable,
    pub expiry: chrono::Duration,
    pub blast_limit: usize,
    /// How long an execution's claim lasts unless the server running it renews it (it does,
    /// every third of this, while the executor works). A RUNNING execution whose lease ran out
    /// was interrupted and ends FAILED.
    pub execution_lease: chrono::Duration,
}

impl ApprovalsConfig {
    /// What the audit trail records of the policy in force.
    pub fn audit_details(&self) -> serde_json::Value {
        json!({
            "policy": self.policy,
            "expiry_minutes": self.expiry.num_minutes(),
            "blast_limit": self.blast_limit,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("approval {0} not found")]
    NotFound(i32),
    #[error("incident {0} not found")]
    IncidentNotFound(i32),
    /// The caller may not do this (role, four-eyes).
    #[error("{0}")]
    Forbidden(String),
    /// The approval is not in a state that allows it (already signed, closed, expired…).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl From<PolicyError> for ApprovalError {
    fn from(error: PolicyError) -> Self {
        match error {
            PolicyError::OwnRequest | PolicyError::NotEligible { .. } => {
                ApprovalError::Forbidden(error.to_string())
            }
            _ => ApprovalError::Conflict(error.to_string()),
        }
    }
}

/// An action proposed for approval under an incident; `request.requested_by` is the requester
/// (never a signer of it).
pub struct NewApproval {
    pub incident_id: i32,
    pub request: ActionRequest,
    pub rationale: String,
    /// A FinOps fix: what it saves. Its incident resolves when it executes.
    pub finops: Option<engine::finops::Saving>,
}

struct Inner {
    db: DatabaseConnection,
    config: ApprovalsConfig,
    topology: Arc<Topology>,
    executors: Registry,
    shield: Arc<Shield>,
    key: VaultKey,
    bus: Bus,
    knowledge: KmWriter,
}

/// The approvals service; cheap to clone.
#[derive(Clone)]
pub struct Approvals(Arc<Inner>);

const MAX_FIELD: usize = 253;

/// The requester of what the Brain proposes: no person, so every eligible person may sign.
pub const SYSTEM_REQUESTER: &str = "awoooi";

impl Approvals {
    /// The knowledge writer approvals record executions with.
    pub fn knowledge(&self) -> &KmWriter {
        &self.0.knowledge
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: DatabaseConnection,
        config: ApprovalsConfig,
        topology: Arc<Topology>,
        executors: Registry,
        shield: Arc<Shield>,
        key: VaultKey,
        bus: Bus,
        knowledge: KmWriter,
    ) -> Approvals {
        Approvals(Arc::new(Inner {
            db,
            config,
            topology,
            executors,
            shield,
            key,
            bus,
            knowledge,
        }))
    }

    /// The simulated cluster, when that is where cluster actions go.
    pub fn simulated_cluster(&self) -> Option<&Arc<SimulatedCluster>> {
        self.0.executors.simulated()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<i32> {
        self.0.bus.approvals()
    }

    fn notify(&self, id: i32) {
        self.0.bus.publish(Event::Approval { id });
    }

    fn incident_changed(&self, id: i32) {
        self.0.bus.publish(Event::Incident { id });
    }

    /// Writes the notification of `event` about approval `id` in `txn`, with the approval as
    /// `txn` sees it.
    async fn notice_in(
        &self,
        txn: &DatabaseTransaction,
        event: EventKind,
        id: i32,
        actor: &str,
    ) -> Result<(), DbErr> {
        let view = ApprovalView::load_in(txn, id)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(format!("approval {id}")))?;
        notify::enqueue_in(
            txn,
            event,
            Some(view.row.incident_id),
            Some(view.facts()),
            actor,
        )
        .await
    }

    pub async fn load(&self, id: i32) -> Result<ApprovalView, ApprovalError> {
        ApprovalView::load_in(&self.0.db, id)
            .await?
            .ok_or(ApprovalError::NotFound(id))
    }

    /// The pattern's trust now (0 if it never earned any).
    pub async fn trust(&self, pattern: &str) -> Result<u32, DbErr> {
        Ok(trust_score::Entity::find_by_id(pattern.to_owned())
            .one(&self.0.db)
            .await?
            .map_or(0, |t| u32::try_from(t.score).unwrap_or(0)))
    }

    /// The dry-run now, on the real request: the cluster's checks, with the blast radius from
    /// the topology. The report holds real values until [`Approvals::pseudonymise_in`] stores
    /// it; its fingerprint is re-keyed with the vault key, so it cannot be used to guess the
    /// values it covers.
    async fn raw_dry_run(&self, real: &ActionRequest) -> DryRunReport {
        self.raw_dry_run_seen(real).await.0
    }

    /// [`Approvals::raw_dry_run`], and the executor's own report as it made it (its
    /// fingerprint not re-keyed): what a conditional write is checked against.
    async fn raw_dry_run_seen(&self, real: &ActionRequest) -> (DryRunReport, DryRunReport) {
        let blast_radius = self
            .0
            .topology
            .blast_radius_len(&real.target, 3)
            .unwrap_or(0);
        let limit = self.0.config.blast_limit;
        let mut report = match self.0.executors.route(&real.kind) {
            Some(executor) => {
                let blast = Blast {
                    radius: blast_radius,
                    limit,
                };
                executor.dry_run(real, blast).await
            }
            None => unrouted(&real.kind, blast_radius),
        };
        let seen = report.clone();
        report.state_fingerprint = self.0.key.digest("dry-run", &report.state_fingerprint);
        (report, seen)
    }

    fn executor_name(&self, kind: &str) -> &'static str {
        self.0
            .executors
            .route(kind)
            .map_or("none", |e| e.handles().name())
    }

    /// The request as executors must see it: the incident's labels replaced by real values.
    async fn real_request(
        &self,
        incident_id: i32,
        request: &ActionRequest,
    ) -> Result<ActionRequest, DbErr> {
        let names = load_names(&self.0.db, &self.0.key, incident_id, false)
            .await?
            .unwrap_or_default();
        Ok(Boundary::new(names).real_request(request))
    }

    /// Runs `f` with the incident's label map locked inside `txn`, storing any labels it adds.
    async fn pseudonymise_in<T>(
        &self,
        txn: &DatabaseTransaction,
        incident_id: i32,
        f: impl FnOnce(&mut Boundary, &Shield) -> T,
    ) -> Result<T, DbErr> {
        let shield = &self.0.shield;
        crate::base::vault::with_boundary(txn, &self.0.key, incident_id, |b| f(b, shield)).await
    }

    /// What a person typed may hold raw values: the request and rationale with the incident's
    /// labels in their place (new labels stored), which is all that is ever stored.
    async fn labelled(
        &self,
        incident_id: i32,
        request: ActionRequest,
        rationale: String,
    ) -> Result<(ActionRequest, String), DbErr> {
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let labelled = self
            .pseudonymise_in(&txn, incident_id, |b, shield| {
                let mut labelled = request.clone();
                labelled.target = b.pseudonymise(shield, &request.target);
                labelled.namespace = request
                    .namespace
                    .as_ref()
                    .map(|n| b.pseudonymise(shield, n));
                labelled.params =
                    serde_json::from_str(&b.pseudonymise(shield, &request.params.to_string()))
                        .unwrap_or(serde_json::Value::Null);
                (labelled, b.pseudonymise(shield, &rationale))
            })
            .await?;
        txn.commit().await?;
        Ok(labelled)
    }

    /// The cluster's workloads among `services` (incident `incident_id`'s labels), named by
    /// those labels; `None` when the cluster executor cannot tell.
    pub async fn cluster_view(
        &self,
        incident_id: i32,
        services: &[String],
    ) -> Result<Option<Vec<engine::brain::WorkloadFact>>, DbErr> {
        let Some(cluster) = self.0.executors.route("restart_deployment") else {
            return Ok(None);
        };
        let names = load_names(&self.0.db, &self.0.key, incident_id, false)
            .await?
            .unwrap_or_default();
        let boundary = Boundary::new(names);
        let wanted: Vec<(Option<String>, String)> = services
            .iter()
            .map(|label| {
                let real = boundary.real_request(&ActionRequest {
                    kind: "run_diagnostics".into(),
                    target: label.clone(),
                    namespace: None,
                    params: serde_json::Value::Null,
                    labels: Default::default(),
                    requested_by: SYSTEM_REQUESTER.into(),
                });
                (self.namespace_of(&real.target), real.target)
            })
            .collect();
        drop(boundary);
        let Some(found) = cluster.workloads(&wanted).await else {
            return Ok(None);
        };
        Ok(Some(
            found
                .into_iter()
                .zip(services)
                .filter_map(|(workload, label)| {
                    workload.map(|mut w| {
                        w.name = label.clone();
                        w
                    })
                })
                .collect(),
        ))
    }

    /// An approval of the incident `survivor` (or one merged into it) for the same action
    /// and target, still waiting or running.
    async fn open_twin(
        &self,
        survivor: i32,
        kind: &str,
        target: &str,
    ) -> Result<Option<approval::Model>, DbErr> {
        let family = incident::Entity::find()
            .filter(
                sea_orm::Condition::any()
                    .add(incident::Column::Id.eq(survivor))
                    .add(incident::Column::MergedInto.eq(survivor)),
            )
            .all(&self.0.db)
            .await?
            .into_iter()
            .map(|i| i.id);
        approval::Entity::find()
            .filter(approval::Column::IncidentId.is_in(family))
            .filter(approval::Column::Kind.eq(kind))
            .filter(approval::Column::Target.eq(target))
            .filter(approval::Column::Status.is_in([
                ApprovalStatus::Pending,
                ApprovalStatus::Approved,
                ApprovalStatus::Executing,
            ]))
            .one(&self.0.db)
            .await
    }

    /// The namespace the topology gives `service`, for proposals that name none.
    pub fn namespace_of(&self, service: &str) -> Option<String> {
        self.0
            .topology
            .services()
            .find(|s| s.name == service)
            .and_then(|s| s.namespace.clone())
    }

    /// Creates an approval: risk from the policy table and the pattern's trust, a dry-run
    /// against the cluster. LOW is approved at once and executed (still re-checked).
    pub async fn propose(&self, proposal: NewApproval) -> Result<ApprovalView, ApprovalError> {
        let NewApproval {
            incident_id,
            mut request,
            rationale,
            finops,
        } = proposal;
        validate(&request)?;
        if request.namespace.is_none() {
            request.namespace = self.namespace_of(&request.target);
        }
        let db = &self.0.db;
        // A merged incident's approvals move the incident that absorbed it.
        let status_of_incident = incident::Entity::find_by_id(incident_id)
            .one(db)
            .await?
            .ok_or(ApprovalError::IncidentNotFound(incident_id))?
            .merged_into
            .unwrap_or(incident_id);
        let (request, rationale) = self.labelled(incident_id, request, rationale).await?;
        if let Some(twin) = self
            .open_twin(status_of_incident, &request.kind, &request.target)
            .await?
        {
            return Err(ApprovalError::Conflict(format!(
                "approval #{} already proposes {} {} for this incident ({})",
                twin.id,
                request.kind,
                request.target,
                twin.status.as_str()
            )));
        }
        let pattern = policy::trust_pattern(&request.kind, &request.target);
        let trust = self.trust(&pattern).await?;
        let now = Utc::now();
        let model = policy::Approval::new(
            request.clone(),
            &self.0.config.policy,
            trust,
            now,
            self.0.config.expiry,
        );
        let real = self.real_request(incident_id, &request).await?;
        let raw = self.raw_dry_run(&real).await;
        drop(real);
        let txn = crate::base::db::begin_write(db).await?;
        let dry_run = self
            .pseudonymise_in(&txn, incident_id, |b, shield| {
                b.pseudonymise_report(shield, raw)
            })
            .await?;
        let row = new_row(
            incident_id,
            &request,
            rationale,
            &model,
            trust,
            &dry_run,
            finops,
            now,
        )
        .insert(&txn)
        .await?;
        incident::Entity::update_many()
            .col_expr(
                incident::Column::Status,
                Expr::value(IncidentStatus::AwaitingApproval),
            )
            .filter(incident::Column::Id.eq(status_of_incident))
            .filter(incident::Column::Status.eq(IncidentStatus::Open))
            .exec(&txn)
            .await?;
        self.notice_in(
            &txn,
            if model.status == ApprovalStatus::Approved {
                EventKind::ApprovalApproved
            } else {
                EventKind::ApprovalPending
            },
            row.id,
            &request.requested_by,
        )
        .await?;
        crate::base::audit::append_in(
            &txn,
            &request.requested_by,
            "approval.proposed",
            &format!("approval:{}", row.id),
            json!({
                "incident": incident_id,
                "action": format!("{} {}", request.kind, request.target),
                "namespace": request.namespace,
                "base_risk": model.base_risk.as_str(),
                "effective_risk": model.effective_risk.as_str(),
                "trust": trust,
                "dry_run_passed": dry_run.passed,
                "state_fingerprint": dry_run.state_fingerprint,
                "status": model.status.as_str(),
            }),
        )
        .await?;
        txn.commit().await?;
        self.incident_changed(incident_id);
        if status_of_incident != incident_id {
            self.incident_changed(status_of_incident);
        }
        self.notify(row.id);
        if model.status == ApprovalStatus::Approved {
            self.spawn_execution(row.id);
        }
        self.load(row.id).await
    }
}

fn validate(request: &ActionRequest) -> Result<(), ApprovalError> {
    let field = |name: &str, value: &str| {
        if value.trim().is_empty() {
            Err(ApprovalError::Invalid(format!(
                "action.{name}: must not be empty"
            )))
        } else if value.len() > MAX_FIELD {
            Err(ApprovalError::Invalid(format!(
                "action.{name}: at most {MAX_FIELD} characters"
            )))
        } else {
            Ok(())
        }
    };
    field("kind", &request.kind)?;
    field("target", &request.target)?;
    if let Some(ns) = &request.namespace {
        field("namespace", ns)?;
    }
    if !(request.params.is_object() || serde_json::Value::is_null(&request.params)) {
        return Err(ApprovalError::Invalid(
            "action.params: must be a JSON object".into(),
        ));
    }
    if request.params.to_string().len() > 16 * 1024 {
        return Err(ApprovalError::Invalid(
            "action.params: at most 16 KiB".into(),
        ));
    }
    Ok(())
}

/// The incident whose status an approval of `incident_id` moves: the one that absorbed it, if
/// it was merged.
async fn survivor_of(txn: &DatabaseTransaction, incident_id: i32) -> Result<i32, DbErr> {
    Ok(incident::Entity::find_by_id(incident_id)
        .one(txn)
        .await?
        .and_then(|i| i.merged_into)
        .unwrap_or(incident_id))
}

/// The row of a new approval (labelled request, the policy's verdict, the labelled dry-run).
#[allow(clippy::too_many_arguments)]
fn new_row(
    incident_id: i32,
    request: &ActionRequest,
    rationale: String,
    model: &policy::Approval,
    trust: u32,
    dry_run: &DryRunReport,
    finops: Option<engine::finops::Saving>,
    now: chrono::DateTime<Utc>,
) -> approval::ActiveModel {
    approval::ActiveModel {
        incident_id: Set(incident_id),
        kind: Set(request.kind.clone()),
        target: Set(request.target.clone()),
        namespace: Set(request.namespace.clone()),
        params: Set(request.params.to_string()),
        labels: Set(serde_json::to_string(&request.labels).expect("labels serialise")),
        rationale: Set(rationale),
        requested_by: Set(request.requested_by.clone()),
        pattern: Set(model.pattern.clone()),
        base_risk: Set(model.base_risk),
        effective_risk: Set(model.effective_risk),
        trust: Set(i32::try_from(trust).unwrap_or(i32::MAX)),
        status: Set(model.status),
        version: Set(1),
        dry_run: Set(serde_json::to_string(&dry_run).expect("report serialises")),
        recheck: Set(None),
        void_reason: Set(None),
        created_at: Set(now),
        expires_at: Set(model.expires_at),
        decided_at: Set((model.status == ApprovalStatus::Approved).then_some(now)),
        updated_at: Set(now),
        finops: Set(finops
            .as_ref()
            .map(|f| serde_json::to_string(f).expect("savings serialise"))),
        ..Default::default()
    }
}

/// The report for a kind no executor handles: it fails, so the approval can only be rejected.
fn unrouted(kind: &str, blast_radius: usize) -> DryRunReport {
    let check = DryRunCheck {
        name: CheckName::Syntax,
        passed: false,
        detail: format!("no executor handles the action kind `{kind}`"),
    };
    DryRunReport::new(vec![check], &[format!("action={kind}")], blast_radius)
}

/// `[approvals]`: the policy table and the limits around it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileApprovalsConfig {
    /// PENDING approvals expire after this many minutes (default 60).
    pub expiry_minutes: Option<u32>,
    /// Dry-run fails when more services than this depend on the target (default 10).
    pub blast_limit: Option<usize>,
    /// An execution's lease, renewed while it runs (default 120 s); a server stopped mid-way
    /// leaves it to run out, and the execution ends FAILED.
    pub execution_lease_seconds: Option<u32>,
    /// Risk per action kind, merged over the defaults, e.g. `restart_deployment = "HIGH"`.
    #[serde(default)]
    pub risks: std::collections::BTreeMap<String, engine::policy::RiskLevel>,
    /// Risk of kinds in no table (default HIGH).
    pub unknown_risk: Option<engine::policy::RiskLevel>,
    /// Namespaces that raise risk one level (default `production`, `prod`).
    pub raise_namespaces: Option<Vec<String>>,
    /// Labels (`key = "value"`) that raise risk one level.
    #[serde(default)]
    pub raise_labels: std::collections::BTreeMap<String, String>,
}
