//! Signing and expiry: each decision is one conditional update on the approval's version.

use chrono::{DateTime, Utc};
use engine::Role;
use engine::policy::{ApprovalStatus, Decision, PolicyError};
use entity::{approval, approval_signature, trust_score};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Set,
    SqlErr,
};
use serde_json::json;

use super::{ApprovalError, ApprovalView, Approvals};
use crate::services::notify::EventKind;

impl Approvals {
    /// Records `signer`'s decision. Concurrent signers of one approval take turns through
    /// the version check: the loser re-reads and decides again on the new state.
    pub async fn sign(
        &self,
        id: i32,
        signer: &str,
        role: Role,
        decision: Decision,
        comment: Option<String>,
    ) -> Result<ApprovalView, ApprovalError> {
        if let Some(c) = &comment
            && c.len() > 2_000
        {
            return Err(ApprovalError::Invalid(
                "comment: at most 2000 characters".into(),
            ));
        }
        for _attempt in 0..50 {
            match self
                .try_sign(id, signer, role, decision, comment.clone())
                .await?
            {
                Some(status) => {
                    self.notify(id);
                    if status == ApprovalStatus::Approved {
                        self.spawn_execution(id);
                    }
                    return self.load(id).await;
                }
                None => tokio::task::yield_now().await,
            }
        }
        Err(ApprovalError::Conflict(
            "too many concurrent changes to this approval; try again".into(),
        ))
    }

    /// One attempt; `None` when another writer changed the approval first.
    async fn try_sign(
        &self,
        id: i32,
        signer: &str,
        role: Role,
        decision: Decision,
        comment: Option<String>,
    ) -> Result<Option<ApprovalStatus>, ApprovalError> {
        let view = self.load(id).await?;
        let mut model = view.policy();
        let now = Utc::now();
        if model.expire_if_due(now) {
            self.expire(&view.row).await?;
            return Err(PolicyError::Expired(model.expires_at).into());
        }
        if decision == Decision::Approve {
            model.may_sign(signer, role, now)?;
            refuse_failed_dry_run(&view)?;
        }
        let status = model.sign(signer, role, decision, now)?;
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        let inserted = approval_signature::ActiveModel {
            approval_id: Set(id),
            signer: Set(signer.to_owned()),
            role: Set(role),
            decision: Set(decision),
            comment: Set(comment.clone()),
            at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(PolicyError::AlreadySigned.into());
            }
            Err(e) => return Err(e.into()),
        }
        let decided = status != ApprovalStatus::Pending;
        let mut update = approval::Entity::update_many()
            .col_expr(approval::Column::Status, Expr::value(status))
            .col_expr(approval::Column::Version, Expr::value(view.row.version + 1))
            .col_expr(approval::Column::UpdatedAt, Expr::value(now))
            .filter(approval::Column::Id.eq(id))
            .filter(approval::Column::Version.eq(view.row.version));
        if decided {
            update = update.col_expr(approval::Column::DecidedAt, Expr::value(now));
        }
        if update.exec(&txn).await?.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(None);
        }
        if decided {
            record_trust(&txn, &view.row, status == ApprovalStatus::Approved, now).await?;
        }
        let (action, event) = match (decision, status) {
            (Decision::Reject, _) => ("approval.rejected", EventKind::ApprovalRejected),
            (Decision::Approve, ApprovalStatus::Approved) => {
                ("approval.approved", EventKind::ApprovalApproved)
            }
            _ => ("approval.signed", EventKind::ApprovalSigned),
        };
        self.notice_in(&txn, event, id, signer).await?;
        crate::base::audit::append_in(
            &txn,
            signer,
            action,
            &format!("approval:{id}"),
            json!({
                "role": role.as_str(),
                "decision": format!("{decision:?}").to_ascii_uppercase(),
                "comment": comment,
                "status": status.as_str(),
                "pattern": view.row.pattern,
            }),
        )
        .await?;
        txn.commit().await?;
        Ok(Some(status))
    }

    async fn expire(&self, row: &approval::Model) -> Result<(), DbErr> {
        let txn = crate::base::db::begin_write(&self.0.db).await?;
        if !end_pending(&txn, row, ApprovalStatus::Expired, None).await? {
            return txn.rollback().await;
        }
        self.notice_in(&txn, EventKind::ApprovalExpired, row.id, "system")
            .await?;
        crate::base::audit::append_in(
            &txn,
            "system",
            "approval.expired",
            &format!("approval:{}", row.id),
            json!({"expired_at": row.expires_at}),
        )
        .await?;
        txn.commit().await?;
        self.notify(row.id);
        Ok(())
    }

    /// Expires every PENDING approval past its time. Returns how many.
    pub async fn expire_due(&self) -> Result<usize, DbErr> {
        let due = approval::Entity::find()
            .filter(approval::Column::Status.eq(ApprovalStatus::Pending))
            .filter(approval::Column::ExpiresAt.lte(Utc::now()))
            .all(&self.0.db)
            .await?;
        for row in &due {
            self.expire(row).await?;
        }
        Ok(due.len())
    }
}

/// Ends PENDING approval `row` in `status` (EXPIRED, SUPERSEDED by `superseded_by`), if it
/// is still PENDING at the version read. Returns whether it did.
pub(super) async fn end_pending(
    txn: &DatabaseTransaction,
    row: &approval::Model,
    status: ApprovalStatus,
    superseded_by: Option<i32>,
) -> Result<bool, DbErr> {
    let now = Utc::now();
    let changed = approval::Entity::update_many()
        .col_expr(approval::Column::Status, Expr::value(status))
        .col_expr(approval::Column::SupersededBy, Expr::value(superseded_by))
        .col_expr(approval::Column::Version, Expr::value(row.version + 1))
        .col_expr(approval::Column::DecidedAt, Expr::value(now))
        .col_expr(approval::Column::UpdatedAt, Expr::value(now))
        .filter(approval::Column::Id.eq(row.id))
        .filter(approval::Column::Version.eq(row.version))
        .filter(approval::Column::Status.eq(ApprovalStatus::Pending))
        .exec(txn)
        .await?
        .rows_affected;
    Ok(changed == 1)
}

/// Approving needs a passing dry-run; the refusal names the checks that failed.
fn refuse_failed_dry_run(view: &ApprovalView) -> Result<(), ApprovalError> {
    let dry_run = view.dry_run();
    if dry_run.passed {
        return Ok(());
    }
    let failed: Vec<String> = dry_run
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{:?}: {}", c.name, c.detail))
        .collect();
    Err(ApprovalError::Conflict(format!(
        "the dry-run fails ({}); this approval can only be rejected",
        failed.join("; ")
    )))
}

/// A decided approval moves its pattern's trust: +1 when approved, back to 0 when rejected.
async fn record_trust(
    txn: &DatabaseTransaction,
    row: &approval::Model,
    approved: bool,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let score = if approved {
        Expr::col((trust_score::Entity, trust_score::Column::Score)).add(1)
    } else {
        Expr::value(0)
    };
    trust_score::Entity::insert(trust_score::ActiveModel {
        pattern: Set(row.pattern.clone()),
        score: Set(i32::from(approved)),
        base_risk: Set(row.base_risk),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(trust_score::Column::Pattern)
            .value(trust_score::Column::Score, score)
            .value(trust_score::Column::BaseRisk, Expr::value(row.base_risk))
            .value(trust_score::Column::UpdatedAt, Expr::value(now))
            .to_owned(),
    )
    .exec(txn)
    .await?;
    Ok(())
}
