//! What carries out an approved action: the [`Executor`] contract the approvals service calls,
//! and the [`Registry`] that chooses one per action kind. The implementations live a floor
//! above, in `crate::executors` (one file each), and are registered there.

use std::sync::Arc;

use engine::brain::WorkloadFact;
use engine::dryrun::DryRunReport;
use engine::policy::ActionRequest;

use crate::base::cluster::SimulatedCluster;

/// Why an executor did not carry out an action. The text is for people: it is pseudonymised
/// and stored as the execution's output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// Refused before anything ran: not allowed, unknown, or malformed.
    #[error("{0}")]
    Refused(String),
    /// It could not be started or reached (a missing binary, a server that does not answer).
    #[error("{0}")]
    Unreachable(String),
    /// It did not finish in time and was stopped.
    #[error("{0}")]
    TimedOut(String),
    /// It ran and failed; the text is what it said.
    #[error("{0}")]
    Failed(String),
    /// The target changed after the re-check, so the write was refused and nothing was done:
    /// the approval ends VOIDED with this reason.
    #[error("{0}")]
    Moved(String),
}

/// Which action kinds an executor carries out, and its name on each execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handles {
    /// Kinds `<name>:<what>` (`shell:restart-nginx`, `mcp:ops/flush`).
    Prefix(&'static str),
    /// Every kind no executor before it takes (the cluster's verbs).
    Rest(&'static str),
}

impl Handles {
    /// The executor's name, recorded on each execution (`shell`, `kubernetes`, …).
    pub fn name(self) -> &'static str {
        match self {
            Handles::Prefix(name) | Handles::Rest(name) => name,
        }
    }

    /// Whether `kind` is one of these.
    pub fn kind(self, kind: &str) -> bool {
        match self {
            Handles::Prefix(name) => kind
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(':')),
            Handles::Rest(_) => true,
        }
    }
}

/// How far an action reaches: the services depending on its target (from the topology) and
/// the most the policy allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blast {
    pub radius: usize,
    pub limit: usize,
}

/// One backend that carries out actions: the simulated cluster, Kubernetes, shell commands,
/// Ansible playbooks, MCP tools.
#[async_trait::async_trait]
pub trait Executor: Send + Sync + 'static {
    /// What it carries out.
    fn handles(&self) -> Handles;
    /// The dry-run checks for the real request, taken as AWOOOI's executor identity.
    async fn dry_run(&self, request: &ActionRequest, blast: Blast) -> DryRunReport;
    /// Carries out an approved request; the output is for people (it is pseudonymised before
    /// it is stored). `seen` is the re-check's report: an executor whose backend can make the
    /// write conditional on it (the simulated cluster's state, Kubernetes' `resourceVersion`)
    /// does, and answers [`ExecError::Moved`] when the state moved since.
    async fn execute(
        &self,
        approval: i64,
        request: &ActionRequest,
        seen: &DryRunReport,
    ) -> Result<String, ExecError>;
    /// What it can tell of the workloads (deployments) `(namespace, name)`, one answer each
    /// (`None`: it has no such workload); `None` overall when it runs no workloads or cannot
    /// tell now. Reads only.
    async fn workloads(
        &self,
        _wanted: &[(Option<String>, String)],
    ) -> Option<Vec<Option<WorkloadFact>>> {
        None
    }
}

/// The executors in the order they are asked: the first that handles a kind takes it.
#[derive(Clone)]
pub struct Registry {
    executors: Vec<Arc<dyn Executor>>,
    simulated: Option<Arc<SimulatedCluster>>,
}

impl Registry {
    /// `executors` in the order they are asked; the last should take every kind the others
    /// leave (the cluster). `simulated` is the in-process cluster, when that is the cluster.
    pub fn new(
        executors: Vec<Arc<dyn Executor>>,
        simulated: Option<Arc<SimulatedCluster>>,
    ) -> Registry {
        Registry {
            executors,
            simulated,
        }
    }

    /// The executor of `kind`, if any handles it.
    pub fn route(&self, kind: &str) -> Option<&dyn Executor> {
        self.executors
            .iter()
            .find(|e| e.handles().kind(kind))
            .map(|e| e.as_ref())
    }

    /// The in-process simulated cluster, when that is the cluster actions go to.
    pub fn simulated(&self) -> Option<&Arc<SimulatedCluster>> {
        self.simulated.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::Handles;

    #[test]
    fn a_prefix_takes_only_its_own_kinds() {
        let shell = Handles::Prefix("shell");
        assert!(shell.kind("shell:restart-nginx"));
        assert!(!shell.kind("shellfish:x"));
        assert!(!shell.kind("restart_deployment"));
        assert!(Handles::Rest("simulated").kind("restart_deployment"));
        assert_eq!(shell.name(), "shell");
    }
}
