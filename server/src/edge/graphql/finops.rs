//! FinOps over GraphQL: the latest report, and a scan on demand.

use async_graphql::{ComplexObject, Context, Enum, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use engine::Role;

use super::approvals::{Approval, RiskLevel};
use super::{ApiError, principal, require_role};
use crate::services::finops::{Finops, FinopsError, Scanned};
use engine::finops::Saving;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "engine::finops::FindingKind")]
pub enum FindingKind {
    OrphanedPvc,
    ZombiePod,
    OverprovisionedNode,
}

/// Whether a saving is there now, or needs a scale-down first.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "engine::finops::Bucket")]
pub enum SavingBucket {
    Realizable,
    Freed,
}

/// One finding; money as decimal strings with two places.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct FinopsFinding {
    #[graphql(skip)]
    finding: engine::finops::Finding,
    kind: FindingKind,
    resource: String,
    /// Empty for nodes.
    namespace: String,
    /// What the resource costs, or the fix saves, a month.
    monthly_cost: String,
    /// What counts towards the report's tiles.
    saving: String,
    bucket: SavingBucket,
    risk: RiskLevel,
    recommendation: String,
    /// The action that fixes it, as `proposeAction` takes it.
    action_kind: String,
    action_params: Json<serde_json::Value>,
    /// How the amount was reached.
    detail: String,
}

/// A scan's result.
#[derive(SimpleObject)]
pub struct FinopsReport {
    currency: String,
    monthly_waste: String,
    /// Fixable by an action now (delete a claim, resize a node).
    realizable_monthly: String,
    /// Freed once capacity is scaled down (zombie pods).
    freed_monthly: String,
    /// What the realizable fixes save in a year.
    annual_if_all_fixed: String,
    /// Largest first.
    findings: Vec<FinopsFinding>,
    scanned_at: DateTime<Utc>,
    /// `SCHEDULE`, or `MANUAL:<user>`.
    trigger: String,
}

impl From<Scanned> for FinopsReport {
    fn from(s: Scanned) -> Self {
        let r = s.report;
        FinopsReport {
            currency: r.currency,
            monthly_waste: r.monthly_waste.to_string(),
            realizable_monthly: r.realizable_monthly.to_string(),
            freed_monthly: r.freed_monthly.to_string(),
            annual_if_all_fixed: r.annual_if_all_fixed.to_string(),
            findings: r
                .findings
                .into_iter()
                .map(|f| FinopsFinding {
                    finding: f.clone(),
                    kind: f.kind.into(),
                    resource: f.resource,
                    namespace: f.namespace,
                    monthly_cost: f.monthly_cost.to_string(),
                    saving: f.saving.to_string(),
                    bucket: f.bucket.into(),
                    risk: f.risk.into(),
                    recommendation: f.recommendation,
                    action_kind: f.action_kind,
                    action_params: Json(f.action_params),
                    detail: f.detail,
                })
                .collect(),
            scanned_at: s.at,
            trigger: s.trigger,
        }
    }
}

#[ComplexObject]
impl FinopsFinding {
    /// The latest approval proposed for this finding while its FinOps incident is open
    /// (`proposeFinopsFix`), whatever became of it.
    async fn approval(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Approval>> {
        let finops = ctx.data::<Finops>()?;
        Ok(finops
            .approval_of(&self.finding)
            .await
            .map_err(api)?
            .map(Approval))
    }
}

/// What a FinOps fix saves, on its approval.
#[derive(SimpleObject)]
pub struct FinopsSaving {
    kind: FindingKind,
    recommendation: String,
    /// A month, decimal with two places.
    monthly: String,
    /// Twelve months.
    annual: String,
    currency: String,
}

impl From<Saving> for FinopsSaving {
    fn from(s: Saving) -> Self {
        FinopsSaving {
            kind: s.kind.into(),
            recommendation: s.recommendation,
            monthly: s.monthly.to_string(),
            annual: engine::finops::Money(s.monthly.0 * 12).to_string(),
            currency: s.currency,
        }
    }
}

fn api(error: FinopsError) -> ApiError {
    match error {
        FinopsError::NoMetrics(why) | FinopsError::AlreadyProposed(why) => ApiError::Conflict(why),
        FinopsError::NoFinding(why) => ApiError::NotFound(why),
        FinopsError::Approval(e) => e.into(),
        FinopsError::Db(e) => ApiError::internal(e),
    }
}

#[derive(Default)]
pub struct FinopsQuery;

#[Object]
impl FinopsQuery {
    /// The latest scan (one runs now if none has yet).
    async fn finops_report(&self, ctx: &Context<'_>) -> async_graphql::Result<FinopsReport> {
        principal(ctx)?;
        let finops = ctx.data::<Finops>()?;
        Ok(finops.current().await.map_err(api)?.into())
    }
}

#[derive(Default)]
pub struct FinopsMutation;

#[Object]
impl FinopsMutation {
    /// Scans now (ADMIN, DEVOPS, SRE) and returns the new report; with `propose`, every
    /// finding not already waiting or running is proposed as an approval (see
    /// `proposeFinopsFix`), the caller its requester.
    async fn run_finops_scan(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] propose: bool,
    ) -> async_graphql::Result<FinopsReport> {
        let who = require_role(ctx, FINOPS_ROLES)?;
        let finops = ctx.data::<Finops>()?;
        let scanned = finops
            .scan(&format!("MANUAL:{}", who.name))
            .await
            .map_err(api)?;
        if propose {
            finops.propose_all(&scanned.report, &who.name).await;
        }
        Ok(scanned.into())
    }

    /// Proposes the fix of one finding of the latest report (ADMIN, DEVOPS, SRE) as an
    /// ordinary approval — risk from the policy, dry-run, signatures — under a FinOps incident
    /// that resolves once the fix has run. The approval shows the saving (`finopsSaving`).
    /// `NOT_FOUND` when the latest report has no such finding; `CONFLICT` when its fix is
    /// already waiting or running.
    async fn propose_finops_fix(
        &self,
        ctx: &Context<'_>,
        kind: FindingKind,
        resource: String,
        #[graphql(desc = "Empty or absent for nodes.")] namespace: Option<String>,
    ) -> async_graphql::Result<Approval> {
        let who = require_role(ctx, FINOPS_ROLES)?;
        let finops = ctx.data::<Finops>()?;
        let view = finops
            .propose(
                kind.into(),
                namespace.as_deref().unwrap_or(""),
                &resource,
                &who.name,
            )
            .await
            .map_err(api)?;
        Ok(Approval(view))
    }
}

const FINOPS_ROLES: &[Role] = &[Role::Admin, Role::Devops, Role::Sre];

/// An approval's saving, when it is a FinOps fix.
pub fn saving_of(row: &entity::approval::Model) -> Option<FinopsSaving> {
    let saving: Saving = serde_json::from_str(row.finops.as_deref()?).ok()?;
    Some(saving.into())
}
