//! Incidents and their alerts: list (Relay connection), one, ingest, live updates.
//! Every text here is the pseudonymised form; raw values never reach the API.

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use engine::alert::AlertSource;
use engine::input::GenericAlert;
use entity::{alert, incident};
use futures_util::{Stream, StreamExt};
use sea_orm::sea_query::{
    Asterisk, Expr, ExprTrait, Query, QueryStatementBuilder, SelectStatement, SimpleExpr,
};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QueryResult, QuerySelect,
};

use super::{ApiError, principal, require_role};
use crate::services::ingest::Ingest;

/// Where an incident is in its life.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "engine::incident::IncidentStatus")]
pub enum IncidentStatus {
    Open,
    Analyzing,
    AwaitingApproval,
    Mitigating,
    Resolved,
    /// Absorbed by the incident in `mergedInto` (they share a root cause).
    Merged,
}

/// How bad it is.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "engine::alert::Severity")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "engine::alert::AlertStatus")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// Alerts correlated by service and along the topology: one incident per root cause. The
/// second field is its alert count when the list read it with the page.
pub struct Incident(pub incident::Model, pub Option<i64>);

impl From<incident::Model> for Incident {
    fn from(model: incident::Model) -> Incident {
        Incident(model, None)
    }
}

/// The list's columns beside the incident's own.
const LISTED_TOTAL: &str = "listed_total";
const LISTED_ALERTS: &str = "listed_alerts";

/// One row of the incident list: the incident, the filter's total and its alert count
/// (repeats included; `None` when it has no alerts).
struct Listed {
    model: incident::Model,
    total: u64,
    alerts: Option<i64>,
}

impl FromQueryResult for Listed {
    fn from_query_result(row: &QueryResult, pre: &str) -> Result<Listed, DbErr> {
        let total: i64 = row.try_get(pre, LISTED_TOTAL)?;
        Ok(Listed {
            model: incident::Model::from_query_result(row, pre)?,
            total: u64::try_from(total).unwrap_or_default(),
            alerts: row.try_get(pre, LISTED_ALERTS)?,
        })
    }
}

impl Incident {
    /// This incident and those merged into it.
    async fn family(&self, db: &DatabaseConnection) -> Result<Vec<i32>, ApiError> {
        crate::services::timeline::family(db, self.0.id)
            .await
            .map_err(ApiError::internal)
    }
}

