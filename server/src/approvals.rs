//! Approvals in the database: proposing an action (risk, trust, dry-run), signing, expiry, and
//! the TOCTOU re-check and execution. The rules are `engine::policy`; this module makes them
//! hold with concurrent signers, executors and replicas:
//!
//! - every status change is `UPDATE … WHERE id = ? AND version = ?` (signatures) or
//!   `… AND status = 'APPROVED'` (execution); the loser of a race re-reads or gives up;
//! - `(approval_id, signer)` and `executions.approval_id` are unique, so a signature cannot be
//!   counted twice and an approval cannot run twice, even past this code;
//! - each change and its audit event commit in one transaction.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use engine::Role;
use engine::dryrun::{DryRunReport, recheck};
use engine::policy::{
    self, ActionRequest, ApprovalStatus, Decision, PolicyError, RiskLevel, Signature,
};
use engine::shield::boundary::Boundary;
use engine::shield::{Shield, VaultKey};
use engine::simcluster::{EXECUTOR, SimCluster};
use engine::topology::Topology;
use entity::{approval, approval_signature, execution, incident, trust_score};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Set, SqlErr,
};
use serde_json::json;
use tokio::sync::broadcast;

use crate::ansible::AnsibleExecutor;
use crate::config::ApprovalsConfig;
use crate::ingest::{Ingest, load_names, status as incident_status, store_names};
use crate::knowledge::KmWriter;
use crate::mcp_client::McpExecutor;
use crate::notify::EventKind;
use crate::shell::ShellExecutor;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A cluster AWOOOI reads (dry-run) and acts on (execution).
pub trait Cluster: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// The dry-run checks for `request`, as AWOOOI's executor identity.
    fn dry_run(
        &self,
        request: ActionRequest,
        blast_radius: usize,
        blast_limit: usize,
    ) -> BoxFuture<'_, DryRunReport>;
    /// Carries out an approved request; the output is for people (it is pseudonymised
    /// before it is stored).
    fn execute(
        &self,
        approval: i64,
        request: ActionRequest,
    ) -> BoxFuture<'_, Result<String, String>>;
}

/// Where actions on the cluster go.
pub enum ClusterBackend {
    /// In process (the embedded default and the demo).
    Simulated(SimCluster),
    /// A real cluster through its API server.
    Kubernetes(crate::kube::KubeCluster),
}

/// The in-process simulated cluster (the embedded default and the demo).
#[derive(Default)]
pub struct SimulatedCluster(Mutex<SimCluster>);

impl SimulatedCluster {
    pub fn new(cluster: SimCluster) -> SimulatedCluster {
        SimulatedCluster(Mutex::new(cluster))
    }

    /// Reads or changes the cluster (tests, chaos).
    pub fn with<R>(&self, f: impl FnOnce(&mut SimCluster) -> R) -> R {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}

impl Cluster for SimulatedCluster {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn dry_run(
        &self,
        request: ActionRequest,
        blast_radius: usize,
        blast_limit: usize,
    ) -> BoxFuture<'_, DryRunReport> {
        let report = self.with(|cluster| {
            engine::dryrun::dry_run(&request, cluster, EXECUTOR, blast_radius, blast_limit)
        });
        Box::pin(async move { report })
    }

    fn execute(
        &self,
        approval: i64,
        request: ActionRequest,
    ) -> BoxFuture<'_, Result<String, String>> {
        let outcome = self.with(|cluster| cluster.apply(approval, &request));
        Box::pin(async move { outcome })
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

/// An approval with everything the card shows.
#[derive(Debug, Clone)]
pub struct ApprovalView {
    pub row: approval::Model,
    pub signatures: Vec<approval_signature::Model>,
    pub execution: Option<execution::Model>,
}

impl ApprovalView {
    pub fn dry_run(&self) -> DryRunReport {
        report(&self.row.dry_run)
    }

    pub fn recheck(&self) -> Option<DryRunReport> {
        self.row.recheck.as_deref().map(report)
    }

