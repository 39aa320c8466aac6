//! An alert a silence held back, per occurrence of the silence: counted, its last status kept
//! (the digest says what fired and what resolved meanwhile). Texts are pseudonymised.

use engine::alert::AlertStatus;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "silenced_alerts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub silence_id: i32,
    /// The start of the silence's occurrence (a silence has one).
    pub occurrence_start: DateTimeUtc,
    pub fingerprint: String,
    #[sea_orm(column_type = "Text")]
    pub name: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub service: Option<String>,
    /// JSON object of pseudonymised labels.
    #[sea_orm(column_type = "Text")]
    pub labels: String,
    /// The incident the alert already belonged to, if any.
    pub incident_id: Option<i32>,
    pub status: AlertStatus,
    /// Firings held back.
    pub count: i32,
    pub first_seen: DateTimeUtc,
    pub last_seen: DateTimeUtc,
    pub resolved_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
