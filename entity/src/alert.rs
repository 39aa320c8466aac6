//! One alert (deduplicated by fingerprint) of an incident. Texts are pseudonymised.

use engine::alert::{AlertStatus, Severity};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alerts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub incident_id: i32,
    pub fingerprint: String,
    pub source: String,
    pub status: AlertStatus,
    #[sea_orm(column_type = "Text")]
    pub name: String,
    pub severity: Severity,
    #[sea_orm(column_type = "Text", nullable)]
    pub service: Option<String>,
    /// JSON object of pseudonymised labels.
    #[sea_orm(column_type = "Text")]
    pub labels: String,
    /// JSON object of pseudonymised annotations.
    #[sea_orm(column_type = "Text")]
    pub annotations: String,
    pub starts_at: Option<DateTimeUtc>,
    pub ends_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub generator_url: Option<String>,
    pub count: i32,
    pub first_seen: DateTimeUtc,
    pub last_seen: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::incident::Entity",
        from = "Column::IncidentId",
        to = "super::incident::Column::Id",
        on_delete = "Cascade"
    )]
    Incident,
}

impl Related<super::incident::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Incident.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
