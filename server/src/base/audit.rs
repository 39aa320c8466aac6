//! Writing and checking the audit trail (the chain rules are `engine::audit`).
//!
//! Appends are serialised — a process-wide lock, plus a transaction-scoped advisory lock on
//! PostgreSQL so replicas take turns — because each event's id and hash depend on the last one.

use std::sync::{Arc, OnceLock};

use chrono::Utc;
use engine::audit::{AuditEvent, GENESIS, Verification, verify_from};
use entity::audit_event;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, Statement,
};
use serde_json::Value;
use tokio::sync::Mutex;

fn append_lock() -> Arc<Mutex<()>> {
    static LOCK: OnceLock<Arc<Mutex<()>>> = OnceLock::new();
    LOCK.get_or_init(|| Arc::new(Mutex::new(()))).clone()
}

/// Appends one event after the current last one. Another process (the CLI, a replica) may
/// append at the same moment: the loser of the id race tries again.
pub async fn record(
    db: &DatabaseConnection,
    actor: &str,
    action: &str,
    subject: &str,
    details: Value,
) -> Result<AuditEvent, DbErr> {
    let lock = append_lock();
    let _guard = lock.lock().await;
    let mut attempt = 0;
    loop {
        match append(db, actor, action, subject, details.clone()).await {
            Ok(event) => return Ok(event),
            Err(error) if attempt < 5 => {
                attempt += 1;
                tracing::debug!(%error, attempt, "audit append raced; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

async fn append(
    db: &DatabaseConnection,
    actor: &str,
    action: &str,
    subject: &str,
    details: Value,
) -> Result<AuditEvent, DbErr> {
    let txn = crate::base::db::begin_write(db).await?;
    let event = append_in(&txn, actor, action, subject, details).await?;
    txn.commit().await?;
    Ok(event)
}

/// Appends one event inside the caller's write transaction (from [`crate::base::db::begin_write`]),
/// so the change and its audit record commit together or not at all. Call it last in the
/// transaction: on PostgreSQL it takes the chain's advisory lock until commit.
pub async fn append_in<C: ConnectionTrait>(
    txn: &C,
    actor: &str,
    action: &str,
    subject: &str,
    details: Value,
) -> Result<AuditEvent, DbErr> {
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        txn.execute_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT pg_advisory_xact_lock(7343657)",
        ))
        .await?;
    }
    let last = audit_event::Entity::find()
        .order_by_desc(audit_event::Column::Id)
        .one(txn)
        .await?;
    let (id, prev) = match last {
        Some(row) => (row.id + 1, row.hash),
        None => (1, GENESIS.to_owned()),
    };
    let event = AuditEvent::next(&prev, id, Utc::now(), actor, action, subject, details);
    audit_event::ActiveModel {
        id: Set(event.id),
        at: Set(event.at),
        actor: Set(event.actor.clone()),
        action: Set(event.action.clone()),
        subject: Set(event.subject.clone()),
        details: Set(event.details.to_string()),
        prev_hash: Set(event.prev_hash.clone()),
        hash: Set(event.hash.clone()),
    }
    .insert(txn)
    .await?;
    Ok(event)
}

/// Records, and logs instead of failing the caller when the trail cannot be written.
pub async fn record_or_log(
    db: &DatabaseConnection,
    actor: &str,
    action: &str,
    subject: &str,
    details: Value,
) {
    if let Err(error) = record(db, actor, action, subject, details).await {
        tracing::error!(%error, action, "audit event not recorded");
    }
}

/// Records the policy in force when it differs from the last one recorded, so a change of
/// `[approvals]` between restarts is in the trail (who signs what depends on it).
pub async fn record_policy(db: &DatabaseConnection, details: Value) -> Result<bool, DbErr> {
    let last = audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq("config.policy"))
        .order_by_desc(audit_event::Column::Id)
        .one(db)
        .await?;
    let unchanged = last
        .and_then(|row| serde_json::from_str::<Value>(&row.details).ok())
        .is_some_and(|previous| previous == details);
    if unchanged {
        return Ok(false);
    }
    record(db, "system", "config.policy", "config:approvals", details).await?;
    Ok(true)
}

pub fn from_row(row: audit_event::Model) -> AuditEvent {
    AuditEvent {
        details: serde_json::from_str(&row.details).unwrap_or(Value::Null),
        id: row.id,
        at: row.at,
        actor: row.actor,
        action: row.action,
        subject: row.subject,
        prev_hash: row.prev_hash,
        hash: row.hash,
    }
}

/// Checks the whole trail, a page at a time.
pub async fn verify_all(db: &DatabaseConnection) -> Result<Verification, DbErr> {
    const PAGE: u64 = 1_000;
    let mut after = 0i64;
    let mut checked = 0u64;
    let mut prev = GENESIS.to_owned();
    loop {
        let rows = audit_event::Entity::find()
            .filter(audit_event::Column::Id.gt(after))
            .order_by_asc(audit_event::Column::Id)
            .limit(PAGE)
            .all(db)
            .await?;
        let Some(last) = rows.last() else {
            return Ok(Verification {
                valid: true,
                checked,
                first_broken_id: None,
            });
        };
        let (last_id, last_hash) = (last.id, last.hash.clone());
        let events: Vec<AuditEvent> = rows.into_iter().map(from_row).collect();
        let page = verify_from(&prev, &events);
        checked += page.checked;
        if !page.valid {
            return Ok(Verification {
                valid: false,
                checked,
                first_broken_id: page.first_broken_id,
            });
        }
        prev = last_hash;
        after = last_id;
    }
}
