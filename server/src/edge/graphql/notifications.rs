//! Notifications over GraphQL (ADMIN): channels, routing rules, deliveries and dead letters,
//! a test message, re-drive.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use engine::Role;

use super::{ApiError, require_role};
use crate::services::notify::{self, ChannelKind, Notifier, NotifyError};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "NotificationChannelKind")]
pub enum ChannelKindEnum {
    Slack,
    Discord,
    Email,
    Webhook,
}

impl From<ChannelKind> for ChannelKindEnum {
    fn from(kind: ChannelKind) -> Self {
        match kind {
            ChannelKind::Slack => ChannelKindEnum::Slack,
            ChannelKind::Discord => ChannelKindEnum::Discord,
            ChannelKind::Email => ChannelKindEnum::Email,
            ChannelKind::Webhook => ChannelKindEnum::Webhook,
        }
    }
}

/// Where one delivery stands: it leaves PENDING only as DELIVERED or DEAD.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "entity::notification_delivery::DeliveryStatus")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Dead,
}

/// A configured way out (its credentials never shown).
#[derive(SimpleObject)]
pub struct NotificationChannel {
    name: String,
    kind: ChannelKindEnum,
    /// Where it goes, without tokens or webhook paths.
    target: String,
}

/// A routing rule; an empty list matches everything.
#[derive(SimpleObject)]
pub struct NotificationRoute {
    events: Vec<String>,
    severities: Vec<String>,
    services: Vec<String>,
    namespaces: Vec<String>,
    channels: Vec<String>,
}

/// One event to one channel.
#[derive(SimpleObject)]
pub struct NotificationDelivery {
    id: ID,
    channel: String,
    /// The same on every attempt; receivers dedupe by it.
    idempotency_key: String,
    event: String,
    summary: String,
    status: DeliveryStatus,
    attempts: i32,
    last_error: Option<String>,
    next_attempt_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
}

impl NotificationDelivery {
    fn of(row: entity::notification_delivery::Model, payload: Option<notify::Payload>) -> Self {
        NotificationDelivery {
            id: ID(row.id.to_string()),
            channel: row.channel,
            idempotency_key: row.idempotency_key,
            event: payload
                .as_ref()
                .map_or("UNKNOWN", |p| p.event.as_str())
                .to_owned(),
            summary: payload.map(|p| p.summary()).unwrap_or_default(),
            status: row.status.into(),
            attempts: row.attempts,
            last_error: row.last_error,
            next_attempt_at: row.next_attempt_at,
            created_at: row.created_at,
            delivered_at: row.delivered_at,
        }
    }
}

/// Counts by status, for the settings page's headline.
#[derive(SimpleObject)]
pub struct NotificationCounts {
    pending: u64,
    delivered: u64,
    dead: u64,
}

fn api_error(error: NotifyError) -> ApiError {
    match error {
        NotifyError::NoChannel(_) | NotifyError::NotFound(_) => {
            ApiError::NotFound(error.to_string())
        }
        NotifyError::NotDead(_) => ApiError::Conflict(error.to_string()),
        NotifyError::Db(e) => ApiError::internal(e),
    }
}

fn parse_id(id: &ID) -> Result<i32, ApiError> {
    id.parse()
        .map_err(|_| ApiError::BadUserInput(format!("id: `{}` is not a delivery id", id.0)))
}

#[derive(Default)]
pub struct NotificationQuery;

#[Object]
impl NotificationQuery {
    /// The configured channels (ADMIN).
    async fn notification_channels(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<NotificationChannel>> {
        require_role(ctx, &[Role::Admin])?;
        Ok(ctx
            .data::<Notifier>()?
            .channels()
            .into_iter()
            .map(|c| NotificationChannel {
                name: c.name,
                kind: c.kind.into(),
                target: c.target,
            })
            .collect())
    }

    /// The routing rules; none means every event goes to every channel (ADMIN).
    async fn notification_routes(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<NotificationRoute>> {
        require_role(ctx, &[Role::Admin])?;
        Ok(ctx
            .data::<Notifier>()?
            .config()
            .routes
            .iter()
            .map(|r| NotificationRoute {
                events: r.events.iter().map(|e| e.as_str().to_owned()).collect(),
                severities: r.severities.clone(),
                services: r.services.clone(),
                namespaces: r.namespaces.clone(),
                channels: r.channels.clone(),
            })
            .collect())
    }

    /// Deliveries, newest first (`status: DEAD` is the dead-letter list) (ADMIN).
    async fn notification_deliveries(
        &self,
        ctx: &Context<'_>,
        status: Option<DeliveryStatus>,
        #[graphql(default = 50)] first: i32,
    ) -> async_graphql::Result<Vec<NotificationDelivery>> {
        require_role(ctx, &[Role::Admin])?;
        if !(1..=500).contains(&first) {
            return Err(ApiError::BadUserInput("first: 1 to 500".into()).into());
        }
        let rows = ctx
            .data::<Notifier>()?
            .deliveries(status.map(Into::into), first as u64)
            .await
            .map_err(ApiError::internal)?;
        Ok(rows
            .into_iter()
            .map(|(row, payload)| NotificationDelivery::of(row, payload))
            .collect())
    }

    async fn notification_counts(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<NotificationCounts> {
        require_role(ctx, &[Role::Admin])?;
        let notifier = ctx.data::<Notifier>()?;
        let count = |s| notifier.count(s);
        Ok(NotificationCounts {
            pending: count(entity::notification_delivery::DeliveryStatus::Pending)
                .await
                .map_err(ApiError::internal)?,
            delivered: count(entity::notification_delivery::DeliveryStatus::Delivered)
                .await
                .map_err(ApiError::internal)?,
            dead: count(entity::notification_delivery::DeliveryStatus::Dead)
                .await
                .map_err(ApiError::internal)?,
        })
    }
}

#[derive(Default)]
pub struct NotificationMutation;

#[Object]
impl NotificationMutation {
    /// Queues a test message to one channel, through the outbox like any other (ADMIN).
    async fn send_test_notification(
        &self,
        ctx: &Context<'_>,
        channel: String,
    ) -> async_graphql::Result<NotificationDelivery> {
        let who = require_role(ctx, &[Role::Admin])?;
        let row = ctx
            .data::<Notifier>()?
            .send_test(&channel, &who.name)
            .await
            .map_err(api_error)?;
        Ok(NotificationDelivery::of(row, None))
    }

    /// Puts a dead letter back in line; its attempts start again (ADMIN).
    async fn redrive_notification(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<NotificationDelivery> {
        let who = require_role(ctx, &[Role::Admin])?;
        let id = parse_id(&id)?;
        let row = ctx
            .data::<Notifier>()?
            .redrive(id, &who.name)
            .await
            .map_err(api_error)?;
        Ok(NotificationDelivery::of(row, None))
    }
}
