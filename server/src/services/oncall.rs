//! On-call work: acknowledge, assign and comment on incidents (`oncall/triage.rs`); silences
//! and maintenance windows, which ingest consults, with their warnings and digests
//! (`oncall/silences.rs`); schedules, escalation policies and the escalation of unacknowledged
//! incidents (`oncall/escalation.rs`). Each change is one transaction with its audit event, told on the
//! bus after the commit; the timeline reads them back.

pub mod escalation;
pub mod silences;
mod triage;

use std::sync::Arc;

use engine::shield::{Shield, VaultKey};
use sea_orm::{DatabaseConnection, DbErr};

use crate::base::bus::Bus;

/// `[oncall]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OncallConfig {
    /// How often the worker warns about silences that end soon and sends digests (default 15).
    pub check_every_seconds: u64,
}

impl Default for OncallConfig {
    fn default() -> Self {
        OncallConfig {
            check_every_seconds: 15,
        }
    }
}

impl OncallConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=3600).contains(&self.check_every_seconds) {
            return Err("check_every_seconds must be between 1 and 3600".into());
        }
        Ok(())
    }
}

/// The longest comment, in bytes.
pub const MAX_COMMENT: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum OncallError {
    #[error("incident {0} not found")]
    NotFound(i32),
    /// Something else named was not found.
    #[error("{0}")]
    Missing(String),
    /// Bad input, named.
    #[error("{0}")]
    Invalid(String),
    /// Not in a state that allows it.
    #[error("{0}")]
    Conflict(String),
    /// The caller's role may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

struct Inner {
    db: DatabaseConnection,
    shield: Arc<Shield>,
    key: VaultKey,
    bus: Bus,
    /// The notification channels' names (escalation steps may name one).
    channels: Vec<String>,
}

/// The on-call service; cheap to clone.
#[derive(Clone)]
pub struct Oncall(Arc<Inner>);

impl Oncall {
    pub fn new(
        db: DatabaseConnection,
        shield: Arc<Shield>,
        key: VaultKey,
        bus: Bus,
        channels: Vec<String>,
    ) -> Oncall {
        Oncall(Arc::new(Inner {
            db,
            shield,
            key,
            bus,
            channels,
        }))
    }
}
