//! An approval: one proposed action, its risk, its dry-run and where it stands.
//! `version` grows with every change; updates are conditional on it.

use engine::policy::{ApprovalStatus, RiskLevel};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "approvals")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub incident_id: i32,
    pub kind: String,
    pub target: String,
    pub namespace: Option<String>,
    /// JSON object.
    #[sea_orm(column_type = "Text")]
    pub params: String,
    /// JSON object of string labels.
    #[sea_orm(column_type = "Text")]
    pub labels: String,
    #[sea_orm(column_type = "Text")]
    pub rationale: String,
    pub requested_by: String,
    pub pattern: String,
    pub base_risk: RiskLevel,
    pub effective_risk: RiskLevel,
    /// The pattern's trust when the approval was made.
    pub trust: i32,
    pub status: ApprovalStatus,
    pub version: i32,
    /// engine::dryrun::DryRunReport as JSON, from when it was proposed.
    #[sea_orm(column_type = "Text")]
    pub dry_run: String,
    /// The report of the re-check right before execution.
    #[sea_orm(column_type = "Text", nullable)]
    pub recheck: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub void_reason: Option<String>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub decided_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
    /// For a FinOps fix: what it saves (JSON, `engine::finops::Saving`).
    #[sea_orm(column_type = "Text", nullable)]
    pub finops: Option<String>,
    /// SUPERSEDED: the approval a newer analysis proposed instead (none when it proposed
    /// no action).
    pub superseded_by: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
