//! The incident's lifecycle (PRODUCT.md): OPEN → ANALYZING → AWAITING_APPROVAL → MITIGATING
//! → RESOLVED, or MERGED into another incident that shares its root cause.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IncidentStatus {
    /// Alerts arrived; no analysis has claimed it yet.
    Open,
    /// One replica's analysis holds it.
    Analyzing,
    /// A proposal waits for signatures.
    AwaitingApproval,
    /// A fix ran; the alerts have not all resolved yet.
    Mitigating,
    /// Every alert resolved (or a FinOps fix ran).
    Resolved,
    /// Absorbed by another incident (`merged_into`) that shares its root cause.
    Merged,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "OPEN",
            IncidentStatus::Analyzing => "ANALYZING",
            IncidentStatus::AwaitingApproval => "AWAITING_APPROVAL",
            IncidentStatus::Mitigating => "MITIGATING",
            IncidentStatus::Resolved => "RESOLVED",
            IncidentStatus::Merged => "MERGED",
        }
    }

    /// Still being worked on: alerts may join it.
    pub fn is_active(self) -> bool {
        !matches!(self, IncidentStatus::Resolved | IncidentStatus::Merged)
    }
}

crate::stored_as_text!(
    IncidentStatus,
    [
        IncidentStatus::Open,
        IncidentStatus::Analyzing,
        IncidentStatus::AwaitingApproval,
        IncidentStatus::Mitigating,
        IncidentStatus::Resolved,
        IncidentStatus::Merged
    ]
);