    /// The policy's view, for the rules.
    pub fn policy(&self) -> policy::Approval {
        to_policy(&self.row, &self.signatures)
    }
}

fn report(text: &str) -> DryRunReport {
    serde_json::from_str(text).unwrap_or_else(|_| DryRunReport {
        passed: false,
        checks: Vec::new(),
        state_fingerprint: String::new(),
        blast_radius: 0,
    })
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
}

pub fn risk_of(text: &str) -> RiskLevel {
    parse(text).unwrap_or(RiskLevel::Critical)
}

pub fn status_of(text: &str) -> ApprovalStatus {
    parse(text).unwrap_or(ApprovalStatus::Failed)
}

fn request_of(row: &approval::Model) -> ActionRequest {
    ActionRequest {
        kind: row.kind.clone(),
        target: row.target.clone(),
        namespace: row.namespace.clone(),
        params: serde_json::from_str(&row.params).unwrap_or(serde_json::Value::Null),
        labels: serde_json::from_str(&row.labels).unwrap_or_default(),
        requested_by: row.requested_by.clone(),
    }
}

fn to_policy(row: &approval::Model, signatures: &[approval_signature::Model]) -> policy::Approval {
    policy::Approval {
        request: request_of(row),
        pattern: row.pattern.clone(),
        base_risk: risk_of(&row.base_risk),
        effective_risk: risk_of(&row.effective_risk),
        trust: u32::try_from(row.trust).unwrap_or(0),
        status: status_of(&row.status),
        signatures: signatures
            .iter()
            .map(|s| Signature {
                signer: s.signer.clone(),
                role: s.role.parse().unwrap_or(Role::Viewer),
                decision: if s.decision == "APPROVE" {
                    Decision::Approve
                } else {
                    Decision::Reject
                },
                at: s.at,
            })
            .collect(),
        created_at: row.created_at,
        expires_at: row.expires_at,
    }
}

/// The executors besides the cluster, chosen by the action kind's prefix.
#[derive(Debug, Clone, Default)]
pub struct Executors {
    /// `shell:<name>`.
    pub shell: ShellExecutor,
    /// `ansible:<playbook>`.
    pub ansible: AnsibleExecutor,
    /// `mcp:<server>/<tool>`.
    pub mcp: McpExecutor,
}

/// Which executor carries out an action kind: chosen once, by the kind's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Shell,
    Ansible,
    Mcp,
    Cluster,
}

impl Route {
    fn of(kind: &str) -> Route {
        if ShellExecutor::handles(kind) {
            Route::Shell
        } else if AnsibleExecutor::handles(kind) {
            Route::Ansible
        } else if McpExecutor::handles(kind) {
            Route::Mcp
        } else {
            Route::Cluster
        }
    }
}

/// Who proposes: the requester's name (never a signer of this approval).
pub struct Proposal {
    pub incident_id: i32,
    pub request: ActionRequest,
    pub rationale: String,
    /// A FinOps fix: what it saves. Its incident resolves when it executes.
    pub finops: Option<crate::finops::Saving>,
}

struct Inner {
    db: DatabaseConnection,
    config: ApprovalsConfig,
    topology: Arc<Topology>,
    cluster: Arc<dyn Cluster>,
    simulated: Option<Arc<SimulatedCluster>>,
    shield: Arc<Shield>,
    key: VaultKey,
    executors: Executors,
    ingest: Ingest,
    knowledge: KmWriter,
}

/// The approvals service; cheap to clone.
#[derive(Clone)]
pub struct Approvals(Arc<Inner>);

const MAX_FIELD: usize = 253;

/// An execution still EXECUTING after this long was interrupted (executors time out well
/// before: shell 30 s, MCP 60 s, Ansible 300 s by default).
const STALE_EXECUTION: chrono::Duration = chrono::Duration::minutes(60);

/// The requester of what the Brain proposes: no person, so every eligible person may sign.
pub const SYSTEM_REQUESTER: &str = "awoooi";

