//! Dry-run: the checks every action passes before it may be signed, and again right before it
//! runs (TOCTOU). Checks read the cluster through [`ClusterView`]; the state fingerprint hashes
//! every reading they used, so any change between approval and execution is visible.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::policy::ActionRequest;

/// What a resource looks like now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceState {
    /// The cluster's resource version: changes with every write.
    pub version: String,
    pub replicas: Option<u32>,
    pub ready: Option<u32>,
}

/// A PodDisruptionBudget covering a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub min_available: u32,
}

/// Read access to a cluster (simulated, Kubernetes, …).
pub trait ClusterView {
    /// May `identity` do `verb` on `resource` in `namespace`?
    fn can(&self, identity: &str, verb: &str, resource: &str, namespace: Option<&str>) -> bool;
    fn resource(
        &self,
        resource: &str,
        name: &str,
        namespace: Option<&str>,
    ) -> Option<ResourceState>;
    fn budget(&self, resource: &str, name: &str, namespace: Option<&str>) -> Option<Budget>;
    /// Draining `node`: every disruption budget its evictions would break, for people.
    fn drain_blockers(&self, _node: &str) -> Vec<String> {
        Vec::new()
    }
    /// The cluster's own verdict on the action submitted as a dry-run (Kubernetes'
    /// `dryRun=All`), when it has one: what it accepted, or why it refused.
    fn admission(&self, _request: &ActionRequest) -> Option<Result<String, String>> {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckName {
    Rbac,
    Syntax,
    ResourceExists,
    Pdb,
    BlastRadius,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DryRunCheck {
    pub name: CheckName,
    pub passed: bool,
    /// For a person: what was checked and what was found.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DryRunReport {
    pub passed: bool,
    pub checks: Vec<DryRunCheck>,
    /// SHA-256 over every reading the checks used.
    pub state_fingerprint: String,
    pub blast_radius: usize,
    /// The target's resource version the checks read (none when it is absent): the
    /// precondition a write carries, so a change after this report makes the write fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_version: Option<String>,
}

/// The API verb and resource an action kind needs.
pub fn verb_and_resource(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        "restart_deployment" | "rollback_deployment" => ("patch", "deployments"),
        "scale_deployment" => ("patch", "deployments/scale"),
        "delete_pod" => ("delete", "pods"),
        "delete_pvc" => ("delete", "persistentvolumeclaims"),
        "cordon_node" | "drain_node" | "resize_node" => ("patch", "nodes"),
        "run_diagnostics" => ("get", "pods"),
        "delete_namespace" => ("delete", "namespaces"),
        _ => return None,
    })
}

/// Whether an action only reads (its API verb is `get`): it changes nothing, so no namespace or
/// label raises its risk and no blast radius refuses it.
pub fn read_only(kind: &str) -> bool {
    verb_and_resource(kind).is_some_and(|(verb, _)| verb == "get")
}

/// The resource kind a target names, for existence and budget lookups. Diagnostics read a
/// workload: their target is the deployment whose pods they read.
fn target_resource(kind: &str) -> &'static str {
    match kind {
        "delete_pod" => "pods",
        "delete_pvc" => "persistentvolumeclaims",
        "cordon_node" | "drain_node" | "resize_node" => "nodes",
        "delete_namespace" => "namespaces",
        _ => "deployments",
    }
}

fn check_params(request: &ActionRequest) -> Result<String, String> {
    let params = &request.params;
    if !(params.is_object() || params.is_null()) {
        return Err("params must be an object".into());
    }
    if request.target.trim().is_empty() {
        return Err("target is empty".into());
    }
    match request.kind.as_str() {
        "scale_deployment" => {
            let replicas = params.get("replicas").and_then(|v| v.as_u64());
            let delta = params.get("replicas_delta").and_then(|v| v.as_i64());
            match (replicas, delta) {
                (Some(r), None) if r <= 1_000 => Ok(format!("scale to {r} replicas")),
                (None, Some(d)) if d != 0 && d.abs() <= 100 => Ok(format!("scale by {d:+}")),
                _ => Err("scale_deployment needs params.replicas (0-1000) or params.replicas_delta (±1-100)".into()),
            }
        }
        "resize_node" => match params.get("node_type").and_then(|v| v.as_str()) {
            Some(t) if !t.trim().is_empty() => Ok(format!("resize {} to {t}", request.target)),
            _ => Err("resize_node needs params.node_type (the node type to move to)".into()),
        },
        kind if verb_and_resource(kind).is_some() => Ok(format!("{kind} {}", request.target)),
        other => Err(format!("unknown action kind `{other}`")),
    }
}

