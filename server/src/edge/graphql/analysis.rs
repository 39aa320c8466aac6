//! The Brain's side of an incident: its analysis, its thinking events (live, with replay),
//! and `analyzeIncident`.

use std::collections::VecDeque;

use async_graphql::{Context, ID, Json, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use engine::brain::{GraphFact, Proposal as EngineProposal};
use entity::{analysis, incident, thinking_event};
use futures_util::Stream;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use tokio::sync::broadcast;

use super::incidents::Incident;
use super::topology::{AffectedService, BlastRadius, Health, RootCause};
use super::{ApiError, principal, require_role};
use crate::base::bus::ThinkingRow;
use crate::services::analysis::{AnalysisError, Analyst, Trigger};

/// One step of the investigation. `seq` counts from 1 per incident, without gaps.
#[derive(SimpleObject, Clone)]
pub struct ThinkingEvent {
    incident_id: ID,
    seq: i32,
    /// THOUGHT, TOOL_CALL, OBSERVATION or CONCLUSION.
    kind: String,
    /// Pseudonymised.
    text: String,
    at: DateTime<Utc>,
}

impl From<ThinkingRow> for ThinkingEvent {
    fn from(row: ThinkingRow) -> Self {
        ThinkingEvent {
            incident_id: row.incident_id.into(),
            seq: row.seq,
            kind: row.kind,
            text: row.text,
            at: row.at,
        }
    }
}

#[derive(SimpleObject)]
pub struct Proposal {
    summary: String,
    root_cause: Option<String>,
    actions: Vec<super::approvals::Action>,
    confidence: f64,
}

/// What the Brain concluded about an incident.
pub struct Analysis(pub analysis::Model);

/// A deployment as the cluster shows it; its name is its service's.
#[derive(SimpleObject)]
pub struct Workload {
    name: String,
    ready: i32,
    replicas: i32,
    revision: i32,
    /// Container restarts over its pods.
    restarts: i32,
    crash_looping: bool,
}

fn facts(json: &str) -> Vec<GraphFact> {
    serde_json::from_str(json).unwrap_or_default()
}

#[Object]
impl Analysis {
    async fn summary(&self) -> &str {
        &self.0.summary
    }
    /// Why the latest run started ("Analysing again: the root cause changed …").
    async fn trigger(&self) -> Option<&str> {
        self.0.trigger.as_deref()
    }
    /// Automatic runs so far (bounded by `[brain] max_runs`).
    async fn runs(&self) -> i32 {
        self.0.runs
    }
    /// Which provider reasoned (`rules`, …).
    async fn brain(&self) -> &str {
        &self.0.brain
    }
    async fn confidence(&self) -> f64 {
        self.0.confidence
    }
    /// Tokens sent to the provider (0 for the rules brain).
    async fn input_tokens(&self) -> i64 {
        self.0.input_tokens
    }
    async fn output_tokens(&self) -> i64 {
        self.0.output_tokens
    }
    /// Estimated from `[brain]`'s price table.
    async fn cost_usd(&self) -> f64 {
        self.0.cost_usd
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Ranked, likeliest first.
    async fn root_causes(&self) -> Vec<RootCause> {
        facts(&self.0.root_causes)
            .into_iter()
            .enumerate()
            .map(|(i, f)| RootCause {
                service: f.service,
                kind: f.kind.into(),
                depth: f.depth as i32,
                health: Health::Unhealthy,
                rank: i as i32 + 1,
            })
            .collect()
    }
    async fn blast_radius(&self, ctx: &Context<'_>) -> async_graphql::Result<BlastRadius> {
        let target = incident::Entity::find_by_id(self.0.incident_id)
            .one(ctx.data::<DatabaseConnection>()?)
            .await
            .map_err(ApiError::internal)?
            .and_then(|i| i.service)
            .unwrap_or_default();
        Ok(BlastRadius {
            target,
            affected: facts(&self.0.blast_radius)
                .into_iter()
                .map(|f| AffectedService {
                    service: f.service,
                    kind: f.kind.into(),
                    depth: f.depth as i32,
                })
                .collect(),
            max_depth: 3,
        })
    }
    /// The workloads of the root cause and of every service in the blast radius, as the
    /// cluster shows them now (empty without a cluster view).
    async fn workloads(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Workload>> {
        let db = ctx.data::<DatabaseConnection>()?;
        let root = incident::Entity::find_by_id(self.0.incident_id)
            .one(db)
            .await
            .map_err(ApiError::internal)?
            .and_then(|i| i.service);
        let services: Vec<String> = root
            .into_iter()
            .chain(facts(&self.0.blast_radius).into_iter().map(|f| f.service))
            .collect();
        let approvals = ctx.data::<crate::services::approvals::Approvals>()?;
        let found = approvals
            .cluster_view(self.0.incident_id, &services)
            .await
            .map_err(ApiError::internal)?
            .unwrap_or_default();
        // In the order asked: the root cause, then nearest first.
        Ok(services
            .iter()
            .filter_map(|s| found.iter().find(|w| &w.name == s))
            .map(|w| Workload {
                name: w.name.clone(),
                ready: w.ready as i32,
                replicas: w.replicas as i32,
                revision: w.revision as i32,
                restarts: w.restarts as i32,
                crash_looping: w.crash_looping,
            })
            .collect())
    }
    async fn proposal(&self) -> Option<Proposal> {
        let p: EngineProposal = serde_json::from_str(&self.0.proposal).ok()?;
        Some(Proposal {
            summary: p.summary,
            root_cause: p.root_cause,
            confidence: p.confidence,
            actions: p
                .actions
                .into_iter()
                .map(|a| super::approvals::Action {
                    kind: a.kind,
                    target: a.target,
                    namespace: a.namespace,
                    params: Json(a.params),
                    rationale: a.rationale,
                })
                .collect(),
        })
    }
}

pub async fn analysis_of(
    ctx: &Context<'_>,
    incident_id: i32,
) -> async_graphql::Result<Option<Analysis>> {
    Ok(analysis::Entity::find_by_id(incident_id)
        .one(ctx.data::<DatabaseConnection>()?)
        .await
        .map_err(ApiError::internal)?
        .map(Analysis))
}

pub async fn thinking_of(
    db: &DatabaseConnection,
    incident_id: i32,
    after_seq: i32,
) -> Result<Vec<ThinkingRow>, ApiError> {
    Ok(thinking_event::Entity::find()
        .filter(thinking_event::Column::IncidentId.eq(incident_id))
        .filter(thinking_event::Column::Seq.gt(after_seq))
        .order_by_asc(thinking_event::Column::Seq)
        .all(db)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .map(ThinkingRow::from)
        .collect())
}

#[derive(Default)]
pub struct AnalysisMutation;

#[Object]
impl AnalysisMutation {
    /// Runs the Brain on an incident now (everyone but VIEWER) and returns it.
    async fn analyze_incident(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Incident> {
        use engine::Role::*;
        let by = require_role(ctx, &[Admin, Devops, Sre, Cto, Ciso])?
            .name
            .clone();
        let id: i32 = id
            .parse()
            .map_err(|_| ApiError::NotFound(format!("no incident {}", id.as_str())))?;
        let analyst = ctx.data::<Analyst>()?;
        match analyst.analyze(id, Trigger::Requested { by }).await {
            Ok(_) => {}
            Err(AnalysisError::NotFound(_)) => {
                return Err(ApiError::NotFound(format!("no incident {id}")).into());
            }
            Err(AnalysisError::Busy(_)) => {
                return Err(ApiError::Conflict(format!(
                    "incident {id} is being analysed or is resolved"
                ))
                .into());
            }
            Err(error) => return Err(ApiError::internal(error).into()),
        }
        incident::Entity::find_by_id(id)
            .one(ctx.data::<DatabaseConnection>()?)
            .await
            .map_err(ApiError::internal)?
            .map(Incident::from)
            .ok_or_else(|| ApiError::NotFound(format!("no incident {id}")).into())
    }
}

struct Replay {
    db: DatabaseConnection,
    incident_id: i32,
    pending: VecDeque<ThinkingRow>,
    live: broadcast::Receiver<ThinkingRow>,
    last: i32,
}

#[derive(Default)]
pub struct AnalysisSubscription;

#[Subscription]
impl AnalysisSubscription {
    /// The incident's thinking events: everything said so far, then live — each exactly once,
    /// in order.
    async fn thinking(
        &self,
        ctx: &Context<'_>,
        incident_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = ThinkingEvent> + use<>> {
        principal(ctx)?;
        let incident_id: i32 = incident_id
            .parse()
            .map_err(|_| ApiError::NotFound(format!("no incident {}", incident_id.as_str())))?;
        let analyst = ctx.data::<Analyst>()?;
        let db = analyst.db().clone();
        // Subscribe before reading the past: nothing falls between the two.
        let live = analyst.subscribe_thinking();
        let pending: VecDeque<ThinkingRow> = thinking_of(&db, incident_id, 0).await?.into();
        let state = Replay {
            db,
            incident_id,
            pending,
            live,
            last: 0,
        };
        Ok(futures_util::stream::unfold(state, |mut s| async move {
            loop {
                if let Some(row) = s.pending.pop_front() {
                    if row.seq > s.last {
                        s.last = row.seq;
                        return Some((ThinkingEvent::from(row), s));
                    }
                    continue;
                }
                match s.live.recv().await {
                    Ok(row) if row.incident_id == s.incident_id && row.seq == s.last + 1 => {
                        s.pending.push_back(row);
                    }
                    // Two writers (the Brain, correlation notes) may publish out of order; a
                    // number is only taken once the ones below it are stored, so storage has
                    // the gap's rows: read them back.
                    Ok(row) if row.incident_id == s.incident_id && row.seq > s.last => {
                        s.pending = thinking_of(&s.db, s.incident_id, s.last).await.ok()?.into();
                    }
                    Ok(_) => {}
                    // Missed some: read them back from storage.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        s.pending = thinking_of(&s.db, s.incident_id, s.last).await.ok()?.into();
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }))
    }
}
