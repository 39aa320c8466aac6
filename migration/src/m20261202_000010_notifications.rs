//! Notifications: the outbox of events worth telling, written in the transaction of the change
//! that caused them, and one delivery per (event, channel) with its retry state.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(NotificationEvents::Table)
                    .if_not_exists()
                    .col(pk_auto(NotificationEvents::Id))
                    // INCIDENT_OPENED, APPROVAL_PENDING, … (notify::EventKind).
                    .col(string(NotificationEvents::Kind))
                    .col(integer_null(NotificationEvents::IncidentId))
                    .col(integer_null(NotificationEvents::ApprovalId))
                    // The pseudonymised facts a message is made of (JSON).
                    .col(text(NotificationEvents::Payload))
                    // False until the router turned it into deliveries.
                    .col(boolean(NotificationEvents::Routed))
                    .col(timestamp_with_time_zone(NotificationEvents::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_notification_events_unrouted")
                    .table(NotificationEvents::Table)
                    .col(NotificationEvents::Routed)
                    .col(NotificationEvents::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(NotificationDeliveries::Table)
                    .if_not_exists()
                    .col(pk_auto(NotificationDeliveries::Id))
                    .col(integer(NotificationDeliveries::EventId))
                    .col(string(NotificationDeliveries::Channel))
                    // `awoooi-<event>-<channel>`: the same on every retry, so receivers dedupe.
                    .col(string_uniq(NotificationDeliveries::IdempotencyKey))
                    // PENDING, DELIVERED or DEAD.
                    .col(string(NotificationDeliveries::Status))
                    .col(integer(NotificationDeliveries::Attempts))
                    .col(timestamp_with_time_zone(
                        NotificationDeliveries::NextAttemptAt,
                    ))
                    // A worker's lease; a stopped worker's lease runs out and another takes it.
                    .col(timestamp_with_time_zone_null(
                        NotificationDeliveries::LockedUntil,
                    ))
                    .col(text_null(NotificationDeliveries::LastError))
                    .col(timestamp_with_time_zone(NotificationDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone_null(
                        NotificationDeliveries::DeliveredAt,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                NotificationDeliveries::Table,
                                NotificationDeliveries::EventId,
                            )
                            .to(NotificationEvents::Table, NotificationEvents::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_notification_deliveries_due")
                    .table(NotificationDeliveries::Table)
                    .col(NotificationDeliveries::Status)
                    .col(NotificationDeliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(NotificationDeliveries::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(NotificationEvents::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum NotificationEvents {
    Table,
    Id,
    Kind,
    IncidentId,
    ApprovalId,
    Payload,
    Routed,
    CreatedAt,
}

#[derive(DeriveIden)]
enum NotificationDeliveries {
    Table,
    Id,
    EventId,
    Channel,
    IdempotencyKey,
    Status,
    Attempts,
    NextAttemptAt,
    LockedUntil,
    LastError,
    CreatedAt,
    DeliveredAt,
}
