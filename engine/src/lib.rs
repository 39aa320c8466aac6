//! The leWOOOgo engine: AWOOOI's domain logic, free of IO.
//!
//! Everything here is tested as data. No web framework, database, cache or HTTP client may be
//! a dependency of this crate (see ARCHITECTURE.md); providers that do IO live in `server`.

pub mod alert;
pub mod audit;
pub mod brain;
pub mod correlation;
pub mod dryrun;
pub mod eval;
pub mod finops;
pub mod incident;
pub mod input;
pub mod oncall;
pub mod policy;
pub mod postmortem;
pub mod role;
pub mod shield;
pub mod simcluster;
pub mod stored;
pub mod topology;

pub use role::{Role, UnknownRole};
