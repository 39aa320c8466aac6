//! Acknowledge, assign, comment.

use chrono::Utc;
use entity::{incident, incident_comment, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::json;

use super::{MAX_COMMENT, Oncall, OncallError};
use crate::base::bus::Event;
use crate::base::incident::IncidentStatus;

impl Oncall {
    /// `by` acknowledges incident `id`: the first acknowledgement is kept (who and when), a
    /// repeat changes nothing. A resolved or merged incident has nothing to acknowledge.
    pub async fn acknowledge(&self, id: i32, by: &str) -> Result<incident::Model, OncallError> {
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let found = open_incident(&txn, id).await?;
        if found.acknowledged_by.is_some() {
            txn.rollback().await?;
            return Ok(found);
        }
        let now = Utc::now();
        incident::Entity::update_many()
            .col_expr(incident::Column::AcknowledgedBy, Expr::value(Some(by)))
            .col_expr(incident::Column::AcknowledgedAt, Expr::value(Some(now)))
            .col_expr(incident::Column::UpdatedAt, Expr::value(now))
            .filter(incident::Column::Id.eq(id))
            .filter(incident::Column::AcknowledgedBy.is_null())
            .exec(&txn)
            .await?;
        audit(&txn, by, "incident.acknowledged", id, json!({})).await?;
        self.commit(txn, id).await
    }

    /// `by` assigns incident `id` to user `assignee` (an existing user), or unassigns it.
    pub async fn assign(
        &self,
        id: i32,
        assignee: Option<&str>,
        by: &str,
    ) -> Result<incident::Model, OncallError> {
        let assignee = assignee.map(str::trim).filter(|a| !a.is_empty());
        if let Some(name) = assignee {
            let known = user::Entity::find()
                .filter(user::Column::Username.eq(name))
                .one(&self.0.db)
                .await?;
            if known.is_none() {
                return Err(OncallError::Invalid(format!(
                    "assignee `{name}` is not a user"
                )));
            }
        }
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let found = incident::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(OncallError::NotFound(id))?;
        if found.assignee.as_deref() == assignee {
            txn.rollback().await?;
            return Ok(found);
        }
        incident::Entity::update_many()
            .col_expr(incident::Column::Assignee, Expr::value(assignee))
            .col_expr(incident::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(incident::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        let details = json!({"assignee": assignee, "previous": found.assignee});
        audit(&txn, by, "incident.assigned", id, details).await?;
        self.commit(txn, id).await
    }

    /// `by` comments on incident `id` (Markdown). Stored with the incident's labels in place
    /// of raw values, like everything else about it.
    pub async fn comment(
        &self,
        id: i32,
        body: &str,
        by: &str,
    ) -> Result<incident_comment::Model, OncallError> {
        let body = body.trim();
        if body.is_empty() {
            return Err(OncallError::Invalid("comment body is empty".into()));
        }
        if body.len() > MAX_COMMENT {
            return Err(OncallError::Invalid(format!(
                "comment body is {} bytes; at most {MAX_COMMENT}",
                body.len()
            )));
        }
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        incident::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(OncallError::NotFound(id))?;
        let shield = &self.0.shield;
        let labelled = crate::base::vault::with_boundary(&txn, &self.0.key, id, |b| {
            b.pseudonymise(shield, body)
        })
        .await?;
        let now = Utc::now();
        let comment = incident_comment::ActiveModel {
            incident_id: Set(id),
            author: Set(by.to_owned()),
            body: Set(labelled),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        incident::Entity::update_many()
            .col_expr(incident::Column::UpdatedAt, Expr::value(now))
            .filter(incident::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        let details = json!({"comment": comment.id});
        audit(&txn, by, "incident.commented", id, details).await?;
        txn.commit().await?;
        self.0.bus.publish(Event::Incident { id });
        Ok(comment)
    }

    /// Incident `id`'s comments, oldest first.
    pub async fn comments(&self, id: i32) -> Result<Vec<incident_comment::Model>, OncallError> {
        Ok(incident_comment::Entity::find()
            .filter(incident_comment::Column::IncidentId.eq(id))
            .order_by_asc(incident_comment::Column::Id)
            .all(&self.0.db)
            .await?)
    }

    async fn commit(
        &self,
        txn: DatabaseTransaction,
        id: i32,
    ) -> Result<incident::Model, OncallError> {
        let found = incident::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(OncallError::NotFound(id))?;
        txn.commit().await?;
        self.0.bus.publish(Event::Incident { id });
        Ok(found)
    }
}

/// Incident `id`, if it is still open to work on.
async fn open_incident(txn: &DatabaseTransaction, id: i32) -> Result<incident::Model, OncallError> {
    let found = incident::Entity::find_by_id(id)
        .one(txn)
        .await?
        .ok_or(OncallError::NotFound(id))?;
    match found.status {
        IncidentStatus::Resolved => Err(OncallError::Conflict(format!(
            "incident {id} is RESOLVED; there is nothing to acknowledge"
        ))),
        IncidentStatus::Merged => Err(OncallError::Conflict(format!(
            "incident {id} was merged into incident {}; acknowledge that one",
            found.merged_into.unwrap_or_default()
        ))),
        _ => Ok(found),
    }
}

/// The audit event of an on-call step, in its transaction (appended last).
async fn audit(
    txn: &DatabaseTransaction,
    by: &str,
    action: &str,
    id: i32,
    details: serde_json::Value,
) -> Result<(), OncallError> {
    crate::base::audit::append_in(txn, by, action, &format!("incident:{id}"), details).await?;
    Ok(())
}
