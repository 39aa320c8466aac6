//! The in-process simulated cluster's state, shared by its executor, the chaos controls and
//! the FinOps inventory.

use std::sync::Mutex;

use engine::simcluster::SimCluster;

/// The in-process simulated cluster (the embedded default and the demo).
#[derive(Default)]
pub struct SimulatedCluster(Mutex<SimCluster>);

impl SimulatedCluster {
    pub fn new(cluster: SimCluster) -> SimulatedCluster {
        SimulatedCluster(Mutex::new(cluster))
    }

    /// Reads or changes the cluster (tests, chaos).
    pub fn with<R>(&self, f: impl FnOnce(&mut SimCluster) -> R) -> R {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}
