//! The simulated cluster as an executor: the engine's dry-run over its state, and actions
//! applied to it in memory.

use engine::brain::WorkloadFact;
use engine::dryrun::DryRunReport;
use engine::policy::ActionRequest;
use engine::simcluster::{ApplyError, EXECUTOR};

use crate::base::cluster::SimulatedCluster;
use crate::services::approvals::{Blast, ExecError, Executor, Handles};

#[async_trait::async_trait]
impl Executor for SimulatedCluster {
    fn handles(&self) -> Handles {
        Handles::Rest("simulated")
    }

    async fn dry_run(&self, request: &ActionRequest, blast: Blast) -> DryRunReport {
        let report = self.with(|cluster| {
            engine::dryrun::dry_run(request, cluster, EXECUTOR, blast.radius, blast.limit)
        });
        if let Some(change) = self.take_after_dry_run() {
            self.with(change);
        }
        report
    }

    /// Applied under the same hold on the state as a fresh reading of it: only as `seen`.
    async fn execute(
        &self,
        approval: i64,
        request: &ActionRequest,
        seen: &DryRunReport,
    ) -> Result<String, ExecError> {
        self.with(|cluster| cluster.apply_as_seen(approval, request, seen))
            .map_err(|e| match e {
                ApplyError::Moved(reason) => ExecError::Moved(reason),
                ApplyError::Failed(why) => ExecError::Failed(why),
            })
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
