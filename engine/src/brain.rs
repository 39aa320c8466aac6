//! The Brain: from a pseudonymised incident and its graph analysis to a narrated investigation
//! (thinking steps) and a structured [`Proposal`]. Providers implement [`Brain`]; the offline,
//! deterministic [`RulesBrain`] is the default and the fallback of every other provider.

use std::future::Future;

pub mod prompt;

use serde::{Deserialize, Serialize};

use crate::topology::ServiceKind;

/// What a thinking step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ThinkingKind {
    Thought,
    ToolCall,
    Observation,
    Conclusion,
}

impl ThinkingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ThinkingKind::Thought => "THOUGHT",
            ThinkingKind::ToolCall => "TOOL_CALL",
            ThinkingKind::Observation => "OBSERVATION",
            ThinkingKind::Conclusion => "CONCLUSION",
        }
    }
}

/// One line of the narrated investigation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThinkingStep {
    pub kind: ThinkingKind,
    pub text: String,
}

/// An alert as the Brain sees it: pseudonymised already.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertFacts {
    pub name: String,
    pub severity: String,
    pub service: Option<String>,
    pub description: Option<String>,
    pub count: i32,
}

/// A service found by the graph analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphFact {
    pub service: String,
    pub kind: ServiceKind,
    pub depth: u32,
}

/// Everything a Brain may look at. Every text is the pseudonymised form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Investigation {
    pub incident_title: String,
    pub service: Option<String>,
    pub service_kind: Option<ServiceKind>,
    pub alerts: Vec<AlertFacts>,
    /// Ranked, likeliest first.
    pub root_causes: Vec<GraphFact>,
    pub blast_radius: Vec<GraphFact>,
    /// Similar past incidents from the knowledge base, most similar first.
    #[serde(default)]
    pub history: Vec<PastIncident>,
    /// The cluster's workloads of the services involved (root causes, alerting services,
    /// blast radius, poolers); `None` when no cluster view is available.
    #[serde(default)]
    pub workloads: Option<Vec<WorkloadFact>>,
    /// What earlier `run_diagnostics` of this incident read, newest first.
    #[serde(default)]
    pub diagnostics: Vec<DiagnosticsFact>,
}

/// A workload (deployment) as the cluster shows it. Its name is the service's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadFact {
    pub name: String,
    pub replicas: u32,
    pub ready: u32,
    /// Its current revision.
    pub revision: u32,
    /// An earlier revision exists to roll back to.
    pub can_roll_back: bool,
    /// Its current revision rolled out within the last hour.
    pub recent_rollout: bool,
    /// Container restarts over its pods.
    pub restarts: u32,
    /// Some pod of it is in `CrashLoopBackOff`.
    pub crash_looping: bool,
}

/// The output of one finished `run_diagnostics` (pseudonymised, bounded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnosticsFact {
    pub target: String,
    pub output: String,
}

impl Investigation {
    /// The cluster's workload `name`: `Some(None)` when the cluster has none of that name,
    /// `None` when there is no cluster view.
    pub fn workload(&self, name: &str) -> Option<Option<&WorkloadFact>> {
        self.workloads
            .as_ref()
            .map(|all| all.iter().find(|w| w.name == name))
    }

    /// Whether `name` runs in the cluster, as far as the view tells (no view: assumed).
    pub fn runs(&self, name: &str) -> bool {
        !matches!(self.workload(name), Some(None))
    }
}

/// A past incident like this one, and the fix tried on it (pseudonymised).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastIncident {
    pub incident_id: i32,
    pub title: String,
    pub root_cause: Option<String>,
    /// `kind target` of the fix.
    pub action: Option<String>,
    /// Whether that fix worked.
    pub worked: Option<bool>,
}

impl PastIncident {
    fn fix(&self) -> Option<(&str, &str)> {
        self.action.as_deref()?.split_once(' ')
    }
}

/// One proposed remediation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposedAction {
    /// e.g. `restart_deployment`, `scale_deployment`, `rollback_deployment`.
    pub kind: String,
    pub target: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub params: serde_json::Value,
    pub rationale: String,
}

