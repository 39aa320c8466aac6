//! An incident's timeline and postmortem (fields of `Incident`), and the key times the
//! dashboard shows. Every text is the pseudonymised form.

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::incident;
use sea_orm::DatabaseConnection;

use super::incidents::CountFields;
use super::{ApiError, Page, principal};

/// What a timeline entry records.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "engine::postmortem::TimelineKind")]
pub enum TimelineKind {
    AlertFired,
    Opened,
    Correlated,
    Merged,
    AlertRepeated,
    AlertResolved,
    Analysed,
    Proposed,
    Signed,
    Approved,
    Rejected,
    Voided,
    Superseded,
    Expired,
    Executing,
    Executed,
    Failed,
    Notified,
    Acknowledged,
    Assigned,
    Commented,
    Silenced,
    Escalated,
    Resolved,
}

/// One thing that happened to an incident, with who did it and when.
pub struct TimelineEvent(engine::postmortem::TimelineEntry);

#[Object]
impl TimelineEvent {
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    async fn kind(&self) -> TimelineKind {
        self.0.kind.into()
    }
    /// A user, `system`, `brain`, `policy`, or the alert's source.
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    /// Pseudonymised.
    async fn text(&self) -> &str {
        &self.0.text
    }
}

/// The most timeline entries one page holds.
const MAX_PAGE: i32 = 200;

/// `Incident.timeline`: oldest first; the cursor is an entry's position.
pub async fn timeline_of(
    ctx: &Context<'_>,
    found: &incident::Model,
    first: i32,
    after: Option<String>,
) -> async_graphql::Result<Connection<String, TimelineEvent, CountFields>> {
    let page = Page::new(first, MAX_PAGE, after.as_deref())?;
    let db = ctx.data::<DatabaseConnection>()?;
    let entries = crate::services::timeline::timeline(db, found)
        .await
        .map_err(ApiError::internal)?;
    let total = entries.len() as u64;
    let skip = page.after.unwrap_or(0).max(0) as usize;
    let rows: Vec<(usize, engine::postmortem::TimelineEntry)> = entries
        .into_iter()
        .enumerate()
        .skip(skip)
        .take(page.limit() as usize)
        .collect();
    Ok(page.connection(
        rows,
        total,
        |(i, _)| *i as i64 + 1,
        |(_, e)| TimelineEvent(e),
    ))
}

/// `Incident.postmortem`: the one stored when it resolved, else generated now.
pub async fn postmortem_of(
    ctx: &Context<'_>,
    found: &incident::Model,
) -> async_graphql::Result<String> {
    let db = ctx.data::<DatabaseConnection>()?;
    let retrieval = ctx.data::<crate::services::knowledge::Retrieval>()?;
    Ok(
        crate::services::knowledge::postmortem_of(db, retrieval, found.id)
            .await
            .map_err(ApiError::internal)?
            .unwrap_or_default(),
    )
}

/// Medians of the key times, in seconds from the first alert, over incidents resolved in a
/// period (null: no incident of the period reached that moment).
#[derive(SimpleObject)]
pub struct KeyTimes {
    pub days: i32,
    /// Incidents resolved in the period (with a postmortem).
    pub incidents: i32,
    pub time_to_detect: Option<i64>,
    pub time_to_propose: Option<i64>,
    pub time_to_approve: Option<i64>,
    pub time_to_mitigate: Option<i64>,
    pub time_to_resolve: Option<i64>,
}

#[derive(Default)]
pub struct PostmortemQuery;

#[Object]
impl PostmortemQuery {
    /// Medians of time to detect, propose, approve, mitigate and resolve over the incidents
    /// resolved in the last `days` days (1-365).
    async fn key_times(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30)] days: i32,
    ) -> async_graphql::Result<KeyTimes> {
        principal(ctx)?;
        if !(1..=365).contains(&days) {
            return Err(ApiError::BadUserInput(format!("days must be 1-365, got {days}")).into());
        }
        let db = ctx.data::<DatabaseConnection>()?;
        let since = Utc::now() - chrono::Duration::days(i64::from(days));
        let m = crate::services::knowledge::key_time_medians(db, since)
            .await
            .map_err(ApiError::internal)?;
        Ok(KeyTimes {
            days,
            incidents: m.incidents as i32,
            time_to_detect: m.to_detect,
            time_to_propose: m.to_propose,
            time_to_approve: m.to_approve,
            time_to_mitigate: m.to_mitigate,
            time_to_resolve: m.to_resolve,
        })
    }
}
