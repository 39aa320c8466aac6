//! Semantic retrieval: knowledge entries embedded by a sentence-embedding model
//! (`[knowledge.embeddings]`), the vectors stored with the entries (`knowledge_vectors`), an
//! in-memory index over them, and the background job that embeds what is pending.
//!
//! - **The job.** Entries without a vector of the configured model (new ones, or ones made by
//!   another model) are claimed in batches with a lease (`INSERT … ON CONFLICT DO UPDATE …
//!   WHERE the lease has run out … RETURNING`: one replica wins each row), embedded on a
//!   thread of its own at the lowest CPU priority (nice 19: request handling and ingest take
//!   the cores first), and stored only by the lease's holder. A replica that dies mid-batch
//!   leaves leases that run out; another takes them. Ingest never waits for it.
//! - **The index.** Every vector of the configured model, in memory (`dims` f32 per entry),
//!   searched by an exact scan: O(n·dims) per query, no approximation. Refreshed before each
//!   query by the rows embedded since its previous refresh started (less a 60 s margin for
//!   clocks between replicas) and reloaded whole every 10 minutes. Its limit is memory and the scan: 100,000
//!   entries are 154 MB and one scan (BENCHMARKS.md); past a few million entries it wants an
//!   approximate index.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, Statement, Value,
};
use serde::Deserialize;

use super::*;

/// `[knowledge.embeddings]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingsConfig {
    /// A sentence-transformers model directory (`config.json`, `tokenizer.json`,
    /// `model.safetensors`); none: retrieval is full-text only.
    #[serde(default)]
    pub model: Option<PathBuf>,
}

/// How retrieval ranks: the database's full-text search alone, or fused with the vectors.
#[derive(Clone, Default)]
pub enum Retrieval {
    #[default]
    FullText,
    Hybrid(Arc<Semantic>),
}

impl Retrieval {
    /// From the configuration: the model loaded (an error names the file), or full-text.
    pub fn from_config(config: &EmbeddingsConfig) -> Result<Self, embed::LoadError> {
        match &config.model {
            None => Ok(Retrieval::FullText),
            Some(dir) => Ok(Retrieval::Hybrid(Arc::new(Semantic::load(dir)?))),
        }
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        match self {
            Retrieval::FullText => {
                "full-text only (no [knowledge.embeddings] model configured)".to_owned()
            }
            Retrieval::Hybrid(s) => format!(
                "hybrid: full-text fused with embeddings of {} (model {})",
                s.source,
                s.model.fingerprint()
            ),
        }
    }
}

/// The model, its index and the job's identity.
pub struct Semantic {
    model: Arc<embed::Model>,
    source: String,
    index: tokio::sync::Mutex<Index>,
    /// This process, as a lease holder.
    holder: String,
    /// The job's embedding thread, started on its first batch.
    background: std::sync::OnceLock<std::sync::mpsc::Sender<Batch>>,
}

/// Texts to embed in the background, and where their vectors go.
type Batch = (
    Vec<(i32, String)>,
    tokio::sync::oneshot::Sender<Vec<(i32, Vec<f32>)>>,
);

/// The background embedding thread: lowest priority, one batch at a time.
fn background_thread(model: Arc<embed::Model>) -> std::sync::mpsc::Sender<Batch> {
    let (tx, rx) = std::sync::mpsc::channel::<Batch>();
    std::thread::Builder::new()
        .name("km-embed".into())
        .spawn(move || {
            lowest_priority();
            for (texts, reply) in rx {
                let vectors = texts
                    .into_iter()
                    .map(|(id, text)| (id, model.embed(&text)))
                    .collect();
                let _ = reply.send(vectors);
            }
        })
        .expect("the embedding thread starts");
    tx
}

