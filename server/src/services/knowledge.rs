//! The knowledge base: one writer for every entry, and ranked retrieval.
//!
//! The writer keeps PRODUCT.md's seven rules:
//! 1. each attempt is awaited with a timeout;
//! 2. transient errors (connection, timeout, lock) are retried on a back-off schedule
//!    (1 s / 2 s / 4 s); permanent ones (constraint, validation) are not;
//! 3. after the retries the entry goes to a dead-letter queue — the Redis list `km:dlq` when
//!    Redis is configured, else (or when Redis fails too) an append-only, fsynced file in the
//!    data directory — and [`KmWriter::replay`] (the worker, `awoooi km replay-dlq`) re-drives it;
//! 4. every outcome is a tracing event and a `awoooi_km_writes_total{outcome}` count;
//! 5. a second write of the same (incident, path) is a no-op reported as `duplicate`, enforced
//!    by the unique index (`INSERT … ON CONFLICT DO NOTHING`), not by a read first;
//! 6. every failure is returned or dead-lettered, and logged;
//! 7. an entry carrying an approval id stores it, and the incident's path-A entry is
//!    back-linked to the same approval in the same transaction.
//!
//! An entry decided inside another transaction (an execution's outcome) goes through the
//! outbox (`knowledge_outbox`, in that transaction) and is moved here after the commit, by
//! the same rules; the worker sweeps what a crash left.
//!
//! `knowledge.write_await = false` (`AWOOOI_KM_WRITE_AWAIT=false`) makes writes
//! fire-and-forget for rollback: the entry is put in the outbox (one insert) and written by a
//! background task, so a crash cannot lose what was handed over.

mod entries;
mod outbox;
mod postmortem;
mod search;
mod vectors;
mod writer;

pub use entries::{execution_entry, resolution_entry};
pub use outbox::enqueue_in;
pub use postmortem::{KeyTimeMedians, generate, key_time_medians, postmortem_of};
pub use search::{fulltext_ids, search, similar, similarity_text};
pub use vectors::{EmbeddingsConfig, Retrieval, Semantic, fuse};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use entity::execution::ExecutionStatus;
use entity::knowledge_entry;

use crate::base::incident::IncidentStatus;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, Set, Statement, TransactionTrait,
};
use serde::{Deserialize, Serialize};

/// The Redis list of dead letters.
pub const DLQ_KEY: &str = "km:dlq";
/// The local fallback, in the data directory.
pub const DLQ_FILE: &str = "km-dlq.jsonl";

/// Where an entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PathType {
    /// The incident resolved: what happened, the root cause, what fixed it.
    A,
    /// A human-approved execution.
    BManual,
    /// An automatic (LOW) execution that worked.
    BAutoSuccess,
    /// An automatic (LOW) execution that failed.
    BAutoFailure,
    /// A playbook run.
    Playbook,
}

impl PathType {
    pub fn as_str(self) -> &'static str {
        match self {
            PathType::A => "A",
            PathType::BManual => "B_MANUAL",
            PathType::BAutoSuccess => "B_AUTO_SUCCESS",
            PathType::BAutoFailure => "B_AUTO_FAILURE",
            PathType::Playbook => "PLAYBOOK",
        }
    }
}

/// What a fix did.
pub use entity::states::FixOutcome;

/// One entry to write. Every text is pseudonymised already (it comes from the database).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub incident_id: i32,
    pub path_type: PathType,
    pub related_approval_id: Option<i32>,
    pub title: String,
    pub body: String,
    pub service: Option<String>,
    pub alert_names: Vec<String>,
    pub root_cause: Option<String>,
    /// `kind target` of the fix.
    pub action: Option<String>,
    pub outcome: Option<FixOutcome>,
}

/// How a write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Written,
    /// The (incident, path) pair was there already; nothing changed.
    Duplicate,
    /// Retries exhausted: safe in the dead-letter queue, written by a replay later.
    DeadLettered,
    /// Fire-and-forget mode: in the outbox, written by a background task.
    Queued,
}

