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
//! `knowledge.write_await = false` (`AWOOOI_KM_WRITE_AWAIT=false`) makes writes
//! fire-and-forget (the same path, in a background task) for rollback.

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FixOutcome {
    Worked,
    Failed,
}

impl FixOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            FixOutcome::Worked => "WORKED",
            FixOutcome::Failed => "FAILED",
        }
    }
}

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
    /// Fire-and-forget mode: handed to a background task.
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

impl KmWriter {
    pub fn new(
        db: DatabaseConnection,
        redis_url: Option<&str>,
        data_dir: &Path,
        config: KmConfig,
    ) -> anyhow::Result<KmWriter> {
        let redis = redis_url
            .map(redis::Client::open)
            .transpose()
            .map_err(|e| anyhow::anyhow!("knowledge dead-letter queue: bad Redis URL: {e}"))?;
        Ok(KmWriter(Arc::new(Inner {
            db,
            redis,
            dlq_file: data_dir.join(DLQ_FILE),
            config,
        })))
    }

    pub fn config(&self) -> &KmConfig {
        &self.0.config
    }

    /// Writes `entry` by the seven rules; in fire-and-forget mode returns `Queued` at once.
    pub async fn write(&self, entry: Entry) -> Result<Written, KmError> {
        validate(&entry)?;
        if !self.0.config.write_await {
            let writer = self.clone();
            tokio::spawn(async move {
                // Failures are logged and counted inside; nothing is waiting for them.
                let _ = writer.write_awaited(entry).await;
            });
            count("queued");
            return Ok(Written::Queued);
        }
        self.write_awaited(entry).await
    }

