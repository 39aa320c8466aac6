//! FinOps scans in the server: read the cluster and its usage (the simulated cluster's
//! history, or Prometheus), price the waste with `engine::finops`, keep every report, on a
//! schedule and on demand.

pub mod prometheus;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use engine::finops::{Finding, FindingKind, Inventory, Pricing, Report, Saving, Thresholds};
use engine::policy::{ActionRequest, ApprovalStatus};
use entity::{approval, finops_report, incident};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use serde::Deserialize;

use crate::base::incident::IncidentStatus;
use crate::services::approvals::{ApprovalError, ApprovalView, Approvals, NewApproval};
use prometheus::{PrometheusConfig, PrometheusSource};

/// The advisory lock key scheduled scans are claimed under.
const SCAN_LOCK: i64 = 7343659;

/// `[finops]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinopsConfig {
    /// Prices (defaults: the demo's, in USD).
    #[serde(default)]
    pub pricing: Pricing,
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Minutes between scheduled scans (default 60; 0 turns the schedule off).
    pub scan_every_minutes: Option<u64>,
    /// Where usage comes from: `cluster` (the simulated cluster's history, the default) or
    /// `prometheus` (then `[finops.prometheus]` says where).
    #[serde(default)]
    pub source: SourceKind,
    pub prometheus: Option<PrometheusConfig>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    #[default]
    Cluster,
    Prometheus,
}

