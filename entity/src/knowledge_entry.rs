//! One knowledge entry per (incident, path); every text is pseudonymised. The full-text index
//! (SQLite FTS5 / PostgreSQL `search` tsvector) is kept by the database, not mapped here.

use sea_orm::entity::prelude::*;

pub use crate::states::FixOutcome;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "knowledge_entries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub incident_id: i32,
    /// A, B_MANUAL, B_AUTO_SUCCESS, B_AUTO_FAILURE, PLAYBOOK.
    pub path_type: String,
    pub related_approval_id: Option<i32>,
    #[sea_orm(column_type = "Text")]
    pub title: String,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    pub service: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub alert_names: String,
    pub root_cause: Option<String>,
    /// `kind target` of the fix.
    pub action: Option<String>,
    pub outcome: Option<FixOutcome>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
