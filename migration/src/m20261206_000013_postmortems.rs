//! Postmortems and the archive: each resolved incident's postmortem with its key times, the
//! queue of objects copied to the S3 archive, and the indexes an incident's timeline reads by.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Postmortems::Table)
                    .if_not_exists()
                    // One per incident: written once, when it resolves.
                    .col(integer(Postmortems::IncidentId).primary_key())
                    // Markdown, pseudonymised.
                    .col(text(Postmortems::Markdown))
                    .col(timestamp_with_time_zone(Postmortems::ResolvedAt))
                    // Seconds from the first alert (null: the moment never came).
                    .col(big_integer_null(Postmortems::ToDetect))
                    .col(big_integer_null(Postmortems::ToPropose))
                    .col(big_integer_null(Postmortems::ToApprove))
                    .col(big_integer_null(Postmortems::ToMitigate))
                    .col(big_integer_null(Postmortems::ToResolve))
                    .col(timestamp_with_time_zone(Postmortems::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_postmortems_resolved_at")
                    .table(Postmortems::Table)
                    .col(Postmortems::ResolvedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ArchiveObjects::Table)
                    .if_not_exists()
                    .col(pk_auto(ArchiveObjects::Id))
                    // The object's key in the bucket; content-addressed, so a repeat is a no-op.
                    .col(string_uniq(ArchiveObjects::Key))
                    // POSTMORTEM, AUDIT_SEGMENT or KNOWLEDGE_SNAPSHOT.
                    .col(string(ArchiveObjects::Kind))
                    .col(text(ArchiveObjects::Body))
                    .col(string(ArchiveObjects::ContentType))
                    // PENDING or UPLOADED.
                    .col(string(ArchiveObjects::Status))
                    .col(integer(ArchiveObjects::Attempts))
                    .col(timestamp_with_time_zone(ArchiveObjects::NextAttemptAt))
                    // A worker's lease; a stopped worker's lease runs out and another takes it.
                    .col(timestamp_with_time_zone_null(ArchiveObjects::LockedUntil))
                    .col(text_null(ArchiveObjects::LastError))
                    // An audit segment's first and last event ids; unique first ids keep two
                    // replicas from cutting overlapping segments.
                    .col(big_integer_null(ArchiveObjects::SegmentFirst).unique_key())
                    .col(big_integer_null(ArchiveObjects::SegmentLast))
                    .col(timestamp_with_time_zone(ArchiveObjects::CreatedAt))
                    .col(timestamp_with_time_zone_null(ArchiveObjects::UploadedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_archive_objects_due")
                    .table(ArchiveObjects::Table)
                    .col(ArchiveObjects::Status)
                    .col(ArchiveObjects::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        // An incident's timeline reads the audit events of its approvals and its notifications.
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_subject")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::Subject)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_notification_events_incident")
                    .table(NotificationEvents::Table)
                    .col(NotificationEvents::IncidentId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in [
            "idx_notification_events_incident",
            "idx_audit_events_subject",
        ] {
            manager
                .drop_index(Index::drop().name(index).to_owned())
                .await?;
        }
        manager
            .drop_table(Table::drop().table(ArchiveObjects::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Postmortems::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Postmortems {
    Table,
    IncidentId,
    Markdown,
    ResolvedAt,
    ToDetect,
    ToPropose,
    ToApprove,
    ToMitigate,
    ToResolve,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ArchiveObjects {
    Table,
    Id,
    Key,
    Kind,
    Body,
    ContentType,
    Status,
    Attempts,
    NextAttemptAt,
    LockedUntil,
    LastError,
    SegmentFirst,
    SegmentLast,
    CreatedAt,
    UploadedAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Subject,
}

#[derive(DeriveIden)]
enum NotificationEvents {
    Table,
    IncidentId,
}
