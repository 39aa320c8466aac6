//! Analysis that settles: what an analysis was based on and how many ran; approvals that a
//! newer analysis superseded.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            // JSON: the root cause, alerting services, merged incidents and diagnostics the
            // analysis saw; a run starts again when they change.
            ColumnDef::new(Analyses::Basis).text().null().to_owned(),
            // Automatic runs so far (bounded by `[brain] max_runs`).
            ColumnDef::new(Analyses::Runs)
                .integer()
                .not_null()
                .default(1)
                .to_owned(),
            // Why the latest run started, as the thinking stream said it.
            ColumnDef::new(Analyses::Trigger).text().null().to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Analyses::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Approvals::Table)
                    .add_column(ColumnDef::new(Approvals::SupersededBy).integer().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Approvals::Table)
                    .drop_column(Approvals::SupersededBy)
                    .to_owned(),
            )
            .await?;
        for column in [Analyses::Basis, Analyses::Runs, Analyses::Trigger] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Analyses::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Analyses {
    Table,
    Basis,
    Runs,
    Trigger,
}

#[derive(DeriveIden)]
enum Approvals {
    Table,
    SupersededBy,
}
