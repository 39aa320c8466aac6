//! The knowledge outbox: an entry decided in a transaction (an execution's outcome, an
//! interrupted execution) is written to `knowledge_outbox` in that transaction, so a crash
//! right after the commit cannot lose it. The writer then moves it to the knowledge base and
//! deletes it in one transaction — at once after the commit, and by the worker's sweep for
//! whatever a crash or an outage left. Fire-and-forget writes go the same way, so nothing
//! handed over lives only in memory.

use entity::knowledge_outbox;

use super::writer::insert_in;
use sea_orm::{PaginatorTrait, QuerySelect};

use super::*;

/// Puts `entry` in the outbox inside `txn`; `None` (logged) for an entry that can never be
/// written, which must not undo the transaction deciding it.
pub async fn enqueue_in<C: ConnectionTrait>(txn: &C, entry: &Entry) -> Result<Option<i32>, DbErr> {
    if let Err(e) = validate(entry) {
        tracing::error!(incident = entry.incident_id, path = entry.path_type.as_str(), error = %e, "knowledge entry not queued");
        count("failed");
        return Ok(None);
    }
    let row = knowledge_outbox::ActiveModel {
        incident_id: Set(entry.incident_id),
        path_type: Set(entry.path_type.as_str().to_owned()),
        entry: Set(serde_json::to_string(entry).expect("entries serialise")),
        attempts: Set(0),
        last_error: Set(None),
        created_at: Set(Utc::now()),
        ..Default::default()
    };
    let id = knowledge_outbox::Entity::insert(row)
        .exec(txn)
        .await?
        .last_insert_id;
    Ok(Some(id))
}

/// How many rows one sweep takes.
const SWEEP_BATCH: u64 = 500;

impl KmWriter {
    /// Moves outbox row `id` to the knowledge base: awaited with the writer's timeout and
    /// back-off, or in a background task in fire-and-forget mode. Whatever does not get
    /// through stays in the outbox for the sweep; nothing is lost.
    pub async fn deliver(&self, id: i32) {
        if self.0.config.write_await {
            self.deliver_awaited(id).await;
        } else {
            let writer = self.clone();
            tokio::spawn(async move { writer.deliver_awaited(id).await });
        }
    }

    async fn deliver_awaited(&self, id: i32) {
        let timeout = Duration::from_secs_f64(self.0.config.timeout_seconds);
        let mut attempt = 0usize;
        loop {
            let error = match tokio::time::timeout(timeout, self.drain_one(id)).await {
                Ok(Ok(_)) => return,
                Ok(Err(e)) if !transient(&e) => e.to_string(),
                Ok(Err(e)) => match self.0.config.backoff_seconds.get(attempt) {
                    Some(delay) => {
                        tracing::warn!(outbox = id, attempt = attempt + 1, retry_in_seconds = delay, error = %e, "knowledge outbox delivery failed; retrying");
                        count("retried");
                        tokio::time::sleep(Duration::from_secs_f64(*delay)).await;
                        attempt += 1;
                        continue;
                    }
                    None => e.to_string(),
                },
                Err(_) => format!("timed out after {:.1} s", timeout.as_secs_f64()),
            };
            self.note_failure(id, &error).await;
            return;
        }
    }

    /// One attempt for outbox row `id`: the entry in, the row out, in one transaction.
    /// `None` if the row is gone (another replica or an earlier attempt delivered it).
    async fn drain_one(&self, id: i32) -> Result<Option<Written>, DbErr> {
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let Some(row) = knowledge_outbox::Entity::find_by_id(id).one(&txn).await? else {
            txn.rollback().await?;
            return Ok(None);
        };
        let entry: Entry = serde_json::from_str(&row.entry)
            .map_err(|e| DbErr::Custom(format!("outbox row {id} is not an entry: {e}")))?;
        let done = insert_in(&txn, &entry).await?;
        knowledge_outbox::Entity::delete_by_id(id)
            .exec(&txn)
            .await?;
        txn.commit().await?;
        tracing::info!(
            incident = entry.incident_id,
            path = entry.path_type.as_str(),
            outcome = done.as_str(),
            outbox = id,
            "knowledge entry"
        );
        count(done.as_str());
        Ok(Some(done))
    }

    /// Records a failed attempt on the row (best effort: the row stays either way).
    async fn note_failure(&self, id: i32, error: &str) {
        tracing::warn!(outbox = id, %error, "knowledge entry stays in the outbox; the sweep retries");
        let noted = knowledge_outbox::Entity::update_many()
            .col_expr(
                knowledge_outbox::Column::Attempts,
                Expr::col(knowledge_outbox::Column::Attempts).add(1),
            )
            .col_expr(
                knowledge_outbox::Column::LastError,
                Expr::value(Some(error.chars().take(1_000).collect::<String>())),
            )
            .filter(knowledge_outbox::Column::Id.eq(id))
            .exec(&self.0.db)
            .await;
        if let Err(e) = noted {
            tracing::debug!(outbox = id, error = %e, "outbox attempt not recorded");
        }
    }

    /// Delivers every row waiting in the outbox, oldest first, one attempt each. Returns how
    /// many it delivered (written or found written already).
    pub async fn sweep_outbox(&self) -> Result<usize, DbErr> {
        let mut delivered = 0;
        let mut after = 0;
        loop {
            let ids: Vec<i32> = knowledge_outbox::Entity::find()
                .select_only()
                .column(knowledge_outbox::Column::Id)
                .filter(knowledge_outbox::Column::Id.gt(after))
                .order_by_asc(knowledge_outbox::Column::Id)
                .limit(SWEEP_BATCH)
                .into_tuple()
                .all(&self.0.db)
                .await?;
            let Some(last) = ids.last().copied() else {
                break;
            };
            for id in ids {
                match self.drain_one(id).await {
                    Ok(Some(_)) => delivered += 1,
                    Ok(None) => {}
                    Err(e) => self.note_failure(id, &e.to_string()).await,
                }
            }
            after = last;
        }
        let waiting = knowledge_outbox::Entity::find().count(&self.0.db).await?;
        metrics::gauge!("awoooi_km_outbox_waiting").set(waiting as f64);
        Ok(delivered)
    }

    /// Fire-and-forget: the entry is in the outbox (durable) before the caller hears
    /// `Queued`; if even that fails, it is written in the background by the full rules.
    pub(super) async fn queue(&self, entry: Entry) -> Result<Written, KmError> {
        let timeout = Duration::from_secs_f64(self.0.config.timeout_seconds);
        let queued = tokio::time::timeout(timeout, async {
            let txn = crate::base::db::begin_write(&self.0.db).await?;
            let id = enqueue_in(&txn, &entry).await?;
            txn.commit().await?;
            Ok::<_, DbErr>(id)
        })
        .await;
        match queued {
            Ok(Ok(Some(id))) => {
                self.deliver(id).await;
            }
            Ok(Ok(None)) => return Err(KmError::Invalid("refused by validation".into())),
            Ok(Err(_)) | Err(_) => {
                let writer = self.clone();
                tokio::spawn(async move {
                    // Failures are logged and counted inside; nothing is waiting for them.
                    let _ = writer.write_awaited(entry).await;
                });
            }
        }
        count("queued");
        Ok(Written::Queued)
    }
}
