//! The trust an action pattern has earned: +1 per human approval, 0 after a reject.

use engine::policy::RiskLevel;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "trust_scores")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub pattern: String,
    pub score: i32,
    pub base_risk: RiskLevel,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
