//! The in-process simulated cluster's state, shared by its executor, the chaos controls and
//! the FinOps inventory.

use std::sync::Mutex;

use engine::simcluster::SimCluster;

/// A change to make to the simulated cluster later.
pub type Change = Box<dyn FnOnce(&mut SimCluster) + Send>;

/// The in-process simulated cluster (the embedded default and the demo).
#[derive(Default)]
pub struct SimulatedCluster(Mutex<SimCluster>, Mutex<Option<Change>>);

impl SimulatedCluster {
    pub fn new(cluster: SimCluster) -> SimulatedCluster {
        SimulatedCluster(Mutex::new(cluster), Mutex::default())
    }

    /// Chaos at the worst moment, for tests and demos: `change` is made right after the next
    /// dry-run — between a re-check and the write it allows.
    pub fn after_next_dry_run(&self, change: impl FnOnce(&mut SimCluster) + Send + 'static) {
        *self.1.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(change));
    }

    /// The change armed by [`SimulatedCluster::after_next_dry_run`], once.
    pub fn take_after_dry_run(&self) -> Option<Change> {
        self.1.lock().unwrap_or_else(|p| p.into_inner()).take()
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
