//! What carries out an approved action: the [`Executor`] contract the approvals service calls,
//! and the [`Registry`] that chooses one per action kind. The implementations live a floor
//! above, in `crate::executors` (one file each), and are registered there.

use std::sync::Arc;

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
}

/// One backend that carries out actions: the simulated cluster, Kubernetes, shell commands,
/// Ansible playbooks, MCP tools.
#[async_trait::async_trait]
pub trait Executor: Send + Sync + 'static {
    /// Its name, recorded on each execution (`shell`, `kubernetes`, …).
    fn name(&self) -> &'static str;
    /// Whether it carries out actions of `kind`.
    fn handles(&self, kind: &str) -> bool;
    /// The dry-run checks for the real request, taken as AWOOOI's executor identity.
    async fn dry_run(
        &self,
        request: &ActionRequest,
        blast_radius: usize,
        blast_limit: usize,
    ) -> DryRunReport;
    /// Carries out an approved request; the output is for people (it is pseudonymised before
    /// it is stored).
    async fn execute(&self, approval: i64, request: &ActionRequest) -> Result<String, ExecError>;
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
            .find(|e| e.handles(kind))
            .map(|e| e.as_ref())
    }

    /// The in-process simulated cluster, when that is the cluster actions go to.
    pub fn simulated(&self) -> Option<&Arc<SimulatedCluster>> {
        self.simulated.as_ref()
    }
}