impl FinopsConfig {
    pub fn validate(&self) -> Result<(), String> {
        let t = &self.thresholds;
        if !(1..=100).contains(&t.zombie_cpu_percent)
            || !(1..=366).contains(&t.zombie_days)
            || !(10..=30).contains(&t.buffer_tenths)
        {
            return Err("thresholds: zombie_cpu_percent 1-100, zombie_days 1-366, buffer_tenths 10-30 (×1.0-×3.0)".into());
        }
        match (self.source, &self.prometheus) {
            (SourceKind::Prometheus, None) => {
                Err("source = \"prometheus\" needs [finops.prometheus] with its url".into())
            }
            (_, Some(p)) => p.validate().map_err(|e| format!("prometheus: {e}")),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FinopsError {
    #[error("{0}")]
    NoMetrics(String),
    /// No such finding in the latest report.
    #[error("{0}")]
    NoFinding(String),
    /// The finding's fix is already waiting or running.
    #[error("{0}")]
    AlreadyProposed(String),
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// FinOps incidents' correlation keys start so (alerts' keys are hex digests): one incident
/// per finding while it is open.
pub const INCIDENT_KEY_PREFIX: &str = "finops:";

pub fn incident_key(kind: FindingKind, namespace: &str, resource: &str) -> String {
    format!(
        "{INCIDENT_KEY_PREFIX}{}:{namespace}/{resource}",
        kind.as_str()
    )
}

/// Approvals that are still going somewhere.
const OPEN_APPROVALS: [ApprovalStatus; 3] = [
    ApprovalStatus::Pending,
    ApprovalStatus::Approved,
    ApprovalStatus::Executing,
];

/// A stored report.
#[derive(Debug, Clone)]
pub struct Scanned {
    pub report: Report,
    pub trigger: String,
    pub at: DateTime<Utc>,
}

struct Inner {
    db: DatabaseConnection,
    approvals: Approvals,
    config: FinopsConfig,
    prometheus: Option<PrometheusSource>,
}

#[derive(Clone)]
pub struct Finops(Arc<Inner>);

impl Finops {
    pub fn new(db: DatabaseConnection, approvals: Approvals, config: FinopsConfig) -> Finops {
        let prometheus = match config.source {
            SourceKind::Prometheus => config.prometheus.clone().map(PrometheusSource::new),
            SourceKind::Cluster => None,
        };
        Finops(Arc::new(Inner {
            db,
            approvals,
            config,
            prometheus,
        }))
    }

    /// Whether there is anything to scan.
    fn has_source(&self) -> bool {
        self.0.prometheus.is_some() || self.0.approvals.simulated_cluster().is_some()
    }

    /// What the scans read: Prometheus when configured, else the simulated cluster and its
    /// usage history.
    async fn inventory(&self) -> Result<Inventory, FinopsError> {
        if let Some(source) = &self.0.prometheus {
            return source
                .inventory(Utc::now())
                .await
                .map_err(FinopsError::NoMetrics);
        }
        match self.0.approvals.simulated_cluster() {
            Some(cluster) => Ok(cluster.with(|c| Inventory::from_sim(c))),
            None => Err(FinopsError::NoMetrics(
                "the cluster backend is Kubernetes: FinOps reads its usage from Prometheus — set [finops] source = \"prometheus\" and [finops.prometheus] url".into(),
            )),
        }
    }

    /// Scans now and stores the report.
    pub async fn scan(&self, trigger: &str) -> Result<Scanned, FinopsError> {
        let inventory = self.inventory().await?;
        let report = engine::finops::scan(
            &inventory,
            &self.0.config.pricing,
            &self.0.config.thresholds,
        );
        let at = Utc::now();
        finops_report::ActiveModel {
            trigger: Set(trigger.to_owned()),
            report: Set(serde_json::to_string(&report).expect("reports serialise")),
            created_at: Set(at),
            ..Default::default()
        }
        .insert(&self.0.db)
        .await?;
        tracing::info!(
            trigger,
            monthly_waste = %report.monthly_waste,
            findings = report.findings.len(),
            "FinOps scan"
        );
        Ok(Scanned {
            report,
            trigger: trigger.to_owned(),
            at,
        })
    }

    /// Runs the scheduled scan unless one ran within (90% of) `every`. Replicas claim the slot
    /// in the database: on PostgreSQL the check and the scan hold a transaction-scoped
    /// advisory lock, and a replica that cannot take it at once skips this round. Returns
    /// whether this call scanned.
    pub async fn scheduled_scan(&self, every: chrono::Duration) -> Result<bool, FinopsError> {
        let db = &self.0.db;
        // SQLite is one replica's own file: no claim needed, and no transaction held open.
        let postgres = db.get_database_backend() == sea_orm::DatabaseBackend::Postgres;
        let txn = if postgres {
            Some(db.begin().await?)
        } else {
            None
        };
        if let Some(txn) = &txn {
            let row = txn
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DatabaseBackend::Postgres,
                    format!("SELECT pg_try_advisory_xact_lock({SCAN_LOCK}) AS taken"),
                ))
                .await?;
            let taken = row
                .map(|r| r.try_get::<bool>("", "taken"))
                .transpose()?
                .unwrap_or(false);
            if !taken {
                return Ok(false);
            }
        }
        let recent = finops_report::Entity::find()
            .filter(finops_report::Column::Trigger.eq("SCHEDULE"))
            .filter(finops_report::Column::CreatedAt.gt(Utc::now() - every * 9 / 10));
        let recent = match &txn {
            Some(txn) => recent.count(txn).await?,
            None => recent.count(db).await?,
        };
        if recent > 0 {
            return Ok(false);
        }
        self.scan("SCHEDULE").await?;
        if let Some(txn) = txn {
            txn.commit().await?;
        }
        Ok(true)
    }

    /// The latest stored report, if any scan ran.
    pub async fn latest(&self) -> Result<Option<Scanned>, FinopsError> {
        let row = finops_report::Entity::find()
            .order_by_desc(finops_report::Column::Id)
            .one(&self.0.db)
            .await?;
        Ok(row.and_then(|r| {
            serde_json::from_str(&r.report).ok().map(|report| Scanned {
                report,
                trigger: r.trigger,
                at: r.created_at,
            })
        }))
    }

    /// The latest report, scanning first if none was made.
    pub async fn current(&self) -> Result<Scanned, FinopsError> {
        match self.latest().await? {
            Some(s) => Ok(s),
            None => self.scan("FIRST_READ").await,
        }
    }

    /// The unresolved FinOps incident of a finding, if one is open.
    async fn open_incident(&self, key: &str) -> Result<Option<incident::Model>, DbErr> {
        incident::Entity::find()
            .filter(incident::Column::CorrelationKey.eq(key))
            .filter(incident::Column::Status.ne(IncidentStatus::Resolved))
            .order_by_desc(incident::Column::Id)
            .one(&self.0.db)
            .await
    }

    /// The latest approval of a finding's open FinOps incident: what became of its proposal.
    pub async fn approval_of(
        &self,
        finding: &Finding,
    ) -> Result<Option<ApprovalView>, FinopsError> {
        let key = incident_key(finding.kind, &finding.namespace, &finding.resource);
        let Some(incident) = self.open_incident(&key).await? else {
            return Ok(None);
        };
        let row = approval::Entity::find()
            .filter(approval::Column::IncidentId.eq(incident.id))
            .order_by_desc(approval::Column::Id)
            .one(&self.0.db)
            .await?;
        match row {
            Some(row) => Ok(Some(self.0.approvals.load(row.id).await?)),
            None => Ok(None),
        }
    }

    /// Proposes the fix of one finding of the latest report as an ordinary approval (risk
    /// from the policy, dry-run, signatures), under a FinOps incident of its own that
    /// resolves when the fix has run. `requester` cannot sign it.
    pub async fn propose(
        &self,
        kind: FindingKind,
        namespace: &str,
        resource: &str,
        requester: &str,
    ) -> Result<ApprovalView, FinopsError> {
        let scanned = self.current().await?;
        let finding = scanned
            .report
            .findings
            .iter()
            .find(|f| f.kind == kind && f.namespace == namespace && f.resource == resource)
            .ok_or_else(|| {
                FinopsError::NoFinding(format!(
                    "the latest scan ({}) has no {} finding for `{}{resource}`",
                    scanned.at.format("%Y-%m-%d %H:%M UTC"),
                    kind.as_str(),
                    if namespace.is_empty() {
                        String::new()
                    } else {
                        format!("{namespace}/")
                    }
                ))
            })?;
        self.propose_finding(finding, &scanned.report.currency, requester)
            .await
    }

    async fn propose_finding(
        &self,
        finding: &Finding,
        currency: &str,
        requester: &str,
    ) -> Result<ApprovalView, FinopsError> {
        if let Some(existing) = self.approval_of(finding).await?
            && OPEN_APPROVALS.contains(&existing.row.status)
        {
            return Err(FinopsError::AlreadyProposed(format!(
                "`{}` is already proposed: approval {} is {}",
                finding.recommendation,
                existing.row.id,
                existing.row.status.as_str()
            )));
        }
        let key = incident_key(finding.kind, &finding.namespace, &finding.resource);
        let incident_id = match self.open_incident(&key).await? {
            Some(open) => open.id,
            None => {
                let now = Utc::now();
                // Created waiting for its approval, so the Brain never picks it up: the
                // finding is its analysis.
                incident::ActiveModel {
                    title: Set(format!(
                        "FinOps: {} saves {} {}/mo",
                        finding.recommendation, currency, finding.saving
                    )),
                    service: Set(None),
                    correlation_key: Set(key),
                    severity: Set(engine::alert::Severity::Info),
                    status: Set(IncidentStatus::AwaitingApproval),
                    created_at: Set(now),
                    updated_at: Set(now),
                    last_alert_at: Set(now),
                    resolved_at: Set(None),
                    ..Default::default()
                }
                .insert(&self.0.db)
                .await?
                .id
            }
        };
        let view = self
            .0
            .approvals
            .propose(NewApproval {
                incident_id,
                request: ActionRequest {
                    kind: finding.action_kind.clone(),
                    target: finding.resource.clone(),
                    namespace: (!finding.namespace.is_empty()).then(|| finding.namespace.clone()),
                    params: finding.action_params.clone(),
                    labels: Default::default(),
                    requested_by: requester.to_owned(),
                },
                rationale: format!("{}: {}", finding.recommendation, finding.detail),
                finops: Some(Saving {
                    kind: finding.kind,
                    recommendation: finding.recommendation.clone(),
                    monthly: finding.saving,
                    currency: currency.to_owned(),
                }),
            })
            .await?;
        tracing::info!(
            approval = view.row.id,
            incident = incident_id,
            action = %finding.action_kind,
            saving = %finding.saving,
            "FinOps fix proposed"
        );
        Ok(view)
    }

    /// Proposes every finding of `report` not already waiting or running; says how many.
    pub async fn propose_all(&self, report: &Report, requester: &str) -> usize {
        let mut proposed = 0;
        for finding in &report.findings {
            match self
                .propose_finding(finding, &report.currency, requester)
                .await
            {
                Ok(_) => proposed += 1,
                Err(FinopsError::AlreadyProposed(_)) => {}
                Err(error) => tracing::warn!(
                    %error,
                    finding = %finding.recommendation,
                    "could not propose a FinOps fix"
                ),
            }
        }
        proposed
    }

    /// Scans at start and then every `scan_every_minutes`.
    pub fn start_schedule(&self) {
        let minutes = self.0.config.scan_every_minutes.unwrap_or(60);
        if minutes == 0 || !self.has_source() {
            return;
        }
        let finops = self.clone();
        tokio::spawn(async move {
            let every = chrono::Duration::minutes(minutes as i64);
            loop {
                match finops.scheduled_scan(every).await {
                    Ok(true) => {}
                    Ok(false) => tracing::debug!("scheduled FinOps scan already done by a replica"),
                    Err(e) => tracing::warn!(error = %e, "scheduled FinOps scan failed"),
                }
                tokio::time::sleep(Duration::from_secs(minutes * 60)).await;
            }
        });
    }
}
