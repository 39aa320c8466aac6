//! The simulated cluster as an executor: the engine's dry-run over its state, and actions
//! applied to it in memory.

use engine::brain::WorkloadFact;
use engine::dryrun::DryRunReport;
use engine::policy::ActionRequest;
use engine::simcluster::EXECUTOR;

use crate::base::cluster::SimulatedCluster;
use crate::services::approvals::{Blast, ExecError, Executor, Handles};

#[async_trait::async_trait]
impl Executor for SimulatedCluster {
    fn handles(&self) -> Handles {
        Handles::Rest("simulated")
    }

    async fn dry_run(&self, request: &ActionRequest, blast: Blast) -> DryRunReport {
        self.with(|cluster| {
            engine::dryrun::dry_run(request, cluster, EXECUTOR, blast.radius, blast.limit)
        })
    }

    async fn execute(&self, approval: i64, request: &ActionRequest) -> Result<String, ExecError> {
        self.with(|cluster| cluster.apply(approval, request))
            .map_err(ExecError::Failed)
    }

    async fn workloads(
        &self,
        wanted: &[(Option<String>, String)],
    ) -> Option<Vec<Option<WorkloadFact>>> {
        Some(self.with(|cluster| {
            wanted
                .iter()
                .map(|(namespace, name)| cluster.workload(namespace.as_deref(), name))
                .collect()
        }))
    }
}
