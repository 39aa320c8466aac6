//! Superseding: when a newer analysis of an incident proposes something else, the PENDING
//! approvals AWOOOI proposed before end SUPERSEDED — terminal, never executed, their
//! signatures void — each with its audit event and notification in one transaction.
//! Approvals a person requested, and those already APPROVED or running, are left alone (the
//! latter to their TOCTOU re-check).

use engine::policy::ApprovalStatus;
use entity::approval;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter};
use serde_json::json;

use super::sign::end_pending;
use super::{Approvals, SYSTEM_REQUESTER};
use crate::services::notify::EventKind;

impl Approvals {
    /// Supersedes the PENDING approvals AWOOOI proposed under `incidents` whose action is
    /// not one of `current` (`(kind, target)`, labelled), in favour of approval `by` (none when
    /// the newer analysis proposes no action). Returns the ids superseded.
    pub async fn supersede_stale(
        &self,
        incidents: &[i32],
        current: &[(String, String)],
        by: Option<i32>,
        analysis: &str,
    ) -> Result<Vec<i32>, DbErr> {
        let pending = approval::Entity::find()
            .filter(approval::Column::IncidentId.is_in(incidents.iter().copied()))
            .filter(approval::Column::Status.eq(ApprovalStatus::Pending))
            .filter(approval::Column::RequestedBy.eq(SYSTEM_REQUESTER))
            .all(&self.0.db)
            .await?;
        let mut superseded = Vec::new();
        for row in pending {
            if current
                .iter()
                .any(|(kind, target)| *kind == row.kind && *target == row.target)
                || Some(row.id) == by
            {
                continue;
            }
            if self.supersede(&row, by, analysis).await? {
                superseded.push(row.id);
            }
        }
        Ok(superseded)
    }

    /// One approval, if it is still PENDING at the version read.
    async fn supersede(
        &self,
        row: &approval::Model,
        by: Option<i32>,
        analysis: &str,
    ) -> Result<bool, DbErr> {
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        if !end_pending(&txn, row, ApprovalStatus::Superseded, by).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        self.notice_in(&txn, EventKind::ApprovalSuperseded, row.id, "system")
            .await?;
        crate::base::audit::append_in(
            &txn,
            "system",
            "approval.superseded",
            &format!("approval:{}", row.id),
            json!({
                "incident": row.incident_id,
                "action": format!("{} {}", row.kind, row.target),
                "superseded_by": by,
                "analysis": analysis,
            }),
        )
        .await?;
        txn.commit().await?;
        self.notify(row.id);
        self.incident_changed(row.incident_id);
        Ok(true)
    }
}
