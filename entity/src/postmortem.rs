//! A resolved incident's postmortem (Markdown, pseudonymised) and its key times in seconds
//! from the first alert; written once, when it resolves.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "postmortems")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub incident_id: i32,
    #[sea_orm(column_type = "Text")]
    pub markdown: String,
    pub resolved_at: DateTimeUtc,
    pub to_detect: Option<i64>,
    pub to_propose: Option<i64>,
    pub to_approve: Option<i64>,
    pub to_mitigate: Option<i64>,
    pub to_resolve: Option<i64>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
