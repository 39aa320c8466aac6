//! Floor 2: the services. Each imports only from `base` and from services below it (no
//! circle); a service tells one above it by publishing on the bus or through a small trait it
//! owns.

pub mod analysis;
pub mod approvals;
pub mod archive;
pub mod auth;
pub mod finops;
pub mod ingest;
pub mod knowledge;
pub mod notify;
pub mod oncall;
pub mod timeline;
