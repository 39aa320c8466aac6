//! Escalation: weekly on-call schedules with overrides, escalation policies (a route and
//! ordered steps), and the escalation of each incident and each approval waiting for
//! signatures (the next step and when it falls due).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Schedules::Table)
                    .if_not_exists()
                    .col(pk_auto(Schedules::Id))
                    .col(string_uniq(Schedules::Name))
                    // JSON array of user names, in rotation order.
                    .col(text(Schedules::Participants))
                    .col(string(Schedules::HandoverDay))
                    .col(string(Schedules::HandoverTime))
                    .col(string(Schedules::TimeZone))
                    .col(timestamp_with_time_zone(Schedules::Since))
                    .col(string(Schedules::CreatedBy))
                    .col(timestamp_with_time_zone(Schedules::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ScheduleOverrides::Table)
                    .if_not_exists()
                    .col(pk_auto(ScheduleOverrides::Id))
                    .col(integer(ScheduleOverrides::ScheduleId))
                    .col(string(ScheduleOverrides::Username))
                    .col(timestamp_with_time_zone(ScheduleOverrides::StartsAt))
                    .col(timestamp_with_time_zone(ScheduleOverrides::EndsAt))
                    .col(string(ScheduleOverrides::CreatedBy))
                    .col(timestamp_with_time_zone(ScheduleOverrides::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_schedule_overrides_schedule")
                    .table(ScheduleOverrides::Table)
                    .col(ScheduleOverrides::ScheduleId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EscalationPolicies::Table)
                    .if_not_exists()
                    .col(pk_auto(EscalationPolicies::Id))
                    .col(string_uniq(EscalationPolicies::Name))
                    // JSON: severities, services, namespaces (empty: any).
                    .col(text(EscalationPolicies::Route))
                    // JSON: [{target, wait_minutes}].
                    .col(text(EscalationPolicies::Steps))
                    // Routes are tried by position, lowest first.
                    .col(integer(EscalationPolicies::Position))
                    .col(string(EscalationPolicies::CreatedBy))
                    .col(timestamp_with_time_zone(EscalationPolicies::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Escalations::Table)
                    .if_not_exists()
                    .col(pk_auto(Escalations::Id))
                    // What escalates, once: `incident:<id>`, or `approval:<id>` while it
                    // waits for signatures.
                    .col(string_uniq(Escalations::Subject))
                    .col(integer(Escalations::IncidentId))
                    .col(integer_null(Escalations::ApprovalId))
                    .col(integer(Escalations::PolicyId))
                    .col(timestamp_with_time_zone(Escalations::StartedAt))
                    // The index of the next step to page.
                    .col(integer(Escalations::NextStep))
                    .col(timestamp_with_time_zone(Escalations::NextAt))
                    // ACTIVE, ACKNOWLEDGED, RESOLVED or EXHAUSTED.
                    .col(string(Escalations::Status))
                    .col(timestamp_with_time_zone(Escalations::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_escalations_due")
                    .table(Escalations::Table)
                    .col(Escalations::Status)
                    .col(Escalations::NextAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Escalations::Table.into_iden(),
            EscalationPolicies::Table.into_iden(),
            ScheduleOverrides::Table.into_iden(),
            Schedules::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Schedules {
    Table,
    Id,
    Name,
    Participants,
    HandoverDay,
    HandoverTime,
    TimeZone,
    Since,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ScheduleOverrides {
    Table,
    Id,
    ScheduleId,
    Username,
    StartsAt,
    EndsAt,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum EscalationPolicies {
    Table,
    Id,
    Name,
    Route,
    Steps,
    Position,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Escalations {
    Table,
    Id,
    Subject,
    IncidentId,
    ApprovalId,
    PolicyId,
    StartedAt,
    NextStep,
    NextAt,
    Status,
    UpdatedAt,
}
