//! The notifier: routes new events into deliveries, sends them under a lease, retries with
//! back-off, dead-letters and re-drives.

use super::config::build_channel;
use super::*;

/// What one pass of the worker did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub routed: usize,
    pub delivered: usize,
    pub retried: usize,
    pub dead: usize,
}

struct Inner {
    db: DatabaseConnection,
    config: NotifyConfig,
    public_url: String,
    channels: BTreeMap<String, Box<dyn Channel>>,
}

/// The notifier: routing, delivery, dead letters; cheap to clone.
#[derive(Clone)]
pub struct Notifier(Arc<Inner>);

/// A channel as the settings page shows it.
#[derive(Debug, Clone)]
pub struct ChannelInfo {
    pub name: String,
    pub kind: ChannelKind,
    pub target: String,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("no channel is named `{0}`")]
    NoChannel(String),
    #[error("delivery {0} does not exist")]
    NotFound(i32),
    #[error("delivery {0} is not dead-lettered (only dead letters are re-driven)")]
    NotDead(i32),
    #[error(transparent)]
    Db(#[from] DbErr),
}

const BATCH: u64 = 32;

/// How often the worker purges old delivered events.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

impl Notifier {
    pub fn new(
        db: DatabaseConnection,
        config: NotifyConfig,
        bind: std::net::SocketAddr,
    ) -> Result<Notifier, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let mut channels = BTreeMap::new();
        for c in &config.channels {
            channels.insert(
                c.name.clone(),
                build_channel(c, &http).map_err(|e| format!("channel `{}`: {e}", c.name))?,
            );
        }
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bind}"));
        Ok(Notifier(Arc::new(Inner {
            db,
            config,
            public_url,
            channels,
        })))
    }

    pub fn config(&self) -> &NotifyConfig {
        &self.0.config
    }

    pub fn public_url(&self) -> &str {
        &self.0.public_url
    }

    pub fn channels(&self) -> Vec<ChannelInfo> {
        self.0
            .config
            .channels
            .iter()
            .map(|c| ChannelInfo {
                name: c.name.clone(),
                kind: c.kind,
                target: self.0.channels[&c.name].describe(),
            })
            .collect()
    }

    /// Runs the worker until the process stops.
    pub fn start_worker(&self) {
        let this = self.clone();
        tokio::spawn(async move {
            let every = Duration::from_millis(this.0.config.retry.poll_ms);
            let mut last_purge: Option<std::time::Instant> = None;
            loop {
                let keep_days = this.0.config.keep_days.unwrap_or(30);
                if keep_days > 0 && last_purge.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
                    last_purge = Some(std::time::Instant::now());
                    let cutoff = Utc::now() - chrono::Duration::days(i64::from(keep_days));
                    match this.purge(cutoff).await {
                        Ok(0) => {}
                        Ok(n) => {
                            tracing::info!(events = n, keep_days, "delivered notifications purged")
                        }
                        Err(error) => tracing::warn!(%error, "notification purge failed"),
                    }
                }
                match this.pass().await {
                    // More may be waiting: go again at once.
                    Ok(p)
                        if p.routed as u64 >= BATCH
                            || p.delivered + p.retried + p.dead >= BATCH as usize =>
                    {
                        continue;
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "notification pass failed; trying again"),
                }
                tokio::time::sleep(every).await;
            }
        });
    }

    /// Deletes events older than `cutoff` whose deliveries were all DELIVERED (with those
    /// deliveries). Returns how many events went.
    pub async fn purge(&self, cutoff: DateTime<Utc>) -> Result<usize, DbErr> {
        let old: Vec<i32> = notification_event::Entity::find()
            .select_only()
            .column(notification_event::Column::Id)
            .filter(notification_event::Column::Routed.eq(true))
            .filter(notification_event::Column::CreatedAt.lt(cutoff))
            .limit(1_000)
            .into_tuple()
            .all(&self.0.db)
            .await?;
        if old.is_empty() {
            return Ok(0);
        }
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let unfinished: std::collections::HashSet<i32> = notification_delivery::Entity::find()
            .select_only()
            .column(notification_delivery::Column::EventId)
            .filter(notification_delivery::Column::EventId.is_in(old.clone()))
            .filter(notification_delivery::Column::Status.ne(DeliveryStatus::Delivered))
            .into_tuple::<i32>()
            .all(&txn)
            .await?
            .into_iter()
            .collect();
        let done: Vec<i32> = old
            .into_iter()
            .filter(|id| !unfinished.contains(id))
            .collect();
        notification_delivery::Entity::delete_many()
            .filter(notification_delivery::Column::EventId.is_in(done.clone()))
            .filter(notification_delivery::Column::Status.eq(DeliveryStatus::Delivered))
            .exec(&txn)
            .await?;
        notification_event::Entity::delete_many()
            .filter(notification_event::Column::Id.is_in(done.clone()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(done.len())
    }

    /// Routes new events, then sends what is due.
    pub async fn pass(&self) -> Result<Pass, DbErr> {
        let mut pass = Pass {
            routed: self.route().await?,
            ..Pass::default()
        };
        let now = Utc::now();
        let due = notification_delivery::Entity::find()
            .filter(notification_delivery::Column::Status.eq(DeliveryStatus::Pending))
            .filter(notification_delivery::Column::NextAttemptAt.lte(now))
            .filter(
                Condition::any()
                    .add(notification_delivery::Column::LockedUntil.is_null())
                    .add(notification_delivery::Column::LockedUntil.lt(now)),
            )
            .order_by_asc(notification_delivery::Column::Id)
            .limit(BATCH)
            .all(&self.0.db)
            .await?;
        let mut claimed = Vec::new();
        for row in due {
            if self.claim(&row, now).await? {
                claimed.push(row);
            }
        }
        let outcomes =
            futures_util::future::join_all(claimed.iter().map(|row| self.send(row))).await;
        for (row, outcome) in claimed.iter().zip(outcomes) {
            match self.settle(row, outcome).await? {
                DeliveryStatus::Delivered => pass.delivered += 1,
                DeliveryStatus::Dead => pass.dead += 1,
                _ => pass.retried += 1,
            }
        }
        Ok(pass)
    }

    /// Turns unrouted events into deliveries, each event in its own transaction.
    async fn route(&self) -> Result<usize, DbErr> {
        let events = notification_event::Entity::find()
            .filter(notification_event::Column::Routed.eq(false))
            .order_by_asc(notification_event::Column::Id)
            .limit(BATCH)
            .all(&self.0.db)
            .await?;
        let count = events.len();
        for event in events {
            let channels = match serde_json::from_str::<Payload>(&event.payload) {
                Ok(payload) => self.0.config.route(&payload),
                Err(error) => {
                    tracing::error!(event = event.id, %error, "unreadable notification payload; not routed");
                    Vec::new()
                }
            };
            let txn = crate::base::db::begin_write(&self.0.db).await?;
            insert_deliveries(&txn, event.id, &channels).await?;
            notification_event::Entity::update_many()
                .col_expr(notification_event::Column::Routed, Expr::value(true))
                .filter(notification_event::Column::Id.eq(event.id))
                .exec(&txn)
                .await?;
            txn.commit().await?;
        }
        Ok(count)
    }

    /// Takes `row` for one attempt; false when another worker has it.
    async fn claim(
        &self,
        row: &notification_delivery::Model,
        now: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        let lease = chrono::Duration::seconds(self.0.config.retry.lease_seconds as i64);
        let taken = notification_delivery::Entity::update_many()
            .col_expr(
                notification_delivery::Column::LockedUntil,
                Expr::value(now + lease),
            )
            .filter(notification_delivery::Column::Id.eq(row.id))
            .filter(notification_delivery::Column::Status.eq(DeliveryStatus::Pending))
            .filter(
                Condition::any()
                    .add(notification_delivery::Column::LockedUntil.is_null())
                    .add(notification_delivery::Column::LockedUntil.lt(now)),
            )
            .exec(&self.0.db)
            .await?
            .rows_affected;
        Ok(taken == 1)
    }

    async fn send(&self, row: &notification_delivery::Model) -> Result<(), String> {
        let Some(channel) = self.0.channels.get(&row.channel) else {
            return Err(format!(
                "no channel `{}` in the configuration now",
                row.channel
            ));
        };
        let event = notification_event::Entity::find_by_id(row.event_id)
            .one(&self.0.db)
            .await
            .map_err(|e| format!("cannot read the event: {e}"))?
            .ok_or("the event is gone")?;
        let payload: Payload =
            serde_json::from_str(&event.payload).map_err(|e| format!("unreadable payload: {e}"))?;
        let message = Message {
            key: &row.idempotency_key,
            link: payload.link(&self.0.public_url),
            payload: &payload,
        };
        channel.send(&message).await
    }

    /// Records an attempt's outcome; returns the delivery's new status.
    async fn settle(
        &self,
        row: &notification_delivery::Model,
        outcome: Result<(), String>,
    ) -> Result<DeliveryStatus, DbErr> {
        let now = Utc::now();
        let attempts = row.attempts + 1;
        let retry = &self.0.config.retry;
        let mut update = notification_delivery::Entity::update_many()
            .col_expr(
                notification_delivery::Column::Attempts,
                Expr::value(attempts),
            )
            .col_expr(
                notification_delivery::Column::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(notification_delivery::Column::Id.eq(row.id))
            .filter(notification_delivery::Column::Status.eq(DeliveryStatus::Pending));
        let next = match outcome {
            Ok(()) => {
                update =
                    update.col_expr(notification_delivery::Column::DeliveredAt, Expr::value(now));
                metrics::counter!("awoooi_notifications_total", "channel" => row.channel.clone(), "outcome" => "delivered").increment(1);
                tracing::info!(delivery = row.id, channel = %row.channel, key = %row.idempotency_key, attempts, "notification delivered");
                DeliveryStatus::Delivered
            }
            Err(error) => {
                let dead = attempts >= retry.attempts as i32;
                update = update.col_expr(
                    notification_delivery::Column::LastError,
                    Expr::value(error.clone()),
                );
                if !dead {
                    let wait = chrono::Duration::from_std(retry.backoff(attempts as u32))
                        .unwrap_or_default();
                    update = update.col_expr(
                        notification_delivery::Column::NextAttemptAt,
                        Expr::value(now + wait),
                    );
                }
                let outcome = if dead { "dead" } else { "retry" };
                metrics::counter!("awoooi_notifications_total", "channel" => row.channel.clone(), "outcome" => outcome).increment(1);
                tracing::warn!(delivery = row.id, channel = %row.channel, attempts, %error, dead, "notification not delivered");
                if dead {
                    DeliveryStatus::Dead
                } else {
                    DeliveryStatus::Pending
                }
            }
        };
        update
            .col_expr(notification_delivery::Column::Status, Expr::value(next))
            .exec(&self.0.db)
            .await?;
        Ok(next)
    }

    /// Deliveries, newest first, optionally of one status.
    pub async fn deliveries(
        &self,
        status: Option<DeliveryStatus>,
        first: u64,
    ) -> Result<Vec<(notification_delivery::Model, Option<Payload>)>, DbErr> {
        let mut query =
            notification_delivery::Entity::find().order_by_desc(notification_delivery::Column::Id);
        if let Some(s) = status {
            query = query.filter(notification_delivery::Column::Status.eq(s));
        }
        let rows = query.limit(first).all(&self.0.db).await?;
        let ids: Vec<i32> = rows.iter().map(|r| r.event_id).collect();
        let events: BTreeMap<i32, Payload> = notification_event::Entity::find()
            .filter(notification_event::Column::Id.is_in(ids))
            .all(&self.0.db)
            .await?
            .into_iter()
            .filter_map(|e| Some((e.id, serde_json::from_str(&e.payload).ok()?)))
            .collect();
        Ok(rows
            .into_iter()
            .map(|r| {
                let payload = events.get(&r.event_id).cloned();
                (r, payload)
            })
            .collect())
    }

    pub async fn count(&self, status: DeliveryStatus) -> Result<u64, DbErr> {
        notification_delivery::Entity::find()
            .filter(notification_delivery::Column::Status.eq(status))
            .count(&self.0.db)
            .await
    }

    /// Puts a dead letter back in line: attempts start again, due now.
    pub async fn redrive(
        &self,
        id: i32,
        by: &str,
    ) -> Result<notification_delivery::Model, NotifyError> {
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let changed = notification_delivery::Entity::update_many()
            .col_expr(
                notification_delivery::Column::Status,
                Expr::value(DeliveryStatus::Pending),
            )
            .col_expr(notification_delivery::Column::Attempts, Expr::value(0))
            .col_expr(
                notification_delivery::Column::NextAttemptAt,
                Expr::value(Utc::now()),
            )
            .col_expr(
                notification_delivery::Column::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(notification_delivery::Column::Id.eq(id))
            .filter(notification_delivery::Column::Status.eq(DeliveryStatus::Dead))
            .exec(&txn)
            .await?
            .rows_affected;
        if changed == 0 {
            txn.rollback().await?;
            return match notification_delivery::Entity::find_by_id(id)
                .one(&self.0.db)
                .await?
            {
                Some(_) => Err(NotifyError::NotDead(id)),
                None => Err(NotifyError::NotFound(id)),
            };
        }
        crate::base::audit::append_in(
            &txn,
            by,
            "notification.redriven",
            &format!("notification:{id}"),
            serde_json::json!({}),
        )
        .await?;
        txn.commit().await?;
        notification_delivery::Entity::find_by_id(id)
            .one(&self.0.db)
            .await?
            .ok_or(NotifyError::NotFound(id))
    }

    /// Queues a test message to `channel` (through the outbox like any other).
    pub async fn send_test(
        &self,
        channel: &str,
        by: &str,
    ) -> Result<notification_delivery::Model, NotifyError> {
        if !self.0.channels.contains_key(channel) {
            return Err(NotifyError::NoChannel(channel.to_owned()));
        }
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let payload = payload_of(&txn, EventKind::Test, None, None, by).await?;
        let event = notification_event::ActiveModel {
            kind: Set(EventKind::Test.as_str().to_owned()),
            incident_id: Set(None),
            approval_id: Set(None),
            payload: Set(serde_json::to_string(&payload).expect("payload serialises")),
            routed: Set(true),
            created_at: Set(payload.at),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        insert_deliveries(&txn, event.id, &[channel.to_owned()]).await?;
        crate::base::audit::append_in(
            &txn,
            by,
            "notification.test",
            &format!("channel:{channel}"),
            serde_json::json!({}),
        )
        .await?;
        txn.commit().await?;
        notification_delivery::Entity::find()
            .filter(
                notification_delivery::Column::IdempotencyKey
                    .eq(idempotency_key(event.id, channel)),
            )
            .one(&self.0.db)
            .await?
            .ok_or(NotifyError::NotFound(event.id))
    }
}

pub fn idempotency_key(event_id: i32, channel: &str) -> String {
    format!("awoooi-{event_id}-{channel}")
}

async fn insert_deliveries(
    conn: &impl ConnectionTrait,
    event_id: i32,
    channels: &[String],
) -> Result<(), DbErr> {
    if channels.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    notification_delivery::Entity::insert_many(channels.iter().map(|c| {
        notification_delivery::ActiveModel {
            event_id: Set(event_id),
            channel: Set(c.clone()),
            idempotency_key: Set(idempotency_key(event_id, c)),
            status: Set(DeliveryStatus::Pending),
            attempts: Set(0),
            next_attempt_at: Set(now),
            locked_until: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            delivered_at: Set(None),
            ..Default::default()
        }
    }))
    .on_conflict(
        OnConflict::column(notification_delivery::Column::IdempotencyKey)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}
