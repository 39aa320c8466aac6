//! One person's decision on an approval; unique per (approval, signer).

use engine::Role;
use engine::policy::Decision;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "approval_signatures")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub approval_id: i32,
    pub signer: String,
    pub role: Role,
    pub decision: Decision,
    #[sea_orm(column_type = "Text", nullable)]
    pub comment: Option<String>,
    pub at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