impl Approvals {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: DatabaseConnection,
        config: ApprovalsConfig,
        topology: Arc<Topology>,
        backend: ClusterBackend,
        shield: Arc<Shield>,
        key: VaultKey,
        executors: Executors,
        ingest: Ingest,
        knowledge: KmWriter,
    ) -> Approvals {
        let (cluster, simulated): (Arc<dyn Cluster>, _) = match backend {
            ClusterBackend::Simulated(sim) => {
                let sim = Arc::new(SimulatedCluster::new(sim));
                (sim.clone(), Some(sim))
            }
            ClusterBackend::Kubernetes(kube) => (Arc::new(kube), None),
        };
        Approvals(Arc::new(Inner {
            db,
            config,
            topology,
            cluster,
            simulated,
            shield,
            key,
            executors,
            ingest,
            knowledge,
        }))
    }

    /// The simulated cluster, when that is the backend.
    pub fn simulated_cluster(&self) -> Option<&Arc<SimulatedCluster>> {
        self.0.simulated.as_ref()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<i32> {
        self.0.ingest.bus().approvals()
    }

    fn notify(&self, id: i32) {
        self.0
            .ingest
            .bus()
            .publish(crate::bus::Event::Approval { id });
    }

    pub async fn load(&self, id: i32) -> Result<ApprovalView, ApprovalError> {
        let db = &self.0.db;
        let row = approval::Entity::find_by_id(id)
            .one(db)
            .await?
            .ok_or(ApprovalError::NotFound(id))?;
        let signatures = approval_signature::Entity::find()
            .filter(approval_signature::Column::ApprovalId.eq(id))
            .order_by_asc(approval_signature::Column::Id)
            .all(db)
            .await?;
        let execution = execution::Entity::find()
            .filter(execution::Column::ApprovalId.eq(id))
            .one(db)
            .await?;
        Ok(ApprovalView {
            row,
            signatures,
            execution,
        })
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
        let blast_radius = self
            .0
            .topology
            .blast_radius(&real.target, 3)
            .map_or(0, |r| r.affected.len());
        let limit = self.0.config.blast_limit;
        let executors = &self.0.executors;
        let mut report = match Route::of(&real.kind) {
            Route::Shell => executors.shell.dry_run(real, blast_radius, limit),
            Route::Ansible => executors.ansible.dry_run(real, blast_radius, limit).await,
            Route::Mcp => executors.mcp.dry_run(real, blast_radius, limit).await,
            Route::Cluster => {
                self.0
                    .cluster
                    .dry_run(real.clone(), blast_radius, limit)
                    .await
            }
        };
        report.state_fingerprint = self.0.key.digest("dry-run", &report.state_fingerprint);
        report
    }

    fn executor_name(&self, kind: &str) -> &'static str {
        match Route::of(kind) {
            Route::Shell => "shell",
            Route::Ansible => "ansible",
            Route::Mcp => "mcp",
            Route::Cluster => self.0.cluster.name(),
        }
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
        let stored = load_names(txn, &self.0.key, incident_id, true).await?;
        let existed = stored.is_some();
        let names = stored.unwrap_or_default();
        let before = names.len();
        let mut boundary = Boundary::new(names);
        let out = f(&mut boundary, &self.0.shield);
        let names = boundary.into_names();
        if names.len() != before {
            store_names(txn, &self.0.key, incident_id, &names, existed, Utc::now()).await?;
        }
        Ok(out)
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
    pub async fn propose(&self, proposal: Proposal) -> Result<ApprovalView, ApprovalError> {
        let Proposal {
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
        // What a person typed may hold raw values: they get the incident's labels first, and
        // only the labelled request is stored.
        let (request, rationale) = {
            let txn = crate::db::begin_write(db).await?;
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
            labelled
        };
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
        let txn = crate::db::begin_write(db).await?;
        let dry_run = self
            .pseudonymise_in(&txn, incident_id, |b, shield| {
                b.pseudonymise_report(shield, raw)
            })
            .await?;
        let row = approval::ActiveModel {
            incident_id: Set(incident_id),
            kind: Set(request.kind.clone()),
            target: Set(request.target.clone()),
            namespace: Set(request.namespace.clone()),
            params: Set(request.params.to_string()),
            labels: Set(serde_json::to_string(&request.labels).expect("labels serialise")),
            rationale: Set(rationale),
            requested_by: Set(request.requested_by.clone()),
            pattern: Set(model.pattern.clone()),
            base_risk: Set(model.base_risk.as_str().to_owned()),
            effective_risk: Set(model.effective_risk.as_str().to_owned()),
            trust: Set(i32::try_from(trust).unwrap_or(i32::MAX)),
            status: Set(model.status.as_str().to_owned()),
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
        .insert(&txn)
        .await?;
        incident::Entity::update_many()
            .col_expr(
                incident::Column::Status,
                Expr::value(incident_status::AWAITING_APPROVAL),
            )
            .filter(incident::Column::Id.eq(status_of_incident))
            .filter(incident::Column::Status.eq(incident_status::OPEN))
            .exec(&txn)
            .await?;
        crate::notify::enqueue_in(
            &txn,
            if model.status == ApprovalStatus::Approved {
                EventKind::ApprovalApproved
            } else {
                EventKind::ApprovalPending
            },
            Some(incident_id),
            Some(row.id),
            &request.requested_by,
        )
        .await?;
        crate::audit::append_in(
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
        self.0.ingest.notify(incident_id);
        if status_of_incident != incident_id {
            self.0.ingest.notify(status_of_incident);
        }
        self.notify(row.id);
        if model.status == ApprovalStatus::Approved {
            self.spawn_execution(row.id);
        }
        self.load(row.id).await
    }

    /// Records `signer`'s decision. Concurrent signers of one approval take turns through
    /// the version check: the loser re-reads and decides again on the new state.
    pub async fn sign(
        &self,
        id: i32,
        signer: &str,
        role: Role,
        decision: Decision,
        comment: Option<String>,
    ) -> Result<ApprovalView, ApprovalError> {
        if let Some(c) = &comment
            && c.len() > 2_000
        {
            return Err(ApprovalError::Invalid(
                "comment: at most 2000 characters".into(),
            ));
        }
        for _attempt in 0..50 {
            match self
                .try_sign(id, signer, role, decision, comment.clone())
                .await?
            {
                Some(status) => {
                    self.notify(id);
                    if status == ApprovalStatus::Approved {
                        self.spawn_execution(id);
                    }
                    return self.load(id).await;
                }
                None => tokio::task::yield_now().await,
            }
        }
        Err(ApprovalError::Conflict(
            "too many concurrent changes to this approval; try again".into(),
        ))
    }

    /// One attempt; `None` when another writer changed the approval first.
    async fn try_sign(
        &self,
        id: i32,
        signer: &str,
        role: Role,
        decision: Decision,
        comment: Option<String>,
    ) -> Result<Option<ApprovalStatus>, ApprovalError> {
        let view = self.load(id).await?;
        let mut model = view.policy();
        let now = Utc::now();
        if model.expire_if_due(now) {
            self.expire(&view.row).await?;
            return Err(PolicyError::Expired(model.expires_at).into());
        }
        if decision == Decision::Approve {
            model.may_sign(signer, role, now)?;
            let dry_run = view.dry_run();
            if !dry_run.passed {
                let failed: Vec<String> = dry_run
                    .checks
                    .iter()
                    .filter(|c| !c.passed)
                    .map(|c| format!("{:?}: {}", c.name, c.detail))
                    .collect();
                return Err(ApprovalError::Conflict(format!(
                    "the dry-run fails ({}); this approval can only be rejected",
                    failed.join("; ")
                )));
            }
        }
        let status = model.sign(signer, role, decision, now)?;
        let txn = crate::db::begin_write(&self.0.db).await?;
        let inserted = approval_signature::ActiveModel {
            approval_id: Set(id),
            signer: Set(signer.to_owned()),
            role: Set(role.as_str().to_owned()),
            decision: Set(match decision {
                Decision::Approve => "APPROVE".into(),
                Decision::Reject => "REJECT".into(),
            }),
            comment: Set(comment.clone()),
            at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(PolicyError::AlreadySigned.into());
            }
            Err(e) => return Err(e.into()),
        }
        let decided = status != ApprovalStatus::Pending;
        let mut update = approval::Entity::update_many()
            .col_expr(approval::Column::Status, Expr::value(status.as_str()))
            .col_expr(approval::Column::Version, Expr::value(view.row.version + 1))
            .col_expr(approval::Column::UpdatedAt, Expr::value(now))
            .filter(approval::Column::Id.eq(id))
            .filter(approval::Column::Version.eq(view.row.version));
        if decided {
            update = update.col_expr(approval::Column::DecidedAt, Expr::value(now));
        }
        if update.exec(&txn).await?.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(None);
        }
        if decided {
            let approved = status == ApprovalStatus::Approved;
            let score = if approved {
                Expr::col((trust_score::Entity, trust_score::Column::Score)).add(1)
            } else {
                Expr::value(0)
            };
            trust_score::Entity::insert(trust_score::ActiveModel {
                pattern: Set(view.row.pattern.clone()),
                score: Set(i32::from(approved)),
                base_risk: Set(view.row.base_risk.clone()),
                updated_at: Set(now),
            })
            .on_conflict(
                OnConflict::column(trust_score::Column::Pattern)
                    .value(trust_score::Column::Score, score)
                    .value(
                        trust_score::Column::BaseRisk,
                        Expr::value(view.row.base_risk.clone()),
                    )
                    .value(trust_score::Column::UpdatedAt, Expr::value(now))
                    .to_owned(),
            )
            .exec(&txn)
            .await?;
        }
        let (action, event) = match (decision, status) {
            (Decision::Reject, _) => ("approval.rejected", EventKind::ApprovalRejected),
            (Decision::Approve, ApprovalStatus::Approved) => {
                ("approval.approved", EventKind::ApprovalApproved)
            }
            _ => ("approval.signed", EventKind::ApprovalSigned),
        };
        crate::notify::enqueue_in(&txn, event, None, Some(id), signer).await?;
        crate::audit::append_in(
            &txn,
            signer,
            action,
            &format!("approval:{id}"),
            json!({
                "role": role.as_str(),
                "decision": format!("{decision:?}").to_ascii_uppercase(),
                "comment": comment,
                "status": status.as_str(),
                "pattern": view.row.pattern,
            }),
        )
        .await?;
        txn.commit().await?;
        Ok(Some(status))
    }

    async fn expire(&self, row: &approval::Model) -> Result<(), DbErr> {
        let now = Utc::now();
        let txn = crate::db::begin_write(&self.0.db).await?;
        let changed = approval::Entity::update_many()
            .col_expr(
                approval::Column::Status,
                Expr::value(ApprovalStatus::Expired.as_str()),
            )
            .col_expr(approval::Column::Version, Expr::value(row.version + 1))
            .col_expr(approval::Column::DecidedAt, Expr::value(now))
            .col_expr(approval::Column::UpdatedAt, Expr::value(now))
            .filter(approval::Column::Id.eq(row.id))
            .filter(approval::Column::Version.eq(row.version))
            .filter(approval::Column::Status.eq(ApprovalStatus::Pending.as_str()))
            .exec(&txn)
            .await?
            .rows_affected;
        if changed == 0 {
            return txn.rollback().await;
        }
        crate::notify::enqueue_in(
            &txn,
            EventKind::ApprovalExpired,
            None,
            Some(row.id),
            "system",
        )
        .await?;
        crate::audit::append_in(
            &txn,
            "system",
            "approval.expired",
            &format!("approval:{}", row.id),
            json!({"expired_at": row.expires_at}),
        )
        .await?;
        txn.commit().await?;
        self.notify(row.id);
        Ok(())
    }

    /// Expires every PENDING approval past its time. Returns how many.
    pub async fn expire_due(&self) -> Result<usize, DbErr> {
        let due = approval::Entity::find()
            .filter(approval::Column::Status.eq(ApprovalStatus::Pending.as_str()))
            .filter(approval::Column::ExpiresAt.lte(Utc::now()))
            .all(&self.0.db)
            .await?;
        for row in &due {
            self.expire(row).await?;
        }
        Ok(due.len())
    }

    fn spawn_execution(&self, id: i32) {
        let this = self.clone();
        tokio::spawn(async move {
            match this.execute(id).await {
                Ok(_) | Err(ApprovalError::Conflict(_)) => {}
                Err(error) => tracing::error!(approval = id, %error, "execution failed"),
            }
        });
    }

    /// Runs an APPROVED approval once: the dry-run again (TOCTOU), then either VOIDED (both
    /// reports kept, never run) or claimed as EXECUTING and carried out. Any number of
    /// callers on any number of replicas may race here; one claim wins.
    pub async fn execute(&self, id: i32) -> Result<ApprovalView, ApprovalError> {
        let view = self.load(id).await?;
        let status = status_of(&view.row.status);
        if status != ApprovalStatus::Approved {
            return Err(ApprovalError::Conflict(format!(
                "approval {id} is {}; only an APPROVED approval runs",
                status.as_str()
            )));
        }
        let incident_id = view.row.incident_id;
        let request = request_of(&view.row);
        let real = self.real_request(incident_id, &request).await?;
        let raw_report = self.raw_dry_run(&real).await;
        let verdict = recheck(&view.dry_run(), &raw_report);
        let next = match verdict {
            Ok(()) => ApprovalStatus::Executing,
            Err(_) => ApprovalStatus::Voided,
        };
        let now = Utc::now();
        let txn = crate::db::begin_write(&self.0.db).await?;
        let (now_report, verdict) = self
            .pseudonymise_in(&txn, incident_id, |b, shield| {
                let verdict = verdict.map_err(|reason| b.pseudonymise(shield, &reason.to_string()));
                (b.pseudonymise_report(shield, raw_report), verdict)
            })
            .await?;
        let claimed = approval::Entity::update_many()
            .col_expr(approval::Column::Status, Expr::value(next.as_str()))
            .col_expr(
                approval::Column::Version,
                Expr::col(approval::Column::Version).add(1),
            )
            .col_expr(
                approval::Column::Recheck,
                Expr::value(serde_json::to_string(&now_report).expect("report serialises")),
            )
            .col_expr(
                approval::Column::VoidReason,
                Expr::value(verdict.as_ref().err().cloned()),
            )
            .col_expr(approval::Column::UpdatedAt, Expr::value(now))
            .filter(approval::Column::Id.eq(id))
            .filter(approval::Column::Status.eq(ApprovalStatus::Approved.as_str()))
            .exec(&txn)
            .await?
            .rows_affected;
        if claimed == 0 {
            txn.rollback().await?;
            return Err(ApprovalError::Conflict(format!(
                "approval {id} was taken by another executor"
            )));
        }
        if let Err(reason) = &verdict {
            crate::notify::enqueue_in(&txn, EventKind::ApprovalVoided, None, Some(id), "system")
                .await?;
            crate::audit::append_in(
                &txn,
                "system",
                "approval.voided",
                &format!("approval:{id}"),
                json!({
                    "reason": reason,
                    "approved_fingerprint": view.dry_run().state_fingerprint,
                    "current_fingerprint": now_report.state_fingerprint,
                }),
            )
            .await?;
            txn.commit().await?;
            tracing::warn!(approval = id, %reason, "approval voided before execution");
            self.notify(id);
            return self.load(id).await;
        }
        execution::ActiveModel {
            approval_id: Set(id),
            executor: Set(self.executor_name(&request.kind).to_owned()),
            status: Set("RUNNING".into()),
            output: Set(String::new()),
            started_at: Set(now),
            finished_at: Set(None),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        crate::audit::append_in(
            &txn,
            "system",
            "approval.executing",
            &format!("approval:{id}"),
            json!({"executor": self.executor_name(&request.kind), "action": format!("{} {}", request.kind, request.target)}),
        )
        .await?;
        txn.commit().await?;
        self.notify(id);

        // The only place real values leave: the executor gets them, its output is labelled
        // again before anything stores or logs it.
        let executors = &self.0.executors;
        let outcome = match Route::of(&real.kind) {
            Route::Shell => executors.shell.execute(&real).await,
            Route::Ansible => executors.ansible.execute(&real).await,
            Route::Mcp => executors.mcp.execute(&real).await,
            Route::Cluster => self.0.cluster.execute(i64::from(id), real).await,
        };
        let (succeeded, raw_output) = match outcome {
            Ok(output) => (true, output),
            Err(error) => (false, error),
        };
        let finished = if succeeded {
            ApprovalStatus::Executed
        } else {
            ApprovalStatus::Failed
        };
        let now = Utc::now();
        let txn = crate::db::begin_write(&self.0.db).await?;
        let output = self
            .pseudonymise_in(&txn, incident_id, |b, shield| {
                b.pseudonymise(shield, &raw_output)
            })
            .await?;
        drop(raw_output);
        approval::Entity::update_many()
            .col_expr(approval::Column::Status, Expr::value(finished.as_str()))
            .col_expr(
                approval::Column::Version,
                Expr::col(approval::Column::Version).add(1),
            )
            .col_expr(approval::Column::UpdatedAt, Expr::value(now))
            .filter(approval::Column::Id.eq(id))
            .filter(approval::Column::Status.eq(ApprovalStatus::Executing.as_str()))
            .exec(&txn)
            .await?;
        execution::Entity::update_many()
            .col_expr(
                execution::Column::Status,
                Expr::value(if succeeded { "SUCCEEDED" } else { "FAILED" }),
            )
            .col_expr(execution::Column::Output, Expr::value(output.clone()))
            .col_expr(execution::Column::FinishedAt, Expr::value(now))
            .filter(execution::Column::ApprovalId.eq(id))
            .exec(&txn)
            .await?;
        // Diagnostics read; they do not mitigate. A FinOps fix that ran is the whole of its
        // incident: nothing is firing, so it resolves.
        let fixed_waste = succeeded && view.row.finops.is_some();
        let survivor = survivor_of(&txn, view.row.incident_id).await?;
        if succeeded && request.kind != "run_diagnostics" {
            incident::Entity::update_many()
                .col_expr(
                    incident::Column::Status,
                    Expr::value(if fixed_waste {
                        incident_status::RESOLVED
                    } else {
                        "MITIGATING"
                    }),
                )
                .col_expr(
                    incident::Column::ResolvedAt,
                    Expr::value(fixed_waste.then_some(now)),
                )
                .col_expr(incident::Column::UpdatedAt, Expr::value(now))
                .filter(incident::Column::Id.eq(survivor))
                // ANALYZING too: an analysis still running must not put it back to
                // AWAITING_APPROVAL (its final update is conditional on ANALYZING).
                .filter(incident::Column::Status.is_in([
                    incident_status::OPEN,
                    incident_status::ANALYZING,
                    incident_status::AWAITING_APPROVAL,
                ]))
                .exec(&txn)
                .await?;
        }
        let event = if succeeded {
            EventKind::ApprovalExecuted
        } else {
            EventKind::ApprovalFailed
        };
        crate::notify::enqueue_in(&txn, event, None, Some(id), "system").await?;
        if fixed_waste {
            crate::notify::enqueue_in(
                &txn,
                EventKind::IncidentResolved,
                Some(view.row.incident_id),
                None,
                "system",
            )
            .await?;
        }
        crate::audit::append_in(
            &txn,
            "system",
            if succeeded {
                "approval.executed"
            } else {
                "approval.failed"
            },
            &format!("approval:{id}"),
            json!({"output": output}),
        )
        .await?;
        txn.commit().await?;
        self.0.ingest.notify(view.row.incident_id);
        if survivor != view.row.incident_id {
            self.0.ingest.notify(survivor);
        }
        self.notify(id);
        self.learn(&view, succeeded, &output).await;
        self.load(id).await
    }

    /// The execution's knowledge entry (B_MANUAL, B_AUTO_*, PLAYBOOK). The execution stands
    /// whatever happens here; a failure is logged (and the writer has dead-lettered it if it
    /// could).
    async fn learn(&self, view: &ApprovalView, succeeded: bool, output: &str) {
        let signed = !view.signatures.is_empty();
        let entry =
            crate::knowledge::execution_entry(&self.0.db, &view.row, signed, succeeded, output)
                .await;
        let outcome = match entry {
            Ok(Some(entry)) => self.0.knowledge.write(entry).await.map(|_| ()),
            Ok(None) => Ok(()),
            Err(e) => Err(crate::knowledge::KmError::Lost(format!(
                "cannot read the incident: {e}"
            ))),
        };
        if let Err(e) = outcome {
            tracing::error!(approval = view.row.id, error = %e, "execution knowledge entry not written");
        }
    }

    /// Executions left EXECUTING for longer than `stale` (the process running them stopped
    /// mid-way) end FAILED: whether the action took effect is unknown, so it is never run
    /// again by itself; a person checks the target and proposes it anew. Returns how many.
    pub async fn fail_interrupted(&self, stale: chrono::Duration) -> Result<usize, DbErr> {
        let cutoff = Utc::now() - stale;
        let stranded = approval::Entity::find()
            .filter(approval::Column::Status.eq(ApprovalStatus::Executing.as_str()))
            .filter(approval::Column::UpdatedAt.lt(cutoff))
            .all(&self.0.db)
            .await?;
        let mut closed = 0;
        for row in stranded {
            let now = Utc::now();
            let why = "interrupted: the server running it stopped before it finished; \
                       check the target before proposing it again";
            let txn = crate::db::begin_write(&self.0.db).await?;
            let changed = approval::Entity::update_many()
                .col_expr(
                    approval::Column::Status,
                    Expr::value(ApprovalStatus::Failed.as_str()),
                )
                .col_expr(
                    approval::Column::Version,
                    Expr::col(approval::Column::Version).add(1),
                )
                .col_expr(approval::Column::UpdatedAt, Expr::value(now))
                .filter(approval::Column::Id.eq(row.id))
                .filter(approval::Column::Status.eq(ApprovalStatus::Executing.as_str()))
                .filter(approval::Column::UpdatedAt.lt(cutoff))
                .exec(&txn)
                .await?
                .rows_affected;
            if changed == 0 {
                txn.rollback().await?;
                continue;
            }
            execution::Entity::update_many()
                .col_expr(execution::Column::Status, Expr::value("FAILED"))
                .col_expr(execution::Column::Output, Expr::value(why))
                .col_expr(execution::Column::FinishedAt, Expr::value(now))
                .filter(execution::Column::ApprovalId.eq(row.id))
                .filter(execution::Column::Status.eq("RUNNING"))
                .exec(&txn)
                .await?;
            crate::notify::enqueue_in(
                &txn,
                EventKind::ApprovalFailed,
                None,
                Some(row.id),
                "system",
            )
            .await?;
            crate::audit::append_in(
                &txn,
                "system",
                "approval.failed",
                &format!("approval:{}", row.id),
                json!({"output": why}),
            )
            .await?;
            txn.commit().await?;
            tracing::warn!(approval = row.id, "execution interrupted; marked FAILED");
            self.notify(row.id);
            closed += 1;
        }
        Ok(closed)
    }

    /// Background duties: expire what is due, and run approvals left APPROVED (e.g. by a
    /// restart between the last signature and execution).
    pub fn start_worker(&self, every: std::time::Duration) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(error) = this.expire_due().await {
                    tracing::warn!(%error, "expiring approvals failed");
                }
                if let Err(error) = this.fail_interrupted(STALE_EXECUTION).await {
                    tracing::warn!(%error, "closing interrupted executions failed");
                }
                let waiting = approval::Entity::find()
                    .filter(approval::Column::Status.eq(ApprovalStatus::Approved.as_str()))
                    .all(&this.0.db)
                    .await;
                match waiting {
                    Ok(rows) => {
                        for row in rows {
                            match this.execute(row.id).await {
                                Ok(_) | Err(ApprovalError::Conflict(_)) => {}
                                Err(error) => {
                                    tracing::error!(approval = row.id, %error, "execution failed")
                                }
                            }
                        }
                    }
                    Err(error) => tracing::warn!(%error, "reading approved approvals failed"),
                }
            }
        });
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
