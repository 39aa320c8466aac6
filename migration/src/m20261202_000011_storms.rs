//! Alert storms: what topology correlation keeps on an incident, and merges.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            // JSON array of keyed digests of the alerted services that are in the topology.
            ColumnDef::new(Incidents::TopologyServices)
                .text()
                .not_null()
                .default("[]")
                .to_owned(),
            // Keyed digest of the values of the labels that must match (namespace, cluster).
            ColumnDef::new(Incidents::Scope).string().null().to_owned(),
            // The incident this one was merged into (status MERGED).
            ColumnDef::new(Incidents::MergedInto)
                .integer()
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
                    .name("idx_incidents_merged_into")
                    .table(Incidents::Table)
                    .col(Incidents::MergedInto)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("idx_incidents_merged_into").to_owned())
            .await?;
        for column in [
            Incidents::TopologyServices,
            Incidents::Scope,
            Incidents::MergedInto,
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
    TopologyServices,
    Scope,
    MergedInto,
}
