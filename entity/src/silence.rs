//! A silence or maintenance window: label matchers (sealed with the vault key; a pseudonymised
//! copy for display), when it holds, who made it and why. Alerts it matches are stored in
//! `silenced_alerts`, never lost, and open nothing.

use sea_orm::entity::prelude::*;

pub use crate::states::SilenceKind;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "silences")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub kind: SilenceKind,
    /// A maintenance window's name.
    pub name: Option<String>,
    /// The matchers as JSON, sealed (AES-256-GCM, the silence's id as associated data).
    pub matchers_sealed: Vec<u8>,
    /// The matchers with labels in place of raw values, for people.
    #[sea_orm(column_type = "Text")]
    pub matchers: String,
    /// Pseudonymised.
    #[sea_orm(column_type = "Text")]
    pub comment: String,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub starts_at: DateTimeUtc,
    /// A silence's end; a window's last day (none: it recurs until expired).
    pub ends_at: Option<DateTimeUtc>,
    /// A window's recurrence as JSON (`engine::oncall::windows::Recurrence`).
    #[sea_orm(column_type = "Text", nullable)]
    pub recurrence: Option<String>,
    /// Ended early by a person.
    pub expired_at: Option<DateTimeUtc>,
    pub expired_by: Option<String>,
    /// When its creator was warned that it ends soon.
    pub warned_at: Option<DateTimeUtc>,
    /// The end of the last occurrence whose digest went out.
    pub digested_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
