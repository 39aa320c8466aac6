//! The audit trail over GraphQL: read it, and verify its hash chain.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::audit_event;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::incidents::CountFields;
use super::{ApiError, principal};

/// One recorded event; `hash` covers `prevHash` and the event.
#[derive(SimpleObject)]
pub struct AuditEvent {
    id: ID,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    subject: String,
    details: Json<serde_json::Value>,
    prev_hash: String,
    hash: String,
}

/// The result of checking the whole chain.
#[derive(SimpleObject)]
pub struct AuditVerification {
    valid: bool,
    checked: i64,
    first_broken_id: Option<ID>,
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The trail, newest first.
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, AuditEvent, CountFields>> {
        principal(ctx)?;
        let page = super::Page::new(first, 500, after.as_deref())?;
        let db = ctx.data::<DatabaseConnection>()?;
        let total_count = audit_event::Entity::find()
            .count(db)
            .await
            .map_err(ApiError::internal)?;
        let mut query = audit_event::Entity::find();
        if let Some(after_id) = page.after {
            query = query.filter(audit_event::Column::Id.lt(after_id));
        }
        let rows = query
            .order_by_desc(audit_event::Column::Id)
            .limit(page.limit())
            .all(db)
            .await
            .map_err(ApiError::internal)?;
        Ok(page.connection(
            rows,
            total_count,
            |row| row.id,
            |row| {
                let event = crate::base::audit::from_row(row);
                AuditEvent {
                    id: event.id.to_string().into(),
                    at: event.at,
                    actor: event.actor,
                    action: event.action,
                    subject: event.subject,
                    details: Json(event.details),
                    prev_hash: event.prev_hash,
                    hash: event.hash,
                }
            },
        ))
    }

    /// Recomputes the whole chain; names the first event that was edited, removed or reordered.
    async fn audit_verify(&self, ctx: &Context<'_>) -> async_graphql::Result<AuditVerification> {
        principal(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let result = crate::base::audit::verify_all(db)
            .await
            .map_err(ApiError::internal)?;
        Ok(AuditVerification {
            valid: result.valid,
            checked: result.checked as i64,
            first_broken_id: result.first_broken_id.map(|id| id.to_string().into()),
        })
    }
}
