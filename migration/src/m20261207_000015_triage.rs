//! On-call triage: who acknowledged an incident and when, whom it is assigned to, and its
//! comments (Markdown, pseudonymised with the incident's labels).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            ColumnDef::new(Incidents::AcknowledgedBy)
                .string()
                .null()
                .to_owned(),
            ColumnDef::new(Incidents::AcknowledgedAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new(Incidents::Assignee)
                .string()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Incidents::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_incidents_assignee")
                    .table(Incidents::Table)
                    .col(Incidents::Assignee)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IncidentComments::Table)
                    .if_not_exists()
                    .col(pk_auto(IncidentComments::Id))
                    .col(integer(IncidentComments::IncidentId))
                    .col(string(IncidentComments::Author))
                    .col(text(IncidentComments::Body))
                    .col(timestamp_with_time_zone(IncidentComments::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_incident_comments_incident")
                    .table(IncidentComments::Table)
                    .col(IncidentComments::IncidentId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IncidentComments::Table).to_owned())
            .await?;
        manager
            .drop_index(Index::drop().name("idx_incidents_assignee").to_owned())
            .await?;
        for column in [
            Incidents::AcknowledgedBy,
            Incidents::AcknowledgedAt,
            Incidents::Assignee,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Incidents::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Incidents {
    Table,
    AcknowledgedBy,
    AcknowledgedAt,
    Assignee,
}

#[derive(DeriveIden)]
enum IncidentComments {
    Table,
    Id,
    IncidentId,
    Author,
    Body,
    CreatedAt,
}