/// The Brain's conclusion. Its JSON form is [`PROPOSAL_SCHEMA`]: typed parsing (unknown
/// fields refused) plus [`Proposal::validate`] enforce it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    pub summary: String,
    pub root_cause: Option<String>,
    pub actions: Vec<ProposedAction>,
    /// 0.0–1.0.
    pub confidence: f64,
}

/// The JSON Schema of a proposal, as given to LLM providers.
pub const PROPOSAL_SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["summary", "root_cause", "actions", "confidence"],
  "properties": {
    "summary": {"type": "string", "minLength": 1},
    "root_cause": {"type": ["string", "null"]},
    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    "actions": {"type": "array", "items": {
      "type": "object",
      "additionalProperties": false,
      "required": ["kind", "target", "rationale"],
      "properties": {
        "kind": {"enum": ["restart_deployment", "scale_deployment", "rollback_deployment",
                          "delete_pod", "cordon_node", "drain_node", "delete_pvc", "run_diagnostics"]},
        "target": {"type": "string", "minLength": 1},
        "namespace": {"type": ["string", "null"]},
        "params": {"type": "object"},
        "rationale": {"type": "string"}
      }
    }}
  }
}"#;

/// Action kinds a proposal may contain.
pub const ACTION_KINDS: &[&str] = &[
    "restart_deployment",
    "scale_deployment",
    "rollback_deployment",
    "delete_pod",
    "cordon_node",
    "drain_node",
    "delete_pvc",
    "run_diagnostics",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    #[error("proposal: {0}")]
    Invalid(String),
}

/// Kinds whose target is a workload (a deployment), which the cluster view can vouch for.
const ON_WORKLOADS: &[&str] = &[
    "restart_deployment",
    "scale_deployment",
    "rollback_deployment",
    "run_diagnostics",
];

impl Proposal {
    /// The proposal without actions on workloads the investigation's cluster view lacks (their
    /// dry-run could not pass), and those left out.
    pub fn runnable(mut self, input: &Investigation) -> (Proposal, Vec<ProposedAction>) {
        let (kept, dropped) = std::mem::take(&mut self.actions)
            .into_iter()
            .partition(|a| !ON_WORKLOADS.contains(&a.kind.as_str()) || input.runs(&a.target));
        self.actions = kept;
        (self, dropped)
    }