    async fn write_awaited(&self, entry: Entry) -> Result<Written, KmError> {
        let timeout = Duration::from_secs_f64(self.0.config.timeout_seconds);
        let mut attempt = 0usize;
        loop {
            let error = match tokio::time::timeout(timeout, self.insert(&entry)).await {
                Ok(Ok(done)) => {
                    tracing::info!(
                        incident = entry.incident_id,
                        path = entry.path_type.as_str(),
                        outcome = done.as_str(),
                        attempt,
                        "knowledge entry"
                    );
                    count(done.as_str());
                    return Ok(done);
                }
                Ok(Err(e)) if !transient(&e) => {
                    tracing::error!(
                        incident = entry.incident_id,
                        path = entry.path_type.as_str(),
                        error = %e,
                        "knowledge entry refused by the database; not retried"
                    );
                    count("failed");
                    return Err(KmError::Permanent(e.to_string()));
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("timed out after {:.1} s", timeout.as_secs_f64()),
            };
            match self.0.config.backoff_seconds.get(attempt) {
                Some(delay) => {
                    tracing::warn!(
                        incident = entry.incident_id,
                        path = entry.path_type.as_str(),
                        attempt = attempt + 1,
                        retry_in_seconds = delay,
                        %error,
                        "knowledge write failed; retrying"
                    );
                    count("retried");
                    tokio::time::sleep(Duration::from_secs_f64(*delay)).await;
                    attempt += 1;
                }
                None => return self.dead_letter(entry, error).await,
            }
        }
    }

    /// One attempt: the insert (a no-op on a duplicate) and the back-link, in one transaction.
    async fn insert(&self, entry: &Entry) -> Result<Written, DbErr> {
        let txn = self.0.db.begin().await?;
        let row = knowledge_entry::ActiveModel {
            incident_id: Set(entry.incident_id),
            path_type: Set(entry.path_type.as_str().to_owned()),
            related_approval_id: Set(entry.related_approval_id),
            title: Set(entry.title.clone()),
            body: Set(entry.body.clone()),
            service: Set(entry.service.clone()),
            alert_names: Set(entry.alert_names.join(" ")),
            root_cause: Set(entry.root_cause.clone()),
            action: Set(entry.action.clone()),
            outcome: Set(entry.outcome.map(|o| o.as_str().to_owned())),
            created_at: Set(Utc::now()),
            ..Default::default()
        };
        let inserted = knowledge_entry::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    knowledge_entry::Column::IncidentId,
                    knowledge_entry::Column::PathType,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        if inserted == 0 {
            txn.rollback().await?;
            return Ok(Written::Duplicate);
        }
        let incident = knowledge_entry::Column::IncidentId.eq(entry.incident_id);
        let approval = match (entry.path_type, entry.related_approval_id) {
            // An execution's entry: the incident's A entry points at the same approval.
            (path, Some(approval)) if path != PathType::A => Some(approval),
            // The A entry written after the executions: link it to the latest of them.
            (PathType::A, None) => knowledge_entry::Entity::find()
                .filter(incident.clone())
                .filter(knowledge_entry::Column::PathType.ne(PathType::A.as_str()))
                .filter(knowledge_entry::Column::RelatedApprovalId.is_not_null())
                .order_by_desc(knowledge_entry::Column::Id)
                .one(&txn)
                .await?
                .and_then(|latest| latest.related_approval_id),
            _ => None,
        };
        if let Some(approval) = approval {
            knowledge_entry::Entity::update_many()
                .col_expr(
                    knowledge_entry::Column::RelatedApprovalId,
                    Expr::value(approval),
                )
                .filter(incident)
                .filter(knowledge_entry::Column::PathType.eq(PathType::A.as_str()))
                .filter(knowledge_entry::Column::RelatedApprovalId.is_null())
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(Written::Written)
    }

    /// Rule 3: Redis first, else the local file; only if both fail is the entry lost — and
    /// then the caller hears it.
    async fn dead_letter(&self, entry: Entry, reason: String) -> Result<Written, KmError> {
        let letter = DeadLetter {
            entry,
            reason: reason.clone(),
            at: Utc::now(),
        };
        let line = serde_json::to_string(&letter).expect("entries serialise");
        let (incident, path) = (letter.entry.incident_id, letter.entry.path_type.as_str());
        let redis_error = match &self.0.redis {
            Some(client) => match push_redis(client, &self.0.config.dlq_key, &line).await {
                Ok(()) => {
                    tracing::warn!(incident, path, %reason, queue = %self.0.config.dlq_key, "knowledge entry dead-lettered to Redis");
                    count("dead_lettered");
                    return Ok(Written::DeadLettered);
                }
                Err(e) => Some(e.to_string()),
            },
            None => None,
        };
        let file = self.0.dlq_file.clone();
        match tokio::task::spawn_blocking(move || append_line(&file, &line)).await {
            Ok(Ok(())) => {
                tracing::warn!(
                    incident, path, %reason,
                    redis_error = redis_error.as_deref().unwrap_or("not configured"),
                    file = %self.0.dlq_file.display(),
                    "knowledge entry dead-lettered to the local file"
                );
                count("dead_lettered");
                Ok(Written::DeadLettered)
            }
            Ok(Err(e)) => self.lost(
                incident,
                path,
                format!("{reason}; Redis: {redis_error:?}; file: {e}"),
            ),
            Err(e) => self.lost(incident, path, format!("{reason}; file task: {e}")),
        }
    }

    fn lost(&self, incident: i32, path: &str, why: String) -> Result<Written, KmError> {
        tracing::error!(incident, path, %why, "knowledge entry could not be dead-lettered");
        count("lost");
        Err(KmError::Lost(why))
    }

    /// Re-drives the dead-letter queues (Redis, then the local file) with one attempt per
    /// entry. Idempotent: an entry written twice is a duplicate, and an entry leaves its queue
    /// only after the database has it.
    pub async fn replay(&self) -> anyhow::Result<Replayed> {
        let mut done = Replayed::default();
        if let Some(client) = &self.0.redis {
            match client.get_multiplexed_async_connection().await {
                Ok(mut conn) => self.replay_redis(&mut conn, &mut done).await?,
                Err(e) => {
                    tracing::warn!(error = %e, "knowledge replay: Redis unreachable; its queue waits")
                }
            }
        }
        self.replay_file(&mut done).await?;
        if done.written + done.duplicates > 0 || done.left > 0 {
            tracing::info!(
                written = done.written,
                duplicates = done.duplicates,
                left = done.left,
                "knowledge dead letters replayed"
            );
        }
        Ok(done)
    }

    /// One attempt for a dead letter: Ok(true) if the database has it now.
    async fn replay_one(&self, line: &str, done: &mut Replayed) -> bool {
        let letter: DeadLetter = match serde_json::from_str(line) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "unreadable knowledge dead letter kept in the queue");
                return false;
            }
        };
        match self.insert(&letter.entry).await {
            Ok(Written::Duplicate) => {
                done.duplicates += 1;
                count("duplicate");
                true
            }
            Ok(_) => {
                done.written += 1;
                count("replayed");
                true
            }
            Err(e) => {
                tracing::warn!(incident = letter.entry.incident_id, error = %e, "knowledge replay: still refused");
                false
            }
        }
    }

    async fn replay_redis(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        done: &mut Replayed,
    ) -> anyhow::Result<()> {
        use redis::AsyncCommands;
        // Oldest first (LPUSH puts the newest at the head).
        let key = &self.0.config.dlq_key;
        let letters: Vec<String> = conn.lrange(key, 0, -1).await?;
        for line in letters.iter().rev() {
            if self.replay_one(line, done).await {
                let _: i64 = conn.lrem(key, -1, line).await?;
            } else {
                done.left += 1;
            }
        }
        Ok(())
    }

    async fn replay_file(&self, done: &mut Replayed) -> anyhow::Result<()> {
        let file = self.0.dlq_file.clone();
        let taking = file.with_extension("replaying");
        // Move the queue aside under the writers' lock: appends after this go to a new file.
        let (from, to) = (file.clone(), taking.clone());
        let text = tokio::task::spawn_blocking(move || take_file(&from, &to)).await??;
        let Some(text) = text else {
            return Ok(());
        };
        let mut keep = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if !self.replay_one(line, done).await {
                keep.push(line.to_owned());
            }
        }
        done.left += keep.len();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            for line in &keep {
                append_line(&file, line)?;
            }
            std::fs::remove_file(&taking)
        })
        .await??;
        Ok(())
    }

    /// Re-drives the queues every `replay_every_seconds`.
    pub fn start_worker(&self) {
        let writer = self.clone();
        let every = Duration::from_secs(self.0.config.replay_every_seconds);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = writer.replay().await {
                    tracing::warn!(error = %e, "knowledge replay failed; next round retries");
                }
            }
        });
    }

    /// Entries matching `query`, best first, by the database's own full-text ranking (FTS5's
    /// bm25 on SQLite, `ts_rank` on PostgreSQL), skipping `except`'s incident.
    pub async fn search(
        &self,
        query: &str,
        first: u64,
        except: Option<i32>,
    ) -> Result<Vec<knowledge_entry::Model>, DbErr> {
        search(&self.0.db, query, first, except).await
    }
}

