//! The states of rows that only storage knows (the domain's states are `engine`'s), stored as
//! text and read back strictly.

use serde::{Deserialize, Serialize};

/// Where an approval's one execution stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
        }
    }
}

engine::stored_as_text!(
    ExecutionStatus,
    [
        ExecutionStatus::Running,
        ExecutionStatus::Succeeded,
        ExecutionStatus::Failed
    ]
);

/// Where one notification delivery stands: it leaves `Pending` only as `Delivered` or `Dead`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "PENDING",
            DeliveryStatus::Delivered => "DELIVERED",
            DeliveryStatus::Dead => "DEAD",
        }
    }
}

engine::stored_as_text!(
    DeliveryStatus,
    [
        DeliveryStatus::Pending,
        DeliveryStatus::Delivered,
        DeliveryStatus::Dead
    ]
);

/// What a fix did, as the knowledge base records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FixOutcome {
    Worked,
    Failed,
}

impl FixOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            FixOutcome::Worked => "WORKED",
            FixOutcome::Failed => "FAILED",
        }
    }
}

engine::stored_as_text!(FixOutcome, [FixOutcome::Worked, FixOutcome::Failed]);

/// What an archive object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ArchiveKind {
    Postmortem,
    AuditSegment,
    KnowledgeSnapshot,
}

impl ArchiveKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveKind::Postmortem => "POSTMORTEM",
            ArchiveKind::AuditSegment => "AUDIT_SEGMENT",
            ArchiveKind::KnowledgeSnapshot => "KNOWLEDGE_SNAPSHOT",
        }
    }
}

engine::stored_as_text!(
    ArchiveKind,
    [
        ArchiveKind::Postmortem,
        ArchiveKind::AuditSegment,
        ArchiveKind::KnowledgeSnapshot
    ]
);

/// Where one archive object stands: it leaves `Pending` only as `Uploaded` (an unreachable
/// store delays it, never drops it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UploadStatus {
    Pending,
    Uploaded,
}

impl UploadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadStatus::Pending => "PENDING",
            UploadStatus::Uploaded => "UPLOADED",
        }
    }
}

engine::stored_as_text!(
    UploadStatus,
    [UploadStatus::Pending, UploadStatus::Uploaded]
);

/// A one-off silence, or a maintenance window (a silence that recurs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SilenceKind {
    Silence,
    Maintenance,
}

impl SilenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceKind::Silence => "SILENCE",
            SilenceKind::Maintenance => "MAINTENANCE",
        }
    }
}

engine::stored_as_text!(
    SilenceKind,
    [SilenceKind::Silence, SilenceKind::Maintenance]
);

/// Where an incident's escalation stands: it pages while `Active`, and stops for good at an
/// acknowledgement, a resolution, or after its last step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EscalationStatus {
    Active,
    Acknowledged,
    Resolved,
    Exhausted,
}

impl EscalationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationStatus::Active => "ACTIVE",
            EscalationStatus::Acknowledged => "ACKNOWLEDGED",
            EscalationStatus::Resolved => "RESOLVED",
            EscalationStatus::Exhausted => "EXHAUSTED",
        }
    }
}

engine::stored_as_text!(
    EscalationStatus,
    [
        EscalationStatus::Active,
        EscalationStatus::Acknowledged,
        EscalationStatus::Resolved,
        EscalationStatus::Exhausted
    ]
);