/// The replica count a `scale_deployment` asks for, from `current`: `params.replicas`, or
/// `params.replicas_delta` added to it (clamped to 0–1000).
pub fn wanted_replicas(params: &serde_json::Value, current: u32) -> Result<u32, String> {
    match (
        params.get("replicas").and_then(|v| v.as_u64()),
        params.get("replicas_delta").and_then(|v| v.as_i64()),
    ) {
        (Some(r), _) => u32::try_from(r).map_err(|_| "replicas out of range".to_owned()),
        (None, Some(delta)) => Ok((i64::from(current) + delta).clamp(0, 1_000) as u32),
        _ => Err("scale_deployment needs replicas or replicas_delta".into()),
    }
}

/// What a finished drain says, on any backend.
pub fn drained(node: &str, evicted: &[String]) -> String {
    format!(
        "nodes/{node} cordoned and drained through the Eviction API: {} pod(s) evicted{}",
        evicted.len(),
        if evicted.is_empty() {
            String::new()
        } else {
            format!(" ({})", evicted.join(", "))
        }
    )
}

/// Replicas left ready after the action, if it removes some.
fn ready_after(request: &ActionRequest, state: &ResourceState) -> Option<u32> {
    let ready = state.ready.or(state.replicas)?;
    match request.kind.as_str() {
        "delete_pod" | "drain_node" => Some(ready.saturating_sub(1)),
        "scale_deployment" => wanted_replicas(&request.params, ready).ok(),
        _ => None,
    }
}

/// Runs every check. `blast_radius` is how many services depend on the target (from the
/// topology); above `blast_limit` the action is refused.
pub fn dry_run(
    request: &ActionRequest,
    cluster: &dyn ClusterView,
    identity: &str,
    blast_radius: usize,
    blast_limit: usize,
) -> DryRunReport {
    let namespace = request.namespace.as_deref();
    let mut readings: Vec<String> = vec![format!("action={}:{}", request.kind, request.target)];
    let mut checks = Vec::new();
    let mut check = |name, passed, detail: String| {
        checks.push(DryRunCheck {
            name,
            passed,
            detail,
        })
    };

    let syntax = check_params(request).and_then(|said| match cluster.admission(request) {
        None => Ok(said),
        Some(Ok(accepted)) => Ok(format!(
            "{said}; the API server's dry-run accepted it: {accepted}"
        )),
        Some(Err(refused)) => Err(format!("the API server's dry-run refused it: {refused}")),
    });
    readings.push(format!("syntax={}", syntax.is_ok()));
    check(
        CheckName::Syntax,
        syntax.is_ok(),
        syntax.clone().unwrap_or_else(|e| e),
    );

    match verb_and_resource(&request.kind) {
        Some((verb, resource)) => {
            let allowed = cluster.can(identity, verb, resource, namespace);
            readings.push(format!("rbac={verb}/{resource}={allowed}"));
            let place = namespace.map(|n| format!(" in {n}")).unwrap_or_default();
            check(
                CheckName::Rbac,
                allowed,
                format!(
                    "{identity} {} {verb} {resource}{place}",
                    if allowed { "may" } else { "may not" }
                ),
            );
        }
        None => check(
            CheckName::Rbac,
            false,
            "no permission is known for this action".into(),
        ),
    }

    let resource = target_resource(&request.kind);
    let state = cluster.resource(resource, &request.target, namespace);
    match &state {
        Some(s) => {
            readings.push(format!(
                "resource={resource}/{}@{} replicas={:?} ready={:?}",
                request.target, s.version, s.replicas, s.ready
            ));
            check(
                CheckName::ResourceExists,
                true,
                format!(
                    "{resource}/{} exists (version {})",
                    request.target, s.version
                ),
            );
        }
        None => {
            readings.push(format!("resource={resource}/{}=absent", request.target));
            check(
                CheckName::ResourceExists,
                false,
                format!("{resource}/{} not found", request.target),
            );
        }
    }

    let budget = cluster.budget(resource, &request.target, namespace);
    readings.push(format!("budget={budget:?}"));
    let after = state.as_ref().and_then(|s| ready_after(request, s));
    let blockers = if request.kind == "drain_node" {
        cluster.drain_blockers(&request.target)
    } else {
        Vec::new()
    };
    readings.extend(blockers.iter().map(|b| format!("drain-blocker={b}")));
    match (budget, after) {
        _ if !blockers.is_empty() => check(CheckName::Pdb, false, blockers.join("; ")),
        _ if request.kind == "drain_node" => check(
            CheckName::Pdb,
            true,
            "every eviction of the drain fits its disruption budget".into(),
        ),
        (Some(b), Some(left)) if left < b.min_available => check(
            CheckName::Pdb,
            false,
            format!(
                "would leave {left} ready, below the budget's minimum of {}",
                b.min_available
            ),
        ),
        (Some(b), Some(left)) => check(
            CheckName::Pdb,
            true,
            format!("leaves {left} ready; the budget needs {}", b.min_available),
        ),
        (Some(_), None) => check(CheckName::Pdb, true, "removes no ready replica".into()),
        (None, _) => check(
            CheckName::Pdb,
            true,
            "no PodDisruptionBudget applies".into(),
        ),
    }

    if read_only(&request.kind) {
        readings.push(format!("blast={blast_radius}"));
        checks.push(DryRunCheck {
            name: CheckName::BlastRadius,
            passed: true,
            detail: format!("{blast_radius} dependent service(s); a read changes none of them"),
        });
    } else {
        checks.push(blast_radius_check(&mut readings, blast_radius, blast_limit));
    }

    let mut report = DryRunReport::new(checks, &readings, blast_radius);
    report.target_version = state.map(|s| s.version);
    report
}

