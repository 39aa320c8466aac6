//! One FinOps scan's report (JSON of `engine::finops::Report`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "finops_reports")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// `SCHEDULE`, or `MANUAL:<user>`.
    pub trigger: String,
    #[sea_orm(column_type = "Text")]
    pub report: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
