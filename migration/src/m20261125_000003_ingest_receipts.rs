//! Keys of already-applied submissions (e.g. a stream entry id), so a redelivery after a crash
//! between commit and acknowledgement changes nothing.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IngestReceipts::Table)
                    .if_not_exists()
                    .col(string(IngestReceipts::Key).primary_key())
                    .col(timestamp_with_time_zone(IngestReceipts::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IngestReceipts::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum IngestReceipts {
    Table,
    Key,
    CreatedAt,
}
