//! An event worth telling, written in the transaction of the change that caused it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub kind: String,
    pub incident_id: Option<i32>,
    pub approval_id: Option<i32>,
    /// JSON of `server::notify::Payload`; pseudonymised text only.
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    pub routed: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
