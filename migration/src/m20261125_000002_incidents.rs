//! Incidents, their alerts, and each incident's sealed pseudonym vault.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Incidents::Table)
                    .if_not_exists()
                    .col(pk_auto(Incidents::Id))
                    .col(text(Incidents::Title))
                    .col(text_null(Incidents::Service))
                    .col(string(Incidents::CorrelationKey))
                    .col(string(Incidents::Severity))
                    .col(string(Incidents::Status))
                    .col(timestamp_with_time_zone(Incidents::CreatedAt))
                    .col(timestamp_with_time_zone(Incidents::UpdatedAt))
                    .col(timestamp_with_time_zone(Incidents::LastAlertAt))
                    .col(timestamp_with_time_zone_null(Incidents::ResolvedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_incidents_correlation")
                    .table(Incidents::Table)
                    .col(Incidents::CorrelationKey)
                    .col(Incidents::Status)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alerts::Table)
                    .if_not_exists()
                    .col(pk_auto(Alerts::Id))
                    .col(integer(Alerts::IncidentId))
                    .col(string(Alerts::Fingerprint))
                    .col(string(Alerts::Source))
                    .col(string(Alerts::Status))
                    .col(text(Alerts::Name))
                    .col(string(Alerts::Severity))
                    .col(text_null(Alerts::Service))
                    .col(text(Alerts::Labels))
                    .col(text(Alerts::Annotations))
                    .col(timestamp_with_time_zone_null(Alerts::StartsAt))
                    .col(timestamp_with_time_zone_null(Alerts::EndsAt))
                    .col(text_null(Alerts::GeneratorUrl))
                    .col(integer(Alerts::Count))
                    .col(timestamp_with_time_zone(Alerts::FirstSeen))
                    .col(timestamp_with_time_zone(Alerts::LastSeen))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_alerts_incident")
                            .from(Alerts::Table, Alerts::IncidentId)
                            .to(Incidents::Table, Incidents::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_alerts_fingerprint")
                    .table(Alerts::Table)
                    .col(Alerts::Fingerprint)
                    .col(Alerts::Status)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_alerts_incident")
                    .table(Alerts::Table)
                    .col(Alerts::IncidentId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IncidentVaults::Table)
                    .if_not_exists()
                    .col(integer(IncidentVaults::IncidentId).primary_key())
                    .col(blob(IncidentVaults::Sealed))
                    .col(timestamp_with_time_zone(IncidentVaults::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_incident_vaults_incident")
                            .from(IncidentVaults::Table, IncidentVaults::IncidentId)
                            .to(Incidents::Table, Incidents::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IncidentVaults::Table.into_iden(),
            Alerts::Table.into_iden(),
            Incidents::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Incidents {
    Table,
    Id,
    Title,
    Service,
    CorrelationKey,
    Severity,
    Status,
    CreatedAt,
    UpdatedAt,
    LastAlertAt,
    ResolvedAt,
}

#[derive(DeriveIden)]
enum Alerts {
    Table,
    Id,
    IncidentId,
    Fingerprint,
    Source,
    Status,
    Name,
    Severity,
    Service,
    Labels,
    Annotations,
    StartsAt,
    EndsAt,
    GeneratorUrl,
    Count,
    FirstSeen,
    LastSeen,
}

#[derive(DeriveIden)]
enum IncidentVaults {
    Table,
    IncidentId,
    Sealed,
    UpdatedAt,
}
