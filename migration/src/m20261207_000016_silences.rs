//! Silences and maintenance windows, and the alerts they held back (stored, counted, never
//! lost; the digest after each occurrence reads them).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Silences::Table)
                    .if_not_exists()
                    .col(pk_auto(Silences::Id))
                    // SILENCE or MAINTENANCE.
                    .col(string(Silences::Kind))
                    .col(string_null(Silences::Name))
                    .col(blob(Silences::MatchersSealed))
                    .col(text(Silences::Matchers))
                    .col(text(Silences::Comment))
                    .col(string(Silences::CreatedBy))
                    .col(timestamp_with_time_zone(Silences::CreatedAt))
                    .col(timestamp_with_time_zone(Silences::StartsAt))
                    .col(timestamp_with_time_zone_null(Silences::EndsAt))
                    .col(text_null(Silences::Recurrence))
                    .col(timestamp_with_time_zone_null(Silences::ExpiredAt))
                    .col(string_null(Silences::ExpiredBy))
                    .col(timestamp_with_time_zone_null(Silences::WarnedAt))
                    .col(timestamp_with_time_zone_null(Silences::DigestedUntil))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_silences_holding")
                    .table(Silences::Table)
                    .col(Silences::ExpiredAt)
                    .col(Silences::StartsAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SilencedAlerts::Table)
                    .if_not_exists()
                    .col(pk_auto(SilencedAlerts::Id))
                    .col(integer(SilencedAlerts::SilenceId))
                    .col(timestamp_with_time_zone(SilencedAlerts::OccurrenceStart))
                    .col(string(SilencedAlerts::Fingerprint))
                    .col(text(SilencedAlerts::Name))
                    .col(text_null(SilencedAlerts::Service))
                    .col(text(SilencedAlerts::Labels))
                    .col(integer_null(SilencedAlerts::IncidentId))
                    // FIRING or RESOLVED.
                    .col(string(SilencedAlerts::Status))
                    .col(integer(SilencedAlerts::Count))
                    .col(timestamp_with_time_zone(SilencedAlerts::FirstSeen))
                    .col(timestamp_with_time_zone(SilencedAlerts::LastSeen))
                    .col(timestamp_with_time_zone_null(SilencedAlerts::ResolvedAt))
                    .to_owned(),
            )
            .await?;
        // One row per alert per occurrence: repeats count on it.
        manager
            .create_index(
                Index::create()
                    .name("idx_silenced_alerts_occurrence")
                    .table(SilencedAlerts::Table)
                    .col(SilencedAlerts::SilenceId)
                    .col(SilencedAlerts::OccurrenceStart)
                    .col(SilencedAlerts::Fingerprint)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_silenced_alerts_incident")
                    .table(SilencedAlerts::Table)
                    .col(SilencedAlerts::IncidentId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SilencedAlerts::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Silences::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Silences {
    Table,
    Id,
    Kind,
    Name,
    MatchersSealed,
    Matchers,
    Comment,
    CreatedBy,
    CreatedAt,
    StartsAt,
    EndsAt,
    Recurrence,
    ExpiredAt,
    ExpiredBy,
    WarnedAt,
    DigestedUntil,
}

#[derive(DeriveIden)]
enum SilencedAlerts {
    Table,
    Id,
    SilenceId,
    OccurrenceStart,
    Fingerprint,
    Name,
    Service,
    Labels,
    IncidentId,
    Status,
    Count,
    FirstSeen,
    LastSeen,
    ResolvedAt,
}
