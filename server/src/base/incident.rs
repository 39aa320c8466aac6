//! The incident: its status and every change of its row.

/// Incident lifecycle states (API.md).
pub mod status {
    pub const OPEN: &str = "OPEN";
    pub const ANALYZING: &str = "ANALYZING";
    pub const AWAITING_APPROVAL: &str = "AWAITING_APPROVAL";
    pub const RESOLVED: &str = "RESOLVED";
    /// Absorbed by another incident (`merged_into`) that shares its root cause.
    pub const MERGED: &str = "MERGED";
}