/// Nice 19 for the calling thread (on Linux the nice value is per thread), so the job's
/// minutes of CPU yield to every request; elsewhere, and on failure, nothing changes.
fn lowest_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority takes no pointers; `0` names the calling thread.
        let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
        if result != 0 {
            tracing::debug!("embedding thread keeps its priority: setpriority failed");
        }
    }
}

#[derive(Default)]
struct Index {
    entries: Vec<i32>,
    incidents: Vec<i32>,
    vectors: Vec<f32>,
    row_of: HashMap<i32, usize>,
    /// When the last refresh started (Unix ms); the next reads what was embedded since, less
    /// [`CLOCK_MARGIN_MS`].
    watermark: i64,
    loaded: Option<Instant>,
}

/// A refresh reads back this far before the previous one started, for clocks between replicas
/// (a vector stored by a replica whose clock is behind ours).
const CLOCK_MARGIN_MS: i64 = 60_000;
/// The whole index is read again this often.
const RELOAD_EVERY: Duration = Duration::from_secs(600);
/// A claim's lease.
const LEASE_MS: i64 = 120_000;

#[derive(FromQueryResult)]
struct VectorRow {
    entry_id: i32,
    incident_id: i32,
    vector: Vec<u8>,
}

#[derive(FromQueryResult)]
struct Claimed {
    entry_id: i32,
}

