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
            OncallError::Missing(m) => ApiError::NotFound(m),
            OncallError::Invalid(m) => ApiError::BadUserInput(m),
            OncallError::Conflict(m) => ApiError::Conflict(m),
            OncallError::Forbidden(m) => ApiError::Forbidden(m),
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

/// A one-off silence or a maintenance window.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "entity::states::SilenceKind")]
pub enum SilenceKind {
    Silence,
    Maintenance,
}

/// When a maintenance window recurs.
#[derive(SimpleObject)]
pub struct SilenceRecurrence {
    /// MON … SUN.
    pub days: Vec<String>,
    /// HH:MM in the time zone.
    pub start: String,
    pub time_zone: String,
    pub duration_minutes: i32,
}

/// An alert a silence held back (pseudonymised), per occurrence.
#[derive(SimpleObject)]
pub struct SilencedAlert {
    pub name: String,
    pub service: Option<String>,
    pub labels: async_graphql::Json<serde_json::Value>,
    pub incident_id: Option<ID>,
    pub firing: bool,
    /// Firings held back.
    pub count: i32,
    pub occurrence_start: DateTime<Utc>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// A silence: label matchers (Alertmanager's syntax, with labels in place of raw values),
/// when it holds, who made it and why.
pub struct Silence(pub entity::silence::Model);

fn recurrence_of(row: &entity::silence::Model) -> Option<engine::oncall::windows::Recurrence> {
    row.recurrence
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
}

#[Object]
impl Silence {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn kind(&self) -> SilenceKind {
        self.0.kind.into()
    }
    /// A maintenance window's name.
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn matchers(&self) -> &str {
        &self.0.matchers
    }
    async fn comment(&self) -> &str {
        &self.0.comment
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn starts_at(&self) -> DateTime<Utc> {
        self.0.starts_at
    }
    /// A silence's end; a window's last day (null: until expired).
    async fn ends_at(&self) -> Option<DateTime<Utc>> {
        self.0.ends_at
    }
    async fn expired_at(&self) -> Option<DateTime<Utc>> {
        self.0.expired_at
    }
    async fn expired_by(&self) -> Option<&str> {
        self.0.expired_by.as_deref()
    }
    async fn recurrence(&self) -> Option<SilenceRecurrence> {
        recurrence_of(&self.0).map(|r| SilenceRecurrence {
            days: r
                .days
                .iter()
                .map(|d| engine::oncall::windows::day_name(*d).to_owned())
                .collect(),
            start: r.start.format("%H:%M").to_string(),
            time_zone: r.zone.clone(),
            duration_minutes: r.duration_minutes as i32,
        })
    }
    /// Whether it holds alerts back now.
    async fn holding(&self) -> bool {
        crate::services::oncall::silences::holds_at(&self.0, Utc::now())
    }
    /// A window's next occurrence, if it has one before its end.
    async fn next_start(&self) -> Option<DateTime<Utc>> {
        let next = recurrence_of(&self.0)?.next_after(Utc::now())?.start;
        (self.0.expired_at.is_none() && self.0.ends_at.is_none_or(|e| next < e)).then_some(next)
    }
    /// What it held back, newest occurrence first.
    async fn held_back(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SilencedAlert>> {
        let rows = ctx
            .data::<Oncall>()?
            .held_back(self.0.id)
            .await
            .map_err(ApiError::from)?;
        Ok(rows
            .into_iter()
            .map(|a| SilencedAlert {
                name: a.name,
                service: a.service,
                labels: async_graphql::Json(
                    serde_json::from_str(&a.labels).unwrap_or(serde_json::Value::Null),
                ),
                incident_id: a.incident_id.map(|i| ID(i.to_string())),
                firing: a.status == engine::alert::AlertStatus::Firing,
                count: a.count,
                occurrence_start: a.occurrence_start,
                first_seen: a.first_seen,
                last_seen: a.last_seen,
                resolved_at: a.resolved_at,
            })
            .collect())
    }
}

#[derive(Default)]
pub struct SilenceQuery;

#[Object]
impl SilenceQuery {
    /// Silences and maintenance windows, newest first, at most `first` (1–500); `holding:
    /// true` keeps those holding alerts back now.
    async fn silences(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] holding: bool,
        #[graphql(default = 100)] first: i32,
    ) -> async_graphql::Result<Vec<Silence>> {
        super::principal(ctx)?;
        if !(1..=500).contains(&first) {
            return Err(ApiError::BadUserInput(format!(
                "first must be between 1 and 500, got {first}"
            ))
            .into());
        }
        let rows = ctx
            .data::<Oncall>()?
            .silences(holding, first as u64)
            .await
            .map_err(ApiError::from)?;
        Ok(rows.into_iter().map(Silence).collect())
    }
}

fn silence_id(id: &ID) -> Result<i32, ApiError> {
    id.parse::<i32>()
        .map_err(|_| ApiError::NotFound(format!("silence {} not found", id.as_str())))
}

#[derive(Default)]
pub struct SilenceMutation;

#[Object]
impl SilenceMutation {
    /// Silences alerts matching `matchers` (Alertmanager syntax, e.g.
    /// `{alertname="DiskFull", env=~"stag.*"}`) from now (or `startsAt`) for `durationMinutes`
    /// or until `endsAt`, at most 30 days. Matched alerts are stored and counted but open no
    /// incident, start no analysis and notify nobody; a digest follows the end. Matchers that
    /// match every alert need an ADMIN.
    async fn create_silence(
        &self,
        ctx: &Context<'_>,
        matchers: String,
        comment: String,
        starts_at: Option<DateTime<Utc>>,
        ends_at: Option<DateTime<Utc>>,
        duration_minutes: Option<i32>,
    ) -> async_graphql::Result<Silence> {
        use engine::Role::*;
        let who = require_role(ctx, &[Admin, Devops, Sre, Cto, Ciso])?;
        let from = starts_at.unwrap_or_else(Utc::now);
        let ends_at = match (ends_at, duration_minutes) {
            (Some(end), None) => end,
            (None, Some(minutes)) if minutes > 0 => {
                from + chrono::Duration::minutes(minutes.into())
            }
            (None, Some(_)) => {
                return Err(
                    ApiError::BadUserInput("durationMinutes must be positive".into()).into(),
                );
            }
            _ => {
                return Err(ApiError::BadUserInput(
                    "give exactly one of endsAt and durationMinutes".into(),
                )
                .into());
            }
        };
        let new = crate::services::oncall::silences::NewSilence {
            matchers,
            starts_at,
            ends_at,
            comment,
        };
        let row = ctx
            .data::<Oncall>()?
            .create_silence(new, &who.name, who.role)
            .await
            .map_err(ApiError::from)?;
        Ok(Silence(row))
    }

