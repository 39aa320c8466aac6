//! Postmortems: written once when an incident resolves — stored with its key times, observed
//! on `/metrics`, queued for the archive in the same transaction, and made the body of the
//! incident's path-A entry — and generated on demand for any incident.

use chrono::Duration;
use engine::postmortem::{self, KeyTimes, KnownIncident, PostmortemFacts};
use entity::{incident, postmortem as stored};
use sea_orm::QuerySelect;

use super::*;

/// The key-time histograms, in seconds from the first alert (their buckets are set in
/// `base::telemetry`).
const KEY_TIMES: [&str; 4] = [
    "awoooi_incident_time_to_propose_seconds",
    "awoooi_incident_time_to_approve_seconds",
    "awoooi_incident_time_to_mitigate_seconds",
    "awoooi_incident_time_to_resolve_seconds",
];

fn seconds(d: Option<Duration>) -> Option<i64> {
    d.map(|d| d.num_seconds())
}

/// Past incidents the knowledge base held before `found` opened, most similar first.
async fn known_before(
    db: &DatabaseConnection,
    retrieval: &Retrieval,
    found: &incident::Model,
) -> Result<Vec<KnownIncident>, DbErr> {
    let text = super::similarity_text(db, found).await?;
    let mut out = Vec::new();
    for past in super::similar(db, retrieval, found.id, &text, 5).await? {
        let earliest: Option<Option<chrono::DateTime<Utc>>> = knowledge_entry::Entity::find()
            .select_only()
            .column_as(knowledge_entry::Column::CreatedAt.min(), "earliest")
            .filter(knowledge_entry::Column::IncidentId.eq(past.incident_id))
            .into_tuple()
            .one(db)
            .await?;
        if earliest.flatten().is_some_and(|at| at <= found.created_at) {
            out.push(KnownIncident {
                incident_id: past.incident_id,
                title: past.title,
                action: past.action,
                outcome: past
                    .worked
                    .map(|w| if w { "worked" } else { "failed" }.to_owned()),
            });
        }
        if out.len() == 3 {
            break;
        }
    }
    Ok(out)
}

/// The facts and Markdown of `found`'s postmortem as of now.
pub async fn generate(
    db: &DatabaseConnection,
    retrieval: &Retrieval,
    found: &incident::Model,
) -> Result<(PostmortemFacts, String), DbErr> {
    let mut facts = crate::services::timeline::postmortem_facts(db, found).await?;
    facts.known = known_before(db, retrieval, found).await?;
    let markdown = postmortem::render(&facts);
    Ok((facts, markdown))
}

/// The postmortem of incident `id`: the one stored when it resolved, else one generated now.
/// `None` if there is no such incident.
pub async fn postmortem_of(
    db: &DatabaseConnection,
    retrieval: &Retrieval,
    id: i32,
) -> Result<Option<String>, DbErr> {
    if let Some(row) = stored::Entity::find_by_id(id).one(db).await? {
        return Ok(Some(row.markdown));
    }
    let Some(found) = incident::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    Ok(Some(generate(db, retrieval, &found).await?.1))
}

/// Medians of the key times (seconds) over postmortems of incidents resolved since `since`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyTimeMedians {
    pub incidents: usize,
    pub to_detect: Option<i64>,
    pub to_propose: Option<i64>,
    pub to_approve: Option<i64>,
    pub to_mitigate: Option<i64>,
    pub to_resolve: Option<i64>,
}

fn median(mut values: Vec<i64>) -> Option<i64> {
    values.sort_unstable();
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2),
    }
}

pub async fn key_time_medians(
    db: &DatabaseConnection,
    since: chrono::DateTime<Utc>,
) -> Result<KeyTimeMedians, DbErr> {
    let rows = stored::Entity::find()
        .filter(stored::Column::ResolvedAt.gte(since))
        .all(db)
        .await?;
    let pick = |f: fn(&stored::Model) -> Option<i64>| median(rows.iter().filter_map(f).collect());
    Ok(KeyTimeMedians {
        incidents: rows.len(),
        to_detect: pick(|r| r.to_detect),
        to_propose: pick(|r| r.to_propose),
        to_approve: pick(|r| r.to_approve),
        to_mitigate: pick(|r| r.to_mitigate),
        to_resolve: pick(|r| r.to_resolve),
    })
}

/// The largest postmortem a knowledge entry's body takes (the entry's limit is 64 KiB).
const BODY_LIMIT: usize = 60 * 1024;

/// `markdown`, cut at a character boundary to fit a knowledge entry.
pub(super) fn entry_body(markdown: &str) -> String {
    if markdown.len() <= BODY_LIMIT {
        return markdown.to_owned();
    }
    let mut end = BODY_LIMIT;
    while !markdown.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n\n… cut to fit the knowledge base; the full postmortem is on the incident.",
        &markdown[..end]
    )
}

impl KmWriter {
    /// Stores the postmortem of resolved incident `found` unless it has one: with its key
    /// times, observed on `/metrics` once (by the writer whose insert wins), and queued for
    /// the archive in the same transaction. Returns the stored Markdown.
    pub async fn store_postmortem(&self, found: &incident::Model) -> Result<String, DbErr> {
        let db = &self.0.db;
        if let Some(row) = stored::Entity::find_by_id(found.id).one(db).await? {
            return Ok(row.markdown);
        }
        let (facts, markdown) = generate(db, &self.0.retrieval, found).await?;
        let times = KeyTimes::of(&facts.timeline);
        let intervals = times.intervals();
        let now = Utc::now();
        let row = stored::ActiveModel {
            incident_id: Set(found.id),
            markdown: Set(markdown.clone()),
            resolved_at: Set(found.resolved_at.or(times.resolved).unwrap_or(now)),
            to_detect: Set(seconds(intervals.to_detect)),
            to_propose: Set(seconds(intervals.to_propose)),
            to_approve: Set(seconds(intervals.to_approve)),
            to_mitigate: Set(seconds(intervals.to_mitigate)),
            to_resolve: Set(seconds(intervals.to_resolve)),
            created_at: Set(now),
        };
        let txn = db.begin().await?;
        let inserted = stored::Entity::insert(row)
            .on_conflict(
                OnConflict::column(stored::Column::IncidentId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        if inserted == 0 {
            txn.rollback().await?;
            let row = stored::Entity::find_by_id(found.id).one(db).await?;
            return Ok(row.map(|r| r.markdown).unwrap_or(markdown));
        }
        if self.0.archive {
            crate::services::archive::enqueue_in(
                &txn,
                entity::archive_object::ArchiveKind::Postmortem,
                &crate::services::archive::postmortem_key(found.id, &markdown),
                markdown.clone(),
                "text/markdown; charset=utf-8",
                None,
            )
            .await?;
        }
        txn.commit().await?;
        for (name, took) in KEY_TIMES.iter().zip([
            intervals.to_propose,
            intervals.to_approve,
            intervals.to_mitigate,
            intervals.to_resolve,
        ]) {
            if let Some(took) = took {
                metrics::histogram!(*name).record(took.num_milliseconds() as f64 / 1_000.0);
            }
        }
        Ok(markdown)
    }
}
