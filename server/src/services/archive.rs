//! The S3 archive: postmortems, the audit chain in segments (its anchors) and knowledge
//! snapshots, copied to any S3-compatible store.
//!
//! Objects are queued in `archive_objects` — in the transaction of what produced them where
//! there is one — under content-addressed keys, so queueing or uploading one twice changes
//! nothing. The worker claims due objects with a lease (N replicas upload each once), PUTs
//! them, and on failure retries with back-off for as long as it takes: an unreachable store
//! delays the archive and loses nothing. `s3.rs` is the store; [`verify_against`] compares the
//! database's audit chain with the archived anchors.

mod s3;

pub use s3::{S3Config, S3Credentials, S3Store};

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use engine::audit::anchors::{self, Finding, Segment};
use entity::archive_object::{self, ArchiveKind, UploadStatus};
use entity::{audit_event, knowledge_entry};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// `[archive]`; the archive is on when `[archive.s3]` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    pub s3: Option<S3Config>,
    /// How often new audit events are cut into a segment.
    #[serde(default = "default_segment_every")]
    pub audit_segment_every_seconds: u64,
    /// The most events one segment holds.
    #[serde(default = "default_segment_max")]
    pub audit_segment_max_events: u64,
    /// How often the knowledge base is snapshotted (an unchanged one is not copied again).
    #[serde(default = "default_snapshot_every")]
    pub knowledge_snapshot_every_seconds: u64,
    /// How often the worker looks for objects to upload.
    #[serde(default = "default_upload_every")]
    pub upload_every_seconds: f64,
    /// The longest wait between two attempts of one object.
    #[serde(default = "default_retry_max")]
    pub retry_max_seconds: u64,
}

fn default_segment_every() -> u64 {
    300
}
fn default_segment_max() -> u64 {
    10_000
}
fn default_snapshot_every() -> u64 {
    86_400
}
fn default_upload_every() -> f64 {
    2.0
}
fn default_retry_max() -> u64 {
    300
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            s3: None,
            audit_segment_every_seconds: default_segment_every(),
            audit_segment_max_events: default_segment_max(),
            knowledge_snapshot_every_seconds: default_snapshot_every(),
            upload_every_seconds: default_upload_every(),
            retry_max_seconds: default_retry_max(),
        }
    }
}

impl ArchiveConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.audit_segment_every_seconds == 0 || self.knowledge_snapshot_every_seconds == 0 {
            return Err(
                "audit_segment_every_seconds and knowledge_snapshot_every_seconds must be positive"
                    .into(),
            );
        }
        if !(1..=1_000_000).contains(&self.audit_segment_max_events) {
            return Err("audit_segment_max_events must be between 1 and 1000000".into());
        }
        if !(self.upload_every_seconds.is_finite()
            && (0.01..=3_600.0).contains(&self.upload_every_seconds))
        {
            return Err("upload_every_seconds must be between 0.01 and 3600".into());
        }
        if self.retry_max_seconds == 0 {
            return Err("retry_max_seconds must be positive".into());
        }
        if let Some(s3) = &self.s3 {
            s3.validate().map_err(|e| format!("s3: {e}"))?;
        }
        Ok(())
    }
}

/// The hex SHA-256 of `body`.
fn digest(body: &str) -> String {
    hex::encode(Sha256::digest(body.as_bytes()))
}

/// The key of an incident's postmortem: its content's digest in the name, so a regenerated
/// postmortem is a new object and the same one is the same key.
pub fn postmortem_key(incident_id: i32, markdown: &str) -> String {
    format!(
        "postmortems/incident-{incident_id}/{}.md",
        &digest(markdown)[..16]
    )
}