    /// Silences alerts like a stored one (its name and labels) for `durationMinutes`.
    async fn silence_alert(
        &self,
        ctx: &Context<'_>,
        alert_id: ID,
        duration_minutes: i32,
        comment: String,
    ) -> async_graphql::Result<Silence> {
        use engine::Role::*;
        let who = require_role(ctx, &[Admin, Devops, Sre, Cto, Ciso])?;
        let id = alert_id
            .parse::<i32>()
            .map_err(|_| ApiError::NotFound(format!("alert {} not found", alert_id.as_str())))?;
        let row = ctx
            .data::<Oncall>()?
            .silence_like(id, duration_minutes.into(), &comment, &who.name)
            .await
            .map_err(ApiError::from)?;
        Ok(Silence(row))
    }

    /// A maintenance window: a silence that recurs on `days` (MON … SUN) at `start` (HH:MM)
    /// in `timeZone` (IANA, e.g. Europe/Berlin) for `durationMinutes`, until `until` or until
    /// expired. Its hours follow the zone's civil time across daylight-saving changes.
    #[allow(clippy::too_many_arguments)]
    async fn create_maintenance_window(
        &self,
        ctx: &Context<'_>,
        name: String,
        matchers: String,
        days: Vec<String>,
        start: String,
        time_zone: String,
        duration_minutes: i32,
        comment: String,
        until: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Silence> {
        use engine::Role::*;
        let who = require_role(ctx, &[Admin, Devops, Sre, Cto, Ciso])?;
        let recurrence = engine::oncall::windows::Recurrence::new(
            &days,
            &start,
            &time_zone,
            duration_minutes.into(),
        )
        .map_err(|e| ApiError::BadUserInput(e.to_string()))?;
        let new = crate::services::oncall::silences::NewWindow {
            name,
            matchers,
            recurrence,
            until,
            comment,
        };
        let row = ctx
            .data::<Oncall>()?
            .create_window(new, &who.name, who.role)
            .await
            .map_err(ApiError::from)?;
        Ok(Silence(row))
    }

    /// Ends a silence or maintenance window now; its digest follows.
    async fn expire_silence(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Silence> {
        use engine::Role::*;
        let who = require_role(ctx, &[Admin, Devops, Sre, Cto, Ciso])?;
        let row = ctx
            .data::<Oncall>()?
            .expire_silence(silence_id(&id)?, &who.name)
            .await
            .map_err(ApiError::from)?;
        Ok(Silence(row))
    }
}

/// A weekly on-call rotation.
pub struct Schedule(pub entity::schedule::Model);

/// Someone else on call for a while.
#[derive(SimpleObject)]
pub struct ScheduleOverride {
    pub user: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

#[Object]
impl Schedule {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// In rotation order.
    async fn participants(&self) -> Vec<String> {
        serde_json::from_str(&self.0.participants).unwrap_or_default()
    }
    /// MON … SUN.
    async fn handover_day(&self) -> &str {
        &self.0.handover_day
    }
    /// HH:MM in the time zone.
    async fn handover_time(&self) -> &str {
        &self.0.handover_time
    }
    async fn time_zone(&self) -> &str {
        &self.0.time_zone
    }
    async fn since(&self) -> DateTime<Utc> {
        self.0.since
    }
    async fn overrides(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ScheduleOverride>> {
        let oncall = ctx.data::<Oncall>()?;
        let db = ctx.data::<sea_orm::DatabaseConnection>()?;
        let rotation = oncall
            .rotation(db, &self.0)
            .await
            .map_err(ApiError::internal)?;
        Ok(rotation
            .overrides
            .into_iter()
            .map(|o| ScheduleOverride {
                user: o.user,
                starts_at: o.start,
                ends_at: o.end,
            })
            .collect())
    }
    /// Who is on call now.
    async fn on_call_now(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let oncall = ctx.data::<Oncall>()?;
        let db = ctx.data::<sea_orm::DatabaseConnection>()?;
        let rotation = oncall
            .rotation(db, &self.0)
            .await
            .map_err(ApiError::internal)?;
        Ok(rotation.on_call(Utc::now()).map(str::to_owned))
    }
}

/// Whom a step pages: `USER`, `ROLE`, `SCHEDULE` or `CHANNEL`, and its name.
#[derive(SimpleObject, async_graphql::InputObject)]
#[graphql(input_name = "EscalationStepInput")]
pub struct EscalationStep {
    pub kind: String,
    pub name: String,
    pub wait_minutes: i32,
}

/// Which incidents a policy is for (empty lists allow any value).
#[derive(SimpleObject)]
pub struct EscalationRoute {
    pub severities: Vec<super::incidents::Severity>,
    pub services: Vec<String>,
    pub namespaces: Vec<String>,
}

/// An escalation policy.
pub struct EscalationPolicy(pub entity::escalation_policy::Model);

fn step_of(step: &engine::oncall::escalation::Step) -> EscalationStep {
    use engine::oncall::escalation::StepTarget;
    let (kind, name) = match &step.target {
        StepTarget::User(n) => ("USER", n.clone()),
        StepTarget::Role(r) => ("ROLE", r.as_str().to_owned()),
        StepTarget::Schedule(n) => ("SCHEDULE", n.clone()),
        StepTarget::Channel(n) => ("CHANNEL", n.clone()),
    };
    EscalationStep {
        kind: kind.into(),
        name,
        wait_minutes: step.wait_minutes as i32,
    }
}

#[Object]
impl EscalationPolicy {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn position(&self) -> i32 {
        self.0.position
    }
    async fn route(&self) -> EscalationRoute {
        let route: engine::oncall::escalation::Route =
            serde_json::from_str(&self.0.route).unwrap_or_default();
        EscalationRoute {
            severities: route.severities.into_iter().map(Into::into).collect(),
            services: route.services,
            namespaces: route.namespaces,
        }
    }
    async fn steps(&self) -> Vec<EscalationStep> {
        let steps: Vec<engine::oncall::escalation::Step> =
            serde_json::from_str(&self.0.steps).unwrap_or_default();
        steps.iter().map(step_of).collect()
    }
}

#[derive(Default)]
pub struct ScheduleQuery;

#[Object]
impl ScheduleQuery {
    /// On-call schedules, by name.
    async fn schedules(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Schedule>> {
        super::principal(ctx)?;
        let rows = ctx
            .data::<Oncall>()?
            .schedules()
            .await
            .map_err(ApiError::from)?;
        Ok(rows.into_iter().map(Schedule).collect())
    }

    /// Who is on call on `schedule` at `at` (default: now); null if nobody is.
    async fn on_call(
        &self,
        ctx: &Context<'_>,
        schedule: String,
        at: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Option<String>> {
        super::principal(ctx)?;
        Ok(ctx
            .data::<Oncall>()?
            .on_call(&schedule, at.unwrap_or_else(Utc::now))
            .await
            .map_err(ApiError::from)?)
    }

    /// Escalation policies, in the order their routes are tried.
    async fn escalation_policies(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<EscalationPolicy>> {
        super::principal(ctx)?;
        let rows = ctx
            .data::<Oncall>()?
            .policies()
            .await
            .map_err(ApiError::from)?;
        Ok(rows.into_iter().map(EscalationPolicy).collect())
    }
}

#[derive(Default)]
pub struct ScheduleMutation;

#[Object]
impl ScheduleMutation {
    /// A weekly rotation: `participants` (users) in order, handed over on `handoverDay`
    /// (MON … SUN) at `handoverTime` (HH:MM) in `timeZone`, from `since` (default now).
    #[allow(clippy::too_many_arguments)]
    async fn create_schedule(
        &self,
        ctx: &Context<'_>,
        name: String,
        participants: Vec<String>,
        handover_day: String,
        handover_time: String,
        time_zone: String,
        since: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Schedule> {
        use engine::Role::*;
        let who = require_role(ctx, &[Admin, Devops, Sre])?;
        let new = crate::services::oncall::escalation::NewSchedule {
            name,
            participants,
            handover_day,
            handover_time,
            time_zone,
            since,
        };
        let row = ctx
            .data::<Oncall>()?
            .create_schedule(new, &who.name)
            .await
            .map_err(ApiError::from)?;
        Ok(Schedule(row))
    }

    /// Puts `user` on call on `schedule` from `startsAt` to `endsAt` (an override).
    async fn add_schedule_override(
        &self,
        ctx: &Context<'_>,
        schedule: String,
        user: String,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    ) -> async_graphql::Result<ScheduleOverride> {
        use engine::Role::*;
        let who = require_role(ctx, &[Admin, Devops, Sre])?;
        let row = ctx
            .data::<Oncall>()?
            .add_override(&schedule, &user, starts_at, ends_at, &who.name)
            .await
            .map_err(ApiError::from)?;
        Ok(ScheduleOverride {
            user: row.username,
            starts_at: row.starts_at,
            ends_at: row.ends_at,
        })
    }

    /// An escalation policy: incidents its route takes (by severity, service, namespace;
    /// empty: any) page each step in turn until acknowledged. Steps name a `USER`, a `ROLE`,
    /// a `SCHEDULE` (whoever is on call) or a `CHANNEL`, and how long to wait before the next.
    #[allow(clippy::too_many_arguments)]
    async fn create_escalation_policy(
        &self,
        ctx: &Context<'_>,
        name: String,
        steps: Vec<EscalationStep>,
        #[graphql(default)] severities: Vec<super::incidents::Severity>,
        #[graphql(default)] services: Vec<String>,
        #[graphql(default)] namespaces: Vec<String>,
        #[graphql(default)] position: i32,
    ) -> async_graphql::Result<EscalationPolicy> {
        use engine::Role::*;
        use engine::oncall::escalation::{Route, Step, StepTarget};
        let who = require_role(ctx, &[Admin, Devops, Sre])?;
        let mut parsed = Vec::new();
        for (i, s) in steps.into_iter().enumerate() {
            let bad = |what: String| ApiError::BadUserInput(format!("step {}: {what}", i + 1));
            let target = match s.kind.to_ascii_uppercase().as_str() {
                "USER" => StepTarget::User(s.name),
                "SCHEDULE" => StepTarget::Schedule(s.name),
                "CHANNEL" => StepTarget::Channel(s.name),
                "ROLE" => StepTarget::Role(
                    crate::services::oncall::escalation::role_named(&s.name)
                        .ok_or_else(|| bad(format!("`{}` is not a role", s.name)))?,
                ),
                other => {
                    return Err(bad(format!(
                        "kind `{other}`: one of USER, ROLE, SCHEDULE, CHANNEL"
                    ))
                    .into());
                }
            };
            let wait_minutes = u32::try_from(s.wait_minutes)
                .map_err(|_| bad("waitMinutes must not be negative".into()))?;
            parsed.push(Step {
                target,
                wait_minutes,
            });
        }
        let new = crate::services::oncall::escalation::NewPolicy {
            name,
            route: Route {
                severities: severities.into_iter().map(Into::into).collect(),
                services,
                namespaces,
            },
            steps: parsed,
            position,
        };
        let row = ctx
            .data::<Oncall>()?
            .create_policy(new, &who.name)
            .await
            .map_err(ApiError::from)?;
        Ok(EscalationPolicy(row))
    }
}

/// Where an incident's escalation stands.
#[derive(SimpleObject)]
pub struct IncidentEscalation {
    pub policy: String,
    /// The next step to page (1-based), once `nextAt` comes; past the last: none left.
    pub next_step: i32,
    pub steps: i32,
    pub next_at: DateTime<Utc>,
    /// ACTIVE, ACKNOWLEDGED, RESOLVED or EXHAUSTED.
    pub status: String,
}

/// Incident `id`'s escalation, if a policy took it.
pub async fn escalation_of(
    ctx: &Context<'_>,
    id: i32,
) -> async_graphql::Result<Option<IncidentEscalation>> {
    let oncall = ctx.data::<Oncall>()?;
    let subject = format!("incident:{id}");
    let Some(row) = oncall
        .escalation_of(&subject)
        .await
        .map_err(ApiError::from)?
    else {
        return Ok(None);
    };
    let policy = oncall.policy(row.policy_id).await.map_err(ApiError::from)?;
    let steps = policy
        .as_ref()
        .and_then(|p| serde_json::from_str::<Vec<engine::oncall::escalation::Step>>(&p.steps).ok())
        .map_or(0, |s| s.len() as i32);
    Ok(Some(IncidentEscalation {
        policy: policy.map(|p| p.name).unwrap_or_default(),
        next_step: row.next_step + 1,
        steps,
        next_at: row.next_at,
        status: row.status.as_str().to_owned(),
    }))
}
