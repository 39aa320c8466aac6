//! The analysis worker: once an incident settles (see [`settle`]), or on demand, build the
//! pseudonymised investigation, run the Brain, persist its thinking events with gap-free
//! sequence numbers as they come, store the proposal, turn its actions into approvals and
//! supersede the older proposals it replaces.
//!
//! Claiming is a conditional update (`OPEN|AWAITING_APPROVAL → ANALYZING`), so however many
//! replicas see the incident change, one analyses it.

pub mod brains;
pub mod settle;

use crate::base::bus::ThinkingRow;

use std::sync::Arc;

use chrono::Utc;
use engine::alert::AlertStatus;
use engine::brain::{
    AlertFacts, Brain, DiagnosticsFact, GraphFact, Investigation, Proposal, RulesBrain,
    ThinkingStep,
};
use engine::topology::ServiceKind;
use engine::topology::Topology;
use entity::{alert, analysis, incident, thinking_event};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use tokio::sync::{broadcast, mpsc};

use crate::base::bus::Event;

use crate::base::incident::IncidentStatus;
use crate::services::analysis::brains::{AnyBrain, BrainConfig};
use crate::services::ingest::Ingest;

/// Services named by a firing alert right now: the unhealthy ones.
pub async fn firing_services(
    db: &DatabaseConnection,
) -> Result<std::collections::HashSet<String>, DbErr> {
    let services: Vec<Option<String>> = alert::Entity::find()
        .select_only()
        .column(alert::Column::Service)
        .filter(alert::Column::Status.eq(AlertStatus::Firing))
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    Ok(services.into_iter().flatten().collect())
}

/// Why an analysis runs.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// The incident settled after a change; the text says which.
    Settled(String),
    /// A person asked (`analyzeIncident`); not counted against `[brain] max_runs`.
    Requested { by: String },
}

impl Trigger {
    fn reason(&self) -> String {
        match self {
            Trigger::Settled(why) => why.clone(),
            Trigger::Requested { by } => format!("Analysis requested by {by}."),
        }
    }
}

/// An analysis claimed longer ago than this was interrupted (a crash): it runs again.
/// Providers time out well before (`[brain] timeout_seconds`, retried).
const MIN_LEASE: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("no incident {0}")]
    NotFound(i32),
    #[error("incident {0} is being analysed or is resolved")]
    Busy(i32),
    #[error("storage: {0}")]
    Storage(#[from] DbErr),
}

struct Inner {
    db: DatabaseConnection,
    topology: Arc<Topology>,
    ingest: Ingest,
    approvals: crate::services::approvals::Approvals,
    brain: AnyBrain,
    config: BrainConfig,
}

/// Handle to the analysis worker; cheap to clone.
#[derive(Clone)]
pub struct Analyst(Arc<Inner>);

