//! On-call work on incidents: acknowledge, assign, comment (`oncall/triage.rs`). Each change is
//! one transaction with its audit event, told on the bus after the commit; the timeline reads
//! them back from the audit trail and the comments.

mod triage;

use std::sync::Arc;

use engine::shield::{Shield, VaultKey};
use sea_orm::{DatabaseConnection, DbErr};

use crate::base::bus::Bus;

/// The longest comment, in bytes.
pub const MAX_COMMENT: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum OncallError {
    #[error("incident {0} not found")]
    NotFound(i32),
    /// Bad input, named.
    #[error("{0}")]
    Invalid(String),
    /// Not in a state that allows it.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

struct Inner {
    db: DatabaseConnection,
    shield: Arc<Shield>,
    key: VaultKey,
    bus: Bus,
}

/// The on-call service; cheap to clone.
#[derive(Clone)]
pub struct Oncall(Arc<Inner>);

impl Oncall {
    pub fn new(db: DatabaseConnection, shield: Arc<Shield>, key: VaultKey, bus: Bus) -> Oncall {
        Oncall(Arc::new(Inner {
            db,
            shield,
            key,
            bus,
        }))
    }
}
