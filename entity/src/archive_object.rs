//! One object to copy to the S3 archive, with its retry state; `key` is content-addressed.

use sea_orm::entity::prelude::*;

pub use crate::states::{ArchiveKind, UploadStatus};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "archive_objects")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub key: String,
    pub kind: ArchiveKind,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    pub content_type: String,
    pub status: UploadStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub locked_until: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    /// An audit segment's first and last event ids.
    pub segment_first: Option<i64>,
    pub segment_last: Option<i64>,
    pub created_at: DateTimeUtc,
    pub uploaded_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
