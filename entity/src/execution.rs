//! The one execution of an approval (unique per approval); output is pseudonymised.

use sea_orm::entity::prelude::*;

pub use crate::states::ExecutionStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "executions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub approval_id: i32,
    pub executor: String,
    pub status: ExecutionStatus,
    #[sea_orm(column_type = "Text")]
    pub output: String,
    pub started_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    /// Renewed while it runs; a RUNNING execution whose lease ran out was interrupted.
    pub lease_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
