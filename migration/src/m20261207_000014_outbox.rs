//! Crash-proof execution: each execution's lease (renewed while it runs; a stopped server's
//! lease runs out and the execution ends FAILED) and the knowledge outbox (entries written in
//! the transaction that decides them, moved to the knowledge base after it commits).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Executions::Table)
                    .add_column(timestamp_with_time_zone_null(Executions::LeaseUntil))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(KnowledgeOutbox::Table)
                    .if_not_exists()
                    .col(pk_auto(KnowledgeOutbox::Id))
                    .col(integer(KnowledgeOutbox::IncidentId))
                    .col(string(KnowledgeOutbox::PathType))
                    // The entry as JSON; every text in it is pseudonymised.
                    .col(text(KnowledgeOutbox::Entry))
                    .col(integer(KnowledgeOutbox::Attempts))
                    .col(text_null(KnowledgeOutbox::LastError))
                    .col(timestamp_with_time_zone(KnowledgeOutbox::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(KnowledgeOutbox::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Executions::Table)
                    .drop_column(Executions::LeaseUntil)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Executions {
    Table,
    LeaseUntil,
}

#[derive(DeriveIden)]
enum KnowledgeOutbox {
    Table,
    Id,
    IncidentId,
    PathType,
    Entry,
    Attempts,
    LastError,
    CreatedAt,
}