/// Queues an object (in the caller's transaction, if it has one). False when an object with
/// this key is queued or uploaded already.
pub async fn enqueue_in(
    conn: &impl ConnectionTrait,
    kind: ArchiveKind,
    key: &str,
    body: String,
    content_type: &str,
    segment: Option<(i64, i64)>,
) -> Result<bool, DbErr> {
    let now = Utc::now();
    let row = archive_object::ActiveModel {
        key: Set(key.to_owned()),
        kind: Set(kind),
        body: Set(body),
        content_type: Set(content_type.to_owned()),
        status: Set(UploadStatus::Pending),
        attempts: Set(0),
        next_attempt_at: Set(now),
        locked_until: Set(None),
        last_error: Set(None),
        segment_first: Set(segment.map(|s| s.0)),
        segment_last: Set(segment.map(|s| s.1)),
        created_at: Set(now),
        uploaded_at: Set(None),
        ..Default::default()
    };
    let inserted = archive_object::Entity::insert(row)
        .on_conflict(OnConflict::new().do_nothing().to_owned())
        .exec_without_returning(conn)
        .await?;
    Ok(inserted > 0)
}

/// What one upload pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Uploaded {
    pub uploaded: usize,
    /// Failed this time; each is retried later.
    pub failed: usize,
}

struct Inner {
    db: DatabaseConnection,
    store: Option<S3Store>,
    config: ArchiveConfig,
}

/// The archive's queue and worker; cheap to clone.
#[derive(Clone)]
pub struct Archive(Arc<Inner>);

/// How long an upload may hold its claim.
const LEASE: chrono::TimeDelta = chrono::TimeDelta::seconds(120);
/// Objects claimed per pass.
const BATCH: u64 = 16;

impl Archive {
    /// The archive as configured: without `[archive.s3]` it queues nothing and uploads
    /// nothing. Credentials come from the environment (see [`S3Store::connect`]).
    pub fn new(db: DatabaseConnection, config: ArchiveConfig) -> Result<Archive, String> {
        let store = config.s3.as_ref().map(S3Store::connect).transpose()?;
        Ok(Archive(Arc::new(Inner { db, store, config })))
    }

    pub fn enabled(&self) -> bool {
        self.0.store.is_some()
    }

    pub fn store(&self) -> Option<&S3Store> {
        self.0.store.as_ref()
    }

    /// Cuts the audit events after the last segment into a new one (at most
    /// `audit_segment_max_events`). Returns its id range, or `None` when there was nothing
    /// new or another replica cut the same segment first.
    pub async fn cut_audit_segment(&self) -> Result<Option<(i64, i64)>, DbErr> {
        let db = &self.0.db;
        let last: Option<Option<i64>> = archive_object::Entity::find()
            .select_only()
            .column_as(archive_object::Column::SegmentLast.max(), "last")
            .filter(archive_object::Column::Kind.eq(ArchiveKind::AuditSegment))
            .into_tuple()
            .one(db)
            .await?;
        let after = last.flatten().unwrap_or(0);
        let rows = audit_event::Entity::find()
            .filter(audit_event::Column::Id.gt(after))
            .order_by_asc(audit_event::Column::Id)
            .limit(self.0.config.audit_segment_max_events)
            .all(db)
            .await?;
        let events: Vec<_> = rows.into_iter().map(crate::base::audit::from_row).collect();
        let Some(segment) = Segment::of(&events) else {
            return Ok(None);
        };
        let range = (segment.first, segment.last);
        let queued = enqueue_in(
            db,
            ArchiveKind::AuditSegment,
            &segment.key(),
            segment.to_json(),
            "application/json",
            Some(range),
        )
        .await?;
        Ok(queued.then_some(range))
    }

    /// Queues a snapshot of every knowledge entry (JSON lines, oldest first) unless the same
    /// snapshot was queued before. True if a new one was queued.
    pub async fn snapshot_knowledge(&self) -> Result<bool, DbErr> {
        let db = &self.0.db;
        let mut body = String::new();
        let mut pages = knowledge_entry::Entity::find()
            .order_by_asc(knowledge_entry::Column::Id)
            .paginate(db, 500);
        while let Some(page) = pages.fetch_and_next().await? {
            for e in page {
                let line = serde_json::json!({
                    "id": e.id,
                    "incident_id": e.incident_id,
                    "path_type": e.path_type,
                    "related_approval_id": e.related_approval_id,
                    "title": e.title,
                    "body": e.body,
                    "service": e.service,
                    "alert_names": e.alert_names,
                    "root_cause": e.root_cause,
                    "action": e.action,
                    "outcome": e.outcome.map(|o| o.as_str()),
                    "created_at": e.created_at,
                });
                body.push_str(&line.to_string());
                body.push('\n');
            }
        }
        if body.is_empty() {
            return Ok(false);
        }
        let key = format!("knowledge/snapshot-{}.jsonl", &digest(&body)[..32]);
        enqueue_in(
            db,
            ArchiveKind::KnowledgeSnapshot,
            &key,
            body,
            "application/x-ndjson",
            None,
        )
        .await
    }

