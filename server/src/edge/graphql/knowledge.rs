//! The knowledge base over GraphQL: ranked search, and the entries an approval left.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::knowledge_entry;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

use super::{ApiError, principal};

/// What a fix did.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "entity::states::FixOutcome")]
pub enum FixOutcome {
    Worked,
    Failed,
}

/// What was learned from an incident: its resolution (path `A`) or one of its executions
/// (`B_MANUAL`, `B_AUTO_SUCCESS`, `B_AUTO_FAILURE`, `PLAYBOOK`). Texts are pseudonymised.
#[derive(SimpleObject)]
pub struct KnowledgeEntry {
    id: ID,
    incident_id: ID,
    path_type: String,
    /// The approval whose execution this entry records (for path A: the incident's last one).
    related_approval_id: Option<ID>,
    title: String,
    body: String,
    service: Option<String>,
    alert_names: Vec<String>,
    root_cause: Option<String>,
    /// `kind target` of the fix.
    action: Option<String>,
    outcome: Option<FixOutcome>,
    created_at: DateTime<Utc>,
}

impl From<knowledge_entry::Model> for KnowledgeEntry {
    fn from(row: knowledge_entry::Model) -> Self {
        KnowledgeEntry {
            id: ID(row.id.to_string()),
            incident_id: ID(row.incident_id.to_string()),
            path_type: row.path_type,
            related_approval_id: row.related_approval_id.map(|a| ID(a.to_string())),
            title: row.title,
            body: row.body,
            service: row.service,
            alert_names: row
                .alert_names
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            root_cause: row.root_cause,
            action: row.action,
            outcome: row.outcome.map(Into::into),
            created_at: row.created_at,
        }
    }
}

/// Entries that record `approval_id` (its execution's, and its incident's path-A entry).
pub async fn entries_of_approval(
    db: &DatabaseConnection,
    approval_id: i32,
) -> Result<Vec<KnowledgeEntry>, ApiError> {
    Ok(knowledge_entry::Entity::find()
        .filter(knowledge_entry::Column::RelatedApprovalId.eq(approval_id))
        .order_by_asc(knowledge_entry::Column::Id)
        .all(db)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .map(KnowledgeEntry::from)
        .collect())
}

#[derive(Default)]
pub struct KnowledgeQuery;

#[Object]
impl KnowledgeQuery {
    /// Entries matching `query`, best first (full-text, fused with meaning when a model is
    /// configured).
    async fn knowledge(
        &self,
        ctx: &Context<'_>,
        query: String,
        #[graphql(default = 5)] first: i32,
    ) -> async_graphql::Result<Vec<KnowledgeEntry>> {
        principal(ctx)?;
        if !(1..=100).contains(&first) {
            return Err(ApiError::BadUserInput("first: must be between 1 and 100".into()).into());
        }
        let db = ctx.data::<DatabaseConnection>()?;
        let retrieval = ctx.data::<crate::services::knowledge::Retrieval>()?;
        let rows = crate::services::knowledge::search(db, retrieval, &query, first as u64, None)
            .await
            .map_err(ApiError::internal)?;
        Ok(rows.into_iter().map(KnowledgeEntry::from).collect())
    }
}

/// A past incident like this one, and the fix tried on it.
#[derive(SimpleObject)]
pub struct SimilarIncident {
    incident_id: ID,
    /// Pseudonymised.
    title: String,
    root_cause: Option<String>,
    /// `kind target` of the fix.
    action: Option<String>,
    /// Whether that fix worked.
    worked: Option<bool>,
}

/// The past incidents most similar to `incident` (what the Brain learns from).
pub async fn similar_to(
    db: &DatabaseConnection,
    retrieval: &crate::services::knowledge::Retrieval,
    incident: &entity::incident::Model,
    first: i32,
) -> async_graphql::Result<Vec<SimilarIncident>> {
    if !(1..=20).contains(&first) {
        return Err(ApiError::BadUserInput("first: must be between 1 and 20".into()).into());
    }
    let text = crate::services::knowledge::similarity_text(db, incident)
        .await
        .map_err(ApiError::internal)?;
    let found =
        crate::services::knowledge::similar(db, retrieval, incident.id, &text, first as usize)
            .await
            .map_err(ApiError::internal)?;
    Ok(found
        .into_iter()
        .map(|p| SimilarIncident {
            incident_id: ID(p.incident_id.to_string()),
            title: p.title,
            root_cause: p.root_cause,
            action: p.action,
            worked: p.worked,
        })
        .collect())
}