/// The words of a query, as the full-text engines may take them (no operators).
fn words(query: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for word in query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
    {
        if !seen.contains(&word) && seen.len() < 32 {
            seen.push(word);
        }
    }
    seen
}

#[derive(FromQueryResult)]
struct Hit {
    id: i32,
}

/// See [`KmWriter::search`].
pub async fn search(
    db: &impl ConnectionTrait,
    query: &str,
    first: u64,
    except: Option<i32>,
) -> Result<Vec<knowledge_entry::Model>, DbErr> {
    let words = words(query);
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let except = except.unwrap_or(0);
    let limit = first.clamp(1, 100) as i64;
    let statement = match db.get_database_backend() {
        DbBackend::Postgres => Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id FROM knowledge_entries \
             WHERE search @@ to_tsquery('simple', $1) AND incident_id <> $2 \
             ORDER BY ts_rank(search, to_tsquery('simple', $1)) DESC, id DESC LIMIT $3",
            [words.join(" | ").into(), except.into(), limit.into()],
        ),
        backend => Statement::from_sql_and_values(
            backend,
            "SELECT k.id AS id FROM knowledge_fts f JOIN knowledge_entries k ON k.id = f.rowid \
             WHERE knowledge_fts MATCH ? AND k.incident_id <> ? \
             ORDER BY bm25(knowledge_fts, 2.0, 1.0, 4.0, 4.0, 4.0), k.id DESC LIMIT ?",
            [
                words
                    .iter()
                    .map(|w| format!("\"{w}\""))
                    .collect::<Vec<_>>()
                    .join(" OR ")
                    .into(),
                except.into(),
                limit.into(),
            ],
        ),
    };
    let ids: Vec<i32> = Hit::find_by_statement(statement)
        .all(db)
        .await?
        .into_iter()
        .map(|h| h.id)
        .collect();
    let mut rows = knowledge_entry::Entity::find()
        .filter(knowledge_entry::Column::Id.is_in(ids.clone()))
        .all(db)
        .await?;
    rows.sort_by_key(|r| ids.iter().position(|id| *id == r.id));
    Ok(rows)
}