    /// The checks every proposal passes before it is stored, whoever wrote it.
    pub fn validate(&self) -> Result<(), ProposalError> {
        let bad = |m: String| Err(ProposalError::Invalid(m));
        if self.summary.trim().is_empty() {
            return bad("summary is empty".into());
        }
        if !(0.0..=1.0).contains(&self.confidence) || self.confidence.is_nan() {
            return bad(format!("confidence {} is outside 0..1", self.confidence));
        }
        for (i, action) in self.actions.iter().enumerate() {
            if !ACTION_KINDS.contains(&action.kind.as_str()) {
                return bad(format!(
                    "actions[{i}].kind `{}` is not a known action",
                    action.kind
                ));
            }
            if action.target.trim().is_empty() {
                return bad(format!("actions[{i}].target is empty"));
            }
            if !(action.params.is_object() || action.params.is_null()) {
                return bad(format!("actions[{i}].params must be an object"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrainError {
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    #[error("provider answered something unusable: {0}")]
    BadOutput(String),
}

/// Tokens a provider reported for one investigation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// What an investigation produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Investigated {
    pub proposal: Proposal,
    pub usage: Usage,
    /// Which brain's proposal this is (`rules` after a fallback).
    pub brain: String,
}

/// A reasoning provider. `emit` receives thinking steps as they happen.
pub trait Brain: Send + Sync {
    fn name(&self) -> &str;
    fn investigate(
        &self,
        input: &Investigation,
        emit: &mut (dyn FnMut(ThinkingStep) + Send),
    ) -> impl Future<Output = Result<Investigated, BrainError>> + Send;
}

/// Offline and deterministic: reasons from the root cause's kind and the alerts' wording to a
/// playbook remediation, narrating every step.
#[derive(Debug, Clone, Default)]
pub struct RulesBrain;

/// Whether `text` (lower case) says one of `words`: a word starting with `=` must stand
/// alone (`=lag` is not in "flag"), the others may be part of a longer one.
fn says(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| match w.strip_prefix('=') {
        Some(alone) => text
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|token| token == alone),
        None => text.contains(w),
    })
}

/// What is known about `service` in words: its alerts' names and descriptions and what its
/// diagnostics read (lower case). `None`: the whole incident's.
fn evidence(input: &Investigation, service: Option<&str>) -> String {
    let mut text = String::new();
    for a in &input.alerts {
        if service.is_none() || a.service.as_deref() == service {
            text.push_str(&a.name.to_ascii_lowercase());
            text.push(' ');
            text.push_str(
                &a.description
                    .as_deref()
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
            );
            text.push('\n');
        }
    }
    for d in &input.diagnostics {
        if service.is_none_or(|s| d.target == s) {
            text.push_str(&d.output.to_ascii_lowercase());
            text.push('\n');
        }
    }
    text
}

const EXHAUSTED: &[&str] = &[
    "too many clients",
    "too many connections",
    "connection pool",
    "exhaust",
    "remaining connection slots",
    "max_connections",
    "connection limit",
    "connections in use",
    "out of connections",
];
const CRASH_LOOP: &[&str] = &[
    "crashloop",
    "crash loop",
    "crash-loop",
    "back-off restarting",
];
const ROLLOUT: &[&str] = &[
    "after deploy",
    "rollout",
    "rolled out",
    "new revision",
    "new version",
];
const MEMORY: &[&str] = &[
    "oomkill",
    "oom-kill",
    "oom kill",
    "=oom",
    "out of memory",
    "outofmemory",
    "memory pressure",
    "memory usage",
    "memory limit",
    "heap",
];
const BACKLOG: &[&str] = &[
    "backlog",
    "=lag",
    "lagging",
    "queue depth",
    "queue size",
    "messages ready",
    "unacked",
];
/// Memory pressure in words: an OOM kill, or memory named with how full it is (a line that
/// says "memory" and "limit", "working set", "usage"…), never a pointer fault's "invalid
/// memory address".
fn memory_pressure(text: &str) -> bool {
    says(text, MEMORY)
        || text.lines().any(|line| {
            line.contains("memory")
                && !line.contains("invalid memory address")
                && says(
                    line,
                    &[
                        "limit",
                        "working set",
                        "=rss",
                        "pressure",
                        "usage",
                        "near",
                        "high",
                    ],
                )
        })
}

/// Names that say a workload pools connections in front of a database.
const POOLER: &[&str] = &["pooler", "bouncer", "pgpool", "proxysql", "odyssey"];
/// Names that say a workload consumes a queue.
const CONSUMER: &[&str] = &[
    "consumer",
    "worker",
    "processor",
    "master",
    "listener",
    "subscriber",
    "handler",
];

/// A playbook's choice.
struct Plan {
    actions: Vec<ProposedAction>,
    confidence: f64,
    why: String,
}

/// The observation on the cluster's workloads: the target's state, and what is missing.
fn describe_workloads(input: &Investigation, target: &str) -> String {
    match input.workload(target) {
        Some(Some(w)) => format!(
            "{}: {}/{} ready, revision {}{}{}, {} restart(s){}.",
            w.name,
            w.ready,
            w.replicas,
            w.revision,
            if w.recent_rollout {
                ", rolled out within the hour"
            } else {
                ""
            },
            if w.can_roll_back {
                ", an earlier revision exists"
            } else {
                ""
            },
            w.restarts,
            if w.crash_looping {
                ", crash-looping"
            } else {
                ""
            },
        ),
        _ => format!("The cluster has no workload {target}."),
    }
}

/// The remediation for the root cause `target` (of `kind`), from its kind, what the alerts and
/// diagnostics say, and what the cluster runs.
fn playbook(input: &Investigation, target: &str, kind: Option<ServiceKind>) -> Plan {
    let all = evidence(input, None);
    let own = evidence(input, Some(target));
    let workload = input.workload(target).flatten();
    let plan = |kind: &str,
                on: &str,
                params: serde_json::Value,
                rationale: &str,
                confidence,
                why: String| Plan {
        actions: vec![action(kind, on, params, rationale)],
        confidence,
        why,
    };
    if kind == Some(ServiceKind::Database) && says(&all, EXHAUSTED) {
        // Its pooler: a workload in front of it (a direct dependent) that pools connections.
        let named = format!("{target}-pooler");
        let pooler = input
            .blast_radius
            .iter()
            .filter(|a| a.depth == 1 && says(&a.service.to_ascii_lowercase(), POOLER))
            .map(|a| a.service.clone())
            .chain((input.workloads.is_some()).then_some(named))
            .find(|p| input.workload(p).is_none_or(|w| w.is_some()));
        return match pooler {
            Some(pooler) => plan(
                "restart_deployment",
                &pooler,
                serde_json::json!({}),
                "connection exhaustion on a database: restart its pooler to drop leaked connections",
                0.85,
                format!("{target} is a database out of connections; {pooler} pools them"),
            ),
            None => plan(
                "restart_deployment",
                target,
                serde_json::json!({}),
                "connection exhaustion on a database with no pooler: restart it to drop the leaked connections",
                0.75,
                format!("{target} is a database out of connections, with no pooler in front of it"),
            ),
        };
    }
    let crash_looping = says(&own, CRASH_LOOP) || workload.is_some_and(|w| w.crash_looping);
    if crash_looping {
        let rolled_out = match workload {
            Some(w) => w.recent_rollout && w.can_roll_back,
            None => input.workloads.is_none() && says(&own, ROLLOUT),
        };
        if rolled_out {
            return plan(
                "rollback_deployment",
                target,
                serde_json::json!({"to_revision": "previous"}),
                "crash loop after a rollout: roll back to the previous revision",
                0.8,
                format!("{target} crash-loops since its latest rollout"),
            );
        }
        if memory_pressure(&own) {
            return plan(
                "scale_deployment",
                target,
                serde_json::json!({"replicas_delta": 1}),
                "crash loop out of memory, no recent rollout: add a replica to spread the load",
                0.7,
                format!("{target} crash-loops out of memory"),
            );
        }
    }
    if matches!(kind, Some(ServiceKind::Cache | ServiceKind::Database)) {
        return plan(
            "restart_deployment",
            target,
            serde_json::json!({}),
            "an unhealthy stateful dependency: restart it after checking replication",
            0.55,
            format!(
                "{target} ({}) is the likeliest root cause",
                kind.map(|k| format!("{k:?}").to_ascii_lowercase())
                    .unwrap_or_else(|| "service".into())
            ),
        );
    }
    if memory_pressure(&own) {
        return plan(
            "scale_deployment",
            target,
            serde_json::json!({"replicas_delta": 1}),
            "memory pressure: add a replica to spread the load",
            0.7,
            format!("{target} is under memory pressure"),
        );
    }
    if kind == Some(ServiceKind::Queue) {
        // Its consumers are among its direct dependents: the one whose own alerts say it
        // lags, else one named like a consumer, else the first that runs.
        let dependents: Vec<&str> = input
            .blast_radius
            .iter()
            .filter(|a| a.depth == 1 && input.runs(&a.service))
            .map(|a| a.service.as_str())
            .collect();
        let consumer = dependents
            .iter()
            .find(|d| says(&evidence(input, Some(d)), BACKLOG))
            .or_else(|| {
                dependents
                    .iter()
                    .find(|d| says(&d.to_ascii_lowercase(), CONSUMER))
            })
            .or(dependents.first());
        return match consumer {
            Some(consumer) => plan(
                "scale_deployment",
                consumer,
                serde_json::json!({"replicas_delta": 2}),
                "queue backlog: scale its consumers",
                0.65,
                format!("{target} is backing up; {consumer} consumes it"),
            ),
            None => Plan {
                actions: Vec::new(),
                confidence: 0.3,
                why: format!("{target} is backing up, but no consumer of it runs in the cluster"),
            },
        };
    }
    if says(&own, BACKLOG) {
        return plan(
            "scale_deployment",
            target,
            serde_json::json!({"replicas_delta": 2}),
            "it falls behind its queue: scale it",
            0.6,
            format!("{target} lags behind its queue"),
        );
    }
    if input.diagnostics.iter().any(|d| d.target == target) {
        return Plan {
            actions: Vec::new(),
            confidence: 0.3,
            why: format!(
                "the diagnostics of {target} were read and match no playbook; a person decides the next step"
            ),
        };
    }
    plan(
        "run_diagnostics",
        target,
        serde_json::json!({}),
        "no playbook matches: gather diagnostics before acting",
        0.3,
        format!("no playbook matches {target}; diagnostics first"),
    )
}

fn action(kind: &str, target: &str, params: serde_json::Value, rationale: &str) -> ProposedAction {
    ProposedAction {
        kind: kind.into(),
        target: target.into(),
        namespace: None,
        params,
        rationale: rationale.into(),
    }
}

impl RulesBrain {
    /// The investigation, synchronously: steps and the proposal.
    pub fn reason(&self, input: &Investigation) -> (Vec<ThinkingStep>, Proposal) {
        let mut steps = Vec::new();
        let mut say = |kind, text: String| steps.push(ThinkingStep { kind, text });
        let subject = input
            .service
            .clone()
            .unwrap_or_else(|| "an unnamed service".into());
        let worst = input
            .alerts
            .iter()
            .map(|a| a.severity.as_str())
            .find(|s| *s == "CRITICAL")
            .unwrap_or("WARNING");
        say(
            ThinkingKind::Thought,
            format!(
                "Incident \"{}\": {} alert(s) on {subject}, worst severity {worst}.",
                input.incident_title,
                input.alerts.len()
            ),
        );
        say(
            ThinkingKind::ToolCall,
            format!("rootCauses(service: \"{subject}\", maxDepth: 3)"),
        );
        if input.root_causes.is_empty() {
            say(
                ThinkingKind::Observation,
                "No unhealthy dependency within 3 hops.".into(),
            );
        } else {
            let list: Vec<String> = input
                .root_causes
                .iter()
                .map(|c| format!("{} ({:?}, depth {})", c.service, c.kind, c.depth))
                .collect();
            say(
                ThinkingKind::Observation,
                format!("Unhealthy dependencies: {}.", list.join(", ")),
            );
        }
        say(
            ThinkingKind::ToolCall,
            format!("blastRadius(service: \"{subject}\", maxDepth: 3)"),
        );
        let affected: Vec<&str> = input
            .blast_radius
            .iter()
            .map(|a| a.service.as_str())
            .collect();
        say(
            ThinkingKind::Observation,
            if affected.is_empty() {
                "Nothing else depends on it.".into()
            } else {
                format!(
                    "{} service(s) break with it: {}.",
                    affected.len(),
                    affected.join(", ")
                )
            },
        );

        let cause = input.root_causes.first();
        let (target, kind) = match cause {
            Some(c) => (c.service.clone(), Some(c.kind)),
            None => (subject.clone(), input.service_kind),
        };
        if let Some(workloads) = &input.workloads {
            say(
                ThinkingKind::ToolCall,
                format!("cluster(workloads of {} service(s))", workloads.len()),
            );
            say(
                ThinkingKind::Observation,
                describe_workloads(input, &target),
            );
        }
        let Plan {
            actions,
            confidence,
            why,
        } = playbook(input, &target, kind);
        say(ThinkingKind::Thought, format!("Playbook: {why}."));
        let (actions, confidence) = learn(&input.history, actions, confidence, &mut say);
        let (actions, missing): (Vec<ProposedAction>, Vec<ProposedAction>) = actions
            .into_iter()
            .partition(|a| !ON_WORKLOADS.contains(&a.kind.as_str()) || input.runs(&a.target));
        for gone in &missing {
            say(
                ThinkingKind::Thought,
                format!(
                    "Not proposing {} {}: the cluster has no workload {}, so its dry-run could not pass.",
                    gone.kind, gone.target, gone.target
                ),
            );
        }
        let summary = match cause {
            Some(c) => format!(
                "{} is the likeliest root cause of \"{}\"; {} service(s) in the blast radius.",
                c.service,
                input.incident_title,
                input.blast_radius.len()
            ),
            None => format!(
                "No unhealthy dependency explains \"{}\"; the trouble is in {subject} itself.",
                input.incident_title
            ),
        };
        let proposal = Proposal {
            summary: summary.clone(),
            root_cause: cause.map(|c| c.service.clone()),
            actions,
            confidence,
        };
        let plan: Vec<String> = proposal
            .actions
            .iter()
            .map(|a| format!("{} {}", a.kind, a.target))
            .collect();
        say(
            ThinkingKind::Conclusion,
            if plan.is_empty() {
                format!("{summary} Proposed: no action ({why}).")
            } else {
                format!(
                    "{summary} Proposed: {} (confidence {:.2}).",
                    plan.join("; "),
                    confidence
                )
            },
        );
        (steps, proposal)
    }
}

/// Kinds a past fix may be re-proposed as without parameters of its own.
fn reusable(kind: &str) -> bool {
    ACTION_KINDS.contains(&kind) && kind != "scale_deployment"
}

/// The flywheel: a fix that worked on the most similar past incident goes first; a fix that
/// failed there (and did not work on a more similar one) is not proposed first.
fn learn(
    history: &[PastIncident],
    mut actions: Vec<ProposedAction>,
    mut confidence: f64,
    say: &mut impl FnMut(ThinkingKind, String),
) -> (Vec<ProposedAction>, f64) {
    if history.is_empty() {
        return (actions, confidence);
    }
    say(
        ThinkingKind::ToolCall,
        "knowledge(similar past incidents)".into(),
    );
    let seen: Vec<String> = history
        .iter()
        .map(|p| {
            let fix = match (&p.action, p.worked) {
                (Some(a), Some(true)) => format!("{a} worked"),
                (Some(a), Some(false)) => format!("{a} failed"),
                _ => "no fix recorded".into(),
            };
            format!("#{} \"{}\" ({fix})", p.incident_id, p.title)
        })
        .collect();
    say(
        ThinkingKind::Observation,
        format!("Similar past incidents: {}.", seen.join("; ")),
    );
    // The most similar incident with a verdict on a fix decides.
    let Some(lesson) = history
        .iter()
        .find(|p| p.worked.is_some() && p.fix().is_some())
    else {
        return (actions, confidence);
    };
    let (kind, target) = lesson.fix().expect("checked");
    let same = |a: &ProposedAction| a.kind == kind && a.target == target;
    if lesson.worked == Some(true) && reusable(kind) {
        let reused = match actions.iter().position(same) {
            Some(i) => actions.remove(i),
            None => action(
                kind,
                target,
                serde_json::json!({}),
                "worked on a similar past incident",
            ),
        };
        actions.insert(0, reused);
        confidence = confidence.max(0.9);
        say(
            ThinkingKind::Thought,
            format!(
                "Learned from incident #{}: {kind} {target} worked there; proposing it first.",
                lesson.incident_id
            ),
        );
    } else if lesson.worked == Some(false) && actions.first().is_some_and(same) {
        let failed = actions.remove(0);
        if actions.is_empty() {
            actions.push(action(
                "run_diagnostics",
                target,
                serde_json::json!({}),
                "the usual fix failed on a similar past incident: diagnose first",
            ));
        }
        actions.push(failed);
        confidence = confidence.min(0.5);
        say(
            ThinkingKind::Thought,
            format!(
                "Learned from incident #{}: {kind} {target} failed there; not proposing it first.",
                lesson.incident_id
            ),
        );
    }
    (actions, confidence)
}

impl Brain for RulesBrain {
    fn name(&self) -> &str {
        "rules"
    }

    async fn investigate(
        &self,
        input: &Investigation,
        emit: &mut (dyn FnMut(ThinkingStep) + Send),
    ) -> Result<Investigated, BrainError> {
        let (steps, proposal) = self.reason(input);
        for step in steps {
            emit(step);
        }
        Ok(Investigated {
            proposal,
            usage: Usage::default(),
            brain: "rules".into(),
        })
    }
}

#[cfg(test)]
mod tests;
