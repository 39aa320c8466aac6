//! An escalation of an unacknowledged incident or an unsigned approval: its policy, the next
//! step to page and when it falls due.

use sea_orm::entity::prelude::*;

pub use crate::states::EscalationStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "escalations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// `incident:<id>` or `approval:<id>`.
    #[sea_orm(unique)]
    pub subject: String,
    pub incident_id: i32,
    pub approval_id: Option<i32>,
    pub policy_id: i32,
    pub started_at: DateTimeUtc,
    /// The index of the next step to page.
    pub next_step: i32,
    pub next_at: DateTimeUtc,
    pub status: EscalationStatus,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
