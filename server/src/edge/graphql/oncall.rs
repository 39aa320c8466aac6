//! On-call work on incidents: acknowledge, assign, comment. Everyone but VIEWER.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::incidents::Incident;
use super::{ApiError, require_role};
use crate::services::oncall::{Oncall, OncallError};

impl From<OncallError> for ApiError {
    fn from(error: OncallError) -> Self {
        match error {
            OncallError::NotFound(_) => ApiError::NotFound(error.to_string()),
            OncallError::Invalid(m) => ApiError::BadUserInput(m),
            OncallError::Conflict(m) => ApiError::Conflict(m),
            OncallError::Db(e) => ApiError::internal(e),
        }
    }
}

/// A comment on an incident: Markdown, with the incident's labels in place of raw values.
#[derive(SimpleObject)]
pub struct IncidentComment {
    pub id: ID,
    pub incident_id: ID,
    pub author: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

impl From<entity::incident_comment::Model> for IncidentComment {
    fn from(c: entity::incident_comment::Model) -> Self {
        IncidentComment {
            id: ID(c.id.to_string()),
            incident_id: ID(c.incident_id.to_string()),
            author: c.author,
            body: c.body,
            created_at: c.created_at,
        }
    }
}

fn incident_id(id: &ID) -> Result<i32, ApiError> {
    id.parse::<i32>()
        .map_err(|_| ApiError::NotFound(format!("incident {} not found", id.as_str())))
}

#[derive(Default)]
pub struct OncallMutation;

#[Object]
impl OncallMutation {
    /// Acknowledges an open incident: the caller and the time are kept (the first
    /// acknowledgement stands), it stops the incident's escalation, and it is audited.
    async fn acknowledge_incident(
        &self,
        ctx: &Context<'_>,
        incident_id: ID,
    ) -> async_graphql::Result<Incident> {
        use engine::Role::*;
        let who = require_role(ctx, &[Admin, Devops, Sre, Cto, Ciso])?;
        let id = self::incident_id(&incident_id)?;
        let found = ctx
            .data::<Oncall>()?
            .acknowledge(id, &who.name)
            .await
            .map_err(ApiError::from)?;
        Ok(Incident::from(found))
    }

    /// Assigns an incident to a user (by name), or unassigns it with `assignee: null`.
    async fn assign_incident(
        &self,
        ctx: &Context<'_>,
        incident_id: ID,
        assignee: Option<String>,
    ) -> async_graphql::Result<Incident> {
        use engine::Role::*;
        let who = require_role(ctx, &[Admin, Devops, Sre, Cto, Ciso])?;
        let id = self::incident_id(&incident_id)?;
        let found = ctx
            .data::<Oncall>()?
            .assign(id, assignee.as_deref(), &who.name)
            .await
            .map_err(ApiError::from)?;
        Ok(Incident::from(found))
    }

    /// Comments on an incident (Markdown, at most 10,000 bytes). Raw values in it are stored
    /// as the incident's labels: an address already seen as `[IP_1]` stays `[IP_1]`.
    async fn comment_on_incident(
        &self,
        ctx: &Context<'_>,
        incident_id: ID,
        body: String,
    ) -> async_graphql::Result<IncidentComment> {
        use engine::Role::*;
        let who = require_role(ctx, &[Admin, Devops, Sre, Cto, Ciso])?;
        let id = self::incident_id(&incident_id)?;
        let comment = ctx
            .data::<Oncall>()?
            .comment(id, &body, &who.name)
            .await
            .map_err(ApiError::from)?;
        Ok(IncidentComment::from(comment))
    }
}