    /// Objects not uploaded yet.
    pub async fn pending(&self) -> Result<u64, DbErr> {
        archive_object::Entity::find()
            .filter(archive_object::Column::Status.eq(UploadStatus::Pending))
            .count(&self.0.db)
            .await
    }

    /// Claims the due objects and uploads them; a failure is retried after a back-off
    /// (doubling, at most `retry_max_seconds`).
    pub async fn upload_due(&self) -> Result<Uploaded, DbErr> {
        let Some(store) = &self.0.store else {
            return Ok(Uploaded::default());
        };
        let db = &self.0.db;
        let now = Utc::now();
        let due = archive_object::Entity::find()
            .select_only()
            .column(archive_object::Column::Id)
            .filter(archive_object::Column::Status.eq(UploadStatus::Pending))
            .filter(archive_object::Column::NextAttemptAt.lte(now))
            .filter(
                archive_object::Column::LockedUntil
                    .is_null()
                    .or(archive_object::Column::LockedUntil.lt(now)),
            )
            .order_by_asc(archive_object::Column::Id)
            .limit(BATCH)
            .into_tuple::<i32>()
            .all(db)
            .await?;
        let mut done = Uploaded::default();
        for id in due {
            // The claim: only one worker moves the lease forward.
            let claimed = archive_object::Entity::update_many()
                .col_expr(
                    archive_object::Column::LockedUntil,
                    Expr::value(Some(now + LEASE)),
                )
                .filter(archive_object::Column::Id.eq(id))
                .filter(archive_object::Column::Status.eq(UploadStatus::Pending))
                .filter(
                    archive_object::Column::LockedUntil
                        .is_null()
                        .or(archive_object::Column::LockedUntil.lt(now)),
                )
                .exec(db)
                .await?
                .rows_affected
                == 1;
            if !claimed {
                continue;
            }
            let Some(row) = archive_object::Entity::find_by_id(id).one(db).await? else {
                continue;
            };
            match store
                .put(&row.key, row.body.into_bytes(), &row.content_type)
                .await
            {
                Ok(()) => {
                    archive_object::Entity::update_many()
                        .col_expr(
                            archive_object::Column::Status,
                            Expr::value(UploadStatus::Uploaded.as_str()),
                        )
                        .col_expr(
                            archive_object::Column::UploadedAt,
                            Expr::value(Some(Utc::now())),
                        )
                        .col_expr(
                            archive_object::Column::LockedUntil,
                            Expr::value(Option::<chrono::DateTime<Utc>>::None),
                        )
                        .col_expr(
                            archive_object::Column::Attempts,
                            Expr::value(row.attempts + 1),
                        )
                        .filter(archive_object::Column::Id.eq(id))
                        .exec(db)
                        .await?;
                    metrics::counter!("awoooi_archive_uploads_total", "outcome" => "uploaded")
                        .increment(1);
                    tracing::info!(key = %row.key, "archived");
                    done.uploaded += 1;
                }
                Err(error) => {
                    let attempts = row.attempts + 1;
                    let wait = Ord::min(
                        2u64.saturating_pow(attempts.clamp(0, 30) as u32),
                        self.0.config.retry_max_seconds,
                    );
                    archive_object::Entity::update_many()
                        .col_expr(archive_object::Column::Attempts, Expr::value(attempts))
                        .col_expr(
                            archive_object::Column::NextAttemptAt,
                            Expr::value(Utc::now() + chrono::TimeDelta::seconds(wait as i64)),
                        )
                        .col_expr(
                            archive_object::Column::LockedUntil,
                            Expr::value(Option::<chrono::DateTime<Utc>>::None),
                        )
                        .col_expr(
                            archive_object::Column::LastError,
                            Expr::value(Some(error.clone())),
                        )
                        .filter(archive_object::Column::Id.eq(id))
                        .exec(db)
                        .await?;
                    metrics::counter!("awoooi_archive_uploads_total", "outcome" => "failed")
                        .increment(1);
                    tracing::warn!(key = %row.key, attempts, retry_in_seconds = wait, %error, "archive upload failed; it will be retried");
                    done.failed += 1;
                }
            }
        }
        Ok(done)
    }

