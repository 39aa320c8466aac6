//! The knowledge writer: timeout, retries of transient errors, dead letters (Redis, else a
//! fsynced local file), replay, idempotent insert.

use super::*;

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
            archive: false,
            retrieval: Retrieval::FullText,
        })))
    }

    /// Ranks retrieval with `retrieval` (set while building, before the writer is shared).
    pub fn retrieving(mut self, retrieval: Retrieval) -> KmWriter {
        Arc::get_mut(&mut self.0)
            .expect("retrieval is set before the writer is shared")
            .retrieval = retrieval;
        self
    }

    /// How similar past incidents are found.
    pub fn retrieval(&self) -> &Retrieval {
        &self.0.retrieval
    }

    /// Queues each stored postmortem for the S3 archive (set while building, before the
    /// writer is shared).
    pub fn archiving(mut self, on: bool) -> KmWriter {
        Arc::get_mut(&mut self.0)
            .expect("archiving is set before the writer is shared")
            .archive = on;
        self
    }

    pub fn config(&self) -> &KmConfig {
        &self.0.config
    }

    /// Writes `entry` by the seven rules; in fire-and-forget mode returns `Queued` at once.
    pub async fn write(&self, entry: Entry) -> Result<Written, KmError> {
        validate(&entry)?;
        if !self.0.config.write_await {
            return self.queue(entry).await;
        }
        self.write_awaited(entry).await
    }

    pub(super) async fn write_awaited(&self, entry: Entry) -> Result<Written, KmError> {
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
        let done = insert_in(&txn, entry).await?;
        txn.commit().await?;
        Ok(done)
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

    /// Sweeps the outbox (at once, then every `replay_every_seconds`) and re-drives the
    /// dead-letter queues on the same beat.
    pub fn start_worker(&self) {
        let writer = self.clone();
        let every = Duration::from_secs(self.0.config.replay_every_seconds);
        tokio::spawn(async move {
            loop {
                // The outbox first, at start too: what a crash left is written at once.
                if let Err(e) = writer.sweep_outbox().await {
                    tracing::warn!(error = %e, "knowledge outbox sweep failed; next round retries");
                }
                tokio::time::sleep(every).await;
                if let Err(e) = writer.replay().await {
                    tracing::warn!(error = %e, "knowledge replay failed; next round retries");
                }
            }
        });
    }

    /// Entries matching `query`, best first (see [`search`]), skipping `except`'s incident.
    pub async fn search(
        &self,
        query: &str,
        first: u64,
        except: Option<i32>,
    ) -> Result<Vec<knowledge_entry::Model>, DbErr> {
        search(&self.0.db, &self.0.retrieval, query, first, except).await
    }
}

/// The insert (a no-op on a duplicate) and the back-link, inside `txn`.
pub(super) async fn insert_in<C: ConnectionTrait>(
    txn: &C,
    entry: &Entry,
) -> Result<Written, DbErr> {
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
        outcome: Set(entry.outcome),
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
        .exec_without_returning(txn)
        .await?;
    if inserted == 0 {
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
            .one(txn)
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
            .exec(txn)
            .await?;
    }
    Ok(Written::Written)
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