#[derive(FromQueryResult)]
struct Count {
    n: i64,
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// `sql` with `?` placeholders, numbered `$1…` for PostgreSQL.
fn statement(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => {
            let mut out = String::with_capacity(sql.len() + 8);
            let mut n = 0;
            for c in sql.chars() {
                if c == '?' {
                    n += 1;
                    out.push_str(&format!("${n}"));
                } else {
                    out.push(c);
                }
            }
            out
        }
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// The text an entry is embedded from: what it is about first (title, root cause, alerts),
/// then the story; the model reads its first 256 tokens.
fn entry_text(entry: &knowledge_entry::Model) -> String {
    let mut text = entry.title.trim_start_matches("Resolved: ").to_owned();
    for part in [
        entry.root_cause.as_deref(),
        Some(entry.alert_names.as_str()),
    ] {
        if let Some(part) = part.filter(|p| !p.trim().is_empty()) {
            text.push_str(". ");
            text.push_str(part);
        }
    }
    text.push_str(". ");
    text.push_str(&entry.body);
    text
}

fn to_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

impl Semantic {
    /// Loads the model in `dir`.
    pub fn load(dir: &Path) -> Result<Self, embed::LoadError> {
        Ok(Semantic {
            model: Arc::new(embed::Model::load(dir)?),
            source: dir.display().to_string(),
            background: std::sync::OnceLock::new(),
            index: tokio::sync::Mutex::new(Index::default()),
            holder: format!(
                "{}-{}",
                std::process::id(),
                Utc::now().timestamp_nanos_opt().unwrap_or_default()
            ),
        })
    }

    /// The model's fingerprint: what stored vectors are checked against.
    pub fn fingerprint(&self) -> &str {
        self.model.fingerprint()
    }

    /// Embeds `text` on a blocking thread (tens of milliseconds of CPU).
    pub async fn embed(self: &Arc<Self>, text: String) -> Vec<f32> {
        let model = self.model.clone();
        tokio::task::spawn_blocking(move || model.embed(&text))
            .await
            .expect("embedding does not panic")
    }

    /// Entries nearest to `text` by meaning, best first, with their scores, skipping
    /// `except`'s incident.
    pub async fn nearest(
        self: &Arc<Self>,
        db: &impl ConnectionTrait,
        text: &str,
        k: usize,
        except: Option<i32>,
    ) -> Result<Vec<(i32, f32)>, DbErr> {
        {
            // Nothing embedded yet (a new base, the job just started): no query to embed.
            let mut index = self.index.lock().await;
            self.refresh(db, &mut index).await?;
            if index.entries.is_empty() {
                return Ok(Vec::new());
            }
        }
        // Vectors stored while the query is embedded are read by the next query's refresh.
        let query = self.embed(text.to_owned()).await;
        let index = self.index.lock().await;
        let except = except.unwrap_or(0);
        let incidents = &index.incidents;
        Ok(
            embed::nearest(&query, &index.vectors, self.model.dims(), k, |row| {
                incidents[row] == except
            })
            .into_iter()
            .map(|(row, score)| (index.entries[row], score))
            .collect(),
        )
    }

    /// Reads the vectors embedded since the last read (everything, on the first read and
    /// every [`RELOAD_EVERY`]).
    async fn refresh(&self, db: &impl ConnectionTrait, index: &mut Index) -> Result<(), DbErr> {
        if index.loaded.is_none_or(|at| at.elapsed() > RELOAD_EVERY) {
            *index = Index {
                loaded: Some(Instant::now()),
                ..Index::default()
            };
        }
        // A fresh index has watermark 0: every vector (embedded_at is a Unix time).
        let since = index.watermark - CLOCK_MARGIN_MS;
        let started = now_ms();
        let rows = VectorRow::find_by_statement(statement(
            db.get_database_backend(),
            "SELECT v.entry_id AS entry_id, k.incident_id AS incident_id, v.vector AS vector \
             FROM knowledge_vectors v \
             JOIN knowledge_entries k ON k.id = v.entry_id \
             WHERE v.model = ? AND v.embedded_at >= ? AND v.vector IS NOT NULL",
            vec![self.fingerprint().into(), since.into()],
        ))
        .all(db)
        .await?;
        let dims = self.model.dims();
        for row in rows {
            if row.vector.len() != dims * 4 {
                continue;
            }
            let vector = row
                .vector
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            match index.row_of.get(&row.entry_id) {
                Some(&at) => {
                    for (slot, v) in index.vectors[at * dims..(at + 1) * dims]
                        .iter_mut()
                        .zip(vector)
                    {
                        *slot = v;
                    }
                }
                None => {
                    index.row_of.insert(row.entry_id, index.entries.len());
                    index.entries.push(row.entry_id);
                    index.incidents.push(row.incident_id);
                    index.vectors.extend(vector);
                }
            }
        }
        index.watermark = started;
        Ok(())
    }

    /// How many entries have no vector of this model yet.
    pub async fn pending(&self, db: &impl ConnectionTrait) -> Result<u64, DbErr> {
        let row = Count::find_by_statement(statement(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM knowledge_entries k \
             LEFT JOIN knowledge_vectors v ON v.entry_id = k.id AND v.model = ? \
             WHERE v.entry_id IS NULL",
            vec![self.fingerprint().into()],
        ))
        .one(db)
        .await?;
        Ok(row.map_or(0, |r| Ord::max(r.n, 0) as u64))
    }

    /// Claims up to `batch` pending entries (newest first), embeds them and stores the
    /// vectors; returns how many it stored (0: nothing was pending or free to claim).
    pub async fn embed_pending(
        self: &Arc<Self>,
        db: &impl ConnectionTrait,
        batch: u64,
    ) -> Result<usize, DbErr> {
        let now = now_ms();
        let model = self.fingerprint().to_owned();
        let claimed: Vec<i32> = Claimed::find_by_statement(statement(
            db.get_database_backend(),
            "INSERT INTO knowledge_vectors \
             (entry_id, model, vector, embedded_at, lease_holder, lease_until) \
             SELECT k.id, '', NULL, 0, ?, ? FROM knowledge_entries k \
             LEFT JOIN knowledge_vectors v ON v.entry_id = k.id \
             WHERE v.entry_id IS NULL \
             OR (v.model <> ? AND (v.lease_until IS NULL OR v.lease_until < ?)) \
             ORDER BY k.id DESC LIMIT ? \
             ON CONFLICT (entry_id) DO UPDATE \
             SET lease_holder = excluded.lease_holder, lease_until = excluded.lease_until \
             WHERE knowledge_vectors.model <> ? \
             AND (knowledge_vectors.lease_until IS NULL OR knowledge_vectors.lease_until < ?) \
             RETURNING entry_id",
            vec![
                self.holder.clone().into(),
                (now + LEASE_MS).into(),
                model.clone().into(),
                now.into(),
                (batch as i64).into(),
                model.clone().into(),
                now.into(),
            ],
        ))
        .all(db)
        .await?
        .into_iter()
        .map(|c| c.entry_id)
        .collect();
        if claimed.is_empty() {
            return Ok(0);
        }
        let entries = knowledge_entry::Entity::find()
            .filter(knowledge_entry::Column::Id.is_in(claimed))
            .all(db)
            .await?;
        let texts: Vec<(i32, String)> = entries.iter().map(|e| (e.id, entry_text(e))).collect();
        let (reply, vectors) = tokio::sync::oneshot::channel();
        self.background
            .get_or_init(|| background_thread(self.model.clone()))
            .send((texts, reply))
            .expect("the embedding thread runs as long as the process");
        let vectors = vectors
            .await
            .expect("the embedding thread answers every batch");
        let mut stored = 0;
        for (id, vector) in vectors {
            let done = db
                .execute_raw(statement(
                    db.get_database_backend(),
                    "UPDATE knowledge_vectors SET model = ?, vector = ?, embedded_at = ?, \
                     lease_holder = NULL, lease_until = NULL \
                     WHERE entry_id = ? AND lease_holder = ?",
                    vec![
                        model.clone().into(),
                        to_bytes(&vector).into(),
                        now_ms().into(),
                        id.into(),
                        self.holder.clone().into(),
                    ],
                ))
                .await?;
            stored += done.rows_affected() as usize;
        }
        metrics::counter!("awoooi_km_embedded_total").increment(stored as u64);
        Ok(stored)
    }

    /// Marks every stored vector stale, so the job embeds every entry again.
    pub async fn mark_all_stale(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
        Ok(db
            .execute_raw(statement(
                db.get_database_backend(),
                "UPDATE knowledge_vectors SET model = ''",
                vec![],
            ))
            .await?
            .rows_affected())
    }

    /// The background job: embeds what is pending, in batches; idles `idle` when nothing is.
    pub fn spawn_job(self: &Arc<Self>, db: DatabaseConnection, idle: Duration) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                match me.embed_pending(&db, 8).await {
                    Ok(0) => tokio::time::sleep(idle).await,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "embedding job: database error; retrying");
                        tokio::time::sleep(idle).await;
                    }
                }
            }
        });
    }
}

/// Reciprocal rank fusion (Cormack et al., 2009): each list adds `1 / (60 + rank)` for an
/// entry it ranks; best first, ties to the newer entry.
pub fn fuse(lists: &[&[i32]]) -> Vec<i32> {
    let mut score: HashMap<i32, f64> = HashMap::new();
    for list in lists {
        for (rank, id) in list.iter().enumerate() {
            *score.entry(*id).or_default() += 1.0 / (60.0 + rank as f64 + 1.0);
        }
    }
    let mut fused: Vec<(i32, f64)> = score.into_iter().collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
    fused.into_iter().map(|(id, _)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusion_prefers_what_both_lists_rank_high() {
        // 7 is second in both; 1 is first in one list only.
        assert_eq!(fuse(&[&[1, 7, 3], &[9, 7, 4]])[0], 7);
        assert_eq!(fuse(&[&[], &[5, 6]]), [5, 6]);
        assert!(fuse(&[]).is_empty());
    }

    #[test]
    fn postgres_placeholders_are_numbered_in_order() {
        let s = statement(
            DbBackend::Postgres,
            "a = ? AND b = ?",
            vec![1.into(), 2.into()],
        );
        assert_eq!(s.sql, "a = $1 AND b = $2");
    }
}