    /// Runs the worker: uploads, audit segments and knowledge snapshots on their schedules.
    /// Does nothing when the archive is off.
    pub fn spawn(&self) {
        if !self.enabled() {
            return;
        }
        let archive = self.clone();
        tokio::spawn(async move {
            let every = Duration::from_secs_f64(archive.0.config.upload_every_seconds);
            loop {
                match archive.upload_due().await {
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "archive pass failed"),
                }
                if let Ok(pending) = archive.pending().await {
                    metrics::gauge!("awoooi_archive_pending").set(pending as f64);
                }
                tokio::time::sleep(every).await;
            }
        });
        let archive = self.clone();
        tokio::spawn(async move {
            let every = Duration::from_secs(archive.0.config.audit_segment_every_seconds);
            loop {
                tokio::time::sleep(every).await;
                // Cut until caught up (a long gap makes several full segments).
                loop {
                    match archive.cut_audit_segment().await {
                        Ok(Some(_)) => continue,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "cutting an audit segment failed");
                            break;
                        }
                    }
                }
            }
        });
        let archive = self.clone();
        tokio::spawn(async move {
            let every = Duration::from_secs(archive.0.config.knowledge_snapshot_every_seconds);
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = archive.snapshot_knowledge().await {
                    tracing::warn!(error = %e, "knowledge snapshot failed");
                }
            }
        });
    }
}

/// What comparing the database with the archive found.
#[derive(Debug, Clone, Default)]
pub struct ArchiveVerification {
    pub segments: usize,
    pub events: usize,
    /// The last event the archive anchors.
    pub anchored_to: Option<i64>,
    pub findings: Vec<Finding>,
}

/// Reads every archived audit segment and compares it with the database's chain.
pub async fn verify_against(
    db: &DatabaseConnection,
    store: &S3Store,
) -> Result<ArchiveVerification, String> {
    let keys = store.list("audit/").await?;
    let mut segments = Vec::with_capacity(keys.len());
    let mut findings = Vec::new();
    for key in keys.iter().filter(|k| k.ends_with(".json")) {
        let Some(text) = store.get(key).await? else {
            continue;
        };
        match Segment::parse(&text) {
            Ok(segment) => segments.push(segment),
            Err(reason) => findings.push(Finding::BadSegment {
                first: 0,
                reason: format!("{key}: {reason}"),
            }),
        }
    }
    let events = segments.iter().map(|s| s.anchors.len()).sum();
    let anchored_to = segments.iter().map(|s| s.last).max();
    // The database's links of each segment's range, read before comparing (the comparison
    // itself is pure).
    let mut stored = std::collections::HashMap::new();
    for segment in &segments {
        let rows: Vec<(i64, String, String)> = audit_event::Entity::find()
            .select_only()
            .column(audit_event::Column::Id)
            .column(audit_event::Column::PrevHash)
            .column(audit_event::Column::Hash)
            .filter(audit_event::Column::Id.between(segment.first, segment.last))
            .order_by_asc(audit_event::Column::Id)
            .into_tuple()
            .all(db)
            .await
            .map_err(|e| format!("reading the audit trail: {e}"))?;
        stored.insert((segment.first, segment.last), rows);
    }
    let count = segments.len();
    findings.extend(anchors::compare(&mut segments, |first, last| {
        Ok::<_, String>(stored.remove(&(first, last)).unwrap_or_default())
    })?);
    Ok(ArchiveVerification {
        segments: count,
        events,
        anchored_to,
        findings,
    })
}
