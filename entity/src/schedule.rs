//! A weekly on-call rotation: participants in order, handed over on a day at a time of day in
//! a time zone (`engine::oncall::rotation`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "schedules")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub name: String,
    /// JSON array of user names, in rotation order.
    #[sea_orm(column_type = "Text")]
    pub participants: String,
    /// MON … SUN.
    pub handover_day: String,
    /// HH:MM.
    pub handover_time: String,
    pub time_zone: String,
    pub since: DateTimeUtc,
    pub created_by: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
