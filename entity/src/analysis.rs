//! An incident's latest analysis: the Brain's proposal and the graph facts it used (JSON).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "analyses")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub incident_id: i32,
    pub brain: String,
    #[sea_orm(column_type = "Text")]
    pub summary: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub root_cause: Option<String>,
    pub confidence: f64,
    /// engine::brain::Proposal as JSON.
    #[sea_orm(column_type = "Text")]
    pub proposal: String,
    /// Vec<engine::brain::GraphFact> as JSON, ranked.
    #[sea_orm(column_type = "Text")]
    pub root_causes: String,
    /// Vec<engine::brain::GraphFact> as JSON, nearest first.
    #[sea_orm(column_type = "Text")]
    pub blast_radius: String,
    /// As reported by the provider (0 for the rules brain).
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Estimated from the price table in `[brain]`.
    pub cost_usd: f64,
    pub created_at: DateTimeUtc,
    /// What the run was based on (JSON, `services::analysis::Basis`); a change starts another.
    #[sea_orm(column_type = "Text", nullable)]
    pub basis: Option<String>,
    /// Automatic runs so far.
    pub runs: i32,
    /// Why the latest run started.
    #[sea_orm(column_type = "Text", nullable)]
    pub trigger: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
