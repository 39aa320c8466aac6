//! FinOps over GraphQL: the latest report, and a scan on demand.

use async_graphql::{Context, Enum, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use engine::Role;

use super::approvals::RiskLevel;
use super::{ApiError, principal, require_role};
use crate::finops::{Finops, FinopsError, Scanned};

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
pub struct FinopsFinding {
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

fn api(error: FinopsError) -> ApiError {
    match error {
        FinopsError::NoMetrics(why) => ApiError::Conflict(why),
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
        let scanned = match finops.latest().await.map_err(api)? {
            Some(s) => s,
            None => finops.scan("FIRST_READ").await.map_err(api)?,
        };
        Ok(scanned.into())
    }
}

#[derive(Default)]
pub struct FinopsMutation;

#[Object]
impl FinopsMutation {
    /// Scans now (ADMIN, DEVOPS, SRE) and returns the new report.
    async fn run_finops_scan(&self, ctx: &Context<'_>) -> async_graphql::Result<FinopsReport> {
        let who = require_role(ctx, &[Role::Admin, Role::Devops, Role::Sre])?;
        let finops = ctx.data::<Finops>()?;
        Ok(finops
            .scan(&format!("MANUAL:{}", who.name))
            .await
            .map_err(api)?
            .into())
    }
}