async fn push_redis(client: &redis::Client, key: &str, line: &str) -> redis::RedisResult<()> {
    use redis::AsyncCommands;
    let mut conn = tokio::time::timeout(
        Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "connect timed out")))??;
    let _: i64 = conn.lpush(key, line).await?;
    Ok(())
}

/// The lock every append and the replay's move take, so no append lands in a file being
/// replayed.
fn lock(file: &Path) -> std::io::Result<std::fs::File> {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(file.with_extension("lock"))?;
    lock.lock()?;
    Ok(lock)
}

/// Appends one line and fsyncs it before returning.
fn append_line(file: &Path, line: &str) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _lock = lock(file)?;
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    out.write_all(format!("{line}\n").as_bytes())?;
    out.sync_all()
}

/// Moves the queue file aside (or takes a move a crashed replay left) and reads it.
fn take_file(file: &Path, taking: &Path) -> std::io::Result<Option<String>> {
    let _lock = lock(file)?;
    let mut text = match std::fs::read_to_string(taking) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    match std::fs::read_to_string(file) {
        Ok(more) => {
            text.push_str(&more);
            std::fs::write(taking, &text)?;
            std::fs::File::open(taking)?.sync_all()?;
            std::fs::remove_file(file)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok((!text.is_empty()).then_some(text))
}

/// What an entry says about its incident: title, service, alert names, root cause.
struct Facts {
    title: String,
    service: Option<String>,
    alert_names: Vec<String>,
    root_cause: Option<String>,
    summary: Option<String>,
}

async fn facts(db: &DatabaseConnection, incident_id: i32) -> Result<Option<Facts>, DbErr> {
    use entity::{alert, analysis, incident};
    let Some(found) = incident::Entity::find_by_id(incident_id).one(db).await? else {
        return Ok(None);
    };
    let mut alert_names: Vec<String> = alert::Entity::find()
        .filter(alert::Column::IncidentId.eq(incident_id))
        .all(db)
        .await?
        .into_iter()
        .map(|a| a.name)
        .collect();
    alert_names.sort();
    alert_names.dedup();
    let analysed = analysis::Entity::find()
        .filter(analysis::Column::IncidentId.eq(incident_id))
        .one(db)
        .await?;
    Ok(Some(Facts {
        title: found.title,
        service: found.service,
        alert_names,
        root_cause: analysed.as_ref().and_then(|a| a.root_cause.clone()),
        summary: analysed.map(|a| a.summary),
    }))
}

/// The entry for a finished execution: B_MANUAL when people signed it, B_AUTO_* when it ran
/// by itself (LOW), PLAYBOOK for an Ansible playbook. `output` is pseudonymised already.
pub async fn execution_entry(
    db: &DatabaseConnection,
    approval: &entity::approval::Model,
    signed_by_people: bool,
    succeeded: bool,
    output: &str,
) -> Result<Option<Entry>, DbErr> {
    let Some(facts) = facts(db, approval.incident_id).await? else {
        return Ok(None);
    };
    let path_type = if approval.kind.starts_with("ansible:") {
        PathType::Playbook
    } else if signed_by_people {
        PathType::BManual
    } else if succeeded {
        PathType::BAutoSuccess
    } else {
        PathType::BAutoFailure
    };
    let action = format!("{} {}", approval.kind, approval.target);
    let verdict = if succeeded { "worked" } else { "failed" };
    Ok(Some(Entry {
        incident_id: approval.incident_id,
        path_type,
        related_approval_id: Some(approval.id),
        title: format!("{action} {verdict} on \"{}\"", facts.title),
        body: format!(
            "Why: {}\nOutput: {}",
            approval.rationale,
            output.chars().take(4_000).collect::<String>()
        ),
        service: facts.service,
        alert_names: facts.alert_names,
        root_cause: facts.root_cause,
        action: Some(action),
        outcome: Some(if succeeded {
            FixOutcome::Worked
        } else {
            FixOutcome::Failed
        }),
    }))
}

/// The path-A entry of a resolved incident: what happened, the root cause, what fixed it.
pub async fn resolution_entry(
    db: &DatabaseConnection,
    incident_id: i32,
) -> Result<Option<Entry>, DbErr> {
    use entity::{approval, execution};
    let Some(facts) = facts(db, incident_id).await? else {
        return Ok(None);
    };
    let approvals = approval::Entity::find()
        .filter(approval::Column::IncidentId.eq(incident_id))
        .order_by_asc(approval::Column::Id)
        .all(db)
        .await?;
    let mut fixes = Vec::new();
    let mut last = None;
    for a in &approvals {
        let ran = execution::Entity::find()
            .filter(execution::Column::ApprovalId.eq(a.id))
            .one(db)
            .await?;
        if let Some(ran) = ran.filter(|e| e.status != ExecutionStatus::Running) {
            let worked = ran.status == ExecutionStatus::Succeeded;
            fixes.push(format!(
                "{} {} {}",
                a.kind,
                a.target,
                if worked { "worked" } else { "failed" }
            ));
            last = Some((a, worked));
        }
    }
    let (action, outcome) = match last {
        Some((a, worked)) => (
            Some(format!("{} {}", a.kind, a.target)),
            Some(if worked {
                FixOutcome::Worked
            } else {
                FixOutcome::Failed
            }),
        ),
        None => (None, None),
    };
    Ok(Some(Entry {
        incident_id,
        path_type: PathType::A,
        related_approval_id: last.map(|(a, _)| a.id),
        title: format!("Resolved: {}", facts.title),
        body: format!(
            "{}\nRoot cause: {}\nFixes: {}",
            facts.summary.as_deref().unwrap_or("No analysis."),
            facts.root_cause.as_deref().unwrap_or("unknown"),
            if fixes.is_empty() {
                "none; it resolved by itself".to_owned()
            } else {
                fixes.join("; ")
            }
        ),
        service: facts.service,
        alert_names: facts.alert_names,
        root_cause: facts.root_cause,
        action,
        outcome,
    }))
}

impl KmWriter {
    /// Writes the path-A entry of every resolved incident that has none yet (the sweep that
    /// catches what a missed notification would lose). Returns how many it wrote.
    pub async fn sweep_resolved(&self) -> Result<usize, DbErr> {
        use entity::incident;
        let resolved: Vec<i32> = incident::Entity::find()
            .filter(incident::Column::Status.eq(IncidentStatus::Resolved))
            .filter(
                Expr::col((incident::Entity, incident::Column::Id)).not_in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(knowledge_entry::Column::IncidentId)
                        .from(knowledge_entry::Entity)
                        .and_where(knowledge_entry::Column::PathType.eq(PathType::A.as_str()))
                        .to_owned(),
                ),
            )
            .order_by_asc(incident::Column::Id)
            .all(&self.0.db)
            .await?
            .into_iter()
            .map(|i| i.id)
            .collect();
        let mut written = 0;
        for id in resolved {
            if self.learn_resolution(id).await {
                written += 1;
            }
        }
        Ok(written)
    }

    /// Path A for one incident, if it is resolved. True if something was handed over.
    pub async fn learn_resolution(&self, incident_id: i32) -> bool {
        match resolution_entry(&self.0.db, incident_id).await {
            Ok(Some(entry)) => match self.write(entry).await {
                Ok(_) => true,
                Err(e) => {
                    tracing::error!(incident = incident_id, error = %e, "path-A knowledge entry failed");
                    false
                }
            },
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(incident = incident_id, error = %e, "cannot read the incident for its knowledge entry; the sweep retries");
                false
            }
        }
    }

    /// Watches incident updates: each one that is RESOLVED gets its path-A entry (idempotent);
    /// a periodic sweep covers notifications the broadcast dropped.
    pub fn watch_resolutions(&self, bus: &crate::base::bus::Bus) {
        let mut updates = bus.incidents();
        let writer = self.clone();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match updates.recv().await {
                    Ok(id) => {
                        let resolved = entity::incident::Entity::find_by_id(id)
                            .one(&writer.0.db)
                            .await
                            .ok()
                            .flatten()
                            .is_some_and(|i| i.status == IncidentStatus::Resolved);
                        if resolved {
                            writer.learn_resolution(id).await;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        let _ = writer.sweep_resolved().await;
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        let writer = self.clone();
        let every = Duration::from_secs(self.0.config.replay_every_seconds);
        tokio::spawn(async move {
            loop {
                if let Err(e) = writer.sweep_resolved().await {
                    tracing::warn!(error = %e, "knowledge sweep of resolved incidents failed");
                }
                tokio::time::sleep(every).await;
            }
        });
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.0.db
    }
}

/// The `k` past incidents most similar to `text` (service, root cause, alert names, title),
/// each with the fix tried on it and whether it worked — what the Brain learns from.
pub async fn similar(
    db: &impl ConnectionTrait,
    incident_id: i32,
    text: &str,
    k: usize,
) -> Result<Vec<engine::brain::PastIncident>, DbErr> {
    let hits = search(db, text, 20, Some(incident_id)).await?;
    let mut incidents: Vec<i32> = Vec::new();
    for hit in &hits {
        if !incidents.contains(&hit.incident_id) {
            incidents.push(hit.incident_id);
        }
    }
    incidents.truncate(k);
    let mut out = Vec::new();
    for id in incidents {
        let entries = knowledge_entry::Entity::find()
            .filter(knowledge_entry::Column::IncidentId.eq(id))
            .order_by_asc(knowledge_entry::Column::Id)
            .all(db)
            .await?;
        // The resolution's verdict when there is one, else the latest execution's.
        let verdict = entries
            .iter()
            .find(|e| e.path_type == PathType::A.as_str() && e.action.is_some())
            .or_else(|| entries.iter().rev().find(|e| e.action.is_some()));
        let title = entries
            .iter()
            .find(|e| e.path_type == PathType::A.as_str())
            .or(entries.first())
            .map(|e| e.title.trim_start_matches("Resolved: ").to_owned())
            .unwrap_or_default();
        out.push(engine::brain::PastIncident {
            incident_id: id,
            title,
            root_cause: entries.iter().find_map(|e| e.root_cause.clone()),
            action: verdict.and_then(|e| e.action.clone()),
            worked: verdict.and_then(|e| e.outcome.as_deref().map(|o| o == "WORKED")),
        });
    }
    Ok(out)
}

/// The text an incident is compared by: its service, root cause (from the analysis), alert
/// names and title.
pub async fn similarity_text(
    db: &DatabaseConnection,
    incident: &entity::incident::Model,
) -> Result<String, DbErr> {
    let Some(facts) = facts(db, incident.id).await? else {
        return Ok(String::new());
    };
    Ok([
        facts.service.unwrap_or_default(),
        facts.root_cause.unwrap_or_default(),
        facts.alert_names.join(" "),
        facts.title,
    ]
    .join(" "))
}

#[cfg(test)]
mod tests {
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