/// The BLAST_RADIUS check, the same for every executor; records its reading.
pub fn blast_radius_check(
    readings: &mut Vec<String>,
    blast_radius: usize,
    blast_limit: usize,
) -> DryRunCheck {
    readings.push(format!("blast={blast_radius}"));
    DryRunCheck {
        name: CheckName::BlastRadius,
        passed: blast_radius <= blast_limit,
        detail: format!("{blast_radius} dependent service(s); the limit is {blast_limit}"),
    }
}

impl DryRunReport {
    /// A report from its checks; the fingerprint is SHA-256 over `readings`, one per line.
    /// Other executors (shell, Ansible, MCP) build theirs with this too.
    pub fn new(checks: Vec<DryRunCheck>, readings: &[String], blast_radius: usize) -> DryRunReport {
        let mut hasher = Sha256::new();
        for reading in readings {
            hasher.update(reading.as_bytes());
            hasher.update(b"\n");
        }
        DryRunReport {
            passed: checks.iter().all(|c| c.passed),
            checks,
            state_fingerprint: hex::encode(hasher.finalize()),
            blast_radius,
            target_version: None,
        }
    }
}

/// Why an approved action must not run now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoidReason {
    #[error("the cluster changed since the dry-run (fingerprint {before} → {after})")]
    StateChanged { before: String, after: String },
    #[error("a check now fails: {0}")]
    CheckFails(String),
}

/// TOCTOU: compare the approval's dry-run with the one run right before execution.
pub fn recheck(approved: &DryRunReport, now: &DryRunReport) -> Result<(), VoidReason> {
    if let Some(failed) = now.checks.iter().find(|c| !c.passed) {
        return Err(VoidReason::CheckFails(format!(
            "{:?}: {}",
            failed.name, failed.detail
        )));
    }
    if approved.state_fingerprint != now.state_fingerprint {
        return Err(VoidReason::StateChanged {
            before: approved.state_fingerprint[..12].to_owned(),
            after: now.state_fingerprint[..12].to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
