//! FinOps reports: every scan's result, so the latest survives a restart.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(FinopsReports::Table)
                    .if_not_exists()
                    .col(pk_auto(FinopsReports::Id))
                    // SCHEDULE or MANUAL (and who asked).
                    .col(string(FinopsReports::Trigger))
                    .col(text(FinopsReports::Report))
                    .col(timestamp_with_time_zone(FinopsReports::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(FinopsReports::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum FinopsReports {
    Table,
    Id,
    Trigger,
    Report,
    CreatedAt,
}
