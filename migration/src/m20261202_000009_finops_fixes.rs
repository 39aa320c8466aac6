//! FinOps fixes as approvals: what the fix saves is kept on the approval.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Approvals::Table)
                    // JSON: the finding's recommendation, kind, monthly saving and currency.
                    .add_column(ColumnDef::new(Approvals::Finops).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Approvals::Table)
                    .drop_column(Approvals::Finops)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Approvals {
    Table,
    Finops,
}
