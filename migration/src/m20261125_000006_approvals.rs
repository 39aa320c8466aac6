//! Approvals with their signatures, executions and the trust each action pattern has earned.
//! Every status change is a conditional update on `(status, version)`; the unique indexes
//! make a double signature or a second execution impossible even past the application.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Approvals::Table)
                    .if_not_exists()
                    .col(pk_auto(Approvals::Id))
                    .col(integer(Approvals::IncidentId))
                    .col(string(Approvals::Kind))
                    .col(string(Approvals::Target))
                    .col(string_null(Approvals::Namespace))
                    .col(text(Approvals::Params))
                    .col(text(Approvals::Labels))
                    .col(text(Approvals::Rationale))
                    .col(string(Approvals::RequestedBy))
                    .col(string(Approvals::Pattern))
                    .col(string(Approvals::BaseRisk))
                    .col(string(Approvals::EffectiveRisk))
                    .col(integer(Approvals::Trust))
                    .col(string(Approvals::Status))
                    .col(integer(Approvals::Version))
                    .col(text(Approvals::DryRun))
                    .col(text_null(Approvals::Recheck))
                    .col(text_null(Approvals::VoidReason))
                    .col(timestamp_with_time_zone(Approvals::CreatedAt))
                    .col(timestamp_with_time_zone(Approvals::ExpiresAt))
                    .col(timestamp_with_time_zone_null(Approvals::DecidedAt))
                    .col(timestamp_with_time_zone(Approvals::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_approvals_incident")
                            .from(Approvals::Table, Approvals::IncidentId)
                            .to(Incidents::Table, Incidents::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("ix_approvals_status", Approvals::Status),
            ("ix_approvals_incident", Approvals::IncidentId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Approvals::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(ApprovalSignatures::Table)
                    .if_not_exists()
                    .col(pk_auto(ApprovalSignatures::Id))
                    .col(integer(ApprovalSignatures::ApprovalId))
                    .col(string(ApprovalSignatures::Signer))
                    .col(string(ApprovalSignatures::Role))
                    .col(string(ApprovalSignatures::Decision))
                    .col(text_null(ApprovalSignatures::Comment))
                    .col(timestamp_with_time_zone(ApprovalSignatures::At))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_approval_signatures_approval")
                            .from(ApprovalSignatures::Table, ApprovalSignatures::ApprovalId)
                            .to(Approvals::Table, Approvals::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_approval_signatures_signer")
                    .table(ApprovalSignatures::Table)
                    .col(ApprovalSignatures::ApprovalId)
                    .col(ApprovalSignatures::Signer)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Executions::Table)
                    .if_not_exists()
                    .col(pk_auto(Executions::Id))
                    .col(integer(Executions::ApprovalId))
                    .col(string(Executions::Executor))
                    .col(string(Executions::Status))
                    .col(text(Executions::Output))
                    .col(timestamp_with_time_zone(Executions::StartedAt))
                    .col(timestamp_with_time_zone_null(Executions::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_executions_approval")
                            .from(Executions::Table, Executions::ApprovalId)
                            .to(Approvals::Table, Approvals::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_executions_approval")
                    .table(Executions::Table)
                    .col(Executions::ApprovalId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TrustScores::Table)
                    .if_not_exists()
                    .col(string(TrustScores::Pattern).primary_key())
                    .col(integer(TrustScores::Score))
                    .col(string(TrustScores::BaseRisk))
                    .col(timestamp_with_time_zone(TrustScores::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            TrustScores::Table.into_iden(),
            Executions::Table.into_iden(),
            ApprovalSignatures::Table.into_iden(),
            Approvals::Table.into_iden(),
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
}

#[derive(DeriveIden)]
enum Approvals {
    Table,
    Id,
    IncidentId,
    Kind,
    Target,
    Namespace,
    Params,
    Labels,
    Rationale,
    RequestedBy,
    Pattern,
    BaseRisk,
    EffectiveRisk,
    Trust,
    Status,
    Version,
    DryRun,
    Recheck,
    VoidReason,
    CreatedAt,
    ExpiresAt,
    DecidedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ApprovalSignatures {
    Table,
    Id,
    ApprovalId,
    Signer,
    Role,
    Decision,
    Comment,
    At,
}

#[derive(DeriveIden)]
enum Executions {
    Table,
    Id,
    ApprovalId,
    Executor,
    Status,
    Output,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum TrustScores {
    Table,
    Pattern,
    Score,
    BaseRisk,
    UpdatedAt,
}
