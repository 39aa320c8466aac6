//! An escalation policy: which incidents it is for (a route) and whom it pages, in order.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "escalation_policies")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub name: String,
    /// JSON `engine::oncall::escalation::Route`.
    #[sea_orm(column_type = "Text")]
    pub route: String,
    /// JSON array of `engine::oncall::escalation::Step`.
    #[sea_orm(column_type = "Text")]
    pub steps: String,
    /// Routes are tried by position, lowest first.
    pub position: i32,
    pub created_by: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