#[Object]
impl Incident {
    async fn id(&self) -> ID {
        self.0.id.into()
    }
    /// Pseudonymised.
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn severity(&self) -> Severity {
        self.0.severity.into()
    }
    async fn status(&self) -> IncidentStatus {
        self.0.status.into()
    }
    /// The service the alerts are about — along the topology, the root cause (the lowest
    /// alerting dependency), recomputed as alerts join — pseudonymised, if any.
    async fn service(&self) -> Option<&str> {
        self.0.service.as_deref()
    }
    /// Status MERGED: the incident that absorbed this one.
    async fn merged_into(&self) -> Option<ID> {
        self.0.merged_into.map(Into::into)
    }
    /// Incidents merged into this one (their alerts moved here; their approvals are listed
    /// here too).
    async fn merged_from(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ID>> {
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(self
            .family(db)
            .await?
            .into_iter()
            .skip(1)
            .map(Into::into)
            .collect())
    }
    /// Alerts it absorbed, repeats included (the sum of its alerts' counts).
    async fn alert_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        use sea_orm::QuerySelect;
        if let Some(count) = self.1 {
            return Ok(count);
        }
        let db = ctx.data::<DatabaseConnection>()?;
        let total: Option<Option<i64>> = alert::Entity::find()
            .select_only()
            .column_as(alert::Column::Count.sum(), "total")
            .filter(alert::Column::IncidentId.eq(self.0.id))
            .into_tuple()
            .one(db)
            .await
            .map_err(ApiError::internal)?;
        Ok(total.flatten().unwrap_or(0))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Who acknowledged it first.
    async fn acknowledged_by(&self) -> Option<&str> {
        self.0.acknowledged_by.as_deref()
    }

    async fn acknowledged_at(&self) -> Option<DateTime<Utc>> {
        self.0.acknowledged_at
    }

    /// The user it is assigned to.
    async fn assignee(&self) -> Option<&str> {
        self.0.assignee.as_deref()
    }

    /// Its escalation, if a policy's route took it.
    async fn escalation(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<super::oncall::IncidentEscalation>> {
        super::oncall::escalation_of(ctx, self.0.id).await
    }

    /// Its comments, oldest first.
    async fn comments(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::oncall::IncidentComment>> {
        let found = ctx
            .data::<crate::services::oncall::Oncall>()?
            .comments(self.0.id)
            .await
            .map_err(ApiError::from)?;
        Ok(found.into_iter().map(Into::into).collect())
    }

    async fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.0.resolved_at
    }
    /// What the Brain concluded, once it has.
    async fn analysis(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<super::analysis::Analysis>> {
        super::analysis::analysis_of(ctx, self.0.id).await
    }
    /// The investigation so far, in order.
    async fn thinking(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::analysis::ThinkingEvent>> {
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(super::analysis::thinking_of(db, self.0.id, 0)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }
    /// Past incidents most like this one (service, alerts, root cause, title), with the fix
    /// tried on each: what the Brain learns from.
    async fn similar_incidents(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 3)] first: i32,
    ) -> async_graphql::Result<Vec<super::knowledge::SimilarIncident>> {
        let db = ctx.data::<DatabaseConnection>()?;
        let retrieval = ctx.data::<crate::services::knowledge::Retrieval>()?;
        super::knowledge::similar_to(db, retrieval, &self.0, first).await
    }
    /// Actions proposed for it (and for incidents merged into it), newest first.
    async fn approvals(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::approvals::Approval>> {
        let db = ctx.data::<DatabaseConnection>()?;
        super::approvals::approvals_of(ctx, &self.family(db).await?).await
    }
    /// Everything that happened to it (and to incidents merged into it), oldest first: alerts,
    /// correlation, analysis runs, approvals and each signature, executions, notifications,
    /// resolution — each with its actor and time.
    async fn timeline(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, super::postmortems::TimelineEvent, CountFields>>
    {
        super::postmortems::timeline_of(ctx, &self.0, first, after).await
    }
    /// The postmortem in Markdown: the one written when it resolved, else one generated from
    /// its record now.
    async fn postmortem(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        super::postmortems::postmortem_of(ctx, &self.0).await
    }
    /// Its alerts, oldest first.
    async fn alerts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Alert>> {
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(alert::Entity::find()
            .filter(alert::Column::IncidentId.eq(self.0.id))
            .order_by_asc(alert::Column::Id)
            .all(db)
            .await
            .map_err(ApiError::internal)?
            .into_iter()
            .map(Alert)
            .collect())
    }
}

/// One alert; repeats of it raise `count`.
pub struct Alert(pub alert::Model);

fn json_map(text: &str) -> Json<serde_json::Value> {
    Json(serde_json::from_str(text).unwrap_or_else(|_| serde_json::json!({})))
}

#[Object]
impl Alert {
    async fn id(&self) -> ID {
        self.0.id.into()
    }
    async fn fingerprint(&self) -> &str {
        &self.0.fingerprint
    }
    async fn status(&self) -> AlertStatus {
        if self.0.status == engine::alert::AlertStatus::Resolved {
            AlertStatus::Resolved
        } else {
            AlertStatus::Firing
        }
    }
    /// Pseudonymised.
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn service(&self) -> Option<&str> {
        self.0.service.as_deref()
    }
    async fn severity(&self) -> Severity {
        self.0.severity.into()
    }
    /// `ALERTMANAGER`, `GRAFANA`, `WEBHOOK`, `GRAPHQL` or `STREAM`.
    async fn source(&self) -> &str {
        &self.0.source
    }
    /// Pseudonymised labels.
    async fn labels(&self) -> Json<serde_json::Value> {
        json_map(&self.0.labels)
    }
    /// Pseudonymised annotations.
    async fn annotations(&self) -> Json<serde_json::Value> {
        json_map(&self.0.annotations)
    }
    async fn starts_at(&self) -> Option<DateTime<Utc>> {
        self.0.starts_at
    }
    async fn ends_at(&self) -> Option<DateTime<Utc>> {
        self.0.ends_at
    }
    async fn generator_url(&self) -> Option<&str> {
        self.0.generator_url.as_deref()
    }
    /// How many times it was received while firing.
    async fn count(&self) -> i32 {
        self.0.count
    }
    async fn first_seen(&self) -> DateTime<Utc> {
        self.0.first_seen
    }
    async fn last_seen(&self) -> DateTime<Utc> {
        self.0.last_seen
    }
}

#[derive(SimpleObject)]
pub struct CountFields {
    /// All matches, not just this page.
    total_count: u64,
}

impl CountFields {
    pub fn new(total_count: u64) -> Self {
        CountFields { total_count }
    }
}

#[derive(Default)]
pub struct IncidentQuery;

#[Object]
impl IncidentQuery {
    /// Incidents, newest first; `assignee` keeps those assigned to that user, `acknowledged`
    /// those acknowledged (true) or not (false).
    async fn incidents(
        &self,
        ctx: &Context<'_>,
        status: Option<IncidentStatus>,
        assignee: Option<String>,
        acknowledged: Option<bool>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Incident, CountFields>> {
        principal(ctx)?;
        let page = super::Page::new(first, 100, after.as_deref())?;
        let db = ctx.data::<DatabaseConnection>()?;
        let mut filter = Condition::all();
        if let Some(status) = status {
            filter = filter
                .add(incident::Column::Status.eq(engine::incident::IncidentStatus::from(status)));
        }
        if let Some(assignee) = assignee {
            filter = filter.add(incident::Column::Assignee.eq(assignee));
        }
        filter = match acknowledged {
            Some(true) => filter.add(incident::Column::AcknowledgedAt.is_not_null()),
            Some(false) => filter.add(incident::Column::AcknowledgedAt.is_null()),
            None => filter,
        };
        // One statement: the page, the filter's total (an uncorrelated subquery, computed
        // once) and each row's alert count (an indexed subquery per row). Over TCP to
        // PostgreSQL each statement is a round trip: one instead of three made the list a
        // third faster there (BENCHMARKS.md, "Scale").
        let total = Query::select()
            .expr(Expr::col(Asterisk).count())
            .from(incident::Entity)
            .cond_where(filter.clone())
            .to_owned();
        let alerts = Query::select()
            .expr(Expr::col((alert::Entity, alert::Column::Count)).sum())
            .from(alert::Entity)
            .and_where(
                Expr::col((alert::Entity, alert::Column::IncidentId))
                    .equals((incident::Entity, incident::Column::Id)),
            )
            .to_owned();
        let subquery = |select: SelectStatement| {
            SimpleExpr::SubQuery(None, Box::new(select.into_sub_query_statement()))
        };
        let mut query = incident::Entity::find()
            .filter(filter.clone())
            .column_as(subquery(total), LISTED_TOTAL)
            .column_as(subquery(alerts), LISTED_ALERTS);
        if let Some(after_id) = page.after {
            query = query.filter(incident::Column::Id.lt(after_id));
        }
        let rows: Vec<Listed> = query
            .order_by_desc(incident::Column::Id)
            .limit(page.limit())
            .into_model()
            .all(db)
            .await
            .map_err(ApiError::internal)?;
        let total_count = match rows.first() {
            Some(row) => row.total,
            // No row to carry the total: past the list's end, or nothing matches.
            None if page.after.is_some() => incident::Entity::find()
                .filter(filter)
                .count(db)
                .await
                .map_err(ApiError::internal)?,
            None => 0,
        };
        Ok(page.connection(
            rows,
            total_count,
            |row| i64::from(row.model.id),
            |row| Incident(row.model, Some(row.alerts.unwrap_or(0))),
        ))
    }

    /// One incident, or null.
    async fn incident(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Incident>> {
        principal(ctx)?;
        let Ok(id) = id.parse::<i32>() else {
            return Ok(None);
        };
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(incident::Entity::find_by_id(id)
            .one(db)
            .await
            .map_err(ApiError::internal)?
            .map(Incident::from))
    }
}

/// An alert sent through GraphQL; same fields as the generic webhook.
#[derive(InputObject)]
pub struct AlertInput {
    name: String,
    status: Option<AlertStatus>,
    /// `critical`, `warning`, `info` (and common synonyms).
    severity: Option<String>,
    service: Option<String>,
    description: Option<String>,
    labels: Option<Json<std::collections::BTreeMap<String, String>>>,
    annotations: Option<Json<std::collections::BTreeMap<String, String>>>,
    fingerprint: Option<String>,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    generator_url: Option<String>,
}

#[derive(Default)]
pub struct IncidentMutation;

#[Object]
impl IncidentMutation {
    /// `--demo` only: fires the seed's 3 AM scenario (postgres-db runs out of connections, the
    /// frontend's error rate climbs) through the ordinary ingest path; returns the incidents.
    /// `symptomsFirst`: the frontend's alert first, as production usually sends them.
    async fn fire_demo_scenario(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] symptoms_first: bool,
    ) -> async_graphql::Result<Vec<Incident>> {
        use engine::Role::*;
        require_role(ctx, &[Admin, Devops, Sre, Cto, Ciso])?;
        if !ctx.data::<super::ServerMeta>()?.demo {
            return Err(ApiError::Forbidden(
                "the 3 AM scenario is only available on a server started with --demo".into(),
            )
            .into());
        }
        let mut events = Vec::new();
        let mut scenario = crate::edge::demo::SCENARIO.to_vec();
        if symptoms_first {
            scenario.reverse();
        }
        for (name, service, description) in scenario {
            let alert = GenericAlert {
                name: name.to_owned(),
                severity: Some("critical".into()),
                service: Some(service.to_owned()),
                description: Some(description.to_owned()),
                ..Default::default()
            };
            events.push(
                alert
                    .into_event(AlertSource::Graphql, "scenario")
                    .map_err(|e| ApiError::BadUserInput(e.to_string()))?,
            );
        }
        let receipt = ctx
            .data::<Ingest>()?
            .submit(events)
            .await
            .map_err(ApiError::internal)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let mut incidents = Vec::new();
        for id in receipt.incidents {
            if let Some(found) = incident::Entity::find_by_id(id)
                .one(db)
                .await
                .map_err(ApiError::internal)?
            {
                incidents.push(Incident::from(found));
            }
        }
        Ok(incidents)
    }

    /// Ingests one alert and returns the incident it joined (everyone but VIEWER).
    async fn ingest_alert(
        &self,
        ctx: &Context<'_>,
        input: AlertInput,
    ) -> async_graphql::Result<Incident> {
        use engine::Role::*;
        require_role(ctx, &[Admin, Devops, Sre, Cto, Ciso])?;
        let alert = GenericAlert {
            name: input.name,
            status: input.status.map(|s| {
                match s {
                    AlertStatus::Firing => "firing",
                    AlertStatus::Resolved => "resolved",
                }
                .to_owned()
            }),
            severity: input.severity,
            service: input.service,
            description: input.description,
            labels: input.labels.map(|j| j.0).unwrap_or_default(),
            annotations: input.annotations.map(|j| j.0).unwrap_or_default(),
            fingerprint: input.fingerprint,
            starts_at: input.starts_at,
            ends_at: input.ends_at,
            generator_url: input.generator_url,
        };
        let event = alert
            .into_event(AlertSource::Graphql, "input")
            .map_err(|e| ApiError::BadUserInput(e.to_string()))?;
        let ingest = ctx.data::<Ingest>()?;
        let receipt = ingest
            .submit(vec![event])
            .await
            .map_err(ApiError::internal)?;
        if receipt.silenced > 0 && receipt.incidents.is_empty() {
            return Err(ApiError::Conflict(
                "a silence holds alerts like this one: it is stored and counted, and opens no incident"
                    .into(),
            )
            .into());
        }
        let Some(id) = receipt.incidents.first() else {
            return Err(ApiError::NotFound(
                "resolved alert matches no firing alert; nothing changed".into(),
            )
            .into());
        };
        let db = ctx.data::<DatabaseConnection>()?;
        incident::Entity::find_by_id(*id)
            .one(db)
            .await
            .map_err(ApiError::internal)?
            .map(Incident::from)
            .ok_or_else(|| ApiError::internal("incident vanished after commit").into())
    }
}

/// Changed incidents, each read once per process for every `incidentUpdates` subscriber.
pub type IncidentFeed = super::feed::Feed<incident::Model>;

/// The incident feed over what ingest (and every service on the bus) changes.
pub fn incident_feed(db: DatabaseConnection, ingest: &Ingest) -> IncidentFeed {
    IncidentFeed::start(ingest.subscribe(), "incident", move |id| {
        let db = db.clone();
        async move { incident::Entity::find_by_id(id).one(&db).await }
    })
}

#[derive(Default)]
pub struct IncidentSubscription;

#[Subscription]
impl IncidentSubscription {
    /// Every incident as it is opened or changes (after the change is committed).
    async fn incident_updates(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = Incident> + use<>> {
        principal(ctx)?;
        let feed = ctx.data::<IncidentFeed>()?;
        Ok(feed.subscribe().map(|row| Incident::from((*row).clone())))
    }
}
