//! Retrieval: full-text search for the Knowledge page, and `similar` for the Brain.

use super::entries::facts;
use super::*;

/// The words of a query, as the full-text engines may take them (no operators).
pub(super) fn words(query: &str) -> Vec<String> {
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

/// Entries matching `query`, best first, skipping `except`'s incident. Full-text: the
/// database's own ranking (FTS5's bm25 on SQLite, `ts_rank` on PostgreSQL). Hybrid: that
/// ranking and the nearest entries by meaning, each up to 20 deep, fused by reciprocal rank.
pub async fn search(
    db: &impl ConnectionTrait,
    retrieval: &Retrieval,
    query: &str,
    first: u64,
    except: Option<i32>,
) -> Result<Vec<knowledge_entry::Model>, DbErr> {
    let first = first.clamp(1, 100);
    let ids = match retrieval {
        Retrieval::FullText => fulltext_ids(db, query, first, except).await?,
        Retrieval::Hybrid(semantic) => {
            if query.trim().is_empty() {
                return Ok(Vec::new());
            }
            let depth = Ord::max(first, 20);
            let words = fulltext_ids(db, query, depth, except).await?;
            let meaning: Vec<i32> = semantic
                .nearest(db, query, depth as usize, except)
                .await?
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            let mut fused = fuse(&[&words, &meaning]);
            fused.truncate(first as usize);
            fused
        }
    };
    let mut rows = knowledge_entry::Entity::find()
        .filter(knowledge_entry::Column::Id.is_in(ids.clone()))
        .all(db)
        .await?;
    rows.sort_by_key(|r| ids.iter().position(|id| *id == r.id));
    Ok(rows)
}

/// The ids of the entries the database's full-text search ranks first for `query`.
pub async fn fulltext_ids(
    db: &impl ConnectionTrait,
    query: &str,
    first: u64,
    except: Option<i32>,
) -> Result<Vec<i32>, DbErr> {
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
    Ok(Hit::find_by_statement(statement)
        .all(db)
        .await?
        .into_iter()
        .map(|h| h.id)
        .collect())
}

/// The `k` past incidents most similar to `text` (service, root cause, alert names, title),
/// each with the fix tried on it and whether it worked — what the Brain learns from.
pub async fn similar(
    db: &impl ConnectionTrait,
    retrieval: &Retrieval,
    incident_id: i32,
    text: &str,
    k: usize,
) -> Result<Vec<engine::brain::PastIncident>, DbErr> {
    let hits = search(db, retrieval, text, 20, Some(incident_id)).await?;
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
            worked: verdict.and_then(|e| e.outcome.map(|o| o == FixOutcome::Worked)),
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
