//! The Brain's output: each incident's analysis and its numbered thinking events.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ThinkingEvents::Table)
                    .if_not_exists()
                    .col(pk_auto(ThinkingEvents::Id))
                    .col(integer(ThinkingEvents::IncidentId))
                    .col(integer(ThinkingEvents::Seq))
                    .col(string(ThinkingEvents::Kind))
                    .col(text(ThinkingEvents::Text))
                    .col(timestamp_with_time_zone(ThinkingEvents::At))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_thinking_events_incident")
                            .from(ThinkingEvents::Table, ThinkingEvents::IncidentId)
                            .to(Incidents::Table, Incidents::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_thinking_events_incident_seq")
                    .table(ThinkingEvents::Table)
                    .col(ThinkingEvents::IncidentId)
                    .col(ThinkingEvents::Seq)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Analyses::Table)
                    .if_not_exists()
                    .col(integer(Analyses::IncidentId).primary_key())
                    .col(string(Analyses::Brain))
                    .col(text(Analyses::Summary))
                    .col(text_null(Analyses::RootCause))
                    .col(double(Analyses::Confidence))
                    .col(text(Analyses::Proposal))
                    .col(text(Analyses::RootCauses))
                    .col(text(Analyses::BlastRadius))
                    .col(big_integer(Analyses::InputTokens))
                    .col(big_integer(Analyses::OutputTokens))
                    .col(double(Analyses::CostUsd))
                    .col(timestamp_with_time_zone(Analyses::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_analyses_incident")
                            .from(Analyses::Table, Analyses::IncidentId)
                            .to(Incidents::Table, Incidents::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Analyses::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ThinkingEvents::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Incidents {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ThinkingEvents {
    Table,
    Id,
    IncidentId,
    Seq,
    Kind,
    Text,
    At,
}

#[derive(DeriveIden)]
enum Analyses {
    Table,
    IncidentId,
    Brain,
    Summary,
    RootCause,
    Confidence,
    Proposal,
    RootCauses,
    BlastRadius,
    InputTokens,
    OutputTokens,
    CostUsd,
    CreatedAt,
}
