//! A knowledge entry written in the transaction that decided it (an execution's outcome), or
//! handed over in fire-and-forget mode; the writer moves it to `knowledge_entries` and deletes
//! it in one transaction. Every text in `entry` is pseudonymised.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "knowledge_outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub incident_id: i32,
    pub path_type: String,
    /// The entry as JSON.
    #[sea_orm(column_type = "Text")]
    pub entry: String,
    pub attempts: i32,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