impl Analyst {
    /// Starts watching for newly opened incidents.
    pub fn start(
        db: DatabaseConnection,
        topology: Arc<Topology>,
        ingest: Ingest,
        approvals: crate::services::approvals::Approvals,
        config: BrainConfig,
    ) -> anyhow::Result<Analyst> {
        config.settling()?;
        let analyst = Analyst(Arc::new(Inner {
            db,
            topology,
            ingest: ingest.clone(),
            approvals,
            brain: AnyBrain::from_config(&config)?,
            config,
        }));
        // Correlation's lines (why an alert joined, merges, new root causes) join the streams.
        let speaker = analyst.clone();
        let mut notes = ingest.subscribe_notes();
        tokio::spawn(async move {
            loop {
                match notes.recv().await {
                    Ok(note) => {
                        if let Err(error) =
                            speaker.say(note.incident_id, note.kind, note.text).await
                        {
                            tracing::warn!(%error, incident_id = note.incident_id, "correlation note not stored");
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(
                            missed,
                            "correlation notes dropped: the thinking writer fell behind"
                        );
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        analyst.start_settling(ingest.subscribe());
        Ok(analyst)
    }

    /// Adds a line to an incident's thinking stream (stored, then live).
    pub async fn say(&self, incident_id: i32, kind: &str, text: String) -> Result<(), DbErr> {
        let next = last_seq(&self.0.db, incident_id).await? + 1;
        let row = append_thinking(&self.0.db, incident_id, next, kind, text).await?;
        self.0
            .ingest
            .bus()
            .publish(Event::Thinking { row: row.into() });
        Ok(())
    }

    pub fn subscribe_thinking(&self) -> broadcast::Receiver<ThinkingRow> {
        self.0.ingest.bus().thinking()
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.0.db
    }

    fn settling(&self) -> settle::Settling {
        let (quiet, max_wait) = self
            .0
            .config
            .settling()
            .expect("checked when the analyst started");
        settle::Settling {
            quiet,
            max_wait,
            max_runs: self.0.config.max_runs,
        }
    }

    fn lease(&self) -> std::time::Duration {
        let provider = self
            .0
            .config
            .timeout_seconds
            .saturating_mul(u64::from(self.0.config.max_retries) + 2);
        MIN_LEASE.max(std::time::Duration::from_secs(provider))
    }

    /// Analyses `incident_id` now: an OPEN incident, or one AWAITING_APPROVAL (a re-analysis).
    pub async fn analyze(
        &self,
        incident_id: i32,
        trigger: Trigger,
    ) -> Result<Proposal, AnalysisError> {
        let db = &self.0.db;
        let claimed = incident::Entity::update_many()
            .col_expr(
                incident::Column::Status,
                Expr::value(IncidentStatus::Analyzing),
            )
            .col_expr(incident::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(incident::Column::Id.eq(incident_id))
            .filter(
                incident::Column::Status
                    .is_in([IncidentStatus::Open, IncidentStatus::AwaitingApproval]),
            )
            .exec(db)
            .await?;
        if claimed.rows_affected == 0 {
            return Err(
                match incident::Entity::find_by_id(incident_id).one(db).await? {
                    None => AnalysisError::NotFound(incident_id),
                    Some(_) => AnalysisError::Busy(incident_id),
                },
            );
        }
        self.0.ingest.notify(incident_id);
        let result = self.run(incident_id, &trigger).await;
        if let Ok(proposal) = &result {
            self.propose_actions(incident_id, proposal).await;
        }
        // Only if nothing else (an execution, a resolution) moved it meanwhile.
        let next = if self.open_approvals(incident_id).await?.is_empty() {
            IncidentStatus::Open
        } else {
            IncidentStatus::AwaitingApproval
        };
        incident::Entity::update_many()
            .col_expr(incident::Column::Status, Expr::value(next))
            .col_expr(incident::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(incident::Column::Id.eq(incident_id))
            .filter(incident::Column::Status.eq(IncidentStatus::Analyzing))
            .exec(db)
            .await?;
        self.0.ingest.notify(incident_id);
        result
    }

    /// The incident and those merged into it.
    async fn family(&self, incident_id: i32) -> Result<Vec<i32>, DbErr> {
        let mut family = vec![incident_id];
        family.extend(
            incident::Entity::find()
                .select_only()
                .column(incident::Column::Id)
                .filter(incident::Column::MergedInto.eq(incident_id))
                .into_tuple::<i32>()
                .all(&self.0.db)
                .await?,
        );
        Ok(family)
    }

    /// The family's approvals still waiting or running.
    async fn open_approvals(
        &self,
        incident_id: i32,
    ) -> Result<Vec<entity::approval::Model>, DbErr> {
        use engine::policy::ApprovalStatus as S;
        entity::approval::Entity::find()
            .filter(entity::approval::Column::IncidentId.is_in(self.family(incident_id).await?))
            .filter(entity::approval::Column::Status.is_in([S::Pending, S::Approved, S::Executing]))
            .all(&self.0.db)
            .await
    }

    /// Turns the proposal's actions into approvals requested by AWOOOI itself (so every
    /// person may sign them), reusing any already open for this incident or one merged into
    /// it, and supersedes AWOOOI's older PENDING proposals that the new one does not repeat.
    /// Diagnostics already read for a target are not proposed again.
    async fn propose_actions(&self, incident_id: i32, proposal: &Proposal) {
        let open = self.open_approvals(incident_id).await.unwrap_or_default();
        let family = self
            .family(incident_id)
            .await
            .unwrap_or_else(|_| vec![incident_id]);
        let mut current: Vec<(String, String)> = Vec::new();
        let mut first: Option<i32> = None;
        for action in &proposal.actions {
            if let Some(existing) = open
                .iter()
                .find(|a| a.kind == action.kind && a.target == action.target)
            {
                current.push((existing.kind.clone(), existing.target.clone()));
                first.get_or_insert(existing.id);
                continue;
            }
            let request = engine::policy::ActionRequest {
                kind: action.kind.clone(),
                target: action.target.clone(),
                namespace: action.namespace.clone(),
                params: action.params.clone(),
                labels: Default::default(),
                requested_by: crate::services::approvals::SYSTEM_REQUESTER.to_owned(),
            };
            let proposed = self
                .0
                .approvals
                .propose(crate::services::approvals::NewApproval {
                    incident_id,
                    request,
                    rationale: action.rationale.clone(),
                    finops: None,
                })
                .await;
            match proposed {
                Ok(view) => {
                    current.push((view.row.kind.clone(), view.row.target.clone()));
                    first.get_or_insert(view.row.id);
                }
                Err(error) => {
                    tracing::warn!(incident = incident_id, %error, "could not propose an action")
                }
            }
        }
        let analysis = format!("incident:{incident_id}");
        match self
            .0
            .approvals
            .supersede_stale(&family, &current, first, &analysis)
            .await
        {
            Ok(ids) if !ids.is_empty() => {
                let list: Vec<String> = ids.iter().map(|id| format!("#{id}")).collect();
                let by = first.map_or("no action".to_owned(), |id| format!("approval #{id}"));
                let said = self
                    .say(
                        incident_id,
                        "THOUGHT",
                        format!(
                            "Superseded the earlier proposal(s) {} by {by}: they no longer match the analysis.",
                            list.join(", ")
                        ),
                    )
                    .await;
                if let Err(error) = said {
                    tracing::warn!(%error, incident_id, "thinking line not stored");
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(incident = incident_id, %error, "could not supersede stale proposals")
            }
        }
    }

    async fn run(&self, incident_id: i32, trigger: &Trigger) -> Result<Proposal, AnalysisError> {
        let db = &self.0.db;
        let reason = trigger.reason();
        self.say(incident_id, "THOUGHT", reason.clone()).await?;
        let found = incident::Entity::find_by_id(incident_id)
            .one(db)
            .await?
            .ok_or(AnalysisError::NotFound(incident_id))?;
        // Taken before the investigation reads: a change during the run starts another.
        let basis = settle::Basis::of(db, &found).await?;
        let investigation = self.investigation(incident_id).await?;
        let first_seq = last_seq(db, incident_id).await? + 1;

        // Steps are persisted and published as the brain produces them.
        let (steps, mut received) = mpsc::unbounded_channel::<ThinkingStep>();
        let writer = {
            let db = db.clone();
            let bus = self.0.ingest.bus().clone();
            tokio::spawn(async move {
                let mut seq = first_seq;
                while let Some(step) = received.recv().await {
                    let row = append_thinking(&db, incident_id, seq, step.kind.as_str(), step.text)
                        .await?;
                    bus.publish(Event::Thinking {
                        row: row.clone().into(),
                    });
                    seq = row.seq + 1;
                }
                Ok::<(), DbErr>(())
            })
        };
        let mut emit = move |step: ThinkingStep| {
            let _ = steps.send(step);
        };
        let outcome = self.0.brain.investigate(&investigation, &mut emit).await;
        drop(emit);
        writer
            .await
            .map_err(|e| DbErr::Custom(format!("thinking writer: {e}")))??;
        let (proposal, usage, brain) = match outcome {
            Ok(done) if done.proposal.validate().is_ok() => (done.proposal, done.usage, done.brain),
            // Every brain validates; this is the last line of defence.
            _ => (
                RulesBrain.reason(&investigation).1,
                Default::default(),
                "rules".to_owned(),
            ),
        };
        // Whoever proposed it: nothing aimed at a workload the cluster does not run. The view
        // covers what the investigation asked about; a brain may name others.
        let mut investigation = investigation;
        if let Some(seen) = &investigation.workloads {
            let unseen: Vec<String> = proposal
                .actions
                .iter()
                .map(|a| a.target.clone())
                .filter(|t| !seen.iter().any(|w| &w.name == t))
                .collect();
            if !unseen.is_empty() {
                match self.0.approvals.cluster_view(incident_id, &unseen).await? {
                    Some(more) => investigation.workloads.get_or_insert_default().extend(more),
                    // The cluster cannot tell now: nothing is left out for it.
                    None => investigation.workloads = None,
                }
            }
        }
        let (proposal, dropped) = proposal.runnable(&investigation);
        for gone in dropped {
            self.say(
                incident_id,
                "THOUGHT",
                format!(
                    "Not proposing {} {}: the cluster has no workload {}, so its dry-run could not pass.",
                    gone.kind, gone.target, gone.target
                ),
            )
            .await?;
        }
        let runs = analysis::Entity::find_by_id(incident_id)
            .one(db)
            .await?
            .map_or(0, |a| a.runs)
            + i32::from(matches!(trigger, Trigger::Settled(_)));
        let row = analysis::ActiveModel {
            incident_id: Set(incident_id),
            brain: Set(brain),
            input_tokens: Set(usage.input_tokens as i64),
            output_tokens: Set(usage.output_tokens as i64),
            cost_usd: Set(self.0.config.cost(usage)),
            summary: Set(proposal.summary.clone()),
            root_cause: Set(proposal.root_cause.clone()),
            confidence: Set(proposal.confidence),
            proposal: Set(serde_json::to_string(&proposal).expect("proposal serialises")),
            root_causes: Set(serde_json::to_string(&investigation.root_causes).expect("facts")),
            blast_radius: Set(serde_json::to_string(&investigation.blast_radius).expect("facts")),
            created_at: Set(Utc::now()),
            basis: Set(Some(
                serde_json::to_string(&basis).expect("basis serialises"),
            )),
            runs: Set(runs),
            trigger: Set(Some(reason)),
        };
        analysis::Entity::delete_by_id(incident_id).exec(db).await?;
        let stored = row.insert(db).await?;
        crate::base::audit::record_or_log(
            db,
            "system",
            "incident.analysed",
            &format!("incident:{incident_id}"),
            serde_json::json!({
                "brain": stored.brain,
                "actions": proposal.actions.iter().map(|a| format!("{} {}", a.kind, a.target)).collect::<Vec<_>>(),
            }),
        )
        .await;
        Ok(proposal)
    }

    /// The pseudonymised incident and what the topology says about its service.
    async fn investigation(&self, incident_id: i32) -> Result<Investigation, AnalysisError> {
        let db = &self.0.db;
        let found = incident::Entity::find_by_id(incident_id)
            .one(db)
            .await?
            .ok_or(AnalysisError::NotFound(incident_id))?;
        let alerts = alert::Entity::find()
            .filter(alert::Column::IncidentId.eq(incident_id))
            .order_by_asc(alert::Column::Id)
            .all(db)
            .await?;
        let firing = firing_services(db).await?;
        let topology = &self.0.topology;
        let service = found.service.clone();
        let (root_causes, blast_radius, service_kind) = match service.as_deref() {
            Some(name) if topology.contains(name) => {
                let mut causes = ranked_root_causes(topology, name, &alerts, &firing);
                // The incident's root cause (correlation's) leads: the analysis describes it.
                if !causes.is_empty() {
                    let own = match causes.iter().position(|c| c.service == name) {
                        Some(at) => causes.remove(at),
                        None => GraphFact {
                            service: name.to_owned(),
                            kind: topology.kind_of(name).unwrap_or(ServiceKind::Service),
                            depth: 0,
                        },
                    };
                    causes.insert(0, own);
                }
                let radius = topology
                    .blast_radius(name, 3)
                    .map(|r| {
                        r.affected
                            .into_iter()
                            .map(|a| GraphFact {
                                service: a.service.to_owned(),
                                kind: a.kind,
                                depth: a.depth,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let kind = topology.services().find(|s| s.name == name).map(|s| s.kind);
                (causes, radius, kind)
            }
            _ => (Vec::new(), Vec::new(), None),
        };
        let names: Vec<&str> = alerts.iter().map(|a| a.name.as_str()).collect();
        let likeliest = root_causes.first().map(|c: &GraphFact| c.service.as_str());
        let history = crate::services::knowledge::similar(
            db,
            self.0.approvals.knowledge().retrieval(),
            incident_id,
            &[service.as_deref().unwrap_or_default(), likeliest.unwrap_or_default(), &names.join(" "), &found.title].join(" "),
            3,
        )
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(incident = incident_id, error = %e, "similar past incidents unavailable");
            Vec::new()
        });
        // Every workload a playbook may name: causes, alerting services, the blast radius,
        // the root cause's pooler, past fixes' targets.
        let mut wanted: Vec<String> = root_causes
            .iter()
            .chain(&blast_radius)
            .map(|f| f.service.clone())
            .chain(alerts.iter().filter_map(|a| a.service.clone()))
            .chain(service.iter().cloned())
            .chain(service.iter().map(|s| format!("{s}-pooler")))
            .chain(root_causes.first().map(|c| format!("{}-pooler", c.service)))
            .chain(history.iter().filter_map(|p| {
                p.action
                    .as_deref()
                    .and_then(|a| a.split_once(' '))
                    .map(|(_, target)| target.to_owned())
            }))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let workloads = self
            .0
            .approvals
            .cluster_view(incident_id, &wanted)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(incident = incident_id, error = %e, "cluster view unavailable");
                None
            });
        let diagnostics = diagnostics_read(db, &self.family(incident_id).await?).await?;
        Ok(Investigation {
            workloads,
            diagnostics,
            incident_title: found.title,
            service,
            service_kind,
            alerts: alerts
                .into_iter()
                .map(|a| {
                    let annotations: std::collections::BTreeMap<String, String> =
                        serde_json::from_str(&a.annotations).unwrap_or_default();
                    AlertFacts {
                        description: engine::input::description_of(&annotations).map(str::to_owned),
                        name: a.name,
                        severity: a.severity.as_str().to_owned(),
                        service: a.service,
                        count: a.count,
                    }
                })
                .collect(),
            root_causes,
            blast_radius,
            history,
        })
    }
}

/// What the family's finished `run_diagnostics` read, newest first: the latest three, each
/// its last [`DIAGNOSTICS_CHARS`] characters (stored pseudonymised).
async fn diagnostics_read(
    db: &DatabaseConnection,
    family: &[i32],
) -> Result<Vec<DiagnosticsFact>, DbErr> {
    use engine::policy::ApprovalStatus;
    use entity::states::ExecutionStatus;
    let read = entity::approval::Entity::find()
        .filter(entity::approval::Column::IncidentId.is_in(family.iter().copied()))
        .filter(entity::approval::Column::Kind.eq("run_diagnostics"))
        .filter(entity::approval::Column::Status.eq(ApprovalStatus::Executed))
        .order_by_desc(entity::approval::Column::Id)
        .limit(3)
        .all(db)
        .await?;
    let mut facts = Vec::new();
    for approval in read {
        let Some(run) = entity::execution::Entity::find()
            .filter(entity::execution::Column::ApprovalId.eq(approval.id))
            .filter(entity::execution::Column::Status.eq(ExecutionStatus::Succeeded))
            .one(db)
            .await?
        else {
            continue;
        };
        let output = &run.output;
        let mut start = output.len().saturating_sub(DIAGNOSTICS_CHARS);
        while !output.is_char_boundary(start) {
            start += 1;
        }
        facts.push(DiagnosticsFact {
            target: approval.target,
            output: output[start..].to_owned(),
        });
    }
    Ok(facts)
}

/// How much of one diagnostics output an analysis reads.
const DIAGNOSTICS_CHARS: usize = 2_000;

/// The incident's highest thinking sequence number (0 before the first).
async fn last_seq(db: &DatabaseConnection, incident_id: i32) -> Result<i32, DbErr> {
    Ok(thinking_event::Entity::find()
        .filter(thinking_event::Column::IncidentId.eq(incident_id))
        .select_only()
        .column_as(thinking_event::Column::Seq.max(), "max")
        .into_tuple::<Option<i32>>()
        .one(db)
        .await?
        .flatten()
        .unwrap_or(0))
}

/// Stores a thinking event with the next free sequence number (at least `from`): two writers
/// of one incident (the Brain's run, correlation notes) take turns through the unique
/// `(incident_id, seq)` index, so the numbers stay gap-free and none is used twice.
async fn append_thinking(
    db: &DatabaseConnection,
    incident_id: i32,
    from: i32,
    kind: &str,
    text: String,
) -> Result<thinking_event::Model, DbErr> {
    let mut seq = from;
    for _ in 0..50 {
        let row = thinking_event::ActiveModel {
            incident_id: Set(incident_id),
            seq: Set(seq),
            kind: Set(kind.to_owned()),
            text: Set(text.clone()),
            at: Set(Utc::now()),
            ..Default::default()
        };
        match row.insert(db).await {
            Ok(stored) => return Ok(stored),
            Err(e)
                if matches!(
                    e.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
            {
                seq = last_seq(db, incident_id).await?.max(seq) + 1;
            }
            Err(e) => return Err(e),
        }
    }
    Err(DbErr::Custom(format!(
        "incident {incident_id}: no free thinking sequence number after 50 tries"
    )))
}

/// The unhealthy dependencies of every alerting service of an incident whose service is
/// `name` (its alerts may span a cascade), each once at its nearest, ranked as `rootCauses`
/// ranks them.
fn ranked_root_causes(
    topology: &Topology,
    name: &str,
    alerts: &[alert::Model],
    firing: &std::collections::HashSet<String>,
) -> Vec<GraphFact> {
    let unhealthy = topology.unhealthy(firing.iter().map(String::as_str));
    let mut subjects: Vec<&str> = vec![name];
    subjects.extend(
        alerts
            .iter()
            .filter_map(|a| a.service.as_deref())
            .filter(|s| topology.contains(s)),
    );
    subjects.sort_unstable();
    subjects.dedup();
    let mut nearest: std::collections::BTreeMap<String, GraphFact> = Default::default();
    for subject in subjects {
        for c in topology
            .root_causes(subject, 3, &unhealthy)
            .unwrap_or_default()
        {
            let fact = GraphFact {
                service: c.service.to_owned(),
                kind: c.kind,
                depth: c.depth,
            };
            nearest
                .entry(fact.service.clone())
                .and_modify(|f| f.depth = f.depth.min(fact.depth))
                .or_insert(fact);
        }
    }
    let mut causes: Vec<GraphFact> = nearest.into_values().collect();
    causes.sort_by(|a, b| {
        (a.kind.root_cause_priority(), a.depth, &a.service).cmp(&(
            b.kind.root_cause_priority(),
            b.depth,
            &b.service,
        ))
    });
    causes
}
