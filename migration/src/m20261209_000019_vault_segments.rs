//! Label maps stored in segments: an incident's `incident_vaults` row keeps a base (the whole
//! map as sealed at `base_revision`) and counts every store in `revision`; each store after the
//! base seals only the labels it added, as an `incident_vault_segments` row numbered with its
//! revision. The map is the base and then its segments in order. A growing map costs each
//! store what it added rather than the whole map; the base is sealed again now and then, and
//! the segments it took in deleted. Existing rows are bases at revision 0.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for column in [IncidentVaults::Revision, IncidentVaults::BaseRevision] {
            manager
                .alter_table(
                    Table::alter()
                        .table(IncidentVaults::Table)
                        .add_column(integer(column).default(0))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(IncidentVaultSegments::Table)
                    .if_not_exists()
                    .col(integer(IncidentVaultSegments::IncidentId))
                    .col(integer(IncidentVaultSegments::Revision))
                    .col(blob(IncidentVaultSegments::Sealed))
                    .primary_key(
                        Index::create()
                            .col(IncidentVaultSegments::IncidentId)
                            .col(IncidentVaultSegments::Revision),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_incident_vault_segments_incident")
                            .from(
                                IncidentVaultSegments::Table,
                                IncidentVaultSegments::IncidentId,
                            )
                            .to(Incidents::Table, Incidents::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IncidentVaultSegments::Table).to_owned())
            .await?;
        for column in [IncidentVaults::BaseRevision, IncidentVaults::Revision] {
            manager
                .alter_table(
                    Table::alter()
                        .table(IncidentVaults::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum IncidentVaults {
    Table,
    Revision,
    BaseRevision,
}

#[derive(DeriveIden)]
enum IncidentVaultSegments {
    Table,
    IncidentId,
    Revision,
    Sealed,
}

#[derive(DeriveIden)]
enum Incidents {
    Table,
    Id,
}
