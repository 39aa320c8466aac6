//! An approval as read from storage, with its signatures and execution, and what the policy
//! and the notifications make of it.

use engine::dryrun::DryRunReport;
use engine::policy::{self, ActionRequest, Signature};
use entity::{approval, approval_signature, execution};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

use crate::services::notify::ApprovalFacts;

/// An approval with everything the card shows.
#[derive(Debug, Clone)]
pub struct ApprovalView {
    pub row: approval::Model,
    pub signatures: Vec<approval_signature::Model>,
    pub execution: Option<execution::Model>,
}

impl ApprovalView {
    /// Approval `id` with its signatures and execution, as `conn` sees them.
    pub async fn load_in(
        conn: &impl ConnectionTrait,
        id: i32,
    ) -> Result<Option<ApprovalView>, DbErr> {
        let Some(row) = approval::Entity::find_by_id(id).one(conn).await? else {
            return Ok(None);
        };
        let signatures = approval_signature::Entity::find()
            .filter(approval_signature::Column::ApprovalId.eq(id))
            .order_by_asc(approval_signature::Column::Id)
            .all(conn)
            .await?;
        let execution = execution::Entity::find()
            .filter(execution::Column::ApprovalId.eq(id))
            .one(conn)
            .await?;
        Ok(Some(ApprovalView {
            row,
            signatures,
            execution,
        }))
    }

    pub fn dry_run(&self) -> DryRunReport {
        report(&self.row.dry_run)
    }

    pub fn recheck(&self) -> Option<DryRunReport> {
        self.row.recheck.as_deref().map(report)
    }

    /// The policy's view, for the rules.
    pub fn policy(&self) -> policy::Approval {
        to_policy(&self.row, &self.signatures)
    }
}

fn report(text: &str) -> DryRunReport {
    serde_json::from_str(text).unwrap_or_else(|_| DryRunReport {
        passed: false,
        checks: Vec::new(),
        state_fingerprint: String::new(),
        blast_radius: 0,
        target_version: None,
    })
}

pub(super) fn request_of(row: &approval::Model) -> ActionRequest {
    ActionRequest {
        kind: row.kind.clone(),
        target: row.target.clone(),
        namespace: row.namespace.clone(),
        params: serde_json::from_str(&row.params).unwrap_or(serde_json::Value::Null),
        labels: serde_json::from_str(&row.labels).unwrap_or_default(),
        requested_by: row.requested_by.clone(),
    }
}

fn to_policy(row: &approval::Model, signatures: &[approval_signature::Model]) -> policy::Approval {
    policy::Approval {
        request: request_of(row),
        pattern: row.pattern.clone(),
        base_risk: row.base_risk,
        effective_risk: row.effective_risk,
        trust: u32::try_from(row.trust).unwrap_or(0),
        status: row.status,
        signatures: signatures
            .iter()
            .map(|s| Signature {
                signer: s.signer.clone(),
                role: s.role,
                decision: s.decision,
                at: s.at,
            })
            .collect(),
        created_at: row.created_at,
        expires_at: row.expires_at,
    }
}

impl ApprovalView {
    /// What a notification says of this approval.
    pub fn facts(&self) -> ApprovalFacts {
        let view = self;
        let requirement = view.policy().requirement();
        let passed = view.dry_run().passed;
        let saving = view
            .row
            .finops
            .as_deref()
            .and_then(|f| serde_json::from_str::<engine::finops::Saving>(f).ok())
            .map(|s| format!("{}/month", s.monthly));
        let names =
            |roles: Vec<engine::Role>| roles.iter().map(|r| r.as_str().to_owned()).collect();
        ApprovalFacts {
            id: view.row.id,
            kind: view.row.kind.clone(),
            target: view.row.target.clone(),
            namespace: view.row.namespace.clone(),
            status: view.row.status,
            effective_risk: view.row.effective_risk,
            required_signatures: requirement.signatures,
            eligible_roles: names(requirement.eligible),
            mandatory_roles: names(requirement.mandatory),
            signatures: view
                .signatures
                .iter()
                .map(|s| format!("{} ({}) {}", s.signer, s.role, s.decision.as_str()))
                .collect(),
            dry_run_passed: passed,
            rationale: view.row.rationale.clone(),
            void_reason: view.row.void_reason.clone(),
            saving,
            superseded_by: view.row.superseded_by,
        }
    }
}
