//! An incident: alerts correlated by service and topology within a window. Texts are
//! pseudonymised.

use engine::alert::Severity;
use engine::incident::IncidentStatus;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "incidents")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(column_type = "Text")]
    pub title: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub service: Option<String>,
    /// Keyed digest of the raw service (or alert name): correlation without the raw value.
    pub correlation_key: String,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub last_alert_at: DateTimeUtc,
    pub resolved_at: Option<DateTimeUtc>,
    /// JSON array of keyed digests of its alerted services that are in the topology.
    #[sea_orm(column_type = "Text")]
    pub topology_services: String,
    /// Keyed digest of the values of the labels alerts must share to join it.
    pub scope: Option<String>,
    /// Status MERGED: the incident that absorbed this one.
    pub merged_into: Option<i32>,
    /// Who acknowledged it first, and when.
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTimeUtc>,
    /// The user it is assigned to.
    pub assignee: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::alert::Entity")]
    Alert,
}

impl Related<super::alert::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Alert.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