impl Written {
    fn as_str(self) -> &'static str {
        match self {
            Written::Written => "written",
            Written::Duplicate => "duplicate",
            Written::DeadLettered => "dead_lettered",
            Written::Queued => "queued",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KmError {
    /// The entry itself is wrong; retrying cannot help.
    #[error("knowledge entry refused: {0}")]
    Invalid(String),
    /// The database refused it for good (a constraint).
    #[error("knowledge entry refused by the database: {0}")]
    Permanent(String),
    /// Neither the database, Redis nor the local file took it.
    #[error("knowledge entry could not be stored or dead-lettered: {0}")]
    Lost(String),
}

/// `[knowledge]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmConfig {
    /// Await writes (default); `false` is fire-and-forget, for rollback.
    #[serde(default = "yes")]
    pub write_await: bool,
    /// Each attempt's timeout.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: f64,
    /// The back-off before each retry.
    #[serde(default = "default_backoff")]
    pub backoff_seconds: Vec<f64>,
    /// How often the worker re-drives the dead-letter queue.
    #[serde(default = "default_replay")]
    pub replay_every_seconds: u64,
    /// The Redis list of dead letters.
    #[serde(default = "default_dlq_key")]
    pub dlq_key: String,
    /// `[knowledge.embeddings]`: the sentence-embedding model for semantic retrieval.
    #[serde(default)]
    pub embeddings: EmbeddingsConfig,
}

fn default_dlq_key() -> String {
    DLQ_KEY.to_owned()
}

fn yes() -> bool {
    true
}
fn default_timeout() -> f64 {
    10.0
}
fn default_backoff() -> Vec<f64> {
    vec![1.0, 2.0, 4.0]
}
fn default_replay() -> u64 {
    60
}

impl Default for KmConfig {
    fn default() -> Self {
        KmConfig {
            write_await: true,
            timeout_seconds: default_timeout(),
            backoff_seconds: default_backoff(),
            replay_every_seconds: default_replay(),
            dlq_key: default_dlq_key(),
            embeddings: EmbeddingsConfig::default(),
        }
    }
}

impl KmConfig {
    pub fn validate(&self) -> Result<(), String> {
        let fine = |s: f64| s.is_finite() && (0.0..=3_600.0).contains(&s);
        if !fine(self.timeout_seconds) || self.timeout_seconds == 0.0 {
            return Err("timeout_seconds must be between 0 and 3600 (exclusive of 0)".into());
        }
        if self.backoff_seconds.len() > 10 || !self.backoff_seconds.iter().all(|s| fine(*s)) {
            return Err("backoff_seconds: at most 10 delays, each 0–3600".into());
        }
        if self.dlq_key.trim().is_empty() {
            return Err("dlq_key is empty".into());
        }
        if self.replay_every_seconds == 0 {
            return Err("replay_every_seconds must be positive".into());
        }
        Ok(())
    }
}

/// A dead letter: the entry and why it is there.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DeadLetter {
    entry: Entry,
    reason: String,
    at: chrono::DateTime<Utc>,
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    pub written: usize,
    pub duplicates: usize,
    /// Still in the queue (the database still refuses them).
    pub left: usize,
}

struct Inner {
    db: DatabaseConnection,
    redis: Option<redis::Client>,
    dlq_file: PathBuf,
    config: KmConfig,
    /// Postmortems are queued for the S3 archive.
    archive: bool,
    /// How similar past incidents are found.
    retrieval: Retrieval,
}

/// The one entry point for knowledge writes; cheap to clone.
#[derive(Clone)]
pub struct KmWriter(Arc<Inner>);

fn count(outcome: &'static str) {
    metrics::counter!("awoooi_km_writes_total", "outcome" => outcome).increment(1);
}

/// Connection, timeout and lock errors are worth retrying; constraint and validation errors
/// are not.
pub fn transient(error: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as Sqlx;
    match error {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => match e.as_ref() {
            Sqlx::Io(_)
            | Sqlx::Tls(_)
            | Sqlx::Protocol(_)
            | Sqlx::PoolTimedOut
            | Sqlx::PoolClosed
            | Sqlx::WorkerCrashed => true,
            Sqlx::Database(db) => {
                let code = db.code().unwrap_or_default();
                // PostgreSQL: connection class, serialization, deadlock, lock, shutdown, too
                // many connections. SQLite: BUSY and LOCKED (and their extended codes).
                code.starts_with("08")
                    || [
                        "40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300",
                    ]
                    .contains(&code.as_ref())
                    || ["5", "6", "261", "262", "517"].contains(&code.as_ref())
            }
            _ => false,
        },
        DbErr::Conn(_) => true,
        _ => false,
    }
}

fn validate(entry: &Entry) -> Result<(), KmError> {
    if entry.incident_id <= 0 {
        return Err(KmError::Invalid(format!(
            "incident_id must be positive, got {}",
            entry.incident_id
        )));
    }
    if entry.title.trim().is_empty() {
        return Err(KmError::Invalid("title is empty".into()));
    }
    if entry.title.len() > 1_000 || entry.body.len() > 64 * 1024 {
        return Err(KmError::Invalid(
            "title over 1000 bytes or body over 64 KiB".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::search::words;
    use super::*;

    #[test]
    fn query_words_lose_every_operator() {
        assert_eq!(
            words("postgres-db \"OR\" NEAR(x) [IP_1] order-api order"),
            [
                "postgres", "db", "or", "near", "x", "ip", "1", "order", "api"
            ]
        );
        assert!(words("*** ()").is_empty());
    }

    #[test]
    fn backoff_and_timeout_are_validated() {
        assert!(KmConfig::default().validate().is_ok());
        let bad = KmConfig {
            backoff_seconds: vec![1.0, f64::NAN],
            ..KmConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = KmConfig {
            timeout_seconds: 0.0,
            ..KmConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
