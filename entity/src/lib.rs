//! SeaORM entities: one file per table, nothing but the mapping.

pub mod prelude;

pub mod alert;
pub mod analysis;
pub mod api_token;
pub mod approval;
pub mod approval_signature;
pub mod archive_object;
pub mod audit_event;
pub mod escalation;
pub mod escalation_policy;
pub mod execution;
pub mod finops_report;
pub mod incident;
pub mod incident_comment;
pub mod incident_vault;
pub mod incident_vault_segment;
pub mod ingest_receipt;
pub mod knowledge_entry;
pub mod knowledge_outbox;
pub mod notification_delivery;
pub mod notification_event;
pub mod postmortem;
pub mod schedule;
pub mod schedule_override;
pub mod session;
pub mod silence;
pub mod silenced_alert;
pub mod states;
pub mod thinking_event;
pub mod trust_score;
pub mod user;
